//! The machine's NUMA topology: nodes, CPUs, cache domains, distances, HMAT
//! attributes, memory tiers and where devices are attached.
//!
//! A [`Topology`] comes from one of three sources:
//! - the live machine, [`Topology::discover`], which also applies the
//!   process's limits (cgroup cpusets and its CPU affinity);
//! - a saved sysfs/procfs tree, [`Topology::from_root`], read exactly as the
//!   live machine is (like hwloc's `HWLOC_FSROOT`);
//! - a synthetic description, [`Topology::synthetic`], laid over the CPUs the
//!   process may use, for tests and for trying locality on a one-node
//!   machine. [`Topology::load`] honours `NUMA_RT_TOPOLOGY=NxC` and is what
//!   every numa_rt program uses by default.
//!
//! # Discovery
//!
//! Discovery reads `sys/` and `proc/` under a root and reports the nodes hwloc
//! 2.9's Linux backend would report for the same tree (the tests check this
//! on every tree of `tests/fixtures/hwloc-linux`):
//!
//! - **Nodes**: `node/online` (else the `nodeN` folders), sparse ids kept.
//!   A node's CPUs come from `cpulist` (else `cpumap`), limited to online
//!   CPUs (`cpu/online`, else each `cpuN/online`). A node without either file
//!   is left out, and so is a node claiming a CPU an earlier node claimed.
//!   Memory is the node's `MemTotal`.
//! - **Process limits**: the cgroup v2, cgroup v1 or cpuset-filesystem cpuset
//!   of the process (`proc/self/cpuset` or `proc/self/cgroup`, located through
//!   `proc/mounts`), and on the live machine the process's CPU affinity.
//!   Nodes outside the allowed memory nodes are left out; [`Node::cpus`] holds
//!   only allowed CPUs, while [`Node::local_cpus`] is the node's locality as
//!   hwloc reports it (before the CPU limit).
//! - **Memory-only nodes** (CXL, PMEM, HBM) have no CPUs; their locality is
//!   their HMAT initiators' CPUs (`accessK/initiators/nodeX`), else the CPUs
//!   of their strictly nearest nodes by SLIT distance.
//! - **Distances**: `nodeN/distance` rows over the listed nodes, kept only
//!   when every row is complete, then restricted to the nodes kept.
//! - **HMAT**: [`Node::access`] for both access classes and
//!   [`Topology::memory_attributes`] in hwloc's form; memory kinds
//!   ([`Node::subtype`]) from DAX devices and bandwidths; memory tiers from
//!   `memory_tiering`.
//! - **Cache domains**, **devices** (PCI, network, block, by walking up to the
//!   first `numa_node`) and automatic **NUMA balancing**.
//!
//! Fallbacks: no `node/` folder means one node 0 with every online CPU and
//! `proc/meminfo`'s `MemTotal`; missing optional files (meminfo, distance,
//! HMAT, caches, devices) leave that information out. A missing root or a
//! required file that cannot be read or parsed (`cpu/online`, `node/online`,
//! `nodeN/cpulist`, cpuset limits) is a [`TopologyError`] naming the file.

mod attach;
mod caches;
mod cgroup;
mod cpus;
mod device;
mod devices;
mod distances;
mod error;
mod idset;
mod knl;
mod memattr;
mod node;
mod nodes;
pub mod parse;
pub mod probe;
mod root;
mod synthetic;
mod sysfs;
mod tiers;

use std::path::PathBuf;

use numa_rt_alloc::NodeId;

pub use device::{Device, DeviceKind};
pub use distances::Distances;
pub use error::TopologyError;
pub use idset::{CpuKind, CpuSet, IdSet, Iter, NodeKind, NodeSet};
pub use memattr::{MemAttr, MemAttrKind};
pub use node::{Access, AccessClass, Node};
pub use synthetic::Synthetic;

/// The name of the environment variable that replaces the live topology by a
/// synthetic one: `NUMA_RT_TOPOLOGY=2x4` (see [`Synthetic::from_spec`]).
pub const TOPOLOGY_ENV: &str = "NUMA_RT_TOPOLOGY";

/// Distance the SLIT table gives a node to itself.
pub const LOCAL_DISTANCE: u32 = 10;

/// Distance assumed between two different nodes when the machine reports
/// no distances.
pub const REMOTE_DISTANCE: u32 = 20;

/// Where a [`Topology`] was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The running machine, through `/`.
    Live,
    /// A saved filesystem tree.
    Root(PathBuf),
    /// A synthetic description.
    Synthetic(Synthetic),
}

/// A memory tier (`memory_tiering/memory_tierN`): nodes of similar
/// performance. Lower tiers are faster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryTier {
    /// The tier number (`N` in `memory_tierN`).
    pub id: u32,
    /// The nodes in the tier.
    pub nodes: NodeSet,
}

/// The NUMA topology of a machine, restricted to what the process may use.
///
/// ```
/// use numa_rt_runtime::topology::{Synthetic, Topology};
/// use numa_rt_runtime::NodeId;
///
/// let topo = Topology::synthetic_over(&Topology::single_node("0-3".parse().unwrap(), 1 << 30),
///                                     &Synthetic::new(2, 2)).unwrap();
/// assert_eq!(topo.nodes().len(), 2);
/// assert_eq!(topo.node_of_cpu(3), Some(NodeId::new(1)));
/// assert_eq!(topo.distance(NodeId::new(0), NodeId::new(1)), 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    pub(crate) nodes: Vec<Node>,
    pub(crate) distances: Option<Distances>,
    pub(crate) cache_domains: Vec<CpuSet>,
    pub(crate) devices: Vec<Device>,
    pub(crate) memory_tiers: Vec<MemoryTier>,
    pub(crate) numa_balancing: Option<bool>,
    pub(crate) source: Source,
}

impl Topology {
    /// The topology to run on: a synthetic one when `NUMA_RT_TOPOLOGY` is
    /// set, else the live machine's.
    pub fn load() -> Result<Topology, TopologyError> {
        match std::env::var(TOPOLOGY_ENV) {
            Ok(spec) if !spec.trim().is_empty() => {
                let spec = Synthetic::from_spec(&spec)
                    .map_err(|e| TopologyError::config(format!("{TOPOLOGY_ENV}={spec:?}: {e}")))?;
                Topology::synthetic(&spec)
            }
            _ => Topology::discover(),
        }
    }

    /// Reads the live machine's topology, limited to the CPUs and nodes the
    /// process may use (cgroup cpusets and `sched_getaffinity`).
    pub fn discover() -> Result<Topology, TopologyError> {
        sysfs::discover_live()
    }

    /// Reads a saved tree: `root` holds `sys/` and `proc/` as on a live
    /// machine. CPU affinity of the current process is not applied.
    pub fn from_root(root: impl Into<PathBuf>) -> Result<Topology, TopologyError> {
        sysfs::discover_root(root.into())
    }

    /// A synthetic topology laid over the CPUs the process may use on this
    /// machine (see [`Synthetic`]).
    pub fn synthetic(spec: &Synthetic) -> Result<Topology, TopologyError> {
        Topology::synthetic_over(&Topology::discover()?, spec)
    }

    /// A synthetic topology laid over the CPUs of `base`: emulated node `i`
    /// takes the next `cpus_per_node` CPUs of `base` in increasing order, and
    /// its memory comes from the real node of its first CPU.
    pub fn synthetic_over(base: &Topology, spec: &Synthetic) -> Result<Topology, TopologyError> {
        synthetic::build(base, spec)
    }

    /// One node 0 holding `cpus` and `memory_bytes` of memory, with no
    /// distances: the shape of a machine without NUMA.
    pub fn single_node(cpus: CpuSet, memory_bytes: u64) -> Topology {
        Topology {
            nodes: vec![Node::new(NodeId::new(0), cpus, memory_bytes)],
            distances: None,
            cache_domains: Vec::new(),
            devices: Vec::new(),
            memory_tiers: Vec::new(),
            numa_balancing: None,
            source: Source::Live,
        }
    }

    /// The nodes the process may use, by increasing id. Memory-only nodes
    /// are included; see [`cpu_nodes`](Topology::cpu_nodes).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node with id `id`, if the process may use it.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The nodes that have CPUs the process may use: the ones that get
    /// worker pools.
    pub fn cpu_nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.has_cpus())
    }

    /// Every CPU the process may use.
    pub fn cpus(&self) -> CpuSet {
        self.cpu_nodes()
            .fold(CpuSet::new(), |acc, n| acc.union(&n.cpus))
    }

    /// The node whose CPUs include `cpu`.
    pub fn node_of_cpu(&self, cpu: u32) -> Option<NodeId> {
        self.cpu_nodes()
            .find(|n| n.cpus.contains(cpu))
            .map(|n| n.id)
    }

    /// The SLIT distance matrix, when the machine reports one.
    pub fn distances(&self) -> Option<&Distances> {
        self.distances.as_ref()
    }

    /// The distance from `from` to `to`: the SLIT value when known, else
    /// [`LOCAL_DISTANCE`] for a node to itself and [`REMOTE_DISTANCE`]
    /// between two nodes.
    pub fn distance(&self, from: NodeId, to: NodeId) -> u32 {
        self.distances
            .as_ref()
            .and_then(|d| d.get(from, to))
            .unwrap_or(if from == to {
                LOCAL_DISTANCE
            } else {
                REMOTE_DISTANCE
            })
    }

    /// The other CPU nodes ordered from nearest to farthest from `from`
    /// (ties broken by node id).
    pub fn nodes_by_distance(&self, from: NodeId) -> Vec<NodeId> {
        let mut others: Vec<NodeId> = self
            .cpu_nodes()
            .map(|n| n.id)
            .filter(|&id| id != from)
            .collect();
        others.sort_by_key(|&id| (self.distance(from, id), id));
        others
    }

    /// Groups of CPUs sharing a last-level cache, restricted to usable CPUs,
    /// ordered by their first CPU. Empty when the machine does not say.
    pub fn cache_domains(&self) -> &[CpuSet] {
        &self.cache_domains
    }

    /// Devices and their nodes.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// Memory tiers, fastest first, when the kernel reports them.
    pub fn memory_tiers(&self) -> &[MemoryTier] {
        &self.memory_tiers
    }

    /// Whether the kernel's automatic NUMA balancing is on
    /// (`/proc/sys/kernel/numa_balancing`); `None` when unknown.
    pub fn numa_balancing(&self) -> Option<bool> {
        self.numa_balancing
    }

    /// Where this topology came from.
    pub fn source(&self) -> &Source {
        &self.source
    }
}
