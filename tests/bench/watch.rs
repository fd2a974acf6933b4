//! Benchmark (not a test) of `netconverge watch`: edit-to-converged latency (median and p99
//! over 100 edits of one file), drift-repair latency (`ip link del` of a managed tap, and
//! `ip route del` of a managed route, until it is back as a port of br0, or back), and the watcher's resident memory
//! when idle and after the edits — with a large state beside the edited file (10,000 routes in
//! a second file by default).
//!
//! Run as root: `cargo bench --bench watch` (options: `-- --edits N --debounce 200ms
//! --routes N`). Convergence is timed from the kernel's own announcements (`ip monitor link`,
//! `ip monitor route`), not by polling.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        let _ = std::fs::remove_file(format!("/run/netconverge/netns/{}.lock", self.0));
        // Its state directory (the watcher's `status` file).
        let _ = std::fs::remove_dir_all(format!("/run/netconverge/netns/{}", self.0));
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ip(args: &[&str]) {
    let ok = Command::new("ip")
        .args(args)
        .status()
        .expect("ip")
        .success();
    assert!(ok, "ip {args:?} failed");
}

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// Lines of `ip monitor <what>` with the time they arrived.
fn monitor(ns: &str, what: &str) -> (Killed, Receiver<(Instant, String)>) {
    let mut child = Command::new("ip")
        .args(["-n", ns, "monitor", what])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ip monitor");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    (Killed(child), rx)
}

/// Wait until the monitor announces `tap` as a port of br0 (converged: created and enslaved)
/// after `since`. With `replacing`, only a link with another ifindex than the one deleted
/// counts: while a port is deleted the kernel first announces it going down, still a port,
/// which is not the repair.
fn appeared(
    rx: &Receiver<(Instant, String)>,
    tap: &str,
    since: Instant,
    replacing: bool,
) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(10);
    let name = format!(": {tap}:");
    let mut deleted: Option<String> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (t, line) = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("timed out waiting for {tap} to be a port of br0"));
        if t < since || !line.contains(&name) {
            continue;
        }
        if let Some(rest) = line.strip_prefix("Deleted ") {
            deleted = rest.split(':').next().map(str::to_string);
            continue;
        }
        let index = line.split(':').next().map(str::to_string);
        let new_link = !replacing || (deleted.is_some() && index != deleted);
        if new_link && line.contains("master br0") {
            return t - since;
        }
    }
}

/// Wait until the route monitor announces a route to `dst` added (not deleted) after `since`.
/// Returns the time from `since` (the `ip route del` command started) and from the kernel's
/// announcement of the deletion: the first includes starting the `ip` process (3–5 ms here),
/// which is not the watcher's; the second is the drift as the kernel saw it, timed by the
/// same monitor as the repair.
fn route_back(
    rx: &Receiver<(Instant, String)>,
    dst: &str,
    since: Instant,
) -> (Duration, Option<Duration>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let (added, deleted) = (format!("{dst} "), format!("Deleted {dst} "));
    let mut gone = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (t, line) = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("timed out waiting for the route to {dst} to come back"));
        if t < since {
            continue;
        }
        if line.starts_with(&deleted) {
            gone = Some(t);
        } else if line.starts_with(&added) {
            return (t - since, gone.map(|g| t - g));
        }
    }
}

/// `n` /32 routes through br0 in tables 101 and 102, as the reconcile benchmark writes them.
fn write_routes(path: &Path, n: usize) {
    let mut s = String::from("tables: { a: 101, b: 102 }\nroutes:\n");
    for i in 0..n {
        let table = if i.is_multiple_of(2) { 101 } else { 102 };
        s.push_str(&format!(
            "  - {{ to: {}/32, via: 10.0.0.254, dev: br0, table: {table} }}\n",
            route_dst(i)
        ));
    }
    std::fs::write(path, s).unwrap();
}

fn route_dst(i: usize) -> String {
    format!("172.{}.{}.{}", 16 + i / 65536, (i / 256) % 256, i % 256)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn write_state(path: &Path, extra_taps: &[String]) {
    let mut s = String::from(
        "links:\n  br0:\n    kind: bridge\n    addresses: [10.0.0.1/24]\n  tap-a:\n    kind: tap\n    master: br0\n",
    );
    for t in extra_taps {
        s.push_str(&format!("  {t}:\n    kind: tap\n    master: br0\n"));
    }
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, s).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the benchmark needs root (it creates network namespaces)");
        return;
    }
    let edits: usize = arg("--edits", "100").parse().unwrap_or(100);
    let debounce = arg("--debounce", "200ms");
    let routes: usize = arg("--routes", "10000").parse().unwrap_or(10_000);
    let ns = Netns(format!("nc-bench-{}-watch", std::process::id()));
    ip(&["netns", "add", &ns.0]);
    let dir = std::env::temp_dir().join(format!("nc-bench-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("host.yaml");
    write_state(&file, &[]);
    if routes > 0 {
        write_routes(&dir.join("routes.yaml"), routes);
    }

    let (_mon, rx) = monitor(&ns.0, "link");
    let (_rmon, rrx) = monitor(&ns.0, "route");
    // What the watcher did, beside the watched directory (not in it: writing there would
    // be edits), shown if the benchmark gives up waiting.
    let log = dir.with_extension("log");
    let stderr = std::fs::File::create(&log).expect("watch log");
    let shown = log.clone();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = std::fs::read_to_string(&shown).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        eprintln!("the watcher's last log lines:");
        for line in tail.iter().rev() {
            eprintln!("  {line}");
        }
        default_hook(info);
    }));
    let watcher = Killed(
        Command::new(env!("CARGO_BIN_EXE_netconverge"))
            .args([
                "--netns",
                &ns.0,
                "-d",
                dir.to_str().unwrap(),
                "watch",
                "--debounce",
                &debounce,
            ])
            .env("NETCONVERGE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start watch"),
    );
    let pid = watcher.0.id();
    appeared(
        &rx,
        "tap-a",
        Instant::now() - Duration::from_secs(60),
        false,
    );
    if routes > 0 {
        route_back(
            &rrx,
            &route_dst(routes - 1),
            Instant::now() - Duration::from_secs(60),
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss_idle = rss_kb(pid);

    // Edit to converged: each edit adds a VM's tap, as when a guest is added.
    let mut lat = Vec::with_capacity(edits);
    let mut taps = Vec::new();
    for i in 0..edits {
        let tap = format!("tap-e{i}");
        taps.push(tap.clone());
        let t0 = Instant::now();
        write_state(&file, &taps);
        lat.push(appeared(&rx, &tap, t0, false));
    }
    lat.sort();

    // Drift repair: delete a managed tap behind the watcher's back, a different one each
    // time (the same one undone again and again is a fight, whose repairs the watcher damps
    // after five a minute; see src/watch/fight.rs).
    let mut repair = Vec::new();
    for tap in taps.iter().take(20) {
        std::thread::sleep(Duration::from_millis(100));
        let t0 = Instant::now();
        ip(&["-n", &ns.0, "link", "del", tap]);
        repair.push(appeared(&rx, tap, t0, true));
    }
    repair.sort();

    // Drift repair of one route among the many: `ip route del` behind the watcher's back.
    let (mut route_repair, mut from_kernel) = (Vec::new(), Vec::new());
    for i in 0..if routes > 0 { 20 } else { 0 } {
        std::thread::sleep(Duration::from_millis(100));
        let n = i * (routes / 20).max(1) % routes;
        let (dst, table) = (
            route_dst(n),
            if n.is_multiple_of(2) { "101" } else { "102" },
        );
        let t0 = Instant::now();
        ip(&[
            "-n",
            &ns.0,
            "route",
            "del",
            &format!("{dst}/32"),
            "table",
            table,
        ]);
        let (took, since_deleted) = route_back(&rrx, &dst, t0);
        route_repair.push(took);
        from_kernel.extend(since_deleted);
    }
    route_repair.sort();
    from_kernel.sort();
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = rss_kb(pid);

    // Churn without growth of the state: a tap comes and goes, to show memory stays flat per
    // reload (RSS sampled after each hundred reloads).
    let mut churn = Vec::new();
    for round in 0..3 {
        for i in 0..100 {
            let mut with = taps.clone();
            if i % 2 == 0 {
                with.push("tap-churn".to_string());
            }
            let t0 = Instant::now();
            write_state(&file, &with);
            if i % 2 == 0 {
                appeared(&rx, "tap-churn", t0, false);
            } else {
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        let _ = round;
        churn.push(rss_kb(pid));
    }
    drop(watcher);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&log);

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "watch --debounce {debounce}, {edits} edits of one file (write temp + rename, one tap added each), {routes} routes in a second file"
    );
    println!(
        "edit-to-converged: median {:.1} ms, p99 {:.1} ms, max {:.1} ms (target <= debounce + 30 ms)",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap())
    );
    println!(
        "drift repair (ip link del -> tap back), 20 runs: median {:.1} ms, p99 {:.1} ms (target <= 100 ms)",
        ms(percentile(&repair, 0.5)),
        ms(percentile(&repair, 0.99))
    );
    if !route_repair.is_empty() {
        println!(
            "drift repair (ip route del -> route back), 20 runs: median {:.1} ms, p99 {:.1} ms (target <= 20 ms)",
            ms(percentile(&route_repair, 0.5)),
            ms(percentile(&route_repair, 0.99))
        );
    }
    if !from_kernel.is_empty() {
        println!(
            "  the same, from the kernel's announcement of the deletion ({} of 20 seen): median {:.1} ms, p99 {:.1} ms",
            from_kernel.len(),
            ms(percentile(&from_kernel, 0.5)),
            ms(percentile(&from_kernel, 0.99))
        );
    }
    println!(
        "RSS: idle {rss_idle} KB, after the edits and repairs {rss_after} KB (target idle <= 20 MB)"
    );
    println!("RSS after each 100 further reloads (a tap added and removed): {churn:?} KB");
}
