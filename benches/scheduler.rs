//! Scheduler benchmarks: numa_rt and tokio side by side.
//!
//! The workloads have the shape of tokio's `benches/rt_multi_threaded.rs`:
//! 10,000 spawns (1,000 under the second busy load), 1,000 ping-pong
//! rounds, 200 tasks x 1,000 yields, a chain of 1,000 spawns. Each criterion
//! group holds a `numa_rt` and a `tokio` function doing the same work. With
//! `NUMA_RT_BENCH_BOX_CELLS=1` each group also holds `numa_rt_box`: numa_rt
//! with task cells from the global allocator (`Box`) instead of the home
//! node's heap (`task_cells_from_node_heap(false)`), for the A/B in
//! BENCHMARKS.md.
//!
//! Worker count: tokio's benches use 4 workers; the machines these numbers
//! come from have 2 CPUs, so both runtimes get `WORKERS_PER_NODE` (2)
//! workers for every NUMA node of the live topology (numa_rt's
//! `worker_threads` is per node; tokio gets the same total).
//!
//! ```text
//! cargo bench --bench scheduler -- --warm-up-time 1 --measurement-time 3
//! ```

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Bencher, Criterion};

/// Workers per NUMA node, for both runtimes.
const WORKERS_PER_NODE: usize = 2;
/// Tasks spawned per iteration by the spawn benchmarks.
const SPAWNS: usize = 10_000;
/// Tasks spawned per iteration under the spawning busy load.
const SPAWNS_BUSY2: usize = 1_000;
/// Rounds of the ping-pong benchmark.
const PINGS: usize = 1_000;
/// Tasks and yields per task of the yield benchmark.
const YIELD_TASKS: usize = 200;
const YIELDS: usize = 1_000;
/// Length of the spawn chain.
const CHAIN: usize = 1_000;
/// CPU time a busy-load task burns between yields.
const STALL: Duration = Duration::from_micros(10);

/// Burns `STALL` of CPU time, giving the CPU up between checks.
fn stall() {
    let start = Instant::now();
    while start.elapsed() < STALL {
        std::thread::yield_now();
    }
}

/// The NUMA nodes numa_rt runs pools on here.
fn node_count() -> usize {
    numa_rt::topology::Topology::load()
        .map(|t| t.cpu_nodes().count().max(1))
        .unwrap_or(1)
}

fn numa_rt_runtime() -> numa_rt::runtime::Runtime {
    numa_rt::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS_PER_NODE)
        .enable_all()
        .build()
        .unwrap()
}

/// numa_rt with every task cell from the global allocator.
fn numa_rt_box_runtime() -> numa_rt::runtime::Runtime {
    numa_rt::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS_PER_NODE)
        .task_cells_from_node_heap(false)
        .enable_all()
        .build()
        .unwrap()
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS_PER_NODE * node_count())
        .enable_all()
        .build()
        .unwrap()
}

/// The workloads, written once and instantiated for each runtime so both
/// do exactly the same work.
macro_rules! workloads {
    ($module:ident, $krate:ident, $runtime:path) => {
        mod $module {
            use super::*;

            /// Spawns from inside the runtime onto the spawning worker.
            pub fn spawn_many_local(b: &mut Bencher) {
                let rt = $runtime();
                let (tx, rx) = mpsc::sync_channel(1);
                let left = Arc::new(AtomicUsize::new(0));
                b.iter(|| {
                    left.store(SPAWNS, Relaxed);
                    rt.block_on(async {
                        for _ in 0..SPAWNS {
                            let tx = tx.clone();
                            let left = Arc::clone(&left);
                            $krate::spawn(async move {
                                if left.fetch_sub(1, Relaxed) == 1 {
                                    tx.send(()).unwrap();
                                }
                            });
                        }
                        rx.recv().unwrap();
                    });
                });
            }

            /// Spawns from outside onto an idle runtime, then joins all.
            pub fn spawn_many_remote_idle(b: &mut Bencher) {
                let rt = $runtime();
                let mut handles = Vec::with_capacity(SPAWNS);
                b.iter(|| {
                    handles.extend((0..SPAWNS).map(|_| rt.spawn(async {})));
                    rt.block_on(async {
                        for handle in handles.drain(..) {
                            handle.await.unwrap();
                        }
                    });
                });
            }

            /// Spawns from outside while twice as many tasks as workers
            /// burn CPU and yield.
            pub fn spawn_many_remote_busy1(b: &mut Bencher) {
                let rt = $runtime();
                let handle = rt.handle().clone();
                let busy = Arc::new(AtomicBool::new(true));
                for _ in 0..2 * workers() {
                    let busy = Arc::clone(&busy);
                    rt.spawn(async move {
                        while busy.load(Relaxed) {
                            $krate::task::yield_now().await;
                            stall();
                        }
                    });
                }
                let mut handles = Vec::with_capacity(SPAWNS);
                b.iter(|| {
                    handles.extend((0..SPAWNS).map(|_| handle.spawn(async {})));
                    rt.block_on(async {
                        for handle in handles.drain(..) {
                            handle.await.unwrap();
                        }
                    });
                });
                busy.store(false, Relaxed);
            }

            /// Spawns from outside while each worker's worth of tasks burn
            /// CPU and spawn their successors.
            pub fn spawn_many_remote_busy2(b: &mut Bencher) {
                fn respawn(busy: Arc<AtomicBool>) {
                    $krate::spawn(async move {
                        if busy.load(Relaxed) {
                            stall();
                            respawn(busy);
                        }
                    });
                }
                let rt = $runtime();
                let handle = rt.handle().clone();
                let busy = Arc::new(AtomicBool::new(true));
                for _ in 0..workers() {
                    let busy = Arc::clone(&busy);
                    rt.spawn(async move { respawn(busy) });
                }
                let mut handles = Vec::with_capacity(SPAWNS_BUSY2);
                b.iter(|| {
                    handles.extend((0..SPAWNS_BUSY2).map(|_| handle.spawn(async {})));
                    rt.block_on(async {
                        for handle in handles.drain(..) {
                            handle.await.unwrap();
                        }
                    });
                });
                busy.store(false, Relaxed);
            }

            /// Pairs of tasks hand a message there and back through
            /// oneshot channels, `PINGS` pairs per iteration.
            pub fn ping_pong(b: &mut Bencher) {
                let rt = $runtime();
                let (done_tx, done_rx) = mpsc::sync_channel(1);
                let left = Arc::new(AtomicUsize::new(0));
                b.iter(|| {
                    left.store(PINGS, Relaxed);
                    let done_tx = done_tx.clone();
                    let left = Arc::clone(&left);
                    rt.block_on(async {
                        $krate::spawn(async move {
                            for _ in 0..PINGS {
                                let done_tx = done_tx.clone();
                                let left = Arc::clone(&left);
                                $krate::spawn(async move {
                                    let (ping_tx, ping_rx) = tokio::sync::oneshot::channel();
                                    let (pong_tx, pong_rx) = tokio::sync::oneshot::channel();
                                    $krate::spawn(async move {
                                        ping_rx.await.unwrap();
                                        pong_tx.send(()).unwrap();
                                    });
                                    ping_tx.send(()).unwrap();
                                    pong_rx.await.unwrap();
                                    if left.fetch_sub(1, Relaxed) == 1 {
                                        done_tx.send(()).unwrap();
                                    }
                                });
                            }
                        });
                        done_rx.recv().unwrap();
                    });
                });
            }

            /// `YIELD_TASKS` tasks each yield `YIELDS` times.
            pub fn yield_many(b: &mut Bencher) {
                let rt = $runtime();
                let (tx, rx) = mpsc::sync_channel(YIELD_TASKS);
                b.iter(|| {
                    for _ in 0..YIELD_TASKS {
                        let tx = tx.clone();
                        rt.spawn(async move {
                            for _ in 0..YIELDS {
                                $krate::task::yield_now().await;
                            }
                            tx.send(()).unwrap();
                        });
                    }
                    for _ in 0..YIELD_TASKS {
                        rx.recv().unwrap();
                    }
                });
            }

            /// Each task spawns the next, `CHAIN` deep.
            pub fn chained_spawn(b: &mut Bencher) {
                fn link(done: mpsc::SyncSender<()>, left: usize) {
                    if left == 0 {
                        done.send(()).unwrap();
                    } else {
                        $krate::spawn(async move { link(done, left - 1) });
                    }
                }
                let rt = $runtime();
                let (done_tx, done_rx) = mpsc::sync_channel(1);
                b.iter(|| {
                    let done_tx = done_tx.clone();
                    rt.block_on(async {
                        $krate::spawn(async move { link(done_tx, CHAIN) });
                        done_rx.recv().unwrap();
                    });
                });
            }
        }
    };
}

/// Total workers of either runtime.
fn workers() -> usize {
    WORKERS_PER_NODE * node_count()
}

workloads!(on_numa_rt, numa_rt, numa_rt_runtime);
workloads!(on_numa_rt_box, numa_rt, numa_rt_box_runtime);
workloads!(on_tokio, tokio, tokio_runtime);

/// One criterion group per workload, named as in tokio's benches, holding
/// the `numa_rt` and `tokio` functions (and `numa_rt_box` when
/// `NUMA_RT_BENCH_BOX_CELLS=1`).
macro_rules! groups {
    ($($workload:ident),* $(,)?) => {
        $(
            fn $workload(c: &mut Criterion) {
                let mut group = c.benchmark_group(stringify!($workload));
                group.bench_function("numa_rt", on_numa_rt::$workload);
                if box_cells_wanted() {
                    group.bench_function("numa_rt_box", on_numa_rt_box::$workload);
                }
                group.bench_function("tokio", on_tokio::$workload);
                group.finish();
            }
        )*
        criterion_group!(scheduler, $($workload),*);
    };
}

/// Whether to add the `numa_rt_box` contender (task cells from `Box`).
fn box_cells_wanted() -> bool {
    std::env::var_os("NUMA_RT_BENCH_BOX_CELLS").is_some_and(|v| v == "1")
}

groups!(
    spawn_many_local,
    spawn_many_remote_idle,
    spawn_many_remote_busy1,
    spawn_many_remote_busy2,
    ping_pong,
    yield_many,
    chained_spawn,
);

criterion_main!(scheduler);
