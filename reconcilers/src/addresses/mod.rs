//! The addresses reconciler (diff) and its rtnetlink codec (netlink).

pub mod netlink;

mod diff;

pub use diff::diff;

use crate::kind::{Kind, PlanCx};
use crate::model::object::{ObjectKind, ObjectRef};
use crate::model::State;
use crate::plan::Change;

/// Addresses in the table of kinds.
pub struct Addresses;

/// The addresses kind.
pub static KIND: Addresses = Addresses;

impl Kind for Addresses {
    fn kind(&self) -> ObjectKind {
        ObjectKind::Address
    }

    fn objects(&self, state: &State) -> Vec<(ObjectRef, bool)> {
        crate::kind::marked_objects(state.addresses.values())
    }

    /// Every address on a link netconverge created is its own (`show` lists only the others),
    /// so this runs after the links kind.
    fn set_owned(&self, state: &mut State, owned: &dyn Fn(&ObjectRef) -> bool) {
        let State {
            links, addresses, ..
        } = state;
        for a in addresses.values_mut() {
            a.owned = links.get(&a.link).is_some_and(|l| l.owned) || owned(&ObjectRef::address(a));
        }
    }

    fn diff(&self, cx: &mut PlanCx<'_>) -> Vec<Change> {
        diff(cx.desired, &cx.after_links)
    }

    /// The addresses the plan names and those on links it deletes.
    fn save(&self, cx: &crate::snapshot::SaveCx<'_>, snap: &mut crate::snapshot::Snapshot) {
        let mut keys = std::collections::BTreeSet::new();
        for o in cx.objects() {
            if let crate::plan::Object::Address(a) = o {
                keys.insert(a.key());
            }
        }
        let dropped = cx.dropped_links();
        keys.extend(
            cx.before
                .addresses
                .keys()
                .filter(|(link, _)| dropped.contains(link))
                .cloned(),
        );
        snap.addresses = crate::snapshot::save_marked(&cx.before.addresses, keys, cx.protocols);
    }

    fn restore(&self, snap: &crate::snapshot::Snapshot, target: &mut State) {
        crate::snapshot::restore_marked(&mut target.addresses, &snap.addresses);
    }

    fn restore_protocol(
        &self,
        snap: &crate::snapshot::Snapshot,
        op: &crate::plan::Op,
    ) -> Option<u8> {
        match op {
            crate::plan::Op::AddAddress(a) => {
                crate::snapshot::foreign_protocol(&snap.addresses, &a.key(), snap.protocol)
            }
            _ => None,
        }
    }
}
