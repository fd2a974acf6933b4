//! Sending one probe: an ICMP echo through a provider's own path. This is the health
//! checks' only side effect, behind the [`Prober`] trait so that the state machine and the
//! daemon are tested with a fake on tokio's paused clock.
//!
//! The real prober opens a raw ICMP socket (CAP_NET_RAW, which `watch` has as root and the
//! service unit grants) in the reconciled namespace, marks it with the provider's mark
//! (`SO_MARK`: the fwmark rule sends it to the provider's table), binds it to the provider's
//! interface (`SO_BINDTODEVICE`: the rule of a provider held down matches only such sockets)
//! and to its local address, and waits for the matching echo reply. A raw socket rather than
//! an ICMP datagram socket: those need `net.ipv4.ping_group_range`, empty in a new namespace.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The path a provider's probes take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    /// The provider's mark (`SO_MARK`).
    pub mark: u32,
    /// Its interface (`SO_BINDTODEVICE`).
    pub interface: String,
    /// Its local address (the source).
    pub local: Ipv4Addr,
}

/// Why a probe got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No echo reply within the timeout.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The socket could not be made or used.
    #[error("{what}: {source}")]
    Socket {
        /// The step that failed.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Sends one probe and says how long its answer took.
pub trait Prober: Send + Sync {
    /// Probe `target` through `path`, waiting at most `timeout`.
    fn probe(
        &self,
        path: &Path,
        target: Ipv4Addr,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Duration, ProbeError>>;
}

/// ICMP echo over a raw socket in the namespace `netns` (the caller's when `None`).
pub struct IcmpProber {
    /// The namespace probed, as `watch --netns` names it.
    pub netns: Option<String>,
}

/// Identifiers of our echo requests: one per probe, so that concurrent probes (two providers
/// on one interface reach the same target) never take each other's replies.
static NEXT_ID: AtomicU16 = AtomicU16::new(0);

impl Prober for IcmpProber {
    fn probe(
        &self,
        path: &Path,
        target: Ipv4Addr,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Duration, ProbeError>> {
        let (path, netns) = (path.clone(), self.netns.clone());
        let id = NEXT_ID
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(std::process::id() as u16);
        Box::pin(async move {
            // The socket must be made inside the namespace, on a thread that entered it; the
            // probe blocks that thread only.
            let run = move || {
                reconcilers::kernel::netns::run_in_netns(netns.as_deref(), move || async move {
                    echo(&path, target, timeout, id)
                })
            };
            match tokio::task::spawn_blocking(run).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => Err(ProbeError::Socket {
                    what: "enter the namespace",
                    source: std::io::Error::other(e.to_string()),
                }),
                Err(e) => Err(ProbeError::Socket {
                    what: "probe thread",
                    source: std::io::Error::other(e.to_string()),
                }),
            }
        })
    }
}

fn step(what: &'static str) -> impl Fn(std::io::Error) -> ProbeError {
    move |source| ProbeError::Socket { what, source }
}

/// One echo request and the wait for its reply, blocking.
fn echo(path: &Path, target: Ipv4Addr, timeout: Duration, id: u16) -> Result<Duration, ProbeError> {
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
        .map_err(step("open a raw ICMP socket"))?;
    s.set_mark(path.mark).map_err(step("SO_MARK"))?;
    s.bind_device(Some(path.interface.as_bytes()))
        .map_err(step("SO_BINDTODEVICE"))?;
    s.bind(&SockAddr::from(SocketAddrV4::new(path.local, 0)))
        .map_err(step("bind the local address"))?;
    let start = Instant::now();
    let to = SockAddr::from(SocketAddr::V4(SocketAddrV4::new(target, 0)));
    s.send_to(&echo_request(id, 1), &to)
        .map_err(step("send the echo request"))?;
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1500];
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(ProbeError::Timeout(timeout));
        }
        s.set_read_timeout(Some(left))
            .map_err(step("SO_RCVTIMEO"))?;
        let (n, from) = match s.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ProbeError::Timeout(timeout))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(step("receive")(e)),
        };
        // SAFETY: recv_from initialised the first n bytes.
        let bytes: Vec<u8> = buf[..n]
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect();
        let from_target = from.as_socket_ipv4().is_some_and(|a| *a.ip() == target);
        if from_target && is_reply(&bytes, id) {
            return Ok(start.elapsed());
        }
    }
}

/// An ICMP echo request (type 8) with identifier `id` and sequence `seq`, checksummed.
pub fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![8, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"netconverge health");
    let sum = checksum(&p);
    p[2..4].copy_from_slice(&sum.to_be_bytes());
    p
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether an IPv4 packet (as a raw socket receives it, header included) is the echo reply
/// (type 0) to our request `id`.
pub fn is_reply(packet: &[u8], id: u16) -> bool {
    let Some(first) = packet.first() else {
        return false;
    };
    let ihl = usize::from(first & 0x0f) * 4;
    match packet.get(ihl..ihl + 8) {
        Some(icmp) => icmp[0] == 0 && icmp[4..6] == id.to_be_bytes(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_request_checksums_to_zero() {
        let p = echo_request(0x1234, 1);
        assert_eq!(&p[..2], &[8, 0]);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 1]);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to 0xffff");
    }

    #[test]
    fn only_an_echo_reply_with_our_identifier_is_ours() {
        let mut ip = vec![0x45u8];
        ip.resize(20, 0);
        let reply = |ty: u8, id: u16| {
            let mut p = ip.clone();
            p.extend_from_slice(&[ty, 0, 0, 0]);
            p.extend_from_slice(&id.to_be_bytes());
            p.extend_from_slice(&[0, 1]);
            p
        };
        assert!(is_reply(&reply(0, 7), 7));
        assert!(!is_reply(&reply(0, 8), 7), "another probe's reply");
        assert!(!is_reply(&reply(8, 7), 7), "a request");
        assert!(!is_reply(&reply(0, 7)[..24], 7), "truncated");
        assert!(!is_reply(&[], 7));
    }
}
