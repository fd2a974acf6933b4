//! The neighbour table of `RtnlKernel`: RTM_GETNEIGH lookups, and the datagram that makes the
//! kernel resolve a neighbour it has no entry for.
//!
//! The dump goes through the connection's own dump helper rather than rtnetlink's
//! `neighbours().get()`: this connection forwards NLMSG_DONE (so that a lost answer is noticed),
//! which that stream reports as an unexpected message.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::time::Duration;

use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::RtnlKernel;
use crate::error::KernelError;
use crate::model::MacAddr;

/// How often a probed neighbour's entry is looked up again.
pub(super) const POLL: Duration = Duration::from_millis(50);

impl RtnlKernel {
    /// The MAC of `ip` on `dev` from a dump of the neighbour table, if its entry is complete.
    pub(super) async fn lookup_neighbour(
        &self,
        ip: IpAddr,
        dev: &str,
    ) -> Result<Option<MacAddr>, KernelError> {
        let Some(link) = self.get_link(dev).await? else {
            return Ok(None);
        };
        let mut req = NeighbourMessage::default();
        req.header.family = match ip {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        let msgs = self
            .dump("neighbours", RouteNetlinkMessage::GetNeighbour(req))
            .await?;
        Ok(msgs.iter().find_map(|m| match m {
            RouteNetlinkMessage::NewNeighbour(n) => complete_mac(n, link.header.index, ip),
            _ => None,
        }))
    }
}

/// The MAC of a neighbour entry for `ip` on link `index`, when the entry is usable: what
/// `/proc/net/arp` flags ATF_COM (NUD_VALID: reachable, stale, delay, probe, permanent, noarp).
pub(super) fn complete_mac(msg: &NeighbourMessage, index: u32, ip: IpAddr) -> Option<MacAddr> {
    let valid = matches!(
        msg.header.state,
        NeighbourState::Reachable
            | NeighbourState::Stale
            | NeighbourState::Delay
            | NeighbourState::Probe
            | NeighbourState::Permanent
            | NeighbourState::Noarp
    );
    if !valid || msg.header.ifindex != index {
        return None;
    }
    let mut dst = None;
    let mut mac = None;
    for a in &msg.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                dst = Some(IpAddr::V4(*v4))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                dst = Some(IpAddr::V6(*v6))
            }
            NeighbourAttribute::LinkLayerAddress(b) => mac = <[u8; 6]>::try_from(b.as_slice()).ok(),
            _ => {}
        }
    }
    (dst == Some(ip)).then_some(mac.map(MacAddr)).flatten()
}

/// Send `ip` one datagram (to the discard port) so that the kernel asks for its MAC. Best
/// effort and immediate: a UDP send does not wait for the resolution. The socket is made on
/// the calling thread, so in its namespace.
pub(super) fn send_probe(ip: IpAddr) {
    let local = match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    if let Ok(sock) = UdpSocket::bind((local, 0)) {
        let _ = sock.send_to(b"netconverge", (ip, 9));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(state: NeighbourState, index: u32, ip: &str, mac: &[u8]) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.ifindex = index;
        m.header.state = state;
        m.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                ip.parse().unwrap(),
            )));
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        m
    }

    #[test]
    fn only_complete_entries_of_the_link_and_address_count() {
        let gw: IpAddr = "192.168.1.1".parse().unwrap();
        let mac = [0x52, 0x54, 0, 0, 0, 1];
        assert_eq!(
            complete_mac(
                &entry(NeighbourState::Reachable, 3, "192.168.1.1", &mac),
                3,
                gw
            ),
            Some(MacAddr(mac))
        );
        assert_eq!(
            complete_mac(&entry(NeighbourState::Stale, 3, "192.168.1.1", &mac), 3, gw),
            Some(MacAddr(mac))
        );
        for (state, index, ip) in [
            (NeighbourState::Incomplete, 3, "192.168.1.1"),
            (NeighbourState::Failed, 3, "192.168.1.1"),
            (NeighbourState::Reachable, 4, "192.168.1.1"),
            (NeighbourState::Reachable, 3, "192.168.1.2"),
        ] {
            assert_eq!(
                complete_mac(&entry(state, index, ip, &mac), 3, gw),
                None,
                "{state:?} {index} {ip}"
            );
        }
        assert_eq!(
            complete_mac(
                &entry(NeighbourState::Reachable, 3, "192.168.1.1", &[1, 2]),
                3,
                gw
            ),
            None
        );
    }
}
