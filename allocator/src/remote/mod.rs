//! The lock-free lists that carry remote frees back to a page's owner.
//!
//! `lists.rs` holds them; this module compiles it on `std` primitives for
//! the allocator, and [`loom`] compiles it again on loom's for the models
//! (see `crate::sync`).

use crate::sync::std as sync;

mod lists;

pub(crate) use lists::{walk, ReadyLink, ReadyList, ReadyNode, ThreadFree};

#[cfg(loom)]
pub mod loom;
