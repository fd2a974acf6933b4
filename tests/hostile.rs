//! Hostile and tricky input against the rule every input must follow: either it is refused
//! before the first write (exit 2, `file:line:col`, zero kernel changes) or it converges (the
//! second reconcile is a no-op and `check` exits 0). Each case runs as root in a fresh
//! namespace whose `eth0` is a veth to a LAN namespace; the oracle is `ip -j` (links,
//! addresses, routes and rules of both families, before and after), `/proc/sys` and, for
//! `dhcp:` cases, `ss -lnu` inside the namespace.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::Value;

/// What a case must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Exit 2 before any write, with an error at `file:line:col`.
    Refused,
    /// Exit 0, then a no-op second pass and a clean `check`.
    Converges,
}

/// One input: a name, the YAML (eth0 is the namespace's NIC) and the outcome it must have.
struct Case {
    name: &'static str,
    yaml: &'static str,
    rule: Rule,
}

const ETH0: &str = "links:\n  eth0: { kind: external, addresses: [192.168.1.20/24] }\n";

/// The corpus: one or more inputs of each class of the hostile-input issue.
const CASES: &[Case] = &[
    // Names the kernel rewrites or refuses.
    Case { name: "pattern-bridge", yaml: "  br%d: { kind: bridge }\n", rule: Rule::Refused },
    Case { name: "pattern-tap", yaml: "  tap%d: { kind: tap }\n", rule: Rule::Refused },
    Case { name: "name-all", yaml: "  all: { kind: bridge }\n", rule: Rule::Refused },
    Case { name: "name-default", yaml: "  default: { kind: bridge }\n", rule: Rule::Refused },
    // Objects the kernel makes or normalises itself.
    Case {
        name: "link-local-v6",
        yaml: "  br0: { kind: bridge, addresses: [\"fe80::1/64\"] }\n",
        rule: Rule::Refused,
    },
    Case {
        name: "sysctl-newline",
        yaml: "  br0: { kind: bridge }\nsysctl:\n  net.ipv4.ip_forward: \"1\\n0\"\n",
        rule: Rule::Refused,
    },
    Case {
        name: "sysctl-octal",
        yaml: "  br0: { kind: bridge }\nsysctl:\n  net.ipv4.ip_forward: \"01\"\n",
        rule: Rule::Refused,
    },
    Case {
        name: "sysctl-two-values-for-one",
        yaml: "  br0: { kind: bridge }\nsysctl:\n  net.ipv4.ip_forward: \"1 0\"\n",
        rule: Rule::Refused,
    },
    Case {
        name: "sysctl-spaces-normalised",
        yaml: "  br0: { kind: bridge }\nsysctl:\n  net.ipv4.ip_local_port_range: \"32768 \\t 60999\"\n",
        rule: Rule::Converges,
    },
    // Host facts: found before the first write, not by a failed one.
    Case {
        name: "sysctl-missing",
        yaml: "  br0: { kind: bridge }\nsysctl:\n  net.ipv4.no_such_sysctl: \"1\"\n",
        rule: Rule::Refused,
    },
    Case {
        name: "sysctl-of-new-link-misspelt",
        yaml: "  br0: { kind: bridge }\nsysctl:\n  net.ipv4.conf.br0.forwardingg: \"1\"\n",
        rule: Rule::Refused,
    },
    Case {
        name: "sysctl-of-new-link",
        yaml: "  br0: { kind: bridge }\nsysctl:\n  net.ipv4.conf.br0.forwarding: \"1\"\n",
        rule: Rule::Converges,
    },
    Case {
        name: "mtu-below-ipv6-minimum",
        yaml: "  br0: { kind: bridge, mtu: 1200, addresses: [\"fd00:1::1/64\"] }\n",
        rule: Rule::Refused,
    },
    Case {
        name: "two-passthru-macvlans",
        yaml: "  mv0: { kind: macvlan, macvlan: { link: eth0, mode: passthru } }\n  mv1: { kind: macvlan, macvlan: { link: eth0, mode: passthru } }\n",
        rule: Rule::Refused,
    },
    Case {
        name: "route-over-down-link",
        yaml: "  br0: { kind: bridge, up: false, addresses: [10.0.0.1/24] }\nroutes:\n  - { to: 10.9.0.0/24, via: 10.0.0.2, dev: br0 }\n",
        rule: Rule::Refused,
    },
    Case {
        name: "route-over-up-link",
        yaml: "  br0: { kind: bridge, addresses: [10.0.0.1/24] }\nroutes:\n  - { to: 10.9.0.0/24, via: 10.0.0.2, dev: br0 }\n",
        rule: Rule::Converges,
    },
    // Names legal for the kernel that mean something to dnsmasq.
    Case {
        name: "dhcp-comma-in-bridge-name",
        yaml: "  \"b,eth0\": { kind: bridge, addresses: [10.0.0.1/24] }\ndhcp:\n  \"b,eth0\": { ranges: [10.0.0.100-10.0.0.199] }\n",
        rule: Rule::Refused,
    },
    Case {
        name: "dhcp-quote-in-bridge-name",
        yaml: "  'b\"0': { kind: bridge, addresses: [10.0.0.1/24] }\ndhcp:\n  'b\"0': { ranges: [10.0.0.100-10.0.0.199] }\n",
        rule: Rule::Refused,
    },
    Case {
        name: "dhcp-on-bridge",
        yaml: "  br0: { kind: bridge, addresses: [10.0.0.1/24, \"fd00:10::1/64\"] }\ndhcp:\n  br0:\n    ranges: [10.0.0.100-10.0.0.199]\n    dns: { upstream: [192.168.1.1] }\n    ipv6: { ra: true }\n",
        rule: Rule::Converges,
    },
];

/// What `ip -j` says about the namespace, reduced to what identifies objects (no counters,
/// no operational state that moves on its own).
fn snapshot(ns: &Netns) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let field = |v: &Value, k: &str| v.get(k).map(|x| x.to_string()).unwrap_or_default();
    for l in arr(ns.ip_json("-d link show")) {
        let kind = l
            .pointer("/linkinfo/info_kind")
            .map(Value::to_string)
            .unwrap_or_default();
        out.insert(format!(
            "link {} {kind} mtu={} master={} alias={} flags={}",
            field(&l, "ifname"),
            field(&l, "mtu"),
            field(&l, "master"),
            field(&l, "ifalias"),
            field(&l, "flags").contains("\"UP\"")
        ));
    }
    for l in arr(ns.ip_json("addr show")) {
        for a in arr(l.get("addr_info").cloned().unwrap_or(Value::Null)) {
            out.insert(format!(
                "addr {} {}/{}",
                field(&l, "ifname"),
                field(&a, "local"),
                field(&a, "prefixlen")
            ));
        }
    }
    for fam in ["-4", "-6"] {
        for r in arr(ns.ip_json(&format!("{fam} route show table all"))) {
            out.insert(format!("route {fam} {r}"));
        }
        for r in arr(ns.ip_json(&format!("{fam} rule show"))) {
            out.insert(format!("rule {fam} {r}"));
        }
    }
    for s in ["ipv4/ip_forward", "ipv4/ip_local_port_range"] {
        let v = ns.exec(&format!("cat /proc/sys/net/{s}"));
        out.insert(format!("sysctl {s} {}", stdout(&v).trim()));
    }
    out
}

fn arr(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        _ => Vec::new(),
    }
}

/// Kills what a case started in its namespace (dnsmasq) and removes its state directory,
/// also when the test panics: deleting a namespace kills nothing.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(out) = std::process::Command::new("ip")
            .args(["netns", "pids", &self.0])
            .output()
        {
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

/// The UDP listeners in the namespace that are not bound to `bridge` or one of `own`.
fn listeners_outside(ns: &Netns, bridge: &str, own: &[&str]) -> Vec<String> {
    let out = ns.exec("ss -lnuH");
    stdout(&out)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .filter(|local| {
            let (addr, _port) = local.rsplit_once(':').unwrap_or((local, ""));
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            !(addr.ends_with(&format!("%{bridge}"))
                || own.contains(&addr)
                || addr.starts_with("fe80:") && addr.ends_with(&format!("%{bridge}")))
        })
        .collect()
}

fn run_case(c: &Case) -> Result<(), String> {
    let (ns, _lan) = host_with_nic();
    let _cleanup = Cleanup(ns.name.clone());
    let dir = TempDir::new("hostile");
    let file = dir.path().join("host.yaml");
    let text = if c.yaml.starts_with("  ") {
        format!("{ETH0}{}", c.yaml)
    } else {
        c.yaml.to_string()
    };
    std::fs::write(&file, &text).expect("write case");
    let before = snapshot(&ns);
    let out = netconverge_at(&ns, dir.path(), &["reconcile"]);
    let code = out.status.code();
    let err = stderr(&out);
    match (c.rule, code) {
        (Rule::Refused, Some(2)) => {
            let after = snapshot(&ns);
            if before != after {
                let changed: Vec<_> = after.symmetric_difference(&before).collect();
                return Err(format!("refused but the kernel changed: {changed:?}"));
            }
            let at = format!("{}:", file.display());
            if !err.contains(&at) {
                return Err(format!("refused without file:line:col: {err}"));
            }
            Ok(())
        }
        (Rule::Converges, Some(0)) => {
            let second = netconverge_at(&ns, dir.path(), &["reconcile"]);
            if !stdout(&second).contains("No changes.") || second.status.code() != Some(0) {
                return Err(format!(
                    "second pass is not a no-op: {}{}",
                    stdout(&second),
                    stderr(&second)
                ));
            }
            let check = netconverge_at(&ns, dir.path(), &["check"]);
            if check.status.code() != Some(0) {
                return Err(format!("check: {}{}", stdout(&check), stderr(&check)));
            }
            if c.yaml.contains("dhcp:") {
                let outside = listeners_outside(&ns, "br0", &["10.0.0.1", "fd00:10::1"]);
                if !outside.is_empty() {
                    return Err(format!("dnsmasq listens outside br0: {outside:?}"));
                }
            }
            Ok(())
        }
        (rule, code) => Err(format!(
            "expected {rule:?}, got exit {code:?}: {}{err}",
            stdout(&out)
        )),
    }
}

#[test]
fn every_input_is_refused_before_any_write_or_converges() {
    if !root_or_skip("every_input_is_refused_before_any_write_or_converges") {
        return;
    }
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|c| run_case(c).err().map(|e| format!("{}: {e}", c.name)))
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Owner and mode of a file, as `stat` prints them (`root 644`).
fn owner_mode(path: &std::path::Path) -> String {
    let out = std::process::Command::new("stat")
        .args(["-c", "%U %a", &path.display().to_string()])
        .output()
        .expect("stat");
    stdout(&out).trim().to_string()
}

/// dnsmasq runs as its own user, every file of its instance is root's and not writable by that
/// user, and a decoy that carries our `--conf-file=` and is written into the pid file is
/// neither taken for the instance (`check` reports drift) nor ever signalled.
#[test]
fn dnsmasq_is_isolated_and_cannot_be_impersonated() {
    if !root_or_skip("dnsmasq_is_isolated_and_cannot_be_impersonated") {
        return;
    }
    let (ns, _lan) = host_with_nic();
    let _cleanup = Cleanup(ns.name.clone());
    let dir = TempDir::new("hostile-dhcp");
    let yaml = format!("{ETH0}  br0: {{ kind: bridge, addresses: [10.0.0.1/24] }}\ndhcp:\n  br0: {{ ranges: [10.0.0.100-10.0.0.199] }}\n");
    std::fs::write(dir.path().join("host.yaml"), yaml).unwrap();
    let out = netconverge_at(&ns, dir.path(), &["reconcile"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let state = std::path::PathBuf::from(format!("/run/netconverge/netns/{}", ns.name));
    let pid: i32 = std::fs::read_to_string(state.join("dnsmasq-br0.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let user = std::process::Command::new("ps")
        .args(["-o", "user=", "-p", &pid.to_string()])
        .output()
        .unwrap();
    assert_eq!(stdout(&user).trim(), "dnsmasq", "dnsmasq's user");
    for f in ["conf", "hosts", "names", "pid", "leases", "instance"] {
        let path = state.join(format!("dnsmasq-br0.{f}"));
        assert_eq!(owner_mode(&path), "root 644", "{}", path.display());
    }
    assert_eq!(owner_mode(&state), "root 755");
    // dnsmasq's user cannot write the pid file.
    let pidfile = state.join("dnsmasq-br0.pid");
    let w = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            "dnsmasq",
            "--regid",
            "nogroup",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(format!("echo 1 > {}", pidfile.display()))
        .output()
        .unwrap();
    assert!(!w.status.success(), "dnsmasq's user wrote the pid file");

    // The worst case: the instance is killed and a decoy with our --conf-file= argument is
    // named by the pid file.
    // SAFETY: kill(2) on the dnsmasq this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let conf = format!("--conf-file={}", state.join("dnsmasq-br0.conf").display());
    let decoy = std::process::Command::new("ip")
        .args([
            "netns", "exec", &ns.name, "setpriv", "--reuid", "dnsmasq", "--regid", "nogroup",
        ])
        .args([
            "--clear-groups",
            "sh",
            "-c",
            "while :; do sleep 1; done",
            &conf,
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let decoy_pid = i32::try_from(decoy.id()).unwrap();
    std::fs::write(&pidfile, format!("{decoy_pid}\n")).unwrap();
    let check = netconverge_at(&ns, dir.path(), &["check"]);
    assert_eq!(
        check.status.code(),
        Some(1),
        "the decoy passed as the instance: {}",
        stdout(&check)
    );
    let out = netconverge_at(&ns, dir.path(), &["reconcile"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // SAFETY: signal 0 only probes whether the decoy is alive.
    assert_eq!(
        unsafe { libc::kill(decoy_pid, 0) },
        0,
        "the decoy was signalled"
    );
    let check = netconverge_at(&ns, dir.path(), &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    let mut decoy = decoy;
    let _ = decoy.kill();
    let _ = decoy.wait();
}

/// `--netns` is checked before any file is created: a path is refused, and so is a name that
/// is no entry of /run/netns.
#[test]
fn netns_names_are_checked_before_any_file_is_created() {
    if !root_or_skip("netns_names_are_checked_before_any_file_is_created") {
        return;
    }
    let dir = TempDir::new("hostile-netns");
    std::fs::write(dir.path().join("a.yaml"), ETH0).unwrap();
    let escape = format!("nc-escape-{}", std::process::id());
    for name in [format!("../../tmp/{escape}"), format!("{escape}-missing")] {
        let out = netconverge(&[
            "--netns",
            &name,
            "-d",
            &dir.path().display().to_string(),
            "reconcile",
        ]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains("namespace"), "{}", stderr(&out));
    }
    assert!(!std::path::Path::new(&format!("/tmp/{escape}.lock")).exists());
    assert!(
        !std::path::Path::new(&format!("/run/netconverge/netns/{escape}-missing.lock")).exists()
    );
}

/// As root, `reconcile` refuses desired files and directories that others can write, naming
/// the path and the fix, before any write; `--dry-run` still reads them.
#[test]
fn files_others_can_write_are_not_applied() {
    if !root_or_skip("files_others_can_write_are_not_applied") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let (ns, _lan) = host_with_nic();
    let dir = TempDir::new("hostile-perm");
    let f = dir.path().join("a.yaml");
    std::fs::write(&f, format!("{ETH0}  br0: {{ kind: bridge }}\n")).unwrap();
    let set = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    set(dir.path(), 0o755);
    for (path, mode, who) in [
        (&f, 0o664, "its group"),
        (&dir.0, 0o777, "its group and everyone"),
    ] {
        set(path, mode);
        let before = snapshot(&ns);
        let out = netconverge_at(&ns, dir.path(), &["reconcile"]);
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains(&format!("writable by {who}")), "{err}");
        assert!(
            err.contains(&format!("chmod go-w {}", path.display())),
            "{err}"
        );
        assert_eq!(before, snapshot(&ns), "refused but the kernel changed");
        let dry = netconverge_at(&ns, dir.path(), &["reconcile", "--dry-run"]);
        assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
        set(path, if mode == 0o664 { 0o644 } else { 0o755 });
    }
    let out = netconverge_at(&ns, dir.path(), &["reconcile"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// An error never repeats the content of a file that is not a netconverge file: run as root
/// on a `-d` that is a symlink to a file holding a password hash, the message names the place
/// but not the line.
#[test]
fn errors_do_not_quote_what_is_not_a_desired_file() {
    let dir = TempDir::new("hostile-secret");
    let secret = dir.path().join("shadow");
    std::fs::write(
        &secret,
        "root:$y$j9T$s3cr3tHash:20228:0:99999:7:::\ntoken-abcdef\n",
    )
    .unwrap();
    let link = dir.path().join("x.yaml");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    for d in [&link, &dir.0] {
        let out = netconverge(&["-d", &d.display().to_string(), "validate"]);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(err.contains("x.yaml:1:1"), "{err}");
        assert!(
            !err.contains("s3cr3t") && !err.contains("root:"),
            "quoted the file: {err}"
        );
    }
}

/// The budgets across files: more objects or bytes over all files than allowed is refused at
/// the file that crosses the limit, and the limits are configurable.
#[test]
fn budgets_across_files_are_enforced_and_configurable() {
    let dir = TempDir::new("hostile-budget");
    for f in 0..3 {
        let mut s = String::from("routes:\n");
        for i in 0..1000 {
            s.push_str(&format!(
                "  - {{ to: 10.{f}.{}.{}/32, type: blackhole }}\n",
                i / 250,
                i % 250
            ));
        }
        std::fs::write(dir.path().join(format!("{f}.yaml")), s).unwrap();
    }
    let d = dir.path().display().to_string();
    let ok = netconverge(&["-d", &d, "validate"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let out = netconverge(&["--max-objects", "2500", "-d", &d, "validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("2.yaml"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("more than 2500 objects"),
        "{}",
        stderr(&out)
    );
    let out = netconverge(&["--max-input-size", "50000", "-d", &d, "validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("exceeds 50000 bytes"),
        "{}",
        stderr(&out)
    );
}
