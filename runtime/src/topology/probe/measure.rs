//! Measuring core-to-core latency: two pinned threads bounce one cache line.
//!
//! For a pair of CPUs `(a, b)`, an initiator thread pinned to `a` and a
//! responder pinned to `b` share one `AtomicU64` alone on a 128-byte line
//! (two 64-byte lines, so the adjacent-line prefetcher cannot pull in a
//! neighbour). The initiator stores an odd value with `Release`; the
//! responder waits for it with `Acquire` loads and answers with the next
//! even value; the initiator waits for that. One round is one round trip of
//! the line, so a sample of `rounds` rounds gives a one-way latency of
//! `elapsed / (2 * rounds)`. The pair's value is the median of its samples,
//! which shrugs off samples hit by an interrupt or a preemption.
//!
//! The hot loop wants an optimized build: in a debug build the atomics are
//! calls, which adds tens of nanoseconds to every transfer (60 ns in
//! release against about 95 ns in debug between the two vCPUs of our 2-core
//! test VM) and so compresses the ratios the clustering looks at.
//!
//! # Bounded time
//!
//! Each pair has a time budget (the smaller of
//! [`ProbeConfig::pair_budget`] and the total budget shared among the
//! pairs); samples stop when it runs out, and a pair with fewer than three
//! samples (or fewer than asked, when fewer than three were asked) is left
//! unmeasured rather than guessed.
//!
//! # Which pairs
//!
//! Every pair of the CPUs the process may use, when there are at most
//! [`ProbeConfig::max_pairs`] of them. Otherwise a subset of CPUs is probed:
//! the first CPU of every cache domain (CPUs sharing a last-level cache
//! belong to one latency domain), then CPUs spread evenly over the rest,
//! as many as keep the pair count within the limit; if the cache-domain
//! representatives alone are too many, an evenly spread subset of them.
//! Unprobed CPUs later join the domain of a probed CPU of their cache
//! domain (see [`extend_by_cache`](super::extend_by_cache)).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::super::CpuSet;
use super::cluster::median;
use super::pin::{allowed_cpus, pin_current_thread};
use super::{LatencyMatrix, ProbeError};

/// How much to measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Round trips per sample.
    pub rounds: u32,
    /// Samples per pair; the pair's latency is their median.
    pub samples: u32,
    /// Most time one pair may take.
    pub pair_budget: Duration,
    /// Most time all pairs together may take (shared evenly).
    pub total_budget: Duration,
    /// Most pairs to measure; above it a subset of CPUs is probed.
    pub max_pairs: usize,
    /// Probe only these CPUs (still limited to the allowed ones); `None`
    /// probes every allowed CPU.
    pub only: Option<CpuSet>,
}

impl ProbeConfig {
    /// The default: 15 samples of 2,000 round trips per pair, at most
    /// 2 s per pair, 60 s in all and 4,096 pairs (91 CPUs in full).
    pub fn standard() -> ProbeConfig {
        ProbeConfig {
            rounds: 2_000,
            samples: 15,
            pair_budget: Duration::from_secs(2),
            total_budget: Duration::from_secs(60),
            max_pairs: 4_096,
            only: None,
        }
    }

    /// A quick look: 7 samples of 300 round trips, at most 1 s per pair,
    /// 10 s in all and 512 pairs (32 CPUs in full). On an idle machine a
    /// pair takes about a millisecond; the budget covers a busy one, where a
    /// pinned thread may wait several scheduler slices for its CPU.
    pub fn quick() -> ProbeConfig {
        ProbeConfig {
            rounds: 300,
            samples: 7,
            pair_budget: Duration::from_secs(1),
            total_budget: Duration::from_secs(10),
            max_pairs: 512,
            only: None,
        }
    }
}

impl Default for ProbeConfig {
    fn default() -> ProbeConfig {
        ProbeConfig::standard()
    }
}

/// What [`measure`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// Latencies over every CPU asked about, `None` where not measured.
    pub matrix: LatencyMatrix,
    /// The CPUs that were probed.
    pub probed: CpuSet,
    /// CPUs asked about that the process may not run on.
    pub not_allowed: CpuSet,
    /// Whether only a subset of the allowed CPUs was probed.
    pub sampled: bool,
    /// Pairs left unmeasured because their time budget ran out.
    pub timed_out: usize,
    /// Wall-clock time spent measuring.
    pub elapsed: Duration,
}

/// Measures the latency between CPUs of `cpus` (usually every online CPU)
/// as the module docs describe. `cache_domains` guides sampling on large
/// machines and may be empty.
///
/// CPUs the process may not use get `None` rows. Fails when the allowed
/// CPUs cannot be read, a thread cannot be started, or the kernel refuses
/// to pin a thread to an allowed CPU.
pub fn measure(
    cpus: &CpuSet,
    cache_domains: &[CpuSet],
    config: &ProbeConfig,
) -> Result<Measurement, ProbeError> {
    let start = Instant::now();
    let allowed = allowed_cpus().map_err(ProbeError::Affinity)?;
    let mut usable = cpus.intersection(&allowed);
    if let Some(only) = &config.only {
        usable = usable.intersection(only);
    }
    let not_allowed = cpus.difference(&allowed);
    let probed = choose_cpus(&usable, cache_domains, config.max_pairs.max(1));
    let list: Vec<u32> = probed.iter().collect();
    let pairs = list.len() * list.len().saturating_sub(1) / 2;
    let budget = if pairs == 0 {
        config.pair_budget
    } else {
        config
            .pair_budget
            .min(config.total_budget / u32::try_from(pairs).unwrap_or(u32::MAX))
    };

    let mut matrix = LatencyMatrix::new(cpus.iter().collect());
    let mut timed_out = 0;
    for (x, &a) in list.iter().enumerate() {
        for &b in &list[x + 1..] {
            match measure_pair(a, b, config, budget)? {
                Some(ns) => {
                    if let (Some(i), Some(j)) = (matrix.index_of(a), matrix.index_of(b)) {
                        matrix.set(i, j, ns);
                    }
                }
                None => timed_out += 1,
            }
        }
    }
    Ok(Measurement {
        matrix,
        sampled: probed != usable,
        probed,
        not_allowed,
        timed_out,
        elapsed: start.elapsed(),
    })
}

/// The CPUs to probe so that at most `max_pairs` pairs are measured (the
/// rule in the module docs).
pub fn choose_cpus(usable: &CpuSet, cache_domains: &[CpuSet], max_pairs: usize) -> CpuSet {
    let fits = |k: usize| k * k.saturating_sub(1) / 2 <= max_pairs;
    if fits(usable.len()) {
        return usable.clone();
    }
    // Largest k with k(k-1)/2 <= max_pairs.
    let mut k = 2;
    while fits(k + 1) {
        k += 1;
    }
    let mut reps: Vec<u32> = cache_domains
        .iter()
        .filter_map(|d| d.intersection(usable).first())
        .collect();
    reps.sort_unstable();
    reps.dedup();
    if reps.len() >= k {
        return spread(&reps, k);
    }
    let chosen: CpuSet = reps.iter().copied().collect();
    let rest: Vec<u32> = usable.difference(&chosen).iter().collect();
    chosen.union(&spread(&rest, k - reps.len()))
}

/// `k` elements of `list` spread evenly over it.
fn spread(list: &[u32], k: usize) -> CpuSet {
    if k >= list.len() {
        return list.iter().copied().collect();
    }
    (0..k).map(|i| list[i * list.len() / k]).collect()
}

/// The cache line bounced between the two threads, alone on 128 bytes.
#[repr(align(128))]
struct Line(AtomicU64);

/// A flag on a line of its own, so reading it does not disturb [`Line`].
#[repr(align(128))]
struct Flag<T>(T);

const PENDING: u8 = 0;
const READY: u8 = 1;
const FAILED: u8 = 2;

/// The one-way latency between `a` and `b` in ns, or `None` when the
/// budget ran out first.
fn measure_pair(
    a: u32,
    b: u32,
    config: &ProbeConfig,
    budget: Duration,
) -> Result<Option<f64>, ProbeError> {
    let line = Line(AtomicU64::new(0));
    let stop = Flag(AtomicBool::new(false));
    let state = Flag(AtomicU8::new(PENDING));
    let deadline = Instant::now() + budget;

    thread::scope(|s| {
        let responder = thread::Builder::new()
            .name(format!("numa-rt-probe-{b}"))
            .spawn_scoped(s, || {
                if let Err(e) = pin_current_thread(b) {
                    state.0.store(FAILED, Ordering::Release);
                    return Err(e);
                }
                state.0.store(READY, Ordering::Release);
                respond(&line.0, &stop.0);
                Ok(())
            })
            .map_err(ProbeError::Thread)?;
        let initiator = thread::Builder::new()
            .name(format!("numa-rt-probe-{a}"))
            .spawn_scoped(s, || -> io::Result<Option<Vec<f64>>> {
                // The responder stops however this thread ends.
                let _stop = StopOnDrop(&stop.0);
                pin_current_thread(a).map(|()| initiate(&line.0, &state.0, config, deadline))
            });
        let initiator = match initiator {
            Ok(handle) => handle,
            Err(e) => {
                stop.0.store(true, Ordering::Release);
                return Err(ProbeError::Thread(e));
            }
        };
        let samples = join(initiator).map_err(|source| ProbeError::Pin { cpu: a, source })?;
        join(responder).map_err(|source| ProbeError::Pin { cpu: b, source })?;
        let Some(samples) = samples else {
            return Ok(None);
        };
        let needed = config.samples.clamp(1, 3) as usize;
        if samples.len() < needed {
            return Ok(None);
        }
        Ok(median(&samples))
    })
}

/// Tells the responder to stop when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Joins a probe thread; a panic there (none is expected) becomes an error.
fn join<T>(handle: thread::ScopedJoinHandle<'_, io::Result<T>>) -> io::Result<T> {
    handle
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("a probe thread panicked")))
}

/// The responder: answers each odd value with the next even one until
/// told to stop.
fn respond(line: &AtomicU64, stop: &AtomicBool) {
    let mut expect = 1u64;
    loop {
        loop {
            if line.load(Ordering::Acquire) == expect {
                break;
            }
            if stop.load(Ordering::Relaxed) {
                return;
            }
        }
        line.store(expect + 1, Ordering::Release);
        expect += 2;
    }
}

/// The initiator: the samples (ns one-way), or `None` when the responder
/// could not be pinned. Stops early at `deadline`.
fn initiate(
    line: &AtomicU64,
    state: &AtomicU8,
    config: &ProbeConfig,
    deadline: Instant,
) -> Option<Vec<f64>> {
    loop {
        match state.load(Ordering::Acquire) {
            READY => break,
            FAILED => return None,
            _ if Instant::now() > deadline => return Some(Vec::new()),
            _ => thread::yield_now(),
        }
    }
    let rounds = config.rounds.max(1);
    let mut value = 0u64;
    // Warm-up: bring both threads and the line into a steady state.
    if bounce(line, &mut value, rounds / 4 + 1, deadline).is_none() {
        return Some(Vec::new());
    }
    let mut samples = Vec::with_capacity(config.samples as usize);
    for _ in 0..config.samples.max(1) {
        let started = Instant::now();
        if bounce(line, &mut value, rounds, deadline).is_none() {
            break;
        }
        let ns = started.elapsed().as_nanos() as f64;
        samples.push(ns / (2.0 * f64::from(rounds)));
        if Instant::now() > deadline {
            break;
        }
    }
    Some(samples)
}

/// `rounds` round trips; `None` when `deadline` passed in the middle.
fn bounce(line: &AtomicU64, value: &mut u64, rounds: u32, deadline: Instant) -> Option<()> {
    for _ in 0..rounds {
        line.store(*value + 1, Ordering::Release);
        let answer = *value + 2;
        let mut spins = 0u32;
        while line.load(Ordering::Acquire) != answer {
            spins = spins.wrapping_add(1);
            if spins % 4096 == 0 && Instant::now() > deadline {
                return None;
            }
        }
        *value = answer;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_all_when_small() {
        let cpus: CpuSet = "0-7".parse().unwrap();
        assert_eq!(choose_cpus(&cpus, &[], 28), cpus);
    }

    #[test]
    fn choose_cache_representatives_first() {
        let cpus: CpuSet = "0-63".parse().unwrap();
        let domains: Vec<CpuSet> = (0..8).map(|d| (d * 8..d * 8 + 8).collect()).collect();
        // 45 pairs allow 10 CPUs: the 8 domain leaders and 2 more.
        let chosen = choose_cpus(&cpus, &domains, 45);
        assert_eq!(chosen.len(), 10);
        for d in &domains {
            assert!(chosen.contains(d.first().unwrap()));
        }
        // 6 pairs allow 4 CPUs: 4 of the leaders, spread out.
        assert_eq!(
            choose_cpus(&cpus, &domains, 6),
            "0,16,32,48".parse().unwrap()
        );
        // No cache information: spread evenly.
        assert_eq!(choose_cpus(&cpus, &[], 6), "0,16,32,48".parse().unwrap());
    }

    #[test]
    fn measures_a_real_pair_when_two_cpus_are_allowed() {
        let allowed = allowed_cpus().unwrap();
        let config = ProbeConfig {
            total_budget: Duration::from_secs(2),
            ..ProbeConfig::quick()
        };
        let m = measure(&allowed, &[], &config).unwrap();
        assert!(m.not_allowed.is_empty());
        if allowed.len() < 2 {
            assert_eq!(m.matrix.pairs().count(), 0);
            return;
        }
        // On a loaded machine a pair may time out; when measured, it is a
        // plausible cache-line transfer time.
        for (_, _, ns) in m.matrix.pairs() {
            assert!(ns > 1.0 && ns < 100_000.0, "{ns} ns");
        }
        assert!(m.elapsed < Duration::from_secs(10));
    }

    #[test]
    fn cpus_not_allowed_are_unmeasured() {
        let allowed = allowed_cpus().unwrap();
        let outside = allowed.last().unwrap() + 1000;
        let mut cpus = allowed.clone();
        cpus.insert(outside);
        let config = ProbeConfig {
            rounds: 50,
            samples: 3,
            total_budget: Duration::from_millis(500),
            ..ProbeConfig::quick()
        };
        let m = measure(&cpus, &[], &config).unwrap();
        assert_eq!(m.not_allowed, CpuSet::from_iter([outside]));
        let i = m.matrix.index_of(outside).unwrap();
        assert!((0..m.matrix.len()).all(|j| m.matrix.get(i, j).is_none()));
    }
}
