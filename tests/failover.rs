//! Provider failover with traffic, as root, in a lab of network namespaces:
//!
//! ```text
//!              internet (203.0.113.9 the probe target, 203.0.113.10-25 destinations)
//!          wan-wrt /                \ wan-fw
//!      wrt (masquerade)              fw (masquerade)       each counts the VMs' packets it
//!      192.168.1.1 \                / 192.168.1.254        forwards to the internet
//!                   lan (a bridge)
//!                        | eth0 192.168.1.20
//!        ursa: `netconverge watch`, two providers with health, br0 10.0.0.1/24
//!                        | vm1-leg (a port of br0)
//!                     vm1 10.0.0.2
//! ```
//!
//! The WRT's upstream link is cut on the internet's side (the WRT stays up and answers ARP on
//! the LAN, so only probes beyond it can tell): the balanced default loses the WRT, the VM's
//! traffic leaves through the firewall only (the gateways' counters), `check` calls the
//! provider held down, not drift; the link restored, the balance comes back.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The VM's destinations: enough that a balanced default spreads them over both gateways.
const DESTINATIONS: std::ops::RangeInclusive<u8> = 10..=25;

fn nft(ns: &Netns, script: &str) {
    let path = std::env::temp_dir().join(format!(
        "nc-failover-{}-{}.nft",
        std::process::id(),
        ns.name
    ));
    std::fs::write(&path, script).unwrap();
    let o = ns.exec(&format!("nft -f {}", path.display()));
    let _ = std::fs::remove_file(&path);
    assert!(o.status.success(), "nft in {}: {}", ns.name, stderr(&o));
}

/// The lab. Field order is drop order: `watch` stops before the namespaces go.
struct Lab {
    watch: Option<std::process::Child>,
    internet: Netns,
    wrt: Netns,
    fw: Netns,
    _lan: Netns,
    ursa: Netns,
    vm: Netns,
    dir: TempDir,
    logs: TempDir,
}

impl Lab {
    fn new() -> Lab {
        let (internet, wrt, fw, lan, ursa, vm) = (
            Netns::new(),
            Netns::new(),
            Netns::new(),
            Netns::new(),
            Netns::new(),
            Netns::new(),
        );
        bridge_lan(
            &lan,
            &[
                (&ursa, "eth0", "p-ursa"),
                (&wrt, "lan0", "p-wrt"),
                (&fw, "lan0", "p-fw"),
            ],
        );
        for (gw, leg, inet, wan, lan_addr) in [
            (
                &wrt,
                "wan-wrt",
                "198.51.100.2",
                "198.51.100.1",
                "192.168.1.1",
            ),
            (
                &fw,
                "wan-fw",
                "198.51.100.6",
                "198.51.100.5",
                "192.168.1.254",
            ),
        ] {
            internet.ip(&format!(
                "link add {leg} type veth peer name wan0 netns {}",
                gw.name
            ));
            internet.ip(&format!("addr add {inet}/30 dev {leg}"));
            internet.ip(&format!("link set {leg} up"));
            gw.ip(&format!("addr add {wan}/30 dev wan0"));
            gw.ip("link set wan0 up");
            gw.ip(&format!("route add default via {inet}"));
            gw.ip(&format!("addr add {lan_addr}/24 dev lan0"));
            let o = gw.exec("echo 1 > /proc/sys/net/ipv4/ip_forward");
            assert!(o.status.success());
            // Count the VM's packets to the internet, not the probes (to 203.0.113.9).
            nft(
                gw,
                "table ip lab {\n\
                 counter vm { }\n\
                 chain forward {\n\
                 type filter hook forward priority 0; policy accept;\n\
                 oifname \"wan0\" ip daddr != 203.0.113.9 counter name \"vm\"\n\
                 }\n\
                 chain post {\n\
                 type nat hook postrouting priority srcnat; policy accept;\n\
                 oifname \"wan0\" masquerade\n\
                 }\n\
                 }\n",
            );
        }
        internet.ip("addr add 203.0.113.9/32 dev lo");
        for i in DESTINATIONS {
            internet.ip(&format!("addr add 203.0.113.{i}/32 dev lo"));
        }
        ursa.ip(&format!(
            "link add vm1-leg type veth peer name eth0 netns {}",
            vm.name
        ));
        vm.ip("addr add 10.0.0.2/24 dev eth0");
        vm.ip("link set eth0 up");
        vm.ip("route add default via 10.0.0.1");
        let dir = TempDir::new("failover");
        std::fs::write(dir.path().join("ursa.yaml"), URSA).unwrap();
        Lab {
            watch: None,
            internet,
            wrt,
            fw,
            _lan: lan,
            ursa,
            vm,
            dir,
            logs: TempDir::new("failover-log"),
        }
    }

    fn start_watch(&mut self) {
        let log = self.logs.path().join("watch.log");
        self.watch = Some(spawn_watch(&self.ursa, self.dir.path(), &log));
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("watch.log")).unwrap_or_default()
    }

    /// The gateways of ursa's default route in main, as `ip -j route` gives them.
    fn default_gateways(&self) -> Vec<String> {
        let routes = self.ursa.ip_json("route show default");
        let mut out = Vec::new();
        for r in routes.as_array().into_iter().flatten() {
            if let Some(g) = r["gateway"].as_str() {
                out.push(g.to_string());
            }
            for h in r["nexthops"].as_array().into_iter().flatten() {
                out.extend(h["gateway"].as_str().map(str::to_string));
            }
        }
        out.sort();
        out
    }

    /// The VM's packets each gateway forwarded to the internet so far: (wrt, fw).
    fn counted(&self) -> (u64, u64) {
        let n = |ns: &Netns| nft_packets(ns, "ip lab vm");
        (n(&self.wrt), n(&self.fw))
    }

    /// One ping from the VM to each destination; how many were answered, and the packets
    /// each gateway forwarded meanwhile.
    fn vm_traffic(&self) -> (usize, (u64, u64)) {
        let before = self.counted();
        let answered = answered_pings(&self.vm, "203.0.113", DESTINATIONS);
        let after = self.counted();
        (answered, (after.0 - before.0, after.1 - before.1))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.watch.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const URSA: &str = "\
links:
  eth0: { kind: external, addresses: [192.168.1.20/24] }
  br0:
    kind: bridge
    bridge: { stp: false, forward_delay: 0 }
    addresses: [10.0.0.1/24]
  vm1-leg: { kind: external, master: br0, up: true }
providers:
  wrt: { number: 1, mark: \"0x1\", interface: eth0, gateway: 192.168.1.1, balance: 1,
         health: { targets: [203.0.113.9] } }
  fw:  { number: 2, mark: \"0x2\", interface: eth0, gateway: 192.168.1.254, balance: 1, loose: true,
         health: { targets: [203.0.113.9] } }
masquerade:
  - { from: 10.0.0.0/24, out: eth0 }
";

const BOTH: [&str; 2] = ["192.168.1.1", "192.168.1.254"];

#[test]
fn lab_a_dead_upstream_behind_a_live_router_fails_over_and_balance_comes_back() {
    if !root_or_skip("lab_a_dead_upstream_behind_a_live_router_fails_over_and_balance_comes_back") {
        return;
    }
    let mut lab = Lab::new();
    lab.start_watch();
    assert!(
        poll(Duration::from_secs(20), || lab.default_gateways() == BOTH),
        "watch did not converge: {:?}\n{}",
        lab.default_gateways(),
        lab.log()
    );
    let (answered, (wrt, fw)) = lab.vm_traffic();
    assert_eq!(answered, 16, "{}", lab.log());
    assert!(
        wrt > 0 && fw > 0,
        "balanced over both gateways: wrt {wrt}, fw {fw}"
    );

    // Cut the WRT's upstream on the internet's side: the WRT itself stays up on the LAN.
    let cut = Instant::now();
    lab.internet.ip("link set wan-wrt down");
    assert!(
        poll(Duration::from_secs(10), || lab.default_gateways()
            == ["192.168.1.254"]),
        "no failover: {:?}\n{}",
        lab.default_gateways(),
        lab.log()
    );
    let failover = cut.elapsed();
    eprintln!(
        "failover: {} ms after the cut (the defaults' bound: 3.8 s plus a pass)",
        failover.as_millis()
    );
    let arp = lab.ursa.route_get("192.168.1.1");
    assert_eq!(arp["dev"], "eth0", "the WRT is still on the LAN");
    let (answered, (wrt, fw)) = lab.vm_traffic();
    assert_eq!(
        answered,
        16,
        "every destination through the firewall\n{}",
        lab.log()
    );
    assert_eq!(wrt, 0, "nothing leaves through the WRT");
    assert!(fw >= 16, "the firewall forwarded the VM's traffic: {fw}");
    assert!(lab.log().contains("provider wrt is down"), "{}", lab.log());
    // Its probes still take the WRT (they fail), so it is not brought back by the firewall.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(lab.default_gateways(), ["192.168.1.254"], "{}", lab.log());
    let check = netconverge_at(&lab.ursa, lab.dir.path(), &["check"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "held down is not drift: {}{}",
        stdout(&check),
        stderr(&check)
    );
    let said = format!("{}{}", stdout(&check), stderr(&check));
    assert!(
        said.contains("provider wrt is held down by its health checks"),
        "{said}"
    );

    let restored = Instant::now();
    lab.internet.ip("link set wan-wrt up");
    assert!(
        poll(Duration::from_secs(10), || lab.default_gateways() == BOTH),
        "the WRT did not come back: {:?}\n{}",
        lab.default_gateways(),
        lab.log()
    );
    eprintln!(
        "back in service: {} ms after the link came back",
        restored.elapsed().as_millis()
    );
    assert!(lab.log().contains("provider wrt is up"), "{}", lab.log());
    let (answered, (wrt, fw)) = lab.vm_traffic();
    assert_eq!(answered, 16);
    assert!(wrt > 0 && fw > 0, "balanced again: wrt {wrt}, fw {fw}");
    let check = netconverge_at(&lab.ursa, lab.dir.path(), &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
}
