//! loom models of the allocator's remote-free path: blocks freed by other
//! threads race the owner's batch collection, the owner's "page full" flag,
//! and the heap's ready list. Nothing may be lost, nothing doubled, and a
//! full page that received frees is never left unannounced.
//!
//! Run with `scripts/loom` (or
//! `RUSTFLAGS="--cfg loom" cargo test -p numa-rt-alloc --release --test 'loom_*'`);
//! `LOOM_MAX_PREEMPTIONS` bounds the search (scripts/loom uses 3).
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use numa_rt_alloc::remote::loom::sync::{next, Block};
use numa_rt_alloc::remote::loom::{walk, ReadyLink, ReadyList, ReadyNode, ThreadFree};
use std::collections::HashSet;

/// A page of the model: its remote-free list, its ready link, and the
/// blocks it owns (boxed, so their addresses are stable).
struct Page {
    thread_free: ThreadFree,
    ready: ReadyLink<Page>,
    blocks: Vec<*mut Block>,
}

impl ReadyNode for Page {
    fn ready_link(&self) -> &ReadyLink<Page> {
        &self.ready
    }
}

// SAFETY: the raw block pointers are only handed out to one freeing thread
// each; the lists under test carry them back to the owner.
unsafe impl Send for Page {}
// SAFETY: as above; shared access goes through the atomics under test.
unsafe impl Sync for Page {}

impl Page {
    fn new(blocks: usize) -> Page {
        Page {
            thread_free: ThreadFree::default(),
            ready: ReadyLink::default(),
            blocks: (0..blocks)
                .map(|_| Box::into_raw(Box::new(Block::new())))
                .collect(),
        }
    }

    fn block(&self, i: usize) -> usize {
        self.blocks[i] as usize
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        for &b in &self.blocks {
            // SAFETY: boxed in `Page::new`, dropped once here.
            drop(unsafe { Box::from_raw(b) });
        }
    }
}

/// The blocks of a list returned by `ThreadFree::take`, in order.
fn blocks_of(head: *mut Block) -> Vec<usize> {
    let mut out = Vec::new();
    if head.is_null() {
        return out;
    }
    // SAFETY: the owner took the list; its blocks are live.
    let (n, tail) = unsafe { walk(head) };
    let mut b = head;
    while !b.is_null() {
        out.push(b as usize);
        // SAFETY: as above.
        b = unsafe { next(b) };
    }
    assert_eq!(out.len(), n as usize, "walk counts every block");
    assert_eq!(*out.last().unwrap(), tail as usize, "walk finds the tail");
    out
}

/// Every block pushed comes back exactly once, whether the owner collects
/// while the frees are under way or after.
#[test]
fn remote_frees_race_collection() {
    loom::model(|| {
        let page = Arc::new(Page::new(3));
        let freers: Vec<_> = [vec![0, 1], vec![2]]
            .into_iter()
            .map(|ids| {
                let page = page.clone();
                thread::spawn(move || {
                    for i in ids {
                        // SAFETY: each block is freed once, by this thread.
                        unsafe { page.thread_free.push(page.blocks[i]) };
                    }
                })
            })
            .collect();
        // The owner collects while the frees are under way, until it has
        // seen as many blocks as were freed; only then does it join.
        let mut got = Vec::new();
        while got.len() < 3 {
            got.extend(blocks_of(page.thread_free.take()));
            thread::yield_now();
        }
        for t in freers {
            t.join().unwrap();
        }
        assert!(page.thread_free.take().is_null(), "a block came late");
        let unique: HashSet<usize> = got.iter().copied().collect();
        assert_eq!(unique.len(), got.len(), "a block came back twice: {got:?}");
        let all: HashSet<usize> = (0..3).map(|i| page.block(i)).collect();
        assert_eq!(unique, all, "a block was lost");
    });
}

/// The owner marks the page full while a thread frees into it: either the
/// owner sees the block (and keeps the page in its queue), or the freeing
/// thread is told to announce the page. Never neither.
#[test]
fn full_flag_never_loses_a_wakeup() {
    loom::model(|| {
        let page = Arc::new(Page::new(1));
        let told = Arc::new(AtomicUsize::new(0));
        let freer = {
            let (page, told) = (page.clone(), told.clone());
            thread::spawn(move || {
                // SAFETY: the block is freed once.
                if unsafe { page.thread_free.push(page.blocks[0]) } {
                    told.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let owner_saw = page.thread_free.mark_full();
        freer.join().unwrap();
        let told = told.load(Ordering::Relaxed);
        assert!(owner_saw || told == 1, "page left full with a free waiting");
        assert!(told <= 1, "told more than once");
        assert_eq!(blocks_of(page.thread_free.take()), vec![page.block(0)]);
    });
}

/// Two threads free into two full pages of one heap while the owner drains
/// the ready list: each page told about is drained exactly once per time it
/// was pushed, and its frees all come back.
#[test]
fn ready_list_hands_back_each_page_once() {
    loom::model(|| {
        let pages: Arc<Vec<Page>> = Arc::new(vec![Page::new(1), Page::new(1)]);
        let ready = Arc::new(ReadyList::<Page>::new());
        let pushed = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        for p in pages.iter() {
            assert!(!p.thread_free.mark_full(), "fresh pages have no frees");
        }
        let freers: Vec<_> = (0..2)
            .map(|i| {
                let (pages, ready, pushed) = (pages.clone(), ready.clone(), pushed.clone());
                thread::spawn(move || {
                    let page = &pages[i];
                    // SAFETY: the block is freed once; pages outlive the list.
                    unsafe {
                        if page.thread_free.push(page.blocks[0])
                            && ready.push(page as *const Page as *mut Page)
                        {
                            pushed[i].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        let mut drained = [0usize; 2];
        let drain = |drained: &mut [usize; 2]| {
            // SAFETY: the pages outlive the list.
            for p in unsafe { ready.take() } {
                let i = pages.iter().position(|q| std::ptr::eq(q, p)).unwrap();
                drained[i] += 1;
            }
        };
        drain(&mut drained);
        for t in freers {
            t.join().unwrap();
        }
        drain(&mut drained);
        for i in 0..2 {
            assert_eq!(
                pushed[i].load(Ordering::Relaxed),
                1,
                "page {i} announced once"
            );
            assert_eq!(drained[i], 1, "page {i} drained once");
            assert_eq!(
                blocks_of(pages[i].thread_free.take()),
                vec![pages[i].block(0)]
            );
        }
    });
}

/// A page drained by the owner and freed into again is pushed again and
/// drained again: the `queued` flag is cleared only after the link is read.
#[test]
fn ready_page_can_be_pushed_again_after_drain() {
    loom::model(|| {
        let page = Arc::new(Page::new(0));
        let ready = Arc::new(ReadyList::<Page>::new());
        let pushes = Arc::new(AtomicUsize::new(0));
        let p = Arc::as_ptr(&page) as *mut Page;
        // SAFETY: the page outlives the list.
        assert!(unsafe { ready.push(p) });
        let pusher = {
            let (page, ready, pushes) = (page.clone(), ready.clone(), pushes.clone());
            thread::spawn(move || {
                // SAFETY: as above.
                if unsafe { ready.push(Arc::as_ptr(&page) as *mut Page) } {
                    pushes.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        // SAFETY: as above.
        let mut drained = unsafe { ready.take() }.count();
        pusher.join().unwrap();
        // SAFETY: as above.
        drained += unsafe { ready.take() }.count();
        assert_eq!(drained, 1 + pushes.load(Ordering::Relaxed));
        assert!(ready.is_empty());
    });
}
