//! Routes over rtnetlink: every table, both families.
//!
//! Two kernel conventions are converted at this boundary: the real table id of tables above
//! 255 is only in `RTA_TABLE` (the header says 252, RT_TABLE_COMPAT), and a multipath hop's
//! `rtnh_hops` is the weight minus one (`ip route` prints `weight hops+1`).

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{
    DecodeError, NlasIterator, Parseable, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteMetric, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteScope, RouteType as NlType, RouteVia,
};
use netlink_packet_route::AddressFamily;

use crate::error::KernelError;
use crate::links::netlink::{index_of, IndexByName, NameByIndex};
use crate::model::{Family, NextHop, NextHops, Route, RouteType, Scope, TABLE_LOCAL};

/// Netlink flags of `Op::AddRoute`: fail if a route with the same key exists.
pub const ADD_FLAGS: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
/// Netlink flags of `Op::ReplaceRoute`: replace the route with the same key (or create it).
pub const REPLACE_FLAGS: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;

fn ip_of(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

fn via_of(attrs: &[RouteAttribute]) -> Option<IpAddr> {
    attrs.iter().find_map(|a| match a {
        RouteAttribute::Gateway(g) => ip_of(g),
        RouteAttribute::Via(RouteVia::Inet(a)) => Some(IpAddr::V4(*a)),
        RouteAttribute::Via(RouteVia::Inet6(a)) => Some(IpAddr::V6(*a)),
        _ => None,
    })
}

fn scope_from(scope: RouteScope) -> Option<Scope> {
    match scope {
        RouteScope::Universe => Some(Scope::Global),
        RouteScope::Site => Some(Scope::Site),
        RouteScope::Link => Some(Scope::Link),
        RouteScope::Host => Some(Scope::Host),
        _ => None,
    }
}

fn scope_to(scope: Scope) -> RouteScope {
    match scope {
        Scope::Global => RouteScope::Universe,
        Scope::Site => RouteScope::Site,
        Scope::Link => RouteScope::Link,
        Scope::Host => RouteScope::Host,
    }
}

fn kind_from(kind: NlType) -> Option<RouteType> {
    match kind {
        NlType::Unicast => Some(RouteType::Unicast),
        NlType::BlackHole => Some(RouteType::Blackhole),
        NlType::Unreachable => Some(RouteType::Unreachable),
        NlType::Prohibit => Some(RouteType::Prohibit),
        _ => None,
    }
}

fn kind_to(kind: RouteType) -> NlType {
    match kind {
        RouteType::Unicast => NlType::Unicast,
        RouteType::Blackhole => NlType::BlackHole,
        RouteType::Unreachable => NlType::Unreachable,
        RouteType::Prohibit => NlType::Prohibit,
    }
}

/// What [`route_of`] reads of a dumped route: its header and the few attributes the model
/// keeps, found either by the full parse ([`parse_route`]) or straight from the bytes
/// ([`decode_route`]).
struct Fields<'a> {
    header: RouteHeader,
    /// RTA_TABLE.
    table: Option<u32>,
    dst: Option<IpAddr>,
    metric: Option<u32>,
    src: Option<IpAddr>,
    mtu: Option<u32>,
    oif: Option<u32>,
    /// RTA_GATEWAY or RTA_VIA of a single-path route.
    via: Option<IpAddr>,
    multipath: Option<&'a [RouteNextHop]>,
}

impl<'a> Fields<'a> {
    fn of(msg: &'a RouteMessage) -> Fields<'a> {
        let mut f = Fields::new(msg.header.clone());
        f.table = msg.attributes.iter().find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        });
        f.via = via_of(&msg.attributes);
        for attr in &msg.attributes {
            match attr {
                RouteAttribute::Destination(a) => f.dst = ip_of(a),
                RouteAttribute::Priority(p) => f.metric = Some(*p),
                RouteAttribute::PrefSource(a) => f.src = ip_of(a),
                RouteAttribute::Oif(i) => f.oif = Some(*i),
                RouteAttribute::MultiPath(hops) => f.multipath = Some(hops),
                RouteAttribute::Metrics(ms) => {
                    f.mtu = ms.iter().find_map(|m| match m {
                        RouteMetric::Mtu(v) => Some(*v),
                        _ => None,
                    })
                }
                _ => {}
            }
        }
        f
    }

    fn new(header: RouteHeader) -> Fields<'a> {
        Fields {
            header,
            table: None,
            dst: None,
            metric: None,
            src: None,
            mtu: None,
            oif: None,
            via: None,
            multipath: None,
        }
    }
}

/// A unicast route's nexthops: the RTA_MULTIPATH list, sorted, or the one in the message's own
/// attributes. Allocated exactly: pushing one nexthop into an empty Vec reserved four (192
/// bytes a route, a fifth of a no-op reconcile's heap at 10⁵ routes).
fn nexthops_of(f: &Fields, names: &NameByIndex) -> NextHops {
    let dev_name = |i: u32| if i == 0 { None } else { names.get(&i).cloned() };
    let Some(hops) = f.multipath else {
        return NextHops::one(NextHop {
            via: f.via,
            dev: f.oif.and_then(dev_name),
            weight: 1,
            onlink: f.header.flags.contains(RouteFlags::Onlink),
        });
    };
    let mut nexthops: NextHops = hops
        .iter()
        .map(|hop| NextHop {
            via: via_of(&hop.attributes),
            dev: dev_name(hop.interface_index),
            weight: hop.hops as u32 + 1,
            onlink: hop.flags.contains(RouteNextHopFlags::Onlink),
        })
        .collect();
    nexthops.sort();
    nexthops
}

/// Turn one dumped route into the model; `None` for routes netconverge ignores: other
/// families, the local table, kernel-made (connected) routes, cached clones, types other than
/// unicast/blackhole/unreachable/prohibit, and IPv6 source-specific routes (which the model
/// cannot key).
pub fn parse_route(msg: &RouteMessage, names: &NameByIndex, our_protocol: u8) -> Option<Route> {
    route_of(&Fields::of(msg), names, our_protocol)
}

fn route_of(f: &Fields, names: &NameByIndex, our_protocol: u8) -> Option<Route> {
    let h = &f.header;
    let family = match h.address_family {
        AddressFamily::Inet => Family::Inet,
        AddressFamily::Inet6 => Family::Inet6,
        _ => return None,
    };
    if h.flags.contains(RouteFlags::Cloned) || h.protocol == RouteProtocol::Kernel {
        return None;
    }
    let table = f.table.unwrap_or(h.table as u32);
    if table == TABLE_LOCAL || h.source_prefix_length != 0 {
        return None;
    }
    let kind = kind_from(h.kind)?;
    let scope = scope_from(h.scope)?;
    let to = match f.dst {
        Some(a) => IpNet::new(a, h.destination_prefix_length).ok()?.trunc(),
        None => family.any(),
    };
    // Blackhole-like routes carry no path (IPv6 ones point at `lo` internally).
    let nexthops = if kind == RouteType::Unicast {
        nexthops_of(f, names)
    } else {
        NextHops::new()
    };
    Some(Route {
        table,
        to,
        tos: h.tos,
        metric: f.metric.unwrap_or(0),
        kind,
        nexthops,
        src: f.src,
        scope,
        mtu: f.mtu,
        owned: u8::from(h.protocol) == our_protocol,
    })
}

/// [`parse_route`] of one `RTM_NEWROUTE` payload of a dump, read straight from the bytes:
/// the general parse allocated and decoded every attribute of every route, most of a
/// 10,000-route observation. A route with a multipath list, metrics, RTA_VIA or an attribute
/// of an unexpected length takes the general parse, so both give the same answer.
pub fn decode_route(
    payload: &[u8],
    names: &NameByIndex,
    our_protocol: u8,
) -> Result<Option<Route>, DecodeError> {
    match simple_fields(payload)? {
        Some(f) => Ok(route_of(&f, names, our_protocol)),
        None => Ok(parse_route(
            &RouteMessage::parse(payload)?,
            names,
            our_protocol,
        )),
    }
}

/// Size of `struct rtmsg`, the header of a route message.
const ROUTE_HEADER_LEN: usize = 12;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_METRICS: u16 = 8;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const RTA_VIA: u16 = 18;

/// The fields of a route read from its bytes, or `None` when it needs the general parse.
/// First-wins where [`Fields::of`] uses `find_map` (table, gateway), last-wins elsewhere.
fn simple_fields(payload: &[u8]) -> Result<Option<Fields<'static>>, DecodeError> {
    let header = RouteHeader::parse(payload)?;
    let width = match header.address_family {
        AddressFamily::Inet => 4,
        AddressFamily::Inet6 => 16,
        _ => return Ok(None),
    };
    let mut f = Fields::new(header);
    for nla in NlasIterator::new(payload.get(ROUTE_HEADER_LEN..).unwrap_or_default()) {
        let nla = nla?;
        let v = nla.value();
        let read = match nla.kind() {
            RTA_TABLE => u32_of(v).map(|t| _ = f.table.get_or_insert(t)),
            RTA_PRIORITY => u32_of(v).map(|m| f.metric = Some(m)),
            RTA_OIF => u32_of(v).map(|i| f.oif = Some(i)),
            RTA_DST => address(v, width).map(|a| f.dst = Some(a)),
            RTA_PREFSRC => address(v, width).map(|a| f.src = Some(a)),
            RTA_GATEWAY => address(v, width).map(|a| _ = f.via.get_or_insert(a)),
            RTA_METRICS | RTA_MULTIPATH | RTA_VIA => None,
            _ => Some(()),
        };
        if read.is_none() {
            return Ok(None);
        }
    }
    Ok(Some(f))
}

fn u32_of(v: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(v.try_into().ok()?))
}

/// An address of the route's family (`width` bytes).
fn address(v: &[u8], width: usize) -> Option<IpAddr> {
    match (width, v.len()) {
        (4, 4) => Some(IpAddr::from(<[u8; 4]>::try_from(v).ok()?)),
        (16, 16) => Some(IpAddr::from(<[u8; 16]>::try_from(v).ok()?)),
        _ => None,
    }
}

fn family_of(route: &Route) -> AddressFamily {
    match route.family() {
        Family::Inet => AddressFamily::Inet,
        Family::Inet6 => AddressFamily::Inet6,
    }
}

/// The header and key attributes shared by add, replace and delete.
fn key_message(route: &Route) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family_of(route);
    msg.header.destination_prefix_length = route.to.prefix_len();
    msg.header.tos = route.tos;
    // As iproute2: the header holds ids up to 255, RTA_TABLE any id (and wins).
    msg.header.table = if route.table <= 255 {
        route.table as u8
    } else {
        RouteHeader::RT_TABLE_UNSPEC
    };
    msg.header.kind = kind_to(route.kind);
    msg.attributes.push(RouteAttribute::Table(route.table));
    if route.to.prefix_len() > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(route.to.trunc().addr().into()));
    }
    msg
}

/// The gateway attribute: RTA_GATEWAY in the route's family, RTA_VIA for an IPv6 gateway of
/// an IPv4 route.
fn gateway_attr(family: Family, via: IpAddr) -> RouteAttribute {
    match (family, via) {
        (Family::Inet, IpAddr::V6(v6)) => RouteAttribute::Via(RouteVia::Inet6(v6)),
        (_, ip) => RouteAttribute::Gateway(ip.into()),
    }
}

/// The `RTM_NEWROUTE` body for adding or replacing `route` with netconverge's protocol
/// (send with `ADD_FLAGS` or `REPLACE_FLAGS`); output devices are looked up in `index`.
pub fn route_message(
    route: &Route,
    index: &IndexByName,
    our_protocol: u8,
    operation: &str,
) -> Result<RouteMessage, KernelError> {
    let object = crate::model::object::ObjectRef::route(route).to_string();
    let family = route.family();
    let mut msg = key_message(route);
    msg.header.protocol = RouteProtocol::from(our_protocol);
    msg.header.scope = scope_to(route.scope);
    // The kernel's default metric is explicit on IPv6 and absent (0) on IPv4, as in dumps.
    if family == Family::Inet6 || route.metric != 0 {
        msg.attributes.push(RouteAttribute::Priority(route.metric));
    }
    if route.kind == RouteType::Unicast {
        match route.nexthops.as_slice() {
            [] => {}
            [nh] => {
                if let Some(via) = nh.via {
                    msg.attributes.push(gateway_attr(family, via));
                }
                if let Some(dev) = &nh.dev {
                    let i = index_of(index, dev, "link", &object, operation)?;
                    msg.attributes.push(RouteAttribute::Oif(i));
                }
                if nh.onlink {
                    msg.header.flags |= RouteFlags::Onlink;
                }
            }
            hops => {
                let mut out = Vec::with_capacity(hops.len());
                for nh in hops {
                    let mut hop = RouteNextHop::default();
                    if let Some(dev) = &nh.dev {
                        hop.interface_index = index_of(index, dev, "link", &object, operation)?;
                    }
                    hop.hops = (nh.weight.clamp(1, 256) - 1) as u8;
                    if nh.onlink {
                        hop.flags |= RouteNextHopFlags::Onlink;
                    }
                    if let Some(via) = nh.via {
                        hop.attributes.push(gateway_attr(family, via));
                    }
                    out.push(hop);
                }
                msg.attributes.push(RouteAttribute::MultiPath(out));
            }
        }
    }
    if let Some(src) = route.src {
        msg.attributes.push(RouteAttribute::PrefSource(src.into()));
    }
    if let Some(mtu) = route.mtu {
        msg.attributes
            .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(mtu)]));
    }
    Ok(msg)
}

/// The `RTM_DELROUTE` body for `route`: matched by table, destination, TOS, metric and type
/// (any scope, any path); restricted to netconverge's protocol when the route is its own, so
/// that a vanished route of ours never takes a foreign one with it.
pub fn delete_message(route: &Route, our_protocol: u8) -> RouteMessage {
    let mut msg = key_message(route);
    msg.header.scope = RouteScope::NoWhere;
    if route.owned {
        msg.header.protocol = RouteProtocol::from(our_protocol);
    }
    msg.attributes.push(RouteAttribute::Priority(route.metric));
    msg
}

/// A hint for a failed route write.
pub fn hint(route: &Route, errno: i32) -> Option<String> {
    match errno {
        libc::ENETUNREACH => {
            let devs: Vec<&str> = route
                .nexthops
                .iter()
                .filter_map(|n| n.dev.as_deref())
                .collect();
            Some(if devs.is_empty() {
                "no local address covers the gateway".to_string()
            } else {
                // The kernel says the same when the device is down.
                format!(
                    "no address on {} covers the gateway, or the link is down",
                    devs.join(", ")
                )
            })
        }
        libc::ENETDOWN => Some("the output device is down".into()),
        libc::EEXIST => Some("an object with the same key exists".into()),
        libc::EPERM => Some("needs CAP_NET_ADMIN (run as root)".into()),
        libc::ENODEV => Some("the output device does not exist".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;
    use proptest::prelude::*;

    fn roundtrip(msg: &RouteMessage) -> RouteMessage {
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        RouteMessage::parse(buf.as_slice()).unwrap()
    }

    fn maps() -> (NameByIndex, IndexByName) {
        (
            [(2, "eth0".into()), (3, "br0".into())].into(),
            [("eth0".to_string(), 2), ("br0".to_string(), 3)].into(),
        )
    }

    fn route(table: u32, to: &str, hops: Vec<NextHop>) -> Route {
        let to: IpNet = to.parse().unwrap();
        let family = Family::of_net(&to);
        Route {
            table,
            to,
            tos: 0,
            metric: Route::default_metric(family),
            kind: RouteType::Unicast,
            scope: Route::default_scope(family, RouteType::Unicast, &hops),
            nexthops: hops.into(),
            src: None,
            mtu: None,
            owned: true,
        }
    }

    fn hop(via: &str, dev: &str, weight: u32) -> NextHop {
        NextHop {
            via: Some(via.parse().unwrap()),
            dev: Some(dev.into()),
            weight,
            onlink: false,
        }
    }

    #[test]
    fn single_path_roundtrip_in_big_table() {
        let (names, index) = maps();
        let r = route(1000, "0.0.0.0/0", vec![hop("192.168.1.1", "eth0", 1)]);
        let msg = route_message(&r, &index, 157, "add").unwrap();
        assert_eq!(msg.header.table, 0);
        let mut back = roundtrip(&msg);
        // The kernel reports big tables as 252 in the header.
        back.header.table = 252;
        assert_eq!(parse_route(&back, &names, 157), Some(r));
    }

    #[test]
    fn multipath_weights_are_hops_plus_one() {
        let (names, index) = maps();
        let mut r = route(
            101,
            "10.1.0.0/16",
            vec![
                hop("192.168.1.1", "eth0", 1),
                hop("192.168.1.254", "eth0", 3),
            ],
        );
        r.mtu = Some(1400);
        r.src = Some("192.168.1.20".parse().unwrap());
        let msg = route_message(&r, &index, 157, "add").unwrap();
        let mp = msg
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::MultiPath(h) => Some(h.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(mp.iter().map(|h| h.hops).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(parse_route(&roundtrip(&msg), &names, 157), Some(r));
    }

    #[test]
    fn ipv6_metric_is_explicit_and_ipv4_default_absent() {
        let (names, index) = maps();
        let r6 = route(254, "fd00:1::/64", vec![hop("fd00::1", "br0", 1)]);
        let m6 = route_message(&r6, &index, 157, "add").unwrap();
        assert!(m6.attributes.contains(&RouteAttribute::Priority(1024)));
        assert_eq!(parse_route(&roundtrip(&m6), &names, 157), Some(r6));
        let r4 = route(254, "10.0.0.0/8", vec![hop("192.168.1.1", "eth0", 1)]);
        let m4 = route_message(&r4, &index, 157, "add").unwrap();
        assert!(!m4
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Priority(_))));
    }

    #[test]
    fn blackhole_and_onlink_and_foreign() {
        let (names, index) = maps();
        let mut r = route(254, "10.9.0.0/16", vec![]);
        r.kind = RouteType::Blackhole;
        r.scope = Scope::Global;
        let msg = route_message(&r, &index, 157, "add").unwrap();
        assert_eq!(parse_route(&roundtrip(&msg), &names, 157), Some(r.clone()));
        let foreign = parse_route(&roundtrip(&msg), &names, 4).unwrap();
        assert!(!foreign.owned);

        let mut r = route(254, "10.8.0.0/16", vec![hop("1.2.3.4", "eth0", 1)]);
        r.nexthops[0].onlink = true;
        let msg = route_message(&r, &index, 157, "add").unwrap();
        assert_eq!(parse_route(&roundtrip(&msg), &names, 157), Some(r));
    }

    #[test]
    fn ignored_routes() {
        let (names, index) = maps();
        let r = route(254, "10.0.0.0/24", vec![hop("10.0.0.1", "eth0", 1)]);
        let base = route_message(&r, &index, 157, "add").unwrap();
        let mut m = base.clone();
        m.header.protocol = RouteProtocol::Kernel;
        assert_eq!(parse_route(&m, &names, 157), None);
        let mut m = base.clone();
        m.header.kind = NlType::Local;
        assert_eq!(parse_route(&m, &names, 157), None);
        let mut m = base.clone();
        m.attributes
            .retain(|a| !matches!(a, RouteAttribute::Table(_)));
        m.attributes.push(RouteAttribute::Table(255));
        assert_eq!(parse_route(&m, &names, 157), None);
        let mut m = base;
        m.header.flags |= RouteFlags::Cloned;
        assert_eq!(parse_route(&m, &names, 157), None);
    }

    #[test]
    fn destination_is_normalised() {
        let (names, index) = maps();
        let r = route(254, "10.0.0.0/24", vec![hop("192.168.1.1", "eth0", 1)]);
        let mut m = route_message(&r, &index, 157, "add").unwrap();
        for a in m.attributes.iter_mut() {
            if let RouteAttribute::Destination(d) = a {
                *d = RouteAddress::Inet("10.0.0.77".parse().unwrap());
            }
        }
        assert_eq!(parse_route(&m, &names, 157).unwrap().to, r.to);
    }

    #[test]
    fn delete_matches_key_and_our_protocol() {
        let r = route(1000, "0.0.0.0/0", vec![hop("192.168.1.1", "eth0", 1)]);
        let m = delete_message(&r, 157);
        assert_eq!(m.header.scope, RouteScope::NoWhere);
        assert_eq!(u8::from(m.header.protocol), 157);
        assert!(m.attributes.contains(&RouteAttribute::Table(1000)));
        assert!(!m
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Oif(_) | RouteAttribute::Gateway(_))));
    }

    #[test]
    fn ids_read_like_ip_route() {
        let r = route(102, "0.0.0.0/0", vec![hop("192.168.1.254", "eth0", 1)]);
        assert_eq!(
            crate::model::object::ObjectRef::route(&r).to_string(),
            "route default via 192.168.1.254 dev eth0 table 102"
        );
        let e = hint(&r, libc::ENETUNREACH).unwrap();
        assert_eq!(
            e,
            "no address on eth0 covers the gateway, or the link is down"
        );
    }

    fn emitted(msg: &RouteMessage) -> Vec<u8> {
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        buf
    }

    #[test]
    fn a_plain_route_is_read_from_its_bytes_and_a_multipath_one_by_the_general_parse() {
        let (names, index) = maps();
        let mut r = route(1000, "10.1.0.0/16", vec![hop("192.168.1.1", "eth0", 1)]);
        r.src = Some("192.168.1.20".parse().unwrap());
        let bytes = emitted(&route_message(&r, &index, 157, "add").unwrap());
        assert!(simple_fields(&bytes).unwrap().is_some(), "the fast path");
        assert_eq!(decode_route(&bytes, &names, 157).unwrap(), Some(r.clone()));

        r.nexthops = vec![hop("192.168.1.1", "eth0", 1), hop("192.168.1.2", "br0", 2)].into();
        let bytes = emitted(&route_message(&r, &index, 157, "add").unwrap());
        assert!(
            simple_fields(&bytes).unwrap().is_none(),
            "the general parse"
        );
        assert_eq!(decode_route(&bytes, &names, 157).unwrap(), Some(r));

        assert!(
            decode_route(&bytes[..8], &names, 157).is_err(),
            "a short header"
        );
        let mut torn = bytes.clone();
        torn[ROUTE_HEADER_LEN..ROUTE_HEADER_LEN + 2].copy_from_slice(&200u16.to_ne_bytes());
        assert!(
            decode_route(&torn, &names, 157).is_err(),
            "an attribute past the end"
        );
    }

    fn arb_hop(v6: bool) -> impl Strategy<Value = NextHop> {
        (
            any::<u32>(),
            prop::option::of(0..3usize),
            1..4u32,
            any::<bool>(),
        )
            .prop_map(move |(via, dev, weight, onlink)| NextHop {
                via: Some(if v6 {
                    IpAddr::from(std::net::Ipv6Addr::from(u128::from(via) | 0xfd00 << 112))
                } else {
                    IpAddr::from(std::net::Ipv4Addr::from(via))
                }),
                dev: dev.map(|i| ["eth0", "br0", "eth0"][i].into()),
                weight,
                onlink,
            })
    }

    prop_compose! {
        fn arb_route()(
            v6 in any::<bool>(),
            table in prop::sample::select(vec![1u32, 101, 254, 255, 1000]),
            len in 0..=32u8,
            metric in prop::option::of(0..2000u32),
            kind in prop::sample::select(vec![
                RouteType::Unicast, RouteType::Blackhole, RouteType::Prohibit,
            ]),
            hops in 0..4usize,
            mtu in prop::option::of(1280..9000u32),
            src in any::<bool>(),
            dst in any::<u32>(),
        )(
            hops in prop::collection::vec(arb_hop(v6), hops),
            v6 in Just(v6), table in Just(table), len in Just(len), metric in Just(metric),
            kind in Just(kind), mtu in Just(mtu), src in Just(src), dst in Just(dst),
        ) -> Route {
            let to: IpNet = if v6 {
                IpNet::new(std::net::Ipv6Addr::from(u128::from(dst) << 96).into(), len * 4)
            } else {
                IpNet::new(std::net::Ipv4Addr::from(dst).into(), len)
            }
            .unwrap()
            .trunc();
            let family = Family::of_net(&to);
            let hops = if kind == RouteType::Unicast { hops } else { Vec::new() };
            Route {
                table,
                to,
                tos: 0,
                metric: metric.unwrap_or(Route::default_metric(family)),
                kind,
                scope: Route::default_scope(family, kind, &hops),
                nexthops: hops.into(),
                src: src.then(|| if v6 { "fd00::20".parse().unwrap() } else { "192.168.1.20".parse().unwrap() }),
                mtu,
                owned: true,
            }
        }
    }

    proptest! {
        /// Read straight from the bytes or by the general parse, a dumped route is the same
        /// route: over both families, tables past 255 and the local one, multipath, metrics,
        /// foreign protocols and the header flags that make a route ignored.
        #[test]
        fn decoding_the_bytes_agrees_with_the_general_parse(
            r in arb_route(),
            protocol in prop::sample::select(vec![157u8, 4, 2]),
            flags in prop::sample::select(vec![0u32, 0x200, 4]),
            big_table_header in any::<bool>(),
        ) {
            let (names, index) = maps();
            let Ok(mut msg) = route_message(&r, &index, protocol, "add") else {
                return Ok(());
            };
            msg.header.flags = RouteFlags::from_bits_retain(msg.header.flags.bits() | flags);
            if big_table_header && r.table > 255 {
                msg.header.table = 252;
            }
            let bytes = emitted(&msg);
            let general = parse_route(&RouteMessage::parse(bytes.as_slice()).unwrap(), &names, 157);
            prop_assert_eq!(decode_route(&bytes, &names, 157).unwrap(), general);
        }
    }

    #[test]
    fn missing_device_is_an_error() {
        let r = route(254, "10.0.0.0/8", vec![hop("192.168.1.1", "nope", 1)]);
        let err = route_message(&r, &IndexByName::new(), 157, "add").unwrap_err();
        assert_eq!(err.errno, Some(libc::ENODEV));
    }
}
