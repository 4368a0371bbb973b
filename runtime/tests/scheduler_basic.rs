//! The scheduler's behaviour on the machine's own topology: spawning,
//! joining, panics, cancellation, JoinSet, local and blocking tasks,
//! shutdown, and both runtime flavors.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use numa_rt_runtime::runtime::{Builder, Handle, Runtime, RuntimeFlavor};
use numa_rt_runtime::task::{self, JoinSet};
use numa_rt_runtime::{spawn, spawn_blocking, spawn_local};

fn multi(workers: usize) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .unwrap()
}

fn current() -> Runtime {
    Builder::new_current_thread().build().unwrap()
}

/// A future that is pending until `Gate::open` is called.
#[derive(Clone, Default)]
struct Gate(Arc<(AtomicBool, Mutex<Option<Waker>>)>);

impl Gate {
    fn open(&self) {
        self.0 .0.store(true, SeqCst);
        if let Some(w) = self.0 .1.lock().unwrap().take() {
            w.wake();
        }
    }
    fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let gate = self.clone();
        std::future::poll_fn(move |cx| {
            if gate.0 .0.load(SeqCst) {
                return Poll::Ready(());
            }
            *gate.0 .1.lock().unwrap() = Some(cx.waker().clone());
            if gate.0 .0.load(SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// Counts its drops.
struct DropCounter(Arc<AtomicUsize>);
impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn spawn_and_join_on_both_flavors() {
    for rt in [multi(2), current()] {
        let sum = rt.block_on(async {
            let handles: Vec<_> = (0..100u64).map(|i| spawn(async move { i })).collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, 4950);
        let direct = rt.spawn(async { 5 });
        assert_eq!(rt.block_on(direct).unwrap(), 5);
    }
}

#[test]
fn current_thread_runs_tasks_on_the_block_on_thread() {
    let rt = current();
    assert_eq!(rt.handle().runtime_flavor(), RuntimeFlavor::CurrentThread);
    let me = std::thread::current().id();
    let ran_on = rt.block_on(async { spawn(async { std::thread::current().id() }).await.unwrap() });
    assert_eq!(ran_on, me);
}

#[test]
fn multi_thread_runs_tasks_on_workers_named_by_the_builder() {
    let rt = Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sched-test-worker")
        .build()
        .unwrap();
    let name = rt.block_on(async {
        spawn(async { std::thread::current().name().map(str::to_owned) })
            .await
            .unwrap()
    });
    assert_eq!(name.as_deref(), Some("sched-test-worker"));
}

#[test]
fn panics_become_join_errors_and_workers_survive() {
    let rt = multi(1);
    rt.block_on(async {
        let err = spawn(async { panic!("task failed on purpose") })
            .await
            .unwrap_err();
        assert!(err.is_panic());
        assert!(err.to_string().contains("task failed on purpose"), "{err}");
        // The same single worker keeps serving.
        assert_eq!(spawn(async { 1 }).await.unwrap(), 1);
    });
}

#[test]
fn hundred_thousand_tasks_one_percent_panicking() {
    let rt = multi(2);
    let (ok, panicked) = rt.block_on(async {
        let mut handles = Vec::with_capacity(100_000);
        for i in 0..100_000u32 {
            handles.push(spawn(async move {
                if i % 100 == 0 {
                    panic!("task {i} panics");
                }
                task::yield_now().await;
                i
            }));
        }
        let (mut ok, mut panicked) = (0u32, 0u32);
        for h in handles {
            match h.await {
                Ok(_) => ok += 1,
                Err(e) if e.is_panic() => panicked += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        (ok, panicked)
    });
    assert_eq!((ok, panicked), (99_000, 1_000));
    assert_eq!(rt.metrics().num_alive_tasks(), 0);
}

#[test]
fn abort_cancels_pending_task_and_drops_its_future() {
    let rt = multi(2);
    let drops = Arc::new(AtomicUsize::new(0));
    let d = DropCounter(drops.clone());
    rt.block_on(async move {
        let h = spawn(async move {
            let _d = d;
            std::future::pending::<()>().await
        });
        task::yield_now().await;
        let abort = h.abort_handle();
        abort.abort();
        let err = h.await.unwrap_err();
        assert!(err.is_cancelled());
        assert!(abort.is_finished());
    });
    assert_eq!(drops.load(SeqCst), 1);
}

#[test]
fn abort_after_completion_keeps_output() {
    let rt = current();
    rt.block_on(async {
        let h = spawn(async { 3 });
        while !h.is_finished() {
            task::yield_now().await;
        }
        h.abort();
        assert_eq!(h.await.unwrap(), 3);
    });
}

#[test]
fn join_set_collects_in_completion_order_and_aborts_on_shutdown() {
    let rt = multi(2);
    rt.block_on(async {
        let mut set = JoinSet::new();
        let gate = Gate::default();
        let slow = gate.wait();
        set.spawn(async move {
            slow.await;
            "slow"
        });
        set.spawn(async { "fast" });
        assert_eq!(set.len(), 2);
        assert_eq!(set.join_next().await.unwrap().unwrap(), "fast");
        gate.open();
        assert_eq!(set.join_next().await.unwrap().unwrap(), "slow");
        assert!(set.join_next().await.is_none());

        for _ in 0..10 {
            set.spawn(std::future::pending::<&str>());
        }
        set.shutdown().await;
        assert!(set.is_empty());

        let mut set = JoinSet::new();
        for i in 0..50u32 {
            set.spawn(async move { i });
        }
        let mut all = set.join_all().await;
        all.sort();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
    });
}

#[test]
fn dropping_a_join_set_aborts_its_tasks() {
    let rt = multi(1);
    let drops = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        let mut set = JoinSet::new();
        for _ in 0..5 {
            let d = DropCounter(drops.clone());
            set.spawn(async move {
                let _d = d;
                std::future::pending::<()>().await
            });
        }
        task::yield_now().await;
        drop(set);
        // block_on's thread is not a worker: just wait for the workers.
        let deadline = Instant::now() + Duration::from_secs(5);
        while drops.load(SeqCst) < 5 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    assert_eq!(drops.load(SeqCst), 5);
}

#[test]
fn spawn_local_stays_on_its_worker() {
    let rt = multi(2);
    rt.block_on(async {
        spawn(async {
            let me = std::thread::current().id();
            let mut handles = Vec::new();
            for _ in 0..20 {
                let rc = std::rc::Rc::new(());
                handles.push(spawn_local(async move {
                    let _rc = rc;
                    for _ in 0..5 {
                        task::yield_now().await;
                        assert_eq!(std::thread::current().id(), me);
                    }
                    std::thread::current().id()
                }));
            }
            for h in handles {
                assert_eq!(h.await.unwrap(), me);
            }
        })
        .await
        .unwrap();
    });
}

#[test]
fn spawn_local_outside_a_worker_panics_clearly() {
    let rt = current();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            drop(spawn_local(async {}));
        })
    }))
    .unwrap_err();
    let msg = err
        .downcast_ref::<&str>()
        .copied()
        .map(str::to_owned)
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap();
    assert!(msg.contains("spawn_local"), "{msg}");
}

#[test]
fn spawn_blocking_runs_off_the_workers() {
    let rt = multi(1);
    rt.block_on(async {
        let worker = spawn(async { std::thread::current().id() }).await.unwrap();
        let blocking = spawn_blocking(|| std::thread::current().id())
            .await
            .unwrap();
        assert_ne!(worker, blocking);
        let err = spawn_blocking(|| panic!("blocking panic"))
            .await
            .unwrap_err();
        assert!(err.is_panic());
    });
}

#[test]
fn block_on_inside_a_runtime_panics_clearly() {
    let rt = multi(1);
    let handle = rt.handle().clone();
    let res = rt.block_on(async move { spawn(async move { handle.block_on(async {}) }).await });
    let err = res.unwrap_err();
    assert!(err.is_panic());
    assert!(
        err.to_string()
            .contains("Cannot start a runtime from within a runtime"),
        "{err}"
    );
    // Nested block_on on the same thread too.
    let rt2 = current();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async { rt2.block_on(async {}) })
    }));
    assert!(err.is_err());
}

#[test]
fn handle_current_outside_a_runtime() {
    assert!(Handle::try_current().is_err());
    let err = std::panic::catch_unwind(Handle::current).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("no numa_rt runtime"), "{msg}");
    let rt = current();
    let _guard = rt.enter();
    assert!(Handle::try_current().is_ok());
    assert!(task::current_node().is_none());
}

#[test]
fn builder_errors_are_clear() {
    let err = Builder::new_multi_thread()
        .worker_threads(0)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("worker_threads"), "{err}");
    let err = Builder::new_multi_thread()
        .nodes([numa_rt_runtime::NodeId::new(999)])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("node999"), "{err}");
}

#[test]
fn dropping_the_runtime_cancels_and_frees_every_task() {
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = multi(2);
    let gate = Gate::default();
    for _ in 0..100 {
        let d = DropCounter(drops.clone());
        let wait = gate.wait();
        rt.spawn(async move {
            let _d = d;
            wait.await;
        });
    }
    // Some never started, some are parked on the gate.
    let h = rt.spawn(std::future::pending::<()>());
    drop(rt);
    assert_eq!(drops.load(SeqCst), 100);
    assert!(h.is_finished());
    let err = futures_lite_block_on(h).unwrap_err();
    assert!(err.is_cancelled());
}

/// Polls a future on this thread until ready (for after the runtime is gone).
fn futures_lite_block_on<F: Future>(f: F) -> F::Output {
    let mut f = Box::pin(f);
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = Pin::new(&mut f).poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

#[test]
fn shutdown_timeout_does_not_wait_for_a_stuck_blocking_task() {
    let rt = multi(1);
    let release = Arc::new(AtomicBool::new(false));
    let r = release.clone();
    let stuck = rt.spawn_blocking(move || {
        while !r.load(SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    std::thread::sleep(Duration::from_millis(20));
    let start = Instant::now();
    rt.shutdown_timeout(Duration::from_millis(100));
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    release.store(true, SeqCst);
    // The detached blocking task still finishes.
    assert!(futures_lite_block_on(stuck).is_ok());
}

#[test]
fn spawn_blocking_after_shutdown_is_cancelled() {
    let rt = multi(1);
    let handle = rt.handle().clone();
    rt.shutdown_background();
    let h = handle.spawn(async { 1 });
    assert!(futures_lite_block_on(h).unwrap_err().is_cancelled());
    let b = handle.spawn_blocking(|| 1);
    assert!(futures_lite_block_on(b).unwrap_err().is_cancelled());
}

#[test]
fn yield_now_lets_others_run() {
    let rt = multi(1);
    rt.block_on(async {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        spawn(async move {
            let other = spawn(async move { f.store(true, SeqCst) });
            while !flag.load(SeqCst) {
                task::yield_now().await;
            }
            other.await.unwrap();
        })
        .await
        .unwrap();
    });
}

#[test]
fn coop_budget_makes_a_busy_task_yield() {
    // One worker: a task looping on ready JoinHandles must still let a
    // second task run.
    let rt = multi(1);
    rt.block_on(async {
        spawn(async {
            let done = Arc::new(AtomicBool::new(false));
            let d = done.clone();
            let _other = spawn(async move { d.store(true, SeqCst) });
            let ready = spawn(async { 0u8 });
            let mut ready = Some(ready);
            let mut loops = 0u64;
            while !done.load(SeqCst) {
                if let Some(h) = ready.take() {
                    h.await.unwrap();
                }
                task::consume_budget().await;
                loops += 1;
                assert!(loops < 10_000_000, "the other task never ran");
            }
        })
        .await
        .unwrap();
    });
}

#[test]
fn metrics_count_polls_and_spawns() {
    let rt = multi(2);
    rt.block_on(async {
        for _ in 0..100 {
            spawn(async { task::yield_now().await }).await.unwrap();
        }
    });
    // Let workers publish (they do when they park).
    std::thread::sleep(Duration::from_millis(50));
    let m = rt.metrics();
    assert_eq!(m.spawned_tasks_count(), 100);
    let polls: u64 = (0..m.num_workers()).map(|w| m.worker_poll_count(w)).sum();
    assert!(polls >= 200, "polls = {polls}");
    let parks: u64 = (0..m.num_workers()).map(|w| m.worker_park_count(w)).sum();
    assert!(parks > 0);
    let node = m.worker_node(0);
    assert_eq!(m.node_spawned_count(node), 100);
    assert_eq!(m.global_queue_depth(), 0);
}

#[test]
fn stress_wake_abort_and_join_race() {
    // Tasks woken from other threads while being aborted and joined: every
    // one must finish exactly once, as a value or as cancelled.
    let rt = multi(2);
    for round in 0..20 {
        let gates: Vec<Gate> = (0..200).map(|_| Gate::default()).collect();
        let handles: Vec<_> = gates
            .iter()
            .map(|g| {
                let wait = g.wait();
                rt.spawn(async move {
                    wait.await;
                    task::yield_now().await;
                    7u32
                })
            })
            .collect();
        let openers = {
            let gates = gates.clone();
            std::thread::spawn(move || {
                for g in &gates {
                    g.open();
                }
            })
        };
        for (i, h) in handles.iter().enumerate() {
            if (i + round) % 3 == 0 {
                h.abort();
            }
        }
        openers.join().unwrap();
        let (mut done, mut cancelled) = (0, 0);
        rt.block_on(async {
            for h in handles {
                match h.await {
                    Ok(7) => done += 1,
                    Err(e) if e.is_cancelled() => cancelled += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
        });
        assert_eq!(done + cancelled, 200);
    }
    assert_eq!(rt.metrics().num_alive_tasks(), 0);
}

#[test]
fn runtime_dropped_from_its_own_task_does_not_hang() {
    let rt = Arc::new(Mutex::new(Some(multi(1))));
    let inner = rt.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = rt.lock().unwrap().as_ref().unwrap().handle().clone();
    handle.spawn(async move {
        let rt = inner.lock().unwrap().take();
        drop(rt);
        let _ = tx.send(());
    });
    assert!(rx.recv_timeout(Duration::from_secs(5)).is_ok());
}

#[test]
fn public_types_are_send_and_sync_like_tokios() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Runtime>();
    send_sync::<Handle>();
    send_sync::<task::JoinHandle<u32>>();
    send_sync::<task::AbortHandle>();
    send_sync::<task::JoinError>();
    send::<JoinSet<u32>>();
    send_sync::<numa_rt_runtime::runtime::RuntimeMetrics>();
}

#[test]
fn shutdown_timeout_gives_up_on_a_worker_stuck_in_a_poll() {
    let rt = multi(1);
    let release = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let (r, s) = (release.clone(), started.clone());
    let stuck = rt.spawn(async move {
        s.store(true, SeqCst);
        // Blocks the worker thread: a bug in user code the runtime must
        // survive at shutdown.
        while !r.load(SeqCst) {
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let waiting = rt.spawn(std::future::pending::<()>());
    while !started.load(SeqCst) {
        std::thread::yield_now();
    }
    let start = Instant::now();
    rt.shutdown_timeout(Duration::from_millis(100));
    assert!(start.elapsed() < Duration::from_secs(2));
    // Idle tasks were cancelled even though a worker is stuck.
    assert!(futures_lite_block_on(waiting).unwrap_err().is_cancelled());
    release.store(true, SeqCst);
    // The stuck task's poll ends; it was marked cancelled meanwhile but
    // had already finished its work, so it completes normally.
    assert!(futures_lite_block_on(stuck).is_ok());
}

#[test]
fn blocking_closures_see_their_runtime() {
    let rt = multi(1);
    let (value, node) = rt.block_on(async {
        spawn_blocking(|| {
            let handle = Handle::current();
            let value = handle.block_on(async { spawn(async { 41 + 1 }).await.unwrap() });
            (value, task::current_node())
        })
        .await
        .unwrap()
    });
    assert_eq!(value, 42);
    assert_eq!(node, Some(rt.handle().nodes()[0]));
}
