//! fs: cancellation safety of `open`. An open future dropped while its
//! `openat` is in flight must not leak the descriptor the kernel returns
//! later. Its own test binary: it counts the process's open descriptors.

mod io_common;

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use io_common::{noop_waker, on_all};
use numa_rt_runtime::fs::{File, OpenOptions};

/// The tests count the process's descriptors: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Opens `path` once, so that lazily created drivers and pool threads
/// exist, then counts the open descriptors: the baseline a test's dropped
/// opens must come back to.
async fn warmed_up_fds(path: &Path) -> usize {
    drop(File::open(path).await.unwrap());
    numa_rt_runtime::time::sleep(Duration::from_millis(1)).await;
    open_fds()
}

/// Waits (up to 5 s) for the descriptor count to come back to `baseline`.
async fn settles_to(baseline: usize) -> usize {
    let start = Instant::now();
    loop {
        let now = open_fds();
        if now <= baseline || start.elapsed() > Duration::from_secs(5) {
            return now;
        }
        numa_rt_runtime::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `fut` once, then drops it: the ring op is queued (or running on
/// the blocking pool) and abandoned before its completion is seen.
fn poll_once_and_drop<F: Future>(fut: F) -> bool {
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let fut = pin!(fut);
    matches!(fut.poll(&mut cx), Poll::Pending)
}

#[test]
fn dropped_opens_close_their_descriptors() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let path = dir.path().join("target");
    std::fs::write(&path, b"x").unwrap();
    on_all(move || {
        let path = path.clone();
        async move {
            let baseline = warmed_up_fds(&path).await;
            let mut pending = 0;
            for _ in 0..500 {
                if poll_once_and_drop(File::open(&path)) {
                    pending += 1;
                }
            }
            assert!(pending > 0, "no open was ever in flight");
            // Let the abandoned completions arrive.
            let after = settles_to(baseline).await;
            assert_eq!(
                after, baseline,
                "descriptors leaked by {pending} dropped opens"
            );
            // Still usable afterwards.
            let (n, _) = File::open(&path)
                .await
                .unwrap()
                .read_at(Vec::with_capacity(4), 0)
                .await;
            assert_eq!(n.unwrap(), 1);
        }
    });
}

/// Many opens racing short timeouts: some finish, some are dropped in
/// flight, some complete while their task is being cancelled. Every
/// descriptor is closed in the end.
#[test]
fn opens_racing_timeouts_leak_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let path = dir.path().join("target");
    std::fs::write(&path, b"x").unwrap();
    on_all(move || {
        let path = path.clone();
        async move {
            let baseline = warmed_up_fds(&path).await;
            let tasks: Vec<_> = (0..200u64)
                .map(|i| {
                    let path = path.clone();
                    numa_rt_runtime::spawn(async move {
                        let opened = numa_rt_runtime::time::timeout(
                            Duration::from_micros(i % 40),
                            OpenOptions::new().read(true).open(&path),
                        )
                        .await;
                        matches!(opened, Ok(Ok(_)))
                    })
                })
                .collect();
            let mut finished = 0;
            for t in tasks {
                finished += usize::from(t.await.unwrap());
            }
            let after = settles_to(baseline).await;
            assert_eq!(after, baseline, "leak ({finished} of 200 opens finished)");
        }
    });
}
