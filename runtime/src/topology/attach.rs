//! Where a NUMA node's memory attaches in the CPU hierarchy, which decides
//! the node's locality as hwloc reports it.
//!
//! hwloc places each node below the smallest CPU object (core, cache, die,
//! package, group) whose CPUs contain the node's, and gives the node that
//! object's CPUs. When no object has exactly the node's CPUs, a group with
//! them is made, unless it would cut across an existing object (CPUs shared
//! with it without either containing the other): then the node takes the
//! containing object's CPUs. This matters for memory-only nodes whose
//! initiators span parts of the machine in overlapping ways.
//!
//! One deliberate difference: a node that falls back to the whole machine
//! gets the machine's online CPUs, where hwloc also lists offline ones.

use super::root::FsRoot;
use super::CpuSet;

const CPU_DIR: &str = "sys/devices/system/cpu";

/// The CPU hierarchy as a family of nested CPU sets (each pair nested or
/// disjoint), grown by the groups nodes attach to.
#[derive(Debug, Default)]
pub(crate) struct Hierarchy {
    sets: Vec<CpuSet>,
    online: CpuSet,
}

impl Hierarchy {
    /// The hierarchy of the `online` CPUs under `root`: cores, packages,
    /// clusters, dies, books and drawers (`cpuN/topology/`), then caches
    /// (`cpuN/cache/indexK/shared_cpu_map`), in the order hwloc inserts them;
    /// a set cutting across earlier ones is left out, as hwloc refuses it.
    pub(crate) fn read(root: &FsRoot, online: &CpuSet) -> Hierarchy {
        let mut tree = Hierarchy {
            sets: Vec::new(),
            online: online.clone(),
        };
        let topo_files = [
            ["core_cpus", "thread_siblings"],
            ["package_cpus", "core_siblings"],
            ["cluster_cpus", "cluster_cpus"],
            ["die_cpus", "die_cpus"],
            ["book_siblings", "book_siblings"],
            ["drawer_siblings", "drawer_siblings"],
        ];
        for cpu in online {
            for [new, old] in topo_files {
                let dir = format!("{CPU_DIR}/cpu{cpu}/topology");
                let set = read_set(root, &format!("{dir}/{new}"))
                    .or_else(|| read_set(root, &format!("{dir}/{old}")));
                if let Some(set) = set {
                    tree.add_cpu_object(set);
                }
            }
        }
        for cpu in online {
            let dir = format!("{CPU_DIR}/cpu{cpu}/cache");
            for index in root.list_dir(&dir).unwrap_or_default() {
                if let Some(set) = read_set(root, &format!("{dir}/{index}/shared_cpu_map")) {
                    tree.add_cpu_object(set);
                }
            }
        }
        tree
    }

    /// Adds a CPU object unless it is trivial, known, or cuts across.
    fn add_cpu_object(&mut self, set: CpuSet) {
        let set = set.intersection(&self.online);
        if set.len() > 1 && !self.sets.contains(&set) && !self.crosses(&set) {
            self.sets.push(set);
        }
    }

    /// Whether `set` shares CPUs with a member without either containing
    /// the other.
    fn crosses(&self, set: &CpuSet) -> bool {
        self.sets
            .iter()
            .any(|t| t.intersects(set) && !t.is_subset(set) && !set.is_subset(t))
    }

    /// Attaches a node whose CPUs are `cpus` (possibly including offline
    /// ones) and returns the CPUs it ends up with (before limiting to
    /// online CPUs).
    pub(crate) fn attach(&mut self, cpus: &CpuSet) -> CpuSet {
        if cpus.is_empty() {
            return CpuSet::new();
        }
        // The smallest object containing the node's CPUs (the machine when
        // none does).
        let parent = self
            .sets
            .iter()
            .filter(|t| cpus.is_subset(t))
            .min_by_key(|t| t.len())
            .cloned();
        if parent.as_ref() == Some(cpus) {
            return cpus.clone();
        }
        if self.crosses(cpus) {
            return parent.unwrap_or_else(|| self.online.clone());
        }
        self.sets.push(cpus.clone());
        cpus.clone()
    }
}

/// A CPU mask file, `None` when missing or malformed.
fn read_set(root: &FsRoot, rel: &str) -> Option<CpuSet> {
    root.read_mask(rel).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> CpuSet {
        s.parse().unwrap()
    }

    fn two_packages() -> Hierarchy {
        let mut h = Hierarchy {
            sets: Vec::new(),
            online: set("0-7"),
        };
        h.add_cpu_object(set("0-3"));
        h.add_cpu_object(set("4-7"));
        h
    }

    #[test]
    fn exact_and_new_groups_keep_the_node_cpus() {
        let mut h = two_packages();
        assert_eq!(h.attach(&set("0-3")).to_string(), "0-3");
        // Inside a package: a new group.
        assert_eq!(h.attach(&set("0-1")).to_string(), "0-1");
        // Spanning both packages whole: a group above them.
        assert_eq!(h.attach(&set("0-7")).to_string(), "0-7");
        assert!(h.attach(&CpuSet::new()).is_empty());
    }

    #[test]
    fn a_node_cutting_across_takes_the_containing_object() {
        let mut h = two_packages();
        assert_eq!(h.attach(&set("0-1")).to_string(), "0-1");
        // Crosses the 0-1 group made for the previous node, inside 0-3.
        assert_eq!(h.attach(&set("1-2")).to_string(), "0-3");
        // Crosses both packages: the machine.
        assert_eq!(h.attach(&set("3-4")).to_string(), "0-7");
    }

    #[test]
    fn reads_the_cpu_hierarchy() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        for cpu in 0..4u32 {
            let t = b.join(format!("{CPU_DIR}/cpu{cpu}/topology"));
            std::fs::create_dir_all(&t).unwrap();
            let pkg = if cpu < 2 { "3" } else { "c" };
            std::fs::write(t.join("package_cpus"), pkg).unwrap();
            std::fs::write(t.join("core_cpus"), format!("{:x}", 1 << cpu)).unwrap();
        }
        let root = FsRoot::open(b.to_owned()).unwrap();
        let mut h = Hierarchy::read(&root, &set("0-3"));
        assert_eq!(h.sets, [set("0-1"), set("2-3")]);
        assert_eq!(h.attach(&set("1-2")).to_string(), "0-3");
    }
}
