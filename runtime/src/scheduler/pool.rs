//! A node's pool: its injection queues and idle bookkeeping. Workers of the
//! pool are listed by index into the runtime's worker table.

use std::ops::Range;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use crossbeam_queue::SegQueue;

use super::idle::Idle;
use super::queue::Overflow;
use crate::task::Notified;
use crate::NodeId;

pub(crate) struct NodePool {
    /// The node this pool serves.
    pub(crate) node: NodeId,
    /// Tasks of `Preferred` policy: other nodes may steal from here.
    preferred: SegQueue<Notified>,
    /// Tasks of `Strict` policy: only this node's workers take them.
    strict: SegQueue<Notified>,
    pub(crate) idle: Idle,
    /// Indices of this pool's workers in the runtime's worker table.
    pub(crate) workers: Range<usize>,
    /// Tasks spawned with this node as home.
    pub(crate) spawned: AtomicU64,
}

impl NodePool {
    pub(crate) fn new(node: NodeId, workers: Range<usize>) -> NodePool {
        NodePool {
            node,
            preferred: SegQueue::new(),
            strict: SegQueue::new(),
            idle: Idle::new(workers.len()),
            workers,
            spawned: AtomicU64::new(0),
        }
    }

    /// Queues a task on this node's injector.
    pub(crate) fn push(&self, task: Notified) {
        if task.header().home.get().strict {
            self.strict.push(task);
        } else {
            self.preferred.push(task);
        }
    }

    /// Takes a task for one of this pool's own workers.
    pub(crate) fn pop(&self) -> Option<Notified> {
        // Strict tasks can only run here, so they go first.
        self.strict.pop().or_else(|| self.preferred.pop())
    }

    /// Takes a task another node may run.
    pub(crate) fn pop_preferred(&self) -> Option<Notified> {
        self.preferred.pop()
    }

    /// Tasks waiting in the injectors.
    pub(crate) fn inject_len(&self) -> usize {
        self.strict.len() + self.preferred.len()
    }

    pub(crate) fn has_injected(&self) -> bool {
        !self.strict.is_empty() || !self.preferred.is_empty()
    }

    pub(crate) fn has_preferred(&self) -> bool {
        !self.preferred.is_empty()
    }

    /// Whether this node cannot keep up: every worker busy and more tasks
    /// waiting in the injector than it has workers. Only then do idle
    /// nodes take its `Preferred` work.
    pub(crate) fn overloaded(&self) -> bool {
        self.idle.all_busy() && self.inject_len() > self.workers.len()
    }

    pub(crate) fn count_spawn(&self) {
        self.spawned.fetch_add(1, Relaxed);
    }

    /// Drops every queued task (shutdown).
    pub(crate) fn drain(&self) {
        while self.pop().is_some() {}
    }
}

impl Overflow for NodePool {
    fn push_batch(&self, tasks: &mut dyn Iterator<Item = Notified>) {
        for task in tasks {
            self.push(task);
        }
    }
}
