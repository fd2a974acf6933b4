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
}
