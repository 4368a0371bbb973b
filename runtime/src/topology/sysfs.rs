//! Discovery from a sysfs/procfs tree (the live `/` or a saved root).
//!
//! Interim version: only the live CPU affinity is read. Full discovery
//! (nodes, distances, HMAT, cpusets, caches, devices) replaces this.

use std::path::PathBuf;

use super::{CpuSet, Topology, TopologyError};

pub(super) fn discover_live() -> Result<Topology, TopologyError> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let cpus: CpuSet = (0..n).collect();
    Ok(Topology::single_node(cpus, 0))
}

pub(super) fn discover_root(root: PathBuf) -> Result<Topology, TopologyError> {
    Err(TopologyError::file(
        &root,
        "reading saved trees is not available yet",
    ))
}
