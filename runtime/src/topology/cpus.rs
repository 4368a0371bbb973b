//! The CPUs that are present and online (`sys/devices/system/cpu`).

use super::root::FsRoot;
use super::{CpuSet, TopologyError};

const CPU_DIR: &str = "sys/devices/system/cpu";

/// The online CPUs the kernel describes, as hwloc's Linux backend counts
/// them: every `cpuN` directory that is online (by `cpu/online`, else by
/// `cpuN/online`; a CPU without an `online` file is online) and has a
/// `topology` directory.
///
/// Fallbacks when `cpu/` cannot be listed: the `cpu/online` list, else
/// `None` (the caller then uses the nodes' CPUs).
pub(crate) fn online_cpus(root: &FsRoot) -> Result<Option<CpuSet>, TopologyError> {
    let online_list: Option<CpuSet> = root.read_list(&format!("{CPU_DIR}/online"))?;
    let Some(entries) = root.list_dir(CPU_DIR) else {
        return Ok(online_list);
    };
    let mut cpus = CpuSet::new();
    for name in entries {
        let Some(cpu) = cpu_number(&name) else {
            continue;
        };
        let online = match &online_list {
            Some(list) => list.contains(cpu),
            // A missing or unreadable per-CPU `online` file means online
            // (cpu0 often has none); "0" means offline.
            None => root.read_u64(&format!("{CPU_DIR}/{name}/online")) != Some(0),
        };
        if online && root.exists(&format!("{CPU_DIR}/{name}/topology")) {
            cpus.insert(cpu);
        }
    }
    if cpus.is_empty() {
        // Directories without topology information (very old kernels or
        // trimmed trees): trust the online list when there is one.
        return Ok(online_list);
    }
    Ok(Some(cpus))
}

/// The CPUs `proc/cpuinfo` lists (`processor : N` lines), for trees
/// without `sys/devices/system/cpu`. `None` when it lists none.
pub(crate) fn cpuinfo_cpus(root: &FsRoot) -> Option<CpuSet> {
    let text = root.read_optional("proc/cpuinfo")?;
    let cpus: CpuSet = text
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "processor").then(|| value.trim().parse::<u32>().ok())?
        })
        .filter(|&cpu| cpu <= super::parse::MAX_ID)
        .collect();
    (!cpus.is_empty()).then_some(cpus)
}

/// `N` of a `cpuN` directory name.
fn cpu_number(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("cpu")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn cpu(base: &std::path::Path, n: u32, online: Option<&str>) {
        let dir = base.join(format!("{CPU_DIR}/cpu{n}"));
        fs::create_dir_all(dir.join("topology")).unwrap();
        if let Some(v) = online {
            fs::write(dir.join("online"), v).unwrap();
        }
    }

    #[test]
    fn per_cpu_online_files() {
        let dir = tempfile::tempdir().unwrap();
        cpu(dir.path(), 0, None);
        cpu(dir.path(), 1, Some("0\n"));
        cpu(dir.path(), 2, Some("1\n"));
        fs::create_dir_all(dir.path().join(format!("{CPU_DIR}/cpufreq"))).unwrap();
        // A CPU without topology information is not counted.
        fs::create_dir_all(dir.path().join(format!("{CPU_DIR}/cpu3"))).unwrap();
        let root = FsRoot::open(dir.path().to_owned()).unwrap();
        assert_eq!(online_cpus(&root).unwrap().unwrap().to_string(), "0,2");
    }

    #[test]
    fn online_list_wins() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..4 {
            cpu(dir.path(), n, Some("1"));
        }
        fs::write(dir.path().join(format!("{CPU_DIR}/online")), "0-1,3\n").unwrap();
        let root = FsRoot::open(dir.path().to_owned()).unwrap();
        assert_eq!(online_cpus(&root).unwrap().unwrap().to_string(), "0-1,3");
    }

    #[test]
    fn malformed_online_list_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        cpu(dir.path(), 0, None);
        fs::write(dir.path().join(format!("{CPU_DIR}/online")), "0-x\n").unwrap();
        let root = FsRoot::open(dir.path().to_owned()).unwrap();
        let err = online_cpus(&root).unwrap_err();
        assert!(err.to_string().contains("cpu/online"), "{err}");
    }

    #[test]
    fn cpuinfo_fallback() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("proc")).unwrap();
        fs::write(
            dir.path().join("proc/cpuinfo"),
            "processor\t: 0\nmodel name\t: x\n\nprocessor\t: 1\ncpu\t: y\n",
        )
        .unwrap();
        let root = FsRoot::open(dir.path().to_owned()).unwrap();
        assert_eq!(cpuinfo_cpus(&root).unwrap().to_string(), "0-1");
        fs::write(dir.path().join("proc/cpuinfo"), "cpu : alpha\n").unwrap();
        assert!(cpuinfo_cpus(&root).is_none());
    }

    #[test]
    fn no_cpu_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = FsRoot::open(dir.path().to_owned()).unwrap();
        assert!(online_cpus(&root).unwrap().is_none());
        assert_eq!(cpu_number("cpu12"), Some(12));
        assert_eq!(cpu_number("cpuidle"), None);
    }
}
