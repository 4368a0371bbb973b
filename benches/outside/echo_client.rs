//! An outside echo client for measuring echo servers the way users do: one
//! thread, one epoll loop, `--conns` connections each doing 1 KiB
//! ping-pong (send a message, wait for all of it to come back, repeat).
//!
//! Run (against any echo server on 127.0.0.1:7000):
//!
//! ```text
//! cargo run --release --example echo_client -- --addr 127.0.0.1:7000 \
//!     --conns 64 --warmup 1 --secs 5 [--server-pid PID]
//! ```
//!
//! It prints one line, `round_trips=N secs=S rate=R/s`, and with
//! `--server-pid` also the server's CPU time over the measured window
//! (its threads' run time from `/proc/PID/task/*/schedstat`) and the round trips per server
//! CPU-second. `scripts/bench-echo` runs it pinned against each server.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Args {
    addr: SocketAddr,
    conns: usize,
    size: usize,
    warmup: Duration,
    secs: Duration,
    server_pid: Option<u32>,
}

const USAGE: &str = "usage: echo_client [--addr HOST:PORT] [--conns N] [--size BYTES] \
                     [--warmup SECS] [--secs SECS] [--server-pid PID]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 7000)),
        conns: 64,
        size: 1024,
        warmup: Duration::from_secs(1),
        secs: Duration::from_secs(5),
        server_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--addr" => {
                let v = value()?;
                args.addr = v.parse().map_err(|e| format!("--addr {v:?}: {e}"))?;
            }
            "--conns" => args.conns = number(&a, &value()?)?,
            "--size" => args.size = number(&a, &value()?)?,
            "--warmup" => args.warmup = seconds(&a, &value()?)?,
            "--secs" => args.secs = seconds(&a, &value()?)?,
            "--server-pid" => args.server_pid = Some(number(&a, &value()?)?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if args.conns == 0 || args.size == 0 || args.secs.is_zero() {
        return Err("--conns, --size and --secs must be positive".into());
    }
    Ok(args)
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag}: {v:?} is not a number"))
}

fn seconds(flag: &str, v: &str) -> Result<Duration, String> {
    let s: f64 = v
        .parse()
        .map_err(|_| format!("{flag}: {v:?} is not a number of seconds"))?;
    if !(0.0..1e6).contains(&s) {
        return Err(format!("{flag}: {v} is out of range"));
    }
    Ok(Duration::from_secs_f64(s))
}

/// CPU time of process `pid`: the sum of its threads' run time from
/// `/proc/PID/task/*/schedstat` (nanoseconds), or user plus system time
/// from `/proc/PID/stat` (clock ticks) where schedstat is missing.
fn process_cpu(pid: u32) -> io::Result<Duration> {
    match threads_run_time(pid) {
        Ok(t) => Ok(t),
        Err(_) => stat_cpu(pid),
    }
}

fn threads_run_time(pid: u32) -> io::Result<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        // A thread that just exited has no file any more: skip it.
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let ns: u64 = text
            .split_whitespace()
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other("unexpected schedstat format"))?;
        total += ns;
    }
    Ok(Duration::from_nanos(total))
}

/// User plus system CPU time of process `pid`, from `/proc/PID/stat`.
fn stat_cpu(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces: fields start after its ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("unexpected /proc/PID/stat format"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15 (1-based).
    let tick = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other("unexpected /proc/PID/stat format"))
    };
    let ticks = tick(11)? + tick(12)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

/// One connection's ping-pong state.
struct Conn {
    stream: TcpStream,
    /// Bytes of the current echo received so far.
    got: usize,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn epoll_add(epfd: RawFd, fd: RawFd, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: both descriptors are open and `ev` is a live epoll_event.
    cvt(unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(drop)
}

/// Writes all of `msg`; a loopback socket almost always takes 1 KiB at
/// once, so the rare partial write just retries.
fn send_all(stream: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    let mut done = 0;
    while done < msg.len() {
        match stream.write(&msg[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn run(args: &Args) -> io::Result<()> {
    let msg = vec![0x5au8; args.size];
    let mut scratch = vec![0u8; args.size.max(64 * 1024)];
    // SAFETY: plain syscall, result checked.
    let epfd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    let mut conns = Vec::with_capacity(args.conns);
    for i in 0..args.conns {
        let stream = TcpStream::connect(args.addr)
            .map_err(|e| io::Error::new(e.kind(), format!("connect {}: {e}", args.addr)))?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        epoll_add(epfd, stream.as_raw_fd(), i as u64)?;
        conns.push(Conn { stream, got: 0 });
    }
    for c in &mut conns {
        send_all(&mut c.stream, &msg)?;
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.secs;
    let mut measuring = false;
    let mut round_trips: u64 = 0;
    let mut cpu_start = Duration::ZERO;
    let mut t0 = start;
    loop {
        let now = Instant::now();
        if !measuring && now >= measure_from {
            measuring = true;
            round_trips = 0;
            t0 = now;
            if let Some(pid) = args.server_pid {
                cpu_start = process_cpu(pid)?;
            }
        }
        if now >= end {
            break;
        }
        // SAFETY: `events` has room for its length in entries.
        let n = unsafe {
            libc::epoll_wait(epfd, events.as_mut_ptr(), events.len() as libc::c_int, 100)
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in &events[..n as usize] {
            let c = &mut conns[ev.u64 as usize];
            loop {
                let want = args.size - c.got;
                match c.stream.read(&mut scratch[..want]) {
                    Ok(0) => return Err(io::Error::other("the server closed a connection")),
                    Ok(k) => {
                        c.got += k;
                        if c.got == args.size {
                            c.got = 0;
                            round_trips += 1;
                            send_all(&mut c.stream, &msg)?;
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let rate = round_trips as f64 / secs;
    let mut line = format!("round_trips={round_trips} secs={secs:.3} rate={rate:.0}/s");
    if let Some(pid) = args.server_pid {
        let cpu = process_cpu(pid)?.saturating_sub(cpu_start).as_secs_f64();
        let per_cpu = if cpu > 0.0 {
            round_trips as f64 / cpu
        } else {
            f64::NAN
        };
        line += &format!(" server_cpu={cpu:.3}s per_cpu_s={per_cpu:.0}");
    }
    println!("{line}");
    // SAFETY: `epfd` is ours and closed once.
    unsafe { libc::close(epfd) };
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("echo_client: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_client: {e}");
            ExitCode::FAILURE
        }
    }
}
