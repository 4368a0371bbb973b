//! Parsers for the kernel's CPU and node list formats.
//!
//! Two formats appear in sysfs and procfs:
//! - lists, as in `cpulist` and `cpuset.cpus`: `0-3,8-11`, `5`, or empty;
//!   a range may carry a stride, `0-15:4` (every fourth from 0 to 15);
//! - masks, as in `cpumap` and `shared_cpu_map`: comma-separated 32-bit hex
//!   words, most significant first: `00000000,0000000f`.

use std::fmt;

use super::idset::IdSet;

/// The largest CPU or node number accepted. The kernel's limit
/// (`CONFIG_NR_CPUS`) is at most 8192 on the architectures Linux supports
/// today; 65535 leaves room while keeping a corrupt or hostile tree (say
/// `online` = `0-999999`) from making discovery build huge bitmaps.
pub const MAX_ID: u32 = (1 << 16) - 1;

/// Why a list or mask could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseListError {
    input: String,
    reason: &'static str,
}

impl ParseListError {
    fn new(input: &str, reason: &'static str) -> Self {
        let mut input = input.to_owned();
        if input.len() > 80 {
            let mut cut = 77;
            while !input.is_char_boundary(cut) {
                cut -= 1;
            }
            input.truncate(cut);
            input.push_str("...");
        }
        ParseListError { input, reason }
    }

    /// What was wrong with the input.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for ParseListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {:?}", self.reason, self.input)
    }
}

impl std::error::Error for ParseListError {}

/// Parses a list such as `0-3,8-11` or `0-15:4`. Surrounding whitespace and
/// an empty list are accepted.
///
/// ```
/// use numa_rt_runtime::topology::{parse::parse_list, CpuSet};
/// let cpus: CpuSet = parse_list("0-2,8\n").unwrap();
/// assert_eq!(cpus.iter().collect::<Vec<_>>(), [0, 1, 2, 8]);
/// assert!(parse_list::<()>("3-1").is_err());
/// ```
pub fn parse_list<K>(input: &str) -> Result<IdSet<K>, ParseListError> {
    let text = input.trim();
    let mut set = IdSet::new();
    if text.is_empty() {
        return Ok(set);
    }
    for item in text.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(ParseListError::new(input, "empty item"));
        }
        let (range, stride) = match item.split_once(':') {
            Some((range, stride)) => (range, parse_number(input, stride)?),
            None => (item, 1),
        };
        if stride == 0 {
            return Err(ParseListError::new(input, "zero stride"));
        }
        let (start, end) = match range.split_once('-') {
            Some((a, b)) => (parse_number(input, a)?, parse_number(input, b)?),
            None => {
                let n = parse_number(input, range)?;
                (n, n)
            }
        };
        if start > end {
            return Err(ParseListError::new(input, "range runs backwards"));
        }
        let mut id = start;
        while id <= end {
            set.insert(id);
            id = match id.checked_add(stride) {
                Some(next) => next,
                None => break,
            };
        }
    }
    Ok(set)
}

fn parse_number(input: &str, text: &str) -> Result<u32, ParseListError> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseListError::new(input, "not a number"));
    }
    match text.parse::<u32>() {
        Ok(n) if n <= MAX_ID => Ok(n),
        _ => Err(ParseListError::new(input, "number too large")),
    }
}

/// Parses a mask such as `00000000,0000000f` (comma-separated 32-bit hex
/// words, most significant first; leading words may be shorter).
///
/// ```
/// use numa_rt_runtime::topology::{parse::parse_mask, CpuSet};
/// let cpus: CpuSet = parse_mask("00000001,00000003").unwrap();
/// assert_eq!(cpus.to_string(), "0-1,32");
/// ```
pub fn parse_mask<K>(input: &str) -> Result<IdSet<K>, ParseListError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(ParseListError::new(input, "empty mask"));
    }
    let groups: Vec<&str> = text.split(',').collect();
    if groups.len() as u64 * 32 > u64::from(MAX_ID) + 32 {
        return Err(ParseListError::new(input, "mask too long"));
    }
    let mut set = IdSet::new();
    for (i, group) in groups.iter().rev().enumerate() {
        let group = group.trim();
        if group.is_empty() || group.len() > 8 || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseListError::new(input, "not a 32-bit hex word"));
        }
        let word = u32::from_str_radix(group, 16)
            .map_err(|_| ParseListError::new(input, "not a 32-bit hex word"))?;
        for bit in 0..32 {
            if word & (1 << bit) != 0 {
                let id = i as u32 * 32 + bit;
                if id > MAX_ID {
                    return Err(ParseListError::new(input, "number too large"));
                }
                set.insert(id);
            }
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::CpuSet;
    use proptest::prelude::*;

    fn list(s: &str) -> Result<Vec<u32>, ParseListError> {
        parse_list::<()>(s).map(|set| set.iter().collect())
    }

    #[test]
    fn lists() {
        assert_eq!(list("").unwrap(), Vec::<u32>::new());
        assert_eq!(list("\n").unwrap(), Vec::<u32>::new());
        assert_eq!(list("5").unwrap(), [5]);
        assert_eq!(list("0-3,8-11\n").unwrap(), [0, 1, 2, 3, 8, 9, 10, 11]);
        assert_eq!(list("0-15:4").unwrap(), [0, 4, 8, 12]);
        assert_eq!(list("3,1").unwrap(), [1, 3]);
    }

    #[test]
    fn bad_lists() {
        for bad in [
            "a",
            "1-",
            "-1",
            "3-1",
            "1,,2",
            "1-2-3",
            "0-4:0",
            "99999999999",
            ",",
            "1 2",
        ] {
            assert!(list(bad).is_err(), "{bad:?} should not parse");
        }
        let err = list("0-x").unwrap_err();
        assert_eq!(err.to_string(), "not a number in \"0-x\"");
    }

    #[test]
    fn masks() {
        let m = |s| parse_mask::<()>(s).map(|set| set.iter().collect::<Vec<_>>());
        assert_eq!(m("0f").unwrap(), [0, 1, 2, 3]);
        assert_eq!(m("00000000,0000000f\n").unwrap(), [0, 1, 2, 3]);
        assert_eq!(m("1,00000000").unwrap(), [32]);
        assert_eq!(m("00000000").unwrap(), Vec::<u32>::new());
        for bad in ["", "xyz", "123456789", "0f,,0f", "0x1"] {
            assert!(m(bad).is_err(), "{bad:?} should not parse");
        }
    }

    proptest! {
        #[test]
        fn list_never_panics(s in "\\PC*") {
            let _ = list(&s);
        }

        #[test]
        fn list_like_input_never_panics(s in "[0-9,:\\- \n]{0,40}") {
            let _ = list(&s);
        }

        #[test]
        fn mask_never_panics(s in "[0-9a-fA-F,\n]{0,80}") {
            let _ = parse_mask::<()>(&s);
        }

        #[test]
        fn list_round_trips(ids in proptest::collection::btree_set(0u32..5000, 0..64)) {
            let set: CpuSet = ids.iter().copied().collect();
            let text = set.to_string();
            let back: CpuSet = parse_list(&text).unwrap();
            prop_assert_eq!(back.iter().collect::<Vec<_>>(), ids.into_iter().collect::<Vec<_>>());
        }

        #[test]
        fn mask_round_trips(ids in proptest::collection::btree_set(0u32..1024, 0..64)) {
            let set: CpuSet = ids.iter().copied().collect();
            // Format as the kernel does: 32-bit words, most significant first.
            let words = (set.last().unwrap_or(0) / 32 + 1) as usize;
            let text = (0..words).rev().map(|w| {
                let word = (0..32).filter(|b| set.contains(w as u32 * 32 + b)).fold(0u32, |acc, b| acc | 1 << b);
                format!("{word:08x}")
            }).collect::<Vec<_>>().join(",");
            let back: CpuSet = parse_mask(&text).unwrap();
            prop_assert_eq!(back, set);
        }
    }
}
