//! The machine the guest should be: `expect.json`, written by
//! `scripts/numa-vm.d/topologies.py expect NAME` from the topology table.

use serde_json::Value;

/// One NUMA node as QEMU was told.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    /// Node id as the guest kernel numbers it.
    pub id: u32,
    /// CPUs on the node (empty for a memory-only node).
    pub cpus: Vec<u32>,
    /// Memory QEMU gave the node.
    pub memory_bytes: u64,
    /// For a memory-only node: the CPU node HMAT names as its initiator.
    pub initiator: Option<u32>,
}

/// HMAT attributes of a target as seen from its local initiator.
#[derive(Debug, Clone, PartialEq)]
pub struct HmatLocal {
    /// Memory node.
    pub target: u32,
    /// The node Linux links under `access{0,1}/initiators`.
    pub initiator: u32,
    /// Access latency in ns.
    pub latency_ns: u64,
    /// Access bandwidth in MB/s.
    pub bandwidth_mbps: u64,
}

/// A memory-side cache in front of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct MemorySideCache {
    /// Node the cache fronts.
    pub node: u32,
    /// Cache level (`indexN`).
    pub level: u32,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Line size in bytes.
    pub line: u64,
}

/// A PCIe device QEMU placed on a node.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSpec {
    /// "nvme" or "nic".
    pub kind: String,
    /// The device's node.
    pub node: i64,
    /// Where it appears in sysfs (e.g. /sys/block/nvme0n1).
    pub sysfs: String,
    /// For a disk: where its ext4 file system is mounted before the checks.
    pub mount: Option<String>,
}

/// Everything a check may rely on about the machine.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Topology name from the table.
    pub topology: String,
    /// Nodes in id order.
    pub nodes: Vec<NodeSpec>,
    /// SLIT rows, in `nodes` order.
    pub distances: Vec<Vec<u64>>,
    /// HMAT attributes per target (empty: no HMAT).
    pub hmat_local: Vec<HmatLocal>,
    /// Memory-side caches.
    pub memory_side_caches: Vec<MemorySideCache>,
    /// Devices with a node.
    pub devices: Vec<DeviceSpec>,
    /// CPUs sharing a last-level cache (one group per socket).
    pub llc_groups: Vec<Vec<u32>>,
    /// What `numa-rt topo --json` must print (`memory_bytes` null: the
    /// node's MemTotal, as hwloc reports it).
    pub topo_json: Value,
}

impl Machine {
    /// Parses `expect.json`.
    pub fn parse(text: &str) -> Result<Machine, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let nodes = array(&v, "nodes")?
            .iter()
            .map(|n| {
                Ok(NodeSpec {
                    id: uint(n, "id")? as u32,
                    cpus: uints(n, "cpus")?.into_iter().map(|c| c as u32).collect(),
                    memory_bytes: uint(n, "memory_bytes")?,
                    initiator: match field(n, "initiator")? {
                        Value::Null => None,
                        _ => Some(uint(n, "initiator")? as u32),
                    },
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let distances = array(&v, "distances")?
            .iter()
            .map(|row| {
                row.as_array()
                    .ok_or("distances: rows must be arrays")?
                    .iter()
                    .map(|d| {
                        d.as_u64()
                            .ok_or_else(|| "distances: not a number".to_string())
                    })
                    .collect::<Result<Vec<_>, String>>()
            })
            .collect::<Result<Vec<_>, String>>()?;
        let hmat_local = array(&v, "hmat_local")?
            .iter()
            .map(|h| {
                Ok(HmatLocal {
                    target: uint(h, "target")? as u32,
                    initiator: uint(h, "initiator")? as u32,
                    latency_ns: uint(h, "latency_ns")?,
                    bandwidth_mbps: uint(h, "bandwidth_mbps")?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let memory_side_caches = array(&v, "memory_side_caches")?
            .iter()
            .map(|c| {
                Ok(MemorySideCache {
                    node: uint(c, "node")? as u32,
                    level: uint(c, "level")? as u32,
                    size_bytes: uint(c, "size_bytes")?,
                    line: uint(c, "line")?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let devices = array(&v, "devices")?
            .iter()
            .map(|d| {
                Ok(DeviceSpec {
                    kind: string(d, "kind")?,
                    node: field(d, "node")?
                        .as_i64()
                        .ok_or("devices: `node` must be an integer")?,
                    sysfs: string(d, "sysfs")?,
                    mount: match d.get("mount") {
                        None | Some(Value::Null) => None,
                        Some(_) => Some(string(d, "mount")?),
                    },
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let llc_groups = array(&v, "llc_groups")?
            .iter()
            .map(|g| {
                g.as_array()
                    .ok_or("llc_groups: groups must be arrays")?
                    .iter()
                    .map(|c| {
                        c.as_u64()
                            .map(|c| c as u32)
                            .ok_or_else(|| "llc_groups: not a CPU number".to_string())
                    })
                    .collect::<Result<Vec<_>, String>>()
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Machine {
            topology: string(&v, "topology")?,
            nodes,
            distances,
            hmat_local,
            memory_side_caches,
            devices,
            llc_groups,
            topo_json: field(&v, "topo_json")?.clone(),
        })
    }
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
    v.get(key).ok_or_else(|| format!("missing field `{key}`"))
}

fn array<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>, String> {
    field(v, key)?
        .as_array()
        .ok_or_else(|| format!("`{key}` must be an array"))
}

fn uint(v: &Value, key: &str) -> Result<u64, String> {
    field(v, key)?
        .as_u64()
        .ok_or_else(|| format!("`{key}` must be a non-negative integer"))
}

fn uints(v: &Value, key: &str) -> Result<Vec<u64>, String> {
    array(v, key)?
        .iter()
        .map(|x| {
            x.as_u64()
                .ok_or_else(|| format!("`{key}` must hold integers"))
        })
        .collect()
}

fn string(v: &Value, key: &str) -> Result<String, String> {
    field(v, key)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("`{key}` must be a string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "topology": "t", "summary": "s",
      "nodes": [
        {"id": 0, "cpus": [0, 1], "memory_bytes": 268435456, "initiator": null},
        {"id": 1, "cpus": [], "memory_bytes": 268435456, "initiator": 0}
      ],
      "distances": [[10, 17], [17, 10]],
      "hmat_local": [{"target": 1, "initiator": 0, "latency_ns": 320, "bandwidth_mbps": 5000}],
      "memory_side_caches": [{"node": 1, "level": 1, "size_bytes": 16777216, "line": 64}],
      "devices": [{"kind": "nvme", "node": 0, "sysfs": "/sys/block/nvme0n1", "mount": "/mnt/x"}],
      "llc_groups": [[0, 1]],
      "topo_json": {"nodes": []}
    }"#;

    #[test]
    fn parses_every_field() {
        let m = Machine::parse(SAMPLE).unwrap();
        assert_eq!(m.topology, "t");
        assert_eq!(m.nodes[1].initiator, Some(0));
        assert_eq!(m.nodes[0].initiator, None);
        assert_eq!(m.distances[0][1], 17);
        assert_eq!(m.hmat_local[0].latency_ns, 320);
        assert_eq!(m.memory_side_caches[0].size_bytes, 16 << 20);
        assert_eq!(m.devices[0].sysfs, "/sys/block/nvme0n1");
        assert_eq!(m.devices[0].mount.as_deref(), Some("/mnt/x"));
        assert_eq!(m.nodes[0].cpus, [0, 1]);
        assert_eq!(m.llc_groups, [vec![0, 1]]);
    }

    #[test]
    fn names_the_missing_field() {
        let err = Machine::parse(r#"{"topology": "t"}"#).unwrap_err();
        assert!(err.contains("nodes"), "{err}");
        let err = Machine::parse("nope").unwrap_err();
        assert!(err.starts_with("not JSON"), "{err}");
    }
}
