//! The state one timer shares between its future and the driver that
//! fires it: one word of flags and a waker slot, no lock.
//!
//! Two parties touch a timer: its owner (the `Sleep`, polled and dropped
//! on whatever thread runs its task, one at a time) and the driver holding
//! it in its queue (under the driver's lock, so one at a time too). The
//! waker slot belongs to exactly one of them at any moment, and the flags
//! say which:
//!
//! - the owner holds it while `REGISTERING` is set, and for good once it
//!   has set `CANCELLED` before the driver set `FIRED`;
//! - the driver holds it for good once it has set `FIRED` while neither
//!   `REGISTERING` nor `CANCELLED` was set.
//!
//! Every hand-over is one read-modify-write of the word (acquire-release),
//! so each side sees the other's writes to the slot, and nobody waits: a
//! fire that meets a registration in progress leaves the waker to the
//! owner, who sees `FIRED` as it leaves and reports the timer as fired (its
//! task is being polled right now: no wake is needed).

use std::task::Waker;

use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::AtomicUsize;
use crate::loom::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

/// The owner is writing the waker slot.
const REGISTERING: usize = 0b001;
/// The deadline passed (set by the driver).
const FIRED: usize = 0b010;
/// The owner is gone (set by the owner).
const CANCELLED: usize = 0b100;

/// The part of a timer shared between its future and the driver.
pub(crate) struct TimerShared {
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: the waker slot is only touched by the party the state word gives
// it to (see the module doc), with an acquire-release hand-over in between.
unsafe impl Send for TimerShared {}
// SAFETY: as above.
unsafe impl Sync for TimerShared {}

impl std::fmt::Debug for TimerShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.load(Relaxed);
        f.debug_struct("TimerShared")
            .field("fired", &(state & FIRED != 0))
            .field("cancelled", &(state & CANCELLED != 0))
            .finish_non_exhaustive()
    }
}

impl TimerShared {
    /// A timer that will wake `waker` when it fires.
    pub(crate) fn new(waker: Waker) -> TimerShared {
        TimerShared {
            state: AtomicUsize::new(0),
            waker: UnsafeCell::new(Some(waker)),
        }
    }

    /// Makes a timer nobody else refers to as good as new (for recycling:
    /// the caller proved exclusive access with `&mut`).
    pub(crate) fn reuse(&mut self, waker: Waker) {
        self.state = AtomicUsize::new(0);
        self.waker = UnsafeCell::new(Some(waker));
    }

    /// Owner: records `waker` to be woken when the timer fires; `true`
    /// when it already has (nothing is recorded then).
    pub(crate) fn register(&self, waker: &Waker) -> bool {
        let before = self.state.fetch_or(REGISTERING, Acquire);
        if before & FIRED != 0 {
            // The slot is the driver's (or was emptied by an earlier
            // registration that met the fire): leave it alone.
            return true;
        }
        {
            // SAFETY: REGISTERING set before FIRED: the slot is ours until
            // we clear the flag (the driver leaves it alone meanwhile).
            let slot = unsafe { &mut *self.waker.get() };
            match slot {
                Some(w) if w.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        }
        let during = self.state.fetch_and(!REGISTERING, AcqRel);
        if during & FIRED == 0 {
            return false;
        }
        // The driver fired while we held the slot and left the waker to us:
        // we are being polled, so report the fire instead of waking.
        // SAFETY: the driver saw REGISTERING and gave up the slot for good.
        let stale = unsafe { (*self.waker.get()).take() };
        drop(stale);
        true
    }

    /// Owner, when it goes away: from now on the driver only drops the
    /// timer. Lets go of the waker at once (a waker kept in a queued entry
    /// would keep its task, and through it the runtime, alive).
    pub(crate) fn cancel(&self) {
        let before = self.state.fetch_or(CANCELLED, AcqRel);
        if before & FIRED == 0 {
            // SAFETY: CANCELLED set before FIRED: the driver never touches
            // the slot again, and we are not registering (we are the owner).
            let waker = unsafe { (*self.waker.get()).take() };
            drop(waker);
        }
    }

    /// Driver: marks the timer fired; the waker to wake, unless the owner
    /// is gone or is polling it right now.
    pub(crate) fn fire(&self) -> Option<Waker> {
        let before = self.state.fetch_or(FIRED, AcqRel);
        if before & (REGISTERING | CANCELLED | FIRED) != 0 {
            return None;
        }
        // SAFETY: FIRED set while the owner held nothing: the slot is ours
        // for good (the owner checks FIRED before touching it).
        unsafe { (*self.waker.get()).take() }
    }

    /// Driver: whether the owner is gone.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.state.load(Relaxed) & CANCELLED != 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Relaxed);
        }
    }

    fn counted() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        (count, waker)
    }

    #[test]
    fn fire_hands_out_the_registered_waker_once() {
        let (count, waker) = counted();
        let t = TimerShared::new(waker.clone());
        assert!(!t.register(&waker));
        t.fire().expect("a waker").wake();
        assert!(t.fire().is_none());
        assert!(t.register(&waker));
        assert_eq!(count.0.load(Relaxed), 1);
    }

    #[test]
    fn register_replaces_a_different_waker() {
        let (first, w1) = counted();
        let (second, w2) = counted();
        let t = TimerShared::new(w1);
        assert_eq!(Arc::strong_count(&first), 2);
        assert!(!t.register(&w2));
        // The old waker was dropped, the new one is kept.
        assert_eq!(Arc::strong_count(&first), 1);
        assert_eq!(Arc::strong_count(&second), 3);
        t.fire().expect("a waker").wake();
        assert_eq!(second.0.load(Relaxed), 1);
        assert_eq!(first.0.load(Relaxed), 0);
    }

    #[test]
    fn cancel_drops_the_waker_and_fire_then_does_nothing() {
        let (count, waker) = counted();
        let t = TimerShared::new(waker);
        assert_eq!(Arc::strong_count(&count), 2);
        t.cancel();
        assert_eq!(Arc::strong_count(&count), 1);
        assert!(t.is_cancelled());
        assert!(t.fire().is_none());
    }

    #[test]
    fn reuse_starts_over() {
        let (count, waker) = counted();
        let mut t = TimerShared::new(waker.clone());
        t.fire().expect("a waker");
        t.cancel();
        t.reuse(waker.clone());
        assert!(!t.is_cancelled());
        assert!(!t.register(&waker));
        t.fire().expect("a waker").wake();
        assert_eq!(count.0.load(Relaxed), 1);
    }

    #[test]
    fn racing_fire_and_register_wake_or_report_exactly_once() {
        for _ in 0..500 {
            let (count, waker) = counted();
            let t = Arc::new(TimerShared::new(waker.clone()));
            let driver = {
                let t = t.clone();
                std::thread::spawn(move || {
                    if let Some(w) = t.fire() {
                        w.wake();
                    }
                })
            };
            let mut reported = t.register(&waker);
            driver.join().unwrap();
            // Whichever way the race went, the fire is seen now.
            if !reported {
                reported = t.register(&waker);
                assert!(reported);
                assert_eq!(count.0.load(Relaxed), 1, "fired but nobody woken");
            }
            t.cancel();
            drop(waker);
            // No waker is left behind in the slot either way.
            drop(t);
            assert_eq!(Arc::strong_count(&count), 1);
        }
    }
}
