//! `ipv6:` of a `dhcp:` entry — router advertisements (SLAAC) and DHCPv6 ranges inside the
//! bridge's IPv6 prefixes.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::Ipv6Net;
use reconcilers::model::dhcp::{Dhcp6, Range6};

use super::ranges::range;
use super::{Bridge, Ipv6Doc};
use crate::desired::diagnostics::{Ctx, Pos};

/// The IPv6 service of one entry; `None` (with errors) when it cannot work.
pub(super) fn convert(
    file: usize,
    b: &Bridge<'_>,
    d: &Ipv6Doc,
    at: Pos,
    ctx: &mut Ctx,
) -> Option<Dhcp6> {
    if b.v6.is_empty() {
        ctx.err(
            at,
            format!(
                "ipv6 on {0} needs an IPv6 address on {0} (not link-local); add one under `links: {0}: addresses:`",
                b.name
            ),
        );
        return None;
    }
    let ra = d.ra.as_ref().is_none_or(|r| r.value);
    let ranges = ranges(file, b, d, ctx);
    if !ra && d.ranges.as_ref().is_none_or(Vec::is_empty) {
        ctx.err(at, "ipv6 with `ra: false` and no ranges does nothing; set `ra: true` (SLAAC) or add ranges (DHCPv6)");
        return None;
    }
    // Prefixes without a DHCPv6 range are advertised for SLAAC, which only works on a /64.
    let mut ra_prefixes: Vec<Ipv6Net> = if ra {
        b.v6.iter()
            .map(Ipv6Net::trunc)
            .filter(|p| p.prefix_len() == 64 && !ranges.iter().any(|r| r.prefix == *p))
            .collect()
    } else {
        Vec::new()
    };
    ra_prefixes.dedup();
    Some(Dhcp6 {
        ra,
        ranges,
        ra_prefixes,
    })
}

/// The DHCPv6 ranges: each inside one of the bridge's prefixes (a /64 or longer), clear of
/// its own addresses, not overlapping.
fn ranges(file: usize, b: &Bridge<'_>, d: &Ipv6Doc, ctx: &mut Ctx) -> Vec<Range6> {
    let mut ranges: Vec<Range6> = Vec::new();
    let mut taken: Vec<(Ipv6Addr, Ipv6Addr, Pos)> = Vec::new();
    for r in d.ranges.iter().flatten() {
        let pos = Pos::of(file, r);
        let Some((a, z)) = ctx.check(pos, range(&r.value)) else {
            continue;
        };
        let (IpAddr::V6(a), IpAddr::V6(z)) = (a, z) else {
            ctx.err(
                pos,
                format!("range {a}-{z} is IPv4; IPv4 ranges go under `ranges:` of the dhcp entry"),
            );
            continue;
        };
        let Some(prefix) = b.prefix_of(a).filter(|p| p.contains(&z)) else {
            ctx.err(
                pos,
                format!("range {a}-{z} is outside {}", b.prefixes_text()),
            );
            continue;
        };
        if prefix.prefix_len() < 64 {
            ctx.err(pos, format!("range {a}-{z}: DHCPv6 ranges need a prefix of /64 or longer, and {prefix} is shorter"));
            continue;
        }
        if let Some(own) = b.v6.iter().map(|n| n.addr()).find(|x| (a..=z).contains(x)) {
            ctx.err(
                pos,
                format!("range {a}-{z} includes {}'s own address {own}", b.name),
            );
            continue;
        }
        if let Some((fa, fz, first)) = taken.iter().find(|(l, h, _)| a <= *h && *l <= z) {
            ctx.err(
                pos,
                format!(
                    "range {a}-{z} overlaps range {fa}-{fz} ({})",
                    ctx.place(*first)
                ),
            );
            continue;
        }
        taken.push((a, z, pos));
        ranges.push(Range6 {
            start: a,
            end: z,
            prefix,
        });
    }
    ranges
}
