//! DHCP and DNS for the VMs on a bridge: one dnsmasq per bridge, run by netconverge as its own
//! daemon, its configuration rendered from the desired state and kept under a per-namespace
//! state directory (`/run/netconverge/<netns or "host">/`).
//!
//! The observed side of a service is what is on disk plus whether the instance is alive: the
//! configuration file, the static-lease and names files, and the pid file checked against
//! `/proc` (see [`instance`]). The planner compares those files byte for byte with what the
//! desired settings render to, so a hand edit or a dead instance shows up as drift like any
//! other object. A change that touches only the static hosts is applied with a SIGHUP (dnsmasq
//! re-reads `dhcp-hostsfile` and `addn-hosts` on HUP and keeps its leases and sockets);
//! anything else restarts the instance.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::kernel::KernelError;
use crate::model::{MacAddr, State};
use crate::object::ObjectRef;
use crate::plan::{Action, Change, Object, Op};

pub mod config;
pub mod instance;

pub use instance::{apply, observe, Paths, RUN_DIR};

/// The Debian package with the dnsmasq daemon and not its system-wide service (`dnsmasq`
/// would also start one on the host, listening everywhere).
pub const PACKAGE: &str = "dnsmasq-base";

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
    /// The desired service of `bridge`: its files rendered from `settings`, running.
    pub fn new(bridge: impl Into<String>, settings: DhcpSettings) -> DhcpServer {
        let bridge = bridge.into();
        DhcpServer {
            config: config::render_config(&bridge, &settings),
            hosts: config::render_hosts(&settings),
            names: config::render_names(&settings),
            bridge,
            settings,
            running: true,
        }
    }

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
    /// Upstream nameservers for everything outside `domain`.
    pub upstream: Vec<IpAddr>,
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
            upstream: Vec::new(),
            hosts: Vec::new(),
            ipv6: None,
        }
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
    pub fn parse(s: &str) -> Result<Lease, String> {
        let t = s.trim();
        if t == "infinite" {
            return Ok(Lease::Infinite);
        }
        let bad = || {
            format!(
                "lease `{s}` is not a lease time: write a number with a unit s, m, h, d or w (e.g. 12h), or `infinite`"
            )
        };
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
    pub fn from_seconds(secs: u64) -> Result<Lease, String> {
        if secs < u64::from(Lease::MIN_SECONDS) {
            return Err(format!(
                "lease of {secs} s is shorter than dnsmasq's minimum of 2 minutes (2m)"
            ));
        }
        // dnsmasq keeps lease times in 32 bits and reads all-ones as infinite.
        if secs >= u64::from(u32::MAX) {
            return Err(format!(
                "lease of {secs} s is too long; write `infinite` for leases that never expire"
            ));
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

/// Diff the DHCP part of the state: a bridge's service is added, changed (with a note saying
/// whether that is a start, a SIGHUP or a restart) or removed as a whole.
pub fn diff(desired: &State, observed: &State) -> Vec<Change> {
    let mut out = Vec::new();
    for (bridge, d) in &desired.dhcp {
        let before = observed.dhcp.get(bridge);
        if before.is_some_and(|o| o.in_sync(d)) {
            continue;
        }
        out.push(Change {
            action: if before.is_some() {
                Action::Change
            } else {
                Action::Add
            },
            object: ObjectRef::dhcp(bridge),
            before: before.cloned().map(Object::Dhcp),
            after: Some(Object::Dhcp(d.clone())),
            note: Some(match before {
                None => "start dnsmasq".to_string(),
                Some(o) => how(o, d).to_string(),
            }),
            ops: vec![Op::Dhcp(DhcpOp::Apply(d.clone()))],
        });
    }
    for (bridge, o) in &observed.dhcp {
        if desired.dhcp.contains_key(bridge) {
            continue;
        }
        out.push(Change {
            action: Action::Remove,
            object: ObjectRef::dhcp(bridge),
            before: Some(Object::Dhcp(o.clone())),
            after: None,
            note: Some("stop dnsmasq and remove its files".into()),
            ops: vec![Op::Dhcp(DhcpOp::Stop(bridge.clone()))],
        });
    }
    out
}

/// What applying `desired` over `observed` will do to the instance; `instance::apply` makes the
/// same decision from the files on disk.
fn how(observed: &DhcpServer, desired: &DhcpServer) -> &'static str {
    if !observed.running {
        "start: dnsmasq is not running"
    } else if observed.config != desired.config {
        "restart: the configuration changed"
    } else {
        "reload with SIGHUP: only the static hosts changed"
    }
}

/// A failed service operation, for the plan's failure report.
pub(crate) fn error(operation: &str, bridge: &str, hint: impl Into<String>) -> KernelError {
    KernelError::new(operation, format!("dnsmasq for {bridge}"), None).with_hint(hint)
}

/// DHCP services in the table of kinds.
pub struct Dhcp;

/// The DHCP kind.
pub static KIND: Dhcp = Dhcp;

impl crate::kinds::Kind for Dhcp {
    fn kind(&self) -> crate::object::ObjectKind {
        crate::object::ObjectKind::Dhcp
    }

    /// Every dnsmasq in netconverge's state directory is its own.
    fn objects(&self, state: &State) -> Vec<(ObjectRef, bool)> {
        state
            .dhcp
            .keys()
            .map(|b| (ObjectRef::dhcp(b), true))
            .collect()
    }

    fn set_owned(&self, _state: &mut State, _owned: &dyn Fn(&ObjectRef) -> bool) {}

    fn diff(&self, cx: &mut crate::kinds::PlanCx<'_>) -> Vec<Change> {
        diff(cx.desired, cx.observed)
    }
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
        assert!(Lease::parse("90s").unwrap_err().contains("minimum"));
        assert!(Lease::parse("12 hours").is_err());
        assert!(Lease::parse("h").is_err());
        assert!(Lease::parse("").is_err());
        assert!(Lease::parse("99999999999w")
            .unwrap_err()
            .contains("infinite"));
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

    fn server(hosts: &[(&str, &str)], range: (&str, &str)) -> DhcpServer {
        let settings = DhcpSettings {
            ranges: vec![Range4 {
                start: range.0.parse().unwrap(),
                end: range.1.parse().unwrap(),
                subnet: "10.0.0.0/24".parse().unwrap(),
            }],
            router: Some("10.0.0.1".parse().unwrap()),
            hosts: hosts
                .iter()
                .map(|(mac, ip)| StaticHost {
                    mac: mac.parse().unwrap(),
                    ip: Some(ip.parse().unwrap()),
                    name: None,
                })
                .collect(),
            ..DhcpSettings::default()
        };
        DhcpServer::new("br0", settings)
    }

    fn state(d: Option<DhcpServer>) -> State {
        let mut s = State::default();
        if let Some(d) = d {
            s.dhcp.insert(d.bridge.clone(), d);
        }
        s
    }

    #[test]
    fn diff_says_how() {
        let a = server(&[], ("10.0.0.100", "10.0.0.199"));
        let hosts = server(
            &[("52:54:00:00:00:01", "10.0.0.11")],
            ("10.0.0.100", "10.0.0.199"),
        );
        let range = server(&[], ("10.0.0.100", "10.0.0.150"));
        let notes = |d: &DhcpServer, o: Option<DhcpServer>| -> Vec<(Action, String)> {
            diff(&state(Some(d.clone())), &state(o))
                .into_iter()
                .map(|c| (c.action, c.note.unwrap_or_default()))
                .collect()
        };
        assert_eq!(notes(&a, None), [(Action::Add, "start dnsmasq".into())]);
        assert!(notes(&a, Some(a.clone())).is_empty());
        assert_eq!(notes(&hosts, Some(a.clone()))[0].1, how(&a, &hosts));
        assert!(notes(&hosts, Some(a.clone()))[0].1.contains("SIGHUP"));
        assert!(notes(&range, Some(a.clone()))[0].1.starts_with("restart"));
        let dead = DhcpServer {
            running: false,
            ..a.clone()
        };
        assert!(notes(&a, Some(dead))[0].1.starts_with("start"));
        let gone = diff(&state(None), &state(Some(a)));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].action, Action::Remove);
        assert_eq!(gone[0].ops, [Op::Dhcp(DhcpOp::Stop("br0".into()))]);
    }
}
