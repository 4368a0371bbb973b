//! The blocking pool inside a runtime: one pool per node, its threads on
//! the node's CPUs, named and hooked like the workers, the cap on threads
//! shared between nodes, and a stuck job unable to hold up shutdown.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use numa_rt_runtime::runtime::{Builder, Runtime};
use numa_rt_runtime::task::spawn_blocking;
use numa_rt_runtime::topology::{Synthetic, Topology};
use numa_rt_runtime::NodeId;

/// Two emulated nodes of one CPU each over this machine's first two
/// usable CPUs, or `None` (with a note) when it has fewer.
fn two_nodes() -> Option<Topology> {
    let live = Topology::discover().unwrap();
    let cpus = live.cpus();
    if cpus.len() < 2 {
        eprintln!("skipped: needs 2 usable CPUs, have {}", cpus.len());
        return None;
    }
    let base = Topology::single_node(cpus, 1 << 30);
    Some(Topology::synthetic_over(&base, &Synthetic::new(2, 1)).unwrap())
}

fn runtime(topology: Topology) -> Runtime {
    Builder::new_multi_thread()
        .topology(topology)
        .worker_threads(1)
        .build()
        .unwrap()
}

fn cpu_now() -> u32 {
    // SAFETY: sched_getcpu has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() };
    assert!(cpu >= 0, "sched_getcpu failed");
    cpu as u32
}

#[test]
fn blocking_jobs_run_on_the_cpus_of_the_spawning_node() {
    let Some(topology) = two_nodes() else { return };
    let node_cpu: Vec<u32> = topology
        .nodes()
        .iter()
        .map(|n| n.cpus().first().unwrap())
        .collect();
    let rt = runtime(topology);
    for (node, &cpu) in node_cpu.iter().enumerate() {
        let node = NodeId::new(node as u32);
        let cpus_seen = rt
            .block_on(rt.spawn_on(node, async {
                let mut seen = Vec::new();
                for _ in 0..20 {
                    seen.push(spawn_blocking(cpu_now).await.unwrap());
                }
                seen
            }))
            .unwrap();
        assert!(
            cpus_seen.iter().all(|&c| c == cpu),
            "node {node} has CPU {cpu}, its blocking jobs ran on {cpus_seen:?}"
        );
    }
}

#[test]
fn blocking_threads_share_the_runtime_cap_between_nodes() {
    let Some(topology) = two_nodes() else { return };
    let rt = Builder::new_multi_thread()
        .topology(topology)
        .worker_threads(1)
        .max_blocking_threads(2)
        .build()
        .unwrap();
    // Node 0's share of the cap is one thread: two jobs that need to run at
    // once cannot, so the second starts only after the first ends.
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    rt.block_on(rt.spawn_on(NodeId::new(0), {
        let (running, most) = (Arc::clone(&running), Arc::clone(&most));
        async move {
            let jobs: Vec<_> = (0..4)
                .map(|_| {
                    let (running, most) = (Arc::clone(&running), Arc::clone(&most));
                    spawn_blocking(move || {
                        let now = running.fetch_add(1, SeqCst) + 1;
                        most.fetch_max(now, SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, SeqCst);
                    })
                })
                .collect();
            for job in jobs {
                job.await.unwrap();
            }
        }
    }))
    .unwrap();
    assert_eq!(most.load(SeqCst), 1);
}

#[test]
fn blocking_threads_are_named_and_hooked_like_workers() {
    let started = Arc::new(Mutex::new(Vec::new()));
    let rt = Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("blocking-test")
        .on_thread_start({
            let started = Arc::clone(&started);
            move || started.lock().unwrap().push(std::thread::current().id())
        })
        .build()
        .unwrap();
    let (id, name) = rt
        .block_on(rt.spawn_blocking(|| {
            let me = std::thread::current();
            (me.id(), me.name().map(str::to_owned))
        }))
        .unwrap();
    assert_eq!(name.as_deref(), Some("blocking-test"));
    assert!(
        started.lock().unwrap().contains(&id),
        "the start hook ran on the blocking thread"
    );
}

#[test]
fn many_blocking_jobs_all_complete() {
    let rt = Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let total: usize = rt.block_on(async {
        // Eight jobs that wait for each other: they need eight threads at once.
        let jobs: Vec<_> = (0..8)
            .map(|i| {
                let barrier = Arc::clone(&barrier);
                spawn_blocking(move || {
                    barrier.wait();
                    i
                })
            })
            .collect();
        let mut total = 0;
        for job in jobs {
            total += job.await.unwrap();
        }
        total
    });
    assert_eq!(total, (0..8).sum());
}

#[test]
fn shutdown_timeout_leaves_a_stuck_blocking_job_behind() {
    let rt = Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    drop(rt.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        let _ = release_rx.recv();
        done_tx.send(()).unwrap();
    }));
    started_rx.recv().unwrap();
    let start = Instant::now();
    rt.shutdown_timeout(Duration::from_millis(100));
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_secs(2),
        "shutdown waited {waited:?}"
    );
    // The detached thread still finishes its job once released.
    release_tx.send(()).unwrap();
    done_rx.recv_timeout(Duration::from_secs(5)).unwrap();
}
