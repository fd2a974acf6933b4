//! The up/down state machine of one provider: consecutive failed rounds take it out of
//! service, consecutive good rounds bring it back (mwan3's `down`/`up` counts, LSM's
//! hysteresis), and the loss and round-trip time of its recent probes.

use std::collections::VecDeque;
use std::time::Duration;

/// How many recent probes the loss ratio is taken over.
pub const LOSS_WINDOW: usize = 20;

/// What one round of probes (one per target) gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Round {
    /// Probes sent.
    pub sent: usize,
    /// The round-trip times of the probes answered.
    pub answered: Vec<Duration>,
    /// Why the probes that failed failed, in words (for the log).
    pub failures: Vec<String>,
}

impl Round {
    /// A round is good when any target answered: one target down behind a live path is the
    /// target's fault, not the provider's.
    pub fn good(&self) -> bool {
        !self.answered.is_empty()
    }
}

/// A change of a provider's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// `down` rounds failed in a row: take it out of service.
    Down,
    /// `up` rounds were good in a row: put it back.
    Up,
}

/// One provider's health.
#[derive(Clone, Debug)]
pub struct Tracker {
    down: u32,
    up: u32,
    in_service: bool,
    /// Consecutive rounds that disagree with the current state.
    streak: u32,
    recent: VecDeque<bool>,
    rtt: Option<Duration>,
}

impl Tracker {
    /// A tracker taking the provider out after `down` failed rounds and back after `up` good
    /// ones, starting in service or not.
    pub fn new(down: u32, up: u32, in_service: bool) -> Tracker {
        Tracker {
            down: down.max(1),
            up: up.max(1),
            in_service,
            streak: 0,
            recent: VecDeque::with_capacity(LOSS_WINDOW),
            rtt: None,
        }
    }

    /// Whether the provider is in service.
    pub fn in_service(&self) -> bool {
        self.in_service
    }

    /// Count a round; the transition it completes, if any.
    pub fn record(&mut self, round: &Round) -> Option<Transition> {
        for i in 0..round.sent {
            if self.recent.len() == LOSS_WINDOW {
                self.recent.pop_front();
            }
            self.recent.push_back(i < round.answered.len());
        }
        if let Some(rtt) = round.answered.iter().min() {
            self.rtt = Some(*rtt);
        }
        if round.good() == self.in_service {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if self.in_service { self.down } else { self.up };
        if self.streak < needed {
            return None;
        }
        self.streak = 0;
        self.in_service = !self.in_service;
        Some(if self.in_service {
            Transition::Up
        } else {
            Transition::Down
        })
    }

    /// The share of the recent probes that were lost (0 before any probe).
    pub fn loss(&self) -> f64 {
        if self.recent.is_empty() {
            return 0.0;
        }
        let lost = self.recent.iter().filter(|ok| !**ok).count();
        lost as f64 / self.recent.len() as f64
    }

    /// The round-trip time of the last round that had an answer.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Round {
        Round {
            sent: 1,
            answered: vec![Duration::from_millis(3)],
            failures: vec![],
        }
    }

    fn bad() -> Round {
        Round {
            sent: 1,
            answered: vec![],
            failures: vec!["timeout".into()],
        }
    }

    #[test]
    fn down_after_exactly_down_failed_rounds_and_up_after_up_good_ones() {
        let mut t = Tracker::new(3, 2, true);
        assert_eq!(t.record(&bad()), None);
        assert_eq!(t.record(&bad()), None);
        assert!(t.in_service());
        assert_eq!(t.record(&bad()), Some(Transition::Down));
        assert!(!t.in_service());
        assert_eq!(t.record(&bad()), None, "already down");
        assert_eq!(t.record(&good()), None);
        assert_eq!(t.record(&good()), Some(Transition::Up));
        assert!(t.in_service());
    }

    #[test]
    fn a_good_round_between_failures_starts_the_count_again() {
        let mut t = Tracker::new(3, 3, true);
        for _ in 0..5 {
            assert_eq!(t.record(&bad()), None);
            assert_eq!(t.record(&bad()), None);
            assert_eq!(t.record(&good()), None);
        }
        assert!(t.in_service());
        let mut t = Tracker::new(3, 3, false);
        for _ in 0..5 {
            assert_eq!(t.record(&good()), None);
            assert_eq!(t.record(&good()), None);
            assert_eq!(t.record(&bad()), None);
        }
        assert!(!t.in_service(), "flapping never brings it back");
    }

    #[test]
    fn one_answered_target_makes_a_good_round() {
        let mut t = Tracker::new(1, 1, true);
        let half = Round {
            sent: 2,
            answered: vec![Duration::from_millis(9)],
            failures: vec!["timeout".into()],
        };
        assert!(half.good());
        assert_eq!(t.record(&half), None);
        assert_eq!(t.loss(), 0.5);
        assert_eq!(t.rtt(), Some(Duration::from_millis(9)));
    }

    #[test]
    fn loss_is_taken_over_the_last_window_of_probes() {
        let mut t = Tracker::new(100, 1, true);
        assert_eq!(t.loss(), 0.0);
        for _ in 0..LOSS_WINDOW {
            t.record(&bad());
        }
        assert_eq!(t.loss(), 1.0);
        for _ in 0..LOSS_WINDOW / 4 {
            t.record(&good());
        }
        assert_eq!(t.loss(), 0.75);
        assert_eq!(t.rtt(), Some(Duration::from_millis(3)));
    }
}
