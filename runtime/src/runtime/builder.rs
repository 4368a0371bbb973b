//! `Builder`: configuring and starting a runtime.

use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crossbeam_queue::SegQueue;

use super::context;
use super::handle::{Handle, Scheduler};
use super::pools::{self, Pools};
use super::rt::{ExitGuard, Runtime, ThreadTracker};
use crate::blocking::{self, Callback, NodePools, ThreadNameFn};
use crate::io::config::{Backend, IoConfig};
use crate::io::driver::Driver;
use crate::io::IoDriver;
use crate::scheduler::affinity::{MemoryPlan, Monitor, WorkerHome};
use crate::scheduler::current_thread::CtShared;
use crate::scheduler::metrics::WorkerMetrics;
use crate::scheduler::park::Parker;
use crate::scheduler::pool::NodePool;
use crate::scheduler::queue::{self, Local};
use crate::scheduler::shared::{Remote, SchedConfig, Shared};
use crate::scheduler::worker::WorkerContext;
use crate::task::OwnedTasks;
use crate::topology::{CpuSet, Node, Topology};
use crate::NodeId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    CurrentThread,
    MultiThread,
}

/// Configures a runtime; tokio's names where tokio has the option.
///
/// ```
/// use numa_rt_runtime::runtime::Builder;
/// let rt = Builder::new_multi_thread()
///     .worker_threads(1)
///     .thread_name("my-worker")
///     .enable_all()
///     .build()
///     .unwrap();
/// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
/// ```
pub struct Builder {
    kind: Kind,
    worker_threads: Option<usize>,
    nodes: Option<Vec<NodeId>>,
    topology: Option<Topology>,
    pools: Pools,
    pin_workers: bool,
    monitor_affinity: bool,
    thread_name: ThreadNameFn,
    thread_stack_size: Option<usize>,
    on_thread_start: Option<Callback>,
    on_thread_stop: Option<Callback>,
    max_blocking_threads: usize,
    thread_keep_alive: Duration,
    sched: SchedConfig,
    enable_io: bool,
    enable_time: bool,
    io_driver: IoDriver,
}

impl Builder {
    /// A runtime with one pool of worker threads per NUMA node.
    pub fn new_multi_thread() -> Builder {
        Builder::new(Kind::MultiThread)
    }

    /// A runtime that runs every task on the thread calling `block_on`.
    pub fn new_current_thread() -> Builder {
        Builder::new(Kind::CurrentThread)
    }

    fn new(kind: Kind) -> Builder {
        Builder {
            kind,
            worker_threads: None,
            nodes: None,
            topology: None,
            pools: Pools::Auto,
            pin_workers: true,
            monitor_affinity: true,
            thread_name: Arc::new(|| "numa-rt-worker".to_string()),
            thread_stack_size: None,
            on_thread_start: None,
            on_thread_stop: None,
            max_blocking_threads: 512,
            thread_keep_alive: Duration::from_secs(10),
            sched: SchedConfig {
                remote_steal: true,
                remote_steal_batch: 4,
                remote_steal_grace: crate::scheduler::worker::REMOTE_STEAL_GRACE,
                global_queue_interval: None,
                lifo_slot: true,
                task_cells_from_node_heap: true,
            },
            enable_io: false,
            enable_time: false,
            io_driver: IoDriver::Auto,
        }
    }

    /// Worker threads per node (default: the node's usable CPU count).
    /// Zero makes [`build`](Self::build) fail.
    pub fn worker_threads(&mut self, n: usize) -> &mut Self {
        self.worker_threads = Some(n);
        self
    }

    /// Runs workers only on these nodes (default: every node with usable
    /// CPUs). Unknown nodes make [`build`](Self::build) fail.
    pub fn nodes(&mut self, nodes: impl IntoIterator<Item = NodeId>) -> &mut Self {
        self.nodes = Some(nodes.into_iter().collect());
        self
    }

    /// The topology to build pools from (default: `Topology::load()`, which
    /// honours `NUMA_RT_TOPOLOGY`).
    pub fn topology(&mut self, topology: Topology) -> &mut Self {
        self.topology = Some(topology);
        self
    }

    /// What the worker pools follow: the topology's nodes (the default,
    /// unless `NUMA_RT_POOLS=probe` is set) or latency domains found by
    /// the hidden-NUMA probe when the runtime is built. See [`Pools`] for
    /// the probe's cost, its errors, and why memory stays on the kernel's
    /// node. A current-thread runtime has one pool and never probes.
    ///
    /// With probed pools, [`nodes`](Self::nodes) still names kernel nodes:
    /// every pool cut from a listed node runs, and
    /// [`Handle::nodes`](super::Handle::nodes) lists the pools' ids.
    ///
    /// ```
    /// use numa_rt_runtime::runtime::{Builder, Pools};
    /// let rt = Builder::new_multi_thread()
    ///     .pools(Pools::Nodes)
    ///     .worker_threads(1)
    ///     .build()?;
    /// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pools(&mut self, pools: Pools) -> &mut Self {
        self.pools = pools;
        self
    }

    /// Whether workers (and blocking threads) are pinned to their node's
    /// CPUs with `sched_setaffinity` (default: yes). A worker is pinned to
    /// the CPUs of its node that share its last-level cache (worker `k` of
    /// a node takes the cache domain of the node's `k`-th CPU), or to the
    /// whole node when the topology reports no cache domains; blocking
    /// threads to the whole node.
    pub fn pin_workers(&mut self, pin: bool) -> &mut Self {
        self.pin_workers = pin;
        self
    }

    /// Whether a multi-thread runtime follows changes of the CPUs the
    /// process may use while it runs (default: yes).
    ///
    /// The process's allowed CPUs are the **main thread's** affinity mask:
    /// what `taskset -p PID` changes, and what the kernel narrows when the
    /// cgroup's `cpuset.cpus.effective` shrinks. About every 100 ms, from a
    /// running worker's maintenance tick or before it parks (never per
    /// poll), one worker compares it with the last one seen; after a change
    /// every worker is pinned again to its build-time CPUs that are still
    /// allowed, else the allowed CPUs of its node, else those of the
    /// nearest node with some. Workers never change pool, so tasks stay on
    /// their queues: none is lost or run twice. CPUs that come back are
    /// used again. Each running worker also checks its own CPU
    /// (`sched_getcpu`) and mask about every 100 ms and pins itself back
    /// when its thread alone was re-pinned from outside
    /// (`taskset -p TID`). Counted in
    /// [`RuntimeMetrics::affinity_change_count`](super::RuntimeMetrics::affinity_change_count)
    /// and its neighbours.
    ///
    /// A program that narrows its own main thread narrows the workers too;
    /// turn the monitor off if the main thread's mask is not meant for the
    /// runtime. Blocking threads keep their build-time pinning (the kernel
    /// still narrows them with the cgroup). CPUs added after the build get
    /// no worker.
    ///
    /// The same check follows the allowed **memory nodes**
    /// (`Mems_allowed_list`, narrowed by the cgroup's `cpuset.mems`), counted
    /// in [`RuntimeMetrics::mems_change_count`](super::RuntimeMetrics::mems_change_count).
    /// A node the process may no longer use gets the nearest allowed node as
    /// its fallback in the allocator: new memory of its workers and task
    /// cells comes from there, and explicit requests for it
    /// (`NodeBox::new_on`, `NodeVec`, `NodeHeap`) fail with
    /// `AllocError::NoMemory`. When it is allowed again it is used again.
    /// Nothing already allocated moves.
    pub fn monitor_affinity(&mut self, enabled: bool) -> &mut Self {
        self.monitor_affinity = enabled;
        self
    }

    /// The name of worker threads.
    pub fn thread_name(&mut self, name: impl Into<String>) -> &mut Self {
        let name = name.into();
        self.thread_name = Arc::new(move || name.clone());
        self
    }

    /// A function naming each new thread.
    pub fn thread_name_fn<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn() -> String + Send + Sync + 'static,
    {
        self.thread_name = Arc::new(f);
        self
    }

    /// Stack size of worker and blocking threads.
    pub fn thread_stack_size(&mut self, bytes: usize) -> &mut Self {
        self.thread_stack_size = Some(bytes);
        self
    }

    /// Runs on each new worker or blocking thread before it takes work.
    pub fn on_thread_start<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.on_thread_start = Some(Arc::new(f));
        self
    }

    /// Runs on each worker or blocking thread before it exits.
    pub fn on_thread_stop<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.on_thread_stop = Some(Arc::new(f));
        self
    }

    /// Most blocking threads for the whole runtime, split over the nodes
    /// (default 512).
    pub fn max_blocking_threads(&mut self, n: usize) -> &mut Self {
        self.max_blocking_threads = n;
        self
    }

    /// How long an idle blocking thread waits before it exits (default 10 s).
    pub fn thread_keep_alive(&mut self, d: Duration) -> &mut Self {
        self.thread_keep_alive = d;
        self
    }

    /// Polls between two looks at the node's injector ahead of the local
    /// queue. By default it is tuned so a task on the injector waits about
    /// 200 µs at most behind busy local work. Zero is treated as one.
    pub fn global_queue_interval(&mut self, n: u32) -> &mut Self {
        self.sched.global_queue_interval = Some(n.max(1));
        self
    }

    /// Turns the LIFO slot off: a task woken by the running task then waits
    /// its turn at the back of the queue.
    pub fn disable_lifo_slot(&mut self) -> &mut Self {
        self.sched.lifo_slot = false;
        self
    }

    /// Whether an idle node steals `Preferred` tasks from other nodes
    /// (default: yes).
    pub fn remote_steal(&mut self, enabled: bool) -> &mut Self {
        self.sched.remote_steal = enabled;
        self
    }

    /// Whether each task's cell (its header, future and output) is
    /// allocated from its home node's heap, so it sits in that node's
    /// memory and shows in [`numa_rt_alloc::node_stats`] (default: yes).
    /// With `false`, or when a node's heap refuses (the kernel will not
    /// map or bind its memory), cells come from the global allocator.
    ///
    /// ```
    /// let rt = numa_rt_runtime::runtime::Builder::new_multi_thread()
    ///     .task_cells_from_node_heap(false)
    ///     .build()?;
    /// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn task_cells_from_node_heap(&mut self, enabled: bool) -> &mut Self {
        self.sched.task_cells_from_node_heap = enabled;
        self
    }

    /// Most tasks an idle node takes from another node at once (default 4).
    pub fn remote_steal_batch(&mut self, n: usize) -> &mut Self {
        self.sched.remote_steal_batch = n.max(1);
        self
    }

    /// The longest a node waits, once out of its own work, before it takes
    /// `Preferred` tasks from other nodes (default 100 ms). The wait is an
    /// eighth of the time the node had been busy before, at least 1 ms
    /// and at most this: an imbalance smaller than that is not worth
    /// running tasks away from their memory. Shorter evens out imbalances
    /// sooner, at the cost of more polls off their node; zero steals as
    /// soon as a node is idle.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = numa_rt_runtime::runtime::Builder::new_multi_thread()
    ///     .remote_steal_grace(Duration::from_millis(5))
    ///     .build()?;
    /// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn remote_steal_grace(&mut self, grace: Duration) -> &mut Self {
        self.sched.remote_steal_grace = grace;
        self
    }

    /// Enables the I/O and time drivers.
    pub fn enable_all(&mut self) -> &mut Self {
        self.enable_io = true;
        self.enable_time = true;
        self
    }

    /// Enables the I/O driver (sockets; see [`io_driver`](Self::io_driver)).
    pub fn enable_io(&mut self) -> &mut Self {
        self.enable_io = true;
        self
    }

    /// Enables the time driver (`sleep`, `timeout`, `interval`).
    pub fn enable_time(&mut self) -> &mut Self {
        self.enable_time = true;
        self
    }

    /// Chooses the kernel interface of the I/O driver (default
    /// [`IoDriver::Auto`]: io_uring when the kernel allows it, else epoll;
    /// `NUMA_RT_IO=epoll|uring` forces one under `Auto`).
    ///
    /// Under `Auto`, when a probe ring was allowed but a worker's ring is
    /// then refused (`ENOMEM`, `EPERM`, ...: a locked-memory or per-user
    /// ring limit reached meanwhile), the runtime is built again on epoll,
    /// so all its drivers share one backend (the `on_thread_start` and
    /// `on_thread_stop` hooks then also run for the first attempt's
    /// workers). An explicit [`IoDriver::Uring`] fails the build instead.
    ///
    /// ```
    /// use numa_rt_runtime::io::IoDriver;
    /// use numa_rt_runtime::runtime::Builder;
    /// let rt = Builder::new_current_thread()
    ///     .enable_all()
    ///     .io_driver(IoDriver::Epoll)
    ///     .build()
    ///     .unwrap();
    /// rt.block_on(numa_rt_runtime::time::sleep(std::time::Duration::from_millis(1)));
    /// ```
    pub fn io_driver(&mut self, driver: IoDriver) -> &mut Self {
        self.io_driver = driver;
        self
    }

    /// The driver settings, or `None` when neither I/O nor time is on.
    fn io_config(&self) -> io::Result<Option<IoConfig>> {
        if !self.enable_io && !self.enable_time {
            return Ok(None);
        }
        Ok(Some(IoConfig {
            io: self.enable_io,
            time: self.enable_time,
            backend: crate::io::config::resolve(self.io_driver)?,
            entries: 256,
        }))
    }

    /// Starts the runtime.
    ///
    /// Errs with a message naming the problem when the topology cannot be
    /// read, a requested node has no usable CPUs, `worker_threads` is zero,
    /// `NUMA_RT_POOLS` is not understood, a requested probe fails, a thread
    /// cannot be started, or a worker cannot be pinned.
    pub fn build(&mut self) -> io::Result<Runtime> {
        let topology = match &self.topology {
            Some(t) => t.clone(),
            None => Topology::load().map_err(|e| {
                io::Error::other(format!("numa_rt: cannot read the machine topology: {e}"))
            })?,
        };
        if self.worker_threads == Some(0) {
            return Err(invalid("worker_threads must be at least 1"));
        }
        let (topology, split) = match self.kind {
            Kind::CurrentThread => (topology, false),
            Kind::MultiThread => {
                let resolved = pools::apply(&self.pools.resolve()?, topology)?;
                (resolved.topology, resolved.split)
            }
        };
        let nodes = self.select_nodes(&topology, split)?;
        let io = self.io_config()?;
        match (self.build_flavor(topology.clone(), &nodes, io), io) {
            // The probe ring passed but the workers' rings were refused (a
            // locked-memory or per-user ring limit reached in between):
            // `Auto` runs the whole runtime on epoll instead, so every
            // driver has the same backend.
            (Err(e), Some(config))
                if config.backend == Backend::Uring
                    && crate::io::config::is_automatic(self.io_driver)
                    && ring_refused(&e) =>
            {
                let epoll = IoConfig {
                    backend: Backend::Epoll,
                    ..config
                };
                self.build_flavor(topology, &nodes, Some(epoll))
            }
            (built, _) => built,
        }
    }

    fn build_flavor(
        &self,
        topology: Topology,
        nodes: &[Node],
        io: Option<IoConfig>,
    ) -> io::Result<Runtime> {
        match self.kind {
            Kind::CurrentThread => self.build_current_thread(topology, nodes, io),
            Kind::MultiThread => self.build_multi_thread(topology, nodes, io),
        }
    }

    /// The nodes to run; with `split` (pools cut from kernel nodes) the
    /// requested ids name kernel nodes, and every piece of them runs.
    fn select_nodes(&self, topology: &Topology, split: bool) -> io::Result<Vec<Node>> {
        let available: Vec<String> = topology.cpu_nodes().map(|n| n.id().to_string()).collect();
        let nodes: Vec<Node> = match &self.nodes {
            None => topology.cpu_nodes().cloned().collect(),
            Some(ids) if split => {
                let out: Vec<Node> = topology
                    .cpu_nodes()
                    .filter(|n| ids.contains(&n.memory_node()))
                    .cloned()
                    .collect();
                if out.is_empty() {
                    return Err(invalid(format!(
                        "none of the nodes {ids:?} has usable CPUs among the probed pools"
                    )));
                }
                out
            }
            Some(ids) => {
                if ids.is_empty() {
                    return Err(invalid("`nodes(..)` was given an empty list"));
                }
                let mut out: Vec<Node> = Vec::new();
                for &id in ids {
                    let node = topology.node(id).filter(|n| n.has_cpus()).ok_or_else(|| {
                        invalid(format!(
                            "{id} is not a node with usable CPUs in this topology \
                                 (nodes with CPUs: {})",
                            available.join(", ")
                        ))
                    })?;
                    if !out.iter().any(|n| n.id() == id) {
                        out.push(node.clone());
                    }
                }
                out
            }
        };
        if nodes.is_empty() {
            return Err(invalid("the topology has no node with usable CPUs"));
        }
        Ok(nodes)
    }

    fn blocking_pools(&self, nodes: &[Node]) -> NodePools {
        let config = blocking::Config {
            max_threads: self.max_blocking_threads.max(nodes.len()),
            keep_alive: self.thread_keep_alive,
            thread_name: self.thread_name.clone(),
            stack_size: self.thread_stack_size,
            cpus: None,
            on_thread_start: self.on_thread_start.clone(),
            on_thread_stop: self.on_thread_stop.clone(),
        };
        let per_node: Vec<(NodeId, CpuSet)> =
            nodes.iter().map(|n| (n.id(), n.cpus().clone())).collect();
        NodePools::new(&per_node, &config, self.pin_workers)
    }

    fn build_current_thread(
        &self,
        topology: Topology,
        nodes: &[Node],
        io: Option<IoConfig>,
    ) -> io::Result<Runtime> {
        let node = &nodes[0];
        let blocking = self.blocking_pools(std::slice::from_ref(node));
        let shared = Arc::new(CtShared::new(
            node.id(),
            blocking,
            topology,
            self.sched.task_cells_from_node_heap,
        ));
        if let Some(config) = io {
            // Several threads may drive this runtime in turn: no
            // single-issuer ring.
            let _ = shared
                .io
                .set(Driver::new(config, false).map_err(driver_error)?);
        }
        let handle = Handle {
            inner: Scheduler::CurrentThread(shared),
        };
        Ok(Runtime::from_parts(
            handle,
            ThreadTracker::new(),
            Vec::new(),
        ))
    }

    fn build_multi_thread(
        &self,
        topology: Topology,
        nodes: &[Node],
        io: Option<IoConfig>,
    ) -> io::Result<Runtime> {
        let mut pools = Vec::with_capacity(nodes.len());
        let mut remotes = Vec::new();
        let mut locals: Vec<Local> = Vec::new();
        // The CPU set each worker is pinned to.
        let worker_cpus = worker_homes(&topology, nodes, self.worker_threads);
        for (pool_index, node) in nodes.iter().enumerate() {
            let n = self.worker_threads.unwrap_or(node.cpus().len()).max(1);
            let start = remotes.len();
            pools.push(NodePool::new(node.id(), start..start + n));
            for k in 0..n {
                let (local, steal) = queue::local();
                locals.push(local);
                remotes.push(Remote {
                    steal,
                    parker: Parker::new(),
                    inbox: SegQueue::new(),
                    local_owned: OwnedTasks::new(1),
                    pool: pool_index,
                    index_in_pool: k,
                    metrics: WorkerMetrics::default(),
                });
            }
        }
        let remote_order: Box<[Box<[usize]>]> = pools
            .iter()
            .map(|p| {
                topology
                    .nodes_by_distance(p.node)
                    .into_iter()
                    .filter_map(|id| pools.iter().position(|q| q.node == id))
                    .collect::<Box<[usize]>>()
            })
            .collect();
        let steal_order = steal_orders(&pools, &worker_cpus);
        let blocking = self.blocking_pools(nodes);
        let homes = worker_cpus
            .iter()
            .zip(remotes.iter())
            .map(|(home, r)| WorkerHome {
                home: home.clone(),
                pool: r.pool,
            })
            .collect();
        let pool_cpus = nodes.iter().map(|n| n.cpus().clone()).collect();
        let affinity = Monitor::new(
            self.monitor_affinity,
            self.pin_workers,
            homes,
            pool_cpus,
            remote_order.clone(),
        )
        .with_memory(MemoryPlan::new(&topology));
        let shared = Arc::new(Shared::new(
            pools.into_boxed_slice(),
            remotes.into_boxed_slice(),
            self.sched.clone(),
            remote_order,
            steal_order,
            blocking,
            topology,
            affinity,
        ));
        if let Some(config) = io {
            let _ = shared.io_config.set(config);
        }
        let handle = Handle {
            inner: Scheduler::MultiThread(shared.clone()),
        };
        let tracker = ThreadTracker::new();
        let (started_tx, started_rx) = mpsc::channel();
        let mut threads = Vec::with_capacity(locals.len());
        for (index, local) in locals.into_iter().enumerate() {
            let cpus = worker_cpus[index].clone();
            let name = (self.thread_name)();
            let mut builder = std::thread::Builder::new().name(name);
            if let Some(size) = self.thread_stack_size {
                builder = builder.stack_size(size);
            }
            let start = WorkerStart {
                shared: shared.clone(),
                handle: handle.clone(),
                index,
                local,
                cpus: self.pin_workers.then_some(cpus),
                on_start: self.on_thread_start.clone(),
                on_stop: self.on_thread_stop.clone(),
                started: started_tx.clone(),
                exit: tracker.register(),
                io,
            };
            match builder.spawn(move || start.run()) {
                Ok(thread) => threads.push(thread),
                Err(e) => {
                    let rt = Runtime::from_parts(handle, tracker, threads);
                    drop(rt);
                    return Err(io::Error::new(
                        e.kind(),
                        format!("numa_rt: cannot start worker thread {index}: {e}"),
                    ));
                }
            }
        }
        drop(started_tx);
        let rt = Runtime::from_parts(handle, tracker, threads);
        for _ in 0..shared.remotes.len() {
            match started_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    drop(rt);
                    return Err(e);
                }
                Err(_) => {
                    drop(rt);
                    return Err(io::Error::other(
                        "numa_rt: a worker thread exited while starting",
                    ));
                }
            }
        }
        Ok(rt)
    }
}

/// The CPU set each worker of `nodes` is pinned to, pool by pool: worker
/// `k` of a node takes the cache domain of the node's `k`-th CPU.
pub(super) fn worker_homes(
    topology: &Topology,
    nodes: &[Node],
    per_node: Option<usize>,
) -> Vec<CpuSet> {
    let mut homes = Vec::new();
    for node in nodes {
        let cpus: Vec<u32> = node.cpus().iter().collect();
        let n = per_node.unwrap_or(cpus.len()).max(1);
        for k in 0..n {
            homes.push(match cpus.get(k % cpus.len().max(1)) {
                Some(&cpu) => cache_domain_of(topology, node, cpu),
                None => node.cpus().clone(),
            });
        }
    }
    homes
}

/// The CPUs sharing `cpu`'s last-level cache inside `node`, or the whole
/// node when the topology has no cache domains.
fn cache_domain_of(topology: &Topology, node: &Node, cpu: u32) -> CpuSet {
    topology
        .cache_domains()
        .iter()
        .find(|d| d.contains(cpu))
        .map(|d| d.intersection(node.cpus()))
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| node.cpus().clone())
}

/// For each worker: its siblings sharing its cache domain, then the rest of
/// its node, each group starting after the worker itself so thieves spread
/// over victims.
fn steal_orders(pools: &[NodePool], worker_cpus: &[CpuSet]) -> Box<[Box<[usize]>]> {
    let mut orders = vec![Box::<[usize]>::default(); worker_cpus.len()];
    for pool in pools {
        let members: Vec<usize> = pool.workers.clone().collect();
        for (pos, &w) in members.iter().enumerate() {
            let rotated = members[pos + 1..].iter().chain(&members[..pos]).copied();
            let (near, far): (Vec<usize>, Vec<usize>) =
                rotated.partition(|&o| worker_cpus[o] == worker_cpus[w]);
            orders[w] = near.into_iter().chain(far).collect();
        }
    }
    orders.into_boxed_slice()
}

/// The parker other threads use to wake this worker.
fn shared_parker(worker: &WorkerContext) -> &Parker {
    worker.parker()
}

fn driver_error(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), DriverError(e))
}

/// An I/O driver that could not be created, as the source of the build's
/// error: the build tells it from its other failures by this type.
#[derive(Debug)]
struct DriverError(io::Error);

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "numa_rt: cannot create the I/O driver: {}", self.0)
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Whether the build failed because the kernel refused a driver's ring
/// (`EPERM`, `ENOMEM`, ...: see [`refused`](crate::io::config::refused)).
fn ring_refused(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<DriverError>())
        .is_some_and(|d| crate::io::config::refused(&d.0))
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("numa_rt: {}", msg.into()),
    )
}

/// A worker known to the affinity monitor by its thread id, until dropped
/// (before the thread exits, so a recycled id is never pinned).
struct Monitored {
    shared: Arc<Shared>,
    index: usize,
}

impl Monitored {
    fn register(shared: Arc<Shared>, index: usize) -> Monitored {
        shared.affinity.register(index);
        Monitored { shared, index }
    }
}

impl Drop for Monitored {
    fn drop(&mut self) {
        self.shared.affinity.deregister(self.index);
    }
}

/// Everything a worker thread needs to start.
struct WorkerStart {
    shared: Arc<Shared>,
    handle: Handle,
    index: usize,
    local: Local,
    cpus: Option<CpuSet>,
    on_start: Option<Callback>,
    on_stop: Option<Callback>,
    started: mpsc::Sender<io::Result<()>>,
    exit: ExitGuard,
    io: Option<IoConfig>,
}

impl WorkerStart {
    fn run(self) {
        let WorkerStart {
            shared,
            handle,
            index,
            local,
            cpus,
            on_start,
            on_stop,
            started,
            exit,
            io,
        } = self;
        let node = shared.pools[shared.remotes[index].pool].node;
        crate::locality::alloc_hook::enter_worker(node);
        if let Some(cpus) = &cpus {
            if let Err(e) = blocking::pin_current_thread(cpus) {
                let _ = started.send(Err(io::Error::new(
                    e.kind(),
                    format!(
                        "numa_rt: cannot pin worker {index} of {node} to CPUs {cpus}: {e} \
                         (use Builder::pin_workers(false) to run unpinned)"
                    ),
                )));
                return;
            }
        }
        // The worker's I/O driver, made on its own thread (the only one
        // that will submit to it).
        let driver = match io.map(|c| Driver::new(c, true)).transpose() {
            Ok(d) => d,
            Err(e) => {
                let _ = started.send(Err(driver_error(e)));
                return;
            }
        };
        if let Some(d) = &driver {
            shared
                .worker_drivers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(d.downgrade());
        }
        let _monitored = Monitored::register(shared.clone(), index);
        let _ = started.send(Ok(()));
        drop(started);
        if let Some(f) = &on_start {
            // A panicking hook must not take the worker down.
            let _ = catch_unwind(AssertUnwindSafe(|| f()));
        }
        {
            let worker = WorkerContext::new(shared, index, local);
            let Ok(_runtime) = context::enter_runtime(handle, Some(node)) else {
                return;
            };
            let _worker = context::set_worker(&worker);
            let _io = driver.as_ref().map(|d| {
                shared_parker(&worker).attach_io(d.unparker());
                crate::io::driver::enter(d.clone())
            });
            worker.run();
            if let Some(d) = &driver {
                // Cancel what is in flight and let the kernel finish with
                // its buffers before the ring goes.
                d.shutdown(Duration::from_secs(1));
            }
        }
        if let Some(f) = &on_stop {
            let _ = catch_unwind(AssertUnwindSafe(|| f()));
        }
        drop(exit);
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("kind", &self.kind)
            .field("worker_threads", &self.worker_threads)
            .field("nodes", &self.nodes)
            .field("pools", &self.pools)
            .field("pin_workers", &self.pin_workers)
            .field("monitor_affinity", &self.monitor_affinity)
            .field("sched", &self.sched)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refused_ring_makes_auto_fall_back() {
        let enomem = driver_error(io::Error::from_raw_os_error(libc::ENOMEM));
        assert!(ring_refused(&enomem));
        assert_eq!(enomem.kind(), io::ErrorKind::OutOfMemory);
        assert!(
            enomem
                .to_string()
                .starts_with("numa_rt: cannot create the I/O driver: "),
            "{enomem}"
        );
        assert!(ring_refused(&driver_error(io::Error::from_raw_os_error(
            libc::EPERM
        ))));
        // No descriptors left: epoll would need them as well.
        assert!(!ring_refused(&driver_error(io::Error::from_raw_os_error(
            libc::EMFILE
        ))));
        // The same errno from another step of the build.
        assert!(!ring_refused(&io::Error::from_raw_os_error(libc::ENOMEM)));
        assert!(!ring_refused(&invalid("worker_threads must be at least 1")));
    }
}
