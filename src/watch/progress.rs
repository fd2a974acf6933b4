//! What the daemon last did, in one line for systemd's `STATUS=` (shown by `systemctl status`):
//! the last pass and its result, the last apply, what is still pending, the last error.

use std::time::SystemTime;

use crate::engine::Applied;

/// The longest error kept in the line: `systemctl status` shows one line.
const ERROR_CHARS: usize = 160;

/// The daemon's recent history, updated after every pass.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// When the last pass ended, and how.
    last_pass: Option<(SystemTime, Ended)>,
    /// When the last apply with writes ended: changes applied, writes sent.
    last_apply: Option<(SystemTime, usize, u64)>,
    /// Changes still to do after the last pass, when known.
    pending: Option<usize>,
    /// The last error, with its time.
    last_error: Option<(SystemTime, String)>,
}

/// How a pass ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    InSync,
    Pending,
    Failed,
}

impl Progress {
    /// A pass planned, and maybe applied; `unverified` objects are not held as written.
    pub fn passed(
        &mut self,
        now: SystemTime,
        planned: usize,
        applied: Option<&Applied>,
        unverified: &[String],
    ) {
        let pending = match applied {
            Some(a) => {
                if a.applied() > 0 || a.writes > 0 {
                    self.last_apply = Some((now, a.applied(), a.writes));
                }
                if let Some(e) = a.failures.first() {
                    self.error(now, &e.to_string());
                }
                a.failed.len() + a.not_started.len() + unverified.len()
            }
            None => planned,
        };
        if let Some(u) = unverified.first() {
            self.error(now, &format!("the kernel does not hold {u} as written"));
        }
        let result = match (applied.is_some_and(|a| !a.ok()), pending) {
            (true, _) => Ended::Failed,
            (false, 0) => Ended::InSync,
            (false, _) => Ended::Pending,
        };
        self.last_pass = Some((now, result));
        self.pending = Some(pending);
    }

    /// A pass (or a reload) that failed before or without a plan.
    pub fn failed(&mut self, now: SystemTime, error: &str) {
        self.error(now, error);
        self.last_pass = Some((now, Ended::Failed));
        self.pending = None;
    }

    /// Record an error that did not end a pass (an invalid edit: the last good state stays).
    pub fn error(&mut self, now: SystemTime, error: &str) {
        let first = error.lines().next().unwrap_or_default();
        let mut kept: String = first.chars().take(ERROR_CHARS).collect();
        if kept.len() < first.len() || error.lines().nth(1).is_some() {
            kept.push('…');
        }
        self.last_error = Some((now, kept));
    }

    /// The status line, e.g. `last pass 2026-12-01T12:00:00Z: in sync; last apply
    /// 2026-12-01T11:58:00Z: 3 changes, 7 writes`.
    pub fn line(&self) -> String {
        let mut parts = Vec::new();
        match self.last_pass {
            None => parts.push("starting".to_string()),
            Some((t, r)) => {
                let what = match (r, self.pending) {
                    (Ended::InSync, _) => "in sync".to_string(),
                    (Ended::Failed, Some(n)) if n > 0 => format!("failed, {n} changes pending"),
                    (Ended::Failed, _) => "failed".to_string(),
                    (Ended::Pending, n) => format!("{} changes pending", n.unwrap_or(0)),
                };
                parts.push(format!("last pass {}: {what}", stamp(t)));
            }
        }
        if let Some((t, changes, writes)) = self.last_apply {
            parts.push(format!(
                "last apply {}: {changes} changes, {writes} writes",
                stamp(t)
            ));
        }
        if let Some((t, e)) = &self.last_error {
            parts.push(format!("last error {}: {e}", stamp(*t)));
        }
        parts.join("; ")
    }
}

fn stamp(t: SystemTime) -> humantime::Rfc3339Timestamp {
    humantime::format_rfc3339_seconds(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_796_169_600 + s)
    }

    fn applied(changes: usize, writes: u64) -> Applied {
        let mut a = Applied {
            summary: Default::default(),
            planned: changes,
            failures: Vec::new(),
            failed: Vec::new(),
            not_started: Vec::new(),
            writes,
            elapsed: Duration::ZERO,
        };
        a.summary.add = changes;
        a
    }

    #[test]
    fn starting_then_applied_then_in_sync() {
        let mut p = Progress::default();
        assert_eq!(p.line(), "starting");
        p.passed(at(0), 3, Some(&applied(3, 7)), &[]);
        assert_eq!(
            p.line(),
            "last pass 2026-12-02T00:00:00Z: in sync; last apply 2026-12-02T00:00:00Z: 3 changes, 7 writes"
        );
        p.passed(at(60), 0, None, &[]);
        assert_eq!(
            p.line(),
            "last pass 2026-12-02T00:01:00Z: in sync; last apply 2026-12-02T00:00:00Z: 3 changes, 7 writes"
        );
    }

    #[test]
    fn a_failed_write_leaves_changes_pending_and_an_error() {
        let mut p = Progress::default();
        let mut a = applied(1, 3);
        a.failures.push(reconcilers::error::KernelError::io(
            "add",
            "route 10.9.0.0/16",
            std::io::Error::from_raw_os_error(libc::ENETUNREACH),
        ));
        a.failed.push(reconcilers::model::object::ObjectRef::new(
            reconcilers::model::object::ObjectKind::Route,
            "10.9.0.0/16",
        ));
        a.not_started
            .push(reconcilers::model::object::ObjectRef::new(
                reconcilers::model::object::ObjectKind::Rule,
                "1000",
            ));
        p.passed(at(5), 4, Some(&a), &[]);
        let line = p.line();
        assert!(line.starts_with("last pass 2026-12-02T00:00:05Z: failed, 2 changes pending; last apply 2026-12-02T00:00:05Z: 1 changes, 3 writes; last error 2026-12-02T00:00:05Z: "), "{line}");
        assert!(line.contains("route 10.9.0.0/16"), "{line}");
    }

    #[test]
    fn unverified_objects_and_plans_without_an_apply_are_pending() {
        let mut p = Progress::default();
        p.passed(
            at(0),
            0,
            Some(&applied(2, 2)),
            &["sysctl net.ipv4.ip_forward".into()],
        );
        assert!(
            p.line()
                .starts_with("last pass 2026-12-02T00:00:00Z: 1 changes pending;"),
            "{}",
            p.line()
        );
        assert!(p
            .line()
            .ends_with("the kernel does not hold sysctl net.ipv4.ip_forward as written"));
        let mut p = Progress::default();
        p.passed(at(0), 2, None, &[]);
        assert_eq!(
            p.line(),
            "last pass 2026-12-02T00:00:00Z: 2 changes pending"
        );
    }

    #[test]
    fn errors_are_cut_to_one_short_line() {
        let mut p = Progress::default();
        p.failed(at(1), "desired/a.yaml:3:5: unknown key\n  more detail");
        assert_eq!(
            p.line(),
            "last pass 2026-12-02T00:00:01Z: failed; last error 2026-12-02T00:00:01Z: desired/a.yaml:3:5: unknown key…"
        );
        p.error(at(2), &"x".repeat(500));
        let e = p.line().rsplit(": ").next().unwrap().to_string();
        assert_eq!(e.chars().count(), ERROR_CHARS + 1);
    }
}
