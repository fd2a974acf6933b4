//! Plans: the changes a reconcile makes, the kernel writes (`Op`s) each change needs, and the
//! order in which those writes may be sent.
//!
//! Reconcilers produce `Change`s independently; this module merges and orders their writes into
//! phases. Writes within a phase do not depend on each other and are pipelined; phases run one
//! after the other.

use std::fmt;

use serde::Serialize;

use crate::model::dhcp::{DhcpOp, DhcpServer};
use crate::model::firewall::{Firewall, FirewallOp};
use crate::model::{Address, BridgeOpts, Link, LinkKind, MacAddr, Route, Rule, TapOpts};

/// Whether a change adds, changes or removes an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The object is created.
    Add,
    /// The object exists and is modified (or replaced in place).
    Change,
    /// The object is deleted.
    Remove,
}

impl Action {
    /// The word used in plans and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Action::Add => "add",
            Action::Change => "change",
            Action::Remove => "remove",
        }
    }
}

pub use crate::model::object::{ObjectKind, ObjectRef};

/// One object's state before or after a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Object {
    /// A link.
    Link(Link),
    /// An address.
    Address(Address),
    /// A route.
    Route(Route),
    /// A rule.
    Rule(Rule),
    /// netconverge's nftables table(s).
    Firewall(Firewall),
    /// A bridge's DHCP/DNS service.
    Dhcp(DhcpServer),
    /// A sysctl and its value.
    Sysctl {
        /// Dotted name.
        name: String,
        /// Value.
        value: String,
    },
}

/// Attributes set on an existing link in one request. `None` fields are left alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkSet {
    /// The link to modify.
    pub name: String,
    /// New alias (netconverge's ownership mark).
    pub alias: Option<String>,
    /// New MTU.
    pub mtu: Option<u32>,
    /// New MAC address.
    pub mac: Option<MacAddr>,
    /// Bring up (true) or down (false).
    pub up: Option<bool>,
    /// `Some(Some(bridge))` attaches to a bridge, `Some(None)` detaches.
    pub master: Option<Option<String>>,
    /// Bridge options to set (only on bridges; `None` fields inside are left alone).
    pub bridge: Option<BridgeOpts>,
}

impl LinkSet {
    /// An empty set request for `name`.
    pub fn new(name: impl Into<String>) -> LinkSet {
        LinkSet {
            name: name.into(),
            ..LinkSet::default()
        }
    }

    /// Fold `other` (for the same link) into `self`; later values win.
    pub fn merge(&mut self, other: &LinkSet) {
        macro_rules! take {
            ($f:ident) => {
                if other.$f.is_some() {
                    self.$f = other.$f.clone();
                }
            };
        }
        take!(alias);
        take!(mtu);
        take!(mac);
        take!(up);
        take!(master);
        take!(bridge);
    }

    /// True when nothing would be set.
    pub fn is_empty(&self) -> bool {
        self.alias.is_none()
            && self.mtu.is_none()
            && self.mac.is_none()
            && self.up.is_none()
            && self.master.is_none()
            && self.bridge.is_none()
    }
}

/// A write of a plan with the indexes (into `Plan::changes`) of the changes it belongs to.
pub type OwnedOp = (Op, Vec<usize>);

/// One kernel write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Create a link of its kind with its kind options (a veth creates its peer too; a tap is
    /// made persistent with its owner, group and flags). Generic attributes follow in `SetLink`.
    CreateLink(Link),
    /// Set attributes of an existing link.
    SetLink(LinkSet),
    /// Change a tap's owner, group or vnet_hdr in place (re-attach via `/dev/net/tun`).
    SetTap {
        /// The tap.
        name: String,
        /// The options wanted (`multi_queue` must match the existing tap's).
        opts: TapOpts,
    },
    /// Delete a link (a veth deletes its peer too).
    DeleteLink(String),
    /// Add an address.
    AddAddress(Address),
    /// Delete an address.
    DeleteAddress(Address),
    /// Add a route (fails if its key exists).
    AddRoute(Route),
    /// Replace the route with the same key in place (NLM_F_REPLACE).
    ReplaceRoute(Route),
    /// Delete a route.
    DeleteRoute(Route),
    /// Add a rule.
    AddRule(Rule),
    /// Delete a rule.
    DeleteRule(Rule),
    /// Write a sysctl.
    SetSysctl {
        /// Dotted name.
        name: String,
        /// Value.
        value: String,
    },
    /// Replace or delete netconverge's nftables table(s).
    Firewall(FirewallOp),
    /// Start, reconfigure or stop a bridge's dnsmasq.
    Dhcp(DhcpOp),
}

/// The phases of a plan, in execution order. Removals run first, in the reverse of the add
/// order (rules, routes, addresses, links), so that a recreated object's old self is gone
/// before its new self arrives; then additions in dependency order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Delete rules.
    DeleteRules,
    /// Delete routes.
    DeleteRoutes,
    /// Delete addresses.
    DeleteAddresses,
    /// Delete links.
    DeleteLinks,
    /// Create links that stand alone (bridge, tap, veth).
    CreateLinks,
    /// Create links stacked on another link (vxlan, macvlan).
    CreateStackedLinks,
    /// Set link attributes, bridge ports and tap options.
    SetLinks,
    /// Write sysctls (after links, so per-interface sysctls exist).
    Sysctls,
    /// Add addresses.
    AddAddresses,
    /// Load netconverge's nftables tables: after the addresses (a tracked gateway is probed
    /// through them), before the routes and rules that rely on its marks and NAT, so that a
    /// refused load leaves no provider routing live without its NAT.
    Firewall,
    /// Add or replace routes.
    AddRoutes,
    /// Add rules.
    AddRules,
    /// Services on top of the network: the dnsmasq instances (they need the links, addresses
    /// and routes in place).
    Services,
}

impl Op {
    /// The phase this write belongs to.
    pub fn phase(&self) -> Phase {
        match self {
            Op::DeleteRule(_) => Phase::DeleteRules,
            Op::DeleteRoute(_) => Phase::DeleteRoutes,
            Op::DeleteAddress(_) => Phase::DeleteAddresses,
            Op::DeleteLink(_) => Phase::DeleteLinks,
            Op::CreateLink(l) => match l.kind {
                LinkKind::Vxlan(_) | LinkKind::Macvlan(_) => Phase::CreateStackedLinks,
                _ => Phase::CreateLinks,
            },
            Op::SetLink(_) | Op::SetTap { .. } => Phase::SetLinks,
            Op::SetSysctl { .. } => Phase::Sysctls,
            Op::AddAddress(_) => Phase::AddAddresses,
            Op::AddRoute(_) | Op::ReplaceRoute(_) => Phase::AddRoutes,
            Op::AddRule(_) => Phase::AddRules,
            Op::Firewall(_) => Phase::Firewall,
            Op::Dhcp(_) => Phase::Services,
        }
    }

    /// True for writes that delete something.
    pub fn is_removal(&self) -> bool {
        self.phase() <= Phase::DeleteLinks
    }
}

/// One object's change, as shown to the user, with the writes that make it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Add, change or remove.
    pub action: Action,
    /// The object, by kind and id.
    pub object: ObjectRef,
    /// The observed object (None for an add).
    pub before: Option<Object>,
    /// The desired object (None for a remove).
    pub after: Option<Object>,
    /// Why the change is made the way it is (`recreate: …`, `replace foreign route`).
    pub note: Option<String>,
    /// The kernel writes.
    pub ops: Vec<Op>,
}

/// An ordered set of changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The changes, grouped by object kind in dependency order.
    pub changes: Vec<Change>,
    /// Desired objects that cannot be reached without touching something netconverge does not
    /// own; a plan with conflicts must not be applied.
    pub conflicts: Vec<String>,
    /// Foreign objects that shadow desired ones: not drift, but worth a warning.
    pub warnings: Vec<String>,
}

/// Counts for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Objects added.
    pub add: usize,
    /// Objects changed.
    pub change: usize,
    /// Objects removed.
    pub remove: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to add, {} to change, {} to remove",
            self.add, self.change, self.remove
        )
    }
}

impl Plan {
    /// True when the host already matches.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Counts per action.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Add => s.add += 1,
                Action::Change => s.change += 1,
                Action::Remove => s.remove += 1,
            }
        }
        s
    }

    /// All writes, grouped into phases in execution order. `SetLink` writes for the same link
    /// are merged into one request (a new tap's alias, master and up state go in one message).
    pub fn phases(&self) -> Vec<(Phase, Vec<Op>)> {
        self.phases_by_change()
            .into_iter()
            .map(|(phase, ops)| (phase, ops.into_iter().map(|(op, _)| op).collect()))
            .collect()
    }

    /// `phases`, each write with the indexes (into `changes`) of the changes it belongs to (a
    /// merged `SetLink` belongs to every change it came from), so that what a failed write
    /// leaves undone can be said change by change.
    pub fn phases_by_change(&self) -> Vec<(Phase, Vec<OwnedOp>)> {
        let mut all: Vec<(usize, &Op)> = self
            .changes
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.ops.iter().map(move |op| (i, op)))
            .collect();
        all.sort_by_key(|(_, op)| op.phase());
        let mut out: Vec<(Phase, Vec<OwnedOp>)> = Vec::new();
        // Where in the current phase each link's merged `SetLink` is: looked up, not searched
        // for (a search per write is quadratic in the links of a phase: 10,000 new taps
        // would be 50 million name comparisons).
        let mut set_link_at: std::collections::HashMap<&str, usize> = Default::default();
        for (change, op) in all {
            let phase = op.phase();
            if out.last().map(|(p, _)| *p) != Some(phase) {
                out.push((phase, Vec::new()));
                set_link_at.clear();
            }
            let ops = &mut out.last_mut().expect("pushed above").1;
            if let Op::SetLink(set) = op {
                if let Some(&at) = set_link_at.get(set.name.as_str()) {
                    let (Op::SetLink(prev), owners) = &mut ops[at] else {
                        unreachable!("set_link_at points at SetLinks only");
                    };
                    prev.merge(set);
                    if !owners.contains(&change) {
                        owners.push(change);
                    }
                    continue;
                }
                set_link_at.insert(&set.name, ops.len());
            }
            ops.push((op.clone(), vec![change]));
        }
        out
    }
}
