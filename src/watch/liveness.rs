//! Is the daemon alive, and has it finished its first pass? The loop's own answer, for the
//! `/healthz` and `/readyz` endpoints (and anything else that must not report a wedged daemon
//! as healthy).
//!
//! A ticker task in the daemon's runtime beats every [`BEAT`]: the runtime is single-threaded,
//! so a pass that blocks it (a hung kernel call) stops the beats too. Waiting for triggers for
//! hours is not a failure, which is why the loop's iterations are not the heartbeat.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often the ticker beats.
pub const BEAT: Duration = Duration::from_secs(1);

/// Beats missed for this long make the daemon unhealthy.
pub const STALE: Duration = Duration::from_secs(30);

/// The heartbeat and the readiness flag, shared between the daemon and its observers.
#[derive(Debug, Default)]
pub struct Liveness {
    /// Unix time of the last beat, in milliseconds (0: never).
    last_beat_ms: AtomicU64,
    ready: AtomicBool,
}

impl Liveness {
    /// Record a beat now.
    pub fn beat(&self) {
        self.last_beat_ms.store(unix_ms(), Ordering::Relaxed);
    }

    /// The first pass is over (whatever its result): the daemon is ready.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// True once the first pass is over.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// True when the last beat is younger than [`STALE`] at `now_ms` (Unix milliseconds).
    pub fn alive_at(&self, now_ms: u64) -> bool {
        let last = self.last_beat_ms.load(Ordering::Relaxed);
        last != 0 && now_ms.saturating_sub(last) < STALE.as_millis() as u64
    }

    /// True when the last beat is recent.
    pub fn alive(&self) -> bool {
        self.alive_at(unix_ms())
    }

    /// Beat every [`BEAT`] from a task of the current (the daemon's) runtime, until the
    /// runtime ends.
    pub fn spawn_ticker(self: &Arc<Self>) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(BEAT);
            loop {
                tick.tick().await;
                me.beat();
            }
        });
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alive_only_within_the_stale_bound_of_a_beat() {
        let l = Liveness::default();
        assert!(!l.alive_at(1_000_000), "never beaten");
        l.last_beat_ms.store(1_000_000, Ordering::Relaxed);
        assert!(l.alive_at(1_000_000 + STALE.as_millis() as u64 - 1));
        assert!(!l.alive_at(1_000_000 + STALE.as_millis() as u64));
    }

    #[tokio::test(start_paused = true)]
    async fn the_ticker_beats_and_ready_is_set_once() {
        let l = Arc::new(Liveness::default());
        assert!(!l.ready());
        l.spawn_ticker();
        tokio::time::sleep(BEAT).await;
        assert!(l.alive());
        l.set_ready();
        assert!(l.ready());
    }
}
