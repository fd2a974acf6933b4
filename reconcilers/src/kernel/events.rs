//! Kernel change notifications: an rtnetlink multicast subscription (what `ip monitor` sees)
//! for links, addresses, routes and rules of both families.
//!
//! Consumers only learn *that* something changed, not what: they re-observe and re-plan, which
//! is cheap and makes lost or coalesced events harmless (an overrun of the socket buffer is
//! reported as a change too, as trap 9 of the notes requires).

use futures::StreamExt;
use netlink_packet_core::NetlinkPayload;
use netlink_sys::AsyncSocket;
use rtnetlink::MulticastGroup;
use tokio::sync::mpsc;

use crate::error::KernelError;

/// The multicast groups a reconciler cares about.
const GROUPS: &[MulticastGroup] = &[
    MulticastGroup::Link,
    MulticastGroup::Ipv4Ifaddr,
    MulticastGroup::Ipv6Ifaddr,
    MulticastGroup::Ipv4Route,
    MulticastGroup::Ipv6Route,
    MulticastGroup::Ipv4Rule,
    MulticastGroup::Ipv6Rule,
];

/// Subscribe to kernel network changes in the calling thread's namespace. Must be called
/// inside a tokio runtime; every received notification (or overrun) sends one `()` on the
/// returned channel.
pub fn subscribe() -> Result<mpsc::UnboundedReceiver<()>, KernelError> {
    let (mut conn, _handle, mut messages) = rtnetlink::new_multicast_connection(GROUPS)
        .map_err(|e| KernelError::io("subscribe", "to rtnetlink events", e))?;
    // Bursts (a thousand taps deleted at once) must not overflow the socket buffer more than
    // necessary; an overrun still only means "re-dump everything".
    let _ = conn
        .socket_mut()
        .socket_mut()
        .set_rx_buf_sz(4 * 1024 * 1024);
    tokio::spawn(conn);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((msg, _)) = messages.next().await {
            let relevant = matches!(
                msg.payload,
                NetlinkPayload::InnerMessage(_) | NetlinkPayload::Overrun(_)
            );
            if relevant && tx.send(()).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}
