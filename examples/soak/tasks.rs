//! Task churn: tasks that complete, panic, are aborted, spawn children on
//! other nodes, or run on the blocking pool; every one accounted for.
//!
//! Each spawn counts one in `spawned`; each outcome is read from the
//! task's `JoinHandle` (directly or through a `JoinSet`) and counted as
//! completed (its value checked), panicked (its payload checked) or
//! aborted. A guard inside every future counts it alive until it is
//! dropped, so a task whose future is never freed shows up too.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use numa_rt::task::{yield_now, JoinError, JoinSet};
use numa_rt::time::{sleep, Instant};

use crate::pattern::Rng;
use crate::Soak;

/// The payload of the soak's deliberate panics (the panic hook keeps them
/// quiet).
#[derive(Debug)]
pub struct IntentionalPanic;

/// Counts a task future (or blocking closure) alive until dropped.
struct Alive(Arc<Soak>);

impl Alive {
    fn new(soak: &Arc<Soak>) -> Alive {
        soak.ledger.live.up();
        Alive(soak.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.ledger.live.down();
    }
}

/// `fut`, counted alive from now until it is dropped.
fn tracked<F: Future>(soak: &Arc<Soak>, fut: F) -> impl Future<Output = F::Output> {
    let alive = Alive::new(soak);
    async move {
        let _alive = alive;
        fut.await
    }
}

fn boom() -> u64 {
    std::panic::panic_any(IntentionalPanic)
}

/// How long an aborted task would wait if nobody aborted it.
const FOREVER: Duration = Duration::from_secs(3600);

/// Spawns batches of 32 mixed tasks on random nodes until `deadline`,
/// aborts the ones meant to be aborted, and reaps them all.
pub async fn churn(soak: Arc<Soak>, stream: u64, deadline: Instant) {
    let mut rng = Rng::new(soak.seed ^ 0xc4c4, stream);
    let mut token = stream << 40;
    while Instant::now() < deadline {
        let mut set = JoinSet::new();
        let mut expected = HashSet::new();
        let mut to_abort = Vec::new();
        for _ in 0..32 {
            token += 1;
            let t = token;
            let node = soak.nodes[rng.below(soak.nodes.len() as u64) as usize];
            soak.ledger.spawned.inc();
            match rng.below(100) {
                0..=39 => {
                    expected.insert(t);
                    let polls = rng.below(3);
                    set.spawn_on(
                        node,
                        tracked(&soak, async move {
                            for _ in 0..polls {
                                yield_now().await;
                            }
                            t
                        }),
                    );
                }
                40..=54 => {
                    soak.ledger.expected_panics.inc();
                    set.spawn_on(
                        node,
                        tracked(&soak, async move {
                            yield_now().await;
                            boom()
                        }),
                    );
                }
                55..=74 => {
                    soak.ledger.expected_aborts.inc();
                    let h = set.spawn_on(
                        node,
                        tracked(&soak, async move {
                            sleep(FOREVER).await;
                            t
                        }),
                    );
                    to_abort.push(h);
                }
                75..=89 => {
                    expected.insert(t);
                    let seed = rng.next_u64();
                    set.spawn_on(node, tracked(&soak, parent(soak.clone(), seed, t, 0)));
                }
                _ => {
                    expected.insert(t);
                    let alive = Alive::new(&soak);
                    let nap = rng.chance(10);
                    set.spawn_blocking(move || {
                        let _alive = alive;
                        if nap {
                            std::thread::sleep(Duration::from_micros(100));
                        }
                        t
                    });
                }
            }
        }
        // Abort half at once (most not yet polled), half after they had a
        // chance to run and park on their timer.
        for h in to_abort.iter().step_by(2) {
            h.abort();
        }
        yield_now().await;
        sleep(Duration::from_micros(rng.below(1000))).await;
        for h in to_abort.iter().skip(1).step_by(2) {
            h.abort();
        }
        while let Some(r) = set.join_next().await {
            match r {
                Ok(t) if expected.remove(&t) => soak.ledger.completed.inc(),
                Ok(t) => soak.ledger.fail(format!(
                    "a churn task returned {t:#x}, which no task was to return"
                )),
                Err(e) => outcome_error(&soak, e),
            }
        }
        if !expected.is_empty() {
            soak.ledger.fail(format!(
                "{} churn task(s) never returned their value",
                expected.len()
            ));
        }
    }
}

/// Counts a `JoinError` as a panic (with the soak's payload) or an abort.
fn outcome_error(soak: &Soak, e: JoinError) {
    if e.is_cancelled() {
        soak.ledger.aborted.inc();
    } else if e.is_panic() {
        soak.ledger.panicked.inc();
        if !e.into_panic().is::<IntentionalPanic>() {
            soak.ledger
                .fail("a task panicked with a payload not its own".into());
        }
    } else {
        soak.ledger
            .fail(format!("join error neither panic nor cancel: {e}"));
    }
}

/// A task that spawns 1 to 4 children on random nodes (completing,
/// panicking, aborted, or parents themselves up to depth 2), awaits each
/// handle and checks the outcome; returns `t`.
fn parent(
    soak: Arc<Soak>,
    seed: u64,
    t: u64,
    depth: u32,
) -> Pin<Box<dyn Future<Output = u64> + Send>> {
    Box::pin(async move {
        let mut rng = Rng::new(seed, t);
        let mut children = Vec::new();
        for c in 0..rng.range(1, 4) {
            let node = soak.nodes[rng.below(soak.nodes.len() as u64) as usize];
            let ct = t.wrapping_mul(31).wrapping_add(c + 1);
            soak.ledger.spawned.inc();
            let kind = rng.below(100);
            let h = match kind {
                0..=59 => numa_rt::spawn_on(node, tracked(&soak, async move { ct })),
                60..=74 => {
                    soak.ledger.expected_panics.inc();
                    numa_rt::spawn_on(node, tracked(&soak, async move { boom() }))
                }
                75..=89 => {
                    soak.ledger.expected_aborts.inc();
                    let h = numa_rt::spawn_on(
                        node,
                        tracked(&soak, async move {
                            sleep(FOREVER).await;
                            ct
                        }),
                    );
                    h.abort();
                    h
                }
                _ if depth < 2 => numa_rt::spawn_on(
                    node,
                    tracked(&soak, parent(soak.clone(), rng.next_u64(), ct, depth + 1)),
                ),
                _ => numa_rt::spawn_on(node, tracked(&soak, async move { ct })),
            };
            children.push((ct, kind, h));
        }
        for (ct, kind, h) in children {
            match h.await {
                Ok(v) if v == ct && !(60..=89).contains(&kind) => soak.ledger.completed.inc(),
                Ok(v) => soak.ledger.fail(format!(
                    "a child task returned {v:#x}, expected {ct:#x} (kind {kind})"
                )),
                Err(e) => outcome_error(&soak, e),
            }
        }
        t
    })
}
