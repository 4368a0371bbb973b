//! One node's pool of blocking threads.

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use std::{fmt, io};

use super::affinity::pin_current_thread;
use super::{Config, SpawnError};

/// A closure queued on a [`BlockingPool`].
pub(crate) struct Job {
    run: Box<dyn FnOnce() + Send + 'static>,
    /// Runs even when the pool shuts down before it started (file writes
    /// that must not be lost); other jobs are dropped unrun.
    mandatory: bool,
}

impl Job {
    /// Runs the job; a panic is caught and discarded, because whoever made
    /// the job reports its outcome (the task cell records panics itself).
    fn run(self) {
        let _ = catch_unwind(AssertUnwindSafe(self.run));
    }
}

/// A pool of threads for closures that block.
///
/// Cloning gives another handle to the same pool.
#[derive(Clone)]
pub(crate) struct BlockingPool {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Mutex<Shared>,
    /// Idle threads wait here for work.
    work: Condvar,
    /// [`BlockingPool::shutdown`] waits here for threads to exit.
    exited: Condvar,
    config: Config,
    /// Threads that could not be pinned to `config.cpus` (they run unpinned).
    pin_failures: AtomicUsize,
}

struct Shared {
    queue: VecDeque<Job>,
    shutdown: bool,
    /// Live threads (counted until they leave their job loop).
    threads: usize,
    /// Threads waiting for work that no spawn has claimed yet.
    idle: usize,
    /// Wake-ups sent to idle threads and not yet taken; guards against
    /// spurious condition-variable wake-ups.
    notified: usize,
    handles: HashMap<usize, JoinHandle<()>>,
    next_id: usize,
    /// The last thread that left on keep-alive expiry; the next one to
    /// leave joins it, and shutdown joins the last.
    retired: Option<JoinHandle<()>>,
}

impl BlockingPool {
    /// A pool with no threads yet; they start as jobs arrive.
    pub(crate) fn new(mut config: Config) -> BlockingPool {
        config.max_threads = config.max_threads.max(1);
        BlockingPool {
            inner: Arc::new(Inner {
                shared: Mutex::new(Shared {
                    queue: VecDeque::new(),
                    shutdown: false,
                    threads: 0,
                    idle: 0,
                    notified: 0,
                    handles: HashMap::new(),
                    next_id: 0,
                    retired: None,
                }),
                work: Condvar::new(),
                exited: Condvar::new(),
                config,
                pin_failures: AtomicUsize::new(0),
            }),
        }
    }

    /// Queues `job` to run on a pool thread, starting a thread when none is
    /// idle and the pool is below its maximum.
    ///
    /// Errs (and drops the job) after shutdown, or when the OS refuses to
    /// start a thread and the pool has none that could run it later.
    pub(crate) fn spawn<F>(&self, job: F) -> Result<(), SpawnError>
    where
        F: FnOnce() + Send + 'static,
    {
        self.spawn_job(Job {
            run: Box::new(job),
            mandatory: false,
        })
    }

    /// Like [`spawn`](BlockingPool::spawn), but a job already queued when
    /// shutdown begins still runs instead of being dropped.
    // For file writes done on the pool (the I/O layer's fallback), which
    // must not be lost at shutdown.
    #[allow(dead_code)]
    pub(crate) fn spawn_mandatory<F>(&self, job: F) -> Result<(), SpawnError>
    where
        F: FnOnce() + Send + 'static,
    {
        self.spawn_job(Job {
            run: Box::new(job),
            mandatory: true,
        })
    }

    fn spawn_job(&self, job: Job) -> Result<(), SpawnError> {
        let mut shared = self.inner.lock();
        if shared.shutdown {
            drop(shared);
            drop(job);
            return Err(SpawnError::ShuttingDown);
        }
        shared.queue.push_back(job);
        if shared.idle > 0 {
            shared.idle -= 1;
            shared.notified += 1;
            self.inner.work.notify_one();
            return Ok(());
        }
        if shared.threads >= self.inner.config.max_threads {
            // Every thread is busy; the first to finish takes the job.
            return Ok(());
        }
        match self.start_thread(&mut shared) {
            Ok(()) => Ok(()),
            // A busy thread will take the job when it finishes.
            Err(_) if shared.threads > 0 => Ok(()),
            Err(e) => {
                let job = shared.queue.pop_back();
                drop(shared);
                drop(job);
                Err(SpawnError::NoThreads(e))
            }
        }
    }

    fn start_thread(&self, shared: &mut Shared) -> io::Result<()> {
        let config = &self.inner.config;
        let mut builder = thread::Builder::new().name((config.thread_name)());
        if let Some(size) = config.stack_size {
            builder = builder.stack_size(size);
        }
        let id = shared.next_id;
        let inner = Arc::clone(&self.inner);
        let handle = builder.spawn(move || inner.run_thread(id))?;
        shared.next_id += 1;
        shared.threads += 1;
        shared.handles.insert(id, handle);
        Ok(())
    }

    /// Stops the pool: refuses new jobs, drops queued jobs that are not
    /// mandatory, lets running jobs finish, and waits for the threads to
    /// exit, for at most `timeout` when one is given.
    ///
    /// Returns whether every thread exited in time. Threads still running a
    /// job after the timeout are left detached; they exit when their job
    /// returns. Called from one of the pool's own threads, it does not wait
    /// for that thread. A second call does not wait.
    pub(crate) fn shutdown(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let me = thread::current().id();
        let mut shared = self.inner.lock();
        if shared.shutdown {
            return shared.threads == 0;
        }
        shared.shutdown = true;
        let queued = std::mem::take(&mut shared.queue);
        let (mandatory, dropped): (VecDeque<Job>, VecDeque<Job>) =
            queued.into_iter().partition(|job| job.mandatory);
        shared.queue = mandatory;
        self.inner.work.notify_all();
        drop(shared);
        // Dropping a job may run user code (a future's destructor) that
        // spawns again: never with the lock held.
        drop(dropped);

        let mut shared = self.inner.lock();
        let own = usize::from(shared.handles.values().any(|h| h.thread().id() == me));
        while shared.threads > own {
            shared = match deadline {
                None => self
                    .inner
                    .exited
                    .wait(shared)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    self.inner
                        .exited
                        .wait_timeout(shared, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        let finished = shared.threads <= own;
        if !finished {
            // Stuck threads stay detached; their handles drop with the pool.
            return false;
        }
        let handles: Vec<JoinHandle<()>> = shared.handles.drain().map(|(_, h)| h).collect();
        let retired = shared.retired.take();
        drop(shared);
        // Every thread has left its job loop; joining waits only for its
        // on_thread_stop hook.
        for handle in handles.into_iter().chain(retired) {
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
        true
    }

    /// Threads alive now.
    #[allow(dead_code)] // for runtime metrics
    pub(crate) fn num_threads(&self) -> usize {
        self.inner.lock().threads
    }

    /// Threads waiting for work.
    #[allow(dead_code)] // for runtime metrics
    pub(crate) fn num_idle_threads(&self) -> usize {
        self.inner.lock().idle
    }

    /// Jobs queued and not yet taken by a thread.
    #[allow(dead_code)] // for runtime metrics
    pub(crate) fn queue_depth(&self) -> usize {
        self.inner.lock().queue.len()
    }

    /// Threads that could not be pinned to the configured CPUs.
    #[allow(dead_code)] // for runtime metrics
    pub(crate) fn pin_failures(&self) -> usize {
        self.inner.pin_failures.load(Ordering::Relaxed)
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Jobs and hooks run outside the lock and the pool's own code does
        // not panic while holding it, so a poisoned state is still sound.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run_thread(&self, id: usize) {
        if let Some(cpus) = &self.config.cpus {
            if pin_current_thread(cpus).is_err() {
                self.pin_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(hook) = &self.config.on_thread_start {
            let _ = catch_unwind(AssertUnwindSafe(|| hook()));
        }
        let retired = self.job_loop(id);
        if let Some(hook) = &self.config.on_thread_stop {
            let _ = catch_unwind(AssertUnwindSafe(|| hook()));
        }
        if let Some(handle) = retired {
            let _ = handle.join();
        }
    }

    /// Runs jobs until shutdown or keep-alive expiry. Returns the handle of
    /// a previously retired thread for this one to join.
    fn job_loop(&self, id: usize) -> Option<JoinHandle<()>> {
        let mut shared = self.lock();
        let mut retired = None;
        'busy: loop {
            while let Some(job) = shared.queue.pop_front() {
                let run = !shared.shutdown || job.mandatory;
                drop(shared);
                if run {
                    job.run();
                } else {
                    drop(job);
                }
                shared = self.lock();
            }
            if shared.shutdown {
                break;
            }
            shared.idle += 1;
            loop {
                let (guard, wait) = self
                    .work
                    .wait_timeout(shared, self.config.keep_alive)
                    .unwrap_or_else(PoisonError::into_inner);
                shared = guard;
                if shared.notified > 0 {
                    // A spawn claimed this thread (and took it off `idle`).
                    shared.notified -= 1;
                    continue 'busy;
                }
                if shared.shutdown {
                    shared.idle -= 1;
                    break 'busy;
                }
                if wait.timed_out() {
                    shared.idle -= 1;
                    let mine = shared.handles.remove(&id);
                    retired = std::mem::replace(&mut shared.retired, mine);
                    break 'busy;
                }
            }
        }
        shared.threads -= 1;
        if shared.shutdown {
            self.exited.notify_all();
        }
        retired
    }
}

impl fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.inner.lock();
        f.debug_struct("BlockingPool")
            .field("threads", &shared.threads)
            .field("idle", &shared.idle)
            .field("queued", &shared.queue.len())
            .field("shutdown", &shared.shutdown)
            .field("config", &self.inner.config)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::affinity::current_affinity;
    use super::*;
    use crate::topology::CpuSet;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc;

    fn pool(max_threads: usize) -> BlockingPool {
        BlockingPool::new(Config {
            max_threads,
            ..Config::default()
        })
    }

    /// Polls `cond` for up to five seconds.
    fn eventually(mut cond: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if cond() {
                return true;
            }
            thread::sleep(Duration::from_millis(2));
        }
        cond()
    }

    /// Sets its flag when dropped.
    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn runs_jobs() {
        let pool = pool(4);
        let (tx, rx) = mpsc::channel();
        for i in 0..100 {
            let tx = tx.clone();
            pool.spawn(move || tx.send(i).unwrap()).unwrap();
        }
        let mut got: Vec<i32> = (0..100).map(|_| rx.recv().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert!(pool.num_threads() <= 4);
        assert!(pool.shutdown(None));
        assert_eq!(pool.num_threads(), 0);
    }

    #[test]
    fn starts_threads_on_demand_up_to_the_maximum() {
        let pool = pool(3);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let running = Arc::new(AtomicUsize::new(0));
        for _ in 0..6 {
            let rx = Arc::clone(&release_rx);
            let running = Arc::clone(&running);
            pool.spawn(move || {
                running.fetch_add(1, Ordering::SeqCst);
                rx.lock().unwrap().recv().unwrap();
            })
            .unwrap();
        }
        assert!(eventually(|| running.load(Ordering::SeqCst) == 3));
        assert_eq!(pool.num_threads(), 3);
        assert_eq!(pool.queue_depth(), 3);
        for _ in 0..6 {
            release_tx.send(()).unwrap();
        }
        assert!(eventually(|| running.load(Ordering::SeqCst) == 6));
        assert!(pool.shutdown(Some(Duration::from_secs(5))));
    }

    #[test]
    fn reuses_an_idle_thread() {
        let pool = pool(8);
        for _ in 0..20 {
            let (tx, rx) = mpsc::channel();
            pool.spawn(move || tx.send(thread::current().id()).unwrap())
                .unwrap();
            rx.recv().unwrap();
            // The thread is idle again once it waits for work.
            assert!(eventually(|| pool.num_idle_threads() == 1));
        }
        assert_eq!(pool.num_threads(), 1);
        assert!(pool.shutdown(None));
    }

    #[test]
    fn idle_threads_exit_after_keep_alive() {
        let pool = BlockingPool::new(Config {
            keep_alive: Duration::from_millis(30),
            ..Config::default()
        });
        for round in 0..2 {
            let (tx, rx) = mpsc::channel();
            pool.spawn(move || tx.send(()).unwrap()).unwrap();
            rx.recv().unwrap();
            assert!(
                eventually(|| pool.num_threads() == 0),
                "round {round}: thread did not retire"
            );
        }
        assert!(pool.shutdown(None));
    }

    #[test]
    fn refuses_jobs_after_shutdown() {
        let pool = pool(2);
        assert!(pool.shutdown(None));
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(Arc::clone(&dropped));
        let err = pool
            .spawn(move || drop(flag))
            .expect_err("spawn after shutdown must fail");
        assert!(matches!(err, SpawnError::ShuttingDown));
        assert!(dropped.load(Ordering::SeqCst), "the job is dropped");
    }

    #[test]
    fn shutdown_drops_queued_jobs_but_runs_mandatory_ones() {
        let pool = pool(1);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel();
        pool.spawn(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        })
        .unwrap();
        started_rx.recv().unwrap();

        let ran_plain = Arc::new(AtomicBool::new(false));
        let dropped_plain = Arc::new(AtomicBool::new(false));
        let ran_mandatory = Arc::new(AtomicBool::new(false));
        {
            let ran = Arc::clone(&ran_plain);
            let flag = DropFlag(Arc::clone(&dropped_plain));
            pool.spawn(move || {
                let _flag = flag;
                ran.store(true, Ordering::SeqCst);
            })
            .unwrap();
            let ran = Arc::clone(&ran_mandatory);
            pool.spawn_mandatory(move || ran.store(true, Ordering::SeqCst))
                .unwrap();
        }
        assert_eq!(pool.queue_depth(), 2);

        let stopper = {
            let pool = pool.clone();
            thread::spawn(move || pool.shutdown(None))
        };
        assert!(eventually(|| dropped_plain.load(Ordering::SeqCst)));
        assert!(!stopper.is_finished(), "shutdown waits for the running job");
        release_tx.send(()).unwrap();
        assert!(stopper.join().unwrap());
        assert!(!ran_plain.load(Ordering::SeqCst));
        assert!(ran_mandatory.load(Ordering::SeqCst));
    }

    #[test]
    fn shutdown_timeout_returns_despite_a_stuck_job() {
        let pool = pool(2);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel();
        pool.spawn(move || {
            started_tx.send(()).unwrap();
            let _ = release_rx.recv();
        })
        .unwrap();
        started_rx.recv().unwrap();
        let start = Instant::now();
        assert!(!pool.shutdown(Some(Duration::from_millis(50))));
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        // A second call does not wait again.
        assert!(!pool.shutdown(None));
        // The detached thread exits once its job returns.
        release_tx.send(()).unwrap();
        assert!(eventually(|| pool.num_threads() == 0));
    }

    #[test]
    fn names_threads_and_runs_hooks() {
        let started = Arc::new(AtomicUsize::new(0));
        let stopped = Arc::new(AtomicUsize::new(0));
        let counter = Arc::new(AtomicUsize::new(0));
        let pool = BlockingPool::new(Config {
            max_threads: 2,
            thread_name: {
                let counter = Arc::clone(&counter);
                Arc::new(move || format!("blk-{}", counter.fetch_add(1, Ordering::SeqCst)))
            },
            on_thread_start: Some({
                let started = Arc::clone(&started);
                Arc::new(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                })
            }),
            on_thread_stop: Some({
                let stopped = Arc::clone(&stopped);
                Arc::new(move || {
                    stopped.fetch_add(1, Ordering::SeqCst);
                })
            }),
            ..Config::default()
        });
        let (tx, rx) = mpsc::channel();
        pool.spawn(move || {
            tx.send(thread::current().name().map(str::to_owned))
                .unwrap()
        })
        .unwrap();
        assert_eq!(rx.recv().unwrap().as_deref(), Some("blk-0"));
        assert!(pool.shutdown(None));
        assert_eq!(started.load(Ordering::SeqCst), 1);
        // Shutdown joined the thread, so its stop hook has run.
        assert_eq!(stopped.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn pins_threads_to_the_node_cpus() {
        let last = current_affinity().last().unwrap();
        let cpus: CpuSet = [last].into_iter().collect();
        let pool = BlockingPool::new(Config {
            cpus: Some(cpus),
            ..Config::default()
        });
        let (tx, rx) = mpsc::channel();
        for _ in 0..10 {
            let tx = tx.clone();
            // SAFETY: sched_getcpu has no preconditions.
            pool.spawn(move || tx.send(unsafe { libc::sched_getcpu() }).unwrap())
                .unwrap();
        }
        for _ in 0..10 {
            assert_eq!(rx.recv().unwrap(), last as i32);
        }
        assert_eq!(pool.pin_failures(), 0);
        assert!(pool.shutdown(None));
    }

    #[test]
    fn a_panicking_job_does_not_kill_its_thread() {
        let pool = pool(1);
        pool.spawn(|| panic!("job panics on purpose")).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.spawn(move || tx.send(()).unwrap()).unwrap();
        rx.recv().unwrap();
        assert_eq!(pool.num_threads(), 1);
        assert!(pool.shutdown(None));
    }

    #[test]
    fn thread_spawn_failure_is_an_error() {
        // No OS can give a thread a stack this large.
        let pool = BlockingPool::new(Config {
            stack_size: Some(usize::MAX / 2),
            ..Config::default()
        });
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(Arc::clone(&dropped));
        let err = pool.spawn(move || drop(flag)).unwrap_err();
        assert!(matches!(err, SpawnError::NoThreads(_)), "{err}");
        assert!(dropped.load(Ordering::SeqCst));
        assert_eq!(pool.queue_depth(), 0);
        assert_eq!(pool.num_threads(), 0);
        assert!(pool.shutdown(None));
    }

    #[test]
    fn shutdown_from_a_pool_thread_does_not_wait_for_itself() {
        let pool = pool(2);
        let (tx, rx) = mpsc::channel();
        let inner = pool.clone();
        pool.spawn(move || {
            tx.send(inner.shutdown(Some(Duration::from_secs(10))))
                .unwrap()
        })
        .unwrap();
        let start = Instant::now();
        assert!(rx.recv().unwrap());
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(eventually(|| pool.num_threads() == 0));
    }

    #[test]
    fn many_spawners_many_jobs() {
        let pool = pool(4);
        let done = Arc::new(AtomicUsize::new(0));
        let spawners: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                let done = Arc::clone(&done);
                thread::spawn(move || {
                    for _ in 0..2_000 {
                        let done = Arc::clone(&done);
                        pool.spawn(move || {
                            done.fetch_add(1, Ordering::SeqCst);
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for s in spawners {
            s.join().unwrap();
        }
        assert!(eventually(|| done.load(Ordering::SeqCst) == 8_000));
        assert!(pool.shutdown(None));
    }
}
