//! Tasks: spawning, awaiting, aborting, and the cell each task lives in.
//!
//! A task is one allocation (see `raw`): a header with an atomic state word
//! and a vtable, the future, its output, and the waker of whoever awaits it.
//! Wakers point straight at the header, so waking allocates nothing and
//! needs no lock.

mod abort;
mod atomic_waker;
pub(crate) mod blocking;
mod cell_alloc;
pub(crate) mod coop;
mod error;
mod id;
mod join;
mod join_set;
mod list;
mod raw;
mod state;
mod waker;
mod yield_now;

use std::future::Future;

pub use abort::AbortHandle;
pub use coop::consume_budget;
pub use error::JoinError;
pub use id::Id;
pub use join::JoinHandle;
pub use join_set::JoinSet;
pub use yield_now::yield_now;

pub(crate) use list::OwnedTasks;
pub(crate) use raw::{new_task, Home, Notified, RawTask, Schedule};

use crate::locality::Target;
use crate::runtime::context;
use crate::NodeId;

/// The message of `spawn_local` outside a worker.
const NOT_A_WORKER: &str = "`spawn_local` called outside a worker thread of a numa_rt \
     multi-thread runtime: a local task stays on the worker that spawns it, so call it from \
     inside a task running on that runtime";

/// Spawns a task on the current runtime.
///
/// Inside a worker the task's home is the worker's node; from elsewhere
/// (`block_on`, `Runtime::enter`) the least loaded node.
///
/// # Panics
/// Outside a runtime, with a message saying so.
///
/// ```
/// # numa_rt_runtime::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap().block_on(async {
/// let handle = numa_rt_runtime::spawn(async { "done" });
/// assert_eq!(handle.await.unwrap(), "done");
/// # });
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    context::with_handle(|handle| match handle {
        Some(handle) => handle.spawn(future),
        None => panic!("{}", crate::runtime::handle::NO_RUNTIME),
    })
}

/// Spawns a task placed by `target`: a `NodeId`, `NodeSet`, `CpuSet`,
/// `Placement`, `Strict(..)` or any other [`Target`].
///
/// # Panics
/// Outside a runtime, or when the target cannot be placed on the
/// runtime's nodes.
///
/// ```
/// use numa_rt_runtime::NodeId;
/// # numa_rt_runtime::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap().block_on(async {
/// let node = numa_rt_runtime::spawn_on(NodeId::new(0), async {
///     numa_rt_runtime::task::current_node()
/// }).await.unwrap();
/// assert_eq!(node, Some(NodeId::new(0)));
/// # });
/// ```
#[track_caller]
pub fn spawn_on<T, F>(target: T, future: F) -> JoinHandle<F::Output>
where
    T: Target,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    context::with_handle(|handle| match handle {
        Some(handle) => handle.spawn_on(target, future),
        None => panic!("{}", crate::runtime::handle::NO_RUNTIME),
    })
}

/// Spawns a `!Send` task that always runs on the current worker thread.
///
/// # Panics
/// Outside a worker thread of a multi-thread runtime.
///
/// ```
/// use std::rc::Rc;
/// # numa_rt_runtime::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap().block_on(async {
/// let out = numa_rt_runtime::spawn(async {
///     // An Rc is not Send: it may only live in a local task.
///     numa_rt_runtime::spawn_local(async {
///         let shared = Rc::new(5);
///         numa_rt_runtime::task::yield_now().await;
///         *shared + 1
///     })
///     .await
///     .unwrap()
/// }).await.unwrap();
/// assert_eq!(out, 6);
/// # });
/// ```
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    context::with_worker(|worker| match worker {
        Some(worker) => worker.spawn_local(future),
        None => panic!("{NOT_A_WORKER}"),
    })
}

/// Runs a blocking closure on the blocking pool of the current node.
///
/// # Panics
/// Outside a runtime.
///
/// ```
/// # numa_rt_runtime::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap().block_on(async {
/// let n = numa_rt_runtime::spawn_blocking(|| std::fs::read_dir(".").map(|d| d.count()))
///     .await
///     .unwrap();
/// assert!(n.is_ok());
/// # });
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    context::with_handle(|handle| match handle {
        Some(handle) => handle.spawn_blocking(f),
        None => panic!("{}", crate::runtime::handle::NO_RUNTIME),
    })
}

/// The NUMA node whose workers run the current task; `None` outside a
/// runtime's worker (or `block_on` of a current-thread runtime).
pub fn current_node() -> Option<NodeId> {
    context::node()
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts dropped futures.
    #[derive(Clone)]
    pub(crate) struct Count(Arc<AtomicUsize>);

    impl Count {
        pub(crate) fn new() -> Count {
            Count(Arc::new(AtomicUsize::new(0)))
        }
        pub(crate) fn dropped(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    struct Tracked(Count);
    impl Drop for Tracked {
        fn drop(&mut self) {
            (self.0).0.fetch_add(1, Ordering::SeqCst);
        }
    }

    struct NoopSchedule;
    impl Schedule for NoopSchedule {
        fn schedule(&self, task: Notified, _: bool) {
            drop(task);
        }
        fn release(&self, _: RawTask) -> bool {
            false
        }
    }

    /// A queued task whose future counts its drop; it owns the task's
    /// last reference but one (the owned-list reference is dropped here,
    /// the JoinHandle too).
    pub(crate) fn noop_notified(count: &Count) -> Notified {
        let tracked = Tracked(count.clone());
        let fut = async move {
            let _t = tracked;
        };
        let (task, notified, join) =
            new_task(fut, NoopSchedule, Id::next(), Home::preferred(0), None);
        drop(join);
        // Only the queue reference is left: dropping it frees the cell
        // and the future.
        drop(task);
        notified
    }
}
