//! `local: detect` and `gateway: detect` (Shorewall's word): the addresses of a provider
//! whose interface someone else configures — a DHCP client — read from the observed state
//! before planning.
//!
//! - The gateway is the one of the default route the client installed in main through the
//!   interface: a route in main to `0.0.0.0/0` that is not netconverge's (protocol 157 marks
//!   netconverge's own, and its balanced default of such providers lives in table 250 anyway),
//!   with a nexthop through the interface; of several, the lowest metric.
//! - The local address is the interface's primary IPv4 address of global scope (not
//!   IFA_F_SECONDARY, not link-scope like avahi-autoipd's 169.254/16) that is not
//!   netconverge's (a declared address on the same interface never counts): the one whose
//!   subnet holds the gateway (the longest prefix), else the lowest, which covers a /32
//!   lease with an on-link gateway.
//!
//! Until both are known the provider is unavailable: it makes nothing (see
//! `generate::generate_held`) and a warning says what is missing.

use std::cmp::Reverse;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use super::Providers;
use crate::model::{RouteType, State, TABLE_MAIN};

/// What a provider with `detect` still lacks on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    /// The provider.
    pub provider: String,
    /// Its interface.
    pub interface: String,
    /// No address to be its `local` yet.
    pub local: bool,
    /// No default route through the interface to take the gateway from yet.
    pub gateway: bool,
}

impl Missing {
    /// The warning a pass gives: what is missing, and that the provider waits for it.
    pub fn warning(&self) -> String {
        let i = &self.interface;
        let mut what = Vec::new();
        if self.local {
            what.push(format!("no IPv4 address on {i} yet (local: detect)"));
        }
        if self.gateway {
            what.push(format!(
                "no default route through {i} in main yet (gateway: detect)"
            ));
        }
        format!(
            "provider {} is unavailable: {}; it is left out until the interface's DHCP client (or whoever configures {i}) provides it",
            self.provider,
            what.join(" and ")
        )
    }
}

/// The providers of `declared` with what `observed` shows for their `detect` addresses filled
/// in (a declared address is kept as it is), and what each provider still lacks.
pub fn resolve(declared: &Providers, observed: &State) -> (Providers, Vec<Missing>) {
    let mut now = declared.clone();
    let mut missing = Vec::new();
    for p in &mut now.providers {
        if p.gateway.is_none() {
            p.gateway = gateway_of(&p.interface, observed);
        }
        if p.local.is_none() {
            p.local = local_of(&p.interface, p.gateway, observed);
        }
        if p.addresses().is_none() {
            missing.push(Missing {
                provider: p.name.clone(),
                interface: p.interface.clone(),
                local: p.local.is_none(),
                gateway: p.gateway.is_none(),
            });
        }
    }
    (now, missing)
}

/// The gateway of the lowest-metric default route in main through `interface` that is not
/// netconverge's own.
pub fn gateway_of(interface: &str, observed: &State) -> Option<Ipv4Addr> {
    observed
        .routes
        .values()
        .filter(|r| {
            r.table == TABLE_MAIN
                && !r.owned
                && r.kind == RouteType::Unicast
                && r.tos == 0
                && r.to == IpNet::V4(Default::default())
        })
        .flat_map(|r| r.nexthops.iter().map(move |h| (r.metric, h)))
        .filter(|(_, h)| h.dev.as_deref() == Some(interface))
        .filter_map(|(metric, h)| match h.via {
            Some(IpAddr::V4(g)) => Some((metric, g)),
            _ => None,
        })
        .min()
        .map(|(_, g)| g)
}

/// The primary global IPv4 address of `interface` that is not netconverge's: the one whose
/// subnet holds `gateway` with the longest prefix, else the lowest.
pub fn local_of(interface: &str, gateway: Option<Ipv4Addr>, observed: &State) -> Option<Ipv4Addr> {
    let candidates = observed
        .addresses
        .values()
        .filter(|a| a.link == interface && a.primary && !a.owned)
        .filter_map(|a| match a.address {
            IpNet::V4(n) => Some(n),
            IpNet::V6(_) => None,
        });
    candidates
        .map(|n| {
            let covers = gateway.is_some_and(|g| n.contains(&g));
            // Covering first, the longer prefix first among those, then the lower address.
            let longer = Reverse(if covers { n.prefix_len() } else { 0 });
            (!covers, longer, n.addr())
        })
        .min()
        .map(|(_, _, a)| a)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::generate::{hop, route};
    use super::super::tests::seed;
    use super::super::{expand, replan, DefaultTable, Options, RouteRule};
    use super::*;
    use crate::model::{Address, Family, Link, LinkKind, Route, TABLE_MAIN};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// A host whose eth0 a DHCP client configured: `addrs` as (address, primary, owned),
    /// `defaults` as the default routes in main (gateway, device, metric, owned).
    fn host(addrs: &[(&str, bool, bool)], defaults: &[(&str, &str, u32, bool)]) -> State {
        let mut s = State::default();
        s.add_link(Link::new("eth0", LinkKind::External));
        s.add_link(Link::new("eth1", LinkKind::External));
        for &(a, primary, owned) in addrs {
            s.add_address(Address {
                link: "eth0".into(),
                address: a.parse().unwrap(),
                owned,
                primary,
            });
        }
        for &(g, dev, metric, owned) in defaults {
            s.add_route(client_default(g, dev, metric, owned));
        }
        s
    }

    fn client_default(g: &str, dev: &str, metric: u32, owned: bool) -> Route {
        let mut r = route(
            TABLE_MAIN,
            Family::Inet.any(),
            vec![hop(Some(g.parse().unwrap()), dev, 1)],
            None,
        );
        r.metric = metric;
        r.owned = owned;
        r
    }

    #[test]
    fn the_gateway_is_the_clients_default_through_the_interface_with_the_lowest_metric() {
        let s = host(&[], &[("192.168.1.1", "eth0", 10, false)]);
        assert_eq!(gateway_of("eth0", &s), Some(ip("192.168.1.1")));
        assert_eq!(gateway_of("eth1", &s), None, "another interface's default");
        let s = host(
            &[],
            &[
                ("192.168.1.9", "eth0", 20, false),
                ("192.168.1.1", "eth0", 10, false),
                ("10.9.0.1", "eth1", 0, false),
            ],
        );
        assert_eq!(gateway_of("eth0", &s), Some(ip("192.168.1.1")));
    }

    #[test]
    fn netconverge_s_own_routes_never_hide_or_replace_the_clients_gateway() {
        // Its own default through eth0 in main (protocol 157) is not the client's.
        let mut s = host(
            &[],
            &[
                ("192.168.1.254", "eth0", 0, true),
                ("192.168.1.1", "eth0", 100, false),
            ],
        );
        assert_eq!(gateway_of("eth0", &s), Some(ip("192.168.1.1")));
        // Defaults elsewhere than main (the balance table, a provider's table), a TOS
        // route, a route that is not a default and a blackhole are not the client's default.
        for (table, to, tos) in [
            (250, "0.0.0.0/0", 0),
            (1, "0.0.0.0/0", 0),
            (TABLE_MAIN, "0.0.0.0/0", 4),
            (TABLE_MAIN, "192.168.7.0/24", 0),
        ] {
            let mut r = client_default("192.168.1.7", "eth0", 0, false);
            r.table = table;
            r.to = to.parse().unwrap();
            r.tos = tos;
            s.add_route(r);
        }
        let mut bh = client_default("192.168.1.8", "eth0", 1, false);
        bh.kind = RouteType::Blackhole;
        s.add_route(bh);
        assert_eq!(gateway_of("eth0", &s), Some(ip("192.168.1.1")));
        // An IPv6 default and a default without gateway give nothing.
        let mut s = host(&[], &[]);
        let mut v6 = route(
            TABLE_MAIN,
            Family::Inet6.any(),
            vec![hop(Some("fe80::1".parse().unwrap()), "eth0", 1)],
            None,
        );
        v6.owned = false;
        s.add_route(v6);
        s.add_route(route(
            TABLE_MAIN,
            Family::Inet.any(),
            vec![hop(None, "eth0", 1)],
            None,
        ));
        assert_eq!(gateway_of("eth0", &s), None);
        // A multipath default of the client with a hop through eth0.
        let mut s = host(&[], &[]);
        s.add_route(route(
            TABLE_MAIN,
            Family::Inet.any(),
            vec![
                hop(Some("10.9.0.1".parse().unwrap()), "eth1", 1),
                hop(Some("192.168.1.1".parse().unwrap()), "eth0", 1),
            ],
            None,
        ));
        assert_eq!(gateway_of("eth0", &s), Some(ip("192.168.1.1")));
    }

    #[test]
    fn the_local_address_is_the_primary_global_one_in_the_gateway_s_subnet() {
        let s = host(
            &[
                ("10.0.0.5/8", true, false),
                ("192.168.1.57/24", true, false),
                ("192.168.1.3/24", false, false),
                ("192.168.1.2/32", true, true),
                ("169.254.3.4/16", false, false),
                ("fd00::5/64", false, false),
            ],
            &[],
        );
        let gw = Some(ip("192.168.1.1"));
        assert_eq!(
            local_of("eth0", gw, &s),
            Some(ip("192.168.1.57")),
            "covering, primary, not ours"
        );
        assert_eq!(
            local_of("eth0", None, &s),
            Some(ip("10.0.0.5")),
            "no gateway: the first"
        );
        assert_eq!(local_of("eth1", gw, &s), None);
        // Two covering: the longer prefix; none covering (a /32 lease): the lowest.
        let s = host(
            &[
                ("0.0.0.9/0", true, false),
                ("192.168.0.9/16", true, false),
                ("192.168.1.57/24", true, false),
            ],
            &[],
        );
        assert_eq!(local_of("eth0", gw, &s), Some(ip("192.168.1.57")));
        let s = host(
            &[
                ("203.0.113.9/32", true, false),
                ("203.0.113.7/32", true, false),
            ],
            &[],
        );
        assert_eq!(local_of("eth0", gw, &s), Some(ip("203.0.113.7")));
        // Only netconverge's own, a secondary or a link-scope address: none.
        let s = host(
            &[
                ("192.168.1.2/24", true, true),
                ("192.168.1.3/24", false, false),
            ],
            &[],
        );
        assert_eq!(local_of("eth0", gw, &s), None);
    }

    fn dhcp_provider() -> Providers {
        let mut p = seed();
        p.providers[0].gateway = None;
        p.providers[0].local = None;
        p.options = Options {
            default_table: DefaultTable::BalanceTable,
            foreign_main_default: true,
            ..Options::default()
        };
        p.route_rules.push(RouteRule {
            from: None,
            to: Some("8.8.8.8/32".parse().unwrap()),
            iif: None,
            provider: "wrt".into(),
            table: 1,
            priority: 11000,
        });
        p
    }

    #[test]
    fn resolve_fills_in_what_the_host_shows_and_says_what_is_missing() {
        let p = dhcp_provider();
        let (now, missing) = resolve(&p, &host(&[], &[]));
        assert_eq!(now, p);
        assert_eq!(
            missing,
            [Missing {
                provider: "wrt".into(),
                interface: "eth0".into(),
                local: true,
                gateway: true
            }]
        );
        assert_eq!(
            missing[0].warning(),
            "provider wrt is unavailable: no IPv4 address on eth0 yet (local: detect) and no default route through eth0 in main yet (gateway: detect); it is left out until the interface's DHCP client (or whoever configures eth0) provides it"
        );
        let only_address = host(&[("192.168.1.57/24", true, false)], &[]);
        let (_, missing) = resolve(&p, &only_address);
        assert_eq!((missing[0].local, missing[0].gateway), (false, true));
        assert!(!missing[0].warning().contains("local: detect"));
        let leased = host(
            &[("192.168.1.57/24", true, false)],
            &[("192.168.1.1", "eth0", 0, false)],
        );
        let (now, missing) = resolve(&p, &leased);
        assert!(missing.is_empty());
        assert_eq!(
            now.providers[0].addresses(),
            Some((ip("192.168.1.1"), ip("192.168.1.57")))
        );
        assert_eq!(
            now.providers[1], p.providers[1],
            "declared addresses are kept"
        );
        // A declared local with a detected gateway: the declared one stays.
        let mut q = p.clone();
        q.providers[0].local = Some(ip("192.168.1.20"));
        let (now, _) = resolve(&q, &leased);
        assert_eq!(now.providers[0].local, Some(ip("192.168.1.20")));
    }

    fn ids(s: &State) -> (Vec<String>, Vec<String>) {
        (
            s.routes.values().map(|r| r.id()).collect(),
            s.rules.values().map(|r| r.id()).collect(),
        )
    }

    #[test]
    fn a_provider_waiting_for_its_addresses_makes_nothing_and_main_s_default_is_suppressed() {
        let p = dhcp_provider();
        let mut s = State::default();
        s.add_link(Link::new("eth0", LinkKind::External));
        expand(&p, &mut s);
        let (routes, rules) = ids(&s);
        assert_eq!(
            routes,
            [
                "default via 192.168.1.254 dev eth0 table 2",
                "192.168.1.254/32 dev eth0 table 2",
                "default via 192.168.1.254 dev eth0 table 250",
            ]
        );
        assert_eq!(
            rules,
            [
                "999: from all lookup main suppress_prefixlength 0",
                "10001: from all fwmark 0x2/0xff lookup 2",
                "32765: from all lookup 250",
            ],
            "no rule of wrt's, nor the route rule to its table"
        );
        let track = &s.firewall.as_ref().expect("fw tracks").ruleset;
        assert!(!track.contains("track wrt"), "wrt is not tracked: {track}");
        assert!(track.contains("track fw"));
        assert!(
            !track.contains("gw_"),
            "fw is alone on eth0 among the known providers: {track}"
        );
        // Once detected, replanning from the loaded expansion gives wrt everything.
        let leased = host(
            &[("192.168.1.57/24", true, false)],
            &[("192.168.1.1", "eth0", 0, false)],
        );
        let (now, _) = resolve(&p, &leased);
        replan(&p, &now, &BTreeSet::new(), &BTreeSet::new(), &mut s);
        let (routes, rules) = ids(&s);
        assert!(routes.contains(&"default nexthops via 192.168.1.1 dev eth0 weight 1 via 192.168.1.254 dev eth0 weight 1 table 250".to_string()), "{routes:?}");
        assert!(routes.contains(&"192.168.1.1/32 dev eth0 table 1".to_string()));
        assert!(rules.contains(&"20000: from 192.168.1.57/32 lookup 1".to_string()));
        assert!(rules.contains(&"11000: from all to 8.8.8.8/32 lookup 1".to_string()));
        assert!(
            s.firewall.as_ref().unwrap().ruleset.contains("gw_"),
            "two providers on eth0: by MAC"
        );
        let mut fresh = State::default();
        fresh.add_link(Link::new("eth0", LinkKind::External));
        expand(&now, &mut fresh);
        assert_eq!(s, fresh, "the same as expanding the detected providers");
    }

    #[test]
    fn without_detect_rule_999_keeps_shorewall_s_plain_lookup() {
        let mut p = seed();
        p.options.default_table = DefaultTable::BalanceTable;
        let mut s = State::default();
        expand(&p, &mut s);
        assert!(ids(&s).1.contains(&"999: from all lookup main".to_string()));
    }
}
