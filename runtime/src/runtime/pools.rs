//! `Pools`: what the worker pools of a multi-thread runtime follow, the
//! kernel's NUMA nodes or latency domains found by the hidden-NUMA probe.

use std::fmt;
use std::io;

use crate::topology::probe::{pool_topology, LatencyMatrix, Probe, ProbeConfig};
use crate::topology::{CpuSet, Source, Topology};

/// The environment variable read under [`Pools::Auto`]: `nodes` or `probe`.
pub const POOLS_ENV: &str = "NUMA_RT_POOLS";

/// What the worker pools follow (see [`Builder::pools`]).
///
/// A pool is a set of workers with its own queues; stealing stays inside a
/// pool until it runs dry. By default there is one pool per NUMA node the
/// kernel reports. In VMs and containers that view can hide the hardware
/// (one node whose vCPUs span two sockets, several L3 domains inside one
/// node); [`Pools::Probed`] measures core-to-core latency when the runtime
/// is built and gives each *latency domain* its own pool.
///
/// # Memory stays on the kernel's node
///
/// Memory cannot be bound to a domain the kernel does not know. A pool cut
/// from a kernel node by the probe places *threads* (its workers are pinned
/// to the domain's CPUs) but its memory, task cells included, comes from
/// the kernel node it was cut from ([`Node::memory_node`]).
///
/// # Which nodes are split
///
/// Domains only ever cut kernel nodes, never merge them: a kernel node
/// becomes several pools exactly when the probe found several domains
/// among its CPUs, and a node the probe finds uniform stays one pool. When
/// no node is cut (the usual case, and always on a machine whose domains
/// match its nodes) the pools are the nodes, as with [`Pools::Nodes`].
///
/// [`Builder::pools`]: super::Builder::pools
/// [`Node::memory_node`]: crate::topology::Node::memory_node
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pools {
    /// [`POOLS_ENV`] decides (`NUMA_RT_POOLS=nodes` or `probe`); unset or
    /// empty means [`Pools::Nodes`]. An unknown value makes
    /// [`build`](super::Builder::build) fail.
    #[default]
    Auto,
    /// One pool per node of the topology.
    Nodes,
    /// Probe the live machine when the runtime is built and give each
    /// latency domain inside a node a pool of its own.
    ///
    /// The probe runs in its quick mode ([`ProbeConfig::quick`]): each pair
    /// of allowed CPUs is measured for about a millisecond on an idle
    /// machine (a 2-CPU VM adds 2 to 10 ms to `build`, a 32-CPU machine
    /// about half a second), and never longer than 10 s in all however
    /// busy the machine is. A probe that cannot run (the allowed CPUs
    /// cannot be read, a probe thread cannot be pinned or started) makes
    /// `build` fail with the probe's reason; it is not silently replaced
    /// by the nodes, since the caller asked for the probe. The probe
    /// measures the live machine, so it refuses a synthetic topology.
    Probed,
    /// These CPU groups as domains (for example the `domains` of an
    /// earlier `numa-rt probe --json`), applied like a probe's: each group
    /// cuts the kernel nodes it covers, CPUs in no group stay with the rest
    /// of their node. Distances between the pools of one node are then
    /// the kernel's node distance, at least 11.
    Domains(Vec<CpuSet>),
}

impl Pools {
    /// The choice `Auto` stands for: the environment's, else `Nodes`.
    pub(crate) fn resolve(&self) -> io::Result<Pools> {
        match self {
            Pools::Auto => from_env(std::env::var(POOLS_ENV).ok().as_deref()),
            other => Ok(other.clone()),
        }
    }
}

impl fmt::Display for Pools {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pools::Auto => f.write_str("auto"),
            Pools::Nodes => f.write_str("nodes"),
            Pools::Probed => f.write_str("probe"),
            Pools::Domains(d) => {
                let list: Vec<String> = d.iter().map(|s| s.to_string()).collect();
                write!(f, "domains {}", list.join(" / "))
            }
        }
    }
}

/// Parses the value of [`POOLS_ENV`]; `None` or empty means `Nodes`.
fn from_env(value: Option<&str>) -> io::Result<Pools> {
    match value.map(str::trim) {
        None | Some("") | Some("nodes") => Ok(Pools::Nodes),
        Some("probe") => Ok(Pools::Probed),
        Some(other) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("numa_rt: {POOLS_ENV}={other:?} is not one of `nodes`, `probe`"),
        )),
    }
}

/// The topology whose nodes become the pools, and what the probe did.
pub(crate) struct Resolved {
    /// The topology to build pools from.
    pub(crate) topology: Topology,
    /// Whether latency domains cut at least one kernel node.
    pub(crate) split: bool,
}

/// Applies `pools` (already resolved, not `Auto`) to `topology`.
pub(crate) fn apply(pools: &Pools, topology: Topology) -> io::Result<Resolved> {
    let (domains, matrix) = match pools {
        Pools::Auto | Pools::Nodes => {
            return Ok(Resolved {
                topology,
                split: false,
            })
        }
        Pools::Probed => {
            if let Source::Synthetic(spec) = topology.source() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "numa_rt: Pools::Probed measures the live machine and cannot \
                         split the synthetic topology {spec}; use Pools::Domains or \
                         Pools::Nodes"
                    ),
                ));
            }
            let probe = Probe::run(&topology, &ProbeConfig::quick()).map_err(|e| {
                io::Error::other(format!(
                    "numa_rt: the hidden-NUMA probe asked for by Pools::Probed \
                     (or {POOLS_ENV}=probe) failed: {e}; use Pools::Nodes to \
                     schedule by the kernel's nodes"
                ))
            })?;
            (probe.domains, probe.measurement.matrix)
        }
        Pools::Domains(domains) => {
            if domains.iter().any(CpuSet::is_empty) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "numa_rt: Pools::Domains was given an empty CPU group",
                ));
            }
            (domains.clone(), LatencyMatrix::new(Vec::new()))
        }
    };
    Ok(match pool_topology(&topology, &domains, &matrix) {
        Some(split) => Resolved {
            topology: split,
            split: true,
        },
        None => Resolved {
            topology,
            split: false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::probe::{Measurement, Probe};
    use crate::NodeId;
    use std::time::{Duration, Instant};

    fn sets(lists: &[&str]) -> Vec<CpuSet> {
        lists.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn env_spellings() {
        assert_eq!(from_env(None).unwrap(), Pools::Nodes);
        assert_eq!(from_env(Some("")).unwrap(), Pools::Nodes);
        assert_eq!(from_env(Some("nodes")).unwrap(), Pools::Nodes);
        assert_eq!(from_env(Some(" probe ")).unwrap(), Pools::Probed);
        let e = from_env(Some("domains")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("NUMA_RT_POOLS"), "{e}");
        assert_eq!(Pools::Nodes.resolve().unwrap(), Pools::Nodes);
    }

    /// A hidden two-socket VM: 8 CPUs on one kernel node, 50 ns inside a
    /// socket, 150 ns across.
    fn hidden_two_sockets() -> Probe {
        let mut m = LatencyMatrix::new((0..8).collect());
        for i in 0..8usize {
            for j in i + 1..8 {
                m.set(i, j, if i / 4 == j / 4 { 50.0 } else { 150.0 });
            }
        }
        let measurement = Measurement {
            matrix: m,
            probed: "0-7".parse().unwrap(),
            not_allowed: CpuSet::new(),
            sampled: false,
            timed_out: 0,
            elapsed: Duration::ZERO,
        };
        let base = Topology::single_node("0-7".parse().unwrap(), 8 << 30);
        Probe::from_measurement(measurement, &[], &base)
    }

    #[test]
    fn a_probed_matrix_splits_the_hidden_sockets() {
        let probe = hidden_two_sockets();
        assert_eq!(probe.domains, sets(&["0-3", "4-7"]));
        let base = Topology::single_node("0-7".parse().unwrap(), 8 << 30);
        let r = apply(&Pools::Domains(probe.domains), base).unwrap();
        assert!(r.split);
        let cpus: Vec<&CpuSet> = r.topology.cpu_nodes().map(|n| n.cpus()).collect();
        assert_eq!(cpus, [&sets(&["0-3"])[0], &sets(&["4-7"])[0]]);
        for n in r.topology.nodes() {
            assert_eq!(n.memory_node(), NodeId::new(0));
        }
        // Two workers per pool, pinned to their pool's socket.
        let nodes: Vec<_> = r.topology.cpu_nodes().cloned().collect();
        let homes = super::super::builder::worker_homes(&r.topology, &nodes, Some(2));
        assert_eq!(homes, sets(&["0-3", "0-3", "4-7", "4-7"]));
    }

    #[test]
    fn one_domain_keeps_the_nodes() {
        let base = Topology::single_node("0-7".parse().unwrap(), 8 << 30);
        let r = apply(&Pools::Domains(sets(&["0-7"])), base.clone()).unwrap();
        assert!(!r.split);
        assert_eq!(r.topology, base);
        let r = apply(&Pools::Nodes, base.clone()).unwrap();
        assert!(!r.split);
        assert!(apply(&Pools::Domains(vec![CpuSet::new()]), base).is_err());
    }

    #[test]
    fn the_probe_refuses_a_synthetic_topology() {
        let spec = crate::topology::Synthetic::from_spec("1x1").unwrap();
        let topo = Topology::synthetic(&spec).unwrap();
        let e = apply(&Pools::Probed, topo).err().unwrap();
        assert!(e.to_string().contains("synthetic"), "{e}");
    }

    #[test]
    fn the_live_probe_on_this_machine() {
        let base = Topology::discover().unwrap();
        let start = Instant::now();
        let r = apply(&Pools::Probed, base.clone()).unwrap();
        let t = start.elapsed();
        assert!(t < Duration::from_secs(11), "quick probe took {t:?}");
        if base.cpus().len() <= 3 {
            // Three CPUs or fewer cannot show a split (each domain needs
            // two CPUs): the pools are the kernel's nodes.
            assert!(!r.split);
            assert_eq!(r.topology, base);
        }
    }
}
