//! `yield_now`: give other tasks a turn.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Yields to the scheduler once: the task goes behind the other queued
/// tasks (not into the LIFO slot) and is polled again later.
///
/// ```
/// # numa_rt_runtime::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// for _ in 0..3 {
///     numa_rt_runtime::task::yield_now().await;
/// }
/// # });
/// ```
pub async fn yield_now() {
    YieldNow { yielded: false }.await
}

struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        // Woken while running: the worker re-queues the task at the back
        // of its queue once this poll returns.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
