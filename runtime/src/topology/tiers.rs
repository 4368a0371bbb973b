//! Memory tiers (`memory_tiering/memory_tierN`) and the kind of memory of
//! each node (`DRAM`, `HBM`, `SPM`, `NVM`), guessed as hwloc 2.9 does.

use super::memattr::MemAttrKind;
use super::nodes::{numbered, DaxKind};
use super::root::FsRoot;
use super::{CpuSet, MemoryTier, Node, NodeSet, TopologyError};

const TIER_DIR: &str = "sys/devices/virtual/memory_tiering";

/// The kernel's memory tiers, restricted to `usable` nodes, by tier number.
/// Empty when the kernel has no memory tiering.
pub(crate) fn memory_tiers(
    root: &FsRoot,
    usable: &NodeSet,
) -> Result<Vec<MemoryTier>, TopologyError> {
    let mut tiers = Vec::new();
    for name in root.list_dir(TIER_DIR).unwrap_or_default() {
        let Some(id) = numbered(&name, "memory_tier") else {
            continue;
        };
        let Some(nodes) = root.read_list::<_>(&format!("{TIER_DIR}/{name}/nodelist"))? else {
            continue;
        };
        let nodes: NodeSet = nodes.intersection(usable);
        if !nodes.is_empty() {
            tiers.push(MemoryTier { id, nodes });
        }
    }
    tiers.sort_by_key(|t| t.id);
    Ok(tiers)
}

/// What hwloc knows of a node's memory before it names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Unknown,
    Spm,
    Nvm,
}

/// Sets `subtype` on `nodes` the way hwloc 2.9 guesses memory tiers:
/// DAX nodes are `NVM` (under an NVDIMM bus) or specific-purpose memory;
/// when every specific-purpose node has over twice the local bandwidth of
/// every other node, those are `HBM` and the others `DRAM`; otherwise
/// specific-purpose nodes are `SPM` and the others get no subtype.
/// `dax[i]` is the DAX kind of `nodes[i]`; `allowed` are the CPUs the
/// process may use.
pub(crate) fn guess_subtypes(nodes: &mut [Node], dax: &[Option<DaxKind>], allowed: &CpuSet) {
    let mut tiers: Vec<(Kind, u64, usize)> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let kind = match dax.get(i).copied().flatten() {
                Some(DaxKind::Nvm) => Kind::Nvm,
                Some(DaxKind::Spm) => Kind::Spm,
                None => Kind::Unknown,
            };
            (kind, local_bandwidth(node, allowed), i)
        })
        .collect();
    // By kind, then by decreasing bandwidth.
    tiers.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let first_spm = tiers.iter().take_while(|t| t.0 == Kind::Unknown).count();
    let first_nvm = first_spm
        + tiers[first_spm..]
            .iter()
            .take_while(|t| t.0 == Kind::Spm)
            .count();
    let max_unknown_bw = if first_spm > 0 { tiers[0].1 } else { 0 };
    let min_spm_bw = if first_nvm > first_spm {
        tiers[first_nvm - 1].1
    } else {
        0
    };
    let spm_is_hbm =
        max_unknown_bw > 0 && min_spm_bw > 0 && max_unknown_bw.saturating_mul(2) < min_spm_bw;
    for (pos, &(kind, _, i)) in tiers.iter().enumerate() {
        if nodes[i].subtype.is_some() {
            continue;
        }
        let name = match kind {
            Kind::Unknown if spm_is_hbm && pos < first_spm => Some("DRAM"),
            Kind::Spm if spm_is_hbm => Some("HBM"),
            Kind::Spm => Some("SPM"),
            Kind::Nvm => Some("NVM"),
            Kind::Unknown => None,
        };
        nodes[i].subtype = name.map(str::to_owned);
    }
}

/// The node's `Bandwidth` from its own CPUs, 0 when unknown (hwloc looks
/// the value up with the node's usable locality as the initiator).
fn local_bandwidth(node: &Node, allowed: &CpuSet) -> u64 {
    let local = node.local_cpus.intersection(allowed);
    if local.is_empty() || node.memattr_initiators != local {
        return 0;
    }
    node.memattrs
        .iter()
        .find(|(k, _)| *k == MemAttrKind::Bandwidth)
        .map_or(0, |&(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use numa_rt_alloc::NodeId;

    fn node(id: u32, cpus: &str, bw: Option<u64>) -> Node {
        let mut n = Node::new(NodeId::new(id), cpus.parse().unwrap(), 1);
        if let Some(bw) = bw {
            n.memattrs = vec![(MemAttrKind::Bandwidth, bw)];
            n.memattr_initiators = n.local_cpus.clone();
        }
        n
    }

    fn subtypes(nodes: &[Node]) -> Vec<Option<&str>> {
        nodes.iter().map(|n| n.subtype()).collect()
    }

    #[test]
    fn fast_spm_is_hbm() {
        let mut nodes = vec![
            node(0, "0-1", Some(1000)),
            node(1, "2-3", Some(10000)),
            node(2, "0-1", Some(100)),
        ];
        let dax = [None, Some(DaxKind::Spm), Some(DaxKind::Nvm)];
        guess_subtypes(&mut nodes, &dax, &"0-3".parse().unwrap());
        assert_eq!(subtypes(&nodes), [Some("DRAM"), Some("HBM"), Some("NVM")]);
    }

    #[test]
    fn slow_or_unknown_spm_stays_spm() {
        let mut nodes = vec![node(0, "0", Some(1000)), node(1, "1", Some(1500))];
        guess_subtypes(
            &mut nodes,
            &[None, Some(DaxKind::Spm)],
            &"0-1".parse().unwrap(),
        );
        assert_eq!(subtypes(&nodes), [None, Some("SPM")]);
        let mut nodes = vec![node(0, "0", None), node(1, "1", None)];
        guess_subtypes(&mut nodes, &[None, None], &"0-1".parse().unwrap());
        assert_eq!(subtypes(&nodes), [None, None]);
    }

    #[test]
    fn tiers_from_sysfs() {
        let dir = tempfile::tempdir().unwrap();
        for (tier, list) in [(4, "0-1\n"), (22, "2\n"), (3, "7\n")] {
            let d = dir.path().join(format!("{TIER_DIR}/memory_tier{tier}"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("nodelist"), list).unwrap();
        }
        let root = FsRoot::open(dir.path().to_owned()).unwrap();
        let usable: NodeSet = "0-2".parse().unwrap();
        let tiers = memory_tiers(&root, &usable).unwrap();
        let got: Vec<(u32, String)> = tiers.iter().map(|t| (t.id, t.nodes.to_string())).collect();
        assert_eq!(got, [(4, "0-1".to_owned()), (22, "2".to_owned())]);
    }
}
