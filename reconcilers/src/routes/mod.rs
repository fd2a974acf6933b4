//! The routes reconciler (diff) and its rtnetlink codec (netlink).

pub mod netlink;

mod diff;

pub use diff::{diff, id, shadows};

use crate::kinds::{Kind, PlanCx};
use crate::model::State;
use crate::object::{ObjectKind, ObjectRef};
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
        state
            .routes
            .values()
            .map(|r| (ObjectRef::route(r), r.owned))
            .collect()
    }

    fn set_owned(&self, state: &mut State, owned: &dyn Fn(&ObjectRef) -> bool) {
        for r in state.routes.values_mut() {
            r.owned = owned(&ObjectRef::route(r));
        }
    }

    /// Kept means at the same key: a changed gateway or action still keeps the object.
    fn owned_kept(&self, desired: &State, observed: &State) -> (usize, usize) {
        let owned = observed.routes.values().filter(|r| r.owned);
        let kept = owned
            .clone()
            .filter(|r| desired.routes.contains_key(&r.key()))
            .count();
        (owned.count(), kept)
    }

    fn diff(&self, cx: &mut PlanCx<'_>) -> Vec<Change> {
        diff(cx.desired, &cx.after_links)
    }

    fn warnings(&self, desired: &State, observed: &State) -> Vec<String> {
        shadows(desired, observed)
    }
}
