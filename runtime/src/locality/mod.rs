//! Where a task should run: targets resolve to a [`Placement`] (a home
//! node, the nodes allowed to run the task, and a [`Policy`]).
//!
//! A resource implements [`Target`] by reporting the nodes it lives on
//! (with weights and whether its use is latency- or bandwidth-bound) into a
//! [`Targets`] accumulator; the runtime resolves the set to a home node with
//! the [`CostTable`] it computed from the topology at start-up (HMAT
//! latency/bandwidth when the machine has it, SLIT distances otherwise).
//! Memory-only nodes (CXL, PMEM) resolve to their nearest CPU node.
//!
//! ```
//! use numa_rt_runtime::locality::{Placement, Policy, Strict, Target};
//! use numa_rt_runtime::topology::{Synthetic, Topology};
//! use numa_rt_runtime::NodeId;
//!
//! let topo = Topology::synthetic_over(
//!     &Topology::single_node("0-3".parse().unwrap(), 1 << 30),
//!     &Synthetic::new(2, 2),
//! ).unwrap();
//! let p = NodeId::new(1).placement(&topo).unwrap();
//! assert_eq!(p.home, NodeId::new(1));
//! assert_eq!(p.policy, Policy::Preferred);
//! let cpus: numa_rt_runtime::topology::CpuSet = "2".parse().unwrap();
//! assert_eq!(cpus.placement(&topo).unwrap().home, NodeId::new(1));
//! assert_eq!(Strict(NodeId::new(0)).placement(&topo).unwrap().policy, Policy::Strict);
//! ```

use std::fmt;
use std::io;

pub(crate) mod alloc_hook;
mod cost;
mod file;
pub(crate) mod hop;
mod memory;
mod metrics;
mod near;
mod net;
mod plan;
mod target;

pub use cost::{Bound, CostSource, CostTable, LOCAL_COST};
#[doc(hidden)]
pub use hop::hop_planned;
pub use hop::{hop, Hop, OnTarget};
pub use memory::MemoryRegion;
pub use metrics::{metrics, LocalityMetrics};
pub use near::{memory_node_near, NodeBoxNear, NodeVecNear};
pub(crate) use plan::take_spawn_hint;
#[doc(hidden)]
pub use plan::{spawn_hint, Captures, Plan};
pub use target::{Bandwidth, Target, Targets, Weighted, WEIGHT_UNIT};

use crate::topology::{NodeSet, Topology};
use crate::NodeId;

/// Whether a task may leave the nodes it was placed on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Runs on its home node, but an idle node may steal it when the home
    /// node is saturated. The default.
    #[default]
    Preferred,
    /// Never runs outside its allowed nodes.
    Strict,
}

/// Where a task lives: its home node, the nodes allowed to run it, and how
/// strictly that holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The node whose workers run the task, and where it returns when woken.
    pub home: NodeId,
    /// The nodes that may run the task under [`Policy::Strict`]; always
    /// contains `home`.
    pub allowed: NodeSet,
    /// How strictly the placement holds.
    pub policy: Policy,
}

impl Placement {
    /// Home on `node`, allowed only there, [`Policy::Preferred`].
    pub fn new(node: NodeId) -> Placement {
        Placement {
            home: node,
            allowed: std::iter::once(node).collect(),
            policy: Policy::Preferred,
        }
    }

    /// The same placement with policy `policy`.
    pub fn with_policy(mut self, policy: Policy) -> Placement {
        self.policy = policy;
        self
    }
}

/// A target could not be placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementError {
    message: String,
    no_targets: bool,
}

impl PlacementError {
    /// An error with a message saying what went wrong.
    pub fn new(message: impl Into<String>) -> PlacementError {
        PlacementError {
            message: message.into(),
            no_targets: false,
        }
    }

    /// The targets named no node: resources whose place is unknown (a file
    /// on tmpfs, a loopback socket) report nothing. Spawning falls back to
    /// the default placement then.
    pub(crate) fn no_targets() -> PlacementError {
        PlacementError {
            message: "cannot place a task on an empty set of targets".to_owned(),
            no_targets: true,
        }
    }

    /// Whether the targets named no node at all.
    pub fn is_no_targets(&self) -> bool {
        self.no_targets
    }
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PlacementError {}

impl From<PlacementError> for io::Error {
    fn from(err: PlacementError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, err)
    }
}

/// Wraps a target so its tasks never leave its nodes ([`Policy::Strict`]).
///
/// `spawn_on(Strict(node), fut)` runs `fut` only on `node`'s workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Strict<T>(pub T);

impl<T: Target> Target for Strict<T> {
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError> {
        self.0.add_to(targets, topology)?;
        targets.set_strict();
        Ok(())
    }

    fn placement(&self, topology: &Topology) -> Result<Placement, PlacementError> {
        Ok(self.0.placement(topology)?.with_policy(Policy::Strict))
    }

    fn placement_in(
        &self,
        topology: &Topology,
        table: &CostTable,
    ) -> Result<Placement, PlacementError> {
        Ok(self
            .0
            .placement_in(topology, table)?
            .with_policy(Policy::Strict))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{CpuSet, Synthetic};

    fn topo() -> Topology {
        Topology::synthetic_over(
            &Topology::single_node("0-3".parse().unwrap(), 1 << 30),
            &Synthetic::new(2, 2),
        )
        .unwrap()
    }

    #[test]
    fn node_set_and_cpu_set() {
        let t = topo();
        let set: NodeSet = "1".parse().unwrap();
        assert_eq!(set.placement(&t).unwrap().home, NodeId::new(1));
        assert!(NodeSet::new().placement(&t).is_err());
        let cpus: CpuSet = "1-3".parse().unwrap();
        let p = cpus.placement(&t).unwrap();
        assert_eq!(p.home, NodeId::new(1));
        assert_eq!(p.allowed.to_string(), "0-1");
        let far: CpuSet = "40".parse().unwrap();
        assert!(far.placement(&t).unwrap_err().to_string().contains("40"));
    }

    #[test]
    fn strict_wrapper() {
        let t = topo();
        let strict = Strict(NodeId::new(1));
        let by_ref: &dyn Target = &&strict;
        let p = by_ref.placement(&t).unwrap();
        assert_eq!(p.policy, Policy::Strict);
        assert_eq!(p.home, NodeId::new(1));
    }
}
