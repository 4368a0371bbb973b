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
mod derive_target;
mod expand;
mod locality;
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

/// Places an `async fn` by the resources its arguments name.
///
/// `#[locality(a, b = 3, strict)]` lists arguments that implement
/// `numa_rt::locality::Target` (a `NodeVec`, a socket, a node id, a
/// `#[derive(Target)]` struct...), each with an optional weight, and
/// optionally `strict`. When the returned future runs inside a numa-rt
/// multi-thread runtime, it first moves its whole task to the node that
/// placement chooses for those targets (a hop), then runs the body there;
/// a spawned call hops on its first poll. Under another executor, in
/// `block_on` or in a `spawn_local` task it runs where it is. The body's
/// polls are counted as on or off target in `numa_rt::locality::metrics()`.
///
/// ```ignore
/// #[numa_rt::locality(index, log = 2)]
/// async fn lookup(index: &NodeVec<u64>, log: &NodeVec<u8>, key: u64) -> Option<u64> {
///     index.iter().copied().find(|&k| k == key)
/// }
/// ```
///
/// `crate = "path"` names the `numa_rt` crate when it is renamed.
#[proc_macro_attribute]
pub fn locality(args: TokenStream, item: TokenStream) -> TokenStream {
    locality::expand(args.into(), item.into()).into()
}

/// Makes a struct whose fields are targets a `numa_rt::locality::Target`:
/// each field adds the nodes it lives on.
///
/// Field options: `#[target(skip)]` leaves a field out, `#[target(weight
/// = N)]` counts it `N` times. `#[target(crate = "path")]` on the struct
/// names the `numa_rt` crate when it is renamed.
///
/// ```ignore
/// #[derive(numa_rt::Target)]
/// struct Shard {
///     index: NodeVec<u64>,
///     #[target(weight = 4)]
///     rows: NodeVec<u8>,
///     #[target(skip)]
///     name: String,
/// }
/// ```
#[proc_macro_derive(Target, attributes(target))]
pub fn derive_target(input: TokenStream) -> TokenStream {
    derive_target::expand(input.into()).into()
}
