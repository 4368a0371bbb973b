//! The placement hook the runtime registers: memory kinds resolved from
//! its topology, and emulated nodes backed by real ones (as under
//! `NUMA_RT_TOPOLOGY`). One test, because the hook is set once per process.

use numa_rt_alloc::{
    current_node, node_stats, set_placement_hook, set_thread_node, AllocError, MemoryKind, NodeBox,
    NodeHeap, NodeId, NodeVec, NumaAlloc, PlacementHook,
};
use std::alloc::{GlobalAlloc, Layout};

/// Pretends node 7 is an emulated node backed by the real node we run on,
/// and that the capacity tier behind any node is node 7.
struct Emulated {
    real: NodeId,
}

impl PlacementHook for Emulated {
    fn resolve(&self, kind: MemoryKind, _initiator: NodeId) -> Option<NodeId> {
        match kind {
            MemoryKind::Capacity => Some(NodeId::new(7)),
            _ => None,
        }
    }

    fn memory_node(&self, node: NodeId) -> NodeId {
        if node == NodeId::new(7) {
            self.real
        } else {
            node
        }
    }
}

#[test]
fn hook_resolves_kinds_and_backs_emulated_nodes() {
    let real = current_node();
    assert!(matches!(
        NodeBox::new_on(NodeId::new(7), 1u8),
        Err(AllocError::UnknownNode(_))
    ));
    let hook: &'static Emulated = Box::leak(Box::new(Emulated { real }));
    set_placement_hook(hook).unwrap();
    assert_eq!(
        set_placement_hook(hook),
        Err(AllocError::HookAlreadySet),
        "set once"
    );

    assert_eq!(MemoryKind::Capacity.resolve(real), NodeId::new(7));
    assert_eq!(MemoryKind::LowestLatency.resolve(real), real, "fallback");

    let b = NodeBox::new_kind(MemoryKind::Capacity, [5u32; 1000]).unwrap();
    assert_eq!(b.node(), NodeId::new(7));
    let mut v = NodeVec::new_on(NodeId::new(7)).unwrap();
    v.resize(1 << 20, 3u8);
    assert!(node_stats(NodeId::new(7)).in_use_bytes >= (1 << 20) + 4000);
    let heap = NodeHeap::new(NodeId::new(7)).unwrap();
    assert_eq!(heap.node(), NodeId::new(7));

    // A block of the real node, freed below by a thread on node 7.
    let l = Layout::from_size_align(100, 8).unwrap();
    // SAFETY: non-zero layout; freed once by the thread below.
    let remote = unsafe { NumaAlloc.alloc(l) } as usize;
    let cross_before = node_stats(real).cross_node_frees;

    // A worker of emulated node 7 allocates from node 7's heap.
    std::thread::spawn(move || {
        set_thread_node(Some(NodeId::new(7)));
        assert_eq!(current_node(), NodeId::new(7));
        let before = node_stats(NodeId::new(7)).in_use_bytes;
        let l = Layout::from_size_align(4000, 8).unwrap();
        // SAFETY: non-zero layout, freed once below.
        let p = unsafe { NumaAlloc.alloc(l) };
        assert!(!p.is_null());
        assert!(node_stats(NodeId::new(7)).in_use_bytes >= before + 4000);
        // SAFETY: allocated above with this layout.
        unsafe { NumaAlloc.dealloc(p, l) };
        // SAFETY: allocated on the main thread with this layout.
        unsafe { NumaAlloc.dealloc(remote as *mut u8, Layout::from_size_align(100, 8).unwrap()) };
        set_thread_node(None);
        assert_eq!(current_node(), real_node());
    })
    .join()
    .unwrap();
    assert_eq!(node_stats(real).cross_node_frees, cross_before + 1);
}

fn real_node() -> NodeId {
    let mut cpu = 0u32;
    let mut node = 0u32;
    // SAFETY: both out-pointers are valid.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_getcpu,
            &mut cpu as *mut u32,
            &mut node as *mut u32,
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    assert_eq!(rc, 0);
    NodeId::new(node)
}
