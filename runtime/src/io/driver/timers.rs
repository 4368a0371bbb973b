//! A driver's timers: a min-heap of deadlines, fired when the driver polls.
//!
//! A timer is registered with the driver of the thread that first polls it
//! and stays there; that driver sleeps no longer than its earliest
//! deadline, so the timer fires on time even if its task has moved to
//! another worker since. Cancelled timers are dropped lazily (when they
//! reach the top of the heap, or in bulk when they outnumber live ones).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Instant;

/// The part of a timer shared between its future and the driver.
#[derive(Debug, Default)]
pub(crate) struct TimerShared {
    state: Mutex<TimerState>,
    cancelled: AtomicBool,
}

#[derive(Debug, Default)]
struct TimerState {
    fired: bool,
    waker: Option<Waker>,
}

impl TimerShared {
    /// Records `waker` to be woken when the timer fires; `true` when it
    /// already has.
    pub(crate) fn register(&self, waker: &Waker) -> bool {
        let mut state = lock(&self.state);
        if state.fired {
            return true;
        }
        match &state.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => state.waker = Some(waker.clone()),
        }
        false
    }

    fn fire(&self) -> Option<Waker> {
        let mut state = lock(&self.state);
        state.fired = true;
        state.waker.take()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these short critical sections leaves plain
    // data behind: keep using it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Entry {
    deadline: Instant,
    seq: u64,
    timer: Arc<TimerShared>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap, we want the earliest first.
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

/// The timers of one driver.
///
/// Most timers of a server have one duration (hyper's header-read timeout,
/// a request timeout layer), so their deadlines come in order: those go to
/// the back of `queue` in O(1) and leave from its front in O(1). A deadline
/// earlier than the queue's last goes to `heap`. The earliest timer is the
/// earlier of the two fronts.
#[derive(Default)]
pub(crate) struct Timers {
    /// Timers in deadline order.
    queue: VecDeque<Entry>,
    /// Timers that came out of order.
    heap: BinaryHeap<Entry>,
    seq: u64,
    /// Timers cancelled while still queued.
    cancelled: Arc<AtomicUsize>,
}

/// Which structure holds the earliest timer.
enum Front {
    Queue,
    Heap,
}

/// Handle a timer future keeps to cancel its entry.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) timer: Arc<TimerShared>,
    cancelled: Arc<AtomicUsize>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if !self.timer.cancelled.swap(true, Relaxed) {
            self.cancelled.fetch_add(1, Relaxed);
        }
        // The entry stays in the heap until it is due or swept: it must not
        // keep the waker (its task, and through it the runtime that owns
        // this driver: a cycle that leaked whole runtimes).
        let waker = lock(&self.timer.state).waker.take();
        drop(waker);
    }
}

impl Timers {
    /// Adds a timer firing at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant) -> Registration {
        let cancelled = self.cancelled.load(Relaxed);
        if cancelled > 64 && cancelled > self.total() / 2 {
            self.heap.retain(|e| !e.timer.cancelled.load(Relaxed));
            self.queue.retain(|e| !e.timer.cancelled.load(Relaxed));
            self.cancelled.store(0, Relaxed);
        }
        let timer = Arc::new(TimerShared::default());
        self.seq += 1;
        let entry = Entry {
            deadline,
            seq: self.seq,
            timer: timer.clone(),
        };
        if self
            .queue
            .back()
            .map_or(true, |last| last.deadline <= deadline)
        {
            self.queue.push_back(entry);
        } else {
            self.heap.push(entry);
        }
        Registration {
            timer,
            cancelled: self.cancelled.clone(),
        }
    }

    fn total(&self) -> usize {
        self.queue.len() + self.heap.len()
    }

    /// Where the earliest timer (live or cancelled) is.
    fn front(&self) -> Option<(Front, &Entry)> {
        match (self.queue.front(), self.heap.peek()) {
            (Some(q), Some(h)) if (h.deadline, h.seq) < (q.deadline, q.seq) => {
                Some((Front::Heap, h))
            }
            (Some(q), _) => Some((Front::Queue, q)),
            (None, Some(h)) => Some((Front::Heap, h)),
            (None, None) => None,
        }
    }

    fn pop(&mut self, from: Front) -> Option<Entry> {
        match from {
            Front::Queue => self.queue.pop_front(),
            Front::Heap => self.heap.pop(),
        }
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some((from, first)) = self.front() {
            if first.timer.cancelled.load(Relaxed) {
                self.pop(from);
                self.saturating_uncount();
                continue;
            }
            return Some(first.deadline);
        }
        None
    }

    fn saturating_uncount(&self) {
        let _ = self
            .cancelled
            .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
    }

    /// Fires every timer due at `now`, pushing the wakers to `out`.
    pub(crate) fn fire_due(&mut self, now: Instant, out: &mut Vec<Waker>) {
        while let Some((from, first)) = self.front() {
            if first.deadline > now {
                break;
            }
            let Some(entry) = self.pop(from) else { break };
            if entry.timer.cancelled.load(Relaxed) {
                self.saturating_uncount();
                continue;
            }
            if let Some(w) = entry.timer.fire() {
                out.push(w);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A waker that does nothing (`Waker::noop` needs Rust 1.85; MSRV is
    /// 1.80).
    fn noop_waker() -> Waker {
        struct Noop;
        impl std::task::Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        Waker::from(Arc::new(Noop))
    }

    #[test]
    fn fires_in_deadline_order_and_not_early() {
        let mut t = Timers::default();
        let now = Instant::now();
        let late = t.insert(now + Duration::from_secs(10));
        let soon = t.insert(now + Duration::from_millis(1));
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(1)));
        let mut out = Vec::new();
        t.fire_due(now, &mut out);
        assert!(!soon.timer.register(&noop_waker()));
        t.fire_due(now + Duration::from_millis(1), &mut out);
        assert!(soon.timer.register(&noop_waker()));
        assert!(!late.timer.register(&noop_waker()));
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(10)));
    }

    #[test]
    fn a_cancelled_timer_lets_go_of_its_waker() {
        struct Counted;
        impl std::task::Wake for Counted {
            fn wake(self: Arc<Self>) {}
        }
        let mut t = Timers::default();
        let task = Arc::new(Counted);
        let reg = t.insert(Instant::now() + Duration::from_secs(60));
        assert!(!reg.timer.register(&Waker::from(task.clone())));
        assert_eq!(Arc::strong_count(&task), 2);
        drop(reg);
        // The entry is still in the heap, its waker is not.
        assert_eq!(t.len(), 1);
        assert_eq!(Arc::strong_count(&task), 1);
    }

    #[test]
    fn out_of_order_deadlines_fire_in_order() {
        let mut t = Timers::default();
        let now = Instant::now();
        let ms = Duration::from_millis;
        // In order (queue), then earlier ones (heap), then a tie.
        let regs: Vec<_> = [5, 10, 20, 3, 15, 1, 10]
            .iter()
            .map(|&d| (d, t.insert(now + ms(d))))
            .collect();
        let mut fired = Vec::new();
        for step in 0..=20 {
            let mut out = Vec::new();
            t.fire_due(now + ms(step), &mut out);
            for (d, r) in &regs {
                if r.timer.register(&noop_waker()) && !fired.contains(d) {
                    assert!(*d <= step, "timer {d} fired at {step}");
                    fired.push(*d);
                }
            }
            let next = t.next_deadline();
            if let Some(n) = next {
                assert!(n > now + ms(step));
            }
        }
        assert_eq!(fired, vec![1, 3, 5, 10, 15, 20]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn cancelled_timers_are_dropped() {
        let mut t = Timers::default();
        let now = Instant::now();
        let regs: Vec<_> = (0..200)
            .map(|i| t.insert(now + Duration::from_secs(i + 1)))
            .collect();
        drop(regs);
        let _keep = t.insert(now + Duration::from_secs(1000));
        assert!(t.len() <= 2, "heap kept {} entries", t.len());
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(1000)));
    }
}
