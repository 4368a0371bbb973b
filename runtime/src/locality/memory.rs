//! Memory as a target: node-placed boxes and vectors report their node;
//! any other memory is asked of the kernel once, by a sample of its pages.

use std::sync::OnceLock;

use numa_rt_alloc::{os, NodeBox, NodeVec};

use crate::topology::Topology;
use crate::NodeId;

use super::target::{Target, Targets};
use super::PlacementError;

impl<T> Target for NodeBox<T> {
    /// The node the value was placed on.
    fn add_to(&self, targets: &mut Targets, _topology: &Topology) -> Result<(), PlacementError> {
        targets.add_node(self.node());
        Ok(())
    }
}

impl<T> Target for NodeVec<T> {
    /// The node the vector's memory was placed on.
    fn add_to(&self, targets: &mut Targets, _topology: &Topology) -> Result<(), PlacementError> {
        targets.add_node(self.node());
        Ok(())
    }
}

/// How many pages of a region are asked about at most.
const SAMPLE_PAGES: usize = 64;

/// A borrowed memory region whose nodes are asked of the kernel
/// (`move_pages`) on a sample of at most 64 pages, the first time it is
/// placed; the answer is cached in the region.
///
/// Pages not yet touched have no node and are not counted; a region with
/// no resident page adds nothing. Under a synthetic topology the kernel's
/// real node is reported as the emulated nodes it backs, in equal shares.
///
/// ```
/// use numa_rt_runtime::locality::{MemoryRegion, Target};
/// use numa_rt_runtime::topology::Topology;
///
/// let data = vec![1u8; 1 << 20];
/// let region = MemoryRegion::new(&data);
/// let topo = Topology::single_node("0".parse().unwrap(), 1 << 30);
/// assert_eq!(region.placement(&topo).unwrap().home.index(), 0);
/// ```
#[derive(Debug)]
pub struct MemoryRegion<'a, T> {
    data: &'a [T],
    nodes: OnceLock<Result<Vec<(NodeId, usize)>, PlacementError>>,
}

impl<'a, T> MemoryRegion<'a, T> {
    /// A region covering `data`.
    pub fn new(data: &'a [T]) -> MemoryRegion<'a, T> {
        MemoryRegion {
            data,
            nodes: OnceLock::new(),
        }
    }

    /// The real (kernel) nodes holding the sampled resident pages, with the
    /// number of sampled pages on each; asked once and cached.
    pub fn resident_nodes(&self) -> Result<&[(NodeId, usize)], PlacementError> {
        self.nodes
            .get_or_init(|| sample(self.data.as_ptr().cast(), std::mem::size_of_val(self.data)))
            .as_ref()
            .map(|v| v.as_slice())
            .map_err(Clone::clone)
    }
}

impl<T> Target for MemoryRegion<'_, T> {
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError> {
        let resident = self.resident_nodes()?;
        let total: usize = resident.iter().map(|&(_, n)| n).sum();
        for &(real, pages) in resident {
            let backed: Vec<NodeId> = topology
                .nodes()
                .iter()
                .filter(|n| n.memory_node() == real)
                .map(|n| n.id())
                .collect();
            let share = backed.len().max(1) * total;
            for node in backed {
                targets.add_node_share(node, pages as u64, share as u64);
            }
        }
        Ok(())
    }
}

/// Asks the kernel where an evenly spaced sample of the pages of
/// `ptr..ptr+len` are.
fn sample(ptr: *const u8, len: usize) -> Result<Vec<(NodeId, usize)>, PlacementError> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let page = os::page_size();
    let first = (ptr as usize) & !(page - 1);
    let last = (ptr as usize + len - 1) & !(page - 1);
    let count = (last - first) / page + 1;
    let taken = count.min(SAMPLE_PAGES);
    let pages: Vec<*mut u8> = (0..taken)
        .map(|k| (first + (k * count / taken) * page) as *mut u8)
        .collect();
    let mut status = vec![0i32; taken];
    // SAFETY: every sampled address lies in a page of `ptr..ptr+len`, which
    // is borrowed (so mapped) for the duration of this call; with no target
    // nodes move_pages only reports where the pages are and moves nothing.
    let result = unsafe { os::system().move_pages(&pages, None, &mut status) };
    match result {
        Ok(()) => {}
        // A kernel without NUMA support (or a seccomp filter) refuses the
        // call: the memory is then on the only node there is.
        Err(_) if os::single_node_machine() => return Ok(vec![(NodeId::new(0), taken)]),
        Err(e) => {
            return Err(PlacementError::new(format!(
                "cannot ask the kernel where a memory region is: {e}"
            )))
        }
    }
    let mut out: Vec<(NodeId, usize)> = Vec::new();
    for &s in &status {
        if s < 0 {
            continue; // not resident yet, or not movable
        }
        let node = NodeId::new(s as u32);
        match out.iter_mut().find(|(n, _)| *n == node) {
            Some(entry) => entry.1 += 1,
            None => out.push((node, 1)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Synthetic;

    #[test]
    fn region_pages_are_on_node_zero_here() {
        let data = vec![7u8; 4 << 20];
        let region = MemoryRegion::new(&data);
        let nodes = region.resident_nodes().unwrap();
        let sampled: usize = nodes.iter().map(|&(_, n)| n).sum();
        assert_eq!(sampled, SAMPLE_PAGES);
        assert!(nodes.iter().all(|&(n, _)| n == NodeId::new(0)));
        // Cached: the same slice comes back.
        assert!(std::ptr::eq(nodes, region.resident_nodes().unwrap()));
    }

    #[test]
    fn node_vec_pulls_to_its_node() {
        let topo = Topology::synthetic_over(
            &Topology::single_node("0-1".parse().unwrap(), 1 << 30),
            &Synthetic::new(2, 1),
        )
        .unwrap();
        // Tell the allocator that emulated node 1 is backed by node 0.
        let table = crate::locality::CostTable::new(&topo);
        crate::locality::alloc_hook::install(&topo, &table);
        let v: NodeVec<u32> = NodeVec::new_on(NodeId::new(1)).unwrap();
        let p = v.placement(&topo).unwrap();
        assert_eq!(p.home, NodeId::new(1));
    }
}
