//! What the providers need beyond routes and rules: the sysctls (forwarding, rp_filter per
//! `route_filter`) and netconverge's nftables tables for `track`, `marks` and `masquerade`.

use std::collections::BTreeMap;

use super::{Provider, Providers};
use crate::model::firewall::{self as fw, Firewall};
use crate::model::{LinkKind, State};

/// `net.ipv4.ip_forward = 1` (providers route for others, and masquerade is for forwarded
/// traffic) and rp_filter on `all` and on each provider interface. The kernel applies the
/// larger of `all` and the interface's value, so both are set.
pub(super) fn sysctls(p: &Providers) -> Vec<(String, String)> {
    let mut out = BTreeMap::new();
    if !p.providers.is_empty() || !p.masquerade.is_empty() {
        out.insert("net.ipv4.ip_forward".to_string(), "1".to_string());
    }
    if !p.providers.is_empty() {
        let v = p.options.route_filter.value().to_string();
        out.insert("net.ipv4.conf.all.rp_filter".into(), v.clone());
        for pr in &p.providers {
            // sysctl(8) writes a dot inside an interface name as `/`.
            let dev = pr.interface.replace('.', "/");
            out.insert(format!("net.ipv4.conf.{dev}.rp_filter"), v.clone());
        }
    }
    out.into_iter().collect()
}

/// The nftables content: connection tracking per provider, marks and masquerade.
pub(super) fn firewall(p: &Providers, base: &State) -> Option<Firewall> {
    // Providers still waiting for their addresses to be detected are not tracked yet.
    let known: Vec<&Provider> = p
        .providers
        .iter()
        .filter(|x| x.addresses().is_some())
        .collect();
    let mut per_interface: BTreeMap<&str, usize> = BTreeMap::new();
    for pr in &known {
        *per_interface.entry(pr.interface.as_str()).or_default() += 1;
    }
    let mut spec = fw::Spec {
        mask: p.options.mask,
        ..fw::Spec::default()
    };
    let mut ordered = known;
    ordered.sort_by_key(|x| x.number);
    for pr in ordered {
        let (true, Some(mark), Some(gateway)) = (pr.track, pr.mark, pr.gateway) else {
            continue;
        };
        spec.track.push(fw::Track {
            provider: pr.name.clone(),
            number: pr.number,
            mark,
            interface: pr.interface.clone(),
            // On an interface shared with another provider, only the gateway's MAC tells
            // whose connection it is.
            gateway: (per_interface[pr.interface.as_str()] > 1).then_some(gateway),
        });
    }
    for m in &p.marks {
        let layer = match m.iif.as_deref().map(|i| base.links.get(i)) {
            None => fw::MarkLayer::Inet,
            Some(None) => fw::MarkLayer::Both,
            Some(Some(l)) if l.master.is_some() && !matches!(l.kind, LinkKind::Bridge(_)) => {
                fw::MarkLayer::Bridge
            }
            Some(Some(_)) => fw::MarkLayer::Inet,
        };
        spec.marks.push(fw::Mark {
            iif: m.iif.clone(),
            from: m.from,
            to: m.to,
            mark: m.mark,
            layer,
        });
    }
    spec.masquerade = p
        .masquerade
        .iter()
        .map(|m| fw::Masq {
            from: m.from,
            out: m.out.clone(),
        })
        .collect();
    (!spec.is_empty()).then(|| crate::firewall::render(&spec))
}
