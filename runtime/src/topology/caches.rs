//! Cache domains: groups of CPUs sharing a last-level cache
//! (`cpu/cpuN/cache/indexK`).

use super::root::FsRoot;
use super::CpuSet;

const CPU_DIR: &str = "sys/devices/system/cpu";

/// The groups of `usable` CPUs that share a last-level cache: for each CPU,
/// its level 3 cache, else its highest-level unified cache
/// (`shared_cpu_map` as hwloc reads it, else `shared_cpu_list`).
///
/// The groups partition the usable CPUs, ordered by their first CPU: a CPU
/// belongs to the group of the first CPU whose cache lists it, so
/// inconsistent kernel data (overlapping lists) cannot put a CPU in two
/// groups, and a CPU with no cache information forms a group of its own.
/// Empty when no CPU has cache information.
pub(crate) fn cache_domains(root: &FsRoot, usable: &CpuSet) -> Vec<CpuSet> {
    let caches: Vec<(u32, Option<CpuSet>)> = usable
        .iter()
        .map(|cpu| (cpu, last_level_cache(root, cpu)))
        .collect();
    if caches.iter().all(|(_, shared)| shared.is_none()) {
        return Vec::new();
    }
    let mut domains: Vec<CpuSet> = Vec::new();
    let mut covered = CpuSet::new();
    for (cpu, shared) in caches {
        if covered.contains(cpu) {
            continue;
        }
        let mut domain = shared
            .unwrap_or_default()
            .intersection(usable)
            .difference(&covered);
        // A CPU always shares its own cache, even if the file forgets it.
        domain.insert(cpu);
        covered.union_with(&domain);
        domains.push(domain);
    }
    domains
}

/// The CPUs sharing `cpu`'s last-level cache.
fn last_level_cache(root: &FsRoot, cpu: u32) -> Option<CpuSet> {
    let dir = format!("{CPU_DIR}/cpu{cpu}/cache");
    let mut best: Option<(u32, CpuSet)> = None;
    for name in root.list_dir(&dir)? {
        if !name.starts_with("index") {
            continue;
        }
        let index = format!("{dir}/{name}");
        let Some(level) = root.read_u64(&format!("{index}/level")) else {
            continue;
        };
        let Ok(level) = u32::try_from(level) else {
            continue;
        };
        let kind = root
            .read_optional(&format!("{index}/type"))
            .unwrap_or_default();
        // Level 3 counts whatever its type; below that, only unified caches.
        if level != 3 && kind.trim() != "Unified" {
            continue;
        }
        if best.as_ref().is_some_and(|(l, _)| *l == 3 || *l >= level) {
            continue;
        }
        let shared = root
            .read_list(&format!("{index}/shared_cpu_list"))
            .ok()
            .flatten()
            .or_else(|| {
                root.read_mask(&format!("{index}/shared_cpu_map"))
                    .ok()
                    .flatten()
            });
        if let Some(shared) = shared {
            best = Some((level, shared));
        }
    }
    best.map(|(_, set)| set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    fn cache(base: &Path, cpu: u32, index: u32, level: u32, kind: &str, list: &str) {
        let dir = base.join(format!("{CPU_DIR}/cpu{cpu}/cache/index{index}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("level"), format!("{level}\n")).unwrap();
        fs::write(dir.join("type"), format!("{kind}\n")).unwrap();
        fs::write(dir.join("shared_cpu_list"), format!("{list}\n")).unwrap();
    }

    #[test]
    fn level_three_groups() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        for cpu in 0..4 {
            cache(b, cpu, 0, 1, "Data", &cpu.to_string());
            cache(b, cpu, 1, 2, "Unified", &cpu.to_string());
            let l3 = if cpu < 2 { "0-1" } else { "2-3" };
            cache(b, cpu, 2, 3, "Unified", l3);
        }
        let root = FsRoot::open(b.to_owned()).unwrap();
        let got: Vec<String> = cache_domains(&root, &"0-3".parse().unwrap())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["0-1", "2-3"]);
        // Limited to usable CPUs.
        let got: Vec<String> = cache_domains(&root, &"1-2".parse().unwrap())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["1", "2"]);
    }

    #[test]
    fn highest_unified_level_without_l3() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        for cpu in 0..2 {
            cache(b, cpu, 0, 1, "Data", &cpu.to_string());
            cache(b, cpu, 1, 1, "Instruction", &cpu.to_string());
            cache(b, cpu, 2, 2, "Unified", "0-1");
        }
        // CPU 2 has no cache information: a group of its own.
        let root = FsRoot::open(b.to_owned()).unwrap();
        let got: Vec<String> = cache_domains(&root, &"0-2".parse().unwrap())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["0-1", "2"]);
        // No cache information at all: no groups.
        let empty = tempfile::tempdir().unwrap();
        let root = FsRoot::open(empty.path().to_owned()).unwrap();
        assert!(cache_domains(&root, &"0-2".parse().unwrap()).is_empty());
    }

    #[test]
    fn shared_cpu_map_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        let d = b.join(format!("{CPU_DIR}/cpu0/cache/index3"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("level"), "3\n").unwrap();
        fs::write(d.join("type"), "Unified\n").unwrap();
        fs::write(d.join("shared_cpu_map"), "00000000,00000005\n").unwrap();
        let root = FsRoot::open(b.to_owned()).unwrap();
        let got = cache_domains(&root, &"0-3".parse().unwrap());
        let got: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(got, ["0,2", "1", "3"]);
    }

    #[test]
    fn overlapping_lists_still_partition() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        // Inconsistent data, as in some saved trees: CPU 1 claims 0-2,
        // CPU 2 claims 2-3.
        cache(b, 0, 3, 3, "Unified", "0");
        cache(b, 1, 3, 3, "Unified", "0-2");
        cache(b, 2, 3, 3, "Unified", "2-3");
        cache(b, 3, 3, 3, "Unified", "2-3");
        let root = FsRoot::open(b.to_owned()).unwrap();
        let got: Vec<String> = cache_domains(&root, &"0-3".parse().unwrap())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["0", "1-2", "3"]);
    }
}
