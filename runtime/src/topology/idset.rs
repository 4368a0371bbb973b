//! Sets of CPU and node numbers, stored as bitmaps.

use std::fmt;
use std::marker::PhantomData;

use numa_rt_alloc::NodeId;

/// A set of small non-negative integers stored as a bitmap.
///
/// [`CpuSet`] and [`NodeSet`] are this type with different element kinds, so a
/// CPU number cannot be put where a node number is expected.
pub struct IdSet<K> {
    words: Vec<u64>,
    kind: PhantomData<fn() -> K>,
}

/// The element kind of a [`CpuSet`]: CPU numbers as the kernel counts them.
#[derive(Debug)]
pub enum CpuKind {}

/// The element kind of a [`NodeSet`]: NUMA node numbers.
#[derive(Debug)]
pub enum NodeKind {}

/// A set of CPU numbers (logical CPUs, as in `/sys/devices/system/cpu/cpuN`).
///
/// ```
/// use numa_rt_runtime::topology::CpuSet;
/// let cpus: CpuSet = "0-3,8".parse().unwrap();
/// assert_eq!(cpus.len(), 5);
/// assert!(cpus.contains(8));
/// assert_eq!(cpus.to_string(), "0-3,8");
/// ```
pub type CpuSet = IdSet<CpuKind>;

/// A set of NUMA node numbers.
///
/// ```
/// use numa_rt_runtime::topology::NodeSet;
/// use numa_rt_runtime::NodeId;
/// let nodes: NodeSet = [NodeId::new(0), NodeId::new(2)].into_iter().collect();
/// assert_eq!(nodes.to_string(), "0,2");
/// ```
pub type NodeSet = IdSet<NodeKind>;

impl<K> IdSet<K> {
    /// An empty set.
    pub const fn new() -> Self {
        IdSet {
            words: Vec::new(),
            kind: PhantomData,
        }
    }

    /// Adds `id`; returns whether it was absent.
    pub fn insert(&mut self, id: u32) -> bool {
        let (word, bit) = split(id);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let absent = self.words[word] & bit == 0;
        self.words[word] |= bit;
        absent
    }

    /// Removes `id`; returns whether it was present.
    pub fn remove(&mut self, id: u32) -> bool {
        let (word, bit) = split(id);
        match self.words.get_mut(word) {
            Some(w) if *w & bit != 0 => {
                *w &= !bit;
                self.trim();
                true
            }
            _ => false,
        }
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u32) -> bool {
        let (word, bit) = split(id);
        self.words.get(word).is_some_and(|w| w & bit != 0)
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set has no members.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// The smallest member.
    pub fn first(&self) -> Option<u32> {
        self.iter().next()
    }

    /// The largest member.
    pub fn last(&self) -> Option<u32> {
        let (i, w) = self
            .words
            .iter()
            .enumerate()
            .rev()
            .find(|(_, w)| **w != 0)?;
        Some(i as u32 * 64 + 63 - w.leading_zeros())
    }

    /// The members in increasing order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            words: &self.words,
            index: 0,
            current: self.words.first().copied().unwrap_or(0),
        }
    }

    /// The members of both sets.
    pub fn intersection(&self, other: &Self) -> Self {
        let mut out = IdSet {
            words: self
                .words
                .iter()
                .zip(&other.words)
                .map(|(a, b)| a & b)
                .collect(),
            kind: PhantomData,
        };
        out.trim();
        out
    }

    /// The members of either set.
    pub fn union(&self, other: &Self) -> Self {
        let (long, short) = if self.words.len() >= other.words.len() {
            (self, other)
        } else {
            (other, self)
        };
        let mut words = long.words.clone();
        for (w, s) in words.iter_mut().zip(&short.words) {
            *w |= s;
        }
        IdSet {
            words,
            kind: PhantomData,
        }
    }

    /// Adds every member of `other` to `self`, in place.
    pub fn union_with(&mut self, other: &Self) {
        if self.words.len() < other.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w |= o;
        }
    }

    /// The members of `self` that are not in `other`.
    pub fn difference(&self, other: &Self) -> Self {
        let mut words = self.words.clone();
        for (w, o) in words.iter_mut().zip(&other.words) {
            *w &= !o;
        }
        let mut out = IdSet {
            words,
            kind: PhantomData,
        };
        out.trim();
        out
    }

    /// Whether every member of `self` is in `other`.
    pub fn is_subset(&self, other: &Self) -> bool {
        self.words
            .iter()
            .enumerate()
            .all(|(i, w)| w & !other.words.get(i).copied().unwrap_or(0) == 0)
    }

    /// Whether the sets share a member.
    pub fn intersects(&self, other: &Self) -> bool {
        self.words.iter().zip(&other.words).any(|(a, b)| a & b != 0)
    }

    /// The bitmap words, least significant first (bit `i` of word `w` is
    /// member `64 * w + i`), as `sched_setaffinity` and `mbind` want them.
    pub fn as_words(&self) -> &[u64] {
        &self.words
    }

    /// Builds a set from bitmap words, least significant first.
    pub fn from_words(words: Vec<u64>) -> Self {
        let mut out = IdSet {
            words,
            kind: PhantomData,
        };
        out.trim();
        out
    }

    fn trim(&mut self) {
        while self.words.last() == Some(&0) {
            self.words.pop();
        }
    }
}

fn split(id: u32) -> (usize, u64) {
    ((id / 64) as usize, 1u64 << (id % 64))
}

impl NodeSet {
    /// Whether `node` is in the set.
    pub fn contains_node(&self, node: NodeId) -> bool {
        self.contains(node.index())
    }

    /// The member nodes in increasing order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.iter().map(NodeId::new)
    }
}

/// Iterator over the members of an [`IdSet`], in increasing order.
pub struct Iter<'a> {
    words: &'a [u64],
    index: usize,
    current: u64,
}

impl Iterator for Iter<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        loop {
            if self.current != 0 {
                let bit = self.current.trailing_zeros();
                self.current &= self.current - 1;
                return Some(self.index as u32 * 64 + bit);
            }
            self.index += 1;
            self.current = *self.words.get(self.index)?;
        }
    }
}

impl<'a, K> IntoIterator for &'a IdSet<K> {
    type Item = u32;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<K> FromIterator<u32> for IdSet<K> {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut set = IdSet::new();
        for id in iter {
            set.insert(id);
        }
        set
    }
}

impl FromIterator<NodeId> for NodeSet {
    fn from_iter<I: IntoIterator<Item = NodeId>>(iter: I) -> Self {
        iter.into_iter().map(NodeId::index).collect()
    }
}

impl<K> Extend<u32> for IdSet<K> {
    fn extend<I: IntoIterator<Item = u32>>(&mut self, iter: I) {
        for id in iter {
            self.insert(id);
        }
    }
}

impl<K> Clone for IdSet<K> {
    fn clone(&self) -> Self {
        IdSet {
            words: self.words.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> Default for IdSet<K> {
    fn default() -> Self {
        IdSet::new()
    }
}

impl<K> PartialEq for IdSet<K> {
    fn eq(&self, other: &Self) -> bool {
        // Both sides are kept trimmed, so equal sets have equal words.
        self.words == other.words
    }
}

impl<K> Eq for IdSet<K> {}

impl<K> std::hash::Hash for IdSet<K> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.words.hash(state);
    }
}

/// Formats the set as a kernel-style list: `0-3,8,10-11`.
impl<K> fmt::Display for IdSet<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut iter = self.iter().peekable();
        let mut first = true;
        while let Some(start) = iter.next() {
            let mut end = start;
            while iter.peek() == Some(&(end + 1)) {
                end += 1;
                iter.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

impl<K> fmt::Debug for IdSet<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

impl<K> std::str::FromStr for IdSet<K> {
    type Err = super::parse::ParseListError;

    /// Parses a kernel-style list such as `0-3,8-11` (see
    /// [`parse_list`](super::parse::parse_list)).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        super::parse::parse_list(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_contains() {
        let mut s = CpuSet::new();
        assert!(s.is_empty());
        assert!(s.insert(130));
        assert!(!s.insert(130));
        assert!(s.insert(3));
        assert_eq!(s.len(), 2);
        assert_eq!(s.first(), Some(3));
        assert_eq!(s.last(), Some(130));
        assert!(s.remove(130));
        assert!(!s.remove(130));
        assert_eq!(s.as_words(), &[8]);
    }

    #[test]
    fn set_algebra() {
        let a: CpuSet = [1, 2, 3, 70].into_iter().collect();
        let b: CpuSet = [2, 3, 4].into_iter().collect();
        assert_eq!(a.intersection(&b).to_string(), "2-3");
        assert_eq!(a.union(&b).to_string(), "1-4,70");
        assert_eq!(a.difference(&b).to_string(), "1,70");
        assert!(a.intersection(&b).is_subset(&a));
        assert!(!a.is_subset(&b));
        assert!(a.intersects(&b));
        // Equality ignores how the sets were built.
        assert_eq!(
            a.difference(&[70].into_iter().collect()),
            [1, 2, 3].into_iter().collect()
        );
    }

    #[test]
    fn union_in_place() {
        let mut a: CpuSet = [1, 200].into_iter().collect();
        a.union_with(&[2, 3].into_iter().collect());
        assert_eq!(a.to_string(), "1-3,200");
        let mut b: CpuSet = [5].into_iter().collect();
        b.union_with(&a);
        assert_eq!(b.to_string(), "1-3,5,200");
    }

    #[test]
    fn display_ranges() {
        let s: CpuSet = [0, 1, 2, 5, 7, 8, 64, 65].into_iter().collect();
        assert_eq!(s.to_string(), "0-2,5,7-8,64-65");
        assert_eq!(CpuSet::new().to_string(), "");
    }
}
