//! Snapshots for commit-confirmed: what a plan is about to touch, recorded before its first
//! write so that a revert can put exactly that back.
//!
//! A [`Snapshot`] holds, per kind, the keys a plan writes (or makes the kernel drop along with
//! a deleted link) and the object each key held before — absent for keys the plan fills —
//! with the ownership mark and the rtnetlink protocol it carried. Each kind fills its own part
//! ([`crate::kind::Kind::save`]) and puts it back ([`crate::kind::Kind::restore`]); this
//! module knows no kind beyond the shape of the record. The record is serde data, so the
//! guardian process of another invocation can read it back from its file.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::kinds::KINDS;
use crate::model::dhcp::DhcpServer;
use crate::model::firewall::Firewall;
use crate::model::object::{Marked, ObjectRef};
use crate::model::{Address, AddressKey, Link, LinkKind, Route, RouteKey, Rule, RuleKey, State};
use crate::plan::{Object, Op, Plan};

/// The rtnetlink protocol of observed routes, rules and addresses, by identity (addresses
/// without `IFA_PROTO` are absent); see [`crate::kernel::Kernel::protocols`].
pub type Protocols = BTreeMap<ObjectRef, u8>;

/// One key of a kind as it was before the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved<K, V> {
    /// The kernel's key of the object.
    pub key: K,
    /// The object at the key before the plan; `None` when the plan fills an empty key.
    pub before: Option<V>,
    /// Whether `before` carried netconverge's mark (serde skips the model's own flag).
    #[serde(default)]
    pub owned: bool,
    /// The rtnetlink protocol `before` carried, for routes, rules and addresses.
    #[serde(default)]
    pub protocol: Option<u8>,
}

/// Everything a revert needs to put back what one plan touches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The protocol netconverge wrote with (its ownership mark on this host).
    pub protocol: u8,
    /// Links by name.
    pub links: Vec<Saved<String, Link>>,
    /// Addresses.
    pub addresses: Vec<Saved<AddressKey, Address>>,
    /// Routes.
    pub routes: Vec<Saved<RouteKey, Route>>,
    /// Rules.
    pub rules: Vec<Saved<RuleKey, Rule>>,
    /// Sysctls by name, with their old values.
    pub sysctls: Vec<Saved<String, String>>,
    /// netconverge's nftables tables, when the plan touches them.
    pub firewall: Option<Saved<(), Firewall>>,
    /// DHCP services by bridge.
    pub dhcp: Vec<Saved<String, DhcpServer>>,
}

impl Snapshot {
    /// Record what `plan` touches of `before` (the state it was planned against) and the
    /// protocols of those objects; `protocol` is netconverge's own.
    pub fn take(plan: &Plan, before: &State, protocols: &Protocols, protocol: u8) -> Snapshot {
        let mut snap = Snapshot {
            protocol,
            ..Snapshot::default()
        };
        let cx = SaveCx {
            plan,
            before,
            protocols,
        };
        for k in &KINDS {
            k.save(&cx, &mut snap);
        }
        snap
    }

    /// The sysctls a revert must read to compare their values.
    pub fn sysctl_names(&self) -> Vec<String> {
        self.sysctls.iter().map(|s| s.key.clone()).collect()
    }

    /// True when the plan touched nothing (nothing to put back).
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
            && self.addresses.is_empty()
            && self.routes.is_empty()
            && self.rules.is_empty()
            && self.sysctls.is_empty()
            && self.firewall.is_none()
            && self.dhcp.is_empty()
    }
}

/// What the kinds read when they save their part of a snapshot.
pub struct SaveCx<'a> {
    /// The plan about to be applied.
    pub plan: &'a Plan,
    /// The observed state it was planned against.
    pub before: &'a State,
    /// The protocols of `before`'s routes, rules and addresses.
    pub protocols: &'a Protocols,
}

impl SaveCx<'_> {
    /// The objects (before and after) of the plan's changes, for a kind to pick its own from.
    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.plan
            .changes
            .iter()
            .flat_map(|c| c.before.iter().chain(c.after.iter()))
    }

    /// The links whose kernel object the plan deletes (to recreate it or for good), with the
    /// veth peers the kernel deletes along: their addresses and routes go too.
    pub fn dropped_links(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for op in self.plan.changes.iter().flat_map(|c| c.ops.iter()) {
            if let Op::DeleteLink(name) = op {
                out.insert(name.clone());
                if let Some(Link {
                    kind: LinkKind::Veth(v),
                    ..
                }) = self.before.links.get(name)
                {
                    out.insert(v.peer.clone());
                }
            }
        }
        out
    }

    /// The addresses the plan deletes (routes with them as source or through their subnet
    /// may be flushed by the kernel).
    pub fn deleted_addresses(&self) -> Vec<&Address> {
        self.plan
            .changes
            .iter()
            .flat_map(|c| c.ops.iter())
            .filter_map(|op| match op {
                Op::DeleteAddress(a) => Some(a),
                _ => None,
            })
            .collect()
    }
}

/// Save the objects of `map` at `keys` (for [`crate::kind::Kind::save`] of marked kinds).
pub fn save_marked<K: Ord + Clone, V: Marked + Clone>(
    map: &BTreeMap<K, V>,
    keys: BTreeSet<K>,
    protocols: &Protocols,
) -> Vec<Saved<K, V>> {
    keys.into_iter()
        .map(|key| {
            let before = map.get(&key).cloned();
            let owned = before.as_ref().is_some_and(|v| v.owned());
            let protocol = before
                .as_ref()
                .and_then(|v| protocols.get(&v.object_ref()).copied());
            Saved {
                key,
                before,
                owned,
                protocol,
            }
        })
        .collect()
}

/// Put saved marked objects back into `map` (for [`crate::kind::Kind::restore`]): each key
/// holds its old object with its old mark again, or nothing.
pub fn restore_marked<K: Ord + Clone, V: Marked + Clone>(
    map: &mut BTreeMap<K, V>,
    saved: &[Saved<K, V>],
) {
    for s in saved {
        match &s.before {
            Some(v) => {
                let mut v = v.clone();
                v.set_owned(s.owned);
                map.insert(s.key.clone(), v);
            }
            None => {
                map.remove(&s.key);
            }
        }
    }
}

/// Save unmarked values of `map` at `keys` (sysctls, services).
pub fn save_plain<K: Ord + Clone, V: Clone>(
    map: &BTreeMap<K, V>,
    keys: BTreeSet<K>,
) -> Vec<Saved<K, V>> {
    keys.into_iter()
        .map(|key| Saved {
            before: map.get(&key).cloned(),
            key,
            owned: false,
            protocol: None,
        })
        .collect()
}

/// Put saved unmarked values back into `map`.
pub fn restore_plain<K: Ord + Clone, V: Clone>(map: &mut BTreeMap<K, V>, saved: &[Saved<K, V>]) {
    for s in saved {
        match &s.before {
            Some(v) => {
                map.insert(s.key.clone(), v.clone());
            }
            None => {
                map.remove(&s.key);
            }
        }
    }
}

/// The protocol to write a restored object with, when it is not netconverge's own: the one
/// saved, or 0 (none) for a foreign object that carried none.
pub fn foreign_protocol<K: PartialEq, V>(saved: &[Saved<K, V>], key: &K, ours: u8) -> Option<u8> {
    let s = saved.iter().find(|s| s.key == *key && s.before.is_some())?;
    match s.protocol {
        Some(p) if p != ours => Some(p),
        None if !s.owned => Some(0),
        _ => None,
    }
}
