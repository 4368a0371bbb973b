//! fs: files on both drivers (io_uring ring operations and the epoll
//! fallback on the blocking pool), on both runtime flavors.

mod io_common;

use std::future::Future;
use std::io::ErrorKind;
use std::sync::Arc;

use io_common::on_all;
use numa_rt_runtime::fs::{self, File, OpenOptions};

fn tmp() -> Arc<tempfile::TempDir> {
    Arc::new(tempfile::tempdir().unwrap())
}

#[test]
fn write_read_round_trip() {
    let dir = tmp();
    on_all(move || {
        let dir = dir.clone();
        async move {
            let path = dir.path().join("round_trip");
            let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
            fs::write(&path, &data).await.unwrap();
            assert_eq!(fs::read(&path).await.unwrap(), data);
            assert_eq!(std::fs::read(&path).unwrap(), data);
            fs::write(&path, "short").await.unwrap();
            assert_eq!(fs::read_to_string(&path).await.unwrap(), "short");
            fs::remove_file(&path).await.unwrap();
            let e = fs::read(&path).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound);
        }
    });
}

#[test]
fn positional_reads_and_writes() {
    let dir = tmp();
    on_all(move || {
        let dir = dir.clone();
        async move {
            let path = dir.path().join("positional");
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .await
                .unwrap();
            let (r, _) = file.write_all_at(vec![b'a'; 8192], 0).await;
            r.unwrap();
            let (r, _) = file.write_all_at(b"XYZ".to_vec(), 4096).await;
            r.unwrap();
            // Reads append into the spare capacity and keep what was there.
            let mut buf = Vec::with_capacity(8);
            buf.extend_from_slice(b"<");
            let (n, buf) = file.read_at(buf, 4095).await;
            assert_eq!(n.unwrap(), 7);
            assert_eq!(&buf[..], b"<aXYZaaa");
            // At and past the end: 0 bytes.
            let (n, buf) = file.read_at(Vec::with_capacity(16), 8192).await;
            assert_eq!((n.unwrap(), buf.len()), (0, 0));
            // No spare capacity: nothing to do.
            let (n, _) = file.read_at(Vec::new(), 0).await;
            assert_eq!(n.unwrap(), 0);
            file.sync_all().await.unwrap();
            file.sync_data().await.unwrap();
            assert_eq!(file.metadata().await.unwrap().len(), 8192);
            file.set_len(100).await.unwrap();
            assert_eq!(fs::metadata(&path).await.unwrap().len(), 100);
        }
    });
}

#[test]
fn sequential_reads_and_writes_use_the_file_position() {
    let dir = tmp();
    on_all(move || {
        let dir = dir.clone();
        async move {
            let path = dir.path().join("sequential");
            let mut file = File::create(&path).await.unwrap();
            for chunk in [&b"one "[..], b"two ", b"three"] {
                let (r, _) = file.write_all_owned(chunk.to_vec()).await;
                r.unwrap();
            }
            drop(file);
            let mut file = File::open(&path).await.unwrap();
            let (n, buf) = file.read_owned(Vec::with_capacity(4)).await;
            assert_eq!((n.unwrap(), &buf[..]), (4, &b"one "[..]));
            let (n, rest) = file.read_to_end_owned(Vec::new()).await;
            assert_eq!((n.unwrap(), &rest[..]), (9, &b"two three"[..]));
            // Append mode writes at the end whatever the offset.
            let file = OpenOptions::new().append(true).open(&path).await.unwrap();
            let (r, _) = file.write_all_at(b"!".to_vec(), 0).await;
            r.unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"one two three!");
        }
    });
}

#[test]
fn open_errors_are_io_errors() {
    let dir = tmp();
    on_all(move || {
        let dir = dir.clone();
        async move {
            let missing = dir.path().join("missing");
            assert_eq!(
                File::open(&missing).await.unwrap_err().kind(),
                ErrorKind::NotFound
            );
            let path = dir.path().join("exists");
            fs::write(&path, b"x").await.unwrap();
            assert_eq!(
                File::create_new(&path).await.unwrap_err().kind(),
                ErrorKind::AlreadyExists
            );
            let e = OpenOptions::new().open(&path).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            let e = File::open("bad\0path").await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            // Writing to a file opened read-only.
            let file = File::open(&path).await.unwrap();
            let (r, buf) = file.write_at(b"y".to_vec(), 0).await;
            assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EBADF));
            assert_eq!(buf, b"y", "the buffer comes back on errors");
            assert_eq!(
                fs::read_to_string(dir.path())
                    .await
                    .unwrap_err()
                    .raw_os_error(),
                Some(libc::EISDIR)
            );
            fs::write(&path, [0xff, 0xfe]).await.unwrap();
            assert_eq!(
                fs::read_to_string(&path).await.unwrap_err().kind(),
                ErrorKind::InvalidData
            );
        }
    });
}

#[test]
fn directories() {
    let dir = tmp();
    on_all(move || {
        let dir = dir.clone();
        async move {
            let nested = dir.path().join("a/b/c");
            fs::create_dir_all(&nested).await.unwrap();
            assert!(fs::metadata(&nested).await.unwrap().is_dir());
            fs::write(nested.join("f"), b"1").await.unwrap();
            fs::rename(nested.join("f"), nested.join("g"))
                .await
                .unwrap();
            assert!(!fs::try_exists(nested.join("f")).await.unwrap());
            assert_eq!(
                fs::copy(nested.join("g"), nested.join("h")).await.unwrap(),
                1
            );
            assert_eq!(fs::read_dir(&nested).await.unwrap().len(), 2);
            fs::remove_dir_all(dir.path().join("a")).await.unwrap();
            assert!(!fs::try_exists(dir.path().join("a")).await.unwrap());
        }
    });
}

#[test]
fn many_reads_in_flight() {
    let dir = tmp();
    let path = dir.path().join("many");
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let data = Arc::new(data);
    on_all(move || {
        let (path, data) = (path.clone(), data.clone());
        async move {
            let file = Arc::new(File::open(&path).await.unwrap());
            let mut tasks = Vec::new();
            for t in 0..64u64 {
                let (file, data) = (file.clone(), data.clone());
                tasks.push(numa_rt_runtime::spawn(async move {
                    let mut buf = Vec::with_capacity(4096);
                    for i in 0..16u64 {
                        let pos = ((t * 16 + i) * 4096 * 7919) % (1 << 20);
                        buf.clear();
                        let (n, b) = file.read_at(buf, pos).await;
                        buf = b;
                        assert_eq!(n.unwrap(), 4096);
                        assert_eq!(&buf[..], &data[pos as usize..pos as usize + 4096]);
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
    });
}

#[test]
fn std_conversions() {
    let dir = tmp();
    on_all(move || {
        let dir = dir.clone();
        async move {
            let path = dir.path().join("std");
            std::fs::write(&path, b"from std").unwrap();
            let file = File::from_std(std::fs::File::open(&path).unwrap());
            let (n, buf) = file.read_at(Vec::with_capacity(64), 5).await;
            assert_eq!((n.unwrap(), &buf[..]), (3, &b"std"[..]));
            let twin = file.try_clone().unwrap();
            let std_file = file.try_into_std().unwrap();
            assert_eq!(std_file.metadata().unwrap().len(), 8);
            drop(std_file);
            let (n, _) = twin.read_at(Vec::with_capacity(4), 0).await;
            assert_eq!(n.unwrap(), 4);
        }
    });
}

#[test]
fn outside_a_runtime_is_an_error() {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = std::task::Waker::from(Arc::new(Noop));
    let mut cx = std::task::Context::from_waker(&waker);
    // With no runtime the very first poll fails: nothing would ever wake it.
    let fut = std::pin::pin!(fs::read("/etc/hostname"));
    match fut.poll(&mut cx) {
        std::task::Poll::Ready(Err(e)) => assert!(e.to_string().contains("no runtime"), "{e}"),
        other => panic!("expected an error at once, got {other:?}"),
    }
}

#[test]
fn full_device_is_enospc() {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("no /dev/full here: skipped");
        return;
    }
    on_all(|| async {
        let file = OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .await
            .unwrap();
        let (r, buf) = file.write_all_at(vec![1; 4096], 0).await;
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(buf.len(), 4096);
        let mut file = file;
        let (r, _) = file.write_all_owned(vec![1; 10]).await;
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ENOSPC));
    });
}

/// A read still in flight when its future is dropped keeps its buffer: a
/// buffer allocated right after the drop (which would reuse freed memory)
/// is not written by the kernel when the read completes later.
#[test]
fn dropped_read_keeps_its_buffer_until_completion() {
    let dir = tmp();
    on_all(move || {
        let dir = dir.clone();
        async move {
            // Below the pipe capacity (64 KiB), so every write below fits
            // whether the abandoned read took its data or was cancelled.
            const LEN: usize = 16 * 1024;
            let path = dir.path().join(format!("fifo-{}", rand_suffix()));
            let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            // Read-write, so opening does not wait for a writer and the
            // read blocks until data comes.
            let mut reader = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .await
                .unwrap();
            let pending = numa_rt_runtime::time::timeout(
                std::time::Duration::from_millis(20),
                reader.read_owned(Vec::with_capacity(LEN)),
            )
            .await;
            assert!(pending.is_err(), "the FIFO read should still be in flight");
            let fresh: Vec<Vec<u8>> = (0..8).map(|_| vec![0u8; LEN]).collect();
            let mut writer = OpenOptions::new().write(true).open(&path).await.unwrap();
            let (r, _) = writer.write_all_owned(vec![0xAB; LEN]).await;
            r.unwrap();
            // Let the abandoned read complete (or be cancelled) meanwhile.
            numa_rt_runtime::time::sleep(std::time::Duration::from_millis(20)).await;
            for v in &fresh {
                assert!(v.iter().all(|&b| b == 0), "kernel wrote into freed memory");
            }
            // The FIFO still works: drain what the abandoned read left.
            let (r, _) = writer.write_all_owned(vec![0xCD; 16]).await;
            r.unwrap();
            let (n, buf) = reader.read_owned(Vec::with_capacity(2 * LEN)).await;
            assert!(n.unwrap() > 0);
            assert!(buf.iter().all(|&b| b == 0xAB || b == 0xCD));
            std::fs::remove_file(&path).unwrap();
        }
    });
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
