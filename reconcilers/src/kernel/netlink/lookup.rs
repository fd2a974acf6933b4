//! The kernel's route lookup (`ip route get ADDR fibmatch`): which route of which table the
//! kernel would use for a destination, rules included. Read-only; used to tell which planned
//! changes could cut the SSH session a plan is applied over.

use futures::stream::StreamExt;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteFlags, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::IpAddr;

use super::RtnlKernel;
use crate::error::KernelError;
use crate::links::netlink as links;
use crate::model::Route;
use crate::routes;

impl RtnlKernel {
    /// The route the kernel matches for packets to `dst` (RTM_GETROUTE with RTM_F_FIB_MATCH:
    /// the FIB entry itself, with its prefix and table, not the /32 it resolves to); `None`
    /// when the destination is unreachable.
    pub(super) async fn lookup_route(&self, dst: IpAddr) -> Result<Option<Route>, KernelError> {
        let object = format!("route to {dst}");
        let mut msg = RouteMessage::default();
        let (family, len, address) = match dst {
            IpAddr::V4(a) => (AddressFamily::Inet, 32, RouteAddress::Inet(a)),
            IpAddr::V6(a) => (AddressFamily::Inet6, 128, RouteAddress::Inet6(a)),
        };
        msg.header.address_family = family;
        msg.header.destination_prefix_length = len;
        msg.header.flags = RouteFlags::FibMatch;
        msg.attributes.push(RouteAttribute::Destination(address));
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetRoute(msg));
        req.header.flags = NLM_F_REQUEST;
        let mut answers = self.handle.clone().request(req).map_err(|e| {
            KernelError::new("look up", &object, None)
                .with_hint(format!("netlink connection closed ({e})"))
        })?;
        while let Some(answer) = answers.next().await {
            match answer.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => {
                    let names = links::names_by_index(&self.dump_links().await?);
                    return Ok(routes::netlink::parse_route(&r, &names, self.protocol));
                }
                NetlinkPayload::Error(e) => match e.code.map(|c| -c.get()) {
                    Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ESRCH) => return Ok(None),
                    Some(errno) => return Err(KernelError::new("look up", &object, Some(errno))),
                    None => {}
                },
                _ => {}
            }
        }
        Err(KernelError::new("look up", object, None)
            .with_hint("no answer (netlink connection lost)"))
    }
}
