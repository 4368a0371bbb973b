//! `TcpListener` and `TcpStream`.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{
    AtomicBool,
    Ordering::{Acquire, Release},
};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::{Domain, SockAddr, SockRef, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::addr::resolve;
use crate::io::op::{self, Readiness, SharedFd, READABLE, WRITABLE};
use crate::io::registration::{poll_registered, Direction, LazyRegistration};

pub(super) fn no_addresses() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "numa_rt: the address resolved to no socket addresses",
    )
}

// ---- listener -----------------------------------------------------------

/// A TCP socket accepting connections.
///
/// ```
/// # let rt = numa_rt_runtime::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # rt.block_on(async {
/// use numa_rt_runtime::net::{TcpListener, TcpStream};
/// let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let addr = listener.local_addr().unwrap();
/// let client = numa_rt_runtime::spawn(async move { TcpStream::connect(addr).await.unwrap() });
/// let (_server_side, peer) = listener.accept().await.unwrap();
/// let client = client.await.unwrap();
/// assert_eq!(peer, client.local_addr().unwrap());
/// # });
/// ```
pub struct TcpListener {
    fd: SharedFd,
    wait: std::sync::Mutex<Option<Readiness>>,
}

impl TcpListener {
    /// Binds to `addr` (tries each resolved address in turn).
    pub async fn bind<A: ToSocketAddrs + Send + 'static>(addr: A) -> io::Result<TcpListener>
    where
        A::Iter: Send,
    {
        let mut last = None;
        for addr in resolve(addr).await? {
            match Self::bind_addr(addr, false) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(no_addresses))
    }

    /// Binds one listener per node of the current runtime to the same
    /// address (`SO_REUSEPORT`: the kernel spreads incoming connections over
    /// them). Accept from each on its node, e.g. with
    /// `spawn_on(node, accept_loop(listener))`, so that node serves its own
    /// connections: tasks spawned by the accept loop inherit its node.
    ///
    /// A port 0 is resolved by the first bind and reused by the others.
    ///
    /// ```
    /// # let rt = numa_rt_runtime::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    /// # rt.block_on(async {
    /// use numa_rt_runtime::net::TcpListener;
    /// let listeners = TcpListener::bind_per_node("127.0.0.1:0").await.unwrap();
    /// for (node, listener) in listeners {
    ///     numa_rt_runtime::spawn_on(node, async move {
    ///         while let Ok((stream, _)) = listener.accept().await {
    ///             drop(stream); // serve it here, on `node`
    ///         }
    ///     });
    /// }
    /// # });
    /// ```
    pub async fn bind_per_node<A: ToSocketAddrs + Send + 'static>(
        addr: A,
    ) -> io::Result<Vec<(crate::NodeId, TcpListener)>>
    where
        A::Iter: Send,
    {
        let handle =
            crate::runtime::Handle::try_current().map_err(|e| io::Error::other(e.to_string()))?;
        let mut addr = *resolve(addr).await?.first().ok_or_else(no_addresses)?;
        let mut out = Vec::new();
        for node in handle.nodes() {
            let listener = Self::bind_addr(addr, true)?;
            addr = listener.local_addr()?;
            out.push((node, listener));
        }
        Ok(out)
    }

    fn bind_addr(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), None)?;
        socket.set_reuse_address(true)?;
        if reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        TcpListener::from_std(socket.into())
    }

    /// Wraps a standard listener (made non-blocking here).
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            fd: SharedFd::new(OwnedFd::from(listener)),
            wait: std::sync::Mutex::new(None),
        })
    }

    /// Gives the socket back as a standard (non-blocking) listener.
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        let fd = self.fd.0.as_fd().try_clone_to_owned()?;
        Ok(std::net::TcpListener::from(fd))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(SockRef::from(&*self.fd.0).local_addr()?)
    }

    /// Accepts a connection. Running out of descriptors (`EMFILE`,
    /// `ENFILE`) or memory makes it back off (1 ms doubling to 100 ms,
    /// when the runtime has time enabled) and keep trying, so one burst
    /// does not stop the server; without time it returns the error.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let mut backoff = Duration::from_millis(1);
        let fd = self.fd.raw();
        loop {
            // A wait of its own per call: concurrent accepts all get woken.
            let accepted = op::io(&self.fd, READABLE, || {
                let (socket, addr) = accept4(fd)?;
                Ok((TcpStream::from_owned(socket), addr))
            });
            match accepted.await {
                Err(e) if is_resource_shortage(&e) && time_enabled() => {
                    crate::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    /// Polls for a connection. The listener keeps one pending wait for
    /// this method: use it from one task at a time (or use
    /// [`accept`](Self::accept), which any number of tasks may call).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let mut wait = self.wait.lock().unwrap_or_else(|e| e.into_inner());
        let fd = self.fd.raw();
        op::poll_io(&self.fd, &mut wait, READABLE, cx, || {
            let (socket, addr) = accept4(fd)?;
            Ok((TcpStream::from_owned(socket), addr))
        })
    }
}

fn time_enabled() -> bool {
    crate::io::driver::current().is_some_and(|d| d.config().time)
}

fn is_resource_shortage(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

pub(super) fn accept4(fd: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
    // SAFETY: the closure hands accept4 the storage and length socket2
    // prepared (zeroed, sized); the result is checked.
    let (s, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            let s = libc::accept4(
                fd,
                storage.cast(),
                len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            );
            if s < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(s)
            }
        })?
    };
    // SAFETY: a fresh descriptor from accept4 that nothing else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(s) };
    Ok((owned, sock_addr(addr)?))
}

pub(super) fn sock_addr(addr: SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "numa_rt: the socket address is not an IP address",
        )
    })
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.0.as_fd()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("fd", &self.fd.raw())
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

// ---- stream -------------------------------------------------------------

/// A TCP connection.
///
/// Two ways to do I/O: the owned-buffer operations [`read_owned`](Self::read_owned) and
/// [`write_owned`](Self::write_owned), and tokio's [`AsyncRead`]/[`AsyncWrite`] traits,
/// whose extension methods (`read`, `write_all`, ...) keep their tokio names. On
/// io_uring both kinds of read take from one multishot receive armed at the first read
/// (the kernel receives into the driver's buffer ring as data arrives, no system call
/// per read). Writes of both kinds, and every read on epoll, are a system call tried at
/// once, waiting for a readiness event when the kernel says `EAGAIN` (a multishot poll on
/// io_uring, edge-triggered on epoll). A read or write future dropped before it finishes
/// has taken or sent nothing, as with tokio.
pub struct TcpStream {
    fd: SharedFd,
    /// Readiness for `AsyncRead`/`AsyncWrite`, registered at the first
    /// wait and shared with the halves of `into_split`.
    reg: Arc<LazyRegistration>,
    /// Which directions an owned-buffer operation is using `reg` in.
    gates: OwnedGates,
    read_wait: Option<Readiness>,
    write_wait: Option<Readiness>,
    /// io_uring: the multishot receive behind `read_owned`.
    recv: op::MultiRecv,
}

impl TcpStream {
    fn from_owned(fd: OwnedFd) -> TcpStream {
        TcpStream {
            recv: op::MultiRecv::default(),
            fd: SharedFd::new(fd),
            reg: Arc::default(),
            gates: OwnedGates::default(),
            read_wait: None,
            write_wait: None,
        }
    }

    /// Connects to `addr`, trying each resolved address in turn.
    pub async fn connect<A: ToSocketAddrs + Send + 'static>(addr: A) -> io::Result<TcpStream>
    where
        A::Iter: Send,
    {
        let mut last = None;
        for addr in resolve(addr).await? {
            match Self::connect_addr(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(no_addresses))
    }

    pub(crate) async fn connect_addr(addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            None,
        )?;
        Self::connect_socket(socket.into(), addr).await
    }

    /// Connects a fresh non-blocking socket.
    pub(super) async fn connect_socket(socket: OwnedFd, addr: SocketAddr) -> io::Result<TcpStream> {
        let stream = TcpStream::from_owned(socket);
        match SockRef::from(&*stream.fd.0).connect(&addr.into()) {
            Ok(()) => return Ok(stream),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let fd = stream.fd.clone();
        op::io(&fd, WRITABLE, || {
            let sock = SockRef::from(&*fd.0);
            match sock.take_error()? {
                Some(e) => Err(e),
                None => match sock.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(e) => Err(e),
                },
            }
        })
        .await?;
        Ok(stream)
    }

    /// Wraps a standard stream (made non-blocking here).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream::from_owned(stream.into()))
    }

    /// Gives the socket back as a standard (non-blocking) stream.
    ///
    /// On io_uring, once the stream has been read from (owned-buffer or
    /// `AsyncRead`), a receive in the kernel reads ahead of the reads: this
    /// ends it first, waiting for its last completion (a brief blocking
    /// wait, at most a second, when another worker's driver runs it). If
    /// that receive holds bytes not yet read, which a std stream cannot
    /// hand over, it fails and the connection is closed (this consumes the
    /// stream): call it after reading what the peer sent.
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        self.recv.release()?;
        let fd = self.fd.0.as_fd().try_clone_to_owned()?;
        Ok(std::net::TcpStream::from(fd))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(SockRef::from(&*self.fd.0).local_addr()?)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(SockRef::from(&*self.fd.0).peer_addr()?)
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        SockRef::from(&*self.fd.0).set_tcp_nodelay(nodelay)
    }

    /// Reads `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        SockRef::from(&*self.fd.0).tcp_nodelay()
    }

    /// Shuts down the read side, the write side or both.
    pub fn shutdown_std(&self, how: Shutdown) -> io::Result<()> {
        SockRef::from(&*self.fd.0).shutdown(how)
    }

    /// Reads into the spare capacity of `buf` (after its length), returning
    /// the byte count (0 at end of stream) and the buffer, whose length
    /// grew by that count. A `buf` without spare capacity reads nothing.
    ///
    /// On io_uring the first call arms one multishot receive that keeps
    /// receiving into the driver's buffer ring; each call copies what has
    /// arrived into `buf` (bounded: past 256 KiB unread the receive pauses
    /// until the reads catch up). Dropping the future loses no data: what
    /// arrived stays for the next read, `AsyncRead` included.
    pub async fn read_owned(&self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        if op::multishot_enabled() && buf.capacity() > buf.len() {
            if let Some(r) = self.recv.read(&self.fd, &mut buf).await {
                return (r, buf);
            }
        }
        recv_owned_in(&self.fd, self.owned_ready(), buf).await
    }

    /// Writes from `buf[..len]`, returning how many bytes were written and
    /// the buffer.
    pub async fn write_owned(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        send_owned_in(&self.fd, self.owned_ready(), buf, 0).await
    }

    fn owned_ready(&self) -> Option<OwnedReady<'_>> {
        Some(OwnedReady {
            reg: &self.reg,
            gates: &self.gates,
        })
    }

    /// Writes all of `buf`.
    pub async fn write_all_owned(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let mut done = 0;
        let mut buf = buf;
        while done < buf.len() {
            let (r, b) = send_owned_in(&self.fd, self.owned_ready(), buf, done).await;
            buf = b;
            match r {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => done += n,
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Splits into a read half and a write half that can move to different
    /// tasks.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let TcpStream { fd, reg, recv, .. } = self;
        let shared = Arc::new(fd.clone());
        (
            OwnedReadHalf {
                recv,
                fd: fd.clone(),
                _pair: shared.clone(),
                reg: reg.clone(),
                gates: OwnedGates::default(),
                wait: None,
            },
            OwnedWriteHalf {
                fd,
                _pair: shared,
                reg,
                gates: OwnedGates::default(),
                wait: None,
                shutdown_on_drop: true,
            },
        )
    }
}

/// Owned-buffer operations wait through the socket's registration
/// (registered at the first wait, once), one operation per direction at a
/// time: the registration keeps one waiting task per direction, so a
/// concurrent second operation waits the one-shot way instead.
#[derive(Debug, Default)]
pub(super) struct OwnedGates {
    read: AtomicBool,
    write: AtomicBool,
}

/// A socket's registration and gates, for an owned-buffer operation.
#[derive(Clone, Copy)]
pub(super) struct OwnedReady<'a> {
    reg: &'a LazyRegistration,
    gates: &'a OwnedGates,
}

/// A direction of [`OwnedGates`] taken by one operation until dropped.
struct Gate<'a>(&'a AtomicBool);

impl<'a> Gate<'a> {
    fn take(flag: &'a AtomicBool) -> Option<Gate<'a>> {
        (!flag.swap(true, Acquire)).then_some(Gate(flag))
    }
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        self.0.store(false, Release);
    }
}

impl<'a> OwnedReady<'a> {
    /// The registration, when no other operation uses it in `dir`.
    fn enter(ready: Option<Self>, dir: Direction) -> Option<(&'a LazyRegistration, Gate<'a>)> {
        let ready = ready?;
        let flag = match dir {
            Direction::Read => &ready.gates.read,
            Direction::Write => &ready.gates.write,
        };
        Gate::take(flag).map(|g| (ready.reg, g))
    }
}

/// Runs `attempt` until it does not block: through the registration when
/// `ready` has it free in `dir`, else with one-shot waits.
async fn owned_io<R>(
    fd: &SharedFd,
    ready: Option<OwnedReady<'_>>,
    dir: Direction,
    mut attempt: impl FnMut() -> io::Result<(R, bool)>,
) -> io::Result<R> {
    match OwnedReady::enter(ready, dir) {
        Some((reg, _gate)) => {
            let mut wait = None;
            std::future::poll_fn(|cx| poll_registered(fd, reg, &mut wait, dir, cx, &mut attempt))
                .await
        }
        None => {
            let events = match dir {
                Direction::Read => READABLE,
                Direction::Write => WRITABLE,
            };
            op::io(fd, events, || attempt().map(|(r, _)| r)).await
        }
    }
}

/// [`recv_owned_in`] with no registration (one-shot waits on epoll).
pub(super) async fn recv_owned(fd: &SharedFd, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
    recv_owned_in(fd, None, buf).await
}

/// Receives into `buf`'s spare capacity: at once when data is there, else
/// after a readiness event, on both drivers.
///
/// Never a ring receive: a future dropped while such a receive is in
/// flight would lose whatever the kernel had already put in its buffer.
/// (On io_uring a stream's reads normally take from its multishot receive
/// instead; this path serves the rest: a receive that is paused while
/// another driver's worker reads, Unix streams, and multishot receives
/// turned off.)
pub(super) async fn recv_owned_in(
    fd: &SharedFd,
    ready: Option<OwnedReady<'_>>,
    mut buf: Vec<u8>,
) -> (io::Result<usize>, Vec<u8>) {
    if buf.capacity() == buf.len() {
        return (Ok(0), buf);
    }
    let raw = fd.raw();
    let r = owned_io(fd, ready, Direction::Read, || {
        let spare = buf.spare_capacity_mut();
        // SAFETY: recv writes at most `spare.len()` bytes into the
        // vector's spare capacity.
        let n = unsafe { libc::recv(raw, spare.as_mut_ptr().cast(), spare.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        // A short read drained the socket (0, the end, stays ready).
        Ok((n, n > 0 && n < spare.len()))
    })
    .await;
    if let Ok(n) = r {
        // SAFETY: the kernel initialised `n` bytes after the length.
        unsafe { buf.set_len(buf.len() + n) };
    }
    (r, buf)
}

/// [`send_owned_in`] with no registration (one-shot waits on epoll).
pub(super) async fn send_owned(
    fd: &SharedFd,
    buf: Vec<u8>,
    from: usize,
) -> (io::Result<usize>, Vec<u8>) {
    send_owned_in(fd, None, buf, from).await
}

/// Sends from `buf[from..]`: at once while the socket's buffer has room
/// (no submission, no completion to wait for, no second poll of the task),
/// else after a readiness event, on both drivers.
///
/// Never a ring send: one dropped while in flight could still go out after
/// the bytes of a later write. A dropped send has sent nothing, or what its
/// last attempt reported.
pub(super) async fn send_owned_in(
    fd: &SharedFd,
    ready: Option<OwnedReady<'_>>,
    buf: Vec<u8>,
    from: usize,
) -> (io::Result<usize>, Vec<u8>) {
    let data = &buf[from.min(buf.len())..];
    if data.is_empty() {
        return (Ok(0), buf);
    }
    let raw = fd.raw();
    let r = owned_io(fd, ready, Direction::Write, || {
        let n = send_from(raw, data)?;
        // A short write means the send buffer is full.
        Ok((n, n < data.len()))
    })
    .await;
    (r, buf)
}

pub(super) fn recv_into(fd: RawFd, buf: &mut ReadBuf<'_>) -> io::Result<()> {
    // SAFETY: recv writes at most `unfilled.len()` bytes into the
    // unfilled part, which ReadBuf lets us treat as uninitialised.
    let unfilled = unsafe { buf.unfilled_mut() };
    // SAFETY: as above; the pointer and length describe that region.
    let n = unsafe { libc::recv(fd, unfilled.as_mut_ptr().cast(), unfilled.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel initialised `n` bytes of the unfilled part.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    Ok(())
}

pub(super) fn send_from(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: sends from a live slice.
    let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

pub(super) fn sendv(fd: RawFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let n = bufs.len().min(1024);
    // SAFETY: IoSlice is ABI-compatible with iovec; `n` entries are live.
    let r = unsafe {
        let msg = libc::msghdr {
            msg_name: std::ptr::null_mut(),
            msg_namelen: 0,
            msg_iov: bufs.as_ptr() as *mut libc::iovec,
            msg_iovlen: n,
            msg_control: std::ptr::null_mut(),
            msg_controllen: 0,
            msg_flags: 0,
        };
        libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL)
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

pub(super) fn poll_read_fd(
    fd: &SharedFd,
    wait: &mut Option<Readiness>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    let raw = fd.raw();
    op::poll_io(fd, wait, READABLE, cx, || recv_into(raw, buf))
}

pub(super) fn poll_write_fd(
    fd: &SharedFd,
    wait: &mut Option<Readiness>,
    cx: &mut Context<'_>,
    data: &[u8],
) -> Poll<io::Result<usize>> {
    let raw = fd.raw();
    op::poll_io(fd, wait, WRITABLE, cx, || send_from(raw, data))
}

pub(super) fn poll_write_vectored_fd(
    fd: &SharedFd,
    wait: &mut Option<Readiness>,
    cx: &mut Context<'_>,
    bufs: &[io::IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    let raw = fd.raw();
    op::poll_io(fd, wait, WRITABLE, cx, || sendv(raw, bufs))
}

/// A read through the socket's registration: tried while the socket is
/// believed readable; a short read means the kernel had no more, so the
/// next read waits for an event instead of asking.
fn poll_read_reg(
    fd: &SharedFd,
    reg: &LazyRegistration,
    wait: &mut Option<Readiness>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    let raw = fd.raw();
    poll_registered(fd, reg, wait, Direction::Read, cx, || {
        let wanted = buf.remaining();
        let before = buf.filled().len();
        recv_into(raw, buf)?;
        let n = buf.filled().len() - before;
        // 0 is the end of the stream: that stays readable.
        Ok(((), n > 0 && n < wanted))
    })
}

/// A write through the socket's registration; a short write means the
/// send buffer is full.
fn poll_write_reg(
    fd: &SharedFd,
    reg: &LazyRegistration,
    wait: &mut Option<Readiness>,
    cx: &mut Context<'_>,
    data: &[u8],
) -> Poll<io::Result<usize>> {
    let raw = fd.raw();
    poll_registered(fd, reg, wait, Direction::Write, cx, || {
        let n = send_from(raw, data)?;
        Ok((n, n < data.len()))
    })
}

/// A vectored write through the socket's registration.
fn poll_write_vectored_reg(
    fd: &SharedFd,
    reg: &LazyRegistration,
    wait: &mut Option<Readiness>,
    cx: &mut Context<'_>,
    bufs: &[io::IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    let raw = fd.raw();
    let total: usize = bufs.iter().take(1024).map(|b| b.len()).sum();
    poll_registered(fd, reg, wait, Direction::Write, cx, || {
        let n = sendv(raw, bufs)?;
        Ok((n, n < total))
    })
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(polled) = this.recv.poll_read(&this.fd, cx, buf) {
            return polled;
        }
        poll_read_reg(&this.fd, &this.reg, &mut this.read_wait, cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        poll_write_reg(&this.fd, &this.reg, &mut this.write_wait, cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        poll_write_vectored_reg(&this.fd, &this.reg, &mut this.write_wait, cx, bufs)
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

impl futures_io::AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut rb = ReadBuf::new(buf);
        let this = self.get_mut();
        let polled = match this.recv.poll_read(&this.fd, cx, &mut rb) {
            Some(polled) => polled,
            None => poll_read_reg(&this.fd, &this.reg, &mut this.read_wait, cx, &mut rb),
        };
        match polled {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl futures_io::AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(self, cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown_std(Shutdown::Write))
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.0.as_fd()
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("fd", &self.fd.raw())
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

// ---- owned halves -------------------------------------------------------

/// The read half of [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    /// io_uring: the multishot receive behind `read_owned` (the stream's).
    recv: op::MultiRecv,
    fd: SharedFd,
    _pair: Arc<SharedFd>,
    reg: Arc<LazyRegistration>,
    gates: OwnedGates,
    wait: Option<Readiness>,
}

/// The write half of [`TcpStream::into_split`]; dropping it shuts the
/// write side down.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    fd: SharedFd,
    _pair: Arc<SharedFd>,
    reg: Arc<LazyRegistration>,
    gates: OwnedGates,
    wait: Option<Readiness>,
    shutdown_on_drop: bool,
}

impl OwnedReadHalf {
    /// Owned-buffer read; see [`TcpStream::read_owned`].
    pub async fn read_owned(&self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        if op::multishot_enabled() && buf.capacity() > buf.len() {
            if let Some(r) = self.recv.read(&self.fd, &mut buf).await {
                return (r, buf);
            }
        }
        let ready = OwnedReady {
            reg: &self.reg,
            gates: &self.gates,
        };
        recv_owned_in(&self.fd, Some(ready), buf).await
    }
}

impl OwnedWriteHalf {
    /// Owned-buffer write; see [`TcpStream::write_owned`].
    pub async fn write_owned(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let ready = OwnedReady {
            reg: &self.reg,
            gates: &self.gates,
        };
        send_owned_in(&self.fd, Some(ready), buf, 0).await
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            let _ = SockRef::from(&*self.fd.0).shutdown(Shutdown::Write);
        }
    }
}

impl AsyncRead for OwnedReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(polled) = this.recv.poll_read(&this.fd, cx, buf) {
            return polled;
        }
        poll_read_reg(&this.fd, &this.reg, &mut this.wait, cx, buf)
    }
}

impl AsyncWrite for OwnedWriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        poll_write_reg(&this.fd, &this.reg, &mut this.wait, cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        poll_write_vectored_reg(&this.fd, &this.reg, &mut this.wait, cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(SockRef::from(&*self.fd.0).shutdown(Shutdown::Write))
    }
}
