//! Kernel placement primitives the runtime's checks rely on: the node a CPU
//! reports, and pages bound to a node landing there.

use crate::expect::Machine;
use crate::report::Outcome;
use crate::sys;

/// Pinned to each CPU in turn, `getcpu` reports that CPU and its node.
pub fn getcpu_nodes(m: &Machine) -> Outcome {
    let mut seen = Vec::new();
    let mut problems = Vec::new();
    for node in &m.nodes {
        for &cpu in &node.cpus {
            if let Err(e) = sys::pin_to_cpu(cpu as usize) {
                problems.push(format!("pin to CPU {cpu}: {e}"));
                continue;
            }
            match sys::getcpu() {
                Ok((c, n)) if c == cpu && n == node.id => seen.push(format!("{c}->{n}")),
                Ok((c, n)) => problems.push(format!(
                    "pinned to CPU {cpu} (node {}), getcpu says CPU {c} node {n}",
                    node.id
                )),
                Err(e) => problems.push(format!("getcpu on CPU {cpu}: {e}")),
            }
        }
    }
    if problems.is_empty() {
        Outcome::Pass(format!("cpu->node {}", seen.join(" ")))
    } else {
        Outcome::Fail(problems.join("; "))
    }
}

/// Pages touched after `mbind(MPOL_BIND, {k})` are on node k, for every
/// node with memory (CPU-less ones too), as `move_pages` reports.
pub fn mbind_places_pages(m: &Machine) -> Outcome {
    const PAGES: usize = 8;
    let mut problems = Vec::new();
    for node in &m.nodes {
        if let Err(e) = place_on(node.id, PAGES) {
            problems.push(format!("node {}: {e}", node.id));
        }
    }
    if problems.is_empty() {
        Outcome::Pass(format!(
            "{PAGES} pages bound to each of {} nodes landed there",
            m.nodes.len()
        ))
    } else {
        Outcome::Fail(problems.join("; "))
    }
}

fn place_on(node: u32, pages: usize) -> Result<(), String> {
    let map = sys::Mapping::anonymous(pages).map_err(|e| format!("mmap: {e}"))?;
    map.bind_to_node(node).map_err(|e| format!("mbind: {e}"))?;
    // Before the first touch there is no page to place: the kernel says
    // -EFAULT (not -ENOENT) for each.
    let before = map.page_nodes().map_err(|e| format!("move_pages: {e}"))?;
    if let Some(s) = before.iter().find(|&&s| s >= 0) {
        return Err(format!("an untouched page is already on node {s}"));
    }
    map.touch();
    let after = map.page_nodes().map_err(|e| format!("move_pages: {e}"))?;
    let wrong: Vec<_> = after.iter().filter(|&&s| s != node as i32).collect();
    if !wrong.is_empty() {
        return Err(format!("pages on {after:?}, want all on {node}"));
    }
    Ok(())
}
