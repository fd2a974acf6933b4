//! Commit confirmed, as root in throwaway namespaces: a "management" namespace reaches the
//! host over a veth, and the new desired state removes the address it uses. Unconfirmed, the
//! guardian puts it back (also when the applying process is SIGKILLed); confirmed, it stays;
//! `rollback` reverts at once; a foreign route the change replaced comes back with its own
//! protocol; a second reconcile while a change is pending is refused. Checked with (busybox) ping
//! between the namespaces and `ip -j`, and with `check` against the old files.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

// A bridge both states keep, so the empty-state guard sees something kept.
const OLD: &str = "links:\n  br-keep: { kind: bridge }\n  eth0: { kind: external, addresses: [192.168.50.1/24] }\n";
const NEW: &str =
    "links:\n  br-keep: { kind: bridge }\n  eth0: { kind: external, addresses: [10.77.0.1/24] }\n\
routes:\n  - { to: 198.51.100.0/24, dev: eth0 }\n";

struct Lab {
    host: Netns,
    mgmt: Netns,
    old: TempDir,
    new: TempDir,
    _state: StateDir,
}

/// The host with eth0 (192.168.50.1/24, netconverge's) to the management namespace
/// (192.168.50.2/24), and a foreign static route the new state replaces.
fn lab() -> Lab {
    let (host, mgmt) = host_with_nic();
    mgmt.ip("addr add 192.168.50.2/24 dev lan0");
    let old = TempDir::new("confirm-old");
    let new = TempDir::new("confirm-new");
    std::fs::write(old.path().join("host.yaml"), OLD).unwrap();
    std::fs::write(new.path().join("host.yaml"), NEW).unwrap();
    let out = netconverge_at(&host, old.path(), &["reconcile"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    host.ip("route add 198.51.100.0/24 via 192.168.50.2 dev eth0 proto static");
    assert!(pings(&mgmt), "the lab does not ping before the change");
    let state = StateDir(host.name.clone());
    Lab {
        host,
        mgmt,
        old,
        new,
        _state: state,
    }
}

fn pings(mgmt: &Netns) -> bool {
    mgmt.exec("busybox ping -c 1 -W 1 192.168.50.1")
        .status
        .success()
}

/// Poll until `f` holds or `within` has passed.
fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

fn apply_new(lab: &Lab, within: &str) {
    let out = netconverge_at(
        &lab.host,
        lab.new.path(),
        &["reconcile", "--confirm-within", within],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("Pending confirmation: run"),
        "{}",
        stdout(&out)
    );
    assert!(
        !pings(&lab.mgmt),
        "the new state should cut the management namespace off"
    );
}

fn route_protocol(host: &Netns) -> String {
    let routes = host.ip_json("route show 198.51.100.0/24");
    routes[0]["protocol"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn check_old(lab: &Lab) -> Option<i32> {
    let out = netconverge_at(&lab.host, lab.old.path(), &["check"]);
    out.status.code()
}

fn assert_reverted(lab: &Lab) {
    assert!(pings(&lab.mgmt), "management namespace still cut off");
    assert_eq!(check_old(lab), Some(0), "check against the old files");
    assert_eq!(
        route_protocol(&lab.host),
        "static",
        "foreign route back with its protocol"
    );
    let gw = lab.host.ip_json("route show 198.51.100.0/24");
    assert_eq!(gw[0]["gateway"], "192.168.50.2");
    assert!(!Path::new(&format!(
        "/run/netconverge/netns/{}/pending.json",
        lab.host.name
    ))
    .exists());
}

#[test]
fn unconfirmed_change_is_reverted_by_the_guardian() {
    if !root_or_skip("unconfirmed_change_is_reverted_by_the_guardian") {
        return;
    }
    let lab = lab();
    apply_new(&lab, "3s");
    assert_eq!(route_protocol(&lab.host), "157");
    assert!(
        eventually(Duration::from_secs(5), || pings(&lab.mgmt)),
        "not reverted within 3 s + 2 s"
    );
    assert!(eventually(Duration::from_secs(2), || check_old(&lab) == Some(0)));
    assert_reverted(&lab);
}

#[test]
fn the_revert_survives_a_sigkill_of_the_applier() {
    if !root_or_skip("the_revert_survives_a_sigkill_of_the_applier") {
        return;
    }
    let lab = lab();
    let d = lab.new.path().to_str().unwrap().to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_netconverge"))
        .args([
            "--netns",
            &lab.host.name,
            "-d",
            &d,
            "reconcile",
            "--confirm-within",
            "3s",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let cut = eventually(Duration::from_secs(5), || {
        lab.host
            .ip_json("-4 addr show dev eth0")
            .to_string()
            .contains("10.77.0.1")
    });
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(cut, "the change was never applied");
    assert!(
        eventually(Duration::from_secs(6), || pings(&lab.mgmt)),
        "not reverted after SIGKILL"
    );
    assert!(eventually(Duration::from_secs(2), || check_old(&lab) == Some(0)));
    assert_reverted(&lab);
}

#[test]
fn a_confirmed_change_stays() {
    if !root_or_skip("a_confirmed_change_stays") {
        return;
    }
    let lab = lab();
    apply_new(&lab, "2s");
    let out = netconverge(&["--netns", &lab.host.name, "confirm"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(3500));
    assert!(!pings(&lab.mgmt), "a confirmed change was reverted");
    assert_eq!(route_protocol(&lab.host), "157");
    let out = netconverge_at(&lab.host, lab.new.path(), &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn rollback_reverts_at_once_and_a_second_reconcile_is_refused_meanwhile() {
    if !root_or_skip("rollback_reverts_at_once_and_a_second_reconcile_is_refused_meanwhile") {
        return;
    }
    let lab = lab();
    apply_new(&lab, "60s");
    let status = netconverge(&["--netns", &lab.host.name, "status"]);
    assert!(
        stdout(&status).contains("remove address 192.168.50.1/24 on eth0"),
        "{}",
        stdout(&status)
    );
    let second = netconverge_at(&lab.host, lab.old.path(), &["reconcile"]);
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    assert!(stderr(&second).contains("pending"), "{}", stderr(&second));
    let out = netconverge(&["--netns", &lab.host.name, "rollback"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Reverted:"), "{}", stdout(&out));
    assert_reverted(&lab);
}

/// A `watch` daemon, SIGKILLed when the test ends (its guardians by the `StateDir` guard).
struct Watcher(std::process::Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn has_new_address(host: &Netns) -> bool {
    host.ip_json("-4 addr show dev eth0")
        .to_string()
        .contains("10.77.0.1")
}

#[test]
fn watch_reverts_an_unconfirmed_edit_and_does_not_apply_it_again_until_the_files_change() {
    if !root_or_skip("watch_reverts_an_unconfirmed_edit") {
        return;
    }
    let lab = lab();
    let dir = TempDir::new("confirm-watch");
    let file = dir.path().join("host.yaml");
    std::fs::write(&file, OLD).unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_netconverge"))
        .args([
            "--netns",
            &lab.host.name,
            "-d",
            &d,
            "watch",
            "--confirm-within",
            "2s",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn watch");
    let _watch = Watcher(child);
    // The first pass has nothing to do; give the daemon time to start watching the files.
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::write(&file, NEW).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || has_new_address(&lab.host)),
        "edit not applied"
    );
    assert!(
        eventually(Duration::from_secs(5), || pings(&lab.mgmt)),
        "not reverted"
    );
    // The reverted revision stays reverted: not re-applied on the revert's kernel events nor
    // on SIGHUP (a reload of the same files).
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(_watch.0.id() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !has_new_address(&lab.host),
        "a reverted revision was applied again"
    );
    assert!(pings(&lab.mgmt));
    assert_eq!(route_protocol(&lab.host), "static");
    // A new revision of the files is applied (and armed) again; confirmed, it stays.
    std::fs::write(&file, format!("{NEW}# second edit\n")).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || has_new_address(&lab.host)),
        "new edit not applied"
    );
    let out = netconverge(&["--netns", &lab.host.name, "confirm"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(3000));
    assert!(has_new_address(&lab.host), "a confirmed edit was reverted");
}

fn guardian_pid(host: &Netns) -> Option<i32> {
    let text =
        std::fs::read_to_string(format!("/run/netconverge/netns/{}/pending.json", host.name))
            .ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["guardian"].as_u64().map(|p| p as i32)
}

#[test]
fn a_killed_guardian_is_replaced_by_the_next_netconverge_run() {
    if !root_or_skip("a_killed_guardian_is_replaced_by_the_next_netconverge_run") {
        return;
    }
    let lab = lab();
    apply_new(&lab, "4s");
    let first = guardian_pid(&lab.host).expect("a guardian");
    // SAFETY: killing the guardian our own reconcile started.
    unsafe { libc::kill(first, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(200));
    // Any later reconcile finds the orphan, starts a new guardian, and is refused meanwhile.
    let out = netconverge_at(&lab.host, lab.new.path(), &["reconcile"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let second = guardian_pid(&lab.host).expect("a new guardian");
    assert_ne!(first, second);
    assert!(
        eventually(Duration::from_secs(7), || pings(&lab.mgmt)),
        "not reverted"
    );
    assert!(eventually(Duration::from_secs(2), || check_old(&lab) == Some(0)));
    assert_reverted(&lab);
}

/// `reconcile --confirm-within 30s` on a terminal (util-linux `script` gives it a pty),
/// answering `answer` a second after it starts.
fn on_a_terminal(lab: &Lab, answer: &str) -> String {
    let cmd = format!(
        "{} --netns {} -d {} reconcile --confirm-within 30s",
        env!("CARGO_BIN_EXE_netconverge"),
        lab.host.name,
        lab.new.path().display()
    );
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("(sleep 1; echo {answer}) | script -qec '{cmd}' /dev/null"),
        ])
        .output()
        .expect("script");
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn on_a_terminal_y_keeps_and_anything_else_reverts_at_once() {
    if !root_or_skip("on_a_terminal_y_keeps_and_anything_else_reverts_at_once") {
        return;
    }
    let lab = lab();
    let out = on_a_terminal(&lab, "n");
    assert!(
        out.contains("Keep this configuration? [y/N] (reverting in 30 s)"),
        "{out}"
    );
    assert!(out.contains("Reverted:"), "{out}");
    assert_reverted(&lab);
    let out = on_a_terminal(&lab, "y");
    assert!(out.contains("Confirmed:"), "{out}");
    assert!(!pings(&lab.mgmt), "a confirmed change was reverted");
    assert!(!Path::new(&format!(
        "/run/netconverge/netns/{}/pending.json",
        lab.host.name
    ))
    .exists());
}

/// A revert whose writes fail (the foreign route cannot go back through a link that is down)
/// keeps the change pending and exits 2; with `-o json` the failure document carries the
/// revert's report, with the failed write. Once the link is up, `rollback` completes it.
#[test]
fn a_revert_that_fails_stays_pending_and_reports_its_failures_as_json() {
    if !root_or_skip("a_revert_that_fails_stays_pending_and_reports_its_failures_as_json") {
        return;
    }
    let lab = lab();
    apply_new(&lab, "60s");
    lab.host.ip("link set eth0 down");
    let out = netconverge(&["--netns", &lab.host.name, "-o", "json", "rollback"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_schema(&stdout(&out), "failure");
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON document");
    assert_eq!(doc["error"]["kind"], "incomplete", "{doc:#}");
    let report = &doc["report"];
    assert_eq!(report["reverted"], false, "{doc:#}");
    let failures = report["failures"].as_array().expect("failures");
    assert!(
        failures
            .iter()
            .any(|f| f.as_str().unwrap_or("").contains("198.51.100.0/24")),
        "the route's write is not among the failures: {doc:#}"
    );
    assert!(report["writes"].as_u64().unwrap_or(0) > 0, "{doc:#}");
    assert!(stderr(&out).contains("stays pending"), "{}", stderr(&out));
    assert!(Path::new(&format!(
        "/run/netconverge/netns/{}/pending.json",
        lab.host.name
    ))
    .exists());
    lab.host.ip("link set eth0 up");
    let again = netconverge(&["--netns", &lab.host.name, "-o", "json", "rollback"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_schema(&stdout(&again), "rollback");
    let doc: serde_json::Value = serde_json::from_str(&stdout(&again)).expect("JSON");
    assert_eq!(doc["reverted"], true, "{doc:#}");
    assert_reverted(&lab);
}
