//! A driver's timers: deadlines in order in a FIFO, the others in a
//! min-heap, fired when the driver turns.
//!
//! A timer is registered with the driver of the thread that first polls it
//! and stays there; that driver sleeps no longer than its earliest
//! deadline, so the timer fires on time even if its task has moved to
//! another worker since. A dropped timer stays queued until it is due or
//! swept: a sweep runs when the queues hold twice as many entries as were
//! live at the previous sweep (at least 64), so it costs O(1) per timer
//! (amortised) and the queues never hold more than twice the live timers
//! of the last sweep. No counter of dropped timers is shared with the
//! timers' owners: dropping one is a single atomic flag.
//! Entries that leave the queues with no owner left are kept (up to
//! [`FREE_MAX`]) and handed to the next timers: a server that arms and
//! drops one timeout per request allocates none in the steady state.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

pub(crate) use crate::time::entry::TimerShared;

/// How many unused entries a driver keeps for reuse.
const FREE_MAX: usize = 512;

/// The fewest queued entries that make a sweep worth it.
const SWEEP_MIN: usize = 64;

/// A deadline this close after the driver's last clock reading (or before
/// the driver's first) is checked against a fresh reading when armed: it
/// may well have passed already (a zero sleep, a burst of interval ticks),
/// and completing it at once saves a wake through the driver. A deadline
/// further out is armed without reading the clock.
const NEAR: Duration = Duration::from_millis(1);

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
pub(crate) struct Timers {
    /// Timers in deadline order.
    queue: VecDeque<Entry>,
    /// Timers that came out of order.
    heap: BinaryHeap<Entry>,
    seq: u64,
    /// Sweep dropped timers out when this many entries are queued.
    sweep_at: usize,
    /// Entries nobody refers to any more, ready for reuse.
    free: Vec<Arc<TimerShared>>,
    /// The driver's latest clock reading: a deadline not after it has
    /// passed, no need to read the clock again.
    now: Option<Instant>,
}

impl Default for Timers {
    fn default() -> Timers {
        Timers {
            queue: VecDeque::new(),
            heap: BinaryHeap::new(),
            seq: 0,
            sweep_at: SWEEP_MIN,
            free: Vec::new(),
            now: None,
        }
    }
}

/// Which structure holds the earliest timer.
enum Front {
    Queue,
    Heap,
}

/// What arming a timer gave.
#[derive(Debug)]
pub(crate) enum Armed {
    /// The deadline had passed by the driver's last clock reading.
    Elapsed,
    /// Queued; the driver wakes the waker at the deadline.
    Pending(Registration),
}

/// Handle a timer future keeps to cancel its entry.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) timer: Arc<TimerShared>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        // The entry stays queued until it is due or swept: it must not
        // keep the waker (its task, and through it the runtime that owns
        // this driver: a cycle that leaked whole runtimes).
        self.timer.cancel();
    }
}

impl Timers {
    /// Adds a timer firing at `deadline` that wakes `waker`, unless the
    /// deadline has passed (by the driver's last clock reading, or by a
    /// fresh one for a deadline [`NEAR`] that reading).
    pub(crate) fn insert(&mut self, deadline: Instant, waker: Waker) -> Armed {
        let passed = match self.now {
            Some(now) if deadline <= now => true,
            Some(now) if now.checked_add(NEAR).is_some_and(|near| deadline > near) => false,
            _ => deadline <= Instant::now(),
        };
        if passed {
            return Armed::Elapsed;
        }
        if self.total() >= self.sweep_at {
            self.sweep();
        }
        let timer = self.new_timer(waker);
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
        Armed::Pending(Registration { timer })
    }

    /// A fresh entry: a recycled one when there is one.
    fn new_timer(&mut self, waker: Waker) -> Arc<TimerShared> {
        while let Some(mut timer) = self.free.pop() {
            // Only entries with no other reference were put there, and none
            // can appear since (the driver gave out no clone): this holds.
            if let Some(t) = Arc::get_mut(&mut timer) {
                t.reuse(waker);
                return timer;
            }
        }
        Arc::new(TimerShared::new(waker))
    }

    /// Keeps `timer`, which left the queues, for reuse if nobody else
    /// refers to it.
    fn recycle(&mut self, timer: Arc<TimerShared>) {
        if self.free.len() < FREE_MAX && Arc::strong_count(&timer) == 1 {
            self.free.push(timer);
        }
    }

    /// Drops every cancelled entry and sets the next sweep's threshold.
    fn sweep(&mut self) {
        let live = compact(self.queue.make_contiguous());
        while self.queue.len() > live {
            if let Some(e) = self.queue.pop_back() {
                self.recycle(e.timer);
            }
        }
        let mut heap = std::mem::take(&mut self.heap).into_vec();
        let live = compact(&mut heap);
        while heap.len() > live {
            if let Some(e) = heap.pop() {
                self.recycle(e.timer);
            }
        }
        self.heap = BinaryHeap::from(heap);
        self.sweep_at = (2 * self.total()).max(SWEEP_MIN);
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
            if first.timer.is_cancelled() {
                if let Some(e) = self.pop(from) {
                    self.recycle(e.timer);
                }
                continue;
            }
            return Some(first.deadline);
        }
        None
    }

    /// Fires every timer due at `now` (a fresh clock reading), pushing the
    /// wakers to `out`.
    pub(crate) fn fire_due(&mut self, now: Instant, out: &mut Vec<Waker>) {
        self.now = Some(self.now.map_or(now, |last| last.max(now)));
        while let Some((from, first)) = self.front() {
            if first.deadline > now {
                break;
            }
            let Some(entry) = self.pop(from) else { break };
            if entry.timer.is_cancelled() {
                self.recycle(entry.timer);
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

/// Moves the entries still owned to the front of `entries`, keeping their
/// order; returns how many there are.
fn compact(entries: &mut [Entry]) -> usize {
    let mut live = 0;
    for i in 0..entries.len() {
        if !entries[i].timer.is_cancelled() {
            entries.swap(live, i);
            live += 1;
        }
    }
    live
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::time::Duration;

    /// A waker that counts its wakes (and, through its `Arc`, its clones).
    struct Counted(AtomicUsize);
    impl std::task::Wake for Counted {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Relaxed);
        }
    }

    fn counted() -> (Arc<Counted>, Waker) {
        let c = Arc::new(Counted(AtomicUsize::new(0)));
        let w = Waker::from(c.clone());
        (c, w)
    }

    fn noop_waker() -> Waker {
        counted().1
    }

    /// A base for deadlines an hour ahead: whether a timer armed at a small
    /// offset from it is queued never depends on how fast the test runs.
    fn base() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    /// Arms a timer that must be queued.
    fn arm(t: &mut Timers, deadline: Instant) -> Registration {
        match t.insert(deadline, noop_waker()) {
            Armed::Pending(r) => r,
            Armed::Elapsed => panic!("armed as elapsed"),
        }
    }

    #[test]
    fn fires_in_deadline_order_and_not_early() {
        let mut t = Timers::default();
        let now = base();
        let late = arm(&mut t, now + Duration::from_secs(10));
        let soon = arm(&mut t, now + Duration::from_millis(1));
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
    fn the_waker_given_at_insert_is_woken() {
        let mut t = Timers::default();
        let now = base();
        let (count, waker) = counted();
        let Armed::Pending(_reg) = t.insert(now + Duration::from_millis(1), waker) else {
            panic!("armed as elapsed");
        };
        let mut out = Vec::new();
        t.fire_due(now + Duration::from_millis(1), &mut out);
        assert_eq!(out.len(), 1);
        out.drain(..).for_each(Waker::wake);
        assert_eq!(count.0.load(Relaxed), 1);
    }

    #[test]
    fn a_deadline_the_driver_clock_passed_is_elapsed_without_queueing() {
        let mut t = Timers::default();
        let now = Instant::now();
        // A fake reading far in the future: only the driver's clock can
        // make these deadlines elapsed.
        let later = now + Duration::from_secs(3600);
        t.fire_due(later, &mut Vec::new());
        assert!(matches!(t.insert(later, noop_waker()), Armed::Elapsed));
        assert!(matches!(
            t.insert(now + Duration::from_secs(1), noop_waker()),
            Armed::Elapsed
        ));
        // Later than the reading: queued, however close.
        let _next = arm(&mut t, later + Duration::from_nanos(1));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_deadline_near_the_driver_clock_is_checked_against_a_fresh_reading() {
        let mut t = Timers::default();
        // Before the driver's first reading: a passed deadline is elapsed,
        // a future one is queued.
        let past = Instant::now();
        assert!(matches!(t.insert(past, noop_waker()), Armed::Elapsed));
        let _soon = arm(&mut t, base());
        // Within NEAR after a (stale) reading: the fresh reading decides.
        let stale = Instant::now();
        t.fire_due(stale, &mut Vec::new());
        std::thread::sleep(Duration::from_micros(200));
        let passed = stale + Duration::from_micros(100);
        assert!(matches!(t.insert(passed, noop_waker()), Armed::Elapsed));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_cancelled_timer_lets_go_of_its_waker() {
        let mut t = Timers::default();
        let (task, waker) = counted();
        let Armed::Pending(reg) = t.insert(Instant::now() + Duration::from_secs(60), waker) else {
            panic!("armed as elapsed");
        };
        assert_eq!(Arc::strong_count(&task), 2);
        drop(reg);
        // The entry is still queued, its waker is not.
        assert_eq!(t.len(), 1);
        assert_eq!(Arc::strong_count(&task), 1);
    }

    #[test]
    fn a_timer_dropped_on_another_thread_lets_go_of_its_waker() {
        let mut t = Timers::default();
        let (task, waker) = counted();
        let Armed::Pending(reg) = t.insert(Instant::now() + Duration::from_secs(60), waker) else {
            panic!("armed as elapsed");
        };
        std::thread::spawn(move || drop(reg)).join().unwrap();
        assert_eq!(Arc::strong_count(&task), 1);
        // The driver then sweeps it and reuses the entry.
        t.sweep();
        assert_eq!((t.len(), t.free.len()), (0, 1));
    }

    #[test]
    fn out_of_order_deadlines_fire_in_order() {
        let mut t = Timers::default();
        let now = base();
        let ms = Duration::from_millis;
        // In order (queue), then earlier ones (heap), then a tie.
        let regs: Vec<_> = [5, 10, 20, 3, 15, 1, 10]
            .iter()
            .map(|&d| (d, arm(&mut t, now + ms(d))))
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
        let now = base();
        let regs: Vec<_> = (0..200)
            .map(|i| arm(&mut t, now + Duration::from_secs(i + 1)))
            .collect();
        drop(regs);
        let _keep = arm(&mut t, now + Duration::from_secs(1000));
        // Dropped timers ahead of the live one leave as the driver looks
        // for its next deadline, and their entries are kept for reuse.
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(1000)));
        assert_eq!((t.len(), t.free.len()), (1, 200));
    }

    #[test]
    fn sweeps_keep_dropped_timers_within_twice_the_live_ones() {
        let mut t = Timers::default();
        let now = base();
        let s = Duration::from_secs;
        // 100 live timers, in order and out of order, then a stream of
        // timers dropped at once (hyper's header-read timeout).
        let live: Vec<_> = (0..100)
            .map(|i| arm(&mut t, now + s(1000 - (i % 2) * 500 + i)))
            .collect();
        for i in 0..10_000 {
            drop(arm(&mut t, now + s(2000 + i)));
            assert!(t.len() <= 2 * live.len() + 1, "{} queued", t.len());
        }
        // Every live timer survived the sweeps and still fires in order.
        let mut out = Vec::new();
        t.fire_due(now + s(1099), &mut out);
        assert!(live.iter().all(|r| r.timer.register(&noop_waker())));
    }

    #[test]
    fn dropped_timers_are_reused_without_allocating() {
        let mut t = Timers::default();
        let now = base();
        let first: Vec<*const TimerShared> = (0..SWEEP_MIN)
            .map(|i| {
                let r = arm(&mut t, now + Duration::from_secs(i as u64 + 1));
                Arc::as_ptr(&r.timer)
            })
            .collect();
        // The next insert sweeps the 64 dropped entries into the free list
        // and takes one back.
        let again = arm(&mut t, now + Duration::from_secs(100));
        assert!(first.contains(&Arc::as_ptr(&again.timer)));
        assert_eq!(t.free.len(), SWEEP_MIN - 1);
    }

    #[test]
    fn an_entry_still_referenced_is_never_reused() {
        let mut t = Timers::default();
        let now = base();
        // Cancelled but its handle not yet dropped: the driver must not
        // reuse it (the owner still reads it).
        let reg = arm(&mut t, now + Duration::from_secs(1));
        reg.timer.cancel();
        let mut out = Vec::new();
        t.fire_due(now + Duration::from_secs(1), &mut out);
        assert!(t.free.is_empty());
        // A fired entry is held by its owner until it sees the fire.
        let (_, waker) = counted();
        let Armed::Pending(fired) = t.insert(now + Duration::from_secs(2), waker) else {
            panic!("armed as elapsed");
        };
        t.fire_due(now + Duration::from_secs(2), &mut out);
        assert!(t.free.is_empty());
        let other = arm(&mut t, now + Duration::from_secs(3));
        assert!(!Arc::ptr_eq(&other.timer, &fired.timer));
        assert!(!Arc::ptr_eq(&other.timer, &reg.timer));
        assert!(fired.timer.register(&noop_waker()));
        assert!(!other.timer.register(&noop_waker()));
    }

    #[test]
    fn the_free_list_is_bounded() {
        let mut t = Timers::default();
        let now = base();
        let regs: Vec<_> = (0..2 * FREE_MAX as u64)
            .map(|i| arm(&mut t, now + Duration::from_secs(i + 1)))
            .collect();
        drop(regs);
        t.sweep();
        assert_eq!(t.len(), 0);
        assert_eq!(t.free.len(), FREE_MAX);
    }
}
