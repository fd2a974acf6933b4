//! Taps as the tun driver reports them.
//!
//! netlink-packet-route does not decode the tun driver's `IFLA_INFO_DATA`
//! (`InfoData::Tun(Vec<InfoTun::Other>)`), so the attributes are read raw here. Creation and
//! option changes go through `/dev/net/tun` (`kernel::tap`): the driver refuses rtnetlink
//! creation.

use netlink_packet_core::Nla;
use netlink_packet_route::link::InfoTun;

use crate::model::{Ident, TapOpts};

/// IFLA_TUN_OWNER (u32 uid; absent when the tap has no owner).
pub const IFLA_TUN_OWNER: u16 = 1;
/// IFLA_TUN_GROUP (u32 gid; absent when unset).
pub const IFLA_TUN_GROUP: u16 = 2;
/// IFLA_TUN_TYPE (u8: 1 tun, 2 tap).
pub const IFLA_TUN_TYPE: u16 = 3;
/// IFLA_TUN_PI (u8).
pub const IFLA_TUN_PI: u16 = 4;
/// IFLA_TUN_VNET_HDR (u8).
pub const IFLA_TUN_VNET_HDR: u16 = 5;
/// IFLA_TUN_PERSIST (u8).
pub const IFLA_TUN_PERSIST: u16 = 6;
/// IFLA_TUN_MULTI_QUEUE (u8).
pub const IFLA_TUN_MULTI_QUEUE: u16 = 7;

/// IFLA_TUN_TYPE value of a tap (IFF_TAP).
pub const TUN_TYPE_TAP: u8 = 2;

/// The raw (type, value) pairs of the tun attributes.
pub fn raw_attributes(info: &[InfoTun]) -> Vec<(u16, Vec<u8>)> {
    info.iter()
        .map(|nla| {
            let mut value = vec![0u8; nla.value_len()];
            nla.emit_value(&mut value);
            (nla.kind(), value)
        })
        .collect()
}

/// Tap options of a dumped tun/tap link; `None` when it is a tun (layer 3), which netconverge
/// does not manage.
pub fn parse(info: &[InfoTun]) -> Option<TapOpts> {
    parse_raw(&raw_attributes(info))
}

/// `parse` on raw (type, value) attributes.
pub fn parse_raw(attrs: &[(u16, Vec<u8>)]) -> Option<TapOpts> {
    let u8_of = |kind: u16| {
        attrs
            .iter()
            .find(|(k, _)| *k == kind)
            .and_then(|(_, v)| v.first().copied())
    };
    let u32_of = |kind: u16| {
        attrs
            .iter()
            .find(|(k, _)| *k == kind)
            .and_then(|(_, v)| v.get(..4))
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    if u8_of(IFLA_TUN_TYPE) != Some(TUN_TYPE_TAP) {
        return None;
    }
    Some(TapOpts {
        owner: u32_of(IFLA_TUN_OWNER).map(Ident::Id),
        group: u32_of(IFLA_TUN_GROUP).map(Ident::Id),
        vnet_hdr: Some(u8_of(IFLA_TUN_VNET_HDR).unwrap_or(0) != 0),
        multi_queue: Some(u8_of(IFLA_TUN_MULTI_QUEUE).unwrap_or(0) != 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::DefaultNla;

    fn nla(kind: u16, value: &[u8]) -> InfoTun {
        InfoTun::Other(DefaultNla::new(kind, value.to_vec()))
    }

    #[test]
    fn tap_with_owner_and_vnet_hdr() {
        let info = vec![
            nla(IFLA_TUN_OWNER, &1000u32.to_ne_bytes()),
            nla(IFLA_TUN_TYPE, &[2]),
            nla(IFLA_TUN_PI, &[0]),
            nla(IFLA_TUN_VNET_HDR, &[1]),
            nla(IFLA_TUN_PERSIST, &[1]),
            nla(IFLA_TUN_MULTI_QUEUE, &[0]),
        ];
        assert_eq!(
            parse(&info),
            Some(TapOpts {
                owner: Some(Ident::Id(1000)),
                group: None,
                vnet_hdr: Some(true),
                multi_queue: Some(false),
            })
        );
    }

    #[test]
    fn tun_is_not_a_tap() {
        assert_eq!(parse(&[nla(IFLA_TUN_TYPE, &[1])]), None);
        assert_eq!(parse(&[]), None);
    }
}
