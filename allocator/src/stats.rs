//! Per-node memory statistics.

use crate::heap::Heap;
use crate::os::linux_max_nodes;
use crate::NodeId;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counters {
    mapped: AtomicU64,
    huge: AtomicU64,
    large_in_use: AtomicU64,
    cross_node_frees: AtomicU64,
}

impl Counters {
    const fn new() -> Counters {
        Counters {
            mapped: AtomicU64::new(0),
            huge: AtomicU64::new(0),
            large_in_use: AtomicU64::new(0),
            cross_node_frees: AtomicU64::new(0),
        }
    }
}

static COUNTERS: [Counters; linux_max_nodes()] = [const { Counters::new() }; linux_max_nodes()];

fn counters(node: NodeId) -> Option<&'static Counters> {
    COUNTERS.get(node.index() as usize)
}

pub(crate) fn add_mapped(node: NodeId, bytes: usize, huge: bool) {
    if let Some(c) = counters(node) {
        c.mapped.fetch_add(bytes as u64, Ordering::Relaxed);
        if huge {
            c.huge.fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }
}

pub(crate) fn sub_mapped(node: NodeId, bytes: usize, huge: bool) {
    if let Some(c) = counters(node) {
        c.mapped.fetch_sub(bytes as u64, Ordering::Relaxed);
        if huge {
            c.huge.fetch_sub(bytes as u64, Ordering::Relaxed);
        }
    }
}

pub(crate) fn add_large(node: NodeId, bytes: usize) {
    if let Some(c) = counters(node) {
        c.large_in_use.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

pub(crate) fn sub_large(node: NodeId, bytes: usize) {
    if let Some(c) = counters(node) {
        c.large_in_use.fetch_sub(bytes as u64, Ordering::Relaxed);
    }
}

pub(crate) fn add_cross_node_free(node: NodeId) {
    if let Some(c) = counters(node) {
        c.cross_node_frees.fetch_add(1, Ordering::Relaxed);
    }
}

/// Memory statistics of one node, as seen by this process's allocator.
///
/// ```
/// let s = numa_rt_alloc::node_stats(numa_rt_alloc::NodeId::new(0));
/// assert!(s.in_use_bytes <= s.mapped_bytes);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// The node.
    pub node: NodeId,
    /// Bytes mapped for the node: segments and large blocks.
    pub mapped_bytes: u64,
    /// Bytes in blocks handed out and not yet freed (small blocks count
    /// their size class; blocks freed by another thread count until their
    /// owner collects them).
    pub in_use_bytes: u64,
    /// Bytes of those mappings backed by huge pages: explicit 2 MiB pages
    /// (`MAP_HUGETLB`) or ranges advised for transparent huge pages.
    pub huge_page_bytes: u64,
    /// Blocks freed by a thread other than the one that allocated them
    /// (counted when the owner collects them).
    pub remote_frees: u64,
    /// Blocks of this node freed by a thread running on another node.
    pub cross_node_frees: u64,
}

/// Statistics of `node`.
pub fn node_stats(node: NodeId) -> NodeStats {
    let mut s = NodeStats {
        node,
        ..NodeStats::default()
    };
    if let Some(c) = counters(node) {
        s.mapped_bytes = c.mapped.load(Ordering::Relaxed);
        s.huge_page_bytes = c.huge.load(Ordering::Relaxed);
        s.in_use_bytes = c.large_in_use.load(Ordering::Relaxed);
        s.cross_node_frees = c.cross_node_frees.load(Ordering::Relaxed);
    }
    Heap::for_each(|h| {
        if h.node == node {
            s.in_use_bytes += h.in_use_bytes();
            s.remote_frees += h.remote_frees();
        }
    });
    s
}

/// Statistics of every node this process has mapped memory for.
pub fn all_stats() -> Vec<NodeStats> {
    (0..linux_max_nodes())
        .filter(|&i| COUNTERS[i].mapped.load(Ordering::Relaxed) != 0)
        .map(|i| node_stats(NodeId::new(i as u32)))
        .collect()
}
