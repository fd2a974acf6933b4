//! Composes the per-kind reconcilers into one plan, going through the table of kinds. Each
//! kind diffs its own objects and none calls another; the only hand-over is the observed
//! state after the links being replaced are gone ([`PlanCx::after_links`]), which tells the
//! kinds that live on links what the kernel will drop along with them.

use crate::kind::PlanCx;
use crate::kinds::KINDS;
use crate::model::object::ObjectRef;
use crate::model::State;
use crate::plan::Plan;

/// Plan the changes that turn `observed` into `desired`.
///
/// `desired` must be resolved (tap owners and groups as numeric ids) and `observed` must hold
/// the sysctls `desired` names.
pub fn plan(desired: &State, observed: &State) -> Plan {
    let mut cx = PlanCx::new(desired, observed);
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    for kind in KINDS {
        changes.extend(kind.diff(&mut cx));
        warnings.extend(kind.warnings(desired, observed));
    }
    for c in &mut changes {
        if c.note.is_none() {
            c.note = desired.origins.get(&c.object).cloned();
        }
    }
    Plan {
        changes,
        conflicts: cx.conflicts,
        warnings,
    }
}

/// Every object of `state` with the identity its changes would carry, in plan order (for
/// reports that list objects in sync as well as drifted ones).
pub fn object_ids(state: &State) -> Vec<ObjectRef> {
    crate::kinds::objects(state)
        .into_iter()
        .map(|(r, _)| r)
        .collect()
}
