//! `Sleep`: a future that completes at a deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::io::driver::{
    self,
    timers::{Armed, Registration},
};

const NO_TIMER: &str = "numa_rt::time used outside a runtime with time enabled: timers \
     must be polled inside a numa_rt runtime built with Builder::enable_time or enable_all \
     (as #[numa_rt::main] and #[numa_rt::test] do)";

/// Waits until `duration` has passed.
///
/// ```
/// # let rt = numa_rt_runtime::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # rt.block_on(async {
/// numa_rt_runtime::time::sleep(std::time::Duration::from_millis(2)).await;
/// # });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    // A deadline too far to represent is "never".
    let deadline = Instant::now()
        .checked_add(duration)
        .unwrap_or_else(far_future);
    sleep_until(deadline)
}

/// Waits until `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        registration: None,
    }
}

/// About thirty years from now: far enough to mean "never".
pub(crate) fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(86400 * 365 * 30))
        .unwrap_or(now)
}

/// Why a timer cannot be polled here.
#[cold]
fn no_timer_driver() -> ! {
    match driver::creation_failure() {
        Some((_, e)) => panic!(
            "numa_rt::time: this thread's I/O driver, which would run its \
             timers, could not be created ({e}), and no other driver of the \
             runtime is running (it has shut down)"
        ),
        None => panic!("{NO_TIMER}"),
    }
}

/// The future of [`sleep`] and [`sleep_until`].
///
/// It is registered with the timers of the thread that first polls it
/// and completes no earlier than its deadline.
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Sleep {
    deadline: Instant,
    /// The queued timer, and the deadline it was queued for (not after
    /// `deadline`: a reset to a later deadline keeps it).
    registration: Option<(Registration, Instant)>,
}

impl Sleep {
    /// When this sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline (the sleep becomes pending again if it is later).
    ///
    /// Resetting to a later deadline (an idle timeout pushed back at every
    /// read) keeps the queued timer: when it fires, the next poll queues
    /// one for the new deadline. An earlier deadline replaces it at the
    /// next poll.
    pub fn reset(self: Pin<&mut Self>, deadline: Instant) {
        let this = self.get_mut();
        this.deadline = deadline;
        if this
            .registration
            .as_ref()
            .is_some_and(|(_, armed)| *armed > deadline)
        {
            this.registration = None;
        }
    }

    pub(crate) fn reset_unpinned(&mut self, deadline: Instant) {
        Pin::new(self).reset(deadline);
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // The driver's clock decides, never this poll's: no clock read per
        // poll (hyper polls its header-read sleep on every request). A
        // deadline that passed before the driver's last reading completes
        // at once; any other is fired by the driver's next turn after it.
        if let Some((registration, armed)) = &this.registration {
            if !registration.timer.register(cx.waker()) {
                return Poll::Pending;
            }
            // The driver saw `armed` pass (by its own clock reading).
            let armed = *armed;
            this.registration = None;
            if armed >= this.deadline {
                return Poll::Ready(());
            }
            // Reset to a later deadline since: queue it.
        }
        // This thread's driver computes its next wait after this poll, so
        // the new deadline is seen in time; another thread's driver is
        // woken to recompute its wait.
        match driver::arm_timer(this.deadline, cx.waker()) {
            Some(Armed::Elapsed) => Poll::Ready(()),
            Some(Armed::Pending(r)) => {
                this.registration = Some((r, this.deadline));
                Poll::Pending
            }
            None => no_timer_driver(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct Counted(AtomicUsize);
    impl Wake for Counted {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Relaxed);
        }
    }

    fn rt() -> crate::Runtime {
        crate::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn poll_with(sleep: &mut Sleep, waker: &Waker) -> Poll<()> {
        Pin::new(sleep).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_passed_deadline_is_ready_at_its_first_poll() {
        rt().block_on(async {
            let waker = Waker::from(Arc::new(Counted(AtomicUsize::new(0))));
            // Before the driver's first clock reading, and after one.
            let past = Instant::now() - Duration::from_millis(5);
            assert!(poll_with(&mut sleep_until(past), &waker).is_ready());
            sleep(Duration::from_millis(1)).await;
            let long_ago = Instant::now() - Duration::from_secs(3600);
            assert!(poll_with(&mut sleep_until(long_ago), &waker).is_ready());
            // A zero sleep is ready at once or at the driver's next turn
            // (when polled over a millisecond after its last clock reading).
            sleep(Duration::ZERO).await;
        });
    }

    #[test]
    fn a_reset_to_a_later_deadline_keeps_the_timer_until_it_fires() {
        let rt = rt();
        let task = Arc::new(Counted(AtomicUsize::new(0)));
        let waker = Waker::from(task.clone());
        rt.block_on(async {
            let start = Instant::now();
            let mut s = sleep(Duration::from_millis(200));
            assert!(poll_with(&mut s, &waker).is_pending());
            let first = Arc::as_ptr(&s.registration.as_ref().unwrap().0.timer);
            s.reset_unpinned(start + Duration::from_millis(400));
            assert!(poll_with(&mut s, &waker).is_pending());
            let kept = Arc::as_ptr(&s.registration.as_ref().unwrap().0.timer);
            assert_eq!(first, kept, "a later deadline re-queued the timer");
            // The first deadline wakes the task; the poll then queues the
            // new deadline, which is not early.
            while task.0.load(Relaxed) == 0 {
                sleep(Duration::from_millis(1)).await;
            }
            assert!(poll_with(&mut s, &waker).is_pending());
            (&mut s).await;
            assert!(start.elapsed() >= Duration::from_millis(400));
            // An earlier deadline replaces the timer.
            let mut s = sleep(Duration::from_secs(60));
            assert!(poll_with(&mut s, &waker).is_pending());
            s.reset_unpinned(Instant::now() + Duration::from_millis(2));
            assert!(s.registration.is_none());
            let at = Instant::now();
            s.await;
            assert!(at.elapsed() < Duration::from_secs(5));
        });
    }

    #[test]
    fn a_far_sleep_dropped_on_another_thread_lets_go_of_its_waker() {
        let rt = rt();
        let task = Arc::new(Counted(AtomicUsize::new(0)));
        let waker = Waker::from(task.clone());
        let mut far = sleep(Duration::from_secs(30));
        rt.block_on(async {
            assert!(poll_with(&mut far, &waker).is_pending());
            // Polled again with the same waker: nothing new is kept.
            assert!(poll_with(&mut far, &waker).is_pending());
        });
        assert_eq!(Arc::strong_count(&task), 3);
        let moved = Arc::new(Counted(AtomicUsize::new(0)));
        let on_the_thread = moved.clone();
        std::thread::spawn(move || {
            // Still pending wherever it is polled; the new waker replaces
            // the old one.
            let waker = Waker::from(on_the_thread);
            assert!(poll_with(&mut far, &waker).is_pending());
            drop(far);
        })
        .join()
        .unwrap();
        drop(waker);
        assert_eq!(Arc::strong_count(&task), 1);
        assert_eq!(Arc::strong_count(&moved), 1);
        assert_eq!(task.0.load(Relaxed) + moved.0.load(Relaxed), 0);
    }
}
