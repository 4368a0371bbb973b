//! Timers: sleeps, timeouts that fire and that do not, intervals, and a
//! reset sleep; none may fire early, and their lateness is recorded.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use numa_rt::time::{interval, sleep, timeout, Instant};

use crate::pattern::Rng;
use crate::Soak;

/// Checks one timer that had to wait at least `want` and took `took`.
fn check(soak: &Soak, what: &str, want: Duration, took: Duration) {
    soak.ledger.timers.inc();
    if took < want {
        soak.ledger
            .fail(format!("{what} of {want:?} fired early, after {took:?}"));
    } else {
        soak.ledger.late(took - want);
    }
}

/// Runs random timer checks until `deadline`.
pub async fn timers(soak: Arc<Soak>, stream: u64, deadline: Instant) {
    let mut rng = Rng::new(soak.seed ^ 0x7173, stream);
    while Instant::now() < deadline {
        let d = Duration::from_micros(rng.below(20_000));
        let start = Instant::now();
        match rng.below(5) {
            0 => {
                sleep(d).await;
                check(&soak, "sleep", d, start.elapsed());
            }
            1 => {
                // A timeout that must fire: the inner sleep is 50 ms longer.
                let inner = d + Duration::from_millis(50);
                let r = timeout(d, sleep(inner)).await;
                // On a loaded machine both deadlines may have passed by the
                // time the task runs; the inner sleep may then win, but
                // never before its own deadline.
                if r.is_ok() && start.elapsed() < inner {
                    soak.ledger.fail(format!(
                        "timeout of {d:?} let a sleep of {inner:?} finish first, after {:?}",
                        start.elapsed()
                    ));
                }
                check(&soak, "timeout", d, start.elapsed());
            }
            2 => {
                // A timeout that must not fire.
                let r = timeout(d + Duration::from_secs(5), async {
                    sleep(d).await;
                    7u8
                })
                .await;
                if r != Ok(7) {
                    soak.ledger.fail(format!(
                        "timeout of {d:?} + 5 s fired before a sleep of {d:?}"
                    ));
                }
                check(&soak, "sleep in a timeout", d, start.elapsed());
            }
            3 => {
                let period = Duration::from_micros(rng.range(500, 5000));
                let mut iv = interval(period);
                for _ in 0..5 {
                    iv.tick().await;
                }
                // The first tick is immediate, the fifth four periods later.
                check(&soak, "interval (5 ticks)", period * 4, start.elapsed());
            }
            _ => {
                // A sleep of an hour moved to `d`.
                let mut s = pin!(sleep(Duration::from_secs(3600)));
                s.as_mut().reset(start + d);
                s.await;
                check(&soak, "reset sleep", d, start.elapsed());
            }
        }
    }
}
