//! The atomic word that drives a task's life: lifecycle flags in the low
//! bits, the reference count in the high bits.
//!
//! Rules the rest of the task module relies on:
//! - whoever sets `RUNNING` owns the task's stage (future or output) until
//!   it clears `RUNNING` or sets `COMPLETE`;
//! - a task sits in at most one run queue: `NOTIFIED` is set by the one
//!   wake that queued it and cleared when a worker starts running it;
//! - after `COMPLETE`, the stage belongs to the `JoinHandle` if it still
//!   has join interest, else to the runtime, which drops the output.

use crate::loom::sync::atomic::AtomicUsize;
use crate::loom::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

const RUNNING: usize = 0b0_0001;
const COMPLETE: usize = 0b0_0010;
const NOTIFIED: usize = 0b0_0100;
const CANCELLED: usize = 0b0_1000;
const JOIN_INTEREST: usize = 0b1_0000;

const REF_SHIFT: u32 = 6;
const REF_ONE: usize = 1 << REF_SHIFT;

/// A new task: one reference for the owned-task list, one for the
/// `JoinHandle`, one for the queue it is first pushed to.
const INITIAL: usize = (3 * REF_ONE) | JOIN_INTEREST | NOTIFIED;

pub(crate) struct State(AtomicUsize);

/// A copy of the state word.
#[derive(Clone, Copy)]
pub(crate) struct Snapshot(usize);

impl Snapshot {
    pub(crate) fn is_running(self) -> bool {
        self.0 & RUNNING != 0
    }
    pub(crate) fn is_complete(self) -> bool {
        self.0 & COMPLETE != 0
    }
    #[cfg(test)]
    pub(crate) fn is_notified(self) -> bool {
        self.0 & NOTIFIED != 0
    }
    pub(crate) fn has_join_interest(self) -> bool {
        self.0 & JOIN_INTEREST != 0
    }
    #[cfg(test)]
    pub(crate) fn ref_count(self) -> usize {
        self.0 >> REF_SHIFT
    }
}

/// What a worker should do after trying to start a queued task.
pub(crate) enum ToRunning {
    /// Poll the future.
    Run,
    /// The task was aborted: drop the future and complete as cancelled.
    Cancel,
    /// The task is already complete (or being shut down): only drop the
    /// queue's reference.
    Skip,
}

/// What a worker should do after a poll returned `Pending`.
pub(crate) enum ToIdle {
    /// Nothing woke the task: drop the queue's reference.
    Idle,
    /// The task was woken while it ran: queue it again with the same
    /// reference.
    Notified,
    /// The task was aborted while it ran: cancel it now.
    Cancel,
}

/// What a waker should do.
pub(crate) enum ToNotified {
    /// Queue the task (the caller supplies one reference).
    Submit,
    /// Nothing to queue.
    DoNothing,
}

impl State {
    pub(crate) fn new() -> State {
        State(AtomicUsize::new(INITIAL))
    }

    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Acquire))
    }

    fn update<T>(&self, mut f: impl FnMut(usize) -> (Option<usize>, T)) -> T {
        let mut cur = self.0.load(Acquire);
        loop {
            let (next, out) = f(cur);
            let Some(next) = next else { return out };
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return out,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Called by a worker holding the queue's reference.
    pub(crate) fn transition_to_running(&self) -> ToRunning {
        self.update(|cur| {
            if cur & (RUNNING | COMPLETE) != 0 {
                return (None, ToRunning::Skip);
            }
            let next = (cur | RUNNING) & !NOTIFIED;
            let action = if cur & CANCELLED != 0 {
                ToRunning::Cancel
            } else {
                ToRunning::Run
            };
            (Some(next), action)
        })
    }

    /// Called after a poll returned `Pending`; the caller keeps its queue
    /// reference in every case.
    pub(crate) fn transition_to_idle(&self) -> ToIdle {
        self.update(|cur| {
            debug_assert!(cur & RUNNING != 0);
            if cur & CANCELLED != 0 {
                return (None, ToIdle::Cancel);
            }
            let next = cur & !(RUNNING | NOTIFIED);
            if cur & NOTIFIED != 0 {
                // Keep NOTIFIED set: the caller's reference queues it again.
                (Some(next | NOTIFIED), ToIdle::Notified)
            } else {
                (Some(next), ToIdle::Idle)
            }
        })
    }

    /// Clears `RUNNING` and sets `COMPLETE`; returns the previous state.
    pub(crate) fn transition_to_complete(&self) -> Snapshot {
        let prev = Snapshot(self.0.fetch_xor(RUNNING | COMPLETE, AcqRel));
        debug_assert!(prev.is_running() && !prev.is_complete());
        prev
    }

    /// A wake that does not consume a reference. On `Submit` one reference
    /// has been added for the queue.
    pub(crate) fn transition_to_notified_by_ref(&self) -> ToNotified {
        self.update(|cur| {
            if cur & (COMPLETE | NOTIFIED) != 0 {
                (None, ToNotified::DoNothing)
            } else if cur & RUNNING != 0 {
                (Some(cur | NOTIFIED), ToNotified::DoNothing)
            } else {
                (Some((cur | NOTIFIED) + REF_ONE), ToNotified::Submit)
            }
        })
    }

    /// A wake that consumes the caller's reference. On `Submit` that
    /// reference becomes the queue's; on `DoNothing` the caller must drop it
    /// (see the returned flag: `true` when it was the last).
    pub(crate) fn transition_to_notified_by_val(&self) -> (ToNotified, bool) {
        self.update(|cur| {
            if cur & RUNNING != 0 {
                let next = (cur | NOTIFIED) - REF_ONE;
                (Some(next), (ToNotified::DoNothing, next >> REF_SHIFT == 0))
            } else if cur & (COMPLETE | NOTIFIED) != 0 {
                let next = cur - REF_ONE;
                (Some(next), (ToNotified::DoNothing, next >> REF_SHIFT == 0))
            } else {
                (Some(cur | NOTIFIED), (ToNotified::Submit, false))
            }
        })
    }

    /// Marks the task cancelled. On `Submit` a reference was added and the
    /// caller must queue the task so a worker cancels it.
    pub(crate) fn transition_to_notified_by_abort(&self) -> ToNotified {
        self.update(|cur| {
            if cur & (COMPLETE | CANCELLED) != 0 {
                (None, ToNotified::DoNothing)
            } else if cur & (RUNNING | NOTIFIED) != 0 {
                (Some(cur | CANCELLED), ToNotified::DoNothing)
            } else {
                (
                    Some((cur | CANCELLED | NOTIFIED) + REF_ONE),
                    ToNotified::Submit,
                )
            }
        })
    }

    /// Used when the runtime shuts down: takes `RUNNING` if the task is idle
    /// (returns `true`: the caller cancels it), else only marks it cancelled.
    pub(crate) fn transition_to_shutdown(&self) -> bool {
        self.update(|cur| {
            if cur & (RUNNING | COMPLETE) != 0 {
                (Some(cur | CANCELLED), false)
            } else {
                (Some(cur | RUNNING | CANCELLED), true)
            }
        })
    }

    /// Drops join interest unless the task completed already (`Err`: the
    /// caller owns the output and must drop it).
    pub(crate) fn unset_join_interest(&self) -> Result<(), ()> {
        self.update(|cur| {
            if cur & COMPLETE != 0 {
                (None, Err(()))
            } else {
                (Some(cur & !JOIN_INTEREST), Ok(()))
            }
        })
    }

    pub(crate) fn ref_inc(&self) {
        let prev = self.0.fetch_add(REF_ONE, Relaxed);
        if prev > isize::MAX as usize {
            std::process::abort();
        }
    }

    /// Drops `n` references; `true` when they were the last.
    pub(crate) fn ref_dec_by(&self, n: usize) -> bool {
        let prev = self.0.fetch_sub(n * REF_ONE, AcqRel);
        debug_assert!(prev >> REF_SHIFT >= n, "task reference count underflow");
        prev >> REF_SHIFT == n
    }

    pub(crate) fn ref_dec(&self) -> bool {
        self.ref_dec_by(1)
    }

    #[cfg(test)]
    pub(crate) fn store_release(&self, v: usize) {
        self.0.store(v, std::sync::atomic::Ordering::Release)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_then_idle_then_wake() {
        let s = State::new();
        assert!(matches!(s.transition_to_running(), ToRunning::Run));
        assert!(s.load().is_running() && !s.load().is_notified());
        // A wake while running only marks it.
        assert!(matches!(
            s.transition_to_notified_by_ref(),
            ToNotified::DoNothing
        ));
        assert!(matches!(s.transition_to_idle(), ToIdle::Notified));
        assert!(s.load().is_notified() && !s.load().is_running());
        assert!(matches!(s.transition_to_running(), ToRunning::Run));
        assert!(matches!(s.transition_to_idle(), ToIdle::Idle));
        assert_eq!(s.load().ref_count(), 3);
        assert!(matches!(
            s.transition_to_notified_by_ref(),
            ToNotified::Submit
        ));
        assert_eq!(s.load().ref_count(), 4);
    }

    #[test]
    fn abort_idle_task_queues_it_once() {
        let s = State::new();
        assert!(matches!(s.transition_to_running(), ToRunning::Run));
        assert!(matches!(s.transition_to_idle(), ToIdle::Idle));
        assert!(matches!(
            s.transition_to_notified_by_abort(),
            ToNotified::Submit
        ));
        assert!(matches!(
            s.transition_to_notified_by_abort(),
            ToNotified::DoNothing
        ));
        assert!(matches!(s.transition_to_running(), ToRunning::Cancel));
    }

    #[test]
    fn join_interest_races_completion() {
        let s = State::new();
        assert!(matches!(s.transition_to_running(), ToRunning::Run));
        assert!(s.unset_join_interest().is_ok());
        let prev = s.transition_to_complete();
        assert!(!prev.has_join_interest());
        let s = State::new();
        assert!(matches!(s.transition_to_running(), ToRunning::Run));
        let prev = s.transition_to_complete();
        assert!(prev.has_join_interest());
        assert!(s.unset_join_interest().is_err());
    }

    #[test]
    fn wake_by_val_on_complete_drops_last_ref() {
        let s = State::new();
        s.store_release(REF_ONE | COMPLETE);
        let (action, last) = s.transition_to_notified_by_val();
        assert!(matches!(action, ToNotified::DoNothing));
        assert!(last);
    }

    #[test]
    fn shutdown_takes_idle_tasks_only() {
        let s = State::new();
        assert!(s.transition_to_shutdown());
        let s = State::new();
        assert!(matches!(s.transition_to_running(), ToRunning::Run));
        assert!(!s.transition_to_shutdown());
        assert!(matches!(s.transition_to_idle(), ToIdle::Cancel));
    }
}
