//! `UnixListener` and `UnixStream` (stream sockets on the filesystem or
//! the abstract namespace).

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use socket2::{Domain, SockAddr, SockRef, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::tcp::{poll_read_fd, poll_write_fd, poll_write_vectored_fd, recv_owned, send_owned};
use crate::io::op::{self, Readiness, SharedFd, READABLE, WRITABLE};

/// A Unix stream socket accepting connections.
///
/// ```
/// # let rt = numa_rt_runtime::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # rt.block_on(async {
/// use numa_rt_runtime::net::{UnixListener, UnixStream};
/// let dir = std::env::temp_dir().join(format!("numa-rt-doc-{}", std::process::id()));
/// let _ = std::fs::remove_file(&dir);
/// let listener = UnixListener::bind(&dir).unwrap();
/// let client = UnixStream::connect(&dir).await.unwrap();
/// let (_server, _) = listener.accept().await.unwrap();
/// # drop(client); let _ = std::fs::remove_file(&dir);
/// # });
/// ```
pub struct UnixListener {
    fd: SharedFd,
}

impl UnixListener {
    /// Binds to `path`.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let l = std::os::unix::net::UnixListener::bind(path)?;
        UnixListener::from_std(l)
    }

    /// Wraps a standard listener (made non-blocking here).
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener {
            fd: SharedFd::new(listener.into()),
        })
    }

    /// Gives the socket back as a standard (non-blocking) listener.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        Ok(self.fd.0.as_fd().try_clone_to_owned()?.into())
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        std_ref(&self.fd, |s: &std::os::unix::net::UnixListener| {
            s.local_addr()
        })
    }

    /// Accepts a connection.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let raw = self.fd.raw();
        let stream = op::io(&self.fd, READABLE, || {
            // SAFETY: plain accept4 without an address; result checked.
            let s = unsafe {
                libc::accept4(
                    raw,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if s < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a fresh descriptor nothing else owns.
            Ok(UnixStream::from_owned(unsafe { OwnedFd::from_raw_fd(s) }))
        })
        .await?;
        let addr = stream.peer_addr()?;
        Ok((stream, addr))
    }
}

/// Runs `f` on a standard socket type viewing `fd` without owning it.
fn std_ref<T, R>(fd: &SharedFd, f: impl FnOnce(&T) -> io::Result<R>) -> io::Result<R>
where
    T: From<OwnedFd> + Into<OwnedFd>,
{
    // Borrow as the std type for its address helpers, then give the
    // descriptor back without closing it.
    let dup = fd.0.as_fd().try_clone_to_owned()?;
    let t = T::from(dup);
    f(&t)
}

/// A Unix stream connection.
pub struct UnixStream {
    fd: SharedFd,
    read_wait: Option<Readiness>,
    write_wait: Option<Readiness>,
}

impl UnixStream {
    fn from_owned(fd: OwnedFd) -> UnixStream {
        UnixStream {
            fd: SharedFd::new(fd),
            read_wait: None,
            write_wait: None,
        }
    }

    /// Connects to the socket at `path`.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let socket = Socket::new(Domain::UNIX, Type::STREAM.nonblocking().cloexec(), None)?;
        let addr = SockAddr::unix(path)?;
        let stream = UnixStream::from_owned(socket.into());
        match SockRef::from(&*stream.fd.0).connect(&addr) {
            Ok(()) => return Ok(stream),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EAGAIN)) => {}
            Err(e) => return Err(e),
        }
        let fd = stream.fd.clone();
        op::io(&fd, WRITABLE, || {
            match SockRef::from(&*fd.0).take_error()? {
                Some(e) => Err(e),
                None => Ok(()),
            }
        })
        .await?;
        Ok(stream)
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Wraps a standard stream (made non-blocking here).
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        Ok(UnixStream::from_owned(stream.into()))
    }

    /// Gives the socket back as a standard (non-blocking) stream.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        Ok(self.fd.0.as_fd().try_clone_to_owned()?.into())
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        std_ref(&self.fd, |s: &std::os::unix::net::UnixStream| {
            s.local_addr()
        })
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        std_ref(&self.fd, |s: &std::os::unix::net::UnixStream| s.peer_addr())
    }

    /// Shuts down the read side, the write side or both.
    pub fn shutdown_std(&self, how: Shutdown) -> io::Result<()> {
        SockRef::from(&*self.fd.0).shutdown(how)
    }

    /// Owned-buffer read; see [`TcpStream::read_owned`](super::TcpStream::read_owned).
    pub async fn read_owned(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        recv_owned(&self.fd, buf).await
    }

    /// Owned-buffer write; see [`TcpStream::write_owned`](super::TcpStream::write_owned).
    pub async fn write_owned(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        send_owned(&self.fd, buf, 0).await
    }
}

impl AsyncRead for UnixStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        poll_read_fd(&this.fd, &mut this.read_wait, cx, buf)
    }
}

impl AsyncWrite for UnixStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        poll_write_fd(&this.fd, &mut this.write_wait, cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        poll_write_vectored_fd(&this.fd, &mut this.write_wait, cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown_std(Shutdown::Write))
    }
}

macro_rules! fd_traits {
    ($t:ty) => {
        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.raw()
            }
        }
        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.fd.0.as_fd()
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("fd", &self.fd.raw())
                    .finish()
            }
        }
    };
}

fd_traits!(UnixListener);
fd_traits!(UnixStream);
