//! `watch` under a stand-in service manager: `NOTIFY_SOCKET` is a unix datagram socket this
//! test binds and reads, as systemd would, and `WATCHDOG_USEC` asks for pings. As root in a
//! throwaway namespace: `READY=1` with a `STATUS=` after the first pass, `WATCHDOG=1` at half
//! the interval, a `STATUS=` naming the last apply after a drift repair (checked with `ip`)
//! and the last error after an invalid edit, `RELOADING=1` then `READY=1` on SIGHUP,
//! `STOPPING=1` on SIGTERM.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const DESIRED: &str = "\
links:
  eth0: { kind: external, addresses: [192.168.1.20/24] }
  br0: { kind: bridge, addresses: [10.0.0.1/24] }
routes:
  - { to: 198.51.100.0/24, via: 192.168.1.1, dev: eth0, table: 101 }
";

/// The stand-in service manager: the messages received, in order.
struct Manager {
    socket: UnixDatagram,
    seen: Vec<String>,
}

impl Manager {
    fn bind(path: &Path) -> Manager {
        let socket = UnixDatagram::bind(path).expect("bind NOTIFY_SOCKET");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Manager {
            socket,
            seen: Vec::new(),
        }
    }

    /// Read messages until one has a line satisfying `want` (returned), for up to 15 s.
    fn wait(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut buf = vec![0u8; 4096];
        while Instant::now() < deadline {
            let Ok(n) = self.socket.recv(&mut buf) else {
                continue;
            };
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.seen.push(msg.clone());
            if msg.lines().any(&want) {
                return msg;
            }
        }
        panic!("no {what} within 15 s; received: {:#?}", self.seen);
    }
}

fn status_of(msg: &str) -> String {
    msg.lines()
        .find_map(|l| l.strip_prefix("STATUS="))
        .unwrap_or_default()
        .to_string()
}

fn start(ns: &Netns, dir: &Path, socket: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_netconverge"))
        .args(["--netns", &ns.name, "-d", dir.to_str().unwrap()])
        .args(["watch", "--debounce", "100ms"])
        .env("NOTIFY_SOCKET", socket)
        // 0.5 s: a ping every 250 ms.
        .env("WATCHDOG_USEC", "500000")
        .env_remove("WATCHDOG_PID")
        .env_remove("NETCONVERGE_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start watch")
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

#[test]
fn watch_reports_ready_status_watchdog_reload_and_stop_to_the_service_manager() {
    if !root_or_skip("watch_reports_ready_status_watchdog_reload_and_stop_to_the_service_manager") {
        return;
    }
    let (ns, _lan) = host_with_nic();
    let dir = TempDir::new("notify");
    std::fs::write(dir.path().join("host.yaml"), DESIRED).unwrap();
    let socket = dir.path().join("notify.sock");
    let mut manager = Manager::bind(&socket);
    let mut child = start(&ns, dir.path(), &socket);

    let ready = manager.wait("READY=1", |l| l == "READY=1");
    let status = status_of(&ready);
    assert!(
        status.contains(": in sync; last apply ") && status.contains(": 4 changes"),
        "{ready}"
    );

    // Pings at half the interval: a count over 1.5 s, with ample slack for a busy machine.
    let before = manager.seen.len();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(1500) {
        manager.wait("WATCHDOG=1", |l| l == "WATCHDOG=1");
    }
    let pings = manager.seen[before..]
        .iter()
        .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
        .count();
    assert!((3..=12).contains(&pings), "{pings} pings in 1.5 s");

    // Drift: the repair's pass reports its apply.
    ns.ip("link del br0");
    let repaired = manager.wait("a status after the repair", |l| {
        l.starts_with("STATUS=") && l.contains(": 2 changes")
    });
    assert!(status_of(&repaired).contains("in sync"), "{repaired}");
    assert!(poll(Duration::from_secs(5), || ns
        .ip("-br addr show br0")
        .contains("10.0.0.1/24")));

    // An invalid edit: the last good state stays, the status names the error.
    std::fs::write(dir.path().join("host.yaml"), "links: [\n").unwrap();
    manager.wait("the last error", |l| {
        l.starts_with("STATUS=") && l.contains("last error") && l.contains("host.yaml")
    });

    // SIGHUP: RELOADING=1 (with the monotonic time), then READY=1 after the reload's pass.
    std::fs::write(dir.path().join("host.yaml"), DESIRED).unwrap();
    manager.wait("the edit's pass", |l| l.starts_with("STATUS="));
    signal(&child, libc::SIGHUP);
    let reloading = manager.wait("RELOADING=1", |l| l == "RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    manager.wait("READY=1 after the reload", |l| l == "READY=1");

    signal(&child, libc::SIGTERM);
    manager.wait("STOPPING=1", |l| l == "STOPPING=1");
    assert!(poll(Duration::from_secs(10), || child
        .try_wait()
        .unwrap()
        .is_some()));
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
