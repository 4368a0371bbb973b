//! Intel Xeon Phi (Knights Landing/Mill) NUMA layouts.
//!
//! On these processors the kernel shows the on-package MCDRAM as CPU-less
//! nodes with a SLIT table that says little. hwloc 2.9 recognises the
//! processor (`proc/cpuinfo`: GenuineIntel, family 6, model 87 or 133),
//! reads or guesses the cluster mode (`Quadrant`, `SNC2`, `SNC4`, ...) and
//! memory mode (`Cache`, `Flat`, `Hybrid25`, `Hybrid50`), then pairs each
//! MCDRAM node with its DDR node: the MCDRAM node gets subtype `MCDRAM`, the
//! DDR node's CPUs as its locality, and both get a nominal `Bandwidth`
//! (90 GB/s DDR, 360 GB/s MCDRAM per package, split among sub-NUMA
//! clusters). The SLIT matrix and HMAT are not used on such machines.
//! This module does the same, so the node layout agrees with hwloc.

use super::memattr::MemAttrKind;
use super::root::FsRoot;
use super::Node;

/// Whether the machine under `root` is a Knights Landing/Mill processor.
/// `live` says whether `root` is the running machine (then the build target
/// decides whether it is x86; a saved tree says so in
/// `proc/hwloc-nofile-info`).
pub(crate) fn detect(root: &FsRoot, live: bool) -> bool {
    let x86 = if live {
        cfg!(any(target_arch = "x86", target_arch = "x86_64"))
    } else {
        root.read_optional("proc/hwloc-nofile-info")
            .and_then(|text| {
                text.lines().find_map(|l| {
                    l.strip_prefix("Architecture: ")
                        .map(str::trim)
                        .map(str::to_owned)
                })
            })
            .is_some_and(|arch| {
                arch == "x86_64"
                    || arch == "k1om"
                    || (arch.len() == 4 && arch.starts_with('i') && arch.ends_with("86"))
            })
    };
    if !x86 {
        return false;
    }
    let Some(cpuinfo) = root.read_optional("proc/cpuinfo") else {
        return false;
    };
    // The first processor's fields.
    let field = |name: &str| {
        cpuinfo
            .split("\n\n")
            .find(|block| block.lines().any(|l| key(l) == Some("processor")))?
            .lines()
            .find(|l| key(l) == Some(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    };
    field("vendor_id").as_deref() == Some("GenuineIntel")
        && field("cpu family").as_deref() == Some("6")
        && matches!(field("model").as_deref(), Some("87" | "133"))
}

/// The key of a `key : value` cpuinfo line.
fn key(line: &str) -> Option<&str> {
    line.split_once(':').map(|(k, _)| k.trim_end())
}

/// The modes and MCDRAM cache size, from hwloc's dumped hardware data when
/// present, completed by guesses.
#[derive(Debug, Default)]
struct HwData {
    cluster_mode: String,
    memory_mode: String,
    cache_size: Option<u64>,
}

/// Pairs DDR and MCDRAM nodes as hwloc does. `slots` are the listed nodes
/// (`None` for a dropped one) and `matrix` their SLIT rows. Leaves the nodes
/// unchanged when the layout is not one hwloc recognises.
pub(crate) fn apply(root: &FsRoot, slots: &mut [Option<Node>], matrix: Option<&[Vec<u32>]>) {
    if slots.iter().any(Option::is_none) {
        return;
    }
    let n = slots.len();
    let Some(summary) = summarize(n, matrix) else {
        return;
    };
    let mut hw = read_hwdata(root);
    guess(&mut hw, slots, &summary);
    let clusters: Vec<(usize, Option<usize>)>;
    let snc;
    let flat = hw.memory_mode != "Cache";
    if !["Cache", "Flat", "Hybrid25", "Hybrid50"].contains(&hw.memory_mode.as_str()) {
        return;
    }
    match hw.cluster_mode.as_str() {
        "All2All" | "Hemisphere" | "Quadrant" => {
            snc = 1;
            clusters = match (flat, n) {
                (false, 1) => vec![(0, None)],
                (true, 2) => vec![(0, Some(1))],
                _ => return,
            };
        }
        "SNC2" | "SNC4" => {
            snc = if hw.cluster_mode == "SNC2" { 2 } else { 4 };
            let Some(matrix) = matrix else {
                return;
            };
            clusters = match (flat, n == snc, n == 2 * snc) {
                (false, true, _) => (0..snc).map(|i| (i, None)).collect(),
                (true, _, true) => match identify(matrix, &summary, snc) {
                    Some(pairs) => pairs.into_iter().map(|(d, m)| (d, Some(m))).collect(),
                    None => return,
                },
                _ => return,
            };
        }
        _ => return,
    }
    for (ddr, mcdram) in clusters {
        let Some(mcdram) = mcdram else {
            continue;
        };
        let Some(ddr_cpus) = slots[ddr].as_ref().map(|n| n.local_cpus.clone()) else {
            continue;
        };
        let per_cluster = |total: u64| total / snc as u64;
        if let Some(node) = slots[ddr].as_mut() {
            node.memattrs = vec![(MemAttrKind::Bandwidth, per_cluster(90_000))];
            node.memattr_initiators = ddr_cpus.clone();
        }
        if let Some(node) = slots[mcdram].as_mut() {
            node.subtype = Some("MCDRAM".to_owned());
            node.local_cpus = ddr_cpus.clone();
            node.memattrs = vec![(MemAttrKind::Bandwidth, per_cluster(360_000))];
            node.memattr_initiators = ddr_cpus;
        }
    }
}

/// Distinct off-diagonal SLIT values (upper triangle) with how often each
/// occurs, plus the local distance 10 counted once per node; sorted by
/// occurrences. `None` when the matrix does not look like a KNL one.
// The matrix is read by (row, column) positions, as in the SLIT itself.
#[allow(clippy::needless_range_loop)]
fn summarize(n: usize, matrix: Option<&[Vec<u32>]>) -> Option<Vec<(u32, usize)>> {
    let mut values = vec![(10u32, n)];
    if n == 1 {
        return Some(values);
    }
    if ![2, 4, 8].contains(&n) {
        return None;
    }
    let m = matrix?;
    for i in 0..n {
        if m[i][i] != 10 {
            return None;
        }
        for j in i + 1..n {
            let d = m[i][j];
            if d != m[j][i] || d <= 10 {
                return None;
            }
            if let Some((_, count)) = values.iter_mut().find(|(v, _)| *v == d) {
                *count += 1;
            } else if values.len() == 4 {
                return None;
            } else {
                values.push((d, 1));
            }
        }
    }
    values.sort_by_key(|&(_, count)| count);
    let ok = match n {
        2 => values.len() == 2,
        4 => values.len() == 2 || values.len() == 4,
        _ => values.len() == 4,
    };
    ok.then_some(values)
}

/// The (DDR, MCDRAM) node pairs of an SNC2 (4 nodes) or SNC4 (8 nodes)
/// Flat/Hybrid matrix, by position in the node list.
#[allow(clippy::needless_range_loop)]
fn identify(m: &[Vec<u32>], summary: &[(u32, usize)], snc: usize) -> Option<Vec<(usize, usize)>> {
    let counts: Vec<usize> = summary.iter().map(|&(_, c)| c).collect();
    // Which summary entry is DDR-to-DDR and which DDR-to-local-MCDRAM.
    let (ddr_ddr, ddr_mcdram) = match snc {
        2 if counts == [1, 2, 3, 4] => (summary[0].0, summary[1].0),
        4 if counts == [4, 6, 8, 18] => (summary[1].0, summary[0].0),
        _ => return None,
    };
    let n = 2 * snc;
    let mut ddr = vec![0];
    ddr.extend((0..n).filter(|&i| m[0][i] == ddr_ddr).take(snc - 1));
    if ddr.len() != snc || ddr[1..].contains(&0) {
        return None;
    }
    let mut mcdram = vec![0; snc];
    for i in 1..n {
        if let Some(k) = (0..snc).find(|&k| m[ddr[k]][i] == ddr_mcdram) {
            mcdram[k] = i;
        }
    }
    if mcdram.contains(&0) {
        return None;
    }
    Some(ddr.into_iter().zip(mcdram).collect())
}

/// hwloc-dump-hwdata's `knl_memoryside_cache` file, when present.
fn read_hwdata(root: &FsRoot) -> HwData {
    let mut hw = HwData::default();
    let Some(text) = [
        "run/hwloc/knl_memoryside_cache",
        "var/run/hwloc/knl_memoryside_cache",
    ]
    .iter()
    .find_map(|rel| root.read_optional(rel)) else {
        return hw;
    };
    let Some(version) = text
        .strip_prefix("version: ")
        .and_then(super::root::leading_u64)
    else {
        return hw;
    };
    let mut complete = 0;
    for line in text.lines() {
        let value = |prefix: &str| line.strip_prefix(prefix).map(str::trim);
        if version >= 1 {
            if let Some(v) = value("cache_size:") {
                hw.cache_size = v.parse().ok();
            }
            for field in ["line_size:", "inclusiveness:", "associativity:"] {
                if value(field).and_then(|v| v.parse::<i64>().ok()).is_some() {
                    complete += 1;
                }
            }
        }
        if version >= 2 {
            if let Some(v) = line.strip_prefix("cluster_mode: ") {
                hw.cluster_mode = v.chars().take(31).collect();
            } else if let Some(v) = line.strip_prefix("memory_mode: ") {
                hw.memory_mode = v.chars().take(31).collect();
            }
        }
    }
    if complete < 3 {
        hw.cache_size = None;
    }
    hw
}

/// Fills in what the dumped data did not say, from the node layout.
fn guess(hw: &mut HwData, slots: &[Option<Node>], summary: &[(u32, usize)]) {
    const GIB: u64 = 1 << 30;
    if hw.cache_size.is_some_and(|s| s > 0)
        && !hw.cluster_mode.is_empty()
        && !hw.memory_mode.is_empty()
    {
        return;
    }
    let set = |field: &mut String, value: &str| {
        if field.is_empty() {
            *field = value.to_owned();
        }
    };
    // Flat unless the cache size says which hybrid mode.
    let memory_mode_for = |hw: &mut HwData, quarter: u64| {
        if hw.memory_mode.is_empty() {
            hw.memory_mode = match hw.cache_size {
                Some(s) if s == quarter => "Hybrid25",
                Some(s) if s == 2 * quarter => "Hybrid50",
                _ => "Flat",
            }
            .to_owned();
        }
    };
    match slots.len() {
        1 => {
            set(&mut hw.cluster_mode, "Quadrant");
            set(&mut hw.memory_mode, "Cache");
        }
        2 => {
            let second_has_cpus = slots[1].as_ref().is_some_and(|n| !n.cpus.is_empty());
            if hw.memory_mode == "Cache" || hw.cluster_mode == "SNC2" || second_has_cpus {
                set(&mut hw.cluster_mode, "SNC2");
                set(&mut hw.memory_mode, "Cache");
            } else {
                set(&mut hw.cluster_mode, "Quadrant");
                memory_mode_for(hw, 4 * GIB);
            }
        }
        4 => {
            if hw.cluster_mode == "SNC2" || summary.len() == 4 {
                set(&mut hw.cluster_mode, "SNC2");
                memory_mode_for(hw, 2 * GIB);
            } else {
                set(&mut hw.cluster_mode, "SNC4");
                set(&mut hw.memory_mode, "Cache");
            }
        }
        8 => {
            set(&mut hw.cluster_mode, "SNC4");
            memory_mode_for(hw, GIB);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use numa_rt_alloc::NodeId;
    use std::fs;

    const SNC4_FLAT: [[u32; 8]; 8] = [
        [10, 21, 21, 21, 31, 41, 41, 41],
        [21, 10, 21, 21, 41, 31, 41, 41],
        [21, 21, 10, 21, 41, 41, 31, 41],
        [21, 21, 21, 10, 41, 41, 41, 31],
        [31, 41, 41, 41, 10, 41, 41, 41],
        [41, 31, 41, 41, 41, 10, 41, 41],
        [41, 41, 31, 41, 41, 41, 10, 41],
        [41, 41, 41, 31, 41, 41, 41, 10],
    ];

    #[test]
    fn snc4_flat_pairs_ddr_and_mcdram() {
        let matrix: Vec<Vec<u32>> = SNC4_FLAT.iter().map(|r| r.to_vec()).collect();
        let mut slots: Vec<Option<Node>> = (0..8u32)
            .map(|i| {
                let cpus = if i < 4 {
                    format!("{}-{}", i * 4, i * 4 + 3).parse().unwrap()
                } else {
                    Default::default()
                };
                Some(Node::new(NodeId::new(i), cpus, 1))
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let root = FsRoot::open(dir.path().to_owned()).unwrap();
        apply(&root, &mut slots, Some(&matrix));
        let mcdram = slots[5].as_ref().unwrap();
        assert_eq!(mcdram.subtype(), Some("MCDRAM"));
        assert_eq!(mcdram.local_cpus().to_string(), "4-7");
        assert_eq!(mcdram.memattrs, [(MemAttrKind::Bandwidth, 90_000)]);
        assert_eq!(
            slots[1].as_ref().unwrap().memattrs,
            [(MemAttrKind::Bandwidth, 22_500)]
        );
    }

    #[test]
    fn unknown_layouts_are_left_alone() {
        let matrix = vec![vec![10, 20, 20], vec![20, 10, 20], vec![20, 20, 10]];
        assert!(summarize(3, Some(&matrix)).is_none());
        let asymmetric = vec![vec![10, 20], vec![21, 10]];
        assert!(summarize(2, Some(&asymmetric)).is_none());
    }

    #[test]
    fn detects_knl_from_cpuinfo() {
        let dir = tempfile::tempdir().unwrap();
        let proc = dir.path().join("proc");
        fs::create_dir_all(&proc).unwrap();
        fs::write(proc.join("hwloc-nofile-info"), "Architecture: x86_64\n").unwrap();
        fs::write(
            proc.join("cpuinfo"),
            "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 87\n\n",
        )
        .unwrap();
        let root = FsRoot::open(dir.path().to_owned()).unwrap();
        assert!(detect(&root, false));
        fs::write(
            proc.join("cpuinfo"),
            "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n\n",
        )
        .unwrap();
        assert!(!detect(&root, false));
    }
}
