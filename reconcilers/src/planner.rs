//! Composes the per-kind reconcilers into one plan. Each reconciler diffs its own kind and
//! none calls another; the only hand-over is the set of links being replaced, which tells the
//! address and route reconcilers what the kernel will drop along with those links.

use crate::model::State;
use crate::plan::{Action, Change, Object, ObjectKind, Op, Plan};
use crate::{addresses, links, routes, rules};

/// Plan the changes that turn `observed` into `desired`.
///
/// `desired` must be resolved (tap owners and groups as numeric ids) and `observed` must hold
/// the sysctls `desired` names.
pub fn plan(desired: &State, observed: &State) -> Plan {
    let link_diff = links::diff(desired, observed);
    let after_links = links::without_replaced(observed, &link_diff.replaced);
    let mut changes = link_diff.changes;
    changes.extend(sysctl_diff(desired, observed));
    changes.extend(addresses::diff(desired, &after_links));
    changes.extend(routes::diff(desired, &after_links));
    changes.extend(rules::diff(desired, &after_links));
    changes.extend(crate::nft::diff(desired, observed));
    changes.extend(crate::dnsmasq::diff(desired, observed));
    for c in &mut changes {
        if c.note.is_none() {
            let key = format!("{} {}", c.kind.name(), c.id);
            c.note = desired.origins.get(&key).cloned();
        }
    }
    let mut warnings = routes::shadows(desired, observed);
    warnings.extend(rules::shadows(desired, observed));
    warnings.extend(crate::nft::warnings(desired, observed));
    Plan {
        changes,
        conflicts: link_diff.conflicts,
        warnings,
    }
}

/// Diff sysctls: a desired value that differs (or cannot be read yet, e.g. a per-interface
/// sysctl of a link about to be created) is written. Sysctls are never "removed": dropping one
/// from the desired state leaves the kernel's value as it is.
fn sysctl_diff(desired: &State, observed: &State) -> Vec<Change> {
    desired
        .sysctls
        .iter()
        .filter(|(name, value)| observed.sysctls.get(*name) != Some(*value))
        .map(|(name, value)| {
            let before = observed.sysctls.get(name).map(|v| Object::Sysctl {
                name: name.clone(),
                value: v.clone(),
            });
            Change {
                action: if before.is_some() {
                    Action::Change
                } else {
                    Action::Add
                },
                kind: ObjectKind::Sysctl,
                id: name.clone(),
                before,
                after: Some(Object::Sysctl {
                    name: name.clone(),
                    value: value.clone(),
                }),
                note: None,
                ops: vec![Op::SetSysctl {
                    name: name.clone(),
                    value: value.clone(),
                }],
            }
        })
        .collect()
}

/// Every object of `state` with the kind and id its changes would carry, in plan order (for
/// reports that list objects in sync as well as drifted ones).
pub fn object_ids(state: &State) -> Vec<(ObjectKind, String)> {
    let mut out: Vec<(ObjectKind, String)> = Vec::new();
    out.extend(state.links.keys().map(|n| (ObjectKind::Link, n.clone())));
    out.extend(
        state
            .sysctls
            .keys()
            .map(|n| (ObjectKind::Sysctl, n.clone())),
    );
    out.extend(
        state
            .addresses
            .values()
            .map(|a| (ObjectKind::Address, addresses::id(&a.link, &a.address))),
    );
    out.extend(
        state
            .routes
            .values()
            .map(|r| (ObjectKind::Route, routes::id(r))),
    );
    out.extend(
        state
            .rules
            .values()
            .map(|r| (ObjectKind::Rule, rules::id(r))),
    );
    out.extend(state.dhcp.keys().map(|b| (ObjectKind::Dhcp, b.clone())));
    out
}
