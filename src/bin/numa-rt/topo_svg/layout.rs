//! Where boxes go: which nodes get distance arcs, and the row of
//! memory-only nodes placed under their initiators.

use numa_rt::topology::Topology;

use super::boxes::{row_height, NodeBox};
use super::{BOX_W, MARGIN, MAX_FULL_MESH};

/// Which top-row nodes get a distance arc: every pair among up to
/// [`MAX_FULL_MESH`] nodes; beyond that, each node's nearest nodes, and
/// none when every node is equally far from every other.
pub(super) fn arc_pairs(topo: &Topology, top: &[NodeBox]) -> Vec<(usize, usize)> {
    let n = top.len();
    let ids: Vec<_> = top.iter().map(|b| b.node.id()).collect();
    let nearest = |i: usize, j: usize| {
        let others: Vec<u32> = (0..n)
            .filter(|&k| k != i)
            .map(|k| topo.distance(ids[i], ids[k]))
            .collect();
        let Some(&min) = others.iter().min() else {
            return false;
        };
        let ties = others.iter().filter(|&&d| d == min).count();
        ties < others.len() && topo.distance(ids[i], ids[j]) == min
    };
    let mut pairs = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            if n <= MAX_FULL_MESH || nearest(i, j) || nearest(j, i) {
                pairs.push((i, j));
            }
        }
    }
    pairs
}

/// Places memory-only nodes in a row at `y`, each under the top-row nodes
/// it is local to, without overlaps. Returns the placed boxes and, for
/// each, the top boxes to link it to.
pub(super) fn place_bottom_row<'a>(
    top: &[NodeBox<'a>],
    bottom: Vec<NodeBox<'a>>,
    y: f64,
) -> (Vec<NodeBox<'a>>, Vec<Vec<usize>>) {
    let h = row_height(&bottom);
    let mut placed: Vec<(Option<f64>, Vec<usize>, NodeBox<'a>)> = bottom
        .into_iter()
        .map(|b| {
            let initiators = b.node.local_initiators();
            let mut near: Vec<usize> = (0..top.len())
                .filter(|&t| initiators.contains_node(top[t].node.id()))
                .collect();
            if near.is_empty() {
                near = (0..top.len())
                    .filter(|&t| top[t].node.cpus().intersects(b.node.local_cpus()))
                    .collect();
            }
            let anchor = (!near.is_empty())
                .then(|| near.iter().map(|&t| top[t].center()).sum::<f64>() / near.len() as f64);
            (anchor, near, b)
        })
        .collect();
    placed.sort_by(|a, b| {
        let key = |p: &(Option<f64>, Vec<usize>, NodeBox)| (p.0.unwrap_or(f64::MAX), p.2.node.id());
        let (ka, kb) = (key(a), key(b));
        ka.0.total_cmp(&kb.0).then(ka.1.cmp(&kb.1))
    });
    let mut next = MARGIN;
    let mut boxes = Vec::with_capacity(placed.len());
    let mut links = Vec::with_capacity(placed.len());
    for (anchor, near, mut b) in placed {
        b.x = anchor.map_or(next, |a| (a - BOX_W / 2.0).max(next));
        b.y = y;
        b.h = h;
        next = b.x + BOX_W + 20.0;
        boxes.push(b);
        links.push(near);
    }
    (boxes, links)
}

/// The height of the arc joining boxes `span` slots apart.
pub(super) fn arc_height(span: usize) -> f64 {
    18.0 + 22.0 * span as f64
}
