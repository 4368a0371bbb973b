//! `Runtime`: owns the worker threads and shuts everything down.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle as ThreadHandle;
use std::time::{Duration, Instant};

use super::builder::Builder;
use super::context;
use super::handle::{EnterGuard, Handle, Scheduler};
use super::metrics::RuntimeMetrics;
use crate::locality::Target;
use crate::task::JoinHandle;

/// A running runtime: worker pools (or the current-thread scheduler), the
/// blocking pools, and their threads.
///
/// Dropping it stops the workers after their current poll, cancels and
/// drops every task, waits for the worker threads and the blocking threads,
/// and frees everything.
///
/// ```
/// use numa_rt_runtime::runtime::Runtime;
/// let rt = Runtime::new().unwrap();
/// let v = rt.block_on(async {
///     let a = numa_rt_runtime::spawn(async { 20 });
///     let b = numa_rt_runtime::spawn(async { 22 });
///     a.await.unwrap() + b.await.unwrap()
/// });
/// assert_eq!(v, 42);
/// ```
pub struct Runtime {
    handle: Handle,
    tracker: ThreadTracker,
    threads: Vec<ThreadHandle<()>>,
    /// Set once shut down, so `Drop` does nothing more.
    done: bool,
}

impl Runtime {
    pub(crate) fn from_parts(
        handle: Handle,
        tracker: ThreadTracker,
        threads: Vec<ThreadHandle<()>>,
    ) -> Runtime {
        Runtime {
            handle,
            tracker,
            threads,
            done: false,
        }
    }

    /// A multi-thread runtime with default settings (every node, one
    /// worker per usable CPU, I/O and time enabled).
    pub fn new() -> io::Result<Runtime> {
        Builder::new_multi_thread().enable_all().build()
    }

    /// Runs `future` to completion on this thread.
    ///
    /// # Panics
    /// When called on a thread that already drives a runtime (a worker, or
    /// inside another `block_on`).
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.handle.block_on(future)
    }

    /// Spawns a task (see [`Handle::spawn`]).
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Spawns a task placed by `target` (see [`Handle::spawn_on`]).
    ///
    /// # Panics
    /// When the target cannot be placed on this runtime's nodes.
    #[track_caller]
    pub fn spawn_on<T, F>(&self, target: T, future: F) -> JoinHandle<F::Output>
    where
        T: Target,
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn_on(target, future)
    }

    /// Runs a blocking closure on a blocking pool.
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.handle.spawn_blocking(f)
    }

    /// The runtime's handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Makes this runtime current on this thread until the guard drops.
    pub fn enter(&self) -> EnterGuard<'_> {
        self.handle.enter()
    }

    /// The runtime's metrics.
    pub fn metrics(&self) -> RuntimeMetrics {
        self.handle.metrics()
    }

    /// Shuts down, waiting at most `timeout` for worker and blocking threads;
    /// threads still busy then (a stuck blocking task) are left to finish
    /// on their own.
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.shutdown(Some(timeout));
    }

    /// Shuts down without waiting for any thread.
    pub fn shutdown_background(mut self) {
        self.shutdown(Some(Duration::ZERO));
    }

    fn shutdown(&mut self, timeout: Option<Duration>) {
        if self.done {
            return;
        }
        self.done = true;
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        // Futures dropped below may look for their runtime.
        let _enter = context::set_handle(self.handle.clone(), None);
        match &self.handle.inner {
            Scheduler::MultiThread(shared) => {
                shared.begin_shutdown();
                // Dropped from one of its own tasks: the worker running it
                // cannot exit while we wait, so do not wait.
                let on_own_worker =
                    context::with_worker(|w| w.is_some_and(|w| w.belongs_to(shared)));
                let deadline = if on_own_worker {
                    Some(Instant::now())
                } else {
                    deadline
                };
                if self.tracker.wait_all_exited(deadline) {
                    for thread in self.threads.drain(..) {
                        let _ = thread.join();
                    }
                } else {
                    // Detach: a worker stuck in a poll keeps its thread.
                    self.threads.clear();
                }
                shared.owned.close_and_shutdown_all();
                shared.drain_queues();
                shared.blocking.shutdown(remaining(deadline));
            }
            Scheduler::CurrentThread(shared) => {
                shared.shutdown();
                shared.blocking.shutdown(remaining(deadline));
            }
        }
    }
}

fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown(None);
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

/// Counts worker threads that have not exited yet.
#[derive(Clone)]
pub(crate) struct ThreadTracker {
    inner: Arc<(Mutex<usize>, Condvar)>,
}

/// Held by a worker thread; counts it exited when dropped (also on panic).
pub(crate) struct ExitGuard {
    tracker: ThreadTracker,
}

impl ThreadTracker {
    pub(crate) fn new() -> ThreadTracker {
        ThreadTracker {
            inner: Arc::new((Mutex::new(0), Condvar::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        self.inner
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one more live thread.
    pub(crate) fn register(&self) -> ExitGuard {
        *self.lock() += 1;
        ExitGuard {
            tracker: self.clone(),
        }
    }

    /// Waits until every registered thread exited, or `deadline`. Returns
    /// whether they all did.
    pub(crate) fn wait_all_exited(&self, deadline: Option<Instant>) -> bool {
        let mut live = self.lock();
        while *live > 0 {
            match deadline {
                None => {
                    live = self
                        .inner
                        .1
                        .wait(live)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    live = self
                        .inner
                        .1
                        .wait_timeout(live, d - now)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0;
                }
            }
        }
        true
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let mut live = self.tracker.lock();
        *live = live.saturating_sub(1);
        drop(live);
        self.tracker.inner.1.notify_all();
    }
}
