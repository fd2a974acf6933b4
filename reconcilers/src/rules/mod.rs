//! The rules reconciler (diff) and its rtnetlink codec (netlink).

pub mod netlink;

mod diff;

pub use diff::{diff, shadows};

use crate::kind::{self, Kind, PlanCx};
use crate::model::object::{ObjectKind, ObjectRef};
use crate::model::State;
use crate::plan::Change;

/// Rules in the table of kinds.
pub struct Rules;

/// The rules kind.
pub static KIND: Rules = Rules;

impl Kind for Rules {
    fn kind(&self) -> ObjectKind {
        ObjectKind::Rule
    }

    fn objects(&self, state: &State) -> Vec<(ObjectRef, bool)> {
        kind::marked_objects(state.rules.values())
    }

    fn set_owned(&self, state: &mut State, owned: &dyn Fn(&ObjectRef) -> bool) {
        kind::set_marks(state.rules.values_mut(), owned);
    }

    /// Kept means at the same key: a changed gateway or action still keeps the object.
    fn owned_kept(&self, desired: &State, observed: &State) -> kind::OwnedKept {
        kind::owned_kept_by_key(&desired.rules, &observed.rules)
    }

    fn diff(&self, cx: &mut PlanCx<'_>) -> Vec<Change> {
        diff(cx.desired, &cx.after_links)
    }

    fn warnings(&self, desired: &State, observed: &State) -> Vec<String> {
        shadows(desired, observed)
    }

    fn save(&self, cx: &crate::snapshot::SaveCx<'_>, snap: &mut crate::snapshot::Snapshot) {
        let keys = cx
            .objects()
            .filter_map(|o| match o {
                crate::plan::Object::Rule(r) => Some(r.key()),
                _ => None,
            })
            .collect();
        snap.rules = crate::snapshot::save_marked(&cx.before.rules, keys, cx.protocols);
    }

    fn restore(&self, snap: &crate::snapshot::Snapshot, target: &mut State) {
        crate::snapshot::restore_marked(&mut target.rules, &snap.rules);
    }

    fn restore_protocol(
        &self,
        snap: &crate::snapshot::Snapshot,
        op: &crate::plan::Op,
    ) -> Option<u8> {
        match op {
            crate::plan::Op::AddRule(r) => {
                crate::snapshot::foreign_protocol(&snap.rules, &r.key(), snap.protocol)
            }
            _ => None,
        }
    }
}
