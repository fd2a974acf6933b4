//! The sections that become services and generated objects: `dhcp:` (a dnsmasq per bridge)
//! and the providers (routes, rules and nftables tables). Their details have tests of their
//! own; these check that each section reaches the model at all.

use std::net::{IpAddr, Ipv4Addr};

use reconcilers::model::{RuleAction, TABLE_MAIN};

use super::{load, refused};

#[test]
fn a_dhcp_section_becomes_a_server_on_its_bridge() {
    let d = load(
        "\
links:
  br0: { kind: bridge, addresses: [10.0.0.1/24] }
  br1: { kind: bridge, addresses: [10.1.0.1/24] }
dhcp:
  br0: { ranges: [\"10.0.0.100-10.0.0.199\"] }
  br1: {}
",
    );
    let bridges: Vec<&str> = d.state.dhcp.keys().map(String::as_str).collect();
    assert_eq!(bridges, ["br0", "br1"]);
    let ranges: Vec<(Ipv4Addr, Ipv4Addr)> = d.state.dhcp["br0"]
        .settings
        .ranges
        .iter()
        .map(|r| (r.start, r.end))
        .collect();
    assert_eq!(
        ranges,
        [(Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 199))]
    );
    assert!(d.state.dhcp["br1"].settings.ranges.is_empty());
    let broken = refused(
        "links:\n  br0: { kind: bridge, addresses: [10.0.0.1/24] }\ndhcp:\n  br0: { ranges: [\"10.9.0.1-10.9.0.9\"] }\n",
    );
    assert_eq!(broken.len(), 1, "{broken:?}");
}

#[test]
fn providers_expand_into_routes_and_rules() {
    let d = load(
        "\
links:
  eth0: { kind: external, addresses: [192.168.1.20/24] }
providers:
  wrt: { number: 1, mark: \"0x1\", interface: eth0, gateway: 192.168.1.1 }
",
    );
    let gateway: IpAddr = "192.168.1.1".parse().expect("gateway");
    // The provider's table has its default route through the provider's gateway.
    let in_table: Vec<(u32, String, Option<IpAddr>)> = d
        .state
        .routes
        .values()
        .filter(|r| r.table != TABLE_MAIN)
        .map(|r| (r.table, r.to.to_string(), r.nexthops[0].via))
        .collect();
    assert!(
        in_table.contains(&(1, "0.0.0.0/0".to_string(), Some(gateway))),
        "{in_table:?}"
    );
    // Its mark selects its table.
    assert!(
        d.state
            .rules
            .values()
            .any(|r| r.key.fwmark.map(|(m, _)| m) == Some(1) && r.action == RuleAction::Lookup(1)),
        "{:?}",
        d.state.rules
    );
    assert_eq!(d.providers.providers.len(), 1);
}

/// A broken provider stops the expansion: its own error is what to fix, not what the others
/// would have generated (here the balanced default that collides with the declared one).
#[test]
fn a_broken_provider_stops_the_expansion() {
    let diags = refused(
        "\
links:
  eth0: { kind: external, addresses: [192.168.1.20/24] }
routes:
  - { to: default, via: 192.168.1.1, dev: eth0 }
providers:
  wrt: { number: 1, interface: eth0, gateway: 192.168.1.1, balance: 1 }
  fw: { number: 253, interface: eth0, gateway: 192.168.1.254 }
",
    );
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!((diags[0].0, diags[0].1), (7, 17), "{diags:?}");
    assert!(diags[0].2.contains("out of range"), "{diags:?}");
}
