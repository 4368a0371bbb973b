//! A worker's local run queue: a fixed ring that only its worker pushes to
//! and pops from, and that other workers steal half of.
//!
//! `head` packs two indices: `real`, the next slot to pop, and `steal`, the
//! first slot a stealer is still copying out. They differ only while a steal
//! is in progress, which keeps the owner from overwriting slots a stealer is
//! reading and keeps a second stealer out. `tail` is written only by the
//! owner. Indices are free-running `u32`s, taken modulo the capacity.

use std::mem::MaybeUninit;
use std::ptr;

use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use crate::loom::sync::atomic::{AtomicU32, AtomicU64};
use crate::loom::sync::Arc;

use crate::task::Notified;

/// Slots in each local queue (tokio's size).
#[cfg(not(loom))]
pub(crate) const LOCAL_QUEUE_CAPACITY: usize = 256;
/// Under loom: small enough that the models reach overflow in a few pushes.
#[cfg(loom)]
pub(crate) const LOCAL_QUEUE_CAPACITY: usize = 4;
const MASK: u32 = LOCAL_QUEUE_CAPACITY as u32 - 1;

struct Inner {
    head: AtomicU64,
    tail: AtomicU32,
    buffer: Box<[UnsafeCell<MaybeUninit<Notified>>]>,
}

// SAFETY: slots are handed between threads by the head/tail protocol: a
// slot is written only by the owner while it is outside [head, tail), and
// read only by the one thread that claimed it by moving `head`.
unsafe impl Send for Inner {}
// SAFETY: as above.
unsafe impl Sync for Inner {}

/// The owner's side of a queue.
pub(crate) struct Local {
    inner: Arc<Inner>,
}

/// The stealers' side of a queue.
#[derive(Clone)]
pub(crate) struct Steal {
    inner: Arc<Inner>,
}

/// Where tasks go when a local queue is full.
pub(crate) trait Overflow {
    /// Takes a batch of tasks the local queue gave up.
    fn push_batch(&self, tasks: &mut dyn Iterator<Item = Notified>);
}

fn pack(steal: u32, real: u32) -> u64 {
    (u64::from(steal) << 32) | u64::from(real)
}

fn unpack(head: u64) -> (u32, u32) {
    ((head >> 32) as u32, head as u32)
}

/// A new queue's two halves.
pub(crate) fn local() -> (Local, Steal) {
    let buffer = (0..LOCAL_QUEUE_CAPACITY)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let inner = Arc::new(Inner {
        head: AtomicU64::new(0),
        tail: AtomicU32::new(0),
        buffer,
    });
    (
        Local {
            inner: inner.clone(),
        },
        Steal { inner },
    )
}

impl Inner {
    fn len(&self) -> usize {
        let (_, real) = unpack(self.head.load(Acquire));
        let tail = self.tail.load(Acquire);
        tail.wrapping_sub(real) as usize
    }

    /// # Safety
    /// The caller has claimed slot `index` (it lies in a range it moved
    /// `head` past and `steal` still protects).
    unsafe fn read(&self, index: u32) -> Notified {
        let slot = &self.buffer[(index & MASK) as usize];
        // SAFETY: the caller's claim; the slot was initialized by `push`.
        unsafe { ptr::read(slot.get()).assume_init() }
    }

    /// Claims up to half the queued tasks (at most `max`) for a stealer.
    /// Returns `(first, count)`; the caller must read them and then call
    /// `finish_steal(first + count)`.
    fn claim_half(&self, max: u32) -> Option<(u32, u32)> {
        let mut prev = self.head.load(Acquire);
        loop {
            let (steal, real) = unpack(prev);
            if steal != real {
                // Another stealer is copying tasks out.
                return None;
            }
            let tail = self.tail.load(Acquire);
            let available = tail.wrapping_sub(real);
            let n = (available - available / 2).min(max);
            if n == 0 {
                return None;
            }
            let next = pack(steal, real.wrapping_add(n));
            match self.head.compare_exchange(prev, next, AcqRel, Acquire) {
                Ok(_) => return Some((real, n)),
                Err(actual) => prev = actual,
            }
        }
    }

    /// Releases the claimed slots to the owner again.
    fn finish_steal(&self, end: u32) {
        let mut prev = self.head.load(Acquire);
        loop {
            let (_, real) = unpack(prev);
            debug_assert!(real.wrapping_sub(end) <= LOCAL_QUEUE_CAPACITY as u32);
            let next = pack(real, real);
            match self.head.compare_exchange(prev, next, AcqRel, Acquire) {
                Ok(_) => return,
                Err(actual) => prev = actual,
            }
        }
    }
}

impl Local {
    /// Number of queued tasks.
    pub(crate) fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether tasks are queued.
    pub(crate) fn has_tasks(&self) -> bool {
        self.len() != 0
    }

    /// Room left before the queue overflows.
    pub(crate) fn remaining(&self) -> usize {
        let (steal, _) = unpack(self.inner.head.load(Acquire));
        let tail = self.inner.tail.load(Relaxed);
        LOCAL_QUEUE_CAPACITY - tail.wrapping_sub(steal) as usize
    }

    /// Pushes to the back; when full, moves half of the queue and `task`
    /// to `overflow`.
    pub(crate) fn push_back(&mut self, mut task: Notified, overflow: &dyn Overflow) {
        loop {
            let head = self.inner.head.load(Acquire);
            let (steal, real) = unpack(head);
            // Only this thread writes `tail`.
            let tail = self.inner.tail.load(Relaxed);
            if tail.wrapping_sub(steal) < LOCAL_QUEUE_CAPACITY as u32 {
                let slot = &self.inner.buffer[(tail & MASK) as usize];
                // SAFETY: the slot is outside [steal, tail): nobody reads it.
                unsafe { slot.get().write(MaybeUninit::new(task)) };
                self.inner.tail.store(tail.wrapping_add(1), Release);
                return;
            }
            if steal != real {
                // A stealer is freeing slots; don't wait for it.
                overflow.push_batch(&mut std::iter::once(task));
                return;
            }
            match self.push_overflow(task, real, tail, overflow) {
                Ok(()) => return,
                // A stealer took tasks meanwhile: there is room now.
                Err(t) => task = t,
            }
        }
    }

    fn push_overflow(
        &mut self,
        task: Notified,
        head: u32,
        tail: u32,
        overflow: &dyn Overflow,
    ) -> Result<(), Notified> {
        let n = (LOCAL_QUEUE_CAPACITY / 2) as u32;
        debug_assert_eq!(tail.wrapping_sub(head), LOCAL_QUEUE_CAPACITY as u32);
        let prev = pack(head, head);
        let next_head = head.wrapping_add(n);
        if self
            .inner
            .head
            .compare_exchange(prev, pack(next_head, next_head), Release, Relaxed)
            .is_err()
        {
            return Err(task);
        }
        let inner = &self.inner;
        let mut batch = (0..n)
            // SAFETY: moving `head` past these slots claimed them for us.
            .map(|i| unsafe { inner.read(head.wrapping_add(i)) })
            .chain(std::iter::once(task));
        overflow.push_batch(&mut batch);
        Ok(())
    }

    /// Pops from the front.
    pub(crate) fn pop(&mut self) -> Option<Notified> {
        let mut prev = self.inner.head.load(Acquire);
        let index = loop {
            let (steal, real) = unpack(prev);
            let tail = self.inner.tail.load(Relaxed);
            if real == tail {
                return None;
            }
            let next_real = real.wrapping_add(1);
            let next = if steal == real {
                pack(next_real, next_real)
            } else {
                pack(steal, next_real)
            };
            match self
                .inner
                .head
                .compare_exchange(prev, next, AcqRel, Acquire)
            {
                Ok(_) => break real,
                Err(actual) => prev = actual,
            }
        };
        // SAFETY: moving `real` past `index` claimed it.
        Some(unsafe { self.inner.read(index) })
    }
}

impl Steal {
    /// Number of queued tasks.
    pub(crate) fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the queue looks empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves half of this queue into `dst` (which must be the caller's own
    /// queue) and returns one of the stolen tasks to run at once.
    pub(crate) fn steal_into(&self, dst: &mut Local) -> Option<Notified> {
        if Arc::ptr_eq(&self.inner, &dst.inner) {
            return None;
        }
        let room = dst.remaining() as u32;
        if room < (LOCAL_QUEUE_CAPACITY / 2) as u32 {
            // The caller still has plenty of its own work.
            return None;
        }
        let (first, n) = self.inner.claim_half(room)?;
        let dst_tail = dst.inner.tail.load(Relaxed);
        // The last stolen task is returned rather than queued.
        for i in 0..n - 1 {
            // SAFETY: claimed by `claim_half`.
            let task = unsafe { self.inner.read(first.wrapping_add(i)) };
            let slot = &dst.inner.buffer[(dst_tail.wrapping_add(i) & MASK) as usize];
            // SAFETY: `dst` had `room` free slots after its tail, and only
            // its owner (the caller) writes there.
            unsafe { slot.get().write(MaybeUninit::new(task)) };
        }
        // SAFETY: claimed by `claim_half`.
        let last = unsafe { self.inner.read(first.wrapping_add(n - 1)) };
        self.inner.finish_steal(first.wrapping_add(n));
        if n > 1 {
            dst.inner.tail.store(dst_tail.wrapping_add(n - 1), Release);
        }
        Some(last)
    }

    /// Takes up to `max` tasks (at most half the queue) and hands each to
    /// `f`. Used for stealing across nodes, where each task's policy is
    /// checked before it is run.
    pub(crate) fn steal_batch(&self, max: usize, mut f: impl FnMut(Notified)) -> usize {
        const MAX_BATCH: usize = 32;
        let max = max.clamp(1, MAX_BATCH) as u32;
        let Some((first, n)) = self.inner.claim_half(max) else {
            return 0;
        };
        let mut taken: [MaybeUninit<Notified>; MAX_BATCH] =
            [const { MaybeUninit::uninit() }; MAX_BATCH];
        for (i, slot) in taken.iter_mut().enumerate().take(n as usize) {
            // SAFETY: claimed by `claim_half`.
            slot.write(unsafe { self.inner.read(first.wrapping_add(i as u32)) });
        }
        self.inner.finish_steal(first.wrapping_add(n));
        for slot in taken.iter().take(n as usize) {
            // SAFETY: the first `n` entries were written just above and are
            // each read once.
            f(unsafe { slot.assume_init_read() });
        }
        n as usize
    }

    /// Takes every task out (used at shutdown, when the owner is gone or
    /// stuck); safe against a concurrent owner.
    pub(crate) fn drain(&self, mut f: impl FnMut(Notified)) {
        while self.steal_batch(usize::MAX, &mut f) > 0 {}
        // `steal_batch` takes half (rounded up): the loop ends when empty.
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // Tasks left here still hold references: drop them.
        while self.pop().is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::tests_support::{noop_notified, Count};
    use std::sync::Mutex;

    struct VecOverflow(Mutex<Vec<Notified>>);
    impl Overflow for VecOverflow {
        fn push_batch(&self, tasks: &mut dyn Iterator<Item = Notified>) {
            self.0.lock().unwrap().extend(tasks);
        }
    }

    #[test]
    fn push_pop_fifo_and_overflow() {
        let count = Count::new();
        let (mut local, _steal) = local();
        let overflow = VecOverflow(Mutex::new(Vec::new()));
        for _ in 0..LOCAL_QUEUE_CAPACITY + 1 {
            local.push_back(noop_notified(&count), &overflow);
        }
        assert_eq!(
            overflow.0.lock().unwrap().len(),
            LOCAL_QUEUE_CAPACITY / 2 + 1
        );
        assert_eq!(local.len(), LOCAL_QUEUE_CAPACITY / 2);
        let mut popped = 0;
        while local.pop().is_some() {
            popped += 1;
        }
        assert_eq!(popped, LOCAL_QUEUE_CAPACITY / 2);
        drop(overflow);
        drop(local);
        assert_eq!(count.dropped(), LOCAL_QUEUE_CAPACITY + 1);
    }

    #[test]
    fn steal_half() {
        let count = Count::new();
        let (mut a, a_steal) = local();
        let (mut b, _b_steal) = local();
        let overflow = VecOverflow(Mutex::new(Vec::new()));
        for _ in 0..10 {
            a.push_back(noop_notified(&count), &overflow);
        }
        let first = a_steal.steal_into(&mut b);
        assert!(first.is_some());
        assert_eq!(b.len(), 4);
        assert_eq!(a.len(), 5);
        let mut n = 0;
        a_steal.steal_batch(2, |_| n += 1);
        assert_eq!(n, 2);
        a_steal.drain(|_| n += 1);
        assert_eq!(n, 5);
        assert_eq!(a.len(), 0);
    }

    #[test]
    fn concurrent_steal_loses_nothing() {
        let count = Count::new();
        let (mut owner, steal) = local();
        let overflow = Arc::new(VecOverflow(Mutex::new(Vec::new())));
        let stolen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let steal = steal.clone();
                let stolen = stolen.clone();
                std::thread::spawn(move || {
                    let (mut mine, _) = local();
                    for _ in 0..20_000 {
                        if let Some(t) = steal.steal_into(&mut mine) {
                            drop(t);
                            stolen.fetch_add(1, Relaxed);
                        }
                        while mine.pop().is_some() {
                            stolen.fetch_add(1, Relaxed);
                        }
                    }
                })
            })
            .collect();
        let mut popped = 0;
        let total = 50_000;
        for i in 0..total {
            owner.push_back(noop_notified(&count), &*overflow);
            if i % 3 == 0 && owner.pop().is_some() {
                popped += 1;
            }
        }
        for t in thieves {
            t.join().unwrap();
        }
        while owner.pop().is_some() {
            popped += 1;
        }
        let overflowed = overflow.0.lock().unwrap().len();
        assert_eq!(popped + overflowed + stolen.load(Relaxed), total);
    }
}
