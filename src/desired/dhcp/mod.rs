//! The `dhcp:` section: DHCP and DNS for the VMs on a bridge, served by one dnsmasq per bridge.
//!
//! ```yaml
//! dhcp:
//!   br0:
//!     ranges: ["10.0.0.100-10.0.0.199"]   # inside one of br0's IPv4 subnets
//!     lease: 12h                          # s, m, h, d, w or `infinite`; default 1h
//!     domain: vm.ursa                     # guests resolve as NAME.vm.ursa
//!     router: 10.0.0.1                    # default: br0's address
//!     dns: { upstream: [192.168.1.1] }    # where other names are forwarded
//!     hosts:                              # static leases
//!       - { mac: "52:54:00:00:00:01", ip: 10.0.0.11, name: fedora }
//!     ipv6: { ra: true, ranges: ["fd00:10::100-fd00:10::1ff"] }
//! ```
//!
//! Everything is checked against the bridge as declared in `links:` (its kind and its
//! addresses), so a range outside the subnet is an error at the range, before any write. The
//! result is a [`DhcpServer`] whose files are already rendered: the planner compares files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reconcilers::dnsmasq::{
    Dhcp6, DhcpServer, DhcpSettings, Lease, Range4, Range6, StaticHost, PACKAGE,
};
use reconcilers::model::{LinkKind, MacAddr, State};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::convert::Converted;
use super::diagnostics::{Ctx, Pos};
use super::host_checks::HostCheck;
use super::load::Merged;
use super::values::{self as v, Invalid};
use super::yaml::Scalar;
use super::yaml::{quote, scalar};

/// One entry of `dhcp:` (keyed by the bridge).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DhcpDoc {
    pub ranges: Option<Vec<Spanned<String>>>,
    pub lease: Option<Spanned<Scalar>>,
    pub domain: Option<Spanned<String>>,
    pub router: Option<Spanned<String>>,
    pub dns: Option<Spanned<DnsDoc>>,
    pub hosts: Option<Vec<Spanned<HostDoc>>>,
    pub ipv6: Option<Spanned<Ipv6Doc>>,
}

/// `dns:` of a `dhcp:` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DnsDoc {
    pub upstream: Option<Vec<Spanned<String>>>,
}

/// One static host.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HostDoc {
    pub mac: Option<Spanned<String>>,
    pub ip: Option<Spanned<String>>,
    pub name: Option<Spanned<String>>,
}

/// `ipv6:` of a `dhcp:` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ipv6Doc {
    pub ra: Option<Spanned<bool>>,
    pub ranges: Option<Vec<Spanned<String>>>,
}

/// The merged `dhcp:` entries: file index, bridge name, entry.
pub(crate) type DhcpEntries = Vec<(usize, Spanned<String>, Spanned<DhcpDoc>)>;

// ---------------------------------------------------------------------------------------------
// Conversion and checks

/// The bridge's subnets as declared: its addresses with host bits kept, by family.
struct Bridge<'a> {
    name: &'a str,
    v4: Vec<Ipv4Net>,
    v6: Vec<Ipv6Net>,
}

impl Bridge<'_> {
    fn subnet_of(&self, a: Ipv4Addr) -> Option<Ipv4Net> {
        self.v4.iter().map(Ipv4Net::trunc).find(|n| n.contains(&a))
    }

    fn prefix_of(&self, a: Ipv6Addr) -> Option<Ipv6Net> {
        self.v6.iter().map(Ipv6Net::trunc).find(|n| n.contains(&a))
    }

    fn subnets_text(&self) -> String {
        let nets: Vec<String> = self.v4.iter().map(|n| n.trunc().to_string()).collect();
        match nets.as_slice() {
            [one] => format!("{}'s subnet {one}", self.name),
            many => format!("{}'s subnets {}", self.name, many.join(", ")),
        }
    }

    fn prefixes_text(&self) -> String {
        let nets: Vec<String> = self.v6.iter().map(|n| n.trunc().to_string()).collect();
        match nets.as_slice() {
            [one] => format!("{}'s prefix {one}", self.name),
            many => format!("{}'s prefixes {}", self.name, many.join(", ")),
        }
    }

    fn is_own(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => self.v4.iter().any(|n| n.addr() == a),
            IpAddr::V6(a) => self.v6.iter().any(|n| n.addr() == a),
        }
    }
}

/// Convert and check every `dhcp:` entry against the converted links and addresses; the
/// services go to `c.dhcp`, and each needs dnsmasq on the target host.
pub(crate) fn convert(m: &Merged, c: &mut Converted, ctx: &mut Ctx) {
    let mut out = BTreeMap::new();
    let mut checks = Vec::new();
    for (file, name, doc) in &m.dhcp {
        let before = ctx.count();
        let Some(bridge) = bridge(*file, name, m, c, ctx) else {
            continue;
        };
        let settings = settings(*file, &bridge, &doc.value, ctx);
        if ctx.count() == before {
            out.insert(name.value.clone(), DhcpServer::new(&name.value, settings));
            checks.push(HostCheck::Program {
                name: "dnsmasq".into(),
                package: PACKAGE.into(),
                at: ctx.diag(
                    Pos::of(*file, name),
                    format!(
                        "dhcp on {} needs dnsmasq: install the Debian package `{PACKAGE}` (the daemon without its system service)",
                        name.value
                    ),
                ),
            });
        }
    }
    c.dhcp = out;
    c.host_checks.extend(checks);
}

/// The declared bridge a `dhcp:` entry is for, or why it cannot be served.
fn bridge<'a>(
    file: usize,
    name: &'a Spanned<String>,
    m: &Merged,
    c: &Converted,
    ctx: &mut Ctx,
) -> Option<Bridge<'a>> {
    let at = Pos::of(file, name);
    let n = name.value.as_str();
    let Some(link) = c.links.iter().find(|l| l.link.name == n) else {
        // Declared but broken, or maybe declared in a file that did not parse: its own errors
        // are what to fix.
        let declared = m.links.iter().any(|(_, l, _)| l.value == n);
        if !declared && ctx.complete {
            let bridges = c
                .links
                .iter()
                .filter(|l| matches!(l.link.kind, LinkKind::Bridge(_)))
                .map(|l| l.link.name.as_str());
            ctx.err(
                at,
                format!(
                    "dhcp is declared for {n}, which is not a declared link{}",
                    match super::diagnostics::did_you_mean(n, bridges) {
                        Some(s) => format!("; did you mean `{s}`?"),
                        None => "; declare it under `links:` with `kind: bridge`".to_string(),
                    }
                ),
            );
        }
        return None;
    };
    if !matches!(link.link.kind, LinkKind::Bridge(_)) {
        ctx.err(
            at,
            format!(
                "dhcp is declared for {n}, a link of kind {}; dnsmasq serves the guests of a bridge (`kind: bridge`)",
                link.link.kind.name()
            ),
        );
        return None;
    }
    let mut b = Bridge {
        name: n,
        v4: Vec::new(),
        v6: Vec::new(),
    };
    for a in c.addresses.iter().filter(|a| a.link == n) {
        match a.address {
            IpNet::V4(net) => b.v4.push(net),
            IpNet::V6(net) if !v::is_v6_link_local(&IpAddr::V6(net.addr())) => b.v6.push(net),
            IpNet::V6(_) => {}
        }
    }
    if b.v4.is_empty() {
        ctx.err(
            at,
            format!(
                "dhcp on {n} needs an IPv4 address on {n} (dnsmasq answers there and hands it out as the router); add one under `links: {n}: addresses:`"
            ),
        );
        return None;
    }
    Some(b)
}

/// `A-B` as two addresses of one family.
fn range(s: &str) -> Result<(IpAddr, IpAddr), Invalid> {
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

/// A DNS label (a host name without its domain): letters, digits and inner hyphens.
fn label(s: &str) -> Result<(), Invalid> {
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

fn host_name(s: &str) -> Result<String, Invalid> {
    label(s).map(|()| s.to_ascii_lowercase()).map_err(|why| {
        Invalid(format!(
            "name `{s}` is not a host name: {why} (the domain is added from `domain`)"
        ))
    })
}

fn domain(s: &str) -> Result<String, Invalid> {
    let d = s.strip_suffix('.').unwrap_or(s);
    if d.len() > 253 {
        return Err(Invalid::from(format!(
            "domain `{s}` is longer than 253 characters"
        )));
    }
    for l in d.split('.') {
        label(l).map_err(|why| format!("domain `{s}` is not a DNS domain: label `{l}`: {why}"))?;
    }
    Ok(d.to_ascii_lowercase())
}

fn lease(s: &Scalar) -> Result<Lease, Invalid> {
    match s {
        Scalar::Str(t) => Lease::parse(t).map_err(|e| Invalid(e.to_string())),
        Scalar::Int(n) if *n >= 0 => Lease::from_seconds(u64::try_from(*n).unwrap_or(u64::MAX))
            .map_err(|e| Invalid(e.to_string())),
        _ => Err(Invalid::from(
            "lease must be a time such as 12h, 30m or 3600 (seconds), or `infinite`",
        )),
    }
}

/// The network and broadcast addresses of a subnet that has them (not /31, /32).
fn reserved_v4(n: Ipv4Net) -> Vec<(Ipv4Addr, &'static str)> {
    if n.prefix_len() >= 31 {
        Vec::new()
    } else {
        vec![
            (n.network(), "network address"),
            (n.broadcast(), "broadcast address"),
        ]
    }
}

fn settings(file: usize, b: &Bridge<'_>, d: &DhcpDoc, ctx: &mut Ctx) -> DhcpSettings {
    let mut s = DhcpSettings::default();
    // Dynamic ranges.
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
        s.ranges.push(Range4 {
            start: a,
            end: z,
            subnet,
        });
    }
    if let Some(l) = &d.lease {
        if let Some(l) = ctx.check(Pos::of(file, l), lease(&l.value)) {
            s.lease = l;
        }
    }
    if let Some(dm) = &d.domain {
        s.domain = ctx.check(Pos::of(file, dm), domain(&dm.value));
    }
    // The router: declared, else the bridge's address in the first range's subnet.
    s.router = match &d.router {
        Some(r) => {
            let pos = Pos::of(file, r);
            match ctx.check(pos, v::ip(&r.value, "router")) {
                Some(IpAddr::V4(a)) if b.subnet_of(a).is_some() => Some(a),
                Some(IpAddr::V4(a)) => {
                    ctx.err(
                        pos,
                        format!(
                            "router {a} is outside {}; the guests could not reach it",
                            b.subnets_text()
                        ),
                    );
                    None
                }
                Some(IpAddr::V6(a)) => {
                    ctx.err(
                        pos,
                        format!("router {a} must be an IPv4 address (IPv6 guests learn their router from RA)"),
                    );
                    None
                }
                None => None,
            }
        }
        None => {
            let first = s.ranges.first().map(|r| r.subnet);
            b.v4.iter()
                .find(|n| first.is_none_or(|f| f.contains(&n.addr())))
                .map(|n| n.addr())
        }
    };
    // Upstream nameservers.
    if let Some(dns) = &d.dns {
        for u in dns.value.upstream.iter().flatten() {
            let pos = Pos::of(file, u);
            let Some(a) = ctx.check(pos, v::ip(&u.value, "upstream")) else {
                continue;
            };
            if s.upstream.contains(&a) {
                ctx.err(pos, format!("upstream {a} is listed twice"));
            } else if b.is_own(a) || a.is_loopback() || a.is_unspecified() {
                ctx.err(
                    pos,
                    format!("upstream {a} would make dnsmasq forward queries to itself"),
                );
            } else {
                s.upstream.push(a);
            }
        }
    }
    hosts(file, b, d, &mut s, ctx);
    // Subnets served by static leases only.
    let mut statics: Vec<Ipv4Net> = s
        .hosts
        .iter()
        .filter_map(|h| h.ip)
        .chain(s.router)
        .filter_map(|a| b.subnet_of(a))
        .filter(|n| !s.ranges.iter().any(|r| r.subnet == *n))
        .collect();
    statics.sort();
    statics.dedup();
    s.static_subnets = statics;
    if let Some(v6) = &d.ipv6 {
        s.ipv6 = ipv6(file, b, &v6.value, Pos::of(file, v6), ctx);
    }
    s
}

/// Static leases, with duplicates reported at the second occurrence.
fn hosts(file: usize, b: &Bridge<'_>, d: &DhcpDoc, s: &mut DhcpSettings, ctx: &mut Ctx) {
    let mut macs: Vec<(MacAddr, Pos)> = Vec::new();
    let mut ips: Vec<(Ipv4Addr, Pos)> = Vec::new();
    let mut names: Vec<(String, Pos)> = Vec::new();
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
            Some(m) => {
                let pos = Pos::of(file, m);
                ctx.check(pos, v::mac(&m.value)).and_then(|mac| {
                    if let Some((_, first)) = macs.iter().find(|(x, _)| *x == mac) {
                        ctx.err(
                            pos,
                            format!("MAC {mac} is listed twice (also at {})", ctx.place(*first)),
                        );
                        return None;
                    }
                    macs.push((mac, pos));
                    Some(mac)
                })
            }
        };
        let ip = hd.ip.as_ref().and_then(|i| {
            let pos = Pos::of(file, i);
            let a = match ctx.check(pos, v::ip(&i.value, "ip"))? {
                IpAddr::V4(a) => a,
                IpAddr::V6(a) => {
                    ctx.err(
                        pos,
                        format!(
                            "static ip {a} must be IPv4 (static DHCPv6 leases are not supported)"
                        ),
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
            if let Some((_, first)) = ips.iter().find(|(x, _)| *x == a) {
                ctx.err(
                    pos,
                    format!(
                        "static ip {a} is given to two hosts (also at {})",
                        ctx.place(*first)
                    ),
                );
                return None;
            }
            ips.push((a, pos));
            Some(a)
        });
        let name = hd.name.as_ref().and_then(|n| {
            let pos = Pos::of(file, n);
            let name = ctx.check(pos, host_name(&n.value))?;
            if let Some((_, first)) = names.iter().find(|(x, _)| *x == name) {
                ctx.err(
                    pos,
                    format!(
                        "name {name} is given to two hosts (also at {})",
                        ctx.place(*first)
                    ),
                );
                return None;
            }
            names.push((name.clone(), pos));
            Some(name)
        });
        if hd.ip.is_none() && hd.name.is_none() {
            ctx.err(hpos, "a static host needs an `ip`, a `name` or both");
        }
        if let (Some(mac), true) = (mac, ctx.count() == before) {
            s.hosts.push(StaticHost { mac, ip, name });
        }
    }
    s.hosts.sort_by_key(|h| h.mac);
}

fn ipv6(file: usize, b: &Bridge<'_>, d: &Ipv6Doc, at: Pos, ctx: &mut Ctx) -> Option<Dhcp6> {
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

// ---------------------------------------------------------------------------------------------
// Rendering

/// The `dhcp:` section of `show`, in the form it is written (defaults explicit), so that
/// loading it renders the same files.
pub(crate) fn render_section(state: &State) -> Option<String> {
    if state.dhcp.is_empty() {
        return None;
    }
    let mut s = String::from("dhcp:\n");
    for d in state.dhcp.values() {
        let _ = write!(s, "  {}:", scalar(&d.bridge));
        if !d.running {
            s.push_str("  # dnsmasq is not running");
        }
        s.push('\n');
        let st = &d.settings;
        if !st.ranges.is_empty() {
            s.push_str("    ranges:\n");
            for r in &st.ranges {
                let _ = writeln!(s, "      - {}", quote(&format!("{}-{}", r.start, r.end)));
            }
        }
        let _ = writeln!(s, "    lease: {}", st.lease);
        if let Some(dm) = &st.domain {
            let _ = writeln!(s, "    domain: {}", scalar(dm));
        }
        if let Some(r) = st.router {
            let _ = writeln!(s, "    router: {r}");
        }
        if !st.upstream.is_empty() {
            s.push_str("    dns:\n      upstream:\n");
            for u in &st.upstream {
                let _ = writeln!(s, "        - {}", scalar(&u.to_string()));
            }
        }
        if !st.hosts.is_empty() {
            s.push_str("    hosts:\n");
            for h in &st.hosts {
                let _ = writeln!(s, "      - mac: {}", quote(&h.mac.to_string()));
                if let Some(ip) = h.ip {
                    let _ = writeln!(s, "        ip: {ip}");
                }
                if let Some(n) = &h.name {
                    let _ = writeln!(s, "        name: {}", scalar(n));
                }
            }
        }
        if let Some(v6) = &st.ipv6 {
            let _ = writeln!(s, "    ipv6:\n      ra: {}", v6.ra);
            if !v6.ranges.is_empty() {
                s.push_str("      ranges:\n");
                for r in &v6.ranges {
                    let _ = writeln!(s, "        - {}", quote(&format!("{}-{}", r.start, r.end)));
                }
            }
        }
    }
    Some(s)
}

/// A service as a plan shows it: the files dnsmasq reads, and whether it runs.
pub(crate) fn render_files(d: &DhcpServer) -> String {
    let mut s = String::new();
    for (ext, text) in [
        ("conf", &d.config),
        ("hosts", &d.hosts),
        ("names", &d.names),
    ] {
        let _ = writeln!(s, "==> dnsmasq-{}.{ext} <==", d.bridge);
        s.push_str(text);
        if !text.is_empty() && !text.ends_with('\n') {
            s.push('\n');
        }
    }
    let _ = writeln!(
        s,
        "==> instance <==\n{}",
        if d.running { "running" } else { "not running" }
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_names() {
        assert!(range("10.0.0.100-10.0.0.199").is_ok());
        assert!(range(" 10.0.0.100 - 10.0.0.199 ").is_ok());
        assert!(range("10.0.0.100").unwrap_err().0.contains("FIRST-LAST"));
        assert!(range("10.0.0.9-10.0.0.1")
            .unwrap_err()
            .0
            .contains("ends before"));
        assert!(range("10.0.0.1-fd00::1").unwrap_err().0.contains("mixes"));
        assert_eq!(host_name("Fedora"), Ok("fedora".into()));
        assert!(host_name("fedora.vm").is_err());
        assert!(host_name("-x").is_err());
        assert_eq!(domain("VM.ursa."), Ok("vm.ursa".into()));
        assert!(domain("vm..ursa").is_err());
        assert!(domain("vm_ursa").is_err());
        assert_eq!(lease(&Scalar::Int(7200)), Ok(Lease::Seconds(7200)));
        assert!(lease(&Scalar::Bool(true)).is_err());
    }
}
