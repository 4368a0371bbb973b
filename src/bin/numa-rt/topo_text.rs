//! `numa-rt topo`: the readable view, in the spirit of `numactl -H` and
//! `lstopo`'s text output.

use std::fmt::Write as _;

use numa_rt::topology::{CpuSet, Device, DeviceKind, MemAttrKind, Node, Topology};
use numa_rt::NodeId;

use crate::topo::{describe_source, device_label, devices_off_nodes, human_bytes};
use crate::topo_json::kind_name;

/// Lines are wrapped to this width where they list many items.
const WIDTH: usize = 100;

/// The whole readable view.
pub fn render(topo: &Topology) -> String {
    let mut out = String::new();
    summary(&mut out, topo);
    for node in topo.nodes() {
        node_section(&mut out, topo, node);
    }
    unknown_devices(&mut out, topo);
    distances(&mut out, topo);
    memory_attributes(&mut out, topo);
    memory_tiers(&mut out, topo);
    out
}

fn summary(out: &mut String, topo: &Topology) {
    let nodes = topo.nodes();
    let cpu_nodes = topo.cpu_nodes().count();
    let memory: u64 = nodes.iter().map(Node::memory_bytes).sum();
    let cpus = topo.cpus();
    let _ = writeln!(out, "source: {}", describe_source(topo));
    let _ = write!(
        out,
        "{} {} ({} with CPUs",
        nodes.len(),
        plural(nodes.len(), "node", "nodes"),
        cpu_nodes
    );
    if nodes.len() > cpu_nodes {
        let _ = write!(out, ", {} memory-only", nodes.len() - cpu_nodes);
    }
    let _ = write!(
        out,
        "), {} {}",
        cpus.len(),
        plural(cpus.len(), "CPU", "CPUs")
    );
    if !cpus.is_empty() {
        let _ = write!(out, " ({cpus})");
    }
    let _ = writeln!(out, ", {} memory", human_bytes(memory));
    let balancing = match topo.numa_balancing() {
        Some(true) => "on",
        Some(false) => "off",
        None => "unknown",
    };
    let _ = writeln!(out, "automatic NUMA balancing: {balancing}");
}

fn node_section(out: &mut String, topo: &Topology, node: &Node) {
    let id = node.id().index();
    let _ = write!(out, "\nnode {id}: ");
    if node.has_cpus() {
        let n = node.cpus().len();
        let _ = write!(out, "{n} {}", plural(n, "CPU", "CPUs"));
    } else {
        out.push_str("memory only");
    }
    let _ = write!(out, ", {}", human_bytes(node.memory_bytes()));
    if let Some(subtype) = node.subtype() {
        let _ = write!(out, " {subtype}");
    }
    if node.memory_node() != node.id() {
        let _ = write!(
            out,
            " (emulated: memory from node {})",
            node.memory_node().index()
        );
    }
    out.push('\n');

    if node.has_cpus() {
        wrap_items(out, &label("CPUs"), &list_items(node.cpus()), ",");
    } else {
        let near = node.local_cpus();
        let initiators = node.local_initiators();
        let how = if initiators.is_empty() {
            "hwloc's locality; no HMAT initiators".to_owned()
        } else {
            let what = plural(initiators.len(), "node", "nodes");
            format!("local initiators: {what} {initiators}")
        };
        let _ = writeln!(out, "{}{near} ({how})", label("near CPUs"));
    }

    let domains = cache_domains_of(topo, node);
    if !domains.is_empty() {
        let items: Vec<String> = domains
            .iter()
            .map(|(cpus, spans)| {
                if spans.is_empty() {
                    cpus.to_string()
                } else {
                    format!("{cpus} (shared with {spans})")
                }
            })
            .collect();
        wrap_items(out, &label("caches"), &items, " | ");
    }

    let devices: Vec<&Device> = topo
        .devices()
        .iter()
        .filter(|d| d.node() == Some(node.id()))
        .collect();
    device_lines(out, topo, &devices);
}

/// An indented label padded so that the values after it line up.
fn label(name: &str) -> String {
    format!("  {:<11}", format!("{name}:"))
}

/// The ranges of a set (`0-3`, `8`) as separate items, for wrapping.
fn list_items<K>(set: &numa_rt::topology::IdSet<K>) -> Vec<String> {
    set.to_string().split(',').map(str::to_owned).collect()
}

/// The cache domains holding CPUs of `node`, each with the CPUs it has on
/// the node and the other nodes it spans.
fn cache_domains_of(topo: &Topology, node: &Node) -> Vec<(CpuSet, String)> {
    topo.cache_domains()
        .iter()
        .filter(|d| d.intersects(node.cpus()))
        .map(|d| {
            let others: Vec<String> = topo
                .cpu_nodes()
                .filter(|n| n.id() != node.id() && n.cpus().intersects(d))
                .map(|n| n.id().index().to_string())
                .collect();
            let what = plural(others.len(), "node", "nodes");
            let spans = if others.is_empty() {
                String::new()
            } else {
                format!("{what} {}", others.join(","))
            };
            (d.intersection(node.cpus()), spans)
        })
        .collect()
}

fn device_lines(out: &mut String, topo: &Topology, devices: &[&Device]) {
    for kind in [DeviceKind::Net, DeviceKind::Block, DeviceKind::Pci] {
        let names: Vec<String> = devices
            .iter()
            .filter(|d| d.kind() == kind)
            .map(|d| device_label(topo, d))
            .collect();
        if !names.is_empty() {
            wrap_items(out, &label(kind_name(kind)), &names, ", ");
        }
    }
}

fn unknown_devices(out: &mut String, topo: &Topology) {
    let unknown = devices_off_nodes(topo);
    if unknown.is_empty() {
        return;
    }
    if unknown.iter().all(|d| d.node().is_none()) {
        out.push_str("\ndevices on no known node:\n");
    } else {
        out.push_str("\ndevices on no known node or on a node this process may not use:\n");
    }
    device_lines(out, topo, &unknown);
}

fn distances(out: &mut String, topo: &Topology) {
    let Some(d) = topo.distances() else {
        if topo.nodes().len() > 1 {
            out.push_str("\ndistances: none reported (assumed 10 local, 20 remote)\n");
        }
        return;
    };
    out.push_str("\ndistances (SLIT):\n");
    let mut rows = vec![std::iter::once("node".to_owned())
        .chain(d.ids().iter().map(|id| id.index().to_string()))
        .collect::<Vec<_>>()];
    for (id, row) in d.ids().iter().zip(d.rows()) {
        rows.push(
            std::iter::once(id.index().to_string())
                .chain(row.iter().map(u32::to_string))
                .collect(),
        );
    }
    table(out, &rows, 1);
}

fn memory_attributes(out: &mut String, topo: &Topology) {
    let attrs = topo.memory_attributes();
    if attrs.is_empty() {
        return;
    }
    let kinds: Vec<MemAttrKind> = MemAttrKind::ALL
        .into_iter()
        .filter(|k| attrs.iter().any(|a| a.kind == *k))
        .collect();
    let mut targets: Vec<NodeId> = attrs.iter().map(|a| a.target).collect();
    targets.sort();
    targets.dedup();

    out.push_str("\nmemory attributes (HMAT, from each node's local initiators):\n");
    let mut header = vec!["node".to_owned(), "initiator CPUs".to_owned()];
    header.extend(kinds.iter().map(|k| format!("{} {}", k.name(), unit(*k))));
    let mut rows = vec![header];
    for target in targets {
        let of_target: Vec<_> = attrs.iter().filter(|a| a.target == target).collect();
        let initiators = of_target
            .first()
            .map_or_else(String::new, |a| a.initiator_cpus.to_string());
        let mut row = vec![target.index().to_string(), initiators];
        row.extend(kinds.iter().map(|k| {
            of_target
                .iter()
                .find(|a| a.kind == *k)
                .map_or_else(|| "-".to_owned(), |a| a.value.to_string())
        }));
        rows.push(row);
    }
    table(out, &rows, 2);
}

fn unit(kind: MemAttrKind) -> &'static str {
    match kind {
        MemAttrKind::Latency | MemAttrKind::ReadLatency | MemAttrKind::WriteLatency => "(ns)",
        MemAttrKind::Bandwidth | MemAttrKind::ReadBandwidth | MemAttrKind::WriteBandwidth => {
            "(MiB/s)"
        }
    }
}

fn memory_tiers(out: &mut String, topo: &Topology) {
    let tiers = topo.memory_tiers();
    if tiers.is_empty() {
        return;
    }
    out.push_str("\nmemory tiers (fastest first):\n");
    for tier in tiers {
        let what = plural(tier.nodes.len(), "node", "nodes");
        let _ = writeln!(out, "  tier {}: {what} {}", tier.id, tier.nodes);
    }
}

/// Writes `rows` as a table: the first `left` columns left-aligned, the
/// rest right-aligned, two spaces between columns.
fn table(out: &mut String, rows: &[Vec<String>], left: usize) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::from(" ");
        for (c, cell) in row.iter().enumerate() {
            line.push_str(if c == 0 { " " } else { "  " });
            if c < left {
                let _ = write!(line, "{cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(line, "{cell:>w$}", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// Writes `prefix` followed by `items` joined with `sep`, wrapping at
/// [`WIDTH`] after a separator, continuation lines indented under the
/// first item.
fn wrap_items(out: &mut String, prefix: &str, items: &[String], sep: &str) {
    let indent = " ".repeat(prefix.chars().count());
    let kept = sep.trim_end();
    let joiner = &sep[kept.len()..];
    let mut line = prefix.to_owned();
    let mut empty = true;
    for (i, item) in items.iter().enumerate() {
        let piece = if i + 1 < items.len() {
            format!("{item}{kept}")
        } else {
            item.clone()
        };
        let width = line.chars().count() + joiner.len() + piece.chars().count();
        if !empty && width > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = indent.clone();
            empty = true;
        }
        if !empty {
            line.push_str(joiner);
        }
        line.push_str(&piece);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use numa_rt::topology::Synthetic;

    fn synthetic(spec: &str, cpus: &str) -> Topology {
        let base = Topology::single_node(cpus.parse().unwrap(), 8 << 30);
        Topology::synthetic_over(&base, &Synthetic::from_spec(spec).unwrap()).unwrap()
    }

    #[test]
    fn two_nodes() {
        let text = render(&synthetic("2x2:10,21", "0-3"));
        assert!(
            text.starts_with("source: synthetic 2x2:10,21,21,10"),
            "{text}"
        );
        assert!(
            text.contains("2 nodes (2 with CPUs), 4 CPUs (0-3), 8.0 GiB memory"),
            "{text}"
        );
        assert!(text.contains("automatic NUMA balancing: unknown"), "{text}");
        assert!(
            text.contains("\nnode 0: 2 CPUs, 4.0 GiB\n  CPUs:      0-1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\nnode 1: 2 CPUs, 4.0 GiB (emulated: memory from node 0)\n  CPUs:      2-3\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("distances (SLIT):\n  node   0   1\n  0     10  21\n  1     21  10\n"),
            "{text}"
        );
        assert!(!text.contains("memory attributes"), "{text}");
    }

    #[test]
    fn single_node_has_no_distance_section() {
        let topo = Topology::single_node("0".parse().unwrap(), 1 << 30);
        let text = render(&topo);
        assert!(
            text.contains("1 node (1 with CPUs), 1 CPU (0), 1.0 GiB memory"),
            "{text}"
        );
        assert!(!text.contains("distances"), "{text}");
    }

    #[test]
    fn long_cpu_lists_wrap_without_spaces() {
        let cpus: CpuSet = (0..400).step_by(4).collect();
        let mut out = String::new();
        wrap_items(&mut out, &label("CPUs"), &list_items(&cpus), ",");
        assert!(out.lines().count() > 1, "{out}");
        assert!(out.lines().all(|l| l.chars().count() <= WIDTH), "{out}");
        let joined: String = out
            .lines()
            .map(|l| l.trim_start_matches([' ', 'C', 'P', 'U', 's', ':']))
            .collect();
        assert_eq!(joined, cpus.to_string());
    }

    #[test]
    fn wrapping_keeps_every_item() {
        let items: Vec<String> = (0..60).map(|i| format!("0000:{i:02x}:00.0")).collect();
        let mut out = String::new();
        wrap_items(&mut out, "  pci:  ", &items, ", ");
        assert!(out.lines().all(|l| l.chars().count() <= WIDTH), "{out}");
        assert!(out.lines().count() > 1);
        for item in &items {
            assert!(out.contains(item.as_str()), "{item} missing");
        }
        assert!(
            out.lines().skip(1).all(|l| l.starts_with("        0000")),
            "{out}"
        );
    }
}
