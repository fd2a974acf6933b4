//! What Shorewall reads from the running host when it starts and the import must read too:
//! an interface's addresses (a provider's local address, `duplicate`'s subnets, masq
//! sources by interface) and the gateway of its default route (`GATEWAY detect`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use reconcilers::model::State;

/// The host's IPv4 addresses and default gateways, by interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// IPv4 addresses with their prefixes, by interface.
    pub addresses: BTreeMap<String, Vec<Ipv4Net>>,
    /// The gateway of a default route in main, by the interface it goes through.
    pub gateways: BTreeMap<String, Ipv4Addr>,
}

impl HostFacts {
    /// From an observed state (`Kernel::observe`).
    pub fn from_state(s: &State) -> HostFacts {
        let mut h = HostFacts::default();
        for a in s.addresses.values() {
            if let IpNet::V4(n) = a.address {
                h.addresses.entry(a.link.clone()).or_default().push(n);
            }
        }
        for r in s.routes.values() {
            if r.table != reconcilers::model::TABLE_MAIN || r.to.prefix_len() != 0 {
                continue;
            }
            for nh in &r.nexthops {
                if let (Some(IpAddr::V4(g)), Some(dev)) = (nh.via, nh.dev.as_ref()) {
                    h.gateways.entry(dev.to_string()).or_insert(g);
                }
            }
        }
        h
    }
}
