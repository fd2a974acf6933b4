//! Dumps read as bytes, on a socket of their own: the messages are walked in the receive
//! buffer and handed to the caller undecoded, so each kind decodes only the attributes it
//! reads. Through the shared connection every attribute of every message is decoded into
//! owned values first — a link's sixty IPv6 settings, a bridge port's forty options — which
//! was most of a no-op's time (1,000 taps: 28 ms for the link dump, of which the kernel's part
//! is 3.7 ms, measured with a bare socket).

use netlink_packet_core::{
    NetlinkBuffer, NetlinkMessage, NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN, NLM_F_DUMP,
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
        let mut at = 0;
        while at < buf.len() {
            let msg = NetlinkBuffer::new_checked(&buf[at..])
                .map_err(|e| err(None, &format!("undecodable answer: {e}")))?;
            interrupted |= msg.flags() & NLM_F_DUMP_INTR != 0;
            let payload = msg.payload();
            match msg.message_type() {
                NLMSG_DONE => {
                    return match code(payload) {
                        0 => Ok(if interrupted {
                            Ended::Interrupted
                        } else {
                            Ended::Whole
                        }),
                        c => Err(err(Some(-c), "the kernel aborted the dump")),
                    };
                }
                NLMSG_ERROR => {
                    let errno = -code(payload);
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
                t => each(t, payload),
            }
            // Messages are 4-byte aligned in a datagram.
            at += (msg.length() as usize).next_multiple_of(4);
        }
    }
}

/// The `int` that opens an NLMSG_DONE or NLMSG_ERROR payload (0 when it is cut short).
fn code(payload: &[u8]) -> i32 {
    payload
        .get(..4)
        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_done_or_error_code_is_read_in_host_order_and_a_short_one_is_zero() {
        assert_eq!(code(&(-1i32).to_ne_bytes()), -1);
        assert_eq!(code(&[0, 0, 0, 0, 9, 9]), 0);
        assert_eq!(code(&(-libc::EPERM).to_ne_bytes()), -libc::EPERM);
        assert_eq!(code(&[1, 2]), 0);
    }
}
