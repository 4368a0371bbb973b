//! The byte-stream side of [`File`](super::File): `AsyncRead`,
//! `AsyncWrite` and `AsyncSeek` (tokio's and futures-io's) over the file
//! position.
//!
//! Like tokio::fs::File, a file has at most one operation in flight, and
//! that operation owns the file's internal buffer: a read fills it (and
//! the caller's slice is filled from it), a write sends a copy of the
//! caller's bytes. `poll_write` returns as soon as its write is *started*;
//! the next operation (or `flush`) waits for it and reports its error.
//! Dropping a read or write future therefore never loses data nor lets
//! the kernel write into freed memory: the operation stays with the file
//! and the next call picks up its result.
//!
//! On io_uring each operation is a ring read or write at the file position;
//! on the epoll fallback, a closure on the blocking pool.

use std::future::Future;
use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use super::blocking::cvt;
use super::ring;
use crate::io::op::SharedFd;

/// The largest single read or write a stream operation does (as tokio).
pub(super) const MAX_BUF: usize = 2 * 1024 * 1024;

/// The finished operation a stream waits for.
enum Done {
    /// A read into the buffer's spare capacity.
    Read(io::Result<usize>, Vec<u8>),
    /// A write of the whole buffer.
    Write(io::Result<()>, Vec<u8>),
}

type OpFuture = Pin<Box<dyn Future<Output = Done> + Send>>;

/// The stream state of one file.
pub(super) struct Stream {
    /// The operation in flight, if any (it owns the buffer meanwhile).
    busy: Exclusive<Option<OpFuture>>,
    /// The buffer: when idle, `buf[consumed..]` are bytes read ahead of
    /// what the reader took (the kernel position is that far ahead).
    buf: Vec<u8>,
    consumed: usize,
    /// The error of a write started by `poll_write`, reported by the next
    /// write or flush.
    last_write_err: Option<io::Error>,
    /// A seek asked for by `start_seek`, done by `poll_complete`.
    pending_seek: Option<SeekFrom>,
}

impl Stream {
    pub(super) fn new() -> Stream {
        Stream {
            busy: Exclusive(None),
            buf: Vec::new(),
            consumed: 0,
            last_write_err: None,
            pending_seek: None,
        }
    }

    /// Bytes read ahead and not yet handed out.
    fn unread(&self) -> usize {
        self.buf.len() - self.consumed
    }

    /// Waits for the operation in flight, if any, and takes its buffer
    /// back: `Some(n)` after a read of `n` bytes (they become read-ahead),
    /// `None` after a write (its error is kept for the next write or
    /// flush) or when nothing was in flight. A read's error is returned.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<usize>>> {
        let Some(op) = self.busy.get_mut() else {
            return Poll::Ready(Ok(None));
        };
        let done = ready!(op.as_mut().poll(cx));
        *self.busy.get_mut() = None;
        self.consumed = 0;
        match done {
            Done::Read(r, buf) => {
                self.buf = buf;
                if r.is_err() {
                    self.buf.clear();
                }
                Poll::Ready(r.map(Some))
            }
            Done::Write(r, mut buf) => {
                buf.clear();
                self.buf = buf;
                if let Err(e) = r {
                    // Keep the first one: a later one is its consequence.
                    self.last_write_err.get_or_insert(e);
                }
                Poll::Ready(Ok(None))
            }
        }
    }

    /// Forgets the read-ahead, moving the kernel position back to where
    /// the reader is, so the next write or positioned call starts there.
    fn drop_read_ahead(&mut self, fd: &SharedFd) -> io::Result<()> {
        let unread = self.unread();
        self.buf.clear();
        self.consumed = 0;
        if unread > 0 {
            lseek(fd, -(unread as i64), libc::SEEK_CUR)?;
        }
        Ok(())
    }

    /// Waits for the operation in flight and forgets the read-ahead: the
    /// kernel's file position is then the stream's position. A pending
    /// write error is returned. Used before the owned-buffer `read` and
    /// `write` calls.
    pub(super) fn poll_settle(
        &mut self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        // A read nobody waits for any more: its error does not matter.
        let _ = ready!(self.poll_idle(cx));
        if let Some(e) = self.last_write_err.take() {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(self.drop_read_ahead(fd))
    }

    /// Read-ahead bytes for a reader wanting `want` bytes, reading more
    /// from the file when there are none; empty at the end of the file.
    /// Hand them out with [`consume`](Self::consume).
    pub(super) fn poll_fill(
        &mut self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
        want: usize,
    ) -> Poll<io::Result<&[u8]>> {
        loop {
            if self.busy.get_mut().is_none() {
                if self.unread() > 0 || want == 0 {
                    return Poll::Ready(Ok(&self.buf[self.consumed..]));
                }
                let mut buf = std::mem::take(&mut self.buf);
                buf.clear();
                buf.reserve(want.min(MAX_BUF));
                *self.busy.get_mut() = Some(read_op(fd.clone(), buf));
            }
            // After bytes were read, or a write finished first: go round.
            if ready!(self.poll_idle(cx))? == Some(0) {
                return Poll::Ready(Ok(&[]));
            }
        }
    }

    /// Marks `n` bytes from [`poll_fill`](Self::poll_fill) as taken.
    pub(super) fn consume(&mut self, n: usize) {
        self.consumed = (self.consumed + n).min(self.buf.len());
    }

    /// Starts writing (a copy of) up to [`MAX_BUF`] bytes of `src` at the
    /// file position, after the operation in flight finished; the count is
    /// returned at once, the write's error by the next write or flush.
    pub(super) fn poll_write(
        &mut self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_settle(fd, cx))?;
        if src.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = src.len().min(MAX_BUF);
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&src[..n]);
        *self.busy.get_mut() = Some(write_op(fd.clone(), buf));
        Poll::Ready(Ok(n))
    }

    /// Waits for the write in flight; its error, if it failed.
    pub(super) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = ready!(self.poll_idle(cx));
        Poll::Ready(match self.last_write_err.take() {
            Some(e) => Err(e),
            None => Ok(()),
        })
    }

    /// Asks for a seek, done by [`poll_complete`](Self::poll_complete).
    pub(super) fn start_seek(&mut self, pos: SeekFrom) -> io::Result<()> {
        if self.pending_seek.is_some() {
            return Err(io::Error::other(
                "numa_rt::fs::File: a seek is already pending: call poll_complete before \
                 start_seek",
            ));
        }
        self.pending_seek = Some(pos);
        Ok(())
    }

    /// Waits for the operation in flight, does the pending seek if any,
    /// and returns the stream's position.
    pub(super) fn poll_complete(
        &mut self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<u64>> {
        // A write's error stays for the next write or flush, as a read's
        // result stays as read-ahead.
        let _ = ready!(self.poll_idle(cx));
        let unread = self.unread() as u64;
        let Some(pos) = self.pending_seek.take() else {
            return Poll::Ready(lseek(fd, 0, libc::SEEK_CUR).map(|p| p.saturating_sub(unread)));
        };
        self.buf.clear();
        self.consumed = 0;
        let r = match pos {
            SeekFrom::Start(p) => match i64::try_from(p) {
                Ok(p) => lseek(fd, p, libc::SEEK_SET),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("numa_rt::fs::File: seek to {p} is past the largest file offset"),
                )),
            },
            SeekFrom::End(off) => lseek(fd, off, libc::SEEK_END),
            // The kernel is `unread` bytes ahead of the reader.
            SeekFrom::Current(off) => match off.checked_sub(unread as i64) {
                Some(off) => lseek(fd, off, libc::SEEK_CUR),
                None => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "numa_rt::fs::File: seek offset out of range",
                )),
            },
        };
        Poll::Ready(r)
    }

    /// Whether a seek waits for `poll_complete`.
    pub(super) fn seek_pending(&self) -> bool {
        self.pending_seek.is_some()
    }

    /// Whether the stream holds nothing: no operation in flight, no
    /// read-ahead, no pending error (for `try_into_std`).
    pub(super) fn is_idle(&mut self) -> bool {
        self.busy.get_mut().is_none() && self.unread() == 0 && self.last_write_err.is_none()
    }
}

/// A read into `buf`'s spare capacity at the file position.
fn read_op(fd: SharedFd, buf: Vec<u8>) -> OpFuture {
    Box::pin(async move {
        let (r, buf) = match ring::driver() {
            Some(driver) => ring::read_at(driver, &fd, buf, ring::CURRENT_POSITION).await,
            None => super::file::read_blocking(fd, buf, None).await,
        };
        Done::Read(r, buf)
    })
}

/// A write of all of `buf` at the file position.
fn write_op(fd: SharedFd, buf: Vec<u8>) -> OpFuture {
    Box::pin(async move {
        let mut buf = buf;
        let mut done = 0;
        while done < buf.len() {
            let (r, b) = match ring::driver() {
                Some(driver) => {
                    ring::write_at(driver, &fd, buf, done, ring::CURRENT_POSITION).await
                }
                None => super::file::write_blocking(fd.clone(), buf, done, None).await,
            };
            buf = b;
            match r {
                Ok(0) => {
                    let e = io::Error::new(
                        io::ErrorKind::WriteZero,
                        "numa_rt::fs: the file accepted no more bytes",
                    );
                    return Done::Write(Err(e), buf);
                }
                Ok(n) => done += n,
                Err(e) => return Done::Write(Err(e), buf),
            }
        }
        Done::Write(Ok(()), buf)
    })
}

/// A value only ever reached through `&mut`, so sharing `&Exclusive<T>`
/// between threads exposes nothing: it is `Sync` whatever `T` is.
struct Exclusive<T>(T);

impl<T> Exclusive<T> {
    fn get_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

// SAFETY: no method gives access to the inside through `&self`, so a
// shared reference cannot be used to touch `T` from two threads.
unsafe impl<T: Send> Sync for Exclusive<T> {}

/// `lseek(2)`. Done in place: it changes a number in the open file and
/// does not wait for the disk.
fn lseek(fd: &SharedFd, off: i64, whence: libc::c_int) -> io::Result<u64> {
    // SAFETY: a plain syscall on a descriptor `fd` keeps open.
    let r = unsafe { libc::lseek(fd.raw(), off as libc::off_t, whence) };
    cvt(r as libc::ssize_t).map(|p| p as u64)
}
