//! Support for the root integration tests: throwaway network namespaces, the root/CI gate,
//! running the binary and reading `ip -j` as the independent oracle.
#![allow(dead_code)]

pub mod shorewall;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

pub mod guest;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// True when the test may touch the kernel. Outside CI a non-root run skips (and says so);
/// with CI=true a non-root run fails, so that CI can never pass by skipping.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip(test, "root")
}

/// Skip `test`, which needs `what`: says so and returns false; with CI=true it panics
/// instead, so that CI can never pass by skipping.
pub fn skip(test: &str, what: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{test}: needs {what}, and CI=true forbids skipping");
    }
    eprintln!("skipped: {test} needs {what}");
    false
}

/// A network namespace `nc-test-<pid>-<n>`, deleted on drop (also when the test panics).
pub struct Netns {
    /// Its name under /run/netns.
    pub name: String,
}

impl Netns {
    /// Create a fresh namespace with loopback up.
    pub fn new() -> Netns {
        let name = format!(
            "nc-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        sh(&format!("ip netns add {name}"));
        let ns = Netns { name };
        ns.ip("link set lo up");
        ns
    }

    /// Run `ip -n NS ARGS`, panicking with its stderr on failure.
    pub fn ip(&self, args: &str) -> String {
        sh(&format!("ip -n {} {args}", self.name))
    }

    /// Run `ip -n NS -j ARGS` and parse the JSON.
    pub fn ip_json(&self, args: &str) -> serde_json::Value {
        let out = self.ip(&format!("-j {args}"));
        if out.trim().is_empty() {
            return serde_json::Value::Array(vec![]);
        }
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j {args}: {e}: {out}"))
    }

    /// The kernel's routing decision, `ip -j route get ARGS`: the independent oracle for
    /// "where does this packet go".
    pub fn route_get(&self, args: &str) -> serde_json::Value {
        self.ip_json(&format!("route get {args}"))[0].clone()
    }

    /// Run a command inside the namespace.
    pub fn exec(&self, cmd: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, "sh", "-c", cmd])
            .output()
            .expect("ip netns exec")
    }
}

/// Kill every process left in the namespace `ns` (deleting a namespace does not kill the
/// processes in it).
pub fn kill_processes_in(ns: &str) {
    let pids = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for pid in pids
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        // SAFETY: kill(2) on a process inside a namespace this test created.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Start `python3 -c script` inside `ns` and wait for its first line on stdout, which must
/// be `ready` (the script prints it once it is set up); the child runs on.
pub fn python_ready(ns: &Netns, script: &str, ready: &str, what: &str) -> std::process::Child {
    use std::io::BufRead;
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.name, "python3", "-c", script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .expect("python3's output");
    assert_eq!(line.trim(), ready, "{what}");
    child
}

/// A LAN: the bridge `lan` in namespace `lan`, and for each `(ns, name, port)` a veth `name`
/// in `ns` (up) whose peer `port` is a port of the bridge (up).
pub fn bridge_lan(lan: &Netns, legs: &[(&Netns, &str, &str)]) {
    lan.ip("link add lan type bridge");
    lan.ip("link set lan up");
    for (ns, name, port) in legs {
        ns.ip(&format!(
            "link add {name} type veth peer name {port} netns {}",
            lan.name
        ));
        ns.ip(&format!("link set {name} up"));
        lan.ip(&format!("link set {port} master lan up"));
    }
}

/// The packets of the named nft counter in `ns` (`counter` as `nft list counter` takes it,
/// e.g. `ip lab vm`).
pub fn nft_packets(ns: &Netns, counter: &str) -> u64 {
    let text = stdout(&ns.exec(&format!("nft list counter {counter}")));
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == "packets")
        .and_then(|i| words.get(i + 1)?.parse().ok())
        .unwrap_or_else(|| panic!("counter {counter} in {}: {text}", ns.name))
}

/// One ping from `ns` to each of `prefix.N` for N in `last`: how many were answered.
pub fn answered_pings(ns: &Netns, prefix: &str, last: std::ops::RangeInclusive<u8>) -> usize {
    last.filter(|i| {
        ns.exec(&format!("busybox ping -c 1 -W 2 {prefix}.{i}"))
            .status
            .success()
    })
    .count()
}

/// Start `netconverge --netns NS -d DIR -v watch`, its log (stderr) into `log`.
pub fn spawn_watch(ns: &Netns, desired: &Path, log: &Path) -> std::process::Child {
    let log = std::fs::File::create(log).expect("watch log");
    Command::new(env!("CARGO_BIN_EXE_netconverge"))
        .args(["--netns", &ns.name, "-d"])
        .arg(desired)
        .args(["-v", "watch"])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start watch")
}

impl Netns {
    /// Kill every process left in the namespace (dnsmasq, a qemu, a server): deleting a
    /// namespace does not kill the processes in it.
    pub fn kill_processes(&self) {
        kill_processes_in(&self.name);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // A process left in it (a dnsmasq netconverge started, a qemu, a server) would keep
        // the namespace alive after `ip netns del`, and outlive the test: five dnsmasq a
        // `cargo test` run were found so.
        kill_processes_in(&self.name);
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_file(format!("/run/netconverge/netns/{}.lock", self.name));
        // The namespace's state directory (a watcher's `status` file, dnsmasq's files): the
        // name is this test's own, so nothing else is in it.
        let _ = std::fs::remove_dir_all(format!("/run/netconverge/netns/{}", self.name));
    }
}

/// Run a shell command on the host (only `ip netns …`/`ip -n …` style commands are used).
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A host namespace whose `eth0` is a veth with its peer `lan0` (up) in a second namespace,
/// the LAN: present like a real NIC, external to netconverge, able to carry traffic.
/// Returns (host, lan).
pub fn host_with_nic() -> (Netns, Netns) {
    let ns = Netns::new();
    let lan = Netns::new();
    ns.ip(&format!(
        "link add eth0 type veth peer name lan0 netns {}",
        lan.name
    ));
    ns.ip("link set eth0 up");
    lan.ip("link set lan0 up");
    (ns, lan)
}

/// Run netconverge on namespace `ns` with the desired state at `desired`, then `extra`.
pub fn netconverge_at(ns: &Netns, desired: &Path, extra: &[&str]) -> Output {
    let d = desired.to_str().expect("utf-8 path").to_string();
    let mut args = vec!["--netns", ns.name.as_str(), "-d", d.as_str()];
    args.extend_from_slice(extra);
    netconverge(&args)
}

/// `reconcile -o json` on `ns`: asserts exit 0 and returns the plan document.
pub fn reconcile_json_at(ns: &Netns, desired: &Path) -> serde_json::Value {
    let out = netconverge_at(ns, desired, &["-o", "json", "reconcile"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "reconcile: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    serde_json::from_str(&stdout(&out)).expect("json plan")
}

/// Run the netconverge binary.
pub fn netconverge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netconverge"))
        .args(args)
        .env_remove("NETCONVERGE_LOG")
        .output()
        .expect("run netconverge")
}

/// stdout of an Output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr of an Output as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh empty directory.
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "nc-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("mkdir");
        TempDir(p)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Poll `f` every 50 ms until it holds or `limit` passes; true when it held.
pub fn poll(limit: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The IPv4 addresses `name` resolves to from inside `ns` through the nameserver `server`
/// (busybox nslookup; empty when it does not resolve).
pub fn resolve_a(ns: &Netns, name: &str, server: &str) -> Vec<String> {
    let o = ns.exec(&format!("busybox nslookup -type=a {name} {server}"));
    // The server's own line reads `Address:\t10.0.0.1:53`; answers follow `Name:`.
    let text = stdout(&o);
    let answers = text.split_once("Name:").map_or("", |(_, a)| a);
    answers
        .lines()
        .filter_map(|l| l.strip_prefix("Address:"))
        .map(|a| a.trim().to_string())
        .filter(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
        .collect()
}

/// Kills the guardian of a namespace's pending change and removes its state directory when
/// the test ends, also when it panics.
pub struct StateDir(pub String);

impl Drop for StateDir {
    fn drop(&mut self) {
        let dir = format!("/run/netconverge/netns/{}", self.0);
        if let Ok(text) = std::fs::read_to_string(format!("{dir}/pending.json")) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                if let Some(pid) = v["guardian"].as_u64() {
                    // SAFETY: kill with a pid read from our own record.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Validate `doc` against the schema's definition `def`; panics with the validator's words.
pub fn assert_schema(doc: &str, def: &str) {
    let schema = repo().join("deploy/schema/netconverge.schema.json");
    let script = format!(
        "import json, sys, jsonschema\n\
         s = json.load(open({schema:?}))\n\
         s['anyOf'] = [{{'$ref': '#/$defs/{def}'}}]\n\
         jsonschema.validate(json.load(sys.stdin), s)\n"
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not a valid `{def}` document: {}\n{doc}",
        String::from_utf8_lossy(&out.stderr)
    );
}
