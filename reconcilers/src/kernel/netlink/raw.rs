//! Dumps read as bytes, on a socket of their own: the messages are walked in the receive
//! buffer and handed to the caller undecoded, so each kind decodes only the attributes it
//! reads. Through the shared connection every attribute of every message is decoded into
//! owned values first — a link's sixty IPv6 settings, a bridge port's forty options — which
//! was most of a no-op's time (1,000 taps: 28 ms for the link dump, of which the kernel's part
//! is 3.7 ms, measured with a bare socket).

use netlink_packet_core::{
    DecodeError, NetlinkBuffer, NetlinkMessage, NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN, NLM_F_DUMP,
    NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, TokioSocket};

use crate::error::KernelError;

/// Receive buffer of one `recv`: larger than any dump chunk the kernel sends (32 KiB), so no
/// message is cut.
const RECV_BUFFER: usize = 256 * 1024;

/// How one attempt at a dump ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Ended {
    /// Every message was read, and the kernel did not flag the dump as interrupted.
    Whole,
    /// The table changed while it was read (NLM_F_DUMP_INTR): what was read may be
    /// inconsistent, and the dump is to be done again.
    Interrupted,
}

/// Send `request` as a dump on a fresh socket (in the calling thread's namespace) and call
/// `each(message_type, payload)` for every message of the answer.
pub(super) async fn dump(
    what: &str,
    request: RouteNetlinkMessage,
    mut each: impl FnMut(u16, &[u8]),
) -> Result<Ended, KernelError> {
    let err = |errno: Option<i32>, hint: &str| {
        KernelError::new("dump", what, errno).with_hint(hint.to_string())
    };
    let mut socket =
        TokioSocket::new(NETLINK_ROUTE).map_err(|e| KernelError::io("dump", what, e))?;
    // Best effort, as for the shared connection.
    let _ = socket.socket_mut().set_rx_buf_sz(super::RX_BUFFER);
    let mut req = NetlinkMessage::from(request);
    req.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.header.sequence_number = 1;
    req.finalize();
    let mut bytes = vec![0; req.buffer_len()];
    req.serialize(&mut bytes);
    socket
        .send(&bytes)
        .await
        .map_err(|e| KernelError::io("dump", what, e))?;
    let mut buf = Vec::with_capacity(RECV_BUFFER);
    let mut interrupted = false;
    loop {
        buf.clear();
        socket.recv(&mut buf).await.map_err(|e| {
            let e = KernelError::io("dump", what, e);
            match e.errno {
                Some(libc::ENOBUFS) => e.with_hint("netlink receive buffer overrun"),
                _ => e,
            }
        })?;
        for msg in messages(&buf) {
            let msg = msg.map_err(|e| err(None, &format!("undecodable answer: {e}")))?;
            interrupted |= msg.flags & NLM_F_DUMP_INTR != 0;
            let code = || code(msg.payload).ok_or_else(|| err(None, "a cut-short answer"));
            match msg.kind {
                NLMSG_DONE => {
                    return match code()? {
                        0 if interrupted => Ok(Ended::Interrupted),
                        0 => Ok(Ended::Whole),
                        c => Err(err(Some(-c), "the kernel aborted the dump")),
                    };
                }
                // An acknowledgement (code 0) ends the answer too, as on the shared connection.
                NLMSG_ERROR => {
                    let errno = match code()? {
                        0 if interrupted => return Ok(Ended::Interrupted),
                        0 => return Ok(Ended::Whole),
                        c => -c,
                    };
                    let hint = if errno == libc::EPERM {
                        "needs CAP_NET_ADMIN (run as root)"
                    } else {
                        "the kernel refused the dump"
                    };
                    return Err(err(Some(errno), hint));
                }
                NLMSG_OVERRUN => {
                    return Err(err(Some(libc::ENOBUFS), "netlink receive buffer overrun"))
                }
                t => each(t, msg.payload),
            }
        }
    }
}

/// One message of a netlink datagram.
pub(crate) struct Message<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// What follows the header.
    pub payload: &'a [u8],
}

/// The messages of one netlink datagram, in order (each 4-byte aligned): the one walk of a
/// receive buffer, for every netlink family read as bytes (rtnetlink here, nfnetlink in
/// `firewall::netlink`). A message whose length does not fit the datagram is an `Err`, and
/// the last item.
pub(crate) fn messages(buf: &[u8]) -> impl Iterator<Item = Result<Message<'_>, DecodeError>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let rest = buf.get(at..).filter(|r| !r.is_empty())?;
        match NetlinkBuffer::new_checked(rest) {
            Ok(msg) => {
                at += (msg.length() as usize).next_multiple_of(4);
                Some(Ok(Message {
                    kind: msg.message_type(),
                    flags: msg.flags(),
                    payload: msg.payload(),
                }))
            }
            Err(e) => {
                at = buf.len();
                Some(Err(e))
            }
        }
    })
}

/// The `int` that opens an NLMSG_DONE or NLMSG_ERROR payload (`None` when it is cut short).
pub(crate) fn code(payload: &[u8]) -> Option<i32> {
    payload
        .get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_done_or_error_code_is_read_in_host_order_and_a_short_one_is_none() {
        assert_eq!(code(&(-1i32).to_ne_bytes()), Some(-1));
        assert_eq!(code(&[0, 0, 0, 0, 9, 9]), Some(0));
        assert_eq!(code(&(-libc::EPERM).to_ne_bytes()), Some(-libc::EPERM));
        assert_eq!(code(&[1, 2]), None);
    }

    fn message(kind: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(16 + payload.len()).expect("small");
        let mut m = [
            &len.to_ne_bytes()[..],
            &kind.to_ne_bytes(),
            &flags.to_ne_bytes(),
        ]
        .concat();
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(payload);
        m.resize(m.len().next_multiple_of(4), 0);
        m
    }

    /// Each message with its type, flags and payload, over the padding between them; one
    /// that runs past the datagram is an error and the end.
    #[test]
    fn a_datagram_is_walked_message_by_message() {
        let buf = [message(16, 2, &[1, 2, 3]), message(3, 16, &[0; 4])].concat();
        let got: Vec<(u16, u16, Vec<u8>)> = messages(&buf)
            .map(|m| m.map(|m| (m.kind, m.flags, m.payload.to_vec())).unwrap())
            .collect();
        assert_eq!(got, [(16, 2, vec![1, 2, 3]), (3, 16, vec![0; 4])]);
        // The second message (at 20, 20 bytes long) cut at 30.
        let walked: Vec<bool> = messages(&buf[..30]).map(|m| m.is_ok()).collect();
        assert_eq!(walked, [true, false]);
        assert_eq!(messages(&[]).count(), 0);
    }
}
