//! The look: CSS classes, colour scales and escaped text elements.

use std::fmt::Write as _;

pub(crate) const STYLE: &str = r##"<style>
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

/// Green for the nearest remote distance, red for the farthest.
pub(crate) fn distance_color(d: u32, lo: u32, hi: u32) -> String {
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
pub(crate) fn heat(v: u32, lo: u32, hi: u32) -> String {
    let t = if hi > lo {
        f64::from(v.saturating_sub(lo)) / f64::from(hi - lo)
    } else {
        0.0
    };
    let g = 249.0 - 120.0 * t;
    let b = 240.0 - 170.0 * t;
    format!("#ff{:02x}{:02x}", g as u8, b as u8)
}

pub(crate) fn text(svg: &mut String, x: f64, y: f64, class: &str, content: &str) {
    let _ = writeln!(
        svg,
        r#"<text class="{class}" x="{x:.1}" y="{y:.1}" xml:space="preserve">{}</text>"#,
        escape(content)
    );
}

/// Escapes text for use in SVG content and attribute values.
pub(crate) fn escape(s: &str) -> String {
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

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b & \"c\"\n"), "a&lt;b &amp; &quot;c&quot;");
    }
}
