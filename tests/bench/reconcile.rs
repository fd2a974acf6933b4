//! Benchmark (not a test): netconverge against `ip -batch` doing the same writes, each side in
//! a fresh network namespace, printing ratios from one run.
//!
//! Run as root: `cargo bench --bench reconcile` (options: `-- --taps N --routes N`).
//!
//! Scenario: a bridge `br0` with 1,000 taps as ports (each up, with netconverge's alias) and
//! 10,000 /32 routes split over tables 101 and 102, from an empty namespace; then no-op
//! reconciles of that state (the first right after the writes, then eleven more), which must
//! send zero writes.
//!
//! Opt-in, `-- --memory N` (e.g. 1000000): the peak RSS per route of `validate` and of a no-op
//! `reconcile` of N routes over 40 files, and the time to apply them from empty (minutes at
//! 10⁶; skipped when not asked for).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("nc-bench-{}-{tag}", std::process::id());
        run("ip", &["netns", "add", &name]);
        run("ip", &["-n", &name, "link", "set", "lo", "up"]);
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        let _ = std::fs::remove_file(format!("/run/netconverge/netns/{}.lock", self.0));
        // Its state directory (the watcher's `status` file).
        let _ = std::fs::remove_dir_all(format!("/run/netconverge/netns/{}", self.0));
        // The kernel frees a namespace's devices in the background; give that work time to
        // finish so it does not slow down the next measurement.
        std::thread::sleep(Duration::from_secs(3));
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn timed(cmd: &str, args: &[&str]) -> (Duration, String) {
    let t = Instant::now();
    let out = run(cmd, args);
    (t.elapsed(), out)
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Run a command to its end and return its time and peak RSS in KB (`wait4`'s `ru_maxrss`).
fn peak_rss(cmd: &str, args: &[&str]) -> (Duration, i64) {
    let t = Instant::now();
    // Reaped by the wait4 below, which also returns the child's peak RSS (Child::wait cannot).
    #[allow(clippy::zombie_processes)]
    let child = Command::new(cmd)
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid, and wait4 only writes into the two out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; the pointers are to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert!(
        r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd} {args:?} failed"
    );
    (t.elapsed(), usage.ru_maxrss)
}

/// The opt-in memory scenario: `n` routes over 40 files (as the issue measured it).
fn memory(bin: &str, n: usize, dir: &std::path::Path) {
    let desired = dir.join("memory");
    std::fs::create_dir_all(&desired).expect("mkdir");
    std::fs::write(
        desired.join("00-links.yaml"),
        "links:\n  br0:\n    kind: bridge\n    addresses: [10.0.0.1/8]\n",
    )
    .expect("write yaml");
    let per = n.div_ceil(40);
    for f in 0..40 {
        let mut y = String::from("routes:\n");
        for i in (f * per)..((f + 1) * per).min(n) {
            let _ = writeln!(
                y,
                "  - {{ to: {}/32, via: 10.0.0.254, dev: br0 }}",
                route_dst(i)
            );
        }
        std::fs::write(desired.join(format!("r{f:02}.yaml")), y).expect("write yaml");
    }
    let d = desired.to_str().unwrap();
    let objects = (n + 100).to_string();
    let budget = [
        "--max-objects",
        &objects,
        "--max-input-size",
        "1000000000",
        "-d",
        d,
    ];
    let per_route = |kb: i64| kb as f64 * 1024.0 / n as f64;
    let (t, kb) = peak_rss(bin, &[&budget[..], &["validate"]].concat());
    println!(
        "memory, {n} routes over 40 files: validate {:.2} s, peak RSS {} MB ({:.0} bytes per route; target <= 300)",
        t.as_secs_f64(),
        kb / 1024,
        per_route(kb)
    );
    let ns = Netns::new("mem");
    let netns = ["--netns", &ns.0];
    let (t, kb) = peak_rss(bin, &[&netns[..], &budget, &["reconcile"]].concat());
    println!(
        "memory, {n} routes: reconcile from empty {:.1} s, peak RSS {} MB",
        t.as_secs_f64(),
        kb / 1024
    );
    let (t, kb) = peak_rss(bin, &[&netns[..], &budget, &["reconcile"]].concat());
    println!(
        "memory, {n} routes: no-op reconcile {:.2} s, peak RSS {} MB ({:.0} bytes per route; target <= 300)",
        t.as_secs_f64(),
        kb / 1024,
        per_route(kb)
    );
}

/// How many no-op runs follow the first (whose figure is printed on its own).
const NOOP_RUNS: usize = 11;

fn route_dst(i: usize) -> String {
    format!("172.{}.{}.{}", 16 + i / 65536, (i / 256) % 256, i % 256)
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the benchmark needs root (it creates network namespaces)");
        return;
    }
    let taps = arg("--taps", 1000);
    let routes = arg("--routes", 10_000);
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_netconverge"));
    let dir = std::env::temp_dir().join(format!("nc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");

    // The desired state and the equivalent ip batches.
    let mut yaml = String::from(
        "tables: { a: 101, b: 102 }\nlinks:\n  br0:\n    kind: bridge\n    addresses: [10.0.0.1/16]\n",
    );
    let mut links_batch = String::from(
        "link add br0 type bridge\nlink set br0 alias \"managed-by: netconverge\" up\naddress add 10.0.0.1/16 dev br0\n",
    );
    for i in 0..taps {
        let _ = write!(
            yaml,
            "  tap-{i:04}:\n    kind: tap\n    master: br0\n    up: true\n"
        );
        let _ = writeln!(links_batch, "tuntap add mode tap tap-{i:04}");
        let _ = writeln!(
            links_batch,
            "link set tap-{i:04} master br0 alias \"managed-by: netconverge\" up"
        );
    }
    yaml.push_str("routes:\n");
    let mut routes_batch = String::new();
    for i in 0..routes {
        let table = if i % 2 == 0 { 101 } else { 102 };
        let _ = writeln!(
            yaml,
            "  - {{ to: {}/32, via: 10.0.0.254, dev: br0, table: {table} }}",
            route_dst(i)
        );
        let _ = writeln!(
            routes_batch,
            "route add {}/32 via 10.0.0.254 dev br0 table {table} proto 157",
            route_dst(i)
        );
    }
    let desired = dir.join("desired");
    std::fs::create_dir_all(&desired).expect("mkdir");
    std::fs::write(desired.join("bench.yaml"), &yaml).expect("write yaml");
    let links_file = dir.join("links.batch");
    let routes_file = dir.join("routes.batch");
    std::fs::write(&links_file, &links_batch).expect("write batch");
    std::fs::write(&routes_file, &routes_batch).expect("write batch");

    println!("scenario: {taps} taps on br0 + {routes} routes in tables 101/102, from empty");

    // ip -batch, links then routes, in one fresh namespace.
    let (ip_links, ip_routes) = {
        let ns = Netns::new("ip");
        let (l, _) = timed("ip", &["-n", &ns.0, "-batch", links_file.to_str().unwrap()]);
        let (r, _) = timed(
            "ip",
            &["-n", &ns.0, "-batch", routes_file.to_str().unwrap()],
        );
        (l, r)
    };
    let ip_total = ip_links + ip_routes;

    // netconverge from empty, then a no-op run, in another fresh namespace.
    let ns = Netns::new("nc");
    let d = desired.to_str().unwrap();
    let (nc, out) = timed(
        bin.to_str().unwrap(),
        &["--netns", &ns.0, "-d", d, "-o", "json", "reconcile"],
    );
    let first: serde_json::Value = serde_json::from_str(&out).expect("json");
    // A reconcile of the same state: its time, and the changes and writes its JSON reports.
    let reconcile = || {
        let (t, out) = timed(
            bin.to_str().unwrap(),
            &["--netns", &ns.0, "-d", d, "-o", "json", "reconcile"],
        );
        let run: serde_json::Value = serde_json::from_str(&out).expect("json");
        let changes = run["changes"].as_array().map_or(0, |c| c.len());
        (t, changes, run["applied"]["writes"].as_u64().unwrap_or(0))
    };
    let (noop, noop_changes, noop_writes) = reconcile();
    // One run right after the writes is at the mercy of the kernel's work they left (1,000
    // taps' link events and freed memory); more runs give the steady figure. Every one must
    // write nothing.
    let mut noops: Vec<Duration> = (0..NOOP_RUNS)
        .map(|_| {
            let (t, changes, writes) = reconcile();
            assert_eq!((changes, writes), (0, 0), "a no-op run changed something");
            t
        })
        .collect();
    noops.sort();
    let (dry, _) = timed(
        bin.to_str().unwrap(),
        &["--netns", &ns.0, "-d", d, "reconcile", "--dry-run"],
    );
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "ip -batch:        links {:>7.3} s  routes {:>7.3} s  total {:>7.3} s",
        ip_links.as_secs_f64(),
        ip_routes.as_secs_f64(),
        ip_total.as_secs_f64()
    );
    println!(
        "netconverge:      total {:>7.3} s  ({} writes, whole process incl. load, observe, plan)",
        nc.as_secs_f64(),
        first["applied"]["writes"]
    );
    let apply = first["applied"]["seconds"].as_f64().unwrap_or(f64::NAN);
    println!(
        "netconverge:      apply {apply:>7.3} s  (the writes alone, as the JSON reports them)"
    );
    println!(
        "ratio netconverge / ip -batch: {:.2} whole process (target <= 0.8), {:.2} apply only",
        nc.as_secs_f64() / ip_total.as_secs_f64(),
        apply / ip_total.as_secs_f64()
    );
    println!(
        "no-op reconcile:  {:>7.3} s, {noop_changes} changes, {noop_writes} writes (target <= 0.050 s, 0 writes)",
        noop.as_secs_f64()
    );
    println!(
        "no-op reconcile, {NOOP_RUNS} more runs: median {:.3} s, min {:.3} s, max {:.3} s",
        noops[NOOP_RUNS / 2].as_secs_f64(),
        noops[0].as_secs_f64(),
        noops[NOOP_RUNS - 1].as_secs_f64()
    );
    println!("dry-run plan:     {:>7.3} s", dry.as_secs_f64());

    let n = arg("--memory", 0);
    if n > 0 {
        memory(bin.to_str().unwrap(), n, &dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
