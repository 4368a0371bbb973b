//! The I/O driver and the building blocks of `net` and `time`.
//!
//! Each worker owns a driver: an io_uring ring where the kernel allows it,
//! else an epoll instance (see [`IoDriver`]). The same API runs on both.
//! Socket reads and writes are readiness-based on both backends (a poll
//! operation on the ring, an epoll interest otherwise), and the owned-buffer
//! operations of `net` use real ring operations on io_uring. Dropping a
//! future with an operation in flight never lets the kernel write into freed
//! memory: the buffer and the descriptor stay in the driver until the
//! completion arrives, and an async cancel is submitted.

pub(crate) mod config;
pub(crate) mod driver;
pub(crate) mod op;
pub(crate) mod registration;
pub mod unix;

pub use config::{Backend, IoDriver};
pub use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
pub use unix::Interest;

use crate::runtime::handle::Scheduler;
use crate::runtime::Handle;
use config::IoConfig;

/// The I/O settings of the runtime behind `handle`, when it has a driver.
pub(crate) fn config_of(handle: &Handle) -> Option<IoConfig> {
    let config = match &handle.inner {
        Scheduler::MultiThread(shared) => shared.io_config.get().copied(),
        Scheduler::CurrentThread(ct) => ct.io.get().map(|d| d.config()),
    }?;
    (config.io || config.time).then_some(config)
}

/// The backend the current runtime's I/O runs on; `None` outside a runtime
/// with I/O enabled.
pub fn current_backend() -> Option<Backend> {
    crate::runtime::context::with_handle(|h| h.and_then(config_of)).map(|c| c.backend)
}
