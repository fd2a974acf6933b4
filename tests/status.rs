//! `netconverge status` in each of its states, as root in throwaway namespaces: no watcher,
//! a healthy one, one degraded by a failing pass, a change pending confirmation, and the stale
//! file of a watcher that was SIGKILLed. The oracle for "a watcher runs" is the process the
//! test started (and killed) itself; for the failing pass, `ip -j route` showing the route
//! missing.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{netconverge, poll, root_or_skip, stdout, Netns, TempDir};

/// A `watch` daemon of the test, SIGKILLed when dropped.
struct Watcher(Child);

impl Watcher {
    fn start(ns: &Netns, dir: &Path, extra: &[&str]) -> Watcher {
        let d = dir.to_str().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_netconverge"))
            .args(["--netns", &ns.name, "-d", d, "watch", "--debounce", "100ms"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn watch");
        Watcher(child)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status(ns: &Netns) -> Output {
    netconverge(&["--netns", &ns.name, "status"])
}

fn status_json(ns: &Netns) -> (Option<i32>, serde_json::Value) {
    let out = netconverge(&["--netns", &ns.name, "-o", "json", "status"]);
    let doc = serde_json::from_str(&stdout(&out)).unwrap_or(serde_json::Value::Null);
    (out.status.code(), doc)
}

/// Wait (a guard against a hang, not a timing assertion) until `status -o json` says `want`.
fn wait_for(ns: &Netns, want: &str) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    let ok = poll(Duration::from_secs(30), || {
        last = status_json(ns).1;
        last["status"] == want && last["daemon"]["last_pass"].is_object()
    });
    assert!(ok, "status never became {want}: {last}");
    last
}

const DUMMY: &str = "links:\n  d0:\n    kind: bridge\n    addresses: [10.9.0.1/24]\n";

#[test]
fn status_says_no_daemon_then_healthy_then_stale_after_a_sigkill() {
    if !root_or_skip("status_says_no_daemon_then_healthy_then_stale_after_a_sigkill") {
        return;
    }
    let ns = Netns::new();
    let dir = TempDir::new("status-healthy");
    std::fs::write(dir.path().join("h.yaml"), DUMMY).unwrap();
    let out = status(&ns);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(stdout(&out).contains("No watcher runs"), "{}", stdout(&out));
    assert!(stdout(&out).contains("No change is pending confirmation."));

    let mut w = Watcher::start(&ns, dir.path(), &[]);
    let doc = wait_for(&ns, "healthy");
    assert_eq!(doc["daemon"]["pid"], w.0.id());
    assert_eq!(doc["daemon"]["last_pass"]["ok"], true);
    assert_eq!(doc["pending"], serde_json::Value::Null);
    assert!(
        ns.ip("-j link show d0").contains("d0"),
        "the pass did apply"
    );
    let out = status(&ns);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("Watcher: pid {}", w.0.id())),
        "{text}"
    );
    assert!(
        text.contains("Last pass:") && text.contains("Healthy."),
        "{text}"
    );

    // SIGKILL: the file stays behind, naming a process that is gone.
    w.0.kill().unwrap();
    w.0.wait().unwrap();
    assert!(Path::new(&format!("/run/netconverge/netns/{}/watch.json", ns.name)).exists());
    let (code, doc) = status_json(&ns);
    assert_eq!(code, Some(3), "{doc}");
    assert_eq!(doc["status"], "no-daemon");
    assert_eq!(doc["stale"], w.0.id());
    let out = status(&ns);
    assert!(stdout(&out).contains("is stale"), "{}", stdout(&out));
}

#[test]
fn status_is_degraded_while_a_pass_fails() {
    if !root_or_skip("status_is_degraded_while_a_pass_fails") {
        return;
    }
    let ns = Netns::new();
    let dir = TempDir::new("status-degraded");
    // eth0 (made here, external to netconverge) has no address covering the gateway: the
    // route write fails (ENETUNREACH) on every pass.
    ns.ip("link add eth0 type veth peer name eth0p");
    ns.ip("link set eth0 up");
    let bad = "links:\n  eth0:\n    kind: external\nroutes:\n  - { to: 198.51.100.0/24, via: 192.0.2.1, dev: eth0 }\n";
    std::fs::write(dir.path().join("h.yaml"), bad).unwrap();
    let _w = Watcher::start(&ns, dir.path(), &[]);
    let doc = wait_for(&ns, "degraded");
    assert_eq!(doc["daemon"]["last_pass"]["ok"], false, "{doc}");
    assert!(doc["reasons"][0] == "the last pass failed", "{doc}");
    assert!(doc["daemon"]["last_error"]["message"].is_string(), "{doc}");
    let routes = ns.ip("-j route show 198.51.100.0/24");
    assert!(
        !routes.contains("198.51.100.0"),
        "independent oracle: the route is missing"
    );
    let out = status(&ns);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("Degraded: the last pass failed"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("Last error"), "{}", stdout(&out));
}

#[test]
fn status_reports_a_change_pending_confirmation_of_a_running_watcher() {
    if !root_or_skip("status_reports_a_change_pending_confirmation_of_a_running_watcher") {
        return;
    }
    let ns = Netns::new();
    let dir = TempDir::new("status-pending");
    let file = dir.path().join("h.yaml");
    std::fs::write(&file, "links: {}\n").unwrap();
    let _w = Watcher::start(&ns, dir.path(), &["--confirm-within", "60s"]);
    wait_for(&ns, "healthy");
    std::fs::write(&file, DUMMY).unwrap();
    let mut doc = serde_json::Value::Null;
    let armed = poll(Duration::from_secs(30), || {
        doc = status_json(&ns).1;
        doc["pending"].is_object()
    });
    assert!(armed, "no pending change: {doc}");
    assert_eq!(doc["status"], "healthy", "{doc}");
    assert!(
        doc["pending"]["seconds_left"].as_f64().unwrap() > 0.0,
        "{doc}"
    );
    assert!(
        ns.ip("-j link show d0").contains("d0"),
        "the edit is applied"
    );
    let out = status(&ns);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("Pending confirmation: "),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("add link d0"), "{}", stdout(&out));
    let out = netconverge(&["--netns", &ns.name, "confirm"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let (_, doc) = status_json(&ns);
    assert_eq!(doc["pending"], serde_json::Value::Null, "{doc}");
}
