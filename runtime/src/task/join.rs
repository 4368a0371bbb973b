//! `JoinHandle`: awaiting a task's output.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use super::abort::AbortHandle;
use super::coop;
use super::error::JoinError;
use super::id::Id;
use super::raw::RawTask;

/// An owned permission to await a spawned task's output.
///
/// Awaiting it gives `Ok(output)`, or a [`JoinError`] when the task
/// panicked or was cancelled. Dropping it detaches the task, which keeps
/// running.
///
/// ```
/// # numa_rt_runtime::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let handle = numa_rt_runtime::spawn(async { 6 * 7 });
/// assert_eq!(handle.await.unwrap(), 42);
/// # });
/// ```
pub struct JoinHandle<T> {
    raw: RawTask,
    id: Id,
    _output: PhantomData<T>,
}

// SAFETY: the handle only moves `T` out of the cell, on the thread that
// awaits it; with `T: Send` that is sound from any thread.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: every method takes `&mut self` or only touches atomics.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    pub(crate) fn new(raw: RawTask, id: Id) -> JoinHandle<T> {
        JoinHandle {
            raw,
            id,
            _output: PhantomData,
        }
    }

    /// Cancels the task. A task that is running is cancelled at its next
    /// `.await` point; awaiting the handle then gives a cancelled
    /// [`JoinError`] (unless the task had already completed).
    pub fn abort(&self) {
        self.raw.remote_abort();
    }

    /// Whether the task has finished (completed, panicked or cancelled).
    pub fn is_finished(&self) -> bool {
        self.raw.is_complete()
    }

    /// A handle that can abort the task without owning its output.
    pub fn abort_handle(&self) -> AbortHandle {
        self.raw.ref_inc();
        AbortHandle::new(self.raw)
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        self.id
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let restore = ready!(coop::poll_proceed(cx));
        let mut out: Poll<Result<T, JoinError>> = Poll::Pending;
        // SAFETY: `out` has the task's output type and this handle holds
        // the join interest.
        unsafe {
            self.raw.try_read_output(
                &mut out as *mut Poll<Result<T, JoinError>> as *mut (),
                cx.waker(),
            )
        };
        if out.is_ready() {
            restore.made_progress();
        }
        out
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // SAFETY: called once; gives up this handle's reference.
        unsafe { self.raw.drop_join_handle() }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}
