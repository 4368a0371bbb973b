//! Readiness registered once per socket, for the `AsyncRead`/`AsyncWrite`
//! paths.
//!
//! A one-shot wait ([`Readiness`]) costs a poll submission or an
//! `EPOLL_CTL_MOD` every time a read finds nothing, and the read that found
//! nothing is a system call of its own. A [`Registration`] instead arms the
//! descriptor once (a multishot `POLL_ADD` on io_uring, an edge-triggered
//! epoll interest) and the driver records every event it reports in the
//! socket's [`ScheduledIo`]: readiness bits plus a tick that counts events.
//! A read is tried while the bits say "readable"; a short read or
//! `EAGAIN` clears the bit, but only if no event arrived since the bits were
//! looked at (the tick still matches), so an event is never lost between the
//! system call and the clearing. The next read then waits without a system
//! call. When the kernel stops reporting (io_uring refused the multishot poll,
//! the driver shut down) the registration is *detached* and callers fall back
//! to one-shot waits.
//!
//! [`Readiness`]: super::op::Readiness

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{ready, Context, Poll, Waker};

use super::driver::Driver;
use super::op::{self, current_driver, Readiness, SharedFd, READABLE, WRITABLE};

const READ: usize = 1;
const WRITE: usize = 1 << 1;
/// The peer closed its side (RDHUP, HUP): reads stay ready for good.
const READ_CLOSED: usize = 1 << 2;
/// The connection is gone (HUP): writes stay ready for good.
const WRITE_CLOSED: usize = 1 << 3;
/// A socket error is pending: both directions stay ready for good.
const ERROR: usize = 1 << 4;
const BITS: usize = 0xff;
const TICK_SHIFT: u32 = 8;

/// The two directions a task waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Waiting to read (or accept).
    Read,
    /// Waiting to write (or for a connect to finish).
    Write,
}

impl Direction {
    /// The readiness bits that let a task of this direction try again.
    fn wakes(self) -> usize {
        match self {
            Direction::Read => READ | READ_CLOSED | ERROR,
            Direction::Write => WRITE | WRITE_CLOSED | ERROR,
        }
    }

    /// The bit a drained socket clears (closed and error bits stay).
    fn clears(self) -> usize {
        match self {
            Direction::Read => READ,
            Direction::Write => WRITE,
        }
    }

    /// The `poll` events of a one-shot wait in this direction.
    fn poll_events(self) -> u32 {
        match self {
            Direction::Read => READABLE,
            Direction::Write => WRITABLE,
        }
    }
}

/// Readiness bits from the `poll` events the kernel reported.
fn bits_from_poll(events: u32) -> usize {
    let has = |e: libc::c_short| events & e as u32 != 0;
    let mut bits = 0;
    if has(libc::POLLIN | libc::POLLPRI) {
        bits |= READ;
    }
    if has(libc::POLLOUT) {
        bits |= WRITE;
    }
    if has(libc::POLLRDHUP) {
        bits |= READ | READ_CLOSED;
    }
    if has(libc::POLLHUP) {
        bits |= READ | WRITE | READ_CLOSED | WRITE_CLOSED;
    }
    if has(libc::POLLERR) {
        bits |= READ | WRITE | ERROR;
    }
    bits
}

/// What a task saw when it found the socket ready: the bits and the tick
/// they belong to (see [`ScheduledIo::clear`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadyEvent {
    tick: usize,
    bits: usize,
}

/// A socket's readiness as the driver reported it, and the tasks waiting
/// for more. Shared between the socket and the driver's slot.
#[derive(Debug)]
pub(crate) struct ScheduledIo {
    /// Readiness bits (low byte) and the event tick (the rest).
    readiness: AtomicUsize,
    waiters: Mutex<Waiters>,
    /// The kernel no longer reports events for this socket.
    detached: AtomicBool,
}

#[derive(Debug, Default)]
struct Waiters {
    reader: Option<Waker>,
    writer: Option<Waker>,
}

fn lock(m: &Mutex<Waiters>) -> MutexGuard<'_, Waiters> {
    // Only `Option<Waker>` swaps happen under this lock: the data is
    // consistent even after a panic elsewhere.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for ScheduledIo {
    fn default() -> ScheduledIo {
        ScheduledIo::new()
    }
}

impl ScheduledIo {
    /// A socket believed ready both ways: the first read or write is tried
    /// at once and waits only if the kernel says `EAGAIN`.
    pub(crate) fn new() -> ScheduledIo {
        ScheduledIo {
            readiness: AtomicUsize::new(READ | WRITE),
            waiters: Mutex::new(Waiters::default()),
            detached: AtomicBool::new(false),
        }
    }

    /// Records an event (`poll` bits) and hands the wakers of the tasks it
    /// lets go to `wake` (woken by the caller once its locks are released).
    pub(crate) fn set_ready(&self, events: u32, wake: &mut Vec<Waker>) {
        let bits = bits_from_poll(events);
        if bits == 0 {
            return;
        }
        let _ = self
            .readiness
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                let tick = (cur >> TICK_SHIFT).wrapping_add(1);
                Some((tick << TICK_SHIFT) | (cur & BITS) | bits)
            });
        let mut waiters = lock(&self.waiters);
        if bits & Direction::Read.wakes() != 0 {
            wake.extend(waiters.reader.take());
        }
        if bits & Direction::Write.wakes() != 0 {
            wake.extend(waiters.writer.take());
        }
    }

    /// The kernel stopped reporting: wake every waiter, which then falls
    /// back to one-shot waits.
    pub(crate) fn detach(&self, wake: &mut Vec<Waker>) {
        self.detached.store(true, Ordering::Release);
        let mut waiters = lock(&self.waiters);
        wake.extend(waiters.reader.take());
        wake.extend(waiters.writer.take());
    }

    /// Whether the kernel stopped reporting events for this socket.
    pub(crate) fn is_detached(&self) -> bool {
        self.detached.load(Ordering::Acquire)
    }

    fn event(&self, dir: Direction) -> Option<ReadyEvent> {
        let cur = self.readiness.load(Ordering::Acquire);
        (cur & dir.wakes() != 0).then_some(ReadyEvent {
            tick: cur >> TICK_SHIFT,
            bits: cur & BITS,
        })
    }

    /// Ready once the socket may be ready in `dir`; `Ready(None)` when the
    /// registration is detached (the caller must wait another way).
    pub(crate) fn poll_ready(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
    ) -> Poll<Option<ReadyEvent>> {
        if let Some(ev) = self.event(dir) {
            return Poll::Ready(Some(ev));
        }
        if self.is_detached() {
            return Poll::Ready(None);
        }
        let old = {
            let mut waiters = lock(&self.waiters);
            let slot = match dir {
                Direction::Read => &mut waiters.reader,
                Direction::Write => &mut waiters.writer,
            };
            match slot {
                Some(w) if w.will_wake(cx.waker()) => None,
                _ => slot.replace(cx.waker().clone()),
            }
        };
        // A replaced waker may own the last reference to a task whose drop
        // deregisters sockets: drop it with no lock held.
        drop(old);
        // An event that arrived before the waker was stored found no one
        // to wake: look again (the driver sets the bits before it takes
        // the waiters' lock).
        if let Some(ev) = self.event(dir) {
            return Poll::Ready(Some(ev));
        }
        if self.is_detached() {
            return Poll::Ready(None);
        }
        Poll::Pending
    }

    /// The socket was drained in `dir` (`EAGAIN`, or a short read or
    /// write): forget its readiness, unless an event arrived after `ev` was
    /// taken (then the next attempt finds out for itself).
    pub(crate) fn clear(&self, ev: ReadyEvent, dir: Direction) {
        let clear = ev.bits & dir.clears();
        if clear == 0 {
            return;
        }
        let _ = self
            .readiness
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                (cur >> TICK_SHIFT == ev.tick).then_some(cur & !clear)
            });
    }
}

/// A descriptor registered with one driver for as long as this lives.
#[derive(Debug)]
pub(crate) struct Registration {
    driver: Driver,
    key: usize,
    io: Arc<ScheduledIo>,
}

impl Registration {
    /// Registers `fd` with the current thread's driver.
    pub(crate) fn new(fd: RawFd) -> io::Result<Registration> {
        let driver = current_driver()?;
        let io = Arc::new(ScheduledIo::new());
        let key = driver.register(fd, io.clone())?;
        Ok(Registration { driver, key, io })
    }

    /// The readiness the driver keeps for this descriptor.
    pub(crate) fn io(&self) -> &ScheduledIo {
        &self.io
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.driver.deregister(self.key);
    }
}

/// A registration made at the first wait (the first `EAGAIN`), on the
/// driver of the thread that waits; shared by the halves of a split stream.
///
/// A refused registration (no driver on this thread, or on epoll no
/// descriptor left for the duplicate: `EMFILE`) is remembered as `None`,
/// and the socket waits the one-shot way from then on, which reports the
/// missing driver as an error and needs no extra descriptor.
#[derive(Debug, Default)]
pub(crate) struct LazyRegistration(OnceLock<Option<Registration>>);

impl LazyRegistration {
    /// The registration of `fd`, made now if it is the first wait; `None`
    /// when it was refused.
    pub(crate) fn get(&self, fd: RawFd) -> Option<&Registration> {
        if let Some(r) = self.0.get() {
            return r.as_ref();
        }
        if crate::io::driver::current().is_some_and(|d| d.is_transient()) {
            // A `block_on` thread: its driver stops being turned when the
            // `block_on` returns, and a task waiting on a registration
            // there would hang. Wait the one-shot way; a worker's first
            // wait registers.
            return None;
        }
        // Another half may register meanwhile: the first one stored wins
        // and ours is dropped (deregistered).
        let _ = self.0.set(Registration::new(fd).ok());
        self.0.get().and_then(Option::as_ref)
    }

    /// Whether the first wait happened (registered or refused).
    fn is_decided(&self) -> bool {
        self.0.get().is_some()
    }
}

/// Runs `attempt` while the socket is ready in `dir`, waiting for the
/// driver's events in between. `attempt` returns its result and whether
/// it drained the socket (a short read or write: the kernel had no more),
/// which clears the readiness without an extra system call to find out.
/// A detached or refused registration falls back to one-shot waits held
/// in `wait`.
pub(crate) fn poll_registered<R>(
    fd: &SharedFd,
    reg: &LazyRegistration,
    wait: &mut Option<Readiness>,
    dir: Direction,
    cx: &mut Context<'_>,
    mut attempt: impl FnMut() -> io::Result<(R, bool)>,
) -> Poll<io::Result<R>> {
    // Nothing is registered before the socket first has to wait: a socket
    // whose writes never fill its send buffer (and whose reads take from a
    // multishot receive) never arms a poll, nor is the driver told of
    // every segment that arrives.
    if wait.is_none() && !reg.is_decided() {
        match attempt() {
            Ok((out, _)) => return Poll::Ready(Ok(out)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
    // A one-shot wait in progress means this socket already fell back.
    if let (None, Some(registration)) = (&*wait, reg.get(fd.raw())) {
        let io = registration.io();
        // `None`: detached, fall back below.
        while let Some(ev) = ready!(io.poll_ready(dir, cx)) {
            match attempt() {
                Ok((out, drained)) => {
                    if drained {
                        io.clear(ev, dir);
                    }
                    return Poll::Ready(Ok(out));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => io.clear(ev, dir),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
    op::poll_io(fd, wait, dir.poll_events(), cx, || {
        attempt().map(|(r, _)| r)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop_waker() -> Waker {
        struct Noop;
        impl std::task::Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        Waker::from(Arc::new(Noop))
    }

    #[test]
    fn starts_ready_both_ways() {
        let io = ScheduledIo::new();
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(
            io.poll_ready(Direction::Read, &mut cx),
            Poll::Ready(Some(_))
        ));
        assert!(matches!(
            io.poll_ready(Direction::Write, &mut cx),
            Poll::Ready(Some(_))
        ));
    }

    #[test]
    fn clear_then_event_wakes_the_reader() {
        let io = ScheduledIo::new();
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let Poll::Ready(Some(ev)) = io.poll_ready(Direction::Read, &mut cx) else {
            panic!("not ready");
        };
        io.clear(ev, Direction::Read);
        assert!(io.poll_ready(Direction::Read, &mut cx).is_pending());
        // Writes are unaffected by a drained read side.
        assert!(io.poll_ready(Direction::Write, &mut cx).is_ready());
        let mut wake = Vec::new();
        io.set_ready(libc::POLLIN as u32, &mut wake);
        assert_eq!(wake.len(), 1, "the parked reader is woken");
        assert!(io.poll_ready(Direction::Read, &mut cx).is_ready());
    }

    #[test]
    fn an_event_after_the_look_is_not_cleared() {
        let io = ScheduledIo::new();
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let Poll::Ready(Some(ev)) = io.poll_ready(Direction::Read, &mut cx) else {
            panic!("not ready");
        };
        // Data arrives between the read that found nothing and the clear.
        io.set_ready(libc::POLLIN as u32, &mut Vec::new());
        io.clear(ev, Direction::Read);
        assert!(io.poll_ready(Direction::Read, &mut cx).is_ready());
    }

    #[test]
    fn hang_up_stays_ready() {
        let io = ScheduledIo::new();
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        io.set_ready((libc::POLLIN | libc::POLLRDHUP) as u32, &mut Vec::new());
        let Poll::Ready(Some(ev)) = io.poll_ready(Direction::Read, &mut cx) else {
            panic!("not ready");
        };
        io.clear(ev, Direction::Read);
        assert!(
            io.poll_ready(Direction::Read, &mut cx).is_ready(),
            "end of stream is reported again"
        );
    }

    #[test]
    fn refused_registration_falls_back_to_one_shot_waits() {
        use std::io::Write;
        use std::os::fd::OwnedFd;
        // Outside any runtime there is no driver: the registration is
        // refused, and the one-shot path reports the missing driver.
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let fd = SharedFd::new(OwnedFd::from(a));
        let raw = fd.raw();
        let reg = LazyRegistration::default();
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut read = || {
            let mut buf = [0u8; 8];
            // SAFETY: reads at most 8 bytes into a live local buffer.
            let n = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok((n as usize, false))
            }
        };
        let mut wait = None;
        match poll_registered(&fd, &reg, &mut wait, Direction::Read, &mut cx, &mut read) {
            Poll::Ready(Err(e)) => assert!(e.to_string().contains("enable_io"), "{e}"),
            other => panic!("expected the no-driver error, got {other:?}"),
        }
        assert!(reg.get(raw).is_none(), "the refusal is remembered");
        // Data waiting: the attempt succeeds without any wait.
        b.write_all(b"hi").unwrap();
        let mut wait = None;
        match poll_registered(&fd, &reg, &mut wait, Direction::Read, &mut cx, &mut read) {
            Poll::Ready(Ok(n)) => assert_eq!(n, 2),
            other => panic!("expected 2 bytes, got {other:?}"),
        }
    }

    #[test]
    fn detached_wakes_and_reports_none() {
        let io = ScheduledIo::new();
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let Poll::Ready(Some(ev)) = io.poll_ready(Direction::Write, &mut cx) else {
            panic!("not ready");
        };
        io.clear(ev, Direction::Write);
        assert!(io.poll_ready(Direction::Write, &mut cx).is_pending());
        let mut wake = Vec::new();
        io.detach(&mut wake);
        assert_eq!(wake.len(), 1);
        assert!(matches!(
            io.poll_ready(Direction::Write, &mut cx),
            Poll::Ready(None)
        ));
    }
}
