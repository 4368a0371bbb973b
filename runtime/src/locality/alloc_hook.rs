//! The allocator's view of the runtime's topology: which real node backs
//! each (possibly emulated) node, and which node each [`MemoryKind`] means
//! for an initiator, from the cost table.
//!
//! The allocator takes one hook per process. The runtime registers a single
//! static hook the first time one starts and swaps its tables in at every
//! start, so a later runtime (another topology in the same process) is
//! described by the hook from then on.

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
        Ok(mut t) => *t = tables,
        Err(poisoned) => *poisoned.into_inner() = tables,
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
}
