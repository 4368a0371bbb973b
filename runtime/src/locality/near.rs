//! Memory placed relative to a target: `NodeBox::new_near(&nic, v)` puts
//! `v` on the memory node nearest the node that `nic` resolves to.

use numa_rt_alloc::{NodeBox, NodeVec};

use crate::runtime::context;
use crate::runtime::Handle;
use crate::topology::Topology;
use crate::NodeId;

use super::cost::{Bound, CostTable};
use super::target::Target;
use super::PlacementError;

/// The memory node nearest to where `target` places work, on `topology`:
/// the lowest-latency node holding memory from the target's home CPU node.
///
/// ```
/// use numa_rt_runtime::locality::memory_node_near;
/// use numa_rt_runtime::topology::Topology;
/// use numa_rt_runtime::NodeId;
///
/// let topo = Topology::single_node("0-1".parse().unwrap(), 1 << 30);
/// assert_eq!(memory_node_near(&NodeId::new(0), &topo).unwrap(), NodeId::new(0));
/// ```
pub fn memory_node_near<T: Target + ?Sized>(
    target: &T,
    topology: &Topology,
) -> Result<NodeId, PlacementError> {
    near_in(target, topology, &CostTable::new(topology))
}

fn near_in<T: Target + ?Sized>(
    target: &T,
    topology: &Topology,
    table: &CostTable,
) -> Result<NodeId, PlacementError> {
    let home = target.placement_in(topology, table)?.home;
    topology
        .nodes()
        .iter()
        .filter(|n| n.memory_bytes() > 0)
        .filter_map(|n| Some((table.cost(home, n.id(), Bound::Latency)?, n.id())))
        .min()
        .map(|(_, node)| node)
        .ok_or_else(|| PlacementError::new(format!("no node with memory is reachable from {home}")))
}

/// The memory node near `target` for the current runtime (its cost table),
/// or for the live machine outside a runtime.
fn current_near<T: Target + ?Sized>(target: &T) -> Result<NodeId, PlacementError> {
    let inside = context::with_worker(|w| {
        w.map(|w| {
            let shared = w.shared();
            near_in(target, &shared.topology, &shared.cost)
        })
    });
    if let Some(result) = inside {
        return result;
    }
    match Handle::try_current() {
        Ok(handle) => memory_node_near(target, handle.topology()),
        Err(_) => {
            let topology = Topology::load().map_err(|e| {
                PlacementError::new(format!("cannot read the topology to place memory: {e}"))
            })?;
            memory_node_near(target, &topology)
        }
    }
}

/// Relative placement for [`NodeBox`]: memory next to a device, a socket or
/// other data.
pub trait NodeBoxNear<T>: Sized {
    /// Places `value` on the memory node nearest to where `target` lives.
    fn new_near<R: Target + ?Sized>(target: &R, value: T) -> Result<Self, PlacementError>;
}

impl<T> NodeBoxNear<T> for NodeBox<T> {
    fn new_near<R: Target + ?Sized>(target: &R, value: T) -> Result<NodeBox<T>, PlacementError> {
        let node = current_near(target)?;
        NodeBox::new_on(node, value)
            .map_err(|e| PlacementError::new(format!("cannot place memory on {node}: {e}")))
    }
}

/// Relative placement for [`NodeVec`].
pub trait NodeVecNear<T>: Sized {
    /// An empty vector with room for `capacity` elements on the memory
    /// node nearest to where `target` lives.
    fn with_capacity_near<R: Target + ?Sized>(
        target: &R,
        capacity: usize,
    ) -> Result<Self, PlacementError>;
}

impl<T> NodeVecNear<T> for NodeVec<T> {
    fn with_capacity_near<R: Target + ?Sized>(
        target: &R,
        capacity: usize,
    ) -> Result<NodeVec<T>, PlacementError> {
        let node = current_near(target)?;
        NodeVec::with_capacity_on(node, capacity)
            .map_err(|e| PlacementError::new(format!("cannot place memory on {node}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Synthetic;

    #[test]
    fn near_follows_the_target() {
        let topo = Topology::synthetic_over(
            &Topology::single_node("0-1".parse().unwrap(), 1 << 30),
            &Synthetic::new(2, 1),
        )
        .unwrap();
        let table = CostTable::new(&topo);
        super::super::alloc_hook::install(&topo, &table);
        let n1 = NodeId::new(1);
        assert_eq!(near_in(&n1, &topo, &table).unwrap(), n1);
        let data: NodeVec<u8> = NodeVec::with_capacity_on(n1, 8).unwrap();
        assert_eq!(near_in(&data, &topo, &table).unwrap(), n1);
        assert!(near_in(&NodeId::new(5), &topo, &table).is_err());
    }
}
