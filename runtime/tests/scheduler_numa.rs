//! Placement on a synthetic two-node topology laid over this machine's
//! CPUs (node 0 = the first allowed CPU, node 1 = the second): tasks run on
//! their node, `Strict` tasks never leave it, `Preferred` tasks are taken
//! by an idle node and go home again when woken.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use numa_rt_runtime::locality::Strict;
use numa_rt_runtime::runtime::{Builder, Runtime};
use numa_rt_runtime::task::{self, current_node};
use numa_rt_runtime::topology::{Synthetic, Topology};
use numa_rt_runtime::NodeId;

const N0: NodeId = NodeId::new(0);
const N1: NodeId = NodeId::new(1);

/// These tests make one node busy and the other idle on purpose; run in
/// parallel, they would load each other's "idle" CPU. Each holds this lock.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Two emulated nodes of one CPU each, or `None` (with a note) on a
/// machine with fewer than two usable CPUs.
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

/// Where a poll ran: the node the runtime says and the CPU the kernel says.
fn here() -> (Option<NodeId>, u32) {
    (current_node(), cpu_now())
}

/// Busy-waits (without yielding) for `d`: keeps a worker occupied.
fn spin(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// A latch many tasks can wait on; opening it wakes them all (from the
/// test thread, outside the runtime).
#[derive(Clone, Default)]
struct Gate(Arc<(AtomicBool, Mutex<Vec<Waker>>)>);

impl Gate {
    fn open(&self) {
        self.0 .0.store(true, SeqCst);
        for w in self.0 .1.lock().unwrap().drain(..) {
            w.wake();
        }
    }
    fn wait_shared(&self) -> impl Future<Output = ()> + Send + 'static {
        let gate = self.clone();
        std::future::poll_fn(move |cx| {
            if gate.0 .0.load(SeqCst) {
                return Poll::Ready(());
            }
            gate.0 .1.lock().unwrap().push(cx.waker().clone());
            if gate.0 .0.load(SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

#[test]
fn task_spawned_on_node_1_runs_on_node_1_cpus() {
    let _serial = serial();
    let Some(topo) = two_nodes() else { return };
    let node1_cpus = topo.node(N1).unwrap().cpus().clone();
    let node0_cpus = topo.node(N0).unwrap().cpus().clone();
    let rt = runtime(topo);
    for _ in 0..50 {
        let (node, cpu) = rt
            .block_on(rt.spawn_on(N1, async {
                task::yield_now().await;
                here()
            }))
            .unwrap();
        assert_eq!(node, Some(N1));
        assert!(
            node1_cpus.contains(cpu),
            "ran on CPU {cpu}, node 1 has {node1_cpus}"
        );
        let (node, cpu) = rt.block_on(rt.spawn_on(N0, async { here() })).unwrap();
        assert_eq!(node, Some(N0));
        assert!(
            node0_cpus.contains(cpu),
            "ran on CPU {cpu}, node 0 has {node0_cpus}"
        );
    }
    // A plain spawn from a node-1 task inherits node 1.
    let inherited = rt
        .block_on(rt.spawn_on(N1, async {
            numa_rt_runtime::spawn(async { current_node() })
                .await
                .unwrap()
        }))
        .unwrap();
    assert_eq!(inherited, Some(N1));
    let m = rt.metrics();
    assert!(m.node_spawned_count(N1) >= 50);
}

#[test]
fn strict_tasks_never_run_on_node_0_even_when_it_is_idle() {
    let _serial = serial();
    let Some(topo) = two_nodes() else { return };
    let rt = runtime(topo);
    let polls_off_node = Arc::new(Mutex::new(Vec::new()));
    let preferred_on_node0 = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for i in 0..80 {
        let off = polls_off_node.clone();
        let seen0 = preferred_on_node0.clone();
        // Half strict, half preferred: the preferred ones draw idle node 0
        // into stealing from node 1 while the strict ones queue there.
        let strict = i % 2 == 0;
        let body = async move {
            for _ in 0..5 {
                let (node, _) = here();
                if strict && node != Some(N1) {
                    off.lock().unwrap().push(node);
                }
                if !strict && node == Some(N0) {
                    seen0.store(true, SeqCst);
                }
                // Keep node 1 saturated: each poll burns CPU.
                spin(Duration::from_millis(1));
                task::yield_now().await;
            }
        };
        handles.push(if strict {
            rt.spawn_on(Strict(N1), body)
        } else {
            rt.spawn_on(N1, body)
        });
    }
    rt.block_on(async {
        for h in handles {
            h.await.unwrap();
        }
    });
    let off = polls_off_node.lock().unwrap();
    assert!(off.is_empty(), "strict tasks polled off node 1: {off:?}");
    assert!(
        preferred_on_node0.load(SeqCst),
        "node 0 never helped, so the test proved nothing"
    );
}

#[test]
fn strict_placement_outside_the_runtime_is_an_error() {
    let _serial = serial();
    let Some(topo) = two_nodes() else { return };
    let rt = Builder::new_multi_thread()
        .topology(topo)
        .nodes([N0])
        .worker_threads(1)
        .build()
        .unwrap();
    let err = rt.handle().try_spawn_on(Strict(N1), async {}).unwrap_err();
    assert!(err.to_string().contains("node1"), "{err}");
    // A preferred placement on a node without workers falls back.
    let node = rt
        .block_on(rt.spawn_on(N1, async { current_node() }))
        .unwrap();
    assert_eq!(node, Some(N0));
}

#[test]
fn preferred_tasks_are_taken_by_idle_node_0_only_while_it_is_idle() {
    let _serial = serial();
    let Some(topo) = two_nodes() else { return };
    let rt = runtime(topo);
    let start = Instant::now();
    // Occupy both nodes: node 0 for 150 ms, node 1 for 400 ms.
    let busy0 = rt.spawn_on(Strict(N0), async { spin(Duration::from_millis(150)) });
    let busy1 = rt.spawn_on(Strict(N1), async { spin(Duration::from_millis(400)) });
    std::thread::sleep(Duration::from_millis(20));
    // Preferred work for node 1, which is busy.
    let handles: Vec<_> = (0..20)
        .map(|_| {
            rt.spawn_on(N1, async move {
                let (node, _) = here();
                spin(Duration::from_millis(2));
                (node, start.elapsed())
            })
        })
        .collect();
    let results: Vec<_> = rt.block_on(async {
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        busy0.await.unwrap();
        busy1.await.unwrap();
        out
    });
    let stolen: Vec<_> = results.iter().filter(|(n, _)| *n == Some(N0)).collect();
    assert!(
        !stolen.is_empty(),
        "idle node 0 never took node 1's preferred tasks: {results:?}"
    );
    for (_, at) in &stolen {
        assert!(
            *at >= Duration::from_millis(140),
            "node 0 took a task while busy, at {at:?}"
        );
    }
    // Workers publish their counters when they park: give them a moment.
    let m = rt.metrics();
    let deadline = Instant::now() + Duration::from_secs(2);
    let remote = loop {
        let remote: u64 = (0..m.num_workers())
            .map(|w| m.worker_remote_steal_count(w))
            .sum();
        if remote > 0 || Instant::now() > deadline {
            break remote;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(remote > 0);
}

#[test]
fn a_stolen_task_returns_home_when_woken() {
    let _serial = serial();
    let Some(topo) = two_nodes() else { return };
    let rt = runtime(topo);
    let gate = Gate::default();
    // Node 1 is busy and work piles up there, so idle node 0 takes some;
    // every task then waits on the gate.
    let busy1 = rt.spawn_on(Strict(N1), async { spin(Duration::from_millis(200)) });
    std::thread::sleep(Duration::from_millis(20));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let wait = gate.wait_shared();
            rt.spawn_on(N1, async move {
                let before = current_node();
                wait.await;
                (before, current_node())
            })
        })
        .collect();
    rt.block_on(busy1).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    gate.open();
    let results: Vec<_> = rt.block_on(async {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let stolen: Vec<_> = results
        .iter()
        .filter(|(before, _)| *before == Some(N0))
        .collect();
    assert!(!stolen.is_empty(), "idle node 0 stole nothing: {results:?}");
    for (_, after) in &stolen {
        assert_eq!(
            *after,
            Some(N1),
            "a woken task did not return home: {results:?}"
        );
    }
}

#[test]
fn remote_steal_can_be_switched_off() {
    let _serial = serial();
    let Some(topo) = two_nodes() else { return };
    let rt = Builder::new_multi_thread()
        .topology(topo)
        .worker_threads(1)
        .remote_steal(false)
        .build()
        .unwrap();
    let busy1 = rt.spawn_on(N1, async { spin(Duration::from_millis(100)) });
    std::thread::sleep(Duration::from_millis(10));
    let nodes: Vec<_> = (0..10)
        .map(|_| rt.spawn_on(N1, async { current_node() }))
        .collect();
    rt.block_on(async {
        busy1.await.unwrap();
        for h in nodes {
            assert_eq!(h.await.unwrap(), Some(N1));
        }
    });
}
