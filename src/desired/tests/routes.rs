//! `routes:` and their gateways: the routes the kernel is asked for, in the canonical form the
//! kernel reports them in (default metric and scope, sorted nexthops, weight 1 alone).

use std::net::IpAddr;

use reconcilers::model::{NextHop, Route, RouteType, Scope, TABLE_MAIN};

use super::{load, refused, refused_at, refused_once};

/// The routes of a document in key order.
fn routes(yaml: &str) -> Vec<Route> {
    load(yaml).state.routes.into_values().collect()
}

fn hop(via: Option<&str>, dev: Option<&str>, weight: u32, onlink: bool) -> NextHop {
    NextHop {
        via: via.map(|v| v.parse::<IpAddr>().expect("gateway")),
        dev: dev.map(Into::into),
        weight,
        onlink,
    }
}

/// A unicast route in main with the kernel's defaults for IPv4.
fn v4(to: &str, nexthops: Vec<NextHop>, scope: Scope) -> Route {
    Route {
        table: TABLE_MAIN,
        to: to.parse().expect("prefix"),
        tos: 0,
        metric: 0,
        kind: RouteType::Unicast,
        nexthops: nexthops.into(),
        src: None,
        scope,
        mtu: None,
        owned: false,
    }
}

#[test]
fn ipv4_routes_in_canonical_form() {
    let got = routes(
        "\
links:
  eth0: { kind: external, addresses: [192.168.1.20/24] }
routes:
  - { to: default, via: 192.168.1.1 }
  - { to: 10.1.2.3, dev: eth0, src: 192.168.1.20, mtu: 68 }
  - { to: 10.2.0.0/16, via: 192.168.1.1, dev: eth0, metric: 100, tos: 16 }
  - to: 10.3.0.0/16
    nexthops: [{ via: 192.168.1.9, weight: 2 }, { via: 192.168.1.3, dev: eth0, weight: 3 }]
  - to: 10.4.0.0/16
    nexthops: [{ via: 192.168.1.9, weight: 7 }]
  - { to: 10.5.0.0/16, via: 192.168.2.1, dev: eth0, onlink: true }
  - { to: 10.6.0.0/16, type: blackhole }
",
    );
    let mut host = v4(
        "10.1.2.3/32",
        vec![hop(None, Some("eth0"), 1, false)],
        Scope::Link,
    );
    host.src = Some("192.168.1.20".parse().expect("src"));
    host.mtu = Some(68);
    let mut metric = v4(
        "10.2.0.0/16",
        vec![hop(Some("192.168.1.1"), Some("eth0"), 1, false)],
        Scope::Global,
    );
    metric.metric = 100;
    metric.tos = 16;
    let mut blackhole = v4("10.6.0.0/16", vec![], Scope::Global);
    blackhole.kind = RouteType::Blackhole;
    let mut want = vec![
        v4(
            "0.0.0.0/0",
            vec![hop(Some("192.168.1.1"), None, 1, false)],
            Scope::Global,
        ),
        host,
        metric,
        v4(
            "10.3.0.0/16",
            vec![
                hop(Some("192.168.1.3"), Some("eth0"), 3, false),
                hop(Some("192.168.1.9"), None, 2, false),
            ],
            Scope::Global,
        ),
        v4(
            "10.4.0.0/16",
            vec![hop(Some("192.168.1.9"), None, 1, false)],
            Scope::Global,
        ),
        v4(
            "10.5.0.0/16",
            vec![hop(Some("192.168.2.1"), Some("eth0"), 1, true)],
            Scope::Global,
        ),
        blackhole,
    ];
    let mut got = got;
    got.sort_by_key(|r| r.to);
    want.sort_by_key(|r| r.to);
    assert_eq!(got, want);
}

#[test]
fn ipv6_routes_take_the_kernels_metric_and_global_scope() {
    let got = routes(
        "\
routes:
  - { to: default, via: \"fd00::1\" }
  - { to: \"fd00:1::/64\", via: \"fd00::1\", metric: 0 }
  - { to: \"fd00:2::/64\", via: \"fd00::1\", metric: 5, mtu: 1280 }
  - { to: \"fd00:3::/64\", dev: eth0 }
",
    );
    let v6 = |to: &str, via: Option<&str>, dev: Option<&str>, metric: u32| Route {
        table: TABLE_MAIN,
        to: to.parse().expect("prefix"),
        tos: 0,
        metric,
        kind: RouteType::Unicast,
        nexthops: vec![hop(via, dev, 1, false)].into(),
        src: None,
        scope: Scope::Global,
        mtu: None,
        owned: false,
    };
    let mut with_mtu = v6("fd00:2::/64", Some("fd00::1"), None, 5);
    with_mtu.mtu = Some(1280);
    let mut want = vec![
        v6("::/0", Some("fd00::1"), None, 1024),
        v6("fd00:1::/64", Some("fd00::1"), None, 1024),
        with_mtu,
        v6("fd00:3::/64", None, Some("eth0"), 1024),
    ];
    let mut got = got;
    got.sort_by_key(|r| r.to);
    want.sort_by_key(|r| r.to);
    assert_eq!(got, want);
    // A default with an IPv6 source is IPv6 too.
    let d = routes("routes:\n  - { to: default, dev: eth0, src: \"fd00::5\" }\n");
    assert_eq!(d[0].to, "::/0".parse().expect("net"));
    // And `to: 0.0.0.0/0` is the IPv4 default, written as a prefix.
    let d = routes("routes:\n  - { to: 0.0.0.0/0, via: 192.0.2.1 }\n");
    assert_eq!(d[0].to, "0.0.0.0/0".parse().expect("net"));
}

#[test]
fn route_values_out_of_range_are_refused() {
    refused_once(
        "routes:\n  - { to: \"fd00::/64\", dev: eth0, mtu: 1279 }\n",
        2,
        40,
        "route mtu",
    );
    refused_once(
        "routes:\n  - { to: 10.0.0.0/8, dev: eth0, mtu: 67 }\n",
        2,
        39,
        "route mtu",
    );
    refused_once(
        "routes:\n  - { to: 10.0.0.0/8, dev: eth0, type: multicast }\n",
        2,
        40,
        "route type",
    );
    refused_once("routes:\n  - { via: 192.0.2.1 }\n", 2, 5, "needs `to`");
}

#[test]
fn gateways_are_checked_against_the_links_subnets() {
    refused_once(
        "\
links:
  eth0: { kind: external, addresses: [192.168.1.20/24] }
routes:
  - { to: 10.0.0.0/8, via: 192.168.9.1, dev: eth0 }
",
        4,
        28,
        "192.168.9.1",
    );
    refused_once(
        "\
links:
  eth0: { kind: external, addresses: [192.168.1.20/24] }
routes:
  - to: 10.0.0.0/8
    nexthops: [{ via: 192.168.1.1, dev: eth0 }, { via: 192.168.9.1, dev: eth0 }]
",
        5,
        56,
        "192.168.9.1",
    );
}

#[test]
fn gateways_are_given_once_per_route() {
    refused_once(
        "routes:\n  - { to: 10.0.0.0/8, via: 192.0.2.1, nexthops: [{ via: 192.0.2.2 }] }\n",
        2,
        49,
        "cannot be combined",
    );
    refused_once(
        "routes:\n  - { to: 10.0.0.0/8, dev: eth0, nexthops: [{ via: 192.0.2.2 }] }\n",
        2,
        44,
        "cannot be combined",
    );
    refused_once(
        "routes:\n  - { to: 10.0.0.0/8, nexthops: [{ weight: 2 }] }\n",
        2,
        34,
        "a nexthop needs",
    );
    let only_dev = routes("routes:\n  - to: 10.0.0.0/8\n    nexthops: [{ dev: eth0 }]\n");
    assert_eq!(
        only_dev[0].nexthops[..],
        [hop(None, Some("eth0"), 1, false)]
    );
}

/// A route with an error is left out before the cross-route checks: its twin with the same
/// key is not reported as declared twice.
#[test]
fn a_route_with_an_error_is_left_out() {
    let diags = refused(
        "\
routes:
  - { to: 10.0.0.0/8, dev: eth0, mtu: 1 }
  - { to: 10.0.0.0/8, dev: eth0 }
",
    );
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(diags[0].2.contains("route mtu"), "{diags:?}");
}

/// A key declared three times: each later declaration names the first, in file order, and
/// routes that differ in metric or gateway device are not duplicates.
#[test]
fn every_repeat_names_the_first_declaration() {
    refused_at(
        "routes:\n  - { to: 10.2.0.0/16, dev: eth0 }\n  - { to: 10.1.0.0/16, dev: eth0 }\n  - { to: 10.1.0.0/16, via: 192.0.2.1 }\n  - { to: 10.2.0.0/16, dev: eth0, metric: 5 }\n  - { to: 10.1.0.0/16, dev: eth1 }\n",
        &[
            (4, 5, "route 10.1.0.0/16 via 192.0.2.1 is declared twice: t.yaml:3:5 and t.yaml:4:5"),
            (6, 5, "route 10.1.0.0/16 dev eth1 is declared twice: t.yaml:3:5 and t.yaml:6:5"),
        ],
    );
}

/// Each gateway of a multipath route is reported at its own `via`, after the nexthops are
/// sorted.
#[test]
fn multipath_gateways_keep_their_positions() {
    refused_at(
        "links:\n  br0: { kind: bridge, addresses: [10.0.0.1/24] }\nroutes:\n  - to: default\n    nexthops:\n      - { via: 10.0.9.1, dev: br0 }\n      - { via: 10.0.0.2, dev: br0 }\n      - { via: 10.0.0.1, dev: br0 }\n",
        &[
            (6, 16, "gateway 10.0.9.1 is not in any subnet of br0"),
            (8, 16, "gateway 10.0.0.1 is an address of this host"),
        ],
    );
}
