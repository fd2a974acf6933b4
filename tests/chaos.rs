//! A bounded chaos run (root, about 40 s): `watch` runs while a seeded script randomly edits
//! the desired file (valid, invalid, empty), deletes or changes managed objects, and adds
//! foreign ones. After a final valid edit the kernel must equal the desired state (`check`
//! exits 0 and `ip -j` shows exactly the desired links and routes), no foreign object may be
//! gone, the watcher must still run, and its CPU time stays bounded (printed).

mod common;

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// How long the script runs.
const CHAOS: Duration = Duration::from_secs(40);
const TAPS: usize = 6;
const ROUTES: usize = 8;

/// xorshift64*: a seeded, reproducible sequence (the seed is printed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A valid desired state: br0 with the taps and routes whose bits are set in `mask`.
fn valid(mask: u64) -> (String, Vec<String>, Vec<String>) {
    let mut y = String::from(
        "links:\n  br0:\n    kind: bridge\n    addresses: [10.0.0.1/24]\n    mtu: 1500\n",
    );
    let mut taps = vec![];
    for i in 0..TAPS {
        if mask & (1 << i) != 0 {
            let _ = write!(y, "  tap{i}:\n    kind: tap\n    master: br0\n");
            taps.push(format!("tap{i}"));
        }
    }
    y.push_str("routes:\n  - { to: 198.51.100.0/24, via: 10.0.0.254, dev: br0, table: 101 }\n");
    let mut routes = vec!["198.51.100.0/24".to_string()];
    for i in 0..ROUTES {
        if mask & (1 << (8 + i)) != 0 {
            let _ = writeln!(
                y,
                "  - {{ to: 203.0.113.{}/32, via: 10.0.0.254, dev: br0, table: 101 }}",
                i * 16
            );
            routes.push(format!("203.0.113.{}", i * 16));
        }
    }
    (y, taps, routes)
}

/// CPU time (user + system) of `pid` in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), counted after the command: indexes 11 and 12 here.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

#[test]
fn watch_survives_chaos_and_converges_on_the_final_edit() {
    if !root_or_skip("watch_survives_chaos_and_converges_on_the_final_edit") {
        return;
    }
    let ns = Netns::new();
    let dir = TempDir::new("chaos");
    let logs = TempDir::new("chaos-logs");
    let file = dir.path().join("h.yaml");
    std::fs::write(&file, valid(u64::MAX).0).unwrap();
    let log = std::fs::File::create(logs.path().join("log")).unwrap();
    let mut watcher = Command::new(env!("CARGO_BIN_EXE_netconverge"))
        .args([
            "--netns",
            &ns.name,
            "-d",
            dir.path().to_str().unwrap(),
            "watch",
        ])
        .args(["--debounce", "100ms"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("watch");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("chaos seed {seed}");
    let mut rng = Rng(seed);
    let mut foreign_links = vec![];
    let mut foreign_routes = vec![];
    let (mut edits, mut undos) = (0, 0);
    let start = Instant::now();
    while start.elapsed() < CHAOS {
        match rng.below(8) {
            0 | 1 => {
                std::fs::write(&file, valid(rng.next()).0).unwrap();
                edits += 1;
            }
            2 => std::fs::write(&file, "links:\n  br0\n    kind: [").unwrap(),
            3 => std::fs::write(&file, "").unwrap(),
            4 => {
                // Undo a managed object: a tap, the bridge's MTU, a route.
                let _ = ns.exec(&format!("ip link del tap{}", rng.below(TAPS as u64)));
                let _ = ns.exec("ip link set br0 mtu 1400");
                let _ = ns.exec("ip route del 198.51.100.0/24 table 101");
                undos += 1;
            }
            5 => {
                let name = format!("fx{}", foreign_links.len());
                ns.ip(&format!("link add {name} type bridge"));
                foreign_links.push(name);
            }
            6 => {
                let dst = format!("192.0.2.{}", foreign_routes.len() % 250 + 1);
                if ns
                    .exec(&format!("ip route add {dst}/32 dev lo table 200"))
                    .status
                    .success()
                {
                    foreign_routes.push(dst);
                }
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(50 + rng.below(300)));
    }
    let (yaml, taps, routes) = valid(rng.next());
    std::fs::write(&file, yaml).unwrap();

    // Converged: check is clean (polled; a hang guard, not a limit).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = netconverge_at(&ns, dir.path(), &["check"]);
        if out.status.code() == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not converged:\n{}",
            stdout(&out)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let elapsed = start.elapsed();
    assert!(watcher.try_wait().unwrap().is_none(), "the watcher exited");
    let cpu = cpu_seconds(watcher.id());

    // The oracle: exactly the desired links and routes, and every foreign object.
    let mut links: Vec<String> = ns
        .ip_json("link show")
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .filter(|n| n != "lo")
        .collect();
    links.sort();
    let mut want: Vec<String> = ["br0".to_string()]
        .into_iter()
        .chain(taps)
        .chain(foreign_links.iter().cloned())
        .collect();
    want.sort();
    assert_eq!(links, want);
    let table: Vec<String> = ns
        .ip_json("route show table 101")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dst"].as_str().unwrap().to_string())
        .collect();
    let mut routes = routes;
    routes.sort();
    let mut table = table;
    table.sort();
    assert_eq!(table, routes);
    let foreign_table = ns.ip("route show table 200");
    for dst in &foreign_routes {
        assert!(
            foreign_table.contains(dst.as_str()),
            "foreign route {dst} gone"
        );
    }
    assert!(ns.ip("link show br0").contains("mtu 1500"));

    let _ = watcher.kill();
    let _ = watcher.wait();
    eprintln!(
        "chaos: {edits} valid edits, {undos} undos, {} foreign links, {} foreign routes in \
         {:.1} s; watcher CPU {cpu:.2} s ({:.0} % of a core)",
        foreign_links.len(),
        foreign_routes.len(),
        elapsed.as_secs_f64(),
        100.0 * cpu / elapsed.as_secs_f64()
    );
    // Bounded: the old daemon spent 30 % of a core in a loop of failing passes.
    assert!(
        cpu < 0.25 * elapsed.as_secs_f64(),
        "watcher CPU {cpu:.2} s in {elapsed:?}"
    );
}
