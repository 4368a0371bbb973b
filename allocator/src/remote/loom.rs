//! The lists of `lists.rs` on loom primitives, for the models in
//! `tests/loom_*.rs`. Only built with `--cfg loom`.

pub use crate::sync::loom as sync;

// Loaded twice on purpose: the point is that the model checks the very
// source the allocator runs.
#[allow(clippy::duplicate_mod)]
#[path = "lists.rs"]
mod lists;

pub use lists::{walk, Drain, ReadyLink, ReadyList, ReadyNode, ThreadFree};
