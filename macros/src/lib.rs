//! Attribute macros for numa-rt. Use them through the `numa-rt` crate:
//! `#[numa_rt::main]`, `#[numa_rt::test]`.
#![deny(unsafe_op_in_unsafe_fn)]
