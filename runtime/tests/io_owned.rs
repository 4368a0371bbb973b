//! Owned-buffer TCP operations (`read_owned`, `write_owned`,
//! `write_all_owned`) on both drivers: the paths the echo benchmarks use,
//! including the ones where the socket runs dry or full and the task has
//! to wait for the kernel.

mod io_common;

use std::sync::Arc;
use std::time::Duration;

use io_common::on_all;
use numa_rt_runtime::net::{TcpListener, TcpStream};
use numa_rt_runtime::time::timeout;

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connect = numa_rt_runtime::spawn(async move { TcpStream::connect(addr).await.unwrap() });
    let (server, _) = listener.accept().await.unwrap();
    (server, connect.await.unwrap())
}

/// Reads exactly `n` bytes with owned reads.
async fn read_exact_owned(s: &TcpStream, n: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let (r, b) = s.read_owned(got).await;
        got = b;
        assert!(r.unwrap() > 0, "early end of stream");
    }
    got
}

#[test]
fn two_tasks_reading_one_stream_both_finish() {
    // The second concurrent reader cannot share the socket's registration
    // (it keeps one waiting task per direction) and must still be woken.
    on_all(|| async {
        let (server, client) = pair().await;
        let server = Arc::new(server);
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let s = server.clone();
                numa_rt_runtime::spawn(async move {
                    let (r, b) = s.read_owned(Vec::with_capacity(64)).await;
                    let n = r.unwrap();
                    assert!(n > 0);
                    b
                })
            })
            .collect();
        // Let both readers find the socket empty and wait.
        numa_rt_runtime::time::sleep(Duration::from_millis(50)).await;
        for byte in [1u8, 2] {
            let (r, _) = client.write_all_owned(vec![byte]).await;
            r.unwrap();
            numa_rt_runtime::time::sleep(Duration::from_millis(20)).await;
        }
        let mut seen = Vec::new();
        for reader in readers {
            let b = timeout(Duration::from_secs(10), reader)
                .await
                .expect("a concurrent reader was never woken")
                .unwrap();
            seen.extend(b);
        }
        seen.sort();
        assert_eq!(seen, vec![1, 2]);
    });
}

#[test]
fn a_full_send_buffer_waits_and_resumes() {
    // 8 MiB written before the peer reads anything: the sender hits a full
    // socket buffer (short writes, then EAGAIN) and must be woken when the
    // reader makes room.
    on_all(|| async {
        let (server, client) = pair().await;
        const TOTAL: usize = 8 << 20;
        let writer = numa_rt_runtime::spawn(async move {
            let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
            let (r, _) = client.write_all_owned(data).await;
            r.unwrap();
            client
        });
        numa_rt_runtime::time::sleep(Duration::from_millis(50)).await;
        let got = timeout(Duration::from_secs(30), read_exact_owned(&server, TOTAL))
            .await
            .expect("the reader stalled");
        assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        let client = timeout(Duration::from_secs(10), writer)
            .await
            .expect("the writer stalled")
            .unwrap();
        drop(client);
        let (r, _) = server.read_owned(Vec::with_capacity(16)).await;
        assert_eq!(r.unwrap(), 0, "end of stream after the peer closed");
        // The end of the stream stays readable.
        let (r, _) = server.read_owned(Vec::with_capacity(16)).await;
        assert_eq!(r.unwrap(), 0);
    });
}

#[test]
fn short_reads_then_more_data_wake_the_reader() {
    // Each read gets less than the buffer holds (the socket is drained),
    // so the next read must wait for the next message rather than spin or
    // hang.
    on_all(|| async {
        let (server, client) = pair().await;
        let echo = numa_rt_runtime::spawn(async move {
            let mut buf = Vec::with_capacity(4096);
            let mut rounds = 0;
            loop {
                buf.clear();
                let (r, b) = server.read_owned(buf).await;
                buf = b;
                if r.unwrap() == 0 {
                    return rounds;
                }
                rounds += 1;
                let (r, b) = server.write_all_owned(buf).await;
                r.unwrap();
                buf = b;
            }
        });
        for round in 0..200u32 {
            let msg = round.to_le_bytes().repeat(25);
            let (r, _) = client.write_all_owned(msg.clone()).await;
            r.unwrap();
            assert_eq!(read_exact_owned(&client, msg.len()).await, msg);
        }
        client.shutdown_std(std::net::Shutdown::Write).unwrap();
        let rounds = timeout(Duration::from_secs(10), echo)
            .await
            .expect("the echo task stalled")
            .unwrap();
        assert!(rounds >= 200);
    });
}

#[test]
fn split_halves_use_owned_operations() {
    on_all(|| async {
        let (server, client) = pair().await;
        let (read, write) = server.into_split();
        let pump = numa_rt_runtime::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            loop {
                buf.clear();
                let (r, b) = read.read_owned(buf).await;
                buf = b;
                if r.unwrap() == 0 {
                    return;
                }
                let mut sent = 0;
                while sent < buf.len() {
                    let (r, b) = write.write_owned(buf[sent..].to_vec()).await;
                    let n = r.unwrap();
                    assert_eq!(b.len(), buf.len() - sent);
                    sent += n;
                }
            }
        });
        for round in 0..50u8 {
            let msg = vec![round; 700];
            let (r, _) = client.write_all_owned(msg.clone()).await;
            r.unwrap();
            assert_eq!(read_exact_owned(&client, msg.len()).await, msg);
        }
        client.shutdown_std(std::net::Shutdown::Write).unwrap();
        timeout(Duration::from_secs(10), pump)
            .await
            .expect("the pump stalled")
            .unwrap();
    });
}

#[test]
fn a_write_dropped_while_waiting_sends_nothing_later() {
    // A write waiting for room in a full send buffer is dropped; the bytes
    // the peer then receives are the fill and the next write's, in order,
    // with none of the dropped write's (which a send left in the kernel
    // could still put after, or between, them).
    on_all(|| async {
        let (server, client) = pair().await;
        let mut filled = 0usize;
        loop {
            match socket2::SockRef::from(&client).send(&[1u8; 64 << 10]) {
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        let dropped = timeout(
            Duration::from_millis(20),
            client.write_owned(vec![2u8; 64 << 10]),
        )
        .await;
        let mut expect = filled;
        if let Ok((r, _)) = dropped {
            // The buffer drained in time: what it sent counts as fill.
            expect += r.unwrap();
        }
        let reader = numa_rt_runtime::spawn(async move {
            let mut got = Vec::new();
            loop {
                let (r, b) = server.read_owned(Vec::with_capacity(64 << 10)).await;
                if r.unwrap() == 0 {
                    return got;
                }
                got.extend_from_slice(&b);
            }
        });
        let (r, _) = client.write_all_owned(vec![3u8; 1000]).await;
        r.unwrap();
        drop(client);
        let got = reader.await.unwrap();
        assert_eq!(got.len(), expect + 1000);
        let (fill, last) = got.split_at(expect);
        assert!(fill.iter().all(|&b| b != 3), "the last write came early");
        assert!(fill.iter().filter(|&&b| b == 2).count() <= expect - filled);
        assert!(
            last.iter().all(|&b| b == 3),
            "bytes of the dropped write came late"
        );
    });
}
