//! Host selection (`match: { hostname: … }`) over a directory laid out as Kubernetes mounts a
//! ConfigMap: the files are symlinks through `..data`, itself a symlink to a timestamped
//! directory that an update replaces by swapping `..data`. Root-free: `validate --host`.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::{netconverge, stderr, stdout, TempDir};

const URSA: &str = "match: { hostname: \"ursa*\" }\nlinks:\n  br-ursa:\n    kind: bridge\n";
const LAB: &str =
    "match:\n  hostname: [\"lab-?\", \"bench\"]\nlinks:\n  br-lab:\n    kind: bridge\n";
const ALL: &str = "links:\n  br-all:\n    kind: bridge\n";

/// Write a revision directory `..NAME` holding `files`, and point `..data` at it (atomically,
/// as the kubelet does: a new link renamed over the old one).
fn revision(dir: &Path, name: &str, files: &[(&str, &str)]) {
    let rev = dir.join(format!("..{name}"));
    std::fs::create_dir(&rev).unwrap();
    for (n, t) in files {
        std::fs::write(rev.join(n), t).unwrap();
    }
    let tmp = dir.join("..data_tmp");
    symlink(format!("..{name}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for (n, _) in files {
        let link = dir.join(n);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(format!("..data/{n}"), &link).unwrap();
        }
    }
}

/// What `validate --host HOST` says applies: the line naming the files.
fn valid_for(dir: &Path, host: &str) -> String {
    let d = dir.to_str().unwrap();
    let out = netconverge(&["-d", d, "validate", "--host", host]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out).lines().next().unwrap_or_default().to_string()
}

#[test]
fn each_host_sees_its_files_of_a_configmap_and_a_swap_changes_the_selection() {
    let cm = TempDir::new("fleet-cm");
    let dir = cm.path();
    revision(
        dir,
        "2026_12_01_a",
        &[("all.yaml", ALL), ("lab.yaml", LAB), ("ursa.yaml", URSA)],
    );
    let ursa = valid_for(dir, "ursa");
    assert!(ursa.starts_with("valid for host ursa: 2 links"), "{ursa}");
    assert!(
        ursa.contains("ursa.yaml") && !ursa.contains("lab.yaml"),
        "{ursa}"
    );
    let lab = valid_for(dir, "lab-1");
    assert!(
        lab.contains("lab.yaml") && !lab.contains("ursa.yaml"),
        "{lab}"
    );
    let other = valid_for(dir, "bear");
    assert!(
        other.contains("1 links") && other.contains("2 file(s)"),
        "{other}"
    );
    // The revision directory itself (a dot-directory) is never read twice.
    assert!(!ursa.contains("..2026"), "{ursa}");

    // An update: ursa's file now matches lab hosts too, and a bad match arrives later.
    let both = URSA.replace("\"ursa*\"", "[\"ursa*\", \"lab-*\"]");
    revision(
        dir,
        "2026_12_01_b",
        &[("all.yaml", ALL), ("lab.yaml", LAB), ("ursa.yaml", &both)],
    );
    let lab = valid_for(dir, "lab-1");
    assert!(
        lab.contains("3 links") && lab.contains("ursa.yaml"),
        "{lab}"
    );
    let bad = URSA.replace("\"ursa*\"", "\"ursa[\"");
    revision(
        dir,
        "2026_12_01_c",
        &[("all.yaml", ALL), ("lab.yaml", LAB), ("ursa.yaml", &bad)],
    );
    let out = netconverge(&["-d", dir.to_str().unwrap(), "validate", "--host", "bear"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("ursa.yaml:1:") && stderr(&out).contains("not a hostname glob"),
        "{}",
        stderr(&out)
    );
}
