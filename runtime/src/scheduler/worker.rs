//! A worker thread's loop: LIFO slot, local ring, pinned (local) tasks,
//! the node's injector, stealing from siblings and then from other nodes,
//! and parking when nothing is runnable.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use super::queue::{Local, LOCAL_QUEUE_CAPACITY};
use super::shared::{LocalSchedule, Shared};
use crate::task::{coop, new_task, Home, Id, JoinHandle, Notified};

/// Tasks run from the LIFO slot in a row before it must wait its turn in
/// the ring (so two tasks waking each other cannot starve the rest).
const MAX_LIFO_POLLS: u32 = 3;

/// Most tasks moved from the injector to the local ring at once: half the
/// ring, so a batch never forces an overflow.
const MAX_INJECT_BATCH: usize = LOCAL_QUEUE_CAPACITY / 2;

/// Ticks between fairness checks before the first measurement (tokio's
/// fixed value).
const INITIAL_INTERVAL: u32 = 61;

/// How long a task queued on the node's injector should wait at most
/// behind a busy local queue; the fairness interval is tuned from the mean
/// poll time to meet it.
const TARGET_INJECT_LATENCY: Duration = Duration::from_micros(200);

/// Bounds of the tuned interval.
const MIN_INTERVAL: u32 = 2;
const MAX_INTERVAL: u32 = 127;

/// Remote stealing waits out small imbalances. When a node runs out of
/// work, it takes `Preferred` tasks from other nodes only after it has been
/// idle for a quarter of the time it had been busy before (the kernel, too,
/// tolerates a 25% load difference between NUMA domains before it moves
/// tasks), within the bounds below. At the end of a batch spread evenly
/// over the nodes, one node finishes before the others (CPU speed, a
/// hypervisor, interrupts, other processes), and they finish their own
/// queues about as soon as stolen tasks would have run far from their
/// memory. A node that had little to do, facing a node with a lasting
/// backlog, helps almost at once. The wait is paid once per idle spell,
/// not per steal.
const REMOTE_STEAL_TOLERANCE: u32 = 4;

/// The shortest wait before a remote steal (unless the longest, set by
/// `Builder::remote_steal_grace`, is shorter).
const MIN_REMOTE_STEAL_GRACE: Duration = Duration::from_millis(1);

/// The longest wait before a remote steal: the default of
/// `Builder::remote_steal_grace`.
pub(crate) const REMOTE_STEAL_GRACE: Duration = Duration::from_millis(100);

/// Counters kept by the worker and published now and then.
#[derive(Default)]
struct Stats {
    polls: Cell<u64>,
    home_polls: Cell<u64>,
    local_steals: Cell<u64>,
    remote_steals: Cell<u64>,
    parks: Cell<u64>,
    unparks: Cell<u64>,
    spawned: Cell<u64>,
}

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

struct Core {
    lifo: Option<Notified>,
    queue: Local,
    /// Local tasks ready to run (never stolen).
    pinned: VecDeque<Notified>,
    /// Ticks left until the next maintenance (fairness check).
    until_maintenance: u32,
    /// Current ticks between maintenance runs.
    interval: u32,
    /// When the last maintenance ran, and the poll count then: the mean
    /// poll time since tunes `interval`.
    last_maintenance: Instant,
    polls_at_maintenance: u64,
    searching: bool,
}

/// The state of one worker, reachable from its thread's context.
pub(crate) struct WorkerContext {
    shared: Arc<Shared>,
    /// Index in the runtime's worker table.
    pub(crate) index: usize,
    /// Index of the worker's node pool.
    pub(crate) pool: usize,
    core: RefCell<Core>,
    stats: Stats,
    /// Tasks that yielded: woken once the worker has run its other work
    /// (or at the next maintenance tick), so a yield lets everything
    /// queued run first, including the node's injector.
    deferred: RefCell<Vec<Waker>>,
    /// The spare buffer `deferred` is swapped with, so waking them does
    /// not allocate.
    deferred_spare: Cell<Vec<Waker>>,
    /// Set while the deferred tasks are being woken.
    waking_deferred: Cell<bool>,
    /// Since when this worker has found no task of its own node (`None`
    /// while it runs them); remote steals wait for a grace period.
    idle_since: Cell<Option<Instant>>,
    /// Since when this worker has been running its node's tasks (the end
    /// of its last idle spell); the grace period grows with it.
    busy_since: Cell<Instant>,
    /// When the last idle spell began, and its grace period: a busy
    /// stretch shorter than that grace (a task woken now and then on an
    /// otherwise idle node) does not end the spell.
    last_idle: Cell<Instant>,
    grace: Cell<Duration>,
}

impl WorkerContext {
    pub(crate) fn new(shared: Arc<Shared>, index: usize, queue: Local) -> WorkerContext {
        let pool = shared.remotes[index].pool;
        WorkerContext {
            shared,
            index,
            pool,
            core: RefCell::new(Core {
                lifo: None,
                queue,
                pinned: VecDeque::new(),
                until_maintenance: INITIAL_INTERVAL,
                interval: INITIAL_INTERVAL,
                last_maintenance: Instant::now(),
                polls_at_maintenance: 0,
                searching: false,
            }),
            stats: Stats::default(),
            deferred: RefCell::new(Vec::new()),
            deferred_spare: Cell::new(Vec::new()),
            waking_deferred: Cell::new(false),
            idle_since: Cell::new(None),
            busy_since: Cell::new(Instant::now()),
            last_idle: Cell::new(Instant::now()),
            grace: Cell::new(Duration::ZERO),
        }
    }

    /// The parker other threads wake this worker with.
    pub(crate) fn parker(&self) -> &super::park::Parker {
        &self.shared.remotes[self.index].parker
    }

    /// The runtime this worker belongs to.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn shared_ptr(&self) -> *const Shared {
        Arc::as_ptr(&self.shared)
    }

    /// Queues a task of this worker's node on this worker. Gives the task
    /// back when the core is busy (the caller then uses the injector).
    pub(crate) fn schedule_local(&self, task: Notified, yield_now: bool) -> Option<Notified> {
        let Ok(mut core) = self.core.try_borrow_mut() else {
            return Some(task);
        };
        let pool = &self.shared.pools[self.pool];
        let batching = self.waking_deferred.get();
        let pushed_to_ring = if yield_now || batching || !self.shared.config.lifo_slot {
            core.queue.push_back(task, pool);
            true
        } else if let Some(prev) = core.lifo.replace(task) {
            core.queue.push_back(prev, pool);
            true
        } else {
            false
        };
        drop(core);
        if pushed_to_ring && !batching {
            // Work a sibling could steal: wake one if all are asleep.
            self.shared.notify_pool(self.pool, false);
        }
        None
    }

    /// Queues one of this worker's local tasks.
    pub(crate) fn schedule_pinned(&self, task: Notified, _yield_now: bool) -> Option<Notified> {
        let Ok(mut core) = self.core.try_borrow_mut() else {
            return Some(task);
        };
        core.pinned.push_back(task);
        None
    }

    /// Counts a task spawned onto this worker's node.
    pub(crate) fn count_spawn(&self) {
        bump(&self.stats.spawned, 1);
    }

    /// Spawns a task that stays on this worker.
    pub(crate) fn spawn_local<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let id = Id::next();
        let home = Home {
            pool: self.pool as u32,
            strict: true,
            allowed: 0,
        };
        let scheduler = LocalSchedule {
            shared: self.shared.clone(),
            worker: self.index,
        };
        // The future is polled only by this worker: LocalSchedule routes
        // every wake here, and the worker cancels its local tasks itself
        // before it exits.
        let heap = self.shared.cell_heap(self.pool);
        let (task, notified, join) = new_task(future, scheduler, id, home, heap);
        if let Err(task) = self.shared.remotes[self.index].local_owned.bind(task) {
            drop(notified);
            task.shutdown();
            return join;
        }
        self.count_spawn();
        if let Some(task) = self.schedule_pinned(notified, false) {
            self.shared.remotes[self.index].inbox.push(task);
        }
        join
    }

    /// Wakes `waker` once this worker has run its other queued work.
    pub(crate) fn defer(&self, waker: &Waker) {
        match self.deferred.try_borrow_mut() {
            Ok(mut list) => list.push(waker.clone()),
            Err(_) => waker.wake_by_ref(),
        }
    }

    /// Wakes the deferred tasks; `false` when there were none.
    fn wake_deferred(&self) -> bool {
        let mut batch = self.deferred_spare.take();
        match self.deferred.try_borrow_mut() {
            Ok(mut list) if !list.is_empty() => std::mem::swap(&mut *list, &mut batch),
            _ => {
                self.deferred_spare.set(batch);
                return false;
            }
        }
        // Yielded tasks go to the back of the ring (not the LIFO slot), and
        // siblings are told once for the whole batch.
        self.waking_deferred.set(true);
        for waker in batch.drain(..) {
            waker.wake();
        }
        self.waking_deferred.set(false);
        self.deferred_spare.set(batch);
        self.shared.notify_pool(self.pool, false);
        true
    }

    /// The worker loop; returns when the runtime shuts down.
    pub(crate) fn run(&self) {
        while !self.shared.is_shutdown() {
            if let Some(task) = self.next_task() {
                self.run_task(task);
                continue;
            }
            if let Some(task) = self.search() {
                self.run_task(task);
                continue;
            }
            if self.wake_deferred() {
                continue;
            }
            self.park();
        }
        self.shutdown();
    }

    fn next_task(&self) -> Option<Notified> {
        let mut core = self.core.borrow_mut();
        core.until_maintenance -= 1;
        if core.until_maintenance == 0 {
            // Now and then look at shared and local queues first, so tasks
            // queued there are not starved by a busy ring.
            self.tune_interval(&mut core);
            core.until_maintenance = core.interval;
            self.publish_stats();
            self.maybe_spill(&core);
            drop(core);
            self.shared.affinity.tick(self.index);
            // Completions and due timers of this worker's I/O driver.
            crate::io::driver::poll_current();
            self.wake_deferred();
            core = self.core.borrow_mut();
            if let Some(task) = self.pull_injector(&mut core) {
                return Some(task);
            }
            if let Some(task) = core.pinned.pop_front() {
                return Some(task);
            }
        }
        if let Some(task) = core.lifo.take() {
            return Some(task);
        }
        if let Some(task) = core.queue.pop() {
            return Some(task);
        }
        let inbox = &self.shared.remotes[self.index].inbox;
        while let Some(task) = inbox.pop() {
            core.pinned.push_back(task);
        }
        if let Some(task) = core.pinned.pop_front() {
            return Some(task);
        }
        self.pull_injector(&mut core)
    }

    /// Sets the fairness interval so that, at the mean poll time measured
    /// since the last maintenance, the injector is looked at about every
    /// `TARGET_INJECT_LATENCY` (unless the builder fixed the interval).
    fn tune_interval(&self, core: &mut Core) {
        let now = Instant::now();
        let polls = self.stats.polls.get();
        if let Some(fixed) = self.shared.config.global_queue_interval {
            core.interval = fixed;
        } else {
            let n = polls - core.polls_at_maintenance;
            if n > 0 {
                let mean = now.duration_since(core.last_maintenance).as_nanos() / u128::from(n);
                let target = TARGET_INJECT_LATENCY.as_nanos() / mean.max(1);
                core.interval = target.clamp(MIN_INTERVAL.into(), MAX_INTERVAL.into()) as u32;
            }
        }
        core.last_maintenance = now;
        core.polls_at_maintenance = polls;
    }

    /// When this node cannot keep up (every worker busy and work piling up
    /// here), wakes an idle worker of the nearest node to take some.
    fn maybe_spill(&self, core: &Core) {
        const BACKLOG: usize = 4;
        if self.shared.config.remote_steal
            && self.shared.pools.len() > 1
            && core.queue.len() >= BACKLOG
            && self.shared.pools[self.pool].idle.all_busy()
        {
            self.shared.notify_remote(self.pool);
        }
    }

    /// Takes a task from the node's injector and moves a fair share of the
    /// rest into the local ring.
    fn pull_injector(&self, core: &mut Core) -> Option<Notified> {
        let pool = &self.shared.pools[self.pool];
        let first = pool.pop()?;
        let share = pool.inject_len() / pool.workers.len().max(1);
        let n = share.min(core.queue.remaining()).min(MAX_INJECT_BATCH);
        for _ in 0..n {
            match pool.pop() {
                Some(task) => core.queue.push_back(task, pool),
                None => break,
            }
        }
        Some(first)
    }

    fn run_task(&self, task: Notified) {
        let was_searching = {
            let mut core = self.core.borrow_mut();
            std::mem::replace(&mut core.searching, false)
        };
        if was_searching
            && self.shared.pools[self.pool]
                .idle
                .transition_worker_from_searching()
        {
            // The last searcher found work: wake another to keep looking.
            self.shared.notify_pool(self.pool, false);
        }
        coop::budget(|| {
            self.poll(task);
            let mut lifo_polls = 0;
            loop {
                let next = {
                    let mut core = self.core.borrow_mut();
                    let Some(next) = core.lifo.take() else { break };
                    if lifo_polls >= MAX_LIFO_POLLS || !coop::has_budget_remaining() {
                        core.queue.push_back(next, &self.shared.pools[self.pool]);
                        drop(core);
                        self.shared.notify_pool(self.pool, false);
                        break;
                    }
                    next
                };
                lifo_polls += 1;
                self.poll(next);
            }
        });
    }

    #[inline]
    fn poll(&self, task: Notified) {
        bump(&self.stats.polls, 1);
        if task.header().home.pool() == self.pool {
            bump(&self.stats.home_polls, 1);
            // Work of its own: the node is not idle (a stolen task's poll
            // leaves the idle clock running, so stealing goes on).
            if let Some(since) = self.idle_since.take() {
                self.last_idle.set(since);
                self.busy_since.set(Instant::now());
            }
        }
        task.run();
    }

    fn search(&self) -> Option<Notified> {
        let pool = &self.shared.pools[self.pool];
        let mut core = self.core.borrow_mut();
        if !core.searching {
            if !pool.idle.transition_worker_to_searching() {
                return None;
            }
            core.searching = true;
        }
        // Siblings: same cache domain first, then the rest of the node.
        for &victim in self.shared.steal_order[self.index].iter() {
            let before = core.queue.len();
            if let Some(task) = self.shared.remotes[victim]
                .steal
                .steal_into(&mut core.queue)
            {
                bump(
                    &self.stats.local_steals,
                    (1 + core.queue.len() - before) as u64,
                );
                return Some(task);
            }
        }
        if let Some(task) = self.pull_injector(&mut core) {
            return Some(task);
        }
        // Yielded tasks are work of this node too: they run first.
        let yielded = self.deferred.try_borrow().map_or(true, |d| !d.is_empty());
        if !yielded && self.remote_steal_wait().is_some_and(|left| left.is_zero()) {
            return self.steal_remote(&mut core);
        }
        None
    }

    /// How long this worker must still wait before it may steal from
    /// other nodes (zero: it may now); `None` when remote stealing is off
    /// or there is no other node. Starts the idle clock on first call.
    fn remote_steal_wait(&self) -> Option<Duration> {
        if !self.shared.config.remote_steal || self.shared.pools.len() < 2 {
            return None;
        }
        let now = Instant::now();
        let since = match self.idle_since.get() {
            Some(since) => since,
            None => {
                let busy = now.duration_since(self.busy_since.get());
                if busy < self.grace.get() {
                    // A short stretch of work: the idle spell goes on.
                    let since = self.last_idle.get();
                    self.idle_since.set(Some(since));
                    return Some(self.grace.get().saturating_sub(now.duration_since(since)));
                }
                self.idle_since.set(Some(now));
                let longest = self.shared.config.remote_steal_grace;
                let grace = (busy / REMOTE_STEAL_TOLERANCE)
                    .clamp(MIN_REMOTE_STEAL_GRACE.min(longest), longest);
                self.grace.set(grace);
                now
            }
        };
        Some(self.grace.get().saturating_sub(now.duration_since(since)))
    }

    /// The whole node is out of work: take a few tasks that allow it from
    /// the nearest node that has some.
    fn steal_remote(&self, core: &mut Core) -> Option<Notified> {
        let batch = self.shared.config.remote_steal_batch.max(1);
        let mine = &self.shared.pools[self.pool];
        for &other in self.shared.remote_order[self.pool].iter() {
            let victim = &self.shared.pools[other];
            if !victim.idle.all_busy() {
                // A worker there is free (or looking): the work is not
                // waiting for lack of hands.
                continue;
            }
            let injected = if victim.overloaded() {
                victim.pop_preferred()
            } else {
                None
            };
            if let Some(first) = injected {
                let mut n = 1;
                while n < batch {
                    match victim.pop_preferred() {
                        Some(task) => core.queue.push_back(task, mine),
                        None => break,
                    }
                    n += 1;
                }
                bump(&self.stats.remote_steals, n as u64);
                return Some(first);
            }
            for w in victim.workers.clone() {
                if self.shared.remotes[w].steal.len() < 2 {
                    // The owner runs its next task itself.
                    continue;
                }
                let mut first = None;
                let mut taken = 0u64;
                let mut refused = false;
                self.shared.remotes[w].steal.steal_batch(batch, |task| {
                    let home = task.header().home.get();
                    if !home.allows(self.pool) {
                        // Strict work stays on its nodes.
                        self.shared.pools[home.pool as usize].push(task);
                        refused = true;
                    } else if first.is_none() {
                        first = Some(task);
                        taken += 1;
                    } else {
                        core.queue.push_back(task, mine);
                        taken += 1;
                    }
                });
                if refused {
                    self.shared.notify_pool(other, false);
                }
                if first.is_some() {
                    bump(&self.stats.remote_steals, taken);
                    return first;
                }
            }
        }
        None
    }

    fn park(&self) {
        let pool = &self.shared.pools[self.pool];
        let remote = &self.shared.remotes[self.index];
        let was_searching = {
            let mut core = self.core.borrow_mut();
            if core.lifo.is_some() || core.queue.has_tasks() || !core.pinned.is_empty() {
                return;
            }
            std::mem::replace(&mut core.searching, false)
        };
        bump(&self.stats.parks, 1);
        self.publish_stats();
        self.shared.affinity.tick(self.index);
        let last_searcher = pool
            .idle
            .transition_worker_to_parked(remote.index_in_pool, was_searching);
        // Other nodes' work counts only once this worker may take it; until
        // then it sleeps no longer than the rest of its grace period when
        // some node has work to spare.
        let wait = self.remote_steal_wait();
        let may_steal = wait.is_some_and(|left| left.is_zero());
        if last_searcher && self.shared.has_work_for(self.pool, may_steal) {
            self.shared.notify_pool(self.pool, false);
        }
        let timeout = wait.filter(|left| !left.is_zero() && self.shared.has_remote_work(self.pool));
        loop {
            if !remote.inbox.is_empty() || self.shared.is_shutdown() {
                pool.idle.unpark_worker_by_id(remote.index_in_pool);
                break;
            }
            match timeout {
                Some(timeout) => remote.parker.park_timeout(timeout),
                None => remote.parker.park(),
            }
            if !pool.idle.is_parked(remote.index_in_pool) {
                break;
            }
            if timeout.is_some() {
                // The grace period is over: look at the other nodes again
                // (unless someone woke this worker meanwhile).
                pool.idle.unpark_worker_by_id(remote.index_in_pool);
                break;
            }
            if self.has_local_work() {
                // The I/O driver woke tasks onto this worker while it
                // waited in the kernel.
                pool.idle.unpark_worker_by_id(remote.index_in_pool);
                break;
            }
        }
        // Whoever took us off the sleeper list counted us as searching.
        let mut core = self.core.borrow_mut();
        core.searching = true;
        // Time asleep is not poll time.
        core.last_maintenance = Instant::now();
        core.polls_at_maintenance = self.stats.polls.get();
        drop(core);
        bump(&self.stats.unparks, 1);
    }

    fn has_local_work(&self) -> bool {
        let core = self.core.borrow();
        core.lifo.is_some() || core.queue.has_tasks() || !core.pinned.is_empty()
    }

    fn publish_stats(&self) {
        let m = &self.shared.remotes[self.index].metrics;
        m.polls.store(self.stats.polls.get());
        m.home_polls.store(self.stats.home_polls.get());
        m.local_steals.store(self.stats.local_steals.get());
        m.remote_steals.store(self.stats.remote_steals.get());
        m.parks.store(self.stats.parks.get());
        m.unparks.store(self.stats.unparks.get());
        m.spawned.store(self.stats.spawned.get());
    }

    /// Cancels this worker's local tasks and drops its queued references.
    fn shutdown(&self) {
        let remote = &self.shared.remotes[self.index];
        remote.local_owned.close_and_shutdown_all();
        loop {
            let task = {
                let mut core = self.core.borrow_mut();
                core.lifo
                    .take()
                    .or_else(|| core.queue.pop())
                    .or_else(|| core.pinned.pop_front())
            };
            match task {
                Some(task) => drop(task),
                None => break,
            }
        }
        while remote.inbox.pop().is_some() {}
        // Their tasks were cancelled above or by the runtime: only drop
        // the references.
        self.deferred.borrow_mut().clear();
        self.publish_stats();
    }
}
