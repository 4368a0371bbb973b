//! File operations as io_uring operations (`IORING_OP_OPENAT`, `READ`,
//! `WRITE`, `FSYNC`).
//!
//! Each operation owns what the kernel touches (the path, the buffer, the
//! descriptor) inside an [`Op`]; dropping the future mid-flight leaves them
//! with the driver until the completion arrives.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use io_uring::{opcode, types};

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

/// A length the kernel's 32-bit `len` field can hold.
fn clamp(len: usize) -> u32 {
    len.min(i32::MAX as usize) as u32
}
