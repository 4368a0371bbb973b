//! The epoll backend: readiness waits, one-shot per wait.
//!
//! A descriptor with waiters is armed with the union of their interests
//! and `EPOLLONESHOT`; an event completes the waiters it satisfies and
//! re-arms the descriptor for the rest. A descriptor stays registered when
//! its waiters are gone (the one-shot registration is simply disarmed), so
//! the next wait costs one `EPOLL_CTL_MOD`, not an add and a delete; when
//! the number was closed and reused meanwhile, the MOD fails with ENOENT
//! and the descriptor is added afresh.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::Completion;

const WAKE_TOKEN: u64 = u64::MAX;
/// Tokens of edge-triggered registrations: this bit plus the slot key
/// (one-shot waits use the bare descriptor number).
const REGISTERED_TAG: u64 = 1 << 62;

#[derive(Default)]
struct FdEntry {
    /// (op key, poll events wanted).
    waiters: Vec<(usize, u32)>,
    /// Whether the descriptor is (believed to be) in the epoll set.
    registered: bool,
}

pub(crate) struct Poller {
    epfd: OwnedFd,
    wake_fd: RawFd,
    fds: HashMap<RawFd, FdEntry>,
    by_key: HashMap<usize, RawFd>,
    events: Vec<libc::epoll_event>,
    /// Whether `epoll_pwait2` exists (nanosecond timeouts).
    pwait2: bool,
    /// Edge-triggered registrations in the set.
    registered: usize,
}

/// epoll events for a set of `poll` events.
fn epoll_mask(poll_events: u32) -> u32 {
    let mut m = 0;
    if poll_events & libc::POLLIN as u32 != 0 {
        m |= (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
    }
    if poll_events & libc::POLLOUT as u32 != 0 {
        m |= libc::EPOLLOUT as u32;
    }
    if poll_events & libc::POLLPRI as u32 != 0 {
        m |= libc::EPOLLPRI as u32;
    }
    m
}

/// Whether a waiter for `wanted` (poll events) is satisfied by `ready`
/// (epoll events). Errors and hang-ups satisfy everyone.
fn satisfies(wanted: u32, ready: u32) -> bool {
    if ready & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
        return true;
    }
    epoll_mask(wanted) & ready != 0
}

/// Converts epoll events to the `poll` bits a ring's poll op reports.
fn to_poll_events(ready: u32) -> u32 {
    let mut p = 0;
    if ready & libc::EPOLLIN as u32 != 0 {
        p |= libc::POLLIN as u32;
    }
    if ready & libc::EPOLLOUT as u32 != 0 {
        p |= libc::POLLOUT as u32;
    }
    if ready & libc::EPOLLERR as u32 != 0 {
        p |= libc::POLLERR as u32;
    }
    if ready & libc::EPOLLHUP as u32 != 0 {
        p |= libc::POLLHUP as u32;
    }
    if ready & libc::EPOLLRDHUP as u32 != 0 {
        p |= libc::POLLRDHUP as u32;
    }
    if ready & libc::EPOLLPRI as u32 != 0 {
        p |= libc::POLLPRI as u32;
    }
    p
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Poller {
    pub(crate) fn new(wake_fd: RawFd) -> io::Result<Poller> {
        // SAFETY: plain syscall, result checked.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: a fresh descriptor nothing else owns.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: WAKE_TOKEN,
        };
        // SAFETY: both descriptors are open; `ev` is a live epoll_event.
        cvt(unsafe { libc::epoll_ctl(fd, libc::EPOLL_CTL_ADD, wake_fd, &mut ev) })?;
        Ok(Poller {
            epfd,
            wake_fd,
            fds: HashMap::new(),
            by_key: HashMap::new(),
            events: Vec::with_capacity(256),
            pwait2: true,
            registered: 0,
        })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: events | libc::EPOLLONESHOT as u32,
            u64: fd as u64,
        };
        // SAFETY: `ev` is a live epoll_event; a bad `fd` is reported as an
        // error, never undefined behaviour.
        cvt(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) }).map(drop)
    }

    /// Arms `fd` for the union of its waiters (MOD when registered, else
    /// ADD, each falling back to the other).
    fn arm(&mut self, fd: RawFd) -> io::Result<()> {
        let Some(entry) = self.fds.get(&fd) else {
            return Ok(());
        };
        let union = entry.waiters.iter().fold(0, |m, &(_, e)| m | epoll_mask(e));
        let (first, second) = if entry.registered {
            (libc::EPOLL_CTL_MOD, libc::EPOLL_CTL_ADD)
        } else {
            (libc::EPOLL_CTL_ADD, libc::EPOLL_CTL_MOD)
        };
        let result = match self.ctl(first, fd, union) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOENT)) => {
                self.ctl(second, fd, union)
            }
            other => other,
        };
        if let Some(entry) = self.fds.get_mut(&fd) {
            entry.registered = result.is_ok();
        }
        result
    }

    /// Op `key` waits for `fd` to be ready for `events` (poll bits).
    pub(crate) fn add_interest(&mut self, fd: RawFd, events: u32, key: usize) -> io::Result<()> {
        self.fds.entry(fd).or_default().waiters.push((key, events));
        self.by_key.insert(key, fd);
        if let Err(e) = self.arm(fd) {
            self.remove_interest(key);
            return Err(e);
        }
        Ok(())
    }

    /// Watches `fd` for as long as it is registered, edge-triggered, both
    /// ways: each event completes `key` again (the slot stays).
    pub(crate) fn add_edge_triggered(&mut self, fd: RawFd, key: usize) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: REGISTERED_TAG | key as u64,
        };
        // SAFETY: `ev` is a live epoll_event; a bad `fd` is an error.
        cvt(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
        self.registered += 1;
        Ok(())
    }

    /// Stops watching a descriptor of [`add_edge_triggered`](Self::add_edge_triggered).
    pub(crate) fn remove_edge_triggered(&mut self, fd: RawFd) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: `ev` is a live epoll_event (ignored by DEL on current
        // kernels, required non-null by old ones).
        let _ = unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) };
        self.registered = self.registered.saturating_sub(1);
    }

    /// Op `key` no longer waits.
    pub(crate) fn remove_interest(&mut self, key: usize) {
        let Some(fd) = self.by_key.remove(&key) else {
            return;
        };
        let Some(entry) = self.fds.get_mut(&fd) else {
            return;
        };
        entry.waiters.retain(|&(k, _)| k != key);
        if !entry.waiters.is_empty() {
            let _ = self.arm(fd);
        }
        // With no waiters left the one-shot registration may still fire
        // once; such an event finds nobody and is ignored.
    }

    /// What a wait needs outside the driver's lock: `None` when there is
    /// nothing to wait for (a zero timeout and no waiters).
    pub(crate) fn begin_wait(&mut self, timeout: Option<Duration>) -> Option<WaitCall> {
        if timeout == Some(Duration::ZERO) && self.by_key.is_empty() && self.registered == 0 {
            return None;
        }
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        if events.capacity() == 0 {
            events.reserve(256);
        }
        Some(WaitCall {
            epfd: self.epfd.as_raw_fd(),
            events,
            pwait2: self.pwait2,
            timeout,
        })
    }

    /// Collects the waiters made ready by a finished `WaitCall` into `out`.
    pub(crate) fn finish_wait(&mut self, call: WaitCall, out: &mut Vec<(u64, Completion)>) {
        let WaitCall { events, pwait2, .. } = call;
        self.pwait2 = pwait2;
        for ev in &events {
            let (token, ready) = (ev.u64, ev.events);
            if token == WAKE_TOKEN {
                self.drain_wake();
                continue;
            }
            if token & REGISTERED_TAG != 0 {
                out.push((
                    token & !REGISTERED_TAG,
                    Completion {
                        result: 0,
                        flags: to_poll_events(ready),
                    },
                ));
                continue;
            }
            let fd = token as RawFd;
            let Some(entry) = self.fds.get_mut(&fd) else {
                continue;
            };
            let waiters = &mut entry.waiters;
            let mut i = 0;
            while i < waiters.len() {
                let (key, wanted) = waiters[i];
                if satisfies(wanted, ready) {
                    waiters.swap_remove(i);
                    self.by_key.remove(&key);
                    out.push((
                        key as u64,
                        Completion {
                            result: 0,
                            flags: to_poll_events(ready),
                        },
                    ));
                } else {
                    i += 1;
                }
            }
            if !waiters.is_empty() {
                let _ = self.arm(fd);
            }
        }
        self.events = events;
    }

    fn drain_wake(&self) {
        let mut buf: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64 from our
        // non-blocking eventfd.
        unsafe {
            libc::read(
                self.wake_fd,
                (&mut buf as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }
}

/// One `epoll_pwait2` (or `epoll_wait`) call, made without holding the
/// driver's lock so other threads can still drop their interests.
pub(crate) struct WaitCall {
    epfd: RawFd,
    events: Vec<libc::epoll_event>,
    pwait2: bool,
    timeout: Option<Duration>,
}

impl WaitCall {
    /// Blocks until events arrive or the timeout passes.
    pub(crate) fn wait(&mut self) -> io::Result<()> {
        let cap = self.events.capacity() as libc::c_int;
        let n = self.epoll_wait(self.timeout, cap)?;
        // SAFETY: the kernel initialised the first `n` entries.
        unsafe { self.events.set_len(n) };
        Ok(())
    }

    fn epoll_wait(&mut self, timeout: Option<Duration>, cap: libc::c_int) -> io::Result<usize> {
        let epfd = self.epfd;
        let buf = self.events.as_mut_ptr();
        if self.pwait2 {
            let ts = timeout.map(|t| libc::timespec {
                tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: t.subsec_nanos() as libc::c_long,
            });
            let ts_ptr = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `buf` has room for `cap` events; `ts_ptr` is null or
            // points at a live timespec; no signal mask is passed.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    epfd,
                    buf,
                    cap,
                    ts_ptr,
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            };
            if r >= 0 {
                return Ok(r as usize);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENOSYS) => self.pwait2 = false,
                Some(libc::EINTR) => return Ok(0),
                _ => return Err(e),
            }
        }
        // Millisecond timeouts, rounded up so timers never fire early.
        let ms = timeout.map_or(-1, |t| {
            let ms = t.as_nanos().div_ceil(1_000_000);
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        });
        // SAFETY: `buf` has room for `cap` events.
        let r = unsafe { libc::epoll_wait(epfd, buf, cap, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(r as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert!(satisfies(libc::POLLIN as u32, libc::EPOLLIN as u32));
        assert!(!satisfies(libc::POLLIN as u32, libc::EPOLLOUT as u32));
        assert!(satisfies(libc::POLLOUT as u32, libc::EPOLLHUP as u32));
        assert_eq!(
            to_poll_events((libc::EPOLLIN | libc::EPOLLRDHUP) as u32),
            (libc::POLLIN | libc::POLLRDHUP) as u32
        );
    }
}
