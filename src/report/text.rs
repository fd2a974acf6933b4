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

/// Above this many changes the plan is one line per object unless `--diff` is given.
pub const SUMMARY_ABOVE: usize = 200;

/// How a plan is printed for people.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanStyle {
    /// ANSI colours: additions green, changes yellow, removals red.
    pub color: bool,
    /// One line per object instead of its diff.
    pub summary: bool,
    /// The summary was chosen for the plan's size, not asked for: say how to see the diffs.
    pub summary_by_size: bool,
}

impl PlanStyle {
    /// The style for a plan of `changes` changes: `--summary` / `--diff` as given, else one
    /// line per object above [`SUMMARY_ABOVE`] changes.
    pub fn for_size(color: bool, summary: bool, diff: bool, changes: usize) -> PlanStyle {
        let by_size = !summary && !diff && changes > SUMMARY_ABOVE;
        PlanStyle {
            color,
            summary: summary || by_size,
            summary_by_size: by_size,
        }
    }
}

/// The mark of a change that can cut the connection the plan is applied over.
pub const MAY_CUT: &str = "(may cut connectivity)";

/// The style of a change's action, and of the diff lines that add (`+`) or remove (`-`).
fn style_of(action: Action) -> anstyle::Style {
    let colour = match action {
        Action::Add => anstyle::AnsiColor::Green,
        Action::Change => anstyle::AnsiColor::Yellow,
        Action::Remove => anstyle::AnsiColor::Red,
    };
    anstyle::Style::new().fg_color(Some(colour.into()))
}

/// `line` in `style` when colours are on.
fn paint(out: &mut String, line: &str, style: anstyle::Style, color: bool) {
    if color {
        let _ = write!(out, "{}{line}{}", style.render(), style.render_reset());
    } else {
        out.push_str(line);
    }
}

/// Render a plan as unified diffs (or, in summary style, one line per object) plus the
/// `Plan: …` summary line. `cuts[i]` marks change `i` as one that may cut connectivity.
pub fn plan(
    plan: &Plan,
    tables: &BTreeMap<String, u32>,
    style: PlanStyle,
    cuts: &[bool],
) -> String {
    let mut out = String::new();
    for (i, c) in plan.changes.iter().enumerate() {
        let sign = match c.action {
            Action::Add => '+',
            Action::Change => '~',
            Action::Remove => '-',
        };
        let mut head = format!("{sign} {} {}", c.action.name(), c.object);
        if let Some(note) = &c.note {
            let _ = write!(head, "  ({note})");
        }
        if cuts.get(i).copied().unwrap_or(false) {
            let _ = write!(head, "  {MAY_CUT}");
        }
        paint(&mut out, &head, style_of(c.action).bold(), style.color);
        out.push('\n');
        if !style.summary {
            diff(&mut out, c, tables, style.color);
        }
    }
    if style.summary_by_size {
        let _ = writeln!(
            out,
            "({} changes: one line each; `--diff` prints the diff of every object.)",
            plan.changes.len()
        );
    }
    out.push_str(&summary_line(plan));
    out.push('\n');
    out
}

/// The unified diff of one change's canonical YAML.
fn diff(
    out: &mut String,
    c: &reconcilers::plan::Change,
    tables: &BTreeMap<String, u32>,
    color: bool,
) {
    let render = |o: &Option<reconcilers::plan::Object>| {
        o.as_ref()
            .map(|o| render_object(o, tables))
            .unwrap_or_default()
    };
    let (before, after) = (render(&c.before), render(&c.after));
    let text = TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(100)
        .header("observed", "desired")
        .to_string();
    for line in text.lines() {
        let style = match line.as_bytes().first() {
            _ if line.starts_with("+++") || line.starts_with("---") => anstyle::Style::new().bold(),
            Some(b'+') => style_of(Action::Add),
            Some(b'-') => style_of(Action::Remove),
            Some(b'@') => anstyle::Style::new().fg_color(Some(anstyle::AnsiColor::Cyan.into())),
            _ => anstyle::Style::new(),
        };
        paint(out, line, style, color);
        out.push('\n');
    }
    out.push('\n');
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
