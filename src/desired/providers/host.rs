//! The providers' host hook: Shorewall's `optional` and the providers that health checks
//! hold down, decided on the host after observing.

use std::collections::BTreeSet;

use reconcilers::model::State;
use reconcilers::providers::health;

use crate::desired::Desired;

/// How the providers' health enters a pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HealthView {
    /// Every provider as declared (`reconcile`): health is acted on by `watch`.
    #[default]
    Declared,
    /// The providers the kernel shows held down stay held (`check`, which runs no probes:
    /// see [`reconcilers::providers::health`]).
    FromKernel,
    /// These providers fail their probes (`watch`).
    Held(BTreeSet<String>),
}

/// Shorewall's `optional`, applied to the state to reconcile: providers whose interface is
/// missing or down on the host are left out (with their route rules), and the balanced
/// route, rules and tables are those of the remaining providers. Then the providers that
/// `view` holds down by their health are taken out of service. One warning per provider
/// concerned. The host decides, so this runs after observing, like the other host checks.
pub(crate) fn skip_unavailable(
    d: &Desired,
    want: &mut State,
    observed: &State,
    view: &HealthView,
) -> Vec<String> {
    let p = &d.providers;
    let down = reconcilers::providers::unavailable(p, observed);
    let mut warnings: Vec<String> = down
        .iter()
        .map(|x| {
            format!(
                "provider {} is optional and {} is {} on this host: it is left out until the interface is up",
                x.name,
                x.interface,
                if observed.links.contains_key(&x.interface) { "down" } else { "missing" }
            )
        })
        .collect();
    let skip: BTreeSet<&str> = down.iter().map(|x| x.name.as_str()).collect();
    let failing: BTreeSet<&str> = match view {
        HealthView::Declared => {
            let watched: Vec<&str> = p
                .providers
                .iter()
                .filter(|x| x.health.is_some())
                .map(|x| x.name.as_str())
                .collect();
            if !watched.is_empty() {
                warnings.push(format!(
                    "the health of provider(s) {} is acted on by `watch`; this pass applies every provider as declared",
                    watched.join(", ")
                ));
            }
            BTreeSet::new()
        }
        HealthView::FromKernel => health::held_in(p, observed)
            .into_iter()
            .map(|x| x.name.as_str())
            .collect(),
        HealthView::Held(names) => p
            .providers
            .iter()
            .filter(|x| x.health.is_some() && names.contains(&x.name))
            .map(|x| x.name.as_str())
            .collect(),
    };
    let failing: BTreeSet<&str> = failing.difference(&skip).copied().collect();
    let held = health::to_hold(p, &failing);
    if *view == HealthView::FromKernel {
        warnings.extend(held.iter().map(|n| {
            format!("provider {n} is held down by its health checks (`watch` probes it and brings it back): not drift")
        }));
    }
    if !skip.is_empty() || !held.is_empty() {
        reconcilers::providers::reshape(p, &skip, &held, want);
    }
    warnings
}
