//! Discovery from a sysfs/procfs tree: the live `/` or a saved root.
//!
//! Puts the pieces together: online CPUs ([`cpus`](super::cpus)), nodes
//! ([`nodes`](super::nodes)), the process's cpuset ([`cgroup`](super::cgroup))
//! and, on the live machine, its CPU affinity; then cache domains, devices,
//! memory tiers and NUMA balancing.
//!
//! Documented fallbacks:
//! - no `node/` directory (or no usable node in it): one node 0 holding
//!   every online CPU, with `MemTotal` of `proc/meminfo` (0 when missing);
//! - no `cpu/` directory: the `cpu/online` list, else the nodes' CPUs, else
//!   the processors of `proc/cpuinfo`, else (live only) the CPUs in the
//!   process's affinity;
//! - a cpuset or affinity that leaves none of the machine's CPUs (or nodes)
//!   is ignored rather than producing a machine with nothing to run on.

use std::path::PathBuf;

use numa_rt_alloc::NodeId;

use super::attach::Hierarchy;
use super::root::FsRoot;
use super::{
    caches, cgroup, cpus, devices, nodes, tiers, CpuSet, Distances, Node, NodeSet, Source,
    Topology, TopologyError,
};

pub(super) fn discover_live() -> Result<Topology, TopologyError> {
    let root = FsRoot::open(PathBuf::from("/"))?;
    discover(&root, Source::Live, affinity())
}

pub(super) fn discover_root(root: PathBuf) -> Result<Topology, TopologyError> {
    let fs_root = FsRoot::open(root.clone())?;
    discover(&fs_root, Source::Root(root), None)
}

/// Reads the topology under `root`, limited by its cpuset and by
/// `affinity` when given.
fn discover(
    root: &FsRoot,
    source: Source,
    affinity: Option<CpuSet>,
) -> Result<Topology, TopologyError> {
    let limits = cgroup::limits(root)?;
    let sys_nodes = nodes::read(root, source == Source::Live)?;
    let online = match cpus::online_cpus(root)? {
        Some(cpus) => cpus,
        None => match (&sys_nodes, cpus::cpuinfo_cpus(root), &affinity) {
            (Some(n), _, _) => n
                .nodes
                .iter()
                .fold(CpuSet::new(), |acc, n| acc.union(&n.cpus)),
            (None, Some(listed), _) => listed,
            (None, None, Some(aff)) => aff.clone(),
            (None, None, None) => {
                return Err(TopologyError::file(
                    &root.path("sys/devices/system/cpu"),
                    "no CPU information (no cpuN directories, online list or proc/cpuinfo)",
                ))
            }
        },
    };
    let mut allowed = restrict(&online, limits.cpus.as_ref());
    allowed = restrict(&allowed, affinity.as_ref());

    let (node_list, dax, rows) = match sys_nodes {
        Some(n) => {
            let mut node_list = n.nodes;
            if !n.knl {
                attach_nodes(root, &online, &mut node_list);
            }
            (node_list, n.dax, n.distances)
        }
        None => {
            let memory = root
                .read_optional("proc/meminfo")
                .map_or(0, |text| nodes::mem_total_bytes(&text));
            let node = Node::new(NodeId::new(0), online.clone(), memory);
            (vec![node], vec![None], None)
        }
    };

    // The memory nodes the process may use; a limit naming none of them is
    // ignored.
    let usable_ids = restrict(&nodes::id_set(&node_list), limits.mems.as_ref());
    let (mut node_list, dax, rows) = retain_nodes(node_list, dax, rows, &usable_ids);

    let own_cpus: Vec<(NodeId, CpuSet)> = node_list
        .iter()
        .map(|n| (n.id, n.cpus.intersection(&online)))
        .collect();
    for node in &mut node_list {
        node.local_cpus = node.local_cpus.intersection(&online);
        node.cpus = node.cpus.intersection(&allowed);
        // As hwloc does, memory attributes apply to the initiator CPUs the
        // process may use, and vanish when it may use none of them.
        node.memattr_initiators = node.memattr_initiators.intersection(&allowed);
        if node.memattr_initiators.is_empty() {
            node.memattrs.clear();
        }
    }
    adopt_orphan_cpus(&mut node_list, &allowed);
    tiers::guess_subtypes(&mut node_list, &dax, &allowed);

    let ids: Vec<NodeId> = node_list.iter().map(|n| n.id).collect();
    let distances = rows
        .filter(|_| ids.len() >= 2)
        .and_then(|rows| Distances::new(ids.clone(), rows));
    let usable_cpus = node_list
        .iter()
        .fold(CpuSet::new(), |acc, n| acc.union(&n.cpus));
    let memory_tiers = tiers::memory_tiers(root, &ids.iter().copied().collect::<NodeSet>())?;
    let numa_balancing = root
        .read_u64("proc/sys/kernel/numa_balancing")
        .map(|v| v != 0);

    Ok(Topology {
        cache_domains: caches::cache_domains(root, &usable_cpus),
        devices: devices::devices(root, &own_cpus),
        nodes: node_list,
        distances,
        memory_tiers,
        numa_balancing,
        source,
    })
}

/// Nodes with their DAX kinds and SLIT rows, in the same order.
type NodesWithRows = (
    Vec<Node>,
    Vec<Option<nodes::DaxKind>>,
    Option<Vec<Vec<u32>>>,
);

/// Keeps the nodes in `usable` with their DAX kinds and distance rows.
fn retain_nodes(
    nodes: Vec<Node>,
    dax: Vec<Option<nodes::DaxKind>>,
    rows: Option<Vec<Vec<u32>>>,
    usable: &NodeSet,
) -> NodesWithRows {
    let kept: Vec<usize> = (0..nodes.len())
        .filter(|&i| usable.contains_node(nodes[i].id))
        .collect();
    let rows = rows.map(|rows| {
        kept.iter()
            .map(|&i| kept.iter().map(|&j| rows[i][j]).collect())
            .collect()
    });
    let dax = kept
        .iter()
        .map(|&i| dax.get(i).copied().flatten())
        .collect();
    let nodes = nodes
        .into_iter()
        .filter(|n| usable.contains_node(n.id))
        .collect();
    (nodes, dax, rows)
}

/// Gives each node the CPUs of where it attaches in the CPU hierarchy
/// (see [`attach`](super::attach)), in hwloc's order: nodes with CPUs first,
/// then CPU-less ones, each by id.
fn attach_nodes(root: &FsRoot, online: &CpuSet, nodes: &mut [Node]) {
    let mut hierarchy = Hierarchy::read(root, online);
    let (with_cpus, cpuless): (Vec<usize>, Vec<usize>) =
        (0..nodes.len()).partition(|&i| !nodes[i].cpus.is_empty());
    for i in with_cpus.into_iter().chain(cpuless) {
        nodes[i].local_cpus = hierarchy.attach(&nodes[i].local_cpus);
    }
}

/// Gives a worker pool to usable CPUs whose own node was dropped (a
/// memoryless CPU node left out of the cpuset's `mems`, or one whose CPUs
/// another node claimed): each joins the node whose locality contains it
/// most tightly (smallest `local_cpus`, then lowest id), the node hwloc
/// places it under. A CPU inside no node's locality gets no pool.
fn adopt_orphan_cpus(nodes: &mut [Node], allowed: &CpuSet) {
    let claimed = nodes
        .iter()
        .fold(CpuSet::new(), |acc, n| acc.union(&n.cpus));
    for cpu in allowed.difference(&claimed).iter() {
        let home = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.local_cpus.contains(cpu))
            .min_by_key(|(_, n)| (n.local_cpus.len(), n.id))
            .map(|(i, _)| i);
        if let Some(i) = home {
            nodes[i].cpus.insert(cpu);
        }
    }
}

/// `set` limited to `limit`, unless that would leave nothing.
fn restrict<K>(set: &super::IdSet<K>, limit: Option<&super::IdSet<K>>) -> super::IdSet<K> {
    match limit {
        Some(limit) if set.intersects(limit) => set.intersection(limit),
        _ => set.clone(),
    }
}

/// The CPUs the process may run on: the affinity of its main thread
/// (`sched_getaffinity` on the process id, so a pinned worker thread calling
/// this does not narrow it). `None` when the kernel will not say.
fn affinity() -> Option<CpuSet> {
    // SAFETY: getpid has no preconditions and cannot fail.
    let pid = unsafe { libc::getpid() };
    let mut words = 16usize; // 1024 CPUs to start with.
    while words <= 1 << 14 {
        let mut mask = vec![0u64; words];
        let bytes = words * std::mem::size_of::<u64>();
        // SAFETY: `mask` is a live, writable buffer of exactly `bytes` bytes,
        // and the kernel writes at most `bytes` bytes into it. The kernel's
        // mask is an array of unsigned longs, which is u64 on the 64-bit
        // targets and little-endian bit order within words on all Linux
        // targets we build for.
        let ret = unsafe { libc::sched_getaffinity(pid, bytes, mask.as_mut_ptr().cast()) };
        if ret == 0 {
            return Some(CpuSet::from_words(mask));
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
            return None;
        }
        words *= 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    fn write(base: &Path, rel: &str, text: &str) {
        let path = base.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn cpu(base: &Path, n: u32) {
        fs::create_dir_all(base.join(format!("sys/devices/system/cpu/cpu{n}/topology"))).unwrap();
    }

    #[test]
    fn no_node_directory_is_one_node() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        for n in 0..3 {
            cpu(b, n);
        }
        write(b, "proc/meminfo", "MemTotal:  4096 kB\nMemFree: 1 kB\n");
        write(b, "proc/sys/kernel/numa_balancing", "1\n");
        let topo = Topology::from_root(b).unwrap();
        assert_eq!(topo.nodes().len(), 1);
        assert_eq!(topo.nodes()[0].cpus().to_string(), "0-2");
        assert_eq!(topo.nodes()[0].memory_bytes(), 4 << 20);
        assert!(topo.distances().is_none());
        assert_eq!(topo.numa_balancing(), Some(true));
        assert_eq!(topo.source(), &Source::Root(b.to_owned()));
    }

    /// A corrupt `online` list: numbers past the cap are an error naming
    /// the file; the largest accepted range is discovered in bounded time
    /// and memory (the fuzzer once found a quadratic blow-up here).
    #[test]
    fn huge_cpu_numbers_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        // No `cpuN/topology` directories: the `online` list is trusted.
        fs::create_dir_all(b.join("sys/devices/system/cpu/cpu5/cache/index3")).unwrap();
        write(b, "sys/devices/system/cpu/cpu5/cache/index3/level", "3\n");
        write(
            b,
            "sys/devices/system/cpu/cpu5/cache/index3/shared_cpu_list",
            "5\n",
        );
        write(b, "sys/devices/system/cpu/online", "5-565554\n");
        let err = Topology::from_root(b).unwrap_err();
        assert!(err.to_string().contains("online"), "{err}");

        write(b, "sys/devices/system/cpu/online", "5-65535\n");
        let start = std::time::Instant::now();
        let topo = Topology::from_root(b).unwrap();
        assert_eq!(topo.cpus().len(), 65531);
        assert_eq!(topo.cache_domains().len(), 65531);
        assert!(start.elapsed() < std::time::Duration::from_secs(30));
    }

    #[test]
    fn cpuset_limits_cpus_and_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        for n in 0..4 {
            cpu(b, n);
        }
        for (id, cpus, dist) in [(0, "0-1", "10 20\n"), (1, "2-3", "20 10\n")] {
            write(
                b,
                &format!("sys/devices/system/node/node{id}/cpulist"),
                cpus,
            );
            write(
                b,
                &format!("sys/devices/system/node/node{id}/distance"),
                dist,
            );
        }
        write(b, "proc/mounts", "none /dev/cpuset cpuset rw 0 0\n");
        write(b, "proc/self/cpuset", "/job\n");
        write(b, "dev/cpuset/job/cpus", "1-3\n");
        write(b, "dev/cpuset/job/mems", "1\n");
        let topo = Topology::from_root(b).unwrap();
        assert_eq!(topo.nodes().len(), 1);
        let node = &topo.nodes()[0];
        assert_eq!(node.id(), NodeId::new(1));
        assert_eq!(node.cpus().to_string(), "2-3");
        assert!(topo.distances().is_none(), "one node left: no matrix");
        assert_eq!(topo.numa_balancing(), None);
    }

    #[test]
    fn offline_and_disallowed_cpus() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        for n in 0..4 {
            cpu(b, n);
        }
        write(b, "sys/devices/system/cpu/online", "0-2\n");
        write(b, "sys/devices/system/node/node0/cpulist", "0-3\n");
        write(b, "proc/mounts", "none /dev/cpuset cpuset rw 0 0\n");
        write(b, "proc/self/cpuset", "/\n");
        write(b, "dev/cpuset/cpus", "1-3\n");
        let topo = Topology::from_root(b).unwrap();
        let node = &topo.nodes()[0];
        assert_eq!(node.cpus().to_string(), "1-2");
        assert_eq!(node.local_cpus().to_string(), "0-2");
    }

    #[test]
    fn errors_name_the_file() {
        let err = Topology::from_root("/no/such/numa/root").unwrap_err();
        assert!(err.to_string().contains("/no/such/numa/root"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        cpu(b, 0);
        write(b, "sys/devices/system/node/node0/cpulist", "0-\n");
        let err = Topology::from_root(b).unwrap_err();
        assert_eq!(
            err.path(),
            Some(b.join("sys/devices/system/node/node0/cpulist").as_path())
        );

        let empty = tempfile::tempdir().unwrap();
        let err = Topology::from_root(empty.path()).unwrap_err();
        assert!(err.to_string().contains("sys/devices/system/cpu"), "{err}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever the files hold, discovery answers with a topology or an
        /// error, never a panic.
        #[test]
        fn arbitrary_file_contents_never_panic(
            contents in proptest::collection::vec("[0-9a-zA-Z ,:\\-\n/]{0,24}", 14)
        ) {
            let dir = tempfile::tempdir().unwrap();
            let b = dir.path();
            cpu(b, 0);
            cpu(b, 1);
            let files = [
                "sys/devices/system/cpu/online",
                "sys/devices/system/node/online",
                "sys/devices/system/node/node0/cpulist",
                "sys/devices/system/node/node1/cpumap",
                "sys/devices/system/node/node0/distance",
                "sys/devices/system/node/node1/distance",
                "sys/devices/system/node/node0/meminfo",
                "sys/devices/system/node/node1/access0/initiators/read_latency",
                "proc/mounts",
                "proc/self/cpuset",
                "proc/self/cgroup",
                "dev/cpuset/cpus",
                "sys/devices/system/cpu/cpu0/cache/index3/shared_cpu_list",
                "proc/cpuinfo",
            ];
            for (file, text) in files.iter().zip(&contents) {
                write(b, file, text);
            }
            write(b, "sys/devices/system/cpu/cpu0/cache/index3/level", "3");
            let _ = Topology::from_root(b);
        }
    }

    #[test]
    fn live_discovery_works_here() {
        let topo = Topology::discover().unwrap();
        assert!(!topo.cpus().is_empty());
        let aff = affinity().unwrap();
        assert!(topo.cpus().is_subset(&aff));
        assert!(topo
            .nodes()
            .iter()
            .all(|n| n.cpus().is_subset(n.local_cpus())));
    }
}
