//! Locality on a real multi-node kernel: data placed on a node pulls the
//! tasks that use it there (as a spawn target, as a `MemoryRegion` found
//! by `move_pages`, and by a hop of a running task), and memory on a
//! CPU-less node pulls them to its nearest CPU node.

use std::sync::Arc;

use numa_rt::alloc::{NodeBox, NodeVec};
use numa_rt::locality::{hop, MemoryRegion, Strict};
use numa_rt::runtime::Builder;
use numa_rt::NodeId;

use crate::expect::Machine;
use crate::report::Outcome;
use crate::sys;

/// The CPU node tasks using memory of `node` should run on: the node
/// itself when it has CPUs, else its HMAT initiator, else the CPU node at
/// the smallest SLIT distance.
fn home_for(m: &Machine, node: u32) -> Option<u32> {
    let spec = m.nodes.iter().find(|n| n.id == node)?;
    if !spec.cpus.is_empty() {
        return Some(node);
    }
    if let Some(initiator) = spec.initiator {
        return Some(initiator);
    }
    let row = m.nodes.iter().position(|n| n.id == node)?;
    m.nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| !n.cpus.is_empty())
        .min_by_key(|(j, n)| (m.distances[row][*j], n.id))
        .map(|(_, n)| n.id)
}

fn current_node() -> Result<u32, String> {
    sys::getcpu()
        .map(|(_, node)| node)
        .map_err(|e| format!("getcpu: {e}"))
}

/// For each node's memory: a task spawned on a `NodeBox` there, and one
/// spawned on a `MemoryRegion` over a `NodeVec` there, run on the node's
/// home; a task running elsewhere that hops to the box lands there too.
pub fn targets_pull_tasks(m: &Machine) -> Outcome {
    let rt = match Builder::new_multi_thread().build() {
        Ok(rt) => rt,
        Err(e) => return Outcome::Fail(format!("cannot build the runtime: {e}")),
    };
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for node in &m.nodes {
        let Some(want) = home_for(m, node.id) else {
            problems.push(format!("no CPU node near node {}", node.id));
            continue;
        };
        let id = NodeId::new(node.id);
        let result = rt.block_on(async {
            let data = NodeBox::new_on(id, [1u8; 4096]).map_err(|e| format!("NodeBox: {e}"))?;
            let data = Arc::new(data);
            let by_box = numa_rt::spawn_on(Strict(&*data), async { current_node() })
                .await
                .map_err(|e| format!("task on the NodeBox: {e}"))??;

            let mut vec = NodeVec::<u8>::with_capacity_on(id, 1 << 16)
                .map_err(|e| format!("NodeVec: {e}"))?;
            vec.resize(1 << 16, 2);
            let region = MemoryRegion::new(&vec[..]);
            let by_region = numa_rt::spawn_on(Strict(&region), async { current_node() })
                .await
                .map_err(|e| format!("task on the MemoryRegion: {e}"))??;

            // A task on another CPU node hops to the box.
            let elsewhere = m
                .nodes
                .iter()
                .find(|n| !n.cpus.is_empty() && n.id != want)
                .map(|n| n.id);
            let hopped = match elsewhere {
                None => None,
                Some(start) => {
                    let target = Strict(Arc::clone(&data));
                    let task = numa_rt::spawn_on(Strict(NodeId::new(start)), async move {
                        let before = current_node()?;
                        let landed = hop(&target).await;
                        Ok::<_, String>((before, landed, current_node()?))
                    });
                    Some((
                        start,
                        task.await.map_err(|e| format!("hopping task: {e}"))??,
                    ))
                }
            };
            Ok::<_, String>((by_box, by_region, hopped))
        });
        match result {
            Err(e) => problems.push(format!("memory on node {}: {e}", node.id)),
            Ok((by_box, by_region, hopped)) => {
                if by_box != want {
                    problems.push(format!(
                        "task on a NodeBox on node {} ran on node {by_box}, want {want}",
                        node.id
                    ));
                }
                if by_region != want {
                    problems.push(format!(
                        "task on a MemoryRegion on node {} ran on node {by_region}, want {want}",
                        node.id
                    ));
                }
                if let Some((start, (before, landed, after))) = hopped {
                    if before != start {
                        problems.push(format!("task for node {start} started on node {before}"));
                    }
                    if landed != Some(NodeId::new(want)) || after != want {
                        problems.push(format!(
                            "hop from node {start} to memory on node {}: hop said {landed:?} and \
                             the task then ran on node {after}, want {want}",
                            node.id
                        ));
                    }
                }
                seen.push(format!("{}->{want}", node.id));
            }
        }
    }
    if problems.is_empty() {
        Outcome::Pass(format!(
            "memory node -> task node (box, region, hop): {}",
            seen.join(" ")
        ))
    } else {
        Outcome::Fail(problems.join("; "))
    }
}

/// Where a task ran: the runtime's node for it and the kernel's (`getcpu`).
fn where_am_i() -> Result<(Option<u32>, u32), String> {
    let runtime = numa_rt::task::current_node().map(|n| n.index());
    Ok((runtime, current_node()?))
}

/// For each disk mounted in this machine: a task spawned on a file on it
/// (`spawn_on(&file)`, from a worker of another CPU node), and a task there that declares the
/// file with `uses!(file)`, run on the disk's node (by the runtime's
/// `task::current_node` and by the kernel's `getcpu`).
pub fn files_pull_tasks(m: &Machine) -> Outcome {
    let disks: Vec<_> = m
        .devices
        .iter()
        .filter_map(|d| Some((d, d.mount.as_ref()?)))
        .collect();
    if disks.is_empty() {
        return Outcome::Skip("no mounted disk in this topology".into());
    }
    let rt = match Builder::new_multi_thread().build() {
        Ok(rt) => rt,
        Err(e) => return Outcome::Fail(format!("cannot build the runtime: {e}")),
    };
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for (dev, mount) in disks {
        let Some(want) = u32::try_from(dev.node).ok().and_then(|n| home_for(m, n)) else {
            problems.push(format!("no CPU node near disk node {}", dev.node));
            continue;
        };
        let path = format!("{mount}/numa-vm-locality");
        let file =
            match std::fs::write(&path, b"numa-vm\n").and_then(|()| std::fs::File::open(&path)) {
                Ok(f) => Arc::new(numa_rt::fs::File::from_std(f)),
                Err(e) => {
                    problems.push(format!("{path}: {e}"));
                    continue;
                }
            };
        let start = m
            .nodes
            .iter()
            .find(|n| !n.cpus.is_empty() && n.id != want)
            .map(|n| n.id);
        let result = rt.block_on(async {
            // Spawned from a worker of another node, where a plain spawn
            // (what a file that names no node falls back to) would stay.
            let spawner = Arc::clone(&file);
            let spawn_on_file = async move {
                numa_rt::spawn_on(&*spawner, async { where_am_i() })
                    .await
                    .map_err(|e| format!("task on the file: {e}"))?
            };
            let spawned = match start {
                Some(start) => numa_rt::spawn_on(NodeId::new(start), spawn_on_file)
                    .await
                    .map_err(|e| format!("spawning task: {e}"))??,
                None => spawn_on_file.await?,
            };
            let hopped = match start {
                None => None,
                Some(start) => {
                    let file = Arc::clone(&file);
                    let task = numa_rt::spawn_on(NodeId::new(start), async move {
                        let before = where_am_i()?;
                        let file = &*file;
                        let landed = numa_rt::uses!(file);
                        Ok::<_, String>((before, landed, where_am_i()?))
                    });
                    Some((
                        start,
                        task.await.map_err(|e| format!("hopping task: {e}"))??,
                    ))
                }
            };
            Ok::<_, String>((spawned, hopped))
        });
        let _ = std::fs::remove_file(&path);
        let (spawned, hopped) = match result {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{path}: {e}"));
                continue;
            }
        };
        if spawned != (Some(want), want) {
            problems.push(format!(
                "task spawned on {path} ran on (runtime node, getcpu node) {spawned:?}, want \
                 node {want}"
            ));
        }
        if let Some((start, (before, landed, after))) = hopped {
            if before.1 != start {
                problems.push(format!(
                    "task for node {start} started on node {:?}",
                    before
                ));
            }
            if landed != Some(NodeId::new(want)) || after != (Some(want), want) {
                problems.push(format!(
                    "uses!({path}) from node {start}: hop said {landed:?} and the task then ran \
                     on (runtime node, getcpu node) {after:?}, want node {want}"
                ));
            }
            seen.push(format!(
                "{path} -> node {want} (spawn_on; uses! from node {start})"
            ));
        } else {
            seen.push(format!("{path} -> node {want} (spawn_on)"));
        }
    }
    if problems.is_empty() {
        Outcome::Pass(seen.join(", "))
    } else {
        Outcome::Fail(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::NodeSpec;

    fn machine(nodes: Vec<NodeSpec>, distances: Vec<Vec<u64>>) -> Machine {
        Machine {
            topology: "t".into(),
            nodes,
            distances,
            hmat_local: vec![],
            memory_side_caches: vec![],
            devices: vec![],
            llc_groups: vec![],
            topo_json: serde_json::Value::Null,
        }
    }

    fn node(id: u32, cpus: &[u32], initiator: Option<u32>) -> NodeSpec {
        NodeSpec {
            id,
            cpus: cpus.to_vec(),
            memory_bytes: 1 << 28,
            initiator,
        }
    }

    #[test]
    fn cpu_nodes_are_their_own_home() {
        let m = machine(
            vec![node(0, &[0], None), node(1, &[1], None)],
            vec![vec![10, 20], vec![20, 10]],
        );
        assert_eq!(home_for(&m, 1), Some(1));
        assert_eq!(home_for(&m, 5), None);
    }

    #[test]
    fn memory_only_nodes_go_to_their_initiator_or_nearest() {
        let dist = vec![vec![10, 21, 28], vec![21, 10, 17], vec![28, 17, 10]];
        let with_initiator = machine(
            vec![
                node(0, &[0], None),
                node(1, &[1], None),
                node(2, &[], Some(0)),
            ],
            dist.clone(),
        );
        assert_eq!(home_for(&with_initiator, 2), Some(0));
        let by_distance = machine(
            vec![node(0, &[0], None), node(1, &[1], None), node(2, &[], None)],
            dist,
        );
        assert_eq!(home_for(&by_distance, 2), Some(1));
    }
}
