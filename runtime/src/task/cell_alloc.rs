//! Where task cells live: the home node's heap, or the global allocator
//! when that heap refuses.
//!
//! The scheduler looks the heap up once per pool when the runtime is built,
//! so a spawn only indexes a slice; the heap that served a cell is kept in
//! the cell's header, so the free goes back to the same allocator.

use std::alloc::Layout;
use std::ptr::{self, NonNull};

use numa_rt_alloc::NodeHeap;

/// Moves `value` into a fresh block from `heap` (or from its fallback
/// while the process may not use its node: the nearest allowed node, set
/// by the affinity monitor), else from the global allocator when `heap` is
/// `None` or refuses (mapping or binding failed). Returns the block and
/// the heap that actually served it.
pub(crate) fn alloc_cell<T>(heap: Option<NodeHeap>, value: T) -> (NonNull<T>, Option<NodeHeap>) {
    let heaps = heap.into_iter().chain(heap.and_then(|h| h.fallback()));
    for heap in heaps {
        if let Ok(block) = heap.allocate_on(Layout::new::<T>(), false) {
            let cell = block.cast::<T>();
            // SAFETY: the block is fresh, sized and aligned for `T`.
            unsafe { cell.as_ptr().write(value) };
            return (cell, Some(heap));
        }
    }
    (NonNull::from(Box::leak(Box::new(value))), None)
}

/// Drops the cell's value and frees its block.
///
/// # Safety
/// `cell` came from [`alloc_cell`], which returned `heap` with it, and is
/// not used again.
pub(crate) unsafe fn free_cell<T>(cell: NonNull<T>, heap: Option<NodeHeap>) {
    match heap {
        Some(heap) => {
            // SAFETY: the value is live and never touched again.
            unsafe { ptr::drop_in_place(cell.as_ptr()) };
            // SAFETY: `heap` allocated the block with this layout.
            unsafe { heap.deallocate_on(cell.cast::<u8>(), Layout::new::<T>()) }
        }
        // SAFETY: without a heap the block is a leaked `Box<T>`.
        None => drop(unsafe { Box::from_raw(cell.as_ptr()) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use numa_rt_alloc::{current_node, NodeId};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Counted(Arc<AtomicUsize>, [u64; 16]);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn node_heap_cells_are_counted_and_dropped() {
        let heap = NodeHeap::new(current_node()).unwrap();
        let drops = Arc::new(AtomicUsize::new(0));
        let before = heap.stats().in_use_bytes;
        let cells: Vec<_> = (0..1000)
            .map(|i| alloc_cell(Some(heap), Counted(drops.clone(), [i; 16])))
            .collect();
        assert!(cells.iter().all(|(_, h)| *h == Some(heap)));
        let during = heap.stats().in_use_bytes;
        assert!(during >= before + 1000 * 128, "{before} -> {during}");
        for (i, (cell, h)) in cells.into_iter().enumerate() {
            // SAFETY: alloc_cell made it and it is freed once.
            unsafe {
                assert_eq!(cell.as_ref().1[0], i as u64);
                free_cell(cell, h);
            }
        }
        assert_eq!(drops.load(Ordering::Relaxed), 1000);
        assert!(heap.stats().in_use_bytes < during);
    }

    #[test]
    fn without_a_heap_cells_come_from_the_global_allocator() {
        // A node no machine has: no heap, so the fallback serves the cell.
        assert!(NodeHeap::new(NodeId::new(4000)).is_err());
        let drops = Arc::new(AtomicUsize::new(0));
        let (cell, heap) = alloc_cell(None, Counted(drops.clone(), [7; 16]));
        assert_eq!(heap, None);
        // SAFETY: made above, freed once.
        unsafe {
            assert_eq!(cell.as_ref().1[15], 7);
            free_cell(cell, heap);
        }
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }
}
