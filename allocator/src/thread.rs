//! Which heap serves the calling thread.
//!
//! Each thread keeps its heaps (one per node it allocated on) and the node
//! it runs on in a thread-local. The node comes from `getcpu`, refreshed
//! every [`REFRESH_EVERY`] allocations, unless the runtime pinned it with
//! [`set_thread_node`]. Either way the node is looked at again every
//! [`REFRESH_EVERY`] allocations, so a node given a fallback
//! ([`set_node_fallback`](crate::set_node_fallback)) stops receiving new
//! memory soon after. Nothing here allocates through the global
//! allocator: heaps are mapped directly.
//!
//! When the thread-local is gone (during thread exit), busy (a reentrant
//! call while a heap is being set up) or full (a thread using more nodes
//! than it has slots), a lock-protected shared heap per node serves
//! instead; its blocks are freed through the remote path, so they need no
//! lock to free.

use crate::heap::Heap;
use crate::os::{self, OsError};
use crate::placement;
use crate::NodeId;
use std::cell::Cell;
use std::ptr;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// `thread_id` of shared heaps: never equal to a thread's id.
pub(crate) const SHARED_ID: usize = 1;
/// Allocations between two `getcpu` checks of an unpinned thread.
const REFRESH_EVERY: u32 = 4096;
/// Nodes one thread keeps its own heap for.
const SLOTS: usize = 8;

thread_local! {
    /// The fast path's state. No destructor, so it is always accessible
    /// (even while the thread exits) and its address identifies the thread.
    static FAST: Fast = const { Fast::new() };
    static HEAPS: ThreadHeaps = const { ThreadHeaps::new() };
}

/// The calling thread's id: the address of a thread-local, unique among
/// live threads, never 0 or [`SHARED_ID`].
#[inline(always)]
pub(crate) fn id() -> usize {
    FAST.with(|f| f as *const Fast as usize)
}

/// What the allocation fast path reads: the heap of the thread's node and
/// how many allocations remain before the node is checked again.
struct Fast {
    local: Cell<*mut Heap>,
    countdown: Cell<u32>,
    /// The node allocations go to (valid while `node_known`): the thread's
    /// node, or that node's fallback while it has one.
    node: Cell<NodeId>,
    node_known: Cell<bool>,
    pinned: Cell<bool>,
    /// The node set by [`set_thread_node`] (valid while `pinned`).
    pinned_node: Cell<NodeId>,
}

impl Fast {
    const fn new() -> Fast {
        Fast {
            local: Cell::new(ptr::null_mut()),
            countdown: Cell::new(0),
            node: Cell::new(NodeId::new(0)),
            node_known: Cell::new(false),
            pinned: Cell::new(false),
            pinned_node: Cell::new(NodeId::new(0)),
        }
    }

    /// The thread's node: cached, or pinned or asked from `getcpu`, then
    /// replaced by its fallback if it has one
    /// ([`set_node_fallback`](crate::set_node_fallback)) and cached for the
    /// next [`REFRESH_EVERY`] allocations.
    fn node(&self) -> NodeId {
        if self.node_known.get() && self.countdown.get() != 0 {
            return self.node.get();
        }
        let own = if self.pinned.get() {
            self.pinned_node.get()
        } else {
            os::system()
                .current_cpu()
                .map_or(NodeId::new(0), |(_, node)| node)
        };
        let node = placement::node_fallback(own).unwrap_or(own);
        if self.node_known.get() && node != self.node.get() {
            // The thread moved: the next allocation finds the new heap.
            self.local.set(ptr::null_mut());
        }
        self.node.set(node);
        self.node_known.set(true);
        self.countdown.set(REFRESH_EVERY);
        node
    }
}

/// The heaps a thread owns, one per node it allocated on; abandoned when
/// the thread exits.
struct ThreadHeaps {
    slots: [Cell<*mut Heap>; SLOTS],
    busy: Cell<bool>,
}

impl ThreadHeaps {
    const fn new() -> ThreadHeaps {
        ThreadHeaps {
            slots: [const { Cell::new(ptr::null_mut()) }; SLOTS],
            busy: Cell::new(false),
        }
    }

    /// The heap for `node`, `Ok(None)` when the shared heap must serve.
    fn find_or_acquire(&self, node: NodeId) -> Result<Option<*mut Heap>, OsError> {
        let mut free_slot = None;
        for (i, slot) in self.slots.iter().enumerate() {
            let h = slot.get();
            if h.is_null() {
                free_slot.get_or_insert(i);
            // SAFETY: heaps are never freed.
            } else if unsafe { (*h).node } == node {
                return Ok(Some(h));
            }
        }
        let Some(i) = free_slot else {
            return Ok(None);
        };
        if self.busy.replace(true) {
            return Ok(None);
        }
        let tid = id();
        let heap = match adopt(node, tid) {
            Some(h) => Ok(h),
            None => Heap::create(os::system(), node, tid).map(|h| h.as_ptr()),
        };
        self.busy.set(false);
        let heap = heap?;
        self.slots[i].set(heap);
        Ok(Some(heap))
    }
}

impl Drop for ThreadHeaps {
    fn drop(&mut self) {
        let _ = FAST.try_with(|f| f.local.set(ptr::null_mut()));
        for slot in &self.slots {
            let h = slot.replace(ptr::null_mut());
            if !h.is_null() {
                abandon(h);
            }
        }
    }
}

/// An intrusive list of heaps through `Heap::abandoned_next`.
struct HeapList(*mut Heap);
// SAFETY: the list is only touched under its mutex; heaps live forever.
unsafe impl Send for HeapList {}

static ABANDONED: Mutex<HeapList> = Mutex::new(HeapList(ptr::null_mut()));
static SHARED: Mutex<HeapList> = Mutex::new(HeapList(ptr::null_mut()));

fn abandon(h: *mut Heap) {
    // SAFETY: the exiting thread owns `h`; after the store below it never
    // touches it again, and the list is guarded by its mutex.
    unsafe {
        (*h).maintain(true);
        (*h).thread_id.store(0, Ordering::Release);
        let mut list = ABANDONED.lock().unwrap_or_else(|e| e.into_inner());
        (*h).abandoned_next = list.0;
        list.0 = h;
    }
}

fn adopt(node: NodeId, tid: usize) -> Option<*mut Heap> {
    let mut list = ABANDONED.lock().unwrap_or_else(|e| e.into_inner());
    let mut link: *mut *mut Heap = &mut list.0;
    // SAFETY: list members are live heaps owned by nobody; we hold the lock.
    unsafe {
        while !(*link).is_null() {
            let h = *link;
            if (*h).node == node {
                *link = (*h).abandoned_next;
                (*h).abandoned_next = ptr::null_mut();
                (*h).thread_id.store(tid, Ordering::Release);
                return Some(h);
            }
            link = ptr::addr_of_mut!((*h).abandoned_next);
        }
    }
    None
}

/// The allocation fast path: a free block of `class` from the current
/// page of the calling thread's heap for its node, or null when the slow
/// path must run (no heap yet, node check due, or the page is empty).
#[inline(always)]
pub(crate) fn pop_local(class: usize) -> *mut u8 {
    FAST.with(|fast| {
        let h = fast.local.get();
        let n = fast.countdown.get();
        if n == 0 || h.is_null() {
            return ptr::null_mut();
        }
        fast.countdown.set(n - 1);
        // SAFETY: the heap is owned by this thread and never freed.
        unsafe { (*h).pop(class) }
    })
}

/// Runs `f` on the calling thread's heap for `node` (`None`: the thread's
/// current node), or on the node's shared heap under its lock.
#[inline(always)]
pub(crate) fn with_heap<R>(
    node: Option<NodeId>,
    f: impl FnOnce(&mut Heap) -> R,
) -> Result<R, OsError> {
    let local = FAST.with(|fast| {
        let h = fast.local.get();
        if h.is_null() {
            return h;
        }
        match node {
            None => {
                let n = fast.countdown.get();
                if n == 0 {
                    return ptr::null_mut();
                }
                fast.countdown.set(n - 1);
                h
            }
            // SAFETY: heaps are never freed.
            Some(node) if unsafe { (*h).node } == node => h,
            Some(_) => ptr::null_mut(),
        }
    });
    if !local.is_null() {
        // SAFETY: the heap is owned by this thread and never freed; `f`
        // runs before anything else on this thread can touch it.
        return Ok(f(unsafe { &mut *local }));
    }
    with_heap_slow(node, f)
}

#[cold]
fn with_heap_slow<R>(node: Option<NodeId>, f: impl FnOnce(&mut Heap) -> R) -> Result<R, OsError> {
    let own = HEAPS.try_with(|t| {
        if t.busy.get() {
            return Ok(None);
        }
        FAST.with(|fast| match node {
            Some(node) => {
                let local = fast.local.get();
                // SAFETY: heaps are never freed.
                if !local.is_null() && unsafe { (*local).node } == node {
                    return Ok(Some(local));
                }
                t.find_or_acquire(node)
            }
            None => {
                // Countdown ran out or no heap yet: check the node again.
                fast.countdown.set(0);
                let node = fast.node();
                let heap = t.find_or_acquire(node)?;
                fast.local.set(heap.unwrap_or(ptr::null_mut()));
                Ok(heap)
            }
        })
    });
    match own {
        // SAFETY: as in `with_heap`.
        Ok(Ok(Some(h))) => Ok(f(unsafe { &mut *h })),
        Ok(Err(e)) => Err(e),
        _ => with_shared(node.unwrap_or_else(current_node), f),
    }
}

#[cold]
fn with_shared<R>(node: NodeId, f: impl FnOnce(&mut Heap) -> R) -> Result<R, OsError> {
    let mut list = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    let mut h = list.0;
    // SAFETY: shared heaps are live forever and used only under the lock.
    unsafe {
        while !h.is_null() && (*h).node != node {
            h = (*h).abandoned_next;
        }
        if h.is_null() {
            h = Heap::create(os::system(), node, SHARED_ID)?.as_ptr();
            (*h).abandoned_next = list.0;
            list.0 = h;
        }
        Ok(f(&mut *h))
    }
}

/// The node the calling thread allocates on.
pub(crate) fn current_node() -> NodeId {
    FAST.with(Fast::node)
}

/// Makes the calling thread allocate from `node` (the runtime calls this
/// on workers pinned to a node, or on an emulated node), or with `None`,
/// from the node of whatever CPU it runs on again.
pub fn set_thread_node(node: Option<NodeId>) {
    FAST.with(|f| {
        f.pinned.set(node.is_some());
        f.node_known.set(false);
        if let Some(node) = node {
            f.pinned_node.set(node);
        }
        f.local.set(ptr::null_mut());
        f.countdown.set(0);
    });
}

/// Gives free memory back to the kernel now, for the calling thread's
/// heaps and for the heaps of exited threads: blocks other threads freed
/// are collected, empty pages purged (`MADV_DONTNEED`), and segments that
/// have been empty for a short while (250 ms) unmapped, instead of waiting
/// for the next periodic pass.
pub fn trim() {
    let _ = HEAPS.try_with(|t| {
        for slot in &t.slots {
            let h = slot.get();
            if !h.is_null() {
                // SAFETY: the heap is this thread's.
                unsafe { (*h).maintain(true) };
            }
        }
    });
    let list = ABANDONED.lock().unwrap_or_else(|e| e.into_inner());
    let mut h = list.0;
    while !h.is_null() {
        // SAFETY: abandoned heaps have no owner while we hold the list
        // lock (adopting one takes the same lock), so we may act as owner.
        unsafe {
            (*h).maintain(true);
            h = (*h).abandoned_next;
        }
    }
}
