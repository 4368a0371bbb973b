//! `numa-rt probe --json`: the probe for machines.
//!
//! ```text
//! {"cpus":[0,1,...],                      every online CPU, the matrix order
//!  "matrix":[[null,52.3],[52.3,null]],     one-way ns; null: not measured
//!  "domains":[[0,1]],                      latency domains (CPU lists)
//!  "confidence":0.98 | null, "confidence_meaning":"...",
//!  "levels":[{"domains":..,"confidence":..,"separation":..,"inside_ns":..,"across_ns":..}],
//!  "comparison":{"domains_per_node":[{"node":0,"domains":2}],
//!                "spanning_domains":[{"domain":0,"nodes":[0,1]}],
//!                "matches_nodes":false,"matches_caches":true|false|null,
//!                "split_caches":[[..]],"findings":["2 latency domains inside node 0"]},
//!  "probed":[..],"not_allowed":[..],"unplaced":[..],"sampled":false,
//!  "timed_out_pairs":0,"elapsed_s":0.4,
//!  "config":{"quick":true,"rounds":300,"samples":7,"pair_budget_ms":100,
//!            "total_budget_ms":10000,"max_pairs":512},
//!  "memory_note":"..."}
//! ```

use numa_rt::topology::CpuSet;
use serde_json::{json, Value};

use crate::probe::{confidence_meaning, Report, MEMORY_NOTE};
use crate::topo_json::write_value;

/// The report as indented JSON with a final newline.
pub fn render(report: &Report<'_>) -> String {
    let mut out = String::new();
    write_value(&mut out, &to_value(report), 0);
    out.push('\n');
    out
}

fn list(set: &CpuSet) -> Value {
    Value::from(set.iter().collect::<Vec<u32>>())
}

fn lists(sets: &[CpuSet]) -> Value {
    Value::from(sets.iter().map(list).collect::<Vec<Value>>())
}

/// Rounds to 0.1 ns: finer digits are noise.
fn ns(v: f64) -> Value {
    json!((v * 10.0).round() / 10.0)
}

fn to_value(report: &Report<'_>) -> Value {
    let probe = report.probe;
    let m = &probe.measurement;
    let cl = &probe.clustering;
    let cmp = &probe.comparison;
    let matrix: Vec<Value> = m
        .matrix
        .rows()
        .map(|row| {
            Value::from(
                row.iter()
                    .map(|v| v.map_or(Value::Null, ns))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let levels: Vec<Value> = cl
        .levels
        .iter()
        .map(|l| {
            json!({
                "domains": lists(&l.domains),
                "confidence": l.confidence,
                "separation": l.separation,
                "inside_ns": ns(l.inside_ns),
                "across_ns": ns(l.across_ns),
            })
        })
        .collect();
    let c = report.config;
    json!({
        "cpus": m.matrix.cpus(),
        "matrix": matrix,
        "domains": lists(&probe.domains),
        "confidence": cl.confidence,
        "confidence_meaning": cl.confidence.map(|_| confidence_meaning(cl.is_split())),
        "levels": levels,
        "comparison": {
            "domains_per_node": cmp.domains_per_node.iter()
                .map(|(node, count)| json!({"node": node.index(), "domains": count}))
                .collect::<Vec<_>>(),
            "spanning_domains": cmp.spanning_domains.iter()
                .map(|(d, nodes)| json!({
                    "domain": d,
                    "nodes": nodes.iter().map(|n| n.index()).collect::<Vec<_>>(),
                }))
                .collect::<Vec<_>>(),
            "matches_nodes": cmp.matches_nodes,
            "matches_caches": cmp.matches_caches,
            "split_caches": lists(&cmp.split_caches),
            "findings": cmp.sentences(),
        },
        "probed": list(&m.probed),
        "not_allowed": list(&m.not_allowed),
        "unplaced": list(&cl.unplaced),
        "sampled": m.sampled,
        "timed_out_pairs": m.timed_out,
        "elapsed_s": (m.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "config": {
            "quick": report.quick,
            "rounds": c.rounds,
            "samples": c.samples,
            "pair_budget_ms": c.pair_budget.as_millis() as u64,
            "total_budget_ms": c.total_budget.as_millis() as u64,
            "max_pairs": c.max_pairs,
        },
        "memory_note": MEMORY_NOTE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::tests::{hidden_two_socket, report};

    #[test]
    fn shape() {
        let probe = hidden_two_socket();
        let json: Value = serde_json::from_str(&render(&report(&probe))).unwrap();
        let matrix = json["matrix"].as_array().unwrap();
        assert_eq!(matrix.len(), 8);
        assert!(matrix[7].as_array().unwrap().iter().all(Value::is_null));
        assert!(matrix[0][0].is_null());
        assert_eq!(matrix[0][4], matrix[4][0]);
        assert_eq!(json["domains"], json!([[0, 1, 2, 3], [4, 5, 6]]));
        assert!(json["confidence"].as_f64().unwrap() > 0.99);
        assert_eq!(
            json["comparison"]["domains_per_node"],
            json!([{"node": 0, "domains": 2}])
        );
        assert_eq!(json["not_allowed"], json!([7]));
    }
}
