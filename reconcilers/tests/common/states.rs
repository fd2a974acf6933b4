//! The generator of desired states shared by the planner and revert properties: an external
//! NIC with its address, an optional bridge with taps and a veth pair, default routes in three
//! tables (one multipath or not), fwmark rules and a sysctl — canonical, as the loader
//! produces them.

use ipnet::IpNet;
use proptest::prelude::*;
use reconcilers::model::*;

/// The names the generated taps take.
pub const TAPS: &[&str] = &["tap-a", "tap-b", "tap-c", "tap-d"];

/// A prefix from its text (a test's literal).
pub fn net(s: &str) -> IpNet {
    s.parse().expect("valid prefix")
}

/// `to via VIA dev DEV table TABLE metric METRIC`, a unicast route with one nexthop.
pub fn route(table: u32, to: &str, via: &str, dev: &str, metric: u32) -> Route {
    Route {
        table,
        to: net(to).trunc(),
        tos: 0,
        metric,
        kind: RouteType::Unicast,
        nexthops: vec![NextHop {
            via: Some(via.parse().expect("valid address")),
            dev: Some(dev.into()),
            weight: 1,
            onlink: false,
        }]
        .into(),
        src: None,
        scope: Scope::Global,
        mtu: None,
        owned: false,
    }
}

/// Tap options with an owner and a group each from `ids` (a strategy of optional uids).
pub fn arb_tap(ids: BoxedStrategy<Option<u32>>) -> impl Strategy<Value = TapOpts> {
    (
        ids.clone(),
        ids,
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(o, g, v, m)| TapOpts {
            owner: o.map(Ident::Id),
            group: g.map(Ident::Id),
            vnet_hdr: v,
            multi_queue: m,
            open_queues: 0,
        })
}

/// Tap options whose owner and group may be unset.
pub fn any_tap() -> BoxedStrategy<TapOpts> {
    arb_tap(proptest::option::of(0u32..3).boxed()).boxed()
}

prop_compose! {
    /// A desired state whose taps take their options from `tap`.
    pub fn arb_desired(tap: BoxedStrategy<TapOpts>)(
        bridge in proptest::option::of((proptest::option::of(any::<bool>()), proptest::option::of(0u32..3000), proptest::option::of(1400u32..1500))),
        taps in proptest::collection::btree_map(0usize..TAPS.len(), (tap.clone(), any::<bool>(), proptest::option::of(any::<bool>())), 0..4),
        veth in any::<bool>(),
        br_octet in 1u8..4,
        weights in (1u32..5, 1u32..5),
        multipath in any::<bool>(),
        table_a in prop_oneof![Just(101u32), Just(1001u32)],
        rule_prios in proptest::collection::btree_set(1000u32..1010, 0..3),
        sysctl in proptest::option::of(prop_oneof![Just("0"), Just("1")]),
        eth_mtu in proptest::option::of(prop_oneof![Just(1500u32), Just(9000u32)]),
    ) -> State {
        let mut s = State::default();
        let mut eth = Link::new("eth0", LinkKind::External);
        eth.mtu = eth_mtu;
        s.add_link(eth);
        s.add_address(Address { link: "eth0".into(), address: net("192.168.1.20/24"), owned: false, primary: false });
        if let Some((stp, fd, mtu)) = bridge {
            let mut br = Link::new("br0", LinkKind::Bridge(BridgeOpts { stp, forward_delay: fd }));
            br.mtu = mtu;
            s.add_link(br);
            s.add_address(Address { link: "br0".into(), address: net(&format!("10.0.{br_octet}.1/24")), owned: false , primary: false});
            s.add_route(route(table_a, &format!("10.9.{br_octet}.0/24"), &format!("10.0.{br_octet}.7"), "br0", 0));
        }
        for (i, (opts, in_bridge, up)) in taps {
            let mut t = Link::new(TAPS[i], LinkKind::Tap(opts));
            t.up = up;
            if in_bridge && s.links.contains_key("br0") {
                t.master = Some("br0".into());
            }
            s.add_link(t);
        }
        if veth {
            s.add_link(Link::new("veth-a", LinkKind::Veth(VethOpts { peer: "veth-b".into() })));
            s.add_link(Link::new("veth-b", LinkKind::Veth(VethOpts { peer: "veth-a".into() })));
            s.add_address(Address { link: "veth-a".into(), address: net("172.16.0.1/30"), owned: false, primary: false });
        }
        let (w1, w2) = weights;
        let mut default = route(254, "0.0.0.0/0", "192.168.1.1", "eth0", 0);
        if multipath {
            default.nexthops = vec![
                NextHop { via: Some("192.168.1.1".parse().unwrap()), dev: Some("eth0".into()), weight: w1, onlink: false },
                NextHop { via: Some("192.168.1.254".parse().unwrap()), dev: Some("eth0".into()), weight: w2, onlink: false },
            ]
            .into();
        }
        s.add_route(default);
        s.add_route(route(table_a, "0.0.0.0/0", "192.168.1.1", "eth0", 0));
        s.add_route(route(102, "0.0.0.0/0", "192.168.1.254", "eth0", 0));
        for (n, p) in rule_prios.into_iter().enumerate() {
            s.add_rule(Rule {
                key: RuleKey { priority: p, family: Family::Inet, from: None, to: None, fwmark: Some((n as u32 + 1, 0xff)), iif: None, oif: None, not: false, suppress_prefixlength: None },
                action: RuleAction::Lookup(if n % 2 == 0 { table_a } else { 102 }),
                owned: false,
            });
        }
        if let Some(v) = sysctl {
            s.sysctls.insert("net.ipv4.ip_forward".into(), v.into());
        }
        s
    }
}
