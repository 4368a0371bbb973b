//! [`Timer`]: hyper's timer on numa_rt's timers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use numa_rt_runtime::time;

/// Gives hyper its timeouts (header read timeout, keep-alive, HTTP/2 pings)
/// from numa_rt's timer wheel instead of tokio's.
///
/// ```
/// use numa_rt::hyper::Timer;
///
/// let mut builder = hyper::server::conn::http1::Builder::new();
/// builder.timer(Timer::new());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Timer {
    _priv: (),
}

impl Timer {
    /// A timer backed by the runtime that polls its sleeps.
    pub fn new() -> Timer {
        Timer { _priv: () }
    }
}

impl hyper::rt::Timer for Timer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HyperSleep {
            inner: time::sleep(duration),
        })
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HyperSleep {
            inner: time::sleep_until(deadline),
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        // Reuse the registration when the sleep is ours; anything else is
        // replaced by a fresh one.
        match sleep.as_mut().downcast_mut_pin::<HyperSleep>() {
            Some(ours) => ours.reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

pin_project_lite::pin_project! {
    /// A numa_rt sleep seen by hyper.
    struct HyperSleep {
        #[pin]
        inner: time::Sleep,
    }
}

impl HyperSleep {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.project().inner.reset(deadline);
    }
}

impl Future for HyperSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().inner.poll(cx)
    }
}

impl hyper::rt::Sleep for HyperSleep {}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer as _;

    fn rt() -> numa_rt_runtime::Runtime {
        numa_rt_runtime::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn sleep_waits_at_least_the_duration() {
        let elapsed = rt().block_on(async {
            let start = Instant::now();
            Timer::new().sleep(Duration::from_millis(20)).await;
            start.elapsed()
        });
        assert!(elapsed >= Duration::from_millis(20), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    }

    #[test]
    fn reset_moves_the_deadline() {
        let elapsed = rt().block_on(async {
            let timer = Timer::new();
            let start = Instant::now();
            let mut sleep = timer.sleep(Duration::from_secs(60));
            timer.reset(&mut sleep, start + Duration::from_millis(10));
            sleep.await;
            start.elapsed()
        });
        assert!(elapsed >= Duration::from_millis(10), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    }
}
