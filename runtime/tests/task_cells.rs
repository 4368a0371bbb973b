//! Task cells come from the home node's heap: 1,000 pending tasks show in
//! that node's allocator statistics and leave them when they finish; with
//! the switch off the cells come from the global allocator instead.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use numa_rt_alloc::{current_node, node_stats};
use numa_rt_runtime::runtime::{Builder, Runtime};

/// Holds every waiter until opened.
#[derive(Default)]
struct Gate {
    open: AtomicBool,
    waiters: Mutex<Vec<Waker>>,
}

impl Gate {
    fn open(&self) {
        self.open.store(true, SeqCst);
        for w in self.waiters.lock().unwrap().drain(..) {
            w.wake();
        }
    }

    fn wait(self: Arc<Self>) -> impl Future<Output = ()> {
        std::future::poll_fn(move |cx: &mut Context<'_>| {
            if self.open.load(SeqCst) {
                return Poll::Ready(());
            }
            self.waiters.lock().unwrap().push(cx.waker().clone());
            if self.open.load(SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

fn runtime(from_node_heap: bool) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(1)
        .task_cells_from_node_heap(from_node_heap)
        .build()
        .unwrap()
}

const TASKS: usize = 1000;

/// The statistics are process-wide: the tests here take turns.
static SERIAL: Mutex<()> = Mutex::new(());

/// Spawns 1,000 tasks from the worker (so one thread allocates and frees
/// every cell), each holding 256 bytes of state across its await, and
/// returns the node's bytes in use before, while they wait and after.
fn in_use_around_pending_tasks(rt: &Runtime) -> (u64, u64, u64) {
    rt.block_on(async {
        numa_rt_runtime::spawn(async {
            let node = current_node();
            let gate = Arc::new(Gate::default());
            // Warm the worker's heap so the measurement sees only cells.
            let warm: Vec<_> = (0..TASKS)
                .map(|_| numa_rt_runtime::spawn(std::future::ready(())))
                .collect();
            for j in warm {
                j.await.unwrap();
            }
            let before = node_stats(node).in_use_bytes;
            let joins: Vec<_> = (0..TASKS)
                .map(|i| {
                    let wait = gate.clone().wait();
                    numa_rt_runtime::spawn(async move {
                        let state = [i as u8; 256];
                        wait.await;
                        std::hint::black_box(&state);
                        state[0]
                    })
                })
                .collect();
            let during = node_stats(node).in_use_bytes;
            gate.open();
            for (i, j) in joins.into_iter().enumerate() {
                assert_eq!(j.await.unwrap(), i as u8);
            }
            let after = node_stats(node).in_use_bytes;
            (before, during, after)
        })
        .await
        .unwrap()
    })
}

#[test]
fn pending_cells_show_in_the_node_stats() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime(true);
    let (before, during, after) = in_use_around_pending_tasks(&rt);
    // Each cell holds at least its header and the 256-byte future.
    assert!(
        during >= before + (TASKS * 256) as u64,
        "in use: {before} before, {during} with {TASKS} pending tasks"
    );
    assert!(
        after <= before + (during - before) / 10,
        "in use: {before} before, {during} pending, {after} after"
    );
}

#[test]
fn with_the_switch_off_cells_come_from_the_global_allocator() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime(false);
    let (before, during, after) = in_use_around_pending_tasks(&rt);
    // The test binary's global allocator is the system one: no node heap
    // sees the cells (allow a little for the runtime's own node memory).
    assert!(
        during < before + (TASKS * 64) as u64,
        "in use: {before} before, {during} with {TASKS} pending tasks"
    );
    assert!(after <= during, "{after} after > {during} during");
}
