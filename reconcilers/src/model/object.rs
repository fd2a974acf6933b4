//! Object identities: an object's kind and its id within the kind, the one way plans, origins,
//! `managed:` ids, errors and logs name objects. The words of each kind's ids are the kind's
//! own (`crate::object` builds them); here is only what an identity is.

use std::fmt;

use serde::Serialize;

/// The kind of object a change is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// A network interface (including its bridge port membership).
    Link,
    /// An interface address.
    Address,
    /// A route.
    Route,
    /// A policy rule.
    Rule,
    /// A sysctl.
    Sysctl,
    /// netconverge's nftables table(s).
    Firewall,
    /// A bridge's DHCP/DNS service (dnsmasq).
    Dhcp,
}

impl ObjectKind {
    /// The word used in plans and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Link => "link",
            ObjectKind::Address => "address",
            ObjectKind::Route => "route",
            ObjectKind::Rule => "rule",
            ObjectKind::Sysctl => "sysctl",
            ObjectKind::Firewall => "firewall",
            ObjectKind::Dhcp => "dhcp",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An object's identity: its kind and its id within the kind.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectRef {
    /// The kind.
    pub kind: ObjectKind,
    /// The id, in `ip`'s words (`tap-centos`, `10.0.0.1/24 on br0`, `default table 101`).
    pub id: String,
}

impl ObjectRef {
    /// An object of `kind` with id `id`.
    pub fn new(kind: ObjectKind, id: impl Into<String>) -> ObjectRef {
        ObjectRef {
            kind,
            id: id.into(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.id)
    }
}
