//! Soak test: thousands of TCP connections echoing with random
//! disconnects and resets, timers, file I/O, and tasks that panic, are
//! aborted and spawn more, on every node, for as long as asked; then
//! checks that every byte came back intact, every task is accounted for
//! and memory returned to its baseline.
//!
//! Run: `cargo run --release --example soak -- --seconds 20`
//!
//! Options: `--seconds N` (measured run, default 20), `--warmup N`
//! (default a fifth of the run, 1 to 5 s), `--connections N` (concurrent
//! client connections; default min(2000, what the open-file limit
//! allows)), `--io auto|epoll|uring` (`auto` honours `NUMA_RT_IO`),
//! `--seed N`. `NUMA_RT_TOPOLOGY=2x1` emulates two nodes.
//!
//! The run has two phases with the same workload: a warm-up, after which
//! (all connections closed, all tasks done) the memory baseline is taken,
//! and the measured run, after which memory is read again. The last line
//! is `soak: ok connections=<n> bytes=<n> lost=0 leaked_bytes=<n>` (exit
//! 0) or `soak: FAILED <why>` (exit 1). `leaked_bytes` is the growth of
//! the allocator's bytes in use over the baseline.
//!
//! Self-checks (`scripts/soak` runs them): `--inject-corruption` flips
//! one echoed bit and `--inject-leak` leaks 4 KiB per connection; both
//! must end in `soak: FAILED`.

mod args;
mod echo;
mod files;
mod ledger;
mod memory;
mod pattern;
mod tasks;
mod timers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use numa_rt::net::TcpListener;
use numa_rt::runtime::{Builder, Handle};
use numa_rt::task::JoinSet;
use numa_rt::time::{sleep, timeout, Instant};
use numa_rt::NodeId;

use crate::args::Args;
use crate::ledger::Ledger;
use crate::memory::{mib, Snapshot};

// Everything the soak allocates goes through numa-rt's allocator, so its
// books see every byte.
#[global_allocator]
static GLOBAL: numa_rt::alloc::NumaAlloc = numa_rt::alloc::NumaAlloc;

/// Most concurrent connections by default.
const DEFAULT_CONNECTIONS: usize = 2000;
/// Descriptors kept free for listeners, files, rings and the runtime.
const SPARE_FDS: u64 = 256;
/// Allowed growth of the allocator's bytes in use over the baseline.
const IN_USE_TOLERANCE: i64 = 4 << 20;
/// Allowed growth of the resident set over the baseline.
const RSS_TOLERANCE: i64 = 64 << 20;
/// Time after the end of a phase for its tasks to finish.
const DRAIN: Duration = Duration::from_secs(45);

/// What every workload task shares.
pub struct Soak {
    /// Counters and failures.
    pub ledger: Ledger,
    /// The echo server's address (one listener per node on one port).
    pub addr: SocketAddr,
    /// The runtime's nodes.
    pub nodes: Vec<NodeId>,
    /// Seed of all random choices.
    pub seed: u64,
    /// Next connection id.
    pub next_conn: AtomicU64,
    /// `--inject-corruption`: the server flips a bit of its next echo.
    pub corrupt_next: AtomicBool,
    /// `--inject-leak` (measured phase only): clients leak memory.
    pub leak: AtomicBool,
    /// Folder for the file workload.
    pub dir: PathBuf,
}

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    quiet_intentional_panics();
    match soak(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("soak: FAILED {why}");
            ExitCode::FAILURE
        }
    }
}

/// The soak's own panics are expected; any other still prints.
fn quiet_intentional_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.payload().is::<tasks::IntentionalPanic>() {
            default(info);
        }
    }));
}

/// Fails the process if the soak has not ended by `limit` (a hang must
/// not stall CI).
fn watchdog(limit: Duration) {
    let spawned = std::thread::Builder::new()
        .name("soak-watchdog".into())
        .spawn(move || {
            std::thread::sleep(limit);
            println!("soak: FAILED still running after {limit:?} (hung?)");
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        eprintln!("soak: no watchdog thread ({e}); running without one");
    }
}

fn soak(args: &Args) -> Result<String, String> {
    let nofile = memory::raise_nofile_limit().map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    // Two descriptors per connection: the client's and the server's.
    let fit = usize::try_from(nofile.saturating_sub(SPARE_FDS) / 2).unwrap_or(usize::MAX);
    if fit < 16 {
        return Err(format!(
            "the open-file limit ({nofile}) leaves room for {fit} connections"
        ));
    }
    let connections = args.connections.unwrap_or(DEFAULT_CONNECTIONS).min(fit);
    let total = args.warmup + args.seconds;
    watchdog(Duration::from_secs_f64(total) + 2 * DRAIN);

    let rt = Builder::new_multi_thread()
        .enable_all()
        .io_driver(args.io)
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let dir = std::env::temp_dir().join(format!("numa-rt-soak-{}", std::process::id()));
    let result = rt.block_on(run(args, connections, nofile, dir.clone()));
    rt.shutdown_timeout(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(args: &Args, connections: usize, nofile: u64, dir: PathBuf) -> Result<String, String> {
    let handle = Handle::current();
    let nodes = handle.nodes();
    let listeners = TcpListener::bind_per_node("127.0.0.1:0")
        .await
        .map_err(|e| format!("listen: {e}"))?;
    let addr = listeners
        .first()
        .ok_or("no listener")?
        .1
        .local_addr()
        .map_err(|e| format!("listener address: {e}"))?;
    numa_rt::fs::create_dir_all(&dir)
        .await
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let soak = Arc::new(Soak {
        ledger: Ledger::default(),
        addr,
        nodes: nodes.clone(),
        seed: args.seed,
        next_conn: AtomicU64::new(0),
        corrupt_next: AtomicBool::new(false),
        leak: AtomicBool::new(false),
        dir,
    });
    println!(
        "soak: {} node(s) {:?}, {} worker(s), io {:?}, {connections} connections \
         (open-file limit {nofile}), warm-up {:.0} s, run {:.0} s",
        nodes.len(),
        nodes.iter().map(|n| n.index()).collect::<Vec<_>>(),
        handle.metrics().num_workers(),
        numa_rt::io::current_backend(),
        args.warmup,
        args.seconds,
    );
    let mut servers = Vec::new();
    for (node, listener) in listeners {
        servers.push(numa_rt::spawn_on(
            node,
            echo::accept_loop(soak.clone(), listener),
        ));
    }

    phase(&soak, connections, args.warmup, 0).await?;
    settle(&soak).await?;
    let base = Snapshot::take().map_err(|e| format!("memory: {e}"))?;
    println!("soak: baseline after warm-up: {base}");

    soak.corrupt_next
        .store(args.inject_corruption, Ordering::Relaxed);
    soak.leak.store(args.inject_leak, Ordering::Relaxed);
    phase(&soak, connections, args.seconds, 1).await?;
    soak.leak.store(false, Ordering::Relaxed);
    settle(&soak).await?;
    let after = Snapshot::take().map_err(|e| format!("memory: {e}"))?;
    println!("soak: after the run:         {after}");

    for s in &servers {
        s.abort();
    }
    for s in servers {
        match s.await {
            Err(e) if e.is_cancelled() => {}
            other => soak
                .ledger
                .fail(format!("accept loop ended with {other:?}")),
        }
    }
    println!("{}", soak.ledger.describe());
    verdict(&soak, &base, &after)
}

/// Runs the whole workload on every node for `seconds`, then waits for
/// all of it to finish.
async fn phase(
    soak: &Arc<Soak>,
    connections: usize,
    seconds: f64,
    phase: u64,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut set = JoinSet::new();
    let n = soak.nodes.len();
    // Streams of random choices: distinct per phase, node and task.
    let stream = |node: usize, i: usize| (phase << 48) | ((node as u64) << 32) | i as u64;
    for (ni, &node) in soak.nodes.iter().enumerate() {
        let slots = connections / n + usize::from(ni < connections % n);
        for i in 0..slots {
            set.spawn_on(node, echo::client(soak.clone(), stream(ni, i), deadline));
        }
        for i in 0..2 {
            set.spawn_on(node, tasks::churn(soak.clone(), stream(ni, i), deadline));
        }
        for i in 0..4 {
            set.spawn_on(node, timers::timers(soak.clone(), stream(ni, i), deadline));
        }
        set.spawn_on(node, files::files(soak.clone(), stream(ni, 0), deadline));
    }
    let end = deadline + DRAIN;
    loop {
        match timeout(
            end.saturating_duration_since(Instant::now()),
            set.join_next(),
        )
        .await
        {
            Ok(None) => return Ok(()),
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => soak.ledger.fail(format!("a workload task failed: {e}")),
            Err(_) => {
                return Err(format!(
                    "{} workload task(s) still running {DRAIN:?} after the deadline",
                    set.len()
                ))
            }
        }
    }
}

/// Waits until every server connection task has ended and the
/// allocator has had time to purge, then gives free memory back.
async fn settle(soak: &Soak) -> Result<(), String> {
    let start = Instant::now();
    while soak.ledger.serving.get() > 0 || soak.ledger.live.get() > 0 {
        if start.elapsed() > Duration::from_secs(20) {
            return Err(format!(
                "20 s after the clients ended, {} server connection task(s) and {} churn task(s) are alive",
                soak.ledger.serving.get(),
                soak.ledger.live.get()
            ));
        }
        sleep(Duration::from_millis(10)).await;
    }
    // Past the allocator's 250 ms delay for unmapping empty segments.
    sleep(Duration::from_millis(400)).await;
    for _ in 0..4 {
        let mut set = JoinSet::new();
        for &node in &soak.nodes {
            for _ in 0..8 {
                set.spawn_on(node, async { numa_rt::alloc::trim() });
            }
        }
        while set.join_next().await.is_some() {}
        sleep(Duration::from_millis(50)).await;
    }
    numa_rt::alloc::trim();
    Ok(())
}

/// The final line: every check, in order of importance.
fn verdict(soak: &Soak, base: &Snapshot, after: &Snapshot) -> Result<String, String> {
    let l = &soak.ledger;
    let leaked = after.in_use as i64 - base.in_use as i64;
    let rss_growth = after.rss as i64 - base.rss as i64;
    let mut problems = Vec::new();
    if l.failure_count() > 0 {
        problems.push(l.failure_summary());
    }
    if l.lost.get() > 0 {
        problems.push(format!("lost={} byte(s)", l.lost.get()));
    }
    let outcomes = l.completed.get() + l.panicked.get() + l.aborted.get();
    if l.spawned.get() != outcomes {
        problems.push(format!(
            "tasks: spawned {} but {} outcomes observed",
            l.spawned.get(),
            outcomes
        ));
    }
    if l.panicked.get() != l.expected_panics.get() || l.aborted.get() != l.expected_aborts.get() {
        problems.push(format!(
            "tasks: {} panics and {} aborts observed, {} and {} caused",
            l.panicked.get(),
            l.aborted.get(),
            l.expected_panics.get(),
            l.expected_aborts.get()
        ));
    }
    if l.live.get() != 0 || l.serving.get() != 0 {
        problems.push(format!(
            "{} task future(s) and {} server task(s) never dropped",
            l.live.get(),
            l.serving.get()
        ));
    }
    if l.accepted.get() != l.connections.get() {
        problems.push(format!(
            "server accepted {} connections, clients opened {}",
            l.accepted.get(),
            l.connections.get()
        ));
    }
    if l.connections.get() == 0 || l.spawned.get() == 0 || l.timers.get() == 0 || l.files.get() == 0
    {
        problems.push("a workload never ran".into());
    }
    if leaked > IN_USE_TOLERANCE {
        problems.push(format!(
            "allocator in-use grew {:.2} MiB over the baseline (tolerance {:.0} MiB)",
            mib(leaked),
            mib(IN_USE_TOLERANCE)
        ));
    }
    if rss_growth > RSS_TOLERANCE {
        problems.push(format!(
            "RSS grew {:.1} MiB over the baseline (tolerance {:.0} MiB)",
            mib(rss_growth),
            mib(RSS_TOLERANCE)
        ));
    }
    let totals = format!(
        "connections={} bytes={} lost={} leaked_bytes={leaked}",
        l.connections.get(),
        l.bytes.get(),
        l.lost.get()
    );
    if problems.is_empty() {
        Ok(format!("soak: ok {totals}"))
    } else {
        Err(format!("{} ({totals})", problems.join("; ")))
    }
}
