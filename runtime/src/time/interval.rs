//! `Interval`: ticks at a fixed period.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::sleep::{sleep_until, Sleep};

/// A late tick beyond this is "missed" and handled by the
/// [`MissedTickBehavior`].
const LATE: Duration = Duration::from_millis(5);

/// What an [`Interval`] does when ticks were missed (the task was busy
/// past one or more deadlines).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks at once, one after the other, then keep the
    /// original schedule.
    #[default]
    Burst,
    /// Restart the schedule: the next tick is one period after now.
    Delay,
    /// Drop the missed ticks: the next tick is the next one on the
    /// original schedule that is still in the future.
    Skip,
}

impl MissedTickBehavior {
    fn next(self, scheduled: Instant, now: Instant, period: Duration) -> Instant {
        match self {
            MissedTickBehavior::Burst => scheduled + period,
            MissedTickBehavior::Delay => now + period,
            MissedTickBehavior::Skip => {
                let behind = now.duration_since(scheduled).as_nanos();
                let p = period.as_nanos().max(1);
                let skip = behind / p + 1;
                let ahead = p * skip;
                let secs = (ahead / 1_000_000_000) as u64;
                let nanos = (ahead % 1_000_000_000) as u32;
                scheduled + Duration::new(secs, nanos)
            }
        }
    }
}

/// Ticks every `period`, the first tick at once.
///
/// # Panics
/// When `period` is zero.
///
/// ```
/// # let rt = numa_rt_runtime::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # rt.block_on(async {
/// use std::time::Duration;
/// let mut every = numa_rt_runtime::time::interval(Duration::from_millis(2));
/// every.tick().await; // at once
/// every.tick().await; // 2 ms later
/// # });
/// ```
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Ticks every `period`, the first tick at `start`.
///
/// # Panics
/// When `period` is zero.
#[track_caller]
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(!period.is_zero(), "interval: `period` must be non-zero");
    Interval {
        delay: sleep_until(start),
        period,
        missed: MissedTickBehavior::Burst,
    }
}

/// A stream of ticks; see [`interval`].
#[derive(Debug)]
pub struct Interval {
    delay: Sleep,
    period: Duration,
    missed: MissedTickBehavior,
}

impl Interval {
    /// Waits for the next tick and returns when it was scheduled.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if Pin::new(&mut self.delay).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let scheduled = self.delay.deadline();
        let now = Instant::now();
        let next = if now > scheduled + LATE {
            self.missed.next(scheduled, now, self.period)
        } else {
            scheduled + self.period
        };
        self.delay.reset_unpinned(next);
        Poll::Ready(scheduled)
    }

    /// Makes the next tick one period from now.
    pub fn reset(&mut self) {
        self.delay.reset_unpinned(Instant::now() + self.period);
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The missed-tick behaviour.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed
    }

    /// Sets the missed-tick behaviour.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missed_tick_schedules() {
        let t0 = Instant::now();
        let p = Duration::from_millis(10);
        let now = t0 + Duration::from_millis(35);
        assert_eq!(MissedTickBehavior::Burst.next(t0, now, p), t0 + p);
        assert_eq!(MissedTickBehavior::Delay.next(t0, now, p), now + p);
        assert_eq!(
            MissedTickBehavior::Skip.next(t0, now, p),
            t0 + Duration::from_millis(40)
        );
    }
}
