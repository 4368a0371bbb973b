//! Which workers of a node pool are parked and which are searching for
//! work, so a new task wakes at most one sleeper, and only when nobody is
//! already looking.
//!
//! Counters live in one atomic word (searching in the low bits, unparked in
//! the high bits) so the hot check "should I wake someone?" is a single
//! load; the list of sleepers is behind a mutex taken only on park/unpark.

use crate::loom::sync::atomic::Ordering::SeqCst;
use crate::loom::sync::atomic::{fence, AtomicUsize};
use crate::loom::sync::{Mutex, MutexGuard};

const UNPARK_SHIFT: u32 = 16;
const SEARCH_MASK: usize = (1 << UNPARK_SHIFT) - 1;
const UNPARK_ONE: usize = 1 << UNPARK_SHIFT;

pub(crate) struct Idle {
    state: AtomicUsize,
    num_workers: usize,
    /// Pool-local indices of parked workers.
    sleepers: Mutex<Vec<usize>>,
}

fn searching(state: usize) -> usize {
    state & SEARCH_MASK
}

fn unparked(state: usize) -> usize {
    state >> UNPARK_SHIFT
}

impl Idle {
    /// All `num_workers` start unparked and not searching.
    pub(crate) fn new(num_workers: usize) -> Idle {
        Idle {
            state: AtomicUsize::new(num_workers << UNPARK_SHIFT),
            num_workers,
            sleepers: Mutex::new(Vec::with_capacity(num_workers)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<usize>> {
        self.sleepers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn should_wake(&self) -> bool {
        let state = self.state.load(SeqCst);
        searching(state) == 0 && unparked(state) < self.num_workers
    }

    /// A parked worker to wake for new work, marked unparked and searching;
    /// `None` when a worker is already searching or none is parked.
    pub(crate) fn worker_to_notify(&self) -> Option<usize> {
        // Pairs with the SeqCst update in `transition_worker_to_parked`: a
        // worker either sees the pushed task or is seen parked here.
        fence(SeqCst);
        if !self.should_wake() {
            return None;
        }
        let mut sleepers = self.lock();
        if !self.should_wake() {
            return None;
        }
        let worker = sleepers.pop()?;
        self.state.fetch_add(UNPARK_ONE | 1, SeqCst);
        Some(worker)
    }

    /// Records that `worker` parks. Returns `true` when it was the last
    /// searching worker (it must then check for work once more).
    pub(crate) fn transition_worker_to_parked(&self, worker: usize, is_searching: bool) -> bool {
        let mut sleepers = self.lock();
        let dec = UNPARK_ONE + usize::from(is_searching);
        let prev = self.state.fetch_sub(dec, SeqCst);
        // Pairs with the fence in `worker_to_notify`: the caller's re-check
        // of the queues comes after this fence, so either it sees a task
        // pushed before that fence or the pusher sees this worker parked.
        // A SeqCst read-modify-write alone does not order the later loads
        // of the queues (loom's `inject` models found the lost wake-up).
        fence(SeqCst);
        sleepers.push(worker);
        is_searching && searching(prev) == 1
    }

    /// Lets a worker start searching unless half the pool already is.
    pub(crate) fn transition_worker_to_searching(&self) -> bool {
        let state = self.state.load(SeqCst);
        if 2 * searching(state) >= self.num_workers {
            return false;
        }
        self.state.fetch_add(1, SeqCst);
        true
    }

    /// A searching worker found work. Returns `true` when it was the last
    /// searcher (another should be woken to keep looking).
    pub(crate) fn transition_worker_from_searching(&self) -> bool {
        let prev = self.state.fetch_sub(1, SeqCst);
        searching(prev) == 1
    }

    /// Wakes a specific worker's bookkeeping: removes it from the sleepers
    /// and counts it unparked and searching. `false` when it was not parked.
    pub(crate) fn unpark_worker_by_id(&self, worker: usize) -> bool {
        let mut sleepers = self.lock();
        match sleepers.iter().position(|&w| w == worker) {
            Some(pos) => {
                sleepers.swap_remove(pos);
                self.state.fetch_add(UNPARK_ONE | 1, SeqCst);
                true
            }
            None => false,
        }
    }

    /// Whether `worker` is in the sleeper list.
    pub(crate) fn is_parked(&self, worker: usize) -> bool {
        self.lock().contains(&worker)
    }

    /// Workers currently searching.
    #[cfg(test)]
    pub(crate) fn num_searching(&self) -> usize {
        searching(self.state.load(SeqCst))
    }

    /// Whether every worker is busy running tasks: none parked, none
    /// searching. Only then may other nodes take this node's work.
    pub(crate) fn all_busy(&self) -> bool {
        let state = self.state.load(SeqCst);
        searching(state) == 0 && unparked(state) == self.num_workers
    }

    /// Workers currently parked.
    pub(crate) fn num_parked(&self) -> usize {
        self.num_workers - unparked(self.state.load(SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_one_sleeper_only_when_nobody_searches() {
        let idle = Idle::new(2);
        assert_eq!(idle.worker_to_notify(), None);
        assert!(idle.transition_worker_to_searching());
        assert!(!idle.transition_worker_to_parked(1, false));
        // Worker 0 is searching: no need to wake 1.
        assert_eq!(idle.worker_to_notify(), None);
        assert!(idle.transition_worker_to_parked(0, true));
        assert_eq!(idle.num_parked(), 2);
        let woken = idle.worker_to_notify();
        assert!(woken.is_some());
        assert_eq!(idle.num_searching(), 1);
        assert_eq!(idle.worker_to_notify(), None);
        assert!(idle.transition_worker_from_searching());
        let other = 1 - woken.unwrap();
        assert!(idle.is_parked(other));
        assert!(idle.unpark_worker_by_id(other));
        assert!(!idle.unpark_worker_by_id(other));
        assert_eq!(idle.num_parked(), 0);
    }
}
