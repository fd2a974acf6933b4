//! The debounce: how long the daemon waits for a burst of triggers to end before it acts.
//!
//! Editors, `git pull` and ConfigMap swaps write in bursts, and one `ip link del` makes the
//! kernel announce dozens of changes; acting on the first event of a burst would plan against
//! a half-written directory or a kernel still busy. So the daemon waits until the triggers
//! stop for a quiet time: the (configurable) debounce once a file event is in the burst,
//! otherwise a short settle, so drift is still repaired within milliseconds.

use std::time::Duration;

use tokio::time::{timeout_at, Instant};

use super::queue::Receiver;
use super::trigger::{Burst, Trigger};

/// Quiet time after a kernel event: short, so drift is repaired fast, but long enough to
/// coalesce the dozens of events one `ip link del` produces. Those are sent within the one
/// system call that made the change (microseconds apart, measured with `ip monitor`), so a
/// few milliseconds hold a burst; events a slower tool spreads wider cost one more pass, which
/// finds nothing left to do.
pub const KERNEL_SETTLE: Duration = Duration::from_millis(5);

/// How long a burst may keep growing. A steady stream of events (a flapping link, a program
/// rewriting a file in a loop) would otherwise postpone the pass forever.
pub const LONGEST_BURST: Duration = Duration::from_secs(5);

/// The quiet times that end a burst.
#[derive(Clone, Copy, Debug)]
pub struct Debounce {
    /// Quiet time once a file event is in the burst (`--debounce`).
    pub file: Duration,
    /// Quiet time for a burst without file events.
    pub settle: Duration,
    /// No further wait starts this long after the burst's first trigger.
    pub longest: Duration,
}

impl Debounce {
    /// The daemon's debounce: `file` for file events, [`KERNEL_SETTLE`] otherwise.
    pub fn new(file: Duration) -> Debounce {
        Debounce {
            file,
            settle: KERNEL_SETTLE,
            longest: LONGEST_BURST,
        }
    }

    /// The quiet time that ends `burst`: one file event makes the whole burst wait the file
    /// debounce, since the files are what the pass will reload.
    pub fn quiet(&self, burst: Burst) -> Duration {
        if burst.contains(Trigger::File) {
            self.file
        } else {
            self.settle
        }
    }

    /// Wait for the next burst and return it once it has been quiet for [`Debounce::quiet`]
    /// (or has grown for [`Debounce::longest`], or holds a stop).
    ///
    /// Quiet time counts from when each trigger was sent, not from when it is read: triggers
    /// that queued up during a pass have been waiting all along. `pending` is what was read
    /// before (triggers kept while draining echoes): when it is not empty the burst has
    /// already begun. Returns `None` only when nothing is pending and every sender is gone.
    pub async fn next_burst(&self, rx: &mut Receiver, pending: Pending) -> Option<Burst> {
        let mut burst = pending;
        if burst.is_empty() {
            let (t, at) = rx.recv_stamped().await?;
            burst.push(t, at);
        }
        let Some((first, _)) = burst.sent else {
            return Some(burst.triggers);
        };
        let deadline = first + self.longest;
        // Past the deadline no further wait starts, and no flood of queued triggers keeps
        // the burst growing.
        while !burst.triggers.contains(Trigger::Stop)
            && !burst.triggers.contains(Trigger::Gone)
            && Instant::now() < deadline
        {
            let Some((_, last)) = burst.sent else { break };
            let quiet_until = (last + self.quiet(burst.triggers)).min(deadline);
            match timeout_at(quiet_until, rx.recv_stamped()).await {
                Ok(Some((t, at))) => burst.push(t, at),
                Ok(None) | Err(_) => break,
            }
        }
        Some(burst.triggers)
    }
}

/// Triggers read but not acted on yet, and when the first and the last of them were sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// The triggers.
    pub triggers: Burst,
    /// When the first and the last were sent; `None` while there are none.
    pub sent: Option<(Instant, Instant)>,
}

impl Pending {
    /// Add a trigger sent at `at`.
    pub fn push(&mut self, t: Trigger, at: Instant) {
        self.triggers.push(t);
        self.sent = Some(match self.sent {
            None => (at, at),
            Some((first, last)) => (first.min(at), last.max(at)),
        });
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.triggers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{advance, sleep_until};
    use Trigger::*;

    const MS: Duration = Duration::from_millis(1);

    /// Send each trigger at its offset from now, from a task of its own as a real source does.
    fn send_at(tx: &crate::watch::queue::Sender, schedule: Vec<(u64, Trigger)>) {
        let tx = tx.clone();
        let t0 = Instant::now();
        tokio::spawn(async move {
            for (ms, t) in schedule {
                sleep_until(t0 + MS * ms as u32).await;
                tx.send(t).unwrap();
            }
        });
    }

    fn debounce_200ms() -> Debounce {
        Debounce::new(200 * MS)
    }

    #[tokio::test(start_paused = true)]
    async fn five_file_events_make_one_burst_ending_a_debounce_after_the_last() {
        let (tx, mut rx) = crate::watch::queue::channel();
        let t0 = Instant::now();
        send_at(&tx, (0..5).map(|i| (i * 50, File)).collect());
        let burst = debounce_200ms()
            .next_burst(&mut rx, Pending::default())
            .await;
        assert_eq!(burst, Some(Burst::from_iter([File])));
        // The last event came at 200 ms; the burst ends 200 ms later, not before, not after.
        assert_eq!(t0.elapsed(), 400 * MS);
        assert_eq!(rx.try_recv(), None, "all five events are in the one burst");
    }

    #[tokio::test(start_paused = true)]
    async fn quiet_time_counts_from_when_a_trigger_was_sent_not_when_it_is_read() {
        let (tx, mut rx) = crate::watch::queue::channel();
        let t0 = Instant::now();
        tx.send(File).unwrap();
        advance(30 * MS).await;
        tx.send(Kernel).unwrap();
        // The daemon was busy with a pass for 150 ms; the edit has been quiet since 30 ms.
        advance(120 * MS).await;
        let burst = debounce_200ms()
            .next_burst(&mut rx, Pending::default())
            .await;
        assert_eq!(burst, Some(Burst::from_iter([File, Kernel])));
        assert_eq!(t0.elapsed(), 230 * MS);

        // Read after its quiet time is over, a burst is acted on at once.
        tx.send(File).unwrap();
        advance(500 * MS).await;
        let read = Instant::now();
        let burst = debounce_200ms()
            .next_burst(&mut rx, Pending::default())
            .await;
        assert_eq!(burst, Some(Burst::from_iter([File])));
        assert_eq!(read.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn kernel_events_settle_for_a_few_milliseconds_only() {
        let (tx, mut rx) = crate::watch::queue::channel();
        let t0 = Instant::now();
        // A burst with gaps shorter than the settle, as one `ip link del` makes.
        send_at(&tx, (0..10).map(|i| (i * 3, Kernel)).collect());
        let burst = debounce_200ms()
            .next_burst(&mut rx, Pending::default())
            .await;
        assert_eq!(burst, Some(Burst::from_iter([Kernel])));
        assert_eq!(t0.elapsed(), 27 * MS + KERNEL_SETTLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_event_makes_a_kernel_burst_wait_the_debounce() {
        let (tx, mut rx) = crate::watch::queue::channel();
        let t0 = Instant::now();
        send_at(&tx, vec![(0, Kernel), (3, File), (20, Kernel)]);
        let burst = debounce_200ms()
            .next_burst(&mut rx, Pending::default())
            .await;
        assert_eq!(burst, Some(Burst::from_iter([Kernel, File])));
        assert_eq!(t0.elapsed(), 220 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_gap_longer_than_the_debounce_splits_two_bursts() {
        let (tx, mut rx) = crate::watch::queue::channel();
        let d = debounce_200ms();
        let t0 = Instant::now();
        send_at(&tx, vec![(0, File), (250, Reload)]);
        assert_eq!(
            d.next_burst(&mut rx, Pending::default()).await,
            Some(Burst::from_iter([File]))
        );
        assert_eq!(t0.elapsed(), 200 * MS);
        // Nothing of the second burst has arrived yet at 249 ms.
        advance(49 * MS).await;
        assert_eq!(rx.try_recv(), None);
        assert_eq!(
            d.next_burst(&mut rx, Pending::default()).await,
            Some(Burst::from_iter([Reload]))
        );
        assert_eq!(t0.elapsed(), 250 * MS + KERNEL_SETTLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_is_cut_into_bursts_of_at_most_five_seconds() {
        let (tx, mut rx) = crate::watch::queue::channel();
        let d = debounce_200ms();
        let t0 = Instant::now();
        // An event every 70 ms: none falls on the 5 s marks.
        send_at(&tx, (0..=200).map(|i| (i * 70, File)).collect());
        assert!(d.next_burst(&mut rx, Pending::default()).await.is_some());
        assert_eq!(t0.elapsed(), LONGEST_BURST);
        // The stream goes on: the next burst begins with the next event (at 5,040 ms) and
        // ends 5 s after it.
        assert!(d.next_burst(&mut rx, Pending::default()).await.is_some());
        assert_eq!(t0.elapsed(), LONGEST_BURST * 2 + 40 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_the_burst_at_once() {
        let (tx, mut rx) = crate::watch::queue::channel();
        let t0 = Instant::now();
        send_at(&tx, vec![(0, File), (50, Stop), (60, File)]);
        let burst = debounce_200ms()
            .next_burst(&mut rx, Pending::default())
            .await;
        assert_eq!(burst, Some(Burst::from_iter([File, Stop])));
        assert_eq!(t0.elapsed(), 50 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pending_burst_does_not_wait_for_a_first_trigger() {
        let (_tx, mut rx) = crate::watch::queue::channel();
        let d = debounce_200ms();
        let t0 = Instant::now();
        let mut pending = Pending::default();
        pending.push(File, t0);
        assert_eq!(
            d.next_burst(&mut rx, pending).await,
            Some(Burst::from_iter([File]))
        );
        assert_eq!(t0.elapsed(), 200 * MS);

        let mut stop = Pending::default();
        stop.push(Stop, Instant::now());
        assert_eq!(
            d.next_burst(&mut rx, stop).await,
            Some(Burst::from_iter([Stop]))
        );
        assert_eq!(t0.elapsed(), 200 * MS, "a pending stop does not wait");
    }

    #[tokio::test(start_paused = true)]
    async fn no_burst_once_every_sender_is_gone() {
        let (tx, mut rx) = crate::watch::queue::channel();
        drop(tx);
        assert_eq!(
            debounce_200ms()
                .next_burst(&mut rx, Pending::default())
                .await,
            None
        );
    }
}
