//! `RtnlKernel` against the real kernel.
//!
//! Every test that writes works in its own throwaway network namespace (`nc-test-<pid>-<n>`,
//! removed by a drop guard even when the test panics) and enters it through `run_in_netns`;
//! nothing here changes the namespace the tests run in. `ip -j` serves as the independent
//! oracle for what the kernel really holds. Without root the tests print "skipped: needs root"
//! and pass, unless CI=true, where skipping would hide a broken setup.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use reconcilers::error::KernelError;
use reconcilers::kernel::netlink::RtnlKernel;
use reconcilers::kernel::netns::run_in_netns;
use reconcilers::kernel::Kernel;
use reconcilers::model::firewall::{FirewallOp, Masq, Spec, Track};
use reconcilers::model::{
    Address, BridgeOpts, Family, Ident, Link, LinkKind, MacAddr, MacvlanMode, MacvlanOpts, NextHop,
    Route, RouteType, Rule, RuleAction, RuleKey, Scope, State, TapOpts, VethOpts, VxlanOpts,
    LINK_ALIAS,
};
use reconcilers::plan::{LinkSet, Op};
use serde_json::Value;

const PROTO: u8 = 157;
/// How `ip` prints `PROTO` (no name for it in its rt_protos).
const PROTO_TEXT: &str = "157";

/// A network namespace that exists for the lifetime of the value.
struct Netns {
    name: String,
}

impl Netns {
    /// A fresh namespace, or `None` (after saying so) when not running as root.
    fn create() -> Option<Netns> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("these tests need root; CI=true forbids skipping them");
            }
            eprintln!("skipped: needs root");
            return None;
        }
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "nc-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let status = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("run ip");
        assert!(status.success(), "ip netns add {name}");
        Some(Netns { name })
    }

    /// `ip -n NS ARGS…`, which must succeed; its stdout.
    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "ip -n {} {}: {}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `ip -j -n NS ARGS…` parsed.
    fn ip_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        let text = self.ip(&all);
        if text.trim().is_empty() {
            return Value::Array(vec![]);
        }
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// True when `ip -n NS ARGS…` succeeds.
    fn ip_ok(&self, args: &[&str]) -> bool {
        Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()
            .expect("run ip")
            .status
            .success()
    }

    /// Run `f` with a kernel connected inside this namespace.
    fn run<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce(RtnlKernel) -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        run_in_netns(Some(&self.name), move || async move {
            let kernel = RtnlKernel::connect(PROTO).expect("connect");
            f(kernel).await
        })
        .expect("enter namespace")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

// ---------------------------------------------------------------------------------------------
// Model helpers

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn bridge(name: &str, stp: bool, forward_delay: u32) -> Link {
    Link::new(
        name,
        LinkKind::Bridge(BridgeOpts {
            stp: Some(stp),
            forward_delay: Some(forward_delay),
        }),
    )
}

fn veth(name: &str, peer: &str) -> Link {
    Link::new(name, LinkKind::Veth(VethOpts { peer: peer.into() }))
}

fn tap(name: &str, owner: Option<u32>, group: Option<u32>, vnet_hdr: bool) -> Link {
    Link::new(
        name,
        LinkKind::Tap(TapOpts {
            owner: owner.map(Ident::Id),
            group: group.map(Ident::Id),
            vnet_hdr: Some(vnet_hdr),
            multi_queue: Some(false),
            open_queues: 0,
        }),
    )
}

fn owned_up(name: &str) -> LinkSet {
    LinkSet {
        alias: Some(LINK_ALIAS.into()),
        up: Some(true),
        ..LinkSet::new(name)
    }
}

fn addr(link: &str, a: &str) -> Address {
    Address {
        link: link.into(),
        address: net(a),
        owned: true,
        primary: false,
    }
}

fn hop(via: &str, dev: &str, weight: u32) -> NextHop {
    NextHop {
        via: Some(ip(via)),
        dev: Some(dev.into()),
        weight,
        onlink: false,
    }
}

fn route(table: u32, to: &str, nexthops: Vec<NextHop>) -> Route {
    let to = net(to);
    let family = Family::of_net(&to);
    Route {
        table,
        to,
        tos: 0,
        metric: Route::default_metric(family),
        kind: RouteType::Unicast,
        scope: Route::default_scope(family, RouteType::Unicast, &nexthops),
        nexthops: nexthops.into(),
        src: None,
        mtu: None,
        owned: true,
    }
}

fn rule(priority: u32, family: Family, action: RuleAction) -> Rule {
    Rule {
        key: RuleKey::all(priority, family),
        action,
        owned: true,
    }
}

fn fwmark_rule() -> Rule {
    let mut r = rule(10001, Family::Inet, RuleAction::Lookup(101));
    r.key.fwmark = Some((0x1, 0xff));
    r
}

#[track_caller]
fn all_ok(results: Vec<Result<(), KernelError>>) {
    for r in results {
        if let Err(e) = r {
            panic!("unexpected kernel error: {e}");
        }
    }
}

fn by_name<'a>(links: &'a Value, name: &str) -> &'a Value {
    links
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["ifname"] == name)
        .unwrap_or_else(|| panic!("ip shows no link {name}"))
}

/// The name of uid/gid 1 as `ip` prints it (it resolves ids through the passwd database).
fn id_name(file: &str, id: u32) -> Vec<String> {
    let mut names = vec![id.to_string()];
    if let Ok(text) = std::fs::read_to_string(file) {
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() > 2 && f[2] == id.to_string() {
                names.push(f[0].to_string());
            }
        }
    }
    names
}

// ---------------------------------------------------------------------------------------------
// Tests

/// The whole path: create every kind, set attributes, add addresses, routes (single,
/// multipath, IPv6, blackhole, big table), rules and a sysctl, then observe exactly that, and
/// check the kernel's view with `ip`.
#[test]
fn apply_then_observe_matches_and_ip_agrees() {
    let Some(ns) = Netns::create() else { return };
    let root_forwarding = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();

    let br0 = bridge("br0", false, 0);
    let tap0 = tap("tap0", Some(1), Some(1), true);
    let v0 = veth("v0", "v1");
    let vx0 = Link::new(
        "vx0",
        LinkKind::Vxlan(VxlanOpts {
            id: 42,
            local: Some(ip("10.0.1.1")),
            remote: Some(ip("10.0.1.2")),
            dev: Some("v1".into()),
            port: None,
        }),
    );
    let mv0 = Link::new(
        "mv0",
        LinkKind::Macvlan(MacvlanOpts {
            link: "v1".into(),
            mode: MacvlanMode::Bridge,
        }),
    );
    let mac = "52:54:00:12:34:56".parse().unwrap();
    let sets = vec![
        owned_up("br0"),
        LinkSet {
            master: Some(Some("br0".into())),
            ..owned_up("tap0")
        },
        LinkSet {
            master: Some(Some("br0".into())),
            ..owned_up("v0")
        },
        LinkSet {
            mtu: Some(1400),
            ..owned_up("v1")
        },
        LinkSet {
            alias: Some(LINK_ALIAS.into()),
            ..LinkSet::new("vx0")
        },
        LinkSet {
            alias: Some(LINK_ALIAS.into()),
            mac: Some(mac),
            ..LinkSet::new("mv0")
        },
    ];
    let addresses = vec![
        addr("br0", "10.0.0.1/24"),
        addr("br0", "fd00:10::1/64"),
        addr("v1", "10.0.1.1/24"),
    ];
    let r_default = route(101, "0.0.0.0/0", vec![hop("10.0.0.254", "br0", 1)]);
    let r_multi = route(
        1000,
        "10.9.0.0/16",
        vec![hop("10.0.0.253", "br0", 1), hop("10.0.0.254", "br0", 3)],
    );
    let r_v6 = route(254, "fd00:20::/64", vec![hop("fd00:10::fe", "br0", 1)]);
    let mut r_blackhole = route(101, "10.66.0.0/16", vec![]);
    r_blackhole.kind = RouteType::Blackhole;
    r_blackhole.scope = Scope::Global;
    let mut r_dev = route(
        254,
        "10.10.0.0/16",
        vec![NextHop {
            via: None,
            dev: Some("v1".into()),
            weight: 1,
            onlink: false,
        }],
    );
    r_dev.metric = 100;
    r_dev.src = Some(ip("10.0.1.1"));
    r_dev.mtu = Some(1300);
    assert_eq!(r_dev.scope, Scope::Link);
    // IPv6 blackhole-like routes point at `lo` inside the kernel; the model shows no path.
    let mut r_v6_unreachable = route(254, "fd00:66::/48", vec![]);
    r_v6_unreachable.kind = RouteType::Unreachable;
    r_v6_unreachable.scope = Scope::Global;
    // An IPv4 route through an IPv6 gateway travels as RTA_VIA.
    let r_v4_via_v6 = route(101, "10.11.0.0/16", vec![hop("fd00:10::fe", "br0", 1)]);
    let routes = vec![
        r_default.clone(),
        r_multi.clone(),
        r_v6.clone(),
        r_blackhole.clone(),
        r_dev.clone(),
        r_v6_unreachable,
        r_v4_via_v6,
    ];
    let mut r6 = rule(10002, Family::Inet6, RuleAction::Lookup(1000));
    r6.key.from = Some(net("fd00::/8"));
    r6.key.not = true;
    // (A `not iif v1` prohibit rule would also prohibit the kernel's own gateway checks.)
    let mut r_iif = rule(10003, Family::Inet, RuleAction::Prohibit);
    r_iif.key.iif = Some("v1".into());
    let rules = vec![fwmark_rule(), r6.clone(), r_iif.clone()];

    let (state, writes, again) = {
        let (br0, tap0, v0, vx0, mv0) = (
            br0.clone(),
            tap0.clone(),
            v0.clone(),
            vx0.clone(),
            mv0.clone(),
        );
        let (addresses, routes, rules) = (addresses.clone(), routes.clone(), rules.clone());
        ns.run(move |mut k| async move {
            let mut writes = vec![];
            let creates = vec![
                Op::CreateLink(br0.clone()),
                Op::CreateLink(tap0.clone()),
                Op::CreateLink(v0.clone()),
            ];
            all_ok(k.apply(&creates).await);
            writes.push(k.writes());
            all_ok(k.apply(&[Op::CreateLink(vx0), Op::CreateLink(mv0)]).await);
            writes.push(k.writes());
            all_ok(
                k.apply(&sets.into_iter().map(Op::SetLink).collect::<Vec<_>>())
                    .await,
            );
            writes.push(k.writes());
            all_ok(
                k.apply(&[Op::SetSysctl {
                    name: "net.ipv4.ip_forward".into(),
                    value: "1".into(),
                }])
                .await,
            );
            writes.push(k.writes());
            all_ok(
                k.apply(
                    &addresses
                        .iter()
                        .cloned()
                        .map(Op::AddAddress)
                        .collect::<Vec<_>>(),
                )
                .await,
            );
            writes.push(k.writes());
            all_ok(
                k.apply(&routes.iter().cloned().map(Op::AddRoute).collect::<Vec<_>>())
                    .await,
            );
            writes.push(k.writes());
            all_ok(
                k.apply(&rules.iter().cloned().map(Op::AddRule).collect::<Vec<_>>())
                    .await,
            );
            writes.push(k.writes());
            let sysctls = vec![
                "net.ipv4.ip_forward".to_string(),
                "net.ipv6.conf.all.forwarding".to_string(),
                "net.ipv4.no_such_sysctl".to_string(),
            ];
            let state = k.observe(&sysctls).await.expect("observe");
            writes.push(k.writes());
            // Doing it all again: every add collides.
            let mut again = k.apply(&creates).await;
            again.extend(k.apply(&[Op::AddAddress(addresses[0].clone())]).await);
            again.extend(k.apply(&[Op::AddRoute(routes[0].clone())]).await);
            again.extend(k.apply(&[Op::AddRule(rules[0].clone())]).await);
            let second = k.observe(&sysctls).await.expect("observe");
            assert_eq!(state, second, "observing twice gives the same state");
            (state, writes, again)
        })
    };

    // Writes: one per request (the tap's ioctls count as one creation), none for observing;
    // each created link (a veth's peer too) costs one more, the request marking it.
    assert_eq!(writes, vec![7, 11, 17, 18, 21, 28, 31, 31]);

    for r in &again {
        let e = r.as_ref().expect_err("a duplicate add must fail");
        assert_eq!(e.errno, Some(libc::EEXIST), "{e}");
        assert_eq!(
            e.hint.as_deref(),
            Some("an object with the same key exists"),
            "{e}"
        );
    }
    assert!(again[0]
        .as_ref()
        .unwrap_err()
        .to_string()
        .starts_with("create link br0"));

    // Links.
    let l = |n: &str| {
        state
            .links
            .get(n)
            .unwrap_or_else(|| panic!("no link {n} observed"))
    };
    assert_eq!(l("br0").kind, br0.kind);
    assert_eq!(l("tap0").kind, tap0.kind);
    assert_eq!(l("v0").kind, v0.kind);
    assert_eq!(l("v1").kind, veth("v1", "v0").kind);
    assert_eq!(
        l("vx0").kind,
        LinkKind::Vxlan(VxlanOpts {
            port: Some(4789),
            ..match vx0.kind {
                LinkKind::Vxlan(o) => o,
                _ => unreachable!(),
            }
        })
    );
    assert_eq!(l("mv0").kind, mv0.kind);
    assert_eq!(l("mv0").mac, Some(mac));
    assert_eq!(l("v1").mtu, Some(1400));
    for n in ["br0", "tap0", "v0", "v1", "vx0", "mv0"] {
        assert!(l(n).owned, "{n} carries the alias");
        assert!(l(n).mtu.is_some() && l(n).mac.is_some() && l(n).up.is_some());
    }
    for n in ["br0", "tap0", "v0", "v1"] {
        assert_eq!(l(n).up, Some(true), "{n}");
    }
    assert_eq!(l("vx0").up, Some(false));
    assert_eq!(l("tap0").master.as_deref(), Some("br0"));
    assert_eq!(l("v0").master.as_deref(), Some("br0"));
    assert_eq!(l("v1").master, None);
    assert_eq!(l("lo").kind, LinkKind::External);
    assert!(!l("lo").owned);
    assert_eq!(state.links.len(), 7);

    // Addresses, routes, rules: exactly what was asked (kernel-made ones are not shown).
    // Each IPv4 address is the first of its subnet on its link: the kernel's primary one.
    let want: BTreeMap<_, _> = addresses
        .iter()
        .map(|a| {
            let primary = a.address.addr().is_ipv4();
            (
                a.key(),
                Address {
                    primary,
                    ..a.clone()
                },
            )
        })
        .collect();
    assert_eq!(state.addresses, want);
    let want: BTreeMap<_, _> = routes.iter().map(|r| (r.key(), r.clone())).collect();
    assert_eq!(state.routes, want);
    let want: BTreeMap<_, _> = rules.iter().map(|r| (r.key(), r.clone())).collect();
    assert_eq!(state.rules, want);
    let want: BTreeMap<String, String> = [
        ("net.ipv4.ip_forward".to_string(), "1".to_string()),
        ("net.ipv6.conf.all.forwarding".to_string(), "0".to_string()),
    ]
    .into();
    assert_eq!(state.sysctls, want);

    // The oracle: ip.
    let links = ns.ip_json(&["-d", "link", "show"]);
    let b = by_name(&links, "br0");
    assert_eq!(b["linkinfo"]["info_kind"], "bridge");
    assert_eq!(b["linkinfo"]["info_data"]["stp_state"], 0);
    assert_eq!(b["linkinfo"]["info_data"]["forward_delay"], 0);
    assert_eq!(b["ifalias"], LINK_ALIAS);
    let t = by_name(&links, "tap0");
    let ti = &t["linkinfo"]["info_data"];
    assert_eq!(t["linkinfo"]["info_kind"], "tun");
    assert_eq!(ti["type"], "tap");
    assert!(
        id_name("/etc/passwd", 1).contains(&ti["user"].as_str().unwrap().to_string()),
        "{ti}"
    );
    assert!(
        id_name("/etc/group", 1).contains(&ti["group"].as_str().unwrap().to_string()),
        "{ti}"
    );
    assert_eq!(ti["vnet_hdr"], true);
    assert_eq!(ti["multi_queue"], false);
    assert_eq!(ti["persist"], true);
    assert_eq!(t["master"], "br0");
    assert!(t["flags"].as_array().unwrap().contains(&Value::from("UP")));
    assert_eq!(by_name(&links, "v0")["master"], "br0");
    assert_eq!(by_name(&links, "v0")["link"], "v1");
    assert_eq!(by_name(&links, "v1")["mtu"], 1400);
    let vx = &by_name(&links, "vx0")["linkinfo"]["info_data"];
    assert_eq!(vx["id"], 42);
    assert_eq!(vx["port"], 4789);
    assert_eq!(vx["link"], "v1");
    let m = by_name(&links, "mv0");
    assert_eq!(m["linkinfo"]["info_data"]["mode"], "bridge");
    assert_eq!(m["link"], "v1");
    assert_eq!(m["address"], "52:54:00:12:34:56");

    let all_routes = ns.ip_json(&["route", "show", "table", "all"]);
    let multi = all_routes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["dst"] == "10.9.0.0/16")
        .expect("ip shows the multipath route");
    assert_eq!(multi["table"], "1000");
    assert_eq!(multi["protocol"], PROTO_TEXT);
    let weights: Vec<_> = multi["nexthops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["gateway"].as_str().unwrap().to_string(),
                h["weight"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        weights,
        vec![("10.0.0.253".to_string(), 1), ("10.0.0.254".to_string(), 3)]
    );
    let t101 = ns.ip_json(&["route", "show", "table", "101"]);
    assert!(t101
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["dst"] == "default" && r["gateway"] == "10.0.0.254"));
    let ip_rules = ns.ip_json(&["rule", "show"]);
    let r = ip_rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["priority"] == 10001)
        .expect("ip shows rule 10001");
    assert_eq!(r["table"], "101");
    assert_eq!(r["fwmark"], "0x1");
    assert_eq!(r["fwmask"], "0xff");
    // Trap 1: a lookup rule without an explicit action would make this fail with EINVAL.
    let get = ns.ip(&["route", "get", "1.2.3.4", "mark", "1"]);
    assert!(
        get.contains("via 10.0.0.254") && get.contains("table 101"),
        "{get}"
    );
    let get = ns.ip(&["-6", "route", "get", "fd00:20::5"]);
    assert!(get.contains("via fd00:10::fe"), "{get}");

    // The sysctl was written in the namespace only.
    let inside = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "cat",
            "/proc/sys/net/ipv4/ip_forward",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&inside.stdout).trim(), "1");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        root_forwarding
    );
}

/// Deletes remove what they name, repeat harmlessly, and still count as writes when sent.
#[test]
fn deletes_are_idempotent() {
    let Some(ns) = Netns::create() else { return };
    let a = addr("br0", "10.0.0.1/24");
    let a_gone_link = addr("v1", "10.0.1.1/24");
    let r = route(101, "0.0.0.0/0", vec![hop("10.0.0.254", "br0", 1)]);
    let mut r_big = route(1000, "10.7.0.0/16", vec![hop("10.0.0.254", "br0", 1)]);
    r_big.metric = 5;
    let ru = fwmark_rule();
    let (state, writes, d1, d2) = {
        let (a, a2, r, r_big, ru) = (
            a.clone(),
            a_gone_link.clone(),
            r.clone(),
            r_big.clone(),
            ru.clone(),
        );
        ns.run(move |mut k| async move {
            all_ok(
                k.apply(&[
                    Op::CreateLink(bridge("br0", false, 0)),
                    Op::CreateLink(veth("v0", "v1")),
                ])
                .await,
            );
            all_ok(k.apply(&[Op::SetLink(owned_up("br0"))]).await);
            all_ok(
                k.apply(&[Op::AddAddress(a.clone()), Op::AddAddress(a2.clone())])
                    .await,
            );
            all_ok(
                k.apply(&[Op::AddRoute(r.clone()), Op::AddRoute(r_big.clone())])
                    .await,
            );
            all_ok(k.apply(&[Op::AddRule(ru.clone())]).await);
            let before = k.writes();
            let deletes = vec![
                Op::DeleteRule(ru),
                Op::DeleteRoute(r),
                Op::DeleteRoute(r_big),
                Op::DeleteAddress(a),
                Op::DeleteLink("v0".into()),
            ];
            let d1 = k.apply(&deletes).await;
            let after_first = k.writes();
            // v1 went with v0: deleting its address sends nothing; everything else is sent
            // again and finds nothing.
            let mut again = deletes.clone();
            again.push(Op::DeleteAddress(a2));
            again.push(Op::DeleteLink("v1".into()));
            let d2 = k.apply(&again).await;
            let after_second = k.writes();
            let state = k.observe(&[]).await.unwrap();
            (state, (before, after_first, after_second), d1, d2)
        })
    };
    all_ok(d1);
    all_ok(d2);
    assert_eq!(writes.1 - writes.0, 5);
    assert_eq!(
        writes.2 - writes.1,
        6,
        "five repeats and v1's delete; no request for v1's address"
    );
    assert!(state.rules.is_empty());
    assert!(state.routes.is_empty());
    assert!(state.addresses.is_empty());
    assert_eq!(
        state.links.keys().cloned().collect::<Vec<_>>(),
        vec!["br0".to_string(), "lo".to_string()]
    );
    assert!(!ns.ip_ok(&["link", "show", "v1"]));
    assert!(ns.ip(&["route", "show", "table", "101"]).trim().is_empty());
    assert!(!ns.ip(&["rule", "show"]).contains("10001"));
}

/// ReplaceRoute changes a route in place, also a foreign one sitting on a desired key; foreign
/// objects observe as not owned; write errors carry their errno and hint.
#[test]
fn replace_and_foreign_objects() {
    let Some(ns) = Netns::create() else { return };
    let first = route(101, "0.0.0.0/0", vec![hop("10.0.0.254", "br0", 1)]);
    let second = route(101, "0.0.0.0/0", vec![hop("10.0.0.253", "br0", 1)]);
    let ours_on_foreign = route(101, "10.5.0.0/16", vec![hop("10.0.0.201", "br0", 1)]);
    let unreachable_gw = route(102, "0.0.0.0/0", vec![hop("192.168.77.1", "br0", 1)]);
    let no_dev = route(102, "10.1.0.0/16", vec![hop("10.0.0.254", "nope", 1)]);

    {
        let first = first.clone();
        ns.run(move |mut k| async move {
            all_ok(k.apply(&[Op::CreateLink(bridge("br0", false, 0))]).await);
            all_ok(k.apply(&[Op::SetLink(owned_up("br0"))]).await);
            all_ok(k.apply(&[Op::AddAddress(addr("br0", "10.0.0.1/24"))]).await);
            all_ok(k.apply(&[Op::AddRoute(first)]).await);
        })
    }
    // Foreign objects made by someone else (iproute2 defaults: protocol boot, no alias).
    ns.ip(&[
        "route",
        "add",
        "10.5.0.0/16",
        "via",
        "10.0.0.200",
        "table",
        "101",
    ]);
    ns.ip(&[
        "rule",
        "add",
        "pref",
        "500",
        "from",
        "10.1.0.0/16",
        "lookup",
        "101",
    ]);
    ns.ip(&["link", "add", "e0", "type", "veth", "peer", "name", "e1"]);
    ns.ip(&["addr", "add", "10.2.0.1/24", "dev", "e0"]);
    ns.ip(&["addr", "add", "10.0.0.9/24", "dev", "br0"]);

    let (before, after, errors) = {
        let (second, ours_on_foreign) = (second.clone(), ours_on_foreign.clone());
        let (unreachable_gw, no_dev) = (unreachable_gw.clone(), no_dev.clone());
        ns.run(move |mut k| async move {
            let before = k.observe(&[]).await.unwrap();
            all_ok(
                k.apply(&[Op::ReplaceRoute(second), Op::ReplaceRoute(ours_on_foreign)])
                    .await,
            );
            let errors = k
                .apply(&[Op::AddRoute(unreachable_gw), Op::AddRoute(no_dev)])
                .await;
            let after = k.observe(&[]).await.unwrap();
            (before, after, errors)
        })
    };

    let foreign_route = before
        .routes
        .values()
        .find(|r| r.to == net("10.5.0.0/16"))
        .unwrap();
    assert!(!foreign_route.owned);
    assert!(
        before
            .routes
            .values()
            .find(|r| r.to == net("0.0.0.0/0"))
            .unwrap()
            .owned
    );
    let foreign_rule = before
        .rules
        .values()
        .find(|r| r.key.priority == 500)
        .unwrap();
    assert!(!foreign_rule.owned);
    assert_eq!(foreign_rule.key.from, Some(net("10.1.0.0/16")));
    assert_eq!(foreign_rule.action, RuleAction::Lookup(101));
    assert!(!before.links["e0"].owned);
    assert_eq!(before.links["e0"].kind, veth("e0", "e1").kind);
    let a = |s: &State, link: &str, a: &str| s.addresses[&(link.to_string(), net(a))].owned;
    assert!(
        !a(&before, "e0", "10.2.0.1/24"),
        "foreign address on a foreign link"
    );
    assert!(
        a(&before, "br0", "10.0.0.9/24"),
        "any address on an owned link is owned"
    );

    // Replaced in place: one route per key, ours, with the new gateway.
    let t101: Vec<&Route> = after.routes.values().filter(|r| r.table == 101).collect();
    assert_eq!(t101, vec![&second, &ours_on_foreign]);
    let ip_t101 = ns.ip_json(&["route", "show", "table", "101"]);
    assert_eq!(ip_t101.as_array().unwrap().len(), 2, "{ip_t101}");
    assert!(ip_t101
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["protocol"] == PROTO_TEXT));

    let e = errors[0].as_ref().unwrap_err();
    assert_eq!(e.errno, Some(libc::ENETUNREACH), "{e}");
    assert_eq!(
        e.hint.as_deref(),
        Some("no address on br0 covers the gateway, or the link is down")
    );
    assert_eq!(e.object, "route default via 192.168.77.1 dev br0 table 102");
    let e = errors[1].as_ref().unwrap_err();
    assert_eq!(e.errno, Some(libc::ENODEV), "{e}");
    assert!(e.hint.as_deref().unwrap().contains("nope"), "{e}");
    assert!(!after.routes.values().any(|r| r.table == 102));
}

/// Bridge options, tap options in place, and the request counts of both.
#[test]
fn bridge_and_tap_changes() {
    let Some(ns) = Netns::create() else { return };
    let out = ns.run(|mut k| async move {
        all_ok(
            k.apply(&[
                Op::CreateLink(bridge("br1", true, 1500)),
                Op::CreateLink(tap("tap1", Some(1), None, false)),
            ])
            .await,
        );
        let w0 = k.writes();
        let s0 = k.observe(&[]).await.unwrap();
        // STP off with a forward delay outside the STP range: two requests.
        all_ok(
            k.apply(&[Op::SetLink(LinkSet {
                bridge: Some(BridgeOpts {
                    stp: Some(false),
                    forward_delay: Some(0),
                }),
                ..LinkSet::new("br1")
            })])
            .await,
        );
        let w1 = k.writes();
        all_ok(
            k.apply(&[Op::SetTap {
                name: "tap1".into(),
                opts: TapOpts {
                    owner: Some(Ident::Id(2)),
                    group: Some(Ident::Id(3)),
                    vnet_hdr: Some(true),
                    multi_queue: None,
                    open_queues: 0,
                },
            }])
            .await,
        );
        let w2 = k.writes();
        let s1 = k.observe(&[]).await.unwrap();
        let refused = k
            .apply(&[
                Op::SetTap {
                    name: "tap1".into(),
                    opts: TapOpts {
                        owner: None,
                        group: Some(Ident::Id(3)),
                        vnet_hdr: Some(true),
                        multi_queue: Some(false),
                        open_queues: 0,
                    },
                },
                Op::SetTap {
                    name: "tap1".into(),
                    opts: TapOpts {
                        owner: Some(Ident::Id(2)),
                        group: Some(Ident::Id(3)),
                        vnet_hdr: Some(true),
                        multi_queue: Some(true),
                        open_queues: 0,
                    },
                },
                Op::SetTap {
                    name: "nosuch".into(),
                    opts: TapOpts::default(),
                },
            ])
            .await;
        (w0, w1, w2, s0, s1, refused)
    });
    let (w0, w1, w2, s0, s1, refused) = out;
    // A creation is two writes: the link, then its mark.
    assert_eq!((w0, w1, w2), (4, 6, 7));
    assert_eq!(s0.links["br1"].kind, bridge("br1", true, 1500).kind);
    assert_eq!(
        s0.links["tap1"].kind,
        tap("tap1", Some(1), None, false).kind
    );
    // Marked by the creation itself, before any SetLink (a crash cannot split the two).
    assert!(s0.links["tap1"].owned && !s0.links["tap1"].mark_pending);
    assert!(s0.links["br1"].owned && !s0.links["br1"].mark_pending);
    assert_eq!(s1.links["br1"].kind, bridge("br1", false, 0).kind);
    assert_eq!(
        s1.links["tap1"].kind,
        tap("tap1", Some(2), Some(3), true).kind
    );
    let hint = refused[0].as_ref().unwrap_err().hint.clone().unwrap();
    assert!(hint.contains("cannot unset"), "{hint}");
    assert_eq!(refused[1].as_ref().unwrap_err().errno, Some(libc::EINVAL));
    assert_eq!(refused[2].as_ref().unwrap_err().errno, Some(libc::ENODEV));

    let links = ns.ip_json(&["-d", "link", "show"]);
    let b = &by_name(&links, "br1")["linkinfo"]["info_data"];
    assert_eq!(b["stp_state"], 0);
    assert_eq!(b["forward_delay"], 0);
    for name in ["br1", "tap1"] {
        let l = by_name(&links, name);
        assert_eq!(l["ifalias"], "managed-by: netconverge", "{l}");
        assert_eq!(l["group"], "default", "the creation group is left: {l}");
    }
    let t = &by_name(&links, "tap1")["linkinfo"]["info_data"];
    assert_eq!(t["vnet_hdr"], true);
    assert!(
        id_name("/etc/passwd", 2).contains(&t["user"].as_str().unwrap().to_string()),
        "{t}"
    );
}

/// A big batch is pipelined on one connection and every answer lands on its own op: the
/// results come back in op order, failures exactly where they belong.
#[test]
fn big_batch_results_stay_in_order() {
    let Some(ns) = Netns::create() else { return };
    let (results, writes, routes, elapsed) = ns.run(|mut k| async move {
        all_ok(k.apply(&[Op::CreateLink(bridge("br0", false, 0))]).await);
        all_ok(k.apply(&[Op::SetLink(owned_up("br0"))]).await);
        all_ok(k.apply(&[Op::AddAddress(addr("br0", "10.0.0.1/24"))]).await);
        let mut ops = Vec::new();
        for i in 0..2000u32 {
            let to = format!("10.{}.{}.{}/32", 100 + i / 65536, (i / 256) % 256, i % 256);
            let mut r = route(200, &to, vec![hop("10.0.0.254", "br0", 1)]);
            if i % 500 == 7 {
                // Unreachable gateway: must fail, and only this op.
                r.nexthops[0].via = Some(ip("192.168.99.1"));
            }
            ops.push(Op::AddRoute(r));
        }
        let before = k.writes();
        let start = std::time::Instant::now();
        let results = k.apply(&ops).await;
        let elapsed = start.elapsed();
        let writes = k.writes() - before;
        let state = k.observe(&[]).await.unwrap();
        (results, writes, state.routes.len(), elapsed)
    });
    assert_eq!(results.len(), 2000);
    for (i, r) in results.iter().enumerate() {
        if i % 500 == 7 {
            assert_eq!(
                r.as_ref().unwrap_err().errno,
                Some(libc::ENETUNREACH),
                "op {i}"
            );
        } else {
            assert!(r.is_ok(), "op {i}: {r:?}");
        }
    }
    assert_eq!(writes, 2000);
    assert_eq!(routes, 2000 - 4);
    eprintln!("2000 route adds pipelined: {elapsed:?}");
}

/// Links netconverge cannot describe observe as external: a veth whose peer is in another
/// namespace, a layer-3 tun.
#[test]
fn undescribable_links_are_external() {
    let Some(ns) = Netns::create() else { return };
    let Some(other) = Netns::create() else { return };
    ns.ip(&[
        "link",
        "add",
        "va",
        "type",
        "veth",
        "peer",
        "name",
        "vb",
        "netns",
        &other.name,
    ]);
    ns.ip(&["tuntap", "add", "tn0", "mode", "tun"]);
    let state = ns.run(|mut k| async move { k.observe(&[]).await.unwrap() });
    assert_eq!(state.links["va"].kind, LinkKind::External);
    assert_eq!(state.links["tn0"].kind, LinkKind::External);
    let theirs = other.run(|mut k| async move { k.observe(&[]).await.unwrap() });
    assert_eq!(theirs.links["vb"].kind, LinkKind::External);
    assert!(!theirs.links.contains_key("va"));
}

/// Entering a namespace that does not exist fails before anything runs, naming the path.
#[test]
fn missing_namespace_is_a_clear_error() {
    let name = format!("nc-test-{}-missing", std::process::id());
    let err = run_in_netns(Some(&name), || async {
        let mut k = RtnlKernel::connect(PROTO).unwrap();
        k.observe(&[]).await
    })
    .unwrap_err();
    assert_eq!(err.errno, Some(libc::ENOENT));
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "network namespace {name} not found (/run/netns/{name})"
        )),
        "{text}"
    );
}

/// Connecting outside a runtime is an error, not a panic.
#[test]
fn connect_needs_a_runtime() {
    let err = RtnlKernel::connect(PROTO).unwrap_err();
    assert!(err.hint.unwrap().contains("tokio runtime"));
}

// ---------------------------------------------------------------------------------------------
// Services: the neighbour table and netconverge's nftables tables through the trait.

/// nb0 (10.9.0.2, with a permanent neighbour 10.9.0.1) in `ns`, its veth peer nb1 (10.9.0.3)
/// in `peer`, both up; returns nb1's MAC.
fn neighbour_lab(ns: &Netns, peer: &Netns) -> MacAddr {
    ns.ip(&[
        "link", "add", "nb0", "type", "veth", "peer", "name", "nb1", "netns", &peer.name,
    ]);
    ns.ip(&["address", "add", "10.9.0.2/24", "dev", "nb0"]);
    peer.ip(&["address", "add", "10.9.0.3/24", "dev", "nb1"]);
    ns.ip(&["link", "set", "nb0", "up"]);
    peer.ip(&["link", "set", "nb1", "up"]);
    ns.ip(&[
        "neigh",
        "add",
        "10.9.0.1",
        "lladdr",
        "52:54:00:00:00:aa",
        "dev",
        "nb0",
        "nud",
        "permanent",
    ]);
    let links = peer.ip_json(&["link", "show", "nb1"]);
    links[0]["address"].as_str().unwrap().parse().unwrap()
}

/// Lookups read the neighbour table over RTM_GETNEIGH: an entry counts on its own link only.
/// A probe learns an answering neighbour's MAC, and gives up on a silent one after its wait
/// without stalling the runtime it shares with the netlink connection.
#[test]
fn neighbours_are_looked_up_and_probed_without_blocking() {
    let Some(ns) = Netns::create() else { return };
    let Some(peer) = Netns::create() else { return };
    let nb1 = neighbour_lab(&ns, &peer);
    let (found, elsewhere, no_link, answered, silent, ticks) = ns.run(|mut k| async move {
        let found = k.neighbour(ip("10.9.0.1"), "nb0").await.unwrap();
        let elsewhere = k.neighbour(ip("10.9.0.1"), "lo").await.unwrap();
        let no_link = k.neighbour(ip("10.9.0.1"), "nope").await.unwrap();
        let answered = k
            .probe_neighbour(ip("10.9.0.3"), "nb0", Duration::from_secs(2))
            .await
            .unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let counter = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        let started = Instant::now();
        let silent = k
            .probe_neighbour(ip("10.9.0.77"), "nb0", Duration::from_millis(300))
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        ticker.abort();
        (
            found,
            elsewhere,
            no_link,
            answered,
            silent,
            ticks.load(Ordering::SeqCst),
        )
    });
    assert_eq!(found, Some("52:54:00:00:00:aa".parse().unwrap()));
    assert_eq!(elsewhere, None);
    assert_eq!(no_link, None);
    assert_eq!(answered, Some(nb1));
    assert_eq!(silent, None);
    assert!(
        ticks >= 10,
        "the runtime stalled during the probe ({ticks} ticks)"
    );
}

/// True when nft can be used; says why not otherwise (CI installs it).
fn nft_or_skip() -> bool {
    if reconcilers::programs::find("nft").is_some() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("nft is not installed; CI=true forbids skipping");
    }
    eprintln!("skipped: nft is not installed");
    false
}

/// A firewall with a gateway set goes in through `apply`, is observed as intact with the
/// gateway's MAC (learnt by probing), and a delete removes both tables.
#[test]
fn the_firewall_is_loaded_observed_and_deleted_through_the_trait() {
    let Some(ns) = Netns::create() else { return };
    if !nft_or_skip() {
        return;
    }
    let Some(peer) = Netns::create() else { return };
    let nb1 = neighbour_lab(&ns, &peer);
    let desired = reconcilers::firewall::render(&Spec {
        mask: 0xff,
        track: vec![Track {
            provider: "p3".into(),
            number: 3,
            mark: 3,
            interface: "nb0".into(),
            gateway: Some("10.9.0.3".parse().unwrap()),
        }],
        marks: vec![],
        masquerade: vec![Masq {
            from: None,
            out: "nb0".into(),
        }],
    });
    let want = desired.clone();
    let (before, loaded, deleted) = ns.run(|mut k| async move {
        let before = k.observe(&[]).await.unwrap().firewall;
        all_ok(k.apply(&[Op::Firewall(FirewallOp::Replace(want))]).await);
        let loaded = k.observe(&[]).await.unwrap().firewall;
        all_ok(k.apply(&[Op::Firewall(FirewallOp::Delete)]).await);
        let deleted = k.observe(&[]).await.unwrap().firewall;
        (before, loaded, deleted)
    });
    assert_eq!(before, None);
    let loaded = loaded.expect("tables loaded");
    assert_eq!(loaded.digest, desired.digest);
    assert_eq!(loaded.problem, None, "{}", loaded.ruleset);
    assert!(
        loaded.ruleset.contains(&format!("elements = {{ {nb1} }}")),
        "{}",
        loaded.ruleset
    );
    assert_eq!(deleted, None);
}

/// `br0`, up, with 10.0.0.1/24 (made with `ip`, as a host's own would be).
fn bridge_on_lan(ns: &Netns) {
    ns.ip(&["link", "add", "br0", "type", "bridge"]);
    ns.ip(&["link", "set", "br0", "up"]);
    ns.ip(&["addr", "add", "10.0.0.1/24", "dev", "br0"]);
}

/// The IPv4 routes of `state`.
fn ipv4_routes(state: &State) -> Vec<Route> {
    let v4 = |r: &&Route| r.to.addr().is_ipv4();
    state.routes.values().filter(v4).cloned().collect()
}

/// The gateway of each route of table 101 as `ip -j` shows it, by destination.
fn table_101(ns: &str) -> BTreeMap<String, String> {
    let out = Command::new("ip")
        .args(["-j", "-n", ns, "route", "show", "table", "101"])
        .output()
        .expect("run ip");
    let routes: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Array(vec![]));
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let each = routes.as_array().cloned().unwrap_or_default();
    each.iter()
        .map(|r| (text(&r["dst"]), text(&r["gateway"])))
        .collect()
}

/// The watcher's route cache: each observation gives what a fresh dump gives (a kernel without
/// the cache, and `ip -j`), reading the cache after changes its notices describe and dumping
/// after those they do not (a second route at a key, a link going down with its routes, a
/// resync's `forget_cache`, an overrun of the subscription).
#[test]
fn the_route_cache_follows_the_kernel_and_dumps_when_unsure() {
    let Some(ns) = Netns::create() else { return };
    bridge_on_lan(&ns);
    let name = ns.name.clone();
    let steps: Vec<(&str, u64)> = ns.run(move |k| async move {
        let mut k = k.with_route_cache();
        let ipn = |args: &str| {
            let ok = Command::new("ip")
                .args(["-n", &name])
                .args(args.split(' '))
                .status()
                .expect("run ip")
                .success();
            assert!(ok, "ip {args}");
        };
        let mut steps = Vec::new();
        let mut check = async |k: &mut RtnlKernel, step: &'static str| {
            let cached = k.observe(&[]).await.unwrap();
            let mut fresh = RtnlKernel::connect(PROTO).unwrap();
            let dumped = fresh.observe(&[]).await.unwrap();
            assert_eq!(ipv4_routes(&cached), ipv4_routes(&dumped), "after {step}");
            let by_ip = table_101(&name);
            let ours: BTreeMap<String, String> = ipv4_routes(&cached)
                .iter()
                .filter(|r| r.table == 101)
                .map(|r| {
                    let via = r.nexthops.as_slice()[0].via.map(|v| v.to_string());
                    (r.to.addr().to_string(), via.unwrap_or_default())
                })
                .collect();
            assert_eq!(ours, by_ip, "ip -j disagrees after {step}");
            steps.push((step, k.route_dumps()));
        };
        check(&mut k, "the first observation").await;
        ipn("route add 172.16.0.1/32 via 10.0.0.254 table 101");
        check(&mut k, "a route added").await;
        ipn("route replace 172.16.0.1/32 via 10.0.0.253 table 101");
        check(&mut k, "the route replaced").await;
        all_ok(
            k.apply(&[Op::AddRoute(route(
                101,
                "172.16.0.2/32",
                vec![hop("10.0.0.254", "br0", 1)],
            ))])
            .await,
        );
        check(&mut k, "a route of ours added").await;
        ipn("route del 172.16.0.1/32 table 101");
        check(&mut k, "a route deleted").await;
        ipn("route append 172.16.0.2/32 via 10.0.0.252 table 101");
        check(&mut k, "a second route at a key").await;
        check(&mut k, "the same again").await;
        ipn("route del 172.16.0.2/32 via 10.0.0.252 table 101");
        check(&mut k, "the second route deleted").await;
        check(&mut k, "the same again, once more").await;
        ipn("link set br0 down");
        check(&mut k, "the link down").await;
        ipn("link set br0 up");
        ipn("route add 172.16.0.3/32 via 10.0.0.254 table 101");
        check(&mut k, "the link up, a route added").await;
        check(&mut k, "nothing changed").await;
        // Beside the kernel's own route to 10.0.0.0/24, which a replace changes first: the
        // view, which shows only the other, cannot follow it.
        ipn("route append 10.0.0.0/24 via 10.0.0.254 dev br0");
        check(&mut k, "a route beside a kernel-made one").await;
        ipn("route replace 10.0.0.0/24 via 10.0.0.253 dev br0");
        check(&mut k, "the kernel-made one replaced").await;
        check(&mut k, "nothing changed, again").await;
        k.forget_cache();
        check(&mut k, "forget_cache").await;
        steps
    });
    let dumps: Vec<u64> = steps.iter().map(|(_, d)| *d).collect();
    // A dump for the first observation, none while the notices tell all but after a replace
    // of a route the view holds; one for the second route at a key (which the view cannot
    // hold) and one more while it is there; one once it is gone (kept again); one after the
    // link went down, and after it came up; none for a route beside a kernel-made one (which
    // the view leaves out), one after the replace of that one, and again while the two are
    // there (the replaced one is no longer the kernel's); one after `forget_cache`.
    assert_eq!(
        dumps,
        [1, 1, 2, 2, 2, 3, 4, 5, 5, 6, 7, 7, 7, 8, 9, 10],
        "{steps:?}"
    );
}

/// More notices than the subscription's buffer holds: the overrun makes the cache dump, and
/// the observation still gives every route.
#[test]
fn the_route_cache_survives_an_overrun_of_its_subscription() {
    let Some(ns) = Netns::create() else { return };
    bridge_on_lan(&ns);
    let batch: String = (0..20_000)
        .map(|i| {
            format!(
                "route add 172.16.{}.{}/32 via 10.0.0.254 table 101\n",
                i / 256,
                i % 256
            )
        })
        .collect();
    let file = std::env::temp_dir().join(format!("{}.batch", ns.name));
    std::fs::write(&file, batch).unwrap();
    let (name, path) = (ns.name.clone(), file.clone());
    let (routes, dumps) = ns.run(move |k| async move {
        let mut k = k.with_route_cache();
        k.observe(&[]).await.unwrap();
        let ok = Command::new("ip")
            .args(["-n", &name, "-batch"])
            .arg(&path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip -batch");
        let state = k.observe(&[]).await.unwrap();
        (ipv4_routes(&state).len(), k.route_dumps())
    });
    let _ = std::fs::remove_file(file);
    let by_ip = table_101(&ns.name).len();
    assert_eq!(by_ip, 20_000);
    assert!(routes >= 20_000, "{routes} IPv4 routes observed");
    assert_eq!(dumps, 2, "the overrun did not make the cache dump");
}
