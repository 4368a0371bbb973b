//! `numa-rt topo --svg FILE`: the topology as a picture.
//!
//! Nodes with CPUs stand in a row, each a box with its CPUs (small squares,
//! tinted by cache domain), memory, HMAT figures and devices. Arcs above
//! the row join nodes and carry their SLIT distance (greener is nearer).
//! Memory-only nodes (dashed boxes) sit in a second row under their local
//! initiators, joined to them by dashed lines. Devices on no known node get
//! a box of their own. A distance matrix and a legend close the picture.

mod boxes;
mod layout;
pub(crate) mod style;

use std::fmt::Write as _;

use numa_rt::topology::{Node, Topology};

use crate::topo::{describe_source, devices_off_nodes, human_bytes};
use boxes::{device_lines, draw_box, node_box, row_height, Line, NodeBox};
use layout::{arc_height, arc_pairs, place_bottom_row};
use style::{distance_color, escape, heat, text, STYLE};

const MARGIN: f64 = 30.0;
/// Height of the title and summary lines.
const HEADER_H: f64 = 80.0;
const BOX_W: f64 = 240.0;
const GAP: f64 = 50.0;
/// Height of one line of text in a box.
const LINE: f64 = 15.0;
/// Above this many CPU nodes, only arcs to each node's nearest nodes are drawn.
const MAX_FULL_MESH: usize = 4;

/// The picture as SVG text.
pub fn render(topo: &Topology) -> String {
    Picture::new(topo).draw()
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
}
