//! NUMA nodes from `sys/devices/system/node`: CPUs, memory, SLIT distances,
//! HMAT access classes and the locality of memory-only nodes.
//!
//! The rules follow hwloc 2.9's Linux backend, so a tree gives the nodes
//! hwloc would report:
//! - node ids come from `node/online`, else from the `nodeN` directories;
//! - a node's CPUs come from `cpulist`, else `cpumap`; a node with neither
//!   is dropped, and so is a node claiming a CPU an earlier node already
//!   claimed (a buggy firmware table);
//! - nodes whose memory is an NVIDIA GPU's (`proc/driver/nvidia/gpus/*/
//!   numa_status`) are dropped, as hwloc does by default;
//! - a node's locality (its hwloc cpuset) is its own CPUs plus the CPUs of
//!   its HMAT initiators (`access1`, else `access0`); a CPU-less node with no
//!   HMAT takes the CPUs of its strictly nearest nodes by SLIT distance;
//! - the distance matrix is kept only when every listed node's `distance`
//!   file has one value per listed node, and only over the nodes kept.

use numa_rt_alloc::NodeId;

use super::knl;
use super::memattr::MemAttrKind;
use super::root::{leading_u64, FsRoot};
use super::{Access, CpuSet, Node, NodeSet, TopologyError};

pub(crate) const NODE_DIR: &str = "sys/devices/system/node";

/// What kind of memory a DAX device backs (`sys/bus/dax`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DaxKind {
    /// Persistent memory (an NVDIMM region).
    Nvm,
    /// Specific-purpose memory (often HBM or CXL).
    Spm,
}

/// Nodes as read from sysfs, before the process's limits are applied.
#[derive(Debug)]
pub(crate) struct SysNodes {
    /// The nodes, by increasing id. `cpus` holds the node's own CPUs from
    /// `cpulist`/`cpumap` and `local_cpus` its locality, both unrestricted.
    pub(crate) nodes: Vec<Node>,
    /// The DAX kind of each node in `nodes`, when it is a DAX (kmem) node.
    pub(crate) dax: Vec<Option<DaxKind>>,
    /// SLIT rows over `nodes`, in the same order.
    pub(crate) distances: Option<Vec<Vec<u32>>>,
    /// Whether the nodes were laid out by the Xeon Phi rules ([`knl`]).
    pub(crate) knl: bool,
}

/// Reads the nodes under `root` (`live` when it is the running machine).
/// `Ok(None)` when the kernel shows no `node/` directory or no usable node
/// in it.
pub(crate) fn read(root: &FsRoot, live: bool) -> Result<Option<SysNodes>, TopologyError> {
    if !root.is_dir(NODE_DIR) {
        return Ok(None);
    }
    let ids = listed_ids(root)?;
    if ids.is_empty() {
        return Ok(None);
    }

    // Create the nodes; `None` marks a node that was dropped.
    let mut slots: Vec<Option<Node>> = Vec::with_capacity(ids.len());
    let mut claimed = CpuSet::new();
    for &id in &ids {
        let Some(cpus) = own_cpus(root, id)? else {
            slots.push(None);
            continue;
        };
        if cpus.intersects(&claimed) {
            slots.push(None);
            continue;
        }
        claimed = claimed.union(&cpus);
        let mut node = Node::new(NodeId::new(id), cpus, memory_bytes(root, id)?);
        node.access = [access(root, id, 0), access(root, id, 1)];
        slots.push(Some(node));
    }
    drop_gpu_nodes(root, &mut slots);
    let dax: Vec<Option<DaxKind>> = slots
        .iter()
        .map(|slot| slot.as_ref().and_then(|n| dax_kind(root, n.id.index())))
        .collect();

    let mut matrix = if ids.len() >= 2 {
        read_matrix(root, &ids)
    } else {
        None
    };

    let knl = knl::detect(root, live);
    if knl {
        // Xeon Phi: nodes are paired by the processor's modes; hwloc uses
        // neither the SLIT nor HMAT there.
        knl::apply(root, &mut slots, matrix.as_deref());
        matrix = None;
    } else {
        fix_localities(root, &mut slots, matrix.as_deref());
    }

    // Keep the nodes that were created, with their distance rows.
    let kept: Vec<usize> = (0..slots.len()).filter(|&i| slots[i].is_some()).collect();
    let distances = matrix.filter(|_| kept.len() >= 2).map(|m| {
        kept.iter()
            .map(|&i| kept.iter().map(|&j| m[i][j]).collect())
            .collect()
    });
    let dax = kept.iter().map(|&i| dax[i]).collect();
    let nodes: Vec<Node> = slots.into_iter().flatten().collect();
    if nodes.is_empty() {
        return Ok(None);
    }
    Ok(Some(SysNodes {
        nodes,
        dax,
        distances,
        knl,
    }))
}

/// The node ids: `node/online`, else every `nodeN` directory, increasing.
fn listed_ids(root: &FsRoot) -> Result<Vec<u32>, TopologyError> {
    if let Some(online) = root.read_list::<()>(&format!("{NODE_DIR}/online"))? {
        if !online.is_empty() {
            return Ok(online.iter().collect());
        }
    }
    let mut ids: Vec<u32> = root
        .list_dir(NODE_DIR)
        .unwrap_or_default()
        .iter()
        .filter_map(|name| numbered(name, "node"))
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// `N` of a name `prefixN` (all digits after the prefix).
pub(crate) fn numbered(name: &str, prefix: &str) -> Option<u32> {
    let digits = name.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The node's own CPUs: `cpulist`, else `cpumap`; `None` when neither exists.
fn own_cpus(root: &FsRoot, id: u32) -> Result<Option<CpuSet>, TopologyError> {
    if let Some(cpus) = root.read_list(&format!("{NODE_DIR}/node{id}/cpulist"))? {
        return Ok(Some(cpus));
    }
    root.read_mask(&format!("{NODE_DIR}/node{id}/cpumap"))
}

/// `MemTotal` of the node's meminfo in bytes; 0 when the file or the line is
/// missing (as hwloc reports it).
fn memory_bytes(root: &FsRoot, id: u32) -> Result<u64, TopologyError> {
    let rel = format!("{NODE_DIR}/node{id}/meminfo");
    Ok(root.read(&rel)?.as_deref().map_or(0, mem_total_bytes))
}

/// The `MemTotal:` value of a meminfo text (in kB) as bytes, 0 when absent.
pub(crate) fn mem_total_bytes(text: &str) -> u64 {
    text.find("MemTotal:")
        .and_then(|at| leading_u64(text[at + "MemTotal:".len()..].trim_start()))
        .map_or(0, |kb| kb.saturating_mul(1024))
}

/// HMAT access class `class` of node `id` as a memory target, when the
/// kernel reports it (`nodeN/accessK/initiators/`).
fn access(root: &FsRoot, id: u32, class: u32) -> Option<Access> {
    let dir = format!("{NODE_DIR}/node{id}/access{class}/initiators");
    let names = root.list_dir(&dir)?;
    let value = |file: &str| root.read_u64(&format!("{dir}/{file}")).filter(|&v| v > 0);
    Some(Access {
        read_latency_ns: value("read_latency"),
        write_latency_ns: value("write_latency"),
        read_bandwidth_mibs: value("read_bandwidth"),
        write_bandwidth_mibs: value("write_bandwidth"),
        initiators: names.iter().filter_map(|n| initiator_id(n)).collect(),
    })
}

/// The node number of an initiator entry (`nodeN`, as C's `node%u`).
fn initiator_id(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("node")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
}

/// Drops nodes that hold an NVIDIA GPU's memory.
fn drop_gpu_nodes(root: &FsRoot, slots: &mut [Option<Node>]) {
    let gpus_dir = "proc/driver/nvidia/gpus";
    let Some(gpus) = root.list_dir(gpus_dir) else {
        return;
    };
    for gpu in gpus {
        let Some(status) = root.read_optional(&format!("{gpus_dir}/{gpu}/numa_status")) else {
            continue;
        };
        let Some(at) = status.find("Node:") else {
            continue;
        };
        let Some(id) = leading_u64(status[at + 5..].trim_start_matches([' ', '\t'])) else {
            continue;
        };
        for slot in slots.iter_mut() {
            if slot.as_ref().is_some_and(|n| u64::from(n.id.index()) == id) {
                *slot = None;
            }
        }
    }
}

/// The DAX kind of node `id` when a kmem DAX device targets it.
fn dax_kind(root: &FsRoot, id: u32) -> Option<DaxKind> {
    let devices = root.list_dir("sys/bus/dax/devices")?;
    for dev in devices {
        if !root.exists(&format!("sys/bus/dax/drivers/kmem/{dev}")) {
            continue;
        }
        let target = root.read_i64(&format!("sys/bus/dax/devices/{dev}/target_node"));
        if target != Some(i64::from(id)) {
            continue;
        }
        // The kind comes from where the device sits: under an NVDIMM bus
        // (`ndbus`) it is persistent memory. A device that is not a link
        // tells nothing.
        let link = root.read_link(&format!("sys/bus/dax/devices/{dev}"))?;
        return Some(if link.to_string_lossy().contains("ndbus") {
            DaxKind::Nvm
        } else {
            DaxKind::Spm
        });
    }
    None
}

/// The SLIT matrix over `ids` (listed order), `None` unless every file has
/// at least one value per listed node (extra values are ignored).
fn read_matrix(root: &FsRoot, ids: &[u32]) -> Option<Vec<Vec<u32>>> {
    ids.iter()
        .map(|id| {
            let text = root.read_optional(&format!("{NODE_DIR}/node{id}/distance"))?;
            let row: Vec<u32> = text
                .split_whitespace()
                .map_while(|word| word.parse().ok())
                .take(ids.len())
                .collect();
            (row.len() == ids.len()).then_some(row)
        })
        .collect()
}

/// Gives every node its locality (hwloc's cpuset) and reads its memory
/// attributes, in hwloc's order: first the nodes with CPUs take their
/// initiators' CPUs, then each CPU-less node takes its initiators' CPUs, or
/// failing that its nearest nodes' CPUs; each node's memory attributes are
/// read with its locality at that point.
fn fix_localities(root: &FsRoot, slots: &mut [Option<Node>], matrix: Option<&[Vec<u32>]>) {
    let has_cpus: Vec<bool> = slots
        .iter()
        .map(|s| s.as_ref().is_some_and(|n| !n.cpus.is_empty()))
        .collect();
    for (i, _) in has_cpus.iter().enumerate().filter(|(_, &cpus)| cpus) {
        add_initiator_cpus(root, slots, i);
    }
    for i in 0..slots.len() {
        if slots[i].is_none() {
            continue;
        }
        if !has_cpus[i] {
            let fixed = add_initiator_cpus(root, slots, i)
                && slots[i].as_ref().is_some_and(|n| !n.local_cpus.is_empty());
            if !fixed {
                if let Some(matrix) = matrix {
                    add_nearest_cpus(slots, matrix, i);
                }
            }
        }
        if let Some(node) = slots[i].as_mut() {
            read_memattrs(root, node);
        }
    }
}

/// The initiators directory hwloc reads for node `id`: `access1` (CPU
/// initiators), else `access0`.
fn initiators_dir(root: &FsRoot, id: u32) -> Option<String> {
    [1, 0]
        .iter()
        .map(|class| format!("{NODE_DIR}/node{id}/access{class}/initiators"))
        .find(|dir| root.is_dir(dir))
}

/// Adds the CPUs of node `i`'s HMAT initiators to its locality. Returns
/// whether the node has an initiators directory.
fn add_initiator_cpus(root: &FsRoot, slots: &mut [Option<Node>], i: usize) -> bool {
    let Some(id) = slots[i].as_ref().map(|n| n.id.index()) else {
        return false;
    };
    let Some(dir) = initiators_dir(root, id) else {
        return false;
    };
    let initiators: Vec<u32> = root
        .list_dir(&dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|name| initiator_id(name))
        .filter(|&x| x != id)
        .collect();
    for x in initiators {
        let cpus = slots
            .iter()
            .flatten()
            .find(|n| n.id.index() == x)
            .map(|n| n.local_cpus.clone());
        if let (Some(cpus), Some(node)) = (cpus, slots[i].as_mut()) {
            node.local_cpus = node.local_cpus.union(&cpus);
        }
    }
    true
}

/// Gives CPU-less node `i` the CPUs of the nodes strictly nearest to it,
/// unless it is as near to itself as to them or equally near to all.
fn add_nearest_cpus(slots: &mut [Option<Node>], matrix: &[Vec<u32>], i: usize) {
    let row = &matrix[i];
    let others = (0..slots.len()).filter(|&j| j != i && slots[j].is_some());
    let Some(min) = others.clone().map(|j| row[j]).min() else {
        return;
    };
    let nearest: Vec<usize> = others.filter(|&j| row[j] == min).collect();
    if min <= row[i] || nearest.len() == slots.len() - 1 {
        return;
    }
    let cpus = nearest
        .iter()
        .filter_map(|&j| slots[j].as_ref())
        .fold(CpuSet::new(), |acc, n| acc.union(&n.local_cpus));
    if let Some(node) = slots[i].as_mut() {
        node.local_cpus = node.local_cpus.union(&cpus);
    }
}

/// Reads the node's HMAT values from its local initiators.
fn read_memattrs(root: &FsRoot, node: &mut Node) {
    let Some(dir) = initiators_dir(root, node.id.index()) else {
        return;
    };
    let value = |file: &str| root.read_u64(&format!("{dir}/{file}")).filter(|&v| v > 0);
    let (rbw, wbw) = (value("read_bandwidth"), value("write_bandwidth"));
    let (rlat, wlat) = (value("read_latency"), value("write_latency"));
    let mean = |a: Option<u64>, b: Option<u64>| Some(a? / 2 + b? / 2 + (a? % 2 + b? % 2) / 2);
    let attrs = [
        (MemAttrKind::ReadBandwidth, rbw),
        (MemAttrKind::WriteBandwidth, wbw),
        (MemAttrKind::Bandwidth, mean(rbw, wbw)),
        (MemAttrKind::ReadLatency, rlat),
        (MemAttrKind::WriteLatency, wlat),
        (MemAttrKind::Latency, mean(rlat, wlat)),
    ];
    node.memattrs = attrs
        .into_iter()
        .filter_map(|(kind, v)| Some((kind, v?)))
        .collect();
    if !node.memattrs.is_empty() {
        node.memattr_initiators = node.local_cpus.clone();
    }
}

/// The ids of `nodes`, as a set.
pub(crate) fn id_set(nodes: &[Node]) -> NodeSet {
    nodes.iter().map(|n| n.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    fn write(base: &Path, rel: &str, text: &str) {
        let path = base.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn node(base: &Path, id: u32, cpulist: &str, kb: u64, distance: &str) {
        let dir = format!("{NODE_DIR}/node{id}");
        write(base, &format!("{dir}/cpulist"), cpulist);
        write(
            base,
            &format!("{dir}/meminfo"),
            &format!("Node {id} MemTotal:       {kb} kB\nNode {id} MemFree: 1 kB\n"),
        );
        write(base, &format!("{dir}/distance"), distance);
    }

    fn read_tree(base: &Path) -> SysNodes {
        read(&FsRoot::open(base.to_owned()).unwrap(), false)
            .unwrap()
            .unwrap()
    }

    fn cpus_of(nodes: &SysNodes) -> Vec<(u32, String, String)> {
        nodes
            .nodes
            .iter()
            .map(|n| (n.id.index(), n.cpus.to_string(), n.local_cpus.to_string()))
            .collect()
    }

    #[test]
    fn sparse_nodes_memory_and_distances() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        write(b, &format!("{NODE_DIR}/online"), "0,4\n");
        node(b, 0, "0-1\n", 1024, "10 21\n");
        node(b, 4, "2-3\n", 2048, "21 10\n");
        // Not online: ignored.
        node(b, 7, "4\n", 1, "10\n");
        let n = read_tree(b);
        assert_eq!(
            cpus_of(&n),
            [
                (0, "0-1".into(), "0-1".into()),
                (4, "2-3".into(), "2-3".into())
            ]
        );
        assert_eq!(n.nodes[1].memory_bytes, 2048 * 1024);
        assert_eq!(n.distances, Some(vec![vec![10, 21], vec![21, 10]]));
    }

    #[test]
    fn overlapping_and_cpuless_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        node(b, 0, "0-3\n", 1, "10 20 20 17\n");
        node(b, 1, "4-7\n", 1, "20 10 20 20\n");
        // Claims CPUs of node 1: dropped, and its distance row with it.
        node(b, 2, "6-9\n", 1, "20 20 10 20\n");
        // Memory-only, nearest to node 0.
        node(b, 3, "\n", 1, "17 20 20 10\n");
        let n = read_tree(b);
        assert_eq!(
            cpus_of(&n),
            [
                (0, "0-3".into(), "0-3".into()),
                (1, "4-7".into(), "4-7".into()),
                (3, "".into(), "0-3".into())
            ]
        );
        assert_eq!(
            n.distances,
            Some(vec![vec![10, 20, 17], vec![20, 10, 20], vec![17, 20, 10]])
        );
    }

    #[test]
    fn cpuless_node_equally_far_from_all_stays_unplaced() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        node(b, 0, "0\n", 1, "10 20 20\n");
        node(b, 1, "1\n", 1, "20 10 20\n");
        node(b, 2, "", 1, "20 20 10\n");
        let n = read_tree(b);
        assert_eq!(n.nodes[2].local_cpus.to_string(), "");
    }

    #[test]
    fn hmat_initiators_and_memattrs() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        node(b, 0, "0-1\n", 1, "10 20 17\n");
        node(b, 1, "2-3\n", 1, "20 10 28\n");
        node(b, 2, "\n", 1, "17 28 10\n");
        let acc = format!("{NODE_DIR}/node2/access1/initiators");
        write(b, &format!("{acc}/read_latency"), "320\n");
        write(b, &format!("{acc}/write_latency"), "331\n");
        write(b, &format!("{acc}/read_bandwidth"), "5000\n");
        fs::create_dir_all(b.join(&acc).join("node1")).unwrap();
        let n = read_tree(b);
        // HMAT wins over the SLIT (which would say node 0).
        assert_eq!(n.nodes[2].local_cpus.to_string(), "2-3");
        assert_eq!(n.nodes[2].cpus.to_string(), "");
        let access = n.nodes[2].access[1].as_ref().unwrap();
        assert_eq!(access.initiators.to_string(), "1");
        assert_eq!(access.latency_ns(), Some(325));
        assert_eq!(
            n.nodes[2].memattrs,
            [
                (MemAttrKind::ReadBandwidth, 5000),
                (MemAttrKind::ReadLatency, 320),
                (MemAttrKind::WriteLatency, 331),
                (MemAttrKind::Latency, 325),
            ]
        );
        assert_eq!(n.nodes[2].memattr_initiators.to_string(), "2-3");
        assert!(n.nodes[0].memattrs.is_empty());
    }

    #[test]
    fn cpumap_fallback_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        write(
            b,
            &format!("{NODE_DIR}/node0/cpumap"),
            "00000000,00000003\n",
        );
        // No cpulist nor cpumap: dropped.
        fs::create_dir_all(b.join(format!("{NODE_DIR}/node1"))).unwrap();
        let n = read_tree(b);
        assert_eq!(cpus_of(&n), [(0, "0-1".into(), "0-1".into())]);
        assert_eq!(n.nodes[0].memory_bytes, 0, "no meminfo: 0 bytes");
        assert!(n.distances.is_none());
    }

    #[test]
    fn short_distance_rows_drop_the_matrix() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        node(b, 0, "0\n", 1, "10 20\n");
        node(b, 1, "1\n", 1, "20\n");
        assert!(read_tree(b).distances.is_none());
        // Longer rows are cut to the node count.
        node(b, 1, "1\n", 1, "20 10 99\n");
        assert_eq!(
            read_tree(b).distances,
            Some(vec![vec![10, 20], vec![20, 10]])
        );
    }

    #[test]
    fn malformed_cpulist_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        node(b, 0, "0-q\n", 1, "10\n");
        let err = read(&FsRoot::open(b.to_owned()).unwrap(), false).unwrap_err();
        assert!(err.to_string().contains("node0/cpulist"), "{err}");
    }

    #[test]
    fn gpu_memory_nodes_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        node(b, 0, "0\n", 1, "10 20\n");
        node(b, 1, "\n", 1, "20 10\n");
        write(
            b,
            "proc/driver/nvidia/gpus/0000:01:00.0/numa_status",
            "Node:  1\nStatus: online\n",
        );
        let n = read_tree(b);
        assert_eq!(id_set(&n.nodes).to_string(), "0");
        assert!(n.distances.is_none());
    }

    #[test]
    fn meminfo_parsing() {
        assert_eq!(mem_total_bytes("MemTotal:  2 kB\n"), 2048);
        assert_eq!(mem_total_bytes("Node 3 MemTotal: 7 kB"), 7168);
        assert_eq!(mem_total_bytes("MemFree: 7 kB"), 0);
        assert_eq!(initiator_id("node12"), Some(12));
        assert_eq!(initiator_id("read_latency"), None);
    }
}
