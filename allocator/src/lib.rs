//! Node-local memory for numa-rt.
//!
//! This crate knows NUMA nodes only by their [`NodeId`]; the rich topology
//! model (CPUs, distances, HMAT attributes) lives in `numa-rt-runtime`,
//! which tells this crate what it needs through a [`PlacementHook`].
//!
//! - [`NumaAlloc`]: a global allocator serving each thread from its node.
//! - [`NodeBox`], [`NodeVec`]: data placed on a chosen node or
//!   [`MemoryKind`], with [`NodeBox::migrate_to`] / [`NodeVec::migrate_to`].
//! - [`NodeHeap`]: one node's heap as an `allocator_api2` allocator.
//! - [`node_stats`]: bytes mapped and in use, huge pages, remote frees.
//!
//! # Design
//!
//! Memory comes from 4 MiB segments, aligned so a block finds its segment
//! by masking its address, bound to their node with `mbind`. Each thread
//! has a heap per node; a heap splits segments into pages serving one size
//! class each, with page-local free lists. Frees from other threads go to
//! the page's atomic list and return to the owner in batches: no lock on
//! the allocation or free path. Blocks above 128 KiB are mappings of their
//! own, grown with `mremap`. All system calls live in [`os`].
//!
//! The runtime's `Target` implementations for `NodeBox`/`NodeVec` and
//! `NodeBox::new_near` (placement next to a device or other data) belong
//! to `numa-rt-runtime`, which owns the topology.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod global;
mod heap;
mod large;
mod node_box;
mod node_heap;
mod node_id;
mod node_vec;
pub mod os;
mod placement;
mod raw;
#[cfg(not(loom))]
mod remote;
#[cfg(loom)]
#[doc(hidden)]
pub mod remote;
mod segment;
mod size_class;
mod stats;
mod sync;
mod thread;
mod valgrind;

pub use global::NumaAlloc;
pub use node_box::NodeBox;
pub use node_heap::NodeHeap;
pub use node_id::NodeId;
pub use node_vec::NodeVec;
pub use os::BindPolicy;
pub use placement::{
    bind_policy, check_node, current_node, node_fallback, set_bind_policy, set_node_fallback,
    set_placement_hook, AllocError, MemoryKind, PlacementHook,
};
pub use stats::{all_stats, node_stats, NodeStats};
pub use thread::{set_thread_node, trim};
