//! The injection path: a task pushed to a node's injector (the real
//! `NodePool`) from outside the node wakes a parked worker through the
//! real `Idle` set and `Parker`, and is run. The workers replay the
//! scheduler's sequence (`worker.rs`: injector, search, park with the
//! last-searcher re-check; `shared.rs`: push then `notify_pool`) step by
//! step on those real types. A lost wake-up leaves every worker asleep
//! with the task queued, which loom reports as a deadlock.

use loom::sync::atomic::AtomicBool;
use loom::sync::atomic::Ordering::{Acquire, Release};
use loom::thread;

use super::support::{entry, Gate};
use crate::loom::sync::Arc;
use crate::scheduler::park::Parker;
use crate::scheduler::pool::NodePool;
use crate::task::Notified;
use crate::NodeId;

/// One node: its injector and idle set, a parker per worker, and the
/// shutdown flag the worker that runs the task raises.
struct Node {
    pool: NodePool,
    parkers: Vec<Parker>,
    done: AtomicBool,
}

impl Node {
    fn new(workers: usize) -> Arc<Node> {
        Arc::new(Node {
            pool: NodePool::new(NodeId::new(0), 0..workers),
            parkers: (0..workers).map(|_| Parker::new()).collect(),
            done: AtomicBool::new(false),
        })
    }

    /// `Shared::notify_pool` without spilling to other nodes.
    fn notify(&self) {
        if let Some(worker) = self.pool.idle.worker_to_notify() {
            self.parkers[worker].unpark();
        }
    }

    /// `Shared::push_remote`: queue on the injector, then wake a worker.
    fn push_remote(&self, task: Notified) {
        self.pool.push(task);
        self.notify();
    }

    /// `Worker::run_task` and a shutdown once the one task ran.
    fn run(&self, task: Notified, searching: &mut bool) {
        if std::mem::replace(searching, false) && self.pool.idle.transition_worker_from_searching()
        {
            self.notify();
        }
        drop(task);
        self.done.store(true, Release);
        for parker in &self.parkers {
            parker.unpark();
        }
    }

    /// A worker's loop: injector, search, park; returns at shutdown.
    fn worker(&self, index: usize) {
        let idle = &self.pool.idle;
        let mut searching = false;
        loop {
            // `next_task`: the injector.
            if let Some(task) = self.pool.pop() {
                self.run(task, &mut searching);
                continue;
            }
            // `search`: only as one of at most half the workers.
            if !searching && idle.transition_worker_to_searching() {
                searching = true;
            }
            if searching {
                if let Some(task) = self.pool.pop() {
                    self.run(task, &mut searching);
                    continue;
                }
            }
            // `park`.
            let was_searching = std::mem::replace(&mut searching, false);
            if idle.transition_worker_to_parked(index, was_searching) && self.pool.has_injected() {
                self.notify();
            }
            loop {
                if self.done.load(Acquire) {
                    idle.unpark_worker_by_id(index);
                    return;
                }
                self.parkers[index].park();
                if !idle.is_parked(index) {
                    break;
                }
            }
            // Whoever took us off the sleeper list counted us searching.
            searching = true;
        }
    }
}

/// A task pushed from a thread outside the node while its only worker is
/// going to sleep is run.
#[test]
fn remote_push_wakes_the_worker() {
    loom::model(|| {
        let gate = Gate::new(false);
        let node = Node::new(1);
        let (task, _) = entry(&gate);
        let worker = {
            let node = node.clone();
            thread::spawn(move || node.worker(0))
        };
        let spawner = {
            let node = node.clone();
            thread::spawn(move || node.push_remote(task))
        };
        spawner.join().unwrap();
        worker.join().unwrap();
        assert!(node.done.load(Acquire), "the task ran");
        assert!(node.pool.pop().is_none());
    });
}

/// Two workers: a push that sees one of them searching wakes nobody, so
/// that searcher, as the last one, must see the task before it sleeps.
#[test]
fn last_searcher_sees_the_push() {
    loom::model(|| {
        let gate = Gate::new(false);
        let node = Node::new(2);
        let (task, _) = entry(&gate);
        let workers: Vec<_> = (0..2)
            .map(|i| {
                let node = node.clone();
                thread::spawn(move || node.worker(i))
            })
            .collect();
        node.push_remote(task);
        for worker in workers {
            worker.join().unwrap();
        }
        assert!(node.done.load(Acquire), "the task ran");
        assert!(node.pool.pop().is_none());
    });
}
