//! `ranges:` of a `dhcp:` entry — the dynamic IPv4 pools, each inside one of the bridge's
//! subnets, clear of its own, network and broadcast addresses, and not overlapping.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use reconcilers::model::dhcp::Range4;

use super::{Bridge, DhcpDoc};
use crate::desired::diagnostics::{Ctx, Pos};
use crate::desired::values::Invalid;

/// The dynamic ranges of one entry.
pub(super) fn convert(file: usize, b: &Bridge<'_>, d: &DhcpDoc, ctx: &mut Ctx) -> Vec<Range4> {
    let mut out = Vec::new();
    let mut taken: Vec<(u32, u32, Pos, String)> = Vec::new();
    for r in d.ranges.iter().flatten() {
        let pos = Pos::of(file, r);
        let Some((a, z)) = ctx.check(pos, range(&r.value)) else {
            continue;
        };
        let (IpAddr::V4(a), IpAddr::V4(z)) = (a, z) else {
            ctx.err(
                pos,
                format!(
                    "range {a}-{z} is IPv6; DHCPv6 ranges go under `ipv6: {{ ranges: [...] }}`"
                ),
            );
            continue;
        };
        let text = format!("{a}-{z}");
        let Some(subnet) = b.subnet_of(a).filter(|n| n.contains(&z)) else {
            ctx.err(pos, format!("range {text} is outside {}", b.subnets_text()));
            continue;
        };
        if let Some((x, what)) = reserved_v4(subnet)
            .into_iter()
            .find(|(x, _)| (a..=z).contains(x))
        {
            ctx.err(
                pos,
                format!("range {text} includes the {what} {x} of {subnet}"),
            );
            continue;
        }
        if let Some(own) = b.v4.iter().map(|n| n.addr()).find(|x| (a..=z).contains(x)) {
            ctx.err(
                pos,
                format!("range {text} includes {}'s own address {own}", b.name),
            );
            continue;
        }
        let (lo, hi) = (u32::from(a), u32::from(z));
        if let Some((_, _, first, other)) = taken.iter().find(|(l, h, _, _)| lo <= *h && *l <= hi) {
            ctx.err(
                pos,
                format!(
                    "range {text} overlaps range {other} ({})",
                    ctx.place(*first)
                ),
            );
            continue;
        }
        taken.push((lo, hi, pos, text));
        out.push(Range4 {
            start: a,
            end: z,
            subnet,
        });
    }
    out
}

/// `A-B` as two addresses of one family.
pub(super) fn range(s: &str) -> Result<(IpAddr, IpAddr), Invalid> {
    let bad = || format!("range `{s}` is not FIRST-LAST (e.g. 10.0.0.100-10.0.0.199)");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: IpAddr = a.trim().parse().map_err(|_| bad())?;
    let b: IpAddr = b.trim().parse().map_err(|_| bad())?;
    if a.is_ipv4() != b.is_ipv4() {
        return Err(Invalid::from(format!("range {s} mixes IPv4 and IPv6")));
    }
    if a > b {
        return Err(Invalid::from(format!(
            "range {a}-{b} ends before it starts"
        )));
    }
    Ok((a, b))
}

/// The network and broadcast addresses of a subnet that has them (not /31, /32).
pub(super) fn reserved_v4(n: Ipv4Net) -> Vec<(Ipv4Addr, &'static str)> {
    if n.prefix_len() >= 31 {
        Vec::new()
    } else {
        vec![
            (n.network(), "network address"),
            (n.broadcast(), "broadcast address"),
        ]
    }
}
