//! The allocator on a real multi-node kernel: memory it places on a node is
//! on that node, as `move_pages` reports.

use std::alloc::{GlobalAlloc, Layout};

use numa_rt::alloc::{
    set_placement_hook, MemoryKind, NodeBox, NodeHeap, NodeVec, NumaAlloc, PlacementHook,
};
use numa_rt::locality::Strict;
use numa_rt::runtime::Builder;
use numa_rt::NodeId;

use crate::expect::Machine;
use crate::report::Outcome;
use crate::sys;

/// Bytes in the large `NodeVec` (a mapping of its own, grown by `mremap`).
const LARGE: usize = 4 << 20;

/// `NodeBox`, `NodeVec` (small, and large enough for its own mapping) and
/// `NodeHeap` blocks placed on each node, CPU-less ones included, are on
/// that node; so are `MemoryKind::Local` and `NumaAlloc` memory taken from
/// a thread on each CPU node.
pub fn node_memory_lands(m: &Machine) -> Outcome {
    let mut problems = Vec::new();
    let mut checked = 0;
    for node in &m.nodes {
        let id = NodeId::new(node.id);
        for bytes in [256, LARGE] {
            checked += 1;
            if let Err(e) = node_heap_block(id, bytes) {
                problems.push(e);
            }
        }
        match NodeBox::new_on(id, [7u8; 512]) {
            Ok(b) => {
                checked += 1;
                problems.extend(on_node("NodeBox", b.as_ptr(), 1, node.id));
            }
            Err(e) => problems.push(format!("NodeBox on node {}: {e}", node.id)),
        }
        for (what, bytes) in [("small NodeVec", 4096), ("large NodeVec", LARGE)] {
            match NodeVec::<u8>::with_capacity_on(id, bytes) {
                Ok(mut v) => {
                    v.resize(bytes, 1);
                    checked += 1;
                    problems.extend(on_node(what, v.as_ptr(), bytes, node.id));
                }
                Err(e) => problems.push(format!("{what} on node {}: {e}", node.id)),
            }
        }
    }
    for node in m.nodes.iter().filter(|n| !n.cpus.is_empty()) {
        let cpu = node.cpus[0];
        let home = node.id;
        let result = std::thread::spawn(move || {
            sys::pin_to_cpu(cpu as usize).map_err(|e| format!("pin to CPU {cpu}: {e}"))?;
            let b = NodeBox::new_kind(MemoryKind::Local, [3u8; 512])
                .map_err(|e| format!("Local NodeBox: {e}"))?;
            if b.node() != NodeId::new(home) {
                return Err(format!(
                    "Local NodeBox from CPU {cpu} says node {:?}, want {home}",
                    b.node()
                ));
            }
            let mut found: Vec<String> = on_node("Local NodeBox", b.as_ptr(), 1, home)
                .into_iter()
                .collect();
            for bytes in [256, LARGE] {
                found.extend(global_block(bytes, home).err());
            }
            Ok::<_, String>(found)
        })
        .join();
        checked += 3;
        match result {
            Ok(Ok(found)) => problems.extend(found),
            Ok(Err(e)) => problems.push(e),
            Err(_) => problems.push(format!("the thread on CPU {cpu} panicked")),
        }
    }
    if problems.is_empty() {
        Outcome::Pass(format!(
            "{checked} placements on {} nodes, every page where asked",
            m.nodes.len()
        ))
    } else {
        Outcome::Fail(problems.join("; "))
    }
}

/// A `bytes`-sized block from `node`'s `NodeHeap`, written and checked.
fn node_heap_block(node: NodeId, bytes: usize) -> Result<(), String> {
    let what = format!("NodeHeap block of {bytes} B");
    let layout = Layout::from_size_align(bytes, 64).map_err(|e| format!("{what}: {e}"))?;
    let heap = NodeHeap::new(node).map_err(|e| format!("{what} on node {node:?}: {e}"))?;
    let block = heap
        .allocate_on(layout, false)
        .map_err(|e| format!("{what} on node {node:?}: {e}"))?;
    // SAFETY: the block is `bytes` long and ours until freed below.
    unsafe { std::ptr::write_bytes(block.as_ptr(), 9, bytes) };
    let problem = on_node(&what, block.as_ptr(), bytes, node.index());
    // SAFETY: allocated above with `layout` by this heap, no longer used.
    unsafe { heap.deallocate_on(block, layout) };
    problem.map_or(Ok(()), Err)
}

/// A `bytes`-sized block from `NumaAlloc` on the calling thread, which
/// runs on `node`, written and checked.
fn global_block(bytes: usize, node: u32) -> Result<(), String> {
    let what = format!("NumaAlloc block of {bytes} B");
    let layout = Layout::from_size_align(bytes, 8).map_err(|e| format!("{what}: {e}"))?;
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { NumaAlloc.alloc(layout) };
    if ptr.is_null() {
        return Err(format!("{what} on node {node}: null"));
    }
    // SAFETY: the block is `bytes` long and ours until freed below.
    unsafe { std::ptr::write_bytes(ptr, 4, bytes) };
    let problem = on_node(&what, ptr, bytes, node);
    // SAFETY: allocated above by NumaAlloc with `layout`, no longer used.
    unsafe { NumaAlloc.dealloc(ptr, layout) };
    problem.map_or(Ok(()), Err)
}

/// A problem when any page of `[ptr, ptr + len)` is not on `node`.
fn on_node(what: &str, ptr: *const u8, len: usize, node: u32) -> Option<String> {
    let page = sys::page_size();
    let start = ptr as usize & !(page - 1);
    let end = ptr as usize + len.max(1);
    let mut wrong = Vec::new();
    for addr in (start..end).step_by(page) {
        match sys::node_of_address(addr as *const u8) {
            Ok(n) if n == node as i32 => {}
            Ok(n) => wrong.push(n),
            Err(e) => return Some(format!("{what} on node {node}: move_pages: {e}")),
        }
    }
    if wrong.is_empty() {
        None
    } else {
        Some(format!(
            "{what} for node {node}: {} of {} pages elsewhere ({:?})",
            wrong.len(),
            (end - start).div_ceil(page),
            &wrong[..wrong.len().min(4)]
        ))
    }
}

/// The nodes each kind may resolve to for memory used from CPU node
/// `initiator`, from the table. Latency and bandwidth pick the best target
/// the kernel reports for that initiator (its access classes), else the
/// node itself. The capacity tier is the memory-only node whose HMAT
/// initiator it is; an initiator with no tier of its own may get another
/// node's tier or its own memory (the allocator documents both readings).
fn allowed_kind_nodes(m: &Machine, kind: MemoryKind, initiator: u32) -> Vec<u32> {
    let local = m.hmat_local.iter().filter(|h| h.initiator == initiator);
    match kind {
        MemoryKind::Local => vec![initiator],
        MemoryKind::LowestLatency => vec![local
            .min_by_key(|h| (h.latency_ns, h.target != initiator))
            .map_or(initiator, |h| h.target)],
        MemoryKind::HighestBandwidth => vec![local
            .max_by_key(|h| (h.bandwidth_mbps, h.target == initiator))
            .map_or(initiator, |h| h.target)],
        MemoryKind::Capacity => {
            let tiers = m.nodes.iter().filter(|n| n.cpus.is_empty());
            match tiers.clone().find(|n| n.initiator == Some(initiator)) {
                Some(own) => vec![own.id],
                None => std::iter::once(initiator)
                    .chain(tiers.map(|n| n.id))
                    .collect(),
            }
        }
    }
}

/// Each `MemoryKind`, asked for from a task on each CPU node (inside a
/// runtime, which tells the allocator about the topology), lands on the
/// node the table implies.
pub fn memory_kinds_resolve(m: &Machine) -> Outcome {
    const KINDS: [MemoryKind; 4] = [
        MemoryKind::Local,
        MemoryKind::LowestLatency,
        MemoryKind::HighestBandwidth,
        MemoryKind::Capacity,
    ];
    let rt = match Builder::new_multi_thread().build() {
        Ok(rt) => rt,
        Err(e) => return Outcome::Fail(format!("cannot build the runtime: {e}")),
    };
    if !runtime_registered_a_hook() {
        return Outcome::Skip(
            "the runtime registers no PlacementHook yet, so every kind falls back to the \
             initiator node (allocator docs); this check runs once it does"
                .into(),
        );
    }
    let mut problems = Vec::new();
    let mut seen = 0;
    for node in m.nodes.iter().filter(|n| !n.cpus.is_empty()) {
        let home = NodeId::new(node.id);
        let placed = rt.block_on(async move {
            numa_rt::spawn_on(Strict(home), async {
                KINDS
                    .iter()
                    .map(|&kind| {
                        NodeBox::new_kind(kind, [5u8; 256])
                            .map(|b| {
                                let page = sys::node_of_address(b.as_ptr());
                                (kind, b.node(), page.ok())
                            })
                            .map_err(|e| format!("{kind:?}: {e}"))
                    })
                    .collect::<Vec<_>>()
            })
            .await
        });
        let placed = match placed {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("task on node {}: {e}", node.id));
                continue;
            }
        };
        for result in placed {
            match result {
                Err(e) => problems.push(format!("from node {}: {e}", node.id)),
                Ok((kind, said, page)) => {
                    let allowed = allowed_kind_nodes(m, kind, node.id);
                    let said = said.index();
                    seen += 1;
                    if !allowed.contains(&said) {
                        problems.push(format!(
                            "{kind:?} from node {} resolved to node {said}, want one of {allowed:?}",
                            node.id,
                        ));
                    } else if page != Some(said as i32) {
                        problems.push(format!(
                            "{kind:?} from node {} says node {said} but its page is on {page:?}",
                            node.id
                        ));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Outcome::Pass(format!(
            "{seen} kind x initiator placements where the table says"
        ))
    } else {
        Outcome::Fail(problems.join("; "))
    }
}

/// A hook that never resolves anything, used only to probe.
struct Probe;

impl PlacementHook for Probe {
    fn resolve(&self, _: MemoryKind, _: NodeId) -> Option<NodeId> {
        None
    }
}

/// Whether a placement hook is registered (the runtime registers one when
/// it knows the topology). Probing registers [`Probe`] when none was, which
/// resolves nothing, exactly as no hook: harmless in this one-check process.
fn runtime_registered_a_hook() -> bool {
    static PROBE: Probe = Probe;
    set_placement_hook(&PROBE).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::{HmatLocal, NodeSpec};

    fn node(id: u32, cpus: &[u32], initiator: Option<u32>) -> NodeSpec {
        NodeSpec {
            id,
            cpus: cpus.to_vec(),
            memory_bytes: 1 << 28,
            initiator,
        }
    }

    fn hmat(target: u32, initiator: u32, latency_ns: u64, bandwidth_mbps: u64) -> HmatLocal {
        HmatLocal {
            target,
            initiator,
            latency_ns,
            bandwidth_mbps,
        }
    }

    fn tiered() -> Machine {
        Machine {
            topology: "t".into(),
            nodes: vec![
                node(0, &[0, 1], None),
                node(1, &[2, 3], None),
                node(2, &[], Some(0)),
            ],
            distances: vec![],
            hmat_local: vec![
                hmat(0, 0, 80, 20000),
                hmat(1, 1, 80, 20000),
                hmat(2, 0, 320, 5000),
            ],
            memory_side_caches: vec![],
            devices: vec![],
            llc_groups: vec![],
            topo_json: serde_json::Value::Null,
        }
    }

    #[test]
    fn kinds_follow_the_table() {
        let m = tiered();
        assert_eq!(allowed_kind_nodes(&m, MemoryKind::Local, 1), [1]);
        assert_eq!(allowed_kind_nodes(&m, MemoryKind::LowestLatency, 0), [0]);
        assert_eq!(allowed_kind_nodes(&m, MemoryKind::HighestBandwidth, 0), [0]);
        assert_eq!(allowed_kind_nodes(&m, MemoryKind::Capacity, 0), [2]);
        // Node 2 is node 0's tier: node 1 may use it or its own memory.
        assert_eq!(allowed_kind_nodes(&m, MemoryKind::Capacity, 1), [1, 2]);
    }

    #[test]
    fn a_faster_far_tier_wins_its_kind() {
        let mut m = tiered();
        m.hmat_local[2] = hmat(2, 0, 60, 90000);
        assert_eq!(allowed_kind_nodes(&m, MemoryKind::LowestLatency, 0), [2]);
        assert_eq!(allowed_kind_nodes(&m, MemoryKind::HighestBandwidth, 0), [2]);
    }

    #[test]
    fn without_hmat_every_kind_is_local_but_capacity() {
        let mut m = tiered();
        m.hmat_local.clear();
        assert_eq!(allowed_kind_nodes(&m, MemoryKind::LowestLatency, 0), [0]);
        assert_eq!(allowed_kind_nodes(&m, MemoryKind::Capacity, 0), [2]);
    }
}
