//! One blocking pool per NUMA node.

use std::time::{Duration, Instant};

use numa_rt_alloc::NodeId;

use super::{BlockingPool, Config};
use crate::topology::CpuSet;

/// Splits a runtime-wide thread cap over `nodes` pools: as even as
/// possible, the first pools taking the remainder, and at least one thread
/// each.
///
/// ```text
/// split_max_threads(512, 3) == [171, 171, 170]
/// ```
pub(crate) fn split_max_threads(total: usize, nodes: usize) -> Vec<usize> {
    if nodes == 0 {
        return Vec::new();
    }
    let (share, extra) = (total / nodes, total % nodes);
    (0..nodes)
        .map(|i| (share + usize::from(i < extra)).max(1))
        .collect()
}

/// The blocking pools of a runtime, one per node.
#[derive(Clone, Debug)]
pub(crate) struct NodePools {
    pools: Vec<(NodeId, BlockingPool)>,
}

impl NodePools {
    /// One pool for each `(node, cpus)`, sharing `config.max_threads`
    /// between them (see [`split_max_threads`]). A pool's threads are
    /// pinned to its node's CPUs when `pin` is set.
    pub(crate) fn new(nodes: &[(NodeId, CpuSet)], config: &Config, pin: bool) -> NodePools {
        let shares = split_max_threads(config.max_threads, nodes.len());
        let pools = nodes
            .iter()
            .zip(shares)
            .map(|((node, cpus), max_threads)| {
                let config = Config {
                    max_threads,
                    cpus: pin.then(|| cpus.clone()),
                    ..config.clone()
                };
                (*node, BlockingPool::new(config))
            })
            .collect();
        NodePools { pools }
    }

    /// The pool of `node`.
    pub(crate) fn get(&self, node: NodeId) -> Option<&BlockingPool> {
        self.pools
            .iter()
            .find(|(id, _)| *id == node)
            .map(|(_, pool)| pool)
    }

    /// Every pool with its node.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (NodeId, &BlockingPool)> {
        self.pools.iter().map(|(id, pool)| (*id, pool))
    }

    /// Shuts every pool down (see [`BlockingPool::shutdown`]) within one
    /// overall `timeout`. Returns whether every thread of every pool exited.
    pub(crate) fn shutdown(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut finished = true;
        for (_, pool) in &self.pools {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            finished &= pool.shutdown(left);
        }
        finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn splits_the_cap() {
        assert_eq!(split_max_threads(512, 1), [512]);
        assert_eq!(split_max_threads(512, 2), [256, 256]);
        assert_eq!(split_max_threads(512, 3), [171, 171, 170]);
        assert_eq!(split_max_threads(2, 4), [1, 1, 1, 1]);
        assert!(split_max_threads(8, 0).is_empty());
    }

    #[test]
    fn one_pool_per_node() {
        let cpus: CpuSet = "0".parse().unwrap();
        let nodes = [(NodeId::new(0), cpus.clone()), (NodeId::new(3), cpus)];
        let pools = NodePools::new(
            &nodes,
            &Config {
                max_threads: 5,
                ..Config::default()
            },
            false,
        );
        assert_eq!(pools.iter().count(), 2);
        assert!(pools.get(NodeId::new(1)).is_none());
        let (tx, rx) = mpsc::channel();
        for node in [0, 3] {
            let tx = tx.clone();
            pools
                .get(NodeId::new(node))
                .unwrap()
                .spawn(move || tx.send(node).unwrap())
                .unwrap();
        }
        let mut got = [rx.recv().unwrap(), rx.recv().unwrap()];
        got.sort_unstable();
        assert_eq!(got, [0, 3]);
        assert!(pools.shutdown(Some(Duration::from_secs(5))));
        assert!(pools.get(NodeId::new(0)).unwrap().spawn(|| ()).is_err());
    }
}
