//! SIGKILL during a large apply (root, each kill point in its own namespace): whatever moment
//! netconverge dies at, every link it made carries its mark (the alias, or the creation group
//! of a link killed between its two writes), the rerun converges, `check` is clean, and
//! removing everything leaves no link and no route of netconverge's behind. The oracle is
//! `ip -j`, not netconverge's own dump.

mod common;

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const TAPS: usize = 500;
const ROUTES: usize = 5000;
const VETHS: usize = 4;
/// `reconcilers::model::CREATE_GROUP`, as `ip -j` prints an unnamed group.
const CREATE_GROUP: &str = "1851981981";

/// 500 taps on br0, a few veth pairs (created over rtnetlink), 5,000 routes over two tables.
fn desired_yaml() -> String {
    let mut y = String::from(
        "tables: { a: 101, b: 102 }\nlinks:\n  br0:\n    kind: bridge\n    addresses: [10.0.0.1/16]\n",
    );
    for i in 0..TAPS {
        let _ = write!(
            y,
            "  tap-{i:04}:\n    kind: tap\n    master: br0\n    up: true\n"
        );
    }
    for i in 0..VETHS {
        let _ = write!(y, "  va{i}:\n    kind: veth\n    veth: {{ peer: vb{i} }}\n");
    }
    y.push_str("routes:\n");
    for i in 0..ROUTES {
        let table = if i % 2 == 0 { "a" } else { "b" };
        let _ = writeln!(
            y,
            "  - {{ to: 172.{}.{}.{}/32, via: 10.0.0.254, dev: br0, table: {table} }}",
            16 + i / 65536,
            (i / 256) % 256,
            i % 256
        );
    }
    y
}

/// When to kill: after a delay, or once the kernel shows so many taps or routes.
#[derive(Clone, Copy, Debug)]
enum Point {
    After(Duration),
    Taps(usize),
    Routes(usize),
}

fn count(ns: &Netns, what: &str) -> usize {
    ns.ip(what).lines().count()
}

fn reached(ns: &Netns, p: Point, since: Instant) -> bool {
    match p {
        Point::After(d) => since.elapsed() >= d,
        Point::Taps(n) => count(ns, "-o link show type tun") >= n,
        // Table 101 does not exist before its first route.
        Point::Routes(n) => {
            let out = ns.exec("ip route show table 101 2>/dev/null | wc -l");
            let n101: usize = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
            n101 * 2 >= n
        }
    }
}

/// Every link but lo carries netconverge's alias or its creation group.
fn assert_all_marked(ns: &Netns, p: Point) -> (usize, usize) {
    let links = ns.ip_json("-d link show");
    let (mut aliased, mut grouped) = (0, 0);
    for l in links.as_array().unwrap() {
        let name = l["ifname"].as_str().unwrap();
        if name == "lo" {
            continue;
        }
        if l["ifalias"].as_str() == Some("managed-by: netconverge") {
            aliased += 1;
        } else if l["group"].to_string().trim_matches('"') == CREATE_GROUP {
            grouped += 1;
        } else {
            panic!("{p:?}: link {name} has no mark: {l}");
        }
    }
    (aliased, grouped)
}

fn kill_at(p: Point) {
    let ns = Netns::new();
    let dir = TempDir::new("crash");
    std::fs::write(dir.path().join("big.yaml"), desired_yaml()).unwrap();
    let d = dir.path().to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_netconverge"))
        .args(["--netns", &ns.name, "-d", d, "-q", "reconcile"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn netconverge");
    let start = Instant::now();
    let finished = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if reached(&ns, p, start) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // SIGKILL: no destructor, no cleanup, the fds closed by the kernel.
    let _ = child.kill();
    let _ = child.wait();
    let (aliased, grouped) = assert_all_marked(&ns, p);
    eprintln!(
        "{p:?}: killed {} with {aliased} links aliased, {grouped} in the creation group",
        if finished.is_some() {
            "after it finished"
        } else {
            "mid-apply"
        }
    );

    let out = netconverge_at(&ns, dir.path(), &["-q", "reconcile"]);
    assert_eq!(out.status.code(), Some(0), "{p:?} rerun: {}", stderr(&out));
    let out = netconverge_at(&ns, dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(0), "{p:?} check: {}", stdout(&out));
    let (aliased, grouped) = assert_all_marked(&ns, p);
    assert_eq!((aliased, grouped), (1 + TAPS + 2 * VETHS, 0), "{p:?}");
    assert_eq!(count(&ns, "route show table 102"), ROUTES / 2, "{p:?}");

    // Remove everything: nothing of netconverge's may remain.
    std::fs::write(dir.path().join("big.yaml"), "links: {}\n").unwrap();
    let out = netconverge_at(&ns, dir.path(), &["-q", "reconcile", "--allow-empty"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{p:?} removal: {}",
        stderr(&out)
    );
    let left: Vec<String> = ns
        .ip_json("link show")
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .filter(|n| n != "lo")
        .collect();
    assert!(left.is_empty(), "{p:?}: links left behind: {left:?}");
    assert_eq!(ns.ip("route show table all proto 157"), "", "{p:?}");
}

/// Kill at each of `points` in turn (each in its own namespace), timing the whole.
fn kill_at_each(test: &str, points: &[Point]) {
    if !root_or_skip(test) {
        return;
    }
    let t = Instant::now();
    for p in points {
        kill_at(*p);
    }
    eprintln!(
        "{} kill points in {:.1} s",
        points.len(),
        t.elapsed().as_secs_f64()
    );
}

// Three tests of three points rather than one of nine: the test harness runs them side by
// side, which halves the wall time on two cores (each point waits on the kernel's link work).

#[test]
fn sigkill_before_and_among_the_first_taps_converges_and_removes_cleanly() {
    kill_at_each(
        "sigkill_before_and_among_the_first_taps_converges_and_removes_cleanly",
        &[
            Point::After(Duration::from_millis(5)),
            Point::Taps(1),
            Point::Taps(10),
        ],
    );
}

#[test]
fn sigkill_among_the_later_taps_converges_and_removes_cleanly() {
    kill_at_each(
        "sigkill_among_the_later_taps_converges_and_removes_cleanly",
        &[Point::Taps(60), Point::Taps(250), Point::Taps(TAPS)],
    );
}

#[test]
fn sigkill_among_the_routes_converges_and_removes_cleanly() {
    kill_at_each(
        "sigkill_among_the_routes_converges_and_removes_cleanly",
        &[
            Point::Routes(1),
            Point::Routes(ROUTES / 2),
            Point::Routes(ROUTES - 100),
        ],
    );
}
