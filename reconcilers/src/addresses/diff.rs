//! The addresses reconciler.

use crate::model::object::ObjectRef;
use crate::model::State;
use crate::plan::{Action, Change, Object, Op};

/// Diff addresses. `observed` must already reflect link replacements (see
/// `links::without_replaced`): addresses on recreated links are added again, and those on
/// deleted links are not deleted one by one.
///
/// Observed addresses that are not desired are removed only when they are netconverge's (its
/// address protocol, or a link it created) and their link still exists afterwards.
pub fn diff(desired: &State, observed: &State) -> Vec<Change> {
    let mut out = Vec::new();
    for (key, d) in &desired.addresses {
        if !observed.addresses.contains_key(key) {
            out.push(Change {
                action: Action::Add,
                object: ObjectRef::address(d),
                before: None,
                after: Some(Object::Address(d.clone())),
                note: None,
                ops: vec![Op::AddAddress(d.clone())],
            });
        }
    }
    for (key, o) in &observed.addresses {
        if o.owned && !desired.addresses.contains_key(key) && observed.links.contains_key(&o.link) {
            out.push(Change {
                action: Action::Remove,
                object: ObjectRef::address(o),
                before: Some(Object::Address(o.clone())),
                after: None,
                note: None,
                ops: vec![Op::DeleteAddress(o.clone())],
            });
        }
    }
    out
}
