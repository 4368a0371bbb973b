//! Cooperative scheduling: each task poll gets a budget of operations, so
//! one task that always finds work ready (a busy channel, a completed
//! `JoinHandle`) yields to the others instead of starving them.
//!
//! Workers set the budget around every poll; resources (here the
//! `JoinHandle`, later I/O and timers) spend one unit per operation and
//! return `Pending` (after waking the task) once it is spent.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::task::{Context, Poll};

/// Operations a task may do in one poll (tokio's value).
pub(crate) const INITIAL_BUDGET: u8 = 128;

thread_local! {
    /// `None` outside a runtime-driven poll: unlimited.
    static BUDGET: Cell<Option<u8>> = const { Cell::new(None) };
}

/// Runs `f` with a fresh budget, restoring the previous one afterwards.
#[inline]
pub(crate) fn budget<R>(f: impl FnOnce() -> R) -> R {
    with_budget(Some(INITIAL_BUDGET), f)
}

/// Runs `f` with no budget limit (a blocking task).
pub(crate) fn stop() {
    let _ = BUDGET.try_with(|b| b.set(None));
}

#[inline]
fn with_budget<R>(budget: Option<u8>, f: impl FnOnce() -> R) -> R {
    struct Reset(Option<u8>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let _ = BUDGET.try_with(|b| b.set(self.0));
        }
    }
    let prev = BUDGET.try_with(|b| b.replace(budget)).ok().flatten();
    let _reset = Reset(prev);
    f()
}

/// Whether the current poll may still do work.
pub(crate) fn has_budget_remaining() -> bool {
    BUDGET.try_with(|b| b.get() != Some(0)).unwrap_or(true)
}

/// Spends one unit of budget, or wakes the task and returns `Pending` when
/// none is left. Dropping the returned guard without calling
/// [`made_progress`](RestoreOnPending::made_progress) gives the unit back.
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<RestoreOnPending> {
    let prev = BUDGET.try_with(|b| b.get()).ok().flatten();
    match prev {
        Some(0) => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        Some(n) => {
            let _ = BUDGET.try_with(|b| b.set(Some(n - 1)));
            Poll::Ready(RestoreOnPending(Cell::new(prev)))
        }
        None => Poll::Ready(RestoreOnPending(Cell::new(None))),
    }
}

/// Gives a unit of budget back unless progress was made.
pub(crate) struct RestoreOnPending(Cell<Option<u8>>);

impl RestoreOnPending {
    pub(crate) fn made_progress(&self) {
        self.0.set(None);
    }
}

impl Drop for RestoreOnPending {
    fn drop(&mut self) {
        if let Some(prev) = self.0.get() {
            let _ = BUDGET.try_with(|b| b.set(Some(prev)));
        }
    }
}

/// Spends one unit of the task's cooperative budget, yielding to the
/// scheduler when it is used up.
///
/// Use it in loops that otherwise never return `Pending` (for example one
/// that only computes, or only reads from always-ready sources):
///
/// ```
/// # numa_rt_runtime::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut sum = 0u64;
/// for i in 0..10_000u64 {
///     sum += i;
///     numa_rt_runtime::task::consume_budget().await;
/// }
/// assert_eq!(sum, 49_995_000);
/// # });
/// ```
pub fn consume_budget() -> impl Future<Output = ()> + Send + Sync {
    let mut done = false;
    poll_fn(move |cx| {
        if done {
            return Poll::Ready(());
        }
        let restore = std::task::ready!(poll_proceed(cx));
        restore.made_progress();
        done = true;
        Poll::Ready(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    #[test]
    fn budget_runs_out_and_resets() {
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        assert!(has_budget_remaining());
        budget(|| {
            for _ in 0..INITIAL_BUDGET {
                match poll_proceed(&mut cx) {
                    Poll::Ready(r) => r.made_progress(),
                    Poll::Pending => panic!("budget ran out early"),
                }
            }
            assert!(!has_budget_remaining());
            assert!(poll_proceed(&mut cx).is_pending());
            // Not making progress gives the unit back.
        });
        assert!(has_budget_remaining());
        budget(|| {
            if let Poll::Ready(r) = poll_proceed(&mut cx) {
                drop(r);
            }
            assert_eq!(BUDGET.with(|b| b.get()), Some(INITIAL_BUDGET));
        });
    }
}
