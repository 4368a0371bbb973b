//! The executors: a multi-thread work-stealing scheduler with one pool of
//! workers per NUMA node, and a current-thread scheduler that runs tasks on
//! the thread calling `block_on`.

pub(crate) mod affinity;
pub(crate) mod current_thread;
pub(crate) mod idle;
pub(crate) mod metrics;
pub(crate) mod park;
pub(crate) mod pool;
pub(crate) mod queue;
pub(crate) mod shared;
pub(crate) mod worker;
