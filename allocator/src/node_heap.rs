//! [`NodeHeap`]: one node's memory as an `allocator_api2` allocator.

use crate::placement::{check_node, check_usable, current_node, AllocError, MemoryKind};
use crate::raw::{self, Place};
use crate::stats::{node_stats, NodeStats};
use crate::NodeId;
use allocator_api2::alloc::{AllocError as ApiAllocError, Allocator};
use std::alloc::Layout;
use std::ptr::NonNull;

/// A handle to one node's heap, usable as the allocator of ordinary
/// collections (`allocator_api2::vec::Vec`, `hashbrown`), so their memory
/// sits on a chosen node without changing the global allocator.
///
/// Each thread allocates from its own heap for the node, so the handle is
/// `Copy`, `Send` and `Sync` and takes no lock.
///
/// ```
/// use allocator_api2::vec::Vec;
/// use numa_rt_alloc::{current_node, NodeHeap};
///
/// let heap = NodeHeap::new(current_node())?;
/// let mut v: Vec<u64, NodeHeap> = Vec::new_in(heap);
/// v.extend(0..1000);
/// assert_eq!(v.iter().sum::<u64>(), 499_500);
/// # Ok::<(), numa_rt_alloc::AllocError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeHeap {
    node: NodeId,
}

impl NodeHeap {
    /// The heap of `node`.
    ///
    /// # Errors
    /// [`AllocError::UnknownNode`] or [`AllocError::NoMemory`] when memory
    /// cannot be placed there.
    pub fn new(node: NodeId) -> Result<NodeHeap, AllocError> {
        check_node(node)?;
        Ok(NodeHeap { node })
    }

    /// The heap holding memory of `kind` for the calling thread's node.
    ///
    /// # Errors
    /// As for [`NodeHeap::new`].
    pub fn for_kind(kind: MemoryKind) -> Result<NodeHeap, AllocError> {
        NodeHeap::new(kind.resolve(current_node()))
    }

    /// The node.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// While the process may not use this heap's node (it has a fallback,
    /// see [`set_node_fallback`](crate::set_node_fallback)), the heap of
    /// the node its new memory goes to instead; `None` otherwise.
    ///
    /// ```
    /// use numa_rt_alloc::{current_node, NodeHeap};
    /// let heap = NodeHeap::new(current_node())?;
    /// assert_eq!(heap.fallback(), None);
    /// # Ok::<(), numa_rt_alloc::AllocError>(())
    /// ```
    pub fn fallback(&self) -> Option<NodeHeap> {
        crate::placement::node_fallback(self.node).map(|node| NodeHeap { node })
    }

    /// Statistics of the node.
    pub fn stats(&self) -> NodeStats {
        node_stats(self.node)
    }

    /// Allocates memory for `layout` on this node.
    ///
    /// # Errors
    /// [`AllocError::Refused`] when the kernel refuses to map or bind;
    /// [`AllocError::NoMemory`] while the process may not use the node
    /// (see [`set_node_fallback`](crate::set_node_fallback)).
    pub fn allocate_on(&self, layout: Layout, zeroed: bool) -> Result<NonNull<u8>, AllocError> {
        if layout.size() == 0 {
            return Ok(dangling(layout));
        }
        check_usable(self.node)?;
        // SAFETY: a Layout's align is a power of two and its size fits isize.
        unsafe {
            raw::alloc(
                Place::Node(self.node),
                layout.size(),
                layout.align(),
                zeroed,
            )
        }
        .map_err(|source| AllocError::Refused {
            node: self.node,
            source,
        })
    }

    /// Frees memory from [`allocate_on`](Self::allocate_on) (or from any
    /// `NodeHeap` or [`NumaAlloc`](crate::NumaAlloc): they share heaps).
    ///
    /// # Safety
    /// `ptr` was allocated with `layout` by this crate and is no longer used.
    pub unsafe fn deallocate_on(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            // SAFETY: guaranteed by the caller.
            unsafe { raw::dealloc(ptr.as_ptr(), layout.size(), layout.align()) }
        }
    }

    /// Resizes memory from this crate, keeping its alignment; large blocks
    /// grow with `mremap`, without copying.
    ///
    /// # Safety
    /// `ptr` was allocated with `old` by this crate and is live; `new_size`
    /// rounded up to `old.align()` fits `isize`. On success only the
    /// returned pointer may be used.
    ///
    /// # Errors
    /// [`AllocError::Refused`] when the kernel refuses, or
    /// [`AllocError::NoMemory`] as for [`allocate_on`](Self::allocate_on);
    /// the old block is then unchanged.
    pub unsafe fn resize_on(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new_size: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        let refused = |source| AllocError::Refused {
            node: self.node,
            source,
        };
        if old.size() == 0 {
            let layout = Layout::from_size_align(new_size, old.align())
                .map_err(|_| AllocError::CapacityOverflow)?;
            return self.allocate_on(layout, false);
        }
        if new_size == 0 {
            // SAFETY: guaranteed by the caller.
            unsafe { self.deallocate_on(ptr, old) };
            return Ok(dangling(old));
        }
        check_usable(self.node)?;
        // SAFETY: guaranteed by the caller.
        unsafe {
            raw::realloc(
                Place::Node(self.node),
                ptr.as_ptr(),
                old.size(),
                old.align(),
                new_size,
            )
        }
        .map_err(refused)
    }
}

fn dangling(layout: Layout) -> NonNull<u8> {
    // SAFETY: an alignment is never zero.
    unsafe { NonNull::new_unchecked(layout.align() as *mut u8) }
}

fn slice(p: NonNull<u8>, len: usize) -> NonNull<[u8]> {
    NonNull::slice_from_raw_parts(p, len)
}

// SAFETY: blocks stay valid until deallocated, whichever copy of the handle
// frees them (all handles and threads share the same segments), and the
// methods below honour the layouts they are given.
unsafe impl Allocator for NodeHeap {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, ApiAllocError> {
        self.allocate_on(layout, false)
            .map(|p| slice(p, layout.size()))
            .map_err(|_| ApiAllocError)
    }

    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, ApiAllocError> {
        self.allocate_on(layout, true)
            .map(|p| slice(p, layout.size()))
            .map_err(|_| ApiAllocError)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: Allocator's contract.
        unsafe { self.deallocate_on(ptr, layout) }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, ApiAllocError> {
        // SAFETY: Allocator's contract: `ptr` is live with `old`, new >= old.
        unsafe { self.change(ptr, old, new) }
    }

    unsafe fn grow_zeroed(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, ApiAllocError> {
        // SAFETY: as for `grow`; the tail written is inside the new block.
        unsafe {
            let p = self.change(ptr, old, new)?;
            p.cast::<u8>()
                .as_ptr()
                .add(old.size())
                .write_bytes(0, new.size() - old.size());
            Ok(p)
        }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, ApiAllocError> {
        // SAFETY: Allocator's contract: `ptr` is live with `old`, new <= old.
        unsafe { self.change(ptr, old, new) }
    }
}

impl NodeHeap {
    /// Moves a block to a new layout: resized in place when the alignment
    /// stays, else allocate, copy, free.
    unsafe fn change(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, ApiAllocError> {
        if old.align() == new.align() {
            // SAFETY: forwarded from the Allocator contract.
            return unsafe { self.resize_on(ptr, old, new.size()) }
                .map(|p| slice(p, new.size()))
                .map_err(|_| ApiAllocError);
        }
        let q = self.allocate_on(new, false).map_err(|_| ApiAllocError)?;
        // SAFETY: both blocks are live and distinct; we copy the smaller size.
        unsafe {
            std::ptr::copy_nonoverlapping(ptr.as_ptr(), q.as_ptr(), old.size().min(new.size()));
            self.deallocate_on(ptr, old);
        }
        Ok(slice(q, new.size()))
    }
}
