//! Fight detection: something keeps undoing a managed object (another tool, a script, a
//! person), and each repair only invites the next undo. An object repaired more than
//! [`FIGHT_LIMIT`] times within [`FIGHT_WINDOW`] is in a fight: the daemon logs it by name,
//! counts it, and damps its repairs to the retry backoff instead of answering every undo.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use reconcilers::model::object::ObjectRef;
use tokio::time::Instant;

/// Repairs of one object within the window that are still not a fight.
pub const FIGHT_LIMIT: usize = 5;
/// The window the repairs are counted in.
pub const FIGHT_WINDOW: Duration = Duration::from_secs(60);

/// Recent repairs per object, and how many fights were seen.
#[derive(Debug, Default)]
pub struct Fights {
    repairs: BTreeMap<ObjectRef, VecDeque<Instant>>,
    /// Fights seen since the start (`netconverge_fights_total`): one per object and
    /// window in which it went over the limit.
    pub total: u64,
}

impl Fights {
    /// Record that `objects` were repaired at `now`; returns those now in a fight with their
    /// repair count in the window. An object already in a fight is reported (and counted)
    /// again only once its earlier repairs have left the window.
    pub fn record<'a>(
        &mut self,
        objects: impl IntoIterator<Item = &'a ObjectRef>,
        now: Instant,
    ) -> Vec<(ObjectRef, usize)> {
        let mut fights = Vec::new();
        for o in objects {
            let times = self.repairs.entry(o.clone()).or_default();
            while times.front().is_some_and(|t| now - *t >= FIGHT_WINDOW) {
                times.pop_front();
            }
            times.push_back(now);
            if times.len() == FIGHT_LIMIT + 1 {
                self.total += 1;
                fights.push((o.clone(), times.len()));
            }
        }
        fights
    }

    /// True while some object has more than the limit of repairs in the window.
    pub fn ongoing(&self, now: Instant) -> bool {
        self.repairs
            .values()
            .any(|t| t.iter().filter(|at| now - **at < FIGHT_WINDOW).count() > FIGHT_LIMIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    #[tokio::test(start_paused = true)]
    async fn the_sixth_repair_within_a_minute_is_a_fight_named_once() {
        let mut f = Fights::default();
        let tap = ObjectRef::link("tap0");
        let br = ObjectRef::link("br0");
        for _ in 0..FIGHT_LIMIT {
            assert!(f.record([&tap], Instant::now()).is_empty());
            advance(Duration::from_secs(5)).await;
        }
        assert!(!f.ongoing(Instant::now()));
        assert_eq!(f.record([&tap, &br], Instant::now()), [(tap.clone(), 6)]);
        assert!(f.ongoing(Instant::now()));
        assert!(f.record([&tap], Instant::now()).is_empty(), "named once");
        assert_eq!(f.total, 1);
        // A minute without repairs: over.
        advance(FIGHT_WINDOW).await;
        assert!(!f.ongoing(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn repairs_spread_wider_than_the_window_are_no_fight() {
        let mut f = Fights::default();
        let tap = ObjectRef::link("tap0");
        for _ in 0..20 {
            assert!(f.record([&tap], Instant::now()).is_empty());
            advance(Duration::from_secs(13)).await;
        }
        assert_eq!(f.total, 0);
    }
}
