//! numa-rt: an async runtime that knows where data lives.
//!
//! This facade re-exports the runtime, the macros and the allocator as one
//! API. See the README for an overview.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub use numa_rt_alloc as alloc;
pub use numa_rt_runtime::topology;
pub use numa_rt_runtime::NodeId;
pub use numa_rt_runtime::{fs, io, net, time};
pub use numa_rt_runtime::{locality, runtime, task};
pub use numa_rt_runtime::{spawn, spawn_blocking, spawn_local, spawn_on, Runtime};

#[cfg(feature = "hyper")]
pub mod hyper;
#[cfg(feature = "hyper")]
pub use crate::hyper::serve;
#[cfg(feature = "tokio-compat")]
pub mod compat;
pub mod signal;

pub use numa_rt_macros::{locality, main, test, Target};
pub use numa_rt_runtime::uses;

#[doc(hidden)]
#[path = "macro_support.rs"]
pub mod __private;

/// The README's Rust examples, compiled and run as doc tests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
