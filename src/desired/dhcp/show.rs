//! Writing `dhcp:` back: the section for `show`, and a service's files for the plan's diff.

use std::fmt::Write as _;

use reconcilers::model::dhcp::DhcpServer;
use reconcilers::model::State;

use crate::desired::yaml::{quote, scalar};

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
        super::dns::render(&mut s, &st.upstream);
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
