//! Building, running and shutting down a runtime.
//!
//! ```
//! use numa_rt_runtime::runtime::Builder;
//! let rt = Builder::new_current_thread().build().unwrap();
//! assert_eq!(rt.block_on(async { 40 + 2 }), 42);
//! ```

mod builder;
pub(crate) mod context;
pub(crate) mod handle;
mod metrics;
mod pools;
mod rt;

pub use builder::Builder;
pub use handle::{EnterGuard, Handle, RuntimeFlavor, TryCurrentError};
pub use metrics::RuntimeMetrics;
pub use pools::{Pools, POOLS_ENV};
pub use rt::Runtime;
