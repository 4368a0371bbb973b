//! Fault injection through the OS layer: the kernel refuses what the
//! runtime asks for, and the runtime answers with a clean error and keeps
//! serving.
//!
//! - node heap memory refused (`mmap` of the allocator's segments, or
//!   `mbind`): task cells fall back to the global allocator, `NodeBox` and
//!   `NodeVec` give `Err`, tasks and I/O keep running;
//! - `io_uring_enter` refusing submissions (`ENOMEM`, `EAGAIN`, `EBUSY`, as
//!   under memory pressure or a full completion queue): every operation
//!   completes or fails with an `io::Error`, none hangs, nothing panics;
//! - no descriptors left (`EMFILE`): connect, bind, open and unix connect
//!   fail with `EMFILE` while established connections keep being served,
//!   and everything works again once descriptors are free; a thread that
//!   cannot create its own driver then runs its timers on another driver
//!   of the runtime;
//! - io_uring rings refused after the startup probe: `Auto` builds the
//!   runtime on epoll, an explicit `Uring` fails the build with the errno.
//!
//! The faults come from the kernel itself: a seccomp filter (installed in a
//! child process, this binary re-run) makes the chosen calls fail, or a low
//! `RLIMIT_NOFILE`. The runtime's code runs unmodified.

mod io_common;
mod seccomp;

use std::future::Future;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use numa_rt_alloc::{current_node, node_stats, NodeBox, NodeVec};
use numa_rt_runtime::fs::File;
use numa_rt_runtime::io::IoDriver;
use numa_rt_runtime::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use numa_rt_runtime::runtime::{Builder, Runtime};
use numa_rt_runtime::time::timeout;
use seccomp::{Action, Cond, Rule, Supervisor};

/// Which fault a child process runs.
const CASE: &str = "NUMA_RT_FAULT_CASE";

/// Generous: an operation that outlives this is taken as lost.
const PATIENCE: Duration = Duration::from_secs(10);

fn case() -> Option<String> {
    std::env::var(CASE).ok()
}

/// The errors [`echo_server`]'s accepts met (errno), for the tests to check.
static ACCEPT_ERRORS: Mutex<Vec<Option<i32>>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Asserts that every accept error so far was one of `allowed`.
fn accept_errors_were(allowed: &[i32]) {
    for e in lock(&ACCEPT_ERRORS).iter() {
        assert!(
            e.is_some_and(|e| allowed.contains(&e)),
            "accept failed with {e:?}, expected one of {allowed:?}"
        );
    }
}

/// Accepts forever; echoes every connection. Refused accepts (no
/// descriptors) are retried after a pause, as a real server would.
async fn echo_server(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                numa_rt_runtime::spawn(async move {
                    let mut buf = Vec::with_capacity(4096);
                    loop {
                        let (r, b) = stream.read_owned(buf).await;
                        match r {
                            Ok(n) if n > 0 => {}
                            _ => return,
                        }
                        let (r, mut b) = stream.write_all_owned(b).await;
                        if r.is_err() {
                            return;
                        }
                        b.clear();
                        buf = b;
                    }
                });
            }
            Err(e) => {
                lock(&ACCEPT_ERRORS).push(e.raw_os_error());
                numa_rt_runtime::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// Sends `msg` and reads it back.
async fn round_trip(stream: &TcpStream, msg: &[u8]) -> io::Result<()> {
    let (r, _) = stream.write_all_owned(msg.to_vec()).await;
    r?;
    let mut got = Vec::new();
    while got.len() < msg.len() {
        let (r, buf) = stream.read_owned(Vec::with_capacity(msg.len())).await;
        if r? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf);
    }
    assert_eq!(got, msg);
    Ok(())
}

/// A listener with an echo server behind it; returns its address.
async fn start_echo() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    numa_rt_runtime::spawn(echo_server(listener));
    addr
}

/// Spawns `n` tasks that each yield twice, and checks every result.
async fn run_tasks(n: u64) {
    let joins: Vec<_> = (0..n)
        .map(|i| {
            numa_rt_runtime::spawn(async move {
                numa_rt_runtime::task::yield_now().await;
                let state = [i; 8];
                numa_rt_runtime::task::yield_now().await;
                state.iter().sum::<u64>()
            })
        })
        .collect();
    for (i, j) in joins.into_iter().enumerate() {
        assert_eq!(j.await.unwrap(), 8 * i as u64);
    }
}

fn multi(driver: IoDriver) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .pin_workers(false)
        .enable_all()
        .io_driver(driver)
        .build()
        .unwrap()
}

// ---- node heap memory refused ---------------------------------------------

/// The allocator's mappings: read-write, `MAP_NORESERVE`. glibc's malloc
/// reserves its arenas `PROT_NONE` and maps large blocks without
/// `MAP_NORESERVE`, and thread stacks are `MAP_STACK`: none of them match.
fn node_heap_mmap() -> Rule {
    Rule {
        nr: libc::SYS_mmap,
        conds: vec![
            Cond::Eq(2, (libc::PROT_READ | libc::PROT_WRITE) as u32),
            Cond::AnyBits(3, libc::MAP_NORESERVE as u32),
        ],
        action: Action::Errno(libc::ENOMEM),
    }
}

/// Tasks, timers and TCP on a runtime whose node heap gives nothing.
fn serve_without_node_memory() {
    let rt = multi(IoDriver::Auto);
    rt.block_on(async {
        let addr = start_echo().await;
        // Spawned from a worker and from outside one.
        numa_rt_runtime::spawn(run_tasks(2000)).await.unwrap();
        run_tasks(500).await;
        let c = TcpStream::connect(addr).await.unwrap();
        round_trip(&c, b"still serving").await.unwrap();
        numa_rt_runtime::time::sleep(Duration::from_millis(2)).await;
    });
}

#[test]
fn node_heap_mapping_refused() {
    if case().as_deref() != Some("heap-mmap") {
        if case().is_none() {
            let out = seccomp::run_child(CASE, "node_heap_mapping_refused", "heap-mmap", &[]);
            assert!(out.contains("heap-mmap: ok"), "{out}");
        }
        return;
    }
    seccomp::install(&[node_heap_mmap()]);
    let node = current_node();
    let err = NodeBox::new_on(node, [7u64; 8]).unwrap_err();
    assert!(err.to_string().contains("mmap"), "{err}");
    let err = NodeVec::<u64>::with_capacity_on(node, 1 << 20).unwrap_err();
    assert!(err.to_string().contains("mmap"), "{err}");
    serve_without_node_memory();
    // Every cell came from the global allocator: the node has nothing
    // mapped and nothing in use.
    let stats = node_stats(node);
    assert_eq!(stats.mapped_bytes, 0, "{stats:?}");
    assert_eq!(stats.in_use_bytes, 0, "{stats:?}");
    println!("heap-mmap: ok");
}

#[test]
fn node_heap_binding_refused() {
    if case().as_deref() != Some("heap-mbind") {
        if case().is_none() {
            let out = seccomp::run_child(CASE, "node_heap_binding_refused", "heap-mbind", &[]);
            assert!(out.contains("heap-mbind: ok"), "{out}");
        }
        return;
    }
    // ENOMEM: a refusal the allocator cannot wave through as moot (EPERM
    // and ENOSYS are, on a one-node machine).
    seccomp::install(&[Rule {
        nr: libc::SYS_mbind,
        conds: vec![],
        action: Action::Errno(libc::ENOMEM),
    }]);
    let node = current_node();
    let err = NodeBox::new_on(node, [7u64; 8]).unwrap_err();
    assert!(err.to_string().contains("mbind"), "{err}");
    let err = NodeVec::<u64>::with_capacity_on(node, 1 << 20).unwrap_err();
    assert!(err.to_string().contains("mbind"), "{err}");
    // Task cells ask for node memory without insisting on the binding.
    serve_without_node_memory();
    let stats = node_stats(node);
    assert_eq!(stats.in_use_bytes, 0, "cells left in use: {stats:?}");
    println!("heap-mbind: ok");
}

// ---- io_uring refusing submissions ----------------------------------------

/// A file of `len` known bytes.
fn data_file(dir: &tempfile::TempDir, len: usize) -> (std::path::PathBuf, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let path = dir.path().join("data");
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

/// A ring's submission queue entries (the builder's default): a push onto
/// a full queue submits all of them.
const FULL_QUEUE: u64 = 256;

/// `n` reads at once (more than a ring's 256 submission entries, so
/// submissions also happen while queueing); each gives the data or the
/// injected error. Returns how many failed.
async fn read_burst(file: &Arc<File>, data: &Arc<Vec<u8>>, n: usize, errno: i32) -> usize {
    let joins: Vec<_> = (0..n)
        .map(|i| {
            let file = file.clone();
            let data = data.clone();
            numa_rt_runtime::spawn(async move {
                let at = (i * 61) % (data.len() - 64);
                let (r, buf) = file.read_at(Vec::with_capacity(64), at as u64).await;
                match r {
                    Ok(n) => {
                        assert_eq!(n, 64);
                        assert_eq!(&buf[..], &data[at..at + 64]);
                        false
                    }
                    Err(e) if e.raw_os_error() == Some(errno) => true,
                    Err(e) => panic!("read_at: unexpected error {e}"),
                }
            })
        })
        .collect();
    let mut failed = 0;
    for j in joins {
        if timeout(PATIENCE, j)
            .await
            .expect("a read was lost")
            .unwrap()
        {
            failed += 1;
        }
    }
    failed
}

/// Round trips and read bursts while `sup` fails submissions with each
/// errno in turn, then checks that everything works afterwards. Returns how
/// many submissions of a full queue were refused.
fn submissions_refused(rt: &Runtime, sup: &Supervisor, label: &str) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = data_file(&dir, 1 << 16);
    let data = Arc::new(data);
    let full_queue_refusals = rt.block_on(async {
        let mut full_queue_refusals = 0;
        let addr = start_echo().await;
        let file = Arc::new(File::open(&path).await.unwrap());
        let mut conn = TcpStream::connect(addr).await.unwrap();
        round_trip(&conn, b"before").await.unwrap();
        for errno in [libc::ENOMEM, libc::EAGAIN, libc::EBUSY] {
            let before = sup.failed();
            sup.fail_next(errno, 8);
            let (mut trips, mut trip_errors, mut read_errors) = (0, 0, 0);
            while sup.budget() > 0 && trips < 100 {
                trips += 1;
                let r = timeout(PATIENCE, round_trip(&conn, b"under pressure"))
                    .await
                    .expect("a round trip was lost");
                if let Err(e) = r {
                    // Ours failed, or the server's (it then hangs up).
                    assert!(
                        e.raw_os_error() == Some(errno) || e.kind() == io::ErrorKind::UnexpectedEof,
                        "round trip: {e}"
                    );
                    trip_errors += 1;
                    // The stream may be half way through a message: start over.
                    conn = loop {
                        match timeout(PATIENCE, TcpStream::connect(addr))
                            .await
                            .expect("a connect was lost")
                        {
                            Ok(c) => break c,
                            Err(e) => assert_eq!(e.raw_os_error(), Some(errno), "connect: {e}"),
                        }
                    };
                }
                read_errors += read_burst(&file, &data, 300, errno).await;
            }
            assert_eq!(sup.budget(), 0, "{label}: faults not consumed");
            assert_eq!(sup.failed() - before, 8);
            println!(
                "{label} errno {errno}: {trips} rounds, {trip_errors} round trips and \
                 {read_errors} reads failed cleanly"
            );
            // The kernel takes submissions again: all is well.
            round_trip(&conn, b"after").await.unwrap();
            assert_eq!(read_burst(&file, &data, 300, errno).await, 0);
        }
        // Refusals only when the submission queue is full: operations are
        // pushed onto a full queue, and those the kernel will not take
        // fail with the error (after a few retries).
        for errno in [libc::ENOMEM, libc::EBUSY] {
            sup.fail_next_from(errno, 200, FULL_QUEUE);
            let mut read_errors = 0;
            for _ in 0..5 {
                read_errors += read_burst(&file, &data, 1000, errno).await;
            }
            let refused = 200 - sup.budget();
            full_queue_refusals += refused;
            sup.fail_next(0, 0);
            println!(
                "{label} errno {errno} on a full queue: {refused} submissions and \
                 {read_errors} reads failed (largest submission {})",
                sup.max_arg1()
            );
            assert!(
                refused == 0 || read_errors > 0,
                "refused pushes must fail their operation"
            );
            assert_eq!(read_burst(&file, &data, 1000, errno).await, 0);
        }
        // Every other submission of a full queue refused: the retry after
        // a refusal goes through, so nothing fails, but completions posted
        // by the previous submission (reads from the page cache complete
        // at once) sit in the completion queue when the refusal comes. They
        // must not be lost.
        sup.fail_every(libc::EBUSY, 50, FULL_QUEUE, 2);
        for _ in 0..5 {
            assert_eq!(read_burst(&file, &data, 1000, libc::EBUSY).await, 0);
        }
        println!(
            "{label}: every other full-queue submission refused: {} refusals, no read lost",
            50 - sup.budget()
        );
        full_queue_refusals += 50 - sup.budget();
        sup.fail_next(0, 0);
        let fresh = TcpStream::connect(addr).await.unwrap();
        round_trip(&fresh, b"fresh").await.unwrap();
        full_queue_refusals
    });
    accept_errors_were(&[libc::ENOMEM, libc::EAGAIN, libc::EBUSY]);
    full_queue_refusals
}

#[test]
fn io_uring_submissions_refused() {
    if case().as_deref() != Some("uring-enter") {
        if case().is_none() {
            let out = seccomp::run_child(CASE, "io_uring_submissions_refused", "uring-enter", &[]);
            assert!(out.contains("uring-enter: "), "{out}");
            eprintln!("{out}");
        }
        return;
    }
    // io_uring_enter with something to submit (args[1] = to_submit) goes
    // to the supervisor, which fails a counted number of them.
    let listener = match seccomp::try_install(&[Rule {
        nr: libc::SYS_io_uring_enter,
        conds: vec![Cond::NonZero(1)],
        action: Action::Notify,
    }]) {
        Ok(fd) => fd.unwrap(),
        Err(e) => {
            println!("uring-enter: skipped, no seccomp user notification here: {e}");
            return;
        }
    };
    let sup = Supervisor::start(listener);
    let current = match Builder::new_current_thread()
        .enable_all()
        .io_driver(IoDriver::Uring)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            println!("uring-enter: skipped, io_uring unavailable: {e}");
            return;
        }
    };
    let mut full_queue = submissions_refused(&current, &sup, "current_thread");
    drop(current);
    full_queue += submissions_refused(&multi(IoDriver::Uring), &sup, "multi_thread");
    assert!(sup.passed() > 0);
    // One task spawning 1,000 reads on one thread fills the queue: the
    // push path was exercised, not only the wait.
    assert!(full_queue > 0, "no push met a full queue");
    println!("uring-enter: ok, {} submissions refused", sup.failed());
}

// ---- no descriptors left --------------------------------------------------

/// Takes every descriptor the process may still open (under a soft limit
/// lowered to 256); dropping the result frees them.
fn exhaust_descriptors() -> Vec<OwnedFd> {
    let lim = libc::rlimit {
        rlim_cur: 256,
        rlim_max: libc::RLIM_INFINITY,
    };
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY (test): plain syscalls on live structs.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur), 0);
        let lim = libc::rlimit {
            rlim_max: cur.rlim_max,
            ..lim
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    let mut held = Vec::new();
    take_free_descriptors(&mut held);
    // A runtime thread still starting up may hold a descriptor for a moment
    // (a worker reads /proc/self/status once) and close it after the loop
    // above: take what comes back until nothing has for a while.
    let mut quiet = 0;
    while quiet < 3 {
        std::thread::sleep(Duration::from_millis(10));
        if take_free_descriptors(&mut held) == 0 {
            quiet += 1;
        } else {
            quiet = 0;
        }
    }
    held
}

/// Dups stdin until `EMFILE`, keeping the copies; how many it took.
fn take_free_descriptors(held: &mut Vec<OwnedFd>) -> usize {
    let before = held.len();
    loop {
        // SAFETY (test): dup of stdin; the new descriptor is owned here.
        let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            assert_eq!(
                io::Error::last_os_error().raw_os_error(),
                Some(libc::EMFILE)
            );
            return held.len() - before;
        }
        // SAFETY (test): a fresh descriptor nothing else owns.
        held.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
}

fn assert_emfile<T>(what: &str, r: io::Result<T>) {
    match r {
        Ok(_) => panic!("{what}: succeeded without descriptors"),
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{what}: {e}"),
    }
}

fn serve_through_emfile(rt: &Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = data_file(&dir, 4096);
    let sock = dir.path().join("sock");
    rt.block_on(async {
        let addr = start_echo().await;
        let _unix = UnixListener::bind(&sock).unwrap();
        let conn = TcpStream::connect(addr).await.unwrap();
        round_trip(&conn, b"before").await.unwrap();

        let held = exhaust_descriptors();
        assert_emfile("connect", TcpStream::connect(addr).await);
        assert_emfile("bind", TcpListener::bind("127.0.0.1:0").await);
        assert_emfile("open", File::open(&path).await);
        assert_emfile("unix connect", UnixStream::connect(&sock).await);
        // What is open keeps working: the connection, tasks, timers.
        round_trip(&conn, b"no descriptors left").await.unwrap();
        numa_rt_runtime::spawn(run_tasks(100)).await.unwrap();
        numa_rt_runtime::time::sleep(Duration::from_millis(2)).await;
        round_trip(&conn, b"still").await.unwrap();
        drop(held);

        let fresh = timeout(PATIENCE, TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        round_trip(&fresh, b"fresh").await.unwrap();
        let file = File::open(&path).await.unwrap();
        let (r, buf) = file.read_at(Vec::with_capacity(4096), 0).await;
        assert_eq!(r.unwrap(), 4096);
        assert_eq!(buf, data);
        UnixStream::connect(&sock).await.unwrap();
    });
    accept_errors_were(&[libc::EMFILE]);
}

#[test]
fn no_descriptors_left() {
    if case().as_deref() != Some("emfile") {
        if case().is_none() {
            let out = seccomp::run_child(CASE, "no_descriptors_left", "emfile", &[]);
            assert!(out.contains("emfile: ok"), "{out}");
        }
        return;
    }
    for driver in io_common::drivers() {
        eprintln!("-- {driver:?}");
        serve_through_emfile(&io_common::current(driver));
        serve_through_emfile(&multi(driver));
    }
    println!("emfile: ok");
}

/// A thread new to a runtime gets its own driver at its first I/O or
/// timer; without descriptors it cannot. A connect fails with EMFILE (its
/// socket comes first); its timers go to a driver the runtime's other
/// threads drive (a worker's, or the current-thread runtime's): a `sleep`,
/// a `timeout` and an `interval` there work, fire no earlier than their
/// deadlines and nothing panics.
#[test]
fn block_on_from_a_new_thread_without_descriptors() {
    if case().as_deref() != Some("emfile-new-thread") {
        if case().is_none() {
            for driver in ["epoll", "uring"] {
                let out = seccomp::run_child(
                    CASE,
                    "block_on_from_a_new_thread_without_descriptors",
                    "emfile-new-thread",
                    &[("NUMA_RT_IO", driver)],
                );
                assert!(out.contains("emfile-new-thread: ok"), "{driver}: {out}");
            }
        }
        return;
    }
    if std::env::var("NUMA_RT_IO").as_deref() == Ok("uring") && io_common::drivers().len() < 2 {
        println!("emfile-new-thread: ok, skipped: io_uring unavailable");
        return;
    }
    /// What the thread without a driver does; `Err` names what went wrong.
    async fn timers_without_a_driver(addr: std::net::SocketAddr) -> Result<(), String> {
        use numa_rt_runtime::time::{interval, sleep, Instant};
        let r = TcpStream::connect(addr).await.map(drop);
        match r {
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {}
            other => return Err(format!("connect without descriptors: {other:?}")),
        }
        let start = Instant::now();
        sleep(Duration::from_millis(20)).await;
        if start.elapsed() < Duration::from_millis(20) {
            return Err(format!("sleep fired early: {:?}", start.elapsed()));
        }
        let never = sleep(Duration::from_secs(3600));
        if timeout(Duration::from_millis(5), never).await.is_ok() {
            return Err("a one-hour sleep finished within 5 ms".into());
        }
        let start = Instant::now();
        let mut every = interval(Duration::from_millis(3));
        for _ in 0..4 {
            every.tick().await;
        }
        if start.elapsed() < Duration::from_millis(9) {
            return Err(format!("4 ticks of 3 ms in {:?}", start.elapsed()));
        }
        // A timer first polled here and finished by a task.
        let mut moved = sleep(Duration::from_millis(10));
        let first = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::pin::Pin::new(&mut moved).poll(cx))
        })
        .await;
        if first.is_ready() {
            return Err("a 10 ms sleep was ready at once".into());
        }
        timeout(PATIENCE, numa_rt_runtime::spawn(moved))
            .await
            .map_err(|_| "a moved sleep hung".to_string())?
            .map_err(|e| e.to_string())
    }

    // Multi-thread: a new thread's `Handle::block_on`.
    let rt = multi(IoDriver::Auto);
    let addr = rt.block_on(start_echo());
    let handle = rt.handle().clone();
    let held = exhaust_descriptors();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handle.block_on(timers_without_a_driver(addr))
        }));
        let _ = tx.send(r.unwrap_or_else(|_| Err("panicked".into())));
    });
    // Waited for here, not by a timer of that thread: a lost timer wake-up
    // must fail the test rather than hang it.
    let r = rx.recv_timeout(PATIENCE);
    drop(held);
    r.expect("timers on a thread without a driver hung")
        .expect("multi_thread");
    drop(rt);

    // Current-thread: a second thread's `block_on` while this one drives.
    let rt = io_common::current(IoDriver::Auto);
    let addr = rt.block_on(start_echo());
    let handle = rt.handle().clone();
    let driving = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let held;
    {
        let driving = driving.clone();
        held = rt.block_on(async move {
            driving.store(true, std::sync::atomic::Ordering::SeqCst);
            let held = exhaust_descriptors();
            std::thread::spawn(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    handle.block_on(timers_without_a_driver(addr))
                }));
                let _ = tx.send(r.unwrap_or_else(|_| Err("panicked".into())));
            });
            // Drive the runtime until the other thread is done.
            let start = std::time::Instant::now();
            loop {
                numa_rt_runtime::time::sleep(Duration::from_millis(1)).await;
                if let Ok(r) = rx.try_recv() {
                    r.expect("current_thread");
                    break;
                }
                assert!(start.elapsed() < PATIENCE, "the other thread hung");
            }
            held
        });
    }
    assert!(driving.load(std::sync::atomic::Ordering::SeqCst));
    drop(held);
    println!("emfile-new-thread: ok");
}

/// The same thread's I/O on a descriptor it already has, when it has to
/// wait: the error names the driver that could not be created and why.
#[test]
fn a_new_thread_without_descriptors_says_why() {
    if case().as_deref() != Some("emfile-new-thread-io") {
        if case().is_none() {
            let out = seccomp::run_child(
                CASE,
                "a_new_thread_without_descriptors_says_why",
                "emfile-new-thread-io",
                &[("NUMA_RT_IO", "epoll")],
            );
            assert!(out.contains("emfile-new-thread-io: ok"), "{out}");
        }
        return;
    }
    let rt = multi(IoDriver::Auto);
    let addr = rt.block_on(start_echo());
    let handle = rt.handle().clone();
    let stream = std::net::TcpStream::connect(addr).unwrap();
    let held = exhaust_descriptors();
    let other = std::thread::spawn(move || {
        handle.block_on(async {
            let s = TcpStream::from_std(stream).unwrap();
            // Nothing was sent, so the read has to wait: that needs the
            // driver. (A write that fits the send buffer completes at once
            // and needs none.)
            let (r, _) = s.read_owned(Vec::with_capacity(16)).await;
            let e = r.expect_err("waited without a driver");
            let text = e.to_string();
            assert!(
                text.contains("I/O driver could not be created") && text.contains("open files"),
                "{text}"
            );
        })
    });
    let r = other.join();
    drop(held);
    assert!(r.is_ok(), "the thread panicked");
    println!("emfile-new-thread-io: ok");
}

// ---- the valgrind canary --------------------------------------------------

/// A runtime round trip; with `NUMA_RT_VALGRIND_CANARY=leak` or `=uaf` it
/// also leaks a block or reads a freed one, so `scripts/valgrind-runtime
/// --self-check` can show that memcheck fails the run. Never set in normal
/// runs.
#[test]
fn valgrind_canary() {
    let rt = io_common::current(IoDriver::Auto);
    let echoed = rt.block_on(async {
        let addr = start_echo().await;
        let c = TcpStream::connect(addr).await.unwrap();
        round_trip(&c, b"canary").await.is_ok()
    });
    assert!(echoed);
    match std::env::var("NUMA_RT_VALGRIND_CANARY").as_deref() {
        Ok("leak") => {
            rt.block_on(async {
                numa_rt_runtime::spawn(async {
                    // Deliberately lost: memcheck must report them as
                    // definitely lost (many, so a stale copy of a pointer
                    // on some stack cannot hide them all).
                    for i in 0..100u8 {
                        std::mem::forget(vec![i; 1000]);
                    }
                })
                .await
            })
            .unwrap();
        }
        Ok("uaf") => {
            let block = Box::new([0x5au8; 64]);
            let p: *const u8 = &block[10];
            drop(block);
            // SAFETY: none; a deliberate read of freed memory for memcheck
            // to flag (only with the variable set).
            let v = unsafe { std::ptr::read_volatile(p) };
            std::hint::black_box(v);
        }
        _ => {}
    }
}

// ---- epoll_pwait2 missing -------------------------------------------------

/// Kernels before 5.11 (and valgrind 3.19) lack `epoll_pwait2`: the epoll
/// driver falls back to `epoll_wait` and timers, wakes and I/O still work.
#[test]
fn epoll_without_pwait2() {
    if case().as_deref() != Some("no-pwait2") {
        if case().is_none() {
            let out = seccomp::run_child(CASE, "epoll_without_pwait2", "no-pwait2", &[]);
            assert!(out.contains("no-pwait2: ok"), "{out}");
        }
        return;
    }
    seccomp::install(&[Rule {
        nr: libc::SYS_epoll_pwait2,
        conds: vec![],
        action: Action::Errno(libc::ENOSYS),
    }]);
    for rt in [io_common::current(IoDriver::Epoll), multi(IoDriver::Epoll)] {
        rt.block_on(async {
            let start = std::time::Instant::now();
            numa_rt_runtime::time::sleep(Duration::from_millis(20)).await;
            assert!(start.elapsed() >= Duration::from_millis(20));
            let addr = start_echo().await;
            let c = TcpStream::connect(addr).await.unwrap();
            round_trip(&c, b"epoll_wait").await.unwrap();
            numa_rt_runtime::spawn(run_tasks(100)).await.unwrap();
        });
    }
    println!("no-pwait2: ok");
}

// ---- io_uring refused after the probe --------------------------------------

/// The probe ring (2 entries) is allowed, then the workers' rings (256
/// entries) are refused, all of them or all after the first (a
/// locked-memory or per-user ring limit reached between the probe and the
/// workers, or partway through them): with `Auto` the runtime is built on
/// epoll (every driver alike) and serves; an explicit `Uring` fails the
/// build with an error naming the driver and the errno. Nothing panics or
/// hangs.
#[test]
fn io_uring_refused_after_the_probe() {
    if case().as_deref() != Some("ring-setup") {
        if case().is_none() {
            // `Auto` as the builder leaves it (not forced by NUMA_RT_IO).
            let out = seccomp::run_child(
                CASE,
                "io_uring_refused_after_the_probe",
                "ring-setup",
                &[("NUMA_RT_IO", "")],
            );
            assert!(out.contains("ring-setup: ok"), "{out}");
            eprintln!("{out}");
        }
        return;
    }
    if Builder::new_current_thread()
        .enable_all()
        .io_driver(IoDriver::Uring)
        .build()
        .is_err()
    {
        println!("ring-setup: ok, skipped: io_uring unavailable");
        return;
    }
    // Ring setups of 256 entries (the workers') go to the supervisor.
    let listener = match seccomp::try_install(&[Rule {
        nr: libc::SYS_io_uring_setup,
        conds: vec![Cond::Eq(0, 256)],
        action: Action::Notify,
    }]) {
        Ok(fd) => fd.unwrap(),
        Err(e) => {
            println!("ring-setup: ok, skipped: no seccomp user notification here: {e}");
            return;
        }
    };
    let sup = Supervisor::start(listener);
    let cases = [
        // (errno, rings allowed before the refusals, worker threads; 0:
        // current-thread)
        (libc::ENOMEM, 0, 0),
        (libc::ENOMEM, 0, 2),
        (libc::ENOMEM, 1, 2),
        (libc::EPERM, 1, 2),
        (libc::EPERM, 0, 0),
    ];
    for (errno, allowed, workers) in cases {
        let builder = || {
            if workers == 0 {
                Builder::new_current_thread()
            } else {
                let mut b = Builder::new_multi_thread();
                b.worker_threads(workers).pin_workers(false);
                b
            }
        };
        let label = format!("errno {errno}, {allowed} ring(s) allowed, {workers} workers");

        // Explicit io_uring: the build fails and says why.
        sup.fail_after(errno, allowed, usize::MAX, 0, 1);
        let e = match builder().enable_all().io_driver(IoDriver::Uring).build() {
            Ok(_) => panic!("{label}: Uring built with its rings refused"),
            Err(e) => e,
        };
        assert!(
            e.to_string().contains("cannot create the I/O driver"),
            "{e}"
        );
        assert_eq!(e.kind(), io::Error::from_raw_os_error(errno).kind(), "{e}");
        println!("{label}: Uring: build refused: {e}");

        // Auto: epoll for the whole runtime.
        let failed_before = sup.failed();
        sup.fail_after(errno, allowed, usize::MAX, 0, 1);
        let rt = builder()
            .enable_all()
            .io_driver(IoDriver::Auto)
            .build()
            .unwrap_or_else(|e| panic!("{label}: Auto did not fall back to epoll: {e}"));
        assert!(sup.failed() > failed_before, "{label}: no ring was refused");
        // Later rings would be refused too: the runtime must not make any.
        let r = rt.block_on(async {
            let here = numa_rt_runtime::io::current_backend();
            let on_a_task =
                numa_rt_runtime::spawn(async { numa_rt_runtime::io::current_backend() })
                    .await
                    .unwrap();
            assert_eq!(here, Some(numa_rt_runtime::io::Backend::Epoll), "{label}");
            assert_eq!(on_a_task, here, "{label}");
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            numa_rt_runtime::spawn(echo_server(listener));
            let c = TcpStream::connect(addr).await?;
            round_trip(&c, b"ring refused").await?;
            numa_rt_runtime::spawn(run_tasks(50)).await.unwrap();
            numa_rt_runtime::time::sleep(Duration::from_millis(2)).await;
            io::Result::Ok(())
        });
        r.unwrap_or_else(|e| panic!("{label}: the epoll runtime failed: {e}"));
        println!("{label}: Auto: built on epoll, serving");
    }
    sup.fail_next(0, 0);
    // Rings allowed again: Auto uses io_uring.
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    let backend = rt.block_on(async { numa_rt_runtime::io::current_backend() });
    assert_eq!(backend, Some(numa_rt_runtime::io::Backend::Uring));
    println!("ring-setup: ok");
}
