//! `AsyncFd`: readiness for descriptors the runtime does not own (pipes,
//! eventfds, devices, sockets from other libraries).

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use super::op::{Readiness, READABLE, WRITABLE};

/// Waits for a foreign descriptor to become readable or writable.
///
/// The descriptor must be in non-blocking mode. Each wait is one-shot: run
/// the operation, and wait again when it says `WouldBlock` (which
/// [`async_io`](Self::async_io) does for you).
///
/// ```
/// # let rt = numa_rt_runtime::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # rt.block_on(async {
/// use std::io::{Read, Write};
/// use numa_rt_runtime::io::{unix::AsyncFd, Interest};
/// let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// b.set_nonblocking(true).unwrap();
/// let fd = AsyncFd::new(b).unwrap();
/// a.write_all(b"x").unwrap();
/// let mut one = [0u8; 1];
/// let n = fd.async_io(Interest::READABLE, |mut s| s.read(&mut one)).await.unwrap();
/// assert_eq!(n, 1);
/// # });
/// ```
#[derive(Debug)]
pub struct AsyncFd<T: AsRawFd> {
    inner: T,
}

/// Which readiness to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest(u32);

impl Interest {
    /// Wait for reading (or end of stream, error, hang-up).
    pub const READABLE: Interest = Interest(READABLE);
    /// Wait for writing (or error, hang-up).
    pub const WRITABLE: Interest = Interest(WRITABLE);
}

impl<T: AsRawFd> AsyncFd<T> {
    /// Wraps `inner`. Errs outside a runtime with I/O enabled.
    pub fn new(inner: T) -> io::Result<AsyncFd<T>> {
        super::op::current_driver()?;
        Ok(AsyncFd { inner })
    }

    /// The wrapped value.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped value, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.inner
    }

    fn raw(&self) -> RawFd {
        self.inner.as_raw_fd()
    }

    /// Waits until the descriptor is ready for `interest`.
    pub async fn ready(&self, interest: Interest) -> io::Result<()> {
        let mut wait = Readiness::new_raw(self.raw(), interest.0)?;
        std::future::poll_fn(|cx| wait.poll_ready(cx))
            .await
            .map(drop)
    }

    /// Waits until readable.
    pub async fn readable(&self) -> io::Result<()> {
        self.ready(Interest::READABLE).await
    }

    /// Waits until writable.
    pub async fn writable(&self) -> io::Result<()> {
        self.ready(Interest::WRITABLE).await
    }

    /// Runs `f` until it does not fail with `WouldBlock`, waiting for
    /// `interest` in between.
    pub async fn async_io<R>(
        &self,
        interest: Interest,
        mut f: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            match f(&self.inner) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.ready(interest).await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}
