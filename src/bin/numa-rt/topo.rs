//! `numa-rt topo`: load the topology and print it in the chosen form.

use std::path::Path;

use numa_rt::topology::{CpuSet, Node, Source, Topology, TOPOLOGY_ENV};

use crate::args::TopoArgs;
use crate::error::CliError;
use crate::{output, topo_json, topo_svg, topo_text};

/// Runs `numa-rt topo` with the parsed options.
pub fn run(opts: &TopoArgs) -> Result<(), CliError> {
    let topo = load(opts.root.as_deref())?;
    if let Some(path) = &opts.svg {
        output::file_or_stdout(path, &topo_svg::render(&topo))?;
    }
    if opts.json {
        output::stdout(&topo_json::render(&topo))
    } else if opts.svg.is_none() {
        output::stdout(&topo_text::render(&topo))
    } else {
        Ok(())
    }
}

/// The saved tree at `root`, else what every numa_rt program runs on
/// (`NUMA_RT_TOPOLOGY` or the live machine).
fn load(root: Option<&Path>) -> Result<Topology, CliError> {
    let Some(root) = root else {
        return Topology::load().map_err(|e| {
            let e = e.to_string();
            let from_env = std::env::var_os(TOPOLOGY_ENV).is_some_and(|v| !v.is_empty());
            if from_env && !e.contains(TOPOLOGY_ENV) {
                CliError::failed(format!("{TOPOLOGY_ENV}: {e}"))
            } else {
                CliError::failed(format!("cannot read the topology: {e}"))
            }
        });
    };
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(CliError::failed(format!(
                "--root {}: not a directory",
                root.display()
            )))
        }
        Err(e) => return Err(CliError::failed(format!("--root {}: {e}", root.display()))),
    }
    Topology::from_root(root).map_err(|e| {
        CliError::failed(format!(
            "cannot read the topology under {}: {e}",
            root.display()
        ))
    })
}

/// One line saying where the topology came from.
pub fn describe_source(topo: &Topology) -> String {
    match topo.source() {
        Source::Live => "live machine".to_owned(),
        Source::Root(path) => format!("saved tree {}", path.display()),
        Source::Synthetic(spec) => format!("synthetic {spec} (NUMA_RT_TOPOLOGY)"),
    }
}

/// The CPUs each node is local to, in the order of [`Topology::nodes`], as
/// hwloc's Linux backend assigns them:
/// - a node with CPUs: its own CPUs;
/// - a memory-only node: the CPUs of its local initiators (HMAT);
/// - without HMAT: the CPUs of the nodes nearest to it by SLIT distance,
///   when they are strictly farther than the node itself and not all
///   other nodes are equally far;
/// - else every CPU of the machine (the node hangs off the whole machine).
pub fn locality_cpus(topo: &Topology) -> Vec<CpuSet> {
    let nodes = topo.nodes();
    let mut cpus: Vec<Option<CpuSet>> = nodes
        .iter()
        .map(|n| n.has_cpus().then(|| n.cpus().clone()))
        .collect();
    for i in 0..nodes.len() {
        if cpus[i].is_some() {
            continue;
        }
        let from_initiators = initiator_cpus(topo, &nodes[i]);
        let near = if from_initiators.is_empty() {
            nearest_by_distance(topo, i, &cpus)
        } else {
            Some(from_initiators)
        };
        cpus[i] = Some(near.unwrap_or_else(|| topo.cpus()));
    }
    cpus.into_iter().map(Option::unwrap_or_default).collect()
}

/// The CPUs of `node`'s local initiators (empty without HMAT).
fn initiator_cpus(topo: &Topology, node: &Node) -> CpuSet {
    node.local_initiators()
        .nodes()
        .filter_map(|id| topo.node(id))
        .fold(CpuSet::new(), |acc, n| acc.union(n.cpus()))
}

/// The union of the CPUs known so far of the nodes nearest to node `i`.
fn nearest_by_distance(topo: &Topology, i: usize, known: &[Option<CpuSet>]) -> Option<CpuSet> {
    let distances = topo.distances()?;
    let nodes = topo.nodes();
    let me = nodes[i].id();
    let own = distances.get(me, me)?;
    let others: Vec<(usize, u32)> = (0..nodes.len())
        .filter(|&j| j != i)
        .filter_map(|j| Some((j, distances.get(me, nodes[j].id())?)))
        .collect();
    let min = others.iter().map(|&(_, d)| d).min()?;
    let nearest: Vec<usize> = others
        .iter()
        .filter(|&&(_, d)| d == min)
        .map(|&(j, _)| j)
        .collect();
    if min <= own || nearest.len() == nodes.len() - 1 {
        return None;
    }
    let set = nearest
        .iter()
        .filter_map(|&j| known[j].as_ref())
        .fold(CpuSet::new(), |acc, c| acc.union(c));
    (!set.is_empty()).then_some(set)
}

/// `bytes` in GiB with one decimal (MiB below 1 GiB).
pub fn human_bytes(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    const GIB: f64 = (1u64 << 30) as f64;
    let b = bytes as f64;
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", b / GIB)
    } else {
        format!("{:.0} MiB", b / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use numa_rt::topology::Synthetic;

    #[test]
    fn cpu_nodes_are_local_to_their_own_cpus() {
        let base = Topology::single_node("0-3".parse().unwrap(), 4 << 30);
        let topo = Topology::synthetic_over(&base, &Synthetic::new(2, 2)).unwrap();
        let cpus = locality_cpus(&topo);
        assert_eq!(cpus[0].to_string(), "0-1");
        assert_eq!(cpus[1].to_string(), "2-3");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(human_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(human_bytes(512 << 20), "512 MiB");
        assert_eq!(human_bytes(0), "0 MiB");
    }

    #[test]
    fn missing_root_is_an_error_naming_it() {
        let err = load(Some(Path::new("/no/such/numa-rt-root"))).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("/no/such/numa-rt-root"), "{err}");
    }
}
