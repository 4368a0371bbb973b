//! The parker (`scheduler/park.rs`): an unpark racing a park is never
//! lost. The futex is emulated (see `crate::loom`), so a sleeper that
//! nobody wakes leaves every thread blocked and loom reports a deadlock.

use loom::sync::atomic::AtomicUsize;
use loom::sync::atomic::Ordering::{Acquire, Release};
use loom::sync::Arc;
use loom::thread;

use crate::scheduler::park::Parker;

/// The sleeper parks until it sees the flag; the other thread sets the
/// flag and unparks at any point of the sleeper's park.
#[test]
fn unpark_racing_park() {
    loom::model(|| {
        let parker = Arc::new(Parker::new());
        let flag = Arc::new(AtomicUsize::new(0));
        let waker = {
            let (parker, flag) = (parker.clone(), flag.clone());
            thread::spawn(move || {
                flag.store(1, Release);
                parker.unpark();
            })
        };
        while flag.load(Acquire) == 0 {
            parker.park();
        }
        waker.join().unwrap();
    });
}

/// Two rounds: the token of the first unpark is consumed by one park and
/// the second unpark still wakes the sleeper (no stale state in between).
#[test]
fn two_rounds() {
    loom::model(|| {
        let parker = Arc::new(Parker::new());
        let rounds = Arc::new(AtomicUsize::new(0));
        let waker = {
            let (parker, rounds) = (parker.clone(), rounds.clone());
            thread::spawn(move || {
                for _ in 0..2 {
                    rounds.fetch_add(1, Release);
                    parker.unpark();
                }
            })
        };
        while rounds.load(Acquire) < 2 {
            parker.park();
        }
        waker.join().unwrap();
    });
}
