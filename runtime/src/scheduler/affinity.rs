//! The affinity monitor: keeps the workers' pinning in step with the CPUs
//! the process may use while the runtime runs.
//!
//! # What "the process's allowed CPUs" means
//!
//! A thread's affinity is per thread: `taskset -p PID` changes only the
//! main thread, `taskset -a -p PID` every thread, and an edit of the
//! cgroup's `cpuset.cpus` (its `cpuset.cpus.effective`) every thread of the
//! cgroup. The monitor takes the **main thread's mask** (thread id = the
//! process id) as the process's allowed set: it is what `taskset -p`
//! changes, and the kernel keeps it inside the cgroup's effective cpuset,
//! so cgroup edits show in it too. The set only limits the CPUs chosen at
//! build time; CPUs that come online or are added later get no new worker.
//!
//! # What it does
//!
//! Each worker keeps its *home*: the CPUs it was pinned to at build time.
//! When the allowed set changes, every worker is pinned again, to
//! - its home CPUs that are still allowed, else
//! - the allowed CPUs of its pool (the rest of its node), else
//! - the allowed CPUs of the nearest pool that has some, else
//! - whatever is allowed.
//!
//! A worker never changes pool: its queues, its node and its tasks stay
//! where they are, so no task moves and none is lost or run twice; only the
//! CPU the thread runs on changes. CPUs that come back are used again
//! (homes are recomputed from scratch each time).
//!
//! Every worker is pinned again after each change, even one whose set did
//! not change: older kernels reset the masks of a cgroup's threads to the
//! whole cpuset when it widens.
//!
//! A worker also samples, every [`SAMPLE_EVERY`], the CPU it runs on
//! (`sched_getcpu`) and its own mask. A CPU outside its set counts as an
//! off-CPU sample; a mask that is not the one the monitor set means someone
//! changed this thread alone (`taskset -p TID`, `taskset -a`): the worker
//! pins itself back to its set and counts an affinity change.
//!
//! # Cost
//!
//! Checks run from a worker's maintenance tick (every few dozen polls) and
//! before it parks, never per poll: a clock read there, and at most every
//! [`CHECK_EVERY`] one `sched_getaffinity` of the main thread and one read
//! of `/proc/self/status` (a few microseconds) by whichever worker gets
//! there first. Workers that sleep are pinned by the checking
//! worker through their thread id, so the monitor never wakes them. While
//! every worker sleeps nothing is checked; the first to wake catches up.
//!
//! # Allowed memory nodes
//!
//! The same check reads the process's allowed memory nodes
//! (`Mems_allowed_list` in `/proc/self/status`, which follows the cgroup's
//! `cpuset.mems`). When they change, the change is counted
//! (`RuntimeMetrics::mems_change_count`) and every node of the topology
//! whose memory the process may no longer use gets a fallback in the
//! allocator (`numa_rt_alloc::set_node_fallback`): the nearest node (by
//! the topology's distances) that has memory and is still allowed. From
//! then on
//! - the global allocator serves threads of that node, workers included,
//!   from the fallback node, so its new segments are bound there rather
//!   than to a node `mbind` refuses;
//! - task cells of a pool on that node come from the fallback node's heap;
//! - explicit requests for the node (`NodeBox::new_on`, `NodeVec`,
//!   `NodeHeap`) fail with `AllocError::NoMemory` instead of returning
//!   memory from another node.
//!
//! When the node is allowed again its fallback is removed and it is used
//! again. Nothing already allocated moves: blocks and task cells stay
//! where they were placed (the kernel moves pages of a narrowed cpuset
//! only when its `cpuset.memory_migrate` is set). Fallbacks are process
//! wide; a runtime removes the ones it set when it is dropped.
//!
//! With `Builder::pin_workers(false)` the monitor only counts CPU changes
//! (memory nodes are still followed); with
//! `Builder::monitor_affinity(false)` it does nothing.

use std::io;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::topology::{CpuSet, NodeSet, Topology};
use crate::NodeId;

/// Least time between two checks of the allowed set.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Least time between two samples of a worker's CPU and mask.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// One worker as the monitor sees it.
pub(crate) struct WorkerHome {
    /// The CPUs it was pinned to at build time.
    pub(crate) home: CpuSet,
    /// The index of its pool.
    pub(crate) pool: usize,
}

/// One node of the topology, as the memory half of the monitor sees it.
#[derive(Debug)]
struct MemoryNode {
    id: NodeId,
    /// The real node backing its memory (itself unless emulated).
    real: NodeId,
    /// Whether it has memory to fall back to.
    has_memory: bool,
    /// The other nodes, as indices into [`MemoryPlan::nodes`], nearest
    /// first.
    nearest: Box<[usize]>,
}

/// The runtime's nodes and their distances: what picks each node's
/// fallback when the allowed memory nodes change.
#[derive(Debug)]
pub(crate) struct MemoryPlan {
    nodes: Box<[MemoryNode]>,
}

impl MemoryPlan {
    /// The plan for `topology`'s nodes.
    pub(crate) fn new(topology: &Topology) -> MemoryPlan {
        let nodes = topology
            .nodes()
            .iter()
            .map(|n| (n.id(), n.memory_node(), n.memory_bytes() > 0));
        MemoryPlan::from_nodes(nodes, |a, b| topology.distance(a, b))
    }

    /// The plan for `(node, real node, has memory)` entries under
    /// `distance`.
    fn from_nodes(
        nodes: impl IntoIterator<Item = (NodeId, NodeId, bool)>,
        distance: impl Fn(NodeId, NodeId) -> u32,
    ) -> MemoryPlan {
        let nodes: Vec<(NodeId, NodeId, bool)> = nodes.into_iter().collect();
        let plan = nodes
            .iter()
            .enumerate()
            .map(|(i, &(id, real, has_memory))| {
                let mut nearest: Vec<usize> = (0..nodes.len()).filter(|&j| j != i).collect();
                nearest.sort_by_key(|&j| (distance(id, nodes[j].0), nodes[j].0));
                MemoryNode {
                    id,
                    real,
                    has_memory,
                    nearest: nearest.into_boxed_slice(),
                }
            })
            .collect();
        MemoryPlan { nodes: plan }
    }

    /// Each node's fallback when the process may use the real nodes in
    /// `allowed`: `None` for a node still allowed (or with nothing allowed
    /// to fall back to), else the nearest allowed node with memory.
    fn fallbacks(&self, allowed: &NodeSet) -> Vec<Option<NodeId>> {
        let usable = |n: &MemoryNode| allowed.contains_node(n.real);
        self.nodes
            .iter()
            .map(|n| {
                if usable(n) {
                    return None;
                }
                n.nearest
                    .iter()
                    .map(|&j| &self.nodes[j])
                    .find(|m| m.has_memory && usable(m))
                    .map(|m| m.id)
            })
            .collect()
    }
}

/// Where the monitor reads the allowed memory nodes from (replaced in
/// tests).
type MemsReader = fn() -> io::Result<NodeSet>;

/// What the monitor knows, behind one lock.
struct State {
    /// The allowed memory nodes at the last check (`None` before a
    /// successful read, or without a [`MemoryPlan`]).
    mems: Option<NodeSet>,
    /// The fallback this monitor set in the allocator for each node of
    /// its [`MemoryPlan`].
    fallbacks: Vec<Option<NodeId>>,
    /// The allowed set at the last check (`None` before a successful read).
    allowed: Option<CpuSet>,
    /// Each worker's current set.
    targets: Vec<CpuSet>,
    /// Each worker's mask as the kernel reported it after the monitor (or
    /// the worker's start) last set it; `None` when unknown.
    applied: Vec<Option<CpuSet>>,
    /// Each running worker's thread id (0 before it starts and after it
    /// exits, so a recycled id is never pinned).
    tids: Vec<libc::pid_t>,
}

/// See the module docs.
pub(crate) struct Monitor {
    /// Whether the monitor looks at all (`Builder::monitor_affinity`).
    enabled: bool,
    pin: bool,
    workers: Box<[WorkerHome]>,
    /// Each pool's CPUs at build time.
    pool_cpus: Box<[CpuSet]>,
    /// For each pool, the other pools nearest first.
    pool_order: Box<[Box<[usize]>]>,
    start: Instant,
    /// Milliseconds since `start` of the next check.
    next_check: AtomicU64,
    /// Milliseconds since `start` of each worker's next sample.
    next_sample: Box<[AtomicU64]>,
    state: Mutex<State>,
    /// The runtime's nodes, for memory fallbacks (`None`: memory nodes are
    /// not followed).
    memory: Option<MemoryPlan>,
    mems_reader: MemsReader,
    mems_changes: AtomicU64,
    changes: AtomicU64,
    repins: AtomicU64,
    off_cpu: AtomicU64,
}

impl Monitor {
    /// A monitor for `workers` (pinned when `pin`; not looking at all
    /// unless `enabled`); the allowed set is read now, so a change before
    /// the first check counts.
    pub(crate) fn new(
        enabled: bool,
        pin: bool,
        workers: Vec<WorkerHome>,
        pool_cpus: Vec<CpuSet>,
        pool_order: Box<[Box<[usize]>]>,
    ) -> Monitor {
        let n = workers.len();
        let state = State {
            mems: None,
            fallbacks: Vec::new(),
            allowed: process_allowed().ok(),
            targets: workers.iter().map(|w| w.home.clone()).collect(),
            applied: vec![None; n],
            tids: vec![0; n],
        };
        Monitor {
            enabled,
            pin,
            workers: workers.into_boxed_slice(),
            pool_cpus: pool_cpus.into_boxed_slice(),
            pool_order,
            start: Instant::now(),
            next_check: AtomicU64::new(0),
            next_sample: (0..n).map(|_| AtomicU64::new(0)).collect(),
            state: Mutex::new(state),
            memory: None,
            mems_reader: process_allowed_mems,
            mems_changes: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            repins: AtomicU64::new(0),
            off_cpu: AtomicU64::new(0),
        }
    }

    /// Makes the monitor follow the allowed memory nodes for the nodes of
    /// `plan`; the allowed set is read now (and fallbacks set for nodes
    /// already outside it), so a change before the first check counts.
    pub(crate) fn with_memory(mut self, plan: MemoryPlan) -> Monitor {
        if !self.enabled {
            return self;
        }
        self.memory = Some(plan);
        let mut st = self.lock();
        self.check_mems(&mut st);
        drop(st);
        self
    }

    /// Replaces where the allowed memory nodes are read from.
    #[cfg(test)]
    fn with_mems_reader(mut self, reader: MemsReader) -> Monitor {
        self.mems_reader = reader;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements: a panic while it
        // is held (an allocation failure) leaves nothing half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Called by worker `worker` on its own thread once it is pinned.
    pub(crate) fn register(&self, worker: usize) {
        let tid = current_tid();
        let mask = thread_affinity(0).ok();
        let mut st = self.lock();
        st.tids[worker] = tid;
        st.applied[worker] = mask;
    }

    /// Called by worker `worker` on its own thread before it exits.
    pub(crate) fn deregister(&self, worker: usize) {
        self.lock().tids[worker] = 0;
    }

    /// The cheap hook: called by worker `worker` on its own thread from its
    /// maintenance tick and before it parks.
    pub(crate) fn tick(&self, worker: usize) {
        if !self.enabled {
            return;
        }
        let now = self.now_ms();
        let due = self.next_check.load(Relaxed);
        if now >= due
            && self
                .next_check
                .compare_exchange(due, now + CHECK_EVERY.as_millis() as u64, Relaxed, Relaxed)
                .is_ok()
        {
            let mut st = self.lock();
            self.check(&mut st);
        }
        let slot = &self.next_sample[worker];
        if self.pin && now >= slot.load(Relaxed) {
            slot.store(now + SAMPLE_EVERY.as_millis() as u64, Relaxed);
            self.sample(worker);
        }
    }

    /// Reads the allowed memory nodes and CPUs and follows their changes.
    fn check(&self, st: &mut State) {
        self.check_mems(st);
        self.check_cpus(st);
    }

    /// Reads the allowed memory nodes and, when they changed, gives each
    /// node the process may no longer use a fallback in the allocator (and
    /// takes it away from nodes allowed again).
    fn check_mems(&self, st: &mut State) {
        let Some(plan) = &self.memory else {
            return;
        };
        let Ok(mems) = (self.mems_reader)() else {
            return;
        };
        if st.mems.as_ref() == Some(&mems) || mems.is_empty() {
            return;
        }
        if st.mems.is_some() {
            self.mems_changes.fetch_add(1, Relaxed);
        }
        st.fallbacks.resize(plan.nodes.len(), None);
        for (i, fallback) in plan.fallbacks(&mems).into_iter().enumerate() {
            // A node number the allocator cannot index keeps no fallback;
            // it is recorded as none, so the next change tries again.
            if st.fallbacks[i] != fallback
                && numa_rt_alloc::set_node_fallback(plan.nodes[i].id, fallback).is_ok()
            {
                st.fallbacks[i] = fallback;
            }
        }
        st.mems = Some(mems);
    }

    /// Reads the allowed CPUs and, when they changed, pins every worker
    /// again.
    fn check_cpus(&self, st: &mut State) {
        let Ok(allowed) = process_allowed() else {
            // The main thread is gone (a process whose main thread exited
            // early): keep the last plan.
            return;
        };
        if st.allowed.as_ref() == Some(&allowed) || allowed.is_empty() {
            return;
        }
        if st.allowed.is_some() {
            self.changes.fetch_add(1, Relaxed);
        }
        st.allowed = Some(allowed.clone());
        if !self.pin {
            return;
        }
        for w in 0..self.workers.len() {
            let target = self.plan(w, &allowed);
            if target != st.targets[w] {
                self.repins.fetch_add(1, Relaxed);
                st.targets[w] = target;
            }
            let tid = st.tids[w];
            if tid != 0 {
                // A failure (the thread is exiting, or the set changed again
                // under us) leaves `applied` unknown; the worker's next
                // sample or the next check repairs it.
                st.applied[w] = set_thread_affinity(tid, &st.targets[w])
                    .and_then(|()| thread_affinity(tid))
                    .ok();
            }
        }
    }

    /// Worker `worker`'s CPU set under `allowed` (see the module docs).
    fn plan(&self, worker: usize, allowed: &CpuSet) -> CpuSet {
        let w = &self.workers[worker];
        let home = w.home.intersection(allowed);
        if !home.is_empty() {
            return home;
        }
        let pools = std::iter::once(w.pool).chain(self.pool_order[w.pool].iter().copied());
        for pool in pools {
            let cpus = self.pool_cpus[pool].intersection(allowed);
            if !cpus.is_empty() {
                return cpus;
            }
        }
        allowed.clone()
    }

    /// Samples worker `worker`'s CPU and mask on its own thread.
    fn sample(&self, worker: usize) {
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        let mask = thread_affinity(0).ok();
        let mut st = self.lock();
        if let Ok(cpu) = u32::try_from(cpu) {
            if !st.targets[worker].contains(cpu) {
                self.off_cpu.fetch_add(1, Relaxed);
            }
        }
        if mask.is_none() || mask == st.applied[worker] {
            return;
        }
        // Either the allowed set changed (and the check has not run yet) or
        // this thread's mask was changed from outside.
        self.check(&mut st);
        if mask == st.applied[worker] {
            return;
        }
        self.changes.fetch_add(1, Relaxed);
        let target = st.targets[worker].clone();
        if set_thread_affinity(0, &target).is_ok() {
            self.repins.fetch_add(1, Relaxed);
        }
        st.applied[worker] = thread_affinity(0).ok();
    }

    /// Changes of the allowed set (or of a worker's own mask) seen.
    pub(crate) fn changes(&self) -> u64 {
        self.changes.load(Relaxed)
    }

    /// Changes of the process's allowed memory nodes seen.
    pub(crate) fn mems_changes(&self) -> u64 {
        self.mems_changes.load(Relaxed)
    }

    /// Times a worker was pinned to a different set.
    pub(crate) fn repins(&self) -> u64 {
        self.repins.load(Relaxed)
    }

    /// Samples that found a worker on a CPU outside its set.
    pub(crate) fn off_cpu_samples(&self) -> u64 {
        self.off_cpu.load(Relaxed)
    }

    /// Worker `worker`'s current set, `None` when workers are not pinned.
    pub(crate) fn worker_cpus(&self, worker: usize) -> Option<CpuSet> {
        self.pin.then(|| self.lock().targets[worker].clone())
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let (Some(plan), st) = (&self.memory, self.lock()) else {
            return;
        };
        for (node, fallback) in plan.nodes.iter().zip(&st.fallbacks) {
            if fallback.is_some() {
                // Cannot fail: the number was accepted when it was set.
                let _ = numa_rt_alloc::set_node_fallback(node.id, None);
            }
        }
    }
}

/// The process's allowed memory nodes: `Mems_allowed_list` of
/// `/proc/self/status`, which follows the cgroup's `cpuset.mems`.
pub(crate) fn process_allowed_mems() -> io::Result<NodeSet> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    parse_mems_allowed(&status)
}

/// The `Mems_allowed_list` line of a `/proc/PID/status` text.
fn parse_mems_allowed(status: &str) -> io::Result<NodeSet> {
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Mems_allowed_list:"))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "/proc/self/status has no Mems_allowed_list line",
            )
        })?;
    list.trim().parse().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad Mems_allowed_list {:?}: {e}", list.trim()),
        )
    })
}

/// The calling thread's id.
fn current_tid() -> libc::pid_t {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// The process's allowed CPUs: the main thread's mask (see the module
/// docs).
pub(crate) fn process_allowed() -> io::Result<CpuSet> {
    // SAFETY: getpid has no preconditions and cannot fail.
    thread_affinity(unsafe { libc::getpid() })
}

/// Bits in the largest mask asked of the kernel (the topology refuses CPU
/// numbers above 65535).
const MAX_MASK_BITS: usize = 1 << 16;

/// The mask of thread `tid` (0: the calling thread).
pub(crate) fn thread_affinity(tid: libc::pid_t) -> io::Result<CpuSet> {
    let bits = libc::c_ulong::BITS as usize;
    let mut words = 1024 / bits;
    loop {
        let mut mask = vec![0 as libc::c_ulong; words];
        let bytes = std::mem::size_of_val(mask.as_slice());
        // SAFETY: `mask` is a live, writable buffer of `bytes` bytes, the
        // layout the kernel writes (unsigned longs, bit i of word i / BITS
        // for CPU i).
        let rc = unsafe { libc::sched_getaffinity(tid, bytes, mask.as_mut_ptr().cast()) };
        if rc == 0 {
            let mut set = CpuSet::new();
            for (i, &word) in mask.iter().enumerate() {
                for b in 0..bits {
                    if word & (1 << b) != 0 {
                        set.insert((i * bits + b) as u32);
                    }
                }
            }
            return Ok(set);
        }
        let e = io::Error::last_os_error();
        // EINVAL: the kernel's mask is larger than the buffer.
        if e.raw_os_error() != Some(libc::EINVAL) || words * bits >= MAX_MASK_BITS {
            return Err(e);
        }
        words *= 2;
    }
}

/// Pins thread `tid` (0: the calling thread) to `cpus`.
pub(crate) fn set_thread_affinity(tid: libc::pid_t, cpus: &CpuSet) -> io::Result<()> {
    let Some(last) = cpus.last() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot pin a thread to an empty CPU set",
        ));
    };
    let bits = libc::c_ulong::BITS;
    let mut mask = vec![0 as libc::c_ulong; (last / bits + 1) as usize];
    for cpu in cpus {
        mask[(cpu / bits) as usize] |= 1 << (cpu % bits);
    }
    let bytes = std::mem::size_of_val(mask.as_slice());
    // SAFETY: `mask` is a live, initialised buffer of `bytes` bytes in the
    // kernel's layout; a bad `tid` is an error the kernel reports.
    let rc = unsafe { libc::sched_setaffinity(tid, bytes, mask.as_ptr().cast()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> CpuSet {
        s.parse().unwrap()
    }

    /// Two pools of two workers: pool 0 on CPUs 0-3 (homes 0-1, 2-3),
    /// pool 1 on 4-7 (homes 4-5, 6-7).
    fn monitor() -> Monitor {
        let homes = ["0-1", "2-3", "4-5", "6-7"];
        let workers = homes
            .iter()
            .enumerate()
            .map(|(i, h)| WorkerHome {
                home: set(h),
                pool: i / 2,
            })
            .collect();
        let order: Box<[Box<[usize]>]> = vec![vec![1].into(), vec![0].into()].into();
        Monitor::new(true, true, workers, vec![set("0-3"), set("4-7")], order)
    }

    #[test]
    fn plans_follow_home_then_node_then_nearest_node() {
        let m = monitor();
        assert_eq!(m.plan(0, &set("0-7")), set("0-1"));
        assert_eq!(m.plan(0, &set("1-7")), set("1"));
        // Home gone: the rest of the node.
        assert_eq!(m.plan(0, &set("3-7")), set("3"));
        // The whole node gone: the nearest node's CPUs.
        assert_eq!(m.plan(1, &set("5,7")), set("5,7"));
        assert_eq!(m.plan(2, &set("0")), set("0"));
        // Nothing of any pool left: whatever is allowed.
        assert_eq!(m.plan(3, &set("9")), set("9"));
    }

    fn nodes(s: &str) -> NodeSet {
        s.parse().unwrap()
    }

    fn id(n: u32) -> NodeId {
        NodeId::new(n)
    }

    /// Nodes 40-43 (numbers no other test uses: fallbacks are process
    /// wide): 40 and 41 close, 42 and 43 close, 43 without memory.
    fn plan() -> MemoryPlan {
        let entries = (40..44).map(|n| (id(n), id(n), n != 43));
        MemoryPlan::from_nodes(entries, |a, b| match (a.index(), b.index()) {
            (x, y) if x == y => 10,
            (x, y) if x / 2 == y / 2 => 12,
            _ => 20,
        })
    }

    #[test]
    fn fallbacks_are_the_nearest_allowed_nodes_with_memory() {
        let p = plan();
        assert_eq!(p.fallbacks(&nodes("40-43")), vec![None; 4]);
        assert_eq!(
            p.fallbacks(&nodes("41-43")),
            vec![Some(id(41)), None, None, None]
        );
        // Both near nodes gone: the nearer far one with memory (42 and 43
        // tie; 43 has none).
        assert_eq!(
            p.fallbacks(&nodes("42-43")),
            vec![Some(id(42)), Some(id(42)), None, None]
        );
        assert_eq!(
            p.fallbacks(&nodes("43")),
            vec![None, None, None, None],
            "nothing with memory is allowed: no fallback to give"
        );
        assert_eq!(
            p.fallbacks(&nodes("40")),
            vec![None, Some(id(40)), Some(id(40)), Some(id(40))]
        );
    }

    #[test]
    fn plans_of_emulated_nodes_follow_their_real_node() {
        let topo = Topology::synthetic_over(
            &Topology::single_node("0-1".parse().unwrap(), 1 << 30),
            &crate::topology::Synthetic::new(2, 1),
        )
        .unwrap();
        let p = MemoryPlan::new(&topo);
        assert_eq!(p.nodes.len(), 2);
        assert!(p.nodes.iter().all(|n| n.real == id(0)));
        assert_eq!(p.fallbacks(&nodes("0")), vec![None, None]);
        assert_eq!(p.fallbacks(&nodes("1")), vec![None, None]);
    }

    /// What the injected reader returns.
    static MEMS: Mutex<&str> = Mutex::new("40-43");

    fn read_mems() -> io::Result<NodeSet> {
        Ok(nodes(&MEMS.lock().unwrap()))
    }

    #[test]
    fn allowed_memory_changes_set_and_clear_allocator_fallbacks() {
        *MEMS.lock().unwrap() = "40-43";
        let m = monitor().with_mems_reader(read_mems).with_memory(plan());
        assert_eq!(m.mems_changes(), 0);
        m.check(&mut m.lock());
        assert_eq!(m.mems_changes(), 0, "no change yet");
        assert_eq!(numa_rt_alloc::node_fallback(id(40)), None);

        // cpuset.mems narrowed to 42-43.
        *MEMS.lock().unwrap() = "42-43";
        m.check(&mut m.lock());
        assert_eq!(m.mems_changes(), 1);
        assert_eq!(numa_rt_alloc::node_fallback(id(40)), Some(id(42)));
        assert_eq!(numa_rt_alloc::node_fallback(id(41)), Some(id(42)));
        assert_eq!(numa_rt_alloc::node_fallback(id(42)), None);
        assert_eq!(
            numa_rt_alloc::NodeHeap::new(id(40)).err(),
            Some(numa_rt_alloc::AllocError::NoMemory(id(40)))
        );
        // Read again, unchanged: not counted again.
        m.check(&mut m.lock());
        assert_eq!(m.mems_changes(), 1);

        // Node 41 comes back.
        *MEMS.lock().unwrap() = "41-43";
        m.check(&mut m.lock());
        assert_eq!(m.mems_changes(), 2);
        assert_eq!(numa_rt_alloc::node_fallback(id(40)), Some(id(41)));
        assert_eq!(numa_rt_alloc::node_fallback(id(41)), None);

        // The runtime goes away: its fallbacks go with it.
        drop(m);
        assert_eq!(numa_rt_alloc::node_fallback(id(40)), None);

        // A disabled monitor leaves the allocator alone.
        let off = Monitor::new(
            false,
            true,
            Vec::new(),
            Vec::new(),
            Box::<[Box<[usize]>]>::default(),
        )
        .with_mems_reader(read_mems)
        .with_memory(plan());
        assert_eq!(numa_rt_alloc::node_fallback(id(40)), None);
        assert_eq!(off.mems_changes(), 0);
    }

    #[test]
    fn mems_allowed_is_parsed_from_the_status_file() {
        let status = "Name:\tx\nCpus_allowed_list:\t0-3\nMems_allowed:\t00000003\nMems_allowed_list:\t0-1,4\n";
        assert_eq!(parse_mems_allowed(status).unwrap(), nodes("0-1,4"));
        let err = parse_mems_allowed("Name:\tx\n").unwrap_err();
        assert!(err.to_string().contains("Mems_allowed_list"), "{err}");
        assert!(parse_mems_allowed("Mems_allowed_list:\tzz\n").is_err());
        // This process may use some node.
        assert!(!process_allowed_mems().unwrap().is_empty());
    }

    #[test]
    fn masks_read_back_as_set() {
        let allowed = thread_affinity(0).unwrap();
        assert!(!allowed.is_empty());
        assert!(!process_allowed().unwrap().is_empty());
        let one = CpuSet::from_iter([allowed.last().unwrap()]);
        std::thread::spawn(move || {
            set_thread_affinity(0, &one).unwrap();
            assert_eq!(thread_affinity(0).unwrap(), one);
            assert_eq!(thread_affinity(current_tid()).unwrap(), one);
        })
        .join()
        .unwrap();
        assert!(set_thread_affinity(0, &CpuSet::new()).is_err());
    }

    #[test]
    fn a_worker_pinned_from_outside_pins_itself_back() {
        let allowed = thread_affinity(0).unwrap();
        let first = allowed.first().unwrap();
        let home = CpuSet::from_iter([first]);
        let m = Monitor::new(
            true,
            true,
            vec![WorkerHome {
                home: home.clone(),
                pool: 0,
            }],
            vec![allowed.clone()],
            vec![Box::<[usize]>::default()].into(),
        );
        std::thread::scope(|s| {
            s.spawn(|| {
                set_thread_affinity(0, &home).unwrap();
                m.register(0);
                // Someone widens this thread alone.
                set_thread_affinity(0, &allowed).unwrap();
                m.tick(0);
                assert_eq!(thread_affinity(0).unwrap(), home);
                m.deregister(0);
            });
        });
        if allowed.len() > 1 {
            assert_eq!(m.changes(), 1);
            assert_eq!(m.repins(), 1);
        }
        assert_eq!(m.worker_cpus(0), Some(home));
    }
}
