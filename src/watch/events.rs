//! `watch -o json`: what the daemon does, for programs, as JSON Lines — one document per
//! line on stdout, each with `format_version`, `time` (Unix seconds) and `event`:
//!
//! - `started`: the desired path and the namespace;
//! - `pass`: why it ran (`triggers`), its plan in short (`summary`, `changes` as action, kind,
//!   id and note), what was applied (`applied`, as in `reconcile -o json`, `null` when nothing
//!   was), what the kernel does not hold as written (`unverified`) and its `error`;
//! - `invalid`: an edit refused (every error with its place); the last good state stays;
//! - `fight`: an object something keeps undoing;
//! - `stopped`: the daemon ends (`reason`: `signal`, `once`, `namespace_gone`).
//!
//! The log for people stays on stderr (the journal), as without `-o json`.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use reconcilers::model::object::ObjectRef;
use reconcilers::plan::Plan;
use serde_json::{json, Value};

use crate::engine::Applied;
use crate::pass::Failure;
use crate::report::json;

/// Where the lines go.
pub trait Sink: Send + Sync {
    /// Write one line (without its newline).
    fn line(&self, line: &str);
}

/// Standard output, flushed after every line so a reader sees each event when it happens.
#[derive(Default)]
pub struct Stdout {
    /// A write failed (the reader went away): said once, then the lines are dropped.
    failed: std::sync::atomic::AtomicBool,
}

impl Sink for Stdout {
    fn line(&self, line: &str) {
        use std::sync::atomic::Ordering;
        if self.failed.load(Ordering::Relaxed) {
            return;
        }
        let mut out = std::io::stdout().lock();
        // The daemon ignores SIGPIPE (see main.rs): a reader that goes away must not stop the
        // reconciling, only its events.
        if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            self.failed.store(true, Ordering::Relaxed);
            tracing::warn!(
                "cannot write the -o json events to stdout ({e}); the daemon goes on without them"
            );
        }
    }
}

/// Lines kept in memory (tests).
#[derive(Default)]
pub struct Memory(pub Mutex<Vec<String>>);

impl Sink for Memory {
    fn line(&self, line: &str) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(line.to_string());
        }
    }
}

/// The daemon's events, to a sink or nowhere (without `-o json`).
#[derive(Clone, Default)]
pub struct Events(Option<Arc<dyn Sink>>);

/// What a pass did, for its event.
pub struct PassReport<'a> {
    /// Why it ran: `start`, `follow_up` (the check after an apply) or the burst's triggers.
    pub triggers: &'a [&'static str],
    /// Its plan, when it got that far.
    pub plan: Option<&'a Plan>,
    /// What was applied, if anything.
    pub applied: Option<&'a Applied>,
    /// Objects the kernel does not hold as written after the apply.
    pub unverified: &'a [String],
    /// Why it failed, if it did.
    pub error: Option<&'a Failure>,
    /// How long it took.
    pub seconds: f64,
}

impl Events {
    /// Events written to `sink`.
    pub fn to(sink: Arc<dyn Sink>) -> Events {
        Events(Some(sink))
    }

    fn emit(&self, event: &str, fields: Value) {
        let Some(sink) = &self.0 else {
            return;
        };
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut doc = json!({ "time": time, "event": event });
        if let (Value::Object(doc), Value::Object(fields)) = (&mut doc, fields) {
            doc.extend(fields);
        }
        sink.line(&json::line(doc));
    }

    /// The daemon starts watching `path` in `netns` (`None`: its own namespace).
    pub fn started(&self, path: &Path, netns: Option<&str>) {
        let fields = json!({ "desired": path.display().to_string(), "netns": netns });
        self.emit("started", fields);
    }

    /// A pass ended.
    pub fn pass(&self, p: &PassReport<'_>) {
        let changes: Vec<Value> = p
            .plan
            .map(|plan| plan.changes.iter().map(change).collect())
            .unwrap_or_default();
        let fields = json!({
            "triggers": p.triggers,
            "ok": p.error.is_none() && p.applied.is_none_or(Applied::ok) && p.unverified.is_empty(),
            "seconds": p.seconds,
            "summary": p.plan.map(Plan::summary),
            "changes": changes,
            "applied": p.applied.map(json::applied),
            "unverified": p.unverified,
            "error": p.error.map(error),
        });
        self.emit("pass", fields);
    }

    /// An edit was refused; the state in force stays.
    pub fn invalid(&self, failure: &Failure) {
        self.emit("invalid", json!({ "error": error(failure) }));
    }

    /// `object` was undone `times` times within the fight window.
    pub fn fight(&self, object: &ObjectRef, times: usize) {
        let fields = json!({ "kind": object.kind.name(), "id": object.id, "times": times });
        self.emit("fight", fields);
    }

    /// The daemon ends, for `reason`.
    pub fn stopped(&self, reason: &str) {
        self.emit("stopped", json!({ "reason": reason }));
    }
}

/// A change in short: what the log line says.
fn change(c: &reconcilers::plan::Change) -> Value {
    json!({
        "action": c.action.name(),
        "kind": c.object.kind.name(),
        "id": c.object.id,
        "note": c.note,
    })
}

/// A failure as the failure document says it: its kind, its text, every error's place.
fn error(f: &Failure) -> Value {
    let doc = json::failure_fields(f);
    json!({ "kind": doc["error"]["kind"], "message": doc["error"]["message"], "errors": doc["errors"] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_is_one_line_with_its_version_time_and_kind() {
        let memory = Arc::new(Memory::default());
        let events = Events::to(memory.clone());
        events.started(Path::new("/etc/netconverge"), Some("lab"));
        events.invalid(&Failure::Message("bad".into()));
        events.stopped("signal");
        Events::default().stopped("nowhere");
        let lines = memory.0.lock().unwrap().clone();
        assert_eq!(lines.len(), 3);
        let docs: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kinds: Vec<&str> = docs.iter().map(|d| d["event"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["started", "invalid", "stopped"]);
        assert!(docs.iter().all(|d| d["format_version"] == 1));
        assert!(docs.iter().all(|d| d["time"].as_f64().unwrap() > 1.6e9));
        assert_eq!(docs[0]["netns"], "lab");
        assert_eq!(docs[1]["error"]["message"], "bad");
        assert_eq!(docs[2]["reason"], "signal");
        assert!(lines.iter().all(|l| !l.contains('\n')));
    }
}
