//! The synchronization primitives the lock-free lists are written against,
//! in two flavours.
//!
//! The lists in [`crate::remote`] are compiled twice from one source file:
//! once on [`std`] primitives, which the allocator runs on, and, under
//! `--cfg loom`, once more on [`loom`] primitives, which the loom models in
//! `tests/loom_*.rs` explore. The allocator itself stays on `std` even under
//! `--cfg loom`: it serves the whole process (including the runtime's own
//! loom models) outside any loom execution, its heaps outlive executions,
//! and loom objects may only live inside one.
//!
//! Each flavour provides the atomics, `fence`, `Ordering`, and [`std::Block`], a free
//! block whose first word links to the next, with `next`/`set_next` to read
//! and write that link. The loom flavour keeps the link in a loom cell so
//! the model also checks that each link write happens before its read.

/// The flavour the allocator runs on.
pub(crate) mod std {
    pub(crate) use ::std::sync::atomic::{fence, AtomicBool, AtomicPtr, Ordering};

    /// A free block: its first word links to the next one.
    #[repr(C)]
    pub(crate) struct Block {
        pub(crate) next: *mut Block,
    }

    /// Reads the link of `block`.
    ///
    /// # Safety
    /// `block` points to a free block that no other thread writes.
    #[inline(always)]
    pub(crate) unsafe fn next(block: *mut Block) -> *mut Block {
        // SAFETY: guaranteed by the caller.
        unsafe { (*block).next }
    }

    /// Writes the link of `block`.
    ///
    /// # Safety
    /// `block` points to a free block the caller owns.
    #[inline(always)]
    pub(crate) unsafe fn set_next(block: *mut Block, next: *mut Block) {
        // SAFETY: guaranteed by the caller.
        unsafe { (*block).next = next }
    }
}

/// The flavour the loom models explore.
#[cfg(loom)]
pub mod loom {
    use ::loom::cell::UnsafeCell;
    pub use ::loom::sync::atomic::{fence, AtomicBool, AtomicPtr, Ordering};
    use ::std::ptr;

    /// A free block whose link lives in a loom cell, so loom reports a link
    /// read that is not ordered after its write.
    pub struct Block {
        next: UnsafeCell<*mut Block>,
    }

    impl Block {
        /// A block with a null link (the model allocates blocks with `Box`).
        pub fn new() -> Block {
            Block {
                next: UnsafeCell::new(ptr::null_mut()),
            }
        }
    }

    impl Default for Block {
        fn default() -> Block {
            Block::new()
        }
    }

    /// Reads the link of `block`.
    ///
    /// # Safety
    /// `block` points to a live block.
    pub unsafe fn next(block: *mut Block) -> *mut Block {
        // SAFETY: the caller guarantees `block` is live; loom checks the
        // read is ordered after the last write.
        unsafe { (*block).next.with(|p| *p) }
    }

    /// Writes the link of `block`.
    ///
    /// # Safety
    /// `block` points to a live block.
    pub unsafe fn set_next(block: *mut Block, next: *mut Block) {
        // SAFETY: the caller guarantees `block` is live; loom checks no
        // other access races with this write.
        unsafe { (*block).next.with_mut(|p| *p = next) }
    }
}
