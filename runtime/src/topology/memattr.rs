//! HMAT memory attributes in the form hwloc reports them: one value per
//! (attribute, target node) with the CPUs of the initiators it applies to.

use numa_rt_alloc::NodeId;

use super::{AccessClass, CpuSet, Topology};

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
    /// initiators, as hwloc reports them: sorted by kind, then target.
    /// Empty when the machine has no HMAT.
    pub fn memory_attributes(&self) -> Vec<MemAttr> {
        let mut out = Vec::new();
        for node in &self.nodes {
            let Some(access) = node
                .access(AccessClass::Cpu)
                .or_else(|| node.access(AccessClass::All))
            else {
                continue;
            };
            let initiator_cpus = access
                .initiators
                .nodes()
                .filter_map(|id| self.node(id))
                .fold(CpuSet::new(), |acc, n| acc.union(n.cpus()));
            for kind in MemAttrKind::ALL {
                let value = match kind {
                    MemAttrKind::Latency => access.latency_ns(),
                    MemAttrKind::Bandwidth => access.bandwidth_mibs(),
                    MemAttrKind::ReadLatency => access.read_latency_ns,
                    MemAttrKind::WriteLatency => access.write_latency_ns,
                    MemAttrKind::ReadBandwidth => access.read_bandwidth_mibs,
                    MemAttrKind::WriteBandwidth => access.write_bandwidth_mibs,
                };
                if let Some(value) = value {
                    out.push(MemAttr {
                        kind,
                        target: node.id,
                        value,
                        initiator_cpus: initiator_cpus.clone(),
                    });
                }
            }
        }
        out.sort_by_key(|a| (a.kind, a.target));
        out
    }
}
