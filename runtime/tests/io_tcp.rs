//! TCP on both drivers, over real loopback sockets.

mod io_common;

use std::future::{poll_fn, Future};
use std::os::fd::AsRawFd;
use std::task::Poll;
use std::time::Duration;

use io_common::on_all;
use numa_rt_runtime::net::{TcpListener, TcpStream};
use numa_rt_runtime::time::{sleep, timeout};
use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connect = numa_rt_runtime::spawn(async move { TcpStream::connect(addr).await.unwrap() });
    let (server, peer) = listener.accept().await.unwrap();
    let client = connect.await.unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
    (server, client)
}

#[test]
fn owned_buffer_echo() {
    on_all(|| async {
        let (server, client) = pair().await;
        let echo = numa_rt_runtime::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            loop {
                buf.clear();
                let (r, b) = server.read_owned(buf).await;
                buf = b;
                if r.unwrap() == 0 {
                    return;
                }
                let (r, b) = server.write_all_owned(buf).await;
                r.unwrap();
                buf = b;
            }
        });
        for round in 0..50u8 {
            let msg = vec![round; 1000];
            let (r, _) = client.write_all_owned(msg.clone()).await;
            r.unwrap();
            let mut got = Vec::new();
            while got.len() < msg.len() {
                let (r, b) = client.read_owned(Vec::with_capacity(1024)).await;
                let n = r.unwrap();
                assert!(n > 0, "early end of stream");
                got.extend_from_slice(&b[..n]);
            }
            assert_eq!(got, msg);
        }
        client.shutdown_std(std::net::Shutdown::Write).unwrap();
        timeout(Duration::from_secs(10), echo)
            .await
            .unwrap()
            .unwrap();
    });
}

#[test]
fn tokio_traits_and_split_halves() {
    on_all(|| async {
        let (server, mut client) = pair().await;
        server.set_nodelay(true).unwrap();
        assert!(server.nodelay().unwrap());
        let (mut rd, mut wr) = server.into_split();
        let echo = numa_rt_runtime::spawn(async move {
            let n = tokio::io::copy(&mut rd, &mut wr).await.unwrap();
            n
        });
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let payload = payload.clone();
            async move {
                let mut out = Vec::new();
                client.write_all(&payload).await.unwrap();
                client.shutdown().await.unwrap();
                client.read_to_end(&mut out).await.unwrap();
                out
            }
        };
        let back = timeout(Duration::from_secs(20), writer).await.unwrap();
        assert_eq!(back.len(), payload.len());
        assert!(back == payload);
        assert_eq!(echo.await.unwrap(), payload.len() as u64);
    });
}

#[test]
fn vectored_write() {
    on_all(|| async {
        let (mut server, mut client) = pair().await;
        let bufs = [
            std::io::IoSlice::new(b"hello "),
            std::io::IoSlice::new(b"world"),
        ];
        let n = client.write_vectored(&bufs).await.unwrap();
        assert_eq!(n, 11);
        let mut got = [0u8; 11];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello world");
    });
}

#[test]
fn connect_refused_and_reset_are_errors() {
    on_all(|| async {
        // A port nobody listens on: bind, learn the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = TcpStream::connect(("127.0.0.1", port)).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);

        // Peer resets (linger 0): reads/writes give errors, not panics.
        let (server, mut client) = pair().await;
        SockRef::from(&server)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(server);
        sleep(Duration::from_millis(5)).await;
        let mut buf = [0u8; 16];
        let r = client.read(&mut buf).await;
        assert!(matches!(r, Err(_) | Ok(0)), "{r:?}");
        let mut failed = false;
        for _ in 0..10 {
            if client.write_all(&[1u8; 1024]).await.is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "writes to a reset peer kept succeeding");
    });
}

#[test]
fn host_names_resolve_on_the_blocking_pool() {
    on_all(|| async {
        let listener = TcpListener::bind("localhost:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accept = numa_rt_runtime::spawn(async move { listener.accept().await.map(|_| ()) });
        let s = TcpStream::connect(format!("localhost:{port}"))
            .await
            .unwrap();
        accept.await.unwrap().unwrap();
        assert_eq!(s.peer_addr().unwrap().port(), port);
    });
}

#[test]
fn std_conversions() {
    on_all(|| async {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = TcpListener::from_std(std_listener).unwrap();
        let c = std::net::TcpStream::connect(addr).unwrap();
        let (s, _) = listener.accept().await.unwrap();
        let mut c = TcpStream::from_std(c).unwrap();
        c.write_all(b"x").await.unwrap();
        let std_s = s.into_std().unwrap();
        std_s.set_nonblocking(false).unwrap();
        let mut one = [0u8; 1];
        std::io::Read::read_exact(&mut &std_s, &mut one).unwrap();
        assert_eq!(&one, b"x");
        let back = listener.into_std().unwrap();
        assert_eq!(back.local_addr().unwrap(), addr);
    });
}

/// Drops a read mid-flight, then reuses memory of the same size and the
/// same descriptor number: nothing may be written into either.
#[test]
fn dropped_read_never_writes_into_reused_memory_or_fd() {
    on_all(|| async {
        let (server, client) = pair().await;
        let old_fd = server.as_raw_fd();
        {
            let mut fut = Box::pin(server.read_owned(Vec::with_capacity(4096)));
            poll_fn(|cx| {
                assert!(fut.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            // Let the worker submit the operation to the kernel.
            sleep(Duration::from_millis(2)).await;
        }
        drop(server);
        // Same-sized blocks, likely the freed ones if they had been freed.
        let pattern: Vec<Vec<u8>> = (0..64).map(|_| vec![0xAAu8; 4096]).collect();
        // Likely the same descriptor number as the dropped socket.
        let (server2, client2) = pair().await;
        let reused = server2.as_raw_fd() == old_fd || client2.as_raw_fd() == old_fd;
        let _ = client.write_all_owned(vec![0x55; 4096]).await;
        sleep(Duration::from_millis(20)).await;
        for p in &pattern {
            assert!(p.iter().all(|&b| b == 0xAA), "freed memory was written");
        }
        // The new socket with the reused number saw none of the old data.
        let (r, _) = client2.write_all_owned(b"new".to_vec()).await;
        r.unwrap();
        let (r, got) = server2.read_owned(Vec::with_capacity(64)).await;
        assert_eq!(r.unwrap(), 3);
        assert_eq!(&got[..], b"new", "fd reused: {reused}");
    });
}

#[test]
fn accept_after_fd_exhaustion_keeps_serving() {
    // EMFILE: lower the soft limit in a child process so the test runner is
    // unaffected.
    if std::env::var("NUMA_RT_EMFILE_CHILD").is_ok() {
        emfile_child();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "accept_after_fd_exhaustion_keeps_serving",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NUMA_RT_EMFILE_CHILD", "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("emfile child ok"), "{text}");
}

fn emfile_child() {
    for driver in io_common::drivers() {
        let rt = io_common::current(driver);
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            // Fill the descriptor table up to a low limit.
            let mut hog = Vec::new();
            // SAFETY (test): plain getrlimit/setrlimit calls on live structs.
            unsafe {
                let mut lim: libc::rlimit = std::mem::zeroed();
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
                lim.rlim_cur = 256;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
            while let Ok(f) = std::fs::File::open("/dev/null") {
                hog.push(f);
            }
            let accept = numa_rt_runtime::spawn(async move {
                let (s, _) = listener.accept().await.unwrap();
                s
            });
            // Free two descriptors: one for the client, then one for the
            // server side once the accept loop backs off and retries.
            hog.pop();
            let client = std::net::TcpStream::connect(addr).unwrap();
            sleep(Duration::from_millis(20)).await;
            assert!(!accept.is_finished(), "accepted without a free descriptor");
            hog.pop();
            let s = timeout(Duration::from_secs(5), accept)
                .await
                .expect("accept did not recover")
                .unwrap();
            drop((s, client, hog));
        });
    }
    eprintln!("emfile child ok");
}

#[test]
fn udp_round_trip_and_connected_send() {
    on_all(|| async {
        use numa_rt_runtime::net::UdpSocket;
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b_addr = b.local_addr().unwrap();
        let recv = numa_rt_runtime::spawn(async move {
            let mut buf = [0u8; 64];
            let (n, from) = b.recv_from(&mut buf).await.unwrap();
            (buf[..n].to_vec(), from, b)
        });
        sleep(Duration::from_millis(1)).await;
        a.send_to(b"datagram", b_addr).await.unwrap();
        let (got, from, b) = recv.await.unwrap();
        assert_eq!(&got, b"datagram");
        assert_eq!(from, a.local_addr().unwrap());
        a.connect(b_addr).await.unwrap();
        assert_eq!(a.peer_addr().unwrap(), b_addr);
        a.send(b"two").await.unwrap();
        let mut buf = [0u8; 8];
        let (n, _) = b.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"two");
    });
}

#[test]
fn lookup_host_resolves_localhost() {
    on_all(|| async {
        let addrs: Vec<_> = numa_rt_runtime::net::lookup_host(("localhost", 4242))
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty());
        assert!(addrs
            .iter()
            .all(|a| a.port() == 4242 && a.ip().is_loopback()));
        let err = numa_rt_runtime::net::lookup_host("no-port-given").await;
        assert!(err.is_err());
    });
}

#[test]
fn bind_per_node_shares_one_port() {
    for driver in io_common::drivers() {
        let rt = io_common::multi(driver, 1);
        rt.block_on(async {
            let listeners = TcpListener::bind_per_node("127.0.0.1:0").await.unwrap();
            assert_eq!(
                listeners.len(),
                numa_rt_runtime::runtime::Handle::current().nodes().len()
            );
            let addr = listeners[0].1.local_addr().unwrap();
            let mut servers = Vec::new();
            for (node, l) in listeners {
                assert_eq!(l.local_addr().unwrap(), addr);
                servers.push(numa_rt_runtime::spawn_on(node, async move {
                    let (s, _) = l.accept().await.unwrap();
                    let (r, buf) = s.read_owned(Vec::with_capacity(8)).await;
                    r.unwrap();
                    (numa_rt_runtime::task::current_node(), node, buf)
                }));
            }
            // The kernel picks the listener: connect until every node's
            // accept loop got one.
            let mut clients = Vec::new();
            let start = std::time::Instant::now();
            while !servers.iter().all(|s| s.is_finished()) {
                assert!(start.elapsed() < Duration::from_secs(10));
                let c = TcpStream::connect(addr).await.unwrap();
                let (r, _) = c.write_all_owned(b"hey".to_vec()).await;
                r.unwrap();
                clients.push(c);
                sleep(Duration::from_millis(1)).await;
            }
            for s in servers {
                let (ran_on, node, buf) = s.await.unwrap();
                assert_eq!(&buf[..], b"hey");
                assert_eq!(ran_on, Some(node));
            }
        });
    }
}

#[test]
fn tcp_socket_options_listen_and_connect() {
    on_all(|| async {
        use numa_rt_runtime::net::TcpSocket;
        let s = TcpSocket::new_v4().unwrap();
        s.set_reuseaddr(true).unwrap();
        s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = s.listen(64).unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = numa_rt_runtime::spawn(async move { listener.accept().await.unwrap().1 });
        let c = TcpSocket::new_v4().unwrap();
        c.set_nodelay(true).unwrap();
        c.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let local = c.local_addr().unwrap();
        let stream = c.connect(addr).await.unwrap();
        assert!(stream.nodelay().unwrap());
        assert_eq!(stream.local_addr().unwrap(), local);
        assert_eq!(accept.await.unwrap(), local);
    });
}

#[test]
fn io_without_enable_io_is_an_error_not_a_panic() {
    let rt = numa_rt_runtime::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        // Sockets are made without the driver; the first wait needs it.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = l.accept().await.unwrap_err();
        assert!(err.to_string().contains("enable_io"), "{err}");
        // Time still works.
        sleep(Duration::from_millis(1)).await;
    });
    let err = std::thread::spawn(|| {
        // No runtime at all.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let l = TcpListener::from_std(l).unwrap();
        let mut fut = Box::pin(l.accept());
        let waker = io_common::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(r) => r.map(drop).unwrap_err().to_string(),
            Poll::Pending => "pending".to_string(),
        }
    })
    .join()
    .unwrap();
    assert!(err.contains("numa_rt runtime"), "{err}");
}

/// Reads in flight on workers, their tasks aborted from another thread:
/// the cancellations reach the owning drivers, nothing is written into
/// reused memory, and the runtime keeps serving and shuts down promptly.
#[test]
fn aborting_tasks_with_reads_in_flight() {
    for driver in io_common::drivers() {
        let rt = io_common::multi(driver, 2);
        let start = std::time::Instant::now();
        rt.block_on(async {
            let mut keep = Vec::new();
            let mut tasks = Vec::new();
            for _ in 0..32 {
                let (server, client) = pair().await;
                tasks.push(numa_rt_runtime::spawn(async move {
                    let (r, _) = server.read_owned(Vec::with_capacity(4096)).await;
                    r.map(drop)
                }));
                keep.push(client);
            }
            sleep(Duration::from_millis(5)).await;
            for t in &tasks {
                t.abort();
            }
            for t in tasks {
                assert!(t.await.unwrap_err().is_cancelled());
            }
            let pattern: Vec<Vec<u8>> = (0..64).map(|_| vec![0xAAu8; 4096]).collect();
            for c in &keep {
                let _ = c.write_all_owned(vec![0x55; 4096]).await;
            }
            sleep(Duration::from_millis(10)).await;
            assert!(pattern.iter().all(|p| p.iter().all(|&b| b == 0xAA)));
            // Still serving.
            let (s, c) = pair().await;
            let (r, _) = c.write_all_owned(b"ok".to_vec()).await;
            r.unwrap();
            let (r, got) = s.read_owned(Vec::with_capacity(8)).await;
            assert_eq!(r.unwrap(), 2);
            assert_eq!(&got[..], b"ok");
        });
        drop(rt);
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}

/// Dropping a runtime with reads still in flight does not hang.
#[test]
fn runtime_drop_with_reads_in_flight() {
    for driver in io_common::drivers() {
        let rt = io_common::multi(driver, 2);
        let clients = rt.block_on(async {
            let mut clients = Vec::new();
            for _ in 0..8 {
                let (server, client) = pair().await;
                numa_rt_runtime::spawn(async move {
                    let _ = server.read_owned(Vec::with_capacity(1024)).await;
                });
                clients.push(client);
            }
            sleep(Duration::from_millis(5)).await;
            clients
        });
        let start = std::time::Instant::now();
        drop(rt);
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        drop(clients);
    }
}
