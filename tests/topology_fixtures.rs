//! Topology discovery against real and fake machines: every saved sysfs
//! tree of `tests/fixtures/hwloc-linux/` is discovered and compared with
//! what hwloc 2.9 reports for it (`NAME.hwloc.json`).
//!
//! All mismatches of all trees are collected and reported together.
//!
//! More trees can be checked the same way: put `NAME.tar.bz2` and
//! `NAME.hwloc.json` pairs in a folder and run
//! `NUMA_RT_HWLOC_TREES=/that/folder cargo test --test topology_fixtures -- --ignored`.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use numa_rt::topology::{MemAttrKind, Topology};
use serde_json::Value;

/// `Some(ids)` for a JSON array of numbers.
fn numbers(value: &Value) -> Option<Vec<u64>> {
    value.as_array()?.iter().map(Value::as_u64).collect()
}

fn compare_tree(name: &str, root: &Path, json: &Path, problems: &mut Vec<String>) {
    let mut report = |what: String| problems.push(format!("{name}: {what}"));
    let topo = match Topology::from_root(root) {
        Ok(topo) => topo,
        Err(err) => return report(format!("discovery failed: {err}")),
    };
    let text = std::fs::read_to_string(json).expect("read hwloc.json");
    let expected: Value = serde_json::from_str(&text).expect("hwloc.json is JSON");

    // Nodes: ids, CPUs, memory, subtype.
    let empty = Vec::new();
    let want_nodes = expected["nodes"].as_array().unwrap_or(&empty);
    let want_ids: Vec<u64> = want_nodes.iter().filter_map(|n| n["id"].as_u64()).collect();
    let got_ids: Vec<u64> = topo
        .nodes()
        .iter()
        .map(|n| u64::from(n.id().index()))
        .collect();
    if want_ids != got_ids {
        report(format!("node ids: hwloc {want_ids:?}, ours {got_ids:?}"));
    }
    for want in want_nodes {
        let Some(id) = want["id"].as_u64() else {
            report(format!("node without id in hwloc.json: {want}"));
            continue;
        };
        let Some(node) = topo
            .nodes()
            .iter()
            .find(|n| u64::from(n.id().index()) == id)
        else {
            continue;
        };
        // hwloc's node cpuset: the node's online CPUs before the cgroup's CPU
        // limit (hwloc's `complete_cpuset`; the `*-cpusets` trees show the
        // difference), or for a memory-only node its local initiators' CPUs.
        // `cpus()` also applies the limit: it must be a subset.
        let want_cpus = numbers(&want["cpus"]).unwrap_or_default();
        let got_cpus: Vec<u64> = node.local_cpus().iter().map(u64::from).collect();
        if want_cpus != got_cpus {
            report(format!(
                "node {id} cpus: hwloc {want_cpus:?}, ours {got_cpus:?}"
            ));
        }
        if !node.cpus().is_subset(node.local_cpus()) {
            report(format!(
                "node {id}: usable cpus {} not within its local cpus {}",
                node.cpus(),
                node.local_cpus()
            ));
        }
        let want_mem = want["memory_bytes"].as_u64().unwrap_or(0);
        let got_mem = node.memory_bytes();
        if want_mem.abs_diff(got_mem) > want_mem / 100 {
            report(format!(
                "node {id} memory: hwloc {want_mem}, ours {got_mem} (more than 1% apart)"
            ));
        }
        let want_subtype = want["subtype"].as_str();
        if want_subtype != node.subtype() {
            report(format!(
                "node {id} subtype: hwloc {want_subtype:?}, ours {:?}",
                node.subtype()
            ));
        }
    }

    // Distances: the same ids and values, or none on both sides.
    let want_dist = &expected["distances"];
    match (want_dist.is_null(), topo.distances()) {
        (true, None) => {}
        (true, Some(d)) => report(format!("distances: hwloc none, ours over {:?}", d.ids())),
        (false, None) => report(format!("distances: hwloc {want_dist}, ours none")),
        (false, Some(d)) => {
            let want_ids = numbers(&want_dist["ids"]).unwrap_or_default();
            let got_ids: Vec<u64> = d.ids().iter().map(|id| u64::from(id.index())).collect();
            let want_rows: Vec<Vec<u64>> = want_dist["matrix"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .map(|row| numbers(row).unwrap_or_default())
                .collect();
            let got_rows: Vec<Vec<u64>> = d
                .rows()
                .map(|row| row.iter().map(|&v| u64::from(v)).collect())
                .collect();
            if want_ids != got_ids || want_rows != got_rows {
                report(format!(
                    "distances: hwloc {want_ids:?} {want_rows:?}, ours {got_ids:?} {got_rows:?}"
                ));
            }
        }
    }

    // Memory attributes: every kind, every target, value and initiators.
    let got_attrs = topo.memory_attributes();
    for kind in MemAttrKind::ALL {
        let mut want: BTreeMap<u64, (u64, Vec<u64>)> = BTreeMap::new();
        for entry in expected["memattrs"][kind.name()]
            .as_array()
            .unwrap_or(&empty)
        {
            let (Some(target), Some(value)) = (entry["target"].as_u64(), entry["value"].as_u64())
            else {
                report(format!(
                    "malformed {} entry in hwloc.json: {entry}",
                    kind.name()
                ));
                continue;
            };
            let cpus = numbers(&entry["initiator_cpus"]).unwrap_or_default();
            want.insert(target, (value, cpus));
        }
        let got: BTreeMap<u64, (u64, Vec<u64>)> = got_attrs
            .iter()
            .filter(|a| a.kind == kind)
            .map(|a| {
                let cpus = a.initiator_cpus.iter().map(u64::from).collect();
                (u64::from(a.target.index()), (a.value, cpus))
            })
            .collect();
        if want != got {
            report(format!(
                "memattr {}: hwloc {want:?}, ours {got:?}",
                kind.name()
            ));
        }
    }
}

#[test]
fn discovery_agrees_with_hwloc_on_every_fixture() {
    let names = common::fixture_names();
    assert!(
        names.len() >= 28,
        "expected the fixture trees in tests/fixtures/hwloc-linux, found {names:?}"
    );
    let mut problems = Vec::new();
    for name in &names {
        let root = common::extract_fixture(name);
        compare_tree(name, &root, &common::hwloc_json_path(name), &mut problems);
    }
    report_all(&problems, names.len());
}

fn report_all(problems: &[String], trees: usize) {
    if !problems.is_empty() {
        let mut msg = format!(
            "{} disagreement(s) with hwloc over {trees} trees:\n",
            problems.len(),
        );
        for p in problems {
            let _ = writeln!(msg, "  {p}");
        }
        panic!("{msg}");
    }
}

#[test]
#[ignore = "needs NUMA_RT_HWLOC_TREES=<folder of NAME.tar.bz2 + NAME.hwloc.json>"]
fn discovery_agrees_with_hwloc_on_extra_trees() {
    let dir = PathBuf::from(
        std::env::var_os("NUMA_RT_HWLOC_TREES").expect("set NUMA_RT_HWLOC_TREES to a folder"),
    );
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("NUMA_RT_HWLOC_TREES is readable")
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".hwloc.json").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no NAME.hwloc.json in {}", dir.display());
    let mut problems = Vec::new();
    for name in &names {
        let root = common::extract_tarball(&dir.join(format!("{name}.tar.bz2")), name);
        compare_tree(
            name,
            &root,
            &dir.join(format!("{name}.hwloc.json")),
            &mut problems,
        );
    }
    report_all(&problems, names.len());
}

#[test]
fn missing_root_and_malformed_files_name_the_file() {
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-numa-root");
    let err = Topology::from_root(&missing).unwrap_err();
    assert_eq!(err.path(), Some(missing.as_path()), "{err}");
    assert!(err.to_string().contains("no-such-numa-root"), "{err}");

    // A real tree with one node's CPU list corrupted.
    let tree = Path::new(env!("CARGO_TARGET_TMPDIR")).join("malformed-tree");
    let _ = std::fs::remove_dir_all(&tree);
    let node = tree.join("sys/devices/system/node/node1");
    std::fs::create_dir_all(&node).unwrap();
    std::fs::create_dir_all(tree.join("sys/devices/system/cpu/cpu0/topology")).unwrap();
    std::fs::write(node.join("cpulist"), "0-3,x\n").unwrap();
    let err = Topology::from_root(&tree).unwrap_err();
    assert_eq!(err.path(), Some(node.join("cpulist").as_path()), "{err}");
    assert!(err.to_string().contains("node1/cpulist"), "{err}");
}

#[test]
fn every_fixture_has_its_hwloc_json() {
    for name in common::fixture_names() {
        assert!(
            common::hwloc_json_path(&name).is_file(),
            "{name}.hwloc.json is missing"
        );
    }
}

#[test]
fn fixture_roots_hold_sys() {
    // The root is the folder inside the tarball, whose name may differ.
    let root = common::extract_fixture("20s390-2g6s4c");
    assert!(root.join("sys").is_dir(), "{}", root.display());
    assert!(root.ends_with("20s390-2g2g2s4co"), "{}", root.display());
}

/// Worker pools never share a CPU, and CPUs of nodes dropped from the
/// topology (memoryless CPU nodes outside the cpuset's `mems`) still get a
/// pool: the node hwloc places them under.
#[test]
fn every_usable_cpu_has_exactly_one_pool() {
    for name in common::fixture_names() {
        let root = common::extract_fixture(&name);
        let topo = Topology::from_root(&root).expect("discovery");
        let mut seen = numa_rt::topology::CpuSet::new();
        for node in topo.cpu_nodes() {
            assert!(
                !seen.intersects(node.cpus()),
                "{name}: node {} shares CPUs with another pool",
                node.id()
            );
            seen = seen.union(node.cpus());
            assert!(
                node.cpus().is_subset(node.local_cpus()),
                "{name}: node {} runs workers outside its locality",
                node.id()
            );
        }
        assert!(!seen.is_empty(), "{name}: no CPU for workers");
    }
    let root = common::extract_fixture("fakememinitiators-1np2c+1npp+gi");
    let topo = Topology::from_root(&root).expect("discovery");
    let pools: Vec<String> = topo
        .cpu_nodes()
        .map(|n| format!("{}:{}", n.id().index(), n.cpus()))
        .collect();
    assert_eq!(pools, ["5:0-1", "6:4-5", "8:2-3", "9:6-7"]);
}
