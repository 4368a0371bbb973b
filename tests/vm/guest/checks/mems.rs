//! The affinity monitor on a real multi-node kernel: narrowing the
//! process's cgroup v1 `cpuset.mems` to one node is seen and counted, the
//! other nodes are refused for explicit placement and get that node as
//! their fallback, and widening brings them back. On three nodes or more,
//! taking one node away gives it the nearest other node (by SLIT) as its
//! fallback.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use numa_rt::alloc::{node_fallback, AllocError, NodeBox, NodeHeap};
use numa_rt::locality::Strict;
use numa_rt::runtime::Builder;
use numa_rt::{NodeId, Runtime};

use crate::expect::Machine;
use crate::report::Outcome;
use crate::sys;

/// Where the guest mounts the cgroup v1 cpuset hierarchy.
const MOUNT: &str = "/tmp/numa-rt-cpuset";

/// How long the monitor may take (it checks every 100 ms while a worker
/// runs; the rest is slack for TCG).
const BOUND: Duration = Duration::from_secs(5);

/// This process in a cpuset of its own; moved back to the root and the
/// cpuset removed when dropped.
struct OwnCpuset {
    dir: PathBuf,
}

impl OwnCpuset {
    fn create() -> io::Result<OwnCpuset> {
        let root = Path::new(MOUNT);
        if !root.join("cpuset.mems").exists() {
            fs::create_dir_all(root)?;
            let src = c"cpuset";
            let target = c"/tmp/numa-rt-cpuset";
            // SAFETY: all strings are NUL-terminated and live across the
            // call; `data` names the one controller to mount.
            let rc = unsafe {
                libc::mount(
                    src.as_ptr(),
                    target.as_ptr(),
                    c"cgroup".as_ptr(),
                    0,
                    src.as_ptr().cast(),
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let dir = root.join(format!("numa-rt-{}", std::process::id()));
        fs::create_dir(&dir)?;
        let own = OwnCpuset { dir };
        for file in ["cpuset.cpus", "cpuset.mems"] {
            fs::write(
                own.dir.join(file),
                fs::read_to_string(root.join(file))?.trim(),
            )?;
        }
        fs::write(own.dir.join("cgroup.procs"), std::process::id().to_string())?;
        Ok(own)
    }

    fn set_mems(&self, mems: &str) -> Result<(), String> {
        fs::write(self.dir.join("cpuset.mems"), mems)
            .map_err(|e| format!("cannot write cpuset.mems {mems:?}: {e}"))
    }
}

impl Drop for OwnCpuset {
    fn drop(&mut self) {
        let _ = fs::write(
            Path::new(MOUNT).join("cgroup.procs"),
            std::process::id().to_string(),
        );
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Waits, with tasks running on every node so the workers tick, until
/// `done` holds or [`BOUND`] passes.
fn within_bound(rt: &Runtime, nodes: &[NodeId], done: impl Fn() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < BOUND {
        if done() {
            return Some(start.elapsed());
        }
        rt.block_on(async {
            for &n in nodes {
                let _ = numa_rt::spawn_on(Strict(n), async {}).await;
            }
        });
        std::thread::sleep(Duration::from_millis(10));
    }
    done().then(|| start.elapsed())
}

/// `cpuset.mems` narrowed to the first node, then widened again.
pub fn mems_narrowed(m: &Machine) -> Outcome {
    let cpu_nodes: Vec<NodeId> = m
        .nodes
        .iter()
        .filter(|n| !n.cpus.is_empty())
        .map(|n| NodeId::new(n.id))
        .collect();
    let (first, second) = match cpu_nodes[..] {
        [a, b, ..] => (a, b),
        _ => return Outcome::Skip("needs two CPU nodes".into()),
    };
    match run(m, first, second, &cpu_nodes) {
        Ok(seen) => Outcome::Pass(seen),
        Err(e) => Outcome::Fail(e),
    }
}

/// The node with memory nearest to `node` in the table's SLIT (ties to
/// the lower id), `node` itself excluded.
fn nearest_other(m: &Machine, node: u32) -> Option<u32> {
    let i = m.nodes.iter().position(|n| n.id == node)?;
    m.nodes
        .iter()
        .enumerate()
        .filter(|&(j, n)| j != i && n.memory_bytes > 0)
        .min_by_key(|&(j, n)| (m.distances[i][j], n.id))
        .map(|(_, n)| n.id)
}

fn run(m: &Machine, first: NodeId, second: NodeId, nodes: &[NodeId]) -> Result<String, String> {
    let cpuset = OwnCpuset::create().map_err(|e| format!("cgroup v1 cpuset: {e}"))?;
    let all = fs::read_to_string(cpuset.dir.join("cpuset.mems"))
        .map_err(|e| format!("cpuset.mems: {e}"))?;
    let rt = Builder::new_multi_thread()
        .build()
        .map_err(|e| format!("cannot build the runtime: {e}"))?;
    let heap = NodeHeap::new(second).map_err(|e| format!("NodeHeap on {second}: {e}"))?;

    cpuset.set_mems(&first.index().to_string())?;
    let narrowed = within_bound(&rt, nodes, || {
        rt.metrics().mems_change_count() >= 1 && node_fallback(second) == Some(first)
    })
    .ok_or_else(|| {
        format!(
            "mems narrowed to {first}: {} changes counted, fallback of {second} {:?}",
            rt.metrics().mems_change_count(),
            node_fallback(second)
        )
    })?;
    match NodeBox::new_on(second, [1u8; 512]) {
        Err(AllocError::NoMemory(n)) if n == second => {}
        Err(e) => return Err(format!("NodeBox on {second} while narrowed: {e}")),
        Ok(b) => {
            let at = sys::node_of_address(b.as_ptr());
            return Err(format!(
                "NodeBox on {second} while narrowed: placed (page on {at:?})"
            ));
        }
    }
    let fallback = heap
        .fallback()
        .ok_or_else(|| format!("heap of {second} has no fallback while narrowed"))?;
    let layout = std::alloc::Layout::from_size_align(64 << 10, 4096).map_err(|e| e.to_string())?;
    let block = fallback
        .allocate_on(layout, true)
        .map_err(|e| format!("fallback heap {}: {e}", fallback.node()))?;
    let landed = sys::node_of_address(block.as_ptr());
    // SAFETY: allocated above with this layout and not used since.
    unsafe { fallback.deallocate_on(block, layout) };
    if landed.as_ref().ok() != Some(&(first.index() as i32)) {
        return Err(format!(
            "fallback memory for {second} landed on {landed:?}, not {first}"
        ));
    }

    cpuset.set_mems(all.trim())?;
    let widened = within_bound(&rt, nodes, || {
        rt.metrics().mems_change_count() >= 2 && node_fallback(second).is_none()
    })
    .ok_or_else(|| format!("mems widened to {}: fallback of {second} kept", all.trim()))?;
    let b = NodeBox::new_on(second, [2u8; 512])
        .map_err(|e| format!("NodeBox on {second} once widened: {e}"))?;
    let at = sys::node_of_address(b.as_ptr());
    if at.as_ref().ok() != Some(&(second.index() as i32)) {
        return Err(format!("NodeBox on {second} once widened landed on {at:?}"));
    }
    let mut seen = format!(
        "narrowed to {first}: seen in {narrowed:?}, {second} refused and falling back to \
         {first}; widened: seen in {widened:?}, {second} used again"
    );
    if m.nodes.len() >= 3 {
        let expected = nearest_other(m, second.index())
            .map(NodeId::new)
            .ok_or_else(|| format!("no node with memory besides {second}"))?;
        let rest: Vec<String> = m
            .nodes
            .iter()
            .filter(|n| n.id != second.index())
            .map(|n| n.id.to_string())
            .collect();
        cpuset.set_mems(&rest.join(","))?;
        within_bound(&rt, nodes, || {
            rt.metrics().mems_change_count() >= 3 && node_fallback(second) == Some(expected)
        })
        .ok_or_else(|| {
            format!(
                "mems without {second}: fallback {:?}, expected the nearest, {expected}",
                node_fallback(second)
            )
        })?;
        cpuset.set_mems(all.trim())?;
        within_bound(&rt, nodes, || {
            rt.metrics().mems_change_count() >= 4 && node_fallback(second).is_none()
        })
        .ok_or_else(|| format!("mems widened again: fallback of {second} kept"))?;
        seen.push_str(&format!(
            "; without {second} alone: falls back to its nearest, {expected}"
        ));
    }
    drop(rt);
    Ok(seen)
}
