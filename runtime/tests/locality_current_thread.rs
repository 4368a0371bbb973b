//! A current-thread runtime describes its topology to the allocator, as a
//! multi-thread one does: memory of its emulated nodes lands on the real
//! node under them. The allocator takes one hook per process, so this
//! binary builds no other runtime.

use numa_rt_alloc::{AllocError, MemoryKind, NodeVec, PlacementHook};
use numa_rt_runtime::runtime::Builder;
use numa_rt_runtime::topology::{Synthetic, Topology};
use numa_rt_runtime::NodeId;

struct Probe;

impl PlacementHook for Probe {
    fn resolve(&self, _: MemoryKind, _: NodeId) -> Option<NodeId> {
        None
    }
}

static PROBE: Probe = Probe;

#[test]
fn current_thread_runtime_installs_the_placement_hook() {
    let live = Topology::discover().unwrap();
    let base = Topology::single_node(live.cpus().clone(), 1 << 30);
    let topo = Topology::synthetic_over(&base, &Synthetic::new(2, 1)).unwrap();
    let rt = Builder::new_current_thread()
        .topology(topo)
        .build()
        .unwrap();
    // The runtime's hook is in place: another cannot be set.
    assert!(matches!(
        numa_rt_alloc::set_placement_hook(&PROBE),
        Err(AllocError::HookAlreadySet)
    ));
    // Emulated node 1 is backed by the real node of its CPUs, so memory
    // placed there from the runtime's thread is mapped and usable.
    let sum = rt.block_on(async {
        let mut v = NodeVec::with_capacity_on(NodeId::new(1), 1024).unwrap();
        for i in 0..1024u64 {
            v.push(i);
        }
        assert_eq!(v.node(), NodeId::new(1));
        v.iter().sum::<u64>()
    });
    assert_eq!(sum, 1023 * 1024 / 2);
}
