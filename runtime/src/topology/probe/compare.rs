//! Comparing probed latency domains with what the kernel reports: NUMA
//! nodes and last-level cache groups.

use numa_rt_alloc::NodeId;

use super::super::{CpuSet, Topology};

/// How the latency domains relate to the reported nodes and cache groups,
/// over the CPUs placed in a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    /// For each node with placed CPUs: how many domains its CPUs fall in.
    pub domains_per_node: Vec<(NodeId, usize)>,
    /// Domains holding CPUs of more than one node: (domain index, nodes).
    pub spanning_domains: Vec<(usize, Vec<NodeId>)>,
    /// Whether the domains are exactly the nodes' CPU sets.
    pub matches_nodes: bool,
    /// Whether the domains are exactly the cache groups; `None` when the
    /// machine reports no cache groups.
    pub matches_caches: Option<bool>,
    /// Cache groups whose CPUs fall in more than one domain (unexpected:
    /// CPUs sharing a cache should be close; suspect noise).
    pub split_caches: Vec<CpuSet>,
}

impl Comparison {
    /// Compares `domains` with the nodes and cache groups of `topo`.
    pub fn new(domains: &[CpuSet], topo: &Topology) -> Comparison {
        let placed = domains.iter().fold(CpuSet::new(), |acc, d| acc.union(d));
        let restrict = |sets: Vec<CpuSet>| -> Vec<CpuSet> {
            sets.into_iter()
                .map(|s| s.intersection(&placed))
                .filter(|s| !s.is_empty())
                .collect()
        };
        let nodes: Vec<(NodeId, CpuSet)> = topo
            .cpu_nodes()
            .map(|n| (n.id(), n.cpus().intersection(&placed)))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        let domains_per_node = nodes
            .iter()
            .map(|(id, cpus)| (*id, domains.iter().filter(|d| d.intersects(cpus)).count()))
            .collect();
        let spanning_domains = domains
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                let ids: Vec<NodeId> = nodes
                    .iter()
                    .filter(|(_, c)| c.intersects(d))
                    .map(|(id, _)| *id)
                    .collect();
                (ids.len() > 1).then_some((i, ids))
            })
            .collect();
        let node_sets = restrict(nodes.iter().map(|(_, c)| c.clone()).collect());
        let caches = restrict(topo.cache_domains().to_vec());
        let split_caches = caches
            .iter()
            .filter(|c| domains.iter().filter(|d| d.intersects(c)).count() > 1)
            .cloned()
            .collect();
        Comparison {
            domains_per_node,
            spanning_domains,
            matches_nodes: !domains.is_empty() && same_partition(domains, &node_sets),
            matches_caches: (!caches.is_empty()).then(|| same_partition(domains, &caches)),
            split_caches,
        }
    }

    /// The comparison as sentences for people, most important first.
    pub fn sentences(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.domains_per_node.is_empty() {
            out.push("no latency domain to compare (no pair was measured)".to_string());
            return out;
        }
        for &(node, count) in &self.domains_per_node {
            if count > 1 {
                out.push(format!(
                    "{count} latency domains inside node {}",
                    node.index()
                ));
            }
        }
        for (i, nodes) in &self.spanning_domains {
            let names: Vec<String> = nodes.iter().map(|n| n.index().to_string()).collect();
            out.push(format!(
                "latency domain {i} spans nodes {}",
                names.join(", ")
            ));
        }
        if self.matches_nodes {
            out.push("the latency domains match the reported NUMA nodes".to_string());
        }
        match self.matches_caches {
            Some(true) => {
                out.push("the latency domains match the last-level cache groups".to_string())
            }
            Some(false) if self.split_caches.is_empty() => {
                out.push("each latency domain holds whole last-level cache groups".to_string())
            }
            Some(false) => {
                for c in &self.split_caches {
                    out.push(format!(
                        "CPUs {c} share a last-level cache but fall in different latency \
                         domains (noisy measurement?)"
                    ));
                }
            }
            None => out.push("the machine reports no cache groups".to_string()),
        }
        out
    }
}

/// Whether two lists of disjoint sets are the same partition.
fn same_partition(a: &[CpuSet], b: &[CpuSet]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Synthetic;

    fn sets(lists: &[&str]) -> Vec<CpuSet> {
        lists.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn one_node(cpus: &str) -> Topology {
        Topology::single_node(cpus.parse().unwrap(), 1 << 30)
    }

    #[test]
    fn hidden_domains_inside_one_node() {
        let topo = one_node("0-7");
        let c = Comparison::new(&sets(&["0-3", "4-7"]), &topo);
        assert_eq!(c.domains_per_node, vec![(NodeId::new(0), 2)]);
        assert!(!c.matches_nodes);
        assert_eq!(c.matches_caches, None);
        let text = c.sentences();
        assert_eq!(text[0], "2 latency domains inside node 0");
    }

    #[test]
    fn one_domain_matches_one_node() {
        let c = Comparison::new(&sets(&["0-3"]), &one_node("0-3"));
        assert!(c.matches_nodes);
        assert!(c.sentences()[0].contains("match the reported NUMA nodes"));
    }

    #[test]
    fn domains_spanning_nodes() {
        let topo = Topology::synthetic_over(&one_node("0-3"), &Synthetic::new(2, 2)).unwrap();
        let c = Comparison::new(&sets(&["0-3"]), &topo);
        assert_eq!(
            c.spanning_domains,
            vec![(0, vec![NodeId::new(0), NodeId::new(1)])]
        );
        assert!(c.sentences()[0].contains("spans nodes 0, 1"));
        let c = Comparison::new(&sets(&["0-1", "2-3"]), &topo);
        assert!(c.matches_nodes);
    }

    #[test]
    fn nothing_measured() {
        let c = Comparison::new(&[], &one_node("0-3"));
        assert!(!c.matches_nodes);
        assert_eq!(
            c.sentences(),
            vec!["no latency domain to compare (no pair was measured)"]
        );
    }

    #[test]
    fn cache_groups() {
        let mut topo = one_node("0-7");
        topo.cache_domains = sets(&["0-3", "4-7"]);
        let c = Comparison::new(&sets(&["0-3", "4-7"]), &topo);
        assert_eq!(c.matches_caches, Some(true));
        let c = Comparison::new(&sets(&["0-1", "2-7"]), &topo);
        assert_eq!(c.split_caches, sets(&["0-3"]));
        let c = Comparison::new(&sets(&["0-7"]), &topo);
        assert_eq!(c.matches_caches, Some(false));
        assert!(c.split_caches.is_empty());
        assert!(c
            .sentences()
            .iter()
            .any(|s| s.contains("whole last-level cache groups")));
    }
}
