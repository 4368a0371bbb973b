//! The [`Target`] trait and the [`Targets`] accumulator a resource reports
//! its nodes into.

use crate::topology::{CpuSet, NodeSet, Topology};
use crate::NodeId;

use super::cost::{Bound, CostTable};
use super::{Placement, PlacementError, Policy};

/// The weight of one target of weight 1. Sets of nodes split it between
/// their members, so the unit is large enough to divide.
pub const WEIGHT_UNIT: u64 = 1 << 10;

/// Something that says where work using it should run.
///
/// A resource reports the nodes it lives on into a [`Targets`] accumulator
/// ([`add_to`](Target::add_to)); the runtime resolves the whole set to one
/// home node through its [`CostTable`]. Combine targets with tuples, slices
/// and `#[derive(Target)]`; weigh them with [`Weighted`], mark them
/// bandwidth-bound with [`Bandwidth`] and strict with
/// [`Strict`](super::Strict).
///
/// ```
/// use numa_rt_runtime::locality::{Target, Targets, Weighted};
/// use numa_rt_runtime::topology::{Synthetic, Topology};
/// use numa_rt_runtime::NodeId;
///
/// let topo = Topology::synthetic_over(
///     &Topology::single_node("0-3".parse().unwrap(), 1 << 30),
///     &Synthetic::new(2, 2),
/// ).unwrap();
/// // One use of node 0's data, three of node 1's: run on node 1.
/// let both = (NodeId::new(0), Weighted(NodeId::new(1), 3));
/// assert_eq!(both.placement(&topo).unwrap().home, NodeId::new(1));
/// ```
pub trait Target {
    /// Adds the nodes this resource lives on to `targets`.
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError>;

    /// The placement for this target on `topology`, computing a cost table
    /// for it. Inside a runtime, which keeps its table from start-up, the
    /// runtime calls [`placement_in`](Target::placement_in) instead.
    fn placement(&self, topology: &Topology) -> Result<Placement, PlacementError> {
        self.placement_in(topology, &CostTable::new(topology))
    }

    /// The placement for this target using a cost table built for
    /// `topology`.
    fn placement_in(
        &self,
        topology: &Topology,
        table: &CostTable,
    ) -> Result<Placement, PlacementError> {
        let mut targets = Targets::new();
        self.add_to(&mut targets, topology)?;
        targets.resolve(table)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    node: NodeId,
    weight: u64,
    bound: Bound,
}

/// The nodes a set of resources lives on, with weights, bounds and a
/// policy; resolved to a [`Placement`] by [`resolve`](Targets::resolve).
#[derive(Clone, Debug)]
pub struct Targets {
    entries: Vec<Entry>,
    scale: u64,
    bound: Bound,
    policy: Policy,
}

impl Default for Targets {
    fn default() -> Targets {
        Targets::new()
    }
}

impl Targets {
    /// An empty set: weight 1, latency-bound, [`Policy::Preferred`].
    pub fn new() -> Targets {
        Targets {
            entries: Vec::new(),
            scale: WEIGHT_UNIT,
            bound: Bound::Latency,
            policy: Policy::Preferred,
        }
    }

    /// Records a use of `node` with the current weight and bound.
    pub fn add_node(&mut self, node: NodeId) {
        self.add_node_share(node, 1, 1);
    }

    /// Records `num / den` of a use of `node` (how a resource spread over
    /// several nodes reports each of them).
    pub fn add_node_share(&mut self, node: NodeId, num: u64, den: u64) {
        let weight = self.scale.saturating_mul(num) / den.max(1);
        if weight == 0 {
            return;
        }
        let bound = self.bound;
        match self
            .entries
            .iter_mut()
            .find(|e| e.node == node && e.bound == bound)
        {
            Some(e) => e.weight = e.weight.saturating_add(weight),
            None => self.entries.push(Entry {
                node,
                weight,
                bound,
            }),
        }
    }

    /// Adds `target` with its weight multiplied by `weight`.
    pub fn add_weighted<T: Target + ?Sized>(
        &mut self,
        target: &T,
        weight: u64,
        topology: &Topology,
    ) -> Result<(), PlacementError> {
        let saved = self.scale;
        self.scale = saved.saturating_mul(weight);
        let result = target.add_to(self, topology);
        self.scale = saved;
        result
    }

    /// Adds `target` as a use bounded by `bound`.
    pub fn add_bound<T: Target + ?Sized>(
        &mut self,
        target: &T,
        bound: Bound,
        topology: &Topology,
    ) -> Result<(), PlacementError> {
        let saved = self.bound;
        self.bound = bound;
        let result = target.add_to(self, topology);
        self.bound = saved;
        result
    }

    /// Makes the whole set strict: its task never leaves the chosen nodes.
    pub fn set_strict(&mut self) {
        self.policy = Policy::Strict;
    }

    /// The policy so far.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The node whose CPUs reach the whole set at the lowest total cost
    /// (weight times cost, summed; ties go to the lower id). The allowed
    /// nodes are the home and every CPU node named in the set.
    pub fn resolve(&self, table: &CostTable) -> Result<Placement, PlacementError> {
        if self.entries.is_empty() {
            return Err(PlacementError::no_targets());
        }
        let mut indices = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let t = table.target_index(e.node).ok_or_else(|| {
                PlacementError::new(format!("node {} is not in this runtime's topology", e.node))
            })?;
            indices.push(t);
        }
        let initiators = table.initiators();
        let home = (0..initiators.len())
            .min_by_key(|&i| {
                let total = self
                    .entries
                    .iter()
                    .zip(&indices)
                    .fold(0u64, |sum, (e, &t)| {
                        sum.saturating_add(e.weight.saturating_mul(table.cost_at(i, t, e.bound)))
                    });
                (total, initiators[i])
            })
            .map(|i| initiators[i])
            .ok_or_else(|| PlacementError::new("the topology has no node with CPUs"))?;
        let mut allowed: NodeSet = std::iter::once(home).collect();
        for e in &self.entries {
            if table.initiator_index(e.node).is_some() {
                allowed.insert(e.node.index());
            }
        }
        Ok(Placement {
            home,
            allowed,
            policy: self.policy,
        })
    }
}

/// A target with its weight multiplied: `Weighted(x, 3)` counts as three
/// uses of `x`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weighted<T>(pub T, pub u64);

impl<T: Target> Target for Weighted<T> {
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError> {
        targets.add_weighted(&self.0, self.1, topology)
    }
}

/// A target used for streaming: placed by bandwidth, not latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bandwidth<T>(pub T);

impl<T: Target> Target for Bandwidth<T> {
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError> {
        targets.add_bound(&self.0, Bound::Bandwidth, topology)
    }
}

impl Target for NodeId {
    fn add_to(&self, targets: &mut Targets, _topology: &Topology) -> Result<(), PlacementError> {
        targets.add_node(*self);
        Ok(())
    }

    /// A node with CPUs is its own home; a memory-only node resolves to its
    /// nearest CPU node.
    fn placement(&self, topology: &Topology) -> Result<Placement, PlacementError> {
        match topology.node(*self) {
            Some(node) if node.has_cpus() => Ok(Placement::new(*self)),
            _ => self.placement_in(topology, &CostTable::new(topology)),
        }
    }

    fn placement_in(
        &self,
        topology: &Topology,
        table: &CostTable,
    ) -> Result<Placement, PlacementError> {
        match table.initiator_index(*self) {
            Some(_) => Ok(Placement::new(*self)),
            None => {
                let mut targets = Targets::new();
                self.add_to(&mut targets, topology)?;
                targets.resolve(table)
            }
        }
    }
}

impl Target for NodeSet {
    /// Each node of the set gets an equal share of one use.
    fn add_to(&self, targets: &mut Targets, _topology: &Topology) -> Result<(), PlacementError> {
        let n = self.len() as u64;
        if n == 0 {
            return Err(PlacementError::new(
                "cannot place a task on an empty node set",
            ));
        }
        for node in self.nodes() {
            targets.add_node_share(node, 1, n);
        }
        Ok(())
    }

    /// Home on the first node of the set that has CPUs (else the nearest
    /// CPU node of the first node); all nodes of the set allowed.
    fn placement(&self, topology: &Topology) -> Result<Placement, PlacementError> {
        self.placement_in(topology, &CostTable::new(topology))
    }

    fn placement_in(
        &self,
        _topology: &Topology,
        table: &CostTable,
    ) -> Result<Placement, PlacementError> {
        let home = self
            .nodes()
            .find(|&n| table.initiator_index(n).is_some())
            .or_else(|| self.nodes().find_map(|n| table.nearest_initiator(n)))
            .ok_or_else(|| {
                PlacementError::new(format!(
                    "cannot place a task on node set {{{self}}}: none of its nodes is usable"
                ))
            })?;
        let mut allowed = self.clone();
        allowed.insert(home.index());
        Ok(Placement {
            home,
            allowed,
            policy: Policy::Preferred,
        })
    }
}

impl Target for CpuSet {
    /// Each CPU adds an equal share of one use of its node.
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError> {
        let n = self.len() as u64;
        let mut found = false;
        for cpu in self {
            if let Some(node) = topology.node_of_cpu(cpu) {
                targets.add_node_share(node, 1, n);
                found = true;
            }
        }
        if found {
            Ok(())
        } else {
            Err(PlacementError::new(format!(
                "none of the CPUs {{{self}}} belongs to a node this process may use"
            )))
        }
    }
}

impl Target for Placement {
    fn add_to(&self, targets: &mut Targets, _topology: &Topology) -> Result<(), PlacementError> {
        targets.add_node(self.home);
        if self.policy == Policy::Strict {
            targets.set_strict();
        }
        Ok(())
    }

    fn placement(&self, _topology: &Topology) -> Result<Placement, PlacementError> {
        Ok(self.clone())
    }

    fn placement_in(&self, _: &Topology, _: &CostTable) -> Result<Placement, PlacementError> {
        Ok(self.clone())
    }
}

impl<T: Target + ?Sized> Target for &T {
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError> {
        (**self).add_to(targets, topology)
    }

    fn placement(&self, topology: &Topology) -> Result<Placement, PlacementError> {
        (**self).placement(topology)
    }

    fn placement_in(
        &self,
        topology: &Topology,
        table: &CostTable,
    ) -> Result<Placement, PlacementError> {
        (**self).placement_in(topology, table)
    }
}

impl<T: Target + ?Sized> Target for Box<T> {
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError> {
        (**self).add_to(targets, topology)
    }
}

impl<T: Target + ?Sized> Target for std::sync::Arc<T> {
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError> {
        (**self).add_to(targets, topology)
    }
}

impl<T: Target> Target for Option<T> {
    /// `None` adds nothing.
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError> {
        match self {
            Some(t) => t.add_to(targets, topology),
            None => Ok(()),
        }
    }
}

impl<T: Target> Target for [T] {
    /// Every element counts as one use.
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError> {
        self.iter().try_for_each(|t| t.add_to(targets, topology))
    }
}

impl<T: Target, const N: usize> Target for [T; N] {
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError> {
        self.as_slice().add_to(targets, topology)
    }
}

impl<T: Target> Target for Vec<T> {
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError> {
        self.as_slice().add_to(targets, topology)
    }
}

macro_rules! tuple_target {
    ($($name:ident)+) => {
        impl<$($name: Target),+> Target for ($($name,)+) {
            #[allow(non_snake_case)]
            fn add_to(
                &self,
                targets: &mut Targets,
                topology: &Topology,
            ) -> Result<(), PlacementError> {
                let ($($name,)+) = self;
                $($name.add_to(targets, topology)?;)+
                Ok(())
            }
        }
    };
}

tuple_target!(A);
tuple_target!(A B);
tuple_target!(A B C);
tuple_target!(A B C D);
tuple_target!(A B C D E);
tuple_target!(A B C D E F);
tuple_target!(A B C D E F G);
tuple_target!(A B C D E F G H);
