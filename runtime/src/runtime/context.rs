//! What the current thread knows about the runtime it runs in: the handle
//! (for `Handle::current` and `spawn`), the worker it is (for queuing woken
//! tasks locally), its node, and whether a runtime is being driven here
//! (`block_on` may not nest).

use std::cell::{Cell, RefCell};

use super::Handle;
use crate::scheduler::worker::WorkerContext;
use crate::NodeId;

struct Context {
    worker: Cell<*const WorkerContext>,
    handle: RefCell<Option<Handle>>,
    node: Cell<Option<NodeId>>,
    entered: Cell<bool>,
}

thread_local! {
    static CONTEXT: Context = const {
        Context {
            worker: Cell::new(std::ptr::null()),
            handle: RefCell::new(None),
            node: Cell::new(None),
            entered: Cell::new(false),
        }
    };
}

/// Runs `f` with the worker this thread is, if it is one.
#[inline]
pub(crate) fn with_worker<R>(f: impl FnOnce(Option<&WorkerContext>) -> R) -> R {
    let ptr = CONTEXT
        .try_with(|c| c.worker.get())
        .unwrap_or(std::ptr::null());
    // SAFETY: the pointer is set by `WorkerGuard` for the duration of the
    // worker loop, on this thread, and cleared before the WorkerContext is
    // dropped.
    f(unsafe { ptr.as_ref() })
}

/// Wakes `waker` after the current worker ran its other work, or at once
/// when this thread is not a worker.
pub(crate) fn defer(waker: &std::task::Waker) {
    with_worker(|w| match w {
        Some(w) => w.defer(waker),
        None => waker.wake_by_ref(),
    })
}

/// The handle of the runtime this thread is in, if any.
pub(crate) fn handle() -> Option<Handle> {
    CONTEXT
        .try_with(|c| c.handle.borrow().clone())
        .ok()
        .flatten()
}

/// Runs `f` with the current runtime's handle, without cloning it.
#[inline]
pub(crate) fn with_handle<R>(f: impl FnOnce(Option<&Handle>) -> R) -> R {
    let mut f = Some(f);
    let result = CONTEXT.try_with(|c| match c.handle.try_borrow() {
        Ok(h) => f.take().map(|f| f(h.as_ref())),
        Err(_) => None,
    });
    match (result, f) {
        (Ok(Some(r)), _) => r,
        (_, Some(f)) => f(None),
        // `f` ran, so the result is set.
        (_, None) => unreachable!("with_handle: closure ran without a result"),
    }
}

/// The node the current thread's tasks run on.
pub(crate) fn node() -> Option<NodeId> {
    CONTEXT.try_with(|c| c.node.get()).ok().flatten()
}

/// Restores the previous context when dropped.
pub(crate) struct SetGuard {
    handle: Option<Handle>,
    node: Option<NodeId>,
    worker: *const WorkerContext,
    entered: bool,
}

/// Makes `handle` current (for `Handle::current`, `spawn`) until the guard
/// drops.
pub(crate) fn set_handle(handle: Handle, node: Option<NodeId>) -> SetGuard {
    CONTEXT.with(|c| SetGuard {
        handle: c.handle.replace(Some(handle)),
        node: c.node.replace(node),
        worker: c.worker.get(),
        entered: c.entered.get(),
    })
}

/// Marks this thread as driving a runtime (a worker or a `block_on`).
/// Errs when it already is.
pub(crate) fn enter_runtime(handle: Handle, node: Option<NodeId>) -> Result<SetGuard, ()> {
    CONTEXT.with(|c| {
        if c.entered.get() {
            return Err(());
        }
        let guard = SetGuard {
            handle: c.handle.replace(Some(handle)),
            node: c.node.replace(node),
            worker: c.worker.get(),
            entered: false,
        };
        c.entered.set(true);
        Ok(guard)
    })
}

/// Makes this thread the worker `worker` until the guard drops.
///
/// The caller must keep `worker` alive and in place while the guard lives.
pub(crate) fn set_worker(worker: &WorkerContext) -> SetGuard {
    CONTEXT.with(|c| {
        let guard = SetGuard {
            handle: c.handle.borrow().clone(),
            node: c.node.get(),
            worker: c.worker.replace(worker as *const WorkerContext),
            entered: c.entered.get(),
        };
        c.entered.set(true);
        guard
    })
}

impl Drop for SetGuard {
    fn drop(&mut self) {
        let _ = CONTEXT.try_with(|c| {
            let previous = c.handle.replace(self.handle.take());
            c.node.set(self.node);
            c.worker.set(self.worker);
            c.entered.set(self.entered);
            // Dropped after the RefCell borrow ended.
            drop(previous);
        });
    }
}
