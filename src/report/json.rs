//! The JSON plan: `{"changes":[{"action","kind","id","before","after","note"}],"summary":{…},
//! "warnings":[…]}` (plus `"applied"` after a reconcile),
//! one document on stdout with stable field names.

use reconcilers::plan::{Plan, Summary};
use serde::Serialize;
use serde_json::Value;

use crate::engine::Applied;

#[derive(Serialize)]
struct JsonChange<'a> {
    action: &'static str,
    kind: &'static str,
    id: &'a str,
    before: Value,
    after: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonApplied {
    writes: u64,
    seconds: f64,
    failures: Vec<String>,
}

#[derive(Serialize)]
struct JsonPlan<'a> {
    changes: Vec<JsonChange<'a>>,
    summary: Summary,
    warnings: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<JsonApplied>,
}

/// Render a plan (and, after a reconcile, what was applied) as one JSON document.
pub fn plan(plan: &Plan, applied: Option<&Applied>) -> String {
    let doc = JsonPlan {
        changes: plan
            .changes
            .iter()
            .map(|c| JsonChange {
                action: c.action.name(),
                kind: c.object.kind.name(),
                id: &c.object.id,
                before: serde_json::to_value(&c.before).unwrap_or(Value::Null),
                after: serde_json::to_value(&c.after).unwrap_or(Value::Null),
                note: c.note.as_deref(),
            })
            .collect(),
        summary: plan.summary(),
        warnings: &plan.warnings,
        applied: applied.map(|a| JsonApplied {
            writes: a.writes,
            seconds: a.elapsed.as_secs_f64(),
            failures: a.failures.iter().map(|f| f.to_string()).collect(),
        }),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
