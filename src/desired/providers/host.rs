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

    const DHCP: &str = "links:
  eth0: { kind: external }
providers:
  wan: { number: 1, interface: eth0, gateway: detect, balance: 1, track: true }
  lte: { number: 2, interface: wwan0, gateway: 10.64.0.1, local: 10.64.0.2, balance: 1, optional: true }
route_rules:
  - { to: 8.8.8.8, provider: wan, priority: 11000 }
";

    /// eth0 as a DHCP client leaves it: `lease` = (address, router), or nothing yet.
    fn dhcp_host(lease: Option<(&str, &str)>) -> State {
        use reconcilers::model::{Address, Family, NextHop, Route, RouteType, Scope};
        let mut s = host();
        let Some((addr, router)) = lease else {
            return s;
        };
        s.add_address(Address {
            link: "eth0".into(),
            address: addr.parse().unwrap(),
            owned: false,
            primary: true,
        });
        s.add_route(Route {
            table: reconcilers::model::TABLE_MAIN,
            to: Family::Inet.any(),
            tos: 0,
            metric: 0,
            kind: RouteType::Unicast,
            nexthops: vec![NextHop {
                via: Some(router.parse().unwrap()),
                dev: Some("eth0".into()),
                weight: 1,
                onlink: false,
            }]
            .into(),
            src: None,
            scope: Scope::Global,
            mtu: None,
            owned: false,
        });
        s
    }

    fn routes(s: &State) -> Vec<String> {
        s.routes.values().map(|r| r.id()).collect()
    }

    #[test]
    fn gateway_detect_detects_both_and_moves_the_balanced_default_beside_the_clients() {
        let d = load_str(DHCP, Path::new("t.yaml")).expect("valid");
        let wan = &d.providers.providers[0];
        assert_eq!((wan.gateway, wan.local), (None, None));
        assert_eq!(
            d.providers.options.default_table,
            reconcilers::providers::DefaultTable::BalanceTable
        );
        assert!(d.providers.options.foreign_main_default);
        // Before the lease: wan is unavailable, with a warning; lte is optional and missing.
        // With no provider available, not even the balance table's rules.
        let before = d.for_host(&dhcp_host(None), None, &HealthView::Declared);
        assert!(
            rules(&before.state).is_empty(),
            "{:?}",
            rules(&before.state)
        );
        assert!(
            routes(&before.state).is_empty(),
            "{:?}",
            routes(&before.state)
        );
        assert!(before.state.firewall.is_none(), "nothing to track yet");
        assert_eq!(before.warnings.len(), 2, "{:?}", before.warnings);
        assert!(before.warnings[1].starts_with("provider wan is unavailable: no IPv4 address on eth0 yet (local: detect) and no default route through eth0 in main yet (gateway: detect)"));
        // With the lease: everything of wan's, from the leased address and router.
        let leased = d.for_host(
            &dhcp_host(Some(("192.168.1.57/24", "192.168.1.1"))),
            None,
            &HealthView::Declared,
        );
        assert_eq!(
            rules(&leased.state),
            [
                "999: from all lookup main suppress_prefixlength 0",
                "10000: from all fwmark 0x1/0xff lookup 1",
                "11000: from all to 8.8.8.8/32 lookup 1",
                "20000: from 192.168.1.57/32 lookup 1",
                "32765: from all lookup 250"
            ]
        );
        assert_eq!(
            routes(&leased.state),
            [
                "default via 192.168.1.1 dev eth0 table 1",
                "192.168.1.1/32 dev eth0 table 1",
                "default via 192.168.1.1 dev eth0 table 250"
            ]
        );
        assert_eq!(leased.warnings.len(), 1, "lte only: {:?}", leased.warnings);
        // A new lease moves them.
        let moved = d.for_host(
            &dhcp_host(Some(("192.168.2.9/24", "192.168.2.1"))),
            None,
            &HealthView::Declared,
        );
        assert!(rules(&moved.state).contains(&"20000: from 192.168.2.9/32 lookup 1".into()));
        assert!(routes(&moved.state).contains(&"default via 192.168.2.1 dev eth0 table 250".into()));
    }

    fn errors(yaml: &str) -> String {
        load_str(yaml, Path::new("t.yaml"))
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn detect_is_refused_where_it_cannot_work() {
        let e = errors(&format!(
            "{DHCP}provider_options: {{ default_table: main }}\n"
        ));
        assert!(
            e.starts_with(
                "t.yaml:8:36: default_table: main would put netconverge's balanced default in main"
            ),
            "{e}"
        );
        let e = errors("links:\n  br0: { kind: bridge }\nproviders:\n  wan: { number: 1, interface: br0, gateway: 10.0.0.1, local: detect }\n");
        assert!(e.starts_with("t.yaml:4:63: `detect` reads the addresses another program (a DHCP client) gives br0, but netconverge creates br0"), "{e}");
        let e = errors(
            "providers:\n  wan: { number: 1, interface: eth0, gateway: detect, health: {} }\n",
        );
        assert!(
            e.contains("t.yaml:2:63: `health` cannot be combined with `detect` yet"),
            "{e}"
        );
        let e = errors("providers:\n  wan: { number: 1, interface: eth0, gateway: detct }\n");
        assert_eq!(e, "t.yaml:2:47: gateway `detct` is neither an IPv4 address nor `detect` (read from the interface on the host)");
        let e = errors("providers:\n  a: { number: 1, interface: eth0, gateway: detect }\n  b: { number: 2, interface: eth0, gateway: detect }\n");
        assert!(
            e.contains("providers a and b are the same gateway (both detect it) on eth0"),
            "{e}"
        );
        assert!(
            e.contains("providers a and b share the address detected on eth0"),
            "{e}"
        );
        // A declared gateway with a detected address, and the other way round, are fine.
        let ok = "providers:\n  a: { number: 1, interface: eth0, gateway: 192.168.1.1, local: detect }\n  b: { number: 2, interface: eth1, gateway: detect, local: 10.1.0.2 }\n";
        let d = load_str(ok, Path::new("t.yaml")).expect("valid");
        let (a, b) = (&d.providers.providers[0], &d.providers.providers[1]);
        assert_eq!(
            (a.gateway, a.local),
            (Some("192.168.1.1".parse().unwrap()), None)
        );
        assert_eq!(
            (b.gateway, b.local),
            (None, Some("10.1.0.2".parse().unwrap()))
        );
    }
}
