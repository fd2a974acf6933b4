//! Fault injection on the fake kernel (no root): over random plans, one write chosen at random
//! fails with an errno the kernel really returns. The run reports exactly the changes that
//! write belongs to; changes whose writes all ran in the phases up to the failing one are
//! counted as applied, the others are reported as not started and not counted; the foreign
//! objects are untouched; and a clean rerun converges (its second plan is empty).

use ipnet::IpNet;
use netconverge::engine;
use proptest::prelude::*;
use reconcilers::kernel::fake::FakeKernel;
use reconcilers::kernel::Kernel;
use reconcilers::model::*;
use reconcilers::plan::{Plan, Summary};

const ERRNOS: [i32; 8] = [
    libc::EEXIST,
    libc::ENOENT,
    libc::ENODEV,
    libc::EBUSY,
    libc::ENETUNREACH,
    libc::EPERM,
    libc::EINVAL,
    libc::ENOBUFS,
];

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

fn route(table: u32, to: &str, via: &str, dev: &str, owned: bool) -> Route {
    Route {
        table,
        to: net(to).trunc(),
        tos: 0,
        metric: 0,
        kind: RouteType::Unicast,
        nexthops: vec![NextHop {
            via: Some(via.parse().unwrap()),
            dev: Some(dev.into()),
            weight: 1,
            onlink: false,
        }]
        .into(),
        src: None,
        scope: Scope::Global,
        mtu: None,
        owned,
    }
}

fn rule(priority: u32, table: u32, owned: bool) -> Rule {
    Rule {
        key: RuleKey {
            priority,
            family: Family::Inet,
            from: None,
            to: None,
            fwmark: Some((priority, 0xff)),
            iif: None,
            oif: None,
            not: false,
            suppress_prefixlength: None,
        },
        action: RuleAction::Lookup(table),
        owned,
    }
}

/// A NIC with its address, a route and a rule that netconverge does not own.
fn foreign_host() -> State {
    let mut s = State::default();
    let mut eth = Link::new("eth0", LinkKind::External);
    eth.up = Some(true);
    s.add_link(eth);
    s.add_address(Address {
        link: "eth0".into(),
        address: net("192.168.1.20/24"),
        owned: false,
        primary: false,
    });
    s.add_route(route(200, "198.51.100.0/24", "192.168.1.9", "eth0", false));
    s.add_rule(rule(500, 200, false));
    s
}

prop_compose! {
    fn arb_desired()(
        bridge in any::<bool>(),
        taps in proptest::collection::btree_set(0usize..4, 0..4),
        veth in any::<bool>(),
        routes in proptest::collection::btree_set(0u8..6, 0..6),
        rules in proptest::collection::btree_set(1000u32..1006, 0..4),
        sysctl in proptest::option::of(prop_oneof![Just("0"), Just("1")]),
    ) -> State {
        let mut s = State::default();
        s.add_link(Link::new("eth0", LinkKind::External));
        s.add_address(Address { link: "eth0".into(), address: net("192.168.1.20/24"), owned: false, primary: false });
        if bridge {
            s.add_link(Link::new("br0", LinkKind::Bridge(BridgeOpts::default())));
            s.add_address(Address { link: "br0".into(), address: net("10.0.0.1/24"), owned: false, primary: false });
        }
        for t in taps {
            let mut tap = Link::new(format!("tap{t}"), LinkKind::Tap(TapOpts::default()));
            if bridge {
                tap.master = Some("br0".into());
            }
            s.add_link(tap);
        }
        if veth {
            s.add_link(Link::new("va", LinkKind::Veth(VethOpts { peer: "vb".into() })));
            s.add_address(Address { link: "va".into(), address: net("172.16.0.1/30"), owned: false, primary: false });
        }
        for r in routes {
            s.add_route(route(101, &format!("10.9.{r}.0/24"), "192.168.1.1", "eth0", false));
        }
        for p in rules {
            s.add_rule(rule(p, 101, false));
        }
        if let Some(v) = sysctl {
            s.sysctls.insert("net.ipv4.ip_forward".into(), v.into());
        }
        s
    }
}

fn observe(k: &mut FakeKernel, desired: &State) -> State {
    block_on(engine::observe(k, desired)).expect("observe")
}

/// The foreign objects, for "untouched".
fn foreign(s: &State) -> (Vec<Route>, Vec<Rule>, Vec<Address>, Option<Link>) {
    (
        s.routes.values().filter(|r| !r.owned).cloned().collect(),
        s.rules.values().filter(|r| !r.owned).cloned().collect(),
        s.addresses
            .values()
            .filter(|a| a.link == "eth0")
            .cloned()
            .collect(),
        s.links.get("eth0").cloned(),
    )
}

/// What the run must report when the write numbered `n` (from 1, in phase order) fails:
/// (failed changes, not started changes, the summary of the applied ones).
fn expected(plan: &Plan, n: usize) -> (Vec<usize>, Vec<usize>, Summary) {
    let phases = plan.phases_by_change();
    let mut seen = 0;
    let (mut failed, mut fail_phase) = (Vec::new(), None);
    for (phase, ops) in &phases {
        for (_, owners) in ops {
            seen += 1;
            if seen == n {
                failed = owners.clone();
                fail_phase = Some(*phase);
            }
        }
    }
    let fail_phase = fail_phase.expect("n is within the plan");
    let mut not_started = Vec::new();
    let mut summary = Summary::default();
    for (i, c) in plan.changes.iter().enumerate() {
        if failed.contains(&i) {
            continue;
        }
        if c.ops.iter().any(|op| op.phase() > fail_phase) {
            not_started.push(i);
        } else {
            match c.action {
                reconcilers::plan::Action::Add => summary.add += 1,
                reconcilers::plan::Action::Change => summary.change += 1,
                reconcilers::plan::Action::Remove => summary.remove += 1,
            }
        }
    }
    (failed, not_started, summary)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_failed_write_is_reported_the_rest_documented_and_a_rerun_converges(
        first in arb_desired(),
        second in arb_desired(),
        pick in any::<prop::sample::Index>(),
        errno in prop::sample::select(ERRNOS.to_vec()),
    ) {
        let mut k = FakeKernel::new(foreign_host());
        let before = foreign(&k.state);
        // From an earlier state (converged cleanly), towards a new one with one fault.
        let observed = observe(&mut k, &first);
        block_on(engine::apply(&mut k, &engine::plan(&first, &observed)));
        let observed = observe(&mut k, &second);
        let plan = engine::plan(&second, &observed);
        let total: usize = plan.phases().iter().map(|(_, ops)| ops.len()).sum();
        prop_assume!(total > 0);
        let n = pick.index(total) + 1;
        k.fail_write = Some((k.writes() + n as u64, errno));
        let applied = block_on(engine::apply(&mut k, &plan));

        let failed_op = k.injected.clone().expect("the fault was injected");
        prop_assert_eq!(applied.failures.len(), 1);
        prop_assert_eq!(applied.failures[0].errno, Some(errno));
        let (failed, not_started, summary) = expected(&plan, n);
        let names = |ix: &[usize]| ix.iter().map(|&i| plan.changes[i].object.clone()).collect::<Vec<_>>();
        prop_assert_eq!(&applied.failed, &names(&failed), "failed write {:?}", failed_op);
        prop_assert!(failed.iter().all(|&i| plan.changes[i].ops.iter().any(|o| {
            o == &failed_op || matches!((o, &failed_op), (reconcilers::plan::Op::SetLink(a), reconcilers::plan::Op::SetLink(b)) if a.name == b.name)
        })), "a reported change does not hold the failed write");
        prop_assert_eq!(&applied.not_started, &names(&not_started));
        prop_assert_eq!(applied.summary, summary);
        prop_assert_eq!(applied.planned, plan.changes.len());
        prop_assert_eq!(applied.applied() + applied.failed.len() + applied.not_started.len(), plan.changes.len());
        prop_assert_eq!(&foreign(&k.state), &before, "a foreign object was touched");

        // The clean rerun converges, and its second plan is empty.
        k.fail_write = None;
        let observed = observe(&mut k, &second);
        let rerun = block_on(engine::apply(&mut k, &engine::plan(&second, &observed)));
        prop_assert!(rerun.ok(), "{:?}", rerun.failures);
        let observed = observe(&mut k, &second);
        let again = engine::plan(&second, &observed);
        prop_assert!(again.is_empty(), "not converged: {:#?}", again.changes);
        prop_assert_eq!(&foreign(&k.state), &before, "a foreign object was touched");
    }
}
