//! Real Shorewall (Debian's `shorewall` 5.2.8) as a reference, run inside network namespaces,
//! and the kernel state of a namespace in a normalised form that compares across tools.
//!
//! The steps follow what was measured on running Shorewall in a namespace
//! (`/work/shared/notes/shorewall.md`):
//!
//! - [`Config`] writes a configuration directory (`shorewall.conf` starts from
//!   [`NAMESPACE_CONF`]: no log file, no startup log);
//! - [`compile`] compiles it inside a throwaway namespace, without `-e`, so that the compiler
//!   probes that namespace's real capabilities (a hand-written capabilities file that claims
//!   IFACE_MATCH makes `start` fail). Each configuration is compiled once: the script is kept
//!   under `CARGO_TARGET_TMPDIR`, keyed by the configuration, Shorewall's version and the
//!   kernel release;
//! - [`start`] runs the compiled script in a given namespace with `VARDIR` in the environment
//!   and the namespace's own `/etc/netns/<ns>/iproute2` (which `ip netns exec` mounts over
//!   `/etc/iproute2`), so the script's rewrite of `rt_tables` stays private. The returned
//!   [`Started`] guard removes both;
//! - [`KernelState::read`] reads rules, every table's IPv4 routes and `ip route get` answers of
//!   any namespace (Shorewall's or netconverge's) as comparable lines.
//!
//! Shared-interface providers (`eth0:192.168.1.20`) learn each gateway's MAC at start with
//! `ping` and `ip neigh`: give the gateways distinct MACs and let them answer ping.
//! Shorewall is installed by `.ci/run` (with a `policy-rc.d` that keeps the package from
//! starting it in the root namespace); [`installed_or_skip`] gates the tests on it.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use super::{Netns, TempDir};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The defaults Debian installs as `/etc/shorewall/shorewall.conf` (USE_DEFAULT_RT=Yes,
/// TRACK_PROVIDERS=Yes, ROUTE_FILTER=Yes, ...): the base of every [`Config`]'s
/// `shorewall.conf`, so a test states only what it changes.
pub const PACKAGED_CONF: &str = "/usr/share/shorewall/configfiles/shorewall.conf";

/// The `shorewall.conf` lines a namespace needs: there is no `/var/log/messages` and no init
/// system to log for. [`Config::new`] puts them after [`PACKAGED_CONF`]; the caller's
/// `shorewall.conf` lines come last and override both (the last assignment wins).
pub const NAMESPACE_CONF: &str = "\
STARTUP_ENABLED=Yes
LOGFILE=/dev/null
STARTUP_LOG=/dev/null
";

/// True when real Shorewall can run here: root, and the `shorewall` compiler installed.
/// Outside CI a missing piece skips (and says so); with CI=true it fails, as `.ci/run`
/// installs Shorewall.
pub fn installed_or_skip(test: &str) -> bool {
    if !super::root_or_skip(test) {
        return false;
    }
    let found = Command::new("sh")
        .args(["-c", "command -v shorewall && command -v ping"])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{test}: needs Debian's shorewall and ping (.ci/run installs them), and CI=true forbids skipping");
    }
    eprintln!("skipped: {test} needs Debian's shorewall and ping installed");
    false
}

/// A Shorewall configuration directory (zones, interfaces, providers, ...), removed on drop.
pub struct Config {
    dir: TempDir,
}

impl Config {
    /// A directory holding `files` (file name, contents). `shorewall.conf` is
    /// [`PACKAGED_CONF`], then [`NAMESPACE_CONF`], then the given one, if any.
    pub fn new(files: &[(&str, &str)]) -> Config {
        let dir = TempDir::new("shorewall-config");
        let conf = files
            .iter()
            .find(|(name, _)| *name == "shorewall.conf")
            .map_or("", |(_, text)| text);
        let packaged = std::fs::read_to_string(PACKAGED_CONF).unwrap_or_default();
        write(
            &dir.path().join("shorewall.conf"),
            &format!("{packaged}\n{NAMESPACE_CONF}{conf}"),
        );
        for (name, text) in files.iter().filter(|(name, _)| *name != "shorewall.conf") {
            write(&dir.path().join(name), text);
        }
        Config { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// A compiled firewall script (Shorewall's `shorewall compile` output).
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The script; run it with [`start`].
    pub script: PathBuf,
}

/// Compile the configuration directory `config` in a throwaway namespace, without `-e`.
/// A configuration compiled before (same files, Shorewall version and kernel release) is not
/// compiled again. The error is the compiler's output.
pub fn compile(config: &Path) -> Result<Compiled, String> {
    let key = cache_key(config);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("shorewall")
        .join(format!("{:016x}", h.finish()));
    let script = dir.join("firewall");
    // The key is stored beside the script, so that a hash collision compiles rather than
    // reusing another configuration's script.
    if std::fs::read_to_string(dir.join("key")).is_ok_and(|k| k == key) && script.exists() {
        return Ok(Compiled { script });
    }
    let tmp = dir.with_extension(format!("tmp-{}-{}", std::process::id(), next()));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let ns = Netns::new();
    let out = ns.exec(&format!(
        "shorewall compile {} {}/firewall",
        config.display(),
        tmp.display()
    ));
    drop(ns);
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(format!(
            "shorewall compile {}:\n{}{}",
            config.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    write(&tmp.join("key"), &key);
    // Another test may have compiled the same configuration meanwhile: either copy will do.
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(Compiled { script })
}

fn next() -> usize {
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// Everything a compiled script depends on: the configuration's files, Shorewall's version and
/// the kernel (whose capabilities the compiler probes).
fn cache_key(config: &Path) -> String {
    let mut names: Vec<PathBuf> = std::fs::read_dir(config)
        .unwrap_or_else(|e| panic!("{}: {e}", config.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    names.sort();
    let version = |cmd: &str| {
        let o = Command::new("sh").args(["-c", cmd]).output().expect("sh");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let mut key = format!(
        "shorewall {}\nkernel {}\n",
        version("shorewall version"),
        version("uname -r")
    );
    for n in names {
        let text = std::fs::read_to_string(&n).unwrap_or_default();
        key.push_str(&format!(
            "== {}\n{text}\n",
            n.file_name().unwrap().to_string_lossy()
        ));
    }
    key
}

/// A Shorewall firewall started in a namespace. Dropping it removes the namespace's
/// `/etc/netns/<ns>/iproute2` and the VARDIR (the namespace itself is its owner's).
pub struct Started {
    /// The script's output (`-V2`).
    pub output: String,
    etc: PathBuf,
    vardir: TempDir,
}

/// Start `compiled` in `ns`: `VARDIR` in the environment, the namespace's own copy of
/// `/etc/iproute2` under `/etc/netns/<ns>/`. The error is the script's output.
pub fn start(compiled: &Compiled, ns: &Netns) -> Result<Started, String> {
    let etc_ns = PathBuf::from("/etc/netns").join(&ns.name);
    let etc = etc_ns.join("iproute2");
    std::fs::create_dir_all(&etc_ns).map_err(|e| format!("{}: {e}", etc_ns.display()))?;
    let copied = Command::new("cp")
        .args(["-a", "/etc/iproute2", etc_ns.to_str().expect("utf-8")])
        .status()
        .is_ok_and(|s| s.success());
    let mut started = Started {
        output: String::new(),
        etc,
        vardir: TempDir::new("shorewall-var"),
    };
    if !copied {
        return Err("cannot copy /etc/iproute2 for the namespace".into());
    }
    let out = ns.exec(&format!(
        "env VARDIR={} sh {} -V2 start 2>&1",
        started.vardir.path().display(),
        compiled.script.display()
    ));
    started.output = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "{} start:\n{}",
            compiled.script.display(),
            started.output
        ));
    }
    Ok(started)
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.etc);
        // Only when empty: another tool's files for the namespace (resolv.conf) stay.
        if let Some(parent) = self.etc.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// A namespace's routing state as comparable lines (protocols left out: Shorewall's routes are
/// `proto boot`, netconverge's `proto 157`):
///
/// - `rule 10000: from all fwmark 0x1/0xff lookup 1`
/// - `route table 1: default via 192.168.1.1 dev eth0 src 192.168.1.20 realm 1`
/// - `get 203.0.113.10 mark 0x1: via 192.168.1.1 dev eth0 src 192.168.1.20`
///
/// Tables are numbers (main is 254), whatever names the namespace's `rt_tables` gives them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelState {
    /// `ip -N -j rule`, in priority order.
    pub rules: Vec<String>,
    /// `ip -N -j -4 route show table all`, sorted.
    pub routes: Vec<String>,
    /// The answers of `ip -j route get QUERY` for each query asked, in order.
    pub answers: Vec<String>,
}

impl KernelState {
    /// Read `ns`, asking `ip route get` each of `queries` (`203.0.113.10 mark 0x1`,
    /// `203.0.113.10 from 10.0.0.2 iif br0`).
    pub fn read(ns: &Netns, queries: &[&str]) -> KernelState {
        let rules = array(ns.ip_json("-N rule show"))
            .iter()
            .map(|r| format!("rule {}", rule_line(r)))
            .collect();
        let mut routes: Vec<String> = array(ns.ip_json("-N -4 route show table all"))
            .iter()
            .map(route_line)
            .collect();
        routes.sort();
        let answers = queries
            .iter()
            .map(|q| format!("get {q}: {}", route_get(ns, q)))
            .collect();
        KernelState {
            rules,
            routes,
            answers,
        }
    }

    /// The same state with every `realm N` left out: Shorewall puts the provider number as a
    /// realm on a shared interface's routes and nexthops, which other tools need not do.
    pub fn without_realms(&self) -> KernelState {
        let strip = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .map(|l| {
                    let words: Vec<&str> = l.split(' ').collect();
                    let mut out = Vec::new();
                    let mut i = 0;
                    while i < words.len() {
                        if words[i] == "realm" {
                            i += 2;
                            continue;
                        }
                        out.push(words[i]);
                        i += 1;
                    }
                    out.join(" ")
                })
                .collect()
        };
        KernelState {
            rules: strip(&self.rules),
            routes: strip(&self.routes),
            answers: strip(&self.answers),
        }
    }

    /// Every line, rules, routes and answers together.
    pub fn lines(&self) -> BTreeSet<String> {
        self.rules
            .iter()
            .chain(&self.routes)
            .chain(&self.answers)
            .cloned()
            .collect()
    }

    /// The lines only `self` has and those only `other` has.
    pub fn diff(&self, other: &KernelState) -> (BTreeSet<String>, BTreeSet<String>) {
        let (a, b) = (self.lines(), other.lines());
        (
            a.difference(&b).cloned().collect(),
            b.difference(&a).cloned().collect(),
        )
    }

    /// The routes of table `table` (254 for main), without the `route table N: ` prefix.
    pub fn table(&self, table: u32) -> Vec<String> {
        let prefix = format!("route table {table}: ");
        self.routes
            .iter()
            .filter_map(|r| r.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }
}

/// `ip route get QUERY` as one line; a refused lookup (`unreachable`, an invalid source) is an
/// answer too, `error: ` and what `ip` said.
fn route_get(ns: &Netns, query: &str) -> String {
    let out = Command::new("ip")
        .args(["-n", &ns.name, "-N", "-j", "route", "get"])
        .args(query.split_whitespace())
        .output()
        .expect("ip route get");
    if !out.status.success() {
        return format!("error: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("ip route get {query}: {e}"));
    answer_line(&v[0])
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => panic!("expected a JSON array: {other}"),
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `10000: from all fwmark 0x1/0xff lookup 1`, as `ip rule` prints it.
fn rule_line(r: &Value) -> String {
    let mut w = vec![format!("{}:", text(r, "priority").unwrap_or_default())];
    if r.get("not").is_some() {
        w.push("not".into());
    }
    let prefix = |addr: &str, len: &str| match (text(r, addr), text(r, len)) {
        (Some(a), Some(l)) => Some(format!("{a}/{l}")),
        (a, _) => a,
    };
    w.push(format!(
        "from {}",
        prefix("src", "srclen").unwrap_or("all".into())
    ));
    if let Some(d) = prefix("dst", "dstlen") {
        w.push(format!("to {d}"));
    }
    for (key, word) in [("iif", "iif"), ("oif", "oif"), ("tos", "tos")] {
        if let Some(v) = text(r, key) {
            w.push(format!("{word} {v}"));
        }
    }
    if let Some(m) = text(r, "fwmark") {
        match text(r, "fwmask") {
            Some(mask) => w.push(format!("fwmark {m}/{mask}")),
            None => w.push(format!("fwmark {m}")),
        }
    }
    match (text(r, "table"), text(r, "action")) {
        (Some(t), _) => w.push(format!("lookup {t}")),
        (None, Some(a)) => w.push(a),
        (None, None) => {}
    }
    w.join(" ")
}

/// `route table 1: default via 192.168.1.1 dev eth0 src 192.168.1.20 realm 1`, the protocol
/// left out; a multipath route lists its nexthops in the kernel's order.
fn route_line(r: &Value) -> String {
    let table = text(r, "table").unwrap_or_else(|| "254".into());
    let mut w = Vec::new();
    if let Some(t) = text(r, "type") {
        w.push(t);
    }
    w.push(text(r, "dst").unwrap_or_default());
    w.extend(hop_words(r));
    if let Some(s) = text(r, "scope") {
        w.push(format!("scope {}", scope_name(&s)));
    }
    if let Some(s) = text(r, "prefsrc") {
        w.push(format!("src {s}"));
    }
    if let Some(m) = text(r, "metric") {
        w.push(format!("metric {m}"));
    }
    if let Some(Value::Array(hops)) = r.get("nexthops") {
        for h in hops {
            w.push(format!("nexthop {}", hop_words(h).join(" ")));
            if let Some(wt) = text(h, "weight") {
                w.push(format!("weight {wt}"));
            }
        }
    }
    format!("route table {table}: {}", w.join(" "))
}

/// A route's or a nexthop's gateway, device, realm and flags.
fn hop_words(h: &Value) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(g) = text(h, "gateway") {
        w.push(format!("via {g}"));
    }
    if let Some(d) = text(h, "dev") {
        w.push(format!("dev {d}"));
    }
    if let Some(to) = h.get("flow").and_then(|f| text(f, "to")) {
        w.push(format!("realm {to}"));
    }
    if let Some(Value::Array(flags)) = h.get("flags") {
        // linkdown is the link's state at the moment, not the route's.
        w.extend(
            flags
                .iter()
                .filter_map(Value::as_str)
                .filter(|f| *f != "linkdown")
                .map(str::to_string),
        );
    }
    w
}

/// `-N` prints scopes as numbers.
fn scope_name(s: &str) -> String {
    match s {
        "0" => "global",
        "200" => "site",
        "253" => "link",
        "254" => "host",
        "255" => "nowhere",
        other => other,
    }
    .to_string()
}

/// The decision of `ip route get`: gateway, device, source, table looked up.
fn answer_line(a: &Value) -> String {
    let mut w = Vec::new();
    if let Some(t) = text(a, "type") {
        w.push(t);
    }
    w.extend(hop_words(a));
    if let Some(s) = text(a, "prefsrc") {
        w.push(format!("src {s}"));
    }
    if let Some(t) = text(a, "table") {
        w.push(format!("table {t}"));
    }
    w.join(" ")
}
