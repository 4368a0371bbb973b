//! [`NodeVec`]: a growable array placed on a chosen node.

use crate::placement::{check_node, check_usable, current_node, AllocError, MemoryKind};
use crate::raw::{self, Place};
use crate::{large, os, NodeId};
use std::alloc::{handle_alloc_error, Layout};
use std::fmt;
use std::mem;
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};

/// A `Vec`-like array whose elements live in the memory of a chosen node.
///
/// Growth doubles the capacity; once the array is larger than 128 KiB it is
/// a mapping of its own, grown with `mremap`, so growing to N bytes never
/// holds old and new copies at once.
///
/// ```
/// use numa_rt_alloc::{current_node, NodeVec};
/// let mut v = NodeVec::new_on(current_node())?;
/// v.extend(0..10_000u32);
/// v.push(7);
/// assert_eq!(v.len(), 10_001);
/// assert_eq!(v[9_999], 9_999);
/// assert_eq!(v.node(), current_node());
/// # Ok::<(), numa_rt_alloc::AllocError>(())
/// ```
pub struct NodeVec<T> {
    ptr: NonNull<T>,
    len: usize,
    cap: usize,
    node: NodeId,
}

// SAFETY: a NodeVec owns its elements like a Vec does.
unsafe impl<T: Send> Send for NodeVec<T> {}
// SAFETY: shared access only hands out `&[T]`.
unsafe impl<T: Sync> Sync for NodeVec<T> {}

const fn is_zst<T>() -> bool {
    mem::size_of::<T>() == 0
}

impl<T> NodeVec<T> {
    /// An empty array on `node` (allocates nothing yet).
    ///
    /// # Errors
    /// [`AllocError::UnknownNode`] or [`AllocError::NoMemory`].
    pub fn new_on(node: NodeId) -> Result<NodeVec<T>, AllocError> {
        check_node(node)?;
        Ok(NodeVec {
            ptr: NonNull::dangling(),
            len: 0,
            cap: if is_zst::<T>() { usize::MAX } else { 0 },
            node,
        })
    }

    /// An empty array with room for `capacity` elements on `node`.
    ///
    /// # Errors
    /// As for [`NodeVec::new_on`], plus [`AllocError::Refused`] and
    /// [`AllocError::CapacityOverflow`].
    pub fn with_capacity_on(node: NodeId, capacity: usize) -> Result<NodeVec<T>, AllocError> {
        let mut v = NodeVec::new_on(node)?;
        v.try_reserve(capacity)?;
        Ok(v)
    }

    /// An empty array in memory of `kind` for the calling thread's node.
    ///
    /// # Errors
    /// As for [`NodeVec::new_on`].
    pub fn new_kind(kind: MemoryKind) -> Result<NodeVec<T>, AllocError> {
        NodeVec::new_on(kind.resolve(current_node()))
    }

    /// The node the elements live on.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements the array holds without growing.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// A pointer to the first element.
    pub fn as_ptr(&self) -> *const T {
        self.ptr.as_ptr()
    }

    fn layout(cap: usize) -> Result<Layout, AllocError> {
        Layout::array::<T>(cap).map_err(|_| AllocError::CapacityOverflow)
    }

    /// Makes room for at least `additional` more elements.
    ///
    /// # Errors
    /// [`AllocError::CapacityOverflow`] or [`AllocError::Refused`], or
    /// [`AllocError::NoMemory`] while the process may not use the node
    /// (see [`set_node_fallback`](crate::set_node_fallback)); the array is
    /// unchanged.
    pub fn try_reserve(&mut self, additional: usize) -> Result<(), AllocError> {
        let needed = self
            .len
            .checked_add(additional)
            .ok_or(AllocError::CapacityOverflow)?;
        if needed <= self.cap {
            return Ok(());
        }
        let min = if mem::size_of::<T>() <= 1024 { 8 } else { 1 };
        let new_cap = needed.max(self.cap.saturating_mul(2)).max(min);
        self.grow_to(new_cap)
    }

    fn grow_to(&mut self, new_cap: usize) -> Result<(), AllocError> {
        let new = Self::layout(new_cap)?;
        let node = self.node;
        check_usable(node)?;
        let refused = |source| AllocError::Refused { node, source };
        let p = if self.cap == 0 {
            // SAFETY: a valid, non-zero-sized layout.
            unsafe { raw::alloc(Place::Node(node), new.size(), new.align(), false) }
                .map_err(refused)?
        } else {
            let old = Self::layout(self.cap)?;
            // SAFETY: our block is live with `old`; on success we only use
            // the returned pointer.
            unsafe {
                raw::realloc(
                    Place::Node(node),
                    self.ptr.as_ptr().cast(),
                    old.size(),
                    old.align(),
                    new.size(),
                )
            }
            .map_err(refused)?
        };
        self.ptr = p.cast();
        self.cap = new_cap;
        Ok(())
    }

    /// Makes room for at least `additional` more elements; on out of
    /// memory calls [`handle_alloc_error`], as `Vec` does.
    pub fn reserve(&mut self, additional: usize) {
        if let Err(e) = self.try_reserve(additional) {
            self.alloc_failed(e, additional)
        }
    }

    #[cold]
    fn alloc_failed(&self, e: AllocError, additional: usize) -> ! {
        match e {
            AllocError::CapacityOverflow => panic!("NodeVec capacity overflow"),
            _ => {
                let n = self.len.saturating_add(additional);
                let layout = Layout::array::<T>(n).unwrap_or(Layout::new::<T>());
                handle_alloc_error(layout)
            }
        }
    }

    /// Appends an element.
    ///
    /// # Errors
    /// Gives the element back with the error when memory runs out.
    pub fn try_push(&mut self, value: T) -> Result<(), (T, AllocError)> {
        if self.len == self.cap {
            if let Err(e) = self.try_reserve(1) {
                return Err((value, e));
            }
        }
        // SAFETY: `len < cap`, so the slot is inside the block.
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len += 1;
        Ok(())
    }

    /// Appends an element; on out of memory calls [`handle_alloc_error`],
    /// as `Vec::push` does.
    pub fn push(&mut self, value: T) {
        if self.len == self.cap {
            self.reserve(1);
        }
        // SAFETY: `len < cap`, so the slot is inside the block.
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len += 1;
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: the slot held a live element, now no longer counted.
        Some(unsafe { self.ptr.as_ptr().add(self.len).read() })
    }

    /// Drops the elements from `len` on.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let tail = self.len - len;
        self.len = len;
        // SAFETY: the `tail` elements after `len` are live and no longer counted.
        unsafe {
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(
                self.ptr.as_ptr().add(len),
                tail,
            ))
        };
    }

    /// Drops every element, keeping the capacity.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Moves the elements to `node`: a large array has its pages moved by
    /// the kernel (`move_pages`) and its mapping bound there; a small one
    /// is copied into a block of the new node's heap.
    ///
    /// # Errors
    /// As for [`NodeVec::new_on`]; the elements stay where they were.
    pub fn migrate_to(&mut self, node: NodeId) -> Result<(), AllocError> {
        if node == self.node {
            return Ok(());
        }
        check_node(node)?;
        if self.cap == 0 || is_zst::<T>() {
            self.node = node;
            return Ok(());
        }
        let layout = Self::layout(self.cap)?;
        if raw::is_large(layout.size(), layout.align()) {
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
            // SAFETY: a valid non-zero layout; the copy moves `len` live
            // elements into the new block before the old one is freed.
            unsafe {
                let p = raw::alloc(Place::Node(node), layout.size(), layout.align(), false)
                    .map_err(|source| AllocError::Refused { node, source })?;
                ptr::copy_nonoverlapping(self.ptr.as_ptr(), p.as_ptr().cast::<T>(), self.len);
                raw::dealloc(self.ptr.as_ptr().cast(), layout.size(), layout.align());
                self.ptr = p.cast();
            }
        }
        self.node = node;
        Ok(())
    }
}

impl<T: Clone> NodeVec<T> {
    /// Appends clones of every element of `items`.
    pub fn extend_from_slice(&mut self, items: &[T]) {
        self.reserve(items.len());
        for item in items {
            self.push(item.clone());
        }
    }

    /// Grows or shrinks to `len` elements, filling with clones of `value`.
    pub fn resize(&mut self, len: usize, value: T) {
        if len <= self.len {
            self.truncate(len);
            return;
        }
        self.reserve(len - self.len);
        while self.len < len {
            // SAFETY: `len <= cap` after reserve.
            unsafe { self.ptr.as_ptr().add(self.len).write(value.clone()) };
            self.len += 1;
        }
    }
}

impl<T> Extend<T> for NodeVec<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        self.reserve(iter.size_hint().0);
        for item in iter {
            self.push(item);
        }
    }
}

impl<T> Drop for NodeVec<T> {
    fn drop(&mut self) {
        self.clear();
        if self.cap != 0 && !is_zst::<T>() {
            if let Ok(layout) = Self::layout(self.cap) {
                // SAFETY: our block is live with this layout and now empty.
                unsafe { raw::dealloc(self.ptr.as_ptr().cast(), layout.size(), layout.align()) };
            }
        }
    }
}

impl<T> Deref for NodeVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` elements from `ptr` are live (or ptr is dangling
        // and aligned with len 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> DerefMut for NodeVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as for `deref`, and we hold the array mutably.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: fmt::Debug> fmt::Debug for NodeVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_through_small_and_large_keeping_contents() {
        let mut v = NodeVec::new_on(current_node()).unwrap();
        for i in 0..200_000u32 {
            v.push(i);
        }
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
        assert_eq!(v.pop(), Some(199_999));
        v.truncate(10);
        assert_eq!(&v[..3], &[0, 1, 2]);
        v.resize(1_000_000, 7);
        assert_eq!(v[999_999], 7);
        v.clear();
        assert!(v.is_empty());
    }

    #[test]
    fn drops_elements_and_handles_zsts() {
        let mut v = NodeVec::new_on(current_node()).unwrap();
        v.extend((0..100).map(|i| format!("s{i}")));
        assert_eq!(v[42], "s42");
        v.migrate_to(current_node()).unwrap();
        let mut z = NodeVec::new_on(current_node()).unwrap();
        z.extend(std::iter::repeat(()).take(1000));
        assert_eq!(z.len(), 1000);
        assert!(matches!(
            NodeVec::<u8>::new_on(NodeId::new(999)),
            Err(AllocError::UnknownNode(_))
        ));
        let mut o = NodeVec::<u8>::new_on(current_node()).unwrap();
        assert_eq!(o.try_reserve(usize::MAX), Err(AllocError::CapacityOverflow));
    }
}
