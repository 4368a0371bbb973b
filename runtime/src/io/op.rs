//! Futures over driver operations: [`Op`] (a ring operation owning its
//! buffers) and [`Readiness`] (waiting for a descriptor to be ready).

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use super::driver::{self, Completion, Driver};

/// A descriptor shared by a socket and the operations in flight on it, so
/// it is closed only after the kernel let go of it.
#[derive(Clone, Debug)]
pub(crate) struct SharedFd(pub(crate) Arc<OwnedFd>);

impl SharedFd {
    pub(crate) fn new(fd: OwnedFd) -> SharedFd {
        SharedFd(Arc::new(fd))
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// The current thread's driver, or an error saying why there is none.
pub(crate) fn current_driver() -> io::Result<Driver> {
    let found = match driver::current() {
        Some(d) if d.config().io => return Ok(d),
        other => other,
    };
    match (found, driver::creation_failure()) {
        (None, Some((kind, e))) => Err(io::Error::new(
            kind,
            format!("numa_rt: this thread's I/O driver could not be created: {e}"),
        )),
        _ => Err(io::Error::other(
            "numa_rt: no I/O driver on this thread: I/O must run inside a numa_rt runtime \
             built with I/O enabled (Builder::enable_io or enable_all, or #[numa_rt::main])",
        )),
    }
}

/// A ring operation in flight, owning `T`: whatever memory the kernel
/// reads or writes (buffers, address storage) and the descriptor.
pub(crate) struct Op<T: Send + 'static> {
    driver: Driver,
    key: usize,
    data: Option<T>,
    /// A successful result is a descriptor the kernel opened for us
    /// (`openat`, `accept`): if the future is dropped first, the driver
    /// closes it when the completion arrives.
    result_is_fd: bool,
}

/// What an abandoned operation whose result is a new descriptor leaves
/// with the driver: its data, and the order to close that descriptor.
pub(crate) struct ClosesResultFd(#[allow(dead_code)] pub(crate) driver::Keep);

// The kernel never points into `Op` itself, only into heap memory `T`
// owns, so moving an `Op` is fine.
impl<T: Send + 'static> Unpin for Op<T> {}

impl<T: Send + 'static> Op<T> {
    /// Submits `entry` on `driver` (the current thread's io_uring driver).
    ///
    /// # Safety
    /// Every pointer in `entry` must point into heap memory owned by `data`
    /// (which must not move when `data` is moved: `Vec`, `Box`) or into
    /// memory that lives forever.
    pub(crate) unsafe fn submit(
        driver: Driver,
        entry: io_uring::squeue::Entry,
        data: T,
    ) -> io::Result<Op<T>> {
        let key = driver.submit(entry)?;
        Ok(Op {
            driver,
            key,
            data: Some(data),
            result_is_fd: false,
        })
    }

    /// Marks a successful result as a descriptor this op owns until its
    /// future takes it: dropped before that, the driver closes it.
    pub(crate) fn result_is_fd(mut self) -> Op<T> {
        self.result_is_fd = true;
        self
    }
}

impl<T: Send + 'static> Future for Op<T> {
    type Output = (Completion, T);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let completion = ready!(this.driver.poll_op(this.key, cx));
        match this.data.take() {
            Some(data) => Poll::Ready((completion, data)),
            // Polled after completion: a caller bug, reported as an error
            // rather than a panic would need a value we no longer have.
            None => Poll::Pending,
        }
    }
}

impl<T: Send + 'static> Drop for Op<T> {
    fn drop(&mut self) {
        if let Some(data) = self.data.take() {
            // Still in flight (or finished but never looked at): the driver
            // keeps `data` until the kernel is done with it and cancels the
            // operation.
            let keep: driver::Keep = if self.result_is_fd {
                Box::new(ClosesResultFd(Box::new(data)))
            } else {
                Box::new(data)
            };
            self.driver.drop_op(self.key, Some(keep));
        }
    }
}

/// Waits until a descriptor is ready for some `poll` events.
#[derive(Debug)]
pub(crate) struct Readiness {
    driver: Driver,
    key: usize,
    fd: Option<SharedFd>,
    /// The completion was consumed (the slot is gone).
    done: bool,
}

impl Readiness {
    /// Starts waiting on the current thread's driver.
    pub(crate) fn new(fd: &SharedFd, events: u32) -> io::Result<Readiness> {
        let driver = current_driver()?;
        let key = driver.wait_ready(fd.raw(), events)?;
        Ok(Readiness {
            driver,
            key,
            fd: Some(fd.clone()),
            done: false,
        })
    }

    /// Waits on a descriptor owned elsewhere (`AsyncFd`): the kernel's poll
    /// holds its own reference to the open file meanwhile.
    pub(crate) fn new_raw(fd: RawFd, events: u32) -> io::Result<Readiness> {
        let driver = current_driver()?;
        let key = driver.wait_ready(fd, events)?;
        Ok(Readiness {
            driver,
            key,
            fd: None,
            done: false,
        })
    }

    /// Whether this wait is on a `block_on` thread's transient driver and
    /// polled from another thread: that driver is turned only while its
    /// thread blocks, so the wait may never end.
    pub(crate) fn is_stranded(&self) -> bool {
        self.driver.is_transient() && !self.driver.is_current()
    }

    /// The ready events (`poll` bits), once there are some.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<u32>> {
        if self.done {
            return Poll::Ready(Ok(0));
        }
        let c = ready!(self.driver.poll_op(self.key, cx));
        self.done = true;
        self.fd = None;
        Poll::Ready(c.into_result().map(|_| c.flags))
    }
}

impl Drop for Readiness {
    fn drop(&mut self) {
        if !self.done {
            let keep = self.fd.take().map(|fd| Box::new(fd) as driver::Keep);
            self.driver.drop_op(self.key, keep);
        }
    }
}

/// `poll` events for reading and for writing.
pub(crate) const READABLE: u32 = (libc::POLLIN | libc::POLLRDHUP) as u32;
pub(crate) const WRITABLE: u32 = libc::POLLOUT as u32;

/// Runs `attempt` until it does not block, waiting for `events` on `fd`
/// in between; `wait` holds the pending wait across polls.
pub(crate) fn poll_io<R>(
    fd: &SharedFd,
    wait: &mut Option<Readiness>,
    events: u32,
    cx: &mut Context<'_>,
    mut attempt: impl FnMut() -> io::Result<R>,
) -> Poll<io::Result<R>> {
    loop {
        if wait.as_ref().is_some_and(Readiness::is_stranded) {
            // Started on a `block_on` thread's driver, which nobody turns
            // now: wait again here (the attempt below checks readiness).
            *wait = None;
        }
        if let Some(w) = wait {
            let result = ready!(w.poll_ready(cx));
            *wait = None;
            result?;
        }
        match attempt() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *wait = Some(Readiness::new(fd, events)?);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return Poll::Ready(other),
        }
    }
}

/// Like [`poll_io`] as a future.
pub(crate) async fn io<R>(
    fd: &SharedFd,
    events: u32,
    mut attempt: impl FnMut() -> io::Result<R>,
) -> io::Result<R> {
    let mut wait = None;
    std::future::poll_fn(|cx| poll_io(fd, &mut wait, events, cx, &mut attempt)).await
}

/// A stream's multishot receive on io_uring (see the driver's `recv`
/// module): armed at the stream's first read, bound to the driver of the
/// thread that made it, released when the stream is dropped. Every read of
/// the stream, owned-buffer or `AsyncRead`, takes from it, so bytes come
/// out in order and no read needs a system call of its own.
///
/// Decided once and never changed, so finding it (or finding that this
/// stream has none: an epoll runtime) is one atomic load: no lock and no
/// driver clone per read.
#[derive(Debug, Default)]
pub(crate) struct MultiRecv {
    /// `Some(None)`: this stream's runtime has no multishot receives.
    slot: std::sync::OnceLock<Option<RecvHandle>>,
}

impl MultiRecv {
    /// Reads into the spare capacity of `buf` through the multishot
    /// receive, arming it at the first read. `None`: not available here
    /// (epoll, or the receive stopped and this thread cannot restart it):
    /// the caller receives by itself.
    pub(crate) async fn read(&self, fd: &SharedFd, buf: &mut Vec<u8>) -> Option<io::Result<usize>> {
        let h = self.slot_or_open()?;
        std::future::poll_fn(|cx| {
            let room = buf.capacity() - buf.len();
            let mut sink = |data: &[u8]| buf.extend_from_slice(data);
            transpose(
                h.driver
                    .poll_recv(h.key, &h.shared, cx, room, &mut sink, fd.raw(), || {
                        Box::new(fd.clone())
                    }),
            )
        })
        .await
    }

    /// `AsyncRead` through the multishot receive, arming it at the first
    /// read. `None` when it is not available (epoll, no driver on this
    /// thread, or it stopped and this thread cannot restart it): the caller
    /// reads by itself, and nothing is buffered meanwhile.
    pub(crate) fn poll_read(
        &self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Option<Poll<io::Result<()>>> {
        let h = self.slot_or_open()?;
        let room = buf.remaining();
        if room == 0 {
            return Some(Poll::Ready(Ok(())));
        }
        let mut sink = |data: &[u8]| buf.put_slice(data);
        let polled = h
            .driver
            .poll_recv(h.key, &h.shared, cx, room, &mut sink, fd.raw(), || {
                Box::new(fd.clone())
            })?;
        Some(polled.map(|r| r.map(drop)))
    }

    /// Readies the socket to be handed elsewhere: ends the receive that
    /// reads ahead (waiting briefly for its last completion) and fails if
    /// that would lose bytes, that is while received data is unread.
    pub(crate) fn release(&self) -> io::Result<()> {
        let Some(Some(h)) = self.slot.get() else {
            return Ok(());
        };
        h.driver
            .recv_stop(h.key, &h.shared, RELEASE_LIMIT)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "numa_rt: cannot stop the stream's receive to give the socket back: {e}"
                    ),
                )
            })?;
        if !h.driver.recv_idle(&h.shared) {
            return Err(io::Error::other(
                "numa_rt: into_std on io_uring: the stream had received bytes not yet read, \
                 which a std stream cannot hand over, so it was closed rather than lose them \
                 silently (call into_std only after reading what the peer sent)",
            ));
        }
        Ok(())
    }

    /// The driver and key, opened on the current io_uring driver if this
    /// stream has none yet.
    fn slot_or_open(&self) -> Option<&RecvHandle> {
        if let Some(slot) = self.slot.get() {
            return slot.as_ref();
        }
        if !multishot_enabled() {
            return self.slot.get_or_init(|| None).as_ref();
        }
        // No driver on this thread: nothing is decided (the caller's own
        // read reports the missing driver).
        let d = current_driver().ok()?;
        if d.is_transient() {
            // A `block_on` thread's driver: a receive armed there would
            // stall once the `block_on` returns. Decided by a worker's
            // first read.
            return None;
        }
        if d.backend() != super::config::Backend::Uring {
            return self.slot.get_or_init(|| None).as_ref();
        }
        // A closed driver: decided neither way either.
        let (key, shared) = d.recv_open().ok()?;
        let handle = RecvHandle {
            driver: d,
            key,
            shared,
        };
        // Two halves racing here: the loser closes its slot and uses the
        // winner's.
        if let Err(Some(h)) = self.slot.set(Some(handle)) {
            h.driver.recv_close(h.key, &h.shared);
        }
        self.slot.get().and_then(Option::as_ref)
    }
}

/// How long [`MultiRecv::release`] waits for the receive's last completion.
const RELEASE_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// A stream's receive slot: its driver, its key there, and the state both
/// share.
#[derive(Debug)]
struct RecvHandle {
    driver: Driver,
    key: usize,
    shared: driver::SharedRecv,
}

fn transpose<T>(p: Option<Poll<T>>) -> Poll<Option<T>> {
    match p {
        None => Poll::Ready(None),
        Some(Poll::Ready(r)) => Poll::Ready(Some(r)),
        Some(Poll::Pending) => Poll::Pending,
    }
}

impl Drop for MultiRecv {
    fn drop(&mut self) {
        if let Some(Some(h)) = self.slot.take() {
            h.driver.recv_close(h.key, &h.shared);
        }
    }
}

/// Whether stream reads on io_uring use multishot receives: yes unless
/// `NUMA_RT_URING_MULTISHOT=0` (for A/B measurements, see BENCHMARKS.md),
/// in which case every read receives by itself, at once or after a
/// readiness event, as on epoll.
pub(crate) fn multishot_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("NUMA_RT_URING_MULTISHOT").map_or(true, |v| v != "0"))
}
