//! Reading the guest's sysfs, with errors that name the file.

use std::fs;
use std::path::Path;

/// Root of the NUMA node directories.
pub const NODE_DIR: &str = "/sys/devices/system/node";

/// The file's contents, trimmed.
pub fn read(path: impl AsRef<Path>) -> Result<String, String> {
    let path = path.as_ref();
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The file parsed as one unsigned integer.
pub fn read_u64(path: impl AsRef<Path>) -> Result<u64, String> {
    let path = path.as_ref();
    let text = read(path)?;
    text.parse()
        .map_err(|_| format!("{}: not a number: {text:?}", path.display()))
}

/// A kernel list such as `0-3,8,10-11` (empty string: empty list).
pub fn parse_list(text: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (part, part),
        };
        let lo: u32 = lo.parse().map_err(|_| format!("bad list item {part:?}"))?;
        let hi: u32 = hi.parse().map_err(|_| format!("bad list item {part:?}"))?;
        if hi < lo {
            return Err(format!("bad range {part:?}"));
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// `MemTotal` of a node, in bytes, as `nodeN/meminfo` reports it.
pub fn node_mem_total(node: u32) -> Result<u64, String> {
    let path = format!("{NODE_DIR}/node{node}/meminfo");
    let text = read(&path)?;
    for line in text.lines() {
        // "Node 0 MemTotal:       211064 kB"
        if let Some((_, rest)) = line.split_once("MemTotal:") {
            let kib = rest.trim().trim_end_matches("kB").trim();
            return kib
                .parse::<u64>()
                .map(|k| k * 1024)
                .map_err(|_| format!("{path}: bad MemTotal line {line:?}"));
        }
    }
    Err(format!("{path}: no MemTotal line"))
}

/// The NUMA node of a device: walk up its real sysfs path to the first
/// directory with a `numa_node` file (-1: the firmware did not say).
pub fn device_node(path: &str) -> Result<i64, String> {
    let real = fs::canonicalize(path).map_err(|e| format!("{path}: {e}"))?;
    let mut dir: Option<&Path> = Some(&real);
    while let Some(d) = dir {
        let file = d.join("numa_node");
        if file.exists() {
            let text = read(&file)?;
            return text
                .parse()
                .map_err(|_| format!("{}: not a number: {text:?}", file.display()));
        }
        dir = d.parent();
    }
    Err(format!("{}: no numa_node above it", real.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse() {
        assert_eq!(
            parse_list("0-3,8,10-11\n").unwrap(),
            [0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(parse_list("").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_list("5").unwrap(), [5]);
        assert!(parse_list("3-1").is_err());
        assert!(parse_list("a").is_err());
        assert!(parse_list("1-").is_err());
    }

    #[test]
    fn missing_file_is_named() {
        let err = read("/nonexistent/numa-vm").unwrap_err();
        assert!(err.starts_with("/nonexistent/numa-vm"), "{err}");
    }
}
