//! The task state machine (`task/state.rs`, `raw.rs`, `waker.rs`,
//! `join.rs`, `abort.rs`, `atomic_waker.rs`): wakes, polls, completion,
//! abort, shutdown and the `JoinHandle` racing each other, with the real
//! owned-task list (`list.rs`). In every model the future and the output
//! are dropped exactly once, the cell is freed (else its loom `Arc` leaks),
//! and the stage is only touched by whoever the state word hands it to
//! (else loom reports the cell access).

use std::task::Poll;

use loom::sync::atomic::Ordering::Acquire;
use loom::thread;

use super::support::{poll_join, Gate, Gated, JoinProbe, Runner};

/// A wake from another thread while the task is being polled is never
/// lost: either the poll sees the open gate, or the task is notified
/// while running and queued again.
#[test]
fn wake_while_running() {
    loom::model(|| {
        let gate = Gate::new(false);
        let (runner, first, mut join) = Runner::spawn(Gated(gate.clone()));
        first.run();
        assert_eq!(runner.queued(), 0, "a pending, unwoken task is not queued");
        gate.wake_by_ref();
        let queued = runner.pop().expect("the wake queued the task");

        let worker = thread::spawn(move || queued.run());
        let opener = {
            let gate = gate.clone();
            thread::spawn(move || gate.open_and_wake())
        };
        worker.join().unwrap();
        opener.join().unwrap();
        runner.run_all();

        let (probe, waker) = JoinProbe::new();
        match poll_join(&mut join, &waker) {
            Poll::Ready(Ok(output)) => drop(output),
            Poll::Ready(Err(e)) => panic!("task failed: {e}"),
            Poll::Pending => panic!("the wake was lost: the task never saw the open gate"),
        }
        assert_eq!(probe.wakes(), 0);
        assert_eq!(gate.outputs_dropped.load(Acquire), 1);
        drop(join);
        runner.shutdown();
        gate.clear();
        assert_eq!(gate.futures_dropped.load(Acquire), 1);
    });
}

/// The `JoinHandle` registering its waker races the task completing:
/// either the poll returns the output, or the completion wakes the
/// registered waker, after which the output is there.
#[test]
fn join_waker_vs_completion() {
    loom::model(|| {
        let gate = Gate::new(true);
        let (runner, first, mut join) = Runner::spawn(Gated(gate.clone()));
        let worker = thread::spawn(move || first.run());

        let (probe, waker) = JoinProbe::new();
        let output = match poll_join(&mut join, &waker) {
            Poll::Ready(out) => out,
            Poll::Pending => {
                worker.join().unwrap();
                assert_eq!(probe.wakes(), 1, "completion must wake the joiner");
                match poll_join(&mut join, &waker) {
                    Poll::Ready(out) => out,
                    Poll::Pending => panic!("woken joiner found no output"),
                }
            }
        };
        drop(output.expect("the task completes"));
        assert_eq!(gate.outputs_dropped.load(Acquire), 1);
        drop(join);
        runner.shutdown();
        gate.clear();
        assert_eq!(gate.futures_dropped.load(Acquire), 1);
    });
}

/// Dropping the `JoinHandle` races completion: the output is dropped
/// exactly once, by whichever side ends up owning it.
#[test]
fn join_handle_drop_vs_completion() {
    loom::model(|| {
        let gate = Gate::new(true);
        let (runner, first, join) = Runner::spawn(Gated(gate.clone()));
        let worker = thread::spawn(move || first.run());
        let dropper = thread::spawn(move || drop(join));
        worker.join().unwrap();
        dropper.join().unwrap();
        assert_eq!(gate.outputs_dropped.load(Acquire), 1);
        runner.shutdown();
        gate.clear();
        assert_eq!(gate.futures_dropped.load(Acquire), 1);
    });
}

/// An abort races a poll in progress and a wake (the gate stays shut, so
/// only the abort can end the task): the abort is never lost, whether it
/// finds the task running, queued or idle; the task ends cancelled, its
/// future is dropped once and nothing stays queued.
#[test]
fn abort_vs_poll_and_wake() {
    loom::model(|| {
        let gate = Gate::new(false);
        let (runner, first, mut join) = Runner::spawn(Gated(gate.clone()));
        first.run();
        gate.wake_by_ref();
        let queued = runner.pop().expect("the wake queued the task");
        let abort = join.abort_handle();

        let worker = thread::spawn(move || queued.run());
        let aborter = thread::spawn(move || abort.abort());
        gate.wake_by_ref();
        worker.join().unwrap();
        aborter.join().unwrap();
        runner.run_all();

        let (_probe, waker) = JoinProbe::new();
        match poll_join(&mut join, &waker) {
            Poll::Ready(Err(e)) => assert!(e.is_cancelled(), "unexpected error: {e}"),
            Poll::Ready(Ok(_)) => panic!("a task behind a shut gate completed"),
            Poll::Pending => panic!("the abort was lost: the task never finished"),
        }
        drop(join);
        runner.shutdown();
        gate.clear();
        assert_eq!(gate.futures_dropped.load(Acquire), 1);
        assert_eq!(gate.outputs_dropped.load(Acquire), 0);
        assert_eq!(runner.queued(), 0);
    });
}

/// Runtime shutdown cancels a queued task while another thread wakes it:
/// the task is cancelled exactly once and nothing is polled afterwards.
#[test]
fn shutdown_vs_wake() {
    loom::model(|| {
        let gate = Gate::new(false);
        let (runner, first, mut join) = Runner::spawn(Gated(gate.clone()));
        first.run();
        gate.wake_by_ref();
        let queued = runner.pop().expect("the wake queued the task");

        let closer = thread::spawn(move || queued.shutdown());
        let opener = {
            let gate = gate.clone();
            thread::spawn(move || gate.open_and_wake())
        };
        closer.join().unwrap();
        opener.join().unwrap();
        let polls = gate.polls.load(Acquire);
        runner.run_all();
        assert_eq!(
            gate.polls.load(Acquire),
            polls,
            "a cancelled task was polled"
        );

        let (_probe, waker) = JoinProbe::new();
        match poll_join(&mut join, &waker) {
            Poll::Ready(Err(e)) => assert!(e.is_cancelled(), "unexpected error: {e}"),
            Poll::Ready(Ok(_)) => panic!("a shut-down task completed"),
            Poll::Pending => panic!("a shut-down task never finished"),
        }
        drop(join);
        runner.shutdown();
        gate.clear();
        assert_eq!(gate.futures_dropped.load(Acquire), 1);
        assert_eq!(gate.outputs_dropped.load(Acquire), 0);
    });
}

/// The runtime shuts down (closes the owned list and cancels every task)
/// while a worker polls the task and another thread wakes it: the task
/// ends cancelled whichever side gets there first (shutdown cancels an
/// idle task itself, or marks a running one so the poll's end cancels
/// it), leaves the list, and its future is dropped once.
#[test]
fn runtime_shutdown_vs_poll() {
    loom::model(|| {
        let gate = Gate::new(false);
        let (runner, first, mut join) = Runner::spawn(Gated(gate.clone()));
        first.run();
        gate.wake_by_ref();
        let queued = runner.pop().expect("the wake queued the task");

        let worker = thread::spawn(move || queued.run());
        let closer = {
            let runner = runner.clone();
            thread::spawn(move || runner.close())
        };
        gate.wake_by_ref();
        worker.join().unwrap();
        closer.join().unwrap();
        runner.run_all();

        let (_probe, waker) = JoinProbe::new();
        match poll_join(&mut join, &waker) {
            Poll::Ready(Err(e)) => assert!(e.is_cancelled(), "unexpected error: {e}"),
            Poll::Ready(Ok(_)) => panic!("a task behind a shut gate completed"),
            Poll::Pending => panic!("shutdown missed a running task"),
        }
        assert_eq!(runner.owned(), 0, "a cancelled task stayed in the list");
        drop(join);
        runner.shutdown();
        gate.clear();
        assert_eq!(gate.futures_dropped.load(Acquire), 1);
        assert_eq!(gate.outputs_dropped.load(Acquire), 0);
    });
}
