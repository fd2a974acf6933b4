//! `netconverge status`: is a watcher running for this namespace, and how is it doing — from
//! the state file the daemon keeps ([`mod@file`]) — and the change pending confirmation, if any
//! (see [`crate::confirm`]). Exit 0 healthy, 1 degraded, 3 no daemon ([`verdict`]).

pub mod file;
pub mod verdict;

use std::process::ExitCode;

use crate::pass::Failure;
use file::DaemonState;
use verdict::Verdict;

/// Run `status` for namespace `netns`; `json`: one JSON document on stdout.
pub fn run(netns: Option<&str>, json: bool) -> Result<ExitCode, Failure> {
    let path = file::path(netns);
    let state = file::read(&path).map_err(|e| Failure::Message(e.to_string()))?;
    let alive = state.as_ref().is_some_and(DaemonState::daemon_alive);
    let verdict = Verdict::of(state.as_ref(), alive);
    let pending = crate::confirm::pending(netns)?;
    if json {
        let reasons = match &verdict {
            Verdict::Degraded(why) => why.clone(),
            _ => Vec::new(),
        };
        let doc = serde_json::json!({
            "status": verdict.name(),
            "reasons": reasons,
            "daemon": state.as_ref().filter(|_| alive),
            "stale": state.as_ref().filter(|_| !alive).map(|s| s.pid),
            "pending": crate::confirm::pending_json(pending.as_ref()),
        });
        println!("{}", crate::report::json::document(doc));
    } else {
        print_daemon(netns, &verdict, state.as_ref(), alive);
        crate::confirm::print_pending(netns, pending.as_ref());
    }
    Ok(verdict.exit_code())
}

/// The watcher's part of the text report.
fn print_daemon(netns: Option<&str>, verdict: &Verdict, state: Option<&DaemonState>, alive: bool) {
    let ns = netns.map_or("the host's namespace".to_string(), |n| {
        format!("namespace {n}")
    });
    let s = match (state, alive) {
        (None, _) => return println!("No watcher runs for {ns}."),
        (Some(s), false) => {
            return println!(
            "No watcher runs for {ns} (the state file of pid {} is stale: that process is gone).",
            s.pid
        )
        }
        (Some(s), true) => s,
    };
    println!(
        "Watcher: pid {}, running for {}, watching {}",
        s.pid,
        ago(s.started_at),
        s.desired
    );
    match &s.last_pass {
        None => println!("Last pass: none yet"),
        Some(p) => println!(
            "Last pass: {} ago, {}, {} change(s), {:.3} s",
            ago(p.at),
            if p.ok { "ok" } else { "failed" },
            p.changes,
            p.seconds
        ),
    }
    if let Some(e) = &s.last_error {
        println!("Last error ({} ago): {}", ago(e.at), e.message);
    }
    for (name, up) in &s.providers {
        println!("Provider {name}: {}", if *up { "up" } else { "down" });
    }
    match verdict {
        Verdict::Degraded(why) => println!("Degraded: {}", why.join("; ")),
        _ => println!("Healthy."),
    }
}

/// How long ago Unix time `t` was, in words (whole seconds).
fn ago(t: f64) -> String {
    let secs = (file::unix_now() - t).max(0.0).round() as u64;
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}
