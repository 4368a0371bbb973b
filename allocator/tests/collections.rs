//! Ordinary collections placed in one node's memory through `NodeHeap`
//! (the `allocator_api2::Allocator` interface), without a global allocator.

use numa_rt_alloc::{node_stats, NodeHeap, NodeId};

#[test]
fn vec_and_hash_map_live_in_a_node_heap() {
    let node = NodeId::new(0);
    let heap = NodeHeap::new(node).expect("node 0 has memory");
    let before = node_stats(node).in_use_bytes;

    let mut vec = allocator_api2::vec::Vec::new_in(heap);
    vec.extend(0u64..10_000);
    let mut map = hashbrown::HashMap::new_in(heap);
    for i in 0u64..10_000 {
        map.insert(i, i * 2);
    }
    let during = node_stats(node).in_use_bytes;
    // 80 KB of vector plus the map's table (> 160 KB of entries).
    assert!(
        during >= before + 200_000,
        "node 0 in use: {before} before, {during} with the collections"
    );
    assert_eq!(vec.iter().sum::<u64>(), (0..10_000).sum());
    assert_eq!(map.get(&1234), Some(&2468));

    drop(vec);
    drop(map);
    let after = node_stats(node).in_use_bytes;
    assert!(
        after < during,
        "node 0 in use: {during} with the collections, {after} after"
    );
}
