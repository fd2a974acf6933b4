//! DHCP: the data types of a bridge's DHCP/DNS service (desired and observed), its settings,
//! lease times, and the writes to it.
//!
//! Rendering the dnsmasq files, diffing and running dnsmasq are in `crate::dhcp`; this
//! module only says what the values are.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use super::MacAddr;
use crate::error::LeaseError;

/// The desired or observed DHCP/DNS service of one bridge.
///
/// `config`, `hosts` and `names` are the texts of the three files dnsmasq reads; on the desired
/// side they are rendered from `settings`, on the observed side they are read from disk (and
/// `settings` parsed back from them, for `show`). Only the files and `running` are compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpServer {
    /// The bridge it serves (dnsmasq is bound to it and nothing else).
    pub bridge: String,
    /// The structured settings, as the `dhcp:` section declares them (defaults filled in).
    pub settings: DhcpSettings,
    /// The dnsmasq configuration file (`dnsmasq-BRIDGE.conf`).
    pub config: String,
    /// The static leases (`dnsmasq-BRIDGE.hosts`, read through `dhcp-hostsfile`).
    pub hosts: String,
    /// The DNS names of the static hosts (`dnsmasq-BRIDGE.names`, read through `addn-hosts`).
    pub names: String,
    /// Desired: always true. Observed: the pid file names a live dnsmasq started with this
    /// configuration file in this namespace.
    pub running: bool,
}

impl DhcpServer {
    /// Same files and same running state: nothing to do.
    pub fn in_sync(&self, other: &DhcpServer) -> bool {
        self.config == other.config
            && self.hosts == other.hosts
            && self.names == other.names
            && self.running == other.running
    }
}

/// What a `dhcp:` entry declares, canonical: defaults filled in, hosts sorted by MAC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpSettings {
    /// Dynamic IPv4 ranges, in the order declared.
    pub ranges: Vec<Range4>,
    /// Subnets of the bridge served with static leases only (they hold a static host or the
    /// router but no dynamic range): dnsmasq answers nobody on a subnet without a range.
    pub static_subnets: Vec<Ipv4Net>,
    /// Lease time of dynamic and static leases.
    pub lease: Lease,
    /// The DNS domain of the guests (`NAME.DOMAIN`), also handed out as DHCP option 15.
    pub domain: Option<String>,
    /// The default router handed out (DHCP option 3); the desired side fills in the bridge's
    /// address.
    pub router: Option<Ipv4Addr>,
    /// Where names outside `domain` are forwarded.
    pub upstream: Upstream,
    /// Static leases, sorted by MAC.
    pub hosts: Vec<StaticHost>,
    /// Router advertisements and DHCPv6, if declared.
    pub ipv6: Option<Dhcp6>,
}

impl Default for DhcpSettings {
    fn default() -> Self {
        DhcpSettings {
            ranges: Vec::new(),
            static_subnets: Vec::new(),
            lease: Lease::DEFAULT,
            domain: None,
            router: None,
            upstream: Upstream::Servers(Vec::new()),
            hosts: Vec::new(),
            ipv6: None,
        }
    }
}

/// Where a bridge's dnsmasq forwards the names it does not answer itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Upstream {
    /// These nameservers (`upstream: [...]`); none: only `domain` names are answered (an
    /// isolated lab).
    Servers(Vec<IpAddr>),
    /// The host's resolver configuration of the namespace served (`upstream: host`, the
    /// default): `/etc/netns/<ns>/resolv.conf` when it exists for a named namespace,
    /// `/etc/resolv.conf` otherwise. dnsmasq polls the file, so a DHCP client rewriting it
    /// on the road is followed without netconverge running.
    Host,
    /// This resolver file (`resolv_file: PATH`, e.g. systemd-resolved's
    /// `/run/systemd/resolve/resolv.conf`).
    ResolvFile(PathBuf),
}

impl Upstream {
    /// The host's resolver file of the caller's own namespace.
    pub const HOST_RESOLV_CONF: &'static str = "/etc/resolv.conf";

    /// The resolver file dnsmasq reads, if it reads one.
    pub fn resolv_file(&self) -> Option<&Path> {
        match self {
            Upstream::Servers(_) => None,
            Upstream::Host => Some(Path::new(Self::HOST_RESOLV_CONF)),
            Upstream::ResolvFile(p) => Some(p),
        }
    }

    /// The resolver file `ip netns exec NS` would show as /etc/resolv.conf.
    pub fn host_file(netns: Option<&str>) -> PathBuf {
        netns
            .map(|ns| PathBuf::from(format!("/etc/netns/{ns}/resolv.conf")))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from(Self::HOST_RESOLV_CONF))
    }
}

/// A dynamic IPv4 range and the subnet (network address and prefix) it lies in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range4 {
    /// First address handed out.
    pub start: Ipv4Addr,
    /// Last address handed out.
    pub end: Ipv4Addr,
    /// The bridge subnet holding both ends (host bits clear).
    pub subnet: Ipv4Net,
}

/// A DHCPv6 range and the prefix it lies in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range6 {
    /// First address handed out.
    pub start: Ipv6Addr,
    /// Last address handed out.
    pub end: Ipv6Addr,
    /// The bridge prefix holding both ends (host bits clear).
    pub prefix: Ipv6Net,
}

/// IPv6 service on the bridge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dhcp6 {
    /// Send router advertisements (`enable-ra`).
    pub ra: bool,
    /// DHCPv6 address ranges.
    pub ranges: Vec<Range6>,
    /// With `ra`: the bridge's prefixes without a DHCPv6 range, advertised for SLAAC only
    /// (`ra-only`).
    pub ra_prefixes: Vec<Ipv6Net>,
}

/// One static lease: a VM's MAC, its fixed address and/or its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticHost {
    /// The guest NIC's MAC.
    pub mac: MacAddr,
    /// Fixed IPv4 address.
    pub ip: Option<Ipv4Addr>,
    /// Host name handed out and resolvable as `NAME` and `NAME.DOMAIN` (lowercase).
    pub name: Option<String>,
}

/// A lease time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lease {
    /// This many seconds (at least [`Lease::MIN_SECONDS`]).
    Seconds(u32),
    /// Leases never expire.
    Infinite,
}

impl Lease {
    /// dnsmasq's own default, one hour.
    pub const DEFAULT: Lease = Lease::Seconds(3600);
    /// dnsmasq raises shorter leases to two minutes; refusing them keeps the file honest.
    pub const MIN_SECONDS: u32 = 120;

    /// Parse `12h`, `30m`, `1d`, `2w`, `3600`, `90s` or `infinite`.
    pub fn parse(s: &str) -> Result<Lease, LeaseError> {
        let t = s.trim();
        if t == "infinite" {
            return Ok(Lease::Infinite);
        }
        let bad = || LeaseError::Syntax(s.to_string());
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(bad());
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        let factor: u64 = match unit {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return Err(bad()),
        };
        let secs = n.saturating_mul(factor);
        Lease::from_seconds(secs)
    }

    /// A lease of `secs` seconds, checked against dnsmasq's limits.
    pub fn from_seconds(secs: u64) -> Result<Lease, LeaseError> {
        if secs < u64::from(Lease::MIN_SECONDS) {
            return Err(LeaseError::TooShort(secs));
        }
        // dnsmasq keeps lease times in 32 bits and reads all-ones as infinite.
        if secs >= u64::from(u32::MAX) {
            return Err(LeaseError::TooLong(secs));
        }
        Ok(Lease::Seconds(u32::try_from(secs).expect("range-checked")))
    }
}

impl std::fmt::Display for Lease {
    /// The largest whole unit: `12h`, `90m`, `1d`, `100s`; dnsmasq reads the same syntax.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Lease::Infinite => f.write_str("infinite"),
            Lease::Seconds(s) => {
                for (unit, n) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
                    if s % n == 0 {
                        return write!(f, "{}{unit}", s / n);
                    }
                }
                write!(f, "{s}s")
            }
        }
    }
}

/// A change to a bridge's dnsmasq instance.
// One op per bridge and plan: boxing the large variant would save nothing worth the noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhcpOp {
    /// Write the files that differ (atomically) and start, reload (SIGHUP) or restart the
    /// instance as the difference requires.
    Apply(DhcpServer),
    /// Stop the instance of this bridge and remove its files.
    Stop(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_times() {
        assert_eq!(Lease::parse("12h"), Ok(Lease::Seconds(43_200)));
        assert_eq!(Lease::parse("3600"), Ok(Lease::Seconds(3600)));
        assert_eq!(Lease::parse("2m"), Ok(Lease::Seconds(120)));
        assert_eq!(Lease::parse("infinite"), Ok(Lease::Infinite));
        assert_eq!(Lease::parse("90s"), Err(LeaseError::TooShort(90)));
        assert!(Lease::parse("90s")
            .unwrap_err()
            .to_string()
            .contains("minimum"));
        assert!(Lease::parse("12 hours").is_err());
        assert!(Lease::parse("h").is_err());
        assert!(Lease::parse("").is_err());
        assert!(Lease::parse("99999999999w")
            .unwrap_err()
            .to_string()
            .contains("infinite"));
        assert_eq!(
            Lease::parse("12 hours"),
            Err(LeaseError::Syntax("12 hours".into()))
        );
        for (s, shown) in [
            ("12h", "12h"),
            ("720m", "12h"),
            ("1d", "1d"),
            ("14d", "2w"),
            ("150", "150s"),
            ("90m", "90m"),
        ] {
            assert_eq!(Lease::parse(s).unwrap().to_string(), shown, "{s}");
        }
    }
}
