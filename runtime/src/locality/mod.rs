//! Where a task should run: targets resolve to a [`Placement`] (a home
//! node, the nodes allowed to run the task, and a [`Policy`]).
//!
//! This is the minimal core the scheduler needs; richer targets (memory
//! regions, files, sockets) implement the same [`Target`] trait.
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

use crate::topology::{CpuSet, NodeSet, Topology};
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

/// Something that says where work using it should run.
pub trait Target {
    /// The placement for this target on `topology`.
    fn placement(&self, topology: &Topology) -> Result<Placement, PlacementError>;
}

/// A target could not be placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementError {
    message: String,
}

impl PlacementError {
    /// An error with a message saying what went wrong.
    pub fn new(message: impl Into<String>) -> PlacementError {
        PlacementError {
            message: message.into(),
        }
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

impl Target for NodeId {
    fn placement(&self, _topology: &Topology) -> Result<Placement, PlacementError> {
        Ok(Placement::new(*self))
    }
}

impl Target for NodeSet {
    /// Home on the first node of the set that has CPUs (else the first
    /// node); all nodes of the set allowed.
    fn placement(&self, topology: &Topology) -> Result<Placement, PlacementError> {
        let home = self
            .nodes()
            .find(|&n| topology.node(n).is_some_and(|node| node.has_cpus()))
            .or_else(|| self.nodes().next())
            .ok_or_else(|| PlacementError::new("cannot place a task on an empty node set"))?;
        Ok(Placement {
            home,
            allowed: self.clone(),
            policy: Policy::Preferred,
        })
    }
}

impl Target for CpuSet {
    /// Home on the node holding most of the CPUs; the nodes of all of them
    /// allowed.
    fn placement(&self, topology: &Topology) -> Result<Placement, PlacementError> {
        let mut counts: Vec<(NodeId, usize)> = Vec::new();
        for cpu in self {
            if let Some(node) = topology.node_of_cpu(cpu) {
                match counts.iter_mut().find(|(n, _)| *n == node) {
                    Some((_, c)) => *c += 1,
                    None => counts.push((node, 1)),
                }
            }
        }
        let home = counts
            .iter()
            .max_by_key(|(n, c)| (*c, std::cmp::Reverse(*n)))
            .map(|(n, _)| *n)
            .ok_or_else(|| {
                PlacementError::new(format!(
                    "none of the CPUs {self} belongs to a node this process may use"
                ))
            })?;
        Ok(Placement {
            home,
            allowed: counts.iter().map(|(n, _)| *n).collect(),
            policy: Policy::Preferred,
        })
    }
}

impl Target for Placement {
    fn placement(&self, _topology: &Topology) -> Result<Placement, PlacementError> {
        Ok(self.clone())
    }
}

impl<T: Target + ?Sized> Target for &T {
    fn placement(&self, topology: &Topology) -> Result<Placement, PlacementError> {
        (**self).placement(topology)
    }
}

/// Wraps a target so its tasks never leave its nodes ([`Policy::Strict`]).
///
/// `spawn_on(Strict(node), fut)` runs `fut` only on `node`'s workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Strict<T>(pub T);

impl<T: Target> Target for Strict<T> {
    fn placement(&self, topology: &Topology) -> Result<Placement, PlacementError> {
        Ok(self.0.placement(topology)?.with_policy(Policy::Strict))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Synthetic;

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
