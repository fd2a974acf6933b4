//! The providers' host hook: Shorewall's `optional`, decided on the host after observing.

use reconcilers::model::State;

use crate::desired::Desired;

/// Shorewall's `optional`, applied to the state to reconcile: providers whose interface is
/// missing or down on the host are left out (with their route rules), and the balanced
/// route, rules and tables are those of the remaining providers. One warning per skipped
/// provider. The host decides, so this runs after observing, like the other host checks.
pub(crate) fn skip_unavailable(d: &Desired, want: &mut State, observed: &State) -> Vec<String> {
    let down = reconcilers::providers::unavailable(&d.providers, observed);
    if down.is_empty() {
        return Vec::new();
    }
    let warnings = down
            .iter()
            .map(|p| {
                format!(
                    "provider {} is optional and {} is {} on this host: it is left out until the interface is up",
                    p.name,
                    p.interface,
                    if observed.links.contains_key(&p.interface) { "down" } else { "missing" }
                )
            })
            .collect();
    let skip = down.iter().map(|p| p.name.as_str()).collect();
    reconcilers::providers::without(&d.providers, &skip, want);
    warnings
}
