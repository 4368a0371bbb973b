//! `spawn_blocking`: a closure run once on a node's blocking pool, wrapped
//! in a task cell so it is awaited through an ordinary `JoinHandle`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::raw::{new_task, Home, Notified, RawTask, Schedule};
use super::{coop, Id, JoinHandle};
use crate::blocking::NodePools;
use crate::runtime::{context, Handle};
use crate::NodeId;

/// The future of a blocking task: calls the closure on its first poll.
struct BlockingTask<F>(Option<F>);

// The closure is never pinned in place: it is moved out and called.
impl<F> Unpin for BlockingTask<F> {}

impl<F: FnOnce() -> R, R> Future for BlockingTask<F> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<R> {
        match self.0.take() {
            Some(f) => {
                // A blocking closure is not limited by the task budget.
                coop::stop();
                Poll::Ready(f())
            }
            // The task machinery never polls a completed task.
            None => Poll::Pending,
        }
    }
}

/// Blocking tasks are never woken (their future completes on the first
/// poll) and are not in any owned-task list.
struct BlockingSchedule;

impl Schedule for BlockingSchedule {
    fn schedule(&self, task: Notified, _yield_now: bool) {
        // Unreachable in practice: an abort of a queued or running blocking
        // task only marks it. Dropping the reference is the safe answer.
        drop(task);
    }

    fn release(&self, _task: RawTask) -> bool {
        false
    }
}

/// The job handed to the pool: runs the task with the runtime current (so
/// `Handle::current()` works in the closure, as in tokio), or cancels it
/// when the pool drops the job without running it (shutdown, or no thread
/// available).
struct Job {
    task: Option<Notified>,
    handle: Handle,
    node: NodeId,
}

impl Job {
    fn run(mut self) {
        if let Some(task) = self.task.take() {
            let _context = context::set_handle(self.handle.clone(), Some(self.node));
            task.run();
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.shutdown();
        }
    }
}

/// Spawns `f` on the blocking pool of `node` (or the first pool when that
/// node has none) of the runtime of `handle`.
pub(crate) fn spawn<F, R>(handle: &Handle, pools: &NodePools, node: NodeId, f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (task, notified, join) = new_task(
        BlockingTask(Some(f)),
        BlockingSchedule,
        Id::next(),
        Home::preferred(0),
        None,
    );
    // Not tracked in an owned list: the pool owns the job until it runs.
    drop(task);
    let job = Job {
        task: Some(notified),
        handle: handle.clone(),
        node,
    };
    let pool = pools
        .get(node)
        .or_else(|| pools.iter().next().map(|(_, p)| p));
    match pool {
        Some(pool) => {
            // On error the pool has dropped the job, which cancelled the
            // task: the JoinHandle reports it as cancelled.
            let _ = pool.spawn(move || job.run());
        }
        None => drop(job),
    }
    join
}
