//! Benchmark (not a test): netconverge against `ip -batch` doing the same writes, each side in
//! a fresh network namespace, printing ratios from one run.
//!
//! Run as root: `cargo bench --bench reconcile` (options: `-- --taps N --routes N`).
//!
//! Scenario: a bridge `br0` with 1,000 taps as ports (each up, with netconverge's alias) and
//! 10,000 /32 routes split over tables 101 and 102, from an empty namespace; then a no-op
//! reconcile of that state, which must send zero writes.

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
    let (noop, out) = timed(
        bin.to_str().unwrap(),
        &["--netns", &ns.0, "-d", d, "-o", "json", "reconcile"],
    );
    let second: serde_json::Value = serde_json::from_str(&out).expect("json");
    let (dry, _) = timed(
        bin.to_str().unwrap(),
        &["--netns", &ns.0, "-d", d, "reconcile", "--dry-run"],
    );
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);

    let noop_changes = second["changes"].as_array().map_or(0, |c| c.len());
    let noop_writes = second["applied"]["writes"].as_u64().unwrap_or(0);
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
        "ratio netconverge / ip -batch: {:.2} whole process, {:.2} apply only (target <= 1.0)",
        nc.as_secs_f64() / ip_total.as_secs_f64(),
        apply / ip_total.as_secs_f64()
    );
    println!(
        "no-op reconcile:  {:>7.3} s, {noop_changes} changes, {noop_writes} writes (target <= 0.150 s, 0 writes)",
        noop.as_secs_f64()
    );
    println!("dry-run plan:     {:>7.3} s", dry.as_secs_f64());
}
