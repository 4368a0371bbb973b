//! NumaAlloc as the process's global allocator: everything the standard
//! library and the test harness allocate goes through it.

use numa_rt_alloc::{current_node, node_stats, NodeVec, NumaAlloc};
use std::collections::HashMap;
use std::sync::mpsc;
use std::thread;

#[global_allocator]
static GLOBAL: NumaAlloc = NumaAlloc;

#[test]
fn collections_work() {
    let mut m: HashMap<String, Vec<u64>> = HashMap::new();
    for i in 0..10_000u64 {
        m.entry(format!("k{}", i % 977)).or_default().push(i);
    }
    assert_eq!(m.len(), 977);
    assert_eq!(m.values().map(Vec::len).sum::<usize>(), 10_000);
    let mut big: Vec<u8> = Vec::new();
    for i in 0..(8 << 20) {
        big.push(i as u8);
    }
    assert!(big.iter().enumerate().all(|(i, &b)| b == i as u8));
    big.truncate(10);
    big.shrink_to_fit();
    assert_eq!(big, (0..10).collect::<Vec<u8>>());
}

#[test]
fn blocks_freed_on_other_threads() {
    let (tx, rx) = mpsc::channel::<Vec<Box<[u8]>>>();
    let consumer = thread::spawn(move || {
        let mut n = 0usize;
        for batch in rx {
            for b in batch {
                assert!(b.iter().all(|&x| x == b.len() as u8));
                n += 1;
            }
        }
        n
    });
    let producers: Vec<_> = (0..3)
        .map(|t| {
            let tx = tx.clone();
            thread::spawn(move || {
                for round in 0..200 {
                    let batch: Vec<Box<[u8]>> = (0..100)
                        .map(|i| {
                            let len = 1 + (i * 37 + round * 11 + t) % 3000;
                            vec![len as u8; len].into_boxed_slice()
                        })
                        .collect();
                    tx.send(batch).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(consumer.join().unwrap(), 3 * 200 * 100);
    assert!(node_stats(current_node()).remote_frees > 0);
}

#[test]
fn many_short_threads_reuse_heaps() {
    let before = node_stats(current_node()).mapped_bytes;
    for _ in 0..50 {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                thread::spawn(move || {
                    let v: Vec<String> = (0..500).map(|j| format!("{i}-{j}")).collect();
                    v.len()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 500);
        }
    }
    numa_rt_alloc::trim();
    let after = node_stats(current_node()).mapped_bytes;
    // 400 threads came and went; adopted heaps keep the mapping bounded.
    assert!(
        after < before + (256 << 20),
        "mapped grew from {before} to {after}"
    );
}

#[test]
fn aligned_and_zeroed_layouts() {
    use std::alloc::{GlobalAlloc, Layout};
    for align in [1, 8, 16, 32, 64, 256, 4096, 8192, 1 << 21] {
        for size in [1, 24, 100, 5000, 100_000, 300_000] {
            let l = Layout::from_size_align(size, align).unwrap();
            // SAFETY: non-zero size; freed with the same layout.
            unsafe {
                let p = GLOBAL.alloc_zeroed(l);
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "size {size} align {align}");
                assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == 0));
                p.write_bytes(0xAB, size);
                let q = GLOBAL.realloc(p, l, size * 3);
                assert!(!q.is_null());
                assert_eq!(q as usize % align, 0);
                assert!(std::slice::from_raw_parts(q, size)
                    .iter()
                    .all(|&b| b == 0xAB));
                GLOBAL.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
            }
        }
    }
}

#[test]
fn huge_requests_fail_with_null() {
    use std::alloc::{GlobalAlloc, Layout};
    let l = Layout::from_size_align(1 << 60, 8).unwrap();
    // SAFETY: non-zero size; a null result is not freed.
    let p = unsafe { GLOBAL.alloc(l) };
    assert!(p.is_null());
    let mut v: Vec<u8> = Vec::new();
    assert!(v.try_reserve(1 << 60).is_err());
}

#[test]
fn node_vec_under_the_global_allocator() {
    let mut v = NodeVec::new_on(current_node()).unwrap();
    v.resize(3 << 20, 1u8);
    assert_eq!(v.iter().map(|&b| b as usize).sum::<usize>(), 3 << 20);
}

static LATE_ALLOC_OK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn late_destructor(_value: *mut libc::c_void) {
    // Runs after the thread's Rust thread-locals are gone (glibc runs
    // pthread key destructors after the C++/Rust TLS destructors), so the
    // allocator must serve this from its shared fallback heap.
    let v: Vec<u64> = (0..1000).collect();
    let s = format!("{}", v.iter().sum::<u64>());
    LATE_ALLOC_OK.store(s == "499500", std::sync::atomic::Ordering::SeqCst);
}

#[test]
fn allocation_after_thread_locals_are_destroyed() {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid out-pointer; the destructor is a C function.
    assert_eq!(
        unsafe { libc::pthread_key_create(&mut key, Some(late_destructor)) },
        0
    );
    thread::spawn(move || {
        let v = [1u8; 100];
        // SAFETY: a non-null value makes the destructor run at thread exit.
        unsafe { libc::pthread_setspecific(key, 1 as *const libc::c_void) };
        v.len()
    })
    .join()
    .unwrap();
    assert!(LATE_ALLOC_OK.load(std::sync::atomic::Ordering::SeqCst));
}
