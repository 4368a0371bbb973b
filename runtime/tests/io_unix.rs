//! Unix sockets and AsyncFd on both drivers.

mod io_common;

use std::io::{Read, Write};
use std::time::Duration;

use io_common::on_all;
use numa_rt_runtime::io::unix::AsyncFd;
use numa_rt_runtime::io::Interest;
use numa_rt_runtime::net::{UnixListener, UnixStream};
use numa_rt_runtime::time::timeout;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn unix_listener_and_stream() {
    on_all(|| async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let listener = UnixListener::bind(&path).unwrap();
        assert_eq!(
            listener.local_addr().unwrap().as_pathname(),
            Some(path.as_path())
        );
        let server = numa_rt_runtime::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        let mut c = UnixStream::connect(&path).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        let err = UnixStream::connect(dir.path().join("missing"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    });
}

#[test]
fn unix_pair_owned_buffers() {
    on_all(|| async {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, _) = a.write_owned(vec![7u8; 100]).await;
        assert_eq!(r.unwrap(), 100);
        let (r, got) = b.read_owned(Vec::with_capacity(256)).await;
        assert_eq!(r.unwrap(), 100);
        assert!(got.iter().all(|&x| x == 7));
    });
}

#[test]
fn async_fd_waits_for_a_foreign_descriptor() {
    on_all(|| async {
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let fd = AsyncFd::new(b).unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            a.write_all(b"xyz").unwrap();
            a
        });
        let mut buf = [0u8; 8];
        let n = timeout(
            Duration::from_secs(5),
            fd.async_io(Interest::READABLE, |mut s| s.read(&mut buf)),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(&buf[..n], b"xyz");
        fd.writable().await.unwrap();
        drop(writer.join().unwrap());
        // Peer gone: readable (end of stream).
        fd.readable().await.unwrap();
    });
}
