//! `UdpSocket`.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use super::addr::resolve;
use crate::io::op::{self, SharedFd, READABLE, WRITABLE};

/// A UDP socket.
///
/// ```
/// # let rt = numa_rt_runtime::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # rt.block_on(async {
/// use numa_rt_runtime::net::UdpSocket;
/// let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
/// a.send_to(b"hi", b.local_addr().unwrap()).await.unwrap();
/// let mut buf = [0u8; 8];
/// let (n, from) = b.recv_from(&mut buf).await.unwrap();
/// assert_eq!((&buf[..n], from), (&b"hi"[..], a.local_addr().unwrap()));
/// # });
/// ```
pub struct UdpSocket {
    fd: SharedFd,
}

impl UdpSocket {
    /// Binds to `addr` (the first resolved address that works).
    pub async fn bind<A: ToSocketAddrs + Send + 'static>(addr: A) -> io::Result<UdpSocket>
    where
        A::Iter: Send,
    {
        let mut last = None;
        for addr in resolve(addr).await? {
            let attempt = Socket::new(
                Domain::for_address(addr),
                Type::DGRAM.nonblocking().cloexec(),
                None,
            )
            .and_then(|s| s.bind(&addr.into()).map(|()| s));
            match attempt {
                Ok(s) => return Ok(UdpSocket::from_owned(s.into())),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "numa_rt: no address to bind")
        }))
    }

    fn from_owned(fd: OwnedFd) -> UdpSocket {
        UdpSocket {
            fd: SharedFd::new(fd),
        }
    }

    /// Wraps a standard socket (made non-blocking here).
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket::from_owned(socket.into()))
    }

    /// Gives the socket back as a standard (non-blocking) socket.
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        Ok(std::net::UdpSocket::from(
            self.fd.0.as_fd().try_clone_to_owned()?,
        ))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        as_inet(SockRef::from(&*self.fd.0).local_addr()?)
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        as_inet(SockRef::from(&*self.fd.0).peer_addr()?)
    }

    /// Sets the default peer of `send`/`recv`.
    pub async fn connect<A: ToSocketAddrs + Send + 'static>(&self, addr: A) -> io::Result<()>
    where
        A::Iter: Send,
    {
        let mut last = None;
        for addr in resolve(addr).await? {
            match SockRef::from(&*self.fd.0).connect(&addr.into()) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "numa_rt: no address to connect",
            )
        }))
    }

    /// Sends a datagram to `target`.
    pub async fn send_to(&self, data: &[u8], target: SocketAddr) -> io::Result<usize> {
        let to = SockAddr::from(target);
        self.write_io(|s| s.send_to(data, &to)).await
    }

    /// Receives a datagram and its sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, from) = self
            .read_io(|s| {
                // SAFETY: `&mut [u8]` viewed as `&mut [MaybeUninit<u8>]`,
                // which the call only writes initialised bytes into.
                let uninit =
                    unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
                s.recv_from(uninit)
            })
            .await?;
        Ok((n, as_inet(from)?))
    }

    /// Sends a datagram to the connected peer.
    pub async fn send(&self, data: &[u8]) -> io::Result<usize> {
        self.write_io(|s| s.send(data)).await
    }

    /// Receives a datagram from the connected peer.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_io(|s| {
            // SAFETY: as in `recv_from`.
            let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
            s.recv(uninit)
        })
        .await
    }

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        SockRef::from(&*self.fd.0).set_broadcast(on)
    }

    /// Each call waits on its own, so several tasks may use the socket at
    /// once.
    async fn read_io<R>(&self, mut f: impl FnMut(SockRef<'_>) -> io::Result<R>) -> io::Result<R> {
        op::io(&self.fd, READABLE, || f(SockRef::from(&*self.fd.0))).await
    }

    async fn write_io<R>(&self, mut f: impl FnMut(SockRef<'_>) -> io::Result<R>) -> io::Result<R> {
        op::io(&self.fd, WRITABLE, || f(SockRef::from(&*self.fd.0))).await
    }
}

fn as_inet(addr: SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "numa_rt: the socket address is not an IP address",
        )
    })
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.0.as_fd()
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("fd", &self.fd.raw())
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}
