//! The JSON documents: every one carries `format_version`. The plan:
//! `{"format_version":1,"changes":[{"action","kind","id","before","after","note"}],"summary":{…},
//! "warnings":[…]}` (plus `"applied"` after a reconcile),
//! one document on stdout with stable field names.

use reconcilers::plan::{Plan, Summary};
use serde::Serialize;
use serde_json::Value;

use crate::engine::Applied;
use crate::pass::Failure;

/// The version of every JSON document netconverge prints (its `format_version` field);
/// raised when a field changes meaning or goes away, not when one is added. The schema of
/// every document is `deploy/schema/netconverge.schema.json`.
pub const FORMAT_VERSION: u32 = 1;

/// `doc` (an object) with `format_version` added, pretty-printed.
pub fn document(doc: Value) -> String {
    serde_json::to_string_pretty(&versioned(doc)).unwrap_or_default()
}

/// `doc` (an object) with `format_version` added, on one line (JSON Lines: `watch -o json`).
pub fn line(doc: Value) -> String {
    serde_json::to_string(&versioned(doc)).unwrap_or_default()
}

fn versioned(doc: Value) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("format_version".into(), FORMAT_VERSION.into());
    if let Value::Object(fields) = doc {
        out.extend(fields);
    }
    Value::Object(out)
}

/// Diagnostics as `[{"file","line","column","message"}]`.
pub fn diagnostics(d: &crate::desired::Diagnostics) -> Value {
    d.0.iter()
        .map(|d| {
            serde_json::json!({
                "file": d.file.display().to_string(),
                "line": d.line,
                "column": d.column,
                "message": d.message,
            })
        })
        .collect()
}

/// The document printed on stdout (with `-o json`) when a command fails: what kind of
/// failure, its text, and for invalid input or missing host facts every error with its place.
pub fn failure(f: &Failure) -> String {
    document(failure_fields(f))
}

/// The fields of the failure document: `{"error":{"kind","message"},"errors":[…]}`, and for
/// a command that did part of its work (`error.kind` `incomplete`) its `report`.
pub fn failure_fields(f: &Failure) -> Value {
    let (kind, errors) = match f {
        Failure::Invalid(d) => ("invalid", diagnostics(d)),
        Failure::HostFacts(d) => ("host_facts", diagnostics(d)),
        Failure::Refused(_) => ("refused", Value::Array(Vec::new())),
        Failure::Partial { .. } => ("incomplete", Value::Array(Vec::new())),
        _ => ("error", Value::Array(Vec::new())),
    };
    let mut fields = serde_json::json!({
        "error": { "kind": kind, "message": f.to_string() },
        "errors": errors,
    });
    if let Failure::Partial { report, .. } = f {
        fields["report"] = report.clone();
    }
    fields
}

#[derive(Serialize)]
struct JsonChange<'a> {
    action: &'static str,
    kind: &'static str,
    id: &'a str,
    before: Value,
    after: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    may_cut_connectivity: bool,
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

impl JsonApplied {
    fn of(a: &Applied) -> JsonApplied {
        JsonApplied {
            writes: a.writes,
            seconds: a.elapsed.as_secs_f64(),
            failures: a.failures.iter().map(|f| f.to_string()).collect(),
            planned: a.planned,
            summary: a.summary,
            failed: objects(&a.failed),
            not_started: objects(&a.not_started),
        }
    }
}

/// What an apply did, as the plan document's `applied` member.
pub fn applied(a: &Applied) -> Value {
    serde_json::to_value(JsonApplied::of(a)).unwrap_or_default()
}

fn objects(refs: &[reconcilers::model::object::ObjectRef]) -> Vec<JsonObject> {
    refs.iter()
        .map(|o| JsonObject {
            kind: o.kind.name(),
            id: o.id.clone(),
        })
        .collect()
}

/// A plan's own fields, shared by the plan document and the revert's (`rollback`).
#[derive(Serialize)]
struct JsonPlanBody<'a> {
    changes: Vec<JsonChange<'a>>,
    summary: Summary,
    warnings: &'a [String],
}

/// The changes of a plan as the documents show them; `cuts[i]` marks change `i` as one that
/// may cut connectivity.
fn json_changes<'a>(
    changes: &'a [reconcilers::plan::Change],
    tables: &std::collections::BTreeMap<String, u32>,
    cuts: &[bool],
) -> Vec<JsonChange<'a>> {
    changes
        .iter()
        .enumerate()
        .map(|(i, c)| JsonChange {
            action: c.action.name(),
            kind: c.object.kind.name(),
            id: &c.object.id,
            before: as_written(c.before.as_ref(), tables),
            after: as_written(c.after.as_ref(), tables),
            note: c.note.as_deref(),
            may_cut_connectivity: cuts.get(i).copied().unwrap_or(false),
        })
        .collect()
}

impl<'a> JsonPlanBody<'a> {
    fn of(plan: &'a Plan, tables: &std::collections::BTreeMap<String, u32>, cuts: &[bool]) -> Self {
        JsonPlanBody {
            changes: json_changes(&plan.changes, tables, cuts),
            summary: plan.summary(),
            warnings: &plan.warnings,
        }
    }
}

/// The plan document. Its `changes` are pretty-printed apart, already indented for their
/// place in the document, so that they can be made before the document is (see [`Written`]);
/// the output is the same as printing the document in one go.
#[derive(Serialize)]
struct JsonPlan<'a> {
    format_version: u32,
    changes: &'a serde_json::value::RawValue,
    summary: Summary,
    warnings: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<JsonApplied>,
}

/// A plan's `changes` as the plan document prints them: most of the cost of that document
/// (each object is rendered as YAML and read back), so `reconcile` makes them on another
/// thread while the writes run rather than after them.
#[derive(Debug)]
pub struct Written(Box<serde_json::value::RawValue>);

impl Written {
    /// The `changes` of the plan document for `changes`; `cuts[i]` marks change `i` as one
    /// that may cut connectivity.
    pub fn of(
        changes: &[reconcilers::plan::Change],
        tables: &std::collections::BTreeMap<String, u32>,
        cuts: &[bool],
    ) -> Written {
        let list = json_changes(changes, tables, cuts);
        let text = serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".into());
        // One level deeper, as the value of a member of the document. JSON strings hold no
        // raw line break, so every line break is one between tokens.
        let text = text.replace('\n', "\n  ");
        Written(
            serde_json::value::RawValue::from_string(text).unwrap_or_else(|_| {
                serde_json::value::RawValue::from_string("[]".into()).expect("valid JSON")
            }),
        )
    }

    /// [`Written::of`] the changes of `plan` on a thread of its own.
    pub fn spawn(
        plan: &Plan,
        tables: &std::collections::BTreeMap<String, u32>,
        cuts: Vec<bool>,
    ) -> std::thread::JoinHandle<Written> {
        // Without their writes, which the document does not show.
        let changes: Vec<reconcilers::plan::Change> = plan
            .changes
            .iter()
            .map(|c| reconcilers::plan::Change {
                action: c.action,
                object: c.object.clone(),
                before: c.before.clone(),
                after: c.after.clone(),
                note: c.note.clone(),
                ops: Vec::new(),
            })
            .collect();
        let tables = tables.clone();
        std::thread::spawn(move || Written::of(&changes, &tables, &cuts))
    }
}

/// An object as the user writes it: the YAML `show` prints for it, read as JSON
/// (`{"links":{"br0":{"kind":"bridge",…}}}`); the generated files as text for the firewall
/// and DHCP; `null` for none.
fn as_written(
    object: Option<&reconcilers::plan::Object>,
    tables: &std::collections::BTreeMap<String, u32>,
) -> Value {
    let Some(o) = object else {
        return Value::Null;
    };
    let text = crate::desired::render_object(o, tables);
    match o {
        // Generated, not written by the user: the files as text (the nft ruleset, the
        // dnsmasq configuration), as the text plan shows them.
        reconcilers::plan::Object::Firewall(_) | reconcilers::plan::Object::Dhcp(_) => {
            Value::String(text)
        }
        _ => serde_saphyr::from_str::<Value>(&text).unwrap_or(Value::String(text)),
    }
}

/// Render a plan (and, after a reconcile, what was applied) as one JSON document, with its
/// changes as [`Written`] made them (ahead, or just before).
pub fn plan(plan: &Plan, applied: Option<&Applied>, written: &Written) -> String {
    let doc = JsonPlan {
        format_version: FORMAT_VERSION,
        changes: &written.0,
        summary: plan.summary(),
        warnings: &plan.warnings,
        applied: applied.map(JsonApplied::of),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// A plan's `changes`, `summary` and `warnings`, as in the plan document, for documents that
/// hold a plan (the revert of `rollback`).
pub fn plan_body(plan: &Plan, tables: &std::collections::BTreeMap<String, u32>) -> Value {
    serde_json::to_value(JsonPlanBody::of(plan, tables, &[])).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan document printed in one go, as it was before its changes were made apart.
    #[derive(Serialize)]
    struct OneGo<'a> {
        format_version: u32,
        changes: Vec<JsonChange<'a>>,
        summary: Summary,
        warnings: &'a [String],
    }

    #[test]
    fn changes_made_apart_print_the_same_document_as_in_one_go() {
        let yaml = "links:\n  br0:\n    kind: bridge\n    addresses: [10.0.0.1/24]\n  \
                    tap0: { kind: tap, master: br0 }\nroutes:\n  - { to: 10.9.0.0/16, via: 10.0.0.254 }\n";
        let d = crate::desired::load_str(yaml, std::path::Path::new("t.yaml")).expect("valid");
        let mut plan = reconcilers::planner::plan(&d.state, &Default::default());
        plan.warnings.push("a warning".into());
        // A line break inside a string stays escaped, not indented.
        plan.changes[0].note = Some("line one\nline two".into());
        assert!(plan.changes.len() >= 4, "{plan:?}");
        let cuts: Vec<bool> = (0..plan.changes.len()).map(|i| i == 1).collect();
        let one_go = serde_json::to_string_pretty(&OneGo {
            format_version: FORMAT_VERSION,
            changes: json_changes(&plan.changes, &d.tables, &cuts),
            summary: plan.summary(),
            warnings: &plan.warnings,
        })
        .expect("serialises");
        let ahead = Written::spawn(&plan, &d.tables, cuts.clone())
            .join()
            .expect("renders");
        assert_eq!(super::plan(&plan, None, &ahead), one_go);
        let here = Written::of(&plan.changes, &d.tables, &cuts);
        assert_eq!(super::plan(&plan, None, &here), one_go);
        let doc: Value = serde_json::from_str(&one_go).expect("JSON");
        assert_eq!(doc["changes"][1]["may_cut_connectivity"], true);
        assert_eq!(doc["changes"][0]["may_cut_connectivity"], false);
    }

    #[test]
    fn an_empty_plan_prints_an_empty_list() {
        let p = Plan::default();
        let written = Written::of(&p.changes, &Default::default(), &[]);
        let doc: Value = serde_json::from_str(&plan(&p, None, &written)).expect("JSON");
        assert_eq!(doc["changes"], Value::Array(Vec::new()));
        assert_eq!(doc["format_version"], FORMAT_VERSION);
    }
}
