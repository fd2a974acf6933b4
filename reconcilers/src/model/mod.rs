//! The one model of network state shared by the desired side (parsed YAML) and the observed
//! side (kernel dumps).
//!
//! Both sides are canonicalised into these types — prefixes normalised, defaults filled, names
//! resolved to ids — so that a diff is a plain comparison per object key. Attributes that the
//! desired state may leave unspecified ("not managed") are `Option`s: `None` on the desired
//! side means "whatever the kernel has", while the observed side always fills them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::MacAddrError;

pub mod address;
pub mod dhcp;
pub mod firewall;
pub mod join;
pub mod link;
pub mod object;
pub mod route;
pub mod rule;

pub use address::{Address, AddressKey};
pub use link::{
    BridgeOpts, Link, LinkKind, MacvlanMode, MacvlanOpts, TapOpts, VethOpts, VxlanOpts,
};
pub use route::{DevName, NextHop, NextHops, Route, RouteKey, RouteType, RoutesBuilder, Scope};
pub use rule::{Rule, RuleAction, RuleKey};

/// The alias (IFLA_IFALIAS) carried by every link netconverge creates; the kernel-side mark of
/// ownership, so no state file is needed.
pub const LINK_ALIAS: &str = "managed-by: netconverge";

/// The link group (IFLA_GROUP) a link netconverge creates over rtnetlink is born in. The
/// kernel ignores an alias in a creation request but honours a group (measured on 6.18, veth
/// peers included), so a link is marked from the moment it exists; the alias is written, and
/// the group reset to 0, right after. A link found in this group without the alias was made by
/// a netconverge that died in between: it is netconverge's, and its alias is written then.
pub const CREATE_GROUP: u32 = 0x6e63_009d;

/// The rtnetlink protocol number netconverge writes on its routes, rules and addresses unless
/// `owner: { protocol: N }` says otherwise. 157 is unused by the kernel's, iproute2's and the
/// common routing daemons' protocol lists (99, often picked, is `openr` in iproute2 6.1).
pub const DEFAULT_PROTOCOL: u8 = 157;

/// The main routing table id.
pub const TABLE_MAIN: u32 = 254;
/// The local routing table id (kernel-managed).
pub const TABLE_LOCAL: u32 = 255;
/// The default routing table id.
pub const TABLE_DEFAULT: u32 = 253;

/// A table as `ip` prints it: `main`, `local` and `default` by name, the others by number.
pub fn table_word(id: u32) -> String {
    match id {
        TABLE_MAIN => "main".into(),
        TABLE_LOCAL => "local".into(),
        TABLE_DEFAULT => "default".into(),
        n => n.to_string(),
    }
}

/// Address family of a route or rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4 (AF_INET).
    Inet,
    /// IPv6 (AF_INET6).
    Inet6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }

    /// The family of a prefix.
    pub fn of_net(net: &IpNet) -> Family {
        Family::of(&net.addr())
    }

    /// The whole address space of this family (`0.0.0.0/0` or `::/0`).
    pub fn any(self) -> IpNet {
        match self {
            Family::Inet => "0.0.0.0/0".parse().expect("valid literal"),
            Family::Inet6 => "::/0".parse().expect("valid literal"),
        }
    }
}

/// A MAC address, written `52:54:00:12:34:56`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MacAddr {
    type Err = MacAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(MacAddrError::Shape(s.to_string()));
        }
        let mut out = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() || p.len() > 2 {
                return Err(MacAddrError::Shape(s.to_string()));
            }
            out[i] = u8::from_str_radix(p, 16).map_err(|source| MacAddrError::Byte {
                input: s.to_string(),
                byte: p.to_string(),
                source,
            })?;
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A user or group as written in the desired state: a name (resolved on the target host) or a
/// number. Observed state always holds `Id`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Ident {
    /// A numeric uid/gid.
    Id(u32),
    /// A user/group name, resolved through the host's passwd/group database.
    Name(String),
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ident::Id(n) => write!(f, "{n}"),
            Ident::Name(s) => f.write_str(s),
        }
    }
}

/// The complete state of one network namespace, as far as netconverge cares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Links by name.
    pub links: BTreeMap<String, Link>,
    /// Addresses by (link, address/prefix).
    pub addresses: BTreeMap<AddressKey, Address>,
    /// Routes by (table, destination, tos, metric).
    pub routes: BTreeMap<RouteKey, Route>,
    /// Policy rules by (priority, selector).
    pub rules: BTreeMap<RuleKey, Rule>,
    /// Sysctls by dotted name (`net.ipv4.ip_forward`), values whitespace-normalised.
    pub sysctls: BTreeMap<String, String>,
    /// netconverge's nftables table(s), if any.
    pub firewall: Option<firewall::Firewall>,
    /// DHCP/DNS services by bridge name.
    pub dhcp: BTreeMap<String, dhcp::DhcpServer>,
    /// Desired side only: where generated objects came from, by `"<kind> <id>"` (e.g.
    /// `"route default via 192.168.1.1 dev eth0 table 1"` → `"provider wrt"`), so plans can
    /// label them. Never compared.
    pub origins: BTreeMap<object::ObjectRef, String>,
}

impl State {
    /// Insert a link under its name.
    pub fn add_link(&mut self, link: Link) {
        self.links.insert(link.name.clone(), link);
    }
    /// Insert an address under its key.
    pub fn add_address(&mut self, addr: Address) {
        self.addresses.insert(addr.key(), addr);
    }
    /// Insert a route under its key.
    pub fn add_route(&mut self, route: Route) {
        self.routes.insert(route.key(), route);
    }
    /// Insert a rule under its key.
    pub fn add_rule(&mut self, rule: Rule) {
        self.rules.insert(rule.key(), rule);
    }
}

/// Normalise a sysctl value the way the kernel prints it back (fields separated by single
/// spaces), so that `"32768\t60999"` and `"32768 60999"` compare equal.
pub fn normalize_sysctl_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_parse_or_say_why_not() {
        let m: MacAddr = "52:54:00:0a:Bc:ff".parse().unwrap();
        assert_eq!(m.to_string(), "52:54:00:0a:bc:ff");
        assert_eq!("52-54-00-0a-bc-ff".parse::<MacAddr>(), Ok(m));
        assert_eq!(
            "52:54:00".parse::<MacAddr>(),
            Err(MacAddrError::Shape("52:54:00".into()))
        );
        let e = "52:54:00:0a:bc:zz".parse::<MacAddr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "`52:54:00:0a:bc:zz` is not a MAC address: `zz` is not a hex byte"
        );
        assert!(std::error::Error::source(&e).is_some());
    }
}
