//! Putting an idle worker to sleep and waking it, without spinning.
//!
//! A [`Parker`] is a one-token latch on a futex word: [`unpark`] leaves a
//! token (waking the sleeper if there is one), [`park`] consumes the token
//! or sleeps in the kernel until one arrives. This is the single place a
//! worker blocks, so the I/O driver can later replace it by a wait on the
//! worker's ring (which an unpark then interrupts).
//!
//! [`park`]: Parker::park
//! [`unpark`]: Parker::unpark

use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

#[cfg(loom)]
use crate::loom::futex::{futex_wait, futex_wake};
use crate::loom::sync::atomic::AtomicU32;
use crate::loom::sync::atomic::Ordering::{Acquire, Release};

const EMPTY: u32 = 0;
const NOTIFIED: u32 = 1;
const PARKED: u32 = u32::MAX;
/// Parked in the I/O driver: the driver's eventfd ends the wait, the futex
/// is not used (an unpark then costs no futex call).
const PARKED_IN_DRIVER: u32 = u32::MAX - 1;

/// Wakes an I/O driver the parked thread waits in.
pub(crate) type IoUnpark = Arc<dyn Fn() + Send + Sync>;

/// A thread's sleep latch; see the module docs.
#[derive(Default)]
pub(crate) struct Parker {
    state: AtomicU32,
    /// Set when the parking thread waits in its I/O driver instead of on
    /// the futex: unpark then also wakes the driver. Read only by an
    /// unpark of a thread parked in its driver.
    io: Mutex<Option<IoUnpark>>,
}

impl std::fmt::Debug for Parker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parker")
            .field("state", &self.state)
            .field("io", &self.has_io())
            .finish()
    }
}

impl Parker {
    pub(crate) fn new() -> Parker {
        Parker {
            state: AtomicU32::new(EMPTY),
            io: Mutex::new(None),
        }
    }

    /// From now on the parking thread waits in its I/O driver (timers
    /// included), and `unpark` wakes it with `wake`. Called by the parking
    /// thread itself; a later call (the thread's driver was replaced, as a
    /// `block_on` thread's is when it runs another runtime) wins.
    pub(crate) fn attach_io(&self, wake: IoUnpark) {
        *self.io.lock().unwrap_or_else(|e| e.into_inner()) = Some(wake);
    }

    fn io_unpark(&self) -> Option<IoUnpark> {
        self.io.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the parking thread waits in its I/O driver.
    fn has_io(&self) -> bool {
        self.io.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Sleeps until [`unpark`](Self::unpark) is called (returns at once if
    /// it already was since the last park).
    pub(crate) fn park(&self) {
        self.park_inner(None);
    }

    /// Like [`park`](Self::park) but returns after `timeout` at the latest.
    pub(crate) fn park_timeout(&self, timeout: Duration) {
        self.park_inner(Some(timeout));
    }

    fn park_inner(&self, timeout: Option<Duration>) {
        // NOTIFIED -> EMPTY (consume the token) or EMPTY -> PARKED.
        if self.state.fetch_sub(1, Acquire) == NOTIFIED {
            return;
        }
        if self.has_io() {
            // Say the wait is in the driver, unless a token raced in.
            if self
                .state
                .compare_exchange(PARKED, PARKED_IN_DRIVER, Acquire, Acquire)
                .is_err()
            {
                self.state.swap(EMPTY, Acquire);
                return;
            }
            if crate::io::driver::park_current(timeout) {
                // One wait in the driver (I/O, timers and unparks end it);
                // the caller re-checks its queues, so an early return is
                // fine.
                self.state.swap(EMPTY, Acquire);
                return;
            }
            // No driver to wait in after all: wait on the futex.
            if self
                .state
                .compare_exchange(PARKED_IN_DRIVER, PARKED, Acquire, Acquire)
                .is_err()
            {
                self.state.swap(EMPTY, Acquire);
                return;
            }
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let remaining = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(r) if !r.is_zero() => Some(r),
                    _ => break,
                },
                None => None,
            };
            futex_wait(&self.state, PARKED, remaining);
            if self
                .state
                .compare_exchange(NOTIFIED, EMPTY, Acquire, Acquire)
                .is_ok()
            {
                return;
            }
        }
        // Timed out: leave PARKED (a token that raced in is consumed by
        // this return).
        self.state.swap(EMPTY, Acquire);
    }

    /// Wakes the parked thread, or makes its next park return at once.
    pub(crate) fn unpark(&self) {
        match self.state.swap(NOTIFIED, Release) {
            PARKED => futex_wake(&self.state),
            PARKED_IN_DRIVER => {
                if let Some(wake) = self.io_unpark() {
                    wake();
                }
            }
            _ => {}
        }
    }
}

/// Sleeps while `*word == expected`, for at most `timeout`.
#[cfg(not(loom))]
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: FUTEX_WAIT reads the aligned u32 behind `word`, which lives as
    // long as this call; `ts_ptr` is null or points to a live timespec.
    // Errors (EAGAIN when the value changed, EINTR) only mean "look again",
    // which the callers do.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ts_ptr,
        );
    }
}

#[cfg(not(loom))]
fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

/// A parker for a thread blocked in `block_on`, usable as a `Waker`.
#[derive(Debug, Default)]
pub(crate) struct ThreadParker {
    pub(crate) parker: Parker,
}

impl Wake for ThreadParker {
    fn wake(self: Arc<Self>) {
        self.parker.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.parker.unpark();
    }
}

thread_local! {
    static CURRENT: (Arc<ThreadParker>, Waker) = {
        let parker = Arc::new(ThreadParker::default());
        let waker = Waker::from(parker.clone());
        (parker, waker)
    };
}

/// This thread's parker and a waker that unparks it (made once per
/// thread).
pub(crate) fn current() -> (Arc<ThreadParker>, Waker) {
    CURRENT
        .try_with(|(p, w)| (p.clone(), w.clone()))
        .unwrap_or_else(|_| {
            // The thread-local is being destroyed: use a fresh pair.
            let parker = Arc::new(ThreadParker::default());
            let waker = Waker::from(parker.clone());
            (parker, waker)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_before_park_returns_at_once() {
        let p = Parker::new();
        p.unpark();
        p.park();
        let start = Instant::now();
        p.park_timeout(Duration::from_millis(20));
        assert!(start.elapsed() >= Duration::from_millis(15));
    }

    #[test]
    fn unpark_from_other_thread_wakes() {
        let p = Arc::new(ThreadParker::default());
        let p2 = p.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            p2.parker.unpark();
        });
        let start = Instant::now();
        p.parker.park();
        assert!(start.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
    }
}
