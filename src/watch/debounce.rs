//! The debounce: how long the daemon waits for a burst of triggers to end before it acts.
//!
//! Editors, `git pull` and ConfigMap swaps write in bursts, and one `ip link del` makes the
//! kernel announce dozens of changes; acting on the first event of a burst would plan against
//! a half-written directory or a kernel still busy. So the daemon waits until the triggers
//! stop for a quiet time: the (configurable) debounce once a file event is in the burst,
//! otherwise a short settle, so drift is still repaired within milliseconds.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

use super::trigger::{Burst, Trigger};

/// Quiet time after a kernel event: short, so drift is repaired fast, but long enough to
/// coalesce the dozens of events one `ip link del` produces.
pub const KERNEL_SETTLE: Duration = Duration::from_millis(15);

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
    /// `pending` is what arrived before (triggers kept while draining echoes): when it is not
    /// empty the burst has already begun. Returns `None` only when nothing is pending and
    /// every sender is gone.
    pub async fn next_burst(
        &self,
        rx: &mut mpsc::UnboundedReceiver<Trigger>,
        pending: Burst,
    ) -> Option<Burst> {
        let mut burst = pending;
        if burst.is_empty() {
            burst.push(rx.recv().await?);
        }
        let deadline = Instant::now() + self.longest;
        while !burst.contains(Trigger::Stop)
            && !burst.contains(Trigger::Gone)
            && Instant::now() < deadline
        {
            match timeout(self.quiet(burst), rx.recv()).await {
                Ok(Some(t)) => burst.push(t),
                Ok(None) | Err(_) => break,
            }
        }
        Some(burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{advance, sleep_until};
    use Trigger::*;

    const MS: Duration = Duration::from_millis(1);

    /// Send each trigger at its offset from now, from a task of its own as a real source does.
    fn send_at(tx: &mpsc::UnboundedSender<Trigger>, schedule: Vec<(u64, Trigger)>) {
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
        let (tx, mut rx) = mpsc::unbounded_channel();
        let t0 = Instant::now();
        send_at(&tx, (0..5).map(|i| (i * 50, File)).collect());
        let burst = debounce_200ms().next_burst(&mut rx, Burst::default()).await;
        assert_eq!(burst, Some(Burst::from_iter([File])));
        // The last event came at 200 ms; the burst ends 200 ms later, not before, not after.
        assert_eq!(t0.elapsed(), 400 * MS);
        assert!(
            rx.try_recv().is_err(),
            "all five events are in the one burst"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn kernel_events_settle_for_15ms_only() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let t0 = Instant::now();
        send_at(&tx, (0..10).map(|i| (i * 5, Kernel)).collect());
        let burst = debounce_200ms().next_burst(&mut rx, Burst::default()).await;
        assert_eq!(burst, Some(Burst::from_iter([Kernel])));
        assert_eq!(t0.elapsed(), 45 * MS + KERNEL_SETTLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_event_makes_a_kernel_burst_wait_the_debounce() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let t0 = Instant::now();
        send_at(&tx, vec![(0, Kernel), (10, File), (20, Kernel)]);
        let burst = debounce_200ms().next_burst(&mut rx, Burst::default()).await;
        assert_eq!(burst, Some(Burst::from_iter([Kernel, File])));
        assert_eq!(t0.elapsed(), 220 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_gap_longer_than_the_debounce_splits_two_bursts() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let d = debounce_200ms();
        let t0 = Instant::now();
        send_at(&tx, vec![(0, File), (250, Reload)]);
        assert_eq!(
            d.next_burst(&mut rx, Burst::default()).await,
            Some(Burst::from_iter([File]))
        );
        assert_eq!(t0.elapsed(), 200 * MS);
        // Nothing of the second burst has arrived yet at 249 ms.
        advance(49 * MS).await;
        assert!(rx.try_recv().is_err());
        assert_eq!(
            d.next_burst(&mut rx, Burst::default()).await,
            Some(Burst::from_iter([Reload]))
        );
        assert_eq!(t0.elapsed(), 250 * MS + KERNEL_SETTLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_is_cut_into_bursts_of_at_most_five_seconds() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let d = debounce_200ms();
        let t0 = Instant::now();
        send_at(&tx, (0..=200).map(|i| (i * 100, File)).collect());
        assert!(d.next_burst(&mut rx, Burst::default()).await.is_some());
        assert_eq!(t0.elapsed(), LONGEST_BURST);
        // The stream goes on: the next burst begins with the next event, 5 s later again.
        assert!(d.next_burst(&mut rx, Burst::default()).await.is_some());
        assert_eq!(t0.elapsed(), LONGEST_BURST * 2 + 100 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_the_burst_at_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let t0 = Instant::now();
        send_at(&tx, vec![(0, File), (50, Stop), (60, File)]);
        let burst = debounce_200ms().next_burst(&mut rx, Burst::default()).await;
        assert_eq!(burst, Some(Burst::from_iter([File, Stop])));
        assert_eq!(t0.elapsed(), 50 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pending_burst_does_not_wait_for_a_first_trigger() {
        let (_tx, mut rx) = mpsc::unbounded_channel();
        let d = debounce_200ms();
        let t0 = Instant::now();
        let pending = Burst::from_iter([File]);
        assert_eq!(d.next_burst(&mut rx, pending).await, Some(pending));
        assert_eq!(t0.elapsed(), 200 * MS);

        let stop = Burst::from_iter([Stop]);
        assert_eq!(d.next_burst(&mut rx, stop).await, Some(stop));
        assert_eq!(t0.elapsed(), 200 * MS, "a pending stop does not wait");
    }

    #[tokio::test(start_paused = true)]
    async fn no_burst_once_every_sender_is_gone() {
        let (tx, mut rx) = mpsc::unbounded_channel::<Trigger>();
        drop(tx);
        assert_eq!(
            debounce_200ms().next_burst(&mut rx, Burst::default()).await,
            None
        );
    }
}
