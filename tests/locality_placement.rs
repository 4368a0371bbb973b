//! Placement through the cost table on every saved machine of
//! `tests/fixtures/hwloc-linux`: memory-only nodes resolve to one of their
//! HMAT initiators, SLIT machines pick the nearest CPU node.

mod common;

use numa_rt::locality::{Bandwidth, CostSource, CostTable, Target, Weighted};
use numa_rt::topology::Topology;
use numa_rt::NodeId;
use std::sync::OnceLock;

/// Every fixture's topology, read once: `common::extract_fixture` stages
/// by process id, so the tests of this binary must not extract in parallel.
fn topologies() -> &'static [(String, Topology)] {
    static ALL: OnceLock<Vec<(String, Topology)>> = OnceLock::new();
    ALL.get_or_init(|| {
        common::fixture_names()
            .into_iter()
            .map(|name| {
                let root = common::extract_fixture(&name);
                let topo = Topology::from_root(&root).unwrap();
                (name, topo)
            })
            .collect()
    })
}

#[test]
fn memory_only_nodes_resolve_to_an_initiator() {
    let mut checked = 0;
    for (name, topo) in topologies() {
        let topo = topo.clone();
        let table = CostTable::new(&topo);
        for node in topo.nodes().iter().filter(|n| !n.has_cpus()) {
            let initiators = node.local_initiators();
            let home = node.id().placement_in(&topo, &table).unwrap().home;
            assert!(
                topo.node(home).unwrap().has_cpus(),
                "{name}: node {} resolved to CPU-less {home}",
                node.id()
            );
            if !initiators.is_empty() {
                // The initiators HMAT names may be nodes this process cannot
                // use (generic initiators): then the home must hold some of
                // the node's local CPUs, which are the initiators' CPUs.
                let home_cpus = topo.node(home).unwrap().cpus();
                assert!(
                    initiators.contains_node(home) || home_cpus.intersects(node.local_cpus()),
                    "{name}: memory-only node {} resolved to {home}, not one of its \
                     initiators {initiators}",
                    node.id()
                );
                // Bandwidth-bound use of it lands there too.
                let bw = Bandwidth(node.id()).placement_in(&topo, &table).unwrap();
                let bw_cpus = topo.node(bw.home).unwrap().cpus();
                assert!(
                    initiators.contains_node(bw.home) || bw_cpus.intersects(node.local_cpus()),
                    "{name}: bandwidth-bound use of node {} went to {}",
                    node.id(),
                    bw.home
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked > 0,
        "no fixture has a memory-only node with initiators"
    );
}

#[test]
fn slit_machines_pick_the_nearest_node() {
    let mut checked = 0;
    for (name, topo) in topologies() {
        let topo = topo.clone();
        let table = CostTable::new(&topo);
        if table.source(numa_rt::locality::Bound::Latency) != CostSource::Distances {
            continue;
        }
        let cpu_nodes: Vec<NodeId> = topo.cpu_nodes().map(|n| n.id()).collect();
        for node in topo.nodes() {
            let home = node.id().placement_in(&topo, &table).unwrap().home;
            let best = cpu_nodes
                .iter()
                .map(|&c| topo.distance(c, node.id()))
                .min()
                .unwrap();
            assert_eq!(
                topo.distance(home, node.id()),
                best,
                "{name}: node {} placed on {home}, not a nearest CPU node",
                node.id()
            );
            if node.has_cpus() {
                assert_eq!(home, node.id(), "{name}");
            }
            checked += 1;
        }
        // Two nodes, one used three times as much: the heavier one wins
        // when both have CPUs and the distance is symmetric.
        if cpu_nodes.len() >= 2 {
            let (a, b) = (cpu_nodes[0], cpu_nodes[cpu_nodes.len() - 1]);
            if topo.distance(a, b) == topo.distance(b, a) {
                let heavy_b = (a, Weighted(b, 3)).placement_in(&topo, &table).unwrap();
                assert_eq!(heavy_b.home, b, "{name}");
                let heavy_a = (Weighted(a, 3), b).placement_in(&topo, &table).unwrap();
                assert_eq!(heavy_a.home, a, "{name}");
            }
        }
    }
    assert!(checked > 0);
}

#[test]
fn hmat_tables_use_hmat() {
    let mut hmat = 0;
    for (name, topo) in topologies() {
        let topo = topo.clone();
        let table = CostTable::new(&topo);
        let all_have_latency = topo.nodes().iter().all(|n| {
            n.access(numa_rt::topology::AccessClass::Cpu)
                .or_else(|| n.access(numa_rt::topology::AccessClass::All))
                .and_then(|a| a.latency_ns())
                .is_some_and(|v| v > 0)
        });
        let expected = if all_have_latency {
            CostSource::Hmat
        } else {
            CostSource::Distances
        };
        assert_eq!(
            table.source(numa_rt::locality::Bound::Latency),
            expected,
            "{name}"
        );
        if all_have_latency {
            hmat += 1;
            // The fastest local access costs the base cost.
            let min = topo
                .cpu_nodes()
                .filter_map(|c| table.cost(c.id(), c.id(), numa_rt::locality::Bound::Latency))
                .min();
            assert!(min.is_some(), "{name}");
        }
    }
    eprintln!("{hmat} fixtures with HMAT latency on every node");
}
