//! The event filter: what wakes the daemon ([`Trigger`]), what a burst of triggers means
//! ([`Burst::action`]: stop, reload the files, or only re-plan), and the filter that drops the
//! kernel's echoes of the daemon's own writes ([`drain_echoes`]).
//!
//! A burst is a set, not a list: events only say *that* something changed, so twenty kernel
//! events ask for the same pass as one, and the order within a burst never matters.

use std::time::Duration;

use tokio::time::sleep;

use super::debounce::Pending;
use super::queue::Receiver;

/// Why the daemon wakes up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A file in the desired directory changed.
    File,
    /// The kernel reported a change.
    Kernel,
    /// SIGHUP: reload the files.
    Reload,
    /// The periodic resync.
    Resync,
    /// A failed apply's retry is due.
    Retry,
    /// SIGTERM/SIGINT.
    Stop,
    /// The network namespace being reconciled was deleted (or replaced by another of the
    /// same name).
    Gone,
    /// A provider's health checks took it out of service or put it back.
    Health,
}

impl Trigger {
    /// Every trigger, in the order of their bits.
    pub const ALL: [Trigger; 8] = [
        Trigger::File,
        Trigger::Kernel,
        Trigger::Reload,
        Trigger::Resync,
        Trigger::Retry,
        Trigger::Stop,
        Trigger::Gone,
        Trigger::Health,
    ];

    /// How `watch -o json` names the trigger.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::File => "file",
            Trigger::Kernel => "kernel",
            Trigger::Reload => "sighup",
            Trigger::Resync => "resync",
            Trigger::Retry => "retry",
            Trigger::Stop => "stop",
            Trigger::Gone => "gone",
            Trigger::Health => "health",
        }
    }
}

/// What the daemon does with a burst of triggers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Exit with an error: the namespace is gone, so the service manager restarts the
    /// daemon, which then reconciles the namespace of that name once it exists again.
    Gone,
    /// Exit: a stop wins over everything else in the burst, so SIGTERM is never delayed by
    /// the pass an edit would ask for.
    Stop,
    /// Read the files again, then run a pass.
    Reload,
    /// Run a pass on the desired state already loaded: the kernel, the resync tick, a retry
    /// and a provider's change of health say nothing about the files.
    Replan,
}

/// The triggers of one burst, coalesced into a set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Burst(u8);

impl Burst {
    /// Add a trigger (a second one of the same kind changes nothing).
    pub fn push(&mut self, t: Trigger) {
        self.0 |= Self::bit(t);
    }

    /// Whether the burst holds a trigger of this kind.
    pub fn contains(self, t: Trigger) -> bool {
        self.0 & Self::bit(t) != 0
    }

    /// True when nothing has arrived.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// What the burst asks the daemon to do.
    pub fn action(self) -> Action {
        if self.contains(Trigger::Gone) {
            Action::Gone
        } else if self.contains(Trigger::Stop) {
            Action::Stop
        } else if self.contains(Trigger::File) || self.contains(Trigger::Reload) {
            Action::Reload
        } else {
            Action::Replan
        }
    }

    /// The names of the triggers the burst holds.
    pub fn names(self) -> Vec<&'static str> {
        Trigger::ALL
            .into_iter()
            .filter(|t| self.contains(*t))
            .map(Trigger::name)
            .collect()
    }

    fn bit(t: Trigger) -> u8 {
        1 << t as u8
    }
}

impl FromIterator<Trigger> for Burst {
    fn from_iter<I: IntoIterator<Item = Trigger>>(iter: I) -> Self {
        let mut b = Burst::default();
        for t in iter {
            b.push(t);
        }
        b
    }
}

/// Wait `settle`, then drop the kernel events queued meanwhile and return the other triggers.
///
/// Called right after an apply: the kernel announces each of the daemon's own writes, and
/// re-planning on those echoes would only find nothing to do. A real change hidden among them
/// is caught by the verifying pass the daemon runs next, so dropping them loses nothing.
pub async fn drain_echoes(rx: &mut Receiver, settle: Duration) -> Pending {
    sleep(settle).await;
    let mut keep = Pending::default();
    while let Some((t, at)) = rx.try_recv_stamped() {
        if t != Trigger::Kernel {
            keep.push(t, at);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;
    use Trigger::*;

    const ALL: [Trigger; 8] = Trigger::ALL;

    #[test]
    fn a_burst_names_its_triggers_once_each_in_order() {
        assert_eq!(
            Burst::from_iter([Retry, File, Kernel, File]).names(),
            ["file", "kernel", "retry"]
        );
        let names: Vec<&str> = ALL.iter().map(|t| t.name()).collect();
        assert_eq!(Burst::from_iter(ALL).names(), names);
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), ALL.len());
    }

    #[test]
    fn each_trigger_has_its_own_place_in_a_burst() {
        for t in ALL {
            let b = Burst::from_iter([t]);
            for u in ALL {
                assert_eq!(b.contains(u), t == u, "{t:?} in a burst of {u:?}");
            }
        }
        assert!(Burst::default().is_empty());
        assert!(!Burst::from_iter([Kernel]).is_empty());
    }

    #[test]
    fn files_and_sighup_reload_the_rest_only_replans() {
        assert_eq!(Burst::from_iter([File]).action(), Action::Reload);
        assert_eq!(Burst::from_iter([Reload]).action(), Action::Reload);
        assert_eq!(Burst::from_iter([Kernel]).action(), Action::Replan);
        assert_eq!(Burst::from_iter([Resync]).action(), Action::Replan);
        assert_eq!(Burst::from_iter([Retry]).action(), Action::Replan);
        assert_eq!(
            Burst::from_iter([Kernel, Retry, File]).action(),
            Action::Reload
        );
    }

    #[test]
    fn a_stop_wins_over_everything_in_its_burst_but_a_lost_namespace() {
        assert_eq!(Burst::from_iter(ALL).action(), Action::Gone);
        assert_eq!(
            Burst::from_iter([File, Stop, Kernel]).action(),
            Action::Stop
        );
        assert_eq!(Burst::from_iter([File, Stop]).action(), Action::Stop);
    }

    #[test]
    fn a_burst_of_many_events_coalesces_to_one_of_each_kind() {
        let many: Burst = std::iter::repeat_n(Kernel, 1000)
            .chain([File, Kernel, File])
            .collect();
        assert_eq!(many, Burst::from_iter([File, Kernel]));
    }

    #[tokio::test(start_paused = true)]
    async fn drain_echoes_waits_the_settle_and_keeps_only_non_kernel_triggers() {
        let settle = Duration::from_millis(15);
        let (tx, mut rx) = crate::watch::queue::channel();
        let t0 = Instant::now();
        for t in [Kernel, Kernel, File, Kernel, Retry] {
            tx.send(t).unwrap();
        }
        // Echoes keep arriving during the settle: these are dropped too.
        let late = tx.clone();
        tokio::spawn(async move {
            sleep(Duration::from_millis(10)).await;
            late.send(Kernel).unwrap();
            late.send(Resync).unwrap();
        });
        let kept = drain_echoes(&mut rx, settle).await;
        assert_eq!(t0.elapsed(), settle);
        assert_eq!(kept.triggers, Burst::from_iter([File, Retry, Resync]));
        // The kept triggers keep their times: the first was sent at once, the last at 10 ms.
        assert_eq!(kept.sent, Some((t0, t0 + Duration::from_millis(10))));
        assert_eq!(rx.try_recv(), None, "the queue is drained");

        // What arrives after the settle is left for the next burst.
        tx.send(Kernel).unwrap();
        assert_eq!(rx.try_recv(), Some(Kernel));
    }

    #[tokio::test(start_paused = true)]
    async fn drain_echoes_of_echoes_only_is_empty() {
        let (tx, mut rx) = crate::watch::queue::channel();
        for _ in 0..50 {
            tx.send(Kernel).unwrap();
        }
        assert!(drain_echoes(&mut rx, Duration::from_millis(15))
            .await
            .is_empty());
    }
}
