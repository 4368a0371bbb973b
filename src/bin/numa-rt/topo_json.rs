//! `numa-rt topo --json`: the topology in hwloc's shape.
//!
//! The required fields (`nodes`, `distances`, `memattrs`) mean exactly what
//! the fixtures' `.hwloc.json` files mean (a node's `cpus` are its
//! [`local_cpus`](numa_rt::topology::Node::local_cpus), hwloc's cpuset:
//! for a memory-only node, the CPUs of its local initiators); everything
//! else is extra:
//!
//! ```text
//! {"nodes":[{"id":0,"cpus":[0,1],"memory_bytes":N,"subtype":null,
//!            "memory_only":false,"local_initiators":[...],"memory_node":0}],
//!  "distances":{"ids":[0,1],"matrix":[[10,21],[21,10]]} | null,
//!  "memattrs":{"Latency":[{"target":0,"value":26,"initiator_cpus":[0,1]}],...},
//!  "cache_domains":[[0,1],[2,3]],
//!  "devices":[{"kind":"pci","name":"0000:3b:00.0","node":1}],
//!  "memory_tiers":[{"id":4,"nodes":[0,1]}],
//!  "numa_balancing":true | false | null,
//!  "source":{"kind":"live"} | {"kind":"root","path":"..."} | {"kind":"synthetic","spec":"2x1:10,20,20,10"}}
//! ```

use numa_rt::topology::{CpuSet, DeviceKind, NodeSet, Source, Topology};
use serde_json::{json, Map, Value};

/// The topology as indented JSON with a final newline. Lists of numbers
/// (CPU lists, matrix rows) stay on one line so that a 256-CPU node does
/// not take 256 lines.
pub fn render(topo: &Topology) -> String {
    let mut out = String::new();
    write_value(&mut out, &to_value(topo), 0);
    out.push('\n');
    out
}

pub(crate) fn write_value(out: &mut String, value: &Value, depth: usize) {
    let pad = |depth: usize| "  ".repeat(depth);
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            for (i, (key, v)) in map.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                out.push_str(&Value::String(key.clone()).to_string());
                out.push_str(": ");
                write_value(out, v, depth + 1);
                out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push('}');
        }
        Value::Array(list) if list.iter().any(|v| v.is_object() || v.is_array()) => {
            out.push_str("[\n");
            for (i, v) in list.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                write_value(out, v, depth + 1);
                out.push_str(if i + 1 < list.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push(']');
        }
        Value::Array(list) => {
            // Scalars only: one line, as `[0, 1, 2]`.
            let items: Vec<String> = list.iter().map(Value::to_string).collect();
            out.push('[');
            out.push_str(&items.join(", "));
            out.push(']');
        }
        // Scalars and empty objects: serde_json's own compact form.
        other => out.push_str(&other.to_string()),
    }
}

/// The topology as a JSON value.
pub fn to_value(topo: &Topology) -> Value {
    json!({
        "nodes": nodes(topo),
        "distances": distances(topo),
        "memattrs": memattrs(topo),
        "cache_domains": topo.cache_domains().iter().map(cpu_list).collect::<Vec<_>>(),
        "devices": devices(topo),
        "memory_tiers": topo.memory_tiers().iter().map(|t| json!({
            "id": t.id,
            "nodes": node_list(&t.nodes),
        })).collect::<Vec<_>>(),
        "numa_balancing": topo.numa_balancing(),
        "source": source(topo.source()),
    })
}

fn nodes(topo: &Topology) -> Vec<Value> {
    topo.nodes()
        .iter()
        .map(|node| {
            json!({
                "id": node.id().index(),
                "cpus": cpu_list(node.local_cpus()),
                "memory_bytes": node.memory_bytes(),
                "subtype": node.subtype(),
                "memory_only": !node.has_cpus(),
                "local_initiators": node_list(&node.local_initiators()),
                "memory_node": node.memory_node().index(),
            })
        })
        .collect()
}

fn distances(topo: &Topology) -> Value {
    let Some(d) = topo.distances() else {
        return Value::Null;
    };
    json!({
        "ids": d.ids().iter().map(|id| id.index()).collect::<Vec<_>>(),
        "matrix": d.rows().map(<[u32]>::to_vec).collect::<Vec<_>>(),
    })
}

fn memattrs(topo: &Topology) -> Value {
    let mut out = Map::new();
    for attr in topo.memory_attributes() {
        let entry = json!({
            "target": attr.target.index(),
            "value": attr.value,
            "initiator_cpus": cpu_list(&attr.initiator_cpus),
        });
        match out
            .entry(attr.kind.name())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(list) => list.push(entry),
            other => *other = Value::Array(vec![entry]),
        }
    }
    Value::Object(out)
}

fn devices(topo: &Topology) -> Vec<Value> {
    topo.devices()
        .iter()
        .map(|dev| {
            json!({
                "kind": kind_name(dev.kind()),
                "name": dev.name(),
                "node": dev.node().map(|n| n.index()),
            })
        })
        .collect()
}

fn source(source: &Source) -> Value {
    match source {
        Source::Live => json!({"kind": "live"}),
        Source::Root(path) => json!({"kind": "root", "path": path.to_string_lossy()}),
        Source::Synthetic(spec) => json!({"kind": "synthetic", "spec": spec.to_string()}),
    }
}

/// The lower-case name of a device kind: `pci`, `net` or `block`.
pub fn kind_name(kind: DeviceKind) -> &'static str {
    match kind {
        DeviceKind::Pci => "pci",
        DeviceKind::Net => "net",
        DeviceKind::Block => "block",
    }
}

fn cpu_list(cpus: &CpuSet) -> Vec<u32> {
    cpus.iter().collect()
}

fn node_list(nodes: &NodeSet) -> Vec<u32> {
    nodes.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use numa_rt::topology::Synthetic;

    fn two_by_two() -> Topology {
        let base = Topology::single_node("0-3".parse().unwrap(), 8 << 30);
        let spec = Synthetic::from_spec("2x2:10,21").unwrap();
        Topology::synthetic_over(&base, &spec).unwrap()
    }

    #[test]
    fn required_shape() {
        let v = to_value(&two_by_two());
        assert_eq!(
            v["nodes"],
            json!([
                {"id": 0, "cpus": [0, 1], "memory_bytes": 4u64 << 30, "subtype": null,
                 "memory_only": false, "local_initiators": [], "memory_node": 0},
                {"id": 1, "cpus": [2, 3], "memory_bytes": 4u64 << 30, "subtype": null,
                 "memory_only": false, "local_initiators": [], "memory_node": 0},
            ])
        );
        assert_eq!(
            v["distances"],
            json!({"ids": [0, 1], "matrix": [[10, 21], [21, 10]]})
        );
        assert_eq!(v["memattrs"], json!({}));
        assert_eq!(
            v["source"],
            json!({"kind": "synthetic", "spec": "2x2:10,21,21,10"})
        );
        assert_eq!(v["numa_balancing"], Value::Null);
    }

    #[test]
    fn single_node_has_null_distances() {
        let topo = Topology::single_node("0-1".parse().unwrap(), 1 << 30);
        let v = to_value(&topo);
        assert_eq!(v["distances"], Value::Null);
        assert_eq!(v["nodes"][0]["cpus"], json!([0, 1]));
        assert_eq!(v["devices"], json!([]));
    }

    #[test]
    fn number_lists_stay_on_one_line() {
        let text = render(&two_by_two());
        assert!(text.contains("\"cpus\": [0, 1],"), "{text}");
        assert!(
            text.contains("\"matrix\": [\n      [10, 21],\n      [21, 10]\n    ]"),
            "{text}"
        );
        assert!(text.contains("\"memattrs\": {},"), "{text}");
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        write_value(&mut out, &json!({"a\"b": ["x\ny", 1, null]}), 0);
        assert_eq!(out, "{\n  \"a\\\"b\": [\"x\\ny\", 1, null]\n}");
        let back: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, json!({"a\"b": ["x\ny", 1, null]}));
    }

    #[test]
    fn render_is_parseable_json() {
        let text = render(&two_by_two());
        assert!(text.ends_with('\n'));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, to_value(&two_by_two()));
    }
}
