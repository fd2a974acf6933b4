//! The firewall: the data types of netconverge's nftables tables (desired and observed), the
//! writes to them, and the packet handling that providers, marks and masquerade ask for.
//!
//! Rendering, diffing and talking to nft are in `crate::firewall`; this module only says what the
//! values are.

use std::net::Ipv4Addr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// How the tables are named in plans (`+ add firewall inet netconverge`) and in
/// `State::origins` keys.
pub const ID: &str = "inet netconverge";

/// The desired or observed content of netconverge's nftables tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firewall {
    /// Desired: the ruleset netconverge loads (gateway sets empty). Observed: what `nft list`
    /// prints for the tables.
    pub ruleset: String,
    /// Desired: the digest of `ruleset`. Observed: the desired digest recorded in the table's
    /// comment when it was loaded.
    pub digest: String,
    /// Observed: why the tables do not (or may not) hold what was loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

/// Why observed tables cannot be taken as what netconverge loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Problem {
    /// The tables could not be read (no privileges); they are not compared.
    Unreadable(String),
    /// The tables were changed after netconverge loaded them, or a gateway's MAC changed.
    Modified(String),
}

impl Firewall {
    /// A desired firewall with this ruleset.
    pub fn new(ruleset: String) -> Firewall {
        Firewall {
            digest: digest(&ruleset),
            ruleset,
            problem: None,
        }
    }
}

/// A write to netconverge's nftables tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirewallOp {
    /// Replace the tables with this content, atomically.
    Replace(Firewall),
    /// Delete the tables.
    Delete,
}

/// The packet handling the provider sections ask for, rendered by `crate::firewall::render`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spec {
    /// The bits of the mark that select a provider.
    pub mask: u32,
    /// Providers whose connections are tracked.
    pub track: Vec<Track>,
    /// Marks set on matching packets.
    pub marks: Vec<Mark>,
    /// Source NAT to the outgoing interface's address.
    pub masquerade: Vec<Masq>,
}

impl Spec {
    /// True when nothing needs netfilter.
    pub fn is_empty(&self) -> bool {
        self.track.is_empty() && self.marks.is_empty() && self.masquerade.is_empty()
    }
}

/// `track` of one provider: new connections arriving through it get its mark, saved in the
/// connection so that every later packet of it (replies included) routes through it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    /// The provider's name (for comments).
    pub provider: String,
    /// The provider's number (names the gateway set).
    pub number: u32,
    /// Its mark.
    pub mark: u32,
    /// Its interface.
    pub interface: String,
    /// On an interface shared with other providers: the gateway, whose MAC identifies the
    /// provider's packets.
    pub gateway: Option<Ipv4Addr>,
}

/// Where a mark rule must run to see its input interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkLayer {
    /// In the inet table: the interface is not a bridge port.
    Inet,
    /// In the bridge table: the interface is a bridge port, which the IP layer never sees
    /// (it sees the bridge); the mark set at bridge prerouting survives into IP routing.
    Bridge,
    /// Both: the interface is not declared, so it may or may not be a bridge port (a rule in
    /// the wrong table never matches).
    Both,
}

/// A mark rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Input interface.
    pub iif: Option<String>,
    /// Source prefix.
    pub from: Option<IpNet>,
    /// Destination prefix.
    pub to: Option<IpNet>,
    /// The mark.
    pub mark: u32,
    /// Which table(s) the rule goes into.
    pub layer: MarkLayer,
}

/// A masquerade rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Masq {
    /// Source prefix (IPv4 only when `None`).
    pub from: Option<IpNet>,
    /// Outgoing interface.
    pub out: String,
}

/// 64-bit FNV-1a as hex. Change detection, not security: whoever can edit the tables can
/// edit the comment too. Stable across Rust versions, unlike `DefaultHasher`.
pub(crate) fn digest(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}
