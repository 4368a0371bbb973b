//! Segments and the pages inside them.
//!
//! A segment is 4 MiB of memory aligned to 4 MiB, mapped and bound to one
//! node for one heap. Its header sits at its start, so the segment of any
//! block is found by masking the block's address, and the block's page by
//! a shift. A segment holds either 64 small pages of 64 KiB or 8 medium
//! pages of 512 KiB; each page serves one size class from its own free
//! lists.

use crate::heap::Heap;
use crate::os::{self, Advice, BindPolicy, Os, OsError, PageSize};
use crate::remote::{self, ReadyLink, ReadyNode, ThreadFree};
use crate::size_class::{class_size, is_small_class};
use crate::stats;
pub(crate) use crate::sync::std::Block;
use crate::NodeId;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};

/// log2 of the segment size.
pub(crate) const SEGMENT_SHIFT: usize = 22;
/// Segment size and alignment: 4 MiB.
pub(crate) const SEGMENT_SIZE: usize = 1 << SEGMENT_SHIFT;
const SMALL_PAGE_SHIFT: u32 = 16;
const MEDIUM_PAGE_SHIFT: u32 = 19;
/// Most pages a segment holds (small pages).
pub(crate) const MAX_PAGES: usize = SEGMENT_SIZE >> SMALL_PAGE_SHIFT;

/// The two page sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// 64 KiB pages, classes up to 8 KiB.
    Small = 0,
    /// 512 KiB pages, classes up to 128 KiB.
    Medium = 1,
}

impl Kind {
    pub(crate) fn of_class(class: usize) -> Kind {
        if is_small_class(class) {
            Kind::Small
        } else {
            Kind::Medium
        }
    }

    fn page_shift(self) -> u32 {
        match self {
            Kind::Small => SMALL_PAGE_SHIFT,
            Kind::Medium => MEDIUM_PAGE_SHIFT,
        }
    }
}

/// One page: blocks of one size class.
///
/// Fields without atomics belong to the owning thread (the heap's thread);
/// `thread_free` and `ready` are shared with freeing threads, and sit on
/// their own cache line so remote frees do not bounce the owner's line.
#[repr(C, align(128))]
pub(crate) struct Page {
    /// Blocks ready for allocation (owner only).
    pub(crate) free: *mut Block,
    /// Blocks handed out, including those freed remotely but not yet
    /// collected. Written by the owner only; atomic so stats can read it.
    pub(crate) used: AtomicU32,
    /// Blocks carved out of the page so far.
    pub(crate) capacity: u32,
    /// Blocks the page can hold.
    pub(crate) reserved: u32,
    pub(crate) block_size: u32,
    pub(crate) class: u8,
    /// The page serves a class (else it is free in its segment).
    pub(crate) in_use: bool,
    /// The page sits on the heap's full list (owner's view).
    pub(crate) in_full: bool,
    /// Its memory was given back with MADV_DONTNEED since it was retired.
    pub(crate) purged: bool,
    /// Links in the heap's class queue or full list.
    pub(crate) next: *mut Page,
    pub(crate) prev: *mut Page,
    /// First block.
    pub(crate) start: *mut u8,
    /// When the page was retired (ms, coarse clock).
    pub(crate) retired_at: u64,
    /// Blocks freed by other threads, collected by the owner in batches,
    /// with the mirror of `in_full` that freeing threads read.
    pub(crate) thread_free: ThreadFree,
    /// Link in the heap's ready list.
    pub(crate) ready: ReadyLink<Page>,
}

impl ReadyNode for Page {
    fn ready_link(&self) -> &ReadyLink<Page> {
        &self.ready
    }
}

/// A page that never has a free block: the initial "current page" of every
/// class, so the allocation fast path needs no null check.
pub(crate) struct EmptyPage(Page);
// SAFETY: the empty page is never written: the fast path only reads its null
// `free` and then takes the slow path, which never touches it.
unsafe impl Sync for EmptyPage {}

pub(crate) static EMPTY_PAGE: EmptyPage = EmptyPage(Page::empty());

impl EmptyPage {
    pub(crate) fn ptr(&'static self) -> *mut Page {
        &self.0 as *const Page as *mut Page
    }
}

impl Page {
    const fn empty() -> Page {
        Page {
            free: ptr::null_mut(),
            used: AtomicU32::new(0),
            capacity: 0,
            reserved: 0,
            block_size: 0,
            class: 0,
            in_use: false,
            in_full: false,
            purged: false,
            next: ptr::null_mut(),
            prev: ptr::null_mut(),
            start: ptr::null_mut(),
            retired_at: 0,
            thread_free: ThreadFree {
                head: AtomicPtr::new(ptr::null_mut()),
                full: AtomicBool::new(false),
            },
            ready: ReadyLink {
                queued: AtomicBool::new(false),
                next: AtomicPtr::new(ptr::null_mut()),
            },
        }
    }

    /// Carves up to about 4 KiB more blocks (at least one) into `free`, so
    /// a fresh page touches its memory gradually.
    ///
    /// # Safety
    /// Owner only; the page is in use and `capacity < reserved`.
    pub(crate) unsafe fn extend(&mut self) {
        let bsize = self.block_size as usize;
        let left = (self.reserved - self.capacity) as usize;
        let n = (4096 / bsize).clamp(1, left);
        // SAFETY: blocks `capacity .. capacity + n` lie inside the page.
        unsafe {
            let first = self.start.add(self.capacity as usize * bsize);
            let mut b = first;
            for _ in 1..n {
                let next = b.add(bsize);
                (*(b as *mut Block)).next = next as *mut Block;
                b = next;
            }
            (*(b as *mut Block)).next = self.free;
            self.free = first as *mut Block;
        }
        self.capacity += n as u32;
    }

    /// Takes the blocks other threads freed and puts them on `free`.
    /// Returns how many it took.
    ///
    /// # Safety
    /// Owner only.
    #[inline]
    pub(crate) unsafe fn collect(&mut self) -> u32 {
        let head = self.thread_free.take();
        if head.is_null() {
            return 0;
        }
        // SAFETY: every block on the list was pushed by `free_remote`, is
        // owned by this page, and is ours now that we took the list.
        let (n, tail) = unsafe { remote::walk(head) };
        // SAFETY: as above; `tail` is the list's last block.
        unsafe { (*tail).next = self.free };
        self.free = head;
        let used = self.used.load(Ordering::Relaxed);
        self.used.store(used - n, Ordering::Relaxed);
        n
    }

    /// Pushes a block freed by a thread that does not own the page.
    /// Returns true when the owner must be told (the page was full and
    /// this is the first remote free since it last collected).
    ///
    /// # Safety
    /// `block` belongs to this page and is no longer used.
    #[inline]
    pub(crate) unsafe fn push_remote(&self, block: *mut Block) -> bool {
        // SAFETY: guaranteed by the caller.
        unsafe { self.thread_free.push(block) }
    }
}

/// The header at the start of every segment.
#[repr(C)]
pub(crate) struct Segment {
    /// The heap owning every page (heaps are never freed).
    pub(crate) heap: *mut Heap,
    pub(crate) node: NodeId,
    pub(crate) kind: Kind,
    pub(crate) page_shift: u32,
    pub(crate) page_count: u32,
    pub(crate) used_pages: u32,
    /// Which heap list holds the segment (see `heap::SegList`).
    pub(crate) list: u8,
    /// Mapped from the explicit huge page pool.
    pub(crate) hugetlb: bool,
    /// Bound to its node (false only for the global allocator's fallback
    /// on a node without memory).
    pub(crate) bound: bool,
    pub(crate) next: *mut Segment,
    pub(crate) prev: *mut Segment,
    /// When the last page was retired (ms, coarse clock).
    pub(crate) empty_since: u64,
    pub(crate) pages: [Page; MAX_PAGES],
}

/// Bytes at the start of a segment taken by its header.
pub(crate) const HEADER_SIZE: usize = (std::mem::size_of::<Segment>() + 4095) & !4095;

// The header leaves most of page 0 usable, and page descriptors keep the
// remote-free fields on their own cache line.
const _: () = assert!(HEADER_SIZE < 1 << SMALL_PAGE_SHIFT);
const _: () = assert!(std::mem::size_of::<Page>() == 128);

/// The segment holding `p` (any address inside a segment).
#[inline(always)]
pub(crate) fn segment_of(p: *const u8) -> *mut Segment {
    ((p as usize) & !(SEGMENT_SIZE - 1)) as *mut Segment
}

/// The page holding `p`.
///
/// # Safety
/// `p` must point into a live segment.
#[inline(always)]
pub(crate) unsafe fn page_of(seg: *mut Segment, p: *const u8) -> *mut Page {
    // SAFETY: the caller guarantees `seg` is live; the index is below
    // `page_count` because `p` is inside the segment.
    unsafe {
        let index = ((p as usize) - (seg as usize)) >> (*seg).page_shift;
        ptr::addr_of_mut!((*seg).pages).cast::<Page>().add(index)
    }
}

/// The start of the block of `page` that contains `p`.
///
/// # Safety
/// `p` must point inside a block of the in-use page `page`.
pub(crate) unsafe fn block_start(page: *const Page, p: *const u8) -> *mut u8 {
    // SAFETY: the caller guarantees the page is live and in use.
    unsafe {
        let start = (*page).start as usize;
        let bsize = (*page).block_size as usize;
        (start + ((p as usize - start) / bsize) * bsize) as *mut u8
    }
}

/// Whether to map segments from the explicit huge page pool: only when at
/// least a few pages are reserved and free.
fn use_hugetlb() -> bool {
    os::huge_pages().free_2m >= 4
}

impl Segment {
    /// Maps and binds a new segment of `kind` for `heap`.
    ///
    /// When binding fails, `strict` decides: fail (placement API), or keep
    /// the memory unbound (the global allocator on a node without memory,
    /// where the kernel then picks the nearest node).
    pub(crate) fn create(
        os: &dyn Os,
        heap: *mut Heap,
        node: NodeId,
        memory_node: NodeId,
        kind: Kind,
        policy: BindPolicy,
        strict: bool,
    ) -> Result<NonNull<Segment>, OsError> {
        let mut hugetlb = false;
        let mut mapped = Err(OsError {
            op: "mmap",
            errno: libc::ENOMEM,
        });
        if use_hugetlb() {
            mapped = os::map_aligned(os, SEGMENT_SIZE, SEGMENT_SIZE, PageSize::Huge2M);
            hugetlb = mapped.is_ok();
        }
        if mapped.is_err() {
            mapped = os::map_aligned(os, SEGMENT_SIZE, SEGMENT_SIZE, PageSize::Base);
        }
        let base = mapped?;
        // SAFETY: `base` is a fresh mapping of SEGMENT_SIZE bytes.
        let bound = match unsafe { os.bind(base, SEGMENT_SIZE, memory_node, policy) } {
            Ok(()) => true,
            Err(e) if strict && !os::numa_refusal_is_moot(&e) => {
                // SAFETY: the mapping is ours and unused.
                let _ = unsafe { os.unmap(base, SEGMENT_SIZE) };
                return Err(e);
            }
            Err(_) => false,
        };
        let seg = base.cast::<Segment>();
        let shift = kind.page_shift();
        // SAFETY: the mapping is large enough for the header, zeroed, and ours.
        unsafe {
            let s = seg.as_ptr();
            ptr::addr_of_mut!((*s).heap).write(heap);
            ptr::addr_of_mut!((*s).node).write(node);
            ptr::addr_of_mut!((*s).kind).write(kind);
            ptr::addr_of_mut!((*s).page_shift).write(shift);
            ptr::addr_of_mut!((*s).page_count).write((SEGMENT_SIZE >> shift) as u32);
            ptr::addr_of_mut!((*s).used_pages).write(0);
            ptr::addr_of_mut!((*s).list).write(0);
            ptr::addr_of_mut!((*s).hugetlb).write(hugetlb);
            ptr::addr_of_mut!((*s).bound).write(bound);
            ptr::addr_of_mut!((*s).next).write(ptr::null_mut());
            ptr::addr_of_mut!((*s).prev).write(ptr::null_mut());
            ptr::addr_of_mut!((*s).empty_since).write(0);
            let pages = ptr::addr_of_mut!((*s).pages).cast::<Page>();
            for i in 0..MAX_PAGES {
                pages.add(i).write(Page::empty());
            }
        }
        stats::add_mapped(node, SEGMENT_SIZE, hugetlb);
        Ok(seg)
    }

    /// Unmaps a segment whose pages are all free.
    ///
    /// # Safety
    /// No page of the segment is in use and nothing refers to it any more.
    pub(crate) unsafe fn destroy(seg: *mut Segment, os: &dyn Os) {
        // SAFETY: the caller guarantees the segment is unused.
        unsafe {
            stats::sub_mapped((*seg).node, SEGMENT_SIZE, (*seg).hugetlb);
            let _ = os.unmap(NonNull::new_unchecked(seg.cast()), SEGMENT_SIZE);
        }
    }

    /// The `i`-th page.
    ///
    /// # Safety
    /// `seg` is live and `i < page_count`.
    pub(crate) unsafe fn page(seg: *mut Segment, i: usize) -> *mut Page {
        // SAFETY: guaranteed by the caller.
        unsafe { ptr::addr_of_mut!((*seg).pages).cast::<Page>().add(i) }
    }

    /// Sets page `i` up for size class `class`.
    ///
    /// # Safety
    /// `seg` is live, owned by the calling heap, and page `i` is free.
    pub(crate) unsafe fn init_page(seg: *mut Segment, i: usize, class: usize) -> *mut Page {
        // SAFETY: guaranteed by the caller.
        unsafe {
            let page = Segment::page(seg, i);
            let shift = (*seg).page_shift;
            let base = seg as usize + (i << shift);
            let start = if i == 0 {
                seg as usize + HEADER_SIZE
            } else {
                base
            };
            let end = base + (1usize << shift);
            let bsize = class_size(class);
            // Blocks of the page's previous class were freed to valgrind;
            // the memory is ours again until blocks are handed out.
            crate::valgrind::make_undefined(start as *const u8, end - start);
            let p = &mut *page;
            p.free = ptr::null_mut();
            p.used.store(0, Ordering::Relaxed);
            p.capacity = 0;
            p.reserved = ((end - start) / bsize) as u32;
            p.block_size = bsize as u32;
            p.class = class as u8;
            p.in_use = true;
            p.in_full = false;
            p.next = ptr::null_mut();
            p.prev = ptr::null_mut();
            p.start = start as *mut u8;
            p.thread_free.reset();
            (*seg).used_pages += 1;
            page
        }
    }

    /// Gives the memory of free, not yet purged pages retired before
    /// `before` back to the kernel. Returns the bytes purged.
    ///
    /// # Safety
    /// Owner only; `seg` is live.
    pub(crate) unsafe fn purge(seg: *mut Segment, os: &dyn Os, before: u64) -> usize {
        let mut purged = 0;
        // SAFETY: the owner has exclusive use of free pages.
        unsafe {
            if (*seg).hugetlb {
                return 0;
            }
            let shift = (*seg).page_shift;
            for i in 0..(*seg).page_count as usize {
                let page = &mut *Segment::page(seg, i);
                if page.in_use || page.purged || page.retired_at > before {
                    continue;
                }
                let base = seg as usize + (i << shift);
                let start = if i == 0 {
                    seg as usize + HEADER_SIZE
                } else {
                    base
                };
                let len = base + (1usize << shift) - start;
                let _ = os.advise(
                    NonNull::new_unchecked(start as *mut u8),
                    len,
                    Advice::DontNeed,
                );
                page.purged = true;
                purged += len;
            }
        }
        purged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_find_segment_and_page() {
        let seg = (7 * SEGMENT_SIZE) as *mut Segment;
        let p = (7 * SEGMENT_SIZE + 3 * 65536 + 100) as *const u8;
        assert_eq!(segment_of(p), seg);
    }
}
