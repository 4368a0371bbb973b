//! What the runtime-free epoll servers (`bare_epoll_echo`, `bare_http`)
//! share: an epoll instance, edge-triggered registration, a wait, and the
//! command line (`--addr`, plus `--workers`, accepted and ignored so scripts
//! can pass every server the same flags).

use std::io;
use std::os::fd::RawFd;
use std::process::ExitCode;

/// An epoll instance, closed on drop.
pub struct Epoll {
    fd: RawFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    /// A new epoll instance with room for 256 events per wait.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain system call; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll {
            fd,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 256],
        })
    }

    /// Registers `fd` edge-triggered for `events`, reported with `token`.
    pub fn add(&self, fd: RawFd, events: i32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (events | libc::EPOLLET) as u32,
            u64: token,
        };
        // SAFETY: registers a live descriptor with a live epoll instance.
        if unsafe { libc::epoll_ctl(self.fd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits for events: `(token, event bits)` of each (none after a
    /// signal interrupted the wait).
    pub fn wait(&mut self) -> io::Result<impl Iterator<Item = (u64, i32)> + '_> {
        // SAFETY: `events` has room for the count passed.
        let n = unsafe {
            libc::epoll_wait(
                self.fd,
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                -1,
            )
        };
        let n = if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
            0
        } else {
            n as usize
        };
        Ok(self.events[..n].iter().map(|ev| (ev.u64, ev.events as i32)))
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: ours, closed once.
        unsafe { libc::close(self.fd) };
    }
}

/// The index of a free slot of `slots`, added at the end if none is.
pub fn free_slot<T>(slots: &mut Vec<Option<T>>) -> usize {
    slots.iter().position(Option::is_none).unwrap_or_else(|| {
        slots.push(None);
        slots.len() - 1
    })
}

/// Parses `--addr HOST:PORT` (default `default`) and runs `serve` on it,
/// turning errors into a message and an exit code.
pub fn main_with(
    name: &str,
    default: &str,
    serve: impl FnOnce(&str) -> io::Result<()>,
) -> ExitCode {
    let mut addr = default.to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--addr", Some(v)) => addr = v,
            ("--workers", Some(_)) => {}
            _ => {
                eprintln!("usage: {name} [--addr HOST:PORT]");
                return ExitCode::from(2);
            }
        }
    }
    match serve(&addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
