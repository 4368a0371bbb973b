//! Allocator benchmarks: numa_rt's `NumaAlloc` against mimalloc and the
//! system allocator (glibc), each doing the same work through the
//! `GlobalAlloc` interface in the same process.
//!
//! ```text
//! cargo bench --bench alloc -- --warm-up-time 1 --measurement-time 3
//! ```

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use numa_rt_alloc::NumaAlloc;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
static NUMA: NumaAlloc = NumaAlloc;
static SYSTEM: System = System;

/// A small xorshift generator, so every allocator sees the same sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// Allocates and frees batches of 8-512 byte blocks on one thread.
fn small_alloc_free<A: GlobalAlloc>(a: &A, sizes: &[usize], ptrs: &mut Vec<*mut u8>) {
    for &s in sizes {
        // SAFETY: non-zero layout; freed below with the same layout.
        let p = unsafe { a.alloc(layout(s)) };
        // SAFETY: the block holds at least one byte.
        unsafe { p.write(s as u8) };
        ptrs.push(p);
    }
    for (i, &p) in ptrs.iter().enumerate().rev() {
        // SAFETY: allocated above with this layout.
        unsafe { a.dealloc(black_box(p), layout(sizes[i])) };
    }
    ptrs.clear();
}

/// Sizes of the runtime's task cells (header + scheduler links + future
/// state for typical futures: 128-512 bytes), spawned and completed in
/// waves the way an executor does.
const TASK_SIZES: [usize; 6] = [128, 192, 256, 320, 384, 512];

fn task_sized<A: GlobalAlloc>(a: &A, ptrs: &mut Vec<(*mut u8, usize)>) {
    for wave in 0..4 {
        for i in 0..64 {
            let s = TASK_SIZES[(i + wave) % TASK_SIZES.len()];
            // SAFETY: non-zero layout; freed below with the same layout.
            let p = unsafe { a.alloc(layout(s)) };
            // SAFETY: the header word of the cell is written, as a task's is.
            unsafe { (p as *mut u64).write(i as u64) };
            ptrs.push((p, s));
        }
        // Tasks finish out of order.
        let mut i = 0;
        while !ptrs.is_empty() {
            i = (i + 7) % ptrs.len();
            let (p, s) = ptrs.swap_remove(i);
            // SAFETY: allocated above with this layout.
            unsafe { a.dealloc(black_box(p), layout(s)) };
        }
    }
}

const BATCH: usize = 1000;

/// One thread allocates, another frees (xmalloc-test style). Returns the
/// time for `iters` batches of 1000 blocks.
fn cross_thread_free<A: GlobalAlloc + Sync>(a: &'static A, iters: u64) -> Duration {
    let (tx, rx) = mpsc::sync_channel::<Vec<(usize, usize)>>(4);
    let (back_tx, back_rx) = mpsc::channel::<Vec<(usize, usize)>>();
    let consumer = std::thread::spawn(move || {
        for mut batch in rx {
            for (p, s) in batch.drain(..) {
                // SAFETY: allocated by the producer with this layout.
                unsafe { a.dealloc(p as *mut u8, layout(s)) };
            }
            if back_tx.send(batch).is_err() {
                break;
            }
        }
    });
    let mut spare: Vec<Vec<(usize, usize)>> = (0..6).map(|_| Vec::with_capacity(BATCH)).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let start = Instant::now();
    for _ in 0..iters {
        let mut batch = spare.pop().unwrap_or_else(|| back_rx.recv().unwrap());
        for _ in 0..BATCH {
            let s = 16 + (rng.next() % 240) as usize;
            // SAFETY: non-zero layout; freed by the consumer.
            let p = unsafe { a.alloc(layout(s)) };
            // SAFETY: the block holds at least 16 bytes.
            unsafe { p.write(1) };
            batch.push((p as usize, s));
        }
        tx.send(batch).unwrap();
        while let Ok(b) = back_rx.try_recv() {
            spare.push(b);
        }
    }
    drop(tx);
    consumer.join().unwrap();
    start.elapsed()
}

const LARSON_SLOTS: usize = 4096;
const LARSON_OPS: usize = 20_000;

/// Two threads replace random objects in a shared array: each frees what
/// it finds (often allocated by the other thread) and puts a new object of
/// a random size (16-1024 bytes) in its place.
fn larson<A: GlobalAlloc + Sync>(a: &'static A, slots: &[AtomicU64], iters: u64) -> Duration {
    let start = Instant::now();
    for it in 0..iters {
        std::thread::scope(|scope| {
            for t in 0..2u64 {
                scope.spawn(move || {
                    let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (it * 2 + t + 1));
                    for _ in 0..LARSON_OPS {
                        let r = rng.next();
                        let i = (r % LARSON_SLOTS as u64) as usize;
                        let s = 16 + ((r >> 20) % 1009) as usize;
                        // SAFETY: non-zero layout; freed by whoever takes it.
                        let p = unsafe { a.alloc(layout(s)) };
                        // SAFETY: the block holds at least 16 bytes.
                        unsafe { p.write(t as u8) };
                        let packed = p as u64 | (s as u64) << 48;
                        let old = slots[i].swap(packed, Ordering::AcqRel);
                        if old != 0 {
                            let (op, os) =
                                ((old & ((1 << 48) - 1)) as *mut u8, (old >> 48) as usize);
                            // SAFETY: the slot owned this block; the swap
                            // handed it to us alone.
                            unsafe { a.dealloc(op, layout(os)) };
                        }
                    }
                });
            }
        });
    }
    start.elapsed()
}

fn drain_slots<A: GlobalAlloc>(a: &A, slots: &[AtomicU64]) {
    for slot in slots {
        let old = slot.swap(0, Ordering::AcqRel);
        if old != 0 {
            let (p, s) = ((old & ((1 << 48) - 1)) as *mut u8, (old >> 48) as usize);
            // SAFETY: the slot owned this block.
            unsafe { a.dealloc(p, layout(s)) };
        }
    }
}

fn bench_small(c: &mut Criterion) {
    let mut rng = Rng(42);
    let sizes: Vec<usize> = (0..BATCH)
        .map(|_| 8 + (rng.next() % 505) as usize)
        .collect();
    let mut g = c.benchmark_group("small_alloc_free");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut ptrs = Vec::with_capacity(BATCH);
    g.bench_function("numa_rt", |b| {
        b.iter(|| small_alloc_free(&NUMA, &sizes, &mut ptrs))
    });
    g.bench_function("mimalloc", |b| {
        b.iter(|| small_alloc_free(&MIMALLOC, &sizes, &mut ptrs))
    });
    g.bench_function("system", |b| {
        b.iter(|| small_alloc_free(&SYSTEM, &sizes, &mut ptrs))
    });
    g.finish();
}

fn bench_task(c: &mut Criterion) {
    let mut g = c.benchmark_group("task_sized");
    g.throughput(Throughput::Elements(4 * 64));
    let mut ptrs = Vec::with_capacity(64);
    g.bench_function("numa_rt", |b| b.iter(|| task_sized(&NUMA, &mut ptrs)));
    g.bench_function("mimalloc", |b| b.iter(|| task_sized(&MIMALLOC, &mut ptrs)));
    g.bench_function("system", |b| b.iter(|| task_sized(&SYSTEM, &mut ptrs)));
    g.finish();
}

fn bench_cross(c: &mut Criterion) {
    let mut g = c.benchmark_group("cross_thread_free");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("numa_rt", |b| {
        b.iter_custom(|n| cross_thread_free(&NUMA, n))
    });
    g.bench_function("mimalloc", |b| {
        b.iter_custom(|n| cross_thread_free(&MIMALLOC, n))
    });
    g.bench_function("system", |b| {
        b.iter_custom(|n| cross_thread_free(&SYSTEM, n))
    });
    g.finish();
}

fn bench_larson(c: &mut Criterion) {
    let slots: Vec<AtomicU64> = (0..LARSON_SLOTS).map(|_| AtomicU64::new(0)).collect();
    let mut g = c.benchmark_group("larson");
    g.throughput(Throughput::Elements(2 * LARSON_OPS as u64));
    g.bench_function("numa_rt", |b| b.iter_custom(|n| larson(&NUMA, &slots, n)));
    drain_slots(&NUMA, &slots);
    g.bench_function("mimalloc", |b| {
        b.iter_custom(|n| larson(&MIMALLOC, &slots, n))
    });
    drain_slots(&MIMALLOC, &slots);
    g.bench_function("system", |b| b.iter_custom(|n| larson(&SYSTEM, &slots, n)));
    drain_slots(&SYSTEM, &slots);
    g.finish();
}

criterion_group!(benches, bench_small, bench_task, bench_cross, bench_larson);
criterion_main!(benches);
