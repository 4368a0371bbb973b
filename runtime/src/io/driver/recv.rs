//! Multishot receives: one `IORING_OP_RECV` with `IORING_RECV_MULTISHOT`
//! per stream, armed at its first owned-buffer read, picking buffers from
//! the driver's provided-buffer ring. Every piece of data the kernel
//! receives is copied into the stream's backlog at dispatch and its buffer
//! goes straight back to the ring; reads take from the backlog. So no data
//! is lost when a read is dropped, and a receive costs no submission.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use super::Keep;

/// A stream's receive state, shared by the stream (its reads) and the
/// driver's slot (the completions), under a lock of its own.
#[derive(Clone, Default)]
pub(crate) struct SharedRecv(Arc<Mutex<RecvSlot>>);

impl SharedRecv {
    pub(super) fn lock(&self) -> MutexGuard<'_, RecvSlot> {
        // Only plain data is changed under this lock: it stays consistent
        // even if a holder panicked.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for SharedRecv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedRecv")
    }
}

/// Unread bytes past which the multishot receive is cancelled (the
/// socket's own buffer then holds what comes next, and TCP flow control
/// slows the peer); the next read that empties the backlog arms it again.
pub(super) const BACKLOG_LIMIT: usize = 256 * 1024;

/// Backlog capacity a drained stream keeps for the next data; more is
/// freed.
const KEPT_CAPACITY: usize = 16 * 1024;

/// A stream's receive state in the driver's slab.
#[derive(Default)]
pub(super) struct RecvSlot {
    /// Received bytes; `backlog[read..]` is unread.
    pub(super) backlog: Vec<u8>,
    pub(super) read: usize,
    /// How the stream ended after the backlog: `0` end of stream, or a
    /// negative errno (delivered once).
    pub(super) end: Option<i32>,
    /// Readers waiting for data.
    pub(super) wakers: Vec<Waker>,
    /// The multishot receive is in the kernel.
    pub(super) armed: bool,
    /// Its cancellation was asked for (backlog full or stream dropped).
    pub(super) cancelling: bool,
    /// The stream is gone: the slot goes with the receive's last
    /// completion.
    pub(super) closed: bool,
    /// The descriptor, kept open while the receive is armed.
    pub(super) fd: Option<Keep>,
}

impl RecvSlot {
    pub(super) fn unread(&self) -> usize {
        self.backlog.len() - self.read
    }

    /// Hands up to `room` unread bytes to `sink` (in one piece); the count.
    pub(super) fn take(&mut self, room: usize, sink: &mut dyn FnMut(&[u8])) -> usize {
        let n = self.unread().min(room);
        sink(&self.backlog[self.read..self.read + n]);
        self.read += n;
        if self.read == self.backlog.len() {
            self.read = 0;
            if self.backlog.capacity() > KEPT_CAPACITY {
                // A burst grew it: an idle connection keeps no more than
                // a small buffer.
                self.backlog = Vec::new();
            } else {
                self.backlog.clear();
            }
        } else if self.read >= KEPT_CAPACITY && self.read >= self.unread() {
            // A reader that never quite catches up: drop the consumed
            // front, or the backlog would grow with everything ever
            // received. Moves fewer bytes than were read since the last
            // move.
            self.backlog.drain(..self.read);
            self.read = 0;
        }
        n
    }

    /// Queues `waker` unless an equivalent one waits already.
    pub(super) fn add_waker(&mut self, waker: &Waker) {
        if !self.wakers.iter().any(|w| w.will_wake(waker)) {
            self.wakers.push(waker.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_respects_room_and_order() {
        let mut slot = RecvSlot::default();
        slot.backlog.extend_from_slice(b"hello world");
        let mut buf = Vec::new();
        assert_eq!(slot.take(5, &mut |d| buf.extend_from_slice(d)), 5);
        assert_eq!(buf, b"hello");
        assert_eq!(slot.unread(), 6);
        let mut rest = Vec::new();
        assert_eq!(slot.take(64, &mut |d| rest.extend_from_slice(d)), 6);
        assert_eq!(rest, b" world");
        assert_eq!(slot.unread(), 0);
        assert!(slot.backlog.is_empty());
    }

    #[test]
    fn a_drained_backlog_gives_back_a_burst_s_memory() {
        let mut slot = RecvSlot::default();
        slot.backlog.extend_from_slice(&[7; 1000]);
        slot.take(1000, &mut |_| {});
        assert!(slot.backlog.capacity() >= 1000, "a small buffer is kept");
        slot.backlog.extend_from_slice(&vec![7; 4 * KEPT_CAPACITY]);
        slot.take(1, &mut |_| {});
        assert!(slot.backlog.capacity() > KEPT_CAPACITY, "not drained yet");
        slot.take(usize::MAX, &mut |_| {});
        assert!(slot.backlog.capacity() <= KEPT_CAPACITY);
    }

    #[test]
    fn a_reader_that_never_catches_up_keeps_a_bounded_backlog() {
        // Each round receives 3 KiB and reads 2 KiB of what is there, with
        // the unread part held near BACKLOG_LIMIT (where the receive
        // pauses), for 16 MiB in all: the consumed front must not pile up.
        let mut slot = RecvSlot::default();
        let mut expect = 0u8;
        let mut next = 0u8;
        for _ in 0..(16 << 20) / 3072 {
            if slot.unread() < BACKLOG_LIMIT {
                slot.backlog.extend((0..3072).map(|_| {
                    next = next.wrapping_add(1);
                    next.wrapping_sub(1)
                }));
            }
            slot.take(2048, &mut |d| {
                for &b in d {
                    assert_eq!(b, expect, "bytes reordered");
                    expect = expect.wrapping_add(1);
                }
            });
            assert!(slot.backlog.len() <= 2 * (BACKLOG_LIMIT + 3072) + KEPT_CAPACITY);
        }
    }
}
