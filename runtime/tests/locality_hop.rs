//! Hops on a synthetic two-node topology laid over this machine's CPUs:
//! `hop`/`uses!` move the running task to its targets' node, strict hops
//! never leave it, and where no hop is possible nothing breaks.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use numa_rt_alloc::NodeVec;
use numa_rt_runtime::locality::{self, hop, Strict, Weighted};
use numa_rt_runtime::runtime::{Builder, Runtime};
use numa_rt_runtime::task::{self, current_node};
use numa_rt_runtime::topology::{Synthetic, Topology};
use numa_rt_runtime::{uses, NodeId};

const N0: NodeId = NodeId::new(0);
const N1: NodeId = NodeId::new(1);

/// Metrics are process-wide: tests that read them take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn two_nodes() -> Option<Runtime> {
    let live = Topology::discover().unwrap();
    let cpus = live.cpus();
    if cpus.len() < 2 {
        eprintln!("skipped: needs 2 usable CPUs, have {}", cpus.len());
        return None;
    }
    let base = Topology::single_node(cpus, 1 << 30);
    let topo = Topology::synthetic_over(&base, &Synthetic::new(2, 1)).unwrap();
    Some(
        Builder::new_multi_thread()
            .topology(topo)
            .worker_threads(1)
            .build()
            .unwrap(),
    )
}

#[test]
fn hop_moves_the_task() {
    let _s = serial();
    let Some(rt) = two_nodes() else { return };
    let before = locality::metrics();
    let (start, landed, after) = rt.block_on(async {
        task::spawn_on(N0, async {
            let start = current_node();
            let landed = hop(&N1).await;
            let after = current_node();
            (start, landed, after)
        })
        .await
        .unwrap()
    });
    assert_eq!(start, Some(N0));
    assert_eq!(landed, Some(N1));
    assert_eq!(after, Some(N1));
    let m = locality::metrics();
    assert!(m.hops > before.hops, "hop not counted: {m:?}");
}

#[test]
fn hop_to_the_current_node_stays() {
    let _s = serial();
    let Some(rt) = two_nodes() else { return };
    let before = locality::metrics().hops;
    let node = rt.block_on(async {
        task::spawn_on(N1, async {
            hop(&N1).await;
            current_node()
        })
        .await
        .unwrap()
    });
    assert_eq!(node, Some(N1));
    assert_eq!(locality::metrics().hops, before);
}

#[test]
fn uses_follows_the_data() {
    let _s = serial();
    let Some(rt) = two_nodes() else { return };
    let nodes = rt.block_on(async {
        task::spawn_on(N0, async {
            // The runtime told the allocator that emulated node 1 is
            // backed by the real node under its CPU.
            let on1: NodeVec<u64> = NodeVec::with_capacity_on(N1, 1024).unwrap();
            let on0: NodeVec<u64> = NodeVec::with_capacity_on(N0, 1024).unwrap();
            let first = uses!(on1);
            let a = current_node();
            // Three uses of node 0's data outweigh one of node 1's.
            let second = uses!(on1, Weighted(&on0, 3));
            let b = current_node();
            (first, a, second, b)
        })
        .await
        .unwrap()
    });
    assert_eq!(nodes, (Some(N1), Some(N1), Some(N0), Some(N0)));
}

#[test]
fn strict_hop_never_leaves() {
    let _s = serial();
    let Some(rt) = two_nodes() else { return };
    let left = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    rt.block_on(async {
        // Keep node 1 busy so node 0 would steal preferred work.
        let mut busy = Vec::new();
        for _ in 0..4 {
            let stop = stop.clone();
            busy.push(task::spawn_on(N1, async move {
                while !stop.load(SeqCst) {
                    task::yield_now().await;
                }
            }));
        }
        let left2 = left.clone();
        task::spawn_on(N0, async move {
            hop(&Strict(N1)).await;
            for _ in 0..2000 {
                if current_node() != Some(N1) {
                    left2.store(true, SeqCst);
                }
                task::yield_now().await;
            }
        })
        .await
        .unwrap();
        stop.store(true, SeqCst);
        for b in busy {
            b.await.unwrap();
        }
    });
    assert!(!left.load(SeqCst), "a strict task ran off node 1");
}

#[test]
fn no_hop_outside_a_runtime() {
    let _s = serial();
    let before = locality::metrics().refused_hops;
    // Polled by hand, as another executor would.
    let mut fut = pin!(hop(&N1));
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(None));
    // In a current-thread runtime's block_on.
    let rt = Builder::new_current_thread().build().unwrap();
    let got = rt.block_on(async { hop(&N0).await });
    assert_eq!(got, None);
    assert_eq!(locality::metrics().refused_hops, before + 2);
}

#[test]
fn local_tasks_do_not_move() {
    let _s = serial();
    let Some(rt) = two_nodes() else { return };
    let before = locality::metrics().refused_hops;
    let node = rt.block_on(async {
        task::spawn_on(N0, async {
            task::spawn_local(async {
                hop(&N1).await;
                current_node()
            })
            .await
            .unwrap()
        })
        .await
        .unwrap()
    });
    assert_eq!(node, Some(N0));
    assert!(locality::metrics().refused_hops > before);
}
