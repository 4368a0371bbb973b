//! `JoinSet`: a collection of spawned tasks, awaited in completion order.
//!
//! Each member's `JoinHandle` is polled with its own small waker that puts
//! the member's slot on a ready list and wakes the set's waiter, so
//! `join_next` only polls members that made progress.

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use super::{AbortHandle, JoinError, JoinHandle};
use crate::locality::Target;
use crate::runtime::Handle;

/// A set of tasks with the same output type.
///
/// Dropping the set aborts every task in it.
///
/// ```
/// use numa_rt_runtime::task::JoinSet;
/// # numa_rt_runtime::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut set = JoinSet::new();
/// for i in 0..10u32 {
///     set.spawn(async move { i * 2 });
/// }
/// let mut sum = 0;
/// while let Some(res) = set.join_next().await {
///     sum += res.unwrap();
/// }
/// assert_eq!(sum, 90);
/// # });
/// ```
pub struct JoinSet<T> {
    slots: Vec<Option<Member<T>>>,
    free: Vec<usize>,
    len: usize,
    ready: Arc<Ready>,
}

struct Member<T> {
    handle: JoinHandle<T>,
    waker: Waker,
}

/// Slots whose tasks may have finished, and the waker of `join_next`.
struct Ready {
    inner: Mutex<ReadyInner>,
}

struct ReadyInner {
    slots: VecDeque<usize>,
    waiter: Option<Waker>,
}

impl Ready {
    fn lock(&self) -> MutexGuard<'_, ReadyInner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct SlotWaker {
    slot: usize,
    ready: Arc<Ready>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waiter = {
            let mut inner = self.ready.lock();
            inner.slots.push_back(self.slot);
            inner.waiter.take()
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}

impl<T> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        JoinSet {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            ready: Arc::new(Ready {
                inner: Mutex::new(ReadyInner {
                    slots: VecDeque::new(),
                    waiter: None,
                }),
            }),
        }
    }

    /// Number of tasks in the set.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a task that was spawned elsewhere; returns its abort handle.
    fn insert(&mut self, handle: JoinHandle<T>) -> AbortHandle {
        let abort = handle.abort_handle();
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let waker = Waker::from(Arc::new(SlotWaker {
            slot,
            ready: self.ready.clone(),
        }));
        self.slots[slot] = Some(Member { handle, waker });
        self.len += 1;
        // New members must be polled once to register their waker.
        self.ready.lock().slots.push_back(slot);
        abort
    }

    /// Aborts every task in the set; they stay in it until joined.
    pub fn abort_all(&mut self) {
        for member in self.slots.iter().flatten() {
            member.handle.abort();
        }
    }

    /// Removes every task from the set without aborting it.
    pub fn detach_all(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.len = 0;
        self.ready.lock().slots.clear();
    }

    /// Waits for any task to finish and returns its result; `None` when the
    /// set is empty.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// Returns a finished task's result if one is ready, without waiting.
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        let mut cx = Context::from_waker(noop_waker());
        match self.poll_join_next(&mut cx) {
            Poll::Ready(out) => out,
            Poll::Pending => None,
        }
    }

    /// Aborts every task and waits for all of them to finish.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }

    /// Waits for every task and returns their outputs in completion order.
    ///
    /// # Panics
    /// Resumes the panic of a task that panicked (like tokio's).
    pub async fn join_all(mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        while let Some(res) = self.join_next().await {
            match res {
                Ok(value) => out.push(value),
                Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                Err(err) => panic!("a task of the JoinSet was cancelled: {err}"),
            }
        }
        out
    }

    /// Polls for the next finished task.
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        if self.len == 0 {
            return Poll::Ready(None);
        }
        loop {
            let slot = {
                let mut inner = self.ready.lock();
                match inner.slots.pop_front() {
                    Some(slot) => slot,
                    None => {
                        inner.waiter = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                }
            };
            let Some(member) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            let mut member_cx = Context::from_waker(&member.waker);
            match Pin::new(&mut member.handle).poll(&mut member_cx) {
                Poll::Ready(out) => {
                    self.slots[slot] = None;
                    self.free.push(slot);
                    self.len -= 1;
                    return Poll::Ready(Some(out));
                }
                Poll::Pending => {
                    // Out of cooperative budget, the handle woke itself (and
                    // so re-queued the slot); yield to the scheduler.
                    if !super::coop::has_budget_remaining() {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}

impl<T: Send + 'static> JoinSet<T> {
    /// Spawns a task on the current runtime and adds it to the set.
    ///
    /// # Panics
    /// Outside a runtime.
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.insert(super::spawn(future))
    }

    /// Spawns a task placed by `target` and adds it to the set.
    ///
    /// # Panics
    /// Outside a runtime, or when the target cannot be placed.
    #[track_caller]
    pub fn spawn_on<P, F>(&mut self, target: P, future: F) -> AbortHandle
    where
        P: Target,
        F: Future<Output = T> + Send + 'static,
    {
        self.insert(Handle::current().spawn_on(target, future))
    }

    /// Spawns a task on the runtime of `handle` and adds it to the set.
    pub fn spawn_on_handle<F>(&mut self, future: F, handle: &Handle) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.insert(handle.spawn(future))
    }

    /// Runs a blocking closure and adds it to the set.
    ///
    /// # Panics
    /// Outside a runtime.
    #[track_caller]
    pub fn spawn_blocking<F>(&mut self, f: F) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
    {
        self.insert(super::spawn_blocking(f))
    }
}

impl<T: 'static> JoinSet<T> {
    /// Spawns a local task on the current worker and adds it to the set.
    ///
    /// # Panics
    /// Outside a worker of a multi-thread runtime.
    #[track_caller]
    pub fn spawn_local<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(super::spawn_local(future))
    }
}

/// A waker that does nothing, made once.
fn noop_waker() -> &'static Waker {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    static NOOP: OnceLock<Waker> = OnceLock::new();
    NOOP.get_or_init(|| Waker::from(Arc::new(Noop)))
}

impl<T> Default for JoinSet<T> {
    fn default() -> JoinSet<T> {
        JoinSet::new()
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        self.abort_all();
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.len).finish()
    }
}
