//! One node's box: what it shows (CPU squares, memory, HMAT figures,
//! devices) and how it is drawn.

use std::fmt::Write as _;

use numa_rt::topology::{CpuSet, Device, DeviceKind, MemAttrKind, Node, Topology};

use super::style::text;
use super::{BOX_W, LINE};
use crate::topo::{device_label, human_bytes};
use crate::topo_json::kind_name;

const CHIP_W: f64 = 25.0;
const CHIP_H: f64 = 18.0;
const CHIPS_PER_ROW: usize = 8;
/// Above this many CPUs a node lists them as text instead of squares.
const MAX_CHIPS: usize = 64;
/// Characters of 11px monospace that fit in a box.
const TEXT_CHARS: usize = 34;
/// Devices listed per box before "+N more".
const MAX_DEVICES: usize = 8;

/// The order device kinds are listed in.
const KIND_ORDER: [DeviceKind; 3] = [DeviceKind::Net, DeviceKind::Block, DeviceKind::Pci];

/// Tints for CPUs of successive cache domains.
const DOMAIN_TINTS: [&str; 4] = ["#d0ebff", "#d3f9d8", "#fff3bf", "#f3d9fa"];

/// What one node's box shows, and where.
pub(super) struct NodeBox<'a> {
    pub(super) node: &'a Node,
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) h: f64,
    /// Lines of text below the title and the CPU squares.
    pub(super) lines: Vec<Line>,
    pub(super) chips: Vec<u32>,
    pub(super) chip_rows: usize,
}

impl NodeBox<'_> {
    pub(super) fn center(&self) -> f64 {
        self.x + BOX_W / 2.0
    }

    /// Height of the content below the title.
    pub(super) fn content_h(&self) -> f64 {
        self.chip_rows as f64 * (CHIP_H + 4.0) + self.lines.len() as f64 * LINE
    }
}

pub(super) struct Line {
    pub(super) text: String,
    pub(super) class: &'static str,
}

/// The box of `node`, not yet placed.
pub(super) fn node_box<'a>(topo: &Topology, node: &'a Node) -> NodeBox<'a> {
    let chips: Vec<u32> = if node.cpus().len() <= MAX_CHIPS {
        node.cpus().iter().collect()
    } else {
        Vec::new()
    };
    let chip_rows = chips.len().div_ceil(CHIPS_PER_ROW);
    let mut lines = Vec::new();
    if node.has_cpus() {
        let n = node.cpus().len();
        let what = if n == 1 { "CPU" } else { "CPUs" };
        push_wrapped(&mut lines, &format!("{n} {what}: {}", node.cpus()), "mono");
    } else {
        let near = node.local_cpus();
        push_wrapped(&mut lines, &format!("near CPUs {near}"), "mono");
    }
    let mut memory = format!("memory {}", human_bytes(node.memory_bytes()));
    if let Some(subtype) = node.subtype() {
        let _ = write!(memory, " {subtype}");
    }
    if let Some(tier) = topo
        .memory_tiers()
        .iter()
        .find(|t| t.nodes.contains_node(node.id()))
    {
        let _ = write!(memory, ", tier {}", tier.id);
    }
    lines.push(Line {
        text: memory,
        class: "mono",
    });
    let lat = topo.memory_attribute(MemAttrKind::Latency, node.id());
    let bw = topo.memory_attribute(MemAttrKind::Bandwidth, node.id());
    if lat.is_some() || bw.is_some() {
        let figures: Vec<String> = lat
            .map(|l| format!("{l} ns"))
            .into_iter()
            .chain(bw.map(bandwidth))
            .collect();
        lines.push(Line {
            text: format!("HMAT: {}", figures.join(", ")),
            class: "hmat",
        });
    }
    let devices: Vec<&Device> = topo
        .devices()
        .iter()
        .filter(|d| d.node() == Some(node.id()))
        .collect();
    device_lines(&mut lines, topo, &devices);
    NodeBox {
        node,
        x: 0.0,
        y: 0.0,
        h: 0.0,
        lines,
        chips,
        chip_rows,
    }
}

/// A bandwidth in MiB/s, shown in GiB/s from 1 GiB/s up.
fn bandwidth(mibs: u64) -> String {
    if mibs >= 1024 {
        format!("{:.1} GiB/s", mibs as f64 / 1024.0)
    } else {
        format!("{mibs} MiB/s")
    }
}

/// The common height of a row of boxes.
pub(super) fn row_height(boxes: &[NodeBox]) -> f64 {
    44.0 + boxes.iter().map(NodeBox::content_h).fold(0.0, f64::max) + 10.0
}

/// One node's box: frame, title, CPU squares and text lines.
pub(super) fn draw_box(b: &NodeBox, domains: &[CpuSet]) -> String {
    let mut svg = String::new();
    let (x, y) = (b.x, b.y);
    let class = if b.node.has_cpus() { "node" } else { "memnode" };
    let _ = writeln!(
        svg,
        r#"<rect class="{class}" x="{x:.1}" y="{y:.1}" width="{BOX_W}" height="{:.1}" rx="8"/>"#,
        b.h
    );
    let mut title = format!("node {}", b.node.id().index());
    if !b.node.has_cpus() {
        title.push_str(" · memory only");
    }
    text(&mut svg, x + 12.0, y + 22.0, "ntitle", &title);
    let mut cy = y + 34.0;
    for (k, cpu) in b.chips.iter().enumerate() {
        let cx = x + 12.0 + (k % CHIPS_PER_ROW) as f64 * (CHIP_W + 2.0);
        let ry = cy + (k / CHIPS_PER_ROW) as f64 * (CHIP_H + 4.0);
        let tint = domain_tint(domains, *cpu);
        let _ = writeln!(
            svg,
            r#"<rect class="cpu" x="{cx:.1}" y="{ry:.1}" width="{CHIP_W}" height="{CHIP_H}" rx="3" fill="{tint}"/>"#
        );
        let _ = writeln!(
            svg,
            r#"<text class="cpun" x="{:.1}" y="{:.1}" text-anchor="middle">{cpu}</text>"#,
            cx + CHIP_W / 2.0,
            ry + 13.0
        );
    }
    cy += b.chip_rows as f64 * (CHIP_H + 4.0) + 12.0;
    for line in &b.lines {
        text(&mut svg, x + 12.0, cy, line.class, &line.text);
        cy += LINE;
    }
    svg
}

/// Device lines for a box: a heading per kind, then names, capped at
/// [`MAX_DEVICES`] names in all.
pub(super) fn device_lines(lines: &mut Vec<Line>, topo: &Topology, devices: &[&Device]) {
    if devices.is_empty() {
        return;
    }
    let shown = devices.len().min(MAX_DEVICES);
    let mut sorted: Vec<&&Device> = devices.iter().collect();
    // Interfaces and disks say more to a reader than PCI addresses.
    sorted.sort_by_key(|d| (KIND_ORDER.iter().position(|&k| k == d.kind()), d.name()));
    let counts: Vec<String> = KIND_ORDER
        .iter()
        .map(|&kind| (kind, devices.iter().filter(|d| d.kind() == kind).count()))
        .filter(|&(_, n)| n > 0)
        .map(|(kind, n)| format!("{n} {}", kind_name(kind)))
        .collect();
    lines.push(Line {
        text: format!("devices: {}", counts.join(", ")),
        class: "devh",
    });
    for dev in sorted.iter().take(shown) {
        let mut name = format!("{:<5} {}", kind_name(dev.kind()), device_label(topo, dev));
        if name.chars().count() > TEXT_CHARS {
            name = name.chars().take(TEXT_CHARS - 1).collect::<String>() + "…";
        }
        lines.push(Line {
            text: name,
            class: "dev",
        });
    }
    if devices.len() > shown {
        lines.push(Line {
            text: format!("+{} more", devices.len() - shown),
            class: "dev",
        });
    }
}

/// Adds `text` as lines of at most [`TEXT_CHARS`], breaking after commas.
fn push_wrapped(lines: &mut Vec<Line>, text: &str, class: &'static str) {
    let mut line = String::new();
    for piece in text.split_inclusive(',') {
        if !line.is_empty() && line.chars().count() + piece.chars().count() > TEXT_CHARS {
            lines.push(Line {
                text: std::mem::take(&mut line),
                class,
            });
            line.push_str("  ");
        }
        line.push_str(piece);
    }
    if !line.is_empty() {
        lines.push(Line { text: line, class });
    }
}

/// The tint of the cache domain holding `cpu`.
fn domain_tint(domains: &[CpuSet], cpu: u32) -> &'static str {
    match domains.iter().position(|d| d.contains(cpu)) {
        Some(k) => DOMAIN_TINTS[k % DOMAIN_TINTS.len()],
        None => "#e9ecef",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_breaks_long_cpu_lists() {
        let cpus: CpuSet = (0..200).step_by(2).collect();
        let mut lines = Vec::new();
        push_wrapped(&mut lines, &format!("CPUs: {cpus}"), "mono");
        assert!(lines.len() > 1);
        assert!(lines
            .iter()
            .all(|l| l.text.chars().count() <= TEXT_CHARS + 2));
        let joined: String = lines.iter().map(|l| l.text.trim_start()).collect();
        assert_eq!(joined, format!("CPUs: {cpus}"));
    }
}
