//! The tokio bridge: a "library" written against tokio's runtime
//! (`tokio::spawn`, `tokio::time`, `tokio::net`) runs unchanged inside numa_rt
//! tasks, and what the bridge costs next to numa_rt's own timers.

use std::time::{Duration, Instant};

use numa_rt::compat::TokioBridge;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Stands for a third-party crate that assumes tokio.
mod tokio_library {
    use super::*;

    /// Echo server on tokio's listener, its connections on `tokio::spawn`.
    pub async fn start_echo() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    loop {
                        let n = s.read(&mut buf).await.unwrap_or(0);
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    /// A retry loop with tokio's timer.
    pub async fn with_backoff(attempts: u32) -> u32 {
        let mut done = 0;
        for i in 0..attempts {
            tokio::time::sleep(Duration::from_millis(1 << i.min(3))).await;
            done += 1;
        }
        done
    }
}

fn runtime(bridge: &TokioBridge) -> numa_rt::Runtime {
    let mut builder = numa_rt::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    bridge.install(&mut builder);
    builder.build().unwrap()
}

#[test]
fn a_tokio_library_runs_inside_numa_rt_tasks() {
    let bridge = TokioBridge::new().unwrap();
    let rt = runtime(&bridge);
    let _tokio = bridge.enter();
    rt.block_on(async {
        let task = numa_rt::spawn(async {
            let addr = tokio_library::start_echo().await;
            // A numa_rt socket talks to the tokio-served one.
            let mut s = numa_rt::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"through the bridge").await.unwrap();
            let mut back = [0u8; 18];
            s.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"through the bridge");
            tokio_library::with_backoff(4).await
        });
        assert_eq!(task.await.unwrap(), 4);
    });
}

/// The bridge's cost: a short sleep on tokio's timer (woken from the bridge
/// thread) next to the same sleep on numa_rt's, from a numa_rt task. Prints
/// the medians; asserts only that both are sane (no lost wake-up, no
/// multi-millisecond stall).
#[test]
fn bridge_cost_of_a_timer_wake_up() {
    let bridge = TokioBridge::new().unwrap();
    let rt = runtime(&bridge);
    let (tokio_med, numa_med) = rt.block_on(async {
        numa_rt::spawn(async {
            let mut t = Vec::new();
            let mut n = Vec::new();
            for _ in 0..200 {
                let s = Instant::now();
                tokio::time::sleep(Duration::from_micros(100)).await;
                t.push(s.elapsed());
                let s = Instant::now();
                numa_rt::time::sleep(Duration::from_micros(100)).await;
                n.push(s.elapsed());
            }
            t.sort();
            n.sort();
            (t[t.len() / 2], n[n.len() / 2])
        })
        .await
        .unwrap()
    });
    println!("sleep(100us) median: tokio via bridge {tokio_med:?}, numa_rt {numa_med:?}");
    assert!(tokio_med >= Duration::from_micros(100));
    assert!(tokio_med < Duration::from_millis(20), "{tokio_med:?}");
}
