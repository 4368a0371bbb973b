//! The topology: what the guest kernel shows, and what `numa-rt topo --json`
//! makes of it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::expect::Machine;
use crate::json_diff;
use crate::report::Outcome;
use crate::sysfs::{self, NODE_DIR};

/// Below this share of the memory QEMU gave a node, its MemTotal is suspect
/// (the kernel keeps some for itself, most on the node it boots from).
const MIN_MEMTOTAL_SHARE: f64 = 0.5;

/// The kernel's sysfs matches the table: nodes, CPUs, memory, SLIT rows,
/// HMAT local initiators and values, memory-side caches.
pub fn kernel_topology(m: &Machine) -> Outcome {
    let mut problems = Vec::new();
    let mut note = |r: Result<(), String>| {
        if let Err(e) = r {
            problems.push(e);
        }
    };
    let want_ids: Vec<u32> = m.nodes.iter().map(|n| n.id).collect();
    note(expect_list(&format!("{NODE_DIR}/online"), &want_ids));
    for (i, node) in m.nodes.iter().enumerate() {
        let dir = format!("{NODE_DIR}/node{}", node.id);
        note(expect_list(&format!("{dir}/cpulist"), &node.cpus));
        note(expect_distances(&dir, &m.distances[i]));
        note(expect_memory(node.id, node.memory_bytes));
    }
    if m.hmat_local.is_empty() {
        for node in &m.nodes {
            let access0 = format!("{NODE_DIR}/node{}/access0", node.id);
            if Path::new(&access0).exists() {
                note(Err(format!("{access0} exists but QEMU was given no HMAT")));
            }
        }
    }
    for h in &m.hmat_local {
        note(expect_hmat(
            h.target,
            h.initiator,
            h.latency_ns,
            h.bandwidth_mbps,
        ));
    }
    for group in &m.llc_groups {
        for cpu in group {
            let path = format!("/sys/devices/system/cpu/cpu{cpu}/cache/index3/shared_cpu_list");
            note(expect_list(&path, group));
        }
    }
    for c in &m.memory_side_caches {
        let dir = format!(
            "{NODE_DIR}/node{}/memory_side_cache/index{}",
            c.node, c.level
        );
        note(expect_u64(&format!("{dir}/size"), c.size_bytes));
        note(expect_u64(&format!("{dir}/line_size"), c.line));
    }
    if problems.is_empty() {
        Outcome::Pass(format!(
            "{} nodes, SLIT {}x{}, HMAT for {} targets, {} memory-side caches, {} L3 groups",
            m.nodes.len(),
            m.distances.len(),
            m.distances.len(),
            m.hmat_local.len(),
            m.memory_side_caches.len(),
            m.llc_groups.len()
        ))
    } else {
        Outcome::Fail(problems.join("; "))
    }
}

fn expect_list(path: &str, want: &[u32]) -> Result<(), String> {
    let got = sysfs::parse_list(&sysfs::read(path)?).map_err(|e| format!("{path}: {e}"))?;
    if got != want {
        return Err(format!("{path}: got {got:?}, want {want:?}"));
    }
    Ok(())
}

fn expect_u64(path: &str, want: u64) -> Result<(), String> {
    let got = sysfs::read_u64(path)?;
    if got != want {
        return Err(format!("{path}: got {got}, want {want}"));
    }
    Ok(())
}

fn expect_distances(dir: &str, want: &[u64]) -> Result<(), String> {
    let path = format!("{dir}/distance");
    let text = sysfs::read(&path)?;
    let got: Vec<u64> = text
        .split_whitespace()
        .map(|d| d.parse().map_err(|_| format!("{path}: bad value {d:?}")))
        .collect::<Result<_, _>>()?;
    if got != want {
        return Err(format!("{path}: got {got:?}, want {want:?}"));
    }
    Ok(())
}

fn expect_memory(node: u32, configured: u64) -> Result<(), String> {
    let total = sysfs::node_mem_total(node)?;
    let share = total as f64 / configured as f64;
    if !(MIN_MEMTOTAL_SHARE..=1.0).contains(&share) {
        return Err(format!(
            "node{node} MemTotal {total} is {:.0}% of the {configured} bytes QEMU gave it",
            share * 100.0
        ));
    }
    Ok(())
}

fn expect_hmat(target: u32, initiator: u32, latency: u64, bandwidth: u64) -> Result<(), String> {
    // access0: best initiator of any kind; access1: best CPU initiator.
    // QEMU has no generic initiators, so both name the same node.
    for class in ["access0", "access1"] {
        let dir = format!("{NODE_DIR}/node{target}/{class}/initiators");
        let linked: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{dir}: {e}"))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("node"))
            .collect();
        if linked != [format!("node{initiator}")] {
            return Err(format!(
                "{dir}: initiators {linked:?}, want [node{initiator}]"
            ));
        }
        expect_u64(&format!("{dir}/read_latency"), latency)?;
        expect_u64(&format!("{dir}/write_latency"), latency)?;
        expect_u64(&format!("{dir}/read_bandwidth"), bandwidth)?;
        expect_u64(&format!("{dir}/write_bandwidth"), bandwidth)?;
    }
    Ok(())
}

/// Path of the `numa-rt` binary in the guest.
fn numa_rt_binary() -> String {
    std::env::var("NUMAVM_NUMA_RT").unwrap_or_else(|_| "/bin/numa-rt".to_string())
}

/// `numa-rt topo --json` reports what QEMU was told, in hwloc's terms.
pub fn topo_json(m: &Machine) -> Outcome {
    let bin = numa_rt_binary();
    let output = match Command::new(&bin).args(["topo", "--json"]).output() {
        Ok(o) => o,
        Err(e) => return Outcome::Fail(format!("cannot run {bin}: {e}")),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Outcome::Fail(format!(
            "`numa-rt topo --json` failed ({}): {}",
            output.status,
            stderr.trim()
        ));
    }
    let got: Value = match serde_json::from_str(&stdout) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::Fail(format!(
                "output is not JSON ({e}): {}",
                json_diff::short(&Value::String(stdout.trim().to_string()))
            ))
        }
    };
    let want = match expected_topo_json(m) {
        Ok(w) => w,
        Err(e) => return Outcome::Fail(format!("cannot build the expectation: {e}")),
    };
    let got = normalize(got);
    let want = keep_reported_memattrs(want, &got);
    let mut problems = json_diff::diff(&got, &want);
    problems.extend(cache_domain_problem(m, &got));
    let devices = device_problems(m, &got);
    let compared_devices = devices.is_some();
    problems.extend(devices.unwrap_or_default());
    if !stderr.trim().is_empty() {
        problems.push(format!("wrote to stderr: {}", stderr.trim()));
    }
    if problems.is_empty() {
        Outcome::Pass(format!(
            "nodes, CPUs, memory, distances, memattrs{}{} match ({} nodes)",
            if got.get("cache_domains").is_some() {
                ", cache domains"
            } else {
                ""
            },
            if compared_devices && !m.devices.is_empty() {
                ", devices"
            } else {
                ""
            },
            m.nodes.len()
        ))
    } else {
        println!("got:  {got}");
        println!("want: {want}");
        Outcome::Fail(problems.join("; "))
    }
}

/// The table's hwloc view with each node's `memory_bytes` filled in from
/// the kernel's MemTotal (what hwloc reports).
fn expected_topo_json(m: &Machine) -> Result<Value, String> {
    let mut want = m.topo_json.clone();
    let nodes = want
        .get_mut("nodes")
        .and_then(Value::as_array_mut)
        .ok_or("topo_json.nodes is not an array")?;
    for node in nodes {
        let id = node
            .get("id")
            .and_then(Value::as_u64)
            .ok_or("topo_json node without id")?;
        node["memory_bytes"] = Value::from(sysfs::node_mem_total(id as u32)?);
    }
    Ok(want)
}

/// The output's `cache_domains` (CPU groups sharing a last-level cache),
/// when it has them, must be the table's groups, in any order.
fn cache_domain_problem(m: &Machine, got: &Value) -> Option<String> {
    let listed = got.get("cache_domains")?;
    let mut groups: Vec<Vec<u64>> = match serde_json::from_value(listed.clone()) {
        Ok(g) => g,
        Err(_) => {
            return Some(format!(
                "$.cache_domains: not a list of CPU lists: {listed}"
            ))
        }
    };
    groups.iter_mut().for_each(|g| g.sort_unstable());
    groups.sort();
    let mut want: Vec<Vec<u64>> = m
        .llc_groups
        .iter()
        .map(|g| g.iter().map(|&c| u64::from(c)).collect())
        .collect();
    want.iter_mut().for_each(|g| g.sort_unstable());
    want.sort();
    (groups != want).then(|| format!("$.cache_domains: got {groups:?}, want {want:?}"))
}

/// Devices of the table missing from the output's `devices` list (matched
/// by name, the last component of their sysfs path) or on another node.
/// `None` when the output has no `devices` list: the issue does not require
/// one, so there is nothing to compare.
fn device_problems(m: &Machine, got: &Value) -> Option<Vec<String>> {
    let listed = got.get("devices")?.as_array()?;
    let problems = m
        .devices
        .iter()
        .filter_map(|dev| {
            let name = dev.sysfs.rsplit('/').next().unwrap_or(&dev.sysfs);
            let entry = listed
                .iter()
                .find(|e| e.get("name").and_then(Value::as_str) == Some(name));
            let node = entry.map(|e| e.get("node").and_then(Value::as_i64));
            match node {
                None => Some(format!("$.devices: no {} named {name}", dev.kind)),
                Some(n) if n == Some(dev.node) => None,
                Some(n) => Some(format!(
                    "$.devices[name={name}].node: got {}, want {}",
                    n.map_or("null".to_string(), |n| n.to_string()),
                    dev.node
                )),
            }
        })
        .collect();
    Some(problems)
}

/// Puts `memattrs` lists in target order and drops empty ones, so that
/// order and `"X": []` versus no key do not count as differences.
fn normalize(mut got: Value) -> Value {
    if let Some(attrs) = got.get_mut("memattrs").and_then(Value::as_object_mut) {
        attrs.retain(|_, list| !matches!(list.as_array(), Some(l) if l.is_empty()));
        for list in attrs.values_mut() {
            if let Some(l) = list.as_array_mut() {
                l.sort_by_key(|e| e.get("target").and_then(Value::as_u64));
            }
        }
    }
    got
}

/// `Latency` and `Bandwidth` are required; the read/write variants hwloc
/// also reports are compared only when numa-rt prints them.
fn keep_reported_memattrs(mut want: Value, got: &Value) -> Value {
    let reported = |k: &str| got.get("memattrs").and_then(|m| m.get(k)).is_some();
    if let Some(attrs) = want.get_mut("memattrs").and_then(Value::as_object_mut) {
        attrs.retain(|k, _| k == "Latency" || k == "Bandwidth" || reported(k));
    }
    want
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn memattr_order_and_empty_lists_do_not_matter() {
        let got = json!({"memattrs": {
            "Latency": [{"target": 1, "value": 2}, {"target": 0, "value": 1}],
            "Capacity": []
        }});
        let want = json!({"memattrs": {
            "Latency": [{"target": 0, "value": 1}, {"target": 1, "value": 2}]
        }});
        assert!(json_diff::diff(&normalize(got), &want).is_empty());
    }

    fn machine_with_nvme_on(node: i64) -> Machine {
        Machine {
            topology: "t".into(),
            nodes: vec![],
            distances: vec![],
            hmat_local: vec![],
            memory_side_caches: vec![],
            devices: vec![crate::expect::DeviceSpec {
                kind: "nvme".into(),
                node,
                sysfs: "/sys/block/nvme0n1".into(),
                mount: None,
            }],
            llc_groups: vec![],
            topo_json: Value::Null,
        }
    }

    #[test]
    fn cache_domains_compare_as_sets() {
        let mut m = machine_with_nvme_on(1);
        m.llc_groups = vec![vec![0, 1], vec![2, 3]];
        let same = json!({"cache_domains": [[3, 2], [0, 1]]});
        assert_eq!(cache_domain_problem(&m, &same), None);
        let split = json!({"cache_domains": [[0], [1], [2, 3]]});
        assert!(cache_domain_problem(&m, &split).is_some());
        assert_eq!(cache_domain_problem(&m, &json!({})), None);
        assert!(cache_domain_problem(&m, &json!({"cache_domains": 3})).is_some());
    }

    #[test]
    fn devices_are_matched_by_name_and_node() {
        let got = json!({"devices": [
            {"kind": "pci", "name": "0000:21:00.0", "node": 1},
            {"kind": "block", "name": "nvme0n1", "node": 1}
        ]});
        assert_eq!(
            device_problems(&machine_with_nvme_on(1), &got),
            Some(vec![])
        );
        let wrong = device_problems(&machine_with_nvme_on(0), &got).unwrap();
        assert_eq!(wrong, ["$.devices[name=nvme0n1].node: got 1, want 0"]);
        let missing = device_problems(&machine_with_nvme_on(1), &json!({"devices": []}));
        assert_eq!(missing.unwrap(), ["$.devices: no nvme named nvme0n1"]);
        assert_eq!(device_problems(&machine_with_nvme_on(1), &json!({})), None);
    }

    #[test]
    fn read_write_variants_are_optional_but_main_ones_are_not() {
        let want = json!({"memattrs": {"Latency": [], "Bandwidth": [], "ReadLatency": []}});
        let kept = keep_reported_memattrs(want.clone(), &json!({"memattrs": {}}));
        assert_eq!(kept, json!({"memattrs": {"Latency": [], "Bandwidth": []}}));
        let got = json!({"memattrs": {"ReadLatency": [1]}});
        assert_eq!(keep_reported_memattrs(want.clone(), &got), want);
    }
}
