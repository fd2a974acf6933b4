//! `show` of a namespace built with `ip` describes exactly that namespace (checked field by
//! field against `ip -j`), and round-trips: fed back as desired state it validates and checks
//! clean.

mod common;

use common::*;
use netconverge::desired::load_str;
use reconcilers::model::{Ident, LinkKind, RuleAction, TABLE_MAIN};
use serde_json::Value;

fn build_topology(ns: &Netns) {
    for cmd in [
        "link add br0 type bridge stp_state 0 forward_delay 0",
        "tuntap add mode tap tap-a user 65534 group 65534 vnet_hdr",
        "tuntap add mode tap tap-b user 0",
        "link set tap-a master br0 up",
        "link set tap-b master br0",
        "link set tap-b mtu 1400",
        "link add va type veth peer name vb",
        "link set va address 52:54:00:00:00:0a",
        "link set br0 up",
        "link set va up",
        "link set vb up",
        "address add 10.0.0.1/24 dev br0",
        "address add fd00:10::1/64 dev br0 nodad",
        "address add 192.168.1.20/24 dev va",
        "route add default via 192.168.1.1 dev va table 101",
        "route add default table 102 nexthop via 192.168.1.1 dev va weight 1 nexthop via 192.168.1.254 dev va weight 3",
        "route add 198.51.100.0/24 via 10.0.0.7 dev br0 table 101 metric 10",
        "route add default nexthop via 192.168.1.1 dev va weight 2 nexthop via 192.168.1.254 dev va weight 1",
        "route add blackhole 203.0.113.0/24",
        "-6 route add 2001:db8::/32 via fd00:10::7 dev br0",
        "rule add pref 10001 fwmark 0x1/0xff lookup 101",
        "rule add pref 10002 fwmark 0x2/0xff lookup 102",
        "rule add pref 20000 from 192.168.1.20 lookup 102",
        "-6 rule add pref 1000 from fd00:10::/64 lookup 101",
    ] {
        ns.ip(cmd);
    }
}

fn field<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| &v[*k])
}

#[test]
fn show_describes_an_ip_built_namespace_field_by_field() {
    if !root_or_skip("show_describes_an_ip_built_namespace_field_by_field") {
        return;
    }
    let ns = Netns::new();
    build_topology(&ns);
    let out = netconverge(&["--netns", &ns.name, "show"]);
    assert!(out.status.success(), "show failed: {}", stderr(&out));
    let yaml = stdout(&out);
    let desired = load_str(&yaml, std::path::Path::new("show.yaml"))
        .unwrap_or_else(|e| panic!("show output does not validate:\n{e}\n---\n{yaml}"));
    let s = &desired.state;

    // Links, against `ip -j -d link`.
    let links = ns.ip_json("-d link show");
    let mut seen = 0;
    for l in links.as_array().unwrap() {
        let name = l["ifname"].as_str().unwrap();
        if name == "lo" {
            assert!(!s.links.contains_key("lo"), "lo is shown only with --all");
            continue;
        }
        seen += 1;
        let link = s
            .links
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing:\n{yaml}"));
        assert_eq!(link.mtu, l["mtu"].as_u64().map(|m| m as u32), "{name} mtu");
        assert_eq!(
            link.mac.map(|m| m.to_string()),
            l["address"].as_str().map(String::from),
            "{name} mac"
        );
        let up = l["flags"].as_array().unwrap().iter().any(|f| f == "UP");
        assert_eq!(link.up, Some(up), "{name} up");
        assert_eq!(
            link.master.as_deref(),
            l["master"].as_str(),
            "{name} master"
        );
        let info = field(l, &["linkinfo", "info_data"]);
        match (&link.kind, field(l, &["linkinfo", "info_kind"]).as_str()) {
            (LinkKind::Bridge(b), Some("bridge")) => {
                assert_eq!(b.stp, Some(info["stp_state"].as_u64() != Some(0)));
                assert_eq!(
                    b.forward_delay.map(u64::from),
                    info["forward_delay"].as_u64()
                );
            }
            (LinkKind::Tap(t), Some("tun")) => {
                assert_eq!(info["type"], "tap");
                assert_eq!(t.vnet_hdr, info["vnet_hdr"].as_bool(), "{name} vnet_hdr");
                assert_eq!(t.multi_queue, info["multi_queue"].as_bool());
                let uid = |who: &str| match who {
                    "nobody" => Ident::Id(65534),
                    "root" => Ident::Id(0),
                    other => Ident::Name(other.into()),
                };
                let shown = |i: &Option<Ident>| {
                    i.as_ref().map(|i| match i {
                        Ident::Name(n) if n == "nobody" || n == "nogroup" => Ident::Id(65534),
                        Ident::Name(n) if n == "root" => Ident::Id(0),
                        other => other.clone(),
                    })
                };
                assert_eq!(
                    shown(&t.owner),
                    info["user"].as_str().map(uid),
                    "{name} owner"
                );
                let gid = info["group"].as_str().map(|g| match g {
                    "nogroup" => Ident::Id(65534),
                    other => Ident::Name(other.into()),
                });
                assert_eq!(shown(&t.group), gid, "{name} group");
            }
            (LinkKind::Veth(v), Some("veth")) => {
                assert_eq!(v.peer, if name == "va" { "vb" } else { "va" });
            }
            (kind, ip_kind) => panic!("{name}: shown as {kind:?}, ip says {ip_kind:?}"),
        }
    }
    assert_eq!(seen, s.links.len(), "show lists exactly the links ip lists");

    // Addresses, against `ip -j addr` (without kernel-made link-local ones).
    let mut ip_addrs = Vec::new();
    for l in ns.ip_json("addr show").as_array().unwrap() {
        let name = l["ifname"].as_str().unwrap();
        for a in l["addr_info"].as_array().unwrap() {
            let local = a["local"].as_str().unwrap();
            if name == "lo" || local.starts_with("fe80") {
                continue;
            }
            ip_addrs.push((name.to_string(), format!("{local}/{}", a["prefixlen"])));
        }
    }
    ip_addrs.sort();
    let mut shown: Vec<(String, String)> = s
        .addresses
        .keys()
        .map(|(l, a)| (l.clone(), a.to_string()))
        .collect();
    shown.sort();
    assert_eq!(shown, ip_addrs);

    // Routes, against `ip -j route show table all` (non-kernel, non-local).
    let mut ip_routes = 0;
    for fam in ["-4", "-6"] {
        for r in ns
            .ip_json(&format!("{fam} route show table all"))
            .as_array()
            .unwrap()
        {
            let proto = r["protocol"].as_str().unwrap_or("");
            let table = r["table"].as_str().unwrap_or("main");
            if proto == "kernel" || table == "local" || r["type"] == "multicast" {
                continue;
            }
            ip_routes += 1;
            let table_id: u32 = match table {
                "main" => TABLE_MAIN,
                t => t.parse().unwrap(),
            };
            let dst = r["dst"].as_str().unwrap();
            let route = s
                .routes
                .values()
                .find(|x| {
                    x.table == table_id
                        && (x.to.to_string() == dst
                            || (dst == "default"
                                && x.to.prefix_len() == 0
                                && (fam == "-4") == x.to.addr().is_ipv4())
                            || x.to.to_string() == format!("{dst}/32"))
                })
                .unwrap_or_else(|| panic!("route {dst} table {table} missing:\n{yaml}"));
            if let Some(hops) = r["nexthops"].as_array() {
                let mut ip_hops: Vec<(String, u32)> = hops
                    .iter()
                    .map(|h| {
                        (
                            h["gateway"].as_str().unwrap().to_string(),
                            h["weight"].as_u64().unwrap_or(1) as u32,
                        )
                    })
                    .collect();
                ip_hops.sort();
                let mut ours: Vec<(String, u32)> = route
                    .nexthops
                    .iter()
                    .map(|n| (n.via.unwrap().to_string(), n.weight))
                    .collect();
                ours.sort();
                assert_eq!(ours, ip_hops, "weights of {dst} table {table}");
            } else if let Some(gw) = r["gateway"].as_str() {
                assert_eq!(route.nexthops[0].via.unwrap().to_string(), gw);
                assert_eq!(route.nexthops[0].dev.as_deref(), r["dev"].as_str());
            }
            if let Some(m) = r["metric"].as_u64() {
                assert_eq!(u64::from(route.metric), m, "metric of {dst}");
            }
        }
    }
    assert_eq!(
        ip_routes,
        s.routes.len(),
        "show lists exactly the routes ip lists:\n{yaml}"
    );

    // Rules, against `ip -j rule` (without the kernel's defaults).
    let mut ip_rules = 0;
    for fam in ["-4", "-6"] {
        for r in ns.ip_json(&format!("{fam} rule show")).as_array().unwrap() {
            let prio = r["priority"].as_u64().unwrap() as u32;
            if [0, 32766, 32767].contains(&prio) {
                continue;
            }
            ip_rules += 1;
            let rule = s
                .rules
                .values()
                .find(|x| {
                    x.key.priority == prio
                        && (fam == "-4") == (x.key.family == reconcilers::model::Family::Inet)
                })
                .unwrap_or_else(|| panic!("rule {prio} missing:\n{yaml}"));
            let table: u32 = r["table"].as_str().unwrap().parse().unwrap();
            assert_eq!(rule.action, RuleAction::Lookup(table));
            if let Some(mark) = r["fwmark"].as_str() {
                let want = u32::from_str_radix(mark.trim_start_matches("0x"), 16).unwrap();
                assert_eq!(rule.key.fwmark.map(|m| m.0), Some(want));
                let mask = r["fwmask"]
                    .as_str()
                    .map(|m| u32::from_str_radix(m.trim_start_matches("0x"), 16).unwrap());
                assert_eq!(rule.key.fwmark.map(|m| m.1), Some(mask.unwrap_or(u32::MAX)));
            }
            if let Some(src) = r["src"].as_str().filter(|s| *s != "all") {
                let from = rule.key.from.unwrap();
                assert_eq!(from.addr().to_string(), src);
                assert_eq!(
                    u64::from(from.prefix_len()),
                    r["srclen"]
                        .as_u64()
                        .unwrap_or(if fam == "-4" { 32 } else { 128 })
                );
            }
        }
    }
    assert_eq!(ip_rules, s.rules.len());

    // Round trip: the output, used as the desired state, validates and checks clean.
    let dir = TempDir::new("show");
    std::fs::write(dir.path().join("host.yaml"), &yaml).unwrap();
    let d = dir.path().to_str().unwrap();
    let v = netconverge(&["-d", d, "validate"]);
    assert!(v.status.success(), "validate: {}", stderr(&v));
    let c = netconverge(&["-d", d, "--netns", &ns.name, "check"]);
    assert_eq!(
        c.status.code(),
        Some(0),
        "check after show:\n{}\n{}",
        stdout(&c),
        stderr(&c)
    );
    assert!(stdout(&c).contains("No changes."));
}

#[test]
fn show_all_adds_loopback_and_forwarding_sysctls() {
    if !root_or_skip("show_all_adds_loopback_and_forwarding_sysctls") {
        return;
    }
    let ns = Netns::new();
    let out = netconverge(&["--netns", &ns.name, "-d", "/nonexistent", "show", "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let d = load_str(&stdout(&out), std::path::Path::new("all.yaml")).expect("valid");
    assert!(d.state.links.contains_key("lo"));
    let fwd = ns.exec("cat /proc/sys/net/ipv4/ip_forward");
    assert_eq!(
        d.state
            .sysctls
            .get("net.ipv4.ip_forward")
            .map(String::as_str),
        Some(String::from_utf8_lossy(&fwd.stdout).trim())
    );
}

#[test]
fn show_of_a_missing_namespace_is_a_clear_error() {
    if !root_or_skip("show_of_a_missing_namespace_is_a_clear_error") {
        return;
    }
    let out = netconverge(&["--netns", "nc-test-does-not-exist", "show"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nc-test-does-not-exist"),
        "{}",
        stderr(&out)
    );
}
