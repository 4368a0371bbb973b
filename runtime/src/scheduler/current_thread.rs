//! The current-thread scheduler: every task runs on the thread inside
//! `block_on`, interleaved with the future it blocks on.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crossbeam_queue::SegQueue;

use super::park::{self, Parker};
use crate::blocking::NodePools;
use crate::task::{coop, new_task, Home, Id, JoinHandle, Notified, OwnedTasks, RawTask, Schedule};
use crate::topology::Topology;
use crate::NodeId;

/// Tasks run between two looks at the blocked-on future.
const TASKS_PER_ROUND: usize = 61;

pub(crate) struct CtShared {
    queue: SegQueue<Notified>,
    pub(crate) owned: OwnedTasks,
    /// Wakes the thread driving the scheduler.
    parker: Parker,
    /// The blocked-on future was woken.
    woken: AtomicBool,
    /// A thread is driving the scheduler.
    driving: AtomicBool,
    /// The node tasks of this runtime report as theirs.
    pub(crate) node: NodeId,
    /// The heap task cells come from (`None`: the global allocator).
    cell_heap: Option<numa_rt_alloc::NodeHeap>,
    pub(crate) blocking: NodePools,
    pub(crate) topology: Topology,
    pub(crate) polls: AtomicU64,
    pub(crate) spawned: AtomicU64,
    pub(crate) parks: AtomicU64,
    /// The runtime's I/O driver (when enabled), used by whichever thread
    /// drives the scheduler.
    pub(crate) io: std::sync::OnceLock<crate::io::driver::Driver>,
}

impl CtShared {
    pub(crate) fn new(
        node: NodeId,
        blocking: NodePools,
        topology: Topology,
        cells_from_node_heap: bool,
    ) -> CtShared {
        // Memory placed from this runtime (node boxes, task cells) is mapped
        // as its topology says: emulated nodes onto the real node under
        // their CPUs, memory kinds through the cost table.
        let cost = crate::locality::CostTable::new(&topology);
        crate::locality::alloc_hook::install(&topology, &cost);
        CtShared {
            queue: SegQueue::new(),
            owned: OwnedTasks::new(1),
            parker: Parker::new(),
            woken: AtomicBool::new(false),
            driving: AtomicBool::new(false),
            node,
            cell_heap: super::shared::cell_heap(cells_from_node_heap, node),
            blocking,
            topology,
            polls: AtomicU64::new(0),
            spawned: AtomicU64::new(0),
            parks: AtomicU64::new(0),
            io: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn spawn<F>(self: &Arc<Self>, future: F, id: Id) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, notified, join) =
            new_task(future, self.clone(), id, Home::preferred(0), self.cell_heap);
        if let Err(task) = self.owned.bind(task) {
            drop(notified);
            task.shutdown();
            return join;
        }
        self.spawned.fetch_add(1, Relaxed);
        self.schedule(notified, false);
        join
    }

    /// Queued tasks.
    pub(crate) fn queue_depth(&self) -> usize {
        self.queue.len()
    }

    /// Runs `future` to completion on this thread, running the runtime's
    /// tasks while it waits. If another thread is already driving the
    /// scheduler, only waits for `future` (the tasks run over there).
    pub(crate) fn block_on<F: Future>(self: &Arc<Self>, future: F) -> F::Output {
        if self.driving.swap(true, AcqRel) {
            return block_on_thread(future);
        }
        struct ReleaseDriver<'a>(&'a CtShared);
        impl Drop for ReleaseDriver<'_> {
            fn drop(&mut self) {
                self.0.driving.store(false, Release);
                // Another thread may be waiting on the parker to drive.
                self.0.parker.unpark();
            }
        }
        let _release = ReleaseDriver(self);
        // I/O and timers of this runtime are driven by this thread now.
        let _io = self.io.get().map(|d| {
            self.parker.attach_io(d.unparker());
            crate::io::driver::enter(d.clone())
        });
        let waker = Waker::from(Arc::new(MainWaker(self.clone())));
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        self.woken.store(true, Release);
        loop {
            if self.woken.swap(false, AcqRel) {
                if let Poll::Ready(out) = coop::budget(|| future.as_mut().poll(&mut cx)) {
                    return out;
                }
            }
            let mut ran = 0;
            while ran < TASKS_PER_ROUND {
                let Some(task) = self.queue.pop() else { break };
                ran += 1;
                coop::budget(|| task.run());
            }
            self.polls.fetch_add(ran as u64, Relaxed);
            if ran == 0 && !self.woken.load(Acquire) {
                self.parks.fetch_add(1, Relaxed);
                self.parker.park();
            }
        }
    }

    /// Cancels every task and drops queued references.
    pub(crate) fn shutdown(&self) {
        self.owned.close_and_shutdown_all();
        while self.queue.pop().is_some() {}
        if let Some(io) = self.io.get() {
            // Operations of the dropped tasks are cancelled; wait briefly
            // for the kernel to let go of their buffers.
            let _io = crate::io::driver::enter(io.clone());
            io.shutdown(std::time::Duration::from_secs(1));
        }
    }
}

impl Schedule for Arc<CtShared> {
    fn schedule(&self, task: Notified, _yield_now: bool) {
        self.queue.push(task);
        self.parker.unpark();
    }

    fn release(&self, task: RawTask) -> bool {
        self.owned.remove(task)
    }
}

struct MainWaker(Arc<CtShared>);

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.woken.store(true, Release);
        self.0.parker.unpark();
    }
}

/// Blocks the current thread on `future` alone, parking between polls.
pub(crate) fn block_on_thread<F: Future>(future: F) -> F::Output {
    let (parker, waker) = park::current();
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = coop::budget(|| future.as_mut().poll(&mut cx)) {
            return out;
        }
        parker.parker.park();
    }
}
