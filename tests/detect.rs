//! A provider with `local: detect` and `gateway: detect` beside a real DHCP client, as root,
//! in a lab of network namespaces:
//!
//! ```text
//!                internet (203.0.113.10-25 on lo)
//!        wan0 /          | wan0           \ wan0
//!   r1 192.168.1.1   r2 192.168.2.1     r3 10.64.0.1      each masquerades and counts
//!   (udhcpd, lease 1) (udhcpd, lease 2)  |                 what it forwards to the internet
//!          \ lan0      / lan0            |
//!            lan (a bridge)              |
//!                 | eth0 (DHCP)          | eth1 10.64.0.2/24 (declared)
//!                ursa: provider `dhcp` (detect) and provider `lte` (static), balanced
//! ```
//!
//! busybox `udhcpc` in ursa configures eth0 with a small `ip`-based script, as Debian's
//! default.script does: the address, and the default route in main through the router. Before
//! the lease the provider is unavailable (a warning, `check` exits 0); after it, its table,
//! rules and the balanced default in table 250 use the leased address and router, and ursa's
//! own traffic balances over r1 and r3 although the client's default route (through r1 only)
//! is in main; then the lease moves to r2's subnet under `watch`, which follows it.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The destinations: enough that the balanced default spreads them over both gateways.
const DESTINATIONS: std::ops::RangeInclusive<u8> = 10..=25;

const URSA: &str = "\
links:
  eth0: { kind: external }
  eth1: { kind: external, addresses: [10.64.0.2/24] }
providers:
  dhcp: { number: 1, interface: eth0, local: detect, gateway: detect, balance: 1 }
  lte:  { number: 2, interface: eth1, gateway: 10.64.0.1, balance: 1 }
";

/// udhcpc's script: what Debian's default.script does, with `ip` (`$mask` is a prefix length).
const SCRIPT: &str = "#!/bin/sh
case \"$1\" in
deconfig)
  ip -4 addr flush dev \"$interface\"
  ip link set \"$interface\" up
  ;;
bound|renew)
  ip -4 addr flush dev \"$interface\"
  ip addr add \"$ip/$mask\" dev \"$interface\"
  for r in $router; do
    ip route replace default via \"$r\" dev \"$interface\"
    break
  done
  ;;
esac
exit 0
";

/// The lab. Field order is drop order: the processes stop before the namespaces go.
struct Lab {
    watch: Option<Child>,
    server: Option<Child>,
    _internet: Netns,
    r1: Netns,
    r2: Netns,
    r3: Netns,
    _lan: Netns,
    ursa: Netns,
    dir: TempDir,
    logs: TempDir,
}

fn nft(ns: &Netns, script: &str, dir: &TempDir) {
    let path = dir.path().join(format!("{}.nft", ns.name));
    std::fs::write(&path, script).unwrap();
    let o = ns.exec(&format!("nft -f {}", path.display()));
    assert!(o.status.success(), "nft in {}: {}", ns.name, stderr(&o));
}

/// A router: its LAN address on lan0, its upstream on wan0 (a /30 to the internet), forwarding,
/// masquerading and counting what it forwards.
fn router(internet: &Netns, r: &Netns, n: u8, lan_addr: &str, logs: &TempDir) {
    internet.ip(&format!(
        "link add wan-{n} type veth peer name wan0 netns {}",
        r.name
    ));
    let base = 4 * n;
    internet.ip(&format!("addr add 198.51.100.{}/30 dev wan-{n}", base + 2));
    internet.ip(&format!("link set wan-{n} up"));
    r.ip(&format!("addr add 198.51.100.{}/30 dev wan0", base + 1));
    r.ip("link set wan0 up");
    r.ip(&format!("route add default via 198.51.100.{}", base + 2));
    r.ip(&format!("addr add {lan_addr} dev lan0"));
    r.ip("link set lan0 up");
    assert!(r
        .exec("echo 1 > /proc/sys/net/ipv4/ip_forward")
        .status
        .success());
    nft(
        r,
        "table ip lab {\n counter out { }\n chain forward {\n  type filter hook forward priority 0; policy accept;\n  oifname \"wan0\" counter name \"out\"\n }\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname \"wan0\" masquerade\n }\n}\n",
        logs,
    );
}

impl Lab {
    fn new() -> Lab {
        let (internet, r1, r2, r3, lan, ursa) = (
            Netns::new(),
            Netns::new(),
            Netns::new(),
            Netns::new(),
            Netns::new(),
            Netns::new(),
        );
        let logs = TempDir::new("detect-log");
        bridge_lan(
            &lan,
            &[
                (&ursa, "eth0", "p-ursa"),
                (&r1, "lan0", "p-r1"),
                (&r2, "lan0", "p-r2"),
            ],
        );
        ursa.ip(&format!(
            "link add eth1 type veth peer name lan0 netns {}",
            r3.name
        ));
        ursa.ip("addr add 10.64.0.2/24 dev eth1");
        ursa.ip("link set eth1 up");
        router(&internet, &r1, 0, "192.168.1.1/24", &logs);
        router(&internet, &r2, 1, "192.168.2.1/24", &logs);
        router(&internet, &r3, 2, "10.64.0.1/24", &logs);
        for i in DESTINATIONS {
            internet.ip(&format!("addr add 203.0.113.{i}/32 dev lo"));
        }
        let dir = TempDir::new("detect");
        std::fs::write(dir.path().join("ursa.yaml"), URSA).unwrap();
        let script = logs.path().join("udhcpc.script");
        std::fs::write(&script, SCRIPT).unwrap();
        sh(&format!("chmod +x {}", script.display()));
        Lab {
            watch: None,
            server: None,
            _internet: internet,
            r1,
            r2,
            r3,
            _lan: lan,
            ursa,
            dir,
            logs,
        }
    }

    /// Serve leases from router `r` (its subnet `net`, e.g. `192.168.1`), `r` being the
    /// router; the previous server stops.
    fn serve(&mut self, r: &str, net: &str) {
        self.stop_server();
        let ns = if r == "r1" { &self.r1 } else { &self.r2 };
        let conf = self.logs.path().join(format!("udhcpd-{r}.conf"));
        let leases = self.logs.path().join(format!("udhcpd-{r}.leases"));
        std::fs::write(&leases, "").unwrap();
        std::fs::write(
            &conf,
            format!(
                "start {net}.100\nend {net}.110\ninterface lan0\nlease_file {}\npidfile {}.pid\nopt router {net}.1\nopt subnet 255.255.255.0\nopt lease 3600\n",
                leases.display(),
                conf.display()
            ),
        )
        .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "busybox", "udhcpd", "-f"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("udhcpd");
        self.server = Some(child);
    }

    fn stop_server(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Run udhcpc on ursa's eth0 until it has a lease (the script applies it), then exit.
    fn lease(&self) {
        let script = self.logs.path().join("udhcpc.script");
        let o = self.ursa.exec(&format!(
            "busybox udhcpc -f -q -n -i eth0 -t 10 -T 1 -s {}",
            script.display()
        ));
        assert!(
            o.status.success(),
            "udhcpc got no lease: {}{}",
            stdout(&o),
            stderr(&o)
        );
    }

    fn start_watch(&mut self) {
        let log = self.logs.path().join("watch.log");
        self.watch = Some(spawn_watch(&self.ursa, self.dir.path(), &log));
    }

    fn stop_watch(&mut self) {
        if let Some(mut c) = self.watch.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("watch.log")).unwrap_or_default()
    }

    fn run(&self, args: &[&str]) -> (Option<i32>, String) {
        let o = netconverge_at(&self.ursa, self.dir.path(), args);
        (o.status.code(), format!("{}{}", stdout(&o), stderr(&o)))
    }

    /// ursa's rules as `ip -j rule` gives them, `priority: selector lookup table`.
    fn rules(&self) -> Vec<String> {
        let rules = self.ursa.ip_json("rule show");
        let mut out = Vec::new();
        for r in rules.as_array().into_iter().flatten() {
            let mut s = format!(
                "{}: from {}",
                r["priority"],
                r["src"].as_str().unwrap_or("")
            );
            if let Some(len) = r["srclen"].as_u64() {
                s.push_str(&format!("/{len}"));
            }
            if let Some(d) = r["dst"].as_str() {
                s.push_str(&format!(" to {d}"));
            }
            s.push_str(&format!(" lookup {}", r["table"].as_str().unwrap_or("")));
            if let Some(n) = r["suppress_prefixlen"].as_u64() {
                s.push_str(&format!(" suppress_prefixlength {n}"));
            }
            out.push(s);
        }
        out
    }

    /// The gateways of the default route in `table` (`ip -j route show table T default`).
    fn default_gateways(&self, table: &str) -> Vec<String> {
        let routes = self.routes(table, "default");
        let mut out = Vec::new();
        for r in routes.as_array().into_iter().flatten() {
            out.extend(r["gateway"].as_str().map(str::to_string));
            for h in r["nexthops"].as_array().into_iter().flatten() {
                out.extend(h["gateway"].as_str().map(str::to_string));
            }
        }
        out.sort();
        out
    }

    /// `ip -j route show table T WHAT`; nothing when the kernel has no such table yet (ip
    /// then fails with "Dump terminated").
    fn routes(&self, table: &str, what: &str) -> serde_json::Value {
        let o = self
            .ursa
            .exec(&format!("ip -j route show table {table} {what}"));
        serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// The `src` of table 1's default route.
    fn table_src(&self) -> Option<String> {
        let routes = self.routes("1", "default");
        routes.as_array()?.first()?["prefsrc"]
            .as_str()
            .map(str::to_string)
    }

    fn counted(&self) -> [u64; 3] {
        let n = |ns: &Netns| nft_packets(ns, "ip lab out");
        [n(&self.r1), n(&self.r2), n(&self.r3)]
    }

    /// One ping from ursa to each destination: how many were answered, and the packets each
    /// router forwarded meanwhile.
    fn traffic(&self) -> (usize, [u64; 3]) {
        let before = self.counted();
        let answered = answered_pings(&self.ursa, "203.0.113", DESTINATIONS);
        let after = self.counted();
        (answered, [0, 1, 2].map(|i| after[i] - before[i]))
    }

    /// The IPv4 address udhcpc put on eth0 (oracle: `ip -j addr`).
    fn leased(&self) -> String {
        let a = self.ursa.ip_json("-4 addr show dev eth0");
        a[0]["addr_info"][0]["local"]
            .as_str()
            .unwrap_or_else(|| panic!("no address on eth0: {a}"))
            .to_string()
    }

    /// The state a lease from `router` with address `local` gives.
    fn follows(&self, router: &str, local: &str) -> bool {
        // Sorted: the static provider's router sorts first.
        self.default_gateways("250") == ["10.64.0.1", router]
            && self.default_gateways("1") == [router]
            && self.table_src().as_deref() == Some(local)
            && self
                .rules()
                .contains(&format!("20000: from {local} lookup 1"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_watch();
        self.stop_server();
    }
}

#[test]
fn lab_a_detect_provider_follows_a_real_dhcp_client_and_balances_beside_its_default() {
    let name = "lab_a_detect_provider_follows_a_real_dhcp_client_and_balances_beside_its_default";
    if !root_or_skip(name) {
        return;
    }
    let mut lab = Lab::new();

    // Before the lease: the provider is unavailable, and says why; not drift.
    let (code, said) = lab.run(&["check"]);
    assert_ne!(code, Some(2), "{said}");
    assert!(
        said.contains("provider dhcp is unavailable: no IPv4 address on eth0 yet (local: detect) and no default route through eth0 in main yet (gateway: detect)"),
        "{said}"
    );
    let (code, said) = lab.run(&["reconcile"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("provider dhcp is unavailable"), "{said}");
    assert_eq!(lab.default_gateways("250"), ["10.64.0.1"]);
    assert!(
        lab.routes("1", "").as_array().is_none_or(Vec::is_empty),
        "no table for the provider yet"
    );
    let (code, said) = lab.run(&["check"]);
    assert_eq!(code, Some(0), "waiting for the lease is not drift: {said}");

    // The lease: r1's address and router.
    lab.serve("r1", "192.168.1");
    lab.lease();
    let lease1 = lab.leased();
    assert!(lease1.starts_with("192.168.1."), "{lease1}");
    // A lower address added by hand in the same subnet is a secondary one (IFA_F_SECONDARY in
    // `ip -j addr`): never the detected local address.
    lab.ursa.ip("addr add 192.168.1.99/24 dev eth0");
    let eth0 = lab.ursa.ip_json("-4 addr show dev eth0");
    assert_eq!(eth0[0]["addr_info"][1]["secondary"], true, "{eth0}");
    assert_eq!(
        lab.default_gateways("main"),
        ["192.168.1.1"],
        "the client's default"
    );
    let (code, said) = lab.run(&["reconcile"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        lab.follows("192.168.1.1", &lease1),
        "{:?} {:?}",
        lab.rules(),
        lab.default_gateways("250")
    );
    assert!(
        lab.rules()
            .contains(&"999: from all lookup main suppress_prefixlength 0".to_string()),
        "{:?}",
        lab.rules()
    );
    assert_eq!(
        lab.default_gateways("main"),
        ["192.168.1.1"],
        "the client's default stays"
    );
    let (code, said) = lab.run(&["reconcile"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("No changes."),
        "the second reconcile is a no-op: {said}"
    );
    let (code, said) = lab.run(&["check"]);
    assert_eq!(code, Some(0), "{said}");
    // The routing answers: its own address goes out through r1 (rule 20000 → table 1), and
    // a destination is answered by the balance table, not by main's default.
    let from = lab.ursa.route_get(&format!("203.0.113.10 from {lease1}"));
    assert_eq!(from["gateway"], "192.168.1.1", "{from}");
    assert_eq!(from["table"], "1", "{from}");
    let any = lab.ursa.route_get("203.0.113.10");
    assert_eq!(any["table"], "250", "{any}");
    // ursa's own traffic balances over r1 and r3, main's default through r1 notwithstanding.
    let (answered, [r1, r2, r3]) = lab.traffic();
    assert_eq!(answered, 16);
    assert!(
        r1 > 0 && r3 > 0 && r2 == 0,
        "balanced over r1 and r3: {r1} {r2} {r3}"
    );

    // The lease moves to r2's subnet, under watch.
    lab.start_watch();
    // Its first pass finds nothing to do; let it settle before the lease moves.
    std::thread::sleep(Duration::from_secs(2));
    let running = lab
        .watch
        .as_mut()
        .map(|c| c.try_wait().expect("watch status"));
    assert_eq!(running, Some(None), "watch exited: {}", lab.log());
    lab.serve("r2", "192.168.2");
    let moved = Instant::now();
    lab.lease();
    assert!(
        poll(Duration::from_secs(10), || lab
            .follows("192.168.2.1", &lab.leased())),
        "watch did not follow the new lease: {:?} {:?} {:?}\n{}",
        lab.rules(),
        lab.default_gateways("250"),
        lab.default_gateways("1"),
        lab.log()
    );
    eprintln!(
        "followed the new lease {} ms after udhcpc started (the lease itself included)",
        moved.elapsed().as_millis()
    );
    assert!(
        !lab.rules().iter().any(|r| r.contains(&lease1)),
        "{:?}",
        lab.rules()
    );
    let (answered, [r1, r2, r3]) = lab.traffic();
    assert_eq!(answered, 16);
    assert!(
        r2 > 0 && r3 > 0 && r1 == 0,
        "balanced over r2 and r3: {r1} {r2} {r3}"
    );
    lab.stop_watch();
    let (code, said) = lab.run(&["check"]);
    assert_eq!(code, Some(0), "{said}");
}

/// On the fake kernel, through the `Kernel` trait: the lease arrives (a foreign primary
/// address and the client's default in main), the pass applies the provider from it; the lease
/// goes (the client deconfigures eth0; the kernel drops the routes whose source it was), the
/// next pass removes the provider's rules and its nexthop instead of refusing as if the file
/// were empty, and waiting for the next lease checks clean.
#[test]
fn on_the_fake_kernel_a_lost_lease_takes_the_only_provider_out_and_a_new_one_brings_it_back() {
    use netconverge::pass::{pass, Mode};
    use reconcilers::kernel::fake::FakeKernel;
    use reconcilers::model::{
        Address, Family, Link, LinkKind, NextHop, Route, RouteType, Scope, State, TABLE_MAIN,
    };
    let src = "providers:\n  dhcp: { number: 1, interface: eth0, gateway: detect, balance: 1 }\n";
    let d = netconverge::desired::load_str(src, std::path::Path::new("dhcp.yaml")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut host = State::default();
    let mut eth0 = Link::new("eth0", LinkKind::External);
    eth0.up = Some(true);
    host.add_link(eth0);
    let mut k = FakeKernel::new(host);
    let lease = |k: &mut FakeKernel, addr: &str, router: &str| {
        k.state.add_address(Address {
            link: "eth0".into(),
            address: addr.parse().unwrap(),
            owned: false,
            primary: true,
        });
        k.state.add_route(Route {
            table: TABLE_MAIN,
            to: Family::Inet.any(),
            tos: 0,
            metric: 0,
            kind: RouteType::Unicast,
            nexthops: vec![NextHop {
                via: Some(router.parse().unwrap()),
                dev: Some("eth0".into()),
                weight: 1,
                onlink: false,
            }]
            .into(),
            src: None,
            scope: Scope::Global,
            mtu: None,
            owned: false,
        });
    };
    let rules =
        |k: &FakeKernel| -> Vec<String> { k.state.rules.values().map(|r| r.id()).collect() };
    let run = |k: &mut FakeKernel, mode| {
        rt.block_on(pass(k, &d, mode, false))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    // No lease: nothing of the provider's, a warning, and checking is clean.
    let p = run(&mut k, Mode::Apply);
    assert!(
        p.plan
            .warnings
            .iter()
            .any(|w| w.starts_with("provider dhcp is unavailable")),
        "{:?}",
        p.plan.warnings
    );
    assert!(rules(&k).is_empty(), "{:?}", rules(&k));
    assert!(run(&mut k, Mode::Check).plan.changes.is_empty());
    // The lease.
    lease(&mut k, "192.168.1.57/24", "192.168.1.1");
    run(&mut k, Mode::Apply);
    assert!(
        rules(&k).contains(&"20000: from 192.168.1.57/32 lookup 1".to_string()),
        "{:?}",
        rules(&k)
    );
    assert!(rules(&k).contains(&"999: from all lookup main suppress_prefixlength 0".to_string()));
    assert!(k
        .state
        .routes
        .values()
        .any(|r| r.table == 250 && r.id() == "default via 192.168.1.1 dev eth0 table 250"));
    assert!(
        run(&mut k, Mode::Check).plan.changes.is_empty(),
        "converged"
    );
    // The lease is lost: the client flushes eth0; the kernel drops the routes with its source.
    k.state.addresses.retain(|_, a| a.link != "eth0");
    k.state
        .routes
        .retain(|_, r| r.owned && r.src.is_none() || r.table == 250);
    let p = run(&mut k, Mode::Apply);
    assert!(
        p.applied.is_some(),
        "not refused as an empty file: {:?}",
        p.plan.warnings
    );
    assert!(rules(&k).is_empty(), "{:?}", rules(&k));
    assert!(
        !k.state.routes.values().any(|r| r.owned),
        "{:?}",
        k.state.routes.values().map(Route::id).collect::<Vec<_>>()
    );
    // A new lease elsewhere brings it back there.
    lease(&mut k, "10.7.0.9/16", "10.7.0.1");
    run(&mut k, Mode::Apply);
    assert!(
        rules(&k).contains(&"20000: from 10.7.0.9/32 lookup 1".to_string()),
        "{:?}",
        rules(&k)
    );
    assert!(run(&mut k, Mode::Check).plan.changes.is_empty());
}
