//! What the hidden-NUMA options cost, measured side by side in one run:
//!
//! 1. `build()` with `Pools::Nodes` against `Pools::Probed` (the quick
//!    latency probe runs inside `build`);
//! 2. a spawn-and-yield workload on a runtime with the affinity monitor on
//!    against one with it off (`Builder::monitor_affinity(false)`): wall
//!    time and process CPU time per task.
//!
//! Contenders alternate round by round (A B A B ...) and the medians are
//! printed, so a machine busy with other work loads both alike.
//!
//! ```text
//! cargo run --release --example affinity_cost [-- ROUNDS]
//! ```

use std::time::{Duration, Instant};

use numa_rt::runtime::{Builder, Pools, Runtime};

/// Tasks per workload round, and yields per task.
const TASKS: usize = 20_000;
const YIELDS: usize = 8;

fn main() -> std::io::Result<()> {
    let rounds: usize = match std::env::args().nth(1) {
        Some(s) => s.parse().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("ROUNDS must be a number: {e}"),
            )
        })?,
        None => 15,
    };

    let mut nodes = Vec::new();
    let mut probed = Vec::new();
    for _ in 0..rounds {
        nodes.push(time_build(Pools::Nodes)?);
        probed.push(time_build(Pools::Probed)?);
    }
    println!("build(), median of {rounds}:");
    println!("  Pools::Nodes   {:>10.2?}", median(&mut nodes));
    println!("  Pools::Probed  {:>10.2?}", median(&mut probed));

    let on = Builder::new_multi_thread().build()?;
    let off = Builder::new_multi_thread()
        .monitor_affinity(false)
        .build()?;
    let (mut on_wall, mut on_cpu, mut off_wall, mut off_cpu) = (vec![], vec![], vec![], vec![]);
    workload(&on);
    workload(&off);
    for _ in 0..rounds {
        let (w, c) = measured(|| workload(&on));
        on_wall.push(w);
        on_cpu.push(c);
        let (w, c) = measured(|| workload(&off));
        off_wall.push(w);
        off_cpu.push(c);
    }
    let per_task = |d: Duration| d.as_nanos() as f64 / TASKS as f64;
    println!("{TASKS} tasks x {YIELDS} yields, median of {rounds}, ns per task (wall / CPU):");
    println!(
        "  monitor on   {:>8.0} / {:>8.0}",
        per_task(median(&mut on_wall)),
        per_task(median(&mut on_cpu))
    );
    println!(
        "  monitor off  {:>8.0} / {:>8.0}",
        per_task(median(&mut off_wall)),
        per_task(median(&mut off_cpu))
    );
    let m = on.metrics();
    println!(
        "monitor counters: changes {}, re-pins {}, off-CPU samples {}",
        m.affinity_change_count(),
        m.affinity_repin_count(),
        m.off_cpu_sample_count()
    );
    Ok(())
}

fn time_build(pools: Pools) -> std::io::Result<Duration> {
    let start = Instant::now();
    let rt = Builder::new_multi_thread().pools(pools).build()?;
    let took = start.elapsed();
    drop(rt);
    Ok(took)
}

fn workload(rt: &Runtime) {
    rt.block_on(async {
        let handles: Vec<_> = (0..TASKS)
            .map(|_| {
                numa_rt::spawn(async {
                    for _ in 0..YIELDS {
                        numa_rt::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in handles {
            // A task that panicked is a broken measurement: stop loudly.
            h.await
                .unwrap_or_else(|e| panic!("a workload task failed: {e}"));
        }
    });
}

/// Wall time and process CPU time (user + system) of `f`.
fn measured(f: impl FnOnce()) -> (Duration, Duration) {
    let cpu0 = process_cpu();
    let start = Instant::now();
    f();
    (start.elapsed(), process_cpu().saturating_sub(cpu0))
}

fn process_cpu() -> Duration {
    // SAFETY: an all-zero rusage is a valid value for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a live rusage; RUSAGE_SELF needs nothing else.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}
