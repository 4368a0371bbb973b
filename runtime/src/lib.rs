//! The numa-rt runtime: topology discovery, locality, tasks, per-node
//! schedulers and I/O.
//!
//! Most users depend on the `numa-rt` facade crate, which re-exports this
//! crate's public API together with the macros and the allocator.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub(crate) mod blocking;
pub mod fs;
pub mod io;
pub mod locality;
pub(crate) mod loom;
#[cfg(all(test, loom))]
mod loom_models;
pub mod net;
pub mod runtime;
pub(crate) mod scheduler;
pub mod task;
pub mod time;
pub mod topology;

pub use numa_rt_alloc::NodeId;
pub use runtime::Runtime;
pub use task::{spawn, spawn_blocking, spawn_local, spawn_on};
