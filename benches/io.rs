//! I/O benchmarks: numa_rt and tokio side by side.
//!
//! - `tcp_echo_1k`: 64 loopback connections, each doing 10 round trips of
//!   1 KiB per iteration against an echo server in the same runtime
//!   (numa_rt: owned-buffer ops; tokio: `AsyncReadExt`/`AsyncWriteExt`).
//!   `bare_uring` is the ceiling: no runtime at all, `WORKERS` threads each
//!   driving both ends of its share of the connections from its own
//!   io_uring (multishot receives, `send` calls), as numa_rt's worker does
//!   without tasks, wakers or queues.
//! - `timer_sleep_many`: 10,000 tasks each sleeping 1 ms, all at once.
//! - `timer_cancel_1k`: one task creates 1,000 sleeps of 30 s, polls each
//!   once (pending) and drops it: the path of hyper's header-read timeout,
//!   armed per request and dropped when the head arrives.
//! - `file_random_read_4k`: 64 tasks each doing 64 random 4 KiB reads of
//!   a 256 MiB file in the page cache (64 reads in flight). numa_rt:
//!   `File::read_at` (ring reads); tokio: a `tokio::fs::File` per task,
//!   `seek` + `read_exact`; tokio_read_at: `spawn_blocking` of a std
//!   `read_at` per read (the cheapest tokio can do).
//!
//! Both runtimes run `WORKERS` worker threads. `NUMA_RT_IO=epoll` measures
//! numa_rt's epoll driver instead of io_uring.
//!
//! ```text
//! cargo bench --bench io -- --warm-up-time 1 --measurement-time 3
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

#[path = "outside/common/buf_ring.rs"]
mod buf_ring;

const WORKERS: usize = 2;
const CONNECTIONS: usize = 64;
const ROUNDS: usize = 10;
const MSG: usize = 1024;
const SLEEPERS: usize = 10_000;
const CANCELLED: usize = 1_000;

fn numa_rt_rt() -> numa_rt::runtime::Runtime {
    numa_rt::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap()
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap()
}

mod numa_side {
    use super::*;
    use numa_rt::net::{TcpListener, TcpStream};

    pub async fn server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        numa_rt::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                numa_rt::spawn(async move {
                    s.set_nodelay(true).unwrap();
                    let mut buf = Vec::with_capacity(4096);
                    loop {
                        buf.clear();
                        let (r, b) = s.read_owned(buf).await;
                        buf = b;
                        if !matches!(r, Ok(n) if n > 0) {
                            return;
                        }
                        let (r, b) = s.write_all_owned(buf).await;
                        buf = b;
                        if r.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    pub async fn ping_pong(s: Arc<TcpStream>) {
        let mut out = vec![7u8; MSG];
        let mut back = Vec::with_capacity(MSG);
        for _ in 0..ROUNDS {
            let (r, b) = s.write_all_owned(out).await;
            r.unwrap();
            out = b;
            back.clear();
            while back.len() < MSG {
                let (r, b) = s.read_owned(back).await;
                assert!(r.unwrap() > 0);
                back = b;
            }
        }
    }
}

mod tokio_side {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::Mutex;

    pub async fn server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    s.set_nodelay(true).unwrap();
                    let mut buf = vec![0u8; 4096];
                    loop {
                        let n = match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    pub async fn ping_pong(s: Arc<Mutex<TcpStream>>) {
        let mut s = s.lock().await;
        let out = vec![7u8; MSG];
        let mut back = vec![0u8; MSG];
        for _ in 0..ROUNDS {
            s.write_all(&out).await.unwrap();
            s.read_exact(&mut back).await.unwrap();
        }
    }
}

mod bare_side {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::{AsRawFd, RawFd};
    use std::sync::mpsc::{channel, Receiver, Sender};
    use std::thread::JoinHandle;

    use io_uring::{cqueue, opcode, types, IoUring};

    use crate::buf_ring::{send_all, Buffers, GROUP};

    /// One thread: it owns a ring and its share of the connected pairs.
    struct Shard {
        /// One message per iteration to run; dropped to stop the thread.
        go: Option<Sender<()>>,
        /// `Ok` once set up and after each iteration; closed if the thread
        /// died, so a failure ends the run instead of hanging it.
        done: Receiver<Result<(), String>>,
        thread: Option<JoinHandle<()>>,
    }

    /// `WORKERS` threads, each owning a ring and `CONNECTIONS / WORKERS`
    /// connected pairs; an iteration runs every pair's round trips once.
    pub struct Shards(Vec<Shard>);

    impl Shards {
        /// Connects the pairs and starts the threads; `None` (with the
        /// reason printed) where they cannot set up their rings: the
        /// contender is skipped.
        pub fn start() -> Option<Shards> {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let shards = Shards(
                (0..WORKERS)
                    .map(|_| {
                        let pairs: Vec<_> = (0..CONNECTIONS / WORKERS)
                            .map(|_| {
                                let client = TcpStream::connect(addr).unwrap();
                                let (server, _) = listener.accept().unwrap();
                                client.set_nodelay(true).unwrap();
                                server.set_nodelay(true).unwrap();
                                (client, server)
                            })
                            .collect();
                        let (go, go_rx) = channel();
                        let (done_tx, done) = channel();
                        let thread = std::thread::spawn(move || shard(pairs, &go_rx, &done_tx));
                        Shard {
                            go: Some(go),
                            done,
                            thread: Some(thread),
                        }
                    })
                    .collect(),
            );
            for s in &shards.0 {
                match s.done.recv() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        eprintln!("tcp_echo_1k/bare_uring skipped: {e}");
                        return None;
                    }
                    Err(_) => {
                        eprintln!("tcp_echo_1k/bare_uring skipped: a thread died setting up");
                        return None;
                    }
                }
            }
            Some(shards)
        }

        /// Runs every pair's round trips once, on all threads at once.
        pub fn iteration(&self) {
            for s in &self.0 {
                if let Some(go) = &s.go {
                    // A dead thread shows at its `done` below.
                    let _ = go.send(());
                }
            }
            for s in &self.0 {
                match s.done.recv() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => panic!("bare_uring: {e}"),
                    Err(_) => panic!("bare_uring: a thread died"),
                }
            }
        }
    }

    impl Drop for Shards {
        fn drop(&mut self) {
            for s in &mut self.0 {
                s.go = None;
            }
            for s in &mut self.0 {
                if let Some(t) = s.thread.take() {
                    let _ = t.join();
                }
            }
        }
    }

    /// Token `2 * pair + side` (side 0: client end, 1: server end).
    fn recv(fd: RawFd, token: u64) -> io_uring::squeue::Entry {
        opcode::RecvMulti::new(types::Fd(fd), GROUP)
            .build()
            .user_data(token)
    }

    /// The ring, its buffers and every socket's multishot receive.
    fn set_up(fds: &[[RawFd; 2]]) -> std::io::Result<(IoUring, Buffers)> {
        let mut ring: IoUring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(1024)?;
        let bufs = Buffers::register(&ring)?;
        for (i, pair) in fds.iter().enumerate() {
            for (side, &fd) in pair.iter().enumerate() {
                // SAFETY: the receive writes only into registered buffers.
                unsafe { ring.submission().push(&recv(fd, (2 * i + side) as u64)) }
                    .map_err(std::io::Error::other)?;
            }
        }
        Ok((ring, bufs))
    }

    fn shard(
        pairs: Vec<(TcpStream, TcpStream)>,
        go: &Receiver<()>,
        done: &Sender<Result<(), String>>,
    ) {
        let fds: Vec<[RawFd; 2]> = pairs
            .iter()
            .map(|(c, s)| [c.as_raw_fd(), s.as_raw_fd()])
            .collect();
        let (mut ring, mut bufs) = match set_up(&fds) {
            Ok(set) => set,
            Err(e) => {
                let _ = done.send(Err(format!("no io_uring with DEFER_TASKRUN here ({e})")));
                return;
            }
        };
        let _ = done.send(Ok(()));
        let out = [7u8; MSG];
        let n = fds.len();
        let (mut rounds, mut got) = (vec![0; n], vec![0; n]);
        let mut cqes = Vec::new();
        while go.recv().is_ok() {
            for (i, pair) in fds.iter().enumerate() {
                (rounds[i], got[i]) = (0, 0);
                send_all(pair[0], &out).unwrap();
            }
            let mut finished = 0;
            while finished < n {
                ring.submit_and_wait(1).unwrap();
                cqes.clear();
                cqes.extend(
                    ring.completion()
                        .map(|c| (c.user_data(), c.result(), c.flags())),
                );
                for &(token, res, flags) in &cqes {
                    let (i, side) = (token as usize / 2, token as usize % 2);
                    assert!(res > 0, "receive failed: {res}");
                    let bid = cqueue::buffer_select(flags).unwrap();
                    let len = res as usize;
                    if side == 1 {
                        send_all(fds[i][1], bufs.data(bid, len)).unwrap();
                    } else {
                        got[i] += len;
                        if got[i] == MSG {
                            got[i] = 0;
                            rounds[i] += 1;
                            if rounds[i] == ROUNDS {
                                finished += 1;
                            } else {
                                send_all(fds[i][0], &out).unwrap();
                            }
                        }
                    }
                    bufs.put(bid);
                    if !cqueue::more(flags) {
                        let e = recv(fds[i][side], token);
                        // SAFETY: as in `set_up`.
                        unsafe { ring.submission().push(&e) }.unwrap();
                    }
                }
            }
            if done.send(Ok(())).is_err() {
                break;
            }
        }
        // The ring goes before the sockets; the buffers are never freed.
        drop(ring);
        drop(pairs);
    }
}

fn tcp_echo_1k(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp_echo_1k");
    g.throughput(criterion::Throughput::Elements(
        (CONNECTIONS * ROUNDS) as u64,
    ));

    let rt = numa_rt_rt();
    let conns: Vec<Arc<numa_rt::net::TcpStream>> = rt.block_on(async {
        let addr = numa_side::server().await;
        let mut v = Vec::new();
        for _ in 0..CONNECTIONS {
            let s = numa_rt::net::TcpStream::connect(addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            v.push(Arc::new(s));
        }
        v
    });
    g.bench_function("numa_rt", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = conns
                    .iter()
                    .map(|s| numa_rt::spawn(numa_side::ping_pong(s.clone())))
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    drop(conns);
    drop(rt);

    let rt = tokio_rt();
    let conns = rt.block_on(async {
        let addr = tokio_side::server().await;
        let mut v = Vec::new();
        for _ in 0..CONNECTIONS {
            let s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            v.push(Arc::new(tokio::sync::Mutex::new(s)));
        }
        v
    });
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = conns
                    .iter()
                    .map(|s| tokio::spawn(tokio_side::ping_pong(s.clone())))
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    drop(conns);
    drop(rt);

    if let Some(shards) = bare_side::Shards::start() {
        g.bench_function("bare_uring", |b| b.iter(|| shards.iteration()));
    }
    g.finish();
}

fn timer_sleep_many(c: &mut Criterion) {
    let mut g = c.benchmark_group("timer_sleep_many");
    let rt = numa_rt_rt();
    g.bench_function("numa_rt", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..SLEEPERS)
                    .map(|_| numa_rt::spawn(numa_rt::time::sleep(Duration::from_millis(1))))
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    drop(rt);
    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..SLEEPERS)
                    .map(|_| tokio::spawn(tokio::time::sleep(Duration::from_millis(1))))
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    g.finish();
}

/// Polls `sleep` once with the task's context; it must be pending.
async fn poll_once_pending<F: std::future::Future + Unpin>(sleep: &mut F) {
    std::future::poll_fn(|cx| {
        assert!(std::pin::Pin::new(&mut *sleep).poll(cx).is_pending());
        std::task::Poll::Ready(())
    })
    .await
}

fn timer_cancel_1k(c: &mut Criterion) {
    let mut g = c.benchmark_group("timer_cancel_1k");
    let far = Duration::from_secs(30);
    let rt = numa_rt_rt();
    g.bench_function("numa_rt", |b| {
        b.iter(|| {
            rt.block_on(async {
                numa_rt::spawn(async move {
                    for _ in 0..CANCELLED {
                        let mut sleep = std::pin::pin!(numa_rt::time::sleep(far));
                        poll_once_pending(&mut sleep).await;
                    }
                })
                .await
                .unwrap();
            })
        })
    });
    drop(rt);
    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                tokio::spawn(async move {
                    for _ in 0..CANCELLED {
                        let mut sleep = std::pin::pin!(tokio::time::sleep(far));
                        poll_once_pending(&mut sleep).await;
                    }
                })
                .await
                .unwrap();
            })
        })
    });
    g.finish();
}

mod file_side {
    use std::io::Write;
    use std::path::PathBuf;

    pub const FILE_SIZE: u64 = 256 << 20;
    pub const BLOCK: usize = 4096;
    pub const IN_FLIGHT: usize = 64;
    pub const READS_PER_TASK: usize = 64;

    /// Removes the benchmark's file when dropped.
    pub struct Scratch(pub PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// A 256 MiB file of non-zero bytes, written once and kept in the page
    /// cache by the reads of the warm-up.
    pub fn file() -> (Scratch, PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "numa-rt-bench-random-read-4k-{}",
            std::process::id()
        ));
        let scratch = Scratch(path.clone());
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 253 + 1) as u8).collect();
        for _ in 0..FILE_SIZE >> 20 {
            f.write_all(&chunk).unwrap();
        }
        f.sync_all().unwrap();
        (scratch, path)
    }

    /// The `i`-th random block offset of task `task` (xorshift).
    pub fn offset(task: usize, i: usize) -> u64 {
        let mut x = (task as u64 + 1) * 0x9E37_79B9_7F4A_7C15 + i as u64;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % (FILE_SIZE / BLOCK as u64)) * BLOCK as u64
    }
}

fn file_random_read_4k(c: &mut Criterion) {
    use file_side::*;
    let mut g = c.benchmark_group("file_random_read_4k");
    g.throughput(criterion::Throughput::Elements(
        (IN_FLIGHT * READS_PER_TASK) as u64,
    ));
    let (_dir, path) = file();

    let rt = numa_rt_rt();
    let file = Arc::new(rt.block_on(numa_rt::fs::File::open(&path)).unwrap());
    g.bench_function("numa_rt", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..IN_FLIGHT)
                    .map(|t| {
                        let file = file.clone();
                        numa_rt::spawn(async move {
                            let mut buf = Vec::with_capacity(BLOCK);
                            for i in 0..READS_PER_TASK {
                                buf.clear();
                                let (r, b) = file.read_at(buf, offset(t, i)).await;
                                assert_eq!(r.unwrap(), BLOCK);
                                buf = b;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    drop(file);
    drop(rt);

    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..IN_FLIGHT)
                    .map(|t| {
                        let path = path.clone();
                        tokio::spawn(async move {
                            use tokio::io::{AsyncReadExt, AsyncSeekExt};
                            let mut file = tokio::fs::File::open(&path).await.unwrap();
                            let mut buf = vec![0u8; BLOCK];
                            for i in 0..READS_PER_TASK {
                                file.seek(std::io::SeekFrom::Start(offset(t, i)))
                                    .await
                                    .unwrap();
                                file.read_exact(&mut buf).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    let std_file = Arc::new(std::fs::File::open(&path).unwrap());
    g.bench_function("tokio_read_at", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..IN_FLIGHT)
                    .map(|t| {
                        let file = std_file.clone();
                        tokio::spawn(async move {
                            use std::os::unix::fs::FileExt;
                            let mut buf = vec![0u8; BLOCK];
                            for i in 0..READS_PER_TASK {
                                let f = file.clone();
                                buf = tokio::task::spawn_blocking(move || {
                                    f.read_exact_at(&mut buf, offset(t, i)).unwrap();
                                    buf
                                })
                                .await
                                .unwrap();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    tcp_echo_1k,
    timer_sleep_many,
    timer_cancel_1k,
    file_random_read_4k
);
criterion_main!(benches);
