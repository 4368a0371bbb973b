//! The blocking pool: threads that run closures which may block, so that
//! worker threads never do.
//!
//! Each NUMA node gets its own [`BlockingPool`] (held together by
//! [`NodePools`]), whose threads may be pinned to the node's CPUs, so a
//! `spawn_blocking` closure reads and writes the memory of the node that
//! spawned it. Threads are started on demand up to a maximum and exit after
//! a keep-alive period without work.
//!
//! Shutdown follows tokio's rules: once a pool shuts down it refuses new
//! jobs, jobs that are running finish, queued jobs are dropped without
//! running unless they were spawned as mandatory, and
//! [`BlockingPool::shutdown`] returns after its timeout even if a job is
//! stuck, leaving that thread detached.

mod affinity;
mod config;
mod error;
mod nodes;
mod pool;

pub(crate) use affinity::pin_current_thread;
#[allow(unused_imports)]
pub(crate) use config::{Callback, Config, ThreadNameFn};
pub(crate) use error::SpawnError;
#[allow(unused_imports)]
pub(crate) use nodes::{split_max_threads, NodePools};
pub(crate) use pool::BlockingPool;
