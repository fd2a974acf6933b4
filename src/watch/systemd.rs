//! systemd integration for a `Type=notify` unit (sd_notify(3), through the `sd-notify` crate):
//! `READY=1` after the first pass, `STATUS=` after every pass, `RELOADING=1` on SIGHUP,
//! `STOPPING=1` on a stop, and `WATCHDOG=1` at half of `WatchdogSec=` from a task that pings
//! only while the daemon's loop is alive ([`Heartbeat`], [`watchdog`]).
//!
//! The pings come from their own task rather than from the loop, which spends most of its life
//! waiting for a trigger (the resync is minutes apart); the loop's heartbeat says whether it is
//! waiting or since when it has been busy, and a pass busy for longer than `WatchdogSec=` is
//! taken as hung: the pings stop and systemd restarts the daemon. A loop that has returned (or
//! a thread blocked in a system call, which also stops the single-threaded runtime the task
//! runs on) stops the pings too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

pub use sd_notify::NotifyState;
use tokio::time::Instant;

/// Where the daemon's state is announced: the service manager, or a test's recorder.
pub trait Notifier: Send + Sync {
    /// Send these states in one message; failing to is not the daemon's concern.
    fn notify(&self, states: &[NotifyState<'_>]);
}

/// The service manager at `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket);
/// nothing is sent when it is unset.
pub struct Systemd;

impl Notifier for Systemd {
    fn notify(&self, states: &[NotifyState<'_>]) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::warn!("sd_notify failed: {e}");
        }
    }
}

/// `WatchdogSec=` of the unit, when systemd asks this process for pings.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}

/// The loop's sign of life: waiting for triggers, or busy (a pass) since some instant.
#[derive(Debug)]
pub struct Heartbeat {
    origin: Instant,
    /// 0 while waiting, else 1 + the milliseconds from `origin` to the start of the pass.
    busy_since: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            origin: Instant::now(),
            busy_since: AtomicU64::new(0),
        }
    }
}

impl Heartbeat {
    /// The loop starts working on a burst (or its first pass).
    pub fn busy(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.busy_since.store(ms + 1, Ordering::Relaxed);
    }

    /// The loop waits for triggers again.
    pub fn idle(&self) {
        self.busy_since.store(0, Ordering::Relaxed);
    }

    /// Is the loop waiting, or busy for less than `limit`?
    pub fn alive(&self, limit: Duration) -> bool {
        match self.busy_since.load(Ordering::Relaxed) {
            0 => true,
            n => {
                let since = self.origin + Duration::from_millis(n - 1);
                since.elapsed() < limit
            }
        }
    }
}

/// Ping `WATCHDOG=1` every half `interval` while the loop behind `heartbeat` is alive (see the
/// module's documentation); ends when the loop is gone.
pub fn watchdog(
    heartbeat: Weak<Heartbeat>,
    interval: Duration,
    notifier: Arc<dyn Notifier>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut hung = false;
        loop {
            tick.tick().await;
            let Some(beat) = heartbeat.upgrade() else {
                return;
            };
            if beat.alive(interval) {
                notifier.notify(&[NotifyState::Watchdog]);
                hung = false;
            } else if !hung {
                tracing::error!(
                    "a pass has run for more than {} s: no more watchdog pings, systemd will \
                     restart the daemon",
                    interval.as_secs_f64()
                );
                hung = true;
            }
        }
    })
}

/// What a `RELOADING=1` message carries: systemd ≥ 253 wants the monotonic time with it.
pub fn reloading(notifier: &dyn Notifier) {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notifier.notify(&[NotifyState::Reloading, now]),
        Err(_) => notifier.notify(&[NotifyState::Reloading]),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records every message, one string per message, lines joined by `\n`.
    #[derive(Default)]
    pub struct Recorder(pub Mutex<Vec<String>>);

    impl Notifier for Recorder {
        fn notify(&self, states: &[NotifyState<'_>]) {
            let msg: Vec<String> = states.iter().map(|s| s.to_string()).collect();
            self.0.lock().unwrap().push(msg.join("\n"));
        }
    }

    impl Recorder {
        pub fn count(&self, line: &str) -> usize {
            let msgs = self.0.lock().unwrap();
            msgs.iter().filter(|m| m.lines().any(|l| l == line)).count()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pings_at_half_the_interval_while_the_loop_waits_or_works() {
        let beat = Arc::new(Heartbeat::default());
        let rec = Arc::new(Recorder::default());
        let task = watchdog(Arc::downgrade(&beat), Duration::from_secs(10), rec.clone());
        // The first tick is at once, then every 5 s: 0, 5, 10, 15, 20.
        tokio::time::sleep(Duration::from_millis(20_100)).await;
        assert_eq!(rec.count("WATCHDOG=1"), 5);
        // A pass of 8 s is not hung: the ping at 25 s goes out.
        beat.busy();
        tokio::time::sleep(Duration::from_secs(8)).await;
        beat.idle();
        assert_eq!(rec.count("WATCHDOG=1"), 6);
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_pass_longer_than_the_interval_stops_the_pings_until_it_ends() {
        let beat = Arc::new(Heartbeat::default());
        let rec = Arc::new(Recorder::default());
        let task = watchdog(Arc::downgrade(&beat), Duration::from_secs(10), rec.clone());
        tokio::time::sleep(Duration::from_millis(100)).await;
        beat.busy();
        // Pings at 5 and 10 s (busy 5 s, 9.9 s), none at 15, 20, 25 (busy ≥ 10 s).
        tokio::time::sleep(Duration::from_secs(26)).await;
        assert_eq!(rec.count("WATCHDOG=1"), 3);
        beat.idle();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(rec.count("WATCHDOG=1"), 4);
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn the_pings_end_with_the_loop() {
        let beat = Arc::new(Heartbeat::default());
        let rec = Arc::new(Recorder::default());
        let task = watchdog(Arc::downgrade(&beat), Duration::from_secs(2), rec.clone());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(rec.count("WATCHDOG=1"), 2);
        drop(beat);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(task.is_finished());
        assert_eq!(rec.count("WATCHDOG=1"), 2);
    }

    #[test]
    fn reloading_carries_the_monotonic_time() {
        let rec = Recorder::default();
        reloading(&rec);
        let msgs = rec.0.lock().unwrap();
        assert!(
            msgs[0].starts_with("RELOADING=1\nMONOTONIC_USEC="),
            "{msgs:?}"
        );
    }
}
