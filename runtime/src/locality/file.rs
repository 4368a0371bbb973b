//! Files as targets: the node of the block device that holds them.
//!
//! `fstat` gives the file's device number (`st_dev`; `st_rdev` when the file
//! is itself a block device node such as `/dev/nvme0n1`), the kernel's
//! `/sys/dev/block/MAJOR:MINOR` link names that device, and a partition is
//! traded for its parent disk. The disk's node comes from the runtime's
//! [`Topology::devices`], read once at start-up; a stacked device
//! (device-mapper, md RAID) contributes the nodes of the disks under it.
//! Files on no block device (tmpfs, procfs, network filesystems, btrfs
//! subvolumes) and disks whose node the kernel does not know contribute
//! nothing. The lookup is one `fstat` and a few sysfs path lookups per
//! placement, at spawn or hop time, never per poll.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use crate::fs::File;
use crate::topology::{DeviceKind, Topology};
use crate::NodeId;

use super::target::{Target, Targets};
use super::PlacementError;

/// How many stacked-device levels (a filesystem on LVM on RAID on
/// partitions) are followed down to the disks.
const MAX_STACK_DEPTH: usize = 8;

impl Target for File {
    /// The node of the disk holding the file (for a stacked device, the
    /// nodes of the disks under it, each node with an equal share); nothing
    /// when no disk's node is known, and then `spawn_on` places the task as
    /// `spawn` does and a hop stays where it is.
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError> {
        let nodes = file_nodes(self.as_raw_fd(), Path::new("/sys"), topology);
        let count = nodes.len() as u64;
        for node in nodes {
            targets.add_node_share(node, 1, count);
        }
        Ok(())
    }
}

/// The nodes of the disks holding the file open on `fd`, with `sys` as the
/// sysfs mount. Empty when unknown.
fn file_nodes(fd: RawFd, sys: &Path, topology: &Topology) -> Vec<NodeId> {
    let disks: Vec<(&str, NodeId)> = topology
        .devices()
        .iter()
        .filter(|d| d.kind() == DeviceKind::Block)
        .filter_map(|d| Some((d.name(), d.node()?)))
        .collect();
    if disks.is_empty() {
        return Vec::new();
    }
    let Some((major, minor)) = device_number(fd) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Ok(dir) = std::fs::canonicalize(sys.join(format!("dev/block/{major}:{minor}"))) {
        disk_names(sys, &dir, 0, &mut names);
    }
    let mut nodes: Vec<NodeId> = names
        .iter()
        .filter_map(|name| {
            disks
                .iter()
                .find(|(disk, _)| std::ffi::OsStr::new(disk) == name.as_os_str())
                .map(|&(_, node)| node)
        })
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes
}

/// The (major, minor) of the block device holding the file on `fd`, or of
/// the device itself when `fd` is a block device node.
fn device_number(fd: RawFd) -> Option<(u32, u32)> {
    // SAFETY: all-zero bytes are a valid `stat` (plain integers).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable `stat`; a bad fd makes fstat fail
    // with EBADF, it never writes elsewhere.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    let dev = if st.st_mode & libc::S_IFMT == libc::S_IFBLK {
        st.st_rdev
    } else {
        st.st_dev
    };
    let major = libc::major(dev);
    // Major 0 is the kernel's anonymous devices: tmpfs, procfs, NFS, btrfs
    // subvolumes. None of them sits on one disk.
    (major != 0).then(|| (major, libc::minor(dev)))
}

/// Adds to `out` the names of the whole disks behind the block device whose
/// resolved sysfs directory is `dir`: its parent for a partition, the
/// devices under it (`slaves/`) for a stacked device, else itself.
fn disk_names(sys: &Path, dir: &Path, depth: usize, out: &mut Vec<OsString>) {
    if depth > MAX_STACK_DEPTH {
        return;
    }
    let lower: Vec<PathBuf> = std::fs::read_dir(dir.join("slaves"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    std::fs::canonicalize(sys.join("class/block").join(e.file_name())).ok()
                })
                .collect()
        })
        .unwrap_or_default();
    if !lower.is_empty() {
        for below in lower {
            disk_names(sys, &below, depth + 1, out);
        }
        return;
    }
    let disk = if dir.join("partition").exists() {
        dir.parent()
    } else {
        Some(dir)
    };
    if let Some(name) = disk.and_then(Path::file_name) {
        out.push(name.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{Device, Synthetic};
    use std::os::unix::fs::symlink;

    fn topo_with(devices: Vec<Device>) -> Topology {
        let mut t = Topology::synthetic_over(
            &Topology::single_node("0-3".parse().unwrap(), 1 << 30),
            &Synthetic::new(2, 2),
        )
        .unwrap();
        t.devices = devices;
        t
    }

    fn block(name: &str, node: Option<u32>) -> Device {
        Device::new(DeviceKind::Block, name, node.map(NodeId::new))
    }

    /// A sysfs tree under a temporary directory with `dev/block/MAJ:MIN`
    /// links and `class/block/NAME` links, as the kernel lays them out.
    struct FakeSys {
        dir: PathBuf,
    }

    impl FakeSys {
        fn new(tag: &str) -> FakeSys {
            let dir = std::env::temp_dir()
                .join(format!("numa-rt-file-target-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("dev/block")).unwrap();
            std::fs::create_dir_all(dir.join("class/block")).unwrap();
            FakeSys { dir }
        }

        /// A device directory `devices/<rel>`, linked as `dev` and by name.
        fn add(&self, rel: &str, dev: &str, partition: bool) -> PathBuf {
            let path = self.dir.join("devices").join(rel);
            std::fs::create_dir_all(&path).unwrap();
            if partition {
                std::fs::write(path.join("partition"), "1\n").unwrap();
            }
            symlink(&path, self.dir.join("dev/block").join(dev)).unwrap();
            let name = path.file_name().unwrap();
            symlink(&path, self.dir.join("class/block").join(name)).unwrap();
            path
        }

        fn names(&self, dev: &str) -> Vec<String> {
            let dir = std::fs::canonicalize(self.dir.join("dev/block").join(dev)).unwrap();
            let mut out = Vec::new();
            disk_names(&self.dir, &dir, 0, &mut out);
            out.into_iter().map(|n| n.into_string().unwrap()).collect()
        }
    }

    impl Drop for FakeSys {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn partitions_resolve_to_their_disk_and_stacks_to_their_disks() {
        let sys = FakeSys::new("names");
        let pci = "pci0000:00/0000:00:04.0/nvme/nvme0";
        sys.add(&format!("{pci}/nvme0n1"), "259:0", false);
        sys.add(&format!("{pci}/nvme0n1/nvme0n1p1"), "259:1", true);
        sys.add("pci0000:00/0000:00:05.0/host0/sda", "8:0", false);
        sys.add("pci0000:00/0000:00:05.0/host0/sda/sda2", "8:2", true);
        let dm = sys.add("virtual/block/dm-0", "253:0", false);
        std::fs::create_dir_all(dm.join("slaves")).unwrap();
        std::fs::write(dm.join("slaves/nvme0n1p1"), "").unwrap();
        std::fs::write(dm.join("slaves/sda2"), "").unwrap();

        assert_eq!(sys.names("259:0"), ["nvme0n1"]);
        assert_eq!(sys.names("259:1"), ["nvme0n1"]);
        let mut under_dm = sys.names("253:0");
        under_dm.sort();
        assert_eq!(under_dm, ["nvme0n1", "sda"]);
    }

    #[test]
    fn unknown_devices_add_nothing() {
        // No disk with a known node: nothing is even looked up.
        let none = topo_with(vec![block("nvme0n1", None)]);
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert!(file_nodes(file.as_raw_fd(), Path::new("/sys"), &none).is_empty());
        // A procfs file is on an anonymous device, whatever the topology.
        let known = topo_with(vec![block("nvme0n1", Some(1))]);
        assert_eq!(device_number(file.as_raw_fd()), None);
        assert!(file_nodes(file.as_raw_fd(), Path::new("/sys"), &known).is_empty());
        assert_eq!(device_number(-1), None);
    }

    #[test]
    fn a_file_on_a_known_disk_adds_its_node() {
        // This file lives on some block device (or on an anonymous one in
        // containers); give the fake topology that disk on node 1.
        let file = std::fs::File::open(file!()).or_else(|_| std::fs::File::open("Cargo.toml"));
        let file = file.unwrap();
        let Some((major, minor)) = device_number(file.as_raw_fd()) else {
            return; // an overlay or anonymous filesystem: covered above
        };
        let Ok(dir) = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")) else {
            return; // a sandbox without sysfs block links
        };
        let mut names = Vec::new();
        disk_names(Path::new("/sys"), &dir, 0, &mut names);
        let devices = names
            .iter()
            .map(|n| block(n.to_str().unwrap(), Some(1)))
            .collect();
        let topo = topo_with(devices);
        let mut targets = Targets::new();
        File::from_std(file).add_to(&mut targets, &topo).unwrap();
        let placement = targets
            .resolve(&super::super::CostTable::new(&topo))
            .unwrap();
        assert_eq!(placement.home, NodeId::new(1));
    }

    #[test]
    fn a_tmpfs_file_adds_nothing_on_the_live_topology() {
        let topo = Topology::discover().unwrap();
        let dir = Path::new("/dev/shm");
        if !dir.is_dir() {
            return;
        }
        let path = dir.join(format!("numa-rt-file-target-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let file = File::from_std(file);
        let mut targets = Targets::new();
        file.add_to(&mut targets, &topo).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(targets.is_empty());
    }

    #[test]
    fn spawning_on_an_unplaced_file_falls_back_to_spawn() {
        let rt = crate::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let file = File::from_std(std::fs::File::open("/proc/self/status").unwrap());
        let file = std::sync::Arc::new(file);
        let (ran, hopped) = rt.block_on(async {
            let ran = crate::spawn_on(&*file, async { 7 }).await.unwrap();
            let f = std::sync::Arc::clone(&file);
            let hopped = crate::spawn(async move { super::super::hop(&*f).await })
                .await
                .unwrap();
            (ran, hopped)
        });
        assert_eq!(ran, 7);
        assert_eq!(hopped, None);
        // Strict on nothing is still nothing to place by.
        let strict = rt
            .handle()
            .try_spawn_on(super::super::Strict(&*file), async { 8 });
        assert!(strict.is_ok());
    }
}
