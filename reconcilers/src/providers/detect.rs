//! `local: detect` and `gateway: detect` (Shorewall's word): the addresses of a provider
//! whose interface someone else configures — a DHCP client — read from the observed state
//! before planning.
//!
//! - The gateway is the one of the default route the client installed in main through the
//!   interface: a route in main to `0.0.0.0/0` that is not netconverge's (protocol 157 marks
//!   netconverge's own, and its balanced default of such providers lives in table 250 anyway),
//!   with a nexthop through the interface; of several, the lowest metric.
//! - The local address is the interface's primary IPv4 address of global scope (not
//!   IFA_F_SECONDARY, not link-scope like avahi-autoipd's 169.254/16) that is not
//!   netconverge's (a declared address on the same interface never counts): the one whose
//!   subnet holds the gateway (the longest prefix), else the lowest, which covers a /32
//!   lease with an on-link gateway.
//!
//! Until both are known the provider is unavailable: it makes nothing (see
//! [`super::generate::generate_held`]) and a warning says what is missing.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use super::Providers;
use crate::model::{RouteType, State, TABLE_MAIN};

/// What a provider with `detect` still lacks on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    /// The provider.
    pub provider: String,
    /// Its interface.
    pub interface: String,
    /// No address to be its `local` yet.
    pub local: bool,
    /// No default route through the interface to take the gateway from yet.
    pub gateway: bool,
}

impl Missing {
    /// The warning a pass gives: what is missing, and that the provider waits for it.
    pub fn warning(&self) -> String {
        let i = &self.interface;
        let mut what = Vec::new();
        if self.local {
            what.push(format!("no IPv4 address on {i} yet (local: detect)"));
        }
        if self.gateway {
            what.push(format!(
                "no default route through {i} in main yet (gateway: detect)"
            ));
        }
        format!(
            "provider {} is unavailable: {}; it is left out until the interface's DHCP client (or whoever configures {i}) provides it",
            self.provider,
            what.join(" and ")
        )
    }
}

/// The providers of `declared` with what `observed` shows for their `detect` addresses filled
/// in (a declared address is kept as it is), and what each provider still lacks.
pub fn resolve(declared: &Providers, observed: &State) -> (Providers, Vec<Missing>) {
    let mut now = declared.clone();
    let mut missing = Vec::new();
    for p in &mut now.providers {
        if p.gateway.is_none() {
            p.gateway = gateway_of(&p.interface, observed);
        }
        if p.local.is_none() {
            p.local = local_of(&p.interface, p.gateway, observed);
        }
        if p.addresses().is_none() {
            missing.push(Missing {
                provider: p.name.clone(),
                interface: p.interface.clone(),
                local: p.local.is_none(),
                gateway: p.gateway.is_none(),
            });
        }
    }
    (now, missing)
}

/// The gateway of the lowest-metric default route in main through `interface` that is not
/// netconverge's own.
pub fn gateway_of(interface: &str, observed: &State) -> Option<Ipv4Addr> {
    observed
        .routes
        .values()
        .filter(|r| {
            r.table == TABLE_MAIN
                && !r.owned
                && r.kind == RouteType::Unicast
                && r.tos == 0
                && r.to == IpNet::V4(Default::default())
        })
        .flat_map(|r| r.nexthops.iter().map(move |h| (r.metric, h)))
        .filter(|(_, h)| h.dev.as_deref() == Some(interface))
        .filter_map(|(metric, h)| match h.via {
            Some(IpAddr::V4(g)) => Some((metric, g)),
            _ => None,
        })
        .min()
        .map(|(_, g)| g)
}

/// The primary global IPv4 address of `interface` that is not netconverge's: the one whose
/// subnet holds `gateway` with the longest prefix, else the lowest.
pub fn local_of(interface: &str, gateway: Option<Ipv4Addr>, observed: &State) -> Option<Ipv4Addr> {
    let candidates = observed
        .addresses
        .values()
        .filter(|a| a.link == interface && a.primary && !a.owned)
        .filter_map(|a| match a.address {
            IpNet::V4(n) => Some(n),
            IpNet::V6(_) => None,
        });
    candidates
        .map(|n| {
            let covers = gateway.is_some_and(|g| n.contains(&g));
            // Covering first, then the longer prefix, then the lower address.
            (!covers, u8::MAX - n.prefix_len(), n.addr())
        })
        .min()
        .map(|(_, _, a)| a)
}
