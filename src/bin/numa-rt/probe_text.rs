//! `numa-rt probe`: the readable report.

use std::fmt::Write as _;

use numa_rt::topology::probe::LatencyMatrix;
use numa_rt::topology::CpuSet;

use crate::probe::{confidence_meaning, Report, MEMORY_NOTE};

/// Above this many CPUs the matrix is too wide for a terminal.
const MAX_TEXT_COLUMNS: usize = 48;

/// The report as text.
pub fn render(report: &Report<'_>) -> String {
    let probe = report.probe;
    let m = &probe.measurement;
    let c = report.config;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Core-to-core latency, one-way ns: median of {} samples of {} round trips per pair{}",
        c.samples,
        c.rounds,
        if report.quick { " (--quick)" } else { "" }
    );
    let online = m.matrix.cpus().len();
    let _ = writeln!(
        out,
        "Probed CPUs {} ({} of {online} online), {} pairs measured in {:.2} s",
        list_or_none(&m.probed),
        m.probed.len(),
        m.matrix.pairs().count(),
        m.elapsed.as_secs_f64()
    );
    if !m.not_allowed.is_empty() {
        let _ = writeln!(
            out,
            "Not allowed to this process (null): CPUs {}",
            m.not_allowed
        );
    }
    if m.sampled {
        let _ = writeln!(
            out,
            "Sampled: too many CPUs for every pair; the others join the domain of a probed \
             CPU sharing their cache"
        );
    }
    if m.timed_out > 0 {
        let _ = writeln!(
            out,
            "{} pairs ran out of time and are unmeasured (a busy machine?)",
            m.timed_out
        );
    }
    out.push('\n');
    matrix(&mut out, &m.matrix, &m.probed);
    out.push('\n');

    let cl = &probe.clustering;
    if probe.domains.is_empty() {
        out.push_str("Latency domains: none (no pair could be measured)\n");
    } else if probe.domains.len() == 1 && cl.confidence.is_none() {
        let _ = writeln!(
            out,
            "Latency domains: 1 (CPUs {}). Only one domain: too few CPUs measured to show a \
             split.",
            probe.domains[0]
        );
    } else if probe.domains.len() == 1 {
        let _ = writeln!(
            out,
            "Latency domains: 1 (CPUs {}). Only one domain: no group of CPUs is clearly \
             closer to each other than to the rest; no hidden NUMA found.",
            probe.domains[0]
        );
    } else {
        let _ = writeln!(out, "Latency domains: {}", probe.domains.len());
        for (i, d) in probe.domains.iter().enumerate() {
            let _ = writeln!(out, "  domain {i}: CPUs {d}");
        }
    }
    match cl.confidence {
        Some(v) => {
            let _ = writeln!(
                out,
                "Confidence: {v:.3} ({})",
                confidence_meaning(cl.is_split())
            );
        }
        None => out.push_str(
            "Confidence: n/a (fewer than three CPUs measured: one pair cannot show a split)\n",
        ),
    }
    if let Some(level) = cl.levels.first() {
        let _ = writeln!(
            out,
            "Separation: {:.2}x (inside domains {:.1} ns, across {:.1} ns)",
            level.separation, level.inside_ns, level.across_ns
        );
    }
    for level in cl.levels.iter().skip(1) {
        let sets: Vec<String> = level.domains.iter().map(|d| d.to_string()).collect();
        let _ = writeln!(
            out,
            "Coarser level: {} domains [{}], confidence {:.3}",
            level.domains.len(),
            sets.join("] ["),
            level.confidence
        );
    }
    out.push_str("\nCompared with the kernel's view:\n");
    for sentence in probe.comparison.sentences() {
        let _ = writeln!(out, "  - {sentence}");
    }
    if probe
        .comparison
        .domains_per_node
        .iter()
        .any(|&(_, k)| k > 1)
    {
        out.push_str(
            "\nTo run one worker pool per latency domain: NUMA_RT_POOLS=probe (or \
             Builder::pools(Pools::Probed), which probes when the runtime is built), or \
             Builder::pools(Pools::Domains(..)) with the domains above.\n",
        );
    }
    let _ = writeln!(out, "\nNote: {MEMORY_NOTE}.");
    out
}

fn list_or_none(set: &CpuSet) -> String {
    if set.is_empty() {
        "none".to_string()
    } else {
        set.to_string()
    }
}

/// The matrix over the probed CPUs (rows of unprobed CPUs are all null).
fn matrix(out: &mut String, matrix: &LatencyMatrix, probed: &CpuSet) {
    let idx: Vec<usize> = (0..matrix.len())
        .filter(|&i| probed.contains(matrix.cpus()[i]))
        .collect();
    if idx.len() < 2 {
        out.push_str("(fewer than two CPUs probed: no pair to measure)\n");
        return;
    }
    if idx.len() > MAX_TEXT_COLUMNS {
        let _ = writeln!(
            out,
            "({} probed CPUs: the matrix is too wide for text; use --json or --svg)",
            idx.len()
        );
        return;
    }
    let _ = write!(out, "{:>6}", "");
    for &j in &idx {
        let _ = write!(out, "{:>6}", format!("cpu{}", matrix.cpus()[j]));
    }
    out.push('\n');
    for &i in &idx {
        let _ = write!(out, "{:>6}", format!("cpu{}", matrix.cpus()[i]));
        for &j in &idx {
            match matrix.get(i, j) {
                Some(v) => {
                    let _ = write!(out, "{v:>6.0}");
                }
                None => {
                    let _ = write!(out, "{:>6}", "-");
                }
            }
        }
        out.push('\n');
    }
}
