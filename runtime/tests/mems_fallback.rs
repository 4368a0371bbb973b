//! A node the process may no longer use, as the affinity monitor marks it
//! when `cpuset.mems` narrows (`numa_rt_alloc::set_node_fallback`): the
//! workers of that node allocate from the fallback node, explicit requests
//! for it are refused, and once it is usable again it is used again.
//!
//! This machine has one real node, so `cpuset.mems` cannot narrow for
//! real here: the test sets the fallback the monitor would set (the
//! monitor's reading of `Mems_allowed_list` and its choice of the nearest
//! allowed node are unit-tested in `scheduler::affinity` with an injected
//! reader) on a synthetic two-node topology, whose node 1 has worker
//! threads of its own.

use numa_rt_alloc::{node_stats, set_node_fallback, AllocError, NodeBox, NumaAlloc};
use numa_rt_runtime::locality::Strict;
use numa_rt_runtime::runtime::{Builder, Runtime};
use numa_rt_runtime::topology::{Synthetic, Topology};
use numa_rt_runtime::NodeId;

#[global_allocator]
static GLOBAL: NumaAlloc = NumaAlloc;

const N0: NodeId = NodeId::new(0);
const N1: NodeId = NodeId::new(1);

/// Blocks a node-1 task allocates and holds.
const BLOCKS: usize = 2000;
const BLOCK: usize = 4096;

fn runtime() -> Runtime {
    let live = Topology::discover().unwrap();
    let base = Topology::single_node(live.cpus(), 1 << 30);
    let topology = Topology::synthetic_over(&base, &Synthetic::new(2, 1)).unwrap();
    Builder::new_multi_thread()
        .topology(topology)
        .worker_threads(1)
        .build()
        .unwrap()
}

/// Bytes in use on nodes 0 and 1 grown while a task on node 1 holds
/// `BLOCKS` blocks it allocated (after enough allocations for its
/// worker's allocator to look at its node again).
fn growth_from_a_node1_task(rt: &Runtime) -> (u64, u64) {
    rt.block_on(async {
        numa_rt_runtime::spawn_on(Strict(N1), async {
            for _ in 0..10_000 {
                drop(std::hint::black_box(Box::new([0u8; 64])));
            }
            let (n0, n1) = (node_stats(N0).in_use_bytes, node_stats(N1).in_use_bytes);
            let held: Vec<Box<[u8; BLOCK]>> = (0..BLOCKS).map(|_| Box::new([1u8; BLOCK])).collect();
            let grown = (
                node_stats(N0).in_use_bytes.saturating_sub(n0),
                node_stats(N1).in_use_bytes.saturating_sub(n1),
            );
            assert!(held.iter().all(|b| b[BLOCK - 1] == 1));
            grown
        })
        .await
        .unwrap()
    })
}

#[test]
fn a_disallowed_node_s_workers_allocate_from_its_fallback() {
    let rt = runtime();
    let held = (BLOCKS * BLOCK) as u64;

    // Usable: node 1's worker allocates on node 1.
    let (_, n1) = growth_from_a_node1_task(&rt);
    assert!(n1 >= held, "node 1 grew by {n1} of {held} bytes");
    let kept = NodeBox::new_on(N1, 11u64).unwrap();

    // Node 1 left cpuset.mems; node 0 is its nearest allowed node.
    set_node_fallback(N1, Some(N0)).unwrap();
    let (n0, n1) = growth_from_a_node1_task(&rt);
    assert!(n0 >= held, "node 0 grew by {n0} of {held} bytes");
    assert!(n1 < held / 10, "node 1 still grew by {n1} bytes");
    assert_eq!(
        NodeBox::new_on(N1, 7u64).err(),
        Some(AllocError::NoMemory(N1))
    );
    // Nothing placed earlier moves.
    assert_eq!((*kept, kept.node()), (11, N1));

    // Node 1 is allowed again.
    set_node_fallback(N1, None).unwrap();
    let (_, n1) = growth_from_a_node1_task(&rt);
    assert!(n1 >= held, "node 1 grew by {n1} of {held} bytes once back");
    assert_eq!(*NodeBox::new_on(N1, 5u64).unwrap(), 5);
    assert_eq!(rt.metrics().mems_change_count(), 0, "mems never changed");
}
