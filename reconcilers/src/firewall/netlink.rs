//! Which nftables tables exist, asked of the kernel over nfnetlink (`NFT_MSG_GETTABLE`, a
//! dump) instead of running `nft list tables`: every observation asks, and a run of `nft` costs
//! about 5 ms where the dump costs well under one. Listing a table's contents is still
//! `nft`'s (`command.rs`): its text is what the digest covers.
//!
//! Like the other kernel reads this acts in the network namespace of the calling thread.

use netlink_packet_core::{NlasIterator, NLMSG_DONE, NLMSG_ERROR};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use crate::kernel::netlink::raw::{code, messages};

/// `NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETTABLE`.
const GET_TABLE: u16 = (10 << 8) | 1;
/// `NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE`: a table of the dump.
const NEW_TABLE: u16 = 10 << 8;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
/// `NFTA_TABLE_NAME`.
const TABLE_NAME: u16 = 1;
const HEADER: usize = 16;
/// The `nfgenmsg` after the header: family, version, resource id.
const NFGEN: usize = 4;

/// The families (`NFPROTO_*`: 1 inet, 2 ip, 7 bridge, …) that hold a table named `name`, in
/// the order the kernel lists them; `Err(errno)` when the kernel refuses the dump (EPERM
/// without CAP_NET_ADMIN) or the socket cannot be used.
pub(crate) fn families_with_table(name: &str) -> Result<Vec<u8>, i32> {
    let errno = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    let mut socket = Socket::new(NETLINK_NETFILTER).map_err(errno)?;
    socket.bind_auto().map_err(errno)?;
    socket
        .send_to(&request(), &SocketAddr::new(0, 0), 0)
        .map_err(errno)?;
    let mut found = Vec::new();
    loop {
        let (buf, _) = socket.recv_from_full().map_err(errno)?;
        if buf.is_empty() {
            return Err(libc::EIO);
        }
        if parse(&buf, name, &mut found)? {
            return Ok(found);
        }
    }
}

/// The dump request: a netlink header and an `nfgenmsg` for every family.
fn request() -> Vec<u8> {
    let len = (HEADER + NFGEN) as u32;
    let mut m = Vec::with_capacity(len as usize);
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&GET_TABLE.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    m.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel picks
    m.extend_from_slice(&[0, 0, 0, 0]); // AF_UNSPEC, NFNETLINK_V0, res_id 0
    m
}

/// Read the messages of one datagram into `found` (the families of tables named `name`);
/// `Ok(true)` once the dump is done.
fn parse(buf: &[u8], name: &str, found: &mut Vec<u8>) -> Result<bool, i32> {
    for msg in messages(buf) {
        let msg = msg.map_err(|_| libc::EIO)?;
        match msg.kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                return match code(msg.payload) {
                    Some(0) => Ok(true),
                    Some(c) => Err(-c),
                    None => Err(libc::EIO),
                }
            }
            NEW_TABLE if named(msg.payload, name) => found.push(msg.payload[0]),
            _ => {}
        }
    }
    Ok(false)
}

/// A table message's payload (an `nfgenmsg`, then attributes) of the table `name`.
fn named(payload: &[u8], name: &str) -> bool {
    payload.len() >= NFGEN
        && attribute(&payload[NFGEN..], TABLE_NAME)
            .is_some_and(|v| v.split(|b| *b == 0).next() == Some(name.as_bytes()))
}

/// The payload of the first attribute of type `kind` among `attrs` (none past one that is
/// cut short).
fn attribute(attrs: &[u8], kind: u16) -> Option<&[u8]> {
    NlasIterator::new(attrs)
        .map_while(Result::ok)
        .find(|nla| nla.kind() == kind)
        .map(|nla| {
            // The value outlives the attribute's buffer: taken from the bytes it wraps.
            let len = usize::from(nla.length());
            &nla.into_inner()[4..len]
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One message of the dump: a table named `name` of `family` (with another attribute
    /// before its name, as the kernel may send), or the end of the dump.
    fn table(family: u8, name: &str) -> Vec<u8> {
        let mut attrs = Vec::new();
        // NFTA_TABLE_FLAGS (2), a u32, first.
        attrs.extend_from_slice(&8u16.to_ne_bytes());
        attrs.extend_from_slice(&2u16.to_ne_bytes());
        attrs.extend_from_slice(&0u32.to_ne_bytes());
        let value = format!("{name}\0");
        attrs.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        attrs.extend_from_slice(&TABLE_NAME.to_ne_bytes());
        attrs.extend_from_slice(value.as_bytes());
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        message(NEW_TABLE, &[&[family, 0, 0, 0][..], &attrs].concat())
    }

    fn message(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((HEADER + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(payload);
        m
    }

    #[test]
    fn the_families_of_the_tables_named_so_are_found_until_done() {
        let first = [
            table(1, "netconverge"),
            table(2, "netconverge-x"),
            table(2, "other"),
        ]
        .concat();
        let mut found = Vec::new();
        assert_eq!(parse(&first, "netconverge", &mut found), Ok(false));
        let last = [table(7, "netconverge"), message(NLMSG_DONE, &[0; 4])].concat();
        assert_eq!(parse(&last, "netconverge", &mut found), Ok(true));
        assert_eq!(found, [1, 7]);
    }

    #[test]
    fn an_error_answer_is_its_errno() {
        let eperm = message(NLMSG_ERROR, &(-libc::EPERM).to_ne_bytes());
        assert_eq!(
            parse(&eperm, "netconverge", &mut Vec::new()),
            Err(libc::EPERM)
        );
        let truncated = &table(1, "netconverge")[..HEADER + 2];
        assert_eq!(
            parse(truncated, "netconverge", &mut Vec::new()),
            Err(libc::EIO)
        );
    }

    #[test]
    fn the_request_is_a_dump_of_every_family() {
        let r = request();
        assert_eq!(r.len(), 20);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 20);
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), 0x0a01);
        assert_eq!(u16::from_ne_bytes([r[6], r[7]]), 0x301);
        assert_eq!(&r[16..], &[0, 0, 0, 0]);
    }
}
