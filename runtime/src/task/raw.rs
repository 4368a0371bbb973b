//! The task cell and the type-erased handles that point at it.
//!
//! A task is one heap block, a [`Cell`]: a [`Header`] every scheduler can
//! read without knowing the future's type (state word, vtable, list links,
//! id, home node), then the scheduler handle, the future or its output, and
//! the `JoinHandle`'s waker. The vtable holds the functions monomorphized
//! for the concrete future and scheduler.

use std::future::Future;
use std::marker::PhantomData;
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};

use numa_rt_alloc::NodeHeap;

use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::Ordering::Relaxed;
use crate::loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};

use super::atomic_waker::AtomicWaker;
use super::cell_alloc::{alloc_cell, free_cell};
use super::error::JoinError;
use super::id::Id;
use super::join::JoinHandle;
use super::list::Links;
use super::state::{State, ToIdle, ToNotified, ToRunning};
use super::waker::waker_ref;

/// Where a task belongs: its home pool and which pools may run it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Home {
    /// Index of the home node's pool in the runtime.
    pub(crate) pool: u32,
    /// `true` for `Policy::Strict`: only pools in `allowed` may run it.
    pub(crate) strict: bool,
    /// Bit `i` set when pool `i` may run the task (pools 64 and above can
    /// only run strict tasks whose home they are).
    pub(crate) allowed: u64,
}

impl Home {
    /// A task that may run anywhere and prefers `pool`.
    pub(crate) fn preferred(pool: usize) -> Home {
        Home {
            pool: pool as u32,
            strict: false,
            allowed: u64::MAX,
        }
    }

    /// Whether pool `pool` may run the task.
    pub(crate) fn allows(&self, pool: usize) -> bool {
        !self.strict
            || pool == self.pool as usize
            || (pool < 64 && self.allowed & (1u64 << pool) != 0)
    }
}

/// How a task reaches its scheduler. Implemented by each scheduler flavor.
pub(crate) trait Schedule: Send + Sync + Sized + 'static {
    /// Queues a task that was woken (`yield_now`: it ran and asked to go
    /// behind the others).
    fn schedule(&self, task: Notified, yield_now: bool);

    /// Removes a completed task from the owned-task list; `true` when it
    /// was there (the caller then also drops the list's reference).
    fn release(&self, task: RawTask) -> bool;
}

/// A task's [`Home`], changed in place when the task hops to another node
/// (`#[locality]`, `uses!`). Only the worker polling the task writes it,
/// while the task is running; readers see it through the state
/// transitions that hand the task over, so relaxed atomics suffice.
pub(crate) struct HomeCell {
    pool: AtomicU32,
    strict: AtomicBool,
    allowed: AtomicU64,
}

impl HomeCell {
    fn new(home: Home) -> HomeCell {
        HomeCell {
            pool: AtomicU32::new(home.pool),
            strict: AtomicBool::new(home.strict),
            allowed: AtomicU64::new(home.allowed),
        }
    }

    /// The current home.
    #[inline]
    pub(crate) fn get(&self) -> Home {
        Home {
            pool: self.pool.load(Relaxed),
            strict: self.strict.load(Relaxed),
            allowed: self.allowed.load(Relaxed),
        }
    }

    /// The home pool.
    #[inline]
    pub(crate) fn pool(&self) -> usize {
        self.pool.load(Relaxed) as usize
    }

    fn set(&self, home: Home) {
        self.pool.store(home.pool, Relaxed);
        self.strict.store(home.strict, Relaxed);
        self.allowed.store(home.allowed, Relaxed);
    }
}

/// The type-erased part of a task.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) state: State,
    pub(crate) vtable: &'static Vtable,
    pub(crate) links: Links,
    pub(crate) id: Id,
    pub(crate) home: HomeCell,
    /// The node heap the cell was allocated from; `None`: the global
    /// allocator (the switch is off, or the heap refused).
    cell_heap: Option<NodeHeap>,
}

/// Functions of one concrete `Cell<F, S>`.
pub(crate) struct Vtable {
    /// Runs the task; consumes the queue's reference.
    pub(crate) poll: unsafe fn(NonNull<Header>),
    /// Hands the task to its scheduler; consumes one reference.
    pub(crate) schedule: unsafe fn(NonNull<Header>),
    /// Frees the cell.
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
    /// Moves the output into `*mut Poll<Result<T, JoinError>>` when done,
    /// else registers the waker.
    pub(crate) try_read_output: unsafe fn(NonNull<Header>, *mut (), &Waker),
    /// Drops the `JoinHandle`'s interest and reference.
    pub(crate) drop_join_handle: unsafe fn(NonNull<Header>),
    /// Cancels the task at runtime shutdown; consumes one reference.
    pub(crate) shutdown: unsafe fn(NonNull<Header>),
}

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

#[repr(C)]
struct Cell<F: Future, S> {
    header: Header,
    scheduler: S,
    stage: UnsafeCell<Stage<F>>,
    join_waker: AtomicWaker,
}

struct Vtables<F, S>(PhantomData<(F, S)>);

impl<F: Future, S: Schedule> Vtables<F, S> {
    const VTABLE: Vtable = Vtable {
        poll: poll::<F, S>,
        schedule: schedule::<F, S>,
        dealloc: dealloc::<F, S>,
        try_read_output: try_read_output::<F, S>,
        drop_join_handle: drop_join_handle::<F, S>,
        shutdown: shutdown::<F, S>,
    };
}

/// Allocates a task, its cell from `heap` (the home node's heap) when
/// given and willing, else from the global allocator. Returns the owned-list reference, the first queue
/// reference and the `JoinHandle` (three references in all).
///
/// The caller must make sure the future is only polled and dropped where
/// that is sound: any thread for a `Send` future, the spawning worker for a
/// local one.
pub(crate) fn new_task<F, S>(
    future: F,
    scheduler: S,
    id: Id,
    home: Home,
    heap: Option<NodeHeap>,
) -> (Task, Notified, JoinHandle<F::Output>)
where
    F: Future + 'static,
    S: Schedule,
{
    let cell = Cell {
        header: Header {
            state: State::new(),
            vtable: &Vtables::<F, S>::VTABLE,
            links: Links::new(),
            id,
            home: HomeCell::new(home),
            cell_heap: None,
        },
        scheduler,
        stage: UnsafeCell::new(Stage::Running(future)),
        join_waker: AtomicWaker::new(),
    };
    let (cell, served_by) = alloc_cell(heap, cell);
    // SAFETY: the cell is fresh and not shared yet.
    unsafe { (*cell.as_ptr()).header.cell_heap = served_by };
    let ptr = cell.cast::<Header>();
    let raw = RawTask { ptr };
    (
        Task { raw },
        Notified(Task { raw }),
        JoinHandle::new(raw, id),
    )
}

/// A pointer to a task that owns nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawTask {
    ptr: NonNull<Header>,
}

// SAFETY: a RawTask is only a pointer; every access to the cell goes through
// the state machine, which hands out exclusive access to the stage.
unsafe impl Send for RawTask {}
// SAFETY: as above; `&RawTask` gives no more access than `RawTask`.
unsafe impl Sync for RawTask {}

impl RawTask {
    /// # Safety
    /// `ptr` must point to a live task header.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> RawTask {
        RawTask { ptr }
    }

    pub(crate) fn header_ptr(self) -> NonNull<Header> {
        self.ptr
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: a RawTask is only made from a live cell, and the callers
        // hold a reference (or the list lock) that keeps it alive.
        unsafe { self.ptr.as_ref() }
    }

    pub(crate) fn id(&self) -> Id {
        self.header().id
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.header().state.load().is_complete()
    }

    /// Asks the task to cancel itself.
    pub(crate) fn remote_abort(self) {
        if let ToNotified::Submit = self.header().state.transition_to_notified_by_abort() {
            // SAFETY: the transition added the reference `schedule` consumes.
            unsafe { (self.header().vtable.schedule)(self.ptr) }
        }
    }

    /// # Safety
    /// `dst` must point to a `Poll<Result<T, JoinError>>` of the task's
    /// output type, and the caller must hold join interest.
    pub(crate) unsafe fn try_read_output(self, dst: *mut (), waker: &Waker) {
        // SAFETY: forwarded from the caller.
        unsafe { (self.header().vtable.try_read_output)(self.ptr, dst, waker) }
    }

    /// # Safety
    /// Called once, by the `JoinHandle`, which gives up its reference.
    pub(crate) unsafe fn drop_join_handle(self) {
        // SAFETY: forwarded from the caller.
        unsafe { (self.header().vtable.drop_join_handle)(self.ptr) }
    }

    pub(crate) fn ref_inc(self) {
        self.header().state.ref_inc();
    }

    /// # Safety
    /// The caller gives up one reference it holds.
    pub(crate) unsafe fn drop_reference(self) {
        if self.header().state.ref_dec() {
            // SAFETY: that was the last reference: nobody else can reach
            // the cell.
            unsafe { (self.header().vtable.dealloc)(self.ptr) }
        }
    }
}

/// One counted reference to a task.
pub(crate) struct Task {
    raw: RawTask,
}

impl Task {
    /// # Safety
    /// The caller transfers one reference it holds.
    pub(crate) unsafe fn from_raw(raw: RawTask) -> Task {
        Task { raw }
    }

    pub(crate) fn raw(&self) -> RawTask {
        self.raw
    }

    pub(crate) fn header(&self) -> &Header {
        self.raw.header()
    }

    /// Gives up the reference without dropping it.
    pub(crate) fn into_raw(self) -> RawTask {
        let raw = self.raw;
        mem::forget(self);
        raw
    }

    /// Cancels the task at shutdown (or takes no action when it is running
    /// or done) and drops this reference.
    pub(crate) fn shutdown(self) {
        let raw = self.into_raw();
        // SAFETY: our reference is handed to `shutdown`, which consumes it.
        unsafe { (raw.header().vtable.shutdown)(raw.ptr) }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        // SAFETY: a Task owns one reference.
        unsafe { self.raw.drop_reference() }
    }
}

/// A task in a run queue: the reference `NOTIFIED` stands for.
pub(crate) struct Notified(Task);

// SAFETY: a Notified only moves the pointer between threads; local (!Send)
// tasks are only ever queued on, and run by, their own worker.
unsafe impl Send for Notified {}

impl Notified {
    /// # Safety
    /// The caller transfers one reference that stands for `NOTIFIED`.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> Notified {
        Notified(Task {
            raw: RawTask { ptr },
        })
    }

    pub(crate) fn header(&self) -> &Header {
        self.0.header()
    }

    /// Cancels the task without polling it (its queue was dropped) and
    /// drops this reference.
    pub(crate) fn shutdown(self) {
        self.0.shutdown();
    }

    /// Polls the task, consuming this reference.
    pub(crate) fn run(self) {
        let raw = self.0.into_raw();
        // SAFETY: `poll` takes over the queue reference we held.
        unsafe { (raw.header().vtable.poll)(raw.ptr) }
    }
}

// ---- the monomorphized functions ----

/// # Safety
/// `ptr` must be a live `Cell<F, S>`.
unsafe fn cell<'a, F: Future, S>(ptr: NonNull<Header>) -> &'a Cell<F, S> {
    // SAFETY: the header is the first field of a `repr(C)` cell.
    unsafe { ptr.cast::<Cell<F, S>>().as_ref() }
}

unsafe fn poll<F: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: the vtable is only installed on `Cell<F, S>`.
    let cell = unsafe { cell::<F, S>(ptr) };
    match cell.header.state.transition_to_running() {
        // SAFETY: we drop the queue reference we were given.
        ToRunning::Skip => unsafe { RawTask { ptr }.drop_reference() },
        ToRunning::Cancel => {
            // SAFETY: we hold RUNNING, so the stage is ours.
            unsafe { cancel_stage(cell) };
            // SAFETY: RUNNING held, one reference held.
            unsafe { complete::<F, S>(ptr) }
        }
        ToRunning::Run => {
            let waker = waker_ref(ptr);
            let mut cx = Context::from_waker(&waker);
            // SAFETY: we hold RUNNING.
            let ready = unsafe { poll_stage(cell, &mut cx) };
            // A hop asked during this poll moves the task's home; the
            // wake-up it sent then queues the task there.
            if let Some(home) = crate::locality::hop::take_request() {
                cell.header.home.set(home);
            }
            if ready {
                // SAFETY: RUNNING held, one reference held.
                return unsafe { complete::<F, S>(ptr) };
            }
            match cell.header.state.transition_to_idle() {
                // SAFETY: our queue reference is no longer needed.
                ToIdle::Idle => unsafe { RawTask { ptr }.drop_reference() },
                ToIdle::Notified => {
                    // SAFETY: NOTIFIED stays set and our reference stands
                    // for it.
                    let task = unsafe { Notified::from_raw(ptr) };
                    cell.scheduler.schedule(task, true);
                }
                ToIdle::Cancel => {
                    // SAFETY: still RUNNING: the stage is ours.
                    unsafe { cancel_stage(cell) };
                    // SAFETY: RUNNING held, one reference held.
                    unsafe { complete::<F, S>(ptr) }
                }
            }
        }
    }
}

/// Polls the future; on completion (or panic) stores the output and returns
/// `true`.
///
/// # Safety
/// The caller holds RUNNING.
unsafe fn poll_stage<F: Future, S>(cell: &Cell<F, S>, cx: &mut Context<'_>) -> bool {
    let stage = cell.stage.get();
    let polled = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: RUNNING gives us exclusive access to the stage, and a
        // future in the cell is never moved, so pinning it is sound.
        let future = match unsafe { &mut *stage } {
            Stage::Running(future) => unsafe { Pin::new_unchecked(future) },
            _ => unreachable!("a task was polled after it completed"),
        };
        future.poll(cx)
    }));
    let output = match polled {
        Ok(Poll::Pending) => return false,
        Ok(Poll::Ready(value)) => Ok(value),
        Err(payload) => Err(JoinError::panic(cell.header.id, payload)),
    };
    // SAFETY: still exclusive; the future is dropped before the output is
    // stored.
    let old = unsafe { mem::replace(&mut *stage, Stage::Consumed) };
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(old)));
    let output = match (output, dropped) {
        (Ok(_), Err(payload)) => Err(JoinError::panic(cell.header.id, payload)),
        (output, _) => output,
    };
    // SAFETY: still exclusive.
    unsafe { *stage = Stage::Finished(output) };
    true
}

/// Drops the future and stores a cancellation error.
///
/// # Safety
/// The caller holds RUNNING.
unsafe fn cancel_stage<F: Future, S>(cell: &Cell<F, S>) {
    let stage = cell.stage.get();
    // SAFETY: RUNNING gives exclusive access.
    let old = unsafe { mem::replace(&mut *stage, Stage::Consumed) };
    let err = match catch_unwind(AssertUnwindSafe(move || drop(old))) {
        Ok(()) => JoinError::cancelled(cell.header.id),
        Err(payload) => JoinError::panic(cell.header.id, payload),
    };
    // SAFETY: still exclusive.
    unsafe { *stage = Stage::Finished(Err(err)) };
}

/// Publishes completion, wakes the joiner, leaves the owned list and drops
/// the caller's reference.
///
/// # Safety
/// The caller holds RUNNING and one reference.
unsafe fn complete<F: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: the vtable is only installed on `Cell<F, S>`.
    let cell = unsafe { cell::<F, S>(ptr) };
    // Leave the owned list first, so a task whose JoinHandle has resolved
    // is no longer counted alive.
    let raw = RawTask { ptr };
    let refs = if cell.scheduler.release(raw) { 2 } else { 1 };
    let prev = cell.header.state.transition_to_complete();
    if prev.has_join_interest() {
        cell.join_waker.wake();
    } else {
        // Nobody will read the output: drop it here.
        // SAFETY: without join interest the stage stays ours after COMPLETE.
        let old = unsafe { mem::replace(&mut *cell.stage.get(), Stage::Consumed) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(old)));
    }
    if cell.header.state.ref_dec_by(refs) {
        // SAFETY: those were the last references.
        unsafe { dealloc::<F, S>(ptr) }
    }
}

unsafe fn schedule<F: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: the vtable is only installed on `Cell<F, S>`.
    let cell = unsafe { cell::<F, S>(ptr) };
    // SAFETY: the caller hands over a reference that stands for NOTIFIED.
    let task = unsafe { Notified::from_raw(ptr) };
    cell.scheduler.schedule(task, false);
}

unsafe fn dealloc<F: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: this was the last reference, so the cell is still live.
    let heap = unsafe { ptr.as_ref() }.cell_heap;
    // SAFETY: `new_task` made the cell with `alloc_cell`, which returned
    // the heap stored in its header; nobody can reach the cell any more.
    unsafe { free_cell(ptr.cast::<Cell<F, S>>(), heap) }
}

unsafe fn try_read_output<F: Future, S: Schedule>(
    ptr: NonNull<Header>,
    dst: *mut (),
    waker: &Waker,
) {
    // SAFETY: the vtable is only installed on `Cell<F, S>`.
    let cell = unsafe { cell::<F, S>(ptr) };
    if !cell.header.state.load().is_complete() {
        cell.join_waker.register(waker);
        if !cell.header.state.load().is_complete() {
            return;
        }
    }
    // SAFETY: COMPLETE is set and we hold join interest: the stage is ours.
    let stage = unsafe { mem::replace(&mut *cell.stage.get(), Stage::Consumed) };
    let Stage::Finished(output) = stage else {
        panic!("JoinHandle polled after it returned its output");
    };
    // SAFETY: the caller passes a pointer to this output type.
    let dst = unsafe { &mut *dst.cast::<Poll<Result<F::Output, JoinError>>>() };
    *dst = Poll::Ready(output);
}

unsafe fn drop_join_handle<F: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: the vtable is only installed on `Cell<F, S>`.
    let cell = unsafe { cell::<F, S>(ptr) };
    if cell.header.state.unset_join_interest().is_err() {
        // The task completed with us interested: its output is ours.
        // SAFETY: COMPLETE set and join interest held.
        let old = unsafe { mem::replace(&mut *cell.stage.get(), Stage::Consumed) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(old)));
    }
    // SAFETY: the JoinHandle's reference.
    unsafe { RawTask { ptr }.drop_reference() }
}

unsafe fn shutdown<F: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: the vtable is only installed on `Cell<F, S>`.
    let cell = unsafe { cell::<F, S>(ptr) };
    if cell.header.state.transition_to_shutdown() {
        // SAFETY: the transition gave us RUNNING.
        unsafe { cancel_stage(cell) };
        // SAFETY: RUNNING and the caller's reference are held.
        unsafe { complete::<F, S>(ptr) }
    } else {
        // SAFETY: the caller's reference.
        unsafe { RawTask { ptr }.drop_reference() }
    }
}
