//! The synchronization primitives of the runtime's concurrent core (run
//! queues, the task state machine, the join waker slot, park/unpark and the
//! idle set), taken from one place so that loom can check that core on the
//! real code.
//!
//! A normal build re-exports `std`'s types: nothing changes, no wrapper, no
//! cost. Built with `RUSTFLAGS="--cfg loom"` the same names resolve to
//! loom's instrumented types, and the models in `loom_models` (compiled only
//! then) drive the real `queue`, `task` and `park` code under loom's
//! exhaustive scheduler. The rest of the runtime keeps `std`'s types in
//! both builds; it is not exercised under loom.
//!
//! Two pieces are not plain re-exports:
//! - [`cell::UnsafeCell`]: under loom a thin wrapper whose `get()` records a
//!   mutable access at the moment the pointer is taken, so loom reports a
//!   slot or stage that two threads touch without a happens-before edge.
//! - `futex`: under loom the kernel's futex is emulated with one mutex and
//!   condition variable (the check of the word and the sleep are atomic
//!   with respect to a wake, as in the kernel), so a sleeper nobody wakes
//!   shows up as a loom deadlock.

/// `Arc` and locks.
pub(crate) mod sync {
    #[cfg(loom)]
    pub(crate) use ::loom::sync::{Arc, Mutex, MutexGuard};
    #[cfg(not(loom))]
    pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

    /// Atomic integers, fences and orderings.
    pub(crate) mod atomic {
        #[cfg(loom)]
        pub(crate) use ::loom::sync::atomic::{
            fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering,
        };
        #[cfg(not(loom))]
        pub(crate) use std::sync::atomic::{
            fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering,
        };
    }
}

/// Interior mutability handed between threads by an atomic protocol.
pub(crate) mod cell {
    #[cfg(not(loom))]
    pub(crate) use std::cell::UnsafeCell;

    /// `std::cell::UnsafeCell`'s `new`/`get` on loom's checked cell.
    #[cfg(loom)]
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(::loom::cell::UnsafeCell<T>);

    #[cfg(loom)]
    impl<T> UnsafeCell<T> {
        /// A cell holding `value`.
        #[track_caller]
        pub(crate) fn new(value: T) -> UnsafeCell<T> {
            UnsafeCell(::loom::cell::UnsafeCell::new(value))
        }

        /// A pointer to the value. loom records a mutable access here and
        /// fails the model when an earlier access by another thread does
        /// not happen before it. The callers read or write through the
        /// pointer at once, with no synchronization in between, so the
        /// recorded point is where the access really happens.
        #[track_caller]
        pub(crate) fn get(&self) -> *mut T {
            self.0.with_mut(|ptr| ptr)
        }
    }
}

/// The futex wait and wake `scheduler::park` sleeps on, emulated for loom.
#[cfg(loom)]
pub(crate) mod futex {
    use std::sync::PoisonError;
    use std::time::Duration;

    use super::sync::atomic::{AtomicU32, Ordering::Relaxed};
    use ::loom::sync::{Condvar, Mutex};

    ::loom::lazy_static! {
        /// One wait queue for every futex word (the kernel hashes words to
        /// buckets; a single bucket only adds spurious wake-ups, which
        /// futex callers must tolerate anyway).
        static ref BUCKET: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }

    /// Sleeps while `*word == expected`. A timed wait returns at once, as
    /// if the timeout had expired (models only use untimed waits).
    pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
        let (lock, condvar) = &*BUCKET;
        let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        // The kernel reads the word under the bucket lock, which a wake
        // takes after changing it: no wake can slip between this check and
        // the sleep. The read itself orders nothing (Relaxed).
        if word.load(Relaxed) != expected || timeout.is_some() {
            return;
        }
        drop(condvar.wait(guard).unwrap_or_else(PoisonError::into_inner));
    }

    /// Wakes the sleepers of `word` (all sleepers of the single bucket).
    pub(crate) fn futex_wake(_word: &AtomicU32) {
        let (lock, condvar) = &*BUCKET;
        let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        condvar.notify_all();
    }
}
