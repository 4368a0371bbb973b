//! A provided-buffer ring (`IORING_REGISTER_PBUF_RING`) for the runtime-free
//! io_uring loops (`bare_uring_echo`, the `bare_uring` contender of
//! `benches/io.rs`): `BUFS` buffers of `BUF_SIZE` bytes the kernel picks
//! from for multishot receives, given back one by one.

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::{types, IoUring};

/// The buffer group receives name.
pub const GROUP: u16 = 0;
/// Buffers in the ring (a power of two).
pub const BUFS: u16 = 1024;
/// Bytes per buffer.
pub const BUF_SIZE: usize = 4096;

/// The buffers and the ring of entries that hands them to the kernel. Both
/// allocations are leaked, never freed: the kernel may write into a buffer
/// until the io_uring is gone, whatever order the caller drops things in.
/// (Reading a buffer after its completion is sound because the rings are
/// set up with `DEFER_TASKRUN`: the kernel copies only inside
/// `io_uring_enter`, never while this thread reads.)
pub struct Buffers {
    entries: *mut types::BufRingEntry,
    memory: *mut u8,
    tail: u16,
}

impl Buffers {
    /// Allocates the buffers, publishes all of them and registers the ring
    /// as group `GROUP` of `ring`.
    pub fn register(ring: &IoUring) -> io::Result<Buffers> {
        let layout = std::alloc::Layout::from_size_align(
            usize::from(BUFS) * std::mem::size_of::<types::BufRingEntry>(),
            4096,
        )
        .map_err(io::Error::other)?;
        // SAFETY: a non-zero-sized layout; the allocation is never freed.
        let entries = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<types::BufRingEntry>();
        if entries.is_null() {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        let memory = Box::leak(vec![0u8; usize::from(BUFS) * BUF_SIZE].into_boxed_slice());
        let mut bufs = Buffers {
            entries,
            memory: memory.as_mut_ptr(),
            tail: 0,
        };
        for bid in 0..BUFS {
            bufs.put(bid);
        }
        // SAFETY: the entries and the buffers they point at are never freed.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(entries as u64, BUFS, GROUP, 0)?;
        }
        Ok(bufs)
    }

    /// Where buffer `bid` starts.
    pub fn addr(&self, bid: u16) -> *mut u8 {
        // SAFETY: `bid % BUFS` buffers of `BUF_SIZE` lie inside `memory`.
        unsafe { self.memory.add(usize::from(bid % BUFS) * BUF_SIZE) }
    }

    /// The first `len` bytes of buffer `bid`, which a receive filled (its
    /// completion was reaped and the buffer is not yet given back).
    pub fn data(&self, bid: u16, len: usize) -> &[u8] {
        // SAFETY: inside the buffer; the kernel does not write it until
        // `put` gives it back (and not outside `io_uring_enter`, above).
        unsafe { std::slice::from_raw_parts(self.addr(bid), len.min(BUF_SIZE)) }
    }

    /// Gives buffer `bid` back to the kernel.
    pub fn put(&mut self, bid: u16) {
        let addr = self.addr(bid) as u64;
        // SAFETY: the index is below `BUFS`; the kernel reads entries only
        // up to the published tail.
        let entry = unsafe { &mut *self.entries.add(usize::from(self.tail & (BUFS - 1))) };
        entry.set_addr(addr);
        entry.set_len(BUF_SIZE as u32);
        entry.set_bid(bid % BUFS);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the ring's tail is an aligned u16 the kernel reads
        // atomically; the release store publishes the entry above.
        let tail = unsafe { &*(types::BufRingEntry::tail(self.entries) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }
}

/// Sends all of `data` on the blocking socket `fd` by system calls.
pub fn send_all(fd: std::os::fd::RawFd, data: &[u8]) -> io::Result<()> {
    let mut done = 0;
    while done < data.len() {
        let rest = &data[done..];
        // SAFETY: sends from a live slice.
        let n = unsafe { libc::send(fd, rest.as_ptr().cast(), rest.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        done += n as usize;
    }
    Ok(())
}
