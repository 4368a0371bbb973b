//! Turning probed latency domains into pools: a topology whose nodes are
//! the domains, for `runtime::Builder::topology`.
//!
//! Each CPU node of the kernel's topology is cut by the latency domains:
//! every non-empty piece becomes a node of its own (numbered from 0 in CPU
//! order), so the scheduler builds one pool per piece and keeps stealing
//! inside it. Domains never merge kernel nodes: a domain spanning two nodes
//! stays two pools, since memory follows the kernel's nodes.
//!
//! Memory cannot be bound to a domain the kernel does not know: a piece's
//! [`memory_node`](super::super::Node::memory_node) is the kernel node it
//! was cut from (as for a synthetic topology), and the pieces of one node
//! share its memory size. Distances come from the measured latencies
//! (10 inside a piece, `10 x` the ratio of the median latency between two
//! pieces to the larger median inside them, at least 11), else from the
//! kernel's distance between their nodes. Memory-only nodes, HMAT values
//! and memory tiers are left out: their node numbers no longer apply.

use numa_rt_alloc::NodeId;

use super::super::{CpuSet, Distances, Node, Topology, LOCAL_DISTANCE};
use super::cluster::median;
use super::LatencyMatrix;

/// The topology with one node per piece of a kernel node cut by `domains`,
/// or `None` when no kernel node is cut (the domains add nothing to the
/// kernel's view). CPUs in no domain stay with the rest of their node.
pub fn pool_topology(
    base: &Topology,
    domains: &[CpuSet],
    matrix: &LatencyMatrix,
) -> Option<Topology> {
    // (real node, CPUs) for each piece, in CPU order.
    let mut pieces: Vec<(NodeId, CpuSet)> = Vec::new();
    let mut cut = false;
    for node in base.cpu_nodes() {
        let mut rest = node.cpus().clone();
        let mut parts: Vec<CpuSet> = Vec::new();
        for d in domains {
            let part = d.intersection(&rest);
            if !part.is_empty() {
                rest = rest.difference(&part);
                parts.push(part);
            }
        }
        if !rest.is_empty() {
            // Unplaced CPUs join the node's first piece.
            if let Some(first) = parts.first_mut() {
                *first = first.union(&rest);
            } else {
                parts.push(rest);
            }
        }
        cut |= parts.len() > 1;
        pieces.extend(parts.into_iter().map(|p| (node.id(), p)));
    }
    if !cut {
        return None;
    }
    pieces.sort_by_key(|(_, cpus)| cpus.first());

    let mut nodes: Vec<Node> = pieces
        .iter()
        .enumerate()
        .map(|(i, (real, cpus))| {
            let sharers = pieces.iter().filter(|(r, _)| r == real).count() as u64;
            let memory = base.node(*real).map_or(0, |n| n.memory_bytes()) / sharers.max(1);
            let mut node = Node::new(NodeId::new(i as u32), cpus.clone(), memory);
            node.memory_node = *real;
            node
        })
        .collect();
    let inside: Vec<Option<f64>> = pieces
        .iter()
        .map(|(_, p)| median(&latencies(matrix, p, p)))
        .collect();
    // Computed for a < b and mirrored, so the matrix is exactly symmetric.
    let distance = |a: usize, b: usize| -> u32 {
        let across = median(&latencies(matrix, &pieces[a].1, &pieces[b].1));
        let within = match (inside[a], inside[b]) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
        match (across, within) {
            (Some(across), Some(within)) if within > 0.0 => {
                let d = (f64::from(LOCAL_DISTANCE) * across / within).round();
                (d as u32).max(LOCAL_DISTANCE + 1)
            }
            _ => base
                .distance(pieces[a].0, pieces[b].0)
                .max(LOCAL_DISTANCE + 1),
        }
    };
    let rows: Vec<Vec<u32>> = (0..pieces.len())
        .map(|a| {
            (0..pieces.len())
                .map(|b| match a.cmp(&b) {
                    std::cmp::Ordering::Equal => LOCAL_DISTANCE,
                    std::cmp::Ordering::Less => distance(a, b),
                    std::cmp::Ordering::Greater => distance(b, a),
                })
                .collect()
        })
        .collect();
    let ids: Vec<NodeId> = nodes.iter().map(|n| n.id()).collect();
    let devices = base
        .devices()
        .iter()
        .cloned()
        .map(|mut dev| {
            dev.node = dev.node.and_then(|real| {
                pieces
                    .iter()
                    .position(|(r, _)| *r == real)
                    .map(|i| NodeId::new(i as u32))
            });
            dev
        })
        .collect();
    for node in &mut nodes {
        node.local_cpus = node.cpus.clone();
    }
    Some(Topology {
        distances: Distances::new(ids, rows),
        nodes,
        cache_domains: base.cache_domains().to_vec(),
        devices,
        memory_tiers: Vec::new(),
        numa_balancing: base.numa_balancing(),
        source: base.source().clone(),
    })
}

/// The measured latencies between CPUs of `a` and CPUs of `b` (each pair
/// once).
fn latencies(matrix: &LatencyMatrix, a: &CpuSet, b: &CpuSet) -> Vec<f64> {
    matrix
        .pairs()
        .filter_map(|(i, j, v)| {
            let (x, y) = (matrix.cpus()[i], matrix.cpus()[j]);
            ((a.contains(x) && b.contains(y)) || (a.contains(y) && b.contains(x))).then_some(v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_sockets() -> LatencyMatrix {
        let mut m = LatencyMatrix::new((0..8).collect());
        for i in 0..8usize {
            for j in i + 1..8 {
                m.set(i, j, if i / 4 == j / 4 { 50.0 } else { 150.0 });
            }
        }
        m
    }

    fn sets(lists: &[&str]) -> Vec<CpuSet> {
        lists.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn hidden_sockets_become_pools_on_the_real_node() {
        let base = Topology::single_node("0-7".parse().unwrap(), 8 << 30);
        let topo = pool_topology(&base, &sets(&["0-3", "4-7"]), &two_sockets()).unwrap();
        assert_eq!(topo.nodes().len(), 2);
        assert_eq!(topo.nodes()[0].cpus(), &sets(&["0-3"])[0]);
        assert_eq!(topo.nodes()[1].cpus(), &sets(&["4-7"])[0]);
        for n in topo.nodes() {
            assert_eq!(
                n.memory_node(),
                NodeId::new(0),
                "memory stays on the kernel node"
            );
            assert_eq!(n.memory_bytes(), 4 << 30);
        }
        assert_eq!(topo.distance(NodeId::new(0), NodeId::new(1)), 30);
        assert_eq!(topo.node_of_cpu(5), Some(NodeId::new(1)));
    }

    #[test]
    fn nothing_to_cut() {
        let base = Topology::single_node("0-7".parse().unwrap(), 8 << 30);
        assert!(pool_topology(&base, &sets(&["0-7"]), &two_sockets()).is_none());
        assert!(pool_topology(&base, &[], &two_sockets()).is_none());
    }

    #[test]
    fn unplaced_cpus_stay_with_their_node() {
        let base = Topology::single_node("0-9".parse().unwrap(), 1 << 30);
        let topo = pool_topology(&base, &sets(&["0-3", "4-7"]), &two_sockets()).unwrap();
        assert_eq!(topo.nodes()[0].cpus(), &sets(&["0-3,8-9"])[0]);
    }

    #[test]
    fn a_runtime_runs_one_pool_per_domain() {
        let base = Topology::discover().unwrap();
        let cpus: Vec<u32> = base.cpus().iter().take(2).collect();
        if cpus.len() < 2 || base.cpu_nodes().count() != 1 {
            return; // needs two usable CPUs on one kernel node
        }
        // A probe that found each CPU to be a domain of its own.
        let mut m = LatencyMatrix::new(cpus.clone());
        m.set(0, 1, 120.0);
        let domains: Vec<CpuSet> = cpus.iter().map(|&c| CpuSet::from_iter([c])).collect();
        let topo = pool_topology(&base, &domains, &m).unwrap();
        let rt = crate::runtime::Builder::new_multi_thread()
            .topology(topo)
            .worker_threads(1)
            .build()
            .unwrap();
        let second = NodeId::new(1);
        let (node, cpu) = rt.block_on(async move {
            crate::spawn_on(second, async {
                // SAFETY: sched_getcpu has no preconditions.
                let cpu = unsafe { libc::sched_getcpu() };
                (crate::task::current_node(), cpu)
            })
            .await
            .unwrap()
        });
        assert_eq!(node, Some(second));
        assert_eq!(cpu, cpus[1] as i32, "pinned to the second domain's CPU");
    }
}
