//! A runtime-free io_uring echo server on one thread: the most an io_uring
//! runtime could do here, to set `scripts/bench-echo`'s numbers against.
//!
//! No tasks, no wakers, no timers: a multishot accept, one multishot receive
//! per connection into a provided-buffer ring (`SINGLE_ISSUER |
//! DEFER_TASKRUN`), and each received piece sent back straight from its
//! buffer, either by a `send` system call at once (`--send syscall`, the
//! default, what numa_rt does) or by a `Send` ring operation submitted
//! with the next wait (`--send ring`: no system call per message, the
//! buffer returns to the ring when the send completes).
//!
//! Run: `cargo run --release --example bare_uring_echo -- --addr 127.0.0.1:7002 --send ring`

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::process::ExitCode;

use io_uring::{cqueue, opcode, types, IoUring};

#[path = "common/buf_ring.rs"]
mod buf_ring;

use buf_ring::{send_all, Buffers, BUFS, GROUP};

const ACCEPT: u64 = 0;
const RECV: u64 = 1;
const SEND: u64 = 2;

fn token(kind: u64, fd: RawFd, bid: u16) -> u64 {
    kind | (u64::from(bid) << 8) | ((fd as u64) << 32)
}

fn untoken(t: u64) -> (u64, RawFd, u16) {
    (t & 0xff, (t >> 32) as RawFd, ((t >> 8) & 0xffff) as u16)
}

fn close(fd: RawFd) {
    // SAFETY: closes a descriptor this loop accepted and owns.
    unsafe { libc::close(fd) };
}

fn run(addr: &str, ring_send: bool) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    println!("bare_uring_echo: listening on {}", listener.local_addr()?);
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(4096)?;
    let mut bufs = Buffers::register(&ring)?;
    // Per buffer: bytes received into it and bytes already sent back (ring
    // sends may come up short).
    let mut filled = vec![(0usize, 0usize); usize::from(BUFS)];
    let lfd = listener.as_raw_fd();
    let push = |ring: &mut IoUring, e: io_uring::squeue::Entry| -> io::Result<()> {
        // SAFETY: every pointer an entry carries (buffers) outlives it.
        while unsafe { ring.submission().push(&e) }.is_err() {
            ring.submit()?;
        }
        Ok(())
    };
    push(&mut ring, accept(lfd))?;
    let mut done = Vec::new();
    loop {
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
        done.clear();
        done.extend(
            ring.completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        for &(t, res, flags) in &done {
            let (kind, fd, bid) = untoken(t);
            match kind {
                ACCEPT => {
                    if res >= 0 {
                        let one: libc::c_int = 1;
                        // SAFETY: sets TCP_NODELAY from a live int.
                        unsafe {
                            libc::setsockopt(
                                res,
                                libc::IPPROTO_TCP,
                                libc::TCP_NODELAY,
                                (&one as *const libc::c_int).cast(),
                                4,
                            )
                        };
                        push(&mut ring, recv(res))?;
                    }
                    if !cqueue::more(flags) {
                        push(&mut ring, accept(lfd))?;
                    }
                }
                RECV => {
                    if res > 0 {
                        let Some(bid) = cqueue::buffer_select(flags) else {
                            continue;
                        };
                        let len = res as usize;
                        if ring_send {
                            filled[usize::from(bid)] = (len, 0);
                            push(&mut ring, send(&bufs, filled[usize::from(bid)], fd, bid))?;
                        } else {
                            if send_all(fd, bufs.data(bid, len)).is_err() {
                                // The receive's last completion closes it.
                                // SAFETY: a descriptor this loop owns.
                                unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
                            }
                            bufs.put(bid);
                        }
                    }
                    if res == 0 || (res < 0 && res != -libc::ENOBUFS) {
                        close(fd);
                    } else if !cqueue::more(flags) {
                        push(&mut ring, recv(fd))?;
                    }
                }
                SEND => {
                    let (len, sent) = &mut filled[usize::from(bid)];
                    if res > 0 {
                        *sent += res as usize;
                        if *sent < *len {
                            // Short: send the rest.
                            let rest = (*len, *sent);
                            push(&mut ring, send(&bufs, rest, fd, bid))?;
                            continue;
                        }
                    }
                    bufs.put(bid);
                }
                _ => {}
            }
        }
    }
}

/// A ring send of what buffer `bid` holds (`len` bytes) and has not sent
/// yet (the first `sent`).
fn send(
    bufs: &Buffers,
    (len, sent): (usize, usize),
    fd: RawFd,
    bid: u16,
) -> io_uring::squeue::Entry {
    // SAFETY: `sent <= len <= BUF_SIZE`: inside the buffer.
    let from = unsafe { bufs.addr(bid).add(sent) }.cast_const();
    opcode::Send::new(types::Fd(fd), from, (len - sent) as u32)
        .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
        .build()
        .user_data(token(SEND, fd, bid))
}

fn accept(listener: RawFd) -> io_uring::squeue::Entry {
    opcode::AcceptMulti::new(types::Fd(listener))
        .build()
        .user_data(token(ACCEPT, listener, 0))
}

fn recv(fd: RawFd) -> io_uring::squeue::Entry {
    opcode::RecvMulti::new(types::Fd(fd), GROUP)
        .build()
        .user_data(token(RECV, fd, 0))
}

fn main() -> ExitCode {
    let mut addr = "127.0.0.1:7002".to_string();
    let mut ring_send = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--addr", Some(v)) => addr = v,
            ("--send", Some(v)) if v == "ring" => ring_send = true,
            ("--send", Some(v)) if v == "syscall" => ring_send = false,
            // Accepted for scripts that pass the same flags to every server.
            ("--workers", Some(_)) => {}
            _ => {
                eprintln!("usage: bare_uring_echo [--addr HOST:PORT] [--send syscall|ring]");
                return ExitCode::from(2);
            }
        }
    }
    match run(&addr, ring_send) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare_uring_echo: {e}");
            ExitCode::FAILURE
        }
    }
}
