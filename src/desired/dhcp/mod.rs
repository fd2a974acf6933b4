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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reconcilers::dhcp::{DNSMASQ_USER, PACKAGE};
use reconcilers::model::dhcp::Upstream;
use reconcilers::model::dhcp::{DhcpServer, DhcpSettings, Lease};
use reconcilers::model::{LinkKind, State};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::convert::Converted;
use super::diagnostics::{Ctx, Pos};
use super::host_facts::HostCheck;
use super::load::Merged;
use super::values::{self as v, Invalid};
use super::yaml::Scalar;

use hosts::label;

mod dns;
mod hosts;
mod ipv6;
mod ranges;
mod show;

pub(crate) use show::{render_files, render_section};

/// One entry of `dhcp:` (keyed by the bridge).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DhcpDoc {
    pub ranges: Option<Vec<Spanned<String>>>,
    pub lease: Option<Spanned<Scalar>>,
    pub domain: Option<Spanned<String>>,
    pub router: Option<Spanned<String>>,
    pub dns: Option<Spanned<dns::DnsDoc>>,
    pub hosts: Option<Vec<Spanned<HostDoc>>>,
    pub ipv6: Option<Spanned<Ipv6Doc>>,
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

    /// The bridge's own addresses.
    fn addresses(&self) -> Vec<IpAddr> {
        let v4 = self.v4.iter().map(|n| IpAddr::V4(n.addr()));
        v4.chain(self.v6.iter().map(|n| IpAddr::V6(n.addr())))
            .collect()
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
        let (settings, resolver) = settings(*file, &bridge, doc, ctx);
        if ctx.count() == before {
            checks.extend(resolver);
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
            // dnsmasq drops root for this user, never the shared `nobody` (anything else
            // running as nobody could signal it or take its files).
            checks.push(HostCheck::User {
                name: DNSMASQ_USER.into(),
                at: ctx.diag(
                    Pos::of(*file, name),
                    format!(
                        "dhcp on {} runs dnsmasq as the user `{DNSMASQ_USER}`, which does not exist on this host: the Debian package `{PACKAGE}` creates it (elsewhere: `useradd --system --no-create-home --shell /usr/sbin/nologin {DNSMASQ_USER}`)",
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
    if let Err(why) = dnsmasq_safe(n) {
        ctx.err(at, why.0);
        return None;
    }
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

/// A bridge name that means only itself in dnsmasq's configuration: the kernel allows `,`,
/// `"`, `#` or `*` in interface names, but `interface=b,eth0` is two interfaces to dnsmasq
/// (it would serve DNS on the uplink), a `"` ends a quoted value and `*` is a wildcard. The
/// name is also part of the instance's file names.
fn dnsmasq_safe(n: &str) -> Result<(), Invalid> {
    match n
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        None => Ok(()),
        Some(c) => Err(Invalid::from(format!(
            "dhcp cannot serve bridge `{n}`: its name contains {c:?}, which dnsmasq's configuration reads as syntax (`interface={n}` would not mean this bridge only); rename the bridge to letters, digits, `-`, `_` and `.`"
        ))),
    }
}

/// The domain guests resolve as NAME.DOMAIN.
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

/// Everything of one entry but the bridge itself.
fn settings(
    file: usize,
    b: &Bridge<'_>,
    doc: &Spanned<DhcpDoc>,
    ctx: &mut Ctx,
) -> (DhcpSettings, Option<HostCheck>) {
    let d = &doc.value;
    let mut s = DhcpSettings {
        ranges: ranges::convert(file, b, d, ctx),
        ..DhcpSettings::default()
    };
    if let Some(l) = &d.lease {
        if let Some(l) = ctx.check(Pos::of(file, l), lease(&l.value)) {
            s.lease = l;
        }
    }
    if let Some(dm) = &d.domain {
        s.domain = ctx.check(Pos::of(file, dm), domain(&dm.value));
    }
    s.router = router(file, b, d, &s, ctx);
    let (upstream, resolver) = dns::convert(file, b, d.dns.as_ref(), Pos::of(file, doc), ctx);
    s.upstream = upstream;
    hosts::convert(file, b, d, &mut s, ctx);
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
        s.ipv6 = ipv6::convert(file, b, &v6.value, Pos::of(file, v6), ctx);
    }
    (s, resolver)
}

/// The router: declared, else the bridge's address in the first range's subnet.
fn router(
    file: usize,
    b: &Bridge<'_>,
    d: &DhcpDoc,
    s: &DhcpSettings,
    ctx: &mut Ctx,
) -> Option<Ipv4Addr> {
    match &d.router {
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
    }
}

/// The DHCP host hook: `upstream: host` reads the resolver file of the namespace served
/// (`/etc/netns/<ns>/resolv.conf`, what `ip netns exec` shows, when it exists), so the
/// service's configuration is rendered again with it.
pub(crate) fn resolve_upstreams(state: &mut State, netns: Option<&str>) {
    for d in state.dhcp.values_mut() {
        if d.settings.upstream == Upstream::Host {
            let file = Upstream::host_file(netns);
            if file != std::path::Path::new(Upstream::HOST_RESOLV_CONF) {
                let mut settings = d.settings.clone();
                settings.upstream = Upstream::ResolvFile(file);
                *d = DhcpServer::new(&d.bridge, settings);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::hosts::host_name;
    use super::ranges::range;
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
