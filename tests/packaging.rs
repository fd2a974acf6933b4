//! What the package and the deployment files promise, without root: `check --textfile` never
//! leaves a stale metrics file, logs are plain text off a terminal and under the journal, the
//! generated completions load into bash, and the example workflow installs a release instead
//! of building. (`tests/check.rs` tests `deploy/ci/netconverge-ci.sh`;
//! `deploy/debian/check.sh`, run by `.ci/run`, checks the built package itself.)

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

const DESIRED: &str = "\
links:
  br0: { kind: bridge, addresses: [10.0.0.1/24] }
";

/// A `show` snapshot of a host matching DESIRED, and one whose br0 lost its address.
const IN_SYNC: &str = "links:\n  br0: { kind: bridge, up: true, addresses: [10.0.0.1/24] }\n";
const DRIFTED: &str = "links:\n  br0: { kind: bridge, up: true }\n";

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn check_textfile(desired: &Path, snapshot: &Path, textfile: &Path) -> Output {
    netconverge(&[
        "-d",
        desired.to_str().unwrap(),
        "check",
        "--observed",
        snapshot.to_str().unwrap(),
        "--textfile",
        textfile.to_str().unwrap(),
    ])
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn check_textfile_is_replaced_on_every_run_and_never_left_stale() {
    let dir = TempDir::new("textfile");
    let desired = dir.path().join("desired/host.yaml");
    let snapshot = dir.path().join("snapshot.yaml");
    let prom_dir = dir.path().join("collector");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let prom = prom_dir.join("netconverge.prom");
    write(&desired, DESIRED);

    write(&snapshot, IN_SYNC);
    let out = check_textfile(&desired, &snapshot, &prom);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&prom).unwrap();
    assert_eq!(
        metric(&text, "netconverge_check_success"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "netconverge_drift_objects{kind=\"address\"}"),
        Some(0.0)
    );

    write(&snapshot, DRIFTED);
    let out = check_textfile(&desired, &snapshot, &prom);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let drifted = std::fs::read_to_string(&prom).unwrap();
    assert_eq!(
        metric(&drifted, "netconverge_drift_objects{kind=\"address\"}"),
        Some(1.0)
    );
    let t1 = metric(&drifted, "netconverge_last_check_timestamp_seconds").unwrap();

    // The check cannot run (the desired state is invalid): the drift of the last run is
    // gone, the file says the check failed, and when.
    write(&desired, "links: [\n");
    let out = check_textfile(&desired, &snapshot, &prom);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("host.yaml"), "{}", stderr(&out));
    let failed = std::fs::read_to_string(&prom).unwrap();
    assert_eq!(
        metric(&failed, "netconverge_check_success"),
        Some(0.0),
        "{failed}"
    );
    assert!(!failed.contains("netconverge_drift_objects"), "{failed}");
    assert!(metric(&failed, "netconverge_last_check_timestamp_seconds").unwrap() >= t1);
    // Only the metrics file is left in the collector's directory (no temporary file).
    let names: Vec<_> = std::fs::read_dir(&prom_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("netconverge.prom")]);

    // A directory that does not exist: exit 2 with the reason.
    let out = check_textfile(&desired, &snapshot, &dir.path().join("missing/x.prom"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot write the textfile"),
        "{}",
        stderr(&out)
    );
}

fn validate_log(envs: &[(&str, &str)]) -> String {
    let desired = repo().join("desired");
    let out = Command::new(env!("CARGO_BIN_EXE_netconverge"))
        .args(["-vv", "-d", desired.to_str().unwrap(), "validate"])
        .envs(envs.iter().copied())
        .env_remove("NETCONVERGE_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stderr(&out)
}

/// Does a log line start with a timestamp (`2026-12-01T12:00:00.123456Z`), colour codes aside?
fn stamped(line: &str) -> bool {
    let mut plain = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip `ESC [ … m`.
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    let b = plain.as_bytes();
    b.len() > 19 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T'
}

#[test]
fn logs_are_plain_off_a_terminal_and_under_the_journal() {
    for envs in [vec![], vec![("JOURNAL_STREAM", "8:12345")]] {
        let log = validate_log(&envs);
        let first = log
            .lines()
            .find(|l| l.contains("loaded"))
            .unwrap_or_else(|| panic!("{log}"));
        assert!(first.starts_with("DEBUG "), "{envs:?}: {first:?}");
        assert!(!log.contains('\u{1b}'), "{envs:?}: colour codes in {log:?}");
        assert!(!log.lines().any(stamped), "{envs:?}: timestamps in {log:?}");
    }
    // On a terminal (a pty from util-linux `script`): colour and time, for a person.
    let cmd = format!(
        "{} -vv -d {} validate",
        env!("CARGO_BIN_EXE_netconverge"),
        repo().join("desired").display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("JOURNAL_STREAM")
        .env_remove("NETCONVERGE_LOG")
        .output()
        .expect("script (util-linux)");
    let text = stdout(&out);
    assert!(text.contains("\u{1b}["), "{text:?}");
    let line = text
        .lines()
        .find(|l| l.contains("loaded"))
        .unwrap_or_default();
    assert!(stamped(line), "{line:?}");
}

#[test]
fn the_bash_completion_loads_and_completes_subcommands() {
    let out = netconverge(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    let dir = TempDir::new("completion");
    let script = dir.path().join("netconverge.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let run = Command::new("bash")
        .arg("-c")
        .arg(
            "source \"$1\" && complete -p netconverge && COMP_WORDS=(netconverge con) \
             COMP_CWORD=1 && _netconverge netconverge con netconverge && echo \"${COMPREPLY[*]}\"",
        )
        .arg("_")
        .arg(&script)
        .output()
        .unwrap();
    let text = stdout(&run);
    assert!(run.status.success(), "{text}{}", stderr(&run));
    assert!(text.split_whitespace().any(|w| w == "confirm"), "{text}");
    assert!(!text.split_whitespace().any(|w| w == "reconcile"), "{text}");
    assert_eq!(netconverge(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn the_example_workflow_installs_a_release_instead_of_building() {
    let text = std::fs::read_to_string(repo().join("deploy/ci/github-actions.yml")).unwrap();
    let steps: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let body = steps.join("\n");
    assert!(
        !body.contains("cargo "),
        "the workflow builds netconverge:\n{body}"
    );
    assert!(
        body.contains("gh release download") && body.contains(".deb"),
        "{body}"
    );
    assert!(body.contains("netconverge-ci.sh hosts reports"), "{body}");
}
