//! The CPU-to-CPU latency matrix the probe measures and the clustering reads.

use super::super::CpuSet;

/// One-way core-to-core latencies in nanoseconds over a list of CPUs.
///
/// Entry `(i, j)` is the latency between the `i`-th and `j`-th CPU of
/// [`cpus`](LatencyMatrix::cpus), or `None` when that pair was not measured
/// (a CPU the process may not use, a pair left out by sampling, a pair
/// whose time budget ran out, or a CPU with itself). The matrix is
/// symmetric: a pair is measured once and stored both ways.
///
/// ```
/// use numa_rt_runtime::topology::probe::LatencyMatrix;
///
/// let mut m = LatencyMatrix::new(vec![0, 1, 2]);
/// m.set(0, 2, 85.0);
/// assert_eq!(m.get(2, 0), Some(85.0));
/// assert_eq!(m.get_cpu(0, 2), Some(85.0));
/// assert_eq!(m.get(0, 1), None);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyMatrix {
    cpus: Vec<u32>,
    ns: Vec<Option<f64>>,
}

impl LatencyMatrix {
    /// An empty matrix (nothing measured) over `cpus`, in the given order.
    pub fn new(cpus: Vec<u32>) -> LatencyMatrix {
        let n = cpus.len();
        LatencyMatrix {
            cpus,
            ns: vec![None; n * n],
        }
    }

    /// A matrix from full rows (`rows[i][j]`), as a test or a saved probe
    /// gives it. Returns `None` unless `rows` is square with one row per CPU.
    /// Entries are made symmetric: where only one of `(i, j)` and `(j, i)`
    /// is given it is used for both, where both are given their mean is.
    pub fn from_rows(cpus: Vec<u32>, rows: &[Vec<Option<f64>>]) -> Option<LatencyMatrix> {
        let n = cpus.len();
        if rows.len() != n || rows.iter().any(|r| r.len() != n) {
            return None;
        }
        let mut m = LatencyMatrix::new(cpus);
        for (i, row) in rows.iter().enumerate() {
            for (j, &forward) in row.iter().enumerate().skip(i + 1) {
                let v = match (forward, rows[j][i]) {
                    (Some(a), Some(b)) => Some((a + b) / 2.0),
                    (a, b) => a.or(b),
                };
                if let Some(v) = v.filter(|v| v.is_finite() && *v >= 0.0) {
                    m.set(i, j, v);
                }
            }
        }
        Some(m)
    }

    /// The CPUs of the rows and columns, in order.
    pub fn cpus(&self) -> &[u32] {
        &self.cpus
    }

    /// The number of CPUs (rows).
    pub fn len(&self) -> usize {
        self.cpus.len()
    }

    /// Whether the matrix has no CPUs.
    pub fn is_empty(&self) -> bool {
        self.cpus.is_empty()
    }

    /// The latency between the `i`-th and `j`-th CPU, if measured.
    pub fn get(&self, i: usize, j: usize) -> Option<f64> {
        let n = self.cpus.len();
        if i >= n || j >= n {
            return None;
        }
        self.ns[i * n + j]
    }

    /// The latency between CPUs `a` and `b` (by CPU number), if measured.
    pub fn get_cpu(&self, a: u32, b: u32) -> Option<f64> {
        let i = self.index_of(a)?;
        let j = self.index_of(b)?;
        self.get(i, j)
    }

    /// The row index of CPU `cpu`.
    pub fn index_of(&self, cpu: u32) -> Option<usize> {
        self.cpus.iter().position(|&c| c == cpu)
    }

    /// Records `ns` for the pair `(i, j)` both ways. Indices out of range
    /// and the diagonal are ignored.
    pub fn set(&mut self, i: usize, j: usize, ns: f64) {
        let n = self.cpus.len();
        if i >= n || j >= n || i == j {
            return;
        }
        self.ns[i * n + j] = Some(ns);
        self.ns[j * n + i] = Some(ns);
    }

    /// The rows, `None` where not measured.
    pub fn rows(&self) -> impl Iterator<Item = &[Option<f64>]> + '_ {
        self.ns.chunks(self.cpus.len().max(1)).take(self.cpus.len())
    }

    /// Every measured pair `(i, j, ns)` with `i < j`.
    pub fn pairs(&self) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        let n = self.cpus.len();
        (0..n).flat_map(move |i| (i + 1..n).filter_map(move |j| Some((i, j, self.get(i, j)?))))
    }

    /// The CPUs with at least one measured pair.
    pub fn measured_cpus(&self) -> CpuSet {
        let mut set = CpuSet::new();
        for (i, j, _) in self.pairs() {
            set.insert(self.cpus[i]);
            set.insert(self.cpus[j]);
        }
        set
    }

    /// The smallest and largest measured latency.
    pub fn range(&self) -> Option<(f64, f64)> {
        self.pairs().fold(None, |acc, (_, _, v)| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_sparse() {
        let rows = vec![
            vec![None, Some(10.0), None],
            vec![Some(14.0), None, None],
            vec![Some(30.0), None, Some(1.0)],
        ];
        let m = LatencyMatrix::from_rows(vec![4, 5, 6], &rows).unwrap();
        assert_eq!(m.get(0, 1), Some(12.0));
        assert_eq!(m.get(0, 2), Some(30.0));
        assert_eq!(m.get(2, 2), None, "the diagonal is never set");
        assert_eq!(m.get(1, 2), None);
        assert_eq!(m.get_cpu(6, 4), Some(30.0));
        assert_eq!(m.pairs().count(), 2);
        assert_eq!(m.range(), Some((12.0, 30.0)));
        assert_eq!(m.measured_cpus(), "4-6".parse().unwrap());
        assert_eq!(m.rows().count(), 3);
        assert!(LatencyMatrix::from_rows(vec![1], &[vec![None, None]]).is_none());
    }

    #[test]
    fn empty_matrix() {
        let m = LatencyMatrix::new(Vec::new());
        assert!(m.is_empty());
        assert_eq!(m.rows().count(), 0);
        assert_eq!(m.range(), None);
    }
}
