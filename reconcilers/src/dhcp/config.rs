//! The three files of a bridge's dnsmasq, rendered from [`DhcpSettings`], and the settings
//! parsed back from them (for `show`).
//!
//! The configuration holds nothing that depends on where it is kept: the paths of the pid,
//! lease and hosts files go on dnsmasq's command line, so the same settings always render to
//! the same bytes and a plan can compare files as text.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::model::dhcp::{Dhcp6, DhcpSettings, Lease, Range4, Range6, StaticHost, Upstream};

/// The first line of every configuration netconverge writes.
pub const HEADER: &str =
    "# dnsmasq for the guests on one bridge, written by netconverge: edits are overwritten.";

/// The configuration file: dnsmasq bound to `bridge` only, no other configuration and no
/// /etc/hosts, forwarding to the declared upstreams or to the resolvers of a resolv.conf it
/// polls.
pub fn render_config(bridge: &str, s: &DhcpSettings) -> String {
    let mut c = String::new();
    c.push_str(HEADER);
    c.push('\n');
    c.push_str(
        "# It is the only --conf-file of its instance; the pid, lease and hosts files are named\n\
         # on the command line (see /proc/PID/cmdline).\n",
    );
    // Answer on this bridge only, follow its addresses as they come and go, and never bind
    // the wildcard address, so other dnsmasq instances (the host's own, other bridges') can
    // run beside this one.
    let _ = writeln!(c, "interface={bridge}");
    c.push_str("except-interface=lo\nbind-dynamic\n");
    upstream_lines(&mut c, &s.upstream);
    if let Some(d) = &s.domain {
        // Names in the guests' domain are answered here and never forwarded.
        let _ = writeln!(c, "domain={d}\nlocal=/{d}/");
    }
    // The only DHCP server on the bridge: a guest asking for a stale address gets a NAK at once.
    c.push_str("dhcp-authoritative\n");
    for r in &s.ranges {
        let _ = writeln!(
            c,
            "dhcp-range={},{},{},{}",
            r.start,
            r.end,
            r.subnet.netmask(),
            s.lease
        );
    }
    for n in &s.static_subnets {
        let _ = writeln!(
            c,
            "dhcp-range={},static,{},{}",
            n.network(),
            n.netmask(),
            s.lease
        );
    }
    if let Some(r) = s.router {
        let _ = writeln!(c, "dhcp-option=option:router,{r}");
    }
    if let Some(v6) = &s.ipv6 {
        if v6.ra {
            c.push_str("enable-ra\n");
        }
        for r in &v6.ranges {
            let _ = writeln!(
                c,
                "dhcp-range={},{},{},{}",
                r.start,
                r.end,
                r.prefix.prefix_len(),
                s.lease
            );
        }
        for p in &v6.ra_prefixes {
            let _ = writeln!(
                c,
                "dhcp-range={},ra-only,{},{}",
                p.network(),
                p.prefix_len(),
                s.lease
            );
        }
    }
    c
}

/// Names come from our own files only; upstreams from the desired state, or from the
/// resolver file dnsmasq polls (re-read when it changes, so a DHCP client rewriting it on the
/// road is followed without a restart).
fn upstream_lines(c: &mut String, upstream: &Upstream) {
    match upstream.resolv_file() {
        None => c.push_str("no-resolv\n"),
        Some(file) => {
            let _ = writeln!(c, "resolv-file={}", file.display());
        }
    }
    c.push_str("no-hosts\ndomain-needed\n");
    if let Upstream::Servers(list) = upstream {
        for u in list {
            let _ = writeln!(c, "server={u}");
        }
    }
}

/// The static leases, one `MAC[,IP][,NAME]` line per host (dnsmasq's `dhcp-host` syntax).
pub fn render_hosts(s: &DhcpSettings) -> String {
    let mut out = String::new();
    for h in &s.hosts {
        let _ = write!(out, "{}", h.mac);
        if let Some(ip) = h.ip {
            let _ = write!(out, ",{ip}");
        }
        if let Some(n) = &h.name {
            let _ = write!(out, ",{n}");
        }
        out.push('\n');
    }
    out
}

/// The names of static hosts with a fixed address, in hosts(5) format, so they resolve before
/// (and whether or not) the guest asks for its lease.
pub fn render_names(s: &DhcpSettings) -> String {
    let mut out = String::new();
    for h in &s.hosts {
        if let (Some(ip), Some(name)) = (h.ip, &h.name) {
            match &s.domain {
                Some(d) => {
                    let _ = writeln!(out, "{ip} {name}.{d} {name}");
                }
                None => {
                    let _ = writeln!(out, "{ip} {name}");
                }
            }
        }
    }
    out
}

/// The settings a configuration and hosts file say, as far as they are netconverge's own
/// format; lines it does not write are ignored (the file then differs from what any settings
/// render to, which the planner reports as drift).
pub fn parse(config: &str, hosts: &str) -> DhcpSettings {
    let mut s = DhcpSettings::default();
    let mut ra = false;
    let mut v6_ranges = Vec::new();
    let mut ra_prefixes = Vec::new();
    for line in config.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        match key {
            "server" => {
                if let (Upstream::Servers(list), Ok(a)) = (&mut s.upstream, value.parse()) {
                    list.push(a);
                }
            }
            "resolv-file" => s.upstream = Upstream::ResolvFile(value.into()),
            "domain" => s.domain = Some(value.to_string()),
            "enable-ra" => ra = true,
            "dhcp-option" => {
                if let Some(r) = value.strip_prefix("option:router,") {
                    s.router = r.parse().ok();
                }
            }
            "dhcp-range" => dhcp_range(value, &mut s, &mut v6_ranges, &mut ra_prefixes),
            _ => {}
        }
    }
    if ra || !v6_ranges.is_empty() || !ra_prefixes.is_empty() {
        s.ipv6 = Some(Dhcp6 {
            ra,
            ranges: v6_ranges,
            ra_prefixes,
        });
    }
    s.hosts = hosts.lines().filter_map(host).collect();
    s.hosts.sort_by_key(|h| h.mac);
    s
}

/// One `dhcp-range=` line: a static subnet, an RA-only prefix, or an IPv4 or IPv6 pool (its
/// last field is the lease).
fn dhcp_range(
    value: &str,
    s: &mut DhcpSettings,
    v6_ranges: &mut Vec<Range6>,
    ra_prefixes: &mut Vec<Ipv6Net>,
) {
    let f: Vec<&str> = value.split(',').collect();
    if let Some(l) = f.last().and_then(|l| Lease::parse(l).ok()) {
        s.lease = l;
    }
    match f.as_slice() {
        [start, "static", mask, ..] => {
            if let Some(n) = v4_net(start, mask) {
                s.static_subnets.push(n);
            }
        }
        [net, "ra-only", plen, ..] => {
            if let Some(p) = v6_net(net, plen) {
                ra_prefixes.push(p);
            }
        }
        [start, end, mask_or_len, ..] => {
            if let (Ok(a), Ok(b), Some(n)) = (
                start.parse::<Ipv4Addr>(),
                end.parse::<Ipv4Addr>(),
                v4_net(start, mask_or_len),
            ) {
                s.ranges.push(Range4 {
                    start: a,
                    end: b,
                    subnet: n,
                });
            } else if let (Ok(a), Ok(b), Some(p)) = (
                start.parse::<Ipv6Addr>(),
                end.parse::<Ipv6Addr>(),
                v6_net(start, mask_or_len),
            ) {
                v6_ranges.push(Range6 {
                    start: a,
                    end: b,
                    prefix: p,
                });
            }
        }
        _ => {}
    }
}

/// One line of the hosts file: `MAC[,IP][,NAME]`.
fn host(line: &str) -> Option<StaticHost> {
    let mut fields = line.trim().split(',');
    let mac = fields.next().and_then(|m| m.parse().ok())?;
    let mut h = StaticHost {
        mac,
        ip: None,
        name: None,
    };
    for f in fields {
        match f.parse::<Ipv4Addr>() {
            Ok(ip) => h.ip = Some(ip),
            Err(_) => h.name = Some(f.to_string()),
        }
    }
    Some(h)
}

fn v4_net(addr: &str, mask: &str) -> Option<Ipv4Net> {
    let a: Ipv4Addr = addr.parse().ok()?;
    let m: Ipv4Addr = mask.parse().ok()?;
    Ipv4Net::with_netmask(a, m).ok().map(|n| n.trunc())
}

fn v6_net(addr: &str, len: &str) -> Option<Ipv6Net> {
    let a: Ipv6Addr = addr.parse().ok()?;
    Ipv6Net::new(a, len.parse().ok()?).ok().map(|n| n.trunc())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example, with every field set.
    pub(crate) fn example() -> DhcpSettings {
        DhcpSettings {
            ranges: vec![Range4 {
                start: "10.0.0.100".parse().unwrap(),
                end: "10.0.0.199".parse().unwrap(),
                subnet: "10.0.0.0/24".parse().unwrap(),
            }],
            static_subnets: vec!["10.0.1.0/24".parse().unwrap()],
            lease: Lease::Seconds(43_200),
            domain: Some("vm.ursa".into()),
            router: Some("10.0.0.1".parse().unwrap()),
            upstream: Upstream::Servers(vec![
                "192.168.1.1".parse().unwrap(),
                "fd00::53".parse().unwrap(),
            ]),
            hosts: vec![
                StaticHost {
                    mac: "52:54:00:00:00:01".parse().unwrap(),
                    ip: Some("10.0.0.11".parse().unwrap()),
                    name: Some("fedora".into()),
                },
                StaticHost {
                    mac: "52:54:00:00:00:02".parse().unwrap(),
                    ip: None,
                    name: Some("centos".into()),
                },
                StaticHost {
                    mac: "52:54:00:00:00:03".parse().unwrap(),
                    ip: Some("10.0.1.5".parse().unwrap()),
                    name: None,
                },
            ],
            ipv6: Some(Dhcp6 {
                ra: true,
                ranges: vec![Range6 {
                    start: "fd00:10::100".parse().unwrap(),
                    end: "fd00:10::1ff".parse().unwrap(),
                    prefix: "fd00:10::/64".parse().unwrap(),
                }],
                ra_prefixes: vec!["fd00:20::/64".parse().unwrap()],
            }),
        }
    }

    #[test]
    fn renders_the_example() {
        let s = example();
        let c = render_config("br0", &s);
        let body: Vec<&str> = c.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "interface=br0",
                "except-interface=lo",
                "bind-dynamic",
                "no-resolv",
                "no-hosts",
                "domain-needed",
                "server=192.168.1.1",
                "server=fd00::53",
                "domain=vm.ursa",
                "local=/vm.ursa/",
                "dhcp-authoritative",
                "dhcp-range=10.0.0.100,10.0.0.199,255.255.255.0,12h",
                "dhcp-range=10.0.1.0,static,255.255.255.0,12h",
                "dhcp-option=option:router,10.0.0.1",
                "enable-ra",
                "dhcp-range=fd00:10::100,fd00:10::1ff,64,12h",
                "dhcp-range=fd00:20::,ra-only,64,12h",
            ]
        );
        assert_eq!(
            render_hosts(&s),
            "52:54:00:00:00:01,10.0.0.11,fedora\n52:54:00:00:00:02,centos\n52:54:00:00:00:03,10.0.1.5\n"
        );
        assert_eq!(render_names(&s), "10.0.0.11 fedora.vm.ursa fedora\n");
        let bare = DhcpSettings {
            domain: None,
            ..example()
        };
        assert_eq!(render_names(&bare), "10.0.0.11 fedora\n");
    }

    #[test]
    fn parses_back_what_it_renders() {
        let cases = [
            example(),
            DhcpSettings::default(),
            DhcpSettings {
                lease: Lease::Infinite,
                ipv6: Some(Dhcp6 {
                    ra: false,
                    ranges: example().ipv6.unwrap().ranges,
                    ra_prefixes: vec![],
                }),
                ..example()
            },
            DhcpSettings {
                ipv6: Some(Dhcp6 {
                    ra: true,
                    ranges: vec![],
                    ra_prefixes: vec![],
                }),
                ..DhcpSettings::default()
            },
        ];
        for s in cases {
            let back = parse(&render_config("br0", &s), &render_hosts(&s));
            assert_eq!(back, s);
        }
    }

    #[test]
    fn foreign_lines_are_ignored_by_the_parser() {
        let s = parse(
            "interface=br0\nport=0\ndhcp-range=bogus\nserver=not-an-ip\n# x\n",
            "garbage\n52:54:00:00:00:09,vm9\n",
        );
        assert!(s.ranges.is_empty() && s.upstream == Upstream::Servers(Vec::new()));
        assert_eq!(s.hosts.len(), 1);
        assert_eq!(s.hosts[0].name.as_deref(), Some("vm9"));
    }

    /// dnsmasq itself accepts what is rendered (where it is installed; CI installs it).
    #[test]
    fn dnsmasq_accepts_the_configuration() {
        let Some(bin) = crate::dhcp::instance::binary() else {
            eprintln!("skipped: dnsmasq is not installed");
            return;
        };
        let dir = std::env::temp_dir().join(format!("nc-dnsmasq-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in [example(), DhcpSettings::default()].iter().enumerate() {
            let conf = dir.join(format!("{i}.conf"));
            std::fs::write(&conf, render_config("br0", s)).unwrap();
            let hosts = dir.join(format!("{i}.hosts"));
            std::fs::write(&hosts, render_hosts(s)).unwrap();
            let out = std::process::Command::new(&bin)
                .arg("--test")
                .arg(format!("--conf-file={}", conf.display()))
                .arg(format!("--dhcp-hostsfile={}", hosts.display()))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                render_config("br0", s)
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
