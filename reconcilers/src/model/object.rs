//! Object identities: an object's kind and its id within the kind, the one way plans, origins,
//! `managed:` ids, errors and logs name objects. Each kind's id is in
//! `ip`'s words, written by its data type (`Route::id`, `Rule::id`, `Address::id`).

use std::fmt;

use serde::Serialize;

use super::{Address, Route, Rule};

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
    /// Every kind, in the enum's order.
    pub const ALL: [ObjectKind; 7] = [
        ObjectKind::Link,
        ObjectKind::Address,
        ObjectKind::Route,
        ObjectKind::Rule,
        ObjectKind::Sysctl,
        ObjectKind::Firewall,
        ObjectKind::Dhcp,
    ];

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

impl ObjectRef {
    /// A link, by name.
    pub fn link(name: &str) -> ObjectRef {
        ObjectRef::new(ObjectKind::Link, name)
    }

    /// An address, by link and prefix.
    pub fn address(a: &Address) -> ObjectRef {
        ObjectRef::new(ObjectKind::Address, a.id())
    }

    /// A route.
    pub fn route(r: &Route) -> ObjectRef {
        ObjectRef::new(ObjectKind::Route, r.id())
    }

    /// A rule.
    pub fn rule(r: &Rule) -> ObjectRef {
        ObjectRef::new(ObjectKind::Rule, r.id())
    }

    /// A sysctl, by dotted name.
    pub fn sysctl(name: &str) -> ObjectRef {
        ObjectRef::new(ObjectKind::Sysctl, name)
    }

    /// netconverge's nftables tables (one object).
    pub fn firewall() -> ObjectRef {
        ObjectRef::new(ObjectKind::Firewall, super::firewall::ID)
    }

    /// A bridge's DHCP/DNS service, by bridge name.
    pub fn dhcp(bridge: &str) -> ObjectRef {
        ObjectRef::new(ObjectKind::Dhcp, bridge)
    }
}

/// An object that carries netconverge's ownership mark in the kernel (link alias, protocol).
pub trait Marked {
    /// Its identity.
    fn object_ref(&self) -> ObjectRef;
    /// Whether it carries the mark (observed) — always false on the desired side.
    fn owned(&self) -> bool;
    /// Set the mark (for a snapshot read as the observed side).
    fn set_owned(&mut self, owned: bool);
}

macro_rules! marked {
    ($t:ty, $ctor:expr) => {
        impl Marked for $t {
            fn object_ref(&self) -> ObjectRef {
                $ctor(self)
            }
            fn owned(&self) -> bool {
                self.owned
            }
            fn set_owned(&mut self, owned: bool) {
                self.owned = owned;
            }
        }
    };
}

marked!(super::Link, |l: &super::Link| ObjectRef::link(&l.name));
marked!(Address, ObjectRef::address);
marked!(Route, ObjectRef::route);
marked!(Rule, ObjectRef::rule);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Family, NextHop, RouteType, RuleAction, RuleKey, Scope};

    #[test]
    fn each_kind_reads_as_ip_writes_it() {
        let r = Route {
            table: 1,
            to: "0.0.0.0/0".parse().unwrap(),
            tos: 0,
            metric: 0,
            kind: RouteType::Unicast,
            nexthops: vec![NextHop {
                via: Some("192.168.1.1".parse().unwrap()),
                dev: Some("eth0".into()),
                weight: 1,
                onlink: false,
            }]
            .into(),
            src: None,
            scope: Scope::Global,
            mtu: None,
            owned: false,
        };
        assert_eq!(
            ObjectRef::route(&r).to_string(),
            "route default via 192.168.1.1 dev eth0 table 1"
        );
        let mut multi = r.clone();
        multi.nexthops.push(NextHop {
            via: Some("192.168.1.254".parse().unwrap()),
            dev: Some("eth0".into()),
            weight: 2,
            onlink: false,
        });
        assert_eq!(
            ObjectRef::route(&multi).to_string(),
            "route default nexthops via 192.168.1.1 dev eth0 weight 1 via 192.168.1.254 dev eth0 weight 2 table 1"
        );
        let rule = Rule {
            key: RuleKey {
                fwmark: Some((1, 0xff)),
                ..RuleKey::all(10001, Family::Inet)
            },
            action: RuleAction::Lookup(1),
            owned: false,
        };
        assert_eq!(
            ObjectRef::rule(&rule).to_string(),
            "rule 10001: from all fwmark 0x1/0xff lookup 1"
        );
        let a = Address {
            link: "br0".into(),
            address: "10.0.0.1/24".parse().unwrap(),
            owned: false,
            primary: false,
        };
        assert_eq!(
            ObjectRef::address(&a).to_string(),
            "address 10.0.0.1/24 on br0"
        );
        assert_eq!(ObjectRef::link("br0").to_string(), "link br0");
        assert_eq!(
            ObjectRef::sysctl("net.ipv4.ip_forward").to_string(),
            "sysctl net.ipv4.ip_forward"
        );
        assert_eq!(
            ObjectRef::firewall().to_string(),
            "firewall inet netconverge"
        );
        assert_eq!(ObjectRef::dhcp("br0").to_string(), "dhcp br0");
    }
}
