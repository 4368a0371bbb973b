//! hyper and tower on numa_rt (feature `hyper`, on by default).
//!
//! hyper leaves two things to its runtime: spawning background tasks and
//! timers. [`Executor`] and [`Timer`] give it numa_rt's, and
//! [`serve`](crate::serve) runs any tower service (an axum `Router`, a
//! hyper-util adapted service) over HTTP/1.1 and HTTP/2 with graceful
//! shutdown, so no tokio runtime is involved. [`TimeoutLayer`] replaces
//! tower's and tower-http's timeouts, which sleep on tokio's timer.
//!
//! numa_rt's `TcpStream` implements tokio's `AsyncRead`/`AsyncWrite`, so
//! hyper-util's [`TokioIo`] adapts it to hyper's I/O traits.

mod executor;
mod serve;
mod timeout;
mod timer;

pub use executor::Executor;
pub use hyper_util::rt::TokioIo;
pub use serve::{serve, Listeners, Serve, WithGracefulShutdown};
pub use timeout::{Timeout, TimeoutLayer};
pub use timer::Timer;
