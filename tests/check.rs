//! `check` as root, each test in its own namespace: in sync → 0; each kind of drift → 1 with
//! the object named; a foreign shadowing route → warning, 0; invalid YAML → 2; offline
//! snapshots; JSON, JUnit and Prometheus outputs parsed as their consumers would.

mod common;

use common::*;

const HOST: &str = "\
tables: { wrt: 101 }
sysctl:
  net.ipv4.ip_forward: \"1\"
links:
  eth0:
    kind: external
    addresses: [192.168.1.20/24]
  br0:
    kind: bridge
    addresses: [10.0.0.1/24]
  tap-a:
    kind: tap
    master: br0
routes:
  - { to: default, via: 192.168.1.1, dev: eth0, table: wrt }
  - { to: 198.51.100.0/24, via: 192.168.1.1, dev: eth0, metric: 100 }
rules:
  - { priority: 10001, fwmark: \"0x1/0xff\", table: wrt }
";

struct Host {
    ns: Netns,
    _lan: Netns,
    dir: TempDir,
}

impl Host {
    fn new() -> Host {
        let (ns, lan) = host_with_nic();
        let dir = TempDir::new("check");
        std::fs::write(dir.path().join("host.yaml"), HOST).unwrap();
        let h = Host { ns, _lan: lan, dir };
        let out = h.run(&["reconcile"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        h
    }

    fn run(&self, extra: &[&str]) -> std::process::Output {
        netconverge_at(&self.ns, self.dir.path(), extra)
    }

    /// The verdicts of the live `check` and of `check --observed` on a `show` snapshot of the
    /// same namespace, which must agree.
    fn verdicts(&self) -> (Option<i32>, Option<i32>) {
        let snapshot = self.dir.path().join("snapshot.yaml.shown");
        let shown = self.run(&["show"]);
        assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
        std::fs::write(&snapshot, &shown.stdout).unwrap();
        let live = self.run(&["check"]).status.code();
        let offline = self
            .run(&["check", "--observed", snapshot.to_str().unwrap()])
            .status
            .code();
        (live, offline)
    }

    /// Run check, expect `code`, and return its stdout.
    fn check(&self, code: i32) -> String {
        let out = self.run(&["check"]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }
}

#[test]
fn in_sync_then_each_kind_of_drift_is_named() {
    if !root_or_skip("in_sync_then_each_kind_of_drift_is_named") {
        return;
    }
    let h = Host::new();
    assert!(h.check(0).contains("No changes."));

    let cases: [(&str, &str, &str); 5] = [
        (
            "link del tap-a",
            "missing link tap-a",
            "link set tap-a master br0",
        ),
        (
            "addr add 10.0.0.9/24 dev br0",
            "extra   address 10.0.0.9/24 on br0",
            "addr del 10.0.0.9/24 dev br0",
        ),
        (
            "route replace default via 192.168.1.254 dev eth0 table 101",
            "changed route default via 192.168.1.1 dev eth0 table 101: nexthops differ",
            "",
        ),
        (
            "rule del pref 10001",
            "missing rule 10001: from all fwmark 0x1/0xff lookup 101",
            "",
        ),
        ("", "changed sysctl net.ipv4.ip_forward", ""),
    ];
    for (drift, words, _) in cases {
        if drift.is_empty() {
            let o = h.ns.exec("echo 0 > /proc/sys/net/ipv4/ip_forward");
            assert!(o.status.success());
        } else {
            h.ns.ip(drift);
        }
        let text = h.check(1);
        assert!(text.contains(words), "expected `{words}` in:\n{text}");
        assert_eq!(h.verdicts(), (Some(1), Some(1)), "offline agrees: {words}");
        assert!(text.starts_with("Drift: 1 object differs"), "{text}");
        // Repair and confirm.
        let out = h.run(&["reconcile"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        h.check(0);
    }
}

/// A host whose objects are all foreign, described by its own `show`: in sync live and
/// offline (the snapshot says nothing is netconverge's, instead of leaving that out).
#[test]
fn offline_and_live_agree_on_a_host_of_foreign_objects() {
    if !root_or_skip("offline_and_live_agree_on_a_host_of_foreign_objects") {
        return;
    }
    let (ns, _lan) = host_with_nic();
    ns.ip("link add br7 type bridge");
    ns.ip("addr add 10.7.0.1/24 dev br7");
    ns.ip("addr add 192.168.1.20/24 dev eth0");
    ns.ip("route add 198.51.100.0/24 via 192.168.1.1 dev eth0");
    let dir = TempDir::new("foreign");
    let shown = netconverge_at(&ns, dir.path(), &["show"]);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    let text = stdout(&shown);
    assert!(text.contains("managed: {}"), "{text}");
    std::fs::write(dir.path().join("host.yaml"), &text).unwrap();
    let h = Host { ns, _lan, dir };
    assert_eq!(h.verdicts(), (Some(0), Some(0)), "{text}");
    // A foreign object that appears is not drift either way.
    h.ns.ip("route add 203.0.113.0/24 via 192.168.1.1 dev eth0");
    assert_eq!(h.verdicts(), (Some(0), Some(0)));
}

#[test]
fn a_foreign_shadowing_route_warns_without_failing() {
    if !root_or_skip("a_foreign_shadowing_route_warns_without_failing") {
        return;
    }
    let h = Host::new();
    h.ns.ip("route add 198.51.100.0/24 via 192.168.1.9 dev eth0 metric 10");
    let text = h.check(0);
    assert!(
        text.contains(
            "warning: foreign route 198.51.100.0/24 via 192.168.1.9 dev eth0 metric 10 shadows"
        ),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&h.run(&["-o", "json", "check"]))).unwrap();
    assert_eq!(json["warnings"].as_array().unwrap().len(), 1, "{json}");
}

#[test]
fn invalid_yaml_is_exit_2_with_its_place() {
    if !root_or_skip("invalid_yaml_is_exit_2_with_its_place") {
        return;
    }
    let h = Host::new();
    std::fs::write(
        h.dir.path().join("host.yaml"),
        HOST.replace("kind: tap", "kind: tapp"),
    )
    .unwrap();
    let out = h.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("host.yaml:12:11: unknown link kind `tapp`"),
        "{err}"
    );
    assert!(err.contains("did you mean `tap`?"), "{err}");
}

#[test]
fn json_junit_and_prometheus_outputs_parse_and_name_the_drift() {
    if !root_or_skip("json_junit_and_prometheus_outputs_parse_and_name_the_drift") {
        return;
    }
    let h = Host::new();
    h.ns.ip("link del tap-a");

    let out = h.run(&["-o", "json", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON document");
    assert_eq!(json["summary"]["add"], 1);
    assert_eq!(json["changes"][0]["action"], "add");
    assert_eq!(json["changes"][0]["kind"], "link");
    assert_eq!(json["changes"][0]["id"], "tap-a");
    // `after` is the link as the user writes it (what `show` prints for it).
    assert_eq!(json["changes"][0]["after"]["links"]["tap-a"]["kind"], "tap");
    assert_eq!(json["format_version"], 1);

    let out = h.run(&["-o", "junit", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let xml = stdout(&out);
    let doc = roxmltree::Document::parse(&xml).expect("well-formed JUnit XML");
    let cases: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    // One case per desired object: 3 links (eth0, br0, tap-a), 2 addresses, 2 routes, 1 rule,
    // 1 sysctl.
    assert_eq!(cases.len(), 9, "{xml}");
    let failed: Vec<String> = cases
        .iter()
        .filter(|c| c.children().any(|ch| ch.has_tag_name("failure")))
        .map(|c| {
            format!(
                "{} {}",
                c.attribute("classname").unwrap(),
                c.attribute("name").unwrap()
            )
        })
        .collect();
    assert_eq!(failed, vec!["link tap-a"]);
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("failures"), Some("1"));

    let out = h.run(&["-o", "prometheus", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let metrics = stdout(&out);
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
    };
    assert_eq!(value("netconverge_drift_objects{kind=\"link\"}"), 1.0);
    assert_eq!(value("netconverge_drift_objects{kind=\"route\"}"), 0.0);
    assert!(value("netconverge_last_check_timestamp_seconds") > 1.7e9);
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let mut parts = line.rsplitn(2, ' ');
        let v = parts.next().unwrap();
        assert!(v.parse::<f64>().is_ok(), "bad sample line `{line}`");
    }
}

#[test]
fn offline_check_against_a_show_snapshot() {
    if !root_or_skip("offline_check_against_a_show_snapshot") {
        return;
    }
    let h = Host::new();
    // A foreign route on the host: in the snapshot, but not drift.
    h.ns.ip("route add 203.0.113.0/24 via 192.168.1.9 dev eth0 table 200");
    let snap = h.run(&["show"]);
    assert!(snap.status.success(), "{}", stderr(&snap));
    let snapshot_file = h.dir.path().join("snapshot.yml.txt");
    std::fs::write(&snapshot_file, stdout(&snap)).unwrap();
    let s = snapshot_file.to_str().unwrap();
    // Offline: no --netns, no kernel access.
    let d = h.dir.path().join("host.yaml");
    let out = netconverge(&["-d", d.to_str().unwrap(), "check", "--observed", s]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );

    // Edit the snapshot: a managed address appears, a route's gateway changes.
    let text = stdout(&snap)
        .replace("- 10.0.0.1/24", "- 10.0.0.1/24\n      - 10.0.0.9/24")
        .replacen("via: 192.168.1.1", "via: 192.168.1.254", 1);
    std::fs::write(&snapshot_file, text).unwrap();
    let out = netconverge(&["-d", d.to_str().unwrap(), "check", "--observed", s]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("extra   address 10.0.0.9/24 on br0"),
        "{text}"
    );
    assert!(text.contains("changed route"), "{text}");
}

/// The generic CI job in deploy/ci: validate every host, check each published snapshot,
/// a JUnit report per host, exit 0 / 1 / 2. Offline: needs no root.
#[test]
fn the_ci_job_validates_and_checks_snapshots() {
    let hosts = TempDir::new("ci-hosts");
    let reports = TempDir::new("ci-reports");
    let simple = "links:\n  br0:\n    kind: bridge\n    up: true\n    addresses: [10.0.0.1/24]\n";
    let host = |name: &str, desired: &str, snapshot: Option<&str>| {
        let d = hosts.path().join(name).join("desired");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("host.yaml"), desired).unwrap();
        if let Some(s) = snapshot {
            std::fs::write(hosts.path().join(name).join("snapshot.yaml"), s).unwrap();
        }
    };
    host("a", simple, Some(simple));
    host(
        "b",
        simple,
        Some(&simple.replace("10.0.0.1/24]", "10.0.0.1/24, 10.0.0.9/24]")),
    );
    let run = || {
        std::process::Command::new("bash")
            .arg(repo().join("deploy/ci/netconverge-ci.sh"))
            .args([hosts.path(), reports.path()])
            .env("NETCONVERGE", env!("CARGO_BIN_EXE_netconverge"))
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("extra   address 10.0.0.9/24 on br0"),
        "{}",
        stdout(&out)
    );
    for (name, failures) in [("a", "0"), ("b", "1")] {
        let xml = std::fs::read_to_string(reports.path().join(format!("{name}.xml"))).unwrap();
        let doc = roxmltree::Document::parse(&xml).expect("JUnit XML");
        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        assert_eq!(suite.attribute("failures"), Some(failures), "{name}: {xml}");
        // The suite is the host's, not the CI runner's.
        assert_eq!(suite.attribute("name"), Some(name), "{xml}");
    }
    host("c", "links:\n  br0:\n    kind: bridgee\n", None);
    let out = run();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stderr(&out).contains("host.yaml:3:11"), "{}", stderr(&out));
}

/// The CI job cannot pass by accident: a directory with no `<host>/desired` in it (empty, a
/// desired directory given instead of the hosts directory, a path that does not exist) is
/// an error, not a green run that checked nothing.
#[test]
fn the_ci_job_fails_when_it_finds_no_host() {
    let dir = TempDir::new("ci-none");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for hosts in [empty, repo().join("desired"), dir.path().join("missing")] {
        let out = std::process::Command::new("bash")
            .arg(repo().join("deploy/ci/netconverge-ci.sh"))
            .arg(&hosts)
            .arg(dir.path().join("reports"))
            .env("NETCONVERGE", env!("CARGO_BIN_EXE_netconverge"))
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {}",
            hosts.display(),
            stderr(&out)
        );
        assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
    }
}

/// A snapshot holds no nftables state: checking a providers host offline compares everything
/// else and says that the firewall was not compared, instead of calling it missing.
#[test]
fn offline_check_of_a_providers_host_skips_the_firewall_with_a_warning() {
    let dir = TempDir::new("providers-offline");
    let example = repo().join("examples/providers.yaml");
    let desired = netconverge::desired::load_path(&example).expect("the example is valid");
    assert!(
        desired.state.firewall.is_some(),
        "the example uses track/marks/masquerade"
    );
    // What `show` prints for a host that matches the example: every link with its up state.
    let mut host = desired.state.clone();
    for l in host.links.values_mut() {
        l.up = reconcilers::links::effective_up(l).or(Some(true));
    }
    let snapshot = dir.path().join("snapshot.yaml");
    std::fs::write(
        &snapshot,
        netconverge::desired::render_state(&host, &desired.tables),
    )
    .unwrap();
    let out = netconverge(&[
        "-d",
        example.to_str().unwrap(),
        "check",
        "--observed",
        snapshot.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("warning: the snapshot holds no nftables state"),
        "{}",
        stdout(&out)
    );
}
