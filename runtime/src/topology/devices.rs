//! Where PCI functions, network interfaces and block devices are attached:
//! each device's sysfs directory is resolved (links followed inside the
//! root) and walked up to the first `numa_node` file. When that says `-1`
//! (unknown), the same directory's `local_cpulist` (or `local_cpus`) decides
//! if it lies within exactly one node's CPUs.

use std::path::{Path, PathBuf};

use numa_rt_alloc::NodeId;

use super::root::FsRoot;
use super::{CpuSet, Device, DeviceKind};

/// Every PCI function, physical network interface and whole block device
/// under `root`, sorted by kind then name. Virtual devices (loopback,
/// bridges, loop and device-mapper disks) are left out: they sit on no node.
/// `nodes` are the machine's nodes with their own online CPUs, which place
/// devices the kernel gives no node.
pub(crate) fn devices(root: &FsRoot, nodes: &[(NodeId, CpuSet)]) -> Vec<Device> {
    let mut out = Vec::new();
    for name in root.list_dir("sys/bus/pci/devices").unwrap_or_default() {
        out.extend(device(
            root,
            nodes,
            DeviceKind::Pci,
            "sys/bus/pci/devices",
            name,
        ));
    }
    for name in root.list_dir("sys/class/net").unwrap_or_default() {
        out.extend(device(root, nodes, DeviceKind::Net, "sys/class/net", name));
    }
    let block_dir = if root.is_dir("sys/block") {
        "sys/block"
    } else {
        "sys/class/block"
    };
    for name in root.list_dir(block_dir).unwrap_or_default() {
        if root.exists(&format!("{block_dir}/{name}/partition")) {
            continue;
        }
        out.extend(device(root, nodes, DeviceKind::Block, block_dir, name));
    }
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    out
}

/// The device `dir/name`, unless it is virtual or cannot be resolved.
fn device(
    root: &FsRoot,
    nodes: &[(NodeId, CpuSet)],
    kind: DeviceKind,
    dir: &str,
    name: String,
) -> Option<Device> {
    let path = root.resolve(&format!("{dir}/{name}"))?;
    if kind != DeviceKind::Pci && path.components().any(|c| c.as_os_str() == "virtual") {
        return None;
    }
    let node = numa_node(root, nodes, &path);
    Some(Device {
        kind,
        name,
        node,
        sysfs_path: path,
    })
}

/// The node in the first `numa_node` file found walking up from `path`
/// (a resolved path relative to the root); for `-1`, the node whose CPUs
/// alone hold the device's local CPUs; `None` when neither tells.
fn numa_node(root: &FsRoot, nodes: &[(NodeId, CpuSet)], path: &Path) -> Option<NodeId> {
    let mut dir: PathBuf = path.to_owned();
    loop {
        let file = dir.join("numa_node");
        let rel = file.to_string_lossy();
        if root.exists(&rel) {
            let value = root.read_i64(&rel)?;
            return match u32::try_from(value) {
                Ok(id) => Some(NodeId::new(id)),
                Err(_) => node_of_local_cpus(root, nodes, &dir),
            };
        }
        if !dir.pop() || dir.as_os_str().is_empty() || dir == Path::new("sys") {
            return None;
        }
    }
}

/// The one node whose CPUs contain all of the device's local CPUs
/// (`local_cpulist`, else `local_cpus`) in `dir`.
fn node_of_local_cpus(root: &FsRoot, nodes: &[(NodeId, CpuSet)], dir: &Path) -> Option<NodeId> {
    let dir = dir.to_string_lossy();
    let cpus: CpuSet = root
        .read_list(&format!("{dir}/local_cpulist"))
        .ok()
        .flatten()
        .or_else(|| root.read_mask(&format!("{dir}/local_cpus")).ok().flatten())?;
    if cpus.is_empty() {
        return None;
    }
    let mut holders = nodes.iter().filter(|(_, own)| cpus.is_subset(own));
    match (holders.next(), holders.next()) {
        (Some((id, _)), None) => Some(*id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn walks_up_to_numa_node() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        let pci = "sys/devices/pci0000:80/0000:80:02.0/0000:81:00.0";
        fs::create_dir_all(b.join(pci).join("net/eth1")).unwrap();
        fs::create_dir_all(b.join(pci).join("nvme/nvme0/nvme0n1/nvme0n1p1")).unwrap();
        fs::write(b.join(pci).join("numa_node"), "1\n").unwrap();
        fs::write(
            b.join(pci).join("nvme/nvme0/nvme0n1/nvme0n1p1/partition"),
            "1\n",
        )
        .unwrap();
        fs::write(
            b.join("sys/devices/pci0000:80/0000:80:02.0/numa_node"),
            "-1\n",
        )
        .unwrap();
        fs::create_dir_all(b.join("sys/devices/virtual/net/lo")).unwrap();
        for d in ["sys/bus/pci/devices", "sys/class/net", "sys/block"] {
            fs::create_dir_all(b.join(d)).unwrap();
        }
        // Absolute links, as a saved tree may hold: re-rooted.
        symlink(
            format!("/{pci}"),
            b.join("sys/bus/pci/devices/0000:81:00.0"),
        )
        .unwrap();
        symlink(
            "/sys/devices/pci0000:80/0000:80:02.0",
            b.join("sys/bus/pci/devices/0000:80:02.0"),
        )
        .unwrap();
        symlink(
            format!("../../../{pci}/net/eth1"),
            b.join("sys/class/net/eth1"),
        )
        .unwrap();
        symlink("../../devices/virtual/net/lo", b.join("sys/class/net/lo")).unwrap();
        symlink(
            format!("../../{pci}/nvme/nvme0/nvme0n1"),
            b.join("sys/block/nvme0n1"),
        )
        .unwrap();
        let root = FsRoot::open(b.to_owned()).unwrap();
        let got: Vec<(DeviceKind, String, Option<u32>)> = devices(&root, &[])
            .iter()
            .map(|d| (d.kind(), d.name().to_owned(), d.node().map(NodeId::index)))
            .collect();
        assert_eq!(
            got,
            [
                (DeviceKind::Pci, "0000:80:02.0".to_owned(), None),
                (DeviceKind::Pci, "0000:81:00.0".to_owned(), Some(1)),
                (DeviceKind::Net, "eth1".to_owned(), Some(1)),
                (DeviceKind::Block, "nvme0n1".to_owned(), Some(1)),
            ]
        );
        let nvme = devices(&root, &[]).pop().unwrap();
        assert_eq!(nvme.sysfs_path(), Path::new(pci).join("nvme/nvme0/nvme0n1"));
        // `-1` with local CPUs inside one node's: that node.
        fs::write(
            b.join("sys/devices/pci0000:80/0000:80:02.0/local_cpulist"),
            "4-5\n",
        )
        .unwrap();
        let nodes = [
            (NodeId::new(0), "0-3".parse().unwrap()),
            (NodeId::new(3), "4-7".parse().unwrap()),
        ];
        let bridge = devices(&root, &nodes).into_iter().next().unwrap();
        assert_eq!(bridge.node(), Some(NodeId::new(3)));
        // Local CPUs spanning nodes tell nothing.
        fs::write(
            b.join("sys/devices/pci0000:80/0000:80:02.0/local_cpulist"),
            "0-7\n",
        )
        .unwrap();
        let bridge = devices(&root, &nodes).into_iter().next().unwrap();
        assert_eq!(bridge.node(), None);
        assert_eq!(nvme.sysfs_path(), Path::new(pci).join("nvme/nvme0/nvme0n1"));
    }
}
