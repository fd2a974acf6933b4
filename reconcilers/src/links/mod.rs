//! Links: creation, deletion and attributes of interfaces, one submodule per link kind.

pub mod bridge;
pub mod external;
pub mod macvlan;
pub mod netlink;
pub mod tap;
pub mod veth;
pub mod vxlan;

mod diff;
pub mod ports;

pub(crate) use diff::satisfied;
pub use diff::{diff, effective_up, without_replaced, LinkDiff};

use crate::kind::PlanCx;
use crate::model::object::{ObjectKind, ObjectRef};
use crate::model::State;
use crate::plan::Change;

/// Links in the table of kinds.
pub struct Links;

/// The links kind.
pub static KIND: Links = Links;

impl crate::kind::Kind for Links {
    fn kind(&self) -> ObjectKind {
        ObjectKind::Link
    }

    fn objects(&self, state: &State) -> Vec<(ObjectRef, bool)> {
        crate::kind::marked_objects(state.links.values())
    }

    fn set_owned(&self, state: &mut State, owned: &dyn Fn(&ObjectRef) -> bool) {
        crate::kind::set_marks(state.links.values_mut(), owned);
    }

    /// Taps a process holds open whose declared options wait until it closes them.
    fn warnings(&self, desired: &State, observed: &State) -> Vec<String> {
        desired
            .links
            .values()
            .filter_map(|d| match (&d.kind, &observed.links.get(&d.name)?.kind) {
                (crate::model::LinkKind::Tap(w), crate::model::LinkKind::Tap(h)) => {
                    tap::in_use_note(&d.name, w, h)
                }
                _ => None,
            })
            .collect()
    }

    fn diff(&self, cx: &mut PlanCx<'_>) -> Vec<Change> {
        let d = diff(cx.desired, cx.observed);
        cx.after_links = without_replaced(cx.observed, &d.replaced);
        cx.conflicts.extend(d.conflicts);
        d.changes
    }

    /// The links the plan names, their veth peers, and the ports of links it deletes (the
    /// kernel detaches them).
    fn save(&self, cx: &crate::snapshot::SaveCx<'_>, snap: &mut crate::snapshot::Snapshot) {
        let mut keys = std::collections::BTreeSet::new();
        for o in cx.objects() {
            if let crate::plan::Object::Link(l) = o {
                keys.insert(l.name.clone());
            }
        }
        let dropped = cx.dropped_links();
        keys.extend(dropped.iter().cloned());
        for l in cx.before.links.values() {
            let peer_touched =
                matches!(&l.kind, crate::model::LinkKind::Veth(v) if keys.contains(&v.peer));
            let port_of_dropped = l.master.as_ref().is_some_and(|m| dropped.contains(m));
            if peer_touched || port_of_dropped {
                keys.insert(l.name.clone());
            }
        }
        snap.links = crate::snapshot::save_marked(&cx.before.links, keys, cx.protocols);
    }

    fn restore(&self, snap: &crate::snapshot::Snapshot, target: &mut State) {
        crate::snapshot::restore_marked(&mut target.links, &snap.links);
    }
}
