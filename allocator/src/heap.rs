//! A heap: one thread's memory on one node.
//!
//! Each heap keeps, per size class, a queue of pages with free blocks and a
//! "current" page the fast path pops from. Only the owning thread touches
//! the queues and the pages' local free lists, so allocation and local free
//! take no lock and no atomic read-modify-write. Blocks freed by other
//! threads go to their page's atomic `thread_free` list and come back in
//! batches when the owner runs out of blocks ([`Page::collect`]). A page on
//! the full list that receives a remote free is handed to the owner through
//! the heap's `ready` list, so full pages are never scanned.
//!
//! Heaps live for the whole process (their memory is a few KiB): when a
//! thread exits, its heaps are abandoned and a later thread on the same
//! node adopts them, with every page and pending remote free.

use crate::os::{Os, OsError};
use crate::placement;
use crate::remote::ReadyList;
use crate::segment::{page_of, segment_of, Block, Kind, Page, Segment, EMPTY_PAGE};
use crate::size_class::CLASSES;
use crate::NodeId;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Retired pages and empty segments go back to the kernel after this long.
pub(crate) const DECAY_MS: u64 = 250;
/// Slow paths between two maintenance passes.
const MAINTENANCE_EVERY: u32 = 256;

const LIST_AVAIL: u8 = 0;
const LIST_FULL: u8 = 1;
const LIST_EMPTY: u8 = 2;

/// A doubly linked list of pages through `Page::next/prev`.
struct PageList {
    head: *mut Page,
    tail: *mut Page,
}

impl PageList {
    const fn new() -> PageList {
        PageList {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
        }
    }

    /// # Safety
    /// `p` is live and on no list.
    unsafe fn push_back(&mut self, p: *mut Page) {
        // SAFETY: guaranteed by the caller; list members are live.
        unsafe {
            (*p).next = ptr::null_mut();
            (*p).prev = self.tail;
            if self.tail.is_null() {
                self.head = p;
            } else {
                (*self.tail).next = p;
            }
        }
        self.tail = p;
    }

    /// # Safety
    /// `p` is on this list.
    unsafe fn remove(&mut self, p: *mut Page) {
        // SAFETY: guaranteed by the caller; list members are live.
        unsafe {
            let (prev, next) = ((*p).prev, (*p).next);
            if prev.is_null() {
                self.head = next;
            } else {
                (*prev).next = next;
            }
            if next.is_null() {
                self.tail = prev;
            } else {
                (*next).prev = prev;
            }
            (*p).next = ptr::null_mut();
            (*p).prev = ptr::null_mut();
        }
    }
}

/// A doubly linked list of segments through `Segment::next/prev`.
struct SegList {
    head: *mut Segment,
}

impl SegList {
    const fn new() -> SegList {
        SegList {
            head: ptr::null_mut(),
        }
    }

    /// # Safety
    /// `s` is live and on no list.
    unsafe fn push(&mut self, s: *mut Segment, list: u8) {
        // SAFETY: guaranteed by the caller.
        unsafe {
            (*s).prev = ptr::null_mut();
            (*s).next = self.head;
            (*s).list = list;
            if !self.head.is_null() {
                (*self.head).prev = s;
            }
        }
        self.head = s;
    }

    /// # Safety
    /// `s` is on this list.
    unsafe fn remove(&mut self, s: *mut Segment) {
        // SAFETY: guaranteed by the caller.
        unsafe {
            let (prev, next) = ((*s).prev, (*s).next);
            if prev.is_null() {
                self.head = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
        }
    }
}

/// All heaps ever created (push-only), for statistics.
static REGISTRY: AtomicPtr<Heap> = AtomicPtr::new(ptr::null_mut());

/// One thread's (or the shared fallback's) memory on one node.
pub(crate) struct Heap {
    /// The owning thread's id (see `thread::id`), 0 when abandoned, or
    /// `thread::SHARED_ID` for a lock-protected shared heap.
    pub(crate) thread_id: AtomicUsize,
    pub(crate) node: NodeId,
    os: &'static dyn Os,
    /// Current page per class: the fast path pops from it.
    pages: [*mut Page; CLASSES],
    /// Pages with (possibly) free blocks, per class.
    queues: [PageList; CLASSES],
    /// Pages with no free block.
    full: PageList,
    /// Full pages that received remote frees (pushed by other threads).
    ready: ReadyList<Page>,
    /// Segments per kind: with free pages, full, empty.
    segments: [[SegList; 3]; 2],
    /// Held while segments or their pages change state, so statistics can
    /// walk them from another thread.
    lock: Mutex<()>,
    ticks: u32,
    /// Blocks freed by other threads and collected back.
    remote_frees: AtomicU64,
    pub(crate) registry_next: *mut Heap,
    pub(crate) abandoned_next: *mut Heap,
}

fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; the coarse clock is read via vDSO.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

fn locked(lock: &Mutex<()>) -> MutexGuard<'_, ()> {
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Heap {
    /// Maps and registers a new heap for `node`, owned by thread `tid`.
    pub(crate) fn create(
        os: &'static dyn Os,
        node: NodeId,
        tid: usize,
    ) -> Result<NonNull<Heap>, OsError> {
        let len = (std::mem::size_of::<Heap>() + 4095) & !4095;
        let mem = os.map(len, crate::os::PageSize::Base)?.cast::<Heap>();
        let empty = EMPTY_PAGE.ptr();
        // SAFETY: `mem` is a fresh, suitably aligned mapping of `len` bytes.
        unsafe {
            mem.as_ptr().write(Heap {
                thread_id: AtomicUsize::new(tid),
                node,
                os,
                pages: [empty; CLASSES],
                queues: [const { PageList::new() }; CLASSES],
                full: PageList::new(),
                ready: ReadyList::new(),
                segments: [const { [const { SegList::new() }; 3] }; 2],
                lock: Mutex::new(()),
                ticks: 0,
                remote_frees: AtomicU64::new(0),
                registry_next: ptr::null_mut(),
                abandoned_next: ptr::null_mut(),
            });
        }
        let heap = mem.as_ptr();
        let mut head = REGISTRY.load(Ordering::Acquire);
        loop {
            // SAFETY: the heap is not yet published; we own it.
            unsafe { (*heap).registry_next = head };
            match REGISTRY.compare_exchange_weak(head, heap, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
        Ok(mem)
    }

    /// Calls `f` on every heap ever created.
    pub(crate) fn for_each(mut f: impl FnMut(&Heap)) {
        let mut h = REGISTRY.load(Ordering::Acquire);
        while !h.is_null() {
            // SAFETY: heaps are never freed, and `registry_next` is written
            // only before a heap is published.
            unsafe {
                f(&*h);
                h = (*h).registry_next;
            }
        }
    }

    /// Pops a free block of `class` from the current page, or returns null
    /// when the page has none (the caller then takes [`Heap::alloc`]).
    ///
    /// # Safety
    /// Owner only.
    #[inline(always)]
    pub(crate) unsafe fn pop(&mut self, class: usize) -> *mut u8 {
        // SAFETY: the current page is live (or the never-written empty page),
        // and its free blocks belong to us.
        unsafe {
            let page = *self.pages.get_unchecked(class);
            let block = (*page).free;
            if !block.is_null() {
                (*page).free = (*block).next;
                let used = (*page).used.load(Ordering::Relaxed);
                (*page).used.store(used + 1, Ordering::Relaxed);
            }
            block.cast()
        }
    }

    /// Allocates a block of `class`.
    ///
    /// # Safety
    /// Owner only.
    #[inline(always)]
    pub(crate) unsafe fn alloc(
        &mut self,
        class: usize,
        strict: bool,
    ) -> Result<NonNull<u8>, OsError> {
        // SAFETY: owner only (our caller's contract).
        unsafe {
            match NonNull::new(self.pop(class)) {
                Some(p) => Ok(p),
                None => self.alloc_slow(class, strict),
            }
        }
    }

    #[cold]
    #[inline(never)]
    unsafe fn alloc_slow(&mut self, class: usize, strict: bool) -> Result<NonNull<u8>, OsError> {
        self.ticks = self.ticks.wrapping_add(1);
        // SAFETY: owner only (our caller's contract) throughout.
        unsafe {
            if self.ticks % MAINTENANCE_EVERY == 0 {
                self.maintain(false);
            }
            self.drain_ready();
            let mut page = self.queues[class].head;
            while !page.is_null() {
                let next = (*page).next;
                let p = &mut *page;
                if p.free.is_null() {
                    self.collect(page);
                }
                if p.free.is_null() && p.capacity < p.reserved {
                    p.extend();
                }
                if !p.free.is_null() {
                    self.pages[class] = page;
                    return self.alloc(class, strict);
                }
                self.mark_full(page);
                page = next;
            }
            let page = self.new_page(class, strict)?;
            self.pages[class] = page;
            (*page).extend();
            self.alloc(class, strict)
        }
    }

    /// Collects remote frees of `page`, counting them.
    ///
    /// # Safety
    /// Owner only; `page` is in use by this heap.
    unsafe fn collect(&mut self, page: *mut Page) {
        // SAFETY: guaranteed by the caller.
        let n = unsafe { (*page).collect() };
        if n > 0 {
            let total = self.remote_frees.load(Ordering::Relaxed);
            self.remote_frees
                .store(total + u64::from(n), Ordering::Relaxed);
        }
    }

    /// Moves a page with no free block to the full list.
    ///
    /// # Safety
    /// Owner only; `page` is on its class queue.
    unsafe fn mark_full(&mut self, page: *mut Page) {
        // SAFETY: guaranteed by the caller.
        unsafe {
            let class = (*page).class as usize;
            self.queues[class].remove(page);
            if self.pages[class] == page {
                self.pages[class] = EMPTY_PAGE.ptr();
            }
            (*page).in_full = true;
            self.full.push_back(page);
            // A remote free between our last collect and the flag store saw
            // the flag clear and told nobody: look again ourselves.
            if (*page).thread_free.mark_full() {
                self.unfull(page);
            }
        }
    }

    /// Moves a page from the full list back to its class queue.
    ///
    /// # Safety
    /// Owner only; `page` is on the full list.
    #[cold]
    unsafe fn unfull(&mut self, page: *mut Page) {
        // SAFETY: guaranteed by the caller.
        unsafe {
            (*page).thread_free.clear_full();
            (*page).in_full = false;
            self.full.remove(page);
            let class = (*page).class as usize;
            self.queues[class].push_back(page);
        }
    }

    /// Takes back full pages that other threads freed blocks into.
    ///
    /// # Safety
    /// Owner only.
    unsafe fn drain_ready(&mut self) {
        // SAFETY: pages on the ready list are ours and live, and each is
        // moved only once it was yielded.
        unsafe {
            for page in self.ready.take() {
                if (*page).in_full {
                    self.unfull(page);
                }
            }
        }
    }

    /// Finds or maps a free page and sets it up for `class`.
    ///
    /// # Safety
    /// Owner only.
    unsafe fn new_page(&mut self, class: usize, strict: bool) -> Result<*mut Page, OsError> {
        let kind = Kind::of_class(class);
        let k = kind as usize;
        // SAFETY: owner only; segments on our lists are live and ours.
        unsafe {
            let mut seg = self.segments[k][LIST_AVAIL as usize].head;
            if seg.is_null() {
                seg = self.segments[k][LIST_EMPTY as usize].head;
                if !seg.is_null() {
                    let _g = locked(&self.lock);
                    self.segments[k][LIST_EMPTY as usize].remove(seg);
                    self.segments[k][LIST_AVAIL as usize].push(seg, LIST_AVAIL);
                }
            }
            if seg.is_null() {
                let policy = placement::bind_policy();
                let memory_node = placement::memory_node(self.node);
                let created = Segment::create(
                    self.os,
                    self as *mut Heap,
                    self.node,
                    memory_node,
                    kind,
                    policy,
                    strict,
                )?;
                seg = created.as_ptr();
                let _g = locked(&self.lock);
                self.segments[k][LIST_AVAIL as usize].push(seg, LIST_AVAIL);
            }
            let _g = locked(&self.lock);
            let index = (0..(*seg).page_count as usize)
                .find(|&i| !(*Segment::page(seg, i)).in_use)
                .unwrap_or(0);
            let page = Segment::init_page(seg, index, class);
            if (*seg).used_pages == (*seg).page_count {
                self.segments[k][LIST_AVAIL as usize].remove(seg);
                self.segments[k][LIST_FULL as usize].push(seg, LIST_FULL);
            }
            drop(_g);
            self.queues[class].push_back(page);
            Ok(page)
        }
    }

    /// Returns an empty page to its segment.
    ///
    /// # Safety
    /// Owner only; `page` is in use, on its class queue, with no block in use.
    unsafe fn retire(&mut self, page: *mut Page) {
        // SAFETY: guaranteed by the caller.
        unsafe {
            let class = (*page).class as usize;
            self.queues[class].remove(page);
            if self.pages[class] == page {
                self.pages[class] = EMPTY_PAGE.ptr();
            }
            let seg = segment_of(page.cast());
            let k = (*seg).kind as usize;
            let now = now_ms();
            let _g = locked(&self.lock);
            (*page).in_use = false;
            (*page).free = ptr::null_mut();
            (*page).purged = false;
            (*page).retired_at = now;
            let was_full = (*seg).used_pages == (*seg).page_count;
            (*seg).used_pages -= 1;
            if was_full {
                self.segments[k][LIST_FULL as usize].remove(seg);
                self.segments[k][LIST_AVAIL as usize].push(seg, LIST_AVAIL);
            }
            if (*seg).used_pages == 0 {
                self.segments[k][LIST_AVAIL as usize].remove(seg);
                self.segments[k][LIST_EMPTY as usize].push(seg, LIST_EMPTY);
                (*seg).empty_since = now;
            }
        }
    }

    /// Frees a block of a page this heap owns, from the owning thread.
    ///
    /// A page that becomes empty stays in its queue, ready for the next
    /// allocations of its class; the periodic maintenance pass retires it
    /// (so a class that allocates and frees in waves does not map, carve
    /// and retire a page on every wave).
    ///
    /// # Safety
    /// Owner only; `block` was allocated from `page` and is no longer used.
    #[inline(always)]
    pub(crate) unsafe fn free_local(&mut self, page: *mut Page, block: *mut u8) {
        // SAFETY: guaranteed by the caller.
        unsafe {
            let b = block as *mut Block;
            (*b).next = (*page).free;
            (*page).free = b;
            let used = (*page).used.load(Ordering::Relaxed);
            (*page).used.store(used - 1, Ordering::Relaxed);
            if (*page).in_full {
                self.unfull(page);
            }
        }
    }

    /// Gives memory back to the kernel: retires empty pages, purges pages
    /// retired more than [`DECAY_MS`] ago and unmaps segments empty that
    /// long; with `force`, everything free goes back now.
    ///
    /// # Safety
    /// Owner only.
    pub(crate) unsafe fn maintain(&mut self, force: bool) {
        // SAFETY: owner only; every list member is ours and live.
        unsafe {
            self.drain_ready();
            for class in 0..CLASSES {
                let mut page = self.queues[class].head;
                while !page.is_null() {
                    let next = (*page).next;
                    self.collect(page);
                    let empty = (*page).used.load(Ordering::Relaxed) == 0;
                    if empty && (force || self.pages[class] != page) {
                        self.retire(page);
                    }
                    page = next;
                }
            }
            let now = now_ms();
            let before = if force {
                u64::MAX
            } else {
                now.saturating_sub(DECAY_MS)
            };
            // Segments are unmapped only after DECAY_MS even when forced: a
            // thread that just pushed a remote free may still be reading
            // the page descriptor in the header for a few instructions.
            // Forced trims purge their pages instead, which is what lowers RSS.
            let unmap_before = now.saturating_sub(DECAY_MS);
            for k in 0..2 {
                let mut seg = self.segments[k][LIST_EMPTY as usize].head;
                while !seg.is_null() {
                    let next = (*seg).next;
                    if (*seg).empty_since > unmap_before {
                        Segment::purge(seg, self.os, before);
                    } else {
                        let _g = locked(&self.lock);
                        self.segments[k][LIST_EMPTY as usize].remove(seg);
                        Segment::destroy(seg, self.os);
                    }
                    seg = next;
                }
                let mut seg = self.segments[k][LIST_AVAIL as usize].head;
                while !seg.is_null() {
                    Segment::purge(seg, self.os, before);
                    seg = (*seg).next;
                }
            }
        }
    }

    /// Bytes in blocks handed out from this heap (blocks freed remotely but
    /// not yet collected still count).
    pub(crate) fn in_use_bytes(&self) -> u64 {
        let _g = locked(&self.lock);
        let mut total = 0u64;
        for kind in &self.segments {
            for list in kind {
                let mut seg = list.head;
                while !seg.is_null() {
                    // SAFETY: we hold the lock, so the segment stays mapped
                    // and its pages' `in_use` and `block_size` do not change.
                    unsafe {
                        for i in 0..(*seg).page_count as usize {
                            let page = &*Segment::page(seg, i);
                            if page.in_use {
                                total += u64::from(page.used.load(Ordering::Relaxed))
                                    * u64::from(page.block_size);
                            }
                        }
                        seg = (*seg).next;
                    }
                }
            }
        }
        total
    }

    /// Blocks other threads freed into this heap and it collected.
    pub(crate) fn remote_frees(&self) -> u64 {
        self.remote_frees.load(Ordering::Relaxed)
    }
}

/// Frees a block from any thread. `tid` is the calling thread's id.
/// Returns the node of the block's segment when the free was remote.
///
/// # Safety
/// `p` was allocated by a heap (a class block start) and is no longer used.
#[inline(always)]
pub(crate) unsafe fn free_block(p: *mut u8, tid: usize) -> Option<NodeId> {
    // SAFETY: `p` lies in a live segment, whose heap lives forever.
    unsafe {
        let seg = segment_of(p);
        let page = page_of(seg, p);
        let heap = (*seg).heap;
        if (*heap).thread_id.load(Ordering::Relaxed) == tid {
            (*heap).free_local(page, p);
            None
        } else {
            free_remote(heap, page, p);
            Some((*seg).node)
        }
    }
}

#[cold]
unsafe fn free_remote(heap: *mut Heap, page: *mut Page, p: *mut u8) {
    // SAFETY: the caller guarantees the block belongs to `page` of `heap`.
    unsafe {
        if (*page).push_remote(p as *mut Block) {
            (*heap).ready.push(page);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::{system, FailingOs, Op};
    use crate::size_class::{class_of, class_size};
    use crate::thread;
    use std::collections::HashSet;

    /// A heap of its own for one test, owned by the calling thread.
    fn private_heap(os: &'static dyn Os) -> NonNull<Heap> {
        Heap::create(os, thread::current_node(), thread::id()).unwrap()
    }

    impl Heap {
        fn segment_count(&self) -> usize {
            let _g = locked(&self.lock);
            let mut n = 0;
            for kind in &self.segments {
                for list in kind {
                    let mut s = list.head;
                    while !s.is_null() {
                        n += 1;
                        // SAFETY: we hold the lock; listed segments are live.
                        s = unsafe { (*s).next };
                    }
                }
            }
            n
        }
    }

    #[test]
    fn every_class_gives_distinct_aligned_blocks_and_returns_them() {
        // SAFETY: the heap is new and only this test's thread uses it.
        let h = unsafe { private_heap(system()).as_mut() };
        let tid = thread::id();
        for c in 0..CLASSES {
            let size = class_size(c);
            let n = (1 << 20) / size + 3;
            let mut seen = HashSet::new();
            let mut blocks = Vec::new();
            for i in 0..n {
                // SAFETY: owner thread.
                let p = unsafe { h.alloc(c, true) }.unwrap().as_ptr();
                assert!(seen.insert(p as usize), "block handed out twice");
                assert_eq!(p as usize % size.clamp(8, 16), 0);
                // SAFETY: the block holds `size` bytes.
                unsafe { p.write_bytes(i as u8, size) };
                blocks.push(p);
            }
            assert_eq!(h.in_use_bytes(), (n * size) as u64);
            for (i, &p) in blocks.iter().enumerate() {
                // SAFETY: the block holds `size` bytes; then freed once.
                unsafe {
                    assert_eq!(*p.add(size - 1), i as u8, "class {c} overlap");
                    free_block(p, tid);
                }
            }
            assert_eq!(h.in_use_bytes(), 0);
        }
        // SAFETY: owner thread.
        unsafe { h.maintain(true) };
    }

    #[test]
    fn remote_frees_come_back_in_batches() {
        // SAFETY: the heap is new and only this test's thread uses it.
        let h = unsafe { private_heap(system()).as_mut() };
        let c = class_of(48);
        // SAFETY: owner thread.
        let blocks: Vec<usize> = (0..10_000)
            .map(|_| unsafe { h.alloc(c, true) }.unwrap().as_ptr() as usize)
            .collect();
        let segments = h.segment_count();
        let freed = blocks.clone();
        std::thread::spawn(move || {
            let tid = thread::id();
            for p in freed {
                // SAFETY: the blocks are live and freed once, remotely.
                assert!(unsafe { free_block(p as *mut u8, tid) }.is_some());
            }
        })
        .join()
        .unwrap();
        assert_eq!(h.in_use_bytes(), 10_000 * 48, "not yet collected");
        // The current page's uncarved rest comes first, then the freed blocks.
        let reused: HashSet<usize> = (0..11_000)
            // SAFETY: owner thread.
            .map(|_| unsafe { h.alloc(c, true) }.unwrap().as_ptr() as usize)
            .collect();
        let old: HashSet<usize> = blocks.into_iter().collect();
        assert!(old.is_subset(&reused), "remote frees are reused");
        assert!(h.segment_count() <= segments + 1);
        assert_eq!(h.remote_frees(), 10_000);
    }

    #[test]
    fn full_pages_are_told_about_remote_frees() {
        // SAFETY: the heap is new and only this test's thread uses it.
        let h = unsafe { private_heap(system()).as_mut() };
        let c = class_of(8192);
        // Enough to fill several pages, which go to the full list.
        // SAFETY: owner thread.
        let blocks: Vec<usize> = (0..200)
            .map(|_| unsafe { h.alloc(c, true) }.unwrap().as_ptr() as usize)
            .collect();
        let first_pages: Vec<usize> = blocks[..20].to_vec();
        std::thread::spawn(move || {
            let tid = thread::id();
            for p in first_pages {
                // SAFETY: live blocks, freed once.
                unsafe { free_block(p as *mut u8, tid) };
            }
        })
        .join()
        .unwrap();
        assert!(!h.ready.is_empty(), "owner was told");
        let again: HashSet<usize> = (0..40)
            // SAFETY: owner thread.
            .map(|_| unsafe { h.alloc(c, true) }.unwrap().as_ptr() as usize)
            .collect();
        let expected: HashSet<usize> = blocks[..20].iter().copied().collect();
        assert!(expected.is_subset(&again), "full pages came back");
    }

    #[test]
    fn refused_map_and_bind_are_errors_not_crashes() {
        static OS: FailingOs = FailingOs::new();
        // SAFETY: the heap is new and only this test's thread uses it.
        let h = unsafe { private_heap(&OS).as_mut() };
        OS.refuse(Op::Map);
        // SAFETY: owner thread.
        let err = unsafe { h.alloc(3, true) }.unwrap_err();
        assert_eq!(err.op, "mmap");
        OS.allow(Op::Map);
        OS.refuse(Op::Bind);
        // SAFETY: owner thread.
        let err = unsafe { h.alloc(3, true) }.unwrap_err();
        assert_eq!(err.op, "mbind");
        // The global allocator's path keeps unbound memory instead.
        // SAFETY: owner thread.
        let p = unsafe { h.alloc(3, false) }.unwrap();
        OS.allow(Op::Bind);
        // SAFETY: the block is live and freed once.
        unsafe { free_block(p.as_ptr(), thread::id()) };
    }

    #[test]
    fn empty_memory_goes_back_to_the_kernel() {
        // SAFETY: the heap is new and only this test's thread uses it.
        let h = unsafe { private_heap(system()).as_mut() };
        let c = class_of(1024);
        // SAFETY: owner thread throughout.
        unsafe {
            let blocks: Vec<_> = (0..8192)
                .map(|_| h.alloc(c, true).unwrap().as_ptr())
                .collect();
            for &p in &blocks {
                p.write_bytes(1, 1024);
            }
            assert!(h.segment_count() >= 2);
            let probe = blocks[4000];
            for &p in &blocks {
                free_block(p, thread::id());
            }
            h.maintain(true);
            let mut out = [(NodeId::new(0), 0usize); 4];
            let n = crate::os::resident_nodes(probe, 1024, &mut out).unwrap();
            assert_eq!(n, 0, "purged page is no longer resident");
            std::thread::sleep(std::time::Duration::from_millis(DECAY_MS + 50));
            h.maintain(false);
            assert_eq!(
                h.segment_count(),
                0,
                "empty segments unmapped after the decay"
            );
        }
    }

    #[test]
    fn exiting_threads_abandon_their_heaps() {
        let (p, tid) = std::thread::spawn(|| {
            // SAFETY: a valid small size and alignment.
            let p =
                unsafe { crate::raw::alloc(crate::raw::Place::Current, 100, 8, false) }.unwrap();
            (p.as_ptr() as usize, thread::id())
        })
        .join()
        .unwrap();
        // SAFETY: `p` is a live small block, so its segment header is mapped
        // and initialised.
        let heap = unsafe { (*segment_of(p as *const u8)).heap };
        // SAFETY: heaps are never freed.
        assert_ne!(unsafe { (*heap).thread_id.load(Ordering::Acquire) }, tid);
        // SAFETY: the block is live and freed once (remotely).
        unsafe { crate::raw::dealloc(p as *mut u8, 100, 8) };
        crate::trim();
    }
}
