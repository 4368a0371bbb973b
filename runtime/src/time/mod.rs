//! Time: [`sleep`], [`sleep_until`], [`timeout`], [`interval`].
//!
//! Timers live in the I/O driver of the thread that first polls them (a
//! queue of in-order deadlines and a heap per worker); a worker sleeps in
//! the kernel no longer than its earliest timer. A timer never fires before
//! its deadline and, on an idle runtime, within about a millisecond after
//! it (io_uring and `epoll_pwait2` take nanosecond timeouts).
//!
//! Arming, polling and dropping a timer take no lock but the driver's (to
//! queue it, once) and allocate nothing in the steady state: a server that
//! arms a timeout per request and drops it when the request is done (hyper's
//! header-read timeout) reuses the entries of the timeouts it dropped. A
//! first poll reads no clock for a deadline more than a millisecond after
//! the driver's last reading.
//!
//! A thread outside the workers (a `block_on` of a multi-thread runtime, a
//! blocking-pool thread, a second thread in a current-thread runtime's
//! `block_on`) gets a driver of its own at its first timer or I/O. When that
//! driver cannot be created (no descriptors left: `EMFILE`), the thread's
//! timers go to a driver the runtime's other threads drive instead (a
//! worker's, or the current-thread runtime's), which is woken to take the
//! new deadline into account; the timer's waker reaches the waiting thread
//! as any cross-thread wake does. Such timers keep their precision and work
//! wherever the future is polled next. I/O on that thread fails with an
//! `io::Error` naming the driver that could not be created and why; its
//! next timer or I/O tries again to create one.
//!
//! ```
//! use std::time::Duration;
//! use numa_rt_runtime::runtime::Builder;
//! use numa_rt_runtime::time::{sleep, timeout, Instant};
//!
//! let rt = Builder::new_current_thread().enable_all().build().unwrap();
//! rt.block_on(async {
//!     let start = Instant::now();
//!     sleep(Duration::from_millis(5)).await;
//!     assert!(start.elapsed() >= Duration::from_millis(5));
//!     let slow = sleep(Duration::from_secs(60));
//!     assert!(timeout(Duration::from_millis(1), slow).await.is_err());
//! });
//! ```

pub(crate) mod entry;
pub mod error;
mod interval;
mod sleep;
mod timeout;

pub use interval::{interval, interval_at, Interval, MissedTickBehavior};
pub use sleep::{sleep, sleep_until, Sleep};
pub use std::time::{Duration, Instant};
pub use timeout::{timeout, timeout_at, Timeout};
