//! Compile-time checks of the string options: synthetic topology specs and
//! node lists.

/// The most emulated nodes a synthetic topology may have (as the runtime).
const MAX_NODES: u32 = 1024;

/// The largest NUMA node number accepted in `nodes = ...`.
pub(crate) const MAX_NODE_ID: u32 = 4095;

/// Checks a synthetic topology spec the way the runtime's
/// `Synthetic::from_spec` reads it: `NxC`, `NxC:L,R` or `NxC:` followed by
/// the full N x N distance matrix. Returns the reason it is invalid.
pub(crate) fn check_topology(spec: &str) -> Result<(), String> {
    let spec = spec.trim();
    let (shape, distances) = match spec.split_once(':') {
        Some((shape, distances)) => (shape, Some(distances)),
        None => (spec, None),
    };
    let (n, c) = shape
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected NxC such as \"2x4\" (N nodes of C CPUs), got {spec:?}"))?;
    let nodes = positive("the node count", n)?;
    positive("the CPUs per node", c)?;
    if nodes > MAX_NODES {
        return Err(format!("at most {MAX_NODES} nodes, got {nodes}"));
    }
    let Some(distances) = distances else {
        return Ok(());
    };
    let count = distances
        .split(',')
        .map(|d| positive("a distance", d))
        .collect::<Result<Vec<u32>, String>>()?
        .len();
    let full = nodes as usize * nodes as usize;
    if count == 2 || count == full {
        Ok(())
    } else {
        Err(format!(
            "expected 2 distances (local,remote) or {full} (the full matrix), got {count}"
        ))
    }
}

fn positive(what: &str, text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(format!("{what} must be a positive number, got {text:?}")),
    }
}

/// Parses a node list such as `"0,2-3"` into sorted, distinct node numbers.
pub(crate) fn parse_nodes(list: &str) -> Result<Vec<u32>, String> {
    let mut nodes = Vec::new();
    for part in list.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (node_id(lo)?, node_id(hi)?),
            None => {
                let id = node_id(part)?;
                (id, id)
            }
        };
        if lo > hi {
            return Err(format!("the range {part:?} runs backwards"));
        }
        nodes.extend(lo..=hi);
    }
    nodes.sort_unstable();
    nodes.dedup();
    Ok(nodes)
}

/// A node number in `0..=MAX_NODE_ID`.
pub(crate) fn node_id(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(id) if id <= MAX_NODE_ID => Ok(id),
        Ok(id) => Err(format!(
            "node {id} is above the largest node number, {MAX_NODE_ID}"
        )),
        Err(_) => Err(format!(
            "expected a node number or a range such as \"0-3\", got {:?}",
            text.trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use numa_rt_runtime::topology::Synthetic;

    /// The compile-time check must accept exactly what the runtime parses.
    #[test]
    fn agrees_with_the_runtime_parser() {
        let mut specs: Vec<String> = [
            "",
            "2",
            "x",
            "2x",
            "x2",
            "0x1",
            "1x0",
            "2x1",
            "2X1",
            " 4x2 ",
            "1024x1",
            "1025x1",
            "2x1:",
            "2x1:10",
            "2x1:10,20",
            "2x1:10,20,20,10",
            "2x1:10,20,20",
            "2x1:0,20",
            "2x1:a,b",
            "3x1:10,20",
            "3x1:10,20,30,20,10,20,30,20,10",
            "2x1:10,,20",
            "-1x2",
            "2x1x1",
            "2x1:10:20",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for n in 0..4 {
            for c in 0..3 {
                specs.push(format!("{n}x{c}"));
                for k in 0..=(n * n + 1) {
                    let matrix: Vec<String> = (0..k).map(|i| (10 + i).to_string()).collect();
                    specs.push(format!("{n}x{c}:{}", matrix.join(",")));
                }
            }
        }
        for spec in &specs {
            assert_eq!(
                check_topology(spec).is_ok(),
                Synthetic::from_spec(spec).is_ok(),
                "{spec:?}: {:?}",
                check_topology(spec)
            );
        }
    }

    #[test]
    fn node_lists() {
        assert_eq!(parse_nodes("0").unwrap(), [0]);
        assert_eq!(parse_nodes("3, 0-1,1").unwrap(), [0, 1, 3]);
        assert!(parse_nodes("").is_err());
        assert!(parse_nodes("1-0").unwrap_err().contains("backwards"));
        assert!(parse_nodes("a").unwrap_err().contains("node number"));
        assert!(parse_nodes("5000").unwrap_err().contains("largest"));
    }
}
