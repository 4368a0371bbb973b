//! The allocation entry points shared by [`NumaAlloc`](crate::NumaAlloc),
//! [`NodeHeap`](crate::NodeHeap), [`NodeBox`](crate::NodeBox) and
//! [`NodeVec`](crate::NodeVec): pick small (a heap's size class) or large
//! (own mapping) from the size and alignment, the same way on allocation
//! and on free, so no block needs a header to be freed.

use crate::heap::free_block;
use crate::os::{self, page_size, OsError};
use crate::placement::{bind_policy, memory_node};
use crate::segment::{block_start, page_of, segment_of};
use crate::size_class::{fit, Fit};
use crate::thread::{self, with_heap};
use crate::{large, stats, valgrind, NodeId};
use std::ptr::NonNull;

/// Which node serves a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// The calling thread's node; if it cannot be bound (a node without
    /// memory), the kernel's default placement is kept instead of failing.
    Current,
    /// Exactly this node: binding failures are errors.
    Node(NodeId),
}

impl Place {
    fn node(self) -> Option<NodeId> {
        match self {
            Place::Current => None,
            Place::Node(n) => Some(n),
        }
    }

    fn strict(self) -> bool {
        matches!(self, Place::Node(_))
    }
}

#[inline(always)]
fn small(place: Place, class: usize) -> Result<NonNull<u8>, OsError> {
    let strict = place.strict();
    // SAFETY: `with_heap` hands us a heap this thread may use exclusively.
    with_heap(place.node(), |h| unsafe { h.alloc(class, strict) })?
}

/// Allocates `size` bytes aligned to `align` (a power of two).
///
/// # Safety
/// `align` is a power of two and `size` rounded up to `align` fits `isize`.
#[inline(always)]
pub(crate) unsafe fn alloc(
    place: Place,
    size: usize,
    align: usize,
    zeroed: bool,
) -> Result<NonNull<u8>, OsError> {
    match fit(size, align) {
        Fit::Class(c) => {
            let p = small(place, c)?;
            valgrind::malloclike(p.as_ptr(), size, zeroed);
            if zeroed {
                // SAFETY: the block holds at least `size` bytes.
                unsafe { p.as_ptr().write_bytes(0, size) };
            }
            Ok(p)
        }
        // SAFETY: forwarded with the caller's guarantees.
        _ => unsafe { alloc_other(place, size, align, zeroed) },
    }
}

#[cold]
unsafe fn alloc_other(
    place: Place,
    size: usize,
    align: usize,
    zeroed: bool,
) -> Result<NonNull<u8>, OsError> {
    match fit(size, align) {
        Fit::Class(_) => unreachable_fit(),
        Fit::Padded(c) => {
            let b = small(place, c)?;
            let p = ((b.as_ptr() as usize + align - 1) & !(align - 1)) as *mut u8;
            valgrind::malloclike(p, size, zeroed);
            if zeroed {
                // SAFETY: the block holds `size + align - 1` bytes from `b`.
                unsafe { p.write_bytes(0, size) };
            }
            // SAFETY: aligned up inside a non-null block.
            Ok(unsafe { NonNull::new_unchecked(p) })
        }
        Fit::Large => {
            let node = place.node().unwrap_or_else(thread::current_node);
            large::alloc(
                os::system(),
                node,
                memory_node(node),
                bind_policy(),
                place.strict(),
                size,
                align,
            )
        }
    }
}

#[cold]
fn unreachable_fit() -> ! {
    // `alloc` handles Fit::Class before calling alloc_other with the same
    // arguments, and `fit` is a pure function.
    unreachable!("size class fits are handled inline")
}

/// Frees a block.
///
/// # Safety
/// `p` came from [`alloc`] or [`realloc`] with this `size` and `align`, and
/// is no longer used.
#[inline(always)]
pub(crate) unsafe fn dealloc(p: *mut u8, size: usize, align: usize) {
    match fit(size, align) {
        Fit::Class(_) => {
            valgrind::freelike(p);
            valgrind::make_defined(p, 8);
            // SAFETY: a class block start, guaranteed by the caller.
            let remote = unsafe { free_block(p, thread::id()) };
            if let Some(node) = remote {
                count_remote(node);
            }
        }
        // SAFETY: forwarded with the caller's guarantees.
        _ => unsafe { dealloc_other(p, size, align) },
    }
}

#[cold]
unsafe fn dealloc_other(p: *mut u8, size: usize, align: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        match fit(size, align) {
            Fit::Class(_) | Fit::Padded(_) => {
                valgrind::freelike(p);
                let b = block_start(page_of(segment_of(p), p), p);
                valgrind::make_defined(b, 8);
                if let Some(node) = free_block(b, thread::id()) {
                    count_remote(node);
                }
            }
            Fit::Large => large::free(os::system(), p),
        }
    }
}

#[cold]
fn count_remote(node: NodeId) {
    if node != thread::current_node() {
        stats::add_cross_node_free(node);
    }
}

/// Resizes a block, in place when the size class stays the same, with
/// `mremap` when both sizes are large, else by allocate, copy and free. On
/// error the old block is untouched.
///
/// # Safety
/// As for [`dealloc`]; `new_size` rounded up to `align` fits `isize`.
pub(crate) unsafe fn realloc(
    place: Place,
    p: *mut u8,
    size: usize,
    align: usize,
    new_size: usize,
) -> Result<NonNull<u8>, OsError> {
    let (old, new) = (fit(size, align), fit(new_size, align));
    match (old, new) {
        (Fit::Class(a), Fit::Class(b)) if a == b => {
            valgrind::resize_in_place(p, size, new_size);
            // SAFETY: `p` is a live block, so not null.
            return Ok(unsafe { NonNull::new_unchecked(p) });
        }
        (Fit::Large, Fit::Large) if align <= page_size() => {
            // SAFETY: `p` is a live large block (guaranteed by the caller).
            let node = unsafe { large::node_of(p) };
            // SAFETY: as above; on success only the new pointer is used.
            let moved = unsafe {
                large::realloc(os::system(), p, new_size, memory_node(node), bind_policy())
            };
            if moved.is_ok() {
                return moved;
            }
        }
        _ => {}
    }
    // SAFETY: forwarded with the caller's guarantees.
    unsafe {
        let q = alloc(place, new_size, align, false)?;
        std::ptr::copy_nonoverlapping(p, q.as_ptr(), size.min(new_size));
        dealloc(p, size, align);
        Ok(q)
    }
}

/// Whether the block is large (its own mapping).
pub(crate) fn is_large(size: usize, align: usize) -> bool {
    fit(size, align) == Fit::Large
}
