//! Model test: random alloc / realloc / free sequences over every size
//! class and many alignments, run by several threads that hand blocks to
//! each other to free. Checks: blocks never overlap, alignment holds,
//! contents survive realloc, and everything is returned at the end.
//!
//! The process keeps the system allocator as its global allocator, so the
//! allocator's statistics count only the blocks this test makes.

use numa_rt_alloc::{current_node, node_stats, trim, NodeHeap, NumaAlloc};
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
enum Op {
    Alloc {
        size: usize,
        align_log: u32,
        zeroed: bool,
        on_node: bool,
    },
    Realloc {
        slot: usize,
        size: usize,
    },
    Free {
        slot: usize,
    },
    Give {
        slot: usize,
    },
    Take,
}

struct Live {
    ptr: usize,
    size: usize,
    align: usize,
    tag: u8,
    on_node: bool,
}

fn fill(l: &Live) {
    // SAFETY: the block is live and `size` bytes long.
    unsafe {
        let p = l.ptr as *mut u8;
        for i in 0..l.size {
            *p.add(i) = l.tag.wrapping_add((i % 251) as u8);
        }
    }
}

fn check(l: &Live, upto: usize) {
    // SAFETY: the block is live and at least `upto` bytes long.
    unsafe {
        let p = l.ptr as *const u8;
        for i in 0..upto.min(l.size) {
            assert_eq!(
                *p.add(i),
                l.tag.wrapping_add((i % 251) as u8),
                "block {:#x} (size {}, align {}) corrupted at {i}",
                l.ptr,
                l.size,
                l.align
            );
        }
    }
}

fn layout(l: &Live) -> Layout {
    Layout::from_size_align(l.size, l.align).unwrap()
}

fn free(l: Live) {
    check(&l, l.size);
    // SAFETY: live block with this layout, freed once.
    unsafe {
        if l.on_node {
            NodeHeap::new(current_node()).unwrap().deallocate_on(
                std::ptr::NonNull::new(l.ptr as *mut u8).unwrap(),
                layout(&l),
            );
        } else {
            NumaAlloc.dealloc(l.ptr as *mut u8, layout(&l));
        }
    }
}

fn run(ops: Vec<Op>, mailbox: Arc<Mutex<Vec<Live>>>, seed: u8) {
    let mut live: Vec<Live> = Vec::new();
    let mut tag = seed;
    for op in ops {
        match op {
            Op::Alloc {
                size,
                align_log,
                zeroed,
                on_node,
            } => {
                let align = 1usize << align_log;
                let l = Layout::from_size_align(size, align).unwrap();
                let ptr = if on_node {
                    let heap = NodeHeap::new(current_node()).unwrap();
                    heap.allocate_on(l, zeroed).unwrap().as_ptr()
                } else if zeroed {
                    // SAFETY: non-zero size.
                    unsafe { NumaAlloc.alloc_zeroed(l) }
                } else {
                    // SAFETY: non-zero size.
                    unsafe { NumaAlloc.alloc(l) }
                };
                assert!(!ptr.is_null());
                assert_eq!(ptr as usize % align, 0, "alignment {align} lost");
                if zeroed {
                    // SAFETY: fresh block of `size` bytes.
                    let s = unsafe { std::slice::from_raw_parts(ptr, size) };
                    assert!(s.iter().all(|&b| b == 0), "zeroed block not zero");
                }
                let (a, b) = (ptr as usize, ptr as usize + size);
                for o in &live {
                    assert!(b <= o.ptr || o.ptr + o.size <= a, "blocks overlap");
                }
                tag = tag.wrapping_add(17);
                let block = Live {
                    ptr: ptr as usize,
                    size,
                    align,
                    tag,
                    on_node,
                };
                fill(&block);
                live.push(block);
            }
            Op::Realloc { slot, size } if !live.is_empty() => {
                let i = slot % live.len();
                let old = &live[i];
                check(old, old.size);
                let new_ptr = if old.on_node {
                    let heap = NodeHeap::new(current_node()).unwrap();
                    // SAFETY: live block with this layout.
                    unsafe {
                        heap.resize_on(
                            std::ptr::NonNull::new(old.ptr as *mut u8).unwrap(),
                            layout(old),
                            size,
                        )
                    }
                    .unwrap()
                    .as_ptr()
                } else {
                    // SAFETY: live block with this layout; non-zero new size.
                    unsafe { NumaAlloc.realloc(old.ptr as *mut u8, layout(old), size) }
                };
                assert!(!new_ptr.is_null());
                assert_eq!(new_ptr as usize % old.align, 0, "realloc lost alignment");
                let moved = Live {
                    ptr: new_ptr as usize,
                    size,
                    align: old.align,
                    tag: old.tag,
                    on_node: old.on_node,
                };
                check(&moved, old.size.min(size));
                fill(&moved);
                live[i] = moved;
            }
            Op::Free { slot } if !live.is_empty() => {
                let i = slot % live.len();
                free(live.swap_remove(i));
            }
            Op::Give { slot } if !live.is_empty() => {
                let i = slot % live.len();
                mailbox.lock().unwrap().push(live.swap_remove(i));
            }
            Op::Take => {
                let got = mailbox.lock().unwrap().pop();
                if let Some(l) = got {
                    free(l);
                }
            }
            _ => {}
        }
    }
    for l in &live {
        check(l, l.size);
    }
    for l in live {
        free(l);
    }
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 1usize..=256,
        4 => 257usize..=8192,
        3 => 8193usize..=131_072,
        1 => 131_073usize..=700_000,
        2 => (0usize..49).prop_map(|c| {
            // Exact class boundaries.
            let sizes = [8usize, 16, 128, 160, 256, 1024, 8192, 10240, 65536, 131_072, 131_073];
            sizes[c % sizes.len()]
        }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (size(), prop_oneof![8 => 0u32..=4, 3 => 5u32..=12, 1 => 13u32..=21], any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(size, align_log, zeroed, on_node)| Op::Alloc { size, align_log, zeroed, on_node }),
        2 => (any::<usize>(), size()).prop_map(|(slot, size)| Op::Realloc { slot, size }),
        2 => any::<usize>().prop_map(|slot| Op::Free { slot }),
        2 => any::<usize>().prop_map(|slot| Op::Give { slot }),
        2 => Just(Op::Take),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn model(threads in prop::collection::vec(prop::collection::vec(op(), 0..150), 1..4)) {
        let node = current_node();
        trim();
        let before = node_stats(node).in_use_bytes;
        let mailbox = Arc::new(Mutex::new(Vec::new()));
        let handles: Vec<_> = threads
            .into_iter()
            .enumerate()
            .map(|(i, ops)| {
                let mailbox = mailbox.clone();
                std::thread::spawn(move || run(ops, mailbox, i as u8 * 50))
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let rest: Vec<Live> = std::mem::take(&mut *mailbox.lock().unwrap());
        for l in rest {
            free(l);
        }
        trim();
        prop_assert_eq!(node_stats(node).in_use_bytes, before, "everything returned");
    }
}
