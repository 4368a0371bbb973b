//! Time: [`sleep`], [`sleep_until`], [`timeout`], [`interval`].
//!
//! Timers live in the I/O driver of the thread that first polls them (a
//! heap per worker); a worker sleeps in the kernel no longer than its
//! earliest timer. A timer never fires before its deadline and, on an idle
//! runtime, within about a millisecond after it (io_uring and
//! `epoll_pwait2` take nanosecond timeouts).
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

pub mod error;
mod interval;
mod sleep;
mod timeout;

pub use interval::{interval, interval_at, Interval, MissedTickBehavior};
pub use sleep::{sleep, sleep_until, Sleep};
pub use std::time::{Duration, Instant};
pub use timeout::{timeout, timeout_at, Timeout};
