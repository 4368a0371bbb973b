//! The cost table: how expensive it is for each CPU node to reach each
//! memory or device node, computed once from a [`Topology`].
//!
//! Costs are unit-free, scaled so that the fastest local access on the
//! machine costs [`LOCAL_COST`]. With HMAT they come from the measured
//! latency (ns) and bandwidth (MiB/s) of every memory node from its local
//! initiators, stretched by the SLIT distance ratio for initiators that are
//! not local (Linux exposes HMAT values only from the best initiators).
//! Without HMAT both kinds are the SLIT distance scaled the same way.
//!
//! ```
//! use numa_rt_runtime::locality::{Bound, CostTable};
//! use numa_rt_runtime::topology::{Synthetic, Topology};
//! use numa_rt_runtime::NodeId;
//!
//! let topo = Topology::synthetic_over(
//!     &Topology::single_node("0-3".parse().unwrap(), 1 << 30),
//!     &Synthetic::new(2, 2),
//! ).unwrap();
//! let table = CostTable::new(&topo);
//! let (n0, n1) = (NodeId::new(0), NodeId::new(1));
//! assert!(table.cost(n1, n1, Bound::Latency) < table.cost(n0, n1, Bound::Latency));
//! assert_eq!(table.nearest_initiator(n1), Some(n1));
//! ```

use crate::topology::{AccessClass, Node, NodeSet, Topology};
use crate::NodeId;

/// The cost of the fastest local access on the machine.
pub const LOCAL_COST: u64 = 100;

/// Whether a use of a resource is limited by latency or by bandwidth.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Bound {
    /// Many small dependent accesses (pointer chasing, index lookups). The
    /// default.
    #[default]
    Latency,
    /// Streaming through large amounts of data.
    Bandwidth,
}

/// Where the costs of a [`CostTable`] come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CostSource {
    /// ACPI HMAT latency and bandwidth, stretched by SLIT distances.
    Hmat,
    /// SLIT distances (or the default 10 local / 20 remote).
    Distances,
}

/// Costs from every CPU node (initiator) to every node of a topology.
///
/// Built once when a runtime starts; resolving a set of targets is then a
/// few lookups and additions.
#[derive(Clone, Debug)]
pub struct CostTable {
    initiators: Vec<NodeId>,
    targets: Vec<NodeId>,
    /// `[initiator * targets.len() + target]`.
    latency: Vec<u64>,
    bandwidth: Vec<u64>,
    latency_source: CostSource,
    bandwidth_source: CostSource,
}

impl CostTable {
    /// Computes the table for `topology`. Reads no files.
    pub fn new(topology: &Topology) -> CostTable {
        let initiators: Vec<NodeId> = topology.cpu_nodes().map(|n| n.id()).collect();
        let targets: Vec<NodeId> = topology.nodes().iter().map(|n| n.id()).collect();
        let hmat = Hmat::read(topology, &targets);
        let distance = |i: NodeId, t: NodeId| u64::from(topology.distance(i, t).max(1));

        let mut latency = Vec::with_capacity(initiators.len() * targets.len());
        let mut bandwidth = Vec::with_capacity(initiators.len() * targets.len());
        for &i in &initiators {
            for (ti, &t) in targets.iter().enumerate() {
                let stretch_num = distance(i, t);
                let stretch_den = hmat.best_distance[ti].unwrap_or(stretch_num);
                latency.push(match &hmat.latency {
                    Some(v) => v[ti] * stretch_num / stretch_den,
                    None => stretch_num,
                });
                bandwidth.push(match &hmat.bandwidth {
                    // Inverse bandwidth: a slower path costs more.
                    Some(v) => (hmat.max_bandwidth * stretch_num / (v[ti] * stretch_den)).max(1),
                    None => stretch_num,
                });
            }
        }
        let mut table = CostTable {
            initiators,
            targets,
            latency,
            bandwidth,
            latency_source: source(hmat.latency.is_some()),
            bandwidth_source: source(hmat.bandwidth.is_some()),
        };
        table.latency = normalize(&table.latency, hmat.latency.is_some());
        table.bandwidth = normalize(&table.bandwidth, hmat.bandwidth.is_some());
        table.prefer_local_initiators(&hmat.initiators);
        table
    }

    /// HMAT names the best initiators of each memory node even when it
    /// gives no values (or SLIT ties them with others): every other CPU
    /// node is made to cost more than the best of them.
    fn prefer_local_initiators(&mut self, initiators: &[NodeSet]) {
        let n_targets = self.targets.len();
        for (t, best_set) in initiators.iter().enumerate() {
            let best_rows: Vec<usize> = best_set
                .nodes()
                .filter_map(|n| self.initiator_index(n))
                .collect();
            if best_rows.is_empty() {
                continue;
            }
            for costs in [&mut self.latency, &mut self.bandwidth] {
                let Some(best) = best_rows.iter().map(|&i| costs[i * n_targets + t]).min() else {
                    continue;
                };
                for i in 0..self.initiators.len() {
                    if !best_rows.contains(&i) {
                        let c = &mut costs[i * n_targets + t];
                        *c = (*c).max(best + 1);
                    }
                }
            }
        }
    }

    /// The CPU nodes that can run tasks, in increasing id order.
    pub fn initiators(&self) -> &[NodeId] {
        &self.initiators
    }

    /// Where the costs of `bound` come from.
    pub fn source(&self, bound: Bound) -> CostSource {
        match bound {
            Bound::Latency => self.latency_source,
            Bound::Bandwidth => self.bandwidth_source,
        }
    }

    /// The cost for CPU node `from` to use node `to`, or `None` when `from`
    /// has no CPUs or `to` is not in the topology.
    pub fn cost(&self, from: NodeId, to: NodeId, bound: Bound) -> Option<u64> {
        let i = self.initiator_index(from)?;
        let t = self.target_index(to)?;
        Some(self.cost_at(i, t, bound))
    }

    /// The CPU node that reaches `node` at the lowest latency cost (ties go
    /// to the lower id); `node` itself when it has CPUs.
    pub fn nearest_initiator(&self, node: NodeId) -> Option<NodeId> {
        let t = self.target_index(node)?;
        (0..self.initiators.len())
            .min_by_key(|&i| (self.cost_at(i, t, Bound::Latency), self.initiators[i]))
            .map(|i| self.initiators[i])
    }

    pub(crate) fn initiator_index(&self, node: NodeId) -> Option<usize> {
        self.initiators.binary_search(&node).ok()
    }

    pub(crate) fn target_index(&self, node: NodeId) -> Option<usize> {
        self.targets.binary_search(&node).ok()
    }

    pub(crate) fn cost_at(&self, initiator: usize, target: usize, bound: Bound) -> u64 {
        let at = initiator * self.targets.len() + target;
        match bound {
            Bound::Latency => self.latency[at],
            Bound::Bandwidth => self.bandwidth[at],
        }
    }
}

fn source(hmat: bool) -> CostSource {
    if hmat {
        CostSource::Hmat
    } else {
        CostSource::Distances
    }
}

/// Scales raw costs so that the smallest is [`LOCAL_COST`]. SLIT distances
/// are already relative to a local 10, so they are scaled by that instead
/// (a matrix whose diagonal is not 10 keeps its ratios to 10).
fn normalize(raw: &[u64], hmat: bool) -> Vec<u64> {
    let base = if hmat {
        raw.iter().copied().min().unwrap_or(1).max(1)
    } else {
        u64::from(crate::topology::LOCAL_DISTANCE)
    };
    raw.iter()
        .map(|&c| (c * LOCAL_COST).div_ceil(base).max(1))
        .collect()
}

/// HMAT values per target node, present only when every node has them (a
/// table must not mix nanoseconds with distances).
struct Hmat {
    latency: Option<Vec<u64>>,
    bandwidth: Option<Vec<u64>>,
    max_bandwidth: u64,
    /// The SLIT distance from a node's local initiators to it, used to
    /// stretch its HMAT values for the other initiators.
    best_distance: Vec<Option<u64>>,
    /// Each node's local initiators (empty when HMAT does not say).
    initiators: Vec<NodeSet>,
}

impl Hmat {
    fn read(topology: &Topology, targets: &[NodeId]) -> Hmat {
        let mut latency = Vec::with_capacity(targets.len());
        let mut bandwidth = Vec::with_capacity(targets.len());
        let mut best_distance = Vec::with_capacity(targets.len());
        let mut all_initiators = Vec::with_capacity(targets.len());
        for &t in targets {
            let node = topology.node(t);
            let access = node.and_then(|n| {
                n.access(AccessClass::Cpu)
                    .or_else(|| n.access(AccessClass::All))
            });
            latency.push(access.and_then(|a| a.latency_ns()).filter(|&v| v > 0));
            bandwidth.push(access.and_then(|a| a.bandwidth_mibs()).filter(|&v| v > 0));
            let initiators = node
                .map(|n| local_initiators(topology, n))
                .unwrap_or_default();
            best_distance.push(
                initiators
                    .nodes()
                    .map(|i| u64::from(topology.distance(i, t).max(1)))
                    .min(),
            );
            all_initiators.push(initiators);
        }
        let latency: Option<Vec<u64>> = latency.into_iter().collect();
        let bandwidth: Option<Vec<u64>> = bandwidth.into_iter().collect();
        let max_bandwidth = bandwidth
            .as_ref()
            .and_then(|b| b.iter().copied().max())
            .unwrap_or(1);
        Hmat {
            latency,
            bandwidth,
            max_bandwidth,
            best_distance,
            initiators: all_initiators,
        }
    }
}

/// The usable CPU nodes that HMAT names as best initiators of `node`. When
/// the named initiators are not usable nodes themselves (generic initiators,
/// or nodes outside the cpuset), the CPU nodes holding the node's local
/// CPUs stand in for them; a node with CPUs is its own initiator.
fn local_initiators(topology: &Topology, node: &Node) -> NodeSet {
    if node.has_cpus() {
        return std::iter::once(node.id()).collect();
    }
    let named: NodeSet = node
        .local_initiators()
        .nodes()
        .filter(|&n| topology.node(n).is_some_and(|n| n.has_cpus()))
        .collect();
    if !named.is_empty() || node.local_initiators().is_empty() {
        return named;
    }
    topology
        .cpu_nodes()
        .filter(|c| c.cpus().intersects(node.local_cpus()))
        .map(|c| c.id())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Synthetic;

    #[test]
    fn slit_costs_follow_distances() {
        let spec = Synthetic::new(3, 1)
            .with_distances(&[vec![10, 20, 30], vec![20, 10, 15], vec![30, 15, 10]])
            .unwrap();
        let topo = Topology::synthetic_over(
            &Topology::single_node("0-2".parse().unwrap(), 1 << 30),
            &spec,
        )
        .unwrap();
        let t = CostTable::new(&topo);
        let n = NodeId::new;
        assert_eq!(t.source(Bound::Latency), CostSource::Distances);
        assert_eq!(t.cost(n(0), n(0), Bound::Latency), Some(LOCAL_COST));
        assert_eq!(t.cost(n(2), n(1), Bound::Latency), Some(150));
        assert_eq!(t.cost(n(0), n(2), Bound::Bandwidth), Some(300));
        assert_eq!(t.cost(n(0), n(7), Bound::Latency), None);
        assert_eq!(t.nearest_initiator(n(2)), Some(n(2)));
    }

    #[test]
    fn single_node_has_one_initiator() {
        let topo = Topology::single_node("0-1".parse().unwrap(), 1 << 30);
        let t = CostTable::new(&topo);
        assert_eq!(t.initiators(), &[NodeId::new(0)]);
        assert_eq!(t.nearest_initiator(NodeId::new(0)), Some(NodeId::new(0)));
    }
}
