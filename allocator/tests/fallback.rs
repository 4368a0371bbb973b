//! Node fallbacks (`set_node_fallback`): what the runtime's affinity
//! monitor sets when a node leaves the process's `cpuset.mems`. One test,
//! so nothing else in this process allocates while node 0 is marked
//! unusable.

use numa_rt_alloc::{
    current_node, node_fallback, node_stats, set_node_fallback, set_thread_node, AllocError,
    NodeBox, NodeHeap, NodeId, NodeVec, NumaAlloc,
};
use std::alloc::Layout;

#[global_allocator]
static GLOBAL: NumaAlloc = NumaAlloc;

#[test]
fn a_node_with_a_fallback_refuses_placement_and_redirects_the_global_allocator() {
    let node0 = NodeId::new(0);
    // A node number no machine here has, standing in for a node that
    // left cpuset.mems (only node 0 exists on the test machines).
    let gone = NodeId::new(900);

    // Explicit placement on an unusable node: a clean NoMemory, even
    // through a heap handle or a vector made while it was usable.
    let heap = NodeHeap::new(node0).unwrap();
    let mut v: NodeVec<u64> = NodeVec::new_on(node0).unwrap();
    v.push(1);
    let before = NodeBox::new_on(node0, 5u64).unwrap();
    set_node_fallback(node0, Some(gone)).unwrap();
    assert_eq!(node_fallback(node0), Some(gone));
    assert_eq!(
        NodeBox::new_on(node0, 7u64).err(),
        Some(AllocError::NoMemory(node0))
    );
    assert_eq!(
        heap.allocate_on(Layout::new::<u64>(), false).err(),
        Some(AllocError::NoMemory(node0))
    );
    assert_eq!(
        v.try_reserve(1 << 20).err(),
        Some(AllocError::NoMemory(node0))
    );
    assert_eq!(heap.fallback().map(|h| h.node()), Some(gone));
    assert_eq!(numa_rt_alloc::MemoryKind::Local.resolve(node0), gone);
    assert_eq!(
        NodeHeap::new(node0).err(),
        Some(AllocError::NoMemory(node0))
    );
    assert_eq!(
        AllocError::NoMemory(node0).to_string(),
        "NUMA node0 has no memory this process may use"
    );
    // What was placed before stays, untouched.
    assert_eq!(*before, 5);
    assert_eq!(&v[..], &[1]);

    // The node comes back: placement works again.
    set_node_fallback(node0, None).unwrap();
    assert_eq!(node_fallback(node0), None);
    assert_eq!(*NodeBox::new_on(node0, 9u64).unwrap(), 9);
    v.try_reserve(1 << 20).unwrap();
    assert!(heap.allocate_on(Layout::new::<u64>(), false).is_ok());

    // A thread whose node is unusable allocates from the fallback.
    set_node_fallback(gone, Some(node0)).unwrap();
    let (before0, before_gone) = (node_stats(node0), node_stats(gone));
    let (node, held) = std::thread::spawn(move || {
        set_thread_node(Some(gone));
        let held: Vec<Box<[u8; 4096]>> = (0..2000).map(|_| Box::new([3u8; 4096])).collect();
        (current_node(), held)
    })
    .join()
    .unwrap();
    assert_eq!(node, node0);
    assert_eq!(node_stats(gone).in_use_bytes, before_gone.in_use_bytes);
    assert_eq!(node_stats(gone).mapped_bytes, 0);
    assert!(node_stats(node0).mapped_bytes >= before0.mapped_bytes);
    assert!(held.iter().all(|b| b[4095] == 3));
    drop(held);
    set_node_fallback(gone, None).unwrap();

    // Bad arguments are refused.
    assert!(set_node_fallback(NodeId::new(5000), None).is_err());
    assert!(set_node_fallback(node0, Some(node0)).is_err());
}
