//! What the models share: a scheduler that collects woken tasks, a gated
//! future whose every drop is counted, and a probe for the join waker.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::PoisonError;
use std::task::{Context, Poll, Wake, Waker};

use crate::loom::sync::atomic::AtomicUsize;
use crate::loom::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use crate::loom::sync::{Arc, Mutex, MutexGuard};
use crate::task::{
    new_task, Home, Id, JoinError, JoinHandle, Notified, OwnedTasks, RawTask, Schedule,
};

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The models' scheduler: a run queue the model drains by hand and the
/// real owned-task list.
pub(super) struct Runner {
    queue: Mutex<VecDeque<Notified>>,
    owned: OwnedTasks,
}

/// The `Schedule` half stored in the task cell.
pub(super) struct ModelSchedule(Arc<Runner>);

impl Schedule for ModelSchedule {
    fn schedule(&self, task: Notified, _yield_now: bool) {
        lock(&self.0.queue).push_back(task);
    }

    fn release(&self, task: RawTask) -> bool {
        self.0.owned.remove(task)
    }
}

impl Runner {
    /// Spawns a task running `future`; returns its first queue entry.
    pub(super) fn spawn<F>(future: F) -> (Arc<Runner>, Notified, JoinHandle<F::Output>)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let runner = Arc::new(Runner {
            queue: Mutex::new(VecDeque::new()),
            owned: OwnedTasks::new(1),
        });
        let (task, notified, join) = new_task(
            future,
            ModelSchedule(runner.clone()),
            Id::next(),
            Home::preferred(0),
            None,
        );
        if runner.owned.bind(task).is_err() {
            unreachable!("a new list is open");
        }
        (runner, notified, join)
    }

    /// The next queued task.
    pub(super) fn pop(&self) -> Option<Notified> {
        lock(&self.queue).pop_front()
    }

    /// Tasks queued now.
    pub(super) fn queued(&self) -> usize {
        lock(&self.queue).len()
    }

    /// Runs queued tasks until none is left.
    pub(super) fn run_all(&self) {
        while let Some(task) = self.pop() {
            task.run();
        }
    }

    /// Tasks in the owned list.
    pub(super) fn owned(&self) -> usize {
        self.owned.len()
    }

    /// The runtime's shutdown of the owned list: closes it and cancels
    /// every task in it.
    pub(super) fn close(&self) {
        self.owned.close_and_shutdown_all();
    }

    /// Drops what the runner holds (queued entries, and through the owned
    /// list's shutdown its references), breaking the cycle cell ->
    /// scheduler -> queue or list -> cell.
    pub(super) fn shutdown(&self) {
        while let Some(task) = self.pop() {
            drop(task);
        }
        self.close();
    }
}

/// Shared between a [`Gated`] future and the model: the gate, the task's
/// last waker, and counters of everything that must happen exactly once.
#[derive(Default)]
pub(super) struct Gate {
    open: AtomicUsize,
    waker: Mutex<Option<Waker>>,
    pub(super) polls: AtomicUsize,
    pub(super) futures_dropped: AtomicUsize,
    pub(super) outputs_dropped: AtomicUsize,
}

impl Gate {
    /// A gate, open from the start or not.
    pub(super) fn new(open: bool) -> Arc<Gate> {
        let gate = Gate::default();
        gate.open.store(usize::from(open), Relaxed);
        Arc::new(gate)
    }

    /// Opens the gate and wakes the task by value (the waker it left).
    pub(super) fn open_and_wake(&self) {
        self.open.store(1, Release);
        let waker = lock(&self.waker).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Wakes the task by reference without opening the gate.
    pub(super) fn wake_by_ref(&self) {
        if let Some(waker) = lock(&self.waker).as_ref() {
            waker.wake_by_ref();
        }
    }

    /// Drops the waker the task left (it holds a task reference).
    pub(super) fn clear(&self) {
        drop(lock(&self.waker).take());
    }
}

/// A future that is ready once its gate is open; it leaves its waker at
/// the gate before each check, so an opener after the check wakes it.
pub(super) struct Gated(pub(super) Arc<Gate>);

/// The output of a [`Gated`] future; counts its drop.
pub(super) struct Output(Arc<Gate>);

impl Future for Gated {
    type Output = Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Output> {
        self.0.polls.fetch_add(1, Relaxed);
        *lock(&self.0.waker) = Some(cx.waker().clone());
        if self.0.open.load(Acquire) == 1 {
            Poll::Ready(Output(self.0.clone()))
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        self.0.futures_dropped.fetch_add(1, AcqRel);
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        self.0.outputs_dropped.fetch_add(1, AcqRel);
    }
}

/// A `Waker` for polling a `JoinHandle` that counts its wakes.
pub(super) struct JoinProbe(AtomicUsize);

impl JoinProbe {
    pub(super) fn new() -> (std::sync::Arc<JoinProbe>, Waker) {
        let probe = std::sync::Arc::new(JoinProbe(AtomicUsize::new(0)));
        let waker = Waker::from(probe.clone());
        (probe, waker)
    }

    pub(super) fn wakes(&self) -> usize {
        self.0.load(Acquire)
    }
}

impl Wake for JoinProbe {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, Release);
    }
}

/// Polls a join handle once with `waker`.
pub(super) fn poll_join<T>(join: &mut JoinHandle<T>, waker: &Waker) -> Poll<Result<T, JoinError>> {
    Pin::new(join).poll(&mut Context::from_waker(waker))
}

/// A queued task standing for a run-queue entry: only its queue reference
/// is left (the task itself is already cancelled), so dropping it frees
/// the cell and the loom `Arc` of the scheduler in it: an entry a queue
/// loses fails the model as a leak. Returns the entry and its address,
/// which identifies it.
pub(super) fn entry(gate: &Arc<Gate>) -> (Notified, usize) {
    let (runner, notified, join) = Runner::spawn(Gated(gate.clone()));
    drop(join);
    runner.shutdown();
    let addr = notified.header() as *const _ as usize;
    (notified, addr)
}
