//! The shipped systemd unit (`deploy/systemd/netconverge-watch.service`): `systemd-analyze
//! verify` accepts it, `systemd-analyze security` scores it at most 3.0, and, as root in a
//! throwaway namespace, the ursa example with DHCP is reconciled under the unit's capability
//! bounding set (`setpriv --bounding-set`, read from the unit itself), a restart of
//! netconverge leaves dnsmasq running, and a configuration change restarts dnsmasq (which
//! needs signalling a process of another user).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn unit_path() -> PathBuf {
    repo().join("deploy/systemd/netconverge-watch.service")
}

/// `systemd-analyze`, or `None` (a skip, a failure under CI) when it is not installed.
fn analyze(test: &str) -> Option<PathBuf> {
    let found = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: systemd-analyze is missing (.ci/run installs systemd)"
        );
        eprintln!("skipped: {test} needs systemd-analyze");
    }
    found
}

/// The unit `name` of deploy/systemd with ExecStart pointing at the binary under test (verify
/// wants it to exist; `deploy/debian/check.sh` verifies the packaged paths) and without its
/// Documentation= man pages, which only the package installs.
fn unit_copy(dir: &Path, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("deploy/systemd").join(name)).unwrap();
    let text: String = text
        .replace("/usr/sbin/netconverge", env!("CARGO_BIN_EXE_netconverge"))
        .lines()
        .filter(|l| !l.starts_with("Documentation="))
        .map(|l| format!("{l}\n"))
        .collect();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `systemd-analyze verify` accepts `unit` and `security` scores it at most 3.0.
fn verify_and_score(sa: &Path, unit: &Path) {
    let out = Command::new(sa).arg("verify").arg(unit).output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "verify: {}",
        stderr(&out)
    );
    // --threshold is the exposure times ten: fail above 3.0.
    let out = Command::new(sa)
        .args(["security", "--offline=true", "--threshold=30", "--no-pager"])
        .arg(unit)
        .output()
        .unwrap();
    let text = stdout(&out);
    let score = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_default()
        .to_string();
    assert!(out.status.success(), "exposure above 3.0: {score}\n{text}");
}

#[test]
fn the_unit_verifies_and_its_exposure_is_at_most_3_0() {
    let Some(sa) = analyze("the_unit_verifies_and_its_exposure_is_at_most_3_0") else {
        return;
    };
    let dir = TempDir::new("unit");
    verify_and_score(&sa, &unit_copy(dir.path(), "netconverge-watch.service"));
}

#[test]
fn the_check_service_and_timer_verify_and_the_service_scores_at_most_3_0() {
    let Some(sa) = analyze("the_check_service_and_timer_verify_and_the_service_scores_at_most_3_0")
    else {
        return;
    };
    let dir = TempDir::new("unit-check");
    let service = unit_copy(dir.path(), "netconverge-check.service");
    let timer = unit_copy(dir.path(), "netconverge-check.timer");
    verify_and_score(&sa, &service);
    let out = Command::new(&sa)
        .arg("verify")
        .arg(&timer)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "verify: {}",
        stderr(&out)
    );
    // The check is read-only: the watch unit's dnsmasq capabilities are not there.
    let text = std::fs::read_to_string(&service).unwrap();
    assert!(
        text.contains("\nCapabilityBoundingSet=CAP_NET_ADMIN\n"),
        "{text}"
    );
}

/// The capabilities of the unit's CapabilityBoundingSet=, as setpriv names them.
fn bounding_set() -> Vec<String> {
    let text = std::fs::read_to_string(unit_path()).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("the unit has a CapabilityBoundingSet=");
    line.split_whitespace()
        .map(|c| c.trim_start_matches("CAP_").to_ascii_lowercase())
        .collect()
}

/// Run netconverge on `ns` under the unit's bounding set, plus CAP_SYS_ADMIN, which the
/// README's `--netns` drop-in adds (these tests never act on the host's own namespace).
fn confined(ns: &Netns, dir: &Path, args: &[&str]) -> std::process::Output {
    let mut caps: Vec<String> = bounding_set();
    caps.push("sys_admin".into());
    let set: Vec<String> = caps.iter().map(|c| format!("+{c}")).collect();
    Command::new("setpriv")
        .arg(format!("--bounding-set=-all,{}", set.join(",")))
        .arg(env!("CARGO_BIN_EXE_netconverge"))
        .args(["--netns", &ns.name, "-d", &dir.display().to_string()])
        .args(args)
        .env_remove("NETCONVERGE_LOG")
        .output()
        .unwrap()
}

/// Kills what the test started in its namespace and removes the state directory.
struct Reap(String);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &self.0]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    // SAFETY: kill(2) on a process inside the test's own namespace.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        let _ = std::fs::remove_dir_all(format!("/run/netconverge/netns/{}", self.0));
    }
}

/// The pid netconverge recorded for br0's dnsmasq in `ns`, if that process is alive.
fn instance_pid(ns: &Netns) -> Option<i32> {
    let text = std::fs::read_to_string(format!(
        "/run/netconverge/netns/{}/dnsmasq-br0.instance",
        ns.name
    ))
    .ok()?;
    let pid: i32 = text.split_whitespace().next()?.parse().ok()?;
    // SAFETY: signal 0 only probes for the process.
    (unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
}

/// Is a DHCP server socket open in the namespace (`ss -lnu`, port 67)?
fn dhcp_socket(ns: &Netns) -> bool {
    stdout(&ns.exec("ss -lnuH")).lines().any(|l| {
        l.split_whitespace()
            .nth(3)
            .is_some_and(|a| a.ends_with(":67"))
    })
}

#[test]
fn ursa_with_dhcp_runs_under_the_units_bounding_set_and_survives_a_restart() {
    if !root_or_skip("ursa_with_dhcp_runs_under_the_units_bounding_set_and_survives_a_restart") {
        return;
    }
    let (ns, _lan) = host_with_nic();
    let _reap = Reap(ns.name.clone());
    let dir = TempDir::new("unit-ursa");
    let src = std::fs::read_to_string(repo().join("desired/ursa.yaml"))
        .unwrap()
        .replace("owner: tom", "owner: nobody")
        .replace("group: kvm", "group: nogroup");
    std::fs::write(dir.path().join("ursa.yaml"), src).unwrap();
    let dhcp = std::fs::read_to_string(repo().join("desired/ursa-dhcp.yaml")).unwrap();
    std::fs::write(dir.path().join("ursa-dhcp.yaml"), &dhcp).unwrap();

    let out = confined(&ns, dir.path(), &["reconcile"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let first = instance_pid(&ns).expect("dnsmasq runs");
    assert!(dhcp_socket(&ns), "no DHCP socket open");

    // A restart of the daemon: a new netconverge process, the same dnsmasq.
    let out = confined(&ns, dir.path(), &["watch", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        instance_pid(&ns),
        Some(first),
        "the restart restarted dnsmasq"
    );
    let out = confined(&ns, dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // A configuration change stops the old instance (a signal to another user) and starts one.
    let changed = dhcp.replace("10.0.0.100-10.0.0.199", "10.0.0.120-10.0.0.199");
    assert_ne!(changed, dhcp);
    std::fs::write(dir.path().join("ursa-dhcp.yaml"), changed).unwrap();
    let out = confined(&ns, dir.path(), &["reconcile"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let second = instance_pid(&ns).expect("dnsmasq runs again");
    assert_ne!(second, first);
    assert!(dhcp_socket(&ns), "no DHCP socket open after the restart");
}
