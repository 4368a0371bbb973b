//! State shared by all workers of a multi-thread runtime: the node pools,
//! each worker's stealable queue and parker, the owned-task list, and the
//! routing of new and woken tasks to their home node.

use std::future::Future;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;

use crossbeam_queue::SegQueue;

use super::metrics::WorkerMetrics;
use super::park::Parker;
use super::pool::NodePool;
use super::queue::Steal;
use super::worker::WorkerContext;
use crate::blocking::NodePools;
use crate::runtime::context;
use crate::task::{new_task, Home, Id, JoinHandle, Notified, OwnedTasks, RawTask, Schedule};
use crate::topology::Topology;

/// Settings of the work-stealing scheduler.
#[derive(Clone, Debug)]
pub(crate) struct SchedConfig {
    /// Whether idle nodes steal `Preferred` tasks from other nodes.
    pub(crate) remote_steal: bool,
    /// Most tasks taken from another node at once.
    pub(crate) remote_steal_batch: usize,
    /// How long a worker must have found no work of its node before it
    /// steals from another.
    pub(crate) remote_steal_grace: std::time::Duration,
    /// Polls between checks of the injector ahead of the local queue;
    /// `None`: tuned from the measured poll time.
    pub(crate) global_queue_interval: Option<u32>,
    /// Whether a task woken by the running task goes to the LIFO slot.
    pub(crate) lifo_slot: bool,
    /// Whether task cells come from their home node's heap (else `Box`).
    pub(crate) task_cells_from_node_heap: bool,
}

/// What other threads see of one worker.
pub(crate) struct Remote {
    pub(crate) steal: Steal,
    pub(crate) parker: Parker,
    /// Local (`spawn_local`) tasks woken from other threads.
    pub(crate) inbox: SegQueue<Notified>,
    /// Local tasks of this worker, cancelled by the worker when it exits.
    pub(crate) local_owned: OwnedTasks,
    /// Index of the worker's pool.
    pub(crate) pool: usize,
    /// Index of the worker inside its pool.
    pub(crate) index_in_pool: usize,
    pub(crate) metrics: WorkerMetrics,
}

pub(crate) struct Shared {
    pub(crate) pools: Box<[NodePool]>,
    pub(crate) remotes: Box<[Remote]>,
    pub(crate) owned: OwnedTasks,
    pub(crate) config: SchedConfig,
    /// For each pool, the other pools nearest first.
    pub(crate) remote_order: Box<[Box<[usize]>]>,
    /// For each worker, its siblings: same cache domain first, then the
    /// rest of its node.
    pub(crate) steal_order: Box<[Box<[usize]>]>,
    shutdown: AtomicBool,
    /// Spreads spawns from outside the runtime over the pools.
    next_pool: AtomicUsize,
    pub(crate) blocking: NodePools,
    pub(crate) topology: Topology,
    /// Placement costs, computed once from `topology`.
    pub(crate) cost: crate::locality::CostTable,
    /// For each pool, the heap its tasks' cells come from (`None`: the
    /// global allocator), looked up once here so a spawn only indexes.
    pub(crate) cell_heaps: Box<[Option<numa_rt_alloc::NodeHeap>]>,
    /// I/O and time settings, set once by the builder.
    pub(crate) io_config: std::sync::OnceLock<crate::io::config::IoConfig>,
    /// The workers' I/O drivers, added as each starts: a thread that
    /// cannot create a driver of its own registers its timers there.
    pub(crate) worker_drivers: std::sync::Mutex<Vec<crate::io::driver::WeakDriver>>,
    /// Keeps the workers' pinning in step with the allowed CPUs.
    pub(crate) affinity: super::affinity::Monitor,
}

impl Shared {
    // Each part is assembled by the builder on its own; a parameter struct
    // would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        pools: Box<[NodePool]>,
        remotes: Box<[Remote]>,
        config: SchedConfig,
        remote_order: Box<[Box<[usize]>]>,
        steal_order: Box<[Box<[usize]>]>,
        blocking: NodePools,
        topology: Topology,
        affinity: super::affinity::Monitor,
    ) -> Shared {
        let shards = remotes.len() * 4;
        let cost = crate::locality::CostTable::new(&topology);
        crate::locality::alloc_hook::install(&topology, &cost);
        let cell_heaps = pools
            .iter()
            .map(|p| {
                // A pool cut from a kernel node by probed domains takes its
                // memory from that node.
                let memory = topology.node(p.node).map_or(p.node, |n| n.memory_node());
                cell_heap(config.task_cells_from_node_heap, memory)
            })
            .collect();
        Shared {
            cell_heaps,
            pools,
            remotes,
            owned: OwnedTasks::new(shards),
            config,
            remote_order,
            steal_order,
            shutdown: AtomicBool::new(false),
            next_pool: AtomicUsize::new(0),
            blocking,
            cost,
            topology,
            io_config: std::sync::OnceLock::new(),
            worker_drivers: std::sync::Mutex::new(Vec::new()),
            affinity,
        }
    }

    /// The heap for cells of tasks whose home is `pool`.
    #[inline]
    pub(crate) fn cell_heap(&self, pool: usize) -> Option<numa_rt_alloc::NodeHeap> {
        self.cell_heaps.get(pool).copied().flatten()
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Acquire)
    }

    /// Tells every worker to stop after its current task.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.store(true, Release);
        for remote in self.remotes.iter() {
            remote.parker.unpark();
        }
    }

    /// The pool a plain `spawn` uses: the current worker's, else the least
    /// loaded one (by queued tasks, ties taken round-robin).
    pub(crate) fn default_pool(self: &Arc<Self>) -> usize {
        if let Some(pool) = context::with_worker(|w| match w {
            Some(w) if w.belongs_to(self) => Some(w.pool),
            _ => None,
        }) {
            return pool;
        }
        let n = self.pools.len();
        if n == 1 {
            return 0;
        }
        let start = self.next_pool.fetch_add(1, Relaxed) % n;
        (0..n)
            .map(|k| (start + k) % n)
            .min_by_key(|&i| {
                let pool = &self.pools[i];
                let busy = pool.workers.len() - pool.idle.num_parked();
                pool.inject_len() + busy
            })
            .unwrap_or(start)
    }

    /// Spawns a `Send` task with the given home.
    pub(crate) fn spawn<F>(self: &Arc<Self>, future: F, id: Id, home: Home) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let heap = self.cell_heap(home.pool as usize);
        let (task, notified, join) = new_task(future, self.clone(), id, home, heap);
        if let Err(task) = self.owned.bind(task) {
            // The runtime is shutting down: the task is cancelled at once.
            drop(notified);
            task.shutdown();
            return join;
        }
        self.count_spawn(home.pool as usize);
        self.schedule_task(notified, false);
        join
    }

    /// Counts a task spawned with home `pool`: in the current worker's own
    /// counter when it belongs to that pool (no shared cache line), else on
    /// the pool.
    pub(crate) fn count_spawn(self: &Arc<Self>, pool: usize) {
        let counted = context::with_worker(|w| match w {
            Some(w) if w.pool == pool && w.belongs_to(self) => {
                w.count_spawn();
                true
            }
            _ => false,
        });
        if !counted {
            self.pools[pool].count_spawn();
        }
    }

    /// Tasks spawned with home `pool` so far.
    pub(crate) fn spawned_on(&self, pool: usize) -> u64 {
        let p = &self.pools[pool];
        p.spawned.load(Relaxed)
            + p.workers
                .clone()
                .map(|w| self.remotes[w].metrics.spawned.load())
                .sum::<u64>()
    }

    /// Routes a task to its home node (wake-to-home): the current worker's
    /// own queue when it belongs to that node, else the node's injector.
    pub(crate) fn schedule_task(self: &Arc<Self>, task: Notified, yield_now: bool) {
        let home = task.header().home.pool();
        let task = context::with_worker(|w| match w {
            Some(w) if w.pool == home && w.belongs_to(self) => w.schedule_local(task, yield_now),
            _ => Some(task),
        });
        if let Some(task) = task {
            self.push_remote(home, task);
        }
    }

    /// Queues a task on `pool`'s injector and wakes a worker for it.
    pub(crate) fn push_remote(&self, pool: usize, task: Notified) {
        let preferred = !task.header().home.get().strict;
        self.pools[pool].push(task);
        self.notify_pool(pool, preferred);
    }

    /// Wakes one parked worker of `pool` if nobody there is looking for
    /// work. With `spill`, when every worker of `pool` is busy, wakes one
    /// of the nearest node that has a sleeper instead, to steal the work.
    pub(crate) fn notify_pool(&self, pool: usize, spill: bool) {
        if let Some(worker) = self.pools[pool].idle.worker_to_notify() {
            self.unpark(pool, worker);
            return;
        }
        if spill && self.config.remote_steal && self.pools[pool].overloaded() {
            self.notify_remote(pool);
        }
    }

    /// Wakes a sleeper of the nearest other node, if any, so it can steal
    /// from `pool`.
    pub(crate) fn notify_remote(&self, pool: usize) {
        for &other in self.remote_order[pool].iter() {
            if let Some(worker) = self.pools[other].idle.worker_to_notify() {
                self.unpark(other, worker);
                return;
            }
        }
    }

    fn unpark(&self, pool: usize, worker_in_pool: usize) {
        let index = self.pools[pool].workers.start + worker_in_pool;
        self.remotes[index].parker.unpark();
    }

    /// Whether `pool` (or, with `remote`, another node it may steal from)
    /// has queued work; checked by the last searcher before it parks.
    pub(crate) fn has_work_for(&self, pool: usize, remote: bool) -> bool {
        let p = &self.pools[pool];
        if p.has_injected() || p.workers.clone().any(|w| !self.remotes[w].steal.is_empty()) {
            return true;
        }
        remote && self.has_remote_work(pool)
    }

    /// Whether another node has work `pool` could steal: `Preferred` tasks
    /// queued on an overloaded node, or a busy worker's backlog there.
    pub(crate) fn has_remote_work(&self, pool: usize) -> bool {
        self.config.remote_steal
            && self.remote_order[pool].iter().any(|&other| {
                let victim = &self.pools[other];
                victim.idle.all_busy()
                    && ((victim.overloaded() && victim.has_preferred())
                        || victim
                            .workers
                            .clone()
                            .any(|w| self.remotes[w].steal.len() >= 2))
            })
    }

    /// Queues a local task on its worker and wakes that worker.
    pub(crate) fn schedule_local_task(&self, worker: usize, task: Notified, yield_now: bool) {
        let task = context::with_worker(|w| match w {
            Some(w) if w.index == worker && std::ptr::eq(w.shared_ptr(), self) => {
                w.schedule_pinned(task, yield_now)
            }
            _ => Some(task),
        });
        if let Some(task) = task {
            let remote = &self.remotes[worker];
            remote.inbox.push(task);
            remote.parker.unpark();
        }
    }

    /// Every queue emptied (at shutdown, after the workers stopped or were
    /// given up on).
    pub(crate) fn drain_queues(&self) {
        for pool in self.pools.iter() {
            pool.drain();
        }
        for remote in self.remotes.iter() {
            remote.steal.drain(drop);
            while remote.inbox.pop().is_some() {}
        }
    }
}

/// The heap task cells of `node` come from: `None` when `enabled` is off or
/// the node's memory cannot be placed (the cells then use the global
/// allocator).
pub(crate) fn cell_heap(
    enabled: bool,
    node: numa_rt_alloc::NodeId,
) -> Option<numa_rt_alloc::NodeHeap> {
    if !enabled {
        return None;
    }
    numa_rt_alloc::NodeHeap::new(node).ok()
}

impl Schedule for Arc<Shared> {
    fn schedule(&self, task: Notified, yield_now: bool) {
        self.schedule_task(task, yield_now);
    }

    fn release(&self, task: RawTask) -> bool {
        self.owned.remove(task)
    }
}

/// The scheduler of a `spawn_local` task: it only ever runs on `worker`.
pub(crate) struct LocalSchedule {
    pub(crate) shared: Arc<Shared>,
    pub(crate) worker: usize,
}

impl Schedule for LocalSchedule {
    fn schedule(&self, task: Notified, yield_now: bool) {
        self.shared
            .schedule_local_task(self.worker, task, yield_now);
    }

    fn release(&self, task: RawTask) -> bool {
        self.shared.remotes[self.worker].local_owned.remove(task)
    }
}

impl WorkerContext {
    pub(crate) fn belongs_to(&self, shared: &Arc<Shared>) -> bool {
        std::ptr::eq(self.shared_ptr(), Arc::as_ptr(shared))
    }
}
