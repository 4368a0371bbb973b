//! Node-local memory for numa-rt.
//!
//! This crate knows NUMA nodes only by their [`NodeId`]; the rich topology
//! model (CPUs, distances, HMAT attributes) lives in `numa-rt-runtime`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod node_id;

pub use node_id::NodeId;
