//! `numa-rt probe --svg FILE`: the latency matrix as a heat map.
//!
//! Rows and columns are the probed CPUs ordered domain by domain, so each
//! latency domain is a block on the diagonal, outlined. Cells go from white
//! (fastest pair) to deep orange (slowest), grey where not measured; the
//! colours and text classes are those of `numa-rt topo --svg`.

use std::fmt::Write as _;

use crate::probe::{Report, MEMORY_NOTE};
use crate::topo_svg::style::{escape, heat, text, STYLE};

const MARGIN: f64 = 30.0;
/// Height of the title, before the summary lines.
const TITLE_H: f64 = 52.0;
/// Height of one line of small text.
const LINE: f64 = 17.0;
/// Rough width of a character of small text (~0.6 em at 11-12 px).
const CHAR_W: f64 = 7.0;
/// Room for the row and column labels.
const LABEL: f64 = 44.0;
/// Largest side of the whole grid.
const GRID_MAX: f64 = 720.0;
const UNMEASURED: &str = "#e9ecef";
const OUTLINE: &str = "#1864ab";

/// The heat map as SVG text.
pub fn render(report: &Report<'_>) -> String {
    let probe = report.probe;
    let m = &probe.measurement.matrix;
    // Domain by domain, then probed CPUs in no domain.
    let mut order: Vec<u32> = probe.domains.iter().flat_map(|d| d.iter()).collect();
    for cpu in &probe.measurement.probed {
        if !order.contains(&cpu) {
            order.push(cpu);
        }
    }
    order.retain(|&c| m.index_of(c).is_some());
    let idx: Vec<usize> = order.iter().filter_map(|&c| m.index_of(c)).collect();
    let n = idx.len();
    let cell = if n == 0 {
        36.0
    } else {
        (GRID_MAX / n as f64).clamp(4.0, 36.0)
    };
    let grid = cell * n as f64;

    let summary = match (probe.domains.len(), probe.clustering.confidence) {
        (0, _) => "no pair measured".to_string(),
        (1, Some(c)) => format!("one latency domain, uniformity {c:.2}"),
        (1, None) => "one latency domain (too few CPUs to split)".to_string(),
        (k, c) => format!(
            "{k} latency domains, confidence {}",
            c.map_or("n/a".to_string(), |c| format!("{c:.3}"))
        ),
    };
    let mut header = vec![summary];
    header.extend(probe.comparison.sentences());
    let (note_a, note_b) = MEMORY_NOTE.split_once(": ").unwrap_or((MEMORY_NOTE, ""));
    let footer = [
        format!("Note: {note_a}:"),
        format!("{note_b}."),
        "grey: not measured; blue outline: a latency domain".to_string(),
    ];
    let longest = header
        .iter()
        .chain(&footer)
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    let header_h = TITLE_H + LINE * header.len() as f64 + 10.0;
    let width = (MARGIN * 2.0 + LABEL + grid)
        .max(MARGIN * 2.0 + CHAR_W * longest as f64)
        .max(620.0);
    let legend_y = header_h + LABEL + grid + 30.0;
    let height = legend_y + 30.0 + LINE * footer.len() as f64;
    let (lo, hi) = m.range().unwrap_or((0.0, 0.0));
    let (lo_ns, hi_ns) = (lo.round() as u32, hi.round() as u32);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="DejaVu Sans, Arial, sans-serif">"#
    );
    svg.push_str(STYLE);
    let _ = writeln!(
        svg,
        r##"<rect x="0" y="0" width="{width:.0}" height="{height:.0}" fill="#ffffff"/>"##
    );
    text(
        &mut svg,
        MARGIN,
        32.0,
        "title",
        "numa-rt probe: core-to-core latency (one-way ns)",
    );
    for (k, line) in header.iter().enumerate() {
        text(&mut svg, MARGIN, TITLE_H + LINE * k as f64, "sub", line);
    }

    let x0 = MARGIN + LABEL;
    let y0 = header_h + LABEL;
    let label_every = (10.0 / cell).ceil().max(1.0) as usize;
    for (k, &cpu) in order.iter().enumerate() {
        if k % label_every != 0 {
            continue;
        }
        let c = x0 + (k as f64 + 0.5) * cell;
        text(&mut svg, c - 6.0, y0 - 6.0, "cpun", &cpu.to_string());
        text(
            &mut svg,
            MARGIN,
            y0 + (k as f64 + 0.5) * cell + 3.5,
            "cpun",
            &cpu.to_string(),
        );
    }
    for (r, &i) in idx.iter().enumerate() {
        for (c, &j) in idx.iter().enumerate() {
            let (x, y) = (x0 + c as f64 * cell, y0 + r as f64 * cell);
            let value = m.get(i, j);
            let fill = value.map_or(UNMEASURED.to_string(), |v| {
                heat(v.round() as u32, lo_ns, hi_ns)
            });
            let tip = match value {
                Some(v) => format!("CPU {} - CPU {}: {v:.1} ns", m.cpus()[i], m.cpus()[j]),
                None => format!("CPU {} - CPU {}: not measured", m.cpus()[i], m.cpus()[j]),
            };
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{cell:.1}" height="{cell:.1}" fill="{fill}" stroke="{}" stroke-width="0.5"><title>{}</title></rect>"#,
                if cell >= 8.0 { "#ffffff" } else { "none" },
                escape(&tip)
            );
            if let (Some(v), true) = (value, cell >= 28.0) {
                text(
                    &mut svg,
                    x + 3.0,
                    y + cell / 2.0 + 4.0,
                    "mv",
                    &format!("{v:.0}"),
                );
            }
        }
    }
    // Domain blocks on the diagonal.
    let mut at = 0usize;
    for d in &probe.domains {
        let size = d.iter().filter(|c| order.contains(c)).count();
        if size == 0 {
            continue;
        }
        let (x, side) = (x0 + at as f64 * cell, size as f64 * cell);
        let y = y0 + at as f64 * cell;
        let _ = writeln!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{side:.1}" height="{side:.1}" fill="none" stroke="{OUTLINE}" stroke-width="2"/>"#
        );
        at += size;
    }

    // Legend: the colour scale and the note on memory.
    let steps = 8;
    for s in 0..=steps {
        let v = lo_ns + (hi_ns.saturating_sub(lo_ns)) * s / steps;
        let x = MARGIN + s as f64 * 24.0;
        let _ = writeln!(
            svg,
            r##"<rect x="{x:.1}" y="{legend_y:.1}" width="24" height="12" fill="{}" stroke="#adb5bd" stroke-width="0.5"/>"##,
            heat(v, lo_ns, hi_ns)
        );
    }
    let scale_end = MARGIN + (steps + 1) as f64 * 24.0 + 8.0;
    text(
        &mut svg,
        scale_end,
        legend_y + 10.0,
        "legend",
        &format!("{lo_ns} ns .. {hi_ns} ns"),
    );
    for (k, line) in footer.iter().enumerate() {
        text(
            &mut svg,
            MARGIN,
            legend_y + 34.0 + LINE * k as f64,
            "legend",
            line,
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::tests::{hidden_two_socket, report};

    #[test]
    fn heat_map_outlines_each_domain() {
        let probe = hidden_two_socket();
        let svg = render(&report(&probe));
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches(&format!("stroke=\"{OUTLINE}\"")).count(), 2);
        // 7 probed CPUs: 49 cells, 7 of them (the diagonal) unmeasured.
        assert_eq!(svg.matches("<title>").count(), 49);
        assert_eq!(svg.matches(&format!("fill=\"{UNMEASURED}\"")).count(), 7);
        assert!(svg.contains("2 latency domains inside node 0"));
    }
}
