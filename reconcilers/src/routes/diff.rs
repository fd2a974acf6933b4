//! The routes reconciler.

use std::collections::HashMap;

use ipnet::IpNet;

use crate::links::satisfied;
use crate::model::join::{join, Paired};
use crate::model::object::ObjectRef;
use crate::model::{Route, State};
use crate::plan::{Action, Change, Object, Op};

/// True when `observed` already is what `desired` asks for (ownership aside).
pub(crate) fn matches(desired: &Route, observed: &Route) -> bool {
    desired.kind == observed.kind
        && desired.nexthops == observed.nexthops
        && satisfied(&desired.src, &observed.src)
        && desired.scope == observed.scope
        && satisfied(&desired.mtu, &observed.mtu)
}

/// The observed route without the optional attributes `desired` leaves unmanaged, so plans
/// show only what changes.
fn managed_view(observed: &Route, desired: &Route) -> Route {
    let mut r = observed.clone();
    if desired.src.is_none() {
        r.src = None;
    }
    if desired.mtu.is_none() {
        r.mtu = None;
    }
    r
}

/// Diff routes of all tables. `observed` must already reflect link replacements.
///
/// A route at a desired key that differs is replaced in place (NLM_F_REPLACE), also when it is
/// foreign: the desired state is authoritative at its own keys. A foreign route identical to
/// the desired one is left as it is, so that `show` output checks clean against its host.
/// Routes netconverge owns that are no longer desired are removed; foreign ones never are.
pub fn diff(desired: &State, observed: &State) -> Vec<Change> {
    let mut out = Vec::new();
    // Removals come after every add and change, as the plan has always listed them.
    let mut removals = Vec::new();
    for pair in join(&desired.routes, &observed.routes) {
        match pair {
            Paired::Left(_, d) => out.push(Change {
                action: Action::Add,
                object: ObjectRef::route(d),
                before: None,
                after: Some(Object::Route(d.clone())),
                note: None,
                ops: vec![Op::AddRoute(d.clone())],
            }),
            Paired::Both(_, d, o) if matches(d, o) => {}
            Paired::Both(_, d, o) => out.push(Change {
                action: Action::Change,
                object: ObjectRef::route(d),
                before: Some(Object::Route(managed_view(o, d))),
                after: Some(Object::Route(d.clone())),
                note: (!o.owned).then(|| "replace foreign route".to_string()),
                ops: vec![Op::ReplaceRoute(d.clone())],
            }),
            Paired::Right(_, o) if o.owned => removals.push(Change {
                action: Action::Remove,
                object: ObjectRef::route(o),
                before: Some(Object::Route(o.clone())),
                after: None,
                note: None,
                ops: vec![Op::DeleteRoute(o.clone())],
            }),
            Paired::Right(..) => {}
        }
    }
    out.append(&mut removals);
    out
}

/// Foreign routes that take precedence over a desired route without sitting at its key: same
/// table and destination, lower metric. They do not make the host drift (netconverge leaves
/// them alone) but they decide where the traffic goes, so `check` warns about them.
pub fn shadows(desired: &State, observed: &State) -> Vec<String> {
    // Index foreign routes by what must match, so this stays linear with 10,000s of routes.
    let mut foreign: HashMap<(u32, IpNet, u8), Vec<&Route>> = HashMap::new();
    for o in observed.routes.values().filter(|o| !o.owned) {
        foreign.entry((o.table, o.to, o.tos)).or_default().push(o);
    }
    let mut out = Vec::new();
    if foreign.is_empty() {
        return out;
    }
    for d in desired.routes.values() {
        for o in foreign.get(&(d.table, d.to, d.tos)).into_iter().flatten() {
            if o.metric < d.metric {
                out.push(format!(
                    "foreign route {} shadows desired route {} (lower metric {} < {})",
                    o.id(),
                    d.id(),
                    o.metric,
                    d.metric
                ));
            }
        }
    }
    out
}
