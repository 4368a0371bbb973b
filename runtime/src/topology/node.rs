//! One NUMA node: its CPUs, memory and HMAT access attributes.

use numa_rt_alloc::NodeId;

use super::idset::{CpuSet, NodeSet};
use super::memattr::MemAttrKind;

/// A NUMA node as the process may use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub(crate) id: NodeId,
    pub(crate) cpus: CpuSet,
    pub(crate) memory_bytes: u64,
    pub(crate) subtype: Option<String>,
    pub(crate) access: [Option<Access>; 2],
    pub(crate) memory_node: NodeId,
    pub(crate) local_cpus: CpuSet,
    pub(crate) memattrs: Vec<(MemAttrKind, u64)>,
    pub(crate) memattr_initiators: CpuSet,
}

impl Node {
    /// A node with the given CPUs and memory and no HMAT attributes.
    pub fn new(id: NodeId, cpus: CpuSet, memory_bytes: u64) -> Node {
        Node {
            id,
            local_cpus: cpus.clone(),
            cpus,
            memory_bytes,
            subtype: None,
            access: [None, None],
            memory_node: id,
            memattrs: Vec::new(),
            memattr_initiators: CpuSet::new(),
        }
    }

    /// The node's number.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The online CPUs of this node that the process may use. Empty for a
    /// memory-only node (CXL or persistent memory): see
    /// [`local_initiators`](Node::local_initiators) for the CPUs near it.
    pub fn cpus(&self) -> &CpuSet {
        &self.cpus
    }

    /// The online CPUs local to this node's memory, as hwloc reports a NUMA
    /// node's cpuset: the node's own online CPUs whether or not the process
    /// may use them; for a memory-only node, the CPUs of its local
    /// initiators (HMAT), else of its nearest nodes (SLIT). Use
    /// [`cpus`](Node::cpus) for the CPUs workers may run on.
    ///
    /// ```
    /// use numa_rt_runtime::topology::Topology;
    /// let topo = Topology::single_node("0-3".parse().unwrap(), 1 << 30);
    /// assert_eq!(topo.nodes()[0].local_cpus().to_string(), "0-3");
    /// ```
    pub fn local_cpus(&self) -> &CpuSet {
        &self.local_cpus
    }

    /// Whether the node has CPUs the process may use.
    pub fn has_cpus(&self) -> bool {
        !self.cpus.is_empty()
    }

    /// Total memory of the node in bytes (`MemTotal` of the node's meminfo).
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    /// The kind of memory when the machine says it (`"NVM"` for persistent
    /// memory, `"HBM"`, `"DRAM"`), else `None`.
    pub fn subtype(&self) -> Option<&str> {
        self.subtype.as_deref()
    }

    /// HMAT access attributes of this node as a memory target, for one
    /// access class.
    pub fn access(&self, class: AccessClass) -> Option<&Access> {
        self.access[class as usize].as_ref()
    }

    /// The nodes whose CPUs are the best initiators of this node's memory
    /// (HMAT access class 1, else class 0). Empty when the machine has no HMAT.
    pub fn local_initiators(&self) -> NodeSet {
        self.access(AccessClass::Cpu)
            .or_else(|| self.access(AccessClass::All))
            .map(|a| a.initiators.clone())
            .unwrap_or_default()
    }

    /// The real NUMA node that backs this node's memory. It is the node
    /// itself, except in a synthetic topology, where an emulated node's memory
    /// comes from the real node under its CPUs.
    pub fn memory_node(&self) -> NodeId {
        self.memory_node
    }
}

/// Which HMAT access class an [`Access`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessClass {
    /// `access0`: the best initiators of any kind (CPUs or generic
    /// initiators such as accelerators).
    All = 0,
    /// `access1`: the best initiators that have CPUs.
    Cpu = 1,
}

/// Performance of a memory node as seen from its best initiators
/// (`nodeN/accessK/initiators/` in sysfs, filled from ACPI HMAT).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// Read latency in nanoseconds.
    pub read_latency_ns: Option<u64>,
    /// Write latency in nanoseconds.
    pub write_latency_ns: Option<u64>,
    /// Read bandwidth in MiB/s.
    pub read_bandwidth_mibs: Option<u64>,
    /// Write bandwidth in MiB/s.
    pub write_bandwidth_mibs: Option<u64>,
    /// The initiator nodes these values are measured from.
    pub initiators: NodeSet,
}

impl Access {
    /// The access latency in ns: the mean of read and write latency when
    /// both are known (hwloc's `Latency`), else whichever is known.
    pub fn latency_ns(&self) -> Option<u64> {
        mean_or_either(self.read_latency_ns, self.write_latency_ns)
    }

    /// The access bandwidth in MiB/s: the mean of read and write bandwidth
    /// when both are known (hwloc's `Bandwidth`), else whichever is known.
    pub fn bandwidth_mibs(&self) -> Option<u64> {
        mean_or_either(self.read_bandwidth_mibs, self.write_bandwidth_mibs)
    }
}

/// The integer mean of `a` and `b` when both are known, else the known one.
fn mean_or_either(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a / 2 + b / 2 + (a % 2 + b % 2) / 2),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_means() {
        let a = Access {
            read_latency_ns: Some(80),
            write_latency_ns: Some(91),
            read_bandwidth_mibs: Some(1000),
            write_bandwidth_mibs: None,
            initiators: NodeSet::new(),
        };
        assert_eq!(a.latency_ns(), Some(85));
        assert_eq!(a.bandwidth_mibs(), Some(1000));
        assert_eq!(Access::default().latency_ns(), None);
        assert_eq!(
            mean_or_either(Some(u64::MAX), Some(u64::MAX)),
            Some(u64::MAX)
        );
    }
}
