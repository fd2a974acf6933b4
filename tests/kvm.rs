//! A real guest on netconverge's tap (issue 15), as root, in a lab of namespaces:
//!
//! ```text
//!                 internet (203.0.113.10:80, answers with the source it saw)
//!            wan-wrt /                     \ wan-fw
//!      wrt (masquerade, counts wan0)     fw (masquerade, counts wan0)
//!        192.168.1.1 \______ lan ______/ 192.168.1.254
//!                              |
//!                      eth0 192.168.1.20
//!     ursa (netconverge: br0 10.0.0.1/24, dnsmasq, providers wrt and fw, tap-vm1 → fw)
//!                              | tap-vm1 (owner nobody:nogroup, declared vnet_hdr: false)
//!                      qemu as nobody: Debian's cloud kernel + a busybox initramfs
//! ```
//!
//! The guest gets its static lease from netconverge's dnsmasq, resolves its own and another
//! host's name, and connects to the internet server once a second; its traffic is counted on
//! the gateway its provider mark sends it to. qemu turns vnet_hdr on (its default) on a tap
//! declared without it: a second reconcile while it runs changes nothing, `check` is clean,
//! and its traffic goes on; once qemu is gone the declared flag is applied.

mod common;

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use common::guest::{self, Accel, Boot};
use common::*;
use serde_json::Value;

const SERVER: &str = "203.0.113.10";
const FW_WAN: &str = "198.51.100.5";
const VM1_MAC: &str = "52:54:00:00:00:0a";

/// ursa's desired state: the VM's tap on br0, DHCP and DNS for it, two providers with the
/// VM's traffic marked for fw.
const DESIRED: &str = r#"
links:
  eth0: { kind: external, addresses: [192.168.1.20/24] }
  br0:
    kind: bridge
    bridge: { stp: false, forward_delay: 0 }
    addresses: [10.0.0.1/24]
  tap-vm1:
    kind: tap
    tap: { owner: nobody, group: nogroup, vnet_hdr: false, multi_queue: false }
    master: br0
dhcp:
  br0:
    ranges: ["10.0.0.100-10.0.0.199"]
    domain: vm.ursa
    dns: { upstream: [] }
    hosts:
      - { mac: "52:54:00:00:00:0a", ip: 10.0.0.10, name: vm1 }
      - { mac: "52:54:00:00:00:0b", ip: 10.0.0.11, name: vm2 }
providers:
  wrt: { number: 1, mark: "0x1", interface: eth0, gateway: 192.168.1.1, balance: 1 }
  fw:  { number: 2, mark: "0x2", interface: eth0, gateway: 192.168.1.254, balance: 1, loose: true }
provider_options: { mask: "0xff", default_table: main }
masquerade:
  - { from: 10.0.0.0/24, out: eth0 }
marks:
  - { iif: tap-vm1, mark: "0x2" }
"#;

/// A TCP server answering each connection with the address it came from (python3, in the
/// namespace), killed on drop.
struct Server(Child);

impl Server {
    fn start(ns: &Netns, addr: &str) -> Server {
        let script = format!(
            "import socket\n\
             s = socket.socket()\n\
             s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('{addr}', 80))\n\
             s.listen(64)\n\
             print('up', flush=True)\n\
             while True:\n\
             \x20   c, a = s.accept()\n\
             \x20   c.sendall(a[0].encode() + b'\\n')\n\
             \x20   c.close()\n"
        );
        let child = python_ready(ns, &script, "up", "the lab server did not start");
        Server(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lab. Field order is drop order: processes before their namespaces.
struct Lab {
    _server: Server,
    internet: Netns,
    wrt: Netns,
    fw: Netns,
    _lan: Netns,
    ursa: Netns,
    dir: TempDir,
    /// Where qemu (as nobody) writes its serial console; not the desired directory, which
    /// must not be writable by others.
    console: TempDir,
}

fn gateway_nft(ns: &Netns) {
    let rules = "table ip lab {\n\
                 counter wan { }\n\
                 chain forward {\n\
                 type filter hook forward priority 0; policy accept;\n\
                 oifname \"wan0\" counter name \"wan\"\n\
                 }\n\
                 chain post {\n\
                 type nat hook postrouting priority srcnat; policy accept;\n\
                 oifname \"wan0\" masquerade\n\
                 }\n\
                 }\n";
    let o = ns.exec(&format!("printf '%s' '{rules}' | nft -f -"));
    assert!(o.status.success(), "nft: {}", stderr(&o));
}

impl Lab {
    fn new() -> Lab {
        let (internet, wrt, fw, lan, ursa) = (
            Netns::new(),
            Netns::new(),
            Netns::new(),
            Netns::new(),
            Netns::new(),
        );
        lan.ip("link add lan type bridge");
        lan.ip("link set lan up");
        for (ns, name, port, addr) in [
            (&ursa, "eth0", "p-ursa", None),
            (&wrt, "lan0", "p-wrt", Some("192.168.1.1/24")),
            (&fw, "lan0", "p-fw", Some("192.168.1.254/24")),
        ] {
            ns.ip(&format!(
                "link add {name} type veth peer name {port} netns {}",
                lan.name
            ));
            if let Some(a) = addr {
                ns.ip(&format!("addr add {a} dev {name}"));
            }
            ns.ip(&format!("link set {name} up"));
            lan.ip(&format!("link set {port} master lan up"));
        }
        for (gw, leg, inet, wan) in [
            (&wrt, "wan-wrt", "198.51.100.2", "198.51.100.1"),
            (&fw, "wan-fw", "198.51.100.6", FW_WAN),
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
            let o = gw.exec("echo 1 > /proc/sys/net/ipv4/ip_forward");
            assert!(o.status.success());
            gateway_nft(gw);
        }
        internet.ip(&format!("addr add {SERVER}/32 dev lo"));
        let dir = TempDir::new("kvm");
        let console = TempDir::new("kvm-console");
        sh(&format!("chmod 0777 {}", console.path().display()));
        std::fs::write(dir.path().join("ursa.yaml"), DESIRED).unwrap();
        Lab {
            _server: Server::start(&internet, SERVER),
            internet,
            wrt,
            fw,
            _lan: lan,
            ursa,
            dir,
            console,
        }
    }

    fn desired(&self) -> &Path {
        self.dir.path()
    }

    /// Packets a gateway forwarded to the internet.
    fn forwarded(ns: &Netns) -> u64 {
        let o = ns.exec("nft list counter ip lab wan");
        let text = stdout(&o);
        let words: Vec<&str> = text.split_whitespace().collect();
        words
            .iter()
            .position(|w| *w == "packets")
            .and_then(|i| words.get(i + 1))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no counter in {}: {text}", ns.name))
    }

    /// The tap as `ip -d` prints it: (vnet_hdr on, owner).
    fn tap(&self) -> (bool, String) {
        let l = &self.ursa.ip_json("-d link show tap-vm1")[0]["linkinfo"]["info_data"];
        (
            l["vnet_hdr"] == true,
            l["user"].as_str().unwrap_or("").into(),
        )
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.internet, &self.wrt, &self.fw, &self.ursa] {
            ns.kill_processes();
            let _ = std::fs::remove_dir_all(format!("/run/netconverge/netns/{}", ns.name));
        }
    }
}

/// The guest, or a skip (outside CI) when a package is missing.
fn guest_or_skip(test: &str) -> Option<(guest::Image, Accel)> {
    if !root_or_skip(test) {
        return None;
    }
    if let Some(why) = guest::missing() {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("{test}: {why}, and CI=true forbids skipping");
        }
        eprintln!("skipped: {test} {why}");
        return None;
    }
    let image = guest::image();
    let accel = image.accel();
    eprintln!(
        "{test}: booting the guest with {}",
        match accel {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG (KVM does not boot a stock guest kernel here)",
        }
    );
    Some((image, accel))
}

fn reconcile(lab: &Lab) -> Value {
    let plan = reconcile_json_at(&lab.ursa, lab.desired());
    let failures = &plan["applied"]["failures"];
    assert!(
        failures.is_null() || failures.as_array().is_some_and(Vec::is_empty),
        "{plan}"
    );
    plan
}

#[test]
fn a_real_guest_gets_its_lease_resolves_and_reaches_the_internet_through_its_provider() {
    let test = "a_real_guest_gets_its_lease_resolves_and_reaches_the_internet_through_its_provider";
    let Some((image, accel)) = guest_or_skip(test) else {
        return;
    };
    let lab = Lab::new();
    reconcile(&lab);
    assert_eq!(lab.tap(), (false, "nobody".into()), "the tap as declared");
    let (wrt0, fw0) = (Lab::forwarded(&lab.wrt), Lab::forwarded(&lab.fw));
    let boot = Boot {
        netns: &lab.ursa.name,
        tap: "tap-vm1",
        mac: VM1_MAC,
        uid: 65534,
        gid: 65534,
        names: &["vm1", "vm2"],
        server: &format!("{SERVER}:80"),
        vnet_hdr: None,
    };
    let mut vm = image.boot(&boot, accel, lab.console.path());
    let limit = Duration::from_secs(90);
    let lease = vm.wait_for("lease ", limit);
    assert_eq!(
        lease,
        "lease ip=10.0.0.10 mask=24 router=10.0.0.1 dns=10.0.0.1 domain=vm.ursa",
        "{}",
        vm.report()
    );
    assert_eq!(vm.wait_for("resolve vm1", limit), "resolve vm1 10.0.0.10");
    assert_eq!(vm.wait_for("resolve vm2", limit), "resolve vm2 10.0.0.11");
    // The server saw fw's WAN address: the VM's mark chose the provider fw, which masqueraded.
    assert_eq!(vm.wait_for("fetch 1 ", limit), format!("fetch 1 {FW_WAN}"));
    assert!(Lab::forwarded(&lab.fw) > fw0, "fw forwarded nothing");
    assert_eq!(
        Lab::forwarded(&lab.wrt),
        wrt0,
        "the VM's traffic crossed wrt"
    );

    // qemu chose vnet_hdr on: the kernel shows it, and it is the VM's, not drift.
    assert_eq!(lab.tap(), (true, "nobody".into()), "qemu's vnet_hdr");
    let plan = reconcile(&lab);
    assert_eq!(plan["changes"], serde_json::json!([]), "{plan}");
    let warnings = plan["warnings"].to_string();
    assert!(
        warnings.contains("tap tap-vm1 is open in a process")
            && warnings.contains("vnet_hdr on (declared off)"),
        "{plan}"
    );
    let check = netconverge_at(&lab.ursa, lab.desired(), &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    assert!(stdout(&check).contains("vnet_hdr on (declared off)"));

    // Its traffic goes on after the second reconcile.
    let done = vm.fetches().len() as u32;
    let fw1 = Lab::forwarded(&lab.fw);
    let next = format!("fetch {} ", done + 2);
    assert_eq!(vm.wait_for(&next, limit), format!("{next}{FW_WAN}"));
    assert!(Lab::forwarded(&lab.fw) > fw1);
    assert!(
        vm.fetches().iter().all(|(_, a)| a == FW_WAN),
        "{}",
        vm.report()
    );

    // Closed (qemu has exited), the tap gets the declared flags back.
    vm.stop();
    let plan = reconcile(&lab);
    assert_eq!(plan["summary"]["change"], 1, "{plan}");
    assert_eq!(lab.tap(), (false, "nobody".into()));
    let again = reconcile(&lab);
    assert_eq!(again["changes"], serde_json::json!([]), "{again}");
}
