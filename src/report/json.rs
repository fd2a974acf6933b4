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
struct JsonObject {
    kind: &'static str,
    id: String,
}

/// After a reconcile: `summary` counts only the changes applied completely; `failed` and
/// `not_started` name the others.
#[derive(Serialize)]
struct JsonApplied {
    writes: u64,
    seconds: f64,
    failures: Vec<String>,
    planned: usize,
    summary: Summary,
    failed: Vec<JsonObject>,
    not_started: Vec<JsonObject>,
}

fn objects(refs: &[reconcilers::model::object::ObjectRef]) -> Vec<JsonObject> {
    refs.iter()
        .map(|o| JsonObject {
            kind: o.kind.name(),
            id: o.id.clone(),
        })
        .collect()
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
            planned: a.planned,
            summary: a.summary,
            failed: objects(&a.failed),
            not_started: objects(&a.not_started),
        }),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
