//! Reads that receive ahead of the reader (io_uring: one multishot receive
//! per stream into the driver's buffer ring, behind both `read_owned` and
//! `AsyncRead`): no byte is lost or reordered when a read is dropped, when
//! the reader falls far behind, or when the stream mixes both kinds of
//! read, splits or goes back to std. Run on both drivers (epoll has no read-ahead: the same promises
//! hold trivially there).

mod io_common;

use std::future::Future;
use std::time::Duration;

use io_common::on_all;
use numa_rt_runtime::net::{TcpListener, TcpStream};
use numa_rt_runtime::time::{sleep, timeout};
use tokio::io::AsyncReadExt;

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connect = numa_rt_runtime::spawn(async move { TcpStream::connect(addr).await.unwrap() });
    let (server, _) = listener.accept().await.unwrap();
    (server, connect.await.unwrap())
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// Owned reads with `chunk`-byte buffers until `n` bytes arrived.
async fn read_n(s: &TcpStream, n: usize, chunk: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let (r, b) = s.read_owned(Vec::with_capacity(chunk)).await;
        assert!(r.unwrap() > 0, "early end of stream");
        got.extend_from_slice(&b);
    }
    got
}

#[test]
fn a_dropped_read_loses_no_data() {
    on_all(|| async {
        let (server, client) = pair().await;
        for round in 0..20u8 {
            // A read that times out (its future dropped while waiting) ...
            let pending = timeout(
                Duration::from_millis(5),
                server.read_owned(Vec::with_capacity(64)),
            )
            .await;
            assert!(pending.is_err(), "nothing was sent yet");
            // ... must leave what arrives next to the next read.
            let (r, _) = client.write_all_owned(vec![round; 3]).await;
            r.unwrap();
            assert_eq!(read_n(&server, 3, 64).await, vec![round; 3]);
        }
    });
}

#[test]
fn a_read_dropped_after_its_first_poll_loses_no_data() {
    // The data is already in the socket when a read is polled once and
    // dropped: a one-shot receive would take it in the same enter as its
    // cancellation and the bytes would go with the dropped buffer.
    on_all(|| async {
        let (server, client) = pair().await;
        for round in 0..20u8 {
            let (r, _) = client.write_all_owned(vec![round; 5]).await;
            r.unwrap();
            sleep(Duration::from_millis(2)).await;
            let first = {
                let mut read = Box::pin(server.read_owned(Vec::with_capacity(64)));
                let waker = io_common::noop_waker();
                let mut cx = std::task::Context::from_waker(&waker);
                match read.as_mut().poll(&mut cx) {
                    // Read at once (epoll): the bytes are here.
                    std::task::Poll::Ready((r, b)) => {
                        assert_eq!(r.unwrap(), b.len());
                        Some(b)
                    }
                    std::task::Poll::Pending => None,
                }
            };
            let got = match first {
                Some(b) => b,
                None => timeout(Duration::from_secs(5), read_n(&server, 5, 64))
                    .await
                    .expect("the bytes were lost with the dropped read"),
            };
            assert_eq!(got, vec![round; 5], "round {round}");
        }
    });
}

#[test]
fn a_reader_far_behind_gets_every_byte_in_order() {
    // 2 MiB unread is far past the read-ahead bound: the receive pauses and
    // resumes as the reads catch up.
    on_all(|| async {
        let (server, client) = pair().await;
        let _ = read_n(&server, 0, 1).await;
        let (r, _) = client.write_all_owned(vec![7]).await;
        r.unwrap();
        assert_eq!(read_n(&server, 1, 1).await, vec![7]);
        let data = pattern(2 << 20);
        let expect = data.clone();
        let writer = numa_rt_runtime::spawn(async move {
            let (r, _) = client.write_all_owned(data).await;
            r.unwrap();
            client
        });
        sleep(Duration::from_millis(200)).await;
        let got = read_n(&server, expect.len(), 3000).await;
        assert!(got == expect, "bytes lost or reordered");
        drop(writer.await.unwrap());
        let (r, _) = server.read_owned(Vec::with_capacity(8)).await;
        assert_eq!(r.unwrap(), 0);
    });
}

#[test]
fn async_read_after_owned_reads_continues_in_order() {
    on_all(|| async {
        let (mut server, client) = pair().await;
        let data = pattern(10_000);
        let (r, _) = client.write_all_owned(data.clone()).await;
        r.unwrap();
        let mut got = read_n(&server, 100, 100).await;
        sleep(Duration::from_millis(20)).await;
        let mut rest = vec![0; data.len() - got.len()];
        server.read_exact(&mut rest).await.unwrap();
        got.extend_from_slice(&rest);
        assert!(got == data, "bytes lost or reordered");
    });
}

#[test]
fn async_reads_and_owned_reads_interleave_in_order() {
    // On io_uring `AsyncRead` takes from the same multishot receive as
    // `read_owned` (armed by whichever reads first).
    on_all(|| async {
        let (mut server, client) = pair().await;
        let data = pattern(20_000);
        let writer = {
            let data = data.clone();
            numa_rt_runtime::spawn(async move {
                for chunk in data.chunks(1500) {
                    let (r, _) = client.write_all_owned(chunk.to_vec()).await;
                    r.unwrap();
                    sleep(Duration::from_micros(200)).await;
                }
                client
            })
        };
        let mut got = Vec::new();
        let mut turn = 0;
        while got.len() < data.len() {
            turn += 1;
            if turn % 2 == 0 {
                let mut buf = [0u8; 333];
                let n = server.read(&mut buf).await.unwrap();
                assert!(n > 0, "early end of stream");
                got.extend_from_slice(&buf[..n]);
            } else {
                let (r, b) = server.read_owned(Vec::with_capacity(777)).await;
                assert!(r.unwrap() > 0, "early end of stream");
                got.extend_from_slice(&b);
            }
        }
        assert!(got == data, "bytes lost or reordered");
        drop(writer.await.unwrap());
        let mut end = [0u8; 8];
        assert_eq!(server.read(&mut end).await.unwrap(), 0);
    });
}

#[test]
fn a_dropped_async_read_loses_no_data() {
    on_all(|| async {
        let (mut server, client) = pair().await;
        for round in 0..20u8 {
            let mut buf = [0u8; 64];
            let pending = timeout(Duration::from_millis(5), server.read(&mut buf)).await;
            assert!(pending.is_err(), "nothing was sent yet");
            let (r, _) = client.write_all_owned(vec![round; 3]).await;
            r.unwrap();
            let mut got = [0u8; 3];
            server.read_exact(&mut got).await.unwrap();
            assert_eq!(got, [round; 3]);
        }
    });
}

#[test]
fn split_read_half_keeps_what_arrived() {
    on_all(|| async {
        let (server, client) = pair().await;
        let (r, _) = client.write_all_owned(pattern(5000)).await;
        r.unwrap();
        let mut got = read_n(&server, 10, 10).await;
        sleep(Duration::from_millis(20)).await;
        let (read, _write) = server.into_split();
        while got.len() < 5000 {
            let (r, b) = read.read_owned(Vec::with_capacity(700)).await;
            assert!(r.unwrap() > 0);
            got.extend_from_slice(&b);
        }
        assert!(got == pattern(5000), "bytes lost or reordered");
    });
}

#[test]
fn end_of_stream_repeats_and_into_std_works_after_it() {
    on_all(|| async {
        let (server, client) = pair().await;
        let (r, _) = client.write_all_owned(b"bye".to_vec()).await;
        r.unwrap();
        drop(client);
        assert_eq!(read_n(&server, 3, 16).await, b"bye");
        for _ in 0..3 {
            let (r, _) = server.read_owned(Vec::with_capacity(16)).await;
            assert_eq!(r.unwrap(), 0);
        }
        // Nothing unread and no receive in flight: the socket can leave.
        server.into_std().unwrap();
    });
}

#[test]
fn into_std_after_reads_hands_over_what_comes_next() {
    // Everything received was read: into_std ends the receive that reads
    // ahead (from whichever worker it runs on) and the std stream gets the
    // bytes sent afterwards, in order.
    on_all(|| async {
        for round in 0..10u8 {
            let (server, client) = pair().await;
            let (r, _) = client.write_all_owned(vec![round; 100]).await;
            r.unwrap();
            assert_eq!(read_n(&server, 100, 64).await, vec![round; 100]);
            // Possibly on another worker than the reads.
            let std = numa_rt_runtime::spawn(async move { server.into_std() })
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            let (r, _) = client.write_all_owned(pattern(5000)).await;
            r.unwrap();
            std.set_nonblocking(false).unwrap();
            let mut rest = vec![0u8; 5000];
            std::io::Read::read_exact(&mut &std, &mut rest).unwrap();
            assert!(
                rest == pattern(5000),
                "round {round}: bytes lost or reordered"
            );
        }
    });
}

#[test]
fn into_std_never_drops_unread_bytes() {
    // Either the socket still holds the rest (no read-ahead: epoll, or a
    // `block_on` thread's own driver) or into_std refuses.
    on_all(|| async {
        let (server, client) = pair().await;
        let (r, _) = client.write_all_owned(pattern(100)).await;
        r.unwrap();
        let got = read_n(&server, 10, 10).await;
        assert_eq!(got, pattern(10));
        sleep(Duration::from_millis(20)).await;
        match server.into_std() {
            Ok(std) => {
                let mut rest = [0u8; 90];
                std.set_nonblocking(false).unwrap();
                std::io::Read::read_exact(&mut &std, &mut rest).unwrap();
                assert_eq!(&rest[..], &pattern(100)[10..]);
            }
            Err(e) => {
                let uring = numa_rt_runtime::io::current_backend()
                    == Some(numa_rt_runtime::io::Backend::Uring);
                assert!(uring, "epoll has nothing to refuse: {e}");
                assert!(e.to_string().contains("into_std"), "{e}");
            }
        }
    });
}

#[test]
fn a_peer_reset_is_an_error_after_the_data() {
    on_all(|| async {
        let (server, client) = pair().await;
        let (r, _) = client.write_all_owned(b"last".to_vec()).await;
        r.unwrap();
        sleep(Duration::from_millis(20)).await;
        let std = client.into_std().unwrap();
        socket2::SockRef::from(&std)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(std);
        sleep(Duration::from_millis(20)).await;
        let mut outcome = Vec::new();
        for _ in 0..3 {
            let (r, b) = server.read_owned(Vec::with_capacity(16)).await;
            match r {
                Ok(0) => break,
                Ok(_) => outcome.extend_from_slice(&b),
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
                    break;
                }
            }
        }
        // A reset discards unread data on the receiving side too, so the
        // bytes may or may not be there; what is there comes first.
        assert!(outcome.is_empty() || outcome == b"last", "{outcome:?}");
    });
}

#[test]
fn a_stream_closed_elsewhere_as_its_peer_resets_cancels_no_other_operation() {
    // io_uring only (epoll has no receive in the kernel to cancel). The
    // stream's multishot receive is armed; another thread drops the stream
    // (which asks the owning driver to cancel the receive) while the peer
    // resets the connection (which ends the receive with a completion of
    // its own). However the two race, the cancel must never reach the
    // operation that takes the receive's slot next: here a ring read of an
    // empty FIFO (it waits in the kernel, and a cancel would end it with
    // ECANCELED), started as soon as the stream is gone.
    use numa_rt_runtime::fs::OpenOptions;
    use numa_rt_runtime::io::IoDriver;
    use std::sync::{Arc, Barrier};
    use std::task::Poll;

    const ROUNDS: usize = 100;
    for driver in io_common::drivers() {
        if driver != IoDriver::Uring {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        io_common::current(driver).block_on(async {
            // Read and write: opening a FIFO so does not wait for a peer.
            let mut victim = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&fifo)
                .await
                .unwrap();
            let mut feed = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            let mut in_ring = 0;
            for round in 0..ROUNDS {
                let (server, client) = pair().await;
                let (r, _) = client.write_all_owned(vec![9]).await;
                r.unwrap();
                assert_eq!(read_n(&server, 1, 16).await, vec![9]);
                socket2::SockRef::from(&client)
                    .set_linger(Some(Duration::ZERO))
                    .unwrap();
                let go = Arc::new(Barrier::new(2));
                let closer = std::thread::spawn({
                    let go = go.clone();
                    move || {
                        go.wait();
                        drop(server);
                    }
                });
                go.wait();
                drop(client);
                // Sleeps, not yields: the driver must turn meanwhile.
                while !closer.is_finished() {
                    sleep(Duration::from_micros(100)).await;
                }
                closer.join().unwrap();

                // The next ring operation, submitted in its first poll (so
                // it may take the freed slot before the driver turns
                // again).
                let mut read = Box::pin(victim.read_owned(Vec::with_capacity(16)));
                let first = io_common::poll_once(read.as_mut());
                assert!(matches!(first, Poll::Pending), "the FIFO was empty");
                in_ring += 1;
                for _ in 0..4 {
                    sleep(Duration::from_micros(100)).await;
                }
                std::io::Write::write_all(&mut feed, &[round as u8]).unwrap();
                let (r, b) = read.as_mut().await;
                let n = r.unwrap_or_else(|e| panic!("round {round}: the FIFO read failed: {e}"));
                assert_eq!((n, &b[..]), (1, &[round as u8][..]));
            }
            assert_eq!(in_ring, ROUNDS);
        });
    }
}

#[test]
fn streams_used_in_block_on_keep_working_in_tasks_after() {
    // The first read and the first wait of these streams happen on the
    // `block_on` thread of a multi-thread runtime, whose own driver nobody
    // turns once that `block_on` returns. Tasks on the workers must still
    // get every byte afterwards, whether the data is there at once or
    // arrives while they wait.
    use std::sync::Arc;
    for driver in io_common::drivers() {
        let rt = io_common::multi(driver, 2);
        let (server, client) = rt.block_on(async {
            let (server, client) = pair().await;
            // A read that has to wait (registers, or arms a receive) ...
            let writer = {
                let client = Arc::new(client);
                let c = client.clone();
                let w = numa_rt_runtime::spawn(async move {
                    sleep(Duration::from_millis(20)).await;
                    let (r, _) = c.write_all_owned(b"hello".to_vec()).await;
                    r.unwrap();
                });
                assert_eq!(read_n(&server, 5, 16).await, b"hello");
                w.await.unwrap();
                client
            };
            (Arc::new(server), writer)
        });
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(async move {
            for round in 0..5u8 {
                // ... then, in tasks, reads that wait again.
                let c = client.clone();
                let w = numa_rt_runtime::spawn(async move {
                    sleep(Duration::from_millis(10)).await;
                    let (r, _) = c.write_all_owned(vec![round; 10]).await;
                    r.unwrap();
                });
                let got = timeout(Duration::from_secs(5), read_n(&server, 10, 16)).await;
                w.await.unwrap();
                if tx.send(got.map_err(|_| round)).is_err() {
                    return;
                }
            }
        });
        for round in 0..5u8 {
            let got = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("the task never reported");
            assert_eq!(
                got.unwrap_or_else(|r| panic!("{driver:?}: round {r}: the read hung")),
                vec![round; 10]
            );
        }
    }
}

#[test]
fn a_read_abandoned_in_block_on_does_not_strand_the_stream() {
    // An `AsyncRead` wait started on the `block_on` thread and dropped (a
    // timeout) stays with the stream; a task reading it afterwards must not
    // wait on that thread's driver, which nobody turns any more.
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;
    for driver in io_common::drivers() {
        let rt = io_common::multi(driver, 2);
        let (mut server, client) = rt.block_on(async {
            let (mut server, client) = pair().await;
            let mut b = [0u8; 8];
            assert!(timeout(Duration::from_millis(10), server.read(&mut b))
                .await
                .is_err());
            (server, Arc::new(client))
        });
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(async move {
            let c = client.clone();
            let w = numa_rt_runtime::spawn(async move {
                sleep(Duration::from_millis(20)).await;
                let (r, _) = c.write_all_owned(b"late".to_vec()).await;
                r.unwrap();
            });
            let mut b = [0u8; 4];
            let got = timeout(Duration::from_secs(5), server.read_exact(&mut b)).await;
            w.await.unwrap();
            let _ = tx.send(got.map(|r| r.map(|_| b)));
        });
        let got = rx.recv_timeout(Duration::from_secs(10)).expect("no report");
        let got = got.unwrap_or_else(|_| panic!("{driver:?}: the read hung"));
        assert_eq!(&got.unwrap(), b"late");
    }
}

#[test]
fn a_second_runtime_on_the_same_thread_gets_its_own_driver() {
    // A thread that ran one runtime's `block_on` runs another's: a timer
    // armed before any I/O must fire, and I/O must use the second
    // runtime's driver.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let drivers = io_common::drivers();
        for (first, second) in drivers
            .iter()
            .flat_map(|a| drivers.iter().map(move |b| (*a, *b)))
        {
            let rt1 = io_common::multi(first, 1);
            rt1.block_on(async {
                let (server, client) = pair().await;
                let (r, _) = client.write_all_owned(vec![1]).await;
                r.unwrap();
                assert_eq!(read_n(&server, 1, 8).await, vec![1]);
            });
            let rt2 = io_common::multi(second, 1);
            let backend = rt2.block_on(async {
                // Armed before any I/O, awaited after it.
                let mut tick = Box::pin(sleep(Duration::from_millis(30)));
                let first = io_common::poll_once(tick.as_mut());
                assert!(first.is_pending());
                let (server, client) = pair().await;
                let (r, _) = client.write_all_owned(vec![2]).await;
                r.unwrap();
                assert_eq!(read_n(&server, 1, 8).await, vec![2]);
                tick.await;
                numa_rt_runtime::io::current_backend()
            });
            assert_eq!(backend, Some(io_common::backend_of(second)));
            drop((rt1, rt2));
        }
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("a block_on of the second runtime hung");
}

#[test]
fn io_after_block_on_returns_outside_a_runtime_is_an_error_not_a_hang() {
    // The thread's `block_on` driver is turned only inside `block_on`: a
    // read polled outside any runtime afterwards must say so rather than
    // wait on it forever.
    use std::task::Poll;
    for driver in io_common::drivers() {
        let rt = io_common::multi(driver, 1);
        let (server, _client) = rt.block_on(async {
            let (server, client) = pair().await;
            let (r, _) = client.write_all_owned(vec![1]).await;
            r.unwrap();
            assert_eq!(read_n(&server, 1, 8).await, vec![1]);
            (server, client)
        });
        let mut read = Box::pin(server.read_owned(Vec::with_capacity(8)));
        match io_common::poll_once(read.as_mut()) {
            Poll::Ready((Err(e), _)) => {
                assert!(e.to_string().contains("runtime"), "{driver:?}: {e}")
            }
            Poll::Ready((Ok(n), _)) => panic!("{driver:?}: read {n} bytes that were never sent"),
            Poll::Pending => panic!("{driver:?}: pending on a driver nobody turns"),
        }
    }
}

#[test]
fn a_sleep_after_block_on_returns_outside_a_runtime_panics_clearly() {
    // As with tokio, a timer polled outside any runtime panics with a
    // message; it must not wait on the thread's `block_on` driver, which
    // nobody turns once that `block_on` returned.
    for driver in io_common::drivers() {
        let rt = io_common::multi(driver, 1);
        rt.block_on(sleep(Duration::from_millis(1)));
        let outcome = std::panic::catch_unwind(|| {
            let mut tick = Box::pin(sleep(Duration::from_millis(1)));
            io_common::poll_once(tick.as_mut()).is_pending()
        });
        let e = outcome.expect_err("polled outside a runtime without a panic");
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        assert!(msg.contains("runtime"), "{driver:?}: {msg}");
    }
}
