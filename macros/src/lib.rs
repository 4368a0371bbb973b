//! Attribute macros for numa-rt. Use them through the `numa-rt` crate:
//! `#[numa_rt::main]` and `#[numa_rt::test]`.
//!
//! Both turn an `async fn` into a plain one that builds a runtime and blocks
//! on the function's body. Options, as in tokio, plus numa-rt's own:
//!
//! | option | meaning |
//! | --- | --- |
//! | `flavor = "multi_thread"` / `"current_thread"` | the scheduler (main defaults to multi-thread, test to current-thread) |
//! | `worker_threads = N` | workers per node (multi-thread only) |
//! | `nodes = "0,2-3"` or `nodes = [0, 2, 3]` | run pools on these NUMA nodes only |
//! | `topology = "2x1"` | a synthetic topology (the `NUMA_RT_TOPOLOGY` format), checked at compile time |
//! | `crate = "path"` | where the `numa_rt` crate is, when renamed or re-exported |
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod config;
mod expand;
mod spec;

use proc_macro::TokenStream;

/// Runs an `async fn main` on a numa-rt runtime (multi-threaded by
/// default, one pool per NUMA node).
///
/// ```ignore
/// #[numa_rt::main(worker_threads = 2, topology = "2x1")]
/// async fn main() {
///     let answer = numa_rt::spawn(async { 42 }).await.unwrap();
///     assert_eq!(answer, 42);
/// }
/// ```
///
/// expands to a `fn main` that builds the runtime with
/// `numa_rt::runtime::Builder::new_multi_thread()`, the options given, and
/// `enable_all()`, then calls `block_on` with the body. Building the runtime
/// panics with the builder's error message when it fails (for example a
/// synthetic topology with more CPUs than the process may use).
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry(args.into(), item.into(), expand::Kind::Main).into()
}

/// Runs an `async fn` test on its own numa-rt runtime (current-thread by
/// default, as tokio's test macro does).
///
/// ```ignore
/// #[numa_rt::test(flavor = "multi_thread", worker_threads = 1, topology = "2x1")]
/// async fn runs_on_node_one() {
///     let node = numa_rt::spawn_on(numa_rt::NodeId::new(1), async {
///         numa_rt::task::current_node()
///     })
///     .await
///     .unwrap();
///     assert_eq!(node, Some(numa_rt::NodeId::new(1)));
/// }
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry(args.into(), item.into(), expand::Kind::Test).into()
}
