//! [`NodeBox`]: one value placed on a chosen node.

use crate::placement::{check_node, check_usable, current_node, AllocError, MemoryKind};
use crate::raw::{self, Place};
use crate::{large, os, NodeId};
use std::fmt;
use std::mem::{self, ManuallyDrop};
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};

/// A box whose value lives in the memory of a chosen NUMA node.
///
/// ```
/// use numa_rt_alloc::{current_node, NodeBox};
/// let b = NodeBox::new_on(current_node(), [7u64; 64])?;
/// assert_eq!(b[63], 7);
/// assert_eq!(b.node(), current_node());
/// # Ok::<(), numa_rt_alloc::AllocError>(())
/// ```
pub struct NodeBox<T> {
    ptr: NonNull<T>,
    node: NodeId,
}

// SAFETY: a NodeBox owns its value like a Box does.
unsafe impl<T: Send> Send for NodeBox<T> {}
// SAFETY: shared access only hands out `&T`.
unsafe impl<T: Sync> Sync for NodeBox<T> {}

impl<T> NodeBox<T> {
    /// Places `value` on `node`.
    ///
    /// # Errors
    /// [`AllocError::UnknownNode`], [`AllocError::NoMemory`] or
    /// [`AllocError::Refused`].
    pub fn new_on(node: NodeId, value: T) -> Result<NodeBox<T>, AllocError> {
        check_node(node)?;
        let ptr = alloc_for::<T>(node)?;
        // SAFETY: fresh memory sized and aligned for T.
        unsafe { ptr.as_ptr().write(value) };
        Ok(NodeBox { ptr, node })
    }

    /// Places `value` in memory of `kind` for the calling thread's node
    /// (see [`MemoryKind`] for how kinds resolve).
    ///
    /// # Errors
    /// As for [`NodeBox::new_on`].
    pub fn new_kind(kind: MemoryKind, value: T) -> Result<NodeBox<T>, AllocError> {
        NodeBox::new_on(kind.resolve(current_node()), value)
    }

    /// The node the value was placed on.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Moves the value to `node`. Large values (above 128 KiB) have their
    /// pages moved by the kernel (`move_pages`); small ones are copied into
    /// a block of the new node's heap.
    ///
    /// # Errors
    /// As for [`NodeBox::new_on`]; the value stays where it was.
    pub fn migrate_to(&mut self, node: NodeId) -> Result<(), AllocError> {
        if node == self.node {
            return Ok(());
        }
        check_node(node)?;
        let (size, align) = (mem::size_of::<T>(), mem::align_of::<T>());
        if size == 0 {
            self.node = node;
            return Ok(());
        }
        if raw::is_large(size, align) {
            // SAFETY: our block is a live large block.
            unsafe {
                large::migrate(
                    os::system(),
                    self.ptr.as_ptr().cast(),
                    node,
                    crate::placement::memory_node(node),
                    crate::placement::bind_policy(),
                )
            }
            .map_err(|source| AllocError::Refused { node, source })?;
        } else {
            let new = alloc_for::<T>(node)?;
            // SAFETY: both blocks hold a T; the old one is freed without
            // dropping its (moved) value.
            unsafe {
                ptr::copy_nonoverlapping(self.ptr.as_ptr(), new.as_ptr(), 1);
                raw::dealloc(self.ptr.as_ptr().cast(), size, align);
            }
            self.ptr = new;
        }
        self.node = node;
        Ok(())
    }

    /// Takes the value out, freeing its memory.
    pub fn into_inner(self) -> T {
        let this = ManuallyDrop::new(self);
        // SAFETY: the value is live; we read it once and free the block
        // without dropping the value again.
        unsafe {
            let value = this.ptr.as_ptr().read();
            free_for::<T>(this.ptr);
            value
        }
    }
}

fn alloc_for<T>(node: NodeId) -> Result<NonNull<T>, AllocError> {
    let (size, align) = (mem::size_of::<T>(), mem::align_of::<T>());
    if size == 0 {
        return Ok(NonNull::dangling());
    }
    check_usable(node)?;
    // SAFETY: size and align come from a real type.
    unsafe { raw::alloc(Place::Node(node), size, align, false) }
        .map(|p| p.cast())
        .map_err(|source| AllocError::Refused { node, source })
}

/// # Safety
/// `p` came from `alloc_for::<T>` and its value is gone.
unsafe fn free_for<T>(p: NonNull<T>) {
    let (size, align) = (mem::size_of::<T>(), mem::align_of::<T>());
    if size != 0 {
        // SAFETY: guaranteed by the caller.
        unsafe { raw::dealloc(p.as_ptr().cast(), size, align) }
    }
}

impl<T> Drop for NodeBox<T> {
    fn drop(&mut self) {
        // SAFETY: the value is live and dropped once, then its block freed.
        unsafe {
            ptr::drop_in_place(self.ptr.as_ptr());
            free_for::<T>(self.ptr);
        }
    }
}

impl<T> Deref for NodeBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the value is live while the box is.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> DerefMut for NodeBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the value is live and we hold the box mutably.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T: fmt::Debug> fmt::Debug for NodeBox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeBox")
            .field("node", &self.node)
            .field("value", &**self)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn holds_drops_and_moves() {
        let here = current_node();
        let counter = Rc::new(());
        {
            let mut b = NodeBox::new_on(here, (counter.clone(), [1u8; 300])).unwrap();
            assert_eq!(Rc::strong_count(&counter), 2);
            b.1[299] = 5;
            b.migrate_to(here).unwrap();
            assert_eq!(b.1[299], 5);
        }
        assert_eq!(Rc::strong_count(&counter), 1);
        let b = NodeBox::new_on(here, String::from("x")).unwrap();
        assert_eq!(b.into_inner(), "x");
        let z = NodeBox::new_on(here, ()).unwrap();
        assert_eq!(*z, ());
    }

    #[test]
    fn large_values_and_unknown_nodes() {
        let here = current_node();
        let mut b = NodeBox::new_on(here, [3u64; 40_000]).unwrap();
        assert_eq!(b[39_999], 3);
        b.migrate_to(here).unwrap();
        assert!(matches!(
            b.migrate_to(NodeId::new(999)),
            Err(AllocError::UnknownNode(_))
        ));
        assert_eq!(b[0], 3);
        assert!(matches!(
            NodeBox::new_on(NodeId::new(999), 1u8),
            Err(AllocError::UnknownNode(_))
        ));
        let k = NodeBox::new_kind(MemoryKind::Capacity, 9u32).unwrap();
        assert_eq!(*k, 9);
    }
}
