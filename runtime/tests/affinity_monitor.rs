//! The affinity monitor while tasks run: narrowing the process's CPUs to
//! one CPU moves every worker there, widening them brings each worker back
//! to its own CPUs, and every task of a steady stream completes exactly
//! once through both changes.
//!
//! The tests change the affinity of every thread of this test process, so
//! they hold one lock and restore the original mask even when they fail.

use std::fs;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use numa_rt_runtime::locality::Strict;
use numa_rt_runtime::runtime::{Builder, Pools, Runtime};
use numa_rt_runtime::topology::CpuSet;
use numa_rt_runtime::NodeId;

/// How long the monitor may take to follow a change (it checks every
/// 100 ms while a worker runs; the rest is slack for a loaded machine).
const BOUND: Duration = Duration::from_secs(3);

static SERIAL: Mutex<()> = Mutex::new(());

fn affinity(tid: libc::pid_t) -> io::Result<CpuSet> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live cpu_set_t of the size passed.
    let rc =
        unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as u32)
        // SAFETY: `cpu` is below CPU_SETSIZE, in bounds of `set`.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu as usize, &set) })
        .collect())
}

fn set_affinity(tid: libc::pid_t, cpus: &CpuSet) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for cpu in cpus {
        // SAFETY: test CPUs are below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu as usize, &mut set) };
    }
    // SAFETY: `set` is a live cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Thread ids of this process whose name is `name` (or all with `None`).
fn threads(name: Option<&str>) -> Vec<libc::pid_t> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/proc/self/task") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<libc::pid_t>() else {
            continue;
        };
        let comm = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if name.map_or(true, |n| comm.trim_end() == n) {
            out.push(tid);
        }
    }
    out
}

/// `taskset -a -p`: every thread of the process (threads that exit
/// meanwhile are skipped).
fn set_every_thread(cpus: &CpuSet) {
    for tid in threads(None) {
        match set_affinity(tid, cpus) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => panic!("sched_setaffinity({tid}, {cpus}): {e}"),
        }
    }
}

/// `taskset -p`: the main thread only.
fn set_main_thread(cpus: &CpuSet) {
    // SAFETY: getpid cannot fail.
    set_affinity(unsafe { libc::getpid() }, cpus).unwrap();
}

/// Puts every thread back on the original mask when the test ends.
struct Restore(CpuSet);

impl Drop for Restore {
    fn drop(&mut self) {
        // No panic here: this may run while a failed test unwinds.
        for tid in threads(None) {
            let _ = set_affinity(tid, &self.0);
        }
    }
}

/// Waits until `ok` holds, for at most `BOUND`; the time taken.
fn within_bound(what: &str, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < BOUND, "not within {BOUND:?}: {what}");
        thread::sleep(Duration::from_millis(5));
    }
    start.elapsed()
}

/// The sorted masks of the workers named `name`.
fn worker_masks(name: &str) -> Vec<CpuSet> {
    let mut masks: Vec<CpuSet> = threads(Some(name))
        .into_iter()
        .filter_map(|t| affinity(t).ok())
        .collect();
    masks.sort_by_key(|m| m.iter().collect::<Vec<_>>());
    masks
}

/// The sorted sets the runtime says its workers are pinned to.
fn planned(rt: &Runtime) -> Vec<CpuSet> {
    let m = rt.metrics();
    let mut sets: Vec<CpuSet> = (0..m.num_workers())
        .map(|w| m.worker_cpus(w).unwrap())
        .collect();
    sets.sort_by_key(|s| s.iter().collect::<Vec<_>>());
    sets
}

/// A stream of tasks spawned from a thread outside the runtime until
/// stopped; each task marks its own slot.
struct Stream {
    counts: Arc<Vec<AtomicU8>>,
    stop: Arc<AtomicBool>,
    producer: thread::JoinHandle<Vec<numa_rt_runtime::task::JoinHandle<()>>>,
}

const MAX_TASKS: usize = 400_000;

impl Stream {
    fn start(rt: &Runtime) -> Stream {
        let counts: Arc<Vec<AtomicU8>> =
            Arc::new((0..MAX_TASKS).map(|_| AtomicU8::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let handle = rt.handle().clone();
        let (c, s) = (counts.clone(), stop.clone());
        let producer = thread::spawn(move || {
            let mut joins = Vec::new();
            for i in 0..MAX_TASKS {
                if s.load(SeqCst) {
                    break;
                }
                let c = c.clone();
                joins.push(handle.spawn(async move {
                    numa_rt_runtime::task::yield_now().await;
                    c[i].fetch_add(1, SeqCst);
                }));
                if i % 500 == 499 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            joins
        });
        Stream {
            counts,
            stop,
            producer,
        }
    }

    /// Stops the stream, waits for every task, checks each ran once.
    fn finish(self, rt: &Runtime) -> usize {
        self.stop.store(true, SeqCst);
        let joins = self.producer.join().unwrap();
        let n = joins.len();
        rt.block_on(async move {
            for j in joins {
                j.await.unwrap();
            }
        });
        for (i, c) in self.counts.iter().enumerate() {
            let expected = u8::from(i < n);
            assert_eq!(c.load(SeqCst), expected, "task {i} of {n}");
        }
        n
    }
}

/// The CPU a task runs on when sent to `node` (strictly).
fn cpu_on(rt: &Runtime, node: NodeId) -> u32 {
    rt.block_on(async move {
        numa_rt_runtime::spawn_on(Strict(node), async {
            // SAFETY: sched_getcpu has no preconditions.
            unsafe { libc::sched_getcpu() as u32 }
        })
        .await
        .unwrap()
    })
}

/// Two allowed CPUs and the original mask, or `None` on a smaller machine.
fn two_cpus() -> Option<(u32, u32, CpuSet)> {
    let original = affinity(0).unwrap();
    let cpus: Vec<u32> = original.iter().take(2).collect();
    if cpus.len() < 2 {
        eprintln!("skipped: needs two allowed CPUs, have {original}");
        return None;
    }
    Some((cpus[0], cpus[1], original))
}

/// A builder for two single-worker pools, one on CPU `a` and one on CPU `b`.
fn pool_per_cpu(a: u32, b: u32) -> Builder {
    let mut builder = Builder::new_multi_thread();
    builder
        .pools(Pools::Domains(vec![
            CpuSet::from_iter([a]),
            CpuSet::from_iter([b]),
        ]))
        .worker_threads(1);
    builder
}

/// Narrows to `{b}` (every thread, or the main thread only), checks the
/// workers follow while the stream runs, widens again and checks they come
/// back to their build-time sets.
fn narrow_and_widen(rt: &Runtime, name: &str, b: u32, original: &CpuSet, every_thread: bool) {
    let homes = planned(rt);
    assert_eq!(worker_masks(name), homes, "pinned as planned at start");
    let only_b = CpuSet::from_iter([b]);
    let stream = Stream::start(rt);
    thread::sleep(Duration::from_millis(150));

    if every_thread {
        set_every_thread(&only_b);
    } else {
        set_main_thread(&only_b);
    }
    let took = within_bound("every worker pinned inside {b}", || {
        worker_masks(name).iter().all(|m| m.is_subset(&only_b))
            && planned(rt).iter().all(|m| m == &only_b)
    });
    eprintln!("narrowed in {took:?}");
    for node in rt.handle().nodes() {
        assert_eq!(cpu_on(rt, node), b, "a task on {node} runs on CPU {b}");
    }
    thread::sleep(Duration::from_millis(150));

    if every_thread {
        set_every_thread(original);
    } else {
        set_main_thread(original);
    }
    let took = within_bound("every worker back on its own CPUs", || {
        worker_masks(name) == homes && planned(rt) == homes
    });
    eprintln!("widened in {took:?}");
    thread::sleep(Duration::from_millis(100));
    let n = stream.finish(rt);
    assert!(n > 1_000, "the stream ran through the changes ({n} tasks)");

    let m = rt.metrics();
    assert!(
        m.affinity_change_count() >= 2,
        "changes seen: {}",
        m.affinity_change_count()
    );
}

#[test]
fn every_thread_narrowed_then_widened() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some((_, b, original)) = two_cpus() else {
        return;
    };
    let _restore = Restore(original.clone());
    let name = "affmon-all";
    // Default pools: one per node, a worker per CPU.
    let rt = Builder::new_multi_thread()
        .thread_name(name)
        .build()
        .unwrap();
    assert!(rt.metrics().num_workers() >= 2);
    narrow_and_widen(&rt, name, b, &original, true);
}

#[test]
fn main_thread_narrowed_moves_a_pool_to_its_nearest_pool() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some((a, b, original)) = two_cpus() else {
        return;
    };
    let _restore = Restore(original.clone());
    let name = "affmon-main";
    // One pool per CPU, so pool 0 loses all its CPUs to the narrowing and
    // its worker must run on pool 1's CPU; only the monitor moves it.
    let rt = pool_per_cpu(a, b).thread_name(name).build().unwrap();
    let pools = rt.handle().nodes();
    assert_eq!(pools.len(), 2);
    assert_eq!(cpu_on(&rt, pools[0]), a);
    narrow_and_widen(&rt, name, b, &original, false);
    assert_eq!(cpu_on(&rt, pools[0]), a, "pool 0 is back on CPU {a}");
    let m = rt.metrics();
    assert!(
        m.affinity_repin_count() >= 2,
        "{}",
        m.affinity_repin_count()
    );
}

#[test]
fn a_worker_pinned_from_outside_is_pinned_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some((a, b, original)) = two_cpus() else {
        return;
    };
    let _restore = Restore(original.clone());
    let name = "affmon-one";
    let rt = pool_per_cpu(a, b).thread_name(name).build().unwrap();
    let homes = planned(&rt);
    let stream = Stream::start(&rt);
    thread::sleep(Duration::from_millis(100));
    // `taskset -p TID` on one worker: widened to both CPUs.
    let tid = threads(Some(name))[0];
    set_affinity(tid, &original).unwrap();
    within_bound("the worker pinned itself back", || {
        worker_masks(name) == homes
    });
    stream.finish(&rt);
    let m = rt.metrics();
    assert!(m.affinity_change_count() >= 1);
    assert!(m.affinity_repin_count() >= 1);
}

#[test]
fn a_monitor_turned_off_leaves_the_workers_alone() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some((a, b, original)) = two_cpus() else {
        return;
    };
    let _restore = Restore(original.clone());
    let name = "affmon-off";
    let rt = pool_per_cpu(a, b)
        .monitor_affinity(false)
        .thread_name(name)
        .build()
        .unwrap();
    let homes = planned(&rt);
    let stream = Stream::start(&rt);
    set_main_thread(&CpuSet::from_iter([b]));
    thread::sleep(Duration::from_millis(400));
    assert_eq!(worker_masks(name), homes, "nobody moved the workers");
    set_main_thread(&original);
    stream.finish(&rt);
    assert_eq!(rt.metrics().affinity_change_count(), 0);
    assert_eq!(rt.metrics().affinity_repin_count(), 0);
}

/// This process in a cgroup v1 cpuset of its own, moved back to the
/// root cpuset and the cgroup removed when dropped.
struct OwnCpuset {
    root: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl OwnCpuset {
    fn create(cpus: &CpuSet) -> io::Result<OwnCpuset> {
        let root = std::path::PathBuf::from("/sys/fs/cgroup/cpuset");
        let mems = fs::read_to_string(root.join("cpuset.mems"))?;
        let dir = root.join(format!("numa-rt-test-{}", std::process::id()));
        fs::create_dir(&dir)?;
        let own = OwnCpuset { root, dir };
        fs::write(own.dir.join("cpuset.mems"), mems.trim())?;
        own.set_cpus(cpus)?;
        fs::write(own.dir.join("cgroup.procs"), std::process::id().to_string())?;
        Ok(own)
    }

    fn set_cpus(&self, cpus: &CpuSet) -> io::Result<()> {
        fs::write(self.dir.join("cpuset.cpus"), cpus.to_string())
    }

    fn set_mems(&self, mems: &str) -> io::Result<()> {
        fs::write(self.dir.join("cpuset.mems"), mems)
    }

    /// The memory nodes of the root cpuset.
    fn root_mems(&self) -> io::Result<Vec<u32>> {
        let list: CpuSet = fs::read_to_string(self.root.join("cpuset.mems"))?
            .trim()
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e}")))?;
        Ok(list.iter().collect())
    }
}

impl Drop for OwnCpuset {
    fn drop(&mut self) {
        let _ = fs::write(
            self.root.join("cgroup.procs"),
            std::process::id().to_string(),
        );
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Opt-in (`NUMA_RT_TEST_CGROUP=1`, as root on a machine with the cgroup
/// v1 cpuset hierarchy at /sys/fs/cgroup/cpuset): the process moves into a
/// cpuset of its own whose `cpuset.cpus` is narrowed to one CPU and widened
/// again. A v1 cpuset edit overwrites every thread's mask, so coming back
/// needs the monitor.
#[test]
fn cgroup_cpuset_edits_are_followed() {
    if std::env::var_os("NUMA_RT_TEST_CGROUP").is_none() {
        eprintln!("skipped: set NUMA_RT_TEST_CGROUP=1 to move this process into a cpuset");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some((a, b, original)) = two_cpus() else {
        return;
    };
    let _restore = Restore(original.clone());
    let cpuset = OwnCpuset::create(&original).unwrap();
    let name = "affmon-cg";
    let rt = pool_per_cpu(a, b).thread_name(name).build().unwrap();
    let homes = planned(&rt);
    let stream = Stream::start(&rt);
    thread::sleep(Duration::from_millis(100));
    let only_b = CpuSet::from_iter([b]);
    cpuset.set_cpus(&only_b).unwrap();
    let took = within_bound("workers inside the narrowed cpuset", || {
        worker_masks(name).iter().all(|m| m == &only_b) && planned(&rt).iter().all(|m| m == &only_b)
    });
    eprintln!("cpuset narrowed: followed in {took:?}");
    cpuset.set_cpus(&original).unwrap();
    let took = within_bound("workers back on their CPUs", || {
        worker_masks(name) == homes && planned(&rt) == homes
    });
    eprintln!("cpuset widened: followed in {took:?}");
    stream.finish(&rt);
    assert!(rt.metrics().affinity_change_count() >= 2);
    drop(rt);
    drop(cpuset);
}

/// Opt-in like the test above: the process's own cpuset has its
/// `cpuset.mems` narrowed to the first memory node and widened again. The
/// monitor counts both changes; while narrowed, explicit placement on the
/// other node is refused and that node's workers allocate from the first
/// node. On a one-node machine `cpuset.mems` cannot narrow (it may not be
/// empty and node 0 is all there is): the test then checks that writing
/// the same nodes again is not counted as a change.
#[test]
fn cgroup_mems_edits_are_followed() {
    if std::env::var_os("NUMA_RT_TEST_CGROUP").is_none() {
        eprintln!("skipped: set NUMA_RT_TEST_CGROUP=1 to move this process into a cpuset");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let original = affinity(0).unwrap();
    let _restore = Restore(original.clone());
    let cpuset = OwnCpuset::create(&original).unwrap();
    let mems = cpuset.root_mems().unwrap();
    let rt = Builder::new_multi_thread()
        .thread_name("affmon-mems")
        .build()
        .unwrap();
    let all = fs::read_to_string(cpuset.root.join("cpuset.mems")).unwrap();
    let stream = Stream::start(&rt);
    let [first, second, ..] = mems[..] else {
        cpuset.set_mems(all.trim()).unwrap();
        thread::sleep(Duration::from_millis(500));
        stream.finish(&rt);
        assert_eq!(rt.metrics().mems_change_count(), 0);
        eprintln!("one memory node ({all:?}): cpuset.mems cannot narrow here");
        return;
    };
    let (first, second) = (NodeId::new(first), NodeId::new(second));
    cpuset.set_mems(&first.index().to_string()).unwrap();
    let took = within_bound("the narrowed mems counted", || {
        rt.metrics().mems_change_count() >= 1
    });
    eprintln!("cpuset.mems narrowed: followed in {took:?}");
    assert_eq!(
        numa_rt_alloc::NodeBox::new_on(second, 1u64).err(),
        Some(numa_rt_alloc::AllocError::NoMemory(second))
    );
    assert_eq!(numa_rt_alloc::node_fallback(second), Some(first));
    cpuset.set_mems(all.trim()).unwrap();
    let took = within_bound("the widened mems counted", || {
        rt.metrics().mems_change_count() >= 2
    });
    eprintln!("cpuset.mems widened: followed in {took:?}");
    assert_eq!(numa_rt_alloc::node_fallback(second), None);
    assert!(numa_rt_alloc::NodeBox::new_on(second, 1u64).is_ok());
    stream.finish(&rt);
    drop(rt);
    drop(cpuset);
}
