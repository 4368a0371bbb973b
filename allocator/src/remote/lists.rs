//! The lock-free lists between a page's owner and the threads that free
//! into it. Written against `super::sync`, so the same source runs in the
//! allocator (std) and in the loom models (see `crate::sync`).
//!
//! - [`ThreadFree`]: a page's remote-free list. Any thread pushes a block;
//!   the owner takes the whole list at once. With it, a "full" flag: the
//!   owner sets it when it moves the page to its full list, and the first
//!   remote free after that tells the owner (through [`ReadyList`]), so a
//!   full page is never scanned and never forgotten.
//! - [`ReadyList`]: a heap's list of full pages that received remote frees.
//!   Any thread pushes a page (once until the owner drains it); the owner
//!   drains the whole list at once.

use super::sync::{fence, next, set_next, AtomicBool, AtomicPtr, Block, Ordering};
use std::ptr;

/// A page's list of blocks freed by threads that do not own it.
pub struct ThreadFree {
    pub(crate) head: AtomicPtr<Block>,
    /// The owner moved the page to its full list (its view, published).
    pub(crate) full: AtomicBool,
}

impl ThreadFree {
    /// Owner only: forgets any blocks and the flag (the page is reused).
    pub fn reset(&self) {
        self.head.store(ptr::null_mut(), Ordering::Relaxed);
        self.full.store(false, Ordering::Relaxed);
    }

    /// Pushes `block`. Returns true when the owner must be told: the page
    /// is marked full and this is the first block since the owner last
    /// took the list.
    ///
    /// # Safety
    /// `block` belongs to the page, is no longer used, and is pushed once.
    #[inline]
    pub unsafe fn push(&self, block: *mut Block) -> bool {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the block is ours to write until the exchange
            // publishes it.
            unsafe { set_next(block, head) };
            match self
                .head
                .compare_exchange_weak(head, block, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
        // Pairs with the fence in `mark_full` (store then load on each
        // side): of the two fences one comes first, so either we see the
        // flag or the owner sees our block. SeqCst accesses instead of
        // fences would be as correct, but loom models only the fences.
        fence(Ordering::SeqCst);
        head.is_null() && self.full.load(Ordering::Relaxed)
    }

    /// Owner only: takes every pushed block, as a list linked through the
    /// blocks (null when there is none).
    #[inline]
    pub fn take(&self) -> *mut Block {
        if self.head.load(Ordering::Relaxed).is_null() {
            return ptr::null_mut();
        }
        // Acquire: the pushers' link writes happen before our reads.
        self.head.swap(ptr::null_mut(), Ordering::Acquire)
    }

    /// Owner only: marks the page full. Returns true when blocks are
    /// already waiting; their pushers may have seen the flag clear and
    /// told nobody, so the owner must not leave the page on its full list.
    pub fn mark_full(&self) -> bool {
        self.full.store(true, Ordering::Relaxed);
        // Pairs with the fence in `push`.
        fence(Ordering::SeqCst);
        !self.head.load(Ordering::Relaxed).is_null()
    }

    /// Owner only: the page left its full list.
    pub fn clear_full(&self) {
        self.full.store(false, Ordering::Relaxed);
    }
}

/// An empty list on a page that is not full. (The allocator's pages are
/// built in const context from the fields instead.)
impl Default for ThreadFree {
    fn default() -> ThreadFree {
        ThreadFree {
            head: AtomicPtr::new(ptr::null_mut()),
            full: AtomicBool::new(false),
        }
    }
}

/// Counts the blocks of a list returned by [`ThreadFree::take`] and finds
/// its last block. Returns `(count, tail)`; `head` must not be null.
///
/// # Safety
/// `head` came from [`ThreadFree::take`] and the caller owns its blocks.
pub unsafe fn walk(head: *mut Block) -> (u32, *mut Block) {
    let mut n = 1;
    let mut tail = head;
    // SAFETY: every block on the list was pushed with its link written
    // before the push, and `take` acquired those writes.
    unsafe {
        loop {
            let following = next(tail);
            if following.is_null() {
                return (n, tail);
            }
            tail = following;
            n += 1;
        }
    }
}

/// The link a page needs to sit on a [`ReadyList`].
pub struct ReadyLink<P> {
    pub(crate) queued: AtomicBool,
    pub(crate) next: AtomicPtr<P>,
}

/// The link of a page on no list.
impl<P> Default for ReadyLink<P> {
    fn default() -> ReadyLink<P> {
        ReadyLink {
            queued: AtomicBool::new(false),
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

/// A page that can sit on a [`ReadyList`].
pub trait ReadyNode: Sized {
    /// The page's link.
    fn ready_link(&self) -> &ReadyLink<Self>;
}

/// A heap's list of full pages that received remote frees.
pub struct ReadyList<P> {
    head: AtomicPtr<P>,
}

impl<P: ReadyNode> ReadyList<P> {
    /// An empty list.
    pub fn new() -> ReadyList<P> {
        ReadyList {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// True when no page waits (a hint; pushes may be under way).
    pub fn is_empty(&self) -> bool {
        self.head.load(Ordering::Relaxed).is_null()
    }

    /// Pushes `page` unless it is already on the list. Returns true when
    /// this call pushed it.
    ///
    /// # Safety
    /// `page` is live until the owner drains it.
    pub unsafe fn push(&self, page: *mut P) -> bool {
        // SAFETY: the caller keeps the page live.
        let link = unsafe { (*page).ready_link() };
        // AcqRel: a page drained and pushed again is seen with its link
        // cleared by the drain.
        if link.queued.swap(true, Ordering::AcqRel) {
            return false;
        }
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            link.next.store(head, Ordering::Relaxed);
            match self
                .head
                .compare_exchange_weak(head, page, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(h) => head = h,
            }
        }
    }

    /// Owner only: takes every page; the returned iterator yields them
    /// (most recently pushed first), each free to be pushed again once
    /// yielded.
    ///
    /// # Safety
    /// Pages on the list stay live until the iterator yielded them.
    pub unsafe fn take(&self) -> Drain<P> {
        let page = if self.is_empty() {
            ptr::null_mut()
        } else {
            // Acquire: each pusher's link write happens before our read.
            self.head.swap(ptr::null_mut(), Ordering::Acquire)
        };
        Drain { page }
    }
}

/// The pages taken by [`ReadyList::take`].
pub struct Drain<P> {
    page: *mut P,
}

impl<P: ReadyNode> Iterator for Drain<P> {
    type Item = *mut P;

    fn next(&mut self) -> Option<*mut P> {
        let page = self.page;
        if page.is_null() {
            return None;
        }
        // SAFETY: pages on the list are live (`ReadyList::take`'s contract).
        let link = unsafe { (*page).ready_link() };
        // Read the link before clearing `queued`: after that a freeing
        // thread may push the page again and rewrite it.
        self.page = link.next.load(Ordering::Relaxed);
        link.queued.store(false, Ordering::Release);
        Some(page)
    }
}

impl<P: ReadyNode> Default for ReadyList<P> {
    fn default() -> ReadyList<P> {
        ReadyList::new()
    }
}
