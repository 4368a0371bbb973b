//! File-system benchmarks: numa_rt::fs against tokio::fs.
//!
//! - `fs_metadata`: 64 tasks each asking 32 times for the metadata of a
//!   file by path (numa_rt: `IORING_OP_STATX`; tokio: `stat` on its
//!   blocking pool).
//! - `fs_create_remove`: 64 tasks each creating, writing (4 KiB) and
//!   removing 8 files (numa_rt: OPENAT, WRITE, UNLINKAT ring operations).
//! - `file_stream_read`: reading a 16 MiB file front to back through
//!   `AsyncRead` into a 64 KiB buffer (`read_to_end`-style loop).
//!
//! Both runtimes run `WORKERS` worker threads. `NUMA_RT_IO=epoll` measures
//! numa_rt's epoll driver (everything on the blocking pool) instead.
//!
//! ```text
//! cargo bench --bench fs -- --warm-up-time 1 --measurement-time 3
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};

const WORKERS: usize = 2;
const TASKS: usize = 64;
const STATS_PER_TASK: usize = 32;
const FILES_PER_TASK: usize = 8;
const STREAM_FILE: usize = 16 << 20;
const STREAM_BUF: usize = 64 << 10;

fn numa_rt_rt() -> numa_rt::runtime::Runtime {
    numa_rt::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap()
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap()
}

/// A scratch folder, removed with everything in it when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("numa-rt-bench-fs-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A scratch folder with one data file of `len` bytes.
fn scratch(name: &str, len: usize) -> (Scratch, PathBuf) {
    let dir = Scratch::new(name);
    let path = dir.path().join("data");
    std::fs::write(&path, vec![0x5a; len]).unwrap();
    (dir, path)
}

fn fs_metadata(c: &mut Criterion) {
    let mut g = c.benchmark_group("fs_metadata");
    g.throughput(criterion::Throughput::Elements(
        (TASKS * STATS_PER_TASK) as u64,
    ));
    let (_dir, path) = scratch("metadata", 4096);
    let path = Arc::new(path);

    let rt = numa_rt_rt();
    g.bench_function("numa_rt", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..TASKS)
                    .map(|_| {
                        let path = path.clone();
                        numa_rt::spawn(async move {
                            for _ in 0..STATS_PER_TASK {
                                let m = numa_rt::fs::metadata(&*path).await.unwrap();
                                assert_eq!(m.len(), 4096);
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    drop(rt);

    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..TASKS)
                    .map(|_| {
                        let path = path.clone();
                        tokio::spawn(async move {
                            for _ in 0..STATS_PER_TASK {
                                let m = tokio::fs::metadata(&*path).await.unwrap();
                                assert_eq!(m.len(), 4096);
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    g.finish();
}

fn file_name(dir: &Path, task: usize, i: usize) -> PathBuf {
    dir.join(format!("f-{task}-{i}"))
}

fn fs_create_remove(c: &mut Criterion) {
    let mut g = c.benchmark_group("fs_create_remove");
    g.throughput(criterion::Throughput::Elements(
        (TASKS * FILES_PER_TASK) as u64,
    ));
    let dir = Arc::new(Scratch::new("create"));
    let data = Arc::new(vec![0x5au8; 4096]);

    let rt = numa_rt_rt();
    g.bench_function("numa_rt", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..TASKS)
                    .map(|t| {
                        let (dir, data) = (dir.clone(), data.clone());
                        numa_rt::spawn(async move {
                            for i in 0..FILES_PER_TASK {
                                let path = file_name(dir.path(), t, i);
                                numa_rt::fs::write(&path, &*data).await.unwrap();
                                numa_rt::fs::remove_file(&path).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    drop(rt);

    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..TASKS)
                    .map(|t| {
                        let (dir, data) = (dir.clone(), data.clone());
                        tokio::spawn(async move {
                            for i in 0..FILES_PER_TASK {
                                let path = file_name(dir.path(), t, i);
                                tokio::fs::write(&path, &*data).await.unwrap();
                                tokio::fs::remove_file(&path).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    g.finish();
}

fn file_stream_read(c: &mut Criterion) {
    use tokio::io::AsyncReadExt;
    let mut g = c.benchmark_group("file_stream_read");
    g.throughput(criterion::Throughput::Bytes(STREAM_FILE as u64));
    let (_dir, path) = scratch("stream", STREAM_FILE);

    let rt = numa_rt_rt();
    g.bench_function("numa_rt", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut file = numa_rt::fs::File::open(&path).await.unwrap();
                let mut buf = vec![0u8; STREAM_BUF];
                let mut total = 0;
                loop {
                    match file.read(&mut buf).await.unwrap() {
                        0 => break,
                        n => total += n,
                    }
                }
                assert_eq!(total, STREAM_FILE);
            })
        })
    });
    drop(rt);

    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut file = tokio::fs::File::open(&path).await.unwrap();
                let mut buf = vec![0u8; STREAM_BUF];
                let mut total = 0;
                loop {
                    match file.read(&mut buf).await.unwrap() {
                        0 => break,
                        n => total += n,
                    }
                }
                assert_eq!(total, STREAM_FILE);
            })
        })
    });
    g.finish();
}

criterion_group!(benches, fs_metadata, fs_create_remove, file_stream_read);
criterion_main!(benches);
