//! Process-wide locality counters: hops, refused hops, placement decisions
//! per node, and polls of located futures on and off their target node.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::NodeId;

/// Nodes counted one by one; decisions for higher ids share the last slot.
const NODE_SLOTS: usize = 64;

static HOPS: AtomicU64 = AtomicU64::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);
static ON_TARGET: AtomicU64 = AtomicU64::new(0);
static OFF_TARGET: AtomicU64 = AtomicU64::new(0);
static DECISIONS: [AtomicU64; NODE_SLOTS] = [const { AtomicU64::new(0) }; NODE_SLOTS];

pub(crate) fn count_hop() {
    HOPS.fetch_add(1, Relaxed);
}

pub(crate) fn count_refused() {
    REFUSED.fetch_add(1, Relaxed);
}

pub(crate) fn count_decision(node: NodeId) {
    let slot = (node.index() as usize).min(NODE_SLOTS - 1);
    DECISIONS[slot].fetch_add(1, Relaxed);
}

pub(crate) fn count_poll(on_target: bool) {
    if on_target {
        ON_TARGET.fetch_add(1, Relaxed);
    } else {
        OFF_TARGET.fetch_add(1, Relaxed);
    }
}

/// A snapshot of the locality counters of this process (all runtimes).
///
/// ```
/// let m = numa_rt_runtime::locality::metrics();
/// assert!(m.polled_on_target_fraction() <= 1.0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalityMetrics {
    /// Tasks moved to another node by `#[locality]` or `uses!`.
    pub hops: u64,
    /// Hops that could not happen: outside a multi-thread runtime's worker
    /// (another executor, `block_on`, a current-thread runtime) or in a
    /// `spawn_local` task. The future ran where it was.
    pub refused_hops: u64,
    /// Placement decisions of located futures, by chosen home node (only
    /// nodes with at least one decision are listed).
    pub decisions: Vec<(NodeId, u64)>,
    /// Polls of located futures' bodies on the node their targets chose.
    pub polls_on_target: u64,
    /// Polls of located futures' bodies anywhere else (a remote stealer, a
    /// refused hop).
    pub polls_off_target: u64,
}

impl LocalityMetrics {
    /// `polls_on_target / (polls_on_target + polls_off_target)`, or 1.0
    /// when nothing was polled.
    pub fn polled_on_target_fraction(&self) -> f64 {
        let all = self.polls_on_target + self.polls_off_target;
        if all == 0 {
            1.0
        } else {
            self.polls_on_target as f64 / all as f64
        }
    }
}

/// The locality counters so far.
pub fn metrics() -> LocalityMetrics {
    LocalityMetrics {
        hops: HOPS.load(Relaxed),
        refused_hops: REFUSED.load(Relaxed),
        decisions: DECISIONS
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = c.load(Relaxed);
                (n > 0).then(|| (NodeId::new(i as u32), n))
            })
            .collect(),
        polls_on_target: ON_TARGET.load(Relaxed),
        polls_off_target: OFF_TARGET.load(Relaxed),
    }
}
