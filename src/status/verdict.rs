//! The verdict of `netconverge status` from what it read: no daemon, healthy or degraded (and
//! why), with its exit status.

use std::process::ExitCode;

use super::file::DaemonState;

/// How the namespace's watcher is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No watcher runs for the namespace (no state file, or one left by a dead daemon).
    NoDaemon,
    /// The watcher runs and its last pass converged.
    Healthy,
    /// The watcher runs, but something needs attention: the reasons, in words.
    Degraded(Vec<String>),
}

impl Verdict {
    /// The verdict on the state file `state` (`None`: there is none); `alive` says whether
    /// the process it names is still the daemon that wrote it.
    pub fn of(state: Option<&DaemonState>, alive: bool) -> Verdict {
        let Some(s) = state.filter(|_| alive) else {
            return Verdict::NoDaemon;
        };
        let mut why = Vec::new();
        if let Some(p) = &s.last_pass {
            if !p.ok {
                why.push("the last pass failed".to_string());
            }
            for u in &p.unverified {
                why.push(format!("drift pending: {u}"));
            }
        }
        // An error after the last pass (a reload refused): the daemon runs on an older state.
        if let Some(e) = &s.last_error {
            if s.last_pass.as_ref().is_none_or(|p| e.at > p.at) {
                why.push(format!("error since the last pass: {}", e.message));
            }
        }
        for (name, up) in &s.providers {
            if !up {
                why.push(format!("provider {name} is down"));
            }
        }
        if why.is_empty() {
            Verdict::Healthy
        } else {
            Verdict::Degraded(why)
        }
    }

    /// The verdict's name in the JSON document.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::NoDaemon => "no-daemon",
            Verdict::Healthy => "healthy",
            Verdict::Degraded(_) => "degraded",
        }
    }

    /// The exit status: 0 healthy, 1 degraded, 3 no daemon.
    pub fn code(&self) -> u8 {
        match self {
            Verdict::Healthy => 0,
            Verdict::Degraded(_) => 1,
            Verdict::NoDaemon => 3,
        }
    }

    /// [`Verdict::code`] as a process exit status.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::super::file::{LastError, LastPass};
    use super::*;

    fn state(ok: bool, unverified: &[&str]) -> DaemonState {
        DaemonState {
            pid: 1,
            start_ticks: 1,
            started_at: 0.0,
            desired: "d".into(),
            last_pass: Some(LastPass {
                at: 1.0,
                ok,
                changes: 0,
                seconds: 0.1,
                unverified: unverified.iter().map(|s| s.to_string()).collect(),
            }),
            last_error: None,
            providers: Default::default(),
        }
    }

    #[test]
    fn no_file_or_a_dead_daemon_is_no_daemon() {
        assert_eq!(Verdict::of(None, true), Verdict::NoDaemon);
        assert_eq!(
            Verdict::of(Some(&state(true, &[])), false),
            Verdict::NoDaemon
        );
        assert_eq!(Verdict::NoDaemon.code(), 3);
        assert_eq!(Verdict::NoDaemon.name(), "no-daemon");
    }

    #[test]
    fn a_converged_pass_is_healthy_and_so_is_a_daemon_before_its_first_pass() {
        assert_eq!(Verdict::of(Some(&state(true, &[])), true), Verdict::Healthy);
        let starting = DaemonState {
            last_pass: None,
            ..state(true, &[])
        };
        assert_eq!(Verdict::of(Some(&starting), true), Verdict::Healthy);
        assert_eq!(Verdict::Healthy.code(), 0);
        // An error older than the last pass is history, not a degradation.
        let mut s = state(true, &[]);
        s.last_error = Some(LastError {
            at: 0.5,
            message: "old".into(),
        });
        assert_eq!(Verdict::of(Some(&s), true), Verdict::Healthy);
        assert_eq!(Verdict::Healthy.name(), "healthy");
    }

    #[test]
    fn a_failed_pass_pending_drift_or_a_provider_down_is_degraded() {
        let v = Verdict::of(Some(&state(false, &["dhcp br0"])), true);
        assert_eq!(
            v,
            Verdict::Degraded(vec![
                "the last pass failed".into(),
                "drift pending: dhcp br0".into()
            ])
        );
        assert_eq!(v.code(), 1);
        assert_eq!(v.name(), "degraded");
        let drift = Verdict::of(Some(&state(true, &["link br0"])), true);
        assert_eq!(
            drift,
            Verdict::Degraded(vec!["drift pending: link br0".into()])
        );
        let mut refused = state(false, &[]);
        refused.last_error = Some(LastError {
            at: 1.0,
            message: "at the pass".into(),
        });
        assert_eq!(
            Verdict::of(Some(&refused), true),
            Verdict::Degraded(vec!["the last pass failed".into()]),
            "the pass's own error is not said twice"
        );
        refused.last_error = Some(LastError {
            at: 2.0,
            message: "bad.yaml:1:1: …".into(),
        });
        let starting = DaemonState {
            last_pass: None,
            ..refused.clone()
        };
        for s in [&refused, &starting] {
            assert!(
                Verdict::of(Some(s), true).eq(&Verdict::Degraded(match s.last_pass {
                    Some(_) => vec![
                        "the last pass failed".into(),
                        "error since the last pass: bad.yaml:1:1: …".into()
                    ],
                    None => vec!["error since the last pass: bad.yaml:1:1: …".into()],
                }))
            );
        }
        let mut s = state(true, &[]);
        s.providers.insert("wrt".into(), true);
        assert_eq!(Verdict::of(Some(&s), true), Verdict::Healthy);
        s.providers.insert("fw".into(), false);
        assert_eq!(
            Verdict::of(Some(&s), true),
            Verdict::Degraded(vec!["provider fw is down".into()])
        );
    }
}
