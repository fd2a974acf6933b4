//! Policy rules over rtnetlink.
//!
//! A lookup rule must carry `FR_ACT_TO_TBL` explicitly: the kernel accepts a rule with the
//! default action (`FR_ACT_UNSPEC`), shows it as `lookup N none`, and then fails every lookup
//! that reaches it with EINVAL (trap 1 of the notes).

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};
use netlink_packet_route::route::RouteProtocol;
use netlink_packet_route::rule::{RuleAction as NlAction, RuleAttribute, RuleFlags, RuleMessage};
use netlink_packet_route::AddressFamily;

use crate::model::{Family, Rule, RuleAction, RuleKey};

/// Netlink flags of `Op::AddRule`: fail if an identical rule exists.
pub const ADD_FLAGS: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;

/// Turn one dumped rule into the model; `None` for rules netconverge ignores: the kernel's
/// default rules, other families, actions other than lookup/blackhole/unreachable/prohibit
/// (goto, nop), and rules with selectors the model cannot express (tos, ip protocol, ports,
/// uid range, l3mdev, suppress_ifgroup, tunnel id, realm) — their key would be wrong, and being
/// foreign they are never touched anyway. FRA_SUPPRESS_PREFIXLEN is kept (u32, where
/// 0xffffffff means unset, as the kernel reports a rule without it).
pub fn parse_rule(msg: &RuleMessage, our_protocol: u8) -> Option<Rule> {
    let h = &msg.header;
    let family = match h.family {
        AddressFamily::Inet => Family::Inet,
        AddressFamily::Inet6 => Family::Inet6,
        _ => return None,
    };
    if h.tos != 0 {
        return None;
    }
    let mut key = RuleKey {
        priority: 0,
        family,
        from: None,
        to: None,
        fwmark: None,
        iif: None,
        oif: None,
        not: h.flags.contains(RuleFlags::Invert),
        suppress_prefixlength: None,
    };
    let mut table = None;
    let mut mark = None;
    let mut mask = None;
    let mut protocol = 0u8;
    for attr in &msg.attributes {
        match attr {
            RuleAttribute::Priority(p) => key.priority = *p,
            RuleAttribute::Source(ip) if h.src_len > 0 => key.from = prefix(*ip, h.src_len),
            RuleAttribute::Destination(ip) if h.dst_len > 0 => key.to = prefix(*ip, h.dst_len),
            RuleAttribute::FwMark(m) => mark = Some(*m),
            RuleAttribute::FwMask(m) => mask = Some(*m),
            RuleAttribute::Iifname(n) => key.iif = Some(n.clone()),
            RuleAttribute::Oifname(n) => key.oif = Some(n.clone()),
            RuleAttribute::Table(t) => table = Some(*t),
            RuleAttribute::Protocol(p) => protocol = u8::from(*p),
            RuleAttribute::Goto(_)
            | RuleAttribute::IpProtocol(_)
            | RuleAttribute::SourcePortRange(_)
            | RuleAttribute::DestinationPortRange(_)
            | RuleAttribute::UidRange(_)
            | RuleAttribute::Realm(_) => return None,
            RuleAttribute::L3MDev(true) => return None,
            RuleAttribute::SuppressPrefixLen(v) if *v != u32::MAX => {
                key.suppress_prefixlength = Some(u8::try_from(*v).ok()?);
            }
            RuleAttribute::SuppressIfGroup(v) if *v != u32::MAX => return None,
            RuleAttribute::TunId(id) if *id != 0 => return None,
            _ => {}
        }
    }
    if mark.is_some() || mask.is_some() {
        key.fwmark = Some((mark.unwrap_or(0), mask.unwrap_or(u32::MAX)));
    }
    let action = match h.action {
        NlAction::ToTable => {
            let t = table.unwrap_or(h.table as u32);
            if t == 0 {
                return None;
            }
            RuleAction::Lookup(t)
        }
        NlAction::Blackhole => RuleAction::Blackhole,
        NlAction::Unreachable => RuleAction::Unreachable,
        NlAction::Prohibit => RuleAction::Prohibit,
        _ => return None,
    };
    let rule = Rule {
        key,
        action,
        owned: protocol == our_protocol,
    };
    (!rule.is_kernel_default()).then_some(rule)
}

fn prefix(ip: IpAddr, len: u8) -> Option<IpNet> {
    IpNet::new(ip, len).ok()
}

/// The message shared by add and delete: selector, priority and action.
fn base_message(rule: &Rule) -> RuleMessage {
    let k = &rule.key;
    let mut msg = RuleMessage::default();
    msg.header.family = match k.family {
        Family::Inet => AddressFamily::Inet,
        Family::Inet6 => AddressFamily::Inet6,
    };
    if k.not {
        msg.header.flags |= RuleFlags::Invert;
    }
    msg.attributes.push(RuleAttribute::Priority(k.priority));
    if let Some(from) = k.from {
        msg.header.src_len = from.prefix_len();
        msg.attributes.push(RuleAttribute::Source(from.addr()));
    }
    if let Some(to) = k.to {
        msg.header.dst_len = to.prefix_len();
        msg.attributes.push(RuleAttribute::Destination(to.addr()));
    }
    if let Some((mark, mask)) = k.fwmark {
        msg.attributes.push(RuleAttribute::FwMark(mark));
        msg.attributes.push(RuleAttribute::FwMask(mask));
    }
    if let Some(iif) = &k.iif {
        msg.attributes.push(RuleAttribute::Iifname(iif.clone()));
    }
    if let Some(oif) = &k.oif {
        msg.attributes.push(RuleAttribute::Oifname(oif.clone()));
    }
    if let Some(n) = k.suppress_prefixlength {
        msg.attributes
            .push(RuleAttribute::SuppressPrefixLen(u32::from(n)));
    }
    msg.header.action = match rule.action {
        RuleAction::Lookup(t) => {
            // As iproute2: ids up to 255 in the header too, any id in FRA_TABLE.
            msg.header.table = if t <= 255 { t as u8 } else { 0 };
            msg.attributes.push(RuleAttribute::Table(t));
            NlAction::ToTable
        }
        RuleAction::Blackhole => NlAction::Blackhole,
        RuleAction::Unreachable => NlAction::Unreachable,
        RuleAction::Prohibit => NlAction::Prohibit,
    };
    msg
}

/// The `RTM_NEWRULE` body adding `rule` with netconverge's protocol (send with `ADD_FLAGS`).
pub fn add_message(rule: &Rule, our_protocol: u8) -> RuleMessage {
    let mut msg = base_message(rule);
    msg.attributes
        .push(RuleAttribute::Protocol(RouteProtocol::from(our_protocol)));
    msg
}

/// The `RTM_DELRULE` body deleting `rule`: matched by priority, selector and action, and by
/// netconverge's protocol when the rule is its own.
pub fn delete_message(rule: &Rule, our_protocol: u8) -> RuleMessage {
    if rule.owned {
        add_message(rule, our_protocol)
    } else {
        base_message(rule)
    }
}

/// A hint for a failed rule write.
pub fn hint(errno: i32) -> Option<String> {
    match errno {
        libc::EEXIST => Some("an object with the same key exists".into()),
        libc::EPERM => Some("needs CAP_NET_ADMIN (run as root)".into()),
        libc::EAFNOSUPPORT => Some("the kernel has no policy routing for this family".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, Parseable};

    fn roundtrip(msg: &RuleMessage) -> RuleMessage {
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        RuleMessage::parse(buf.as_slice()).unwrap()
    }

    fn rule(priority: u32, action: RuleAction) -> Rule {
        Rule {
            key: RuleKey::all(priority, Family::Inet),
            action,
            owned: true,
        }
    }

    #[test]
    fn lookup_rule_roundtrips_with_explicit_action() {
        let mut r = rule(10001, RuleAction::Lookup(101));
        r.key.fwmark = Some((1, 0xff));
        r.key.from = Some("10.0.0.0/24".parse().unwrap());
        r.key.iif = Some("br0".into());
        r.key.not = true;
        let msg = add_message(&r, 157);
        assert_eq!(msg.header.action, NlAction::ToTable);
        assert_eq!(msg.header.table, 101);
        assert_eq!(parse_rule(&roundtrip(&msg), 157), Some(r.clone()));
        let foreign = parse_rule(&roundtrip(&msg), 4).unwrap();
        assert!(!foreign.owned);
    }

    #[test]
    fn big_table_only_in_attribute() {
        let mut r = rule(100, RuleAction::Lookup(1000));
        r.key.family = Family::Inet6;
        r.key.to = Some("fd00::/8".parse().unwrap());
        let mut msg = add_message(&r, 157);
        assert_eq!(msg.header.table, 0);
        msg.header.table = 252;
        assert_eq!(parse_rule(&roundtrip(&msg), 157), Some(r));
    }

    #[test]
    fn mark_without_mask_defaults_to_all_ones() {
        let r = rule(5, RuleAction::Prohibit);
        let mut msg = add_message(&r, 157);
        msg.attributes.push(RuleAttribute::FwMark(7));
        assert_eq!(
            parse_rule(&msg, 157).unwrap().key.fwmark,
            Some((7, u32::MAX))
        );
    }

    #[test]
    fn ignored_rules() {
        // Kernel defaults.
        let mut main = base_message(&rule(32766, RuleAction::Lookup(254)));
        main.attributes
            .push(RuleAttribute::Protocol(RouteProtocol::Kernel));
        assert_eq!(parse_rule(&main, 157), None);
        // Goto / nop.
        let mut g = base_message(&rule(10, RuleAction::Blackhole));
        g.header.action = NlAction::Goto;
        assert_eq!(parse_rule(&g, 157), None);
        // Unexpressible selector.
        let mut s = add_message(&rule(11, RuleAction::Lookup(254)), 157);
        s.attributes.push(RuleAttribute::SuppressIfGroup(3));
        assert_eq!(parse_rule(&s, 157), None);
        let mut s = add_message(&rule(11, RuleAction::Lookup(254)), 157);
        s.attributes.push(RuleAttribute::SuppressIfGroup(u32::MAX));
        assert!(parse_rule(&s, 157).is_some());
        // A prefix length no address has.
        let mut s = add_message(&rule(11, RuleAction::Lookup(254)), 157);
        s.attributes.push(RuleAttribute::SuppressPrefixLen(300));
        assert_eq!(parse_rule(&s, 157), None);
    }

    #[test]
    fn suppress_prefixlength_roundtrips_and_unset_is_all_ones() {
        let mut r = rule(999, RuleAction::Lookup(254));
        r.key.suppress_prefixlength = Some(0);
        let msg = add_message(&r, 157);
        assert!(msg
            .attributes
            .contains(&RuleAttribute::SuppressPrefixLen(0)));
        assert_eq!(parse_rule(&roundtrip(&msg), 157), Some(r.clone()));
        assert_eq!(r.id(), "999: from all lookup main suppress_prefixlength 0");
        // The kernel reports a rule without it as 0xffffffff.
        let plain = rule(999, RuleAction::Lookup(254));
        let mut m = add_message(&plain, 157);
        assert!(!m
            .attributes
            .iter()
            .any(|a| matches!(a, RuleAttribute::SuppressPrefixLen(_))));
        m.attributes
            .push(RuleAttribute::SuppressPrefixLen(u32::MAX));
        assert_eq!(parse_rule(&roundtrip(&m), 157), Some(plain));
    }

    #[test]
    fn delete_keeps_selector() {
        let mut r = rule(10001, RuleAction::Lookup(101));
        r.key.fwmark = Some((1, 0xff));
        let d = delete_message(&r, 157);
        assert!(d.attributes.contains(&RuleAttribute::Priority(10001)));
        assert!(d.attributes.contains(&RuleAttribute::FwMask(0xff)));
        assert_eq!(
            crate::model::object::ObjectRef::rule(&r).to_string(),
            "rule 10001: from all fwmark 0x1/0xff lookup 101"
        );
    }
}
