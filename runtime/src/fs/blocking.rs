//! The fallback path: file work on the runtime's blocking pool.
//!
//! Regular files are always "ready" to epoll, so a readiness driver cannot
//! make them asynchronous. Where the thread has no io_uring (the epoll
//! backend, or a runtime built without I/O), `fs` runs each operation as a
//! closure on the blocking pool of the current node, as tokio::fs does.

use std::ffi::CStr;
use std::io;

use super::metadata::{Metadata, STATX_MASK};

use crate::runtime::context;

/// Runs `f` on the blocking pool and waits for its result.
pub(super) async fn run<F, R>(f: F) -> io::Result<R>
where
    F: FnOnce() -> io::Result<R> + Send + 'static,
    R: Send + 'static,
{
    let handle = context::with_handle(|h| h.cloned()).ok_or_else(no_runtime)?;
    match handle.spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => Err(io::Error::other(format!(
            "numa_rt::fs: the blocking-pool task running the operation failed: {e}"
        ))),
    }
}

fn no_runtime() -> io::Error {
    io::Error::other(
        "numa_rt::fs: no runtime on this thread: file operations must run inside a numa_rt \
         runtime",
    )
}

/// A libc return value as an `io::Result`.
pub(super) fn cvt(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// `statx(dirfd, path, flags)` in place (call it on the blocking pool).
pub(super) fn statx(dirfd: libc::c_int, path: &CStr, flags: libc::c_int) -> io::Result<Metadata> {
    // SAFETY: `statx` is plain integers, for which all-zero is valid.
    let mut buf: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a whole `statx` to write, both
    // alive for the call.
    let r = unsafe {
        libc::statx(
            dirfd,
            path.as_ptr(),
            flags | libc::AT_STATX_SYNC_AS_STAT,
            STATX_MASK,
            &mut buf,
        )
    };
    cvt(r as libc::ssize_t)?;
    Ok(Metadata::from_statx(buf))
}
