//! Provider health: what `watch` probes, and how a provider held down looks in the kernel.
//!
//! A provider with `health:` is probed with ICMP echo through its own path (its mark, its
//! interface, its local address). After `down` failed rounds it is held down the way
//! `shorewall disable` takes a provider out: it leaves the balanced and fallback defaults, and
//! its `from` rule and route rules go, so that traffic marked for it follows the remaining
//! providers. Its table stays, and its mark rule stays narrowed to `oif` its interface: only
//! sockets bound to that interface (the probes) still match it, so the probes keep testing
//! the provider's own gateway while it is out of service and see it come back.
//!
//! That narrowed rule is also how a provider held down is told from drift by a process that
//! does not run the probes (`check`): netconverge writes it for nothing else, with its
//! protocol, so the kernel itself records which providers `watch` holds down.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::{Provider, Providers, MARK_RULE_BASE};
use crate::model::{Family, RuleAction, RuleKey, State};

/// A provider's health checks (`health:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// The addresses probed through the provider; empty: its gateway.
    pub targets: Vec<Ipv4Addr>,
    /// Time between the starts of two rounds.
    pub interval: Duration,
    /// How long a probe waits for its answer.
    pub timeout: Duration,
    /// Consecutive failed rounds that take the provider out.
    pub down: u32,
    /// Consecutive good rounds that bring it back.
    pub up: u32,
}

impl Default for Health {
    /// One probe a second, 800 ms to answer, three rounds either way: a path that dies is
    /// out of service at most `down × interval + timeout` = 3.8 s after its last answer, which
    /// leaves the pass that takes it out (milliseconds) inside the 4 s bound.
    fn default() -> Self {
        Health {
            targets: Vec::new(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(800),
            down: 3,
            up: 3,
        }
    }
}

impl Health {
    /// What is probed for provider `p`: the targets, or its gateway (once known).
    pub fn targets_of(&self, p: &Provider) -> Vec<Ipv4Addr> {
        if self.targets.is_empty() {
            p.gateway.into_iter().collect()
        } else {
            self.targets.clone()
        }
    }
}

/// The selector of provider `p`'s mark rule while it is held down (`None` without a mark).
pub fn probe_rule(p: &Provider, mask: u32) -> Option<RuleKey> {
    let mark = p.mark?;
    Some(RuleKey {
        fwmark: Some((mark, mask)),
        oif: Some(p.interface.clone()),
        ..RuleKey::all(MARK_RULE_BASE + p.number - 1, Family::Inet)
    })
}

/// The providers with health checks that `observed` shows held down: their narrowed mark rule
/// is there, netconverge's, looking up their table.
pub fn held_in<'a>(p: &'a Providers, observed: &State) -> Vec<&'a Provider> {
    p.providers
        .iter()
        .filter(|x| x.health.is_some())
        .filter(|x| {
            probe_rule(x, p.options.mask)
                .and_then(|k| observed.rules.get(&k))
                .is_some_and(|r| r.owned && r.action == RuleAction::Lookup(x.number))
        })
        .collect()
}

/// Which of the providers in `down` (those failing their probes) are held down: all of them,
/// unless that would leave no balanced provider in service. Then none is: when every path
/// fails its probes the fault is more likely the targets', and taking every default route
/// away would gain nothing.
pub fn to_hold<'a>(p: &Providers, down: &BTreeSet<&'a str>) -> BTreeSet<&'a str> {
    let balanced = p.providers.iter().filter(|x| x.balance.is_some());
    let mut serving = balanced.clone().filter(|x| !down.contains(x.name.as_str()));
    if balanced.count() > 0 && serving.next().is_none() {
        return BTreeSet::new();
    }
    down.clone()
}
