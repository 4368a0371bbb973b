//! The hidden-NUMA probe: measure core-to-core latency and find the latency
//! domains the kernel does not report.
//!
//! In VMs the topology the kernel reports can hide the hardware: one node
//! whose vCPUs span two sockets, or several L3 domains inside one node. The
//! probe measures ([`measure`]), clusters the CPUs into latency domains
//! ([`cluster`], a pure function with a confidence figure) and compares
//! them with the reported nodes and cache groups ([`Comparison`]).
//!
//! Memory cannot be bound to a domain the kernel does not know: a domain
//! found only by the probe can place *threads* (CPU sets) but its memory
//! still comes from the reported node.
//!
//! ```no_run
//! use numa_rt_runtime::topology::probe::{Probe, ProbeConfig};
//! use numa_rt_runtime::topology::Topology;
//!
//! let topo = Topology::discover()?;
//! let probe = Probe::run(&topo, &ProbeConfig::quick())?;
//! for (i, d) in probe.domains.iter().enumerate() {
//!     println!("domain {i}: CPUs {d}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cluster;
mod compare;
mod matrix;
mod measure;
mod pin;
mod pools;

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::root::FsRoot;
use super::{cpus, CpuSet, Topology};

pub use cluster::{cluster, Clustering, Level, MIN_CONFIDENCE, MIN_RATIO, UNIFORM_BAND};
pub use compare::Comparison;
pub use matrix::LatencyMatrix;
pub use measure::{choose_cpus, measure, Measurement, ProbeConfig};
pub use pools::pool_topology;

/// Why the probe could not run.
#[derive(Debug)]
pub enum ProbeError {
    /// The CPUs the process may use could not be read.
    Affinity(io::Error),
    /// The kernel refused to pin a probe thread to an allowed CPU.
    Pin {
        /// The CPU.
        cpu: u32,
        /// The kernel's answer.
        source: io::Error,
    },
    /// A probe thread could not be started.
    Thread(io::Error),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Affinity(e) => write!(f, "cannot read the allowed CPUs: {e}"),
            ProbeError::Pin { cpu, source } => write!(
                f,
                "cannot pin a probe thread to CPU {cpu}: {source} (the CPU set may have \
                 changed during the probe, or a policy forbids sched_setaffinity)"
            ),
            ProbeError::Thread(e) => write!(f, "cannot start a probe thread: {e}"),
        }
    }
}

impl std::error::Error for ProbeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProbeError::Affinity(e) | ProbeError::Thread(e) => Some(e),
            ProbeError::Pin { source, .. } => Some(source),
        }
    }
}

/// A complete probe: measurement, domains and comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// The raw measurement (matrix over every online CPU).
    pub measurement: Measurement,
    /// The clustering of the probed CPUs.
    pub clustering: Clustering,
    /// The domains, with CPUs left out by sampling added to the domain of a
    /// probed CPU sharing their last-level cache (see [`extend_by_cache`]).
    pub domains: Vec<CpuSet>,
    /// How the domains relate to the reported nodes and cache groups.
    pub comparison: Comparison,
}

impl Probe {
    /// Probes every online CPU of the live machine (the matrix covers all
    /// of them; those the process may not use stay unmeasured), clusters,
    /// and compares with `topo`.
    pub fn run(topo: &Topology, config: &ProbeConfig) -> Result<Probe, ProbeError> {
        let online = online_cpus().unwrap_or_else(|| topo.cpus());
        let measurement = measure(&online, topo.cache_domains(), config)?;
        let together = smt_siblings(&measurement.probed);
        Ok(Probe::from_measurement(measurement, &together, topo))
    }

    /// Clusters and compares an existing measurement. `together` lists CPUs
    /// never to be split (SMT siblings).
    pub fn from_measurement(
        measurement: Measurement,
        together: &[CpuSet],
        topo: &Topology,
    ) -> Probe {
        let clustering = cluster(&measurement.matrix, together);
        let domains = extend_by_cache(&clustering.domains, topo.cache_domains());
        let comparison = Comparison::new(&domains, topo);
        Probe {
            measurement,
            clustering,
            domains,
            comparison,
        }
    }

    /// A topology with one node per piece of a kernel node cut by the
    /// domains, to run one pool per hidden domain
    /// (`Builder::topology(...)`); `None` when the domains cut no node.
    /// See [`pool_topology`] for what it keeps and what it drops.
    pub fn pool_topology(&self, base: &Topology) -> Option<Topology> {
        pool_topology(base, &self.domains, &self.measurement.matrix)
    }
}

/// Adds to each domain the CPUs sharing a last-level cache with one of its
/// CPUs and in no domain yet (CPUs left out by sampling).
pub fn extend_by_cache(domains: &[CpuSet], cache_domains: &[CpuSet]) -> Vec<CpuSet> {
    let mut placed = domains.iter().fold(CpuSet::new(), |acc, d| acc.union(d));
    domains
        .iter()
        .map(|d| {
            let mut out = d.clone();
            for cache in cache_domains.iter().filter(|c| c.intersects(d)) {
                let fresh = cache.difference(&placed);
                out = out.union(&fresh);
                placed = placed.union(&fresh);
            }
            out
        })
        .collect()
}

/// The live machine's online CPUs (`/sys/devices/system/cpu/online`).
pub fn online_cpus() -> Option<CpuSet> {
    let root = FsRoot::open(PathBuf::from("/")).ok()?;
    cpus::online_cpus(&root).ok().flatten()
}

/// Groups of SMT siblings (hardware threads of one core) among `cpus`, read
/// from `cpuN/topology/thread_siblings_list`; groups of one are left out.
pub fn smt_siblings(cpus: &CpuSet) -> Vec<CpuSet> {
    let Ok(root) = FsRoot::open(PathBuf::from("/")) else {
        return Vec::new();
    };
    let mut groups: Vec<CpuSet> = Vec::new();
    for cpu in cpus {
        if groups.iter().any(|g| g.contains(cpu)) {
            continue;
        }
        let path = format!("sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list");
        if let Ok(Some(siblings)) = root.read_list::<super::CpuKind>(&path) {
            let group = siblings.intersection(cpus);
            if group.len() > 1 {
                groups.push(group);
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(lists: &[&str]) -> Vec<CpuSet> {
        lists.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn sampled_cpus_join_their_cache_mates() {
        let domains = sets(&["0,8", "16,24"]);
        let caches = sets(&["0-7", "8-15", "16-23", "24-31"]);
        assert_eq!(extend_by_cache(&domains, &caches), sets(&["0-15", "16-31"]));
        assert_eq!(extend_by_cache(&domains, &[]), domains);
    }

    #[test]
    fn live_helpers_answer() {
        let online = online_cpus().expect("a Linux machine lists its online CPUs");
        assert!(!online.is_empty());
        for group in smt_siblings(&online) {
            assert!(group.len() > 1 && group.is_subset(&online));
        }
    }

    #[test]
    fn errors_say_what_failed() {
        let e = ProbeError::Pin {
            cpu: 3,
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert!(e.to_string().contains("CPU 3"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }
}
