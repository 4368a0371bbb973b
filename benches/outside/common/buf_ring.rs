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

pub struct Buffers {
    /// `BUFS` ring entries shared with the kernel; never freed (the ring
    /// may use them until the process ends).
    entries: *mut types::BufRingEntry,
    memory: Vec<u8>,
    tail: u16,
}

// SAFETY: the entries and buffers belong to this value alone; the kernel's
// access is ordered by the tail's release store.
unsafe impl Send for Buffers {}

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
        let mut bufs = Buffers {
            entries,
            memory: vec![0; usize::from(BUFS) * BUF_SIZE],
            tail: 0,
        };
        for bid in 0..BUFS {
            bufs.put(bid);
        }
        // SAFETY: `entries` holds `BUFS` entries and is never freed; the
        // buffers live as long as `bufs`, which outlives the loop using
        // the ring.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(entries as u64, BUFS, GROUP, 0)?;
        }
        Ok(bufs)
    }

    /// Where buffer `bid` starts.
    pub fn addr(&self, bid: u16) -> *const u8 {
        self.memory[usize::from(bid) * BUF_SIZE..].as_ptr()
    }

    /// The first `len` bytes of buffer `bid`, which a receive filled.
    pub fn data(&self, bid: u16, len: usize) -> &[u8] {
        &self.memory[usize::from(bid) * BUF_SIZE..][..len.min(BUF_SIZE)]
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
