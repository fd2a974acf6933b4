//! Tests of the desired-state loader: multi-file merges, the seed host, and the model → YAML
//! → model round trip (the invalid corpus is a unit test of the library).

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use netconverge::desired::{load_path, load_str, render_object, render_state, HostCheck};
use proptest::prelude::*;
use proptest::sample::Index;
use reconcilers::model::{
    Address, BridgeOpts, Family, Ident, Link, LinkKind, MacAddr, MacvlanMode, MacvlanOpts, NextHop,
    Route, RouteType, Rule, RuleAction, RuleKey, Scope, State, TapOpts, VethOpts, VxlanOpts,
    DEFAULT_PROTOCOL, TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN,
};
use reconcilers::plan::Object;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    v.sort();
    v
}

// The invalid corpus is a unit test of the library (src/desired/tests/invalid_corpus.rs), so
// that the conversion's mutation testing runs it without building this file.

/// Errors are collected, not stopped at the first one.
#[test]
fn all_errors_are_reported() {
    let src = "\
links:
  br0:
    kind: bridge
    mtu: 10
  tap0:
    kind: tap
    master: br9
routes:
  - { to: 10.0.0.5/24, dev: br0 }
  - { to: default, via: 192.168.1.1, table: nope }
rules:
  - { priority: 5, fwmark: \"0x3/0x1\", table: main }
sysctl:
  vm.swappiness: 10
";
    let err = load_str(src, Path::new("many.yaml")).expect_err("invalid");
    let positions: Vec<(u32, u32)> = err.0.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(
        positions,
        [(4, 10), (7, 13), (9, 11), (10, 45), (12, 28), (14, 3)],
        "{err}"
    );
}

/// A broken file does not make declarations in the others look missing.
#[test]
fn no_ghost_errors_after_a_parse_error() {
    let dir = tempdir("ghost");
    fs::write(
        dir.join("a.yaml"),
        "tables:\n  wrt: 101\nlinks:\n  br0: { kind: bridge }\n  oops\n",
    )
    .expect("write");
    fs::write(
        dir.join("b.yaml"),
        "links:\n  tap0: { kind: tap, master: br0 }\nroutes:\n  - { to: default, dev: eth0, table: wrt }\n",
    )
    .expect("write");
    let err = load_path(&dir).expect_err("a.yaml is broken");
    assert_eq!(err.0.len(), 1, "{err}");
    assert!(err.0[0].file.ends_with("a.yaml"));
    let _ = fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Multi-file merges

fn tempdir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("netconverge-desired-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn merge_directory() {
    let dir = data("valid/merge");
    let d = load_path(&dir).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = d
        .files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // Name order; README.md and the dot-file are not read.
    assert_eq!(names, ["10-base.yaml", "20-links.yml", "30-routing.yaml"]);
    assert_eq!(
        d.tables,
        BTreeMap::from([("isp1".into(), 1), ("isp2".into(), 2)])
    );
    assert_eq!(d.protocol, 200);
    assert_eq!(d.state.links.len(), 4);
    assert_eq!(d.state.links["tap0"].master.as_deref(), Some("br0"));
    assert_eq!(d.state.routes.len(), 3);
    assert_eq!(d.state.rules.len(), 2);
    let isp2 = d
        .state
        .routes
        .values()
        .find(|r| r.table == 2)
        .expect("route in isp2");
    assert_eq!(isp2.nexthops[0].via, Some("203.0.113.1".parse().unwrap()));
    assert_eq!(d.state.sysctls["net.ipv4.ip_forward"], "1");
}

#[test]
fn merge_duplicates_name_both_places() {
    let cases: [(&str, &str, &str, &str); 4] = [
        (
            "links:\n  br0: { kind: bridge }\n",
            "links:\n  eth0: { kind: external }\n  br0: { kind: bridge }\n",
            "link br0 is declared twice",
            "b.yaml:3:3",
        ),
        (
            "tables:\n  wrt: 101\n",
            "tables:\n  wrt: 102\n",
            "table wrt is declared twice",
            "b.yaml:2:3",
        ),
        (
            "sysctl:\n  net.ipv4.ip_forward: 1\n",
            "sysctl:\n  net.ipv4.ip_forward: \"0\"\n",
            "sysctl net.ipv4.ip_forward is declared twice",
            "b.yaml:2:3",
        ),
        (
            "routes:\n  - { to: 10.1.0.0/16, dev: eth0 }\n",
            "rules:\n  - { priority: 7, table: main, from: 10.0.0.0/8 }\nroutes:\n  - { to: 10.1.0.0/16, via: 192.0.2.1 }\n",
            "route 10.1.0.0/16 via 192.0.2.1 is declared twice",
            "b.yaml:4:5",
        ),
    ];
    for (i, (a, b, fragment, place)) in cases.iter().enumerate() {
        let dir = tempdir(&format!("dup{i}"));
        fs::write(dir.join("a.yaml"), a).expect("write");
        fs::write(dir.join("b.yaml"), b).expect("write");
        let err = load_path(&dir).expect_err("duplicate");
        assert_eq!(err.0.len(), 1, "{err}");
        let d = &err.0[0];
        let shown = d.to_string();
        assert!(shown.contains(fragment), "{shown}");
        assert!(
            shown.contains(&format!("{}: ", dir.join(place).display())),
            "{shown}"
        );
        // Both places are named in the message.
        assert!(
            d.message
                .contains(&dir.join("a.yaml").display().to_string()),
            "{shown}"
        );
        assert!(
            d.message.contains(&dir.join(place).display().to_string()),
            "{shown}"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn merge_duplicate_rules_and_owner() {
    let dir = data("invalid-merge/rules");
    let err = load_path(&dir).expect_err("duplicates");
    let shown = err.to_string();
    assert_eq!(err.0.len(), 3, "{shown}");
    assert!(
        shown.contains("b.yaml:2:8: owner is declared twice"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "b.yaml:4:5: rule 10001: from all fwmark 0x1/0xff unreachable is declared twice"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("b.yaml:5:17: priority 10002 is used by two different IPv4 rules"),
        "{shown}"
    );
    assert!(shown.contains("a.yaml:4:5"), "{shown}");
}

#[test]
fn empty_directory_is_an_empty_state() {
    let dir = tempdir("empty");
    fs::write(dir.join("notes.txt"), "not yaml").expect("write");
    let d = load_path(&dir).expect("empty is valid");
    assert!(d.state.is_empty());
    assert!(d.files.is_empty());
    assert_eq!(d.protocol, DEFAULT_PROTOCOL);
    let _ = fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Valid files and the seed host

#[test]
fn valid_corpus_loads_and_round_trips() {
    for path in sorted_entries(&data("valid")) {
        if path.is_dir() {
            continue;
        }
        let d = load_path(&path).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
        let text = render_state(&d.state, &d.tables);
        let again = load_str(&text, Path::new("rendered.yaml")).unwrap_or_else(|e| {
            panic!(
                "{}: rendered output does not load:\n{e}\n{text}",
                path.display()
            )
        });
        assert_eq!(again.state, d.state, "{}:\n{text}", path.display());
        assert_eq!(again.tables, d.tables);
    }
}

#[test]
fn ursa_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("desired/ursa.yaml");
    let d = load_path(&path).unwrap_or_else(|e| panic!("{e}"));
    let s = &d.state;
    assert_eq!(
        d.tables,
        BTreeMap::from([("wrt".into(), 101), ("fw".into(), 102)])
    );
    assert_eq!(d.protocol, DEFAULT_PROTOCOL);
    let names: Vec<&str> = s.links.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["br0", "eth0", "tap-centos", "tap-debian", "tap-fedora"]
    );
    assert_eq!(s.links["eth0"].kind, LinkKind::External);
    assert_eq!(
        s.links["br0"].kind,
        LinkKind::Bridge(BridgeOpts {
            stp: Some(false),
            forward_delay: Some(0)
        })
    );
    assert_eq!(
        s.links["tap-centos"].kind,
        LinkKind::Tap(TapOpts {
            owner: Some(Ident::Name("tom".into())),
            group: Some(Ident::Name("kvm".into())),
            vnet_hdr: Some(true),
            multi_queue: Some(false),
            open_queues: 0,
        })
    );
    assert_eq!(s.links["tap-fedora"].master.as_deref(), Some("br0"));
    assert_eq!(s.addresses.len(), 3);
    assert!(s
        .addresses
        .contains_key(&("br0".to_string(), "fd00:10::1/64".parse().unwrap())));
    // Balanced multipath default in main, one default per provider table.
    let main_default = &s
        .routes
        .values()
        .find(|r| r.table == TABLE_MAIN)
        .expect("main default");
    assert_eq!(main_default.to, Family::Inet.any());
    assert_eq!(main_default.nexthops.len(), 2);
    assert!(main_default.nexthops.iter().all(|h| h.weight == 1));
    assert_eq!(main_default.scope, Scope::Global);
    assert_eq!(s.routes.len(), 3);
    let rule = s
        .rules
        .values()
        .find(|r| r.key.priority == 10002)
        .expect("rule");
    assert_eq!(rule.key.fwmark, Some((2, 0xff)));
    assert_eq!(rule.action, RuleAction::Lookup(102));
    assert_eq!(s.sysctls["net.ipv4.conf.all.rp_filter"], "2");
    // Host-dependent facts: 3 owners, 3 groups, 1 external link.
    let users = d
        .host_checks
        .iter()
        .filter(|c| matches!(c, HostCheck::User { name, .. } if name == "tom"))
        .count();
    let groups = d
        .host_checks
        .iter()
        .filter(|c| matches!(c, HostCheck::Group { name, .. } if name == "kvm"))
        .count();
    let ext: Vec<&HostCheck> = d
        .host_checks
        .iter()
        .filter(|c| matches!(c, HostCheck::ExternalLink { .. }))
        .collect();
    assert_eq!((users, groups, ext.len()), (3, 3, 1));
    let at = ext[0].at();
    assert_eq!((at.line, at.column), (17, 3));
    assert!(at
        .message
        .contains("external link `eth0` does not exist on this host"));
    // And its rendering loads back to the same state.
    let text = render_state(s, &d.tables);
    let again =
        load_str(&text, Path::new("ursa-rendered.yaml")).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(&again.state, s, "{text}");
}

#[test]
fn render_object_is_one_field_per_line() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("desired/ursa.yaml");
    let d = load_path(&path).expect("ursa");
    let main_default = d
        .state
        .routes
        .values()
        .find(|r| r.table == TABLE_MAIN)
        .expect("route");
    assert_eq!(
        render_object(&Object::Route(main_default.clone()), &d.tables),
        "routes:\n  - to: default\n    nexthops:\n      - via: 192.168.1.1\n        dev: eth0\n        weight: 1\n      - via: 192.168.1.254\n        dev: eth0\n        weight: 1\n"
    );
    let tap = d.state.links["tap-centos"].clone();
    assert_eq!(
        render_object(&Object::Link(tap), &d.tables),
        "links:\n  tap-centos:\n    kind: tap\n    tap:\n      owner: tom\n      group: kvm\n      vnet_hdr: true\n      multi_queue: false\n    master: br0\n    up: true\n"
    );
    let rule = d.state.rules.values().next().expect("rule").clone();
    let text = render_object(&Object::Rule(rule), &d.tables);
    assert_eq!(
        text,
        "rules:\n  - priority: 10001\n    fwmark: \"0x1/0xff\"\n    table: wrt\n"
    );
    // Each object's YAML is itself a valid desired state (with the tables it names).
    let with_tables = format!("tables:\n  wrt: 101\n{text}");
    load_str(&with_tables, Path::new("obj.yaml")).expect("object YAML loads");
}

/// Canonical forms the loader must produce, written in non-canonical ways.
#[test]
fn canonical_forms() {
    let d = load_str(
        "\
links:
  vm0: { kind: tap, tap: { owner: 1000, group: \"100\" } }
  mv0: { kind: macvlan, macvlan: { link: eth0 } }
routes:
  - { to: 10.1.2.3, dev: eth0 }
  - { to: \"fd00:1::/64\", via: \"fd00::1\", metric: 0 }
  - { to: default, via: \"fd00::1\" }
  - to: 10.2.0.0/16
    nexthops: [{ via: 192.0.2.9, weight: 7 }]
  - to: 10.3.0.0/16
    nexthops: [{ via: 192.0.2.9, weight: 2 }, { via: 192.0.2.1, weight: 3 }]
  - { to: 10.4.0.0/16, type: unreachable }
rules:
  - { priority: 5, fwmark: 16, table: 7 }
  - { priority: 6, to: \"fd00::/8\", action: prohibit }
  - { priority: 7, family: ipv6, from: all, table: local }
sysctl:
  net.ipv4.ip_local_port_range: \"32768\\t 60999 \"
  net.ipv6.conf.all.forwarding: true
  net.core.somaxconn: 4096
",
        Path::new("c.yaml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let s = &d.state;
    assert_eq!(
        s.links["vm0"].kind,
        LinkKind::Tap(TapOpts {
            owner: Some(Ident::Id(1000)),
            group: Some(Ident::Id(100)),
            vnet_hdr: None,
            multi_queue: None,
            open_queues: 0
        })
    );
    // Numeric owners need no look-up; only the sysctls are left to the host, and whether the
    // owner can open its tap (a warning, never a refusal).
    assert!(d
        .host_checks
        .iter()
        .all(|c| matches!(c, HostCheck::Sysctl { .. } | HostCheck::TapAccess { .. })));
    assert_eq!(
        s.links["mv0"].kind,
        LinkKind::Macvlan(MacvlanOpts {
            link: "eth0".into(),
            mode: MacvlanMode::Bridge
        })
    );
    let r: Vec<&Route> = s.routes.values().collect();
    let host = r
        .iter()
        .find(|r| r.to.to_string() == "10.1.2.3/32")
        .expect("host route");
    assert_eq!((host.scope, host.metric), (Scope::Link, 0));
    let v6 = r
        .iter()
        .find(|r| r.to.to_string() == "fd00:1::/64")
        .expect("v6");
    assert_eq!((v6.metric, v6.scope), (1024, Scope::Global));
    assert!(r.iter().any(|r| r.to.to_string() == "::/0"));
    let single = r
        .iter()
        .find(|r| r.to.to_string() == "10.2.0.0/16")
        .expect("single");
    assert_eq!(single.nexthops[0].weight, 1);
    let multi = r
        .iter()
        .find(|r| r.to.to_string() == "10.3.0.0/16")
        .expect("multi");
    let vias: Vec<String> = multi
        .nexthops
        .iter()
        .map(|h| h.via.unwrap().to_string())
        .collect();
    assert_eq!(vias, ["192.0.2.1", "192.0.2.9"]);
    let unreach = r
        .iter()
        .find(|r| r.kind == RouteType::Unreachable)
        .expect("unreachable");
    assert!(unreach.nexthops.is_empty());
    assert_eq!(unreach.scope, Scope::Global);
    let rules: Vec<&Rule> = s.rules.values().collect();
    assert_eq!(rules[0].key.fwmark, Some((16, u32::MAX)));
    assert_eq!(rules[0].action, RuleAction::Lookup(7));
    assert_eq!(rules[1].key.family, Family::Inet6);
    assert_eq!(rules[1].action, RuleAction::Prohibit);
    assert_eq!(
        (rules[2].key.family, rules[2].key.from),
        (Family::Inet6, None)
    );
    assert_eq!(rules[2].action, RuleAction::Lookup(TABLE_LOCAL));
    assert_eq!(s.sysctls["net.ipv4.ip_local_port_range"], "32768 60999");
    assert_eq!(s.sysctls["net.ipv6.conf.all.forwarding"], "1");
    assert_eq!(s.sysctls["net.core.somaxconn"], "4096");
}

#[test]
fn veth_pairs() {
    let both = load_str(
        "links:\n  v0: { kind: veth, veth: { peer: v1 } }\n  v1: { kind: veth, veth: { peer: v0 } }\n",
        Path::new("v.yaml"),
    )
    .expect("both ends");
    assert_eq!(both.state.links.len(), 2);
    let one = load_str(
        "links:\n  v0: { kind: veth, veth: { peer: v1 } }\n",
        Path::new("v.yaml"),
    )
    .expect("one end");
    assert_eq!(one.state.links.len(), 1);
    assert_eq!(
        one.state.links["v0"].kind,
        LinkKind::Veth(VethOpts { peer: "v1".into() })
    );
}

#[test]
fn onlink_and_dev_routes_make_gateways_reachable() {
    load_str(
        "\
links:
  eth0: { kind: external, addresses: [192.168.1.20/24, \"fd00::20/64\"] }
routes:
  - { to: default, via: 192.168.2.1, dev: eth0, onlink: true }
  - { to: 10.8.0.0/16, dev: eth0 }
  - { to: 10.9.0.0/16, via: 10.8.0.1, dev: eth0 }
  - { to: \"fd00:9::/64\", via: \"fe80::1\", dev: eth0 }
  - { to: 10.7.0.0/16, via: 172.16.0.1, dev: wg0 }
",
        Path::new("g.yaml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn diagnostic_display() {
    let err = load_str(
        "links:\n  br0: { kind: bridge, mtu: 9 }\n",
        Path::new("dir/x.yaml"),
    )
    .expect_err("mtu");
    assert_eq!(
        err.to_string(),
        "dir/x.yaml:2:29: mtu 9 is out of range (68..=65535)"
    );
    let err = load_path(Path::new("/nonexistent-netconverge")).expect_err("missing");
    assert!(
        err.to_string()
            .starts_with("/nonexistent-netconverge: cannot read"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Property test: model → YAML → model is the identity on canonical states

/// Names that must survive quoting.
const TRICKY: [&str; 8] = ["yes", "null", "on", "0x1", "1e3", "y", "a@b", "eth0.100"];

#[derive(Clone, Debug)]
enum KindSpec {
    External,
    Bridge(Option<bool>, Option<u32>),
    Tap(Option<Ident>, Option<Ident>, Option<bool>, Option<bool>),
    /// Both ends declared, or only this one.
    Veth(bool),
    Vxlan(u32, Option<IpAddr>, Option<IpAddr>, Option<u8>, Option<u16>),
    Macvlan(MacvlanMode),
}

#[derive(Clone, Debug)]
struct LinkSpec {
    tricky: Option<Index>,
    kind: KindSpec,
    master: Option<Index>,
    mtu: Option<u32>,
    mac: Option<[u8; 6]>,
    up: Option<bool>,
}

fn ident() -> impl Strategy<Value = Ident> {
    prop_oneof![
        (0u32..u32::MAX).prop_map(Ident::Id),
        "[a-z_][a-z0-9_-]{0,8}".prop_map(Ident::Name),
    ]
}

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    (1u8..=223, any::<[u8; 3]>()).prop_map(|(a, [b, c, d])| Ipv4Addr::new(a, b, c, d))
}

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    (
        prop_oneof![Just(0x2001u16), Just(0xfd00), 0x2000u16..0x3fff],
        any::<[u16; 7]>(),
    )
        .prop_map(|(a, r)| Ipv6Addr::new(a, r[0], r[1], r[2], r[3], r[4], r[5], r[6]))
}

fn ip_of(v6_: bool) -> BoxedStrategy<IpAddr> {
    if v6_ {
        v6().prop_map(IpAddr::V6).boxed()
    } else {
        v4().prop_map(IpAddr::V4).boxed()
    }
}

fn kind_spec() -> impl Strategy<Value = KindSpec> {
    prop_oneof![
        Just(KindSpec::External),
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(0u32..100_000)
        )
            .prop_map(|(stp, fd)| {
                // With STP on, the forward delay must be 2..=30 s.
                let fd = match (stp, fd) {
                    (Some(true), Some(v)) => Some(200 + v % 2801),
                    _ => fd,
                };
                KindSpec::Bridge(stp, fd)
            }),
        (
            proptest::option::of(ident()),
            proptest::option::of(ident()),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(o, g, v, m)| KindSpec::Tap(o, g, v, m)),
        any::<bool>().prop_map(KindSpec::Veth),
        (
            0u32..(1 << 24),
            any::<bool>(),
            proptest::option::of(0u8..3),
            proptest::option::of(1u16..=65535)
        )
            .prop_flat_map(|(id, fam6, remote, port)| {
                (
                    Just(id),
                    proptest::option::of(ip_of(fam6)),
                    ip_of(fam6),
                    Just(remote),
                    Just(port),
                    Just(fam6),
                )
            })
            .prop_map(|(id, local, remote_uni, remote, port, fam6)| {
                // remote: none, unicast, or multicast (which needs a dev).
                let (remote, dev) = match remote {
                    None => (None, None),
                    Some(0) => (Some(remote_uni), None),
                    Some(1) => (Some(remote_uni), Some(1)),
                    Some(_) => {
                        let group = if fam6 {
                            IpAddr::V6("ff0e::1:2".parse().unwrap())
                        } else {
                            IpAddr::V4(Ipv4Addr::new(239, 1, 2, 3))
                        };
                        (Some(group), Some(0))
                    }
                };
                KindSpec::Vxlan(id, local, remote, dev, port)
            }),
        prop_oneof![
            Just(MacvlanMode::Private),
            Just(MacvlanMode::Vepa),
            Just(MacvlanMode::Bridge),
            Just(MacvlanMode::Passthru),
            Just(MacvlanMode::Source)
        ]
        .prop_map(KindSpec::Macvlan),
    ]
}

fn link_spec() -> impl Strategy<Value = LinkSpec> {
    (
        proptest::option::of(any::<Index>()),
        kind_spec(),
        proptest::option::of(any::<Index>()),
        proptest::option::of(prop_oneof![68u32..=65535, Just(65536), Just(16)]),
        proptest::option::of(any::<[u8; 6]>()),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(tricky, kind, master, mtu, mac, up)| LinkSpec {
            tricky,
            kind,
            master,
            mtu,
            mac,
            up,
        })
}

/// Tables that routes and rules pick from; 101/102/5000/u32::MAX may get names.
const TABLE_CHOICES: [u32; 7] = [TABLE_MAIN, TABLE_DEFAULT, 101, 102, 5000, 77, u32::MAX];
const NAMEABLE: [u32; 4] = [101, 102, 5000, u32::MAX];

#[derive(Clone, Debug)]
struct HopSpec {
    via: bool,
    dev: Option<u8>,
    weight: u32,
    onlink: bool,
    link_local: bool,
}

fn route() -> impl Strategy<Value = Route> {
    (any::<bool>(), 0u8..8)
        .prop_flat_map(|(fam6, kind)| {
            let kind = match kind {
                0 => RouteType::Blackhole,
                1 => RouteType::Unreachable,
                2 => RouteType::Prohibit,
                _ => RouteType::Unicast,
            };
            let hops = proptest::collection::vec(
                (
                    any::<bool>(),
                    proptest::option::of(0u8..4),
                    1u32..=256,
                    any::<bool>(),
                    any::<bool>(),
                )
                    .prop_map(|(via, dev, weight, onlink, link_local)| HopSpec {
                        via,
                        dev,
                        weight,
                        onlink,
                        link_local,
                    }),
                1..4,
            );
            (
                Just(fam6),
                Just(kind),
                ip_of(fam6),
                if fam6 { 0u8..=128 } else { 0u8..=32 },
                hops,
                proptest::collection::vec(ip_of(fam6), 3),
                proptest::sample::select(TABLE_CHOICES.to_vec()),
                proptest::option::of(any::<u32>()),
                proptest::option::of(ip_of(fam6)),
                0u8..4,
                proptest::option::of(if fam6 { 1280u32..=65535 } else { 68u32..=65535 }),
                0u8..64,
            )
        })
        .prop_map(
            |(fam6, kind, to_addr, len, hops, vias, table, metric, src, scope, mtu, tos)| {
                let fam = if fam6 { Family::Inet6 } else { Family::Inet };
                let to = IpNet::new(to_addr, len).expect("valid length").trunc();
                let mut nexthops: Vec<NextHop> = Vec::new();
                if kind == RouteType::Unicast {
                    for (i, h) in hops.iter().enumerate() {
                        let dev = h.dev.map(|d| format!("d{d}"));
                        let via = if h.via || dev.is_none() {
                            Some(if fam6 && h.link_local && dev.is_some() {
                                IpAddr::V6("fe80::1".parse::<Ipv6Addr>().unwrap())
                            } else {
                                vias[i]
                            })
                        } else {
                            None
                        };
                        nexthops.push(NextHop {
                            onlink: h.onlink && via.is_some(),
                            via,
                            dev: dev.map(Into::into),
                            weight: h.weight,
                        });
                    }
                    nexthops.sort();
                    if nexthops.len() == 1 {
                        nexthops[0].weight = 1;
                    }
                }
                let has_gw = nexthops.iter().any(|h| h.via.is_some());
                let scope = if fam6 {
                    Scope::Global
                } else if kind == RouteType::Unicast && has_gw {
                    [Scope::Global, Scope::Site][usize::from(scope % 2)]
                } else {
                    [Scope::Global, Scope::Site, Scope::Link, Scope::Host][usize::from(scope)]
                };
                let metric = match metric {
                    None => Route::default_metric(fam),
                    Some(0) if fam6 => 1024,
                    Some(m) => m,
                };
                Route {
                    table,
                    to,
                    tos: if fam6 { 0 } else { tos * 4 },
                    metric,
                    kind,
                    nexthops: nexthops.into(),
                    src,
                    scope,
                    mtu,
                    owned: false,
                }
            },
        )
}

fn rule() -> impl Strategy<Value = Rule> {
    (any::<bool>(), 1u32..100_000)
        .prop_flat_map(|(fam6, priority)| {
            (
                Just(fam6),
                Just(priority),
                proptest::option::of((ip_of(fam6), if fam6 { 0u8..=128 } else { 0u8..=32 })),
                proptest::option::of((ip_of(fam6), if fam6 { 0u8..=128 } else { 0u8..=32 })),
                proptest::option::of((any::<u32>(), 1u32..=u32::MAX)),
                proptest::option::of("[a-z][a-z0-9]{0,6}"),
                proptest::option::of("[a-z][a-z0-9]{0,6}"),
                any::<bool>(),
                0u8..5,
                proptest::sample::select(vec![
                    TABLE_MAIN,
                    TABLE_DEFAULT,
                    TABLE_LOCAL,
                    101,
                    102,
                    5000,
                    77,
                    u32::MAX,
                ]),
                proptest::option::of(0u8..=32),
            )
        })
        .prop_map(
            |(fam6, priority, from, to, mark, iif, oif, not, action, table, suppress)| {
                let net = |x: Option<(IpAddr, u8)>| {
                    x.map(|(a, l)| IpNet::new(a, l).expect("valid length").trunc())
                };
                // Kernel default rules are never generated: priorities 32766/32767 are skipped.
                let priority = if (32766..=32767).contains(&priority) {
                    priority + 2
                } else {
                    priority
                };
                Rule {
                    key: RuleKey {
                        priority,
                        family: if fam6 { Family::Inet6 } else { Family::Inet },
                        from: net(from),
                        to: net(to),
                        fwmark: mark.map(|(m, mask)| (m & mask, mask)),
                        iif,
                        oif,
                        not,
                        // Only a lookup takes it (the loader refuses it on the others).
                        suppress_prefixlength: suppress.filter(|_| action >= 3),
                    },
                    action: match action {
                        0 => RuleAction::Blackhole,
                        1 => RuleAction::Unreachable,
                        2 => RuleAction::Prohibit,
                        _ => RuleAction::Lookup(table),
                    },
                    owned: false,
                }
            },
        )
}

fn sysctl() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            "net(\\.[a-z0-9_]{1,8}){1,4}",
            "[a-z][a-z0-9]{0,5}".prop_map(|i| format!("net.ipv4.conf.{i}.rp_filter")),
            Just("net.ipv4.conf.eth0/100.rp_filter".to_string()),
        ],
        prop_oneof![
            "[ -~]{1,16}",
            "[0-9]{1,6}",
            Just("true".to_string()),
            Just("16".to_string())
        ],
    )
        .prop_map(|(n, v)| (n, reconcilers::model::normalize_sysctl_value(&v)))
        .prop_filter("a value", |(_, v)| !v.is_empty())
        // Numbers the kernel would print differently (`010`, `0x10`, `+1`) are refused.
        .prop_filter("as the kernel prints it", |(_, v)| {
            !v.split(' ').any(|f| {
                let b = f.trim_start_matches('-').as_bytes();
                matches!(b, [b'+', d, ..] if d.is_ascii_digit())
                    || matches!(b, [b'0', d, ..] if d.is_ascii_digit() || *d == b'x' || *d == b'X')
            })
        })
}

fn tables() -> impl Strategy<Value = BTreeMap<String, u32>> {
    proptest::collection::vec(
        (
            prop_oneof![
                "[a-z][a-z0-9_]{0,6}",
                Just("yes".to_string()),
                Just("on".to_string())
            ],
            proptest::sample::select(NAMEABLE.to_vec()),
        ),
        0..4,
    )
    .prop_map(|v| {
        let mut out = BTreeMap::new();
        let mut used = Vec::new();
        for (name, id) in v {
            if ["main", "local", "default", "unspec"].contains(&name.as_str()) || used.contains(&id)
            {
                continue;
            }
            if let std::collections::btree_map::Entry::Vacant(e) = out.entry(name) {
                used.push(id);
                e.insert(id);
            }
        }
        out
    })
}

fn address(fam6: bool) -> impl Strategy<Value = IpNet> {
    (ip_of(fam6), if fam6 { 1u8..=128 } else { 1u8..=32 })
        .prop_map(|(a, l)| IpNet::new(a, l).expect("valid length"))
}

/// Assemble a valid canonical state from independently generated pieces.
fn assemble(
    specs: Vec<LinkSpec>,
    addrs: Vec<(Index, IpNet)>,
    routes: Vec<Route>,
    rules: Vec<Rule>,
    sysctls: Vec<(String, String)>,
) -> State {
    let mut s = State::default();
    let mut names: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let tricky = spec
            .tricky
            .map(|t| TRICKY[t.index(TRICKY.len())].to_string());
        let name = match tricky {
            Some(t) if !names.contains(&t) => t,
            _ => format!("l{i}"),
        };
        names.push(name);
    }
    let bridges: Vec<String> = specs
        .iter()
        .zip(&names)
        .filter(|(sp, _)| matches!(sp.kind, KindSpec::Bridge(..)))
        .map(|(_, n)| n.clone())
        .collect();
    for (i, (spec, name)) in specs.iter().zip(&names).enumerate() {
        let kind = match &spec.kind {
            KindSpec::External => LinkKind::External,
            KindSpec::Bridge(stp, fd) => LinkKind::Bridge(BridgeOpts {
                stp: *stp,
                forward_delay: *fd,
            }),
            KindSpec::Tap(o, g, v, m) => LinkKind::Tap(TapOpts {
                owner: o.clone(),
                group: g.clone(),
                vnet_hdr: *v,
                multi_queue: *m,
                open_queues: 0,
            }),
            KindSpec::Veth(both) => {
                let peer = format!("p{i}");
                if *both {
                    s.add_link(Link::new(
                        &peer,
                        LinkKind::Veth(VethOpts { peer: name.clone() }),
                    ));
                    LinkKind::Veth(VethOpts { peer })
                } else {
                    LinkKind::Veth(VethOpts {
                        peer: format!("q{i}"),
                    })
                }
            }
            KindSpec::Vxlan(id, local, remote, dev, port) => LinkKind::Vxlan(VxlanOpts {
                id: *id,
                local: *local,
                remote: *remote,
                dev: dev.map(|d| format!("u{d}")),
                port: *port,
            }),
            KindSpec::Macvlan(mode) => LinkKind::Macvlan(MacvlanOpts {
                link: format!("m{i}"),
                mode: *mode,
            }),
        };
        let is_bridge = matches!(kind, LinkKind::Bridge(_));
        let mut l = Link::new(name, kind);
        if !is_bridge && !bridges.is_empty() {
            l.master = spec.master.map(|m| bridges[m.index(bridges.len())].clone());
        }
        l.mtu = spec
            .mtu
            .filter(|m| (68..=65535).contains(m) || l.kind == LinkKind::External);
        l.mac = spec.mac.map(|mut m| {
            m[0] &= 0xfe;
            if m == [0; 6] {
                m[5] = 1;
            }
            MacAddr(m)
        });
        l.up = spec.up;
        s.add_link(l);
    }
    let link_names: Vec<String> = s.links.keys().cloned().collect();
    if !link_names.is_empty() {
        // The kernel makes IPv6 link-local addresses itself: declaring one is refused.
        for (idx, net) in addrs.into_iter().filter(
            |(_, n)| !matches!(n.addr(), IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80),
        ) {
            s.add_address(Address {
                link: link_names[idx.index(link_names.len())].clone(),
                address: net,
                owned: false,
                primary: false,
            });
        }
    }
    // IPv6 needs an MTU of at least 1280 on a link with an IPv6 address.
    let v6_links: Vec<String> = s
        .addresses
        .values()
        .filter(|a| a.address.addr().is_ipv6())
        .map(|a| a.link.clone())
        .collect();
    for n in v6_links {
        if let Some(l) = s.links.get_mut(&n) {
            l.mtu = l.mtu.filter(|m| *m >= 1280);
        }
    }
    for r in routes {
        // A route over a link declared down is refused (the kernel refuses it).
        for dev in r.nexthops.iter().filter_map(|h| h.dev.as_deref()) {
            if let Some(l) = s.links.get_mut(dev) {
                if r.kind == RouteType::Unicast && l.up == Some(false) {
                    l.up = None;
                }
            }
        }
        s.add_route(r);
    }
    // One rule per (priority, family): same priority with different selectors is refused.
    let mut taken = Vec::new();
    for r in rules {
        let k = (r.key.priority, r.key.family);
        if !taken.contains(&k) {
            taken.push(k);
            s.add_rule(r);
        }
    }
    for (n, v) in sysctls {
        s.sysctls.insert(n, v);
    }
    s
}

fn state() -> impl Strategy<Value = State> {
    (
        proptest::collection::vec(link_spec(), 0..7),
        proptest::collection::vec((any::<Index>(), any::<bool>().prop_flat_map(address)), 0..6),
        proptest::collection::vec(route(), 0..7),
        proptest::collection::vec(rule(), 0..7),
        proptest::collection::vec(sysctl(), 0..4),
    )
        .prop_map(|(l, a, r, ru, sy)| assemble(l, a, r, ru, sy))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn model_yaml_model_is_identity(s in state(), t in tables()) {
        let text = render_state(&s, &t);
        let loaded = match load_str(&text, Path::new("prop.yaml")) {
            Ok(d) => d,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n--- rendered:\n{text}"))),
        };
        prop_assert_eq!(&loaded.state, &s, "rendered:\n{}", text);
        prop_assert_eq!(&loaded.tables, &t);
        // Rendering is deterministic and a fixpoint.
        prop_assert_eq!(render_state(&loaded.state, &loaded.tables), text);
    }

    /// Every object's own YAML also loads back to that object (the plan shows these).
    #[test]
    fn objects_round_trip(s in state()) {
        let none = BTreeMap::new();
        for l in s.links.values() {
            let mut l = l.clone();
            // A lone link: its master and veth peer are elsewhere in the full state.
            l.master = None;
            if let LinkKind::Veth(_) = l.kind {
                continue;
            }
            let text = render_object(&Object::Link(l.clone()), &none);
            let d = load_str(&text, Path::new("o.yaml")).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(d.state.links.get(&l.name), Some(&l));
        }
        for r in s.routes.values() {
            let text = render_object(&Object::Route(r.clone()), &none);
            let d = load_str(&text, Path::new("o.yaml")).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(d.state.routes.values().next(), Some(r));
        }
        for r in s.rules.values() {
            let text = render_object(&Object::Rule(r.clone()), &none);
            let d = load_str(&text, Path::new("o.yaml")).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(d.state.rules.values().next(), Some(r));
        }
        for (name, value) in &s.sysctls {
            let text = render_object(&Object::Sysctl { name: name.clone(), value: value.clone() }, &none);
            let d = load_str(&text, Path::new("o.yaml")).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(d.state.sysctls.get(name), Some(value));
        }
    }
}

#[test]
fn snapshot_as_observed_state_is_all_owned() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("desired/ursa.yaml");
    let d = load_path(&path).expect("ursa");
    assert!(d.state.links.values().all(|l| !l.owned));
    let o = d.observed_state();
    assert!(o.links.values().all(|l| l.owned));
    assert!(o.addresses.values().all(|a| a.owned));
    assert!(o.routes.values().all(|r| r.owned) && o.rules.values().all(|r| r.owned));
    assert_eq!(o.links.len(), d.state.links.len());
}
