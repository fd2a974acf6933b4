//! The parts of planning that the convergence properties cannot see, because the fake kernel
//! takes any order and any number of requests: the words plans are printed with, the phases
//! writes are sorted into and merged within, and what the table of kinds says about each kind
//! (its objects, what observing must read, its warnings). Found untested by mutation testing.

use reconcilers::kinds;
use reconcilers::model::firewall::{Firewall, Problem};
use reconcilers::model::object::ObjectRef;
use reconcilers::model::*;
use reconcilers::plan::{Action, Change, LinkSet, Op, Phase, Plan};
use reconcilers::planner::{object_ids, plan};

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
        nexthops: vec![],
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
