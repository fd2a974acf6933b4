//! The providers' host hook: the addresses of providers with `detect`, Shorewall's
//! `optional` and the providers that health checks hold down, decided on the host after
//! observing.

use std::collections::BTreeSet;

use reconcilers::model::State;
use reconcilers::providers::{detect, health};

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
/// route, rules and tables are those of the remaining providers. The addresses of the
/// providers with `detect` are read from `observed`; those still missing one are left out
/// the same way. Then the providers that `view` holds down by their health are taken out of
/// service. One warning per provider concerned. The host decides, so this runs after
/// observing, like the other host checks.
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
    let mut skip: BTreeSet<&str> = down.iter().map(|x| x.name.as_str()).collect();
    let (now, missing) = detect::resolve(p, observed);
    for m in missing
        .iter()
        .filter(|m| !skip.contains(m.provider.as_str()))
    {
        warnings.push(m.warning());
    }
    skip.extend(
        p.providers
            .iter()
            .filter(|x| missing.iter().any(|m| m.provider == x.name))
            .map(|x| x.name.as_str()),
    );
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
    if !skip.is_empty() || !held.is_empty() || now != *p {
        reconcilers::providers::replan(p, &now, &skip, &held, want);
    }
    warnings
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use reconcilers::model::{Link, LinkKind, State};
    use reconcilers::providers::Health;

    use super::HealthView;
    use crate::desired::load_str;

    const YAML: &str = "links:
  eth0: { kind: external, addresses: [192.168.1.20/24] }
providers:
  wrt: { number: 1, interface: eth0, gateway: 192.168.1.1, balance: 1,
         health: { targets: [203.0.113.10], interval: 500ms, timeout: 1s, down: 2, up: 4 } }
  fw:  { number: 2, interface: eth0, gateway: 192.168.1.254, balance: 1, loose: true }
";

    fn host() -> State {
        let mut s = State::default();
        s.add_link(Link::new("eth0", LinkKind::External));
        s
    }

    fn rules(s: &State) -> Vec<String> {
        s.rules.values().map(|r| r.id()).collect()
    }

    #[test]
    fn health_is_read_as_written_and_gives_the_provider_a_mark() {
        let d = load_str(YAML, Path::new("t.yaml")).expect("valid");
        let wrt = &d.providers.providers[0];
        assert_eq!(
            wrt.health,
            Some(Health {
                targets: vec!["203.0.113.10".parse().unwrap()],
                interval: Duration::from_millis(500),
                timeout: Duration::from_secs(1),
                down: 2,
                up: 4,
            })
        );
        assert_eq!(
            wrt.mark,
            Some(1),
            "the number shifted into the mask, as for track"
        );
        assert_eq!(d.providers.providers[1].mark, None);
    }

    #[test]
    fn each_view_of_health_plans_what_its_command_needs() {
        let d = load_str(YAML, Path::new("t.yaml")).expect("valid");
        let declared = d.for_host(&host(), None, &HealthView::Declared);
        assert!(rules(&declared.state).contains(&"20000: from 192.168.1.20/32 lookup 1".into()));
        assert_eq!(
            declared.warnings,
            ["the health of provider(s) wrt is acted on by `watch`; this pass applies every provider as declared"]
        );
        let held = d.for_host(
            &host(),
            None,
            &HealthView::Held(["wrt".into(), "fw".into()].into()),
        );
        let probe = "10000: from all fwmark 0x1/0xff oif eth0 lookup 1".to_string();
        assert_eq!(
            rules(&held.state),
            std::slice::from_ref(&probe),
            "fw has no health: only wrt is held"
        );
        assert!(held.warnings.is_empty());
        // check: the kernel holds the probe rule (ours), so wrt is held down, and says so.
        let mut observed = host();
        observed.rules = held.state.rules.clone();
        for r in observed.rules.values_mut() {
            r.owned = true;
        }
        let check = d.for_host(&observed, None, &HealthView::FromKernel);
        assert_eq!(check.state, held.state);
        assert_eq!(check.warnings.len(), 1);
        assert!(check.warnings[0].starts_with("provider wrt is held down by its health checks"));
        let fresh = d.for_host(&host(), None, &HealthView::FromKernel);
        assert_eq!(
            fresh.state, declared.state,
            "nothing held in the kernel: as declared"
        );
    }
}
