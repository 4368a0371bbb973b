//! Devices (PCI functions, network interfaces, block devices) and the NUMA
//! node they are attached to.

use std::path::PathBuf;

use numa_rt_alloc::NodeId;

/// What kind of device a [`Device`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceKind {
    /// A PCI function (`bus/pci/devices/DDDD:BB:DD.F`).
    Pci,
    /// A network interface (`class/net/IF`).
    Net,
    /// A block device (`block/DEV`).
    Block,
}

/// A device and the NUMA node it is attached to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub(crate) kind: DeviceKind,
    pub(crate) name: String,
    pub(crate) node: Option<NodeId>,
    pub(crate) sysfs_path: PathBuf,
}

impl Device {
    /// A device of `kind` named `name`, on `node` when known.
    pub fn new(kind: DeviceKind, name: impl Into<String>, node: Option<NodeId>) -> Device {
        Device {
            kind,
            name: name.into(),
            node,
            sysfs_path: PathBuf::new(),
        }
    }

    /// The kind of device.
    pub fn kind(&self) -> DeviceKind {
        self.kind
    }

    /// The kernel's name: a PCI address (`0000:3b:00.0`), an interface
    /// (`eth0`) or a block device (`nvme0n1`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The NUMA node the device is attached to; `None` when the kernel does
    /// not know (`numa_node` is `-1`) or tells nothing.
    pub fn node(&self) -> Option<NodeId> {
        self.node
    }

    /// The device's directory in sysfs, relative to the filesystem root it
    /// was read from (empty for devices not read from sysfs).
    pub fn sysfs_path(&self) -> &std::path::Path {
        &self.sysfs_path
    }
}
