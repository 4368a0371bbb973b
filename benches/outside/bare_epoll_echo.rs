//! A runtime-free epoll echo server on one thread: the most a
//! readiness-based runtime could do here, to set `scripts/bench-echo`'s
//! numbers against.
//!
//! No tasks, no wakers, no timers: nonblocking sockets registered
//! edge-triggered, and on each readiness event the socket is read until a
//! short read and every piece is written straight back (a blocking-style
//! retry on a full send buffer, which this ping-pong never reaches).
//!
//! Run: `cargo run --release --example bare_epoll_echo -- --addr 127.0.0.1:7003`

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::process::ExitCode;

const LISTENER: u64 = u64::MAX;

fn ctl_add(ep: RawFd, fd: RawFd, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
        u64: token,
    };
    // SAFETY: registers a live descriptor with a live epoll instance.
    if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads until the socket is drained, echoing each piece; `Ok(false)`
/// when the connection is over.
fn serve(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<bool> {
    loop {
        match stream.read(buf) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                let mut done = 0;
                while done < n {
                    match stream.write(&buf[done..n]) {
                        Ok(w) => done += w,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::hint::spin_loop(),
                        Err(e) => return Err(e),
                    }
                }
                if n < buf.len() {
                    // A short read drained the socket (edge-triggered: the
                    // next event comes with new data).
                    return Ok(true);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn run(addr: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    println!("bare_epoll_echo: listening on {}", listener.local_addr()?);
    // SAFETY: plain system call; the result is checked.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }
    ctl_add(ep, listener.as_raw_fd(), LISTENER)?;
    let mut conns: Vec<Option<TcpStream>> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: `events` has room for the count passed.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in &events[..n as usize] {
            let token = ev.u64;
            if token == LISTENER {
                while let Ok((s, _)) = listener.accept() {
                    s.set_nonblocking(true)?;
                    s.set_nodelay(true)?;
                    let slot = conns.iter().position(Option::is_none).unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    ctl_add(ep, s.as_raw_fd(), slot as u64)?;
                    conns[slot] = Some(s);
                }
                continue;
            }
            let slot = token as usize;
            let open = match conns.get_mut(slot).and_then(Option::as_mut) {
                Some(s) => serve(s, &mut buf).unwrap_or(false),
                None => continue,
            };
            if !open {
                // Dropping the stream closes it, which also unregisters it.
                conns[slot] = None;
            }
        }
    }
}

fn main() -> ExitCode {
    let mut addr = "127.0.0.1:7003".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--addr", Some(v)) => addr = v,
            // Accepted for scripts that pass the same flags to every server.
            ("--workers", Some(_)) => {}
            _ => {
                eprintln!("usage: bare_epoll_echo [--addr HOST:PORT]");
                return ExitCode::from(2);
            }
        }
    }
    match run(&addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare_epoll_echo: {e}");
            ExitCode::FAILURE
        }
    }
}
