//! Provider health in the daemon: one task per provider with `health:` sends a round of
//! probes every `interval` through the provider's path ([`probe`]), feeds it to the
//! provider's state machine ([`machine`]), keeps the provider metrics current, logs each
//! transition and, on one, wakes the daemon ([`Trigger::Health`]), whose next pass plans with
//! the providers held down taken out of service
//! ([`crate::desired::HealthView::Held`]).
//!
//! With the defaults (1 s interval, 800 ms timeout, 3 rounds) a path that dies is out of
//! service at most `down × interval + timeout` = 3.8 s after its last answer, plus the pass
//! (milliseconds): within 4 s.

pub mod machine;
pub mod probe;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use reconcilers::providers::{Health, Provider, Providers};
use tokio::task::JoinHandle;
use tokio::time::{interval, MissedTickBehavior};

use super::metrics::{Metrics, ProviderLabel};
use super::queue::Sender;
use super::trigger::Trigger;
use machine::{Round, Tracker, Transition};
use probe::{Path, Prober};

/// What one provider's task needs: its name, its checks and its path.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Watched {
    name: String,
    health: Health,
    targets: Vec<Ipv4Addr>,
    path: Path,
}

impl Watched {
    /// `None` without `health:`, or (never with `detect`, which the loader refuses beside
    /// `health`) while the local address is not known.
    fn of(p: &Provider) -> Option<Watched> {
        let health = p.health.clone()?;
        let local = p.local?;
        Some(Watched {
            name: p.name.clone(),
            targets: health.targets_of(p),
            path: Path {
                // A provider with `health:` always has a mark (the loader assigns one).
                mark: p.mark.unwrap_or_default(),
                interface: p.interface.clone(),
                local,
            },
            health,
        })
    }
}

/// The probing of every provider with `health:`.
pub struct Monitor {
    prober: Arc<dyn Prober>,
    metrics: Arc<Metrics>,
    tx: Sender,
    /// Which providers are out of service, shared with the tasks.
    down: Arc<Mutex<BTreeSet<String>>>,
    tasks: Vec<(Watched, JoinHandle<()>)>,
}

impl Monitor {
    /// A monitor probing with `prober` and waking the daemon through `tx`.
    pub fn new(prober: Arc<dyn Prober>, metrics: Arc<Metrics>, tx: Sender) -> Monitor {
        Monitor {
            prober,
            metrics,
            tx,
            down: Arc::default(),
            tasks: Vec::new(),
        }
    }

    /// The providers failing their probes now.
    pub fn down(&self) -> BTreeSet<String> {
        self.down.lock().expect("health state").clone()
    }

    /// Probe the providers of `p` that have `health:` (after a load). A provider whose
    /// checks and path are unchanged keeps its task and its state; a new or changed one
    /// starts out of service when `held` (the kernel shows it held down), in service
    /// otherwise; the tasks of providers no longer declared stop.
    pub fn configure(&mut self, p: &Providers, held: &BTreeSet<String>) {
        let wanted: Vec<Watched> = p.providers.iter().filter_map(Watched::of).collect();
        let mut kept = Vec::new();
        for (w, task) in std::mem::take(&mut self.tasks) {
            if wanted.contains(&w) {
                kept.push((w, task));
            } else {
                task.abort();
                self.down.lock().expect("health state").remove(&w.name);
                self.metrics.provider_up.remove(&label(&w.name));
            }
        }
        for w in wanted {
            if kept.iter().any(|(k, _)| *k == w) {
                continue;
            }
            let in_service = !held.contains(&w.name);
            set_state(&w.name, in_service, &self.metrics, &self.down);
            let task = tokio::spawn(watch_one(
                w.clone(),
                in_service,
                Arc::clone(&self.prober),
                Arc::clone(&self.metrics),
                Arc::clone(&self.down),
                self.tx.clone(),
            ));
            kept.push((w, task));
        }
        self.tasks = kept;
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
    }
}

fn label(name: &str) -> ProviderLabel {
    ProviderLabel {
        provider: name.to_string(),
    }
}

/// One provider's loop: a round every interval, until aborted.
async fn watch_one(
    w: Watched,
    in_service: bool,
    prober: Arc<dyn Prober>,
    metrics: Arc<Metrics>,
    down: Arc<Mutex<BTreeSet<String>>>,
    tx: Sender,
) {
    let mut tracker = Tracker::new(w.health.down, w.health.up, in_service);
    let mut tick = interval(w.health.interval);
    // A round longer than the interval (timeout > interval) delays the next one.
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let r = round(&w, prober.as_ref()).await;
        count_round(&mut tracker, &r, &w, &metrics, &down, &tx);
        let l = label(&w.name);
        metrics.provider_loss.get_or_create(&l).set(tracker.loss());
        if let Some(rtt) = tracker.rtt() {
            metrics
                .provider_rtt
                .get_or_create(&l)
                .set(rtt.as_secs_f64());
        }
    }
}

/// Count the round; on a transition log it, record it and wake the daemon.
fn count_round(
    tracker: &mut Tracker,
    r: &Round,
    w: &Watched,
    metrics: &Metrics,
    down: &Mutex<BTreeSet<String>>,
    tx: &Sender,
) {
    match tracker.record(r) {
        Some(Transition::Down) => {
            tracing::warn!(
                "provider {} is down: {} rounds of probes failed ({}); taking it out of service",
                w.name,
                w.health.down,
                r.failures.join("; ")
            );
            set_state(&w.name, false, metrics, down);
            let _ = tx.send(Trigger::Health);
        }
        Some(Transition::Up) => {
            tracing::info!(
                "provider {} is up: {} rounds of probes answered; putting it back in service",
                w.name,
                w.health.up
            );
            set_state(&w.name, true, metrics, down);
            let _ = tx.send(Trigger::Health);
        }
        None => {}
    }
}

fn set_state(name: &str, in_service: bool, metrics: &Metrics, down: &Mutex<BTreeSet<String>>) {
    let mut d = down.lock().expect("health state");
    if in_service {
        d.remove(name);
    } else {
        d.insert(name.to_string());
    }
    let l = label(name);
    metrics
        .provider_up
        .get_or_create(&l)
        .set(i64::from(in_service));
    metrics
        .provider_last_change
        .get_or_create(&l)
        .set(super::unix_now());
}

/// One probe per target, concurrently.
async fn round(w: &Watched, prober: &dyn Prober) -> Round {
    let probes = w
        .targets
        .iter()
        .map(|t| prober.probe(&w.path, *t, w.health.timeout));
    let results = futures::future::join_all(probes).await;
    let mut r = Round {
        sent: results.len(),
        ..Round::default()
    };
    for (t, res) in w.targets.iter().zip(results) {
        match res {
            Ok(rtt) => r.answered.push(rtt),
            Err(e) => r.failures.push(format!("{t}: {e}")),
        }
    }
    r
}

#[cfg(test)]
pub(crate) mod tests;
