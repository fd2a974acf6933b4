//! `managed:` — written by `show`: which observed objects carried netconverge's ownership
//! marks, so that `check --observed` can tell its own objects from foreign ones offline. Not
//! desired state; read back into the ownership flags of the snapshot's objects.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use reconcilers::kinds;
use reconcilers::model::object::{ObjectKind, ObjectRef};
use reconcilers::model::State;
use serde::Deserialize;

use super::yaml::quote;
use super::Desired;

/// `managed:` — ids as plans print them (`tap-centos`, `10.0.0.1/24 on br0`,
/// `default via 192.168.1.1 dev eth0 table 101`, `10001: from all fwmark 0x1/0xff lookup 101`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManagedDoc {
    #[serde(default)]
    pub links: Vec<String>,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub routes: Vec<String>,
    #[serde(default)]
    pub rules: Vec<String>,
}

impl ManagedDoc {
    /// Add this file's ids to `set`.
    pub(crate) fn merge_into(self, set: &mut BTreeSet<ObjectRef>) {
        for (kind, ids) in [
            (ObjectKind::Link, self.links),
            (ObjectKind::Address, self.addresses),
            (ObjectKind::Route, self.routes),
            (ObjectKind::Rule, self.rules),
        ] {
            set.extend(ids.into_iter().map(|id| ObjectRef::new(kind, id)));
        }
    }
}

/// The key under `managed:` of a kind whose objects carry ownership marks; `None` for kinds
/// whose ownership a snapshot cannot lose (sysctls have none, netconverge's nftables tables
/// and dnsmasq instances are its own by name).
fn section(kind: ObjectKind) -> Option<&'static str> {
    match kind {
        ObjectKind::Link => Some("links"),
        ObjectKind::Address => Some("addresses"),
        ObjectKind::Route => Some("routes"),
        ObjectKind::Rule => Some("rules"),
        ObjectKind::Sysctl | ObjectKind::Firewall | ObjectKind::Dhcp => None,
    }
}

/// The `managed:` section `show` adds when the observed state holds objects carrying
/// netconverge's marks, so that a snapshot keeps ownership for `check --observed`.
pub(crate) fn render_section(state: &State) -> Option<String> {
    let mut by_section: Vec<(&str, Vec<String>)> = Vec::new();
    for (object, owned) in kinds::objects(state) {
        let Some(key) = section(object.kind).filter(|_| owned) else {
            continue;
        };
        match by_section.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ids)) => ids.push(object.id),
            None => by_section.push((key, vec![object.id])),
        }
    }
    if by_section.is_empty() {
        // Said even when empty: a snapshot without the section is read as a host netconverge
        // manages entirely, which would make a host of foreign objects drift offline while it
        // is in sync live.
        return Some(
            "# No object carried netconverge's ownership marks when this was shown.\n\
             managed: {}\n"
                .into(),
        );
    }
    let mut s = String::from(
        "# Objects carrying netconverge's ownership marks when this was shown; read by\n\
         # `check --observed` to tell them from foreign ones. Not part of the desired state.\n\
         managed:\n",
    );
    for (key, ids) in by_section {
        let _ = writeln!(s, "  {key}:");
        for id in ids {
            let _ = writeln!(s, "    - {}", quote(&id));
        }
    }
    Some(s)
}

impl Desired {
    /// This state read as the observed side of a plan, for `check --observed SNAPSHOT`.
    ///
    /// `show` writes which objects carry netconverge's marks in a `managed:` section; those
    /// are marked owned, everything else is foreign (as on the live host). A snapshot without
    /// the section (hand-written, or from elsewhere) is read as a host netconverge manages
    /// entirely: everything is owned, so anything the desired state lacks shows as drift.
    pub fn observed_state(&self) -> State {
        let mut s = self.state.clone();
        let owned = |r: &ObjectRef| self.managed.as_ref().is_none_or(|m| m.contains(r));
        for kind in &kinds::KINDS {
            kind.set_owned(&mut s, &owned);
        }
        s
    }
}
