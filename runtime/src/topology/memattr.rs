//! HMAT memory attributes in the form hwloc reports them: one value per
//! (attribute, target node) with the CPUs of the initiators it applies to.

use numa_rt_alloc::NodeId;

use super::{CpuSet, Topology};

/// Which memory attribute a [`MemAttr`] holds, named as hwloc names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemAttrKind {
    /// Access latency in ns (the larger of read and write latency).
    Latency,
    /// Access bandwidth in MiB/s (the smaller of read and write bandwidth).
    Bandwidth,
    /// Read latency in ns.
    ReadLatency,
    /// Write latency in ns.
    WriteLatency,
    /// Read bandwidth in MiB/s.
    ReadBandwidth,
    /// Write bandwidth in MiB/s.
    WriteBandwidth,
}

impl MemAttrKind {
    /// Every kind, in a fixed order.
    pub const ALL: [MemAttrKind; 6] = [
        MemAttrKind::Latency,
        MemAttrKind::Bandwidth,
        MemAttrKind::ReadLatency,
        MemAttrKind::WriteLatency,
        MemAttrKind::ReadBandwidth,
        MemAttrKind::WriteBandwidth,
    ];

    /// hwloc's name for the attribute (`"Latency"`, `"ReadBandwidth"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            MemAttrKind::Latency => "Latency",
            MemAttrKind::Bandwidth => "Bandwidth",
            MemAttrKind::ReadLatency => "ReadLatency",
            MemAttrKind::WriteLatency => "WriteLatency",
            MemAttrKind::ReadBandwidth => "ReadBandwidth",
            MemAttrKind::WriteBandwidth => "WriteBandwidth",
        }
    }
}

/// One memory attribute value: `kind` of memory node `target` as seen from
/// the CPUs `initiator_cpus`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemAttr {
    /// The attribute.
    pub kind: MemAttrKind,
    /// The memory node.
    pub target: NodeId,
    /// Nanoseconds for latencies, MiB/s for bandwidths.
    pub value: u64,
    /// The CPUs of the initiators the value applies to.
    pub initiator_cpus: CpuSet,
}

impl Topology {
    /// The HMAT attributes of every usable memory node from its local
    /// initiators, as hwloc 2.9 reports them: sorted by kind, then target.
    /// Empty when the machine has no HMAT.
    ///
    /// Values come from `nodeN/access1/initiators/` (CPU initiators), or
    /// `access0` when there is no `access1`. `Latency` and `Bandwidth` are
    /// the means of the read and write values and exist only when both are
    /// known; zero values are ignored. `initiator_cpus` is the node's
    /// locality when the values were read (its own CPUs, or for a
    /// memory-only node the CPUs of its initiators).
    pub fn memory_attributes(&self) -> Vec<MemAttr> {
        let mut out: Vec<MemAttr> = self
            .nodes
            .iter()
            .flat_map(|node| {
                node.memattrs.iter().map(|&(kind, value)| MemAttr {
                    kind,
                    target: node.id,
                    value,
                    initiator_cpus: node.memattr_initiators.clone(),
                })
            })
            .collect();
        out.sort_by_key(|a| (a.kind, a.target));
        out
    }

    /// The value of `kind` for memory node `target` from its local
    /// initiators, when the machine reports it.
    pub fn memory_attribute(&self, kind: MemAttrKind, target: NodeId) -> Option<u64> {
        self.node(target)?
            .memattrs
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|&(_, v)| v)
    }
}
