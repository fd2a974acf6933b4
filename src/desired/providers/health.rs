//! A provider's `health:` block — the probes `watch` sends through the provider and how
//! many rounds take it out of service and bring it back:
//!
//! ```yaml
//! health: { targets: [203.0.113.10], interval: 1s, timeout: 1s, down: 3, up: 3 }
//! ```

use std::time::Duration;

use reconcilers::providers::Health;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::desired::diagnostics::{Ctx, Pos};
use crate::desired::values as v;
use crate::desired::yaml::Scalar;

/// `health:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthDoc {
    pub targets: Option<Vec<Spanned<String>>>,
    pub interval: Option<Spanned<Scalar>>,
    pub timeout: Option<Spanned<Scalar>>,
    pub down: Option<Spanned<i64>>,
    pub up: Option<Spanned<i64>>,
}

/// The longest interval or timeout accepted: a provider probed less often than this is not
/// watched in any useful sense.
const LONGEST: Duration = Duration::from_secs(3600);
/// The shortest: below it probes would flood the path and time out on ordinary jitter.
const SHORTEST: Duration = Duration::from_millis(10);

/// Check `health:`; `None` (with the errors recorded) when a value is wrong.
pub(super) fn health(file: usize, doc: &Spanned<HealthDoc>, ctx: &mut Ctx) -> Option<Health> {
    let before = ctx.count();
    let d = &doc.value;
    let mut h = Health::default();
    for t in d.targets.iter().flatten() {
        match ctx.check(Pos::of(file, t), v::ip(&t.value, "health target")) {
            Some(std::net::IpAddr::V4(a)) => h.targets.push(a),
            Some(std::net::IpAddr::V6(a)) => ctx.err(
                Pos::of(file, t),
                format!("health target {a} is IPv6; providers are IPv4"),
            ),
            None => {}
        }
    }
    if let Some(i) = &d.interval {
        h.interval = duration(file, i, "interval", ctx).unwrap_or(h.interval);
    }
    if let Some(t) = &d.timeout {
        h.timeout = duration(file, t, "timeout", ctx).unwrap_or(h.timeout);
    }
    if let Some(n) = &d.down {
        h.down = rounds(file, n, "down", ctx).unwrap_or(h.down);
    }
    if let Some(n) = &d.up {
        h.up = rounds(file, n, "up", ctx).unwrap_or(h.up);
    }
    (ctx.count() == before).then_some(h)
}

/// `interval` and `timeout`: a humantime duration (`1s`, `500ms`, `1m 30s`).
fn duration(file: usize, s: &Spanned<Scalar>, what: &str, ctx: &mut Ctx) -> Option<Duration> {
    let at = Pos::of(file, s);
    let parsed = match &s.value {
        Scalar::Str(t) => humantime::parse_duration(t).ok(),
        _ => None,
    };
    let Some(d) = parsed else {
        ctx.err(
            at,
            format!("health {what} must be a duration such as 1s or 500ms"),
        );
        return None;
    };
    if !(SHORTEST..=LONGEST).contains(&d) {
        ctx.err(
            at,
            format!(
                "health {what} {} is out of range (10ms..=1h)",
                humantime::format_duration(d)
            ),
        );
        return None;
    }
    Some(d)
}

/// `down` and `up`: a number of consecutive rounds.
fn rounds(file: usize, n: &Spanned<i64>, what: &str, ctx: &mut Ctx) -> Option<u32> {
    let what = format!("health {what} (rounds)");
    ctx.check(Pos::of(file, n), v::ranged(n.value, 1, 100, &what))
        .map(|x| u32::try_from(x).expect("range"))
}
