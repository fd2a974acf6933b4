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

    fn diff(&self, cx: &mut PlanCx<'_>) -> Vec<Change> {
        let d = diff(cx.desired, cx.observed);
        cx.after_links = without_replaced(cx.observed, &d.replaced);
        cx.conflicts.extend(d.conflicts);
        d.changes
    }
}
