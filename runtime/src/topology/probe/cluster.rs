//! Clustering CPUs into latency domains: a pure function of the matrix.
//!
//! # Method
//!
//! 1. CPUs with no measured pair are left out (`unplaced`). CPUs that must
//!    stay together (SMT siblings of one core, whose shared L1 makes them
//!    far closer than any real domain) start as one cluster.
//! 2. Average-linkage agglomerative clustering (UPGMA): the two clusters
//!    with the lowest mean latency between them merge, until one is left.
//!    Averages make a single noisy pair unable to chain clusters together,
//!    as single linkage (a plain threshold) would.
//! 3. Every partition on the way with at least two clusters is a candidate
//!    split. It is *accepted* when
//!    - every cluster holds at least two CPUs (a lone CPU with high
//!      latencies is more likely busy or noisy than a domain of its own),
//!    - the lowest median latency between two clusters is at least
//!      [`MIN_RATIO`] times the largest spread of a cluster (its median
//!      inside latency, or the latency at which its last merge happened if that is
//!      higher, so a cluster that swallowed two groups does not pass as
//!      tight): a level is a gap in the latency scale, and a partition
//!      half-way between two levels has none, and
//!    - its confidence (below) is at least [`MIN_CONFIDENCE`].
//!
//!    Pairs of SMT siblings count neither inside nor across: they show
//!    that two threads share a core, not that a domain exists.
//! 4. The domains are the finest accepted split; coarser accepted splits
//!    are kept as `levels` (e.g. CCX groups inside sockets, then sockets).
//!    With no accepted split, all measured CPUs form one domain.
//!
//! # Confidence
//!
//! For a split: the probability that a randomly chosen pair of CPUs in
//! different domains is slower than a randomly chosen pair inside one domain
//! (the Mann-Whitney statistic over the measured pairs; ties count half).
//! 1.0 means every cross-domain pair is slower than every pair inside a
//! domain, 0.5 means the split is no better than chance.
//!
//! For a single domain: the share of measured pairs within
//! [`UNIFORM_BAND`] of the median latency. 1.0 means the machine is uniform
//! to within that band. `None` when fewer than three CPUs were measured:
//! one pair cannot show a split.

use std::cmp::Ordering;

use super::super::CpuSet;
use super::LatencyMatrix;

/// How much slower (as a ratio of means) the pairs between two clusters
/// must be than the pairs inside each of them for a split to count.
pub const MIN_RATIO: f64 = 1.2;

/// The lowest confidence at which a split is accepted.
pub const MIN_CONFIDENCE: f64 = 0.9;

/// The band around the median latency (as a fraction of it) inside which a
/// pair counts as "like the rest" for a single domain's confidence.
pub const UNIFORM_BAND: f64 = 0.1;

/// One accepted way of splitting the CPUs.
#[derive(Clone, Debug, PartialEq)]
pub struct Level {
    /// The domains, each a set of CPUs, ordered by their first CPU.
    pub domains: Vec<CpuSet>,
    /// The Mann-Whitney confidence of this split (see the module docs).
    pub confidence: f64,
    /// The gap: the lowest median latency between two domains divided by the
    /// largest spread inside one (see the module docs); at least
    /// [`MIN_RATIO`].
    pub separation: f64,
    /// Mean latency of the pairs inside domains, ns.
    pub inside_ns: f64,
    /// Mean latency of the pairs across domains, ns.
    pub across_ns: f64,
}

/// The latency domains found in a matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Clustering {
    /// The domains: the finest accepted split, or one domain holding every
    /// measured CPU. Ordered by their first CPU.
    pub domains: Vec<CpuSet>,
    /// How sure the result is, in `[0, 1]` (meaning in the module docs);
    /// `None` when too little was measured to tell.
    pub confidence: Option<f64>,
    /// Every accepted split, finest first (empty for one domain).
    pub levels: Vec<Level>,
    /// CPUs of the matrix with no measured pair.
    pub unplaced: CpuSet,
}

impl Clustering {
    /// Whether the probe found more than one domain.
    pub fn is_split(&self) -> bool {
        self.domains.len() > 1
    }
}

/// Clusters the CPUs of `matrix` into latency domains. `together` lists
/// groups of CPUs never to be split (SMT siblings); may be empty.
///
/// ```
/// use numa_rt_runtime::topology::probe::{cluster, LatencyMatrix};
///
/// // Two sockets of two CPUs: 40 ns inside, 130 ns across.
/// let mut m = LatencyMatrix::new(vec![0, 1, 2, 3]);
/// for (i, j) in [(0, 1), (2, 3)] { m.set(i, j, 40.0); }
/// for (i, j) in [(0, 2), (0, 3), (1, 2), (1, 3)] { m.set(i, j, 130.0); }
/// let c = cluster(&m, &[]);
/// assert_eq!(c.domains, vec!["0-1".parse().unwrap(), "2-3".parse().unwrap()]);
/// assert_eq!(c.confidence, Some(1.0));
/// ```
pub fn cluster(matrix: &LatencyMatrix, together: &[CpuSet]) -> Clustering {
    let measured = matrix.measured_cpus();
    let unplaced = CpuSet::from_iter(matrix.cpus().iter().copied()).difference(&measured);
    let active: Vec<usize> = (0..matrix.len())
        .filter(|&i| measured.contains(matrix.cpus()[i]))
        .collect();

    let mut levels = Vec::new();
    for partition in upgma(matrix, &active, together) {
        if let Some(level) = evaluate(matrix, &partition, together) {
            levels.push(level);
        }
    }
    // `upgma` yields finest first; keep the first split of each size.
    levels.dedup_by(|a, b| a.domains.len() == b.domains.len());

    let (domains, confidence) = match levels.first() {
        Some(level) => (level.domains.clone(), Some(level.confidence)),
        None if measured.is_empty() => (Vec::new(), None),
        None => {
            let confidence = (measured.len() >= 3).then(|| uniformity(matrix));
            (vec![measured.clone()], confidence)
        }
    };
    Clustering {
        domains,
        confidence,
        levels,
        unplaced,
    }
}

/// Share of measured pairs within [`UNIFORM_BAND`] of the median.
fn uniformity(matrix: &LatencyMatrix) -> f64 {
    let values: Vec<f64> = matrix.pairs().map(|(_, _, v)| v).collect();
    let Some(mid) = median(&values) else {
        return 0.0;
    };
    let near = values
        .iter()
        .filter(|&&v| (v - mid).abs() <= UNIFORM_BAND * mid)
        .count();
    near as f64 / values.len() as f64
}

/// A cluster of a partition: matrix indices, and the mean latency at which
/// its last merge happened (`None` for a starting cluster: one CPU or one
/// group of SMT siblings).
#[derive(Clone, Debug)]
struct Cluster {
    members: Vec<usize>,
    height: Option<f64>,
}

/// The partitions met while merging, finest first. Only partitions with
/// two or more clusters are given.
fn upgma(matrix: &LatencyMatrix, active: &[usize], together: &[CpuSet]) -> Vec<Vec<Cluster>> {
    // Start: one cluster per CPU, SMT siblings already joined.
    let mut clusters: Vec<Vec<usize>> = Vec::new();
    for &i in active {
        let cpu = matrix.cpus()[i];
        let group = together.iter().find(|g| g.contains(cpu));
        let home = group.and_then(|g| {
            clusters
                .iter()
                .position(|c| c.iter().any(|&k| g.contains(matrix.cpus()[k])))
        });
        match home {
            Some(c) => clusters[c].push(i),
            None => clusters.push(vec![i]),
        }
    }
    // Sum and count of measured latencies between every two clusters.
    let k = clusters.len();
    let mut sum = vec![vec![0.0f64; k]; k];
    let mut cnt = vec![vec![0usize; k]; k];
    for a in 0..k {
        for b in a + 1..k {
            for &i in &clusters[a] {
                for &j in &clusters[b] {
                    if let Some(v) = matrix.get(i, j) {
                        sum[a][b] += v;
                        cnt[a][b] += 1;
                    }
                }
            }
            sum[b][a] = sum[a][b];
            cnt[b][a] = cnt[a][b];
        }
    }
    let mut alive: Vec<bool> = vec![true; k];
    let mut height: Vec<Option<f64>> = vec![None; k];
    let mut out = Vec::new();
    loop {
        let live: Vec<usize> = (0..k).filter(|&c| alive[c]).collect();
        if live.len() >= 2 {
            out.push(
                live.iter()
                    .map(|&c| Cluster {
                        members: clusters[c].clone(),
                        height: height[c],
                    })
                    .collect(),
            );
        }
        let mut best: Option<(f64, usize, usize)> = None;
        for (x, &a) in live.iter().enumerate() {
            for &b in &live[x + 1..] {
                if cnt[a][b] == 0 {
                    continue;
                }
                let mean = sum[a][b] / cnt[a][b] as f64;
                if best.map_or(true, |(m, _, _)| mean < m) {
                    best = Some((mean, a, b));
                }
            }
        }
        let Some((mean, a, b)) = best else {
            break;
        };
        height[a] = Some(mean);
        // Merge b into a.
        let moved = std::mem::take(&mut clusters[b]);
        clusters[a].extend(moved);
        alive[b] = false;
        for c in 0..k {
            if c != a && alive[c] {
                sum[a][c] += sum[b][c];
                cnt[a][c] += cnt[b][c];
                sum[c][a] = sum[a][c];
                cnt[c][a] = cnt[a][c];
            }
        }
    }
    out
}

/// The level a partition gives, if it passes the tests of the module docs.
///
/// Pairs of SMT siblings (`together`) are not evidence of a domain: they
/// count neither inside nor across.
fn evaluate(matrix: &LatencyMatrix, partition: &[Cluster], together: &[CpuSet]) -> Option<Level> {
    if partition.len() < 2 || partition.iter().any(|c| c.members.len() < 2) {
        return None;
    }
    let n = matrix.len();
    let mut label = vec![usize::MAX; n];
    for (c, cluster) in partition.iter().enumerate() {
        for &i in &cluster.members {
            label[i] = c;
        }
    }
    let cpus = matrix.cpus();
    let siblings = |i: usize, j: usize| {
        together
            .iter()
            .any(|g| g.contains(cpus[i]) && g.contains(cpus[j]))
    };
    let k = partition.len();
    // Latencies between (and inside) clusters; medians below, so a pair
    // spoiled by a preemption cannot move a cluster's figure.
    let mut vals: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); k]; k];
    let mut inside = Vec::new();
    let mut across = Vec::new();
    for (i, j, v) in matrix.pairs() {
        let (a, b) = (label[i], label[j]);
        if a == usize::MAX || b == usize::MAX || siblings(i, j) {
            continue;
        }
        let (a, b) = (a.min(b), a.max(b));
        vals[a][b].push(v);
        if a != b {
            across.push(v);
        } else {
            inside.push(v);
        }
    }
    if inside.is_empty() || across.is_empty() {
        return None;
    }
    let typical = |a: usize, b: usize| median(&vals[a][b]);
    let pooled_inside = median(&inside)?;
    // How far apart a cluster's own CPUs are: the larger of its mean inside
    // latency and the height of its last merge (so a cluster that joined
    // two groups at a high latency does not pass as tight).
    let spread = |c: usize| {
        let own = typical(c, c).unwrap_or(pooled_inside);
        partition[c].height.map_or(own, |h| own.max(h))
    };
    // The widest cluster against the closest two clusters: a level is a
    // gap in the latency scale, every cluster tighter than any two are far.
    let widest = (0..k).map(spread).fold(0.0f64, f64::max);
    let closest = (0..k)
        .flat_map(|a| (a + 1..k).map(move |b| (a, b)))
        .filter_map(|(a, b)| typical(a, b))
        .fold(f64::INFINITY, f64::min);
    let separation = if widest > 0.0 {
        closest / widest
    } else {
        f64::INFINITY
    };
    if !separation.is_finite() || separation < MIN_RATIO {
        return None;
    }
    let confidence = mann_whitney(&inside, &across);
    if confidence < MIN_CONFIDENCE {
        return None;
    }
    let mut domains: Vec<CpuSet> = partition
        .iter()
        .map(|c| CpuSet::from_iter(c.members.iter().map(|&i| cpus[i])))
        .collect();
    domains.sort_by_key(|d| d.first());
    Some(Level {
        domains,
        confidence,
        separation,
        inside_ns: inside.iter().sum::<f64>() / inside.len() as f64,
        across_ns: across.iter().sum::<f64>() / across.len() as f64,
    })
}

/// P(a random `slow` value > a random `fast` value), ties counting half.
fn mann_whitney(fast: &[f64], slow: &[f64]) -> f64 {
    let mut fast = fast.to_vec();
    fast.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
    let mut wins = 0.0;
    for &s in slow {
        let below = fast.partition_point(|&f| f < s);
        let not_above = fast.partition_point(|&f| f <= s);
        wins += below as f64 + 0.5 * (not_above - below) as f64;
    }
    wins / (fast.len() as f64 * slow.len() as f64)
}

/// The median of `values` (mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift) so tests need no crate.
    struct Noise(u64);

    impl Noise {
        /// A factor in `[1 - amp, 1 + amp]`.
        fn factor(&mut self, amp: f64) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let unit = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
            1.0 + amp * (2.0 * unit - 1.0)
        }
    }

    /// A matrix over CPUs `0..n` where `lat(i, j)` gives the noiseless value.
    fn matrix(n: u32, amp: f64, seed: u64, lat: impl Fn(u32, u32) -> f64) -> LatencyMatrix {
        let mut noise = Noise(seed);
        let mut m = LatencyMatrix::new((0..n).collect());
        for i in 0..n {
            for j in i + 1..n {
                m.set(i as usize, j as usize, lat(i, j) * noise.factor(amp));
            }
        }
        m
    }

    fn sets(lists: &[&str]) -> Vec<CpuSet> {
        lists.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn uniform_is_one_domain() {
        let m = matrix(8, 0.0, 1, |_, _| 50.0);
        let c = cluster(&m, &[]);
        assert_eq!(c.domains, sets(&["0-7"]));
        assert_eq!(c.confidence, Some(1.0));
        assert!(c.levels.is_empty());
        assert!(!c.is_split());
    }

    #[test]
    fn noisy_one_domain_is_not_split() {
        // +-8% noise on every pair, many seeds: never a false split.
        for seed in 1..40 {
            let m = matrix(16, 0.08, seed * 7919, |_, _| 60.0);
            let c = cluster(&m, &[]);
            assert_eq!(c.domains, sets(&["0-15"]), "seed {seed}: {:?}", c.levels);
            assert!(c.confidence.unwrap() > 0.9, "seed {seed}");
        }
    }

    #[test]
    fn two_sockets() {
        let m = matrix(
            8,
            0.03,
            11,
            |i, j| if i / 4 == j / 4 { 45.0 } else { 140.0 },
        );
        let c = cluster(&m, &[]);
        assert_eq!(c.domains, sets(&["0-3", "4-7"]));
        assert_eq!(c.confidence, Some(1.0));
        let level = &c.levels[0];
        assert!(level.separation > 2.5, "{level:?}");
        assert!((level.inside_ns - 45.0).abs() < 3.0 && (level.across_ns - 140.0).abs() < 6.0);
    }

    #[test]
    fn four_ccx_groups_with_noise_and_smt() {
        // 16 CPUs: 4 CCX of 4; SMT siblings (2k, 2k+1) at 10 ns, same CCX
        // 28 ns, other CCX 85 ns; +-10% noise.
        let lat = |i: u32, j: u32| {
            if i / 2 == j / 2 {
                10.0
            } else if i / 4 == j / 4 {
                28.0
            } else {
                85.0
            }
        };
        let smt: Vec<CpuSet> = (0..8)
            .map(|k| CpuSet::from_iter([2 * k, 2 * k + 1]))
            .collect();
        for seed in 1..20 {
            let m = matrix(16, 0.10, seed * 104_729, lat);
            let c = cluster(&m, &smt);
            assert_eq!(
                c.domains,
                sets(&["0-3", "4-7", "8-11", "12-15"]),
                "seed {seed}"
            );
            assert!(c.confidence.unwrap() >= 0.99);
        }
    }

    #[test]
    fn hierarchy_gives_levels_finest_first() {
        // 2 sockets x 2 CCX x 2 CPUs: 25 / 80 / 200 ns.
        let lat = |i: u32, j: u32| match (i / 2 == j / 2, i / 4 == j / 4) {
            (true, _) => 25.0,
            (false, true) => 80.0,
            _ => 200.0,
        };
        let c = cluster(&matrix(8, 0.05, 3, lat), &[]);
        assert_eq!(c.domains, sets(&["0-1", "2-3", "4-5", "6-7"]));
        assert_eq!(c.levels.len(), 2, "{:#?}", c.levels);
        assert_eq!(c.levels[1].domains, sets(&["0-3", "4-7"]));
    }

    #[test]
    fn hidden_two_socket_vm() {
        // A VM with one reported node: its 6 vCPUs are interleaved over two
        // host sockets (even vCPUs on one, odd on the other).
        let m = matrix(6, 0.06, 5, |i, j| if i % 2 == j % 2 { 55.0 } else { 120.0 });
        let c = cluster(&m, &[]);
        assert_eq!(c.domains, sets(&["0,2,4", "1,3,5"]));
        assert!(c.is_split());
        assert!(c.confidence.unwrap() > 0.99);
    }

    #[test]
    fn outlier_pairs_do_not_change_the_answer() {
        // Preempted samples that survived the median: 3 pairs at 4x.
        for seed in 1..20 {
            let mut two = matrix(12, 0.12, seed * 31, |i, j| {
                if i / 6 == j / 6 {
                    50.0
                } else {
                    150.0
                }
            });
            let mut flat = matrix(12, 0.12, seed * 37, |_, _| 50.0);
            for (i, j) in [(0, 1), (2, 8), (7, 9)] {
                let v = two.get(i, j).unwrap();
                two.set(i, j, 4.0 * v);
                let v = flat.get(i, j).unwrap();
                flat.set(i, j, 4.0 * v);
            }
            assert_eq!(
                cluster(&two, &[]).domains,
                sets(&["0-5", "6-11"]),
                "seed {seed}"
            );
            assert_eq!(cluster(&flat, &[]).domains.len(), 1, "seed {seed}");
        }
    }

    #[test]
    fn missing_entries_are_tolerated() {
        // Two sockets; CPU 6 unmeasured, and a few pairs missing.
        let mut m = matrix(8, 0.02, 9, |i, j| if i / 4 == j / 4 { 40.0 } else { 110.0 });
        let mut rows: Vec<Vec<Option<f64>>> = m.rows().map(|r| r.to_vec()).collect();
        for (i, j) in [(0, 5), (1, 2), (3, 7)] {
            rows[i][j] = None;
            rows[j][i] = None;
        }
        rows[6] = vec![None; 8];
        for row in rows.iter_mut() {
            row[6] = None;
        }
        m = LatencyMatrix::from_rows(m.cpus().to_vec(), &rows).unwrap();
        let c = cluster(&m, &[]);
        assert_eq!(c.domains, sets(&["0-3", "4-5,7"]));
        assert_eq!(c.unplaced, sets(&["6"])[0]);
    }

    #[test]
    fn too_little_data() {
        let mut two = LatencyMatrix::new(vec![0, 1]);
        two.set(0, 1, 70.0);
        let c = cluster(&two, &[]);
        assert_eq!(c.domains, sets(&["0-1"]));
        assert_eq!(c.confidence, None, "one pair cannot show a split");

        let none = cluster(&LatencyMatrix::new(vec![0, 1, 2]), &[]);
        assert!(none.domains.is_empty());
        assert_eq!(none.unplaced, sets(&["0-2"])[0]);
        assert_eq!(none.confidence, None);
    }

    #[test]
    fn a_lone_slow_cpu_is_not_a_domain() {
        let m = matrix(
            6,
            0.03,
            13,
            |i, j| if i == 5 || j == 5 { 90.0 } else { 40.0 },
        );
        let c = cluster(&m, &[]);
        assert_eq!(c.domains.len(), 1);
    }

    #[test]
    fn large_machine_in_bounded_time() {
        // 128 CPUs, 8 CCX of 16 over 2 sockets (20 / 70 / 150 ns).
        let lat = |i: u32, j: u32| match (i / 16 == j / 16, i / 64 == j / 64) {
            (true, _) => 20.0,
            (false, true) => 70.0,
            _ => 150.0,
        };
        let m = matrix(128, 0.08, 17, lat);
        let started = std::time::Instant::now();
        let c = cluster(&m, &[]);
        let took = started.elapsed();
        assert_eq!(c.domains.len(), 8);
        assert_eq!(c.levels.len(), 2);
        assert_eq!(c.levels[1].domains, sets(&["0-63", "64-127"]));
        // Generous: debug build on a loaded 2-core machine.
        assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    }

    #[test]
    fn mann_whitney_counts_ties_half() {
        assert_eq!(mann_whitney(&[1.0, 2.0], &[3.0]), 1.0);
        assert_eq!(mann_whitney(&[1.0], &[1.0]), 0.5);
        assert_eq!(mann_whitney(&[2.0, 4.0], &[3.0]), 0.5);
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
