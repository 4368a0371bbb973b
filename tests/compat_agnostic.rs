//! Runtime-agnostic crates that work on numa_rt unchanged: tokio's sync
//! primitives, futures' `select!`/`join!`, tokio-util's codecs and
//! `CancellationToken`, and tokio's task-local values. Each runs across
//! numa_rt tasks on several workers.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use numa_rt::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LinesCodec};
use tokio_util::sync::CancellationToken;

fn rt() -> numa_rt::Runtime {
    numa_rt::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn tokio_sync_channels_and_locks() {
    rt().block_on(async {
        // mpsc: many producers on other tasks, one consumer.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(8);
        for p in 0..4u32 {
            let tx = tx.clone();
            drop(numa_rt::spawn(async move {
                for i in 0..100 {
                    tx.send(p * 1000 + i).await.unwrap();
                }
            }));
        }
        drop(tx);
        let mut n = 0;
        let mut sum = 0u64;
        while let Some(v) = rx.recv().await {
            n += 1;
            sum += u64::from(v);
        }
        assert_eq!(n, 400);
        assert_eq!(sum, (0..4u64).map(|p| p * 100_000 + 4950).sum::<u64>());

        // oneshot, watch, Notify, Semaphore and Mutex across tasks.
        let (otx, orx) = tokio::sync::oneshot::channel();
        drop(numa_rt::spawn(async move { otx.send(42).unwrap() }));
        assert_eq!(orx.await.unwrap(), 42);

        let (wtx, mut wrx) = tokio::sync::watch::channel(0);
        let watcher =
            numa_rt::spawn(async move { wrx.wait_for(|v| *v == 3).await.map(|v| *v).unwrap() });
        for v in 1..=3 {
            numa_rt::time::sleep(Duration::from_millis(1)).await;
            wtx.send(v).unwrap();
        }
        assert_eq!(watcher.await.unwrap(), 3);

        let notify = Arc::new(tokio::sync::Notify::new());
        let n2 = notify.clone();
        let waiter = numa_rt::spawn(async move { n2.notified().await });
        numa_rt::time::sleep(Duration::from_millis(5)).await;
        notify.notify_one();
        numa_rt::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();

        let sem = Arc::new(tokio::sync::Semaphore::new(2));
        let counter = Arc::new(tokio::sync::Mutex::new((0u32, 0u32))); // (now, max)
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (sem, counter) = (sem.clone(), counter.clone());
            tasks.push(numa_rt::spawn(async move {
                let _permit = sem.acquire().await.unwrap();
                {
                    let mut c = counter.lock().await;
                    c.0 += 1;
                    c.1 = c.1.max(c.0);
                }
                numa_rt::time::sleep(Duration::from_millis(2)).await;
                counter.lock().await.0 -= 1;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let c = counter.lock().await;
        assert_eq!(c.0, 0);
        assert!(c.1 >= 1 && c.1 <= 2, "max concurrency {}", c.1);
    });
}

#[test]
fn futures_select_and_join() {
    rt().block_on(async {
        let slow = numa_rt::time::sleep(Duration::from_secs(30));
        let fast = async {
            numa_rt::time::sleep(Duration::from_millis(5)).await;
            7
        };
        futures::pin_mut!(slow, fast);
        let got = futures::select! {
            () = futures::FutureExt::fuse(slow) => 0,
            v = futures::FutureExt::fuse(fast) => v,
        };
        assert_eq!(got, 7);

        let a = numa_rt::spawn(async { 1 });
        let b = async {
            numa_rt::time::sleep(Duration::from_millis(2)).await;
            2
        };
        let (a, b) = futures::join!(a, b);
        assert_eq!((a.unwrap(), b), (1, 2));
    });
}

#[test]
fn tokio_util_codec_over_numa_rt_tcp() {
    rt().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // An upper-casing line server.
        drop(numa_rt::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut lines = Framed::new(stream, LinesCodec::new());
            while let Some(Ok(line)) = lines.next().await {
                lines.send(line.to_uppercase()).await.unwrap();
            }
        }));
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut lines = Framed::new(stream, LinesCodec::new());
        for word in ["numa", "node", "local"] {
            lines.send(word).await.unwrap();
            assert_eq!(lines.next().await.unwrap().unwrap(), word.to_uppercase());
        }
    });
}

#[test]
fn cancellation_token_stops_tasks() {
    rt().block_on(async {
        let token = CancellationToken::new();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let child = token.child_token();
            tasks.push(numa_rt::spawn(async move {
                let mut ticks = 0u32;
                loop {
                    tokio::select! {
                        () = child.cancelled() => return ticks,
                        () = numa_rt::time::sleep(Duration::from_millis(1)) => ticks += 1,
                    }
                }
            }));
        }
        numa_rt::time::sleep(Duration::from_millis(20)).await;
        token.cancel();
        for t in tasks {
            let ticks = numa_rt::time::timeout(Duration::from_secs(5), t)
                .await
                .expect("a cancelled task did not stop")
                .unwrap();
            assert!(ticks > 0);
        }
    });
}

tokio::task_local! {
    static REQUEST_ID: u64;
}

#[test]
fn task_local_values_follow_their_future() {
    rt().block_on(async {
        let mut tasks = Vec::new();
        for id in 0..8u64 {
            tasks.push(numa_rt::spawn(REQUEST_ID.scope(id, async move {
                for _ in 0..10 {
                    // Across yields and possible moves between workers.
                    numa_rt::task::yield_now().await;
                    assert_eq!(REQUEST_ID.get(), id);
                }
                REQUEST_ID.get()
            })));
        }
        for (id, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), id as u64);
        }
        assert!(REQUEST_ID.try_with(|_| ()).is_err());
    });
}
