//! Whole sysfs/procfs trees read by `Topology::from_root`: node and CPU
//! lists, meminfo, distance rows, HMAT access values, initiator entries,
//! memory tiers, /proc/mounts, /proc/self/cgroup, /proc/self/cpuset,
//! cgroup cpuset files. (The readers are private; `from_root` is their
//! public entry point.) File names are fixed, contents are fuzzed bytes.
//!
//! Properties: no panic; an accepted topology is consistent: node ids
//! strictly increase, CPU sets of nodes are disjoint, and distances (when
//! present) form a square matrix.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use numa_rt_runtime::topology::Topology;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Arbitrary, Debug)]
struct NodeFiles {
    id: u8,
    cpulist: Option<Vec<u8>>,
    meminfo: Option<Vec<u8>>,
    distance: Option<Vec<u8>>,
    /// read_latency, write_latency, read_bandwidth, write_bandwidth.
    access0: Option<[Vec<u8>; 4]>,
    initiators: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Tree {
    node_online: Option<Vec<u8>>,
    node_possible: Option<Vec<u8>>,
    cpu_online: Option<Vec<u8>>,
    nodes: Vec<NodeFiles>,
    memory_tier: Option<Vec<u8>>,
    mounts: Option<Vec<u8>>,
    self_cgroup: Option<Vec<u8>>,
    self_cpuset: Option<Vec<u8>>,
    controllers: Option<Vec<u8>>,
    cpuset_cpus: Option<Vec<u8>>,
    cpuset_mems: Option<Vec<u8>>,
    cpuinfo: Option<Vec<u8>>,
}

fn put(root: &Path, rel: &str, bytes: &Option<Vec<u8>>) {
    if let Some(bytes) = bytes {
        write(root, rel, bytes);
    }
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("a relative path has a parent"))
        .expect("scratch directory");
    fs::write(path, bytes).expect("scratch file");
}

fn scratch() -> PathBuf {
    let base = std::env::var_os("NUMA_RT_FUZZ_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/shm"));
    base.join(format!("numa-rt-fuzz-sysfs-{}", std::process::id()))
}

fn build(root: &Path, tree: &Tree) {
    let node = "sys/devices/system/node";
    put(root, &format!("{node}/online"), &tree.node_online);
    put(root, &format!("{node}/possible"), &tree.node_possible);
    put(root, "sys/devices/system/cpu/online", &tree.cpu_online);
    for n in tree.nodes.iter().take(6) {
        let dir = format!("{node}/node{}", n.id % 8);
        fs::create_dir_all(root.join(&dir)).expect("scratch directory");
        put(root, &format!("{dir}/cpulist"), &n.cpulist);
        put(root, &format!("{dir}/meminfo"), &n.meminfo);
        put(root, &format!("{dir}/distance"), &n.distance);
        if let Some(values) = &n.access0 {
            let init = format!("{dir}/access0/initiators");
            let names = [
                "read_latency",
                "write_latency",
                "read_bandwidth",
                "write_bandwidth",
            ];
            for (name, value) in names.iter().zip(values) {
                write(root, &format!("{init}/{name}"), value);
            }
            for i in n.initiators.iter().take(4) {
                write(root, &format!("{init}/node{}", i % 8), b"");
            }
        }
    }
    put(
        root,
        "sys/devices/virtual/memory_tiering/memory_tier4/nodelist",
        &tree.memory_tier,
    );
    put(root, "proc/mounts", &tree.mounts);
    put(root, "proc/self/cgroup", &tree.self_cgroup);
    put(root, "proc/self/cpuset", &tree.self_cpuset);
    put(root, "proc/cpuinfo", &tree.cpuinfo);
    let cg = "sys/fs/cgroup";
    put(root, &format!("{cg}/cgroup.controllers"), &tree.controllers);
    put(
        root,
        &format!("{cg}/cpuset.cpus.effective"),
        &tree.cpuset_cpus,
    );
    put(
        root,
        &format!("{cg}/cpuset.mems.effective"),
        &tree.cpuset_mems,
    );
    put(root, &format!("{cg}/cpuset.cpus"), &tree.cpuset_cpus);
    put(root, &format!("{cg}/cpuset.mems"), &tree.cpuset_mems);
}

fn check(topo: &Topology) {
    let nodes = topo.nodes();
    for pair in nodes.windows(2) {
        assert!(pair[0].id() < pair[1].id(), "node ids increase");
    }
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            assert!(!a.cpus().intersects(b.cpus()), "nodes share CPUs");
        }
    }
    if let Some(d) = topo.distances() {
        let n = d.ids().len();
        assert_eq!(d.rows().count(), n, "a distance row per node");
        for row in d.rows() {
            assert_eq!(row.len(), n, "square distances");
        }
    }
}

fuzz_target!(|tree: Tree| {
    let root = scratch();
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).expect("scratch directory");
    build(&root, &tree);
    if let Ok(topo) = Topology::from_root(&root) {
        check(&topo);
    }
    let _ = fs::remove_dir_all(&root);
});
