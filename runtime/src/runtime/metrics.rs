//! `RuntimeMetrics`: counters per worker and per node.
//!
//! Worker counters are published by each worker every few dozen polls and
//! when it parks, so they can lag the truth by that much while it runs.

use std::sync::atomic::Ordering::Relaxed;

use super::handle::{Handle, Scheduler};
use crate::topology::CpuSet;
use crate::NodeId;

/// A view of a runtime's counters.
///
/// ```
/// use numa_rt_runtime::runtime::Builder;
/// let rt = Builder::new_multi_thread().worker_threads(1).build().unwrap();
/// rt.block_on(async { numa_rt_runtime::spawn(async {}).await.unwrap() });
/// let m = rt.metrics();
/// assert!(m.num_workers() >= 1);
/// assert_eq!(m.spawned_tasks_count(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct RuntimeMetrics {
    handle: Handle,
}

impl RuntimeMetrics {
    pub(crate) fn new(handle: Handle) -> RuntimeMetrics {
        RuntimeMetrics { handle }
    }

    /// Worker threads (1 for a current-thread runtime: the `block_on` thread).
    pub fn num_workers(&self) -> usize {
        match &self.handle.inner {
            Scheduler::MultiThread(s) => s.remotes.len(),
            Scheduler::CurrentThread(_) => 1,
        }
    }

    /// Nodes with a worker pool.
    pub fn num_nodes(&self) -> usize {
        self.handle.nodes().len()
    }

    /// The node of worker `worker`.
    ///
    /// # Panics
    /// If `worker >= num_workers()`.
    pub fn worker_node(&self, worker: usize) -> NodeId {
        match &self.handle.inner {
            Scheduler::MultiThread(s) => s.pools[s.remotes[worker].pool].node,
            Scheduler::CurrentThread(s) => {
                assert_eq!(worker, 0, "worker index out of range");
                s.node
            }
        }
    }

    fn worker_counter(
        &self,
        worker: usize,
        pick: impl Fn(&crate::scheduler::metrics::WorkerMetrics) -> u64,
    ) -> u64 {
        match &self.handle.inner {
            Scheduler::MultiThread(s) => pick(&s.remotes[worker].metrics),
            Scheduler::CurrentThread(_) => 0,
        }
    }

    /// Task polls by worker `worker`.
    pub fn worker_poll_count(&self, worker: usize) -> u64 {
        match &self.handle.inner {
            Scheduler::CurrentThread(s) => s.polls.load(Relaxed),
            Scheduler::MultiThread(_) => self.worker_counter(worker, |m| m.polls.load()),
        }
    }

    /// Polls by worker `worker` of tasks whose home is the worker's node.
    pub fn worker_home_poll_count(&self, worker: usize) -> u64 {
        match &self.handle.inner {
            Scheduler::CurrentThread(s) => s.polls.load(Relaxed),
            Scheduler::MultiThread(_) => self.worker_counter(worker, |m| m.home_polls.load()),
        }
    }

    /// Tasks worker `worker` stole from workers of its own node.
    pub fn worker_local_steal_count(&self, worker: usize) -> u64 {
        self.worker_counter(worker, |m| m.local_steals.load())
    }

    /// Tasks worker `worker` took from other nodes.
    pub fn worker_remote_steal_count(&self, worker: usize) -> u64 {
        self.worker_counter(worker, |m| m.remote_steals.load())
    }

    /// Tasks worker `worker` stole, from anywhere.
    pub fn worker_steal_count(&self, worker: usize) -> u64 {
        self.worker_local_steal_count(worker) + self.worker_remote_steal_count(worker)
    }

    /// Times worker `worker` parked.
    pub fn worker_park_count(&self, worker: usize) -> u64 {
        match &self.handle.inner {
            Scheduler::CurrentThread(s) => s.parks.load(Relaxed),
            Scheduler::MultiThread(_) => self.worker_counter(worker, |m| m.parks.load()),
        }
    }

    /// Times worker `worker` woke from parking.
    pub fn worker_unpark_count(&self, worker: usize) -> u64 {
        match &self.handle.inner {
            Scheduler::CurrentThread(s) => s.parks.load(Relaxed),
            Scheduler::MultiThread(_) => self.worker_counter(worker, |m| m.unparks.load()),
        }
    }

    /// Tasks in worker `worker`'s local queue.
    pub fn worker_local_queue_depth(&self, worker: usize) -> usize {
        match &self.handle.inner {
            Scheduler::MultiThread(s) => s.remotes[worker].steal.len(),
            Scheduler::CurrentThread(_) => 0,
        }
    }

    /// Tasks spawned with `node` as home (0 for a node without a pool).
    pub fn node_spawned_count(&self, node: NodeId) -> u64 {
        match &self.handle.inner {
            Scheduler::MultiThread(s) => s
                .pools
                .iter()
                .position(|p| p.node == node)
                .map_or(0, |i| s.spawned_on(i)),
            Scheduler::CurrentThread(s) if s.node == node => s.spawned.load(Relaxed),
            Scheduler::CurrentThread(_) => 0,
        }
    }

    /// Tasks waiting in `node`'s injection queues.
    pub fn node_injection_queue_depth(&self, node: NodeId) -> usize {
        match &self.handle.inner {
            Scheduler::MultiThread(s) => s
                .pools
                .iter()
                .find(|p| p.node == node)
                .map_or(0, |p| p.inject_len()),
            Scheduler::CurrentThread(s) if s.node == node => s.queue_depth(),
            Scheduler::CurrentThread(_) => 0,
        }
    }

    /// Tasks waiting in all injection queues.
    pub fn global_queue_depth(&self) -> usize {
        match &self.handle.inner {
            Scheduler::MultiThread(s) => s.pools.iter().map(|p| p.inject_len()).sum(),
            Scheduler::CurrentThread(s) => s.queue_depth(),
        }
    }

    /// Tasks spawned so far (blocking tasks not included). Counts made on
    /// workers are published every few dozen polls and when they park.
    pub fn spawned_tasks_count(&self) -> u64 {
        match &self.handle.inner {
            Scheduler::MultiThread(s) => (0..s.pools.len()).map(|i| s.spawned_on(i)).sum(),
            Scheduler::CurrentThread(s) => s.spawned.load(Relaxed),
        }
    }

    /// Changes of the process's allowed CPUs the affinity monitor saw (the
    /// main thread's mask, which `taskset -p` and cgroup cpuset edits
    /// change), plus workers whose own mask was changed from outside. 0
    /// for a current-thread runtime, which has no monitor. See
    /// [`Builder::pin_workers`](super::Builder::pin_workers).
    pub fn affinity_change_count(&self) -> u64 {
        match &self.handle.inner {
            Scheduler::MultiThread(s) => s.affinity.changes(),
            Scheduler::CurrentThread(_) => 0,
        }
    }

    /// Changes of the process's allowed memory nodes the affinity monitor
    /// saw (`Mems_allowed_list`, which cgroup `cpuset.mems` edits change).
    /// After each, nodes the process may no longer use get their memory
    /// from the nearest allowed node (see
    /// [`Builder::monitor_affinity`](super::Builder::monitor_affinity)). 0
    /// for a current-thread runtime, which has no monitor.
    pub fn mems_change_count(&self) -> u64 {
        match &self.handle.inner {
            Scheduler::MultiThread(s) => s.affinity.mems_changes(),
            Scheduler::CurrentThread(_) => 0,
        }
    }

    /// Times the affinity monitor pinned a worker to a different CPU set
    /// (after a change of the allowed CPUs, or to undo a change made to
    /// the worker's thread alone).
    pub fn affinity_repin_count(&self) -> u64 {
        match &self.handle.inner {
            Scheduler::MultiThread(s) => s.affinity.repins(),
            Scheduler::CurrentThread(_) => 0,
        }
    }

    /// Samples (one per worker every 100 ms or so while it runs) that found
    /// a worker on a CPU outside the set it should be pinned to.
    pub fn off_cpu_sample_count(&self) -> u64 {
        match &self.handle.inner {
            Scheduler::MultiThread(s) => s.affinity.off_cpu_samples(),
            Scheduler::CurrentThread(_) => 0,
        }
    }

    /// The CPUs worker `worker` is pinned to now: its build-time set while
    /// all of it is allowed, else what the affinity monitor moved it to.
    /// `None` when workers are not pinned and for a current-thread runtime.
    ///
    /// # Panics
    /// If `worker >= num_workers()`.
    pub fn worker_cpus(&self, worker: usize) -> Option<CpuSet> {
        match &self.handle.inner {
            Scheduler::MultiThread(s) => {
                assert!(worker < s.remotes.len(), "worker index out of range");
                s.affinity.worker_cpus(worker)
            }
            Scheduler::CurrentThread(_) => None,
        }
    }

    /// Tasks alive now (spawned, not yet finished).
    pub fn num_alive_tasks(&self) -> usize {
        match &self.handle.inner {
            Scheduler::MultiThread(s) => s.owned.len(),
            Scheduler::CurrentThread(s) => s.owned.len(),
        }
    }
}
