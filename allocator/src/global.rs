//! [`NumaAlloc`]: the global allocator that serves each thread from its
//! own node.

use crate::raw::{self, Place};
use crate::size_class::{fit, Fit};
use crate::{thread, valgrind};
use std::alloc::{GlobalAlloc, Layout};
use std::ptr;

/// A [`GlobalAlloc`] serving every thread from a heap on the NUMA node it
/// runs on.
///
/// The node comes from `getcpu`, cached per thread and checked again every
/// few thousand allocations; runtime workers pinned to a node set it once
/// with [`set_thread_node`](crate::set_thread_node). Memory is bound to
/// the node (see [`set_bind_policy`](crate::set_bind_policy)); on a node
/// without memory the kernel's nearest node serves instead of failing.
/// Out of memory gives a null pointer, never a panic or abort inside the
/// allocator.
///
/// ```no_run
/// #[global_allocator]
/// static GLOBAL: numa_rt_alloc::NumaAlloc = numa_rt_alloc::NumaAlloc;
///
/// fn main() {
///     let v = vec![1u8; 1 << 20]; // on this thread's node
///     assert_eq!(v.len(), 1 << 20);
/// }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NumaAlloc;

#[cold]
#[inline(never)]
fn alloc_slow(layout: Layout) -> *mut u8 {
    // SAFETY: a Layout's align is a power of two and its size fits isize.
    unsafe { raw::alloc(Place::Current, layout.size(), layout.align(), false) }
        .map_or(ptr::null_mut(), |p| p.as_ptr())
}

// SAFETY: blocks are valid for their layout until freed, never overlap, and
// failures return null; nothing here unwinds.
unsafe impl GlobalAlloc for NumaAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if let Fit::Class(class) = fit(layout.size(), layout.align()) {
            let p = thread::pop_local(class);
            if !p.is_null() {
                valgrind::malloclike(p, layout.size(), false);
                return p;
            }
        }
        alloc_slow(layout)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe { raw::alloc(Place::Current, layout.size(), layout.align(), true) }
            .map_or(ptr::null_mut(), |p| p.as_ptr())
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: GlobalAlloc's contract: `ptr` came from us with `layout`.
        unsafe { raw::dealloc(ptr, layout.size(), layout.align()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc's contract: `ptr` came from us with `layout`,
        // and `new_size` rounded to the alignment fits isize.
        unsafe { raw::realloc(Place::Current, ptr, layout.size(), layout.align(), new_size) }
            .map_or(ptr::null_mut(), |p| p.as_ptr())
    }
}
