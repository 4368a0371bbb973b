//! Random 4 KiB reads over a file with numa_rt's `fs::File::read_at`
//! (ring reads on io_uring, the blocking pool on epoll), printing IOPS.
//!
//! Run: `cargo run --release --example files -- --seconds 5`
//!
//! Options: `--file PATH` (default: a 256 MiB scratch file in the temp
//! directory, created and removed by the run), `--size MIB` (of the scratch
//! file, default 256), `--in-flight N` (concurrent reads, default 64),
//! `--seconds S` (default 5), `--workers N` (worker threads per node).
//! `NUMA_RT_IO=epoll` measures the epoll fallback.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use numa_rt::fs::File;
use numa_rt::runtime::Builder;

const BLOCK: u64 = 4096;

struct Args {
    file: Option<PathBuf>,
    size_mib: u64,
    in_flight: usize,
    seconds: f64,
    workers: Option<usize>,
}

fn number<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
    let v = v.ok_or(format!("{flag} needs a value"))?;
    v.parse()
        .map_err(|_| format!("{flag}: {v:?} is not a valid number"))
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        file: None,
        size_mib: 256,
        in_flight: 64,
        seconds: 5.0,
        workers: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--file" => args.file = Some(it.next().ok_or("--file needs a path")?.into()),
            "--size" => args.size_mib = number("--size", it.next())?,
            "--in-flight" => args.in_flight = number("--in-flight", it.next())?,
            "--seconds" => args.seconds = number("--seconds", it.next())?,
            "--workers" => args.workers = Some(number("--workers", it.next())?),
            "-h" | "--help" => {
                return Err("usage: files [--file PATH] [--size MIB] [--in-flight N] \
                            [--seconds S] [--workers N]"
                    .into())
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if args.in_flight == 0 || args.size_mib == 0 || args.workers == Some(0) {
        return Err("--in-flight, --size and --workers must be at least 1".into());
    }
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        return Err("--seconds must be a positive number".into());
    }
    Ok(args)
}

/// Removes the scratch file when the run ends.
struct Scratch(Option<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn scratch_file(size_mib: u64) -> std::io::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("numa-rt-files-{}", std::process::id()));
    let mut f = std::fs::File::create(&path)?;
    let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 253 + 1) as u8).collect();
    for _ in 0..size_mib {
        f.write_all(&chunk)?;
    }
    Ok(path)
}

async fn reader(
    file: Arc<File>,
    blocks: u64,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> std::io::Result<u64> {
    let mut done = 0;
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = Vec::with_capacity(BLOCK as usize);
    while !stop.load(Relaxed) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf.clear();
        let (r, b) = file.read_at(buf, (x % blocks) * BLOCK).await;
        buf = b;
        r?;
        done += 1;
    }
    Ok(done)
}

fn run(args: Args) -> Result<(), String> {
    let mut scratch = Scratch(None);
    let path = match &args.file {
        Some(p) => p.clone(),
        None => {
            let p = scratch_file(args.size_mib).map_err(|e| format!("scratch file: {e}"))?;
            scratch.0 = Some(p.clone());
            p
        }
    };
    let size = std::fs::metadata(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let blocks = size / BLOCK;
    if blocks == 0 {
        return Err(format!(
            "{} is smaller than one 4 KiB block",
            path.display()
        ));
    }
    let mut builder = Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.workers {
        builder.worker_threads(n);
    }
    let rt = builder.build().map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async move {
        let file = Arc::new(
            File::open(&path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?,
        );
        // Warm the page cache: the benchmark is about the runtime's path.
        let mut buf = Vec::with_capacity(1 << 20);
        let mut pos = 0;
        while pos < size {
            buf.clear();
            let (r, b) = file.read_at(buf, pos).await;
            buf = b;
            match r {
                Ok(0) => break,
                Ok(n) => pos += n as u64,
                Err(e) => return Err(format!("warming {}: {e}", path.display())),
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let tasks: Vec<_> = (0..args.in_flight)
            .map(|i| numa_rt::spawn(reader(file.clone(), blocks, i as u64 + 1, stop.clone())))
            .collect();
        numa_rt::time::sleep(Duration::from_secs_f64(args.seconds)).await;
        stop.store(true, Relaxed);
        let mut reads = 0;
        for t in tasks {
            match t.await {
                Ok(Ok(n)) => reads += n,
                Ok(Err(e)) => return Err(format!("read failed: {e}")),
                Err(e) => return Err(format!("reader task failed: {e}")),
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let backend = numa_rt::io::current_backend()
            .map(|b| format!("{b:?}"))
            .unwrap_or_else(|| "none".into());
        println!(
            "files: backend={backend} file={} size={}MiB in_flight={} reads={reads} \
             seconds={secs:.2} iops={:.0}",
            path.display(),
            size >> 20,
            args.in_flight,
            reads as f64 / secs
        );
        Ok(())
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("files: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("files: {e}");
            ExitCode::FAILURE
        }
    }
}
