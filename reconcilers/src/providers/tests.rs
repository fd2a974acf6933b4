//! Tests of the providers expansion: the seed's layout, Shorewall's words, weights, fallback,
//! the balance table, `duplicate`, marks and optional providers.

use super::generate::{hop, route};
use super::*;

/// The label of the generated object printed as `id`.
fn origin<'a>(s: &'a State, id: &str) -> &'a str {
    s.origins
        .iter()
        .find(|(r, _)| r.to_string() == id)
        .map(|(_, label)| label.as_str())
        .unwrap_or_else(|| panic!("no origin for {id}: {:?}", s.origins.keys()))
}
use crate::model::{Address, Family, Link, LinkKind, RuleAction, Scope, TABLE_MAIN};

/// The seed host's two providers as in the issue: both on eth0, both balanced and tracked,
/// fw loose (two providers sharing an address cannot both have the from-rule).
pub(crate) fn seed() -> Providers {
    let pr = |name: &str, number: u32, gw: [u8; 4], loose: bool| Provider {
        name: name.into(),
        number,
        mark: Some(number),
        interface: "eth0".into(),
        gateway: Some(Ipv4Addr::from(gw)),
        local: Some(Ipv4Addr::new(192, 168, 1, 20)),
        balance: Some(1),
        fallback: None,
        track: true,
        loose,
        duplicate: false,
        copy: vec![],
        optional: false,
        health: None,
    };
    Providers {
        providers: vec![
            pr("wrt", 1, [192, 168, 1, 1], false),
            pr("fw", 2, [192, 168, 1, 254], true),
        ],
        ..Providers::default()
    }
}

fn base() -> State {
    let mut s = State::default();
    s.add_link(Link::new("eth0", LinkKind::External));
    let mut br = Link::new("br0", LinkKind::Bridge(Default::default()));
    br.up = Some(true);
    s.add_link(br);
    let mut tap = Link::new("tap-centos", LinkKind::External);
    tap.master = Some("br0".into());
    s.add_link(tap);
    for (link, a) in [("eth0", "192.168.1.20/24"), ("br0", "10.0.0.1/24")] {
        s.add_address(Address {
            link: link.into(),
            address: a.parse().unwrap(),
            owned: false,
            primary: false,
        });
    }
    s
}

fn ids(s: &State) -> (Vec<String>, Vec<String>) {
    (
        s.routes.values().map(|r| r.id()).collect(),
        s.rules.values().map(|r| r.id()).collect(),
    )
}

#[test]
fn seed_providers_expand_like_shorewall() {
    let mut s = base();
    expand(&seed(), &mut s);
    let (routes, rules) = ids(&s);
    assert_eq!(
        routes,
        [
            "default via 192.168.1.1 dev eth0 table 1",
            "192.168.1.1/32 dev eth0 table 1",
            "default via 192.168.1.254 dev eth0 table 2",
            "192.168.1.254/32 dev eth0 table 2",
            "default nexthops via 192.168.1.1 dev eth0 weight 1 via 192.168.1.254 dev eth0 weight 1",
        ]
    );
    assert_eq!(
        rules,
        [
            "10000: from all fwmark 0x1/0xff lookup 1",
            "10001: from all fwmark 0x2/0xff lookup 2",
            "20000: from 192.168.1.20/32 lookup 1",
        ]
    );
    let host = s
        .routes
        .values()
        .find(|r| r.table == 1 && r.to.prefix_len() == 32)
        .unwrap();
    assert_eq!(host.scope, Scope::Link);
    assert_eq!(host.src, Some("192.168.1.20".parse().unwrap()));
    let def = s
        .routes
        .values()
        .find(|r| r.table == 2 && r.to.prefix_len() == 0)
        .unwrap();
    assert_eq!(def.scope, Scope::Global);
    assert_eq!(def.src, Some("192.168.1.20".parse().unwrap()));
    assert_eq!(s.sysctls["net.ipv4.ip_forward"], "1");
    assert_eq!(s.sysctls["net.ipv4.conf.all.rp_filter"], "2");
    assert_eq!(s.sysctls["net.ipv4.conf.eth0.rp_filter"], "2");
    assert_eq!(
        origin(&s, "route default via 192.168.1.1 dev eth0 table 1"),
        "provider wrt"
    );
    assert_eq!(
        origin(&s, "rule 10001: from all fwmark 0x2/0xff lookup 2"),
        "provider fw"
    );
    assert_eq!(
        origin(&s, "route default nexthops via 192.168.1.1 dev eth0 weight 1 via 192.168.1.254 dev eth0 weight 1"),
        "providers wrt, fw (balance)"
    );
    // Both track on a shared interface: told apart by the gateways' MACs.
    let fw = s.firewall.as_ref().expect("track needs the firewall");
    assert!(
        fw.ruleset
            .contains("comment \"gateway 192.168.1.254 dev eth0\""),
        "{}",
        fw.ruleset
    );
    assert!(fw.ruleset.contains("ether saddr @gw_2"), "{}", fw.ruleset);
}

#[test]
fn a_single_balanced_provider_gives_a_plain_default() {
    let mut p = seed();
    p.providers[1].balance = None;
    let mut s = base();
    expand(&p, &mut s);
    let main: Vec<String> = s
        .routes
        .values()
        .filter(|r| r.table == TABLE_MAIN)
        .map(|r| r.id())
        .collect();
    assert_eq!(main, ["default via 192.168.1.1 dev eth0"]);
}

#[test]
fn weights_and_fallback() {
    let mut p = seed();
    p.providers[0].balance = Some(3);
    p.providers[0].fallback = Some(Fallback::Metric);
    p.providers[1].fallback = Some(Fallback::Weight(2));
    let e = generate(&p, &base());
    let ids: Vec<String> = e.routes.iter().map(|(r, _)| r.id()).collect();
    assert!(
        ids.contains(&"default via 192.168.1.1 dev eth0 table default metric 1".to_string()),
        "{ids:?}"
    );
    assert!(
        ids.contains(&"default via 192.168.1.254 dev eth0 table default".to_string()),
        "{ids:?}"
    );
    assert!(
        ids.contains(
            &"default nexthops via 192.168.1.1 dev eth0 weight 3 via 192.168.1.254 dev eth0 weight 1".to_string()
        ),
        "{ids:?}"
    );
}

#[test]
fn balance_table_layout() {
    let mut p = seed();
    p.options.default_table = DefaultTable::BalanceTable;
    let mut s = base();
    expand(&p, &mut s);
    let (routes, rules) = ids(&s);
    assert!(
        routes.contains(
            &"default nexthops via 192.168.1.1 dev eth0 weight 1 via 192.168.1.254 dev eth0 weight 1 table 250"
                .to_string()
        ),
        "{routes:?}"
    );
    assert!(!routes
        .iter()
        .any(|r| r.starts_with("default nexthops") && !r.ends_with("table 250")));
    assert_eq!(rules.first().unwrap(), "999: from all lookup main");
    assert_eq!(rules.last().unwrap(), "32765: from all lookup 250");
}

#[test]
fn duplicate_main_copies_routes_through_the_interface_and_copy_links() {
    let mut p = seed();
    p.providers[0].duplicate = true;
    p.providers[0].copy = vec!["br0".into()];
    let mut b = base();
    b.add_address(Address {
        link: "other".into(),
        address: "172.16.0.1/16".parse().unwrap(),
        owned: false,
        primary: false,
    });
    b.add_route(route(
        TABLE_MAIN,
        "10.9.0.0/16".parse().unwrap(),
        vec![hop(Some("10.0.0.9".parse().unwrap()), "br0", 1)],
        None,
    ));
    b.add_route(route(
        TABLE_MAIN,
        "10.8.0.0/16".parse().unwrap(),
        vec![hop(Some("172.16.0.9".parse().unwrap()), "other", 1)],
        None,
    ));
    let e = generate(&p, &b);
    let t1: Vec<String> = e
        .routes
        .iter()
        .filter(|(r, _)| r.table == 1)
        .map(|(r, _)| r.id())
        .collect();
    assert_eq!(
        t1,
        [
            "192.168.1.1/32 dev eth0 table 1",
            "default via 192.168.1.1 dev eth0 table 1",
            "10.0.0.0/24 dev br0 table 1",
            "192.168.1.0/24 dev eth0 table 1",
            "10.9.0.0/16 via 10.0.0.9 dev br0 table 1",
        ]
    );
    let subnet = e
        .routes
        .iter()
        .find(|(r, _)| r.table == 1 && r.to.to_string() == "10.0.0.0/24")
        .unwrap();
    assert_eq!(subnet.0.src, Some("10.0.0.1".parse().unwrap()));
    assert_eq!(subnet.0.scope, Scope::Link);
}

#[test]
fn copies_of_main_are_desired_objects_whatever_marks_the_originals_carry() {
    // What `duplicate` copies is desired, so unmarked, even from a state whose routes carry
    // netconverge's mark (as an observed one does).
    let mut p = seed();
    p.providers[0].duplicate = true;
    let mut b = base();
    let mut marked = route(
        TABLE_MAIN,
        "10.9.0.0/16".parse().unwrap(),
        vec![hop(Some("192.168.1.9".parse().unwrap()), "eth0", 1)],
        None,
    );
    marked.owned = true;
    b.add_route(marked);
    let e = generate(&p, &b);
    let copy = e
        .routes
        .iter()
        .find(|(r, _)| r.table == 1 && r.to.to_string() == "10.9.0.0/16")
        .expect("copied to table 1");
    assert!(!copy.0.owned);
}

#[test]
fn track_without_mark_gets_the_number_in_the_mask() {
    // The converter assigns it; expand only uses `mark`.
    let mut p = seed();
    p.providers[0].mark = None;
    p.providers[0].track = false;
    let e = generate(&p, &base());
    assert!(!e.rules.iter().any(|(r, _)| r.key.priority == 10000));
}

#[test]
fn route_rules_and_origins() {
    let mut p = seed();
    p.route_rules = vec![
        RouteRule {
            from: Some("10.0.0.0/25".parse().unwrap()),
            to: None,
            iif: None,
            provider: "fw".into(),
            table: 2,
            priority: 1000,
        },
        RouteRule {
            from: None,
            to: Some("8.8.8.8/32".parse().unwrap()),
            iif: None,
            provider: "wrt".into(),
            table: 1,
            priority: 11000,
        },
    ];
    let mut s = base();
    expand(&p, &mut s);
    assert_eq!(
        origin(&s, "rule 1000: from 10.0.0.0/25 lookup 2"),
        "route_rules: provider fw"
    );
    assert_eq!(
        origin(&s, "rule 11000: from all to 8.8.8.8/32 lookup 1"),
        "route_rules: provider wrt"
    );
}

#[test]
fn marks_on_bridge_ports_go_to_the_bridge_family() {
    let p = Providers {
        marks: vec![
            MarkRule {
                iif: Some("tap-centos".into()),
                from: None,
                to: None,
                mark: 2,
            },
            MarkRule {
                iif: Some("eth0".into()),
                from: None,
                to: None,
                mark: 1,
            },
            MarkRule {
                iif: Some("undeclared".into()),
                from: None,
                to: None,
                mark: 1,
            },
        ],
        masquerade: vec![Masquerade {
            from: Some("10.0.0.0/24".parse().unwrap()),
            out: "eth0".into(),
        }],
        ..Providers::default()
    };
    let e = generate(&p, &base());
    let text = e.firewall.unwrap().ruleset;
    let bridge = text.split("table bridge").nth(1).expect(&text);
    assert!(bridge.contains("iifname \"tap-centos\""), "{text}");
    assert!(bridge.contains("iifname \"undeclared\""), "{text}");
    assert!(!bridge.contains("iifname \"eth0\""), "{text}");
    let inet = text.split("table bridge").next().unwrap();
    assert!(inet.contains("iifname \"eth0\""), "{text}");
    assert!(inet.contains("iifname \"undeclared\""), "{text}");
    assert!(!inet.contains("iifname \"tap-centos\""), "{text}");
    assert!(
        inet.contains("oifname \"eth0\" ip saddr 10.0.0.0/24 masquerade"),
        "{text}"
    );
    assert_eq!(
        e.sysctls,
        [("net.ipv4.ip_forward".to_string(), "1".to_string())]
    );
    assert!(e.routes.is_empty() && e.rules.is_empty());
}

#[test]
fn optional_providers_without_their_interface_are_left_out() {
    let mut p = seed();
    p.providers.push(Provider {
        name: "isp".into(),
        number: 3,
        mark: Some(3),
        interface: "ppp0".into(),
        gateway: Some(Ipv4Addr::new(203, 0, 113, 1)),
        local: Some(Ipv4Addr::new(203, 0, 113, 2)),
        balance: Some(2),
        fallback: None,
        track: true,
        loose: true,
        duplicate: false,
        copy: vec![],
        optional: true,
        health: None,
    });
    p.route_rules.push(RouteRule {
        from: Some("10.0.0.0/25".parse().unwrap()),
        to: None,
        iif: None,
        provider: "isp".into(),
        table: 3,
        priority: 1000,
    });
    let mut full = base();
    expand(&p, &mut full);
    let mut observed = base();
    assert_eq!(unavailable(&p, &observed).len(), 1);
    let mut ppp = Link::new("ppp0", LinkKind::External);
    ppp.up = Some(false);
    observed.add_link(ppp.clone());
    assert_eq!(unavailable(&p, &observed)[0].name, "isp");
    ppp.up = Some(true);
    observed.add_link(ppp);
    assert!(unavailable(&p, &observed).is_empty());

    let mut reduced = full.clone();
    without(&p, &BTreeSet::from(["isp"]), &mut reduced);
    let mut expected = base();
    expand(&seed(), &mut expected);
    assert_eq!(reduced, expected);
    // Nothing skipped: the same state.
    let mut same = full.clone();
    without(&p, &BTreeSet::new(), &mut same);
    assert_eq!(same, full);
}

#[test]
fn no_sections_no_objects() {
    let mut s = base();
    let before = s.clone();
    expand(&Providers::default(), &mut s);
    assert_eq!(s, before);
}

#[test]
fn expansion_is_deterministic_and_declaration_order_free() {
    let mut p = seed();
    let a = generate(&p, &base());
    p.providers.reverse();
    let mut sa = base();
    let mut sb = base();
    expand(&seed(), &mut sa);
    expand(&p, &mut sb);
    assert_eq!(sa.routes, sb.routes);
    assert_eq!(sa.rules, sb.rules);
    assert_eq!(sa.firewall, sb.firewall);
    assert_eq!(a, generate(&seed(), &base()));
}

#[test]
fn a_provider_alone_on_its_interface_tracks_without_its_gateway_and_marks_within_the_mask() {
    let mut p = seed();
    p.providers.truncate(1);
    p.providers[0].mark = Some(0x100);
    p.options.mask = 0xff00;
    let e = generate(&p, &base());
    let text = e.firewall.expect("track needs the firewall").ruleset;
    // Alone on eth0: the interface tells whose connection it is, no gateway set is needed.
    assert!(!text.contains("gateway"), "{text}");
    assert!(!text.contains("ether saddr"), "{text}");
    // The mark is restored within the configured mask, keeping the other bits.
    assert!(text.contains("ct mark and 0xff00 == 0x100"), "{text}");
    assert!(
        text.contains("meta mark set meta mark and 0xffff00ff or 0x100"),
        "{text}"
    );
}

#[test]
fn route_rules_keep_their_input_interface_and_take_the_family_of_their_prefixes() {
    let mut p = seed();
    let rr = |from: Option<&str>, to: Option<&str>, iif: Option<&str>, priority| RouteRule {
        from: from.map(|n| n.parse().unwrap()),
        to: to.map(|n| n.parse().unwrap()),
        iif: iif.map(Into::into),
        provider: "wrt".into(),
        table: 1,
        priority,
    };
    p.route_rules = vec![
        rr(None, None, Some("br0"), 1000),
        rr(Some("fd00:10::/64"), None, None, 1001),
        rr(None, Some("2001:db8::/32"), None, 1002),
    ];
    let e = generate(&p, &base());
    let key = |priority: u32| {
        e.rules
            .iter()
            .map(|(r, _)| &r.key)
            .find(|k| k.priority == priority)
            .unwrap_or_else(|| panic!("no rule {priority}"))
            .clone()
    };
    assert_eq!(
        (key(1000).iif.as_deref(), key(1000).family),
        (Some("br0"), Family::Inet)
    );
    assert_eq!(key(1001).family, Family::Inet6);
    assert_eq!(key(1002).family, Family::Inet6);
}

/// The seed's providers with health on wrt, a route rule to each table, fallbacks.
fn watched() -> Providers {
    let mut p = seed();
    p.providers[0].health = Some(Health::default());
    p.providers[0].fallback = Some(Fallback::Metric);
    p.providers[1].fallback = Some(Fallback::Metric);
    for (provider, table, priority) in [("wrt", 1, 1000), ("fw", 2, 1001)] {
        p.route_rules.push(RouteRule {
            from: None,
            to: Some("8.8.8.8/32".parse().unwrap()),
            iif: None,
            provider: provider.into(),
            table,
            priority,
        });
    }
    p
}

#[test]
fn a_provider_held_down_keeps_its_table_and_a_rule_for_its_probes_only() {
    let p = watched();
    let mut s = base();
    expand(&p, &mut s);
    let full = s.clone();
    reshape(&p, &BTreeSet::new(), &BTreeSet::from(["wrt"]), &mut s);
    let (routes, rules) = ids(&s);
    assert_eq!(
        routes,
        [
            "default via 192.168.1.1 dev eth0 table 1",
            "192.168.1.1/32 dev eth0 table 1",
            "default via 192.168.1.254 dev eth0 table 2",
            "192.168.1.254/32 dev eth0 table 2",
            "default via 192.168.1.254 dev eth0 table default metric 2",
            "default via 192.168.1.254 dev eth0",
        ],
        "wrt leaves the balanced default and the fallbacks, keeps its table"
    );
    assert_eq!(
        rules,
        [
            "1001: from all to 8.8.8.8/32 lookup 2",
            "10000: from all fwmark 0x1/0xff oif eth0 lookup 1",
            "10001: from all fwmark 0x2/0xff lookup 2",
        ],
        "no from-rule, no route rule for wrt; its mark rule only for sockets bound to eth0"
    );
    assert_eq!(
        origin(&s, "rule 10000: from all fwmark 0x1/0xff oif eth0 lookup 1"),
        "provider wrt"
    );
    assert_eq!(
        s.firewall, full.firewall,
        "the marks stay: marked traffic follows the others"
    );
    assert_eq!(s.sysctls, full.sysctls);
    // Nothing held (reshape starts from the full expansion, as the host hook does): the same.
    let mut again = full.clone();
    reshape(&p, &BTreeSet::new(), &BTreeSet::new(), &mut again);
    assert_eq!(again, full);
}

#[test]
fn the_kernel_shows_which_providers_are_held_down() {
    let p = watched();
    let mut s = base();
    expand(&p, &mut s);
    assert!(health::held_in(&p, &s).is_empty(), "in service");
    reshape(&p, &BTreeSet::new(), &BTreeSet::from(["wrt"]), &mut s);
    let mark_owned = |s: &mut State, owned: bool| {
        for r in s.rules.values_mut() {
            r.owned = owned;
        }
    };
    mark_owned(&mut s, true);
    let held: Vec<&str> = health::held_in(&p, &s)
        .iter()
        .map(|x| x.name.as_str())
        .collect();
    assert_eq!(held, ["wrt"]);
    mark_owned(&mut s, false);
    assert!(
        health::held_in(&p, &s).is_empty(),
        "a foreign rule is not our marker"
    );
    mark_owned(&mut s, true);
    let key = health::probe_rule(&p.providers[0], p.options.mask).unwrap();
    s.rules.get_mut(&key).unwrap().action = RuleAction::Lookup(7);
    assert!(
        health::held_in(&p, &s).is_empty(),
        "the rule must look up wrt's table"
    );
    s.rules.get_mut(&key).unwrap().action = RuleAction::Lookup(1);
    let mut unwatched = p.clone();
    unwatched.providers[0].health = None;
    assert!(
        health::held_in(&unwatched, &s).is_empty(),
        "only providers with health"
    );
    let mut unmarked = p.providers[0].clone();
    unmarked.mark = None;
    assert_eq!(health::probe_rule(&unmarked, 0xff), None);
}

#[test]
fn the_last_balanced_provider_is_never_held_down() {
    let p = watched();
    let one = BTreeSet::from(["wrt"]);
    assert_eq!(health::to_hold(&p, &one), one);
    assert!(health::to_hold(&p, &BTreeSet::from(["wrt", "fw"])).is_empty());
    assert!(health::to_hold(&p, &BTreeSet::new()).is_empty());
    let mut unbalanced = p.clone();
    for x in &mut unbalanced.providers {
        x.balance = None;
    }
    let both = BTreeSet::from(["wrt", "fw"]);
    assert_eq!(
        health::to_hold(&unbalanced, &both),
        both,
        "no balanced default to keep"
    );
}

#[test]
fn health_probes_the_gateway_without_targets() {
    let p = &seed().providers[0];
    let h = Health::default();
    assert_eq!(h.targets_of(p), [p.gateway.unwrap()]);
    let t = Health {
        targets: vec![Ipv4Addr::new(203, 0, 113, 10)],
        ..Health::default()
    };
    assert_eq!(t.targets_of(p), t.targets);
    assert_eq!(
        (h.interval, h.timeout, h.down, h.up),
        (
            std::time::Duration::from_secs(1),
            std::time::Duration::from_millis(800),
            3,
            3
        )
    );
}
