//! The policy rules reconciler.

use crate::model::object::ObjectRef;
use crate::model::{RuleKey, State};
use crate::plan::{Action, Change, Object, Op};

/// Diff rules. Rules have no in-place replace in the kernel, so a changed rule is deleted and
/// added again (in the delete and add phases of the plan). Like routes, a foreign rule at a
/// desired key is replaced only when it differs, and foreign rules are never removed.
pub fn diff(desired: &State, observed: &State) -> Vec<Change> {
    let mut out = Vec::new();
    for (key, d) in &desired.rules {
        match observed.rules.get(key) {
            None => out.push(Change {
                action: Action::Add,
                object: ObjectRef::rule(d),
                before: None,
                after: Some(Object::Rule(d.clone())),
                note: None,
                ops: vec![Op::AddRule(d.clone())],
            }),
            Some(o) if o.action == d.action => {}
            Some(o) => out.push(Change {
                action: Action::Change,
                object: ObjectRef::rule(d),
                before: Some(Object::Rule(o.clone())),
                after: Some(Object::Rule(d.clone())),
                note: (!o.owned).then(|| "replace foreign rule".to_string()),
                ops: vec![Op::DeleteRule(o.clone()), Op::AddRule(d.clone())],
            }),
        }
    }
    for (key, o) in &observed.rules {
        if o.owned && !desired.rules.contains_key(key) {
            out.push(Change {
                action: Action::Remove,
                object: ObjectRef::rule(o),
                before: Some(Object::Rule(o.clone())),
                after: None,
                note: None,
                ops: vec![Op::DeleteRule(o.clone())],
            });
        }
    }
    out
}

/// Foreign rules evaluated before a desired rule with the same selector but another action:
/// the desired rule never matches. `check` warns about them.
pub fn shadows(desired: &State, observed: &State) -> Vec<String> {
    let mut out = Vec::new();
    for d in desired.rules.values() {
        for o in observed.rules.values() {
            let same_selector = RuleKey {
                priority: 0,
                ..o.key.clone()
            } == RuleKey {
                priority: 0,
                ..d.key.clone()
            };
            if !o.owned && o.key.priority < d.key.priority && same_selector && o.action != d.action
            {
                out.push(format!(
                    "foreign rule {} shadows desired rule {} (same selector, earlier priority)",
                    o.id(),
                    d.id()
                ));
            }
        }
    }
    out
}
