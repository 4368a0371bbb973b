//! `numa-rt topo --svg FILE`: the topology as a picture.
//!
//! Nodes with CPUs stand in a row, each a box with its CPUs (small squares,
//! tinted by cache domain), memory, HMAT figures and devices. Arcs above
//! the row join nodes and carry their SLIT distance (greener is nearer).
//! Memory-only nodes (dashed boxes) sit in a second row under their local
//! initiators, joined to them by dashed lines. Devices on no known node get
//! a box of their own. A distance matrix and a legend close the picture.

use std::fmt::Write as _;

use numa_rt::topology::{CpuSet, Device, DeviceKind, MemAttrKind, Node, Topology};

use crate::topo::{describe_source, device_label, devices_off_nodes, human_bytes};
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
/// Above this many CPU nodes, only arcs to each node's nearest nodes are drawn.
const MAX_FULL_MESH: usize = 4;

/// The order device kinds are listed in.
const KIND_ORDER: [DeviceKind; 3] = [DeviceKind::Net, DeviceKind::Block, DeviceKind::Pci];

/// Tints for CPUs of successive cache domains.
const DOMAIN_TINTS: [&str; 4] = ["#d0ebff", "#d3f9d8", "#fff3bf", "#f3d9fa"];

/// The picture as SVG text.
pub fn render(topo: &Topology) -> String {
    Picture::new(topo).draw()
}

/// What one node's box shows, and where.
struct NodeBox<'a> {
    node: &'a Node,
    x: f64,
    y: f64,
    h: f64,
    /// Lines of text below the title and the CPU squares.
    lines: Vec<Line>,
    chips: Vec<u32>,
    chip_rows: usize,
}

impl NodeBox<'_> {
    fn center(&self) -> f64 {
        self.x + BOX_W / 2.0
    }

    /// Height of the content below the title.
    fn content_h(&self) -> f64 {
        self.chip_rows as f64 * (CHIP_H + 4.0) + self.lines.len() as f64 * LINE
    }
}

struct Line {
    text: String,
    class: &'static str,
}

/// The layout: nodes with CPUs in the top row, memory-only nodes in a
/// second row under their initiators, devices of unknown node last.
struct Picture<'a> {
    topo: &'a Topology,
    top: Vec<NodeBox<'a>>,
    bottom: Vec<NodeBox<'a>>,
    /// For each bottom box, the top boxes of its local initiators.
    links: Vec<Vec<usize>>,
    /// Pairs of top boxes joined by a distance arc.
    arcs: Vec<(usize, usize)>,
    unknown: Vec<Line>,
    unknown_at: (f64, f64, f64),
    width: f64,
    matrix_y: f64,
    svg: String,
}

impl<'a> Picture<'a> {
    fn new(topo: &'a Topology) -> Picture<'a> {
        let mut boxes: Vec<NodeBox<'a>> = topo
            .nodes()
            .iter()
            .map(|node| node_box(topo, node))
            .collect();
        let any_cpus = boxes.iter().any(|b| b.node.has_cpus());
        let bottom: Vec<NodeBox<'a>> = if any_cpus {
            let (top, bottom) = boxes.into_iter().partition(|b| b.node.has_cpus());
            boxes = top;
            bottom
        } else {
            Vec::new()
        };
        let mut top = boxes;

        let arcs = arc_pairs(topo, &top);
        let arcs_h = arcs
            .iter()
            .map(|&(i, j)| 30.0 + arc_height(j - i))
            .fold(0.0, f64::max);
        let top_y = HEADER_H + arcs_h;
        let top_h = row_height(&top);
        for (i, b) in top.iter_mut().enumerate() {
            b.x = MARGIN + i as f64 * (BOX_W + GAP);
            b.y = top_y;
            b.h = top_h;
        }
        let mut right = top.last().map_or(MARGIN - GAP, |b| b.x + BOX_W);

        let mut unknown = Vec::new();
        device_lines(&mut unknown, topo, &devices_off_nodes(topo));
        let mut unknown_at = (0.0, top_y, 0.0);
        if !unknown.is_empty() {
            unknown_at = (right + GAP, top_y, 54.0 + unknown.len() as f64 * LINE);
            right += GAP + BOX_W;
        }

        let (bottom, links) = place_bottom_row(&top, bottom, top_y + top_h + 60.0);
        right = bottom.iter().map(|b| b.x + BOX_W).fold(right, f64::max);
        let rows_end = bottom
            .first()
            .map_or(top_y + top_h.max(unknown_at.2), |b| b.y + b.h);

        let matrix_w = topo
            .distances()
            .map_or(0.0, |d| MARGIN + 50.0 + d.ids().len() as f64 * 36.0);
        // Rough text widths: ~0.6 em per character.
        let title_w = MARGIN + 11.0 * (15 + describe_source(topo).chars().count()) as f64;
        let width = right.max(matrix_w).max(title_w).max(560.0) + MARGIN;
        Picture {
            topo,
            top,
            bottom,
            links,
            arcs,
            unknown,
            unknown_at,
            width,
            matrix_y: rows_end + 20.0,
            svg: String::new(),
        }
    }

    fn draw(mut self) -> String {
        let height = self.matrix_y + self.matrix_height() + 50.0;
        let _ = writeln!(
            self.svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{height:.0}" viewBox="0 0 {w:.0} {height:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">"#,
            w = self.width
        );
        self.svg.push_str(STYLE);
        self.svg
            .push_str("<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n");
        self.header();
        self.distance_arcs();
        self.initiator_links();
        for i in 0..self.top.len() {
            let svg = draw_box(&self.top[i], self.topo.cache_domains());
            self.svg.push_str(&svg);
        }
        for i in 0..self.bottom.len() {
            let svg = draw_box(&self.bottom[i], self.topo.cache_domains());
            self.svg.push_str(&svg);
        }
        self.unknown_box();
        self.matrix(self.matrix_y);
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

    /// Arcs above the top row joining nodes, labelled with their distance.
    fn distance_arcs(&mut self) {
        let topo = self.topo;
        let ids: Vec<_> = self.top.iter().map(|b| b.node.id()).collect();
        let remote: Vec<u32> = self
            .arcs
            .iter()
            .map(|&(i, j)| topo.distance(ids[i], ids[j]))
            .collect();
        let all_remote: Vec<u32> = (0..ids.len())
            .flat_map(|i| (0..ids.len()).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| topo.distance(ids[i], ids[j]))
            .chain(remote)
            .collect();
        let lo = all_remote.iter().copied().min().unwrap_or(0);
        let hi = all_remote.iter().copied().max().unwrap_or(0);
        let mut labels = String::new();
        for &(i, j) in &self.arcs {
            let base = self.top[i].y;
            let (x1, x2) = (self.top[i].center(), self.top[j].center());
            let there = topo.distance(ids[i], ids[j]);
            let back = topo.distance(ids[j], ids[i]);
            let h = arc_height(j - i);
            let color = distance_color(there.max(back), lo, hi);
            let _ = writeln!(
                self.svg,
                r#"<path class="arc" d="M {x1:.1} {base:.1} C {x1:.1} {c:.1}, {x2:.1} {c:.1}, {x2:.1} {base:.1}" stroke="{color}"/>"#,
                c = base - h * 4.0 / 3.0,
            );
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
        self.svg.push_str(&labels);
    }

    /// Dashed lines from memory-only nodes up to their initiators.
    fn initiator_links(&mut self) {
        for (b, tops) in self.bottom.iter().zip(&self.links) {
            for &t in tops {
                let top = &self.top[t];
                let _ = writeln!(
                    self.svg,
                    r#"<path class="init" d="M {:.1} {:.1} L {:.1} {:.1}"/>"#,
                    b.center(),
                    b.y,
                    top.center(),
                    top.y + top.h
                );
            }
        }
    }

    fn unknown_box(&mut self) {
        if self.unknown.is_empty() {
            return;
        }
        let (x, y, h) = self.unknown_at;
        let _ = writeln!(
            self.svg,
            r#"<rect class="unknown" x="{x:.1}" y="{y:.1}" width="{BOX_W}" height="{h:.1}" rx="8"/>"#
        );
        text(
            &mut self.svg,
            x + 12.0,
            y + 22.0,
            "ntitle",
            "devices on no node above",
        );
        let mut cy = y + 44.0;
        for line in &self.unknown {
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
        let mut parts = Vec::new();
        if !self.arcs.is_empty() {
            let mut arcs = String::from("arcs: SLIT distance between nodes (10 = local)");
            if self.top.len() > MAX_FULL_MESH {
                arcs.push_str(", nearest nodes only");
            }
            parts.push(arcs);
        } else if self.top.len() > 1 {
            parts.push("every node is equally far from the others (see the matrix)".to_owned());
        }
        if !self.bottom.is_empty() {
            parts.push(
                "dashed box: memory-only node, dashed lines to its local initiators".to_owned(),
            );
        }
        if !self.topo.cache_domains().is_empty() {
            parts.push("CPU tint: shared last-level cache".to_owned());
        }
        let legend = parts.join(" · ");
        text(&mut self.svg, MARGIN, y, "legend", &legend);
    }
}

/// The box of `node`, not yet placed.
fn node_box<'a>(topo: &Topology, node: &'a Node) -> NodeBox<'a> {
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
fn row_height(boxes: &[NodeBox]) -> f64 {
    44.0 + boxes.iter().map(NodeBox::content_h).fold(0.0, f64::max) + 10.0
}

/// Which top-row nodes get a distance arc: every pair among up to
/// [`MAX_FULL_MESH`] nodes; beyond that, each node's nearest nodes, and
/// none when every node is equally far from every other.
fn arc_pairs(topo: &Topology, top: &[NodeBox]) -> Vec<(usize, usize)> {
    let n = top.len();
    let ids: Vec<_> = top.iter().map(|b| b.node.id()).collect();
    let nearest = |i: usize, j: usize| {
        let others: Vec<u32> = (0..n)
            .filter(|&k| k != i)
            .map(|k| topo.distance(ids[i], ids[k]))
            .collect();
        let Some(&min) = others.iter().min() else {
            return false;
        };
        let ties = others.iter().filter(|&&d| d == min).count();
        ties < others.len() && topo.distance(ids[i], ids[j]) == min
    };
    let mut pairs = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            if n <= MAX_FULL_MESH || nearest(i, j) || nearest(j, i) {
                pairs.push((i, j));
            }
        }
    }
    pairs
}

/// Places memory-only nodes in a row at `y`, each under the top-row nodes
/// it is local to, without overlaps. Returns the placed boxes and, for
/// each, the top boxes to link it to.
fn place_bottom_row<'a>(
    top: &[NodeBox<'a>],
    bottom: Vec<NodeBox<'a>>,
    y: f64,
) -> (Vec<NodeBox<'a>>, Vec<Vec<usize>>) {
    let h = row_height(&bottom);
    let mut placed: Vec<(Option<f64>, Vec<usize>, NodeBox<'a>)> = bottom
        .into_iter()
        .map(|b| {
            let initiators = b.node.local_initiators();
            let mut near: Vec<usize> = (0..top.len())
                .filter(|&t| initiators.contains_node(top[t].node.id()))
                .collect();
            if near.is_empty() {
                near = (0..top.len())
                    .filter(|&t| top[t].node.cpus().intersects(b.node.local_cpus()))
                    .collect();
            }
            let anchor = (!near.is_empty())
                .then(|| near.iter().map(|&t| top[t].center()).sum::<f64>() / near.len() as f64);
            (anchor, near, b)
        })
        .collect();
    placed.sort_by(|a, b| {
        let key = |p: &(Option<f64>, Vec<usize>, NodeBox)| (p.0.unwrap_or(f64::MAX), p.2.node.id());
        let (ka, kb) = (key(a), key(b));
        ka.0.total_cmp(&kb.0).then(ka.1.cmp(&kb.1))
    });
    let mut next = MARGIN;
    let mut boxes = Vec::with_capacity(placed.len());
    let mut links = Vec::with_capacity(placed.len());
    for (anchor, near, mut b) in placed {
        b.x = anchor.map_or(next, |a| (a - BOX_W / 2.0).max(next));
        b.y = y;
        b.h = h;
        next = b.x + BOX_W + 20.0;
        boxes.push(b);
        links.push(near);
    }
    (boxes, links)
}

/// One node's box: frame, title, CPU squares and text lines.
fn draw_box(b: &NodeBox, domains: &[CpuSet]) -> String {
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
fn device_lines(lines: &mut Vec<Line>, topo: &Topology, devices: &[&Device]) {
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
