//! Planner tests on the in-memory kernel: convergence in one pass (checked by an oracle that
//! reads the fake's state, not by planning again), empty second plans, foreign objects
//! untouched, and removal order the reverse of add order — for the network and for the
//! services (firewall, DHCP), which the fake kernel keeps as a host does.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use reconcilers::kernel::fake::FakeKernel;
use reconcilers::kernel::Kernel;
use reconcilers::model::dhcp::{DhcpServer, DhcpSettings, Lease, Range4, StaticHost};
use reconcilers::model::firewall::{Firewall, Mark, MarkLayer, Masq, Problem, Spec, Track};
use reconcilers::model::*;
use reconcilers::plan::{Action, ObjectKind, Op, Phase, Plan};
use reconcilers::planner::plan;

use common::oracle;
use common::states::{any_tap, arb_desired, net, route, TAPS};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Plan against the fake, apply, and return the plan.
fn converge(k: &mut FakeKernel, desired: &State) -> Plan {
    let names: Vec<String> = desired.sysctls.keys().cloned().collect();
    let observed = block_on(k.observe(&names)).expect("observe");
    let p = plan(desired, &observed);
    assert!(p.conflicts.is_empty(), "conflicts: {:?}", p.conflicts);
    for (_, ops) in p.phases() {
        for r in block_on(k.apply(&ops)) {
            r.expect("fake apply");
        }
    }
    p
}

fn replan(k: &mut FakeKernel, desired: &State) -> Plan {
    let names: Vec<String> = desired.sysctls.keys().cloned().collect();
    let observed = block_on(k.observe(&names)).expect("observe");
    plan(desired, &observed)
}

/// A host with objects netconverge does not own: a NIC, its address, a route and a rule.
fn foreign_host() -> State {
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
        primary: false,
    });
    s.add_route(route(200, "198.51.100.0/24", "192.168.1.9", "eth0", 0));
    s.add_rule(Rule {
        key: RuleKey {
            priority: 500,
            family: Family::Inet,
            from: Some(net("192.168.7.0/24")),
            to: None,
            fwmark: None,
            iif: None,
            oif: None,
            not: false,
            suppress_prefixlength: None,
        },
        action: RuleAction::Lookup(200),
        owned: false,
    });
    s
}

/// The foreign host with, besides, foreign objects where desired states put theirs: a default
/// route in table 102 (every desired state has one there) and a fwmark rule at 1001 (where
/// some have theirs), so that passes replace foreign objects too.
fn crowded_host() -> State {
    let mut s = foreign_host();
    s.add_route(route(102, "0.0.0.0/0", "192.168.1.9", "eth0", 0));
    s.add_rule(fwmark_rule(1001, 1, 200, false));
    s
}

/// `priority: fwmark MARK/0xff lookup TABLE`.
fn fwmark_rule(priority: u32, mark: u32, table: u32, owned: bool) -> Rule {
    Rule {
        key: RuleKey {
            fwmark: Some((mark, 0xff)),
            ..RuleKey::all(priority, Family::Inet)
        },
        action: RuleAction::Lookup(table),
        owned,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// From any earlier desired state, any new one converges in one pass — the oracle finds
    /// every desired object in the fake, the foreign ones kept unless at a desired key, and
    /// none of netconverge's own that is no longer desired — and a second plan is empty and
    /// writes nothing.
    #[test]
    fn converges_in_one_pass_and_keeps_foreign_objects(first in arb_desired(any_tap()), second in arb_desired(any_tap())) {
        let mut k = FakeKernel::new(crowded_host());
        for desired in [&first, &second] {
            let earlier = k.state.clone();
            converge(&mut k, desired);
            oracle::pass(&earlier, &k, desired).map_err(TestCaseError::fail)?;
            let again = replan(&mut k, desired);
            prop_assert!(again.is_empty(), "second plan not empty: {:#?}", again.changes);
            let writes = k.writes();
            for (_, ops) in again.phases() { block_on(k.apply(&ops)); }
            prop_assert_eq!(k.writes(), writes);
        }
    }

    /// Plans never remove or change a foreign object except one sitting at a desired key.
    #[test]
    fn plans_never_touch_foreign_objects(desired in arb_desired(any_tap())) {
        let mut k = FakeKernel::new(foreign_host());
        let p = converge(&mut k, &desired);
        for c in &p.changes {
            for op in &c.ops {
                match op {
                    Op::DeleteRoute(r) => prop_assert!(r.owned, "deletes foreign route {:?}", r),
                    Op::DeleteRule(r) => prop_assert!(r.owned || desired.rules.contains_key(&r.key()), "deletes foreign rule {:?}", r),
                    Op::DeleteAddress(a) => prop_assert!(a.owned),
                    Op::DeleteLink(n) => prop_assert!(n != "eth0"),
                    _ => {}
                }
            }
        }
    }

    /// In the flattened write order, removals come first, in the reverse of the add order.
    #[test]
    fn removal_order_is_reverse_of_add_order(first in arb_desired(any_tap()), second in arb_desired(any_tap())) {
        let mut k = FakeKernel::new(foreign_host());
        converge(&mut k, &first);
        let observed = block_on(k.observe(&[])).unwrap();
        let p = plan(&second, &observed);
        let phases: Vec<Phase> = p.phases().into_iter().map(|(ph, _)| ph).collect();
        let mut sorted = phases.clone();
        sorted.sort();
        prop_assert_eq!(&phases, &sorted);
        let rank = |ph: Phase| match ph {
            Phase::CreateLinks | Phase::CreateStackedLinks | Phase::SetLinks | Phase::DeleteLinks => 0,
            Phase::Sysctls => 1,
            // The firewall goes in after the addresses, before the routes relying on it.
            Phase::AddAddresses | Phase::DeleteAddresses | Phase::Firewall => 2,
            Phase::AddRoutes | Phase::DeleteRoutes => 3,
            Phase::AddRules | Phase::DeleteRules => 4,
            Phase::Services => 5,
        };
        let removals: Vec<i32> = phases.iter().filter(|p| **p <= Phase::DeleteLinks).map(|p| rank(*p)).collect();
        let adds: Vec<i32> = phases.iter().filter(|p| **p > Phase::DeleteLinks).map(|p| rank(*p)).collect();
        prop_assert!(removals.windows(2).all(|w| w[0] > w[1]), "removals not in reverse dependency order: {phases:?}");
        prop_assert!(adds.windows(2).all(|w| w[0] <= w[1]), "adds not in dependency order: {phases:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Services: a firewall (providers sharing eth0, told apart by their gateways' MACs) and a DHCP
// server on br0.

/// What a gateway does when netconverge looks for its MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gateway {
    /// It is in the neighbour table already.
    Known,
    /// It answers the probe.
    Answers,
    /// It never answers: its set stays empty.
    Silent,
}

fn gateway_ip(n: u32) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 1, u8::try_from(n).expect("small provider number"))
}

fn gateway_mac(n: u32) -> MacAddr {
    MacAddr([
        0x52,
        0x54,
        0,
        0,
        0x11,
        u8::try_from(n).expect("small provider number"),
    ])
}

fn arb_gateway() -> impl Strategy<Value = Gateway> {
    prop_oneof![
        Just(Gateway::Known),
        Just(Gateway::Answers),
        Just(Gateway::Silent)
    ]
}

prop_compose! {
    /// A firewall as the providers section renders it, with what each tracked gateway does.
    fn arb_firewall()(
        tracked in proptest::sample::subsequence(vec![1u32, 2, 3], 0..=3),
        gateways in proptest::collection::vec(arb_gateway(), 3),
        shared in any::<bool>(),
        marks in proptest::collection::vec(
            (1u32..4, prop_oneof![Just(MarkLayer::Inet), Just(MarkLayer::Bridge), Just(MarkLayer::Both)]),
            0..3,
        ),
        masquerade in any::<bool>(),
    ) -> (Option<Firewall>, Vec<(u32, Gateway)>) {
        let mut spec = Spec { mask: 0xff, ..Spec::default() };
        let mut behaviour = Vec::new();
        for n in tracked {
            spec.track.push(Track {
                provider: format!("p{n}"),
                number: n,
                mark: n,
                interface: "eth0".into(),
                gateway: shared.then(|| gateway_ip(n)),
            });
            if shared {
                behaviour.push((n, gateways[n as usize - 1]));
            }
        }
        for (i, (mark, layer)) in marks.into_iter().enumerate() {
            spec.marks.push(Mark { iif: Some(TAPS[i].into()), from: None, to: None, mark, layer });
        }
        if masquerade {
            spec.masquerade.push(Masq { from: Some(net("10.0.0.0/16")), out: "eth0".into() });
        }
        ((!spec.is_empty()).then(|| reconcilers::firewall::render(&spec)), behaviour)
    }
}

prop_compose! {
    /// DHCP settings for br0.
    fn arb_dhcp()(
        end in 150u8..200,
        hosts in proptest::sample::subsequence(vec![1u8, 2, 3], 0..=3),
        named in any::<bool>(),
        lease in prop_oneof![Just(Lease::DEFAULT), Just(Lease::Seconds(43_200)), Just(Lease::Infinite)],
    ) -> DhcpSettings {
        DhcpSettings {
            ranges: vec![Range4 {
                start: "10.0.1.100".parse().unwrap(),
                end: Ipv4Addr::new(10, 0, 1, end),
                subnet: "10.0.1.0/24".parse().unwrap(),
            }],
            lease,
            domain: named.then(|| "vm.test".to_string()),
            router: Some("10.0.1.1".parse().unwrap()),
            hosts: hosts
                .into_iter()
                .map(|h| StaticHost {
                    mac: MacAddr([0x52, 0x54, 0, 0, 0, h]),
                    ip: Some(Ipv4Addr::new(10, 0, 1, 10 + h)),
                    name: named.then(|| format!("vm{h}")),
                })
                .collect(),
            ..DhcpSettings::default()
        }
    }
}

prop_compose! {
    /// A desired state with services, and what the gateways do.
    fn arb_with_services()(
        mut desired in arb_desired(any_tap()),
        (firewall, gateways) in arb_firewall(),
        dhcp in proptest::option::of(arb_dhcp()),
    ) -> (State, Vec<(u32, Gateway)>) {
        desired.firewall = firewall;
        if let Some(settings) = dhcp {
            desired.dhcp.insert("br0".into(), DhcpServer::new("br0", settings));
        }
        (desired, gateways)
    }
}

/// Make the fake's neighbours behave as `gateways` say (a MAC once learnt stays).
fn seed_neighbours(k: &mut FakeKernel, gateways: &[(u32, Gateway)]) {
    for &(n, g) in gateways {
        let key = (IpAddr::V4(gateway_ip(n)), "eth0".to_string());
        match g {
            Gateway::Known => {
                k.neighbours.insert(key, gateway_mac(n));
            }
            Gateway::Answers => {
                k.answering.insert(key, gateway_mac(n));
            }
            Gateway::Silent => {}
        }
    }
}

/// What observing the fake says about the services the oracle found in place: the desired
/// digest without a problem, and each dnsmasq in sync with its files parsed back.
fn observes_services(k: &mut FakeKernel, desired: &State) -> Result<(), TestCaseError> {
    let observed = block_on(k.observe(&[])).expect("observe");
    if let Some(f) = &desired.firewall {
        let o = observed.firewall.expect("tables observed");
        prop_assert_eq!(&o.digest, &f.digest);
        prop_assert_eq!(&o.problem, &None);
    }
    for (bridge, d) in &desired.dhcp {
        let o = &observed.dhcp[bridge];
        prop_assert!(o.in_sync(d), "{bridge}: {o:?}");
        prop_assert_eq!(&o.settings, &d.settings);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// With services too, any desired state converges in one pass from any earlier one, a
    /// second plan is empty and writes nothing, and the fake holds the desired firewall (its
    /// gateway sets filled where the gateway's MAC is known) and DHCP services with the rest.
    #[test]
    fn services_converge_in_one_pass(first in arb_with_services(), second in arb_with_services()) {
        let mut k = FakeKernel::new(crowded_host());
        for (desired, gateways) in [&first, &second] {
            seed_neighbours(&mut k, gateways);
            let earlier = k.state.clone();
            converge(&mut k, desired);
            oracle::pass(&earlier, &k, desired).map_err(TestCaseError::fail)?;
            let again = replan(&mut k, desired);
            prop_assert!(again.is_empty(), "second plan not empty: {:#?}", again.changes);
            let writes = k.writes();
            for (_, ops) in again.phases() { block_on(k.apply(&ops)); }
            prop_assert_eq!(k.writes(), writes);
            observes_services(&mut k, desired)?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Focused cases.

fn bridge_with_tap() -> State {
    let mut s = State::default();
    s.add_link(Link::new("br0", LinkKind::Bridge(BridgeOpts::default())));
    let mut tap = Link::new(
        "tap0",
        LinkKind::Tap(TapOpts {
            owner: Some(Ident::Id(1000)),
            ..Default::default()
        }),
    );
    tap.master = Some("br0".into());
    s.add_link(tap);
    s.add_address(Address {
        link: "br0".into(),
        address: net("10.0.0.1/24"),
        owned: false,
        primary: false,
    });
    s
}

#[test]
fn a_new_tap_gets_alias_master_and_up_in_one_request() {
    let desired = bridge_with_tap();
    let p = plan(&desired, &State::default());
    let sets: Vec<_> = p
        .phases()
        .into_iter()
        .flat_map(|(_, ops)| ops)
        .filter_map(|op| match op {
            Op::SetLink(s) if s.name == "tap0" => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].alias.as_deref(), Some(LINK_ALIAS));
    assert_eq!(sets[0].master, Some(Some("br0".to_string())));
    assert_eq!(sets[0].up, Some(true));
}

#[test]
fn removing_a_tap_deletes_it_but_removing_an_external_link_deletes_nothing() {
    let mut k = FakeKernel::new(foreign_host());
    let mut desired = bridge_with_tap();
    let mut eth = Link::new("eth0", LinkKind::External);
    eth.mtu = Some(1500);
    desired.add_link(eth);
    converge(&mut k, &desired);
    desired.links.remove("tap0");
    desired.links.remove("eth0");
    let p = converge(&mut k, &desired);
    let removed: Vec<_> = p
        .changes
        .iter()
        .filter(|c| c.action == Action::Remove)
        .map(|c| c.object.id.clone())
        .collect();
    assert_eq!(removed, vec!["tap0".to_string()]);
    assert!(k.state.links.contains_key("eth0"));
}

#[test]
fn changing_multi_queue_recreates_the_tap_and_says_so() {
    let mut k = FakeKernel::new(State::default());
    let mut desired = bridge_with_tap();
    converge(&mut k, &desired);
    if let LinkKind::Tap(t) = &mut desired.links.get_mut("tap0").unwrap().kind {
        t.multi_queue = Some(true);
    }
    let p = converge(&mut k, &desired);
    let c = p
        .changes
        .iter()
        .find(|c| c.object.id == "tap0")
        .expect("tap change");
    assert!(
        c.note.as_deref().unwrap_or("").starts_with("recreate"),
        "{:?}",
        c.note
    );
    assert!(matches!(c.ops[0], Op::DeleteLink(_)));
    // The recreated tap is back in its bridge and the bridge kept its address.
    assert_eq!(k.state.links["tap0"].master.as_deref(), Some("br0"));
    assert!(replan(&mut k, &desired).is_empty());
}

#[test]
fn a_foreign_route_at_a_desired_key_is_replaced_and_labelled() {
    let mut host = foreign_host();
    let mut r = route(254, "0.0.0.0/0", "192.168.1.9", "eth0", 0);
    r.owned = false;
    host.add_route(r);
    let mut desired = State::default();
    desired.add_route(route(254, "0.0.0.0/0", "192.168.1.1", "eth0", 0));
    let mut k = FakeKernel::new(host);
    let p = converge(&mut k, &desired);
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].note.as_deref(), Some("replace foreign route"));
    assert!(matches!(p.changes[0].ops[0], Op::ReplaceRoute(_)));
}

#[test]
fn an_identical_foreign_route_is_left_alone() {
    let mut host = foreign_host();
    host.add_route(route(254, "0.0.0.0/0", "192.168.1.1", "eth0", 0));
    let mut desired = State::default();
    desired.add_route(route(254, "0.0.0.0/0", "192.168.1.1", "eth0", 0));
    assert!(plan(&desired, &host).is_empty());
}

#[test]
fn a_foreign_link_of_another_kind_is_a_conflict_not_a_deletion() {
    let mut host = State::default();
    host.add_link(Link::new(
        "tap0",
        LinkKind::Bridge(BridgeOpts {
            stp: Some(false),
            forward_delay: Some(0),
        }),
    ));
    let p = plan(&bridge_with_tap(), &host);
    assert_eq!(p.conflicts.len(), 1, "{:?}", p.conflicts);
    assert!(p.conflicts[0].contains("tap0"));
}

#[test]
fn veth_pair_declared_on_both_ends_is_created_once() {
    let mut desired = State::default();
    desired.add_link(Link::new(
        "va",
        LinkKind::Veth(VethOpts { peer: "vb".into() }),
    ));
    desired.add_link(Link::new(
        "vb",
        LinkKind::Veth(VethOpts { peer: "va".into() }),
    ));
    let p = plan(&desired, &State::default());
    let creates = p
        .changes
        .iter()
        .flat_map(|c| &c.ops)
        .filter(|o| matches!(o, Op::CreateLink(_)))
        .count();
    assert_eq!(creates, 1);
    let mut k = FakeKernel::new(State::default());
    converge(&mut k, &desired);
    assert!(replan(&mut k, &desired).is_empty());
}

#[test]
fn summary_counts_actions() {
    let p = plan(&bridge_with_tap(), &State::default());
    let s = p.summary();
    assert_eq!((s.add, s.change, s.remove), (3, 0, 0));
}

#[test]
fn a_changed_link_shows_only_what_the_desired_state_manages() {
    let mut host = State::default();
    host.add_link(Link::new(
        "br0",
        LinkKind::Bridge(BridgeOpts {
            stp: Some(false),
            forward_delay: Some(1500),
        }),
    ));
    let mut tap = Link::new(
        "tap0",
        LinkKind::Tap(TapOpts {
            owner: None,
            group: None,
            vnet_hdr: Some(false),
            multi_queue: Some(false),
            open_queues: 0,
        }),
    );
    tap.mtu = Some(1500);
    tap.mac = Some(MacAddr([2, 0, 0, 0, 0, 9]));
    tap.up = Some(false);
    host.add_link(tap);
    let mut desired = State::default();
    let mut want = Link::new("tap0", LinkKind::Tap(TapOpts::default()));
    want.master = Some("br0".into());
    desired.add_link(want);
    let p = plan(&desired, &host);
    let c = p
        .changes
        .iter()
        .find(|c| c.object.id == "tap0")
        .expect("tap0 changes");
    let Some(reconcilers::plan::Object::Link(before)) = &c.before else {
        panic!("no before: {c:?}")
    };
    assert_eq!(
        (before.mtu, before.mac, before.master.as_deref()),
        (None, None, None)
    );
    assert_eq!(
        before.up,
        Some(false),
        "up is managed (links netconverge may create are up)"
    );
    assert_eq!(before.kind, LinkKind::Tap(TapOpts::default()));
}

// ---------------------------------------------------------------------------------------------
// Focused cases: services on the fake kernel.

/// Two providers on eth0 told apart by their gateways' MACs, masqueraded.
fn shared_eth0_firewall() -> Firewall {
    let track = |n: u32| Track {
        provider: format!("p{n}"),
        number: n,
        mark: n,
        interface: "eth0".into(),
        gateway: Some(gateway_ip(n)),
    };
    reconcilers::firewall::render(&Spec {
        mask: 0xff,
        track: vec![track(1), track(2)],
        marks: vec![],
        masquerade: vec![Masq {
            from: None,
            out: "eth0".into(),
        }],
    })
}

fn only_firewall(f: Firewall) -> State {
    State {
        firewall: Some(f),
        ..State::default()
    }
}

fn firewall_change(p: &Plan) -> Option<&reconcilers::plan::Change> {
    p.changes
        .iter()
        .find(|c| c.object.kind == ObjectKind::Firewall)
}

#[test]
fn a_silent_gateway_leaves_its_set_empty_until_its_mac_is_known() {
    let desired = only_firewall(shared_eth0_firewall());
    let mut k = FakeKernel::new(State::default());
    seed_neighbours(&mut k, &[(1, Gateway::Answers), (2, Gateway::Silent)]);
    converge(&mut k, &desired);
    let listing = k.nft.listing().unwrap();
    assert_eq!(listing.matches("elements = {").count(), 1, "{listing}");
    assert!(listing.contains(&format!("elements = {{ {} }}", gateway_mac(1))));
    assert!(replan(&mut k, &desired).is_empty());
    // The second gateway shows up: its MAC no longer matches the (empty) set, which is drift.
    seed_neighbours(&mut k, &[(2, Gateway::Known)]);
    let p = replan(&mut k, &desired);
    let c = firewall_change(&p).expect("firewall change");
    assert_eq!(c.action, Action::Change);
    assert!(
        c.note.as_deref().unwrap_or("").contains(&format!(
            "gateway 192.168.1.2 on eth0 now has MAC {}",
            gateway_mac(2)
        )),
        "{:?}",
        c.note
    );
    converge(&mut k, &desired);
    assert_eq!(k.nft.listing().unwrap().matches("elements = {").count(), 2);
    assert!(replan(&mut k, &desired).is_empty());
}

#[test]
fn tables_changed_behind_netconverge_are_replaced_and_removed_ones_deleted() {
    let desired = only_firewall(shared_eth0_firewall());
    let mut k = FakeKernel::new(State::default());
    converge(&mut k, &desired);
    let inet = k.nft.tables.get_mut("inet").unwrap();
    *inet = inet.replace("\t\toifname \"eth0\" meta nfproto ipv4 masquerade\n", "");
    let p = replan(&mut k, &desired);
    let c = firewall_change(&p).expect("firewall change");
    assert_eq!(
        c.note.as_deref(),
        Some("the tables were changed outside netconverge")
    );
    converge(&mut k, &desired);
    assert!(k.nft.listing().unwrap().contains("masquerade"));
    assert!(replan(&mut k, &desired).is_empty());
    // No firewall desired any more: both tables go.
    let p = converge(&mut k, &State::default());
    assert_eq!(firewall_change(&p).map(|c| c.action), Some(Action::Remove));
    assert_eq!(k.nft.listing(), None);
    assert!(replan(&mut k, &State::default()).is_empty());
}

#[test]
fn a_seeded_firewall_is_in_sync_and_an_unloaded_one_is_not_ours() {
    let f = shared_eth0_firewall();
    let mut k = FakeKernel::new(only_firewall(f.clone()));
    assert!(replan(&mut k, &only_firewall(f.clone())).is_empty());
    // The same ruleset loaded by hand carries no digest: netconverge replaces it.
    let mut by_hand = FakeKernel::new(State::default());
    by_hand.nft.load(&f.ruleset).unwrap();
    let observed = block_on(by_hand.observe(&[])).unwrap();
    assert!(matches!(
        observed.firewall.and_then(|o| o.problem),
        Some(Problem::Modified(m)) if m.contains("not loaded by netconverge")
    ));
}

#[test]
fn a_crashed_dnsmasq_is_restarted_a_hosts_change_reloaded_and_a_removal_stops_it() {
    let settings = DhcpSettings {
        ranges: vec![Range4 {
            start: "10.0.1.100".parse().unwrap(),
            end: "10.0.1.199".parse().unwrap(),
            subnet: "10.0.1.0/24".parse().unwrap(),
        }],
        router: Some("10.0.1.1".parse().unwrap()),
        ..DhcpSettings::default()
    };
    let mut desired = State::default();
    desired
        .dhcp
        .insert("br0".into(), DhcpServer::new("br0", settings.clone()));
    let mut k = FakeKernel::new(State::default());
    let p = converge(&mut k, &desired);
    assert_eq!(p.changes[0].note.as_deref(), Some("start dnsmasq"));
    assert!(k.dhcp["br0"].running);
    assert!(replan(&mut k, &desired).is_empty());

    k.dhcp.get_mut("br0").unwrap().running = false;
    let p = converge(&mut k, &desired);
    assert!(p.changes[0].note.as_deref().unwrap().starts_with("start"));
    assert!(k.dhcp["br0"].running);

    let with_host = DhcpSettings {
        hosts: vec![StaticHost {
            mac: MacAddr([0x52, 0x54, 0, 0, 0, 9]),
            ip: Some("10.0.1.9".parse().unwrap()),
            name: None,
        }],
        ..settings
    };
    desired
        .dhcp
        .insert("br0".into(), DhcpServer::new("br0", with_host));
    let p = converge(&mut k, &desired);
    assert!(p.changes[0].note.as_deref().unwrap().contains("SIGHUP"));
    assert_eq!(k.dhcp["br0"].hosts, desired.dhcp["br0"].hosts);
    assert!(replan(&mut k, &desired).is_empty());

    let p = converge(&mut k, &State::default());
    assert_eq!(p.changes[0].action, Action::Remove);
    assert!(k.dhcp.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Focused cases: foreign objects that shadow desired ones, or sit at their keys.

/// The warnings of planning `desired` over `host`.
fn warnings(desired: &State, host: &State) -> Vec<String> {
    plan(desired, host).warnings
}

fn with_rules(rules: impl IntoIterator<Item = Rule>) -> State {
    let mut s = State::default();
    for r in rules {
        s.add_rule(r);
    }
    s
}

#[test]
fn an_earlier_foreign_rule_with_the_same_selector_shadows_a_desired_one() {
    let desired = with_rules([fwmark_rule(1001, 1, 101, false)]);
    let host = with_rules([fwmark_rule(900, 1, 200, false)]);
    assert_eq!(
        warnings(&desired, &host),
        [
            "foreign rule 900: from all fwmark 0x1/0xff lookup 200 shadows desired rule \
          1001: from all fwmark 0x1/0xff lookup 101 (same selector, earlier priority)"
        ]
    );
}

#[test]
fn rules_that_do_not_shadow_are_not_warned_about() {
    let desired = with_rules([fwmark_rule(1001, 1, 101, false)]);
    let quiet = [
        // Later: the desired rule matches first.
        fwmark_rule(1100, 1, 200, false),
        // Earlier, but another selector.
        fwmark_rule(900, 2, 200, false),
        // Earlier, same selector, same action: the packets go where the desired rule sends them.
        fwmark_rule(950, 1, 101, false),
        // Earlier and netconverge's own: it is removed by the plan, not a warning.
        fwmark_rule(960, 1, 200, true),
        // At the desired key: replaced, not shadowing.
        fwmark_rule(1001, 1, 200, false),
    ];
    for r in quiet {
        let id = r.id();
        assert_eq!(
            warnings(&desired, &with_rules([r])),
            Vec::<String>::new(),
            "{id}"
        );
    }
}

#[test]
fn a_foreign_rule_at_a_desired_key_is_replaced_and_labelled_and_an_owned_one_is_not_labelled() {
    let desired = with_rules([fwmark_rule(1001, 1, 101, false)]);
    for (owned, note) in [(false, Some("replace foreign rule")), (true, None)] {
        let old = fwmark_rule(1001, 1, 200, owned);
        let p = plan(&desired, &with_rules([old.clone()]));
        assert_eq!(p.changes.len(), 1, "{:?}", p.changes);
        let c = &p.changes[0];
        assert_eq!((c.action, c.note.as_deref()), (Action::Change, note));
        assert_eq!(
            c.ops,
            [
                Op::DeleteRule(old),
                Op::AddRule(fwmark_rule(1001, 1, 101, false))
            ]
        );
    }
}

fn with_routes(routes: impl IntoIterator<Item = Route>) -> State {
    let mut s = State::default();
    for r in routes {
        s.add_route(r);
    }
    s
}

fn foreign_route(table: u32, to: &str, via: &str, metric: u32, tos: u8, owned: bool) -> Route {
    Route {
        tos,
        owned,
        ..route(table, to, via, "eth0", metric)
    }
}

#[test]
fn a_foreign_route_with_a_lower_metric_shadows_a_desired_one() {
    let desired = with_routes([route(101, "198.51.100.0/24", "192.168.1.1", "eth0", 100)]);
    let host = with_routes([foreign_route(
        101,
        "198.51.100.0/24",
        "192.168.1.9",
        10,
        0,
        false,
    )]);
    assert_eq!(
        warnings(&desired, &host),
        [
            "foreign route 198.51.100.0/24 via 192.168.1.9 dev eth0 table 101 metric 10 shadows \
          desired route 198.51.100.0/24 via 192.168.1.1 dev eth0 table 101 metric 100 \
          (lower metric 10 < 100)"
        ]
    );
}

#[test]
fn routes_that_do_not_shadow_are_not_warned_about() {
    let desired = with_routes([route(101, "198.51.100.0/24", "192.168.1.1", "eth0", 100)]);
    let quiet = [
        // A higher metric: the desired route wins.
        foreign_route(101, "198.51.100.0/24", "192.168.1.9", 200, 0, false),
        // The same metric is the desired key: replaced, not shadowing.
        foreign_route(101, "198.51.100.0/24", "192.168.1.9", 100, 0, false),
        // Another table, destination or TOS is another lookup.
        foreign_route(102, "198.51.100.0/24", "192.168.1.9", 10, 0, false),
        foreign_route(101, "198.51.101.0/24", "192.168.1.9", 10, 0, false),
        foreign_route(101, "198.51.100.0/24", "192.168.1.9", 10, 4, false),
        // netconverge's own: removed by the plan.
        foreign_route(101, "198.51.100.0/24", "192.168.1.9", 10, 0, true),
    ];
    for r in quiet {
        let id = r.id();
        assert_eq!(
            warnings(&desired, &with_routes([r])),
            Vec::<String>::new(),
            "{id}"
        );
    }
}

#[test]
fn an_owned_route_at_a_desired_key_is_replaced_without_a_label() {
    let desired = with_routes([route(254, "0.0.0.0/0", "192.168.1.1", "eth0", 0)]);
    let host = with_routes([foreign_route(254, "0.0.0.0/0", "192.168.1.9", 0, 0, true)]);
    let p = plan(&desired, &host);
    assert_eq!(p.changes.len(), 1, "{:?}", p.changes);
    assert_eq!(
        (p.changes[0].action, p.changes[0].note.as_deref()),
        (Action::Change, None)
    );
    assert_eq!(
        p.changes[0].ops,
        [Op::ReplaceRoute(route(
            254,
            "0.0.0.0/0",
            "192.168.1.1",
            "eth0",
            0
        ))]
    );
}

#[test]
fn a_veth_re_paired_with_a_new_declared_peer_is_created_once() {
    // va was paired with vx; now va and vb are declared as a pair. Recreating va creates vb
    // with it, so vb must not be created a second time (EEXIST).
    let mut host = State::default();
    for (name, peer) in [("va", "vx"), ("vx", "va")] {
        let mut l = Link::new(name, LinkKind::Veth(VethOpts { peer: peer.into() }));
        l.owned = true;
        host.add_link(l);
    }
    let mut desired = State::default();
    for (name, peer) in [("va", "vb"), ("vb", "va")] {
        desired.add_link(Link::new(
            name,
            LinkKind::Veth(VethOpts { peer: peer.into() }),
        ));
    }
    let mut k = FakeKernel::new(host);
    let earlier = k.state.clone();
    converge(&mut k, &desired);
    oracle::pass(&earlier, &k, &desired).unwrap();
    assert!(replan(&mut k, &desired).is_empty());
}

fn tap0_opts(desired: &mut State) -> &mut TapOpts {
    match &mut desired.links.get_mut("tap0").expect("tap0").kind {
        LinkKind::Tap(t) => t,
        other => panic!("not a tap: {other:?}"),
    }
}

#[test]
fn a_vm_s_flags_on_an_open_tap_are_a_note_not_drift_and_the_file_wins_once_it_is_closed() {
    let mut k = FakeKernel::new(State::default());
    let mut desired = bridge_with_tap();
    tap0_opts(&mut desired).vnet_hdr = Some(false);
    converge(&mut k, &desired);
    // qemu's `-netdev tap` turns vnet_hdr on as it attaches.
    assert!(k.open_tap("tap0", 1, true));
    let p = replan(&mut k, &desired);
    assert!(p.is_empty(), "no write while it is open: {:?}", p.changes);
    assert_eq!(
        p.warnings,
        [
            "tap tap0 is open in a process (a VM; 1 queue(s)), which chose vnet_hdr on \
          (declared off); the declared options apply once it is closed"
        ]
    );
    // A declaration edited while the VM runs waits too: no recreate, no EBUSY.
    let t = tap0_opts(&mut desired);
    t.multi_queue = Some(true);
    t.owner = Some(Ident::Id(1001));
    let p = replan(&mut k, &desired);
    assert!(p.is_empty(), "{:?}", p.changes);
    let note = &p.warnings[0];
    for part in [
        "vnet_hdr on (declared off)",
        "multi_queue off (declared on: a recreate",
        "owner 1000 (declared 1001)",
    ] {
        assert!(note.contains(part), "{part} in {note}");
    }
    // Closed: the declared options are applied, and the tap then matches.
    assert!(k.open_tap("tap0", 0, true));
    let p = converge(&mut k, &desired);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert!(!p.is_empty());
    assert_eq!(
        k.state.links["tap0"].kind,
        LinkKind::Tap(TapOpts {
            owner: Some(Ident::Id(1001)),
            group: None,
            vnet_hdr: Some(false),
            multi_queue: Some(true),
            open_queues: 0,
        })
    );
    assert!(replan(&mut k, &desired).is_empty());
}

#[test]
fn an_open_tap_that_matches_its_declaration_has_no_note() {
    let mut k = FakeKernel::new(State::default());
    let mut desired = bridge_with_tap();
    tap0_opts(&mut desired).vnet_hdr = Some(true);
    converge(&mut k, &desired);
    assert!(k.open_tap("tap0", 1, true));
    let p = replan(&mut k, &desired);
    assert!(p.is_empty() && p.warnings.is_empty(), "{p:?}");
    // Undeclared flags are never a note, whatever the VM chose.
    tap0_opts(&mut desired).vnet_hdr = None;
    assert!(k.open_tap("tap0", 1, false));
    let p = replan(&mut k, &desired);
    assert!(p.is_empty() && p.warnings.is_empty(), "{p:?}");
    // The group, declared and held, is no note either; one that differs is.
    tap0_opts(&mut desired).group = Some(Ident::Id(36));
    let p = replan(&mut k, &desired);
    assert!(p.warnings[0].contains("group none (declared 36)"), "{p:?}");
}

#[test]
fn the_fake_tun_driver_refuses_a_second_opener_of_a_single_queue_tap() {
    let mut k = FakeKernel::new(State::default());
    let desired = bridge_with_tap();
    converge(&mut k, &desired);
    assert!(k.open_tap("tap0", 1, true));
    assert!(!k.open_tap("br0", 1, true));
    let set = Op::SetTap {
        name: "tap0".into(),
        opts: TapOpts::default(),
    };
    let r = block_on(k.apply(std::slice::from_ref(&set)));
    assert_eq!(r[0].as_ref().unwrap_err().errno, Some(libc::EBUSY));
}
