//! Hops: moving the running task to the node of the resources it is about
//! to use (`#[locality]`, `uses!`).
//!
//! A hop resolves its targets with the runtime's cost table, records the
//! new home as a request for the worker, wakes its task and returns
//! `Pending`. When the poll ends, the task's home is set from the request,
//! and the wake-up queues the task on the new home's pool (wake-to-home).
//! The next poll runs there and the hop completes. A task stolen on its
//! way by an idle node is sent on again, up to three times.
//!
//! Outside a multi-thread runtime's worker (another executor, `block_on`,
//! a current-thread runtime) there is no hop: the future completes at once
//! and the refused hop is counted. In a `spawn_local` task the task cannot
//! leave its worker: the hop is tried, found not to have moved, and
//! counted as refused.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::runtime::context;
use crate::runtime::handle::resolve;
use crate::task::Home;
use crate::NodeId;

use super::metrics;
use super::Target;

thread_local! {
    /// The home a hop asked for during the current task poll.
    static REQUEST: Cell<Option<Home>> = const { Cell::new(None) };
}

/// The home requested by a hop during the poll that just ended, if any.
/// Called by the task's poll after every poll of its future, so a request
/// never outlives the poll that made it.
#[inline]
pub(crate) fn take_request() -> Option<Home> {
    REQUEST.try_with(|r| r.take()).ok().flatten()
}

/// Moves the current task to the node that `target` resolves to, then
/// completes with that node.
///
/// Completes with `None`, without moving, when the target cannot be
/// resolved here (not on a multi-thread runtime's worker, or no usable
/// node); the refused hop is counted in [`metrics`](super::metrics).
///
/// ```
/// use numa_rt_runtime::locality::hop;
/// use numa_rt_runtime::NodeId;
///
/// let rt = numa_rt_runtime::runtime::Builder::new_multi_thread().build().unwrap();
/// let node = rt.block_on(async {
///     numa_rt_runtime::spawn(async { hop(&NodeId::new(0)).await }).await.unwrap()
/// });
/// assert_eq!(node, Some(NodeId::new(0)));
/// ```
pub fn hop<T: Target + ?Sized>(target: &T) -> Hop {
    let plan = context::with_worker(|w| {
        let shared = w?.shared();
        let placement = target.placement_in(&shared.topology, &shared.cost).ok()?;
        let home = resolve(shared, &placement).ok()?;
        Some((home, shared.pools[home.pool as usize].node))
    });
    Hop {
        state: match plan {
            Some((home, node)) => State::Start { home, node },
            None => State::Refused,
        },
    }
}

/// The future returned by [`hop`].
#[derive(Debug)]
#[must_use = "a hop does nothing unless awaited"]
pub struct Hop {
    state: State,
}

#[derive(Clone, Copy, Debug)]
enum State {
    Start { home: Home, node: NodeId },
    Moving { home: Home, node: NodeId, tries: u8 },
    Refused,
    Done,
}

/// How many times a hop sends its task towards the target before giving up
/// (the task was stolen on its way each time).
const MAX_TRIES: u8 = 3;

fn current_pool() -> Option<usize> {
    context::with_worker(|w| w.map(|w| w.pool))
}

impl Future for Hop {
    type Output = Option<NodeId>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<NodeId>> {
        match self.state {
            State::Start { home, node } => {
                metrics::count_decision(node);
                // Even without moving, the task's home (and strictness)
                // becomes the new placement.
                let _ = REQUEST.try_with(|r| r.set(Some(home)));
                if current_pool() == Some(home.pool as usize) {
                    self.state = State::Done;
                    return Poll::Ready(Some(node));
                }
                self.state = State::Moving {
                    home,
                    node,
                    tries: 1,
                };
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            State::Moving { home, node, tries } => {
                let here = current_pool();
                if here == Some(home.pool as usize) {
                    metrics::count_hop();
                } else if here.is_some() && tries < MAX_TRIES {
                    // An idle node stole the task on its way: send it on
                    // again rather than run the body off target.
                    let _ = REQUEST.try_with(|r| r.set(Some(home)));
                    self.state = State::Moving {
                        home,
                        node,
                        tries: tries + 1,
                    };
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                } else {
                    metrics::count_refused();
                }
                self.state = State::Done;
                Poll::Ready(Some(node))
            }
            State::Refused => {
                metrics::count_refused();
                self.state = State::Done;
                Poll::Ready(None)
            }
            State::Done => Poll::Ready(None),
        }
    }
}

/// A future whose polls are counted as on or off its target node (see
/// [`LocalityMetrics`](super::LocalityMetrics)); what `#[locality]` wraps
/// a function body in.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct OnTarget<F> {
    node: Option<NodeId>,
    future: F,
}

impl<F: Future> OnTarget<F> {
    /// Counts the polls of `future` against `node` (not at all when `None`).
    pub fn new(node: Option<NodeId>, future: F) -> OnTarget<F> {
        OnTarget { node, future }
    }
}

impl<F: Future> Future for OnTarget<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of
        // `self` nor exposed unpinned, and `OnTarget` has no Drop or Unpin
        // impl that would move it.
        let this = unsafe { self.get_unchecked_mut() };
        if let Some(node) = this.node {
            metrics::count_poll(context::node() == Some(node));
        }
        // SAFETY: as above, `this.future` stays where it is.
        unsafe { Pin::new_unchecked(&mut this.future) }.poll(cx)
    }
}

/// Moves the current task next to the named targets before going on:
/// `uses!(index, buffer).await`-free shorthand for
/// `hop(&(&index, &buffer)).await` inside async code. Evaluates to the
/// node the task now runs on (`None` when no hop was possible).
///
/// ```
/// use numa_rt_runtime::{uses, NodeId};
///
/// let rt = numa_rt_runtime::runtime::Builder::new_multi_thread().build().unwrap();
/// rt.block_on(async {
///     numa_rt_runtime::spawn(async {
///         let data = NodeId::new(0);
///         assert_eq!(uses!(data), Some(NodeId::new(0)));
///     }).await.unwrap();
/// });
/// ```
#[macro_export]
macro_rules! uses {
    ($($target:expr),+ $(,)?) => {
        $crate::locality::hop(&($(&$target,)+)).await
    };
}
