//! Counters a worker publishes for [`RuntimeMetrics`](crate::runtime::RuntimeMetrics).
//!
//! A worker counts in plain cells on its own thread and copies them here
//! every few dozen polls and whenever it parks, so the hot path does no
//! atomic read-modify-write for metrics.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// A counter written by one thread and read by any.
#[derive(Default, Debug)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn store(&self, v: u64) {
        self.0.store(v, Relaxed);
    }

    pub(crate) fn load(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// One worker's published counters.
#[derive(Default, Debug)]
pub(crate) struct WorkerMetrics {
    pub(crate) polls: Counter,
    pub(crate) home_polls: Counter,
    pub(crate) local_steals: Counter,
    pub(crate) remote_steals: Counter,
    pub(crate) parks: Counter,
    pub(crate) unparks: Counter,
    /// Tasks this worker spawned onto its own node.
    pub(crate) spawned: Counter,
}
