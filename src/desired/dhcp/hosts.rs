//! `hosts:` of a `dhcp:` entry — static leases by MAC, with an address in the bridge's
//! subnets and a DNS name, each MAC, address and name given once.

use std::net::{IpAddr, Ipv4Addr};

use reconcilers::model::dhcp::{DhcpSettings, StaticHost};
use reconcilers::model::MacAddr;

use super::ranges::reserved_v4;
use super::{Bridge, DhcpDoc};
use crate::desired::diagnostics::{Ctx, Pos};
use crate::desired::values::{self as v, Invalid};

/// What the entries so far have taken, so a second use is reported with the first place.
#[derive(Default)]
struct Seen {
    macs: Vec<(MacAddr, Pos)>,
    ips: Vec<(Ipv4Addr, Pos)>,
    names: Vec<(String, Pos)>,
}

/// Static leases, with duplicates reported at the second occurrence.
pub(super) fn convert(
    file: usize,
    b: &Bridge<'_>,
    d: &DhcpDoc,
    s: &mut DhcpSettings,
    ctx: &mut Ctx,
) {
    let mut seen = Seen::default();
    for h in d.hosts.iter().flatten() {
        let hpos = Pos::of(file, h);
        let before = ctx.count();
        let hd = &h.value;
        let mac = match &hd.mac {
            None => {
                ctx.err(
                    hpos,
                    "a static host needs `mac` (the guest NIC's MAC address)",
                );
                None
            }
            Some(m) => mac(Pos::of(file, m), &m.value, &mut seen, ctx),
        };
        let ip = hd
            .ip
            .as_ref()
            .and_then(|i| ip(Pos::of(file, i), &i.value, b, &mut seen, ctx));
        let name = hd
            .name
            .as_ref()
            .and_then(|n| name(Pos::of(file, n), &n.value, &mut seen, ctx));
        if hd.ip.is_none() && hd.name.is_none() {
            ctx.err(hpos, "a static host needs an `ip`, a `name` or both");
        }
        if let (Some(mac), true) = (mac, ctx.count() == before) {
            s.hosts.push(StaticHost { mac, ip, name });
        }
    }
    s.hosts.sort_by_key(|h| h.mac);
}

fn mac(pos: Pos, text: &str, seen: &mut Seen, ctx: &mut Ctx) -> Option<MacAddr> {
    let mac = ctx.check(pos, v::mac(text))?;
    if let Some((_, first)) = seen.macs.iter().find(|(x, _)| *x == mac) {
        ctx.err(
            pos,
            format!("MAC {mac} is listed twice (also at {})", ctx.place(*first)),
        );
        return None;
    }
    seen.macs.push((mac, pos));
    Some(mac)
}

fn ip(pos: Pos, text: &str, b: &Bridge<'_>, seen: &mut Seen, ctx: &mut Ctx) -> Option<Ipv4Addr> {
    let a = match ctx.check(pos, v::ip(text, "ip"))? {
        IpAddr::V4(a) => a,
        IpAddr::V6(a) => {
            ctx.err(
                pos,
                format!("static ip {a} must be IPv4 (static DHCPv6 leases are not supported)"),
            );
            return None;
        }
    };
    let Some(subnet) = b.subnet_of(a) else {
        ctx.err(
            pos,
            format!("static ip {a} is outside {}", b.subnets_text()),
        );
        return None;
    };
    if let Some((_, what)) = reserved_v4(subnet).into_iter().find(|(x, _)| *x == a) {
        ctx.err(pos, format!("static ip {a} is the {what} of {subnet}"));
        return None;
    }
    if b.is_own(IpAddr::V4(a)) {
        ctx.err(pos, format!("static ip {a} is {}'s own address", b.name));
        return None;
    }
    if let Some((_, first)) = seen.ips.iter().find(|(x, _)| *x == a) {
        ctx.err(
            pos,
            format!(
                "static ip {a} is given to two hosts (also at {})",
                ctx.place(*first)
            ),
        );
        return None;
    }
    seen.ips.push((a, pos));
    Some(a)
}

fn name(pos: Pos, text: &str, seen: &mut Seen, ctx: &mut Ctx) -> Option<String> {
    let name = ctx.check(pos, host_name(text))?;
    if let Some((_, first)) = seen.names.iter().find(|(x, _)| *x == name) {
        ctx.err(
            pos,
            format!(
                "name {name} is given to two hosts (also at {})",
                ctx.place(*first)
            ),
        );
        return None;
    }
    seen.names.push((name.clone(), pos));
    Some(name)
}

/// A DNS label (a host name without its domain): letters, digits and inner hyphens.
pub(super) fn label(s: &str) -> Result<(), Invalid> {
    let why = if s.is_empty() {
        "it is empty"
    } else if s.len() > 63 {
        "it is longer than 63 characters"
    } else if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        "only letters, digits and `-` are allowed"
    } else if s.starts_with('-') || s.ends_with('-') {
        "it starts or ends with `-`"
    } else {
        return Ok(());
    };
    Err(Invalid::from(why))
}

/// A guest's name, lower-cased.
pub(super) fn host_name(s: &str) -> Result<String, Invalid> {
    label(s).map(|()| s.to_ascii_lowercase()).map_err(|why| {
        Invalid(format!(
            "name `{s}` is not a host name: {why} (the domain is added from `domain`)"
        ))
    })
}
