//! The per-thread I/O driver: an io_uring ring or an epoll instance, the
//! operations in flight on it, its timers, and the eventfd other threads
//! use to wake it.
//!
//! Every worker owns one driver and is the only thread that submits to it
//! (so rings can use `SINGLE_ISSUER` and `DEFER_TASKRUN`). A worker waits
//! for work *in* its driver: [`park_current`] blocks in `io_uring_enter` or
//! `epoll_pwait2` with the earliest timer as timeout, and an unpark from
//! another thread writes the driver's eventfd. A current-thread runtime owns
//! one driver, used by whichever thread drives it. Any other thread that
//! does I/O inside a runtime (a `block_on` of a multi-thread runtime, a
//! blocking-pool thread) gets a driver of its own, driven while that thread
//! parks in `block_on`. When that driver cannot be created (no descriptors
//! left), the thread's I/O fails with the reason and its timers go to a
//! driver the runtime's other threads drive ([`timer_driver`]).
//!
//! Operations live in a slab owned by the driver. A future polls its slot;
//! when the future is dropped before its completion arrives, whatever the
//! kernel may still touch (buffers, the descriptor) moves into the slot and
//! is freed only when the completion comes back, and an async cancel is
//! submitted.

pub(crate) mod epoll;
mod recv;
pub(crate) use recv::SharedRecv;
pub(crate) mod timers;
pub(crate) mod uring;

use std::any::Any;
use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

use super::config::{Backend, IoConfig};
use super::registration::ScheduledIo;
use timers::{Armed, Timers};

/// Data an operation keeps alive until its completion (buffers, fds).
pub(crate) type Keep = Box<dyn Any + Send>;

/// The result of a finished operation: the kernel's `res` (negative errno
/// on failure) and the completion flags (epoll: the ready events).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Completion {
    pub(crate) result: i32,
    pub(crate) flags: u32,
}

impl Completion {
    /// `res` as an `io::Result`.
    pub(crate) fn into_result(self) -> io::Result<u32> {
        if self.result < 0 {
            Err(io::Error::from_raw_os_error(-self.result))
        } else {
            Ok(self.result as u32)
        }
    }
}

enum Slot {
    /// In flight; the waker of the future waiting for it.
    Pending(Option<Waker>),
    /// Finished; the future has not looked yet.
    Done(Completion),
    /// The future was dropped: the data the kernel may still use.
    Abandoned(Option<Keep>),
    /// A descriptor registered for readiness once (see `Driver::register`).
    Registered(Registered),
    /// A stream's multishot receive (see `Driver::recv_open`), shared
    /// with the stream.
    Recv(recv::SharedRecv),
}

/// A registered descriptor: its events update `io` until it is
/// deregistered.
struct Registered {
    io: Arc<ScheduledIo>,
    /// The descriptor the kernel watches (io_uring: the socket itself;
    /// epoll: `dup`'s number).
    fd: RawFd,
    /// epoll: a duplicate of the socket's descriptor, so the edge-triggered
    /// interest is an epoll registration of its own that never meets the
    /// one-shot waits made on the socket's own number.
    dup: Option<OwnedFd>,
    /// io_uring: the multishot poll is in the kernel.
    armed: bool,
}

/// The `poll` events a registration watches.
const REGISTERED_EVENTS: u32 = (libc::POLLIN | libc::POLLOUT | libc::POLLRDHUP) as u32;

/// What is shared between threads.
struct State {
    ops: Slab<Slot>,
    /// Slots whose future was dropped on another thread: the owner submits
    /// their cancellation.
    cancels: Vec<usize>,
    timers: Timers,
}

enum Kernel {
    Uring(uring::Ring),
    Epoll(epoll::Poller),
}

pub(crate) struct Inner {
    config: IoConfig,
    /// Touched by the owning thread (and by epoll deregistration).
    kernel: Mutex<Kernel>,
    state: Mutex<State>,
    wake: Unparker,
    /// Set once the driver was shut down: no more submissions.
    closed: AtomicBool,
    /// Created for a multi-thread runtime's `block_on` thread, which turns
    /// it only while it blocks there: nothing that outlives one operation
    /// (a readiness registration, a multishot receive) may live on it.
    transient: bool,
}

/// Wakes a driver blocked in the kernel from another thread.
#[derive(Debug)]
pub(crate) struct Unparker {
    fd: OwnedFd,
}

impl Unparker {
    fn new() -> io::Result<Unparker> {
        // SAFETY: plain syscall; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(Unparker {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Makes the driver's current or next wait return.
    pub(crate) fn unpark(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd. EAGAIN
        // (counter saturated) still leaves it readable, which is all we need.
        unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            );
        }
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A handle to one driver.
#[derive(Clone)]
pub(crate) struct Driver {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The critical sections leave consistent data even when a waker
    // panics elsewhere: keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    static CURRENT: RefCell<Option<Driver>> = const { RefCell::new(None) };
    /// The driver whose completions this thread is dispatching right now.
    static DISPATCHING: std::cell::Cell<*const Inner> = const { std::cell::Cell::new(std::ptr::null()) };
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("backend", &self.inner.config.backend)
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// A driver for the calling thread. `single_issuer`: only this thread
    /// will ever submit (lets io_uring use its cheapest modes).
    pub(crate) fn new(config: IoConfig, single_issuer: bool) -> io::Result<Driver> {
        Driver::build(config, single_issuer, false)
    }

    /// A driver for a multi-thread runtime's `block_on` thread (see
    /// [`is_transient`](Self::is_transient)).
    fn new_transient(config: IoConfig) -> io::Result<Driver> {
        Driver::build(config, true, true)
    }

    fn build(config: IoConfig, single_issuer: bool, transient: bool) -> io::Result<Driver> {
        let wake = Unparker::new()?;
        let kernel = match config.backend {
            Backend::Uring => Kernel::Uring(uring::Ring::new(
                config.entries,
                single_issuer,
                wake.raw_fd(),
            )?),
            Backend::Epoll => Kernel::Epoll(epoll::Poller::new(wake.raw_fd())?),
        };
        Ok(Driver {
            inner: Arc::new(Inner {
                config,
                kernel: Mutex::new(kernel),
                state: Mutex::new(State {
                    ops: Slab::new(),
                    cancels: Vec::new(),
                    timers: Timers::default(),
                }),
                wake,
                closed: AtomicBool::new(false),
                transient,
            }),
        })
    }

    pub(crate) fn config(&self) -> IoConfig {
        self.inner.config
    }

    /// Whether this is a `block_on` thread's driver, turned only while that
    /// thread blocks: registrations and multishot receives, which outlive
    /// the operation that made them, go to a worker's driver instead (the
    /// operations here wait the one-shot way).
    pub(crate) fn is_transient(&self) -> bool {
        self.inner.transient
    }

    pub(crate) fn backend(&self) -> Backend {
        self.inner.config.backend
    }

    /// A shareable waker for this driver (for a `Parker`). It skips the
    /// eventfd write when called from this driver's own dispatch (the
    /// thread is awake and re-checks its queues right after).
    pub(crate) fn unparker(&self) -> Arc<dyn Fn() + Send + Sync> {
        let inner = self.inner.clone();
        Arc::new(move || {
            let own = DISPATCHING
                .try_with(|d| d.get() == Arc::as_ptr(&inner))
                .unwrap_or(false);
            if !own {
                inner.wake.unpark();
            }
        })
    }

    pub(crate) fn is_current(&self) -> bool {
        CURRENT
            .try_with(|c| {
                c.borrow()
                    .as_ref()
                    .is_some_and(|d| Arc::ptr_eq(&d.inner, &self.inner))
            })
            .unwrap_or(false)
    }

    // ---- operations ---------------------------------------------------

    /// Submits a ring operation built by `build` (given its slot key).
    /// Only on the owning thread of an io_uring driver.
    pub(crate) fn submit(&self, entry: io_uring::squeue::Entry) -> io::Result<usize> {
        if self.inner.closed.load(Relaxed) {
            return Err(closed_error());
        }
        let key = lock(&self.inner.state).ops.insert(Slot::Pending(None));
        let mut kernel = lock(&self.inner.kernel);
        let result = match &mut *kernel {
            Kernel::Uring(ring) => ring.push(entry.user_data(key as u64)),
            Kernel::Epoll(_) => Err(io::Error::other(
                "numa_rt: internal error: ring operation on an epoll driver",
            )),
        };
        drop(kernel);
        if let Err(e) = result {
            lock(&self.inner.state).ops.remove(key);
            return Err(e);
        }
        Ok(key)
    }

    /// Waits for `fd` to become ready for `events` (`libc::POLLIN` /
    /// `POLLOUT`): a poll operation on io_uring, an epoll interest otherwise.
    pub(crate) fn wait_ready(&self, fd: RawFd, events: u32) -> io::Result<usize> {
        match self.backend() {
            Backend::Uring => {
                self.submit(io_uring::opcode::PollAdd::new(io_uring::types::Fd(fd), events).build())
            }
            Backend::Epoll => {
                if self.inner.closed.load(Relaxed) {
                    return Err(closed_error());
                }
                let key = lock(&self.inner.state).ops.insert(Slot::Pending(None));
                let result = match &mut *lock(&self.inner.kernel) {
                    Kernel::Epoll(p) => p.add_interest(fd, events, key),
                    Kernel::Uring(_) => Ok(()),
                };
                if let Err(e) = result {
                    lock(&self.inner.state).ops.remove(key);
                    return Err(e);
                }
                Ok(key)
            }
        }
    }

    /// Polls operation `key`: its completion once it arrived (the slot is
    /// then freed).
    pub(crate) fn poll_op(&self, key: usize, cx: &mut Context<'_>) -> Poll<Completion> {
        let mut state = lock(&self.inner.state);
        let Some(slot) = state.ops.get_mut(key) else {
            // Cannot happen while the future owns the key; report as
            // cancelled rather than hanging.
            return Poll::Ready(Completion {
                result: -libc::ECANCELED,
                flags: 0,
            });
        };
        let old = match slot {
            Slot::Done(c) => {
                let c = *c;
                state.ops.remove(key);
                return Poll::Ready(c);
            }
            Slot::Pending(Some(w)) if w.will_wake(cx.waker()) => None,
            Slot::Pending(waker) => waker.replace(cx.waker().clone()),
            Slot::Abandoned(_) | Slot::Registered(_) | Slot::Recv(_) => None,
        };
        drop(state);
        // A replaced waker may hold the last reference to a task: drop it
        // outside the lock.
        drop(old);
        Poll::Pending
    }

    /// The future of operation `key` is gone. `keep` holds what the kernel
    /// may still use; it is dropped once the completion arrives.
    pub(crate) fn drop_op(&self, key: usize, keep: Option<Keep>) {
        if self.backend() == Backend::Epoll {
            // Nothing of ours is in the kernel: drop the interest before
            // the key can be reused, then the slot.
            if let Kernel::Epoll(p) = &mut *lock(&self.inner.kernel) {
                p.remove_interest(key);
            }
        }
        let mut state = lock(&self.inner.state);
        let Some(slot) = state.ops.get_mut(key) else {
            return;
        };
        if matches!(slot, Slot::Done(_)) || self.backend() == Backend::Epoll {
            let old = state.ops.remove(key);
            drop(state);
            if let Slot::Done(c) = old {
                close_unclaimed_fd(c, keep.as_ref());
            }
            drop(keep);
            return;
        }
        let old = std::mem::replace(slot, Slot::Abandoned(keep));
        self.cancel_or_queue(state, key);
        drop(old);
    }

    /// Cancels the ring operation `key`: at once on the driver's owning
    /// thread while it is open, else by queueing the cancel for the owner
    /// and waking it. Takes the state lock so that it is released before
    /// the kernel lock is taken (never both at once).
    fn cancel_or_queue(&self, mut state: MutexGuard<'_, State>, key: usize) {
        if self.is_current() && !self.inner.closed.load(Relaxed) {
            drop(state);
            if let Kernel::Uring(ring) = &mut *lock(&self.inner.kernel) {
                ring.cancel(key as u64);
            }
        } else {
            state.cancels.push(key);
            drop(state);
            self.inner.wake.unpark();
        }
    }

    // ---- registrations ------------------------------------------------

    /// Registers `fd` for readiness for as long as the returned key lives
    /// (until [`deregister`](Self::deregister)): a multishot poll on
    /// io_uring, an edge-triggered interest on epoll. Every event the
    /// kernel reports lands in `io`. On io_uring, owning thread only.
    pub(crate) fn register(&self, fd: RawFd, io: Arc<ScheduledIo>) -> io::Result<usize> {
        if self.inner.closed.load(Relaxed) {
            return Err(closed_error());
        }
        match self.backend() {
            Backend::Uring => {
                let key = lock(&self.inner.state)
                    .ops
                    .insert(Slot::Registered(Registered {
                        io,
                        fd,
                        dup: None,
                        armed: true,
                    }));
                let entry = multishot_poll(fd, key);
                let result = match &mut *lock(&self.inner.kernel) {
                    Kernel::Uring(ring) => ring.push(entry),
                    Kernel::Epoll(_) => Ok(()),
                };
                if let Err(e) = result {
                    let slot = lock(&self.inner.state).ops.try_remove(key);
                    drop(slot);
                    return Err(e);
                }
                Ok(key)
            }
            Backend::Epoll => {
                // SAFETY: F_DUPFD_CLOEXEC on a descriptor the caller keeps
                // open; the result is checked.
                let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
                if dup < 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: a fresh descriptor nothing else owns.
                let dup = unsafe { OwnedFd::from_raw_fd(dup) };
                let raw = dup.as_raw_fd();
                let key = lock(&self.inner.state)
                    .ops
                    .insert(Slot::Registered(Registered {
                        io,
                        fd: raw,
                        dup: Some(dup),
                        armed: true,
                    }));
                let result = match &mut *lock(&self.inner.kernel) {
                    Kernel::Epoll(p) => p.add_edge_triggered(raw, key),
                    Kernel::Uring(_) => Ok(()),
                };
                if let Err(e) = result {
                    let slot = lock(&self.inner.state).ops.try_remove(key);
                    drop(slot);
                    return Err(e);
                }
                Ok(key)
            }
        }
    }

    /// Ends registration `key`. Any thread.
    pub(crate) fn deregister(&self, key: usize) {
        let mut state = lock(&self.inner.state);
        if !matches!(state.ops.get(key), Some(Slot::Registered(_))) {
            return;
        }
        let armed_in_ring = self.backend() == Backend::Uring
            && matches!(state.ops.get(key), Some(Slot::Registered(r)) if r.armed)
            && !self.inner.closed.load(Relaxed);
        if !armed_in_ring {
            // epoll (or a ring that no longer watches it): drop the
            // interest, then the slot and its duplicate descriptor.
            let slot = state.ops.try_remove(key);
            drop(state);
            if let Some(Slot::Registered(Registered { dup: Some(dup), .. })) = &slot {
                if let Kernel::Epoll(p) = &mut *lock(&self.inner.kernel) {
                    p.remove_edge_triggered(dup.as_raw_fd());
                }
            }
            // Dropped with no lock held: it may hold the last waker of a
            // task.
            drop(slot);
            return;
        }
        // The multishot poll ends with a completion of its own: keep the
        // slot until then, so its key is not reused meanwhile.
        let old = std::mem::replace(&mut state.ops[key], Slot::Abandoned(None));
        self.cancel_or_queue(state, key);
        drop(old);
    }

    // ---- multishot receives -------------------------------------------

    /// A receive slot for one stream (io_uring only), armed by its first
    /// [`poll_recv`](Self::poll_recv). Free it with
    /// [`recv_close`](Self::recv_close).
    ///
    /// The receive's state is shared between the stream and the driver
    /// under a lock of its own: a read locks only its stream, never the
    /// driver, so tasks reading streams of another worker's driver do not
    /// contend with that driver or with each other.
    pub(crate) fn recv_open(&self) -> io::Result<(usize, recv::SharedRecv)> {
        if self.inner.closed.load(Relaxed) {
            return Err(closed_error());
        }
        let shared = recv::SharedRecv::default();
        let key = lock(&self.inner.state)
            .ops
            .insert(Slot::Recv(shared.clone()));
        Ok((key, shared))
    }

    /// Hands up to `room` bytes of what receive slot `key` holds to `sink`
    /// (the count; 0 at end of stream), arming its multishot receive on
    /// `fd` when nothing is there. `None` when the receive is not armed and
    /// this thread cannot arm it (it is not the driver's owner): the caller
    /// then receives by itself; nothing is buffered meanwhile.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn poll_recv(
        &self,
        key: usize,
        shared: &recv::SharedRecv,
        cx: &mut Context<'_>,
        room: usize,
        sink: &mut dyn FnMut(&[u8]),
        fd: RawFd,
        keep_fd: impl FnOnce() -> Keep,
    ) -> Option<Poll<io::Result<usize>>> {
        let mut guard = shared.lock();
        let r = &mut *guard;
        if r.closed {
            return Some(Poll::Ready(Err(closed_error())));
        }
        if r.unread() > 0 {
            let n = r.take(room, sink);
            let rearm = !r.armed && r.unread() == 0 && r.end.is_none();
            if rearm && self.is_current() && !self.inner.closed.load(Relaxed) {
                // Drained after the receive stopped: start it again so the
                // next data is already here when asked for.
                let _ = self.arm_recv(r, key, fd, keep_fd);
            }
            return Some(Poll::Ready(Ok(n)));
        }
        match r.end {
            Some(0) => return Some(Poll::Ready(Ok(0))),
            Some(errno) => {
                r.end = None;
                return Some(Poll::Ready(Err(io::Error::from_raw_os_error(-errno))));
            }
            None => {}
        }
        if !r.armed {
            if !self.is_current() || self.inner.closed.load(Relaxed) {
                return None;
            }
            if self.arm_recv(r, key, fd, keep_fd).is_err() {
                // No buffer ring (an older kernel) or no room: the caller's
                // own receive reports what is wrong, if anything.
                return None;
            }
        }
        r.add_waker(cx.waker());
        Some(Poll::Pending)
    }

    fn arm_recv(
        &self,
        r: &mut recv::RecvSlot,
        key: usize,
        fd: RawFd,
        keep_fd: impl FnOnce() -> Keep,
    ) -> io::Result<()> {
        match &mut *lock(&self.inner.kernel) {
            Kernel::Uring(ring) => ring.push_multishot_recv(fd, key as u64)?,
            Kernel::Epoll(_) => {
                return Err(io::Error::other(
                    "numa_rt: internal error: multishot receive on an epoll driver",
                ))
            }
        }
        r.armed = true;
        r.cancelling = false;
        r.fd = Some(keep_fd());
        Ok(())
    }

    /// Whether receive slot `key` neither holds data nor has its receive
    /// in the kernel (the socket can be handed elsewhere without losing
    /// bytes).
    pub(crate) fn recv_idle(&self, shared: &recv::SharedRecv) -> bool {
        let r = shared.lock();
        !r.armed && r.unread() == 0
    }

    /// Ends receive slot `key`'s multishot receive and waits (at most
    /// `limit`) until the kernel has posted its last completion, so that the
    /// socket can be handed elsewhere: what arrives next stays in the
    /// socket. On the driver's owning thread it turns the driver itself;
    /// elsewhere it queues the cancel for the owner and waits for it (a
    /// blocking wait, for calls like `into_std` that cannot await).
    /// Whatever the receive took before it ended stays unread in the slot.
    pub(crate) fn recv_stop(
        &self,
        key: usize,
        shared: &recv::SharedRecv,
        limit: Duration,
    ) -> io::Result<()> {
        let state = lock(&self.inner.state);
        let cancel = {
            let mut r = shared.lock();
            if !r.armed {
                return Ok(());
            }
            let cancel = !r.cancelling;
            r.cancelling = true;
            cancel
        };
        if self.inner.closed.load(Relaxed) {
            return Err(closed_error());
        }
        if cancel {
            self.cancel_or_queue(state, key);
        } else {
            drop(state);
        }
        let deadline = Instant::now() + limit;
        loop {
            if !shared.lock().armed {
                return Ok(());
            }
            if self.inner.closed.load(Relaxed) {
                return Err(closed_error());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "numa_rt: the stream's receive did not end in time (the worker whose driver \
                     runs it is busy)",
                ));
            }
            if self.is_current() {
                self.turn(Some(left.min(Duration::from_millis(10))));
            } else {
                // Keep this thread's own driver going meanwhile: its owner
                // may be waiting the same way for a cancel queued here.
                poll_current();
                std::thread::sleep(left.min(Duration::from_micros(50)));
            }
        }
    }

    /// The stream of receive slot `key` is gone: cancel its receive and
    /// free the slot once the kernel is done with it. Any thread.
    pub(crate) fn recv_close(&self, key: usize, shared: &recv::SharedRecv) {
        // Decided and acted on under the driver's state lock, taken before
        // the stream's (the order the dispatch uses). Whoever sees both
        // `closed` and `!armed` frees the slot: this call, or the dispatch
        // of the receive's last completion. Were the state lock taken only
        // after the decision, that last completion could free the slot in
        // between and the queued cancel would hit the key's next operation.
        let mut state = lock(&self.inner.state);
        let (free, cancel, wakers) = {
            let mut r = shared.lock();
            r.closed = true;
            let wakers = std::mem::take(&mut r.wakers);
            let cancel = r.armed && !r.cancelling;
            if cancel {
                r.cancelling = true;
            }
            (!r.armed, cancel, wakers)
        };
        if free {
            // No receive: a cancel still queued for it (by `recv_stop`) is
            // stale and would hit the key's next operation.
            forget_cancel(&mut state.cancels, key);
            let slot = state.ops.try_remove(key);
            drop(state);
            drop(slot);
        } else if cancel {
            self.cancel_or_queue(state, key);
        } else {
            drop(state);
        }
        // Dropped with no lock held: they may be the last wakers of tasks.
        drop(wakers);
    }

    // ---- timers -------------------------------------------------------

    /// Registers a timer firing at `deadline` that wakes `waker` (unless
    /// this driver's last clock reading shows the deadline has passed).
    /// For the thread that drives it: it computes its next wait later.
    fn add_timer(&self, deadline: Instant, waker: &Waker) -> Armed {
        // Cloned outside the lock: a waker's clone is foreign code.
        let waker = waker.clone();
        lock(&self.inner.state).timers.insert(deadline, waker)
    }

    /// Registers a timer firing at `deadline` from any thread. When this
    /// is not the calling thread's driver, its owner is woken so that its
    /// next wait ends by the new deadline.
    pub(crate) fn add_timer_from_any_thread(&self, deadline: Instant, waker: &Waker) -> Armed {
        let armed = self.add_timer(deadline, waker);
        if matches!(armed, Armed::Pending(_)) && !self.is_current() {
            self.inner.wake.unpark();
        }
        armed
    }

    /// A reference that does not keep the driver alive.
    pub(crate) fn downgrade(&self) -> WeakDriver {
        WeakDriver {
            inner: Arc::downgrade(&self.inner),
        }
    }

    // ---- driving ------------------------------------------------------

    /// Waits for completions, readiness, a due timer or an unpark (at most
    /// `timeout`), then wakes whoever waited for them. Owning thread only.
    pub(crate) fn park(&self, timeout: Option<Duration>) {
        self.turn(timeout);
    }

    /// Processes what is ready without blocking.
    pub(crate) fn poll_now(&self) {
        self.turn(Some(Duration::ZERO));
    }

    fn turn(&self, timeout: Option<Duration>) {
        let mut wakers = Vec::new();
        let mut completions: Vec<(u64, Completion)> = Vec::new();
        let now = Instant::now();
        let (cancels, next) = {
            let mut state = lock(&self.inner.state);
            state.timers.fire_due(now, &mut wakers);
            // Something is runnable already: only look (no deadline needed).
            let next = if wakers.is_empty() {
                state.timers.next_deadline()
            } else {
                None
            };
            (std::mem::take(&mut state.cancels), next)
        };
        let timeout = if !wakers.is_empty() {
            Some(Duration::ZERO)
        } else {
            match (next, timeout) {
                (Some(d), t) => {
                    let until = d.saturating_duration_since(now);
                    Some(t.map_or(until, |t| t.min(until)))
                }
                (None, t) => t,
            }
        };
        {
            let mut kernel = lock(&self.inner.kernel);
            let result = match &mut *kernel {
                Kernel::Uring(ring) => {
                    // Only the owning thread touches the ring, so holding
                    // the lock while blocked in the kernel stops no one.
                    for key in cancels {
                        ring.cancel(key as u64);
                    }
                    ring.wait(timeout, &mut completions)
                }
                Kernel::Epoll(p) => match p.begin_wait(timeout) {
                    None => Ok(()),
                    Some(mut call) => {
                        // Other threads drop interests while we sleep: wait
                        // without the lock.
                        drop(kernel);
                        let r = call.wait();
                        kernel = lock(&self.inner.kernel);
                        if let Kernel::Epoll(p) = &mut *kernel {
                            p.finish_wait(call, &mut completions);
                        }
                        r
                    }
                },
            };
            if let Err(e) = result {
                // EINTR and friends: nothing to do but come back later.
                debug_assert!(
                    matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::EBUSY | libc::ETIME)
                    ),
                    "numa_rt: I/O driver wait failed: {e}"
                );
            }
        }
        let mut garbage: Vec<Keep> = Vec::new();
        let uring = self.backend() == Backend::Uring;
        {
            let mut state = lock(&self.inner.state);
            let mut rearm = Vec::new();
            let mut kernel = None;
            for (key, c) in completions {
                let key = key as usize;
                // io_uring: a multishot request posts more completions.
                let more = uring && io_uring::cqueue::more(c.flags);
                match state.ops.get_mut(key) {
                    Some(Slot::Registered(r)) if !uring => r.io.set_ready(c.flags, &mut wakers),
                    Some(Slot::Registered(r)) => {
                        if c.result >= 0 {
                            r.io.set_ready(c.result as u32, &mut wakers);
                        }
                        if !more {
                            // The kernel ended the poll: arm it again, or
                            // (refused, cancelled at shutdown) let the
                            // socket fall back to one-shot waits.
                            if c.result >= 0 && !self.inner.closed.load(Relaxed) {
                                rearm.push((key, r.fd));
                            } else {
                                r.armed = false;
                                r.io.detach(&mut wakers);
                            }
                        }
                    }
                    Some(Slot::Recv(shared)) => {
                        let kernel = kernel.get_or_insert_with(|| lock(&self.inner.kernel));
                        let Kernel::Uring(ring) = &mut **kernel else {
                            continue;
                        };
                        let mut r = shared.lock();
                        if c.result > 0 {
                            let closed = r.closed;
                            ring.take_buffer(c.flags, c.result as usize, |data| {
                                if !closed {
                                    r.backlog.extend_from_slice(data);
                                }
                            });
                        } else if c.result == 0 {
                            r.end = Some(0);
                        } else if !matches!(-c.result, libc::ENOBUFS | libc::ECANCELED) {
                            // Out of buffers or cancelled: the next read
                            // arms it again. Anything else is the stream's.
                            r.end = Some(c.result);
                        }
                        if !more {
                            r.armed = false;
                            r.cancelling = false;
                            if let Some(fd) = r.fd.take() {
                                garbage.push(fd);
                            }
                            // A cancel queued meanwhile targets a receive
                            // that is over: it must not hit the receive
                            // armed next under this key, nor (once the slot
                            // is freed) another operation.
                            let closed = r.closed;
                            if !closed {
                                wakers.append(&mut r.wakers);
                            }
                            drop(r);
                            forget_cancel(&mut state.cancels, key);
                            if closed {
                                state.ops.remove(key);
                            }
                            continue;
                        } else if r.unread() > recv::BACKLOG_LIMIT && !r.cancelling {
                            r.cancelling = true;
                            ring.cancel(key as u64);
                        }
                        wakers.append(&mut r.wakers);
                    }
                    Some(Slot::Abandoned(_)) if more => {}
                    Some(Slot::Pending(w)) => {
                        if let Some(w) = w.take() {
                            wakers.push(w);
                        }
                        state.ops[key] = Slot::Done(c);
                    }
                    Some(Slot::Abandoned(_)) => {
                        // The kernel is done with the data: free it once
                        // the lock is released (its drop may use the driver).
                        forget_cancel(&mut state.cancels, key);
                        if let Slot::Abandoned(Some(keep)) = state.ops.remove(key) {
                            close_unclaimed_fd(c, Some(&keep));
                            garbage.push(keep);
                        }
                    }
                    // A second completion for a finished slot (e.g. a
                    // cancelled poll): nothing waits for it.
                    Some(Slot::Done(_)) | None => {}
                }
            }
            drop(kernel);
            if !rearm.is_empty() {
                // Under the state lock, so no deregistration slips between
                // the check and the push.
                if let Kernel::Uring(ring) = &mut *lock(&self.inner.kernel) {
                    for (key, fd) in rearm {
                        if ring.push(multishot_poll(fd, key)).is_err() {
                            if let Some(Slot::Registered(r)) = state.ops.get_mut(key) {
                                r.armed = false;
                                r.io.detach(&mut wakers);
                            }
                        }
                    }
                }
            }
            state.timers.fire_due(Instant::now(), &mut wakers);
        }
        drop(garbage);
        if !wakers.is_empty() {
            let _dispatch = Dispatch::enter(&self.inner);
            for w in wakers {
                w.wake();
            }
        }
    }

    /// Cancels everything in flight and waits (up to `limit`) for the
    /// kernel to let go of it. What is still in flight afterwards is leaked
    /// rather than freed under the kernel. Owning thread only.
    pub(crate) fn shutdown(&self, limit: Duration) {
        if self.inner.closed.swap(true, Relaxed) {
            return;
        }
        if self.backend() == Backend::Epoll {
            return;
        }
        let deadline = Instant::now() + limit;
        let keys: Vec<usize> = lock(&self.inner.state)
            .ops
            .iter()
            .filter(|(_, s)| in_kernel(s))
            .map(|(k, _)| k)
            .collect();
        if let Kernel::Uring(ring) = &mut *lock(&self.inner.kernel) {
            for &k in &keys {
                ring.cancel(k as u64);
            }
        }
        loop {
            let in_flight = lock(&self.inner.state)
                .ops
                .iter()
                .any(|(_, s)| in_kernel(s));
            let left = deadline.saturating_duration_since(Instant::now());
            if !in_flight || left.is_zero() {
                break;
            }
            self.turn(Some(left.min(Duration::from_millis(10))));
        }
        let mut state = lock(&self.inner.state);
        for (_, slot) in state.ops.iter_mut() {
            match slot {
                // Still owned by the kernel after the grace period: never
                // free it.
                Slot::Abandoned(keep) => std::mem::forget(keep.take()),
                Slot::Recv(r) => {
                    let mut r = r.lock();
                    if r.armed {
                        std::mem::forget(r.fd.take());
                    }
                }
                _ => {}
            }
        }
    }

    /// Whether the driver still accepts operations.
    pub(crate) fn is_closed(&self) -> bool {
        self.inner.closed.load(Relaxed)
    }
}

/// Closes the descriptor a finished `openat`/`accept` returned when its
/// future is gone (its data is wrapped in [`ClosesResultFd`]): nobody else
/// will ever own it.
///
/// [`ClosesResultFd`]: crate::io::op::ClosesResultFd
fn close_unclaimed_fd(c: Completion, keep: Option<&Keep>) {
    if c.result >= 0 && keep.is_some_and(|k| (**k).is::<crate::io::op::ClosesResultFd>()) {
        // SAFETY: the kernel created this descriptor for an operation whose
        // future was dropped before taking it, so nothing refers to it.
        unsafe { libc::close(c.result) };
    }
}

/// Drops a cancellation still queued by another thread for `key`, whose
/// operation just ended on its own: once the slot is freed the key may name
/// a new operation, which that cancellation would hit.
fn forget_cancel(cancels: &mut Vec<usize>, key: usize) {
    if !cancels.is_empty() {
        cancels.retain(|&k| k != key);
    }
}

/// Whether the kernel may still post a completion for this slot.
fn in_kernel(slot: &Slot) -> bool {
    match slot {
        Slot::Done(_) => false,
        Slot::Registered(r) => r.armed,
        Slot::Recv(r) => r.lock().armed,
        Slot::Pending(_) | Slot::Abandoned(_) => true,
    }
}

/// A multishot poll for a registration (its events until cancelled).
fn multishot_poll(fd: RawFd, key: usize) -> io_uring::squeue::Entry {
    io_uring::opcode::PollAdd::new(io_uring::types::Fd(fd), REGISTERED_EVENTS)
        .multi(true)
        .build()
        .user_data(key as u64)
}

fn closed_error() -> io::Error {
    io::Error::other("numa_rt: the I/O driver of this thread has shut down")
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.config.backend == Backend::Uring {
            // An abandoned slot means its completion never came back: the
            // kernel may still own that memory, so leak it.
            let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
            for (_, slot) in state.ops.iter_mut() {
                match slot {
                    Slot::Abandoned(keep) => std::mem::forget(keep.take()),
                    Slot::Recv(r) => {
                        let mut r = r.lock();
                        if r.armed {
                            std::mem::forget(r.fd.take());
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Marks this thread as dispatching `inner`'s completions until dropped
/// (restored even if a waker panics).
struct Dispatch {
    previous: *const Inner,
}

impl Dispatch {
    fn enter(inner: &Arc<Inner>) -> Dispatch {
        let previous = DISPATCHING
            .try_with(|d| d.replace(Arc::as_ptr(inner)))
            .unwrap_or(std::ptr::null());
        Dispatch { previous }
    }
}

impl Drop for Dispatch {
    fn drop(&mut self) {
        let previous = self.previous;
        let _ = DISPATCHING.try_with(|d| d.set(previous));
    }
}

// ---- the current thread's driver ----------------------------------------

/// Makes `driver` this thread's driver until the guard drops.
pub(crate) fn enter(driver: Driver) -> EnterGuard {
    let previous = CURRENT.with(|c| c.replace(Some(driver)));
    EnterGuard { previous }
}

/// Restores the previous current driver.
pub(crate) struct EnterGuard {
    previous: Option<Driver>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|c| c.replace(previous));
    }
}

/// This thread's driver, creating one when the thread runs inside a
/// runtime with I/O or time enabled but has none yet (a `block_on` thread
/// of a multi-thread runtime). `None` outside a runtime, or when the
/// runtime has neither I/O nor time enabled.
pub(crate) fn current() -> Option<Driver> {
    if let Ok(Some(d)) = CURRENT.try_with(|c| c.borrow().clone()) {
        // A driver created here for another runtime (this thread ran that
        // runtime's `block_on` before) is not this runtime's: its backend
        // and settings may differ. Outside any runtime it is nobody's: it
        // is turned only inside its `block_on`, so I/O waiting on it would
        // hang (the caller reports the missing runtime instead). Entered
        // drivers (a worker's, a current-thread runtime's) are always the
        // right one.
        let foreign = LAZY
            .try_with(|l| {
                l.borrow().as_ref().is_some_and(|(owner, lazy)| {
                    Arc::ptr_eq(&lazy.inner, &d.inner) && !owner.is_running()
                })
            })
            .unwrap_or(false);
        if !foreign {
            return Some(d);
        }
    }
    let (config, owner) = crate::runtime::context::with_handle(|h| {
        h.and_then(|h| Some((super::config_of(h)?, LazyOwner::of(h))))
    })
    .unzip();
    let created = config.map(Driver::new_transient);
    // Kept so a timer or an I/O call can say why this thread has no driver
    // (the next call tries again).
    let _ = CREATE_FAILURE.try_with(|f| {
        *f.borrow_mut() = match &created {
            Some(Err(e)) => Some((e.kind(), e.to_string())),
            _ => None,
        };
    });
    let driver = created?.ok()?;
    // This thread waits in `park::current()` (block_on); let that parker
    // wait in the new driver and be woken through its eventfd.
    crate::scheduler::park::current()
        .0
        .parker
        .attach_io(driver.unparker());
    // A driver created for an earlier runtime is let go: its streams keep
    // it alive as long as they need it.
    let previous = CURRENT
        .try_with(|c| c.borrow_mut().replace(driver.clone()))
        .ok()?;
    let earlier = LAZY
        .try_with(|l| l.borrow_mut().replace((owner?, driver.clone())))
        .ok()
        .flatten();
    drop((previous, earlier));
    Some(driver)
}

/// Called as a multi-thread runtime's `block_on` starts on this thread:
/// lets go of a transient driver this thread created for another runtime,
/// so that nothing (a timer armed before the first I/O) lands on a driver
/// this `block_on` will not turn. The next I/O or timer creates this
/// runtime's own.
pub(crate) fn leave_foreign_driver() {
    let foreign = LAZY
        .try_with(|l| {
            let stale = l
                .borrow()
                .as_ref()
                .is_some_and(|(owner, _)| !owner.is_running());
            if stale {
                l.borrow_mut().take()
            } else {
                None
            }
        })
        .ok()
        .flatten();
    if let Some((_, lazy)) = foreign {
        let current = CURRENT.try_with(|c| {
            let mut c = c.borrow_mut();
            if c.as_ref()
                .is_some_and(|d| Arc::ptr_eq(&d.inner, &lazy.inner))
            {
                c.take()
            } else {
                None
            }
        });
        drop((current, lazy));
    }
}

/// The runtime a lazily created driver belongs to. Weak, so a dropped
/// runtime is not kept alive by a thread that once ran its `block_on`; the
/// weak reference also keeps the address from being reused, so comparing
/// addresses is exact.
enum LazyOwner {
    Multi(Weak<crate::scheduler::shared::Shared>),
    Current(Weak<crate::scheduler::current_thread::CtShared>),
}

impl LazyOwner {
    fn of(handle: &crate::runtime::handle::Handle) -> LazyOwner {
        use crate::runtime::handle::Scheduler;
        match &handle.inner {
            Scheduler::MultiThread(s) => LazyOwner::Multi(Arc::downgrade(s)),
            Scheduler::CurrentThread(s) => LazyOwner::Current(Arc::downgrade(s)),
        }
    }

    /// Whether the runtime this thread is in (if any) is this one.
    fn is_running(&self) -> bool {
        crate::runtime::context::with_handle(|h| h.is_some_and(|h| self.is(h)))
    }

    fn is(&self, handle: &crate::runtime::handle::Handle) -> bool {
        use crate::runtime::handle::Scheduler;
        match (self, &handle.inner) {
            (LazyOwner::Multi(w), Scheduler::MultiThread(s)) => {
                std::ptr::eq(w.as_ptr(), Arc::as_ptr(s))
            }
            (LazyOwner::Current(w), Scheduler::CurrentThread(s)) => {
                std::ptr::eq(w.as_ptr(), Arc::as_ptr(s))
            }
            _ => false,
        }
    }
}

thread_local! {
    /// The driver [`current`] created on this thread, and for which runtime.
    static LAZY: RefCell<Option<(LazyOwner, Driver)>> = const { RefCell::new(None) };
    /// Why the last attempt to create this thread's driver failed.
    static CREATE_FAILURE: RefCell<Option<(io::ErrorKind, String)>> = const { RefCell::new(None) };
}

/// A driver known without being kept alive (a runtime's list of its
/// workers' drivers; a strong reference there would close a cycle through
/// the wakers in the drivers' timer heaps).
#[derive(Clone)]
pub(crate) struct WeakDriver {
    inner: Weak<Inner>,
}

impl WeakDriver {
    /// The driver, while it exists and has not shut down.
    pub(crate) fn upgrade(&self) -> Option<Driver> {
        let inner = self.inner.upgrade()?;
        (!inner.closed.load(Relaxed)).then_some(Driver { inner })
    }
}

/// The driver a timer first polled on this thread is registered with.
///
/// This thread's own driver when it has or can create one. When it cannot
/// (its creation failed, for instance with no descriptors left), a driver
/// other threads of the same runtime drive: a worker's (taken in turn) or
/// a current-thread runtime's. The timer's waker then reaches this thread
/// through its parker, as any cross-thread wake does. `None` outside a
/// runtime with time enabled, or when no driver of the runtime is running
/// (it has shut down).
pub(crate) fn timer_driver() -> Option<Driver> {
    if let Some(d) = current() {
        return d.config().time.then_some(d);
    }
    crate::runtime::context::with_handle(|h| h.and_then(running_driver_of))
        .filter(|d| d.config().time)
}

/// Arms a timer firing at `deadline` that wakes `waker`, on
/// [`timer_driver`]'s driver. `None` when there is none.
pub(crate) fn arm_timer(deadline: Instant, waker: &Waker) -> Option<Armed> {
    // The common case without cloning the driver's handle: this thread
    // drives its own driver, which computes its next wait after this poll.
    let here = CURRENT
        .try_with(|c| {
            c.borrow()
                .as_ref()
                // A `block_on` thread's transient driver goes the long
                // way, which checks it belongs to the running runtime.
                .filter(|d| d.config().time && !d.is_transient())
                .map(|d| d.add_timer(deadline, waker))
        })
        .ok()
        .flatten();
    if here.is_some() {
        return here;
    }
    timer_driver().map(|d| d.add_timer_from_any_thread(deadline, waker))
}

/// A driver of `handle`'s runtime that some thread is driving.
fn running_driver_of(handle: &crate::runtime::handle::Handle) -> Option<Driver> {
    use crate::runtime::handle::Scheduler;
    match &handle.inner {
        Scheduler::CurrentThread(ct) => ct.io.get().filter(|d| !d.is_closed()).cloned(),
        Scheduler::MultiThread(shared) => {
            let drivers = lock(&shared.worker_drivers);
            // Spread such timers over the workers.
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let start = NEXT.fetch_add(1, Relaxed);
            (0..drivers.len()).find_map(|i| drivers[(start + i) % drivers.len()].upgrade())
        }
    }
}

/// Why [`current`] could not create this thread's driver on its last try
/// (for instance no descriptors left), if that is why it returned `None`.
pub(crate) fn creation_failure() -> Option<(io::ErrorKind, String)> {
    CREATE_FAILURE
        .try_with(|f| f.borrow().clone())
        .ok()
        .flatten()
}

/// Parks the calling thread in its driver; `false` when it has none.
pub(crate) fn park_current(timeout: Option<Duration>) -> bool {
    let driver = CURRENT.try_with(|c| c.borrow().clone()).ok().flatten();
    match driver {
        Some(d) if !d.is_closed() => {
            d.park(timeout);
            true
        }
        _ => false,
    }
}

/// Processes ready I/O and due timers of this thread's driver, if any,
/// without blocking.
pub(crate) fn poll_current() {
    let driver = CURRENT.try_with(|c| c.borrow().clone()).ok().flatten();
    if let Some(d) = driver {
        if !d.is_closed() {
            d.poll_now();
        }
    }
}
