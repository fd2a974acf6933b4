//! `links:` and their kinds, with their addresses: the links and addresses the kernel is asked
//! for, and the tap owners they are made for.

use std::net::IpAddr;

use reconcilers::model::{
    Address, BridgeOpts, Ident, Link, LinkKind, MacAddr, MacvlanMode, MacvlanOpts, TapOpts,
    VethOpts, VxlanOpts,
};

use super::{load, refused, refused_once};
use crate::desired::HostCheck;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

#[test]
fn every_kind_converts_with_its_shared_attributes() {
    let d = load(
        "\
links:
  eth0: { kind: external, mtu: 9000 }
  br0:
    kind: bridge
    bridge: { stp: true, forward_delay: 1500 }
    mac: \"52:54:00:aa:bb:cc\"
    up: true
  v0: { kind: veth, veth: { peer: v1 }, master: br0, up: false }
  vx0: { kind: vxlan, vxlan: { id: 16777215, local: 192.0.2.1, remote: 192.0.2.2, dev: eth0, port: 4789 } }
  mv0: { kind: macvlan, macvlan: { link: eth0, mode: vepa } }
  mv1: { kind: macvlan, macvlan: { link: eth0 } }
",
    );
    let mut br0 = Link::new(
        "br0",
        LinkKind::Bridge(BridgeOpts {
            stp: Some(true),
            forward_delay: Some(1500),
        }),
    );
    br0.mac = Some(MacAddr([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]));
    br0.up = Some(true);
    let mut eth0 = Link::new("eth0", LinkKind::External);
    eth0.mtu = Some(9000);
    let mut v0 = Link::new("v0", LinkKind::Veth(VethOpts { peer: "v1".into() }));
    v0.master = Some("br0".into());
    v0.up = Some(false);
    let vx0 = Link::new(
        "vx0",
        LinkKind::Vxlan(VxlanOpts {
            id: 16_777_215,
            local: Some(ip("192.0.2.1")),
            remote: Some(ip("192.0.2.2")),
            dev: Some("eth0".into()),
            port: Some(4789),
        }),
    );
    let macvlan = |name: &str, mode| {
        Link::new(
            name,
            LinkKind::Macvlan(MacvlanOpts {
                link: "eth0".into(),
                mode,
            }),
        )
    };
    let want = [
        br0,
        eth0,
        macvlan("mv0", MacvlanMode::Vepa),
        macvlan("mv1", MacvlanMode::Bridge),
        v0,
        vx0,
    ];
    let got: Vec<&Link> = d.state.links.values().collect();
    assert_eq!(got, want.iter().collect::<Vec<_>>());
    // The external link is a host fact, at its name.
    let ext: Vec<(&str, u32, u32)> = d
        .host_checks
        .iter()
        .filter_map(|c| match c {
            HostCheck::ExternalLink { name, at } => Some((name.as_str(), at.line, at.column)),
            _ => None,
        })
        .collect();
    assert_eq!(ext, [("eth0", 2, 3)]);
}

#[test]
fn addresses_belong_to_their_link() {
    let d = load(
        "\
links:
  br0: { kind: bridge, addresses: [10.0.0.1/24, \"fd00::1/64\", 10.0.1.1/24] }
  lo: { kind: external, mtu: 65536, addresses: [127.0.0.2/8] }
",
    );
    let want: Vec<Address> = [
        ("br0", "10.0.0.1/24"),
        ("br0", "10.0.1.1/24"),
        ("br0", "fd00::1/64"),
        ("lo", "127.0.0.2/8"),
    ]
    .iter()
    .map(|(link, a)| Address {
        link: (*link).into(),
        address: a.parse().expect("net"),
        owned: false,
        primary: false,
    })
    .collect();
    let got: Vec<Address> = d.state.addresses.values().cloned().collect();
    assert_eq!(got, want);
    assert_eq!(d.state.links["lo"].mtu, Some(65536));
    refused_once(
        "links:\n  br0: { kind: bridge, addresses: [10.0.0.1/24, 10.0.0.1/24] }\n",
        2,
        49,
        "listed twice",
    );
}

#[test]
fn the_mtu_range_is_the_drivers_for_external_links_only() {
    load("links:\n  lo: { kind: external, mtu: 65536 }\n  can0: { kind: external, mtu: 16 }\n");
    load("links:\n  br0: { kind: bridge, mtu: 65535 }\n  br1: { kind: bridge, mtu: 68 }\n");
    refused_once(
        "links:\n  br0: { kind: bridge, mtu: 65536 }\n",
        2,
        29,
        "mtu",
    );
    refused_once("links:\n  br0: { kind: bridge, mtu: 67 }\n", 2, 29, "mtu");
    // IPv6 needs 1280.
    load("links:\n  br0: { kind: bridge, mtu: 1280, addresses: [\"fd00::1/64\"] }\n");
    refused_once(
        "links:\n  br0: { kind: bridge, mtu: 1279, addresses: [\"fd00::1/64\"] }\n",
        2,
        29,
        "below 1280",
    );
}

#[test]
fn a_link_with_an_error_is_left_out_and_its_addresses_too() {
    // Another kind's block is refused at that block, its own is not.
    refused_once(
        "links:\n  br0: { kind: bridge, bridge: { stp: false }, tap: { owner: 1 } }\n",
        2,
        53,
        "`tap:` options do not apply to br0",
    );
    refused_once("links:\n  br0: { mtu: 1500 }\n", 2, 3, "needs a `kind`");
}

#[test]
fn bridge_forward_delay_range_follows_stp() {
    let fd = |stp: bool, fd: u32| {
        let d = load(&format!(
            "links:\n  br0: {{ kind: bridge, bridge: {{ stp: {stp}, forward_delay: {fd} }} }}\n"
        ));
        d.state.links["br0"].kind.clone()
    };
    assert_eq!(
        fd(false, 100),
        LinkKind::Bridge(BridgeOpts {
            stp: Some(false),
            forward_delay: Some(100)
        })
    );
    assert_eq!(
        fd(true, 200),
        LinkKind::Bridge(BridgeOpts {
            stp: Some(true),
            forward_delay: Some(200)
        })
    );
    refused_once(
        "links:\n  br0: { kind: bridge, bridge: { stp: true, forward_delay: 100 } }\n",
        2,
        60,
        "with STP on",
    );
}

#[test]
fn tap_owners_are_numbers_or_names_for_the_host() {
    let d = load(
        "\
links:
  t0: { kind: tap, tap: { owner: 1000, group: \"100\", vnet_hdr: false, multi_queue: true } }
  t1: { kind: tap, tap: { owner: tom, group: kvm } }
  t2: { kind: tap, tap: { owner: 4294967294 } }
  t3: { kind: tap }
",
    );
    let tap = |name: &str| match &d.state.links[name].kind {
        LinkKind::Tap(t) => t.clone(),
        k => panic!("{name} is {k:?}"),
    };
    assert_eq!(
        tap("t0"),
        TapOpts {
            owner: Some(Ident::Id(1000)),
            group: Some(Ident::Id(100)),
            vnet_hdr: Some(false),
            multi_queue: Some(true),
            open_queues: 0,
        }
    );
    assert_eq!(
        (tap("t1").owner, tap("t1").group),
        (
            Some(Ident::Name("tom".into())),
            Some(Ident::Name("kvm".into()))
        )
    );
    assert_eq!(tap("t2").owner, Some(Ident::Id(4_294_967_294)));
    assert_eq!(tap("t3"), TapOpts::default());
    // Names are host facts, at the name; numbers are not.
    let facts: Vec<String> = d
        .host_checks
        .iter()
        .filter_map(|c| match c {
            HostCheck::User { name, at } => Some(format!("user {name} {}:{}", at.line, at.column)),
            HostCheck::Group { name, at } => {
                Some(format!("group {name} {}:{}", at.line, at.column))
            }
            _ => None,
        })
        .collect();
    assert_eq!(facts, ["user tom 3:34", "group kvm 3:46"]);
    refused_once(
        "links:\n  t0: { kind: tap, tap: { owner: 4294967295 } }\n",
        2,
        34,
        "out of range",
    );
    refused_once(
        "links:\n  t0: { kind: tap, tap: { owner: true } }\n",
        2,
        34,
        "must be a name or a number",
    );
}

#[test]
fn a_veth_macvlan_or_vxlan_cannot_name_itself() {
    refused_once(
        "links:\n  v0: { kind: veth, veth: { peer: v0 } }\n",
        2,
        35,
        "its own peer",
    );
    let own_parent = refused("links:\n  m0: { kind: macvlan, macvlan: { link: m0 } }\n");
    assert!(
        own_parent
            .iter()
            .any(|(l, c, m)| (*l, *c) == (2, 41) && m.contains("own parent")),
        "{own_parent:?}"
    );
    refused_once(
        "links:\n  x0: { kind: vxlan, vxlan: { id: 1, dev: x0 } }\n",
        2,
        43,
        "its own `dev`",
    );
}

#[test]
fn vxlan_values() {
    let d = load(
        "\
links:
  x0: { kind: vxlan, vxlan: { id: 1, remote: 239.1.1.1, dev: eth0 } }
  x1: { kind: vxlan, vxlan: { id: 0, local: \"fd00::1\", remote: \"fd00::2\" } }
",
    );
    assert_eq!(
        d.state.links["x0"].kind,
        LinkKind::Vxlan(VxlanOpts {
            id: 1,
            local: None,
            remote: Some(ip("239.1.1.1")),
            dev: Some("eth0".into()),
            port: None,
        })
    );
    assert_eq!(
        d.state.links["x1"].kind,
        LinkKind::Vxlan(VxlanOpts {
            id: 0,
            local: Some(ip("fd00::1")),
            remote: Some(ip("fd00::2")),
            dev: None,
            port: None,
        })
    );
    let vx = |opts: &str| format!("links:\n  x0: {{ kind: vxlan, vxlan: {{ {opts} }} }}\n");
    refused_once(&vx("id: 16777216"), 2, 35, "vxlan id");
    refused_once(&vx("id: 1, local: 239.1.1.1"), 2, 45, "unicast");
    refused_once(&vx("id: 1, local: 0.0.0.0"), 2, 45, "unicast");
    refused_once(
        &vx("id: 1, local: 192.0.2.1, remote: \"fd00::2\""),
        2,
        64,
        "different address families",
    );
    refused_once(&vx("id: 1, remote: 239.1.1.1"), 2, 46, "needs `dev`");
}
