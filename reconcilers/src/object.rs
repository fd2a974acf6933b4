//! One identity per object: its kind and its id, printed in `ip`'s own words
//! (`route default via 192.168.1.1 dev eth0 table 1`, `rule 10001: from all fwmark 0x1/0xff
//! lookup 1`). Plans, origins, `managed:` ids, errors and logs all name objects this way; each
//! kind's module owns the words for its id.

use crate::model::{Address, Route, Rule};

// The identity types are data and live in the model (`State::origins` is keyed by them); this
// module gives each kind its constructor, in the kind's own words.
pub use crate::model::object::{ObjectKind, ObjectRef};

// The constructors need each kind's id words, so they live here rather than in the model.
impl ObjectRef {
    /// A link, by name.
    pub fn link(name: &str) -> ObjectRef {
        ObjectRef::new(ObjectKind::Link, name)
    }

    /// An address, by link and prefix.
    pub fn address(a: &Address) -> ObjectRef {
        ObjectRef::new(
            ObjectKind::Address,
            crate::addresses::id(&a.link, &a.address),
        )
    }

    /// A route.
    pub fn route(r: &Route) -> ObjectRef {
        ObjectRef::new(ObjectKind::Route, crate::routes::id(r))
    }

    /// A rule.
    pub fn rule(r: &Rule) -> ObjectRef {
        ObjectRef::new(ObjectKind::Rule, crate::rules::id(r))
    }

    /// A sysctl, by dotted name.
    pub fn sysctl(name: &str) -> ObjectRef {
        ObjectRef::new(ObjectKind::Sysctl, name)
    }

    /// netconverge's nftables tables (one object).
    pub fn firewall() -> ObjectRef {
        ObjectRef::new(ObjectKind::Firewall, crate::nft::ID)
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

marked!(
    crate::model::Link,
    |l: &crate::model::Link| ObjectRef::link(&l.name)
);
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
            }],
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
