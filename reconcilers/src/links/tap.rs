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

/// IFLA_TUN_NUM_QUEUES (u32): the queues attached to an open file (enabled).
pub const IFLA_TUN_NUM_QUEUES: u16 = 8;
/// IFLA_TUN_NUM_DISABLED_QUEUES (u32): queues whose file is open but detached (TUNSETQUEUE).
pub const IFLA_TUN_NUM_DISABLED_QUEUES: u16 = 9;

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

/// Tap options of a dumped tun/tap link with its carrier (IFLA_CARRIER); `None` when it is a
/// tun (layer 3), which netconverge does not manage.
pub fn parse(info: &[InfoTun], carrier: bool) -> Option<TapOpts> {
    parse_raw(&raw_attributes(info), carrier)
}

/// `parse` on raw (type, value) attributes.
///
/// The driver reports its queue counts for a multi-queue tap only; a single-queue tap has
/// carrier exactly while its one queue is attached (tun_attach turns it on, the last detach
/// off), so that is what says a process has it open.
pub fn parse_raw(attrs: &[(u16, Vec<u8>)], carrier: bool) -> Option<TapOpts> {
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
    let multi_queue = u8_of(IFLA_TUN_MULTI_QUEUE).unwrap_or(0) != 0;
    let open_queues = if multi_queue {
        // A disabled queue's file is still open in its process: both count.
        u32_of(IFLA_TUN_NUM_QUEUES)
            .unwrap_or(0)
            .saturating_add(u32_of(IFLA_TUN_NUM_DISABLED_QUEUES).unwrap_or(0))
    } else {
        u32::from(carrier)
    };
    Some(TapOpts {
        owner: u32_of(IFLA_TUN_OWNER).map(Ident::Id),
        group: u32_of(IFLA_TUN_GROUP).map(Ident::Id),
        vnet_hdr: Some(u8_of(IFLA_TUN_VNET_HDR).unwrap_or(0) != 0),
        multi_queue: Some(multi_queue),
        open_queues,
    })
}

/// What a process holding the tap `name` open (a VM) chose that differs from the declared
/// options `desired`, as a note for plans and `check`; `None` when the tap is closed or the
/// declaration holds. Not drift: the declared options are applied once the tap is closed.
pub fn in_use_note(name: &str, desired: &TapOpts, observed: &TapOpts) -> Option<String> {
    if !observed.in_use() {
        return None;
    }
    let flag = |on: bool| if on { "on" } else { "off" };
    let mut differs = Vec::new();
    if let Some(want) = desired.vnet_hdr.filter(|w| Some(*w) != observed.vnet_hdr) {
        let have = observed.vnet_hdr.unwrap_or(false);
        differs.push(format!("vnet_hdr {} (declared {})", flag(have), flag(want)));
    }
    let want_mq = desired.multi_queue.unwrap_or(false);
    if want_mq != observed.multi_queue.unwrap_or(false) {
        differs.push(format!(
            "multi_queue {} (declared {}: a recreate, which would cut the process off)",
            flag(!want_mq),
            flag(want_mq)
        ));
    }
    for (what, want, have) in [
        ("owner", &desired.owner, &observed.owner),
        ("group", &desired.group, &observed.group),
    ] {
        if want.is_some() && want != have {
            differs.push(format!("{what} {} (declared {})", ident(have), ident(want)));
        }
    }
    if differs.is_empty() {
        return None;
    }
    Some(format!(
        "tap {name} is open in a process (a VM; {} queue(s)), which chose {}; the declared \
         options apply once it is closed",
        observed.open_queues,
        differs.join(", ")
    ))
}

fn ident(i: &Option<Ident>) -> String {
    match i {
        None => "none".into(),
        Some(Ident::Id(n)) => n.to_string(),
        Some(Ident::Name(s)) => s.clone(),
    }
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
            parse(&info, false),
            Some(TapOpts {
                owner: Some(Ident::Id(1000)),
                group: None,
                vnet_hdr: Some(true),
                multi_queue: Some(false),
                open_queues: 0,
            })
        );
    }

    #[test]
    fn open_queues_count_enabled_and_disabled_ones_of_a_multi_queue_tap() {
        let mut info = vec![
            nla(IFLA_TUN_TYPE, &[2]),
            nla(IFLA_TUN_MULTI_QUEUE, &[1]),
            nla(IFLA_TUN_NUM_QUEUES, &2u32.to_ne_bytes()),
        ];
        assert_eq!(parse(&info, true).map(|t| t.open_queues), Some(2));
        info.push(nla(IFLA_TUN_NUM_DISABLED_QUEUES, &1u32.to_ne_bytes()));
        // All queues disabled: no carrier, but the files are open.
        let t = parse(&info, false).expect("a tap");
        assert_eq!((t.open_queues, t.in_use()), (3, true));
    }

    #[test]
    fn a_single_queue_tap_is_open_while_it_has_carrier() {
        let info = [nla(IFLA_TUN_TYPE, &[2]), nla(IFLA_TUN_MULTI_QUEUE, &[0])];
        assert_eq!(parse(&info, true).map(|t| t.open_queues), Some(1));
        assert!(!parse(&info, false).expect("a tap").in_use());
    }

    #[test]
    fn tun_is_not_a_tap() {
        assert_eq!(parse(&[nla(IFLA_TUN_TYPE, &[1])], true), None);
        assert_eq!(parse(&[], false), None);
    }
}
