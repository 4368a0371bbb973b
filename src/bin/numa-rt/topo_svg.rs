//! `numa-rt topo --svg FILE`: the topology as a picture.
//!
//! Nodes stand in one row, each a box with its CPUs (small squares, tinted
//! by cache domain), memory, HMAT figures and devices. Arcs above the row
//! join nodes and carry their SLIT distance (greener is nearer); dashed
//! arcs below join a memory-only node (dashed box) to its local initiators.
//! A distance matrix and a legend close the picture.

use std::fmt::Write as _;

use numa_rt::topology::{CpuSet, Device, MemAttrKind, Node, Topology};

use crate::topo::{describe_source, human_bytes};
use crate::topo_json::kind_name;

const MARGIN: f64 = 30.0;
/// Height of the title and summary lines.
const HEADER_H: f64 = 80.0;
const BOX_W: f64 = 240.0;
const GAP: f64 = 50.0;
const LINE: f64 = 15.0;
const CHIP_W: f64 = 25.0;
const CHIP_H: f64 = 18.0;
const CHIPS_PER_ROW: usize = 8;
/// Above this many CPUs a node lists them as text instead of squares.
const MAX_CHIPS: usize = 64;
/// Characters of 11px monospace that fit in a box.
const TEXT_CHARS: usize = 34;
/// Devices listed per box before "+N more".
const MAX_DEVICES: usize = 8;
/// Above this many nodes, only arcs to each node's nearest nodes are drawn.
const MAX_FULL_MESH: usize = 10;

/// Tints for CPUs of successive cache domains.
const DOMAIN_TINTS: [&str; 4] = ["#d0ebff", "#d3f9d8", "#fff3bf", "#f3d9fa"];

/// The picture as SVG text.
pub fn render(topo: &Topology) -> String {
    Picture::new(topo).draw()
}

/// What one node's box shows.
struct NodeBox<'a> {
    node: &'a Node,
    x: f64,
    /// Lines of text below the title and the CPU squares.
    lines: Vec<Line>,
    chips: Vec<u32>,
    chip_rows: usize,
}

struct Line {
    text: String,
    class: &'static str,
}

struct Picture<'a> {
    topo: &'a Topology,
    boxes: Vec<NodeBox<'a>>,
    unknown_devices: Vec<&'a Device>,
    box_h: f64,
    row_y: f64,
    width: f64,
    svg: String,
}

impl<'a> Picture<'a> {
    fn new(topo: &'a Topology) -> Picture<'a> {
        let attrs = topo.memory_attributes();
        let mut boxes = Vec::new();
        for (i, node) in topo.nodes().iter().enumerate() {
            let x = MARGIN + i as f64 * (BOX_W + GAP);
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
            lines.push(Line {
                text: memory,
                class: "mono",
            });
            let lat = attrs
                .iter()
                .find(|a| a.target == node.id() && a.kind == MemAttrKind::Latency);
            let bw = attrs
                .iter()
                .find(|a| a.target == node.id() && a.kind == MemAttrKind::Bandwidth);
            if lat.is_some() || bw.is_some() {
                let mut hmat = String::from("HMAT");
                if let Some(l) = lat {
                    let _ = write!(hmat, " {} ns", l.value);
                }
                if let Some(b) = bw {
                    let _ = write!(hmat, " {:.1} GiB/s", b.value as f64 / 1024.0);
                }
                lines.push(Line {
                    text: hmat,
                    class: "hmat",
                });
            }
            let devices: Vec<&Device> = topo
                .devices()
                .iter()
                .filter(|d| d.node() == Some(node.id()))
                .collect();
            device_lines(&mut lines, &devices);
            boxes.push(NodeBox {
                node,
                x,
                lines,
                chips,
                chip_rows,
            });
        }
        let unknown_devices: Vec<&Device> = topo
            .devices()
            .iter()
            .filter(|d| d.node().is_none())
            .collect();
        let content_h = boxes
            .iter()
            .map(|b| b.chip_rows as f64 * (CHIP_H + 4.0) + b.lines.len() as f64 * LINE)
            .fold(0.0, f64::max);
        let unknown_h = unknown_devices.len().min(MAX_DEVICES + 1) as f64 * LINE;
        let box_h = 44.0 + content_h.max(unknown_h) + 10.0;
        let max_span = if topo.nodes().len() > 1 {
            topo.nodes().len() - 1
        } else {
            0
        };
        let arcs_h = if topo.distances().is_some() || topo.nodes().len() > 1 {
            30.0 + arc_height(max_span)
        } else {
            0.0
        };
        let row_y = HEADER_H + arcs_h;
        let slots = boxes.len() + usize::from(!unknown_devices.is_empty());
        let row_w = 2.0 * MARGIN + slots as f64 * (BOX_W + GAP) - GAP;
        let matrix_w = topo
            .distances()
            .map_or(0.0, |d| 2.0 * MARGIN + 50.0 + d.ids().len() as f64 * 36.0);
        let width = row_w.max(matrix_w).max(620.0);
        Picture {
            topo,
            boxes,
            unknown_devices,
            box_h,
            row_y,
            width,
            svg: String::new(),
        }
    }

    fn draw(mut self) -> String {
        let below = self.row_y + self.box_h + self.initiator_depth();
        let matrix_h = self.matrix_height();
        let height = below + matrix_h + 60.0;
        let _ = writeln!(
            self.svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{height:.0}" viewBox="0 0 {w:.0} {height:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">"#,
            w = self.width
        );
        self.svg.push_str(STYLE);
        let _ = writeln!(
            self.svg,
            r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
        );
        self.header();
        self.distance_arcs();
        self.initiator_arcs();
        for i in 0..self.boxes.len() {
            self.node_box(i);
        }
        self.unknown_box();
        self.matrix(below + 10.0);
        self.legend(height - 20.0);
        self.svg.push_str("</svg>\n");
        self.svg
    }

    fn header(&mut self) {
        let topo = self.topo;
        let cpus = topo.cpus();
        let memory: u64 = topo.nodes().iter().map(Node::memory_bytes).sum();
        let balancing = match topo.numa_balancing() {
            Some(true) => "on",
            Some(false) => "off",
            None => "unknown",
        };
        let title = format!("NUMA topology: {}", describe_source(topo));
        let sub = format!(
            "{} nodes, {} CPUs, {} memory, automatic NUMA balancing {}",
            topo.nodes().len(),
            cpus.len(),
            human_bytes(memory),
            balancing
        );
        text(&mut self.svg, MARGIN, 34.0, "title", &title);
        text(&mut self.svg, MARGIN, 54.0, "sub", &sub);
    }

    fn center(&self, i: usize) -> f64 {
        self.boxes[i].x + BOX_W / 2.0
    }

    /// Arcs above the row joining nodes, labelled with their distance.
    fn distance_arcs(&mut self) {
        let topo = self.topo;
        let n = self.boxes.len();
        if n < 2 {
            return;
        }
        let ids: Vec<_> = self.boxes.iter().map(|b| b.node.id()).collect();
        let remote: Vec<u32> = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| topo.distance(ids[i], ids[j]))
            .collect();
        let lo = remote.iter().copied().min().unwrap_or(0);
        let hi = remote.iter().copied().max().unwrap_or(0);
        let base = self.row_y;
        let mut labels = String::new();
        for i in 0..n {
            for j in i + 1..n {
                let d = topo
                    .distance(ids[i], ids[j])
                    .max(topo.distance(ids[j], ids[i]));
                if n > MAX_FULL_MESH && !self.is_nearest(i, j) && !self.is_nearest(j, i) {
                    continue;
                }
                let (x1, x2) = (self.center(i), self.center(j));
                let h = arc_height(j - i);
                let color = distance_color(d, lo, hi);
                let _ = writeln!(
                    self.svg,
                    r#"<path class="arc" d="M {x1:.1} {base:.1} C {x1:.1} {c:.1}, {x2:.1} {c:.1}, {x2:.1} {base:.1}" stroke="{color}"/>"#,
                    c = base - h * 4.0 / 3.0,
                );
                let back = topo.distance(ids[j], ids[i]);
                let there = topo.distance(ids[i], ids[j]);
                let label = if back == there {
                    there.to_string()
                } else {
                    format!("{there}/{back}")
                };
                let lx = (x1 + x2) / 2.0;
                let ly = base - h;
                let w = 8.0 + 7.0 * label.len() as f64;
                let _ = writeln!(
                    labels,
                    r#"<rect class="pill" x="{:.1}" y="{:.1}" width="{w:.1}" height="16" rx="8" stroke="{color}"/>"#,
                    lx - w / 2.0,
                    ly - 8.0
                );
                let _ = writeln!(
                    labels,
                    r#"<text class="dist" x="{lx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    ly + 4.0,
                    escape(&label)
                );
            }
        }
        self.svg.push_str(&labels);
    }

    /// Whether node `j` is one of the nodes nearest to node `i`, when not
    /// every other node is equally near.
    fn is_nearest(&self, i: usize, j: usize) -> bool {
        let topo = self.topo;
        let from = self.boxes[i].node.id();
        let others: Vec<u32> = self
            .boxes
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != i)
            .map(|(_, b)| topo.distance(from, b.node.id()))
            .collect();
        let Some(&nearest) = others.iter().min() else {
            return false;
        };
        let ties = others.iter().filter(|&&d| d == nearest).count();
        ties < others.len() && nearest == topo.distance(from, self.boxes[j].node.id())
    }

    fn initiator_depth(&self) -> f64 {
        let spans = self
            .initiator_pairs()
            .into_iter()
            .map(|(i, j)| i.abs_diff(j));
        spans.max().map_or(0.0, |s| 20.0 + arc_height(s) * 0.6)
    }

    /// (memory-only node, initiator node) pairs by box index.
    fn initiator_pairs(&self) -> Vec<(usize, usize)> {
        let mut pairs = Vec::new();
        for (i, b) in self.boxes.iter().enumerate() {
            if b.node.has_cpus() {
                continue;
            }
            for init in b.node.local_initiators().nodes() {
                if let Some(j) = self.boxes.iter().position(|o| o.node.id() == init) {
                    if j != i {
                        pairs.push((i, j));
                    }
                }
            }
        }
        pairs
    }

    /// Dashed arcs below the row from memory-only nodes to their initiators.
    fn initiator_arcs(&mut self) {
        let base = self.row_y + self.box_h;
        for (i, j) in self.initiator_pairs() {
            let (x1, x2) = (self.center(i) + 12.0, self.center(j) - 12.0);
            let h = arc_height(i.abs_diff(j)) * 0.6;
            let c = base + h * 4.0 / 3.0;
            let _ = writeln!(
                self.svg,
                r#"<path class="init" d="M {x1:.1} {base:.1} C {x1:.1} {c:.1}, {x2:.1} {c:.1}, {x2:.1} {base:.1}"/>"#
            );
        }
    }

    fn node_box(&mut self, i: usize) {
        let b = &self.boxes[i];
        let (x, y) = (b.x, self.row_y);
        let class = if b.node.has_cpus() { "node" } else { "memnode" };
        let _ = writeln!(
            self.svg,
            r#"<rect class="{class}" x="{x:.1}" y="{y:.1}" width="{BOX_W}" height="{:.1}" rx="8"/>"#,
            self.box_h
        );
        let mut title = format!("node {}", b.node.id().index());
        if !b.node.has_cpus() {
            title.push_str(" · memory only");
        }
        text(&mut self.svg, x + 12.0, y + 22.0, "ntitle", &title);
        let mut cy = y + 34.0;
        if !b.chips.is_empty() {
            let domains = self.topo.cache_domains();
            for (k, cpu) in b.chips.iter().enumerate() {
                let cx = x + 12.0 + (k % CHIPS_PER_ROW) as f64 * (CHIP_W + 2.0);
                let ry = cy + (k / CHIPS_PER_ROW) as f64 * (CHIP_H + 4.0);
                let tint = domain_tint(domains, *cpu);
                let _ = writeln!(
                    self.svg,
                    r#"<rect class="cpu" x="{cx:.1}" y="{ry:.1}" width="{CHIP_W}" height="{CHIP_H}" rx="3" fill="{tint}"/>"#
                );
                let _ = writeln!(
                    self.svg,
                    r#"<text class="cpun" x="{:.1}" y="{:.1}" text-anchor="middle">{cpu}</text>"#,
                    cx + CHIP_W / 2.0,
                    ry + 13.0
                );
            }
            cy += b.chip_rows as f64 * (CHIP_H + 4.0);
        }
        cy += 12.0;
        let lines: Vec<(String, &'static str)> =
            b.lines.iter().map(|l| (l.text.clone(), l.class)).collect();
        for (line, class) in lines {
            text(&mut self.svg, x + 12.0, cy, class, &line);
            cy += LINE;
        }
    }

    fn unknown_box(&mut self) {
        if self.unknown_devices.is_empty() {
            return;
        }
        let x = MARGIN + self.boxes.len() as f64 * (BOX_W + GAP);
        let y = self.row_y;
        let _ = writeln!(
            self.svg,
            r#"<rect class="unknown" x="{x:.1}" y="{y:.1}" width="{BOX_W}" height="{:.1}" rx="8"/>"#,
            self.box_h
        );
        text(
            &mut self.svg,
            x + 12.0,
            y + 22.0,
            "ntitle",
            "devices, node unknown",
        );
        let mut lines = Vec::new();
        device_lines(&mut lines, &self.unknown_devices);
        let mut cy = y + 44.0;
        for line in lines {
            text(&mut self.svg, x + 12.0, cy, line.class, &line.text);
            cy += LINE;
        }
    }

    fn matrix_height(&self) -> f64 {
        match self.topo.distances() {
            Some(d) if d.ids().len() > 1 => 40.0 + (d.ids().len() + 1) as f64 * 22.0,
            _ => 0.0,
        }
    }

    /// The SLIT matrix as a small heat table.
    fn matrix(&mut self, top: f64) {
        let Some(d) = self.topo.distances() else {
            return;
        };
        let n = d.ids().len();
        if n < 2 {
            return;
        }
        let values: Vec<u32> = d.rows().flatten().copied().collect();
        let lo = values.iter().copied().min().unwrap_or(0);
        let hi = values.iter().copied().max().unwrap_or(0);
        text(
            &mut self.svg,
            MARGIN,
            top + 14.0,
            "ntitle",
            "distances (SLIT, row = from)",
        );
        let x0 = MARGIN + 50.0;
        let y0 = top + 28.0;
        for (k, id) in d.ids().iter().enumerate() {
            let label = id.index().to_string();
            let cx = x0 + k as f64 * 36.0 + 17.0;
            let _ = writeln!(
                self.svg,
                r#"<text class="mh" x="{cx:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
                y0 + 14.0
            );
            let _ = writeln!(
                self.svg,
                r#"<text class="mh" x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"#,
                x0 - 10.0,
                y0 + 22.0 * (k + 1) as f64 + 14.0
            );
        }
        for (r, row) in d.rows().enumerate() {
            for (c, v) in row.iter().enumerate() {
                let cx = x0 + c as f64 * 36.0;
                let cy = y0 + 22.0 * (r + 1) as f64;
                let fill = heat(*v, lo, hi);
                let _ = writeln!(
                    self.svg,
                    r#"<rect x="{cx:.1}" y="{cy:.1}" width="34" height="20" fill="{fill}"/>"#
                );
                let _ = writeln!(
                    self.svg,
                    r#"<text class="mv" x="{:.1}" y="{:.1}" text-anchor="middle">{v}</text>"#,
                    cx + 17.0,
                    cy + 14.0
                );
            }
        }
    }

    fn legend(&mut self, y: f64) {
        let mut legend = String::from("arcs: SLIT distance between nodes (10 = local)");
        if self.boxes.len() > MAX_FULL_MESH {
            legend.push_str(", nearest nodes only");
        }
        if self.boxes.iter().any(|b| !b.node.has_cpus()) {
            legend.push_str(" · dashed box: memory-only node · dashed arcs: its local initiators");
        }
        if !self.topo.cache_domains().is_empty() {
            legend.push_str(" · CPU tint: shared last-level cache");
        }
        text(&mut self.svg, MARGIN, y, "legend", &legend);
    }
}

const STYLE: &str = r##"<style>
.title { font-size: 18px; font-weight: bold; fill: #212529; }
.sub { font-size: 12px; fill: #495057; }
.node { fill: #f8f9fa; stroke: #343a40; stroke-width: 1.5; }
.memnode { fill: #fff4e6; stroke: #d9480f; stroke-width: 1.5; stroke-dasharray: 6 4; }
.unknown { fill: #f1f3f5; stroke: #adb5bd; stroke-width: 1; stroke-dasharray: 2 3; }
.ntitle { font-size: 14px; font-weight: bold; fill: #212529; }
.cpu { stroke: #495057; stroke-width: 0.8; }
.cpun { font-size: 10px; fill: #212529; font-family: DejaVu Sans Mono, monospace; }
.mono { font-size: 11px; fill: #343a40; font-family: DejaVu Sans Mono, monospace; }
.hmat { font-size: 11px; fill: #5f3dc4; font-family: DejaVu Sans Mono, monospace; }
.dev { font-size: 11px; fill: #1864ab; font-family: DejaVu Sans Mono, monospace; }
.devh { font-size: 11px; font-weight: bold; fill: #495057; }
.arc { fill: none; stroke-width: 2; opacity: 0.8; }
.init { fill: none; stroke: #d9480f; stroke-width: 1.5; stroke-dasharray: 5 4; }
.pill { fill: #ffffff; stroke-width: 1.2; }
.dist { font-size: 11px; font-weight: bold; fill: #212529; }
.mh { font-size: 11px; font-weight: bold; fill: #495057; }
.mv { font-size: 11px; fill: #212529; }
.legend { font-size: 11px; fill: #868e96; }
</style>
"##;

/// The height of the arc joining boxes `span` slots apart.
fn arc_height(span: usize) -> f64 {
    18.0 + 22.0 * span as f64
}

/// Device lines for a box: a heading per kind, then names, capped at
/// [`MAX_DEVICES`] names in all.
fn device_lines(lines: &mut Vec<Line>, devices: &[&Device]) {
    if devices.is_empty() {
        return;
    }
    let shown = devices.len().min(MAX_DEVICES);
    let mut sorted: Vec<&&Device> = devices.iter().collect();
    sorted.sort_by_key(|d| (d.kind(), d.name()));
    lines.push(Line {
        text: format!("devices ({})", devices.len()),
        class: "devh",
    });
    for dev in sorted.iter().take(shown) {
        let mut name = format!("{:<5} {}", kind_name(dev.kind()), dev.name());
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

/// Green for the nearest remote distance, red for the farthest.
fn distance_color(d: u32, lo: u32, hi: u32) -> String {
    let t = if hi > lo {
        f64::from(d.saturating_sub(lo)) / f64::from(hi - lo)
    } else {
        0.0
    };
    let (r0, g0, b0) = (47.0, 158.0, 68.0);
    let (r1, g1, b1) = (224.0, 49.0, 49.0);
    format!(
        "#{:02x}{:02x}{:02x}",
        (r0 + (r1 - r0) * t) as u8,
        (g0 + (g1 - g0) * t) as u8,
        (b0 + (b1 - b0) * t) as u8
    )
}

/// Light background for a matrix cell: white for the smallest value,
/// deeper orange for larger ones.
fn heat(v: u32, lo: u32, hi: u32) -> String {
    let t = if hi > lo {
        f64::from(v.saturating_sub(lo)) / f64::from(hi - lo)
    } else {
        0.0
    };
    let g = 249.0 - 120.0 * t;
    let b = 240.0 - 170.0 * t;
    format!("#ff{:02x}{:02x}", g as u8, b as u8)
}

fn text(svg: &mut String, x: f64, y: f64, class: &str, content: &str) {
    let _ = writeln!(
        svg,
        r#"<text class="{class}" x="{x:.1}" y="{y:.1}" xml:space="preserve">{}</text>"#,
        escape(content)
    );
}

/// Escapes text for use in SVG content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use numa_rt::topology::Synthetic;

    fn synthetic(spec: &str, cpus: &str) -> Topology {
        let base = Topology::single_node(cpus.parse().unwrap(), 8 << 30);
        Topology::synthetic_over(&base, &Synthetic::from_spec(spec).unwrap()).unwrap()
    }

    /// Checks that tags open and close in order (no XML parser needed for
    /// the subset this module writes).
    fn assert_balanced(svg: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("unclosed tag") + start;
            let tag = &rest[start + 1..end];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().unwrap_or_default();
                stack.push(name.to_owned());
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    #[test]
    fn two_nodes_with_labelled_link() {
        let svg = render(&synthetic("2x2:10,21", "0-3"));
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert_balanced(&svg);
        assert_eq!(svg.matches("class=\"node\"").count(), 2);
        assert_eq!(svg.matches("class=\"arc\"").count(), 1);
        assert!(svg.contains(">21</text>"), "distance label missing");
        assert_eq!(svg.matches("class=\"cpu\"").count(), 4);
    }

    #[test]
    fn asymmetric_distances_show_both_ways() {
        let svg = render(&synthetic("2x1:10,12,30,10", "0-1"));
        assert!(svg.contains(">12/30</text>"), "{svg}");
    }

    #[test]
    fn many_nodes_draw_only_nearest_links() {
        // 12 nodes in pairs: 15 within a pair, 30 between pairs.
        let matrix: Vec<String> = (0..12)
            .flat_map(|i| (0..12).map(move |j| (i, j)))
            .map(|(i, j)| match (i, j) {
                (i, j) if i == j => "10",
                (i, j) if i / 2 == j / 2 => "15",
                _ => "30",
            })
            .map(str::to_owned)
            .collect();
        let svg = render(&synthetic(&format!("12x1:{}", matrix.join(",")), "0-11"));
        assert_balanced(&svg);
        assert_eq!(svg.matches("class=\"arc\"").count(), 6);
        assert!(svg.contains("nearest nodes only"));
        // Uniform distances: no node is nearer than another, the matrix says it all.
        let svg = render(&synthetic("12x1", "0-11"));
        assert_eq!(svg.matches("class=\"arc\"").count(), 0);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b & \"c\"\n"), "a&lt;b &amp; &quot;c&quot;");
    }

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
