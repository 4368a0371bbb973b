//! A timer's shared state (`time/entry.rs`): the owner registering its
//! waker or dropping the timer races the driver firing it. In every model
//! the fire is either woken or reported to the owner's poll, never lost;
//! each waker is dropped (no waker outlives the timer: a kept waker keeps
//! its task and runtime alive); and the waker slot is only touched by
//! whoever the state word hands it to (else loom reports the cell access).

use std::sync::Arc as StdArc;
use std::task::Waker;

use loom::sync::Arc;
use loom::thread;

use super::support::JoinProbe;
use crate::time::entry::TimerShared;

/// The driver's side: fire and wake what it was handed.
fn fire(timer: &TimerShared) {
    if let Some(w) = timer.fire() {
        w.wake();
    }
}

/// Only the probes' own handles are left (no waker kept anywhere).
fn no_waker_left(probes: &[&StdArc<JoinProbe>]) {
    for p in probes {
        assert_eq!(StdArc::strong_count(p), 1, "a waker outlived its timer");
    }
}

/// A poll registering a new waker races the fire: either the driver wakes
/// the registered waker, or the poll reports the timer fired.
#[test]
fn register_vs_fire() {
    loom::model(|| {
        let (first, w1) = JoinProbe::new();
        let (second, w2) = JoinProbe::new();
        let timer = Arc::new(TimerShared::new(w1));
        let driver = {
            let timer = timer.clone();
            thread::spawn(move || fire(&timer))
        };
        let reported = timer.register(&w2);
        driver.join().unwrap();
        let woken = first.wakes() + second.wakes();
        if reported {
            assert!(woken <= 1);
        } else {
            assert_eq!(woken, 1, "the fire was lost");
            assert!(timer.register(&w2), "a fired timer reads as pending");
        }
        drop((w2, timer));
        no_waker_left(&[&first, &second]);
    });
}

/// The owner dropping the timer races the fire: the waker is let go of
/// either way, woken at most once.
#[test]
fn cancel_vs_fire() {
    loom::model(|| {
        let (probe, waker) = JoinProbe::new();
        let timer = Arc::new(TimerShared::new(waker));
        let driver = {
            let timer = timer.clone();
            thread::spawn(move || fire(&timer))
        };
        timer.cancel();
        // Right after its cancel, the owner's task is no longer referenced
        // by the timer, unless the driver took the waker to wake it.
        driver.join().unwrap();
        assert!(probe.wakes() <= 1);
        no_waker_left(&[&probe]);
        drop(timer);
    });
}

/// A poll, then the drop of the timer, on another thread than the first
/// poll's, race the fire.
#[test]
fn register_then_cancel_vs_fire() {
    loom::model(|| {
        let (first, w1) = JoinProbe::new();
        let (second, w2) = JoinProbe::new();
        let timer = Arc::new(TimerShared::new(w1));
        let owner = {
            let timer = timer.clone();
            thread::spawn(move || {
                timer.register(&w2);
                timer.cancel();
                drop::<Waker>(w2);
            })
        };
        fire(&timer);
        owner.join().unwrap();
        assert!(first.wakes() + second.wakes() <= 1);
        drop(timer);
        no_waker_left(&[&first, &second]);
    });
}
