//! Settings of a blocking pool.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::topology::CpuSet;

/// A hook run on a pool thread (on start or before it exits).
pub(crate) type Callback = Arc<dyn Fn() + Send + Sync>;

/// Makes the name of each new pool thread.
pub(crate) type ThreadNameFn = Arc<dyn Fn() -> String + Send + Sync>;

/// The default cap on blocking threads for a whole runtime (tokio's too).
pub(crate) const DEFAULT_MAX_THREADS: usize = 512;

/// How long an idle thread waits for work before it exits.
pub(crate) const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Settings of one [`BlockingPool`](super::BlockingPool).
#[derive(Clone)]
pub(crate) struct Config {
    /// The most threads the pool runs at once (at least 1).
    pub(crate) max_threads: usize,
    /// How long an idle thread lives before it exits.
    pub(crate) keep_alive: Duration,
    /// Names new threads.
    pub(crate) thread_name: ThreadNameFn,
    /// Stack size of new threads; the standard library's default if `None`.
    pub(crate) stack_size: Option<usize>,
    /// CPUs to pin the threads to; unpinned if `None`.
    pub(crate) cpus: Option<CpuSet>,
    /// Runs on each new thread before it takes jobs.
    pub(crate) on_thread_start: Option<Callback>,
    /// Runs on each thread just before it exits.
    pub(crate) on_thread_stop: Option<Callback>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_threads: DEFAULT_MAX_THREADS,
            keep_alive: DEFAULT_KEEP_ALIVE,
            thread_name: Arc::new(|| "numa-rt-blocking".to_string()),
            stack_size: None,
            cpus: None,
            on_thread_start: None,
            on_thread_stop: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("max_threads", &self.max_threads)
            .field("keep_alive", &self.keep_alive)
            .field("stack_size", &self.stack_size)
            .field("cpus", &self.cpus.as_ref().map(ToString::to_string))
            .field("on_thread_start", &self.on_thread_start.is_some())
            .field("on_thread_stop", &self.on_thread_stop.is_some())
            .finish_non_exhaustive()
    }
}
