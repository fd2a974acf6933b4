//! `deploy/kubernetes/`: the manifests validate against the Kubernetes schemas
//! (`kubernetes-validate --strict`, installed by `.ci/run` with pip) and kustomize's output
//! (`kubectl kustomize`) is what the README promises: a DaemonSet on the host network with
//! the unit's capabilities and no more, probes on /healthz and /readyz, limits, no API access,
//! the generated ConfigMap mounted, and its files valid desired state for the hosts they name.
//! Without kubectl the kustomization's resources and files are checked one by one instead.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{netconverge, repo, stderr, stdout, TempDir};
use serde_json::Value;

/// The tool `name` on PATH, or: outside CI, `None` (the test says it skipped); with CI=true,
/// a failure (CI installs it).
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    });
    if found.is_none() {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
            "{name} is not installed, and CI=true forbids skipping (.ci/run installs it)"
        );
        eprintln!("skipped: {name} is not installed");
    }
    found
}

fn k8s() -> PathBuf {
    repo().join("deploy/kubernetes")
}

/// Every document of a YAML stream, as JSON (PyYAML comes with kubernetes-validate).
fn documents(yaml: &str) -> Vec<Value> {
    let tmp = TempDir::new("k8s-yaml");
    let f = tmp.path().join("in.yaml");
    std::fs::write(&f, yaml).unwrap();
    let code = "import json,sys,yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))";
    let out = Command::new("python3")
        .args(["-c", code])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn validate(file: &Path) {
    let Some(kv) = tool("kubernetes-validate") else {
        return;
    };
    let out = Command::new(kv)
        .args(["--strict", "-k", "1.33.0"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("passed"), "{}", stdout(&out));
}

/// The capabilities of the hardened systemd unit, without `CAP_`.
fn unit_capabilities() -> Vec<String> {
    let unit =
        std::fs::read_to_string(repo().join("deploy/systemd/netconverge-watch.service")).unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .unwrap();
    let mut caps: Vec<String> = line
        .split_whitespace()
        .map(|c| c.trim_start_matches("CAP_").to_string())
        .collect();
    caps.sort();
    caps
}

fn check_daemonset(ds: &Value, configmap: &str) {
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["automountServiceAccountToken"], false, "no API access");
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let mut caps: Vec<String> = serde_json::from_value(sc["capabilities"]["add"].clone()).unwrap();
    caps.sort();
    assert_eq!(
        caps,
        unit_capabilities(),
        "the same capabilities as the hardened unit"
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let args: Vec<String> = serde_json::from_value(c["args"].clone()).unwrap();
    let at = args
        .iter()
        .position(|a| a == "--metrics")
        .expect("watch --metrics");
    let port = c["livenessProbe"]["httpGet"]["port"].as_u64().unwrap();
    assert!(
        args[at + 1].ends_with(&format!(":{port}")),
        "probes reach --metrics"
    );
    assert!(
        c["resources"]["limits"]["memory"].is_string()
            && c["resources"]["limits"]["cpu"].is_string()
    );
    let vols = pod["volumes"].as_array().unwrap();
    assert!(
        vols.iter().any(|v| v["configMap"]["name"] == configmap),
        "the generated ConfigMap {configmap} is mounted: {vols:?}"
    );
}

/// The ConfigMap's files are valid desired state, and each host sees its files.
fn check_desired(data: &serde_json::Map<String, Value>) {
    let tmp = TempDir::new("k8s-desired");
    for (name, text) in data {
        std::fs::write(tmp.path().join(name), text.as_str().unwrap()).unwrap();
    }
    let d = tmp.path().to_str().unwrap();
    for (host, has_br0) in [("ursa", true), ("bear", false)] {
        let out = netconverge(&["-d", d, "validate", "--host", host]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            stdout(&out).contains("1 links"),
            has_br0,
            "{host}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn the_kustomization_builds_a_valid_rbac_free_daemonset_with_its_configmap() {
    let Some(kubectl) = tool("kubectl") else {
        return the_kustomization_resources_are_each_valid();
    };
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(k8s())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let built = TempDir::new("k8s-built");
    let file = built.path().join("all.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    validate(&file);
    if tool("python3").is_none() {
        return;
    }
    let docs = documents(&stdout(&out));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["ConfigMap", "DaemonSet"],
        "nothing else: no RBAC, no service account"
    );
    let cm = &docs[0];
    let name = cm["metadata"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("netconverge-desired-"),
        "hashed name: {name}"
    );
    check_daemonset(&docs[1], name);
    check_desired(cm["data"].as_object().unwrap());
}

/// Without kustomize: every resource the kustomization lists validates, and every file of its
/// ConfigMap generator exists and is valid desired state.
fn the_kustomization_resources_are_each_valid() {
    let k = std::fs::read_to_string(k8s().join("kustomization.yaml")).unwrap();
    let doc = &documents(&k)[0];
    for r in doc["resources"].as_array().unwrap() {
        validate(&k8s().join(r.as_str().unwrap()));
    }
    let mut data = serde_json::Map::new();
    for f in doc["configMapGenerator"][0]["files"].as_array().unwrap() {
        let p = k8s().join(f.as_str().unwrap());
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        data.insert(name, Value::String(std::fs::read_to_string(p).unwrap()));
    }
    check_desired(&data);
    let ds = documents(&std::fs::read_to_string(k8s().join("daemonset.yaml")).unwrap());
    check_daemonset(&ds[0], "netconverge-desired");
}
