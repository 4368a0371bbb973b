//! The bytes the soak sends, and the random choices it makes.
//!
//! Every stream (a connection, a file) has a key; its byte at offset `i`
//! is a hash of `(key, i)`, so a receiver checks any chunk on its own and
//! a byte that arrives twice, late, shifted or from another connection
//! does not match.

/// The byte at `offset` of the stream `key`.
#[inline]
pub fn byte(key: u64, offset: u64) -> u8 {
    let mut x = key ^ offset.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (x >> 56) as u8
}

/// `len` bytes of stream `key` from `offset`, appended to `buf`.
pub fn fill(buf: &mut Vec<u8>, key: u64, offset: u64, len: usize) {
    buf.extend((0..len as u64).map(|i| byte(key, offset + i)));
}

/// The index of the first byte of `data` that is not stream `key` at
/// `offset`, or `None` when all match.
pub fn mismatch(data: &[u8], key: u64, offset: u64) -> Option<usize> {
    data.iter()
        .enumerate()
        .position(|(i, &b)| b != byte(key, offset + i as u64))
}

/// A small, fast, seeded generator (xorshift64*): the soak's random
/// choices only need to be varied and reproducible.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` mixed with `stream` (distinct streams of one
    /// seed give unrelated sequences).
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut s = seed ^ stream.wrapping_mul(0xd1b5_4a32_d192_ed03);
        s = (s ^ (s >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        Rng(s)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// A size that is mostly small, sometimes large: 1..=64 half the time,
    /// up to 2 KiB a third of the time, else up to `max`.
    pub fn size(&mut self, max: usize) -> usize {
        let max = max as u64;
        let hi = match self.below(6) {
            0..=2 => 64,
            3 | 4 => 2048,
            _ => max,
        };
        self.range(1, hi.min(max).max(1)) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_verify_on_their_own_and_a_flip_is_found() {
        let mut all = Vec::new();
        fill(&mut all, 7, 100, 4096);
        assert_eq!(mismatch(&all[1000..2000], 7, 1100), None);
        // Another stream's bytes do not pass.
        assert!(mismatch(&all[..64], 8, 100).is_some());
        all[1500] ^= 1;
        assert_eq!(mismatch(&all, 7, 100), Some(1500));
        // Shifted by one: no longer the stream.
        assert!(mismatch(&all[1..64], 7, 100).is_some());
    }

    #[test]
    fn sizes_stay_in_bounds() {
        let mut r = Rng::new(1, 2);
        for _ in 0..10_000 {
            let s = r.size(5000);
            assert!((1..=5000).contains(&s));
        }
        assert_eq!(Rng::new(1, 1).size(1), 1);
    }
}
