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
//! [`CHECK_EVERY`] one `sched_getaffinity` of the main thread by whichever
//! worker gets there first. Workers that sleep are pinned by the checking
//! worker through their thread id, so the monitor never wakes them. While
//! every worker sleeps nothing is checked; the first to wake catches up.
//!
//! With `Builder::pin_workers(false)` the monitor only counts changes;
//! with `Builder::monitor_affinity(false)` it does nothing.

use std::io;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::topology::CpuSet;

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

/// What the monitor knows, behind one lock.
struct State {
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
            changes: AtomicU64::new(0),
            repins: AtomicU64::new(0),
            off_cpu: AtomicU64::new(0),
        }
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

    /// Reads the allowed set and, when it changed, pins every worker again.
    fn check(&self, st: &mut State) {
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
