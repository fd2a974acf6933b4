//! Interface addresses over rtnetlink.
//!
//! Ownership of an address is its `IFA_PROTO` (Linux ≥ 6.3): netconverge writes its protocol
//! number there, and addresses on links it created are its own whatever their protocol.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};
use netlink_packet_route::address::{
    AddressAttribute, AddressHeaderFlags, AddressMessage, AddressProtocol, AddressScope,
};
use netlink_packet_route::AddressFamily;

use crate::error::KernelError;
use crate::links::netlink::{index_of, IndexByName, NameByIndex};
use crate::model::Address;

/// Netlink flags of `Op::AddAddress`: fail if the address is already on the link (without
/// NLM_F_EXCL the kernel would silently update it).
pub const ADD_FLAGS: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;

/// The human-readable id of an address in errors: `address 10.0.0.1/24 on br0`.
pub fn address_id(addr: &Address) -> String {
    format!("address {} on {}", addr.address, addr.link)
}

/// The `IFA_PROTO` of a dumped address, if the kernel sent one.
pub fn protocol(msg: &AddressMessage) -> Option<AddressProtocol> {
    msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Protocol(p) => Some(*p),
        _ => None,
    })
}

/// The address itself: `IFA_LOCAL` when present (for IPv4 `IFA_ADDRESS` is the peer of a
/// point-to-point address), else `IFA_ADDRESS`.
fn local_address(msg: &AddressMessage) -> Option<IpAddr> {
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

/// True for IPv6 link-local addresses (fe80::/10), which the kernel makes by itself.
pub fn is_ipv6_link_local(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

/// Turn one dumped address into the model; `None` for addresses netconverge ignores
/// (kernel-made ones, IPv6 link-local, addresses on unknown links).
///
/// `owned_links` holds the names of the links netconverge owns: every address on them is its.
pub fn parse_address(
    msg: &AddressMessage,
    names: &NameByIndex,
    owned_links: &HashSet<String>,
    our_protocol: u8,
) -> Option<Address> {
    let proto = protocol(msg);
    if matches!(
        proto,
        Some(AddressProtocol::Loopback)
            | Some(AddressProtocol::RouterAnnouncement)
            | Some(AddressProtocol::LinkLocal)
    ) {
        return None;
    }
    let ip = local_address(msg)?;
    if is_ipv6_link_local(&ip) {
        return None;
    }
    let link = names.get(&msg.header.index)?.to_string();
    let address = IpNet::new(ip, msg.header.prefix_len).ok()?;
    let owned = proto == Some(AddressProtocol::Other(our_protocol)) || owned_links.contains(&link);
    let primary = ip.is_ipv4()
        && msg.header.scope == AddressScope::Universe
        && !msg.header.flags.contains(AddressHeaderFlags::Secondary);
    Some(Address {
        link,
        address,
        owned,
        primary,
    })
}

fn base_message(
    addr: &Address,
    index: &IndexByName,
    operation: &str,
) -> Result<AddressMessage, KernelError> {
    let ifindex = index_of(index, &addr.link, "link", &address_id(addr), operation)?;
    let ip = addr.address.addr();
    let mut msg = AddressMessage::default();
    msg.header.family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.prefix_len = addr.address.prefix_len();
    msg.header.index = ifindex;
    // As iproute2: host scope for 127/8, universe otherwise.
    msg.header.scope = match ip {
        IpAddr::V4(v4) if v4.is_loopback() => AddressScope::Host,
        _ => AddressScope::Universe,
    };
    // As iproute2 without a peer: IFA_LOCAL and IFA_ADDRESS both carry the address.
    msg.attributes.push(AddressAttribute::Local(ip));
    msg.attributes.push(AddressAttribute::Address(ip));
    Ok(msg)
}

/// The `RTM_NEWADDR` body adding `addr` with netconverge's `IFA_PROTO` (send with
/// `ADD_FLAGS`).
pub fn add_message(
    addr: &Address,
    index: &IndexByName,
    our_protocol: u8,
) -> Result<AddressMessage, KernelError> {
    let mut msg = base_message(addr, index, "add")?;
    msg.attributes
        .push(AddressAttribute::Protocol(AddressProtocol::Other(
            our_protocol,
        )));
    Ok(msg)
}

/// The `RTM_DELADDR` body deleting `addr`; `Ok(None)` when its link is gone (and the address
/// with it).
pub fn delete_message(
    addr: &Address,
    index: &IndexByName,
) -> Result<Option<AddressMessage>, KernelError> {
    if !index.contains_key(&addr.link) {
        return Ok(None);
    }
    base_message(addr, index, "delete").map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, Parseable};

    fn roundtrip(msg: &AddressMessage) -> AddressMessage {
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        AddressMessage::parse(buf.as_slice()).unwrap()
    }

    fn setup() -> (NameByIndex, IndexByName) {
        ([(3, "br0".into())].into(), [("br0".to_string(), 3)].into())
    }

    #[test]
    fn add_then_parse_roundtrips() {
        let (names, index) = setup();
        for a in ["10.0.0.1/24", "fd00:10::1/64"] {
            let addr = Address {
                link: "br0".into(),
                address: a.parse().unwrap(),
                owned: false,
                primary: false,
            };
            let msg = roundtrip(&add_message(&addr, &index, 157).unwrap());
            let parsed = parse_address(&msg, &names, &HashSet::new(), 157).unwrap();
            assert_eq!(parsed.address, addr.address, "host bits kept");
            assert!(parsed.owned);
            let foreign = parse_address(&msg, &names, &HashSet::new(), 99).unwrap();
            assert!(!foreign.owned);
            let on_owned = parse_address(&msg, &names, &["br0".to_string()].into(), 99).unwrap();
            assert!(on_owned.owned);
        }
    }

    #[test]
    fn kernel_made_are_skipped() {
        let (names, index) = setup();
        let addr = Address {
            link: "br0".into(),
            address: "fe80::1/64".parse().unwrap(),
            owned: false,
            primary: false,
        };
        let msg = add_message(&addr, &index, 157).unwrap();
        assert!(parse_address(&msg, &names, &HashSet::new(), 157).is_none());
        let addr = Address {
            address: "127.0.0.1/8".parse().unwrap(),
            ..addr
        };
        let mut msg = base_message(&addr, &index, "add").unwrap();
        assert_eq!(msg.header.scope, AddressScope::Host);
        msg.attributes
            .push(AddressAttribute::Protocol(AddressProtocol::Loopback));
        assert!(parse_address(&msg, &names, &HashSet::new(), 157).is_none());
    }

    #[test]
    fn peer_address_is_not_the_address() {
        let (names, _) = setup();
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = 32;
        msg.header.index = 3;
        msg.attributes
            .push(AddressAttribute::Address("10.9.9.9".parse().unwrap()));
        msg.attributes
            .push(AddressAttribute::Local("10.0.0.1".parse().unwrap()));
        let a = parse_address(&msg, &names, &HashSet::new(), 157).unwrap();
        assert_eq!(a.address, "10.0.0.1/32".parse::<IpNet>().unwrap());
        assert!(!a.owned, "no IFA_PROTO: foreign");
    }

    #[test]
    fn primary_is_a_global_ipv4_address_not_secondary() {
        let (names, index) = setup();
        let parsed = |a: &str, scope: AddressScope, secondary: bool| {
            let addr = Address {
                link: "br0".into(),
                address: a.parse().unwrap(),
                owned: false,
                primary: false,
            };
            let mut msg = add_message(&addr, &index, 157).unwrap();
            msg.header.scope = scope;
            if secondary {
                msg.header.flags |= AddressHeaderFlags::Secondary;
            }
            parse_address(&roundtrip(&msg), &names, &HashSet::new(), 157)
                .unwrap()
                .primary
        };
        assert!(parsed("192.168.1.57/24", AddressScope::Universe, false));
        assert!(!parsed("192.168.1.58/24", AddressScope::Universe, true));
        assert!(!parsed("169.254.3.4/16", AddressScope::Link, false));
        assert!(!parsed("fd00::1/64", AddressScope::Universe, false));
    }

    #[test]
    fn delete_on_missing_link_is_nothing() {
        let addr = Address {
            link: "gone".into(),
            address: "10.0.0.1/24".parse().unwrap(),
            owned: true,
            primary: false,
        };
        assert!(delete_message(&addr, &IndexByName::new())
            .unwrap()
            .is_none());
        assert!(add_message(&addr, &IndexByName::new(), 157).is_err());
    }
}
