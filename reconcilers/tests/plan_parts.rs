//! The parts of planning that the convergence properties cannot see, because the fake kernel
//! takes any order and any number of requests: the words plans are printed with, the phases
//! writes are sorted into and merged within, and what the table of kinds says about each kind
//! (its objects, what observing must read, its warnings). Found untested by mutation testing.

mod common;

use reconcilers::kinds;
use reconcilers::model::firewall::{Firewall, Problem};
use reconcilers::model::object::ObjectRef;
use reconcilers::model::*;
use reconcilers::plan::{Action, Change, LinkSet, Op, Phase, Plan};
use reconcilers::planner::{object_ids, plan};

use common::states::route;

#[test]
fn actions_are_named_as_the_json_documents_them() {
    let names: Vec<&str> = [Action::Add, Action::Change, Action::Remove]
        .into_iter()
        .map(Action::name)
        .collect();
    assert_eq!(names, ["add", "change", "remove"]);
}

fn set_link(set: LinkSet) -> Change {
    Change {
        action: Action::Change,
        object: ObjectRef::link(&set.name),
        before: None,
        after: None,
        note: None,
        ops: vec![Op::SetLink(set)],
    }
}

#[test]
fn set_requests_for_one_link_are_merged_and_later_values_win() {
    let first = LinkSet {
        mtu: Some(1400),
        up: Some(false),
        ..LinkSet::new("br0")
    };
    let second = LinkSet {
        up: Some(true),
        master: Some(None),
        ..LinkSet::new("br0")
    };
    let other = LinkSet {
        mtu: Some(9000),
        ..LinkSet::new("eth0")
    };
    let p = Plan {
        changes: vec![set_link(first), set_link(other.clone()), set_link(second)],
        ..Plan::default()
    };
    let merged = LinkSet {
        mtu: Some(1400),
        up: Some(true),
        master: Some(None),
        ..LinkSet::new("br0")
    };
    assert_eq!(
        p.phases(),
        [(
            Phase::SetLinks,
            vec![Op::SetLink(merged), Op::SetLink(other)]
        )]
    );
}

/// A merged write belongs to every change it came from, each named once: when it fails, each
/// of those changes failed, and when it is not sent, none of them is done.
#[test]
fn a_merged_set_request_belongs_to_each_change_it_came_from_once() {
    let mtu = |name: &str, mtu| LinkSet {
        mtu: Some(mtu),
        ..LinkSet::new(name)
    };
    let up = |name: &str| LinkSet {
        up: Some(true),
        ..LinkSet::new(name)
    };
    let mut both = set_link(mtu("tap-a", 1400));
    both.ops.push(Op::SetLink(up("tap-a")));
    let p = Plan {
        changes: vec![
            set_link(mtu("br0", 1400)),
            set_link(mtu("eth0", 9000)),
            set_link(up("br0")),
            both,
        ],
        ..Plan::default()
    };
    let merged = |name: &str| LinkSet {
        up: Some(true),
        ..mtu(name, 1400)
    };
    assert_eq!(
        p.phases_by_change(),
        [(
            Phase::SetLinks,
            vec![
                (Op::SetLink(merged("br0")), vec![0, 2]),
                (Op::SetLink(mtu("eth0", 9000)), vec![1]),
                (Op::SetLink(merged("tap-a")), vec![3]),
            ]
        )]
    );
}

#[test]
fn links_stacked_on_another_link_are_created_after_the_links_that_stand_alone() {
    let vxlan = Link::new(
        "vx0",
        LinkKind::Vxlan(VxlanOpts {
            id: 42,
            local: None,
            remote: None,
            dev: Some("br0".into()),
            port: None,
        }),
    );
    let macvlan = Link::new(
        "mv0",
        LinkKind::Macvlan(MacvlanOpts {
            link: "br0".into(),
            mode: MacvlanMode::Bridge,
        }),
    );
    let bridge = Link::new("br0", LinkKind::Bridge(BridgeOpts::default()));
    for stacked in [vxlan, macvlan] {
        let name = stacked.name.clone();
        assert_eq!(
            Op::CreateLink(stacked).phase(),
            Phase::CreateStackedLinks,
            "{name}"
        );
    }
    assert_eq!(Op::CreateLink(bridge).phase(), Phase::CreateLinks);
    assert!(Phase::CreateLinks < Phase::CreateStackedLinks);
}

fn dhcp_only() -> State {
    let mut s = State::default();
    s.dhcp.insert(
        "br0".into(),
        reconcilers::model::dhcp::DhcpServer::new("br0", Default::default()),
    );
    s
}

#[test]
fn a_dnsmasq_is_an_object_netconverge_owns() {
    let observed = dhcp_only();
    assert_eq!(object_ids(&observed), [ObjectRef::dhcp("br0")]);
    assert!(!observed.is_empty());
    // The empty-state guard counts it: an empty desired state would stop it.
    assert!(kinds::removes_everything_owned(
        &State::default(),
        &observed
    ));
    assert!(!kinds::removes_everything_owned(&observed, &observed));
}

#[test]
fn observing_reads_the_sysctls_the_desired_state_names() {
    let mut desired = State::default();
    for name in ["net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter"] {
        desired.sysctls.insert(name.into(), "1".into());
    }
    let mut names = kinds::scope(&desired).sysctls;
    names.sort();
    assert_eq!(
        names,
        ["net.ipv4.conf.all.rp_filter", "net.ipv4.ip_forward"]
    );
}

/// A link that does not exist yet has no sysctl directory: its per-interface sysctls are read
/// from the template new links copy (`conf.default`), once however many links share it.
#[test]
fn observing_reads_the_template_of_each_per_interface_sysctl_once() {
    let mut desired = State::default();
    for name in [
        "net.ipv4.conf.br0.forwarding",
        "net.ipv4.conf.tap-a.forwarding",
        "net.ipv6.neigh.br0.proxy_delay",
        "net.ipv4.conf.all.forwarding",
    ] {
        desired.sysctls.insert(name.into(), "1".into());
    }
    let mut names = kinds::scope(&desired).sysctls;
    names.sort();
    assert_eq!(
        names,
        [
            "net.ipv4.conf.all.forwarding",
            "net.ipv4.conf.br0.forwarding",
            "net.ipv4.conf.default.forwarding",
            "net.ipv4.conf.tap-a.forwarding",
            "net.ipv6.neigh.br0.proxy_delay",
            "net.ipv6.neigh.default.proxy_delay",
        ]
    );
}

#[test]
fn the_template_of_a_per_interface_sysctl_is_its_default() {
    use reconcilers::sysctl::template_of;
    assert_eq!(
        template_of("net.ipv4.conf.br0.rp_filter").as_deref(),
        Some("net.ipv4.conf.default.rp_filter")
    );
    assert_eq!(
        template_of("net.ipv6.neigh.tap-a.proxy_delay").as_deref(),
        Some("net.ipv6.neigh.default.proxy_delay")
    );
    // The templates themselves, `all`, and names that are not per interface have none.
    for none in [
        "net.ipv4.conf.default.rp_filter",
        "net.ipv4.conf.all.rp_filter",
        "net.ipv4.ip_forward",
        "net.ipv4.route.flush",
        "net.core.conf.br0.x",
    ] {
        assert_eq!(template_of(none), None, "{none}");
    }
}

#[test]
fn tables_that_could_not_be_read_are_a_warning_not_a_change() {
    let desired = State {
        firewall: Some(Firewall::new("table inet netconverge {}\n".into())),
        ..State::default()
    };
    let observed = State {
        firewall: Some(Firewall {
            problem: Some(Problem::Unreadable("nft: Operation not permitted".into())),
            ..Firewall::new(String::new())
        }),
        ..State::default()
    };
    let p = plan(&desired, &observed);
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    assert_eq!(
        p.warnings,
        ["netconverge's nftables tables were not compared: nft: Operation not permitted"]
    );
}

fn change(action: Action, ops: Vec<Op>) -> Change {
    Change {
        action,
        object: ObjectRef::sysctl("net.ipv4.ip_forward"),
        before: None,
        after: None,
        note: None,
        ops,
    }
}

#[test]
fn the_summary_counts_each_action_and_reads_as_the_plan_line() {
    let actions = [
        Action::Remove,
        Action::Change,
        Action::Add,
        Action::Remove,
        Action::Change,
        Action::Remove,
    ];
    let p = Plan {
        changes: actions.into_iter().map(|a| change(a, vec![])).collect(),
        ..Plan::default()
    };
    assert!(!p.is_empty());
    let s = p.summary();
    assert_eq!((s.add, s.change, s.remove), (1, 2, 3));
    assert_eq!(s.to_string(), "1 to add, 2 to change, 3 to remove");
    assert!(Plan::default().is_empty());
}

#[test]
fn removals_are_the_deletes() {
    let route = Route {
        table: 254,
        to: "0.0.0.0/0".parse().unwrap(),
        tos: 0,
        metric: 0,
        kind: RouteType::Unicast,
        nexthops: vec![].into(),
        src: None,
        scope: Scope::Global,
        mtu: None,
        owned: true,
    };
    let rule = Rule {
        key: RuleKey::all(1000, Family::Inet),
        action: RuleAction::Lookup(101),
        owned: true,
    };
    let address = Address {
        link: "br0".into(),
        address: "10.0.0.1/24".parse().unwrap(),
        owned: true,
        primary: false,
    };
    let removals = [
        Op::DeleteRule(rule.clone()),
        Op::DeleteRoute(route.clone()),
        Op::DeleteAddress(address.clone()),
        Op::DeleteLink("br0".into()),
    ];
    let others = [
        Op::AddRule(rule),
        Op::AddRoute(route.clone()),
        Op::ReplaceRoute(route),
        Op::AddAddress(address),
        Op::CreateLink(Link::new("br0", LinkKind::Bridge(BridgeOpts::default()))),
        Op::SetLink(LinkSet::new("br0")),
        Op::SetSysctl {
            name: "net.ipv4.ip_forward".into(),
            value: "1".into(),
        },
    ];
    for op in &removals {
        assert!(op.is_removal(), "{op:?}");
    }
    for op in &others {
        assert!(!op.is_removal(), "{op:?}");
    }
}

/// One owned and one foreign object of each marked kind.
fn marked_state() -> State {
    let mut s = State::default();
    let mut br = Link::new("br0", LinkKind::Bridge(BridgeOpts::default()));
    br.owned = true;
    s.add_link(br);
    s.add_link(Link::new("eth0", LinkKind::External));
    for (owned, via) in [(true, "192.168.1.1"), (false, "192.168.1.9")] {
        let table = if owned { 101 } else { 102 };
        s.add_route(Route {
            owned,
            ..route(table, "0.0.0.0/0", via, "eth0", 0)
        });
    }
    for (owned, priority) in [(true, 1000), (false, 1001)] {
        s.add_rule(Rule {
            key: RuleKey::all(priority, Family::Inet),
            action: RuleAction::Lookup(101),
            owned,
        });
    }
    s
}

fn owned_ids(s: &State) -> Vec<String> {
    kinds::objects(s)
        .into_iter()
        .filter(|(_, owned)| *owned)
        .map(|(r, _)| r.to_string())
        .collect()
}

#[test]
fn the_table_lists_routes_and_rules_with_their_marks_and_sets_them_from_a_snapshot() {
    let mut s = marked_state();
    let ids: Vec<String> = object_ids(&s).iter().map(ToString::to_string).collect();
    assert_eq!(
        ids,
        [
            "link br0",
            "link eth0",
            "route default via 192.168.1.1 dev eth0 table 101",
            "route default via 192.168.1.9 dev eth0 table 102",
            "rule 1000: from all lookup 101",
            "rule 1001: from all lookup 101",
        ]
    );
    assert_eq!(
        owned_ids(&s),
        [
            "link br0",
            "route default via 192.168.1.1 dev eth0 table 101",
            "rule 1000: from all lookup 101",
        ]
    );
    // A snapshot's `managed:` ids turn the marks around.
    let managed = [
        "link eth0",
        "route default via 192.168.1.9 dev eth0 table 102",
        "rule 1001: from all lookup 101",
    ];
    for k in &kinds::KINDS {
        k.set_owned(&mut s, &|r: &ObjectRef| {
            managed.contains(&r.to_string().as_str())
        });
    }
    assert_eq!(owned_ids(&s), managed);
}

#[test]
fn the_guard_counts_owned_rules_and_keeps_them_by_key() {
    let rule = |action, owned| {
        let mut s = State::default();
        s.add_rule(Rule {
            key: RuleKey::all(1000, Family::Inet),
            action,
            owned,
        });
        s
    };
    let observed = rule(RuleAction::Lookup(101), true);
    assert!(kinds::removes_everything_owned(
        &State::default(),
        &observed
    ));
    // Another action at the same key keeps the rule (it is changed, not removed).
    assert!(!kinds::removes_everything_owned(
        &rule(RuleAction::Lookup(102), false),
        &observed
    ));
    assert!(!rule(RuleAction::Blackhole, false).is_empty());
}

// Links: what a change shows and when a link must be recreated. The fake kernel recreates
// whatever it is told to, so these are read from the plan.

fn only_links(links: impl IntoIterator<Item = Link>) -> State {
    let mut s = State::default();
    for l in links {
        s.add_link(l);
    }
    s
}

fn owned(mut l: Link) -> Link {
    l.owned = true;
    l
}

/// The note of the one change planned for `desired` over `observed`, and the plan's conflicts.
fn link_note(desired: Link, observed: Link) -> (Option<String>, Vec<String>) {
    let p = plan(&only_links([desired]), &only_links([observed]));
    assert!(p.changes.len() <= 1, "{:?}", p.changes);
    (p.changes.first().and_then(|c| c.note.clone()), p.conflicts)
}

fn vxlan(
    id: u32,
    local: Option<&str>,
    remote: Option<&str>,
    dev: Option<&str>,
    port: Option<u16>,
) -> Link {
    Link::new(
        "vx0",
        LinkKind::Vxlan(VxlanOpts {
            id,
            local: local.map(|a| a.parse().unwrap()),
            remote: remote.map(|a| a.parse().unwrap()),
            dev: dev.map(Into::into),
            port,
        }),
    )
}

fn macvlan(parent: &str, mode: MacvlanMode) -> Link {
    Link::new(
        "mv0",
        LinkKind::Macvlan(MacvlanOpts {
            link: parent.into(),
            mode,
        }),
    )
}

fn veth(name: &str, peer: &str) -> Link {
    Link::new(name, LinkKind::Veth(VethOpts { peer: peer.into() }))
}

#[test]
fn options_that_cannot_change_in_place_recreate_the_link_and_say_why() {
    let have = || {
        owned(vxlan(
            42,
            Some("10.0.0.1"),
            Some("10.0.0.2"),
            Some("eth0"),
            Some(4789),
        ))
    };
    let vxlan_why = Some("recreate: vxlan options cannot change in place".to_string());
    for want in [
        vxlan(43, None, None, None, None),
        vxlan(42, Some("10.0.0.9"), None, None, None),
        vxlan(42, None, Some("10.0.0.9"), None, None),
        vxlan(42, None, None, Some("eth1"), None),
        vxlan(42, None, None, None, Some(8472)),
    ] {
        assert_eq!(
            link_note(want.clone(), have()),
            (vxlan_why.clone(), vec![]),
            "{want:?}"
        );
    }
    // What the desired side leaves out, or gives as the kernel has it, changes nothing.
    for same in [
        vxlan(42, None, None, None, None),
        vxlan(
            42,
            Some("10.0.0.1"),
            Some("10.0.0.2"),
            Some("eth0"),
            Some(4789),
        ),
    ] {
        assert_eq!(link_note(same.clone(), have()), (None, vec![]), "{same:?}");
    }
    // The port defaults to 4789 on both sides.
    let unset_port = owned(vxlan(42, None, None, None, None));
    assert_eq!(
        link_note(vxlan(42, None, None, None, Some(4789)), unset_port),
        (None, vec![])
    );

    let mv = || owned(macvlan("eth0", MacvlanMode::Bridge));
    let mv_why = Some("recreate: macvlan parent and mode cannot change in place".to_string());
    assert_eq!(
        link_note(macvlan("eth0", MacvlanMode::Private), mv()),
        (mv_why.clone(), vec![])
    );
    assert_eq!(
        link_note(macvlan("eth1", MacvlanMode::Bridge), mv()),
        (mv_why, vec![])
    );
    assert_eq!(
        link_note(macvlan("eth0", MacvlanMode::Bridge), mv()),
        (None, vec![])
    );

    let peer_why = Some("recreate: veth peer changes from vb to vc".to_string());
    assert_eq!(
        link_note(veth("va", "vc"), owned(veth("va", "vb"))),
        (peer_why, vec![])
    );
    assert_eq!(
        link_note(veth("va", "vb"), owned(veth("va", "vb"))),
        (None, vec![])
    );
}

#[test]
fn an_external_link_is_taken_as_it_is_whatever_its_kind() {
    for have in [
        Link::new("br9", LinkKind::Bridge(BridgeOpts::default())),
        owned(Link::new("br9", LinkKind::Bridge(BridgeOpts::default()))),
    ] {
        let p = plan(
            &only_links([Link::new("br9", LinkKind::External)]),
            &only_links([have]),
        );
        assert!(p.changes.is_empty() && p.conflicts.is_empty(), "{p:?}");
    }
}

/// The `before` of the one link change of a plan.
fn before(p: &Plan) -> Link {
    match &p.changes[..] {
        [Change {
            before: Some(reconcilers::plan::Object::Link(l)),
            ..
        }] => l.clone(),
        other => panic!("not one link change: {other:?}"),
    }
}

#[test]
fn a_change_shows_the_master_only_where_netconverge_manages_it() {
    let mut port = Link::new("tap0", LinkKind::Tap(TapOpts::default()));
    port.master = Some("br0".into());
    port.up = Some(true);
    let mut want = Link::new("tap0", LinkKind::Tap(TapOpts::default()));
    want.mtu = Some(9000);
    // A foreign port: membership is not managed, so the plan does not show it.
    let p = plan(&only_links([want.clone()]), &only_links([port.clone()]));
    assert_eq!(before(&p).master, None);
    // netconverge's own: no master means detach, and the plan shows what it detaches from.
    let p = plan(&only_links([want]), &only_links([owned(port)]));
    assert_eq!(before(&p).master.as_deref(), Some("br0"));
}

#[test]
fn a_mac_is_set_only_when_it_differs() {
    let mac = |last| MacAddr([2, 0, 0, 0, 0, last]);
    let mut have = Link::new("eth0", LinkKind::External);
    have.mac = Some(mac(1));
    let mut want = Link::new("eth0", LinkKind::External);
    want.mac = Some(mac(2));
    let p = plan(&only_links([want.clone()]), &only_links([have.clone()]));
    let set = LinkSet {
        mac: Some(mac(2)),
        ..LinkSet::new("eth0")
    };
    assert_eq!(p.phases(), [(Phase::SetLinks, vec![Op::SetLink(set)])]);
    want.mac = Some(mac(1));
    assert!(plan(&only_links([want]), &only_links([have])).is_empty());
}

#[test]
fn of_a_pair_declared_on_both_ends_the_end_with_the_smaller_name_creates_it() {
    let p = plan(
        &only_links([veth("vb", "va"), veth("va", "vb")]),
        &State::default(),
    );
    let creates: Vec<&str> = p
        .changes
        .iter()
        .flat_map(|c| &c.ops)
        .filter_map(|op| match op {
            Op::CreateLink(l) => Some(l.name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(creates, ["va"]);
    let vb = p.changes.iter().find(|c| c.object.id == "vb").unwrap();
    assert_eq!(vb.note.as_deref(), Some("created with its veth peer"));
}

#[test]
fn a_veth_whose_peer_name_is_another_kind_of_link_is_created_by_its_own_request() {
    // Not a pair (the loader refuses such a file): each end is planned on its own.
    let desired = only_links([
        veth("vb", "va"),
        Link::new("va", LinkKind::Bridge(BridgeOpts::default())),
    ]);
    let p = plan(&desired, &State::default());
    let vb = p.changes.iter().find(|c| c.object.id == "vb").unwrap();
    assert_eq!(vb.note, None);
    assert!(
        matches!(&vb.ops[0], Op::CreateLink(l) if l.name == "vb"),
        "{:?}",
        vb.ops
    );
}

#[test]
fn a_missing_external_link_is_not_planned() {
    // The host checks report it before any write; the plan has nothing to create.
    let p = plan(
        &only_links([Link::new("eth9", LinkKind::External)]),
        &State::default(),
    );
    assert!(p.is_empty(), "{:?}", p.changes);
}

/// A link seen in netconverge's creation group without its alias (a crash came between the
/// two writes).
fn mark_pending(l: Link) -> Link {
    let mut l = up(l);
    l.mark_pending = true;
    l
}

/// An owned link that is up, as netconverge leaves the links it makes.
fn up(l: Link) -> Link {
    let mut l = owned(l);
    l.up = Some(true);
    l
}

/// The alias each change of `p` writes, by link.
fn aliases_written(p: &Plan) -> Vec<(String, Option<String>)> {
    p.changes
        .iter()
        .flat_map(|c| &c.ops)
        .filter_map(|op| match op {
            Op::SetLink(s) => Some((s.name.clone(), s.alias.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn both_ends_of_a_veth_killed_before_its_alias_get_the_mark_undeclared_end_too() {
    let alias = Some(LINK_ALIAS.to_string());
    let desired = only_links([veth("va", "vb")]);
    let observed = only_links([
        mark_pending(veth("va", "vb")),
        mark_pending(veth("vb", "va")),
    ]);
    let p = plan(&desired, &observed);
    let mut written = aliases_written(&p);
    written.sort();
    assert_eq!(
        written,
        [
            ("va".to_string(), alias.clone()),
            ("vb".to_string(), alias.clone())
        ],
        "{:?}",
        p.changes
    );
    // Marked already: nothing to finish, and the undeclared end is kept, not removed.
    let observed = only_links([up(veth("va", "vb")), up(veth("vb", "va"))]);
    let p = plan(&desired, &observed);
    assert!(p.changes.is_empty(), "{:?}", p.changes);
}
