//! The local run queue (`scheduler/queue.rs`): the owner pushing and
//! popping while one or two stealers take half, and the overflow of a full
//! queue to the node's injector (the real `NodePool`). Under loom the
//! queue holds 4 slots, so a few pushes reach overflow. No entry may be
//! lost (its cell would leak), duplicated (two owners of one reference),
//! or read from a slot before its write happens-before the read (loom's
//! cell check).

use std::collections::HashSet;

use loom::thread;

use super::support::{entry, Gate};
use crate::loom::sync::Arc;
use crate::scheduler::pool::NodePool;
use crate::scheduler::queue::{self, Local, LOCAL_QUEUE_CAPACITY};
use crate::task::Notified;
use crate::NodeId;

/// Everything a stealer ended with: the task it was handed and the ones it
/// moved into its own queue.
fn drain_thief(first: Option<Notified>, mut mine: Local) -> Vec<Notified> {
    let mut out: Vec<Notified> = first.into_iter().collect();
    while let Some(task) = mine.pop() {
        out.push(task);
    }
    out
}

/// Asserts that `found` holds exactly the entries `made`, once each.
fn assert_each_once(made: &[usize], found: &[Notified]) {
    let addrs: Vec<usize> = found
        .iter()
        .map(|t| t.header() as *const _ as usize)
        .collect();
    let unique: HashSet<usize> = addrs.iter().copied().collect();
    assert_eq!(unique.len(), addrs.len(), "an entry came out twice");
    assert_eq!(
        unique,
        made.iter().copied().collect::<HashSet<_>>(),
        "an entry was lost"
    );
}

fn injector() -> Arc<NodePool> {
    Arc::new(NodePool::new(NodeId::new(0), 0..1))
}

/// One stealer takes half while the owner pops: each entry comes out once.
#[test]
fn steal_vs_pop() {
    assert_eq!(LOCAL_QUEUE_CAPACITY, 4, "the models assume 4 slots");
    loom::model(|| {
        let gate = Gate::new(false);
        let pool = injector();
        let (mut owner, steal) = queue::local();
        let mut made = Vec::new();
        for _ in 0..3 {
            let (task, addr) = entry(&gate);
            made.push(addr);
            owner.push_back(task, &*pool);
        }
        let thief = thread::spawn(move || {
            let (mut mine, _) = queue::local();
            let first = steal.steal_into(&mut mine);
            drain_thief(first, mine)
        });
        let mut found = Vec::new();
        found.extend(owner.pop());
        found.extend(owner.pop());
        found.extend(thief.join().unwrap());
        while let Some(task) = owner.pop() {
            found.push(task);
        }
        assert!(pool.pop().is_none(), "nothing overflowed");
        assert_each_once(&made, &found);
    });
}

/// Two stealers (one moving half into its queue, one taking a batch as a
/// remote node does) race the owner, which pushes past capacity: entries
/// overflow to the injector while steals are in flight. Each entry ends up
/// exactly once in a queue, the injector, or a thief's hands.
#[test]
fn two_stealers_and_overflow() {
    loom::model(|| {
        let gate = Gate::new(false);
        let pool = injector();
        let (mut owner, steal) = queue::local();
        let mut made = Vec::new();
        for _ in 0..3 {
            let (task, addr) = entry(&gate);
            made.push(addr);
            owner.push_back(task, &*pool);
        }
        let later: Vec<(Notified, usize)> = (0..2).map(|_| entry(&gate)).collect();
        made.extend(later.iter().map(|(_, addr)| *addr));

        let half = {
            let steal = steal.clone();
            thread::spawn(move || {
                let (mut mine, _) = queue::local();
                let first = steal.steal_into(&mut mine);
                drain_thief(first, mine)
            })
        };
        let batch = thread::spawn(move || {
            let mut taken = Vec::new();
            steal.steal_batch(2, |task| taken.push(task));
            taken
        });
        for (task, _) in later {
            owner.push_back(task, &*pool);
        }
        let mut found = Vec::new();
        found.extend(owner.pop());
        found.extend(half.join().unwrap());
        found.extend(batch.join().unwrap());
        while let Some(task) = owner.pop() {
            found.push(task);
        }
        while let Some(task) = pool.pop() {
            found.push(task);
        }
        assert_each_once(&made, &found);
    });
}

/// The owner fills its queue and overflows half of it to the injector
/// while a stealer takes from it: the overflow either wins (the stealer
/// finds the rest) or yields to the steal; nothing is lost either way.
#[test]
fn overflow_vs_steal() {
    loom::model(|| {
        let gate = Gate::new(false);
        let pool = injector();
        let (mut owner, steal) = queue::local();
        let mut made = Vec::new();
        for _ in 0..LOCAL_QUEUE_CAPACITY {
            let (task, addr) = entry(&gate);
            made.push(addr);
            owner.push_back(task, &*pool);
        }
        let (extra, addr) = entry(&gate);
        made.push(addr);
        let thief = thread::spawn(move || {
            let (mut mine, _) = queue::local();
            let first = steal.steal_into(&mut mine);
            drain_thief(first, mine)
        });
        owner.push_back(extra, &*pool);
        let mut found = thief.join().unwrap();
        while let Some(task) = owner.pop() {
            found.push(task);
        }
        while let Some(task) = pool.pop() {
            found.push(task);
        }
        assert_each_once(&made, &found);
    });
}
