//! fs: `File` as a byte stream (tokio's and futures-io's `AsyncRead`,
//! `AsyncWrite`, `AsyncSeek`) on both drivers and both runtime flavors.

mod io_common;

use std::io::SeekFrom;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use io_common::on_all;
use numa_rt_runtime::fs::{File, OpenOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};

fn tmp() -> Arc<tempfile::TempDir> {
    Arc::new(tempfile::tempdir().unwrap())
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i * 31 % 253) as u8).collect()
}

#[test]
fn tokio_io_copy_between_files() {
    let dir = tmp();
    on_all(move || {
        let dir = dir.clone();
        async move {
            // Larger than one stream operation (2 MiB), not a multiple of it.
            let data = pattern(5 * 1024 * 1024 + 123);
            let src_path = dir.path().join(format!("src-{}", unique()));
            let dst_path = dir.path().join(format!("dst-{}", unique()));
            std::fs::write(&src_path, &data).unwrap();
            let mut src = File::open(&src_path).await.unwrap();
            let mut dst = File::create(&dst_path).await.unwrap();
            let n = tokio::io::copy(&mut src, &mut dst).await.unwrap();
            assert_eq!(n, data.len() as u64);
            dst.flush().await.unwrap();
            assert_eq!(std::fs::read(&dst_path).unwrap(), data);
        }
    });
}

#[test]
fn buf_reader_lines() {
    let dir = tmp();
    on_all(move || {
        let dir = dir.clone();
        async move {
            let path = dir.path().join(format!("lines-{}", unique()));
            let text: String = (0..2000).map(|i| format!("line number {i}\n")).collect();
            let mut file = File::create(&path).await.unwrap();
            file.write_all(text.as_bytes()).await.unwrap();
            file.flush().await.unwrap();
            drop(file);
            let mut lines = BufReader::new(File::open(&path).await.unwrap()).lines();
            let mut i = 0;
            while let Some(line) = lines.next_line().await.unwrap() {
                assert_eq!(line, format!("line number {i}"));
                i += 1;
            }
            assert_eq!(i, 2000);
        }
    });
}

#[test]
fn seek_then_read_and_write() {
    let dir = tmp();
    on_all(move || {
        let dir = dir.clone();
        async move {
            let path = dir.path().join(format!("seek-{}", unique()));
            let data = pattern(100_000);
            std::fs::write(&path, &data).unwrap();
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .await
                .unwrap();
            assert_eq!(file.seek(SeekFrom::Start(1000)).await.unwrap(), 1000);
            let mut four = [0u8; 4];
            file.read_exact(&mut four).await.unwrap();
            assert_eq!(four, data[1000..1004]);
            // The file read ahead; the stream position is still 1004.
            assert_eq!(file.stream_position().await.unwrap(), 1004);
            assert_eq!(file.seek(SeekFrom::Current(-2)).await.unwrap(), 1002);
            file.read_exact(&mut four).await.unwrap();
            assert_eq!(four, data[1002..1006]);
            assert_eq!(file.seek(SeekFrom::End(-10)).await.unwrap(), 99_990);
            let mut rest = Vec::new();
            file.read_to_end(&mut rest).await.unwrap();
            assert_eq!(rest, data[99_990..]);
            // A write after a read lands at the stream position, not after
            // the read-ahead.
            file.seek(SeekFrom::Start(10)).await.unwrap();
            file.read_exact(&mut four).await.unwrap();
            file.write_all(b"WXYZ").await.unwrap();
            file.flush().await.unwrap();
            assert_eq!(file.stream_position().await.unwrap(), 18);
            let on_disk = std::fs::read(&path).unwrap();
            assert_eq!(&on_disk[14..18], b"WXYZ");
            assert_eq!(on_disk[..14], data[..14]);
            assert_eq!(on_disk[18..], data[18..]);
            // Owned-buffer calls continue from the stream position.
            file.seek(SeekFrom::Start(0)).await.unwrap();
            file.read_exact(&mut four).await.unwrap();
            let (n, buf) = file.read_owned(Vec::with_capacity(4)).await;
            assert_eq!(n.unwrap(), 4);
            assert_eq!(buf, data[4..8]);
            // Seeking before the start is an error.
            let e = file.seek(SeekFrom::Current(-100)).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
            let e = file.seek(SeekFrom::Start(u64::MAX)).await.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        }
    });
}

#[test]
fn write_errors_come_back_from_flush() {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("no /dev/full here: skipped");
        return;
    }
    on_all(|| async {
        let mut file = OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .await
            .unwrap();
        // The write is started and counted; the device's error comes back
        // from flush (or from the next write).
        assert_eq!(file.write(b"abc").await.unwrap(), 3);
        let e = file.flush().await.unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        file.flush().await.unwrap();
        // The next write reports the previous one's error.
        file.write_all(&[1; 10_000]).await.unwrap();
        let e = file.write(b"x").await.unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
    });
}

/// A read whose future is dropped mid-flight stays with the file: the
/// next read gets its bytes, none are lost or read twice.
#[test]
fn dropped_read_future_loses_nothing() {
    let dir = tmp();
    on_all(move || {
        let dir = dir.clone();
        async move {
            let path = dir.path().join(format!("drop-{}", unique()));
            let data = pattern(64 * 1024);
            std::fs::write(&path, &data).unwrap();
            let mut file = File::open(&path).await.unwrap();
            let mut got = Vec::new();
            let mut chunk = [0u8; 1000];
            while got.len() < data.len() {
                // A zero timeout drops the read before or after its
                // completion, depending on the driver's timing.
                let raced = numa_rt_runtime::time::timeout(Duration::ZERO, file.read(&mut chunk));
                if let Ok(n) = raced.await {
                    got.extend_from_slice(&chunk[..n.unwrap()]);
                }
                let n = file.read(&mut chunk).await.unwrap();
                got.extend_from_slice(&chunk[..n]);
                if n == 0 {
                    break;
                }
            }
            assert_eq!(got, data);
        }
    });
}

#[test]
fn futures_io_traits() {
    use futures_io::{AsyncRead, AsyncSeek, AsyncWrite};
    use std::future::poll_fn;
    let dir = tmp();
    on_all(move || {
        let dir = dir.clone();
        async move {
            let path = dir.path().join(format!("futures-{}", unique()));
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .await
                .unwrap();
            let n = poll_fn(|cx| AsyncWrite::poll_write(Pin::new(&mut file), cx, b"hello world"))
                .await
                .unwrap();
            assert_eq!(n, 11);
            poll_fn(|cx| AsyncWrite::poll_flush(Pin::new(&mut file), cx))
                .await
                .unwrap();
            let pos =
                poll_fn(|cx| AsyncSeek::poll_seek(Pin::new(&mut file), cx, SeekFrom::Start(6)))
                    .await
                    .unwrap();
            assert_eq!(pos, 6);
            let mut buf = [0u8; 16];
            let n = poll_fn(|cx| AsyncRead::poll_read(Pin::new(&mut file), cx, &mut buf))
                .await
                .unwrap();
            assert_eq!(&buf[..n], b"world");
            let n = poll_fn(|cx| AsyncRead::poll_read(Pin::new(&mut file), cx, &mut buf))
                .await
                .unwrap();
            assert_eq!(n, 0);
            poll_fn(|cx| AsyncWrite::poll_close(Pin::new(&mut file), cx))
                .await
                .unwrap();
        }
    });
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
