//! The soak's books: counters every workload adds to, and the failures it
//! found (kept with their details, reported at the end).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// One counter.
#[derive(Default)]
pub struct Count(AtomicU64);

impl Count {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Raises the value to `v` when `v` is larger.
    pub fn max(&self, v: u64) {
        self.0.fetch_max(v, Ordering::Relaxed);
    }
}

/// A count of things alive now (goes up and down).
#[derive(Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// One more alive.
    pub fn up(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    /// One fewer alive.
    pub fn down(&self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Everything the soak counts.
#[derive(Default)]
pub struct Ledger {
    // Client side of the echo traffic.
    /// Connections the clients opened.
    pub connections: Count,
    /// Bytes sent and echoed back, verified against the pattern.
    pub bytes: Count,
    /// Bytes sent in exchanges that should have completed but whose echo
    /// never came back intact.
    pub lost: Count,
    /// Connections ended by shutting down the write side and reading EOF.
    pub graceful: Count,
    /// Connections dropped with an exchange in flight.
    pub dropped: Count,
    /// Connections closed with `SO_LINGER` 0 (a reset).
    pub resets: Count,
    /// Connections that ran a writer and a reader task on split halves.
    pub split: Count,
    /// Reads cancelled by a timeout before any data was due.
    pub cancelled_reads: Count,
    /// Owned-buffer reads dropped in flight just before a close.
    pub abandoned_reads: Count,
    /// `connect` refused for want of a local port (retried).
    pub no_port: Count,
    // Server side.
    /// Connections the server accepted.
    pub accepted: Count,
    /// Server connection tasks alive now.
    pub serving: Gauge,
    /// Bytes the server echoed.
    pub echoed: Count,
    // Tasks (spawned = completed + panicked + aborted).
    /// Tasks spawned by the task churn.
    pub spawned: Count,
    /// Churn tasks whose handle returned their value.
    pub completed: Count,
    /// Churn tasks whose handle reported a panic.
    pub panicked: Count,
    /// Churn tasks whose handle reported cancellation.
    pub aborted: Count,
    /// Churn task futures (or blocking closures) not yet dropped.
    pub live: Gauge,
    /// Panicking tasks spawned (each must be reported as a panic).
    pub expected_panics: Count,
    /// Tasks aborted while pending forever (each must report cancellation).
    pub expected_aborts: Count,
    // Timers.
    /// Sleeps, timeouts and interval ticks checked.
    pub timers: Count,
    /// Largest lateness of a timer, in microseconds.
    pub max_late_us: Count,
    // Files.
    /// Files written, read back and removed.
    pub files: Count,
    /// File bytes verified.
    pub file_bytes: Count,
    failures: Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    count: u64,
    first: Vec<String>,
}

/// How many failure details are kept for the report.
const KEPT: usize = 8;

impl Ledger {
    /// Records a failure with its details.
    pub fn fail(&self, what: String) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        f.count += 1;
        if f.first.len() < KEPT {
            f.first.push(what);
        }
    }

    /// How many failures were recorded.
    pub fn failure_count(&self) -> u64 {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .count
    }

    /// The first failures, joined for one line.
    pub fn failure_summary(&self) -> String {
        let f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = format!("{} failure(s): ", f.count);
        for (i, w) in f.first.iter().enumerate() {
            if i > 0 {
                s.push_str("; ");
            }
            s.push_str(w);
        }
        s
    }

    /// Records how late a timer fired.
    pub fn late(&self, by: Duration) {
        self.max_late_us
            .max(u64::try_from(by.as_micros()).unwrap_or(u64::MAX));
    }

    /// A multi-line account of every counter.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "soak:   echo: connections={} bytes={} lost={} graceful={} dropped={} resets={} split={} \
             cancelled_reads={} abandoned_reads={} connect_no_port={}",
            self.connections.get(),
            self.bytes.get(),
            self.lost.get(),
            self.graceful.get(),
            self.dropped.get(),
            self.resets.get(),
            self.split.get(),
            self.cancelled_reads.get(),
            self.abandoned_reads.get(),
            self.no_port.get(),
        );
        let _ = writeln!(
            s,
            "soak:   server: accepted={} echoed={} serving_now={}",
            self.accepted.get(),
            self.echoed.get(),
            self.serving.get(),
        );
        let _ = writeln!(
            s,
            "soak:   tasks: spawned={} completed={} panicked={} aborted={} live_now={}",
            self.spawned.get(),
            self.completed.get(),
            self.panicked.get(),
            self.aborted.get(),
            self.live.get(),
        );
        let _ = write!(
            s,
            "soak:   timers={} max_late={:.1}ms | files={} file_bytes={}",
            self.timers.get(),
            self.max_late_us.get() as f64 / 1000.0,
            self.files.get(),
            self.file_bytes.get(),
        );
        s
    }
}
