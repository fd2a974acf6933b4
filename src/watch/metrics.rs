//! What the daemon counts, in Prometheus terms: passes, failures, writes, drift and repairs
//! per kind, fights, taps recreated under a process, and each provider's health.
//!
//! One [`Metrics`] is shared (behind an `Arc`) by the daemon loop that updates it and whatever
//! exposes it (the `/metrics` endpoint, the status file). The exposition is the
//! `prometheus-client` crate's, so names, types, `# HELP` lines and escaping follow the
//! OpenMetrics rules without hand-written text.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use reconcilers::model::object::ObjectKind;
use reconcilers::plan::Plan;

/// A label naming an object kind (`link`, `route`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The kind's name, as the plan prints it.
    pub kind: String,
}

/// A label naming a link (for taps recreated under a process).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LinkLabel {
    /// The link's name.
    pub link: String,
}

/// A label naming a provider.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabel {
    /// The provider's name in the desired state.
    pub provider: String,
}

/// A gauge holding a float (seconds, ratios).
pub type FloatGauge = Gauge<f64, AtomicU64>;

/// The daemon's metrics. Every field is a cheap handle: update it directly.
pub struct Metrics {
    registry: Registry,
    /// Passes run (observe → plan → apply), whatever their result.
    pub passes: Counter,
    /// Passes that failed: a write failed, or the pass could not be planned or was refused.
    pub failures: Counter,
    /// Netlink and sysctl write requests sent.
    pub writes: Counter,
    /// Objects that differed from the desired state at the last pass, per kind.
    pub drift: Family<KindLabel, Gauge>,
    /// Objects repaired after a kernel event or the resync (not after a file change), per kind.
    pub repairs: Family<KindLabel, Counter>,
    /// Unix time of the last pass that ended with the kernel as desired.
    pub last_success: FloatGauge,
    /// Objects found being fought over (see `watch::fight`).
    pub fights: Counter,
    /// Taps recreated while a process (a VM) still held the deleted one open: that process
    /// must reattach.
    pub tap_reattach: Family<LinkLabel, Counter>,
    /// 1 while a provider is in service, 0 while its health checks hold it down.
    pub provider_up: Family<ProviderLabel, Gauge>,
    /// Unix time of a provider's last change of state.
    pub provider_last_change: Family<ProviderLabel, FloatGauge>,
    /// Share of a provider's probes lost over its recent rounds (0 to 1).
    pub provider_loss: Family<ProviderLabel, FloatGauge>,
    /// Round-trip time of a provider's last answered probe, in seconds.
    pub provider_rtt: Family<ProviderLabel, FloatGauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All metrics at zero, registered under the `netconverge_` prefix.
    pub fn new() -> Self {
        let mut m = Metrics {
            registry: Registry::with_prefix("netconverge"),
            passes: Counter::default(),
            failures: Counter::default(),
            writes: Counter::default(),
            drift: Family::default(),
            repairs: Family::default(),
            last_success: FloatGauge::default(),
            fights: Counter::default(),
            tap_reattach: Family::default(),
            provider_up: Family::default(),
            provider_last_change: Family::default(),
            provider_loss: Family::default(),
            provider_rtt: Family::default(),
        };
        m.register();
        m
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register("passes", "Passes run", self.passes.clone());
        r.register("pass_failures", "Passes that failed", self.failures.clone());
        r.register("writes", "Kernel write requests sent", self.writes.clone());
        r.register(
            "drift_objects",
            "Objects that differed from the desired state at the last pass",
            self.drift.clone(),
        );
        r.register(
            "repairs",
            "Objects repaired after a kernel event or the resync",
            self.repairs.clone(),
        );
        r.register(
            "last_success_timestamp_seconds",
            "Unix time of the last pass that left the kernel as desired",
            self.last_success.clone(),
        );
        r.register(
            "fights",
            "Objects found being undone repeatedly by something else",
            self.fights.clone(),
        );
        r.register(
            "tap_reattach_needed",
            "Taps recreated while a process held the deleted one open",
            self.tap_reattach.clone(),
        );
        self.register_providers();
    }

    fn register_providers(&mut self) {
        let r = &mut self.registry;
        r.register(
            "provider_up",
            "1 while a provider is in service, 0 while health checks hold it down",
            self.provider_up.clone(),
        );
        r.register(
            "provider_last_change_timestamp_seconds",
            "Unix time of a provider's last change of state",
            self.provider_last_change.clone(),
        );
        r.register(
            "provider_probe_loss_ratio",
            "Share of a provider's recent probes that were lost",
            self.provider_loss.clone(),
        );
        r.register(
            "provider_probe_rtt_seconds",
            "Round-trip time of a provider's last answered probe",
            self.provider_rtt.clone(),
        );
    }

    /// Record the drift a pass found: every kind's gauge is set, zero for the kinds in sync
    /// (a kind that drifted and was repaired goes back to zero at the next pass).
    pub fn record_drift(&self, plan: &Plan) {
        for kind in ObjectKind::ALL {
            let n = plan
                .changes
                .iter()
                .filter(|c| c.object.kind == kind)
                .count();
            self.drift.get_or_create(&kind_label(kind)).set(n as i64);
        }
    }

    /// Count the repairs of a pass that answered drift.
    pub fn record_repairs(&self, plan: &Plan) {
        for c in &plan.changes {
            self.repairs.get_or_create(&kind_label(c.object.kind)).inc();
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut s = String::new();
        encode(&mut s, &self.registry).expect("writing to a String cannot fail");
        s
    }
}

fn kind_label(kind: ObjectKind) -> KindLabel {
    KindLabel {
        kind: kind.name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_with_its_prefix_and_help() {
        let m = Metrics::new();
        m.passes.inc();
        m.fights.inc_by(2);
        m.provider_up
            .get_or_create(&ProviderLabel {
                provider: "wrt".into(),
            })
            .set(1);
        let text = m.render();
        assert!(text.contains("netconverge_passes_total 1"), "{text}");
        assert!(text.contains("netconverge_fights_total 2"), "{text}");
        assert!(
            text.contains("netconverge_provider_up{provider=\"wrt\"} 1"),
            "{text}"
        );
        assert!(text.contains("# HELP netconverge_writes Kernel write requests sent"));
    }

    #[test]
    fn drift_is_set_per_kind_and_zero_where_in_sync() {
        let m = Metrics::new();
        m.record_drift(&Plan::default());
        let text = m.render();
        assert!(
            text.contains("netconverge_drift_objects{kind=\"route\"} 0"),
            "{text}"
        );
    }
}
