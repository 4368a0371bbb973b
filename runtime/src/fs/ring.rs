//! File operations as io_uring operations (`IORING_OP_OPENAT`, `READ`,
//! `WRITE`, `FSYNC`, `STATX`, and the path operations `MKDIRAT`,
//! `UNLINKAT`, `RENAMEAT`, `LINKAT`, `SYMLINKAT`).
//!
//! Each operation owns what the kernel touches (the path, the buffer, the
//! descriptor) inside an [`Op`]; dropping the future mid-flight leaves them
//! with the driver until the completion arrives.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::OnceLock;

use io_uring::{opcode, types, IoUring, Probe};

use super::metadata::{Metadata, STATX_MASK};

use crate::io::driver::{self, Driver};
use crate::io::op::{Op, SharedFd};
use crate::io::Backend;

/// The `offset` that makes a ring read or write use (and advance) the
/// file position, as `read(2)`/`write(2)` do.
pub(super) const CURRENT_POSITION: u64 = u64::MAX;

/// The calling thread's io_uring driver, when it has one that takes I/O.
pub(super) fn driver() -> Option<Driver> {
    driver::current().filter(|d| {
        let config = d.config();
        config.io && config.backend == Backend::Uring && !d.is_closed()
    })
}

/// The calling thread's io_uring driver, when it has one and the running
/// kernel's io_uring knows `opcode` (the path operations came in 5.11 and
/// 5.15; older kernels take them on the blocking pool).
pub(super) fn driver_for(opcode: u8) -> Option<Driver> {
    driver().filter(|_| kernel_supports(opcode))
}

/// Whether the kernel's io_uring has `opcode`, asked once per process
/// (`IORING_REGISTER_PROBE` on a throwaway ring).
fn kernel_supports(opcode: u8) -> bool {
    static OPCODES: OnceLock<u128> = OnceLock::new();
    let known = *OPCODES.get_or_init(|| {
        let Ok(ring) = IoUring::new(2) else {
            return 0;
        };
        let mut probe = Probe::new();
        if ring.submitter().register_probe(&mut probe).is_err() {
            return 0;
        }
        (0..128u8)
            .filter(|&code| probe.is_supported(code))
            .fold(0, |set, code| set | 1u128 << code)
    });
    opcode < 128 && known & (1u128 << opcode) != 0
}

/// `openat(AT_FDCWD, path, flags, mode)`.
pub(super) async fn open(
    driver: Driver,
    path: CString,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let entry = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
        .flags(flags)
        .mode(mode)
        .build();
    // SAFETY: the entry points only at the CString's heap bytes, which the
    // op owns (moving a CString does not move its bytes).
    let op = unsafe { Op::submit(driver, entry, path) }?.result_is_fd();
    let (completion, _path) = op.await;
    let fd = completion.into_result()?;
    // SAFETY: a successful openat returned a fresh descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Reads into `buf`'s spare capacity at `pos` (or the file position for
/// [`CURRENT_POSITION`]); the bytes read are appended to `buf`.
pub(super) async fn read_at(
    driver: Driver,
    fd: &SharedFd,
    mut buf: Vec<u8>,
    pos: u64,
) -> (io::Result<usize>, Vec<u8>) {
    let spare = buf.capacity() - buf.len();
    if spare == 0 {
        return (Ok(0), buf);
    }
    loop {
        let len = buf.len();
        // SAFETY: `len <= capacity`, so the pointer stays inside (or one
        // past) the vector's heap block.
        let ptr = unsafe { buf.as_mut_ptr().add(len) };
        let entry = opcode::Read::new(types::Fd(fd.raw()), ptr, clamp(spare))
            .offset(pos)
            .build();
        // SAFETY: the entry points only into `buf`'s spare capacity; the op
        // owns `buf` (its heap block does not move) and the descriptor
        // until the completion arrives.
        let op = match unsafe { Op::submit(driver.clone(), entry, (buf, fd.clone())) } {
            Ok(op) => op,
            Err(e) => return (Err(e), Vec::new()),
        };
        let (completion, (b, _fd)) = op.await;
        buf = b;
        match completion.into_result() {
            Ok(n) => {
                // SAFETY: the kernel initialised `n <= spare` bytes after
                // the length.
                unsafe { buf.set_len(len + n as usize) };
                return (Ok(n as usize), buf);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (Err(e), buf),
        }
    }
}

/// Writes `buf[from..]` at `pos` (or the file position for
/// [`CURRENT_POSITION`]); returns how many bytes were written.
pub(super) async fn write_at(
    driver: Driver,
    fd: &SharedFd,
    mut buf: Vec<u8>,
    from: usize,
    pos: u64,
) -> (io::Result<usize>, Vec<u8>) {
    let from = from.min(buf.len());
    if from == buf.len() {
        return (Ok(0), buf);
    }
    loop {
        let data = &buf[from..];
        let entry = opcode::Write::new(types::Fd(fd.raw()), data.as_ptr(), clamp(data.len()))
            .offset(pos)
            .build();
        // SAFETY: the entry points only into `buf`'s heap block, which the
        // op owns together with the descriptor until the completion.
        let op = match unsafe { Op::submit(driver.clone(), entry, (buf, fd.clone())) } {
            Ok(op) => op,
            Err(e) => return (Err(e), Vec::new()),
        };
        let (completion, (b, _fd)) = op.await;
        buf = b;
        match completion.into_result() {
            Ok(n) => return (Ok(n as usize), buf),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (Err(e), buf),
        }
    }
}

/// `fsync(2)`, or `fdatasync(2)` when `data_only`.
pub(super) async fn fsync(driver: Driver, fd: &SharedFd, data_only: bool) -> io::Result<()> {
    let flags = if data_only {
        types::FsyncFlags::DATASYNC
    } else {
        types::FsyncFlags::empty()
    };
    let entry = opcode::Fsync::new(types::Fd(fd.raw())).flags(flags).build();
    // SAFETY: the entry holds no pointer; the op keeps the descriptor open.
    let op = unsafe { Op::submit(driver, entry, fd.clone()) }?;
    let (completion, _fd) = op.await;
    completion.into_result().map(drop)
}

/// `statx` of `path` (relative to the working directory), or of `fd`
/// itself when given (with an empty path and `AT_EMPTY_PATH`).
pub(super) async fn statx(
    driver: Driver,
    fd: Option<&SharedFd>,
    path: CString,
    flags: libc::c_int,
) -> io::Result<Metadata> {
    // SAFETY: `statx` is plain integers, for which all-zero is valid.
    let mut buf: Box<libc::statx> = Box::new(unsafe { std::mem::zeroed() });
    let dirfd = fd.map_or(libc::AT_FDCWD, SharedFd::raw);
    let out: *mut libc::statx = &mut *buf;
    let entry = opcode::Statx::new(types::Fd(dirfd), path.as_ptr(), out.cast())
        .flags(flags | libc::AT_STATX_SYNC_AS_STAT)
        .mask(STATX_MASK)
        .build();
    // SAFETY: the entry points at the path's and the box's heap blocks,
    // both owned by the op (with the descriptor) until the completion.
    let op = unsafe { Op::submit(driver, entry, (path, buf, fd.cloned())) }?;
    let (completion, (_path, buf, _fd)) = op.await;
    completion.into_result()?;
    Ok(Metadata::from_statx(*buf))
}

/// `mkdirat(AT_FDCWD, path, mode)`.
pub(super) async fn mkdir(driver: Driver, path: CString, mode: libc::mode_t) -> io::Result<()> {
    let entry = opcode::MkDirAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
        .mode(mode)
        .build();
    // SAFETY: the entry points only at the path's heap bytes, op-owned.
    let op = unsafe { Op::submit(driver, entry, path) }?;
    op.await.0.into_result().map(drop)
}

/// `unlinkat(AT_FDCWD, path, flags)` (`AT_REMOVEDIR` for a directory).
pub(super) async fn unlink(driver: Driver, path: CString, flags: libc::c_int) -> io::Result<()> {
    let entry = opcode::UnlinkAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
        .flags(flags)
        .build();
    // SAFETY: the entry points only at the path's heap bytes, op-owned.
    let op = unsafe { Op::submit(driver, entry, path) }?;
    op.await.0.into_result().map(drop)
}

/// `renameat(AT_FDCWD, from, AT_FDCWD, to)`.
pub(super) async fn rename(driver: Driver, from: CString, to: CString) -> io::Result<()> {
    let cwd = types::Fd(libc::AT_FDCWD);
    let entry = opcode::RenameAt::new(cwd, from.as_ptr(), cwd, to.as_ptr()).build();
    // SAFETY: the entry points only at the two paths' heap bytes, op-owned.
    let op = unsafe { Op::submit(driver, entry, (from, to)) }?;
    op.await.0.into_result().map(drop)
}

/// `linkat(AT_FDCWD, src, AT_FDCWD, dst, 0)`: a hard link `dst` to `src`
/// (a symbolic link `src` is linked itself, as `std::fs::hard_link` does).
pub(super) async fn link(driver: Driver, src: CString, dst: CString) -> io::Result<()> {
    let cwd = types::Fd(libc::AT_FDCWD);
    let entry = opcode::LinkAt::new(cwd, src.as_ptr(), cwd, dst.as_ptr()).build();
    // SAFETY: the entry points only at the two paths' heap bytes, op-owned.
    let op = unsafe { Op::submit(driver, entry, (src, dst)) }?;
    op.await.0.into_result().map(drop)
}

/// `symlinkat(target, AT_FDCWD, link)`: a symbolic link `link` holding
/// `target`.
pub(super) async fn symlink(driver: Driver, target: CString, link: CString) -> io::Result<()> {
    let entry =
        opcode::SymlinkAt::new(types::Fd(libc::AT_FDCWD), target.as_ptr(), link.as_ptr()).build();
    // SAFETY: the entry points only at the two paths' heap bytes, op-owned.
    let op = unsafe { Op::submit(driver, entry, (target, link)) }?;
    op.await.0.into_result().map(drop)
}

/// A length the kernel's 32-bit `len` field can hold.
fn clamp(len: usize) -> u32 {
    len.min(i32::MAX as usize) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a kernel whose io_uring works at all and is 5.15 or newer, the
    /// path operations are ring operations.
    #[test]
    fn the_probe_sees_the_path_operations() {
        if crate::io::driver::uring::probe().is_err() {
            eprintln!("io_uring unavailable here: skipped");
            return;
        }
        assert!(kernel_supports(opcode::Read::CODE));
        assert!(kernel_supports(opcode::Statx::CODE));
        let mut release = libc::utsname {
            // SAFETY: plain bytes; uname fills them.
            ..unsafe { std::mem::zeroed() }
        };
        // SAFETY: a live, writable utsname.
        assert_eq!(unsafe { libc::uname(&mut release) }, 0);
        // SAFETY: uname NUL-terminates the release.
        let release = unsafe { std::ffi::CStr::from_ptr(release.release.as_ptr()) };
        let mut parts = release.to_str().unwrap().split(['.', '-']);
        let major: u32 = parts.next().unwrap().parse().unwrap();
        let minor: u32 = parts.next().unwrap().parse().unwrap();
        if (major, minor) >= (5, 15) {
            for code in [
                opcode::MkDirAt::CODE,
                opcode::UnlinkAt::CODE,
                opcode::RenameAt::CODE,
                opcode::LinkAt::CODE,
                opcode::SymlinkAt::CODE,
            ] {
                assert!(kernel_supports(code), "opcode {code} on {release:?}");
            }
        }
        assert!(!kernel_supports(200));
    }
}

/// Closing by `IORING_OP_CLOSE` against `close(2)`: the measurement
/// behind closing files synchronously (see `File`'s docs). Run by hand:
///
/// ```text
/// cargo test --release -p numa-rt-runtime --lib close_cost -- --ignored --nocapture
/// ```
#[cfg(test)]
mod close_cost {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;
    use std::time::Duration;

    /// This thread's CPU time.
    fn cpu() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a live timespec for the call to fill.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    /// Rounds of 64 closes, alternating: dropping the `OwnedFd`s
    /// (`close(2)` each) and 64 ring closes submitted together and awaited
    /// in one task (the cheapest a ring close can be). Prints the median
    /// per-close cost of each.
    #[test]
    #[ignore = "a measurement: run by hand with --ignored --nocapture"]
    fn measure_close_costs() {
        use std::os::fd::IntoRawFd;
        if crate::io::driver::uring::probe().is_err() {
            eprintln!("io_uring unavailable here: skipped");
            return;
        }
        let rt = crate::runtime::Builder::new_current_thread()
            .enable_all()
            .io_driver(crate::io::IoDriver::Uring)
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        rt.block_on(async {
            let d = driver().unwrap();
            let (mut sync_cpu, mut ring_cpu) = (Vec::new(), Vec::new());
            for round in 0..400 {
                let fds: Vec<OwnedFd> = (0..64)
                    .map(|_| std::fs::File::open(&path).unwrap().into())
                    .collect();
                let c0 = cpu();
                if round % 2 == 0 {
                    drop(fds);
                    sync_cpu.push(cpu() - c0);
                    continue;
                }
                let mut ops: Vec<_> = fds
                    .into_iter()
                    .map(|fd| {
                        let entry = opcode::Close::new(types::Fd(fd.into_raw_fd())).build();
                        // SAFETY: no pointers; the descriptor is the op's
                        // to close.
                        unsafe { Op::submit(d.clone(), entry, ()) }.unwrap()
                    })
                    .collect();
                std::future::poll_fn(|cx| {
                    ops.retain_mut(|op| match Pin::new(op).poll(cx) {
                        Poll::Ready((c, ())) => {
                            c.into_result().unwrap();
                            false
                        }
                        Poll::Pending => true,
                    });
                    if ops.is_empty() {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
                .await;
                ring_cpu.push(cpu() - c0);
            }
            sync_cpu.sort();
            ring_cpu.sort();
            let per_close = |v: &[Duration]| v[v.len() / 2].as_nanos() / 64;
            eprintln!(
                "CPU per close: close(2) {} ns, IORING_OP_CLOSE {} ns",
                per_close(&sync_cpu),
                per_close(&ring_cpu)
            );
        });
    }
}
