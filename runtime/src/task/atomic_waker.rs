//! A slot for one waker that one thread registers and another wakes,
//! without a lock. Used for the `JoinHandle`'s waker.

use std::task::Waker;

use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::AtomicUsize;
use crate::loom::sync::atomic::Ordering::{AcqRel, Acquire, Release};

const WAITING: usize = 0;
const REGISTERING: usize = 0b01;
const WAKING: usize = 0b10;

pub(crate) struct AtomicWaker {
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: the waker slot is only touched by the thread that moved the state
// out of WAITING (REGISTERING or WAKING), which excludes the other side.
unsafe impl Send for AtomicWaker {}
// SAFETY: as above.
unsafe impl Sync for AtomicWaker {}

impl AtomicWaker {
    pub(crate) fn new() -> AtomicWaker {
        AtomicWaker {
            state: AtomicUsize::new(WAITING),
            waker: UnsafeCell::new(None),
        }
    }

    /// Stores `waker` to be woken by the next [`wake`](Self::wake). If a
    /// wake races the registration, `waker` is woken at once.
    pub(crate) fn register(&self, waker: &Waker) {
        match self
            .state
            .compare_exchange(WAITING, REGISTERING, Acquire, Acquire)
        {
            Ok(_) => {
                // SAFETY: REGISTERING gives us the slot.
                let slot = unsafe { &mut *self.waker.get() };
                match slot {
                    Some(old) if old.will_wake(waker) => {}
                    _ => *slot = Some(waker.clone()),
                }
                if self
                    .state
                    .compare_exchange(REGISTERING, WAITING, AcqRel, Acquire)
                    .is_err()
                {
                    // A wake came in meanwhile (state is REGISTERING|WAKING):
                    // it could not take the waker, so we wake it ourselves.
                    let waker = slot.take();
                    self.state.swap(WAITING, AcqRel);
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                }
            }
            Err(WAKING) => waker.wake_by_ref(),
            // Another registration is running concurrently: only one
            // registrant is allowed, so this cannot happen for JoinHandles.
            Err(_) => {}
        }
    }

    /// Wakes the registered waker, if any.
    pub(crate) fn wake(&self) {
        if let Some(waker) = self.take() {
            waker.wake();
        }
    }

    fn take(&self) -> Option<Waker> {
        match self.state.fetch_or(WAKING, AcqRel) {
            WAITING => {
                // SAFETY: WAKING (with no REGISTERING) gives us the slot.
                let waker = unsafe { (*self.waker.get()).take() };
                self.state.fetch_and(!WAKING, Release);
                waker
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, AcqRel);
        }
    }

    #[test]
    fn wakes_registered_waker_once() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let slot = AtomicWaker::new();
        slot.wake();
        slot.register(&waker);
        slot.wake();
        slot.wake();
        assert_eq!(count.0.load(Acquire), 1);
    }

    #[test]
    fn concurrent_wake_is_not_lost() {
        for _ in 0..200 {
            let count = Arc::new(Count(AtomicUsize::new(0)));
            let slot = Arc::new(AtomicWaker::new());
            let waker = Waker::from(count.clone());
            let s2 = slot.clone();
            let t = std::thread::spawn(move || s2.wake());
            slot.register(&waker);
            t.join().unwrap();
            slot.wake();
            assert!(count.0.load(Acquire) >= 1);
        }
    }
}
