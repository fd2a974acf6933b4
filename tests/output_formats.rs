//! Outputs for machines and people: every command's JSON validated against the published
//! schema (deploy/schema/netconverge.schema.json, by python3's jsonschema: an independent
//! validator), the plan's colour, its summary above 200 changes, the mark of changes that may
//! cut the SSH session, and adoption (`show --adopt`), checked with `ip -j`. Covered with
//! `-o json`: validate, show, reconcile (dry run and applied), check, graph (desired and
//! observed), status, confirm and rollback (pending and not), and every command's failure;
//! `watch -o json` in `tests/watch.rs`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{
    assert_schema, host_with_nic, netconverge, netconverge_at, repo, root_or_skip, stderr, stdout,
    Netns, StateDir, TempDir,
};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(out), stderr(out)))
}

#[test]
fn validate_json_has_every_error_with_its_place_or_the_counts() {
    let dir = TempDir::new("json-validate");
    write(
        dir.path(),
        "a.yaml",
        "links:\n  br0:\n    kind: bridge\n    adresses: [10.0.0.1/24]\n  br1:\n    kind: bridge\n    mtuu: 1\n",
    );
    let d = dir.path().to_str().unwrap();
    let out = netconverge(&["validate", "-d", d, "-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_schema(&stdout(&out), "failure");
    let doc = json_of(&out);
    let places: Vec<(u64, u64)> = doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["column"].as_u64().unwrap()))
        .collect();
    assert_eq!(places, [(4, 5), (7, 5)], "two errors in one file: {doc}");
    let example = repo().join("desired");
    let out = netconverge(&["validate", "-d", example.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_schema(&stdout(&out), "validate");
    assert!(json_of(&out)["counts"]["links"].as_u64().unwrap() > 0);
    // The old place of -o, before the command, still works.
    let out = netconverge(&["-o", "json", "-d", example.to_str().unwrap(), "validate"]);
    assert_schema(&stdout(&out), "validate");
}

#[test]
fn each_commands_help_lists_only_its_options() {
    let help = |cmd: &str| stdout(&netconverge(&[cmd, "--help"]));
    assert!(
        !help("validate").contains("--netns"),
        "validate has no namespace"
    );
    assert!(!help("validate").contains("junit"));
    assert!(help("check").contains("junit"));
    assert!(!help("reconcile").contains("prometheus"));
    assert!(help("reconcile").contains("--color"));
    assert!(!help("confirm").contains("--desired"));
    assert!(help("graph").contains("svg"));
    assert!(!help("show").contains("--color"));
    assert!(help("watch").contains("one JSON document per line"));
    assert!(!help("watch").contains("--color") && !help("watch").contains("svg"));
    let import = stdout(&netconverge(&["import", "shorewall", "--help"]));
    assert!(
        import.contains("--output") && !import.contains("--desired"),
        "{import}"
    );
    for cmd in ["man", "completions"] {
        assert!(!help(cmd).contains("--output"), "{cmd} writes no document");
    }
    // The global options come last, after the command's own.
    let reconcile = help("reconcile");
    assert!(
        reconcile.find("--dry-run") < reconcile.find("--verbose"),
        "{reconcile}"
    );
}

/// `import shorewall -o json`: the YAML and each finding with its place, and whether all the
/// routing was translated (the exit status says the same); `man` and `completions` refuse
/// `-o json` with the failure document.
#[test]
fn import_json_has_the_yaml_and_every_finding() {
    let seed = repo().join("tests/data/shorewall/seed");
    let s = seed.to_str().unwrap();
    let text = netconverge(&["import", "shorewall", "--offline", s]);
    let out = netconverge(&["import", "shorewall", "--offline", s, "-o", "json"]);
    assert_eq!(out.status.code(), text.status.code(), "{}", stderr(&out));
    assert_schema(&stdout(&out), "import");
    let doc = json_of(&out);
    assert_eq!(doc["yaml"].as_str().unwrap(), stdout(&text));
    let findings = doc["findings"].as_array().unwrap();
    assert_eq!(
        findings.len(),
        stderr(&text)
            .lines()
            .filter(|l| l.contains(": note: ") || l.contains(": not translated: "))
            .count()
    );
    assert!(
        findings.iter().all(|f| f["line"].as_u64().unwrap() > 0),
        "{doc}"
    );
    assert_eq!(doc["routing_translated"], text.status.code() == Some(0));
    for args in [
        &["-o", "json", "man", "/nonexistent/x"][..],
        &["-o", "json", "completions", "bash"],
    ] {
        let out = netconverge(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_schema(&stdout(&out), "failure");
    }
}

#[test]
fn every_commands_json_matches_the_schema() {
    if !root_or_skip("every_commands_json_matches_the_schema") {
        return;
    }
    let ns = Netns::new();
    let dir = TempDir::new("json-all");
    write(
        dir.path(),
        "a.yaml",
        "links:\n  br9:\n    kind: bridge\n    addresses: [10.9.0.1/24]\nroutes:\n  - to: 10.99.0.0/16\n    type: blackhole\nsysctl:\n  net.ipv4.ip_forward: 1\n",
    );
    let run = |extra: &[&str]| netconverge_at(&ns, dir.path(), extra);
    let dry = run(&["reconcile", "--dry-run", "-o", "json"]);
    assert_schema(&stdout(&dry), "plan");
    let plan = json_of(&dry);
    // before/after in the user's own schema, not the internal model.
    let link = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "link")
        .unwrap();
    assert_eq!(link["after"]["links"]["br9"]["kind"], "bridge", "{link}");
    assert_eq!(link["before"], serde_json::Value::Null);
    let applied = run(&["reconcile", "-o", "json"]);
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    assert_schema(&stdout(&applied), "plan");
    assert!(json_of(&applied)["applied"]["writes"].as_u64().unwrap() > 0);
    assert_schema(&stdout(&run(&["check", "-o", "json"])), "plan");
    assert_schema(&stdout(&run(&["show", "-o", "json"])), "show");
    assert_schema(&stdout(&run(&["graph", "-o", "json"])), "graph");
    assert_schema(
        &stdout(&run(&["graph", "--observed", "-o", "json"])),
        "graph",
    );
    assert_schema(&stdout(&run(&["status", "-o", "json"])), "status");
    for cmd in ["confirm", "rollback"] {
        // Nothing is pending: the failure document, exit 2.
        let out = run(&[cmd, "-o", "json"]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        assert_schema(&stdout(&out), "failure");
    }
    // A change to the route: before and after both in the user's schema.
    write(
        dir.path(),
        "a.yaml",
        "links:\n  br9:\n    kind: bridge\n    addresses: [10.9.0.1/24]\nroutes:\n  - to: 10.99.0.0/16\n    type: unreachable\nsysctl:\n  net.ipv4.ip_forward: 1\n",
    );
    let out = run(&["check", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_schema(&stdout(&out), "plan");
    let doc = json_of(&out);
    let route = &doc["changes"][0];
    assert_eq!(route["before"]["routes"][0]["type"], "blackhole", "{route}");
    assert_eq!(
        route["after"]["routes"][0]["type"], "unreachable",
        "{route}"
    );
}

/// A desired state of `n` bridges.
fn bridges(dir: &Path, n: usize) {
    let mut y = String::from("links:\n");
    for i in 0..n {
        y.push_str(&format!("  nb{i}:\n    kind: bridge\n"));
    }
    write(dir, "a.yaml", &y);
}

#[test]
fn the_plan_is_coloured_on_request_and_summarised_above_200_changes() {
    if !root_or_skip("the_plan_is_coloured_on_request_and_summarised_above_200_changes") {
        return;
    }
    let ns = Netns::new();
    let dir = TempDir::new("plan-style");
    bridges(dir.path(), 3);
    let dry = |extra: &[&str]| {
        let mut args = vec!["reconcile", "--dry-run"];
        args.extend_from_slice(extra);
        stdout(&netconverge_at(&ns, dir.path(), &args))
    };
    let green = "\x1b[";
    assert!(dry(&["--color", "always"]).contains(green));
    assert!(!dry(&["--color", "never"]).contains(green));
    // Not a terminal: no colour by default.
    assert!(!dry(&[]).contains(green));
    assert!(dry(&[]).contains("@@"), "diffs below the threshold");
    assert!(!dry(&["--summary"]).contains("@@"));
    bridges(dir.path(), 201);
    let plan = dry(&[]);
    assert!(
        !plan.contains("@@"),
        "one line per object above 200 changes"
    );
    assert_eq!(
        plan.lines().filter(|l| l.starts_with("+ add link")).count(),
        201
    );
    assert!(
        plan.contains("`--diff`"),
        "says how to see the diffs: {plan}"
    );
    assert!(dry(&["--diff"]).contains("@@"));
}

#[test]
fn a_change_of_the_route_the_ssh_session_uses_is_marked() {
    if !root_or_skip("a_change_of_the_route_the_ssh_session_uses_is_marked") {
        return;
    }
    let ns = Netns::new();
    ns.ip("link add br9 type bridge");
    ns.ip("link set br9 up");
    ns.ip("addr add 192.0.2.1/24 dev br9");
    ns.ip("route add default via 192.0.2.254 dev br9 onlink");
    let dir = TempDir::new("ssh-mark");
    write(
        dir.path(),
        "a.yaml",
        "links:\n  br9:\n    kind: bridge\n    addresses: [192.0.2.1/24]\nroutes:\n  - to: default\n    via: 192.0.2.253\n    dev: br9\n  - to: 198.51.100.0/24\n    via: 192.0.2.254\n",
    );
    let plan = |ssh: Option<&str>, extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_netconverge"));
        let d = dir.path().to_str().unwrap();
        c.args(["reconcile", "--dry-run", "--netns", &ns.name, "-d", d]);
        c.args(extra);
        match ssh {
            Some(v) => c.env("SSH_CONNECTION", v),
            None => c.env_remove("SSH_CONNECTION"),
        };
        stdout(&c.output().unwrap())
    };
    // The client is reached by the default route the plan replaces.
    let text = plan(Some("203.0.113.9 50000 192.0.2.1 22"), &[]);
    let marked: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(may cut connectivity)"))
        .collect();
    assert_eq!(marked.len(), 1, "{text}");
    assert!(marked[0].starts_with("~ change route default"), "{text}");
    assert!(text.contains("--confirm-within"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&plan(
        Some("203.0.113.9 50000 192.0.2.1 22"),
        &["-o", "json"],
    ))
    .unwrap();
    let cut: Vec<&str> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["may_cut_connectivity"] == true)
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(cut.len(), 1, "{json}");
    // Adding a route cuts nothing: the new 198.51.100.0/24 is never marked.
    assert!(!text.contains("+ add route 198.51.100.0/24 via 192.0.2.254 dev br9  (may cut"));
}

fn alias(ns: &Netns, link: &str) -> Option<String> {
    ns.ip_json(&format!("link show {link}"))[0]["ifalias"]
        .as_str()
        .map(str::to_string)
}

fn has_route(ns: &Netns, to: &str) -> bool {
    ns.ip_json("route show table main")
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["dst"] == to)
}

/// `yaml` without the blocks that start with one of `heads` (a line and the lines indented
/// deeper than it).
fn without_entries(yaml: &str, heads: &[&str]) -> String {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out = String::new();
    let mut skipping: Option<usize> = None;
    for line in yaml.lines() {
        if skipping.is_some_and(|i| indent(line) <= i && !line.trim().is_empty()) {
            skipping = None;
        }
        if skipping.is_none() && heads.iter().any(|h| line.starts_with(h)) {
            skipping = Some(indent(line));
        }
        if skipping.is_none() {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn show_adopt_then_remove_from_the_file_removes_from_the_kernel() {
    if !root_or_skip("show_adopt_then_remove_from_the_file_removes_from_the_kernel") {
        return;
    }
    for adopt in [false, true] {
        let ns = Netns::new();
        ns.ip("link add br9 type bridge");
        ns.ip("link add br8 type bridge");
        ns.ip("link set br9 up");
        ns.ip("addr add 10.9.0.1/24 dev br9");
        ns.ip("route add 10.99.0.0/16 via 10.9.0.254");
        let dir = TempDir::new("adopt");
        let empty = TempDir::new("adopt-src");
        let mut args = vec![
            "show",
            "--netns",
            &ns.name,
            "-d",
            empty.path().to_str().unwrap(),
        ];
        if adopt {
            args.push("--adopt");
        }
        let out = netconverge(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let shown = stdout(&out);
        assert_eq!(shown.contains("stay foreign"), !adopt, "{shown}");
        assert_eq!(
            alias(&ns, "br9").as_deref() == Some("managed-by: netconverge"),
            adopt
        );
        // The file without its routes and without br8.
        let kept = without_entries(&shown, &["routes:", "  br8:"]);
        write(dir.path(), "host.yaml", &kept);
        let out = netconverge_at(&ns, dir.path(), &["reconcile"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n{}\n{kept}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(
            has_route(&ns, "10.99.0.0/16"),
            !adopt,
            "adopt {adopt}: {}",
            stdout(&out)
        );
        let br8 = ns
            .ip_json("link show")
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["ifname"] == "br8");
        assert_eq!(br8, !adopt, "adopt {adopt}: {}", stdout(&out));
        assert!(
            has_route(&ns, "10.9.0.0/24"),
            "the address's own route stays"
        );
        // And it converged: a second run is a no-op.
        let again = netconverge_at(&ns, dir.path(), &["check"]);
        assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
    }
}

/// The plan is printed before the first write: with stdout a pipe nobody reads yet, a plan
/// longer than the pipe's buffer blocks `reconcile` in its write, and at that moment the
/// kernel holds none of the planned links.
#[test]
fn the_plan_is_printed_before_the_first_write() {
    if !root_or_skip("the_plan_is_printed_before_the_first_write") {
        return;
    }
    let ns = Netns::new();
    let dir = TempDir::new("plan-first");
    // 1,000 bridges with their diffs (90 KB): well over the 64 KiB of a pipe. The writer waits in
    // `pipe_write` (`anon_pipe_write` since Linux 6.x) until it is read.
    bridges(dir.path(), 1000);
    let child = Command::new(env!("CARGO_BIN_EXE_netconverge"))
        .args(["reconcile", "--diff", "--netns", &ns.name, "-d"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("reconcile");
    let pid = child.id();
    let blocked_in_write = || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|t| {
                std::fs::read_to_string(t.path().join("wchan"))
                    .is_ok_and(|w| w.trim().ends_with("pipe_write"))
            })
    };
    assert!(
        common::poll(std::time::Duration::from_secs(60), blocked_in_write),
        "reconcile never blocked writing its plan"
    );
    let links = ns.ip_json("link show");
    let made = links
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["ifname"].as_str().is_some_and(|n| n.starts_with("nb")))
        .count();
    assert_eq!(made, 0, "links were created before the plan was printed");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("Applied: 1000 added"));
    assert_eq!(
        ns.ip_json("link show type bridge")
            .as_array()
            .unwrap()
            .len(),
        1000
    );
}

/// The id of every node of a graph document, checking that every edge ends at one.
fn graph_ids(doc: &serde_json::Value) -> Vec<String> {
    let ids: Vec<String> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();
    for e in doc["edges"].as_array().unwrap() {
        for end in [&e["from"], &e["to"]] {
            assert!(
                ids.iter().any(|i| end == i.as_str()),
                "{e} ends nowhere: {ids:?}"
            );
        }
    }
    ids
}

/// `graph -o json` is the topology the DOT picture is drawn from: the same nodes and edges,
/// with the links' kinds and addresses, the bridges' ports and the providers' gateway, table
/// and mark.
#[test]
fn graph_json_is_the_topology_the_dot_is_drawn_from() {
    let file = repo().join("examples/providers.yaml");
    let d = file.to_str().unwrap();
    let out = netconverge(&["graph", "-d", d, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_schema(&stdout(&out), "graph");
    let doc = json_of(&out);
    assert_eq!(doc["observed"], false);
    let ids = graph_ids(&doc);
    let dot = stdout(&netconverge(&["graph", "-d", d]));
    let dot_nodes = dot
        .lines()
        .filter(|l| l.contains(" [label=") && !l.contains(" -> "));
    assert_eq!(dot_nodes.count(), ids.len(), "{dot}\n{ids:?}");
    let dot_edges = dot.lines().filter(|l| l.contains(" -> ")).count();
    assert_eq!(dot_edges, doc["edges"].as_array().unwrap().len());
    for id in &ids {
        assert!(
            dot.contains(&format!("  \"{id}\" [label=")),
            "{id} not in DOT"
        );
    }
    let node = |id: &str| {
        doc["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap_or_else(|| panic!("no node {id}: {doc}"))
            .clone()
    };
    let br0 = node("br0");
    assert_eq!(
        (br0["type"].as_str(), br0["kind"].as_str()),
        (Some("link"), Some("bridge"))
    );
    assert_eq!(
        br0["ports"],
        serde_json::json!(["tap-centos", "tap-fedora"])
    );
    assert_eq!(br0["addresses"], serde_json::json!(["10.0.0.1/24"]));
    assert_eq!(node("tap-centos")["master"], "br0");
    let wrt = node("provider wrt");
    assert_eq!(wrt["gateway"], "192.168.1.1");
    assert_eq!(
        (wrt["table"].as_str(), wrt["number"].as_u64()),
        (Some("wrt"), Some(1))
    );
    assert_eq!(
        (wrt["mark"].as_u64(), wrt["link"].as_str()),
        (Some(1), Some("eth0"))
    );
    let via = serde_json::json!({"from": "eth0", "to": "provider wrt", "kind": "provider_via"});
    assert!(doc["edges"].as_array().unwrap().contains(&via), "{doc}");
}

/// `graph --observed -o json` says what `ip -j` says: each link with its kind, state and
/// addresses, a bridge with its ports, the gateway of a route.
#[test]
fn graph_json_of_the_observed_host_agrees_with_ip() {
    if !root_or_skip("graph_json_of_the_observed_host_agrees_with_ip") {
        return;
    }
    let (ns, _lan) = host_with_nic();
    ns.ip("link add br9 type bridge");
    ns.ip("link add v9 type veth peer name v9p");
    ns.ip("link set v9 master br9");
    ns.ip("link set br9 up");
    ns.ip("addr add 10.9.0.1/24 dev br9");
    ns.ip("addr add 192.168.7.2/24 dev eth0");
    ns.ip("route add 10.99.0.0/16 via 192.168.7.1 table 101");
    let empty = TempDir::new("graph-observed");
    let out = netconverge_at(&ns, empty.path(), &["graph", "--observed", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_schema(&stdout(&out), "graph");
    let doc = json_of(&out);
    assert_eq!(doc["observed"], true);
    let mut ids = graph_ids(&doc);
    ids.retain(|i| !i.starts_with("gateway "));
    let mut names: Vec<String> = ns
        .ip_json("link show")
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .filter(|n| n != "lo")
        .collect();
    names.sort();
    ids.sort();
    assert_eq!(ids, names);
    for l in ns.ip_json("addr show").as_array().unwrap() {
        let name = l["ifname"].as_str().unwrap();
        let Some(node) = doc["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == name)
        else {
            continue;
        };
        let up = l["flags"].as_array().unwrap().iter().any(|f| f == "UP");
        assert_eq!(node["up"], up, "{name}: {node}");
        for a in l["addr_info"].as_array().unwrap() {
            if a["family"] == "inet" {
                let addr = format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]);
                assert!(
                    node["addresses"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|x| x == &addr[..]),
                    "{addr}: {node}"
                );
            }
        }
    }
    let br9 = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "br9")
        .unwrap();
    assert_eq!(br9["ports"], serde_json::json!(["v9"]), "{br9}");
    let gw = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "gateway")
        .unwrap();
    assert_eq!(
        (gw["address"].as_str(), gw["link"].as_str()),
        (Some("192.168.7.1"), Some("eth0"))
    );
    assert_eq!(gw["tables"], serde_json::json!(["101"]), "{gw}");
}

fn pending_in(ns: &Netns) -> bool {
    std::path::Path::new(&format!("/run/netconverge/netns/{}/pending.json", ns.name)).exists()
}

/// `confirm -o json` and `rollback -o json` after `reconcile --confirm-within`: the changes
/// kept; the revert's plan in the plan's own structure, its writes, and the kernel put back
/// (`ip -j`); with nothing pending, the failure document and exit 2.
#[test]
fn confirm_and_rollback_json_match_the_schema() {
    if !root_or_skip("confirm_and_rollback_json_match_the_schema") {
        return;
    }
    let ns = Netns::new();
    let _state = StateDir(ns.name.clone());
    let dir = TempDir::new("json-confirm");
    write(
        dir.path(),
        "a.yaml",
        "links:\n  br9:\n    kind: bridge\n    addresses: [10.9.0.1/24]\n",
    );
    let run = |extra: &[&str]| netconverge_at(&ns, dir.path(), extra);
    let applied = run(&["reconcile", "--confirm-within", "60s", "-o", "json"]);
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    assert_schema(&stdout(&applied), "plan");
    assert!(pending_in(&ns));
    let out = run(&["confirm", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_schema(&stdout(&out), "confirm");
    let kept = json_of(&out);
    assert!(
        kept["confirmed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "add link br9"),
        "{kept}"
    );
    assert!(kept["seconds_left"].as_f64().unwrap() > 0.0);
    assert!(!pending_in(&ns));
    for cmd in ["confirm", "rollback"] {
        let out = run(&[cmd, "-o", "json"]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: nothing is pending");
        assert_schema(&stdout(&out), "failure");
    }
    write(dir.path(), "a.yaml", "links:\n  br9:\n    kind: bridge\n    addresses: [10.9.0.1/24]\nroutes:\n  - to: 10.99.0.0/16\n    type: blackhole\n");
    let applied = run(&["reconcile", "--confirm-within", "60s", "-o", "json"]);
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
    assert!(
        ns.ip_json("route show 10.99.0.0/16")
            .as_array()
            .unwrap()
            .len()
            == 1
    );
    let out = run(&["rollback", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_schema(&stdout(&out), "rollback");
    let doc = json_of(&out);
    let changes = doc["plan"]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{doc}");
    assert_eq!(
        (changes[0]["action"].as_str(), changes[0]["kind"].as_str()),
        (Some("remove"), Some("route"))
    );
    assert_eq!(
        changes[0]["before"]["routes"][0]["type"], "blackhole",
        "{doc}"
    );
    assert_eq!(doc["plan"]["summary"]["remove"], 1);
    assert!(doc["writes"].as_u64().unwrap() >= 1, "{doc}");
    assert!(ns
        .ip_json("route show 10.99.0.0/16")
        .as_array()
        .unwrap()
        .is_empty());
    assert!(!pending_in(&ns));
}

fn addr_protocol(ns: &Netns, link: &str, local: &str) -> Option<String> {
    let links = ns.ip_json(&format!("addr show dev {link}"));
    let a = links[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["local"] == local)
        .cloned();
    a.unwrap_or_else(|| panic!("no {local} on {link}"))["protocol"]
        .as_str()
        .map(str::to_string)
}

fn route_protocol(ns: &Netns, args: &str) -> String {
    ns.ip_json(&format!("route show {args}"))[0]["protocol"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// `show --adopt` on an `external` NIC: its address stays foreign (no IFA_PROTO is written,
/// `ip -j addr`), so does a route a DHCP client keeps (`proto dhcp`); a static route through it
/// is adopted (`proto 157`). Removing all three from the file removes only the adopted route.
#[test]
fn show_adopt_leaves_the_external_nic_and_a_programs_routes_foreign() {
    if !root_or_skip("show_adopt_leaves_the_external_nic_and_a_programs_routes_foreign") {
        return;
    }
    let (ns, _lan) = host_with_nic();
    ns.ip("addr add 192.168.7.2/24 dev eth0");
    ns.ip("route add default via 192.168.7.1 proto dhcp");
    ns.ip("route add 10.5.0.0/16 via 192.168.7.1 table 101");
    // Kept in the file, so that the empty-state guard sees something stay.
    ns.ip("link add br9 type bridge");
    let empty = TempDir::new("adopt-nic-src");
    let out = netconverge_at(&ns, empty.path(), &["show", "--adopt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = stdout(&out);
    assert_eq!(
        addr_protocol(&ns, "eth0", "192.168.7.2"),
        None,
        "the address keeps no mark"
    );
    assert_eq!(route_protocol(&ns, "default"), "dhcp");
    assert_eq!(route_protocol(&ns, "table 101"), "157");
    let managed = &shown[shown.rfind("managed:").unwrap()..];
    assert!(
        managed.contains("10.5.0.0/16 via 192.168.7.1 dev eth0 table 101"),
        "{managed}"
    );
    assert!(
        !managed.contains("default") && !managed.contains("192.168.7.2"),
        "{managed}"
    );
    let dir = TempDir::new("adopt-nic");
    write(dir.path(), "host.yaml", &shown);
    let check = netconverge_at(&ns, dir.path(), &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    let offline = netconverge_at(
        &ns,
        dir.path(),
        &[
            "check",
            "--observed",
            dir.path().join("host.yaml").to_str().unwrap(),
        ],
    );
    assert_eq!(offline.status.code(), Some(0), "{}", stdout(&offline));
    // eth0 declared bare: its address, the DHCP default and the static route leave the file.
    let kept = without_entries(&shown, &["routes:", "    addresses:"]);
    write(dir.path(), "host.yaml", &kept);
    let out = netconverge_at(&ns, dir.path(), &["reconcile"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}\n{kept}",
        stdout(&out),
        stderr(&out)
    );
    assert!(ns
        .ip_json("route show table 101")
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(route_protocol(&ns, "default"), "dhcp");
    assert_eq!(addr_protocol(&ns, "eth0", "192.168.7.2"), None);
    let again = netconverge_at(&ns, dir.path(), &["check"]);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
}
