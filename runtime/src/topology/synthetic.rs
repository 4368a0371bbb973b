//! Synthetic topologies: emulated NUMA nodes laid over real CPUs.

use std::fmt;

use numa_rt_alloc::NodeId;

use super::{
    CpuSet, Distances, Node, Source, Topology, TopologyError, LOCAL_DISTANCE, REMOTE_DISTANCE,
};

/// A description of an emulated machine: `nodes` nodes of `cpus_per_node`
/// CPUs each, with a distance matrix.
///
/// Written as a string (the format of `NUMA_RT_TOPOLOGY`):
/// - `NxC`: N nodes of C CPUs, distance 10 local and 20 remote;
/// - `NxC:L,R`: the same with local distance L and remote distance R;
/// - `NxC:d,d,...`: the full N x N matrix, row by row (N*N values).
///
/// The emulated nodes take the CPUs the process may use in increasing order;
/// there must be at least N*C of them. Memory allocated for an emulated node
/// comes from the real node under its CPUs, while `node()` reports the
/// emulated node, so placement logic can be tried on a one-node machine.
///
/// ```
/// use numa_rt_runtime::topology::Synthetic;
/// let spec = Synthetic::from_spec("2x1:10,30").unwrap();
/// assert_eq!(spec.nodes(), 2);
/// assert_eq!(spec.distance(0, 1), 30);
/// assert_eq!(spec.to_string(), "2x1:10,30,30,10");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synthetic {
    nodes: u32,
    cpus_per_node: u32,
    matrix: Vec<u32>,
}

/// The largest number of emulated nodes accepted.
const MAX_NODES: u32 = 1024;

impl Synthetic {
    /// `nodes` nodes of `cpus_per_node` CPUs, distances 10 local / 20 remote.
    ///
    /// # Panics
    /// If either count is zero or `nodes` exceeds 1024; use
    /// [`from_spec`](Synthetic::from_spec) for input from users.
    pub fn new(nodes: u32, cpus_per_node: u32) -> Synthetic {
        assert!(nodes > 0 && nodes <= MAX_NODES, "1 to {MAX_NODES} nodes");
        assert!(cpus_per_node > 0, "at least one CPU per node");
        Synthetic::uniform(nodes, cpus_per_node, LOCAL_DISTANCE, REMOTE_DISTANCE)
    }

    fn uniform(nodes: u32, cpus_per_node: u32, local: u32, remote: u32) -> Synthetic {
        let n = nodes as usize;
        let matrix = (0..n * n)
            .map(|k| if k / n == k % n { local } else { remote })
            .collect();
        Synthetic {
            nodes,
            cpus_per_node,
            matrix,
        }
    }

    /// Replaces the distance matrix; `rows[i][j]` is the distance from node
    /// `i` to node `j`. Errs unless it is N x N.
    pub fn with_distances(mut self, rows: &[Vec<u32>]) -> Result<Synthetic, String> {
        let n = self.nodes as usize;
        if rows.len() != n || rows.iter().any(|r| r.len() != n) {
            return Err(format!("the distance matrix must be {n} x {n}"));
        }
        self.matrix = rows.iter().flatten().copied().collect();
        Ok(self)
    }

    /// Parses the `NUMA_RT_TOPOLOGY` format (see the type's documentation).
    pub fn from_spec(spec: &str) -> Result<Synthetic, String> {
        let spec = spec.trim();
        let (shape, dist) = match spec.split_once(':') {
            Some((shape, dist)) => (shape, Some(dist)),
            None => (spec, None),
        };
        let (n, c) = shape
            .split_once(['x', 'X'])
            .ok_or_else(|| format!("expected NxC (such as 2x4), got {spec:?}"))?;
        let count = |what: &str, text: &str| -> Result<u32, String> {
            match text.trim().parse::<u32>() {
                Ok(v) if v > 0 => Ok(v),
                _ => Err(format!("{what} must be a positive number, got {text:?}")),
            }
        };
        let nodes = count("the node count", n)?;
        let cpus = count("the CPUs per node", c)?;
        if nodes > MAX_NODES {
            return Err(format!("at most {MAX_NODES} nodes, got {nodes}"));
        }
        let Some(dist) = dist else {
            return Ok(Synthetic::new(nodes, cpus));
        };
        let values = dist
            .split(',')
            .map(|v| count("a distance", v))
            .collect::<Result<Vec<u32>, String>>()?;
        let n = nodes as usize;
        match values.len() {
            2 => Ok(Synthetic::uniform(nodes, cpus, values[0], values[1])),
            len if len == n * n => Ok(Synthetic {
                nodes,
                cpus_per_node: cpus,
                matrix: values,
            }),
            len => Err(format!(
                "expected 2 distances (local,remote) or {} (the full matrix), got {len}",
                n * n
            )),
        }
    }

    /// The number of emulated nodes.
    pub fn nodes(&self) -> u32 {
        self.nodes
    }

    /// CPUs in each emulated node.
    pub fn cpus_per_node(&self) -> u32 {
        self.cpus_per_node
    }

    /// The distance from emulated node `from` to `to`.
    pub fn distance(&self, from: u32, to: u32) -> u32 {
        self.matrix[(from * self.nodes + to) as usize]
    }
}

impl fmt::Display for Synthetic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}:", self.nodes, self.cpus_per_node)?;
        for (i, d) in self.matrix.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

pub(super) fn build(base: &Topology, spec: &Synthetic) -> Result<Topology, TopologyError> {
    let cpus: Vec<u32> = base.cpus().iter().collect();
    let needed = spec.nodes as usize * spec.cpus_per_node as usize;
    if cpus.len() < needed {
        return Err(TopologyError::config(format!(
            "synthetic topology {spec} needs {needed} CPUs but the process may use {} ({})",
            cpus.len(),
            base.cpus()
        )));
    }
    let mut nodes = Vec::with_capacity(spec.nodes as usize);
    for (i, chunk) in cpus
        .chunks(spec.cpus_per_node as usize)
        .take(spec.nodes as usize)
        .enumerate()
    {
        let set: CpuSet = chunk.iter().copied().collect();
        let real = base.node_of_cpu(chunk[0]).unwrap_or_else(|| NodeId::new(0));
        let mut node = Node::new(NodeId::new(i as u32), set, 0);
        node.memory_node = real;
        nodes.push(node);
    }
    // Share each real node's memory among the emulated nodes it backs.
    for i in 0..nodes.len() {
        let real = nodes[i].memory_node;
        let sharers = nodes.iter().filter(|n| n.memory_node == real).count() as u64;
        let total = base.node(real).map_or(0, |n| n.memory_bytes);
        nodes[i].memory_bytes = total / sharers.max(1);
    }
    let ids = nodes.iter().map(|n| n.id).collect();
    let rows = (0..spec.nodes)
        .map(|i| (0..spec.nodes).map(|j| spec.distance(i, j)).collect())
        .collect();
    let used: CpuSet = nodes
        .iter()
        .fold(CpuSet::new(), |acc, n| acc.union(&n.cpus));
    let cache_domains = base
        .cache_domains
        .iter()
        .map(|d| d.intersection(&used))
        .filter(|d| !d.is_empty())
        .collect();
    let devices = base
        .devices
        .iter()
        .cloned()
        .map(|mut dev| {
            dev.node = dev
                .node
                .and_then(|real| nodes.iter().find(|n| n.memory_node == real).map(|n| n.id));
            dev
        })
        .collect();
    Ok(Topology {
        distances: Distances::new(ids, rows),
        nodes,
        cache_domains,
        devices,
        memory_tiers: Vec::new(),
        numa_balancing: base.numa_balancing,
        source: Source::Synthetic(spec.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let s = Synthetic::from_spec("4x1").unwrap();
        assert_eq!((s.nodes(), s.cpus_per_node()), (4, 1));
        assert_eq!(s.distance(2, 2), 10);
        assert_eq!(s.distance(2, 3), 20);
        let s = Synthetic::from_spec("2x2:10,12,21,10").unwrap();
        assert_eq!(s.distance(0, 1), 12);
        assert_eq!(s.distance(1, 0), 21);
        assert_eq!(Synthetic::from_spec(&s.to_string()).unwrap(), s);
        for bad in [
            "",
            "2",
            "0x4",
            "2x0",
            "2x",
            "ax2",
            "2x2:10",
            "2x2:10,20,30",
            "2x2:a,b",
            "5000x1",
        ] {
            assert!(
                Synthetic::from_spec(bad).is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn lays_nodes_over_real_cpus() {
        let base = Topology::single_node("0-5".parse().unwrap(), 6 << 30);
        let topo = Topology::synthetic_over(&base, &Synthetic::new(2, 2)).unwrap();
        assert_eq!(topo.nodes()[0].cpus().to_string(), "0-1");
        assert_eq!(topo.nodes()[1].cpus().to_string(), "2-3");
        assert_eq!(topo.nodes()[1].memory_node(), NodeId::new(0));
        assert_eq!(topo.nodes()[1].memory_bytes(), 3 << 30);
        assert_eq!(topo.nodes_by_distance(NodeId::new(1)), [NodeId::new(0)]);
    }

    #[test]
    fn too_few_cpus_is_an_error() {
        let base = Topology::single_node("0-1".parse().unwrap(), 1 << 30);
        let err = Topology::synthetic_over(&base, &Synthetic::new(4, 1)).unwrap_err();
        assert!(err.to_string().contains("needs 4 CPUs"), "{err}");
    }
}
