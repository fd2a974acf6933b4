//! What `check` says about drift, for reviewers (text), CI systems (JUnit XML) and monitoring
//! (Prometheus textfile collector).

use std::fmt::Write;

use reconcilers::model::State;
use reconcilers::plan::{Action, Change, Plan};
use serde_json::Value;

/// One line per drifted object in plain words, then the warnings about foreign objects.
pub fn drift_text(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        out.push_str(crate::report::text::NO_CHANGES);
        out.push('\n');
    } else {
        let n = plan.changes.len();
        let _ = writeln!(
            out,
            "Drift: {n} object{} differ{} from the desired state:",
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" }
        );
        for c in &plan.changes {
            let _ = writeln!(out, "  {}", drift_line(c));
        }
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

/// `missing link tap-centos`, `extra address 10.0.0.9/24 on br0`,
/// `changed route default table 102: nexthops`.
pub fn drift_line(c: &Change) -> String {
    let o = &c.object;
    match c.action {
        Action::Add => format!("missing {o}"),
        Action::Remove => format!("extra   {o} (created by netconverge, no longer desired)"),
        Action::Change => {
            let fields = changed_fields(c);
            let mut s = format!("changed {o}");
            if !fields.is_empty() {
                let _ = write!(
                    s,
                    ": {} differ{}",
                    fields.join(", "),
                    if fields.len() == 1 { "s" } else { "" }
                );
            }
            if let Some(n) = &c.note {
                let _ = write!(s, " ({n})");
            }
            s
        }
    }
}

/// The top-level fields in which the desired object differs from the observed one (fields the
/// desired state leaves unset are not compared, as in planning).
fn changed_fields(c: &Change) -> Vec<String> {
    let before = serde_json::to_value(&c.before).unwrap_or(Value::Null);
    let after = serde_json::to_value(&c.after).unwrap_or(Value::Null);
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        return vec![];
    };
    let mut out = Vec::new();
    for (k, v) in &a {
        if v.is_null() {
            continue;
        }
        if b.get(k) != Some(v) {
            out.push(k.clone());
        }
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A JUnit XML report: one test case per desired object (failing when it drifted) and one per
/// object netconverge would remove.
pub fn junit(plan: &Plan, desired: &State, hostname: &str) -> String {
    let mut cases = Vec::new();
    for object in reconcilers::planner::object_ids(desired) {
        let change = plan.changes.iter().find(|c| c.object == object);
        cases.push((object, change));
    }
    for c in plan.changes.iter().filter(|c| c.action == Action::Remove) {
        cases.push((c.object.clone(), Some(c)));
    }
    let failures = cases.iter().filter(|c| c.1.is_some()).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"netconverge check\" tests=\"{}\" failures=\"{failures}\">",
        cases.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">",
        xml_escape(hostname),
        cases.len()
    );
    for (object, change) in &cases {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\"",
            object.kind,
            xml_escape(&object.id)
        );
        match change {
            None => out.push_str("/>\n"),
            Some(c) => {
                let line = drift_line(c);
                let _ = writeln!(
                    out,
                    ">\n      <failure type=\"drift\" message=\"{}\"/>\n    </testcase>",
                    xml_escape(&line)
                );
            }
        }
    }
    for w in &plan.warnings {
        let _ = writeln!(
            out,
            "    <system-out>warning: {}</system-out>",
            xml_escape(w)
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Prometheus textfile-collector metrics: drifted objects per kind and the check's time.
pub fn prometheus(plan: &Plan, now_unix: f64) -> String {
    let mut out = String::new();
    out.push_str("# HELP netconverge_drift_objects Objects that differ from the desired state.\n");
    out.push_str("# TYPE netconverge_drift_objects gauge\n");
    for kind in reconcilers::kinds::KINDS.iter().map(|k| k.kind()) {
        let n = plan
            .changes
            .iter()
            .filter(|c| c.object.kind == kind)
            .count();
        let _ = writeln!(
            out,
            "netconverge_drift_objects{{kind=\"{}\"}} {n}",
            kind.name()
        );
    }
    out.push_str("# HELP netconverge_shadowing_foreign_objects Foreign routes/rules that shadow desired ones.\n");
    out.push_str("# TYPE netconverge_shadowing_foreign_objects gauge\n");
    let _ = writeln!(
        out,
        "netconverge_shadowing_foreign_objects {}",
        plan.warnings.len()
    );
    out.push_str(
        "# HELP netconverge_last_check_timestamp_seconds When the last check ran (Unix time).\n",
    );
    out.push_str("# TYPE netconverge_last_check_timestamp_seconds gauge\n");
    let _ = writeln!(
        out,
        "netconverge_last_check_timestamp_seconds {now_unix:.3}"
    );
    out
}
