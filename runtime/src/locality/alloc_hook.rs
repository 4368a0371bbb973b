//! The allocator's view of the runtime's topology: which real node backs
//! each (possibly emulated) node, and which node each [`MemoryKind`] means
//! for an initiator, from the cost table.
//!
//! The allocator takes one hook per process. The runtime registers a single
//! static hook the first time one starts and merges its tables in at every
//! start: a later runtime's answers replace those for the nodes it knows,
//! and nodes only an earlier runtime knew keep theirs. So a runtime on two
//! emulated nodes and one on the real single node can run side by side
//! (emulated node 1 stays backed by real node 0). What one hook cannot do
//! is give two live runtimes different answers for the same node id (two
//! synthetic topologies that back node 1 by different real nodes): the
//! runtime started last wins for that node.

use std::sync::{RwLock, RwLockReadGuard};

use numa_rt_alloc::{MemoryKind, PlacementHook};

use crate::topology::Topology;
use crate::NodeId;

use super::cost::{Bound, CostTable};

/// What the hook answers from, computed once per runtime start.
#[derive(Debug, Default)]
struct Tables {
    /// `(node, real node backing it)`.
    memory_nodes: Vec<(NodeId, NodeId)>,
    /// `(initiator, lowest latency, highest bandwidth, capacity)`.
    kinds: Vec<(NodeId, NodeId, NodeId, Option<NodeId>)>,
}

impl Tables {
    /// Takes `newer`'s entries, keeping this table's for nodes `newer`
    /// does not describe.
    fn merge(&mut self, newer: Tables) {
        self.memory_nodes
            .retain(|(n, _)| !newer.memory_nodes.iter().any(|(m, _)| m == n));
        self.memory_nodes.extend(newer.memory_nodes);
        self.kinds
            .retain(|(i, ..)| !newer.kinds.iter().any(|(j, ..)| j == i));
        self.kinds.extend(newer.kinds);
    }

    fn new(topology: &Topology, table: &CostTable) -> Tables {
        let memory_nodes = topology
            .nodes()
            .iter()
            .map(|n| (n.id(), n.memory_node()))
            .collect();
        let with_memory: Vec<NodeId> = topology
            .nodes()
            .iter()
            .filter(|n| n.memory_bytes() > 0)
            .map(|n| n.id())
            .collect();
        let cheapest = |from: NodeId, bound: Bound, only_cpuless: bool| {
            with_memory
                .iter()
                .copied()
                .filter(|&t| !only_cpuless || table.initiator_index(t).is_none())
                .filter_map(|t| Some((table.cost(from, t, bound)?, t)))
                .min()
                .map(|(_, t)| t)
        };
        let kinds = table
            .initiators()
            .iter()
            .map(|&i| {
                (
                    i,
                    cheapest(i, Bound::Latency, false).unwrap_or(i),
                    cheapest(i, Bound::Bandwidth, false).unwrap_or(i),
                    cheapest(i, Bound::Latency, true),
                )
            })
            .collect();
        Tables {
            memory_nodes,
            kinds,
        }
    }
}

struct RuntimeHook {
    tables: RwLock<Tables>,
}

impl RuntimeHook {
    fn tables(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl PlacementHook for RuntimeHook {
    fn resolve(&self, kind: MemoryKind, initiator: NodeId) -> Option<NodeId> {
        let tables = self.tables();
        let &(_, latency, bandwidth, capacity) =
            tables.kinds.iter().find(|(i, ..)| *i == initiator)?;
        match kind {
            MemoryKind::Local => Some(initiator),
            MemoryKind::LowestLatency => Some(latency),
            MemoryKind::HighestBandwidth => Some(bandwidth),
            MemoryKind::Capacity => capacity,
        }
    }

    fn memory_node(&self, node: NodeId) -> NodeId {
        self.tables()
            .memory_nodes
            .iter()
            .find(|(n, _)| *n == node)
            .map_or(node, |&(_, real)| real)
    }
}

static HOOK: RuntimeHook = RuntimeHook {
    tables: RwLock::new(Tables {
        memory_nodes: Vec::new(),
        kinds: Vec::new(),
    }),
};

/// Describes `topology` to the allocator: registers the runtime's hook the
/// first time, then updates its tables. A hook registered by someone else
/// first is left in place (the allocator then keeps its answers).
pub(crate) fn install(topology: &Topology, table: &CostTable) {
    let tables = Tables::new(topology, table);
    match HOOK.tables.write() {
        Ok(mut t) => t.merge(tables),
        Err(poisoned) => poisoned.into_inner().merge(tables),
    }
    // Err means a hook is already set: ours from an earlier runtime (now
    // updated above) or the application's own, which wins.
    let _ = numa_rt_alloc::set_placement_hook(&HOOK);
}

/// Tells the allocator that the calling worker thread serves `node`.
pub(crate) fn enter_worker(node: NodeId) {
    numa_rt_alloc::set_thread_node(Some(node));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Synthetic;

    #[test]
    fn emulated_nodes_map_to_the_real_one() {
        let topo = Topology::synthetic_over(
            &Topology::single_node("0-1".parse().unwrap(), 1 << 30),
            &Synthetic::new(2, 1),
        )
        .unwrap();
        let tables = Tables::new(&topo, &CostTable::new(&topo));
        assert_eq!(
            tables.memory_nodes,
            vec![
                (NodeId::new(0), NodeId::new(0)),
                (NodeId::new(1), NodeId::new(0))
            ]
        );
        // Each node's lowest-latency memory is its own; there is no
        // capacity tier.
        assert_eq!(
            tables.kinds[1],
            (NodeId::new(1), NodeId::new(1), NodeId::new(1), None)
        );
    }

    #[test]
    fn a_later_runtime_keeps_the_nodes_only_an_earlier_one_knew() {
        let base = Topology::single_node("0-1".parse().unwrap(), 1 << 30);
        let two = Topology::synthetic_over(&base, &Synthetic::new(2, 1)).unwrap();
        let mut tables = Tables::new(&two, &CostTable::new(&two));
        tables.merge(Tables::new(&base, &CostTable::new(&base)));
        let mut nodes = tables.memory_nodes.clone();
        nodes.sort();
        assert_eq!(
            nodes,
            vec![
                (NodeId::new(0), NodeId::new(0)),
                (NodeId::new(1), NodeId::new(0))
            ]
        );
        assert_eq!(tables.kinds.len(), 2);
        // The newer runtime's answer wins for a node both describe.
        let mut newer = Tables::new(&base, &CostTable::new(&base));
        newer.memory_nodes = vec![(NodeId::new(1), NodeId::new(1))];
        tables.merge(newer);
        assert!(tables
            .memory_nodes
            .contains(&(NodeId::new(1), NodeId::new(1))));
        assert_eq!(tables.memory_nodes.len(), 2);
    }
}
