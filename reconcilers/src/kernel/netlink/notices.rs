//! The route cache's subscription: a multicast socket of its own for IPv4 route notices and
//! for what removes IPv4 routes without one (link, IPv4 address and nexthop changes), read
//! without waiting when an observation starts (see `routes::cache`).
//!
//! The kernel queues a notice on every subscribed socket within the system call that made the
//! change, before that call's acknowledgement; so once a write of ours is acknowledged, or the
//! watcher's own event socket has woken it, the notice is already here to be read.

use netlink_sys::{protocols::NETLINK_ROUTE, Socket};

use super::raw;
use crate::links::netlink::NameByIndex;
use crate::routes::cache::{Notice, RouteCache};
use crate::routes::netlink::decode_route;

/// The groups: links, IPv4 addresses, IPv4 routes, nexthop objects.
const GROUPS: [u32; 4] = [
    libc::RTNLGRP_LINK,
    libc::RTNLGRP_IPV4_IFADDR,
    libc::RTNLGRP_IPV4_ROUTE,
    libc::RTNLGRP_NEXTHOP,
];

/// The subscription.
#[derive(Debug)]
pub(super) struct Notices {
    socket: Socket,
    buf: Vec<u8>,
}

impl Notices {
    /// Subscribe in the calling thread's network namespace.
    pub fn open() -> std::io::Result<Notices> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        for group in GROUPS {
            socket.add_membership(group)?;
        }
        socket.set_non_blocking(true)?;
        // The connection's buffer, best effort: a burst of a thousand changes fits, and a
        // smaller buffer overruns sooner, which only costs full dumps.
        let _ = socket.set_rx_buf_sz(super::RX_BUFFER);
        Ok(Notices {
            socket,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Read every notice queued and apply it to `cache` (route names of links by `names`, ours
    /// by `protocol`); anything else that arrived makes the view unknown.
    pub fn drain(&mut self, cache: &mut RouteCache, names: &NameByIndex, protocol: u8) {
        loop {
            self.buf.clear();
            match self.socket.recv(&mut self.buf, 0) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // ENOBUFS: notices were lost. Reading on gets the ones after.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    cache.forget();
                    continue;
                }
                Err(e) => {
                    tracing::debug!("route notices unreadable ({e}); dumping the routes");
                    cache.forget();
                    return;
                }
            }
            // Unknown, the view has nothing to keep current: the datagram is only read away.
            if cache.routes().is_none() {
                continue;
            }
            for msg in raw::messages(&self.buf) {
                match msg {
                    Ok(m) => cache.apply(notice(m.kind, m.flags, m.payload, names, protocol)),
                    Err(_) => cache.forget(),
                }
            }
        }
    }

    /// What is queued, without reading it.
    pub fn queued(&self) -> Queued {
        let mut byte = Vec::with_capacity(1);
        let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
        match self.socket.recv(&mut byte, flags) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Queued::Nothing,
            // An overrun, or the socket failing: either way the view cannot be trusted.
            Err(_) => Queued::Overrun,
            Ok(_) => Queued::Notices,
        }
    }
}

/// What [`Notices::queued`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Queued {
    Nothing,
    /// Notices, which the next `drain` applies.
    Notices,
    /// An overrun (or an error). The kernel reports it once, and the peek took it: the next
    /// `drain` will not see it, so the caller makes the view unknown itself.
    Overrun,
}

/// What one message of the subscription says: an IPv4 route notice, or (any other kind, or a
/// message that does not decode) [`Notice::Unclear`].
fn notice(kind: u16, flags: u16, payload: &[u8], names: &NameByIndex, protocol: u8) -> Notice {
    let ipv4 = payload.first() == Some(&(libc::AF_INET as u8));
    if !ipv4 || !matches!(kind, libc::RTM_NEWROUTE | libc::RTM_DELROUTE) {
        return Notice::Unclear;
    }
    match decode_route(payload, names, protocol) {
        Ok(route) if kind == libc::RTM_NEWROUTE => Notice::New(route, flags),
        Ok(route) => Notice::Deleted(route),
        Err(_) => Notice::Unclear,
    }
}
