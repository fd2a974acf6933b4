//! The text plan: a unified diff of each changing object's canonical YAML (observed `---`,
//! desired `+++`) and a summary line.

use std::collections::BTreeMap;
use std::fmt::Write;

use reconcilers::plan::{Action, Plan};
use similar::TextDiff;

use crate::desired::render_object;
use crate::engine::Applied;

/// The line printed when there is nothing to do.
pub const NO_CHANGES: &str = "No changes. The host matches the desired state.";

/// Render a plan as unified diffs plus the `Plan: …` summary line.
pub fn plan(plan: &Plan, tables: &BTreeMap<String, u32>) -> String {
    let mut out = String::new();
    for c in &plan.changes {
        let sign = match c.action {
            Action::Add => '+',
            Action::Change => '~',
            Action::Remove => '-',
        };
        let _ = write!(out, "{sign} {} {}", c.action.name(), c.object);
        if let Some(note) = &c.note {
            let _ = write!(out, "  ({note})");
        }
        out.push('\n');
        let before = c
            .before
            .as_ref()
            .map(|o| render_object(o, tables))
            .unwrap_or_default();
        let after = c
            .after
            .as_ref()
            .map(|o| render_object(o, tables))
            .unwrap_or_default();
        let diff = TextDiff::from_lines(&before, &after);
        let _ = write!(
            out,
            "{}",
            diff.unified_diff()
                .context_radius(100)
                .header("observed", "desired")
        );
        out.push('\n');
    }
    out.push_str(&summary_line(plan));
    out.push('\n');
    out
}

/// `Plan: 3 to add, 1 to change, 1 to remove.` or the no-changes line.
pub fn summary_line(plan: &Plan) -> String {
    if plan.is_empty() {
        NO_CHANGES.to_string()
    } else {
        format!("Plan: {}.", plan.summary())
    }
}

/// The line printed after applying: the counts of the changes applied completely, and when
/// a write failed, which changes were applied, failed and not started.
pub fn applied(applied: &Applied) -> String {
    let s = applied.summary;
    let counts = format!(
        "{} added, {} changed, {} removed in {:.3} s ({} writes)",
        s.add,
        s.change,
        s.remove,
        applied.elapsed.as_secs_f64(),
        applied.writes
    );
    if applied.ok() {
        return format!("Applied: {counts}.");
    }
    let mut out = format!(
        "Applied {} of {} changes ({counts}); failed: {}",
        applied.applied(),
        applied.planned,
        names(&applied.failed)
    );
    if !applied.not_started.is_empty() {
        let _ = write!(out, "; not started: {}", names(&applied.not_started));
    }
    let _ = write!(
        out,
        ".\n{} write(s) failed; the next run converges what is left:",
        applied.failures.len()
    );
    for f in &applied.failures {
        let _ = write!(out, "\n  {f}");
    }
    out
}

fn names(objects: &[reconcilers::model::object::ObjectRef]) -> String {
    objects
        .iter()
        .map(|o| o.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
