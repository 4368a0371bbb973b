//! Grows a `NodeVec<u8>` to SIZE by doubling, writing every byte, frees it,
//! then does the same with a plain `Vec<u8>` under `NumaAlloc` as the
//! global allocator, and prints the process's peak RSS divided by SIZE.
//!
//! Large blocks grow with `mremap`, so the peak stays near SIZE instead of
//! the 1.5x-3x that copying growth costs.
//!
//! ```text
//! cargo run --release --example grow -- 4G
//! /usr/bin/time -f %M target/release/examples/grow 4G   # peak RSS in KiB
//! ```

use numa_rt::alloc::{current_node, NodeVec, NumaAlloc};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: NumaAlloc = NumaAlloc;

/// Parses `4G`, `512M`, `64K` or a plain byte count.
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("bad size {text:?}: expected e.g. 4G, 512M, 64K or bytes"))?;
    let shift = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        other => return Err(format!("bad size unit {other:?} in {text:?}")),
    };
    n.checked_mul(1 << shift)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("size {text:?} is zero or too large"))
}

/// Peak resident set size of this process (VmHWM), in bytes.
fn peak_rss() -> Result<usize, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| "no VmHWM line in /proc/self/status".to_string())
}

fn run() -> Result<(), String> {
    let arg = std::env::args()
        .nth(1)
        .ok_or("usage: grow SIZE   (for example: grow 4G)")?;
    let size = parse_size(&arg)?;
    let node = current_node();

    let mut v: NodeVec<u8> = NodeVec::new_on(node).map_err(|e| e.to_string())?;
    let mut len = 4096.min(size);
    while v.len() < size {
        v.try_reserve(len - v.len()).map_err(|e| e.to_string())?;
        v.resize(len, (len >> 12) as u8);
        len = (len * 2).min(size);
    }
    let check = v[size - 1];
    drop(v);

    let mut w: Vec<u8> = Vec::new();
    let mut len = 4096.min(size);
    while w.len() < size {
        w.try_reserve_exact(len - w.len())
            .map_err(|e| format!("Vec growth to {len} bytes failed: {e}"))?;
        w.resize(len, (len >> 12) as u8);
        len = (len * 2).min(size);
    }
    let check = check ^ w[size - 1];
    drop(w);

    let peak = peak_rss()?;
    println!(
        "grow: size={size} node={node} peak_rss={peak} peak_rss/size={:.3} (check {check})",
        peak as f64 / size as f64
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grow: {e}");
            ExitCode::FAILURE
        }
    }
}
