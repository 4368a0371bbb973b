//! PCIe devices QEMU put behind an expander bridge on a node report it,
//! and so do files on the NVMe disk's file system.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::expect::{DeviceSpec, Machine};
use crate::report::Outcome;
use crate::sys;
use crate::sysfs;

/// How long a device may take to appear after its module is loaded.
const APPEAR_TIMEOUT: Duration = Duration::from_secs(20);

/// Every device in the table shows up and reports its node.
pub fn device_nodes(m: &Machine) -> Outcome {
    if m.devices.is_empty() {
        return Outcome::Skip("no devices in this topology".into());
    }
    let mut seen = Vec::new();
    let mut problems = Vec::new();
    for dev in &m.devices {
        if !wait_for(&dev.sysfs) {
            problems.push(format!(
                "{} {} did not appear within {}s (module not loaded?)",
                dev.kind,
                dev.sysfs,
                APPEAR_TIMEOUT.as_secs()
            ));
            continue;
        }
        match sysfs::device_node(&dev.sysfs) {
            Ok(n) if n == dev.node => seen.push(format!("{} node {n}", dev.sysfs)),
            Ok(n) => problems.push(format!("{}: node {n}, want {}", dev.sysfs, dev.node)),
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        Outcome::Pass(seen.join(", "))
    } else {
        Outcome::Fail(problems.join("; "))
    }
}

fn wait_for(path: &str) -> bool {
    let start = Instant::now();
    while !Path::new(path).exists() {
        if start.elapsed() > APPEAR_TIMEOUT {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
    true
}

/// Mounts each disk's file system where the table says (before the checks,
/// in the parent, so every check process sees it). One result per disk.
pub fn mount_disks(m: &Machine) -> Vec<Result<String, String>> {
    m.devices
        .iter()
        .filter_map(|dev| dev.mount.as_ref().map(|mount| (dev, mount)))
        .map(|(dev, mount)| {
            let name = block_name(dev)?;
            if !wait_for(&dev.sysfs) {
                return Err(format!("{} did not appear", dev.sysfs));
            }
            std::fs::create_dir_all(mount).map_err(|e| format!("mkdir {mount}: {e}"))?;
            let device = format!("/dev/{name}");
            sys::mount_ext4(&device, mount).map_err(|e| format!("mount {device} {mount}: {e}"))?;
            Ok(format!("{device} (ext4) mounted at {mount}"))
        })
        .collect()
}

fn block_name(dev: &DeviceSpec) -> Result<&str, String> {
    dev.sysfs
        .strip_prefix("/sys/block/")
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| format!("{}: not a /sys/block device", dev.sysfs))
}

/// A file written on each mounted disk lives on a block device that
/// reports the disk's node (`stat` -> `/sys/dev/block/MAJ:MIN` -> walk up
/// to `numa_node`), the path locality code takes from a file to its node.
pub fn files_on_device_node(m: &Machine) -> Outcome {
    let disks: Vec<_> = m
        .devices
        .iter()
        .filter_map(|d| d.mount.as_ref().map(|mount| (d, mount)))
        .collect();
    if disks.is_empty() {
        return Outcome::Skip("no mounted disk in this topology".into());
    }
    let mut seen = Vec::new();
    let mut problems = Vec::new();
    for (dev, mount) in disks {
        match file_node(mount) {
            Ok((path, n)) if n == dev.node => seen.push(format!("{path} node {n}")),
            Ok((path, n)) => problems.push(format!("{path}: node {n}, want {}", dev.node)),
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        Outcome::Pass(seen.join(", "))
    } else {
        Outcome::Fail(problems.join("; "))
    }
}

fn file_node(mount: &str) -> Result<(String, i64), String> {
    let path = format!("{mount}/numa-vm-probe");
    std::fs::write(&path, b"numa-vm\n").map_err(|e| format!("write {path}: {e}"))?;
    let meta = std::fs::metadata(&path).map_err(|e| format!("stat {path}: {e}"))?;
    let (major, minor) = sys::major_minor(meta.dev());
    let node = sysfs::device_node(&format!("/sys/dev/block/{major}:{minor}"))?;
    Ok((path, node))
}
