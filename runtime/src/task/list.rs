//! The list of a scheduler's live tasks, so shutdown can cancel every one.
//!
//! An intrusive doubly linked list through each task header, split into
//! shards (by task id) each behind its own mutex, so spawning threads rarely
//! meet on the same lock.

use std::ptr::NonNull;

use super::raw::{Header, RawTask, Task};
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::{Mutex, MutexGuard};

/// The list pointers inside a task header; guarded by the shard lock.
pub(crate) struct Links {
    inner: UnsafeCell<LinkPtrs>,
}

#[derive(Clone, Copy)]
struct LinkPtrs {
    prev: Option<NonNull<Header>>,
    next: Option<NonNull<Header>>,
    linked: bool,
}

impl Links {
    pub(crate) fn new() -> Links {
        Links {
            inner: UnsafeCell::new(LinkPtrs {
                prev: None,
                next: None,
                linked: false,
            }),
        }
    }
}

struct Shard {
    head: Option<NonNull<Header>>,
    closed: bool,
    /// Tasks in this shard (kept per shard so spawning threads do not
    /// share one counter's cache line).
    len: usize,
}

// SAFETY: the raw pointers are only followed while holding the shard's
// mutex, and every task in the list is kept alive by the list's reference.
unsafe impl Send for Shard {}

pub(crate) struct OwnedTasks {
    shards: Box<[Mutex<Shard>]>,
    mask: usize,
}

/// Accessing a header's links.
///
/// # Safety
/// The caller holds the lock of the shard the task belongs to.
unsafe fn links(task: NonNull<Header>) -> *mut LinkPtrs {
    // SAFETY: the header is live (the list holds a reference).
    unsafe { task.as_ref().links.inner.get() }
}

impl OwnedTasks {
    /// A list with about `shards` shards (rounded up to a power of two).
    pub(crate) fn new(shards: usize) -> OwnedTasks {
        let n = shards.clamp(1, 1 << 12).next_power_of_two();
        OwnedTasks {
            shards: (0..n)
                .map(|_| {
                    Mutex::new(Shard {
                        head: None,
                        closed: false,
                        len: 0,
                    })
                })
                .collect(),
            mask: n - 1,
        }
    }

    fn shard(&self, task: RawTask) -> MutexGuard<'_, Shard> {
        let i = task.id().as_u64() as usize & self.mask;
        // A panic while holding the lock cannot leave the list half-edited
        // (only pointer writes happen under it), so poisoning is ignored.
        self.shards[i]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a task, taking over the reference `task` holds. When the list
    /// is closed the task is handed back, so the caller can shut it down.
    pub(crate) fn bind(&self, task: Task) -> Result<(), Task> {
        let mut shard = self.shard(task.raw());
        if shard.closed {
            return Err(task);
        }
        let ptr = task.into_raw().header_ptr();
        // SAFETY: we hold this shard's lock, which guards all links in it.
        unsafe {
            let l = &mut *links(ptr);
            l.prev = None;
            l.next = shard.head;
            l.linked = true;
            if let Some(head) = shard.head {
                (*links(head)).prev = Some(ptr);
            }
        }
        shard.head = Some(ptr);
        shard.len += 1;
        Ok(())
    }

    /// Unlinks a task. Returns `true` when it was in the list; the list's
    /// reference then belongs to the caller.
    pub(crate) fn remove(&self, task: RawTask) -> bool {
        let mut shard = self.shard(task);
        // SAFETY: we hold the lock of the task's shard.
        unsafe { unlink(&mut shard, task.header_ptr()) }
    }

    /// Number of tasks in the list.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .len
            })
            .sum()
    }

    /// Refuses new tasks and shuts down every task in the list.
    pub(crate) fn close_and_shutdown_all(&self) {
        for i in 0..self.shards.len() {
            loop {
                let task = {
                    let mut shard = self.shards[i]
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    shard.closed = true;
                    let Some(ptr) = shard.head else { break };
                    // SAFETY: the task heads this shard, whose lock is held.
                    unsafe { unlink(&mut shard, ptr) };
                    // SAFETY: unlinking gave us the list's reference.
                    unsafe { Task::from_raw(RawTask::from_raw(ptr)) }
                };
                // Shut it down outside the lock: dropping a future may wake
                // or complete other tasks of this list.
                task.shutdown();
            }
        }
    }
}

/// Unlinks `ptr` if it is linked; `true` when it was.
///
/// # Safety
/// The caller holds the lock of the shard `ptr` belongs to.
unsafe fn unlink(shard: &mut Shard, ptr: NonNull<Header>) -> bool {
    // SAFETY: the shard's lock is held (caller's promise).
    unsafe {
        let l = *links(ptr);
        if !l.linked {
            return false;
        }
        match l.prev {
            Some(prev) => (*links(prev)).next = l.next,
            None => shard.head = l.next,
        }
        if let Some(next) = l.next {
            (*links(next)).prev = l.prev;
        }
        *links(ptr) = LinkPtrs {
            prev: None,
            next: None,
            linked: false,
        };
    }
    shard.len -= 1;
    true
}

impl Drop for OwnedTasks {
    fn drop(&mut self) {
        // Normally empty: the runtime shuts the list down first.
        self.close_and_shutdown_all();
    }
}
