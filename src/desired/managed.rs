//! `managed:` — written by `show`: which observed objects carried netconverge's ownership
//! marks, so that `check --observed` can tell its own objects from foreign ones offline. Not
//! desired state; read back into the ownership flags of the snapshot's objects.

use std::collections::BTreeSet;
use std::fmt::Write as _;

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
    /// Add this file's ids to `set`, as `"<kind> <id>"`.
    pub(crate) fn merge_into(self, set: &mut BTreeSet<String>) {
        for (kind, ids) in [
            ("link", self.links),
            ("address", self.addresses),
            ("route", self.routes),
            ("rule", self.rules),
        ] {
            set.extend(ids.into_iter().map(|id| format!("{kind} {id}")));
        }
    }
}

/// The `managed:` section `show` adds when the observed state holds objects carrying
/// netconverge's marks, so that a snapshot keeps ownership for `check --observed`.
pub(crate) fn render_section(state: &State) -> Option<String> {
    let links: Vec<String> = state
        .links
        .values()
        .filter(|l| l.owned)
        .map(|l| l.name.clone())
        .collect();
    let addresses: Vec<String> = state
        .addresses
        .values()
        .filter(|a| a.owned && !state.links.get(&a.link).is_some_and(|l| l.owned))
        .map(|a| reconcilers::addresses::id(&a.link, &a.address))
        .collect();
    let routes: Vec<String> = state
        .routes
        .values()
        .filter(|r| r.owned)
        .map(reconcilers::routes::id)
        .collect();
    let rules: Vec<String> = state
        .rules
        .values()
        .filter(|r| r.owned)
        .map(reconcilers::rules::id)
        .collect();
    if links.is_empty() && addresses.is_empty() && routes.is_empty() && rules.is_empty() {
        return None;
    }
    let mut s = String::from(
        "# Objects carrying netconverge's ownership marks when this was shown; read by\n\
         # `check --observed` to tell them from foreign ones. Not part of the desired state.\n\
         managed:\n",
    );
    for (key, ids) in [
        ("links", links),
        ("addresses", addresses),
        ("routes", routes),
        ("rules", rules),
    ] {
        if ids.is_empty() {
            continue;
        }
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
        let owned = |kind: &str, id: &str| {
            self.managed
                .as_ref()
                .is_none_or(|m| m.contains(&format!("{kind} {id}")))
        };
        for l in s.links.values_mut() {
            l.owned = owned("link", &l.name);
        }
        // On links netconverge created every address is its own (`show` lists only the others).
        let owned_links: std::collections::BTreeSet<String> = s
            .links
            .values()
            .filter(|l| l.owned)
            .map(|l| l.name.clone())
            .collect();
        for a in s.addresses.values_mut() {
            a.owned = owned_links.contains(&a.link)
                || owned("address", &reconcilers::addresses::id(&a.link, &a.address));
        }
        for r in s.routes.values_mut() {
            r.owned = owned("route", &reconcilers::routes::id(r));
        }
        for r in s.rules.values_mut() {
            r.owned = owned("rule", &reconcilers::rules::id(r));
        }
        s
    }
}
