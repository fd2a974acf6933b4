//! Snapshot/revert on the in-memory kernel: for random earlier states and random desired
//! states, applying a plan and then its revert gives back exactly the earlier state — links,
//! addresses, routes, rules and sysctls with their ownership marks, and the protocols of the
//! foreign objects the plan replaced.
//!
//! The desired-state generator is the planner tests' (`planner.rs`), copied so that the two
//! files can change apart.

use ipnet::IpNet;
use proptest::prelude::*;
use reconcilers::kernel::fake::FakeKernel;
use reconcilers::kernel::Kernel;
use reconcilers::model::object::ObjectRef;
use reconcilers::model::*;
use reconcilers::model::{dhcp, firewall};
use reconcilers::plan::Plan;
use reconcilers::planner::plan;
use reconcilers::snapshot::{Protocols, Snapshot};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn net(s: &str) -> IpNet {
    s.parse().expect("valid prefix")
}

const SYSCTLS: &[&str] = &["net.ipv4.ip_forward"];

/// The whole observable state of the fake: the network with its marks, and the protocols.
fn look(k: &mut FakeKernel) -> (State, Protocols) {
    let names: Vec<String> = SYSCTLS.iter().map(|s| s.to_string()).collect();
    let s = block_on(k.observe(&names)).expect("observe");
    let p = block_on(k.protocols()).expect("protocols");
    (s, p)
}

fn apply(k: &mut FakeKernel, p: &Plan) {
    for (_, ops) in p.phases() {
        for r in block_on(k.apply(&ops)) {
            r.expect("fake apply");
        }
    }
}

fn converge(k: &mut FakeKernel, desired: &State) {
    let (observed, _) = look(k);
    let p = plan(desired, &observed);
    assert!(p.conflicts.is_empty(), "conflicts: {:?}", p.conflicts);
    apply(k, &p);
}

/// A host with foreign objects, some at the keys every desired state uses (the main and 102
/// defaults, rule 1000), each with a protocol of its own, so that plans replace them.
fn foreign_host() -> FakeKernel {
    let mut s = State::default();
    let mut eth = Link::new("eth0", LinkKind::External);
    eth.mtu = Some(1500);
    eth.mac = Some(MacAddr([2, 0, 0, 0, 0, 1]));
    eth.up = Some(true);
    s.add_link(eth);
    s.add_address(Address {
        link: "eth0".into(),
        address: net("192.168.1.20/24"),
        owned: false,
    });
    s.sysctls.insert("net.ipv4.ip_forward".into(), "0".into());
    let mut protocols = Protocols::new();
    for (table, to, via, proto) in [
        (200, "198.51.100.0/24", "192.168.1.9", 4u8),
        (254, "0.0.0.0/0", "192.168.1.9", 16),
        (102, "0.0.0.0/0", "192.168.1.8", 3),
    ] {
        let r = route(table, to, via, "eth0", 0);
        protocols.insert(ObjectRef::route(&r), proto);
        s.add_route(r);
    }
    let rule = Rule {
        key: RuleKey {
            fwmark: Some((9, 0xff)),
            ..RuleKey::all(1000, Family::Inet)
        },
        action: RuleAction::Lookup(200),
        owned: false,
    };
    s.add_rule(rule);
    let mut k = FakeKernel::new(s);
    k.protocols = protocols;
    k
}

const TAPS: &[&str] = &["tap-a", "tap-b", "tap-c", "tap-d"];

fn arb_tap() -> impl Strategy<Value = TapOpts> {
    // Owner and group are always set here: the kernel cannot unset a tap's owner or group
    // (TUNSETOWNER/TUNSETGROUP reject -1), and the revert does not yet recreate a tap to
    // take one away — a known limit, see the README.
    (
        (0u32..3).prop_map(Some),
        (0u32..3).prop_map(Some),
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

fn route(table: u32, to: &str, via: &str, dev: &str, metric: u32) -> Route {
    Route {
        table,
        to: net(to).trunc(),
        tos: 0,
        metric,
        kind: RouteType::Unicast,
        nexthops: vec![NextHop {
            via: Some(via.parse().unwrap()),
            dev: Some(dev.into()),
            weight: 1,
            onlink: false,
        }],
        src: None,
        scope: Scope::Global,
        mtu: None,
        owned: false,
    }
}

prop_compose! {
    fn arb_desired()(
        bridge in proptest::option::of((proptest::option::of(any::<bool>()), proptest::option::of(0u32..3000), proptest::option::of(1400u32..1500))),
        taps in proptest::collection::btree_map(0usize..TAPS.len(), (arb_tap(), any::<bool>(), proptest::option::of(any::<bool>())), 0..4),
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
        s.add_address(Address { link: "eth0".into(), address: net("192.168.1.20/24"), owned: false });
        if let Some((stp, fd, mtu)) = bridge {
            let mut br = Link::new("br0", LinkKind::Bridge(BridgeOpts { stp, forward_delay: fd }));
            br.mtu = mtu;
            s.add_link(br);
            s.add_address(Address { link: "br0".into(), address: net(&format!("10.0.{br_octet}.1/24")), owned: false });
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
            s.add_address(Address { link: "veth-a".into(), address: net("172.16.0.1/30"), owned: false });
        }
        let (w1, w2) = weights;
        let mut default = route(254, "0.0.0.0/0", "192.168.1.1", "eth0", 0);
        if multipath {
            default.nexthops = vec![
                NextHop { via: Some("192.168.1.1".parse().unwrap()), dev: Some("eth0".into()), weight: w1, onlink: false },
                NextHop { via: Some("192.168.1.254".parse().unwrap()), dev: Some("eth0".into()), weight: w2, onlink: false },
            ];
        }
        s.add_route(default);
        s.add_route(route(table_a, "0.0.0.0/0", "192.168.1.1", "eth0", 0));
        s.add_route(route(102, "0.0.0.0/0", "192.168.1.254", "eth0", 0));
        for (n, p) in rule_prios.into_iter().enumerate() {
            s.add_rule(Rule {
                key: RuleKey { priority: p, family: Family::Inet, from: None, to: None, fwmark: Some((n as u32 + 1, 0xff)), iif: None, oif: None, not: false },
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Apply then revert returns exactly the earlier state, from any earlier state (the
    /// foreign host, or it after another desired state) to any desired state; and the revert
    /// of a revert is empty.
    #[test]
    fn apply_then_revert_gives_back_the_earlier_state(
        first in proptest::option::of(arb_desired()),
        second in arb_desired(),
        route_extras in proptest::option::of((proptest::option::of(1400u32..1500), any::<bool>())),
    ) {
        // Attributes an earlier state lacks and the new one adds, which the planner reads as
        // "unmanaged" when they are absent: the revert must still take them away.
        let mut second = second;
        if let Some((mtu, src)) = route_extras {
            if let Some(r) = second.routes.values_mut().find(|r| r.table == 102) {
                r.mtu = mtu;
                r.src = src.then(|| "192.168.1.20".parse().unwrap());
            }
        }
        let mut k = foreign_host();
        if let Some(first) = &first {
            converge(&mut k, first);
        }
        let (before, before_protocols) = look(&mut k);
        let p = plan(&second, &before);
        prop_assume!(p.conflicts.is_empty());
        let snap = Snapshot::take(&p, &before, &before_protocols, DEFAULT_PROTOCOL);
        // The record survives its file.
        let json = serde_json::to_string(&snap).expect("serialize");
        let snap: Snapshot = serde_json::from_str(&json).expect("deserialize");
        apply(&mut k, &p);

        let names: Vec<String> = snap.sysctl_names();
        let now = block_on(k.observe(&names)).expect("observe");
        let revert = reconcilers::revert::plan(&snap, &now);
        prop_assert!(revert.conflicts.is_empty(), "revert conflicts: {:?}", revert.conflicts);
        let done = block_on(reconcilers::revert::apply(&mut k, &snap, &revert));
        prop_assert!(done.failures.is_empty(), "revert failed: {:?}", done.failures);

        let (after, after_protocols) = look(&mut k);
        prop_assert_eq!(&after, &before, "plan: {:#?}\nrevert: {:#?}", p.changes, revert.changes);
        prop_assert_eq!(&after_protocols, &before_protocols);
        let now = block_on(k.observe(&names)).expect("observe");
        let again = reconcilers::revert::plan(&snap, &now);
        prop_assert!(again.is_empty(), "revert not idempotent: {:#?}", again.changes);
    }
}

/// A firewall as the providers section renders it (marks and masquerade; no tracked
/// gateways, whose sets the fake would fill from its neighbour table).
fn firewall(marks: &[(u32, firewall::MarkLayer)], masquerade: bool) -> Option<firewall::Firewall> {
    let mut spec = firewall::Spec {
        mask: 0xff,
        ..firewall::Spec::default()
    };
    for (i, (mark, layer)) in marks.iter().enumerate() {
        spec.marks.push(firewall::Mark {
            iif: Some(TAPS[i].into()),
            from: None,
            to: None,
            mark: *mark,
            layer: *layer,
        });
    }
    if masquerade {
        spec.masquerade.push(firewall::Masq {
            from: Some(net("10.0.0.0/16")),
            out: "eth0".into(),
        });
    }
    (!spec.is_empty()).then(|| reconcilers::firewall::render(&spec))
}

fn dhcp_server(end: u8, hosts: &[u8]) -> dhcp::DhcpServer {
    let settings = dhcp::DhcpSettings {
        ranges: vec![dhcp::Range4 {
            start: "10.0.1.100".parse().unwrap(),
            end: std::net::Ipv4Addr::new(10, 0, 1, end),
            subnet: "10.0.1.0/24".parse().unwrap(),
        }],
        router: Some("10.0.1.1".parse().unwrap()),
        hosts: hosts
            .iter()
            .map(|h| dhcp::StaticHost {
                mac: MacAddr([0x52, 0x54, 0, 0, 0, *h]),
                ip: Some(std::net::Ipv4Addr::new(10, 0, 1, 10 + h)),
                name: None,
            })
            .collect(),
        ..dhcp::DhcpSettings::default()
    };
    dhcp::DhcpServer::new("br0", settings)
}

fn arb_services() -> impl Strategy<Value = (Option<firewall::Firewall>, Option<dhcp::DhcpServer>)> {
    let layer = prop_oneof![
        Just(firewall::MarkLayer::Inet),
        Just(firewall::MarkLayer::Bridge),
        Just(firewall::MarkLayer::Both)
    ];
    (
        proptest::collection::vec((1u32..4, layer), 0..3),
        any::<bool>(),
        proptest::option::of((
            150u8..200,
            proptest::sample::subsequence(vec![1u8, 2, 3], 0..=3),
        )),
    )
        .prop_map(|(marks, masq, dhcp)| {
            (
                firewall(&marks, masq),
                dhcp.map(|(end, hosts)| dhcp_server(end, &hosts)),
            )
        })
}

/// The services as a host holds them: netconverge's tables and the dnsmasq instances.
fn services(
    k: &mut FakeKernel,
) -> (
    Option<String>,
    std::collections::BTreeMap<String, dhcp::DhcpServer>,
) {
    (k.nft.listing(), k.dhcp.clone())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// The same for the services: netconverge's nftables tables and the dnsmasq instances
    /// (their files and whether they run) are back as they were.
    #[test]
    fn apply_then_revert_gives_back_the_earlier_services(
        first in (arb_desired(), arb_services()),
        second in (arb_desired(), arb_services()),
    ) {
        let with = |(mut s, (fw, dhcp)): (State, (Option<firewall::Firewall>, Option<dhcp::DhcpServer>))| {
            s.firewall = fw;
            if let (Some(d), true) = (dhcp, s.links.contains_key("br0")) {
                s.dhcp.insert("br0".into(), d);
            }
            s
        };
        let (first, second) = (with(first), with(second));
        let mut k = foreign_host();
        converge(&mut k, &first);
        let (before, protocols) = look(&mut k);
        let before_services = services(&mut k);
        let p = plan(&second, &before);
        prop_assume!(p.conflicts.is_empty());
        let snap = Snapshot::take(&p, &before, &protocols, DEFAULT_PROTOCOL);
        apply(&mut k, &p);
        let now = block_on(k.observe(&snap.sysctl_names())).expect("observe");
        let revert = reconcilers::revert::plan(&snap, &now);
        let done = block_on(reconcilers::revert::apply(&mut k, &snap, &revert));
        prop_assert!(done.failures.is_empty(), "revert failed: {:?}", done.failures);
        prop_assert_eq!(services(&mut k), before_services);
        let (after, _) = look(&mut k);
        prop_assert_eq!(after, before);
    }
}
