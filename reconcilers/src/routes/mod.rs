//! The routes reconciler (diff) and its rtnetlink codec (netlink).

pub mod cache;
pub mod netlink;

mod diff;

pub(crate) use diff::matches;
pub use diff::{diff, shadows};

use crate::kind::{self, Kind, PlanCx};
use crate::model::object::{ObjectKind, ObjectRef};
use crate::model::State;
use crate::plan::Change;

/// Routes in the table of kinds.
pub struct Routes;

/// The routes kind.
pub static KIND: Routes = Routes;

impl Kind for Routes {
    fn kind(&self) -> ObjectKind {
        ObjectKind::Route
    }

    fn objects(&self, state: &State) -> Vec<(ObjectRef, bool)> {
        kind::marked_objects(state.routes.values())
    }

    fn set_owned(&self, state: &mut State, owned: &dyn Fn(&ObjectRef) -> bool) {
        kind::set_marks(state.routes.values_mut(), owned);
    }

    /// Kept means at the same key: a changed gateway or action still keeps the object.
    fn owned_kept(&self, desired: &State, observed: &State) -> kind::OwnedKept {
        kind::owned_kept_by_key(&desired.routes, &observed.routes)
    }

    fn diff(&self, cx: &mut PlanCx<'_>) -> Vec<Change> {
        diff(cx.desired, &cx.after_links)
    }

    fn warnings(&self, desired: &State, observed: &State) -> Vec<String> {
        shadows(desired, observed)
    }

    /// The routes the plan names, those through links it deletes, and those the kernel
    /// flushes with an address the plan deletes (its source, or a gateway in its subnet).
    fn save(&self, cx: &crate::snapshot::SaveCx<'_>, snap: &mut crate::snapshot::Snapshot) {
        let mut keys = std::collections::BTreeSet::new();
        for o in cx.objects() {
            if let crate::plan::Object::Route(r) = o {
                keys.insert(r.key());
            }
        }
        let dropped = cx.dropped_links();
        let addresses = cx.deleted_addresses();
        for r in cx.before.routes.values() {
            let through_dropped = r
                .nexthops
                .iter()
                .any(|n| n.dev.as_deref().is_some_and(|d| dropped.contains(d)));
            let with_address = addresses.iter().any(|a| {
                r.src == Some(a.address.addr())
                    || r.nexthops.iter().any(|n| {
                        n.dev.as_deref() == Some(a.link.as_str())
                            && n.via.is_some_and(|v| a.address.contains(&v))
                    })
            });
            if through_dropped || with_address {
                keys.insert(r.key());
            }
        }
        snap.routes = crate::snapshot::save_marked(&cx.before.routes, keys, cx.protocols);
    }

    fn restore(&self, snap: &crate::snapshot::Snapshot, target: &mut State) {
        crate::snapshot::restore_marked(&mut target.routes, &snap.routes);
    }

    /// A saved route without `src` or `mtu` where the route now has one: the planner sees a
    /// match (absent is unmanaged), so the revert replaces it here.
    fn restore_absent(&self, snap: &crate::snapshot::Snapshot, now: &State) -> Vec<Change> {
        let mut out = Vec::new();
        for s in &snap.routes {
            let (Some(b), Some(n)) = (&s.before, now.routes.get(&s.key)) else {
                continue;
            };
            if matches(b, n) && (b.src != n.src || b.mtu != n.mtu) {
                let mut b = b.clone();
                b.owned = s.owned;
                out.push(Change {
                    action: crate::plan::Action::Change,
                    object: ObjectRef::route(&b),
                    before: Some(crate::plan::Object::Route(n.clone())),
                    after: Some(crate::plan::Object::Route(b.clone())),
                    note: None,
                    ops: vec![crate::plan::Op::ReplaceRoute(b)],
                });
            }
        }
        out
    }

    fn restore_protocol(
        &self,
        snap: &crate::snapshot::Snapshot,
        op: &crate::plan::Op,
    ) -> Option<u8> {
        match op {
            crate::plan::Op::AddRoute(r) | crate::plan::Op::ReplaceRoute(r) => {
                crate::snapshot::foreign_protocol(&snap.routes, &r.key(), snap.protocol)
            }
            _ => None,
        }
    }
}
