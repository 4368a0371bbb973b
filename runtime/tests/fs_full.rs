//! fs: a write past the file size limit (RLIMIT_FSIZE, the stand-in for a
//! full disk that needs no mount) is an `io::Error` (EFBIG) on both
//! drivers, and the runtime keeps serving. Its own test binary: the limit
//! is process-wide.

mod io_common;

use std::sync::Arc;

use io_common::on_all;
use numa_rt_runtime::fs::{self, File};

const LIMIT: u64 = 64 * 1024;

#[test]
fn write_past_the_size_limit_is_efbig() {
    // SAFETY: ignoring SIGXFSZ makes the kernel fail the write with EFBIG
    // instead of killing the process; setrlimit takes a live struct.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let lim = libc::rlimit {
            rlim_cur: LIMIT,
            rlim_max: libc::RLIM_INFINITY,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    let dir = Arc::new(tempfile::tempdir().unwrap());
    on_all(move || {
        let dir = dir.clone();
        async move {
            let path = dir.path().join("big");
            let file = File::create(&path).await.unwrap();
            let (r, buf) = file.write_all_at(vec![7; 2 * LIMIT as usize], 0).await;
            assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EFBIG));
            assert_eq!(buf.len(), 2 * LIMIT as usize);
            // Up to the limit was written; the file is still usable.
            assert_eq!(fs::metadata(&path).await.unwrap().len(), LIMIT);
            let e = fs::write(&path, vec![1; LIMIT as usize + 1])
                .await
                .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EFBIG));
            fs::write(&path, b"small").await.unwrap();
            assert_eq!(fs::read(&path).await.unwrap(), b"small");
        }
    });
}
