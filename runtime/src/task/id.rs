//! Task ids.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// An opaque id of a task, unique among all tasks alive in the process.
///
/// ```
/// # numa_rt_runtime::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let handle = numa_rt_runtime::spawn(async {});
/// let first = handle.id();
/// let second = numa_rt_runtime::spawn(async {}).id();
/// assert_ne!(first, second);
/// # });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(NonZeroU64);

impl Id {
    pub(crate) fn next() -> Id {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Relaxed);
        // The counter starts at 1 and would take centuries to wrap.
        Id(NonZeroU64::new(n).unwrap_or(NonZeroU64::MIN))
    }

    pub(crate) fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
