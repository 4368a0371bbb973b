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
use std::os::fd::AsRawFd;
use std::process::ExitCode;

#[path = "common/bare_epoll.rs"]
mod bare_epoll;

use bare_epoll::Epoll;

const LISTENER: u64 = u64::MAX;
const EVENTS: i32 = libc::EPOLLIN | libc::EPOLLRDHUP;

/// Reads until the socket is drained, echoing each piece; `Ok(false)`
/// when the connection is over. `closing`: the event said the peer closed,
/// so read on to the end (no further edge will come).
fn serve(stream: &mut TcpStream, buf: &mut [u8], closing: bool) -> io::Result<bool> {
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
                if n < buf.len() && !closing {
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
    let mut ep = Epoll::new()?;
    ep.add(listener.as_raw_fd(), EVENTS, LISTENER)?;
    let mut conns: Vec<Option<TcpStream>> = Vec::new();
    let mut buf = vec![0u8; 4096];
    let mut ready = Vec::new();
    loop {
        ready.clear();
        ready.extend(ep.wait()?);
        for &(token, flags) in &ready {
            if token == LISTENER {
                while let Ok((s, _)) = listener.accept() {
                    s.set_nonblocking(true)?;
                    s.set_nodelay(true)?;
                    let slot = bare_epoll::free_slot(&mut conns);
                    ep.add(s.as_raw_fd(), EVENTS, slot as u64)?;
                    conns[slot] = Some(s);
                }
                continue;
            }
            let slot = token as usize;
            let open = match conns.get_mut(slot).and_then(Option::as_mut) {
                Some(s) => {
                    let closing = flags & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) != 0;
                    serve(s, &mut buf, closing).unwrap_or(false)
                }
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
    bare_epoll::main_with("bare_epoll_echo", "127.0.0.1:7003", run)
}
