//! The SLIT distance matrix between NUMA nodes.

use numa_rt_alloc::NodeId;

/// Relative distances between nodes, as the firmware's SLIT table reports
/// them (`nodeN/distance`): 10 means local, 20 twice as far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Distances {
    ids: Vec<NodeId>,
    matrix: Vec<u32>,
}

impl Distances {
    /// A matrix over `ids`; `rows[i][j]` is the distance from `ids[i]` to
    /// `ids[j]`. Returns `None` unless `rows` is square with one row per id.
    pub fn new(ids: Vec<NodeId>, rows: Vec<Vec<u32>>) -> Option<Distances> {
        let n = ids.len();
        if rows.len() != n || rows.iter().any(|r| r.len() != n) {
            return None;
        }
        Some(Distances {
            ids,
            matrix: rows.into_iter().flatten().collect(),
        })
    }

    /// The nodes the matrix covers, in row order.
    pub fn ids(&self) -> &[NodeId] {
        &self.ids
    }

    /// The distance from `from` to `to`, if both are in the matrix.
    pub fn get(&self, from: NodeId, to: NodeId) -> Option<u32> {
        let i = self.position(from)?;
        let j = self.position(to)?;
        Some(self.matrix[i * self.ids.len() + j])
    }

    /// Row `i` of the matrix: distances from `ids()[i]` to every node.
    pub fn row(&self, i: usize) -> &[u32] {
        let n = self.ids.len();
        &self.matrix[i * n..(i + 1) * n]
    }

    /// The rows of the matrix, in the order of [`ids`](Distances::ids).
    pub fn rows(&self) -> impl Iterator<Item = &[u32]> {
        self.matrix.chunks(self.ids.len().max(1))
    }

    fn position(&self, node: NodeId) -> Option<usize> {
        self.ids.iter().position(|&id| id == node)
    }
}
