//! The retry policy of a failed apply: the backoff sequence ([`Backoff`], 1 s doubling to
//! 60 s) and the one pending retry timer ([`Retry`]).
//!
//! A failed write (EBUSY, a link not there yet, a full table) often clears by itself, so the
//! daemon tries again; backing off keeps a permanent failure from turning into a busy loop of
//! netlink dumps and error lines.

use std::time::Duration;

use tokio::time::{sleep_until, Instant};

use super::queue::Sender;
use super::trigger::Trigger;

/// First wait before retrying a failed apply.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest wait between retries.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The waits between retries: `min`, doubling up to `max`, and `min` again after
/// [`Backoff::reset`]. Pure and deterministic: no clock, no task.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A sequence from `min` doubling up to `max`.
    pub const fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The wait before the next retry; each call doubles the one after (up to `max`).
    pub fn next_delay(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// Start the sequence over: the next delay is `min` again.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

impl Default for Backoff {
    /// The daemon's sequence: 1 s doubling to 60 s.
    fn default() -> Backoff {
        Backoff::new(BACKOFF_MIN, BACKOFF_MAX)
    }
}

/// The pending retry: at most one at a time, sent as [`Trigger::Retry`] on the daemon's queue
/// when its delay is over, so a retry is a burst like any other and never overlaps a pass.
///
/// The daemon calls [`Retry::schedule`] when a pass fails, [`Retry::fired`] when a burst holds
/// the retry, and [`Retry::reset`] when a pass succeeds. A failure while a retry is pending
/// neither schedules a second one nor advances the backoff: the pending one covers it.
///
/// The daemon makes every trigger respect it: while a pass is failing, kernel events and the
/// resync re-plan without applying unless the plan changed (see `Daemon::waits_for_retry`).
#[derive(Debug)]
pub struct Retry {
    backoff: Backoff,
    due: Option<Instant>,
    timer: Option<tokio::task::JoinHandle<()>>,
    tx: Sender,
}

impl Retry {
    /// A retry timer that sends its trigger on `tx`, waiting as `backoff` says.
    pub fn new(backoff: Backoff, tx: Sender) -> Retry {
        Retry {
            backoff,
            due: None,
            timer: None,
            tx,
        }
    }

    /// Schedule a retry after the next delay of the backoff, unless one is pending. Returns
    /// the delay, or `None` when a retry was already pending.
    pub fn schedule(&mut self) -> Option<Duration> {
        if self.due.is_some() {
            return None;
        }
        let wait = self.backoff.next_delay();
        let due = Instant::now() + wait;
        self.due = Some(due);
        let tx = self.tx.clone();
        // Until `due`, not for `wait`: the task first runs when the daemon next yields, and
        // the retry must come when `due()` says.
        self.timer = Some(tokio::spawn(async move {
            sleep_until(due).await;
            // The daemon may be gone (stopping): nobody is left to retry.
            let _ = tx.send(Trigger::Retry);
        }));
        Some(wait)
    }

    /// The pending retry's trigger has been taken into a burst: the next failure schedules a
    /// new one.
    pub fn fired(&mut self) {
        self.due = None;
        self.timer = None;
    }

    /// A pass succeeded, or the files changed: the pending retry is cancelled (its timer
    /// sends nothing) and the next failure waits the shortest delay again.
    pub fn reset(&mut self) {
        self.backoff.reset();
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
        self.due = None;
    }

    /// When the pending retry fires, if one is pending.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn backoff_doubles_from_1s_to_60s_and_stays_there() {
        let mut b = Backoff::default();
        let seq: Vec<u64> = (0..9).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(seq, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn reset_starts_the_sequence_over() {
        let mut b = Backoff::default();
        for _ in 0..4 {
            b.next_delay();
        }
        b.reset();
        assert_eq!(b.next_delay(), secs(1));
        assert_eq!(b.next_delay(), secs(2));
    }

    #[test]
    fn the_cap_need_not_be_a_power_of_two_of_the_start() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(250));
        let seq: Vec<_> = (0..4).map(|_| b.next_delay()).collect();
        assert_eq!(seq, [ms(100), ms(200), ms(250), ms(250)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_fires_exactly_after_its_delay() {
        let (tx, mut rx) = crate::watch::queue::channel();
        let mut retry = Retry::new(Backoff::default(), tx);
        let t0 = Instant::now();
        assert_eq!(retry.schedule(), Some(secs(1)));
        assert_eq!(retry.due(), Some(t0 + secs(1)));
        advance(Duration::from_millis(999)).await;
        assert_eq!(rx.try_recv(), None, "not before its second is over");
        advance(Duration::from_millis(1)).await;
        assert_eq!(rx.recv().await, Some(Trigger::Retry));
        assert_eq!(t0.elapsed(), secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn one_retry_at_a_time_and_failures_meanwhile_do_not_advance_the_backoff() {
        let (tx, mut rx) = crate::watch::queue::channel();
        let mut retry = Retry::new(Backoff::default(), tx);
        assert_eq!(retry.schedule(), Some(secs(1)));
        assert_eq!(retry.schedule(), None);
        assert_eq!(retry.schedule(), None);
        advance(secs(30)).await;
        assert_eq!(rx.recv().await, Some(Trigger::Retry));
        assert_eq!(rx.try_recv(), None, "exactly one retry was sent");
        // Not taken into a burst yet: still counts as pending.
        assert_eq!(retry.schedule(), None);
        retry.fired();
        assert_eq!(retry.due(), None);
        assert_eq!(retry.schedule(), Some(secs(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_wait_1_2_4_up_to_60_s_and_1_s_again_after_a_success() {
        let (tx, mut rx) = crate::watch::queue::channel();
        let mut retry = Retry::new(Backoff::default(), tx);
        let mut waited = Vec::new();
        for _ in 0..8 {
            let t = Instant::now();
            retry.schedule().expect("none pending");
            assert_eq!(rx.recv().await, Some(Trigger::Retry));
            retry.fired();
            waited.push(t.elapsed());
        }
        let want: Vec<Duration> = [1, 2, 4, 8, 16, 32, 60, 60].map(secs).into();
        assert_eq!(waited, want);

        retry.reset();
        let t = Instant::now();
        assert_eq!(retry.schedule(), Some(secs(1)));
        assert_eq!(rx.recv().await, Some(Trigger::Retry));
        assert_eq!(t.elapsed(), secs(1));
    }
}
