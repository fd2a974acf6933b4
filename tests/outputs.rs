//! Outputs people can trust: a closed pipe (`netconverge show | head -1`) ends every printing
//! command quietly, killed by SIGPIPE as other Unix tools are, never with a panic; a
//! directory without YAML is an error, not an empty state.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use common::{repo, root_or_skip, Netns};

/// Run netconverge with its stdout a pipe whose reading end is already closed; returns the
/// signal that ended it (if any) and its stderr.
fn into_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_netconverge"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("run netconverge");
    (
        out.status.signal(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_quiet(args: &[&str]) {
    let (signal, stderr) = into_closed_pipe(args);
    assert_eq!(
        signal,
        Some(libc::SIGPIPE),
        "{args:?} ended otherwise: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
}

#[test]
fn validate_into_a_closed_pipe_ends_quietly() {
    let desired = repo().join("desired");
    let d = desired.to_str().unwrap();
    assert_quiet(&["-d", d, "validate"]);
    assert_quiet(&["-d", d, "-o", "json", "validate"]);
    assert_quiet(&["graph", "-d", d, "-o", "json"]);
    let seed = repo().join("tests/data/shorewall/seed");
    let seed = seed.to_str().unwrap();
    assert_quiet(&["import", "shorewall", "--offline", seed, "-o", "json"]);
    // clap prints the help itself and ignores the closed pipe: a quiet exit either way.
    let (_, stderr) = into_closed_pipe(&["--help"]);
    assert!(!stderr.contains("panicked"), "--help panicked: {stderr}");
}

#[test]
fn show_and_check_into_a_closed_pipe_end_quietly() {
    if !root_or_skip("show_and_check_into_a_closed_pipe_end_quietly") {
        return;
    }
    let ns = Netns::new();
    ns.ip("link add br9 type bridge");
    let desired = repo().join("desired");
    let d = desired.to_str().unwrap();
    assert_quiet(&["--netns", &ns.name, "show"]);
    for format in ["text", "json", "junit", "prometheus"] {
        // The ursa example is not this namespace, so check reports drift (or refuses for a
        // host fact): either way it prints, and the pipe is closed.
        let (signal, stderr) =
            into_closed_pipe(&["--netns", &ns.name, "-d", d, "-o", format, "check"]);
        assert!(
            !stderr.contains("panicked"),
            "check -o {format} panicked: {stderr}"
        );
        assert!(
            signal == Some(libc::SIGPIPE) || signal.is_none(),
            "check -o {format}: {signal:?} {stderr}"
        );
    }
    assert_quiet(&["--netns", &ns.name, "-d", d, "reconcile", "--dry-run"]);
    for args in [
        &["graph", "-d", d][..],
        &["graph", "-d", d, "-o", "svg"],
        &["graph", "--observed", "--netns", &ns.name],
        &["status", "--netns", &ns.name],
        &["show", "--netns", &ns.name, "-o", "json"],
    ] {
        assert_quiet(args);
    }
}

/// A directory without any YAML is a wrong path far more often than a wish to remove
/// everything: refused (exit 2) by every command but `reconcile --allow-empty`.
#[test]
fn a_directory_without_yaml_is_refused() {
    let dir = common::TempDir::new("empty");
    std::fs::write(dir.path().join("README"), "not yaml\n").unwrap();
    let d = dir.path().to_str().unwrap();
    for args in [
        vec!["-d", d, "validate"],
        vec!["-d", d, "reconcile", "--dry-run"],
    ] {
        let out = common::netconverge(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            common::stderr(&out)
        );
        assert!(
            common::stderr(&out).contains("holds no *.yaml or *.yml file"),
            "{args:?}: {}",
            common::stderr(&out)
        );
    }
}

/// `graph -o svg` of the ursa example is an SVG document that names every link of it (and
/// the DOT the default prints has a node for each).
#[test]
fn the_graph_of_the_example_names_every_link() {
    let desired = repo().join("desired");
    let d = desired.to_str().unwrap();
    let svg = common::netconverge(&["-d", d, "-o", "svg", "graph"]);
    assert_eq!(svg.status.code(), Some(0), "{}", common::stderr(&svg));
    let text = common::stdout(&svg);
    let doc = roxmltree::Document::parse(&text).expect("the SVG parses as XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let words: Vec<&str> = doc
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .flat_map(str::split_whitespace)
        .collect();
    let dot = common::stdout(&common::netconverge(&["-d", d, "graph"]));
    for link in ["br0", "eth0", "tap-centos", "tap-fedora", "tap-debian"] {
        assert!(
            words.contains(&link),
            "{link} is not in the picture: {words:?}"
        );
        assert!(
            dot.contains(&format!("\"{link}\" [label=")),
            "{link} in DOT:\n{dot}"
        );
    }
    let bad = common::netconverge(&["-d", d, "-o", "junit", "graph"]);
    assert_eq!(bad.status.code(), Some(2));
}
