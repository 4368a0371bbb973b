//! I/O benchmarks: numa_rt and tokio side by side.
//!
//! - `tcp_echo_1k`: 64 loopback connections, each doing 10 round trips of
//!   1 KiB per iteration against an echo server in the same runtime
//!   (numa_rt: owned-buffer ops; tokio: `AsyncReadExt`/`AsyncWriteExt`).
//! - `timer_sleep_many`: 10,000 tasks each sleeping 1 ms, all at once.
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

const WORKERS: usize = 2;
const CONNECTIONS: usize = 64;
const ROUNDS: usize = 10;
const MSG: usize = 1024;
const SLEEPERS: usize = 10_000;

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

fn tcp_echo_1k(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp_echo_1k");
    g.throughput(criterion::Throughput::Elements((CONNECTIONS * ROUNDS) as u64));

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

criterion_group!(benches, tcp_echo_1k, timer_sleep_many);
criterion_main!(benches);
