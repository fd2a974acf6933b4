//! Multi-ISP providers end to end, as root, in a lab of network namespaces joined by veth:
//!
//! ```text
//!                      internet (203.0.113.10-25, TCP servers)
//!                  wan-wrt /                \ wan-fw
//!     198.51.100.1/30 wan0                    wan0 198.51.100.5/30
//!      wrt (masquerade)                          fw (masquerade, port forward :8080 → ursa)
//!     192.168.1.1 lan0                           lan0 192.168.1.254
//!                    \______ lan (a bridge) ______/
//!                                  |
//!                           eth0 192.168.1.20
//!                  ursa (managed by netconverge: providers, br0 10.0.0.1/24, masquerade)
//!                         vm1-leg |  | vm2-leg     (ports of br0; veth to the VMs)
//!                        vm1 10.0.0.2  vm2 10.0.0.3
//! ```
//!
//! Everything is proved with traffic between the namespaces (TCP connections whose server
//! reports the source address it saw, nft counters on the gateways' WAN legs) as well as with
//! `ip route get` and dumps. Real Shorewall 5.2.8 is the reference: the `lab_real_shorewall_*`
//! tests run it on ursa in a second lab (see `common/shorewall.rs`) and compare its rules,
//! tables, routing answers and traffic with netconverge's from the equivalent YAML, every
//! difference listed with its reason. Every namespace is removed by its guard.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::shorewall;
use common::*;
use serde_json::Value;

/// The internet's server addresses: enough destinations that a balanced default spreads them
/// over both gateways (all 16 on one path has probability 2^-15).
const SERVERS: std::ops::RangeInclusive<u8> = 10..=25;
const WRT_WAN: &str = "198.51.100.1";
const FW_WAN: &str = "198.51.100.5";
const WRT_MAC: &str = "02:00:00:00:01:01";
const FW_MAC: &str = "02:00:00:00:01:fe";

/// Move the calling thread into the namespace `ns` (only this thread: setns is per thread).
fn enter(ns: &str) {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).expect("namespace file");
    // SAFETY: setns on a valid fd; it affects only the calling thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}");
}

/// Run `f` on a thread that has entered the namespace `ns`.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter(&ns);
        f()
    })
    .join()
    .expect("netns thread")
}

/// A TCP server in a namespace that answers every connection with the peer address it saw,
/// stopped (and its namespace reference dropped) on drop.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(ns: &str, port: u16) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let ns = ns.to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            enter(&ns);
            let l = TcpListener::bind(("0.0.0.0", port)).expect("bind");
            l.set_nonblocking(true).expect("nonblocking");
            tx.send(()).expect("ready");
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, peer)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.write_all(peer.ip().to_string().as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(5)).expect("server up");
        Server {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connect from namespace `ns` to `to` (optionally from a source address), with short
/// timeouts; the server's answer is the source address it saw.
fn fetch(ns: &str, from: Option<&str>, to: &str) -> Result<String, String> {
    let to: SocketAddr = to.parse().expect("socket address");
    let from = from.map(str::to_string);
    in_netns(ns, move || {
        let stream = match from {
            None => TcpStream::connect_timeout(&to, Duration::from_secs(2)),
            Some(src) => {
                // std has no bind-before-connect; a raw socket does it.
                connect_from(&src, to)
            }
        };
        let mut s = stream.map_err(|e| format!("connect {to}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out)
            .map_err(|e| format!("read {to}: {e}"))?;
        Ok(out)
    })
}

/// A TCP connection from a given local address, with a 2 s connect timeout.
fn connect_from(src: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let src: std::net::Ipv4Addr = src.parse().expect("v4 source");
    let SocketAddr::V4(to4) = to else {
        panic!("v4 only")
    };
    // SAFETY: plain socket calls on a fd this function owns; sockaddr_in is fully initialised.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let sa = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(ip).to_be(),
            },
            sin_zero: [0; 8],
        };
        let local = sa(src, 0);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, (&raw const local).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&raw const tv).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        let remote = sa(*to4.ip(), to4.port());
        if libc::connect(fd, (&raw const remote).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// Poll `f` until it returns `Some`, for at most `secs` seconds.
fn poll<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > Duration::from_secs(secs) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn nft(ns: &Netns, script: &str) {
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("nft");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft in {}: {}\n{script}",
        ns.name,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sysctl(ns: &Netns, name: &str, value: &str) {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    let o = ns.exec(&format!("echo {value} > {path}"));
    assert!(
        o.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The lab. Field order is drop order: the server threads go before the namespaces.
struct Lab {
    _servers: Vec<Server>,
    internet: Netns,
    wrt: Netns,
    fw: Netns,
    _lan: Netns,
    ursa: Netns,
    vm1: Netns,
    vm2: Netns,
    dir: TempDir,
}

impl Lab {
    fn new() -> Lab {
        let (internet, wrt, fw, lan, ursa, vm1, vm2) = (
            Netns::new(),
            Netns::new(),
            Netns::new(),
            Netns::new(),
            Netns::new(),
            Netns::new(),
            Netns::new(),
        );
        // The LAN: a bridge joining ursa's eth0 and the gateways' LAN legs.
        lan.ip("link add lan type bridge");
        lan.ip("link set lan up");
        // Distinct, fixed MACs on the gateways: both tools tell the two providers of the
        // shared eth0 apart by the gateway's MAC.
        for (ns, name, port, mac) in [
            (&ursa, "eth0", "p-ursa", "02:00:00:00:01:14"),
            (&wrt, "lan0", "p-wrt", WRT_MAC),
            (&fw, "lan0", "p-fw", FW_MAC),
        ] {
            ns.ip(&format!(
                "link add {name} address {mac} type veth peer name {port} netns {}",
                lan.name
            ));
            ns.ip(&format!("link set {name} up"));
            lan.ip(&format!("link set {port} master lan up"));
        }
        // The internet: one leg to each gateway, the servers on its loopback.
        for (gw, leg, inet, g) in [
            (&wrt, "wan-wrt", "198.51.100.2", WRT_WAN),
            (&fw, "wan-fw", "198.51.100.6", FW_WAN),
        ] {
            internet.ip(&format!(
                "link add {leg} type veth peer name wan0 netns {}",
                gw.name
            ));
            internet.ip(&format!("addr add {inet}/30 dev {leg}"));
            internet.ip(&format!("link set {leg} up"));
            gw.ip(&format!("addr add {g}/30 dev wan0"));
            gw.ip("link set wan0 up");
            gw.ip(&format!("route add default via {inet}"));
            sysctl(gw, "net.ipv4.ip_forward", "1");
        }
        for i in SERVERS {
            internet.ip(&format!("addr add 203.0.113.{i}/32 dev lo"));
        }
        wrt.ip("addr add 192.168.1.1/24 dev lan0");
        fw.ip("addr add 192.168.1.254/24 dev lan0");
        // Both gateways masquerade out of their WAN leg and count what they forward there and
        // what they forward from ursa's port 8080 (replies of the port-forwarded service).
        let gateway_nft = |extra: &str| {
            format!(
                "table ip lab {{\n\
                 counter wan {{ }}\n\
                 counter replies {{ }}\n\
                 chain forward {{\n\
                 type filter hook forward priority 0; policy accept;\n\
                 oifname \"wan0\" counter name \"wan\"\n\
                 ip saddr 192.168.1.20 tcp sport 8080 counter name \"replies\"\n\
                 }}\n\
                 chain post {{\n\
                 type nat hook postrouting priority srcnat; policy accept;\n\
                 oifname \"wan0\" masquerade\n\
                 }}\n\
                 {extra}\
                 }}\n"
            )
        };
        nft(&wrt, &gateway_nft(""));
        nft(
            &fw,
            &gateway_nft(
                "chain pre {\n\
                 type nat hook prerouting priority dstnat; policy accept;\n\
                 iifname \"wan0\" tcp dport 8080 dnat to 192.168.1.20:8080\n\
                 }\n",
            ),
        );
        // The VMs: a veth each whose ursa end is a port of br0 (what a tap would be).
        for (vm, leg, addr) in [(&vm1, "vm1-leg", "10.0.0.2"), (&vm2, "vm2-leg", "10.0.0.3")] {
            ursa.ip(&format!(
                "link add {leg} type veth peer name eth0 netns {}",
                vm.name
            ));
            vm.ip(&format!("addr add {addr}/24 dev eth0"));
            vm.ip("link set eth0 up");
            vm.ip("route add default via 10.0.0.1");
        }
        let servers = vec![Server::start(&internet.name, 80)];
        Lab {
            _servers: servers,
            internet,
            wrt,
            fw,
            _lan: lan,
            ursa,
            vm1,
            vm2,
            dir: TempDir::new("providers"),
        }
    }

    /// Write ursa's desired state: its links plus `sections`.
    fn desire(&self, sections: &str) {
        let links = "\
links:
  eth0:
    kind: external
    addresses: [192.168.1.20/24]
  br0:
    kind: bridge
    bridge: { stp: false, forward_delay: 0 }
    addresses: [10.0.0.1/24]
  vm1-leg: { kind: external, master: br0, up: true }
  vm2-leg: { kind: external, master: br0, up: true }
";
        std::fs::write(
            self.dir.path().join("ursa.yaml"),
            format!("{links}{sections}"),
        )
        .unwrap();
    }

    fn run(&self, extra: &[&str]) -> std::process::Output {
        netconverge_at(&self.ursa, self.dir.path(), extra)
    }

    fn reconcile(&self) -> Value {
        let plan = reconcile_json_at(&self.ursa, self.dir.path());
        let failures = &plan["applied"]["failures"];
        assert!(
            failures.is_null() || failures.as_array().unwrap().is_empty(),
            "{plan}"
        );
        plan
    }

    /// `ip ARGS` in ursa with the protocol left out (Shorewall's routes are `proto boot`,
    /// which `ip` does not print; netconverge's carry its own protocol), trailing blanks
    /// trimmed.
    fn ip_lines(&self, args: &str) -> Vec<String> {
        self.ursa
            .ip(args)
            .lines()
            .map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                let mut out = Vec::new();
                let mut skip = false;
                for w in words {
                    if skip {
                        skip = false;
                        continue;
                    }
                    if w == "proto" {
                        skip = true;
                        continue;
                    }
                    out.push(w);
                }
                let indent = if l.starts_with(char::is_whitespace) {
                    "\t"
                } else {
                    ""
                };
                format!("{indent}{}", out.join(" "))
            })
            .collect()
    }

    /// The source address each internet server saw for a connection from `vm`.
    fn seen_from(&self, vm: &Netns) -> Vec<(String, String)> {
        SERVERS
            .map(|i| {
                let dst = format!("203.0.113.{i}");
                let seen = fetch(&vm.name, None, &format!("{dst}:80"))
                    .unwrap_or_else(|e| panic!("{} → {dst}: {e}", vm.name));
                (dst, seen)
            })
            .collect()
    }

    fn counter(ns: &Netns, name: &str) -> u64 {
        let o = ns.exec(&format!("nft list counter ip lab {name}"));
        let text = String::from_utf8_lossy(&o.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        words
            .iter()
            .position(|w| *w == "packets")
            .and_then(|i| words.get(i + 1))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("counter {name} in {}: {text}", ns.name))
    }

    /// ursa's links as the YAML of [`Lab::desire`] declares them, made by hand: for the lab in
    /// which real Shorewall, not netconverge, runs ursa.
    fn links_by_hand(&self) {
        self.ursa.ip("addr add 192.168.1.20/24 dev eth0");
        self.ursa
            .ip("link add br0 type bridge stp_state 0 forward_delay 0");
        self.ursa.ip("addr add 10.0.0.1/24 dev br0");
        self.ursa.ip("link set br0 up");
        for leg in ["vm1-leg", "vm2-leg"] {
            self.ursa.ip(&format!("link set {leg} master br0 up"));
        }
    }

    /// Real Shorewall on ursa with the configuration `v`: ursa's links by hand, then the
    /// compiled script started. The guard removes Shorewall's files outside the namespace.
    fn shorewall(&self, v: Variant) -> shorewall::Started {
        self.links_by_hand();
        let files = v.shorewall_files();
        let borrowed: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
        let config = shorewall::Config::new(&borrowed);
        let compiled = shorewall::compile(config.path()).unwrap_or_else(|e| panic!("{e}"));
        shorewall::start(&compiled, &self.ursa).unwrap_or_else(|e| panic!("{e}"))
    }

    /// For each internet server, what it saw of a connection from `ns` (the source address,
    /// or the error): all servers at once, so that a lab where connections time out costs one
    /// timeout, not sixteen.
    fn try_seen_from(&self, ns: &Netns) -> Vec<(String, Result<String, String>)> {
        let threads: Vec<_> = SERVERS
            .map(|i| {
                let (dst, name) = (format!("203.0.113.{i}"), ns.name.clone());
                std::thread::spawn(move || {
                    let seen = fetch(&name, None, &format!("{dst}:80"));
                    (dst, seen)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("fetch thread"))
            .collect()
    }

    /// Make sure every gateway has answered ARP from ursa, so nothing depends on timing.
    fn wait_lan(&self) {
        for g in ["192.168.1.1", "192.168.1.254"] {
            assert!(
                poll(5, || fetch(&self.ursa.name, None, &format!("{g}:9"))
                    .err()
                    .filter(|e| e.contains("refused"))
                    .map(|_| ()))
                .is_some(),
                "gateway {g} unreachable from ursa"
            );
        }
    }
}

/// The seed's two providers as the issue writes them (fw `loose`: they share eth0's address),
/// ursa's VMs masqueraded out of eth0, and vm2 marked for fw.
const SEED: &str = "\
providers:
  wrt: { number: 1, mark: \"0x1\", interface: eth0, gateway: 192.168.1.1,   balance: 1, track: true }
  fw:  { number: 2, mark: \"0x2\", interface: eth0, gateway: 192.168.1.254, balance: 1, track: true, loose: true }
provider_options: { mask: \"0xff\", default_table: main }
masquerade:
  - { from: 10.0.0.0/24, out: eth0 }
marks:
  - { iif: vm2-leg, mark: \"0x2\" }
";

/// A configuration of the seed's two providers (wrt 1 and fw 2, both on eth0, fw `loose`,
/// both tracked and balanced, the VMs masqueraded, vm2 marked for fw), written both for real
/// Shorewall 5.2.8 and for netconverge.
#[derive(Clone, Copy, Debug)]
struct Variant {
    /// `DUPLICATE main` and `COPY br0` on both providers (`duplicate: main`, `copy: [br0]`).
    duplicate: bool,
    /// USE_DEFAULT_RT=Yes (`default_table: balance_table`); otherwise No (`main`).
    balance_table: bool,
    /// fw listed before wrt in Shorewall's providers file (netconverge orders by number).
    fw_first: bool,
}

impl Variant {
    /// The seed as it is: USE_DEFAULT_RT=No, no DUPLICATE, wrt listed first.
    const SEED: Variant = Variant {
        duplicate: false,
        balance_table: false,
        fw_first: false,
    };

    /// Shorewall's configuration files. The policy accepts everything: what is compared is
    /// routing and marking, not filtering.
    fn shorewall_files(self) -> Vec<(&'static str, String)> {
        let (dup, copy) = if self.duplicate {
            ("main", "br0")
        } else {
            ("-", "-")
        };
        let wrt = format!("wrt 1 0x1 {dup} eth0:192.168.1.20 192.168.1.1 track,balance {copy}\n");
        let fw =
            format!("fw 2 0x2 {dup} eth0:192.168.1.20 192.168.1.254 track,balance,loose {copy}\n");
        let providers = if self.fw_first { fw + &wrt } else { wrt + &fw };
        // Shorewall refuses providers with ROUTE_FILTER=Yes (its packaged default) and
        // USE_DEFAULT_RT=Yes together.
        let rt = if self.balance_table {
            "Yes\nROUTE_FILTER=No"
        } else {
            "No"
        };
        vec![
            (
                "shorewall.conf",
                format!("USE_DEFAULT_RT={rt}\nIP_FORWARDING=On\n"),
            ),
            ("zones", "fw firewall\nnet ipv4\nloc ipv4\n".into()),
            ("interfaces", "?FORMAT 2\nnet eth0 -\nloc br0 -\n".into()),
            ("policy", "all all ACCEPT\n".into()),
            ("providers", providers),
            ("snat", "MASQUERADE 10.0.0.0/24 eth0\n".into()),
            ("mangle", "MARK(0x2):P br0:10.0.0.3 -\n".into()),
        ]
    }

    /// netconverge's sections for the same configuration.
    fn yaml(self) -> String {
        let dup = if self.duplicate {
            ", duplicate: main, copy: [br0]"
        } else {
            ""
        };
        let table = if self.balance_table {
            "balance_table"
        } else {
            "main"
        };
        format!(
            "providers:\n  \
             wrt: {{ number: 1, mark: \"0x1\", interface: eth0, gateway: 192.168.1.1, balance: 1, track: true{dup} }}\n  \
             fw:  {{ number: 2, mark: \"0x2\", interface: eth0, gateway: 192.168.1.254, balance: 1, track: true, loose: true{dup} }}\n\
             provider_options: {{ mask: \"0xff\", default_table: {table} }}\n\
             masquerade:\n  - {{ from: 10.0.0.0/24, out: eth0 }}\n\
             marks:\n  - {{ iif: br0, from: 10.0.0.3/32, mark: \"0x2\" }}\n"
        )
    }
}

/// The routing decisions compared: the balanced default for a few destinations, each mark,
/// ursa's own address, a VM's forwarded packets, and replies to a VM as `track` marks them.
const QUERIES: [&str; 11] = [
    "203.0.113.10",
    "203.0.113.11",
    "203.0.113.12",
    "203.0.113.13",
    "203.0.113.10 mark 0x1",
    "203.0.113.10 mark 0x2",
    "203.0.113.10 from 192.168.1.20",
    "203.0.113.10 from 10.0.0.2 iif br0",
    "203.0.113.11 from 10.0.0.2 iif br0",
    "10.0.0.2 from 203.0.113.10 iif eth0 mark 0x1",
    "10.0.0.2 from 203.0.113.10 iif eth0 mark 0x2",
];

/// Two labs, ursa run by real Shorewall with `v` in one and by netconverge with `yaml` in the
/// other; the Shorewall guard goes before its lab.
fn both_labs(v: Variant, yaml: &str) -> (shorewall::Started, Lab, Lab) {
    let (sw, nc) = (Lab::new(), Lab::new());
    // One multipath hash seed in both ursas, so that the balanced default picks the same
    // gateway per flow in both (kernels before 6.11 have one seed for all namespaces).
    let seed = "/proc/sys/net/ipv4/fib_multipath_hash_seed";
    if std::path::Path::new(seed).exists() {
        for lab in [&sw, &nc] {
            sysctl(&lab.ursa, "net.ipv4.fib_multipath_hash_seed", "2026");
        }
    }
    let started = sw.shorewall(v);
    nc.desire(yaml);
    nc.reconcile();
    sw.wait_lan();
    nc.wait_lan();
    (started, sw, nc)
}

/// Both labs of [`both_labs`] with their routing read, and the realms checked.
struct Compared {
    _started: shorewall::Started,
    sw: Lab,
    nc: Lab,
    /// Real Shorewall's ursa.
    shorewall: shorewall::KernelState,
    /// netconverge's ursa.
    netconverge: shorewall::KernelState,
}

fn compared(v: Variant, yaml: &str) -> Compared {
    let (started, sw, nc) = both_labs(v, yaml);
    let shorewall = shorewall::KernelState::read(&sw.ursa, &QUERIES);
    let netconverge = shorewall::KernelState::read(&nc.ursa, &QUERIES);
    assert_realms(&shorewall, &netconverge);
    Compared {
        _started: started,
        sw,
        nc,
        shorewall,
        netconverge,
    }
}

/// Where one tool's lines differ from the other's, on purpose: a line (or the start of one,
/// for answers that depend on the multipath hash) that only one side has, and why.
struct Deviation {
    /// `true`: only real Shorewall has the line; `false`: only netconverge.
    shorewall_only: bool,
    /// The line, or its start up to the `: ` of an answer.
    line: &'static str,
    /// Why netconverge differs.
    why: &'static str,
}

/// Shorewall's host route to each gateway in main (its `hostroute` default).
const HOST_ROUTES_IN_MAIN: [Deviation; 2] = [
    Deviation {
        shorewall_only: true,
        line: "route table 254: 192.168.1.1 dev eth0 scope link src 192.168.1.20",
        why: "Shorewall's hostroute: a host route to the gateway in main. netconverge requires \
              the gateway in a subnet of the interface, whose subnet route already reaches it \
              (same answers, same traffic), and leaves main to its owner",
    },
    Deviation {
        shorewall_only: true,
        line: "route table 254: 192.168.1.254 dev eth0 scope link src 192.168.1.20",
        why: "as for 192.168.1.1",
    },
];

/// With DUPLICATE: Shorewall's copy of main holds the host routes in main at the time.
const COPIED_HOST_ROUTE: [Deviation; 1] = [Deviation {
    shorewall_only: true,
    line: "route table 2: 192.168.1.1 dev eth0 scope link src 192.168.1.20",
    why: "fw's DUPLICATE copies main as it is when fw starts, wrt's host route in main \
          included (wrt's table, copied before fw's host route existed, has no \
          192.168.1.254): netconverge copies main's declared routes only",
}];

/// wrt's from-rule, which real Shorewall's loose fw deletes when it starts after wrt.
const FROM_RULE: [Deviation; 3] = [
    Deviation {
        shorewall_only: false,
        line: "rule 20000: from 192.168.1.20 lookup 1",
        why: "the non-loose provider's from-rule, as shorewall-providers(5) describes `loose`; \
              Shorewall's loose fw runs `ip rule del from 192.168.1.20` at its start, which \
              deletes wrt's rule when fw is listed after wrt (and not when listed before: an \
              accident of order netconverge does not reproduce; make both loose for no rule)",
    },
    Deviation {
        shorewall_only: false,
        line: "get 203.0.113.10 from 192.168.1.20: via 192.168.1.1 dev eth0 table 1",
        why: "the from-rule: ursa's own address leaves through wrt",
    },
    Deviation {
        shorewall_only: true,
        line: "get 203.0.113.10 from 192.168.1.20: ",
        why: "without the from-rule ursa's own address follows the balanced default",
    },
];

/// Compare `sw`'s state (realms left out) with `nc`'s: every difference is one of
/// `deviations`, and each deviation is a difference.
fn assert_same_but(
    sw: &shorewall::KernelState,
    nc: &shorewall::KernelState,
    deviations: &[&[Deviation]],
) {
    let (only_sw, only_nc) = sw.without_realms().diff(nc);
    let deviations: Vec<&Deviation> = deviations.iter().flat_map(|d| d.iter()).collect();
    let explained = |line: &str, shorewall_only: bool| {
        deviations
            .iter()
            .find(|d| d.shorewall_only == shorewall_only && line.starts_with(d.line))
    };
    let unexplained: Vec<String> = only_sw
        .iter()
        .filter(|l| explained(l, true).is_none())
        .map(|l| format!("only Shorewall: {l}"))
        .chain(
            only_nc
                .iter()
                .filter(|l| explained(l, false).is_none())
                .map(|l| format!("only netconverge: {l}")),
        )
        .collect();
    assert!(
        unexplained.is_empty(),
        "unexplained differences:\n{}",
        unexplained.join("\n")
    );
    for d in deviations {
        let side = if d.shorewall_only { &only_sw } else { &only_nc };
        assert!(
            side.iter().any(|l| l.starts_with(d.line)),
            "deviation no longer seen ({}): {}",
            d.why,
            d.line
        );
    }
}

/// Real Shorewall tags a shared interface's provider routes and balanced nexthops with
/// `realm N`; netconverge puts no realm anywhere. Shorewall's only use of them is its
/// `-m realm` SNAT by provider on a shared interface, which netconverge does not have (its
/// masquerade is by outgoing interface, and the providers share the interface's address).
fn assert_realms(sw: &shorewall::KernelState, nc: &shorewall::KernelState) {
    for n in [1, 2] {
        let table = sw.table(n);
        assert!(!table.is_empty());
        for r in &table {
            assert!(r.contains(&format!(" realm {n} ")), "table {n}: {r}");
        }
    }
    let balanced: Vec<&String> = sw.routes.iter().filter(|r| r.contains("nexthop")).collect();
    assert_eq!(balanced.len(), 1, "{balanced:?}");
    assert!(
        balanced[0].contains("via 192.168.1.1 dev eth0 realm 1")
            && balanced[0].contains("via 192.168.1.254 dev eth0 realm 2"),
        "{}",
        balanced[0]
    );
    assert!(!nc.lines().iter().any(|l| l.contains("realm")), "{nc:?}");
}

/// The gateway (its WAN address) each server saw, per destination; panics on a failure.
fn gateways_seen(lab: &Lab, ns: &Netns) -> Vec<(String, String)> {
    lab.try_seen_from(ns)
        .into_iter()
        .map(|(d, r)| {
            let seen = r.unwrap_or_else(|e| panic!("{} → {d}: {e}", ns.name));
            (d, seen)
        })
        .collect()
}

fn count(seen: &[(String, String)], wan: &str) -> usize {
    seen.iter().filter(|(_, s)| s == wan).count()
}

/// Traffic in both labs where the VMs work under both tools: vm1's destinations leave through
/// the same gateway in both (the balanced default, one hash seed), using both; vm2 (marked
/// 0x2) only through fw; ursa's own connections balance under Shorewall (no from-rule) and
/// all leave through wrt under netconverge (its from-rule). Returns Shorewall's own split.
fn assert_same_vm_traffic(sw: &Lab, nc: &Lab) -> (usize, usize) {
    let (sw1, nc1) = (gateways_seen(sw, &sw.vm1), gateways_seen(nc, &nc.vm1));
    assert_eq!(sw1, nc1, "vm1 per destination");
    assert!(
        count(&nc1, WRT_WAN) > 0 && count(&nc1, FW_WAN) > 0,
        "{nc1:?}"
    );
    for lab in [sw, nc] {
        let vm2 = gateways_seen(lab, &lab.vm2);
        assert_eq!(count(&vm2, FW_WAN), SERVERS.count(), "{vm2:?}");
    }
    let own_sw = gateways_seen(sw, &sw.ursa);
    let own_nc = gateways_seen(nc, &nc.ursa);
    assert_eq!(count(&own_nc, WRT_WAN), SERVERS.count(), "{own_nc:?}");
    let split = (count(&own_sw, WRT_WAN), count(&own_sw, FW_WAN));
    assert!(split.0 > 0 && split.1 > 0, "{own_sw:?}");
    split
}

#[test]
fn lab_real_shorewall_with_duplicate_routes_as_netconverge_does_but_for_listed_deviations() {
    let test =
        "lab_real_shorewall_with_duplicate_routes_as_netconverge_does_but_for_listed_deviations";
    if !shorewall::installed_or_skip(test) {
        return;
    }
    let v = Variant {
        duplicate: true,
        ..Variant::SEED
    };
    let c = compared(v, &v.yaml());
    let (a, b) = (&c.shorewall, &c.netconverge);
    assert_same_but(
        a,
        b,
        &[&HOST_ROUTES_IN_MAIN, &FROM_RULE, &COPIED_HOST_ROUTE],
    );
    // Replies that track marks find the VMs through the copied br0 route in both.
    for l in [&a.without_realms(), b] {
        assert!(
            l.answers.contains(
                &"get 10.0.0.2 from 203.0.113.10 iif eth0 mark 0x1: dev br0 table 1".to_string()
            ),
            "{l:?}"
        );
    }
    let (wrt, fw) = assert_same_vm_traffic(&c.sw, &c.nc);
    eprintln!("ursa's own connections under real Shorewall: {wrt} via wrt, {fw} via fw");
}

#[test]
fn lab_real_shorewall_use_default_rt_routes_as_netconverge_balance_table_but_for_listed_deviations()
{
    let test = "lab_real_shorewall_use_default_rt_routes_as_netconverge_balance_table_but_for_listed_deviations";
    if !shorewall::installed_or_skip(test) {
        return;
    }
    let v = Variant {
        balance_table: true,
        ..Variant::SEED
    };
    let c = compared(v, &v.yaml());
    let (a, b) = (&c.shorewall, &c.netconverge);
    let main_rule = [Deviation {
        shorewall_only: false,
        line: "rule 32766: from all lookup 254",
        why: "USE_DEFAULT_RT=Yes deletes the kernel's rule 32766 (main is looked up at 999); \
              netconverge leaves the kernel's default rule alone: a second lookup of main \
              after 999 finds nothing the first did not (same answers, same traffic), and \
              removing the providers needs no rule restored",
    }];
    assert_same_but(a, b, &[&HOST_ROUTES_IN_MAIN, &FROM_RULE, &main_rule]);
    assert!(
        a.rules
            .contains(&"rule 999: from all lookup 254".to_string()),
        "{a:?}"
    );
    assert!(
        a.rules
            .contains(&"rule 32765: from all lookup 250".to_string()),
        "{a:?}"
    );
    let (wrt, fw) = assert_same_vm_traffic(&c.sw, &c.nc);
    eprintln!("ursa's own connections under real Shorewall: {wrt} via wrt, {fw} via fw");
}

/// The seed as it is (no DUPLICATE, USE_DEFAULT_RT=No): real Shorewall's `track` marks the
/// replies of the VMs' outgoing connections too, routes them by a provider table without the
/// VMs' subnet, and every VM connection times out; netconverge's track marks new connections
/// only and the same connections work.
#[test]
fn lab_real_shorewall_seed_track_breaks_the_vms_where_netconverge_works() {
    let test = "lab_real_shorewall_seed_track_breaks_the_vms_where_netconverge_works";
    if !shorewall::installed_or_skip(test) {
        return;
    }
    let c = compared(Variant::SEED, &Variant::SEED.yaml());
    let (sw, nc, b) = (&c.sw, &c.nc, &c.netconverge);
    assert_same_but(&c.shorewall, b, &[&HOST_ROUTES_IN_MAIN, &FROM_RULE]);
    // A reply marked 0x1 is routed back out to wrt by both kernels: what differs is only
    // whether it gets the mark.
    let marked_reply =
        "get 10.0.0.2 from 203.0.113.10 iif eth0 mark 0x1: via 192.168.1.1 dev eth0 table 1";
    assert!(b.answers.contains(&marked_reply.to_string()), "{b:?}");
    let wrt_before = Lab::counter(&sw.wrt, "wan");
    for vm in [&sw.vm1, &sw.vm2] {
        let seen = sw.try_seen_from(vm);
        let failed = seen.iter().filter(|(_, r)| r.is_err()).count();
        assert_eq!(failed, SERVERS.count(), "under real Shorewall: {seen:?}");
    }
    // The connections did leave (wrt forwarded them): it is their replies that went astray.
    assert!(Lab::counter(&sw.wrt, "wan") > wrt_before);
    let vm1 = gateways_seen(nc, &nc.vm1);
    assert!(
        count(&vm1, WRT_WAN) > 0 && count(&vm1, FW_WAN) > 0,
        "{vm1:?}"
    );
    assert_eq!(count(&gateways_seen(nc, &nc.vm2), FW_WAN), SERVERS.count());
    // ursa's own connections: balanced under Shorewall (its loose fw deleted wrt's
    // from-rule), all through wrt under netconverge.
    let own_sw = gateways_seen(sw, &sw.ursa);
    let own_nc = gateways_seen(nc, &nc.ursa);
    eprintln!(
        "ursa's own connections: real Shorewall {} via wrt, {} via fw; netconverge {} via wrt",
        count(&own_sw, WRT_WAN),
        count(&own_sw, FW_WAN),
        count(&own_nc, WRT_WAN)
    );
    assert!(
        count(&own_sw, WRT_WAN) > 0 && count(&own_sw, FW_WAN) > 0,
        "{own_sw:?}"
    );
    assert_eq!(count(&own_nc, WRT_WAN), SERVERS.count(), "{own_nc:?}");
}

/// What real Shorewall's script actually makes of the seed (wrt listed first) is what
/// netconverge makes with both providers `loose`: no from-rule, ursa's own connections
/// balanced; only the host routes in main (and the realms) differ.
#[test]
fn lab_real_shorewall_seed_is_netconverge_with_both_providers_loose() {
    let test = "lab_real_shorewall_seed_is_netconverge_with_both_providers_loose";
    if !shorewall::installed_or_skip(test) {
        return;
    }
    let v = Variant {
        duplicate: true,
        ..Variant::SEED
    };
    let yaml = v.yaml();
    let both_loose = yaml.replacen("track: true,", "track: true, loose: true,", 1);
    assert_ne!(yaml, both_loose);
    let c = compared(v, &both_loose);
    assert_same_but(
        &c.shorewall,
        &c.netconverge,
        &[&HOST_ROUTES_IN_MAIN, &COPIED_HOST_ROUTE],
    );
    let own = gateways_seen(&c.nc, &c.nc.ursa);
    assert!(
        count(&own, WRT_WAN) > 0 && count(&own, FW_WAN) > 0,
        "{own:?}"
    );
}

/// Real Shorewall's from-rule depends on the providers' order: with fw (loose) listed first,
/// its cleanup runs before wrt adds its rule, and the rule stays — the rule netconverge makes
/// whatever the order — and ursa's own connections all leave through wrt.
#[test]
fn lab_real_shorewall_keeps_the_from_rule_when_the_loose_provider_comes_first() {
    let test = "lab_real_shorewall_keeps_the_from_rule_when_the_loose_provider_comes_first";
    if !shorewall::installed_or_skip(test) {
        return;
    }
    let lab = Lab::new();
    let host_tables = std::fs::read_to_string("/etc/iproute2/rt_tables").unwrap();
    let started = lab.shorewall(Variant {
        fw_first: true,
        ..Variant::SEED
    });
    let state = shorewall::KernelState::read(&lab.ursa, &[]);
    assert!(
        state
            .rules
            .contains(&"rule 20000: from 192.168.1.20 lookup 1".to_string()),
        "{state:?}"
    );
    let own = gateways_seen(&lab, &lab.ursa);
    assert_eq!(count(&own, WRT_WAN), SERVERS.count(), "{own:?}");
    // The script named its tables in the namespace's own rt_tables, not in the host's; the
    // guard removes the namespace's copy.
    let private = format!("/etc/netns/{}/iproute2", lab.ursa.name);
    let tables = std::fs::read_to_string(format!("{private}/rt_tables")).unwrap();
    assert!(
        tables.contains("1\twrt") && tables.contains("2\tfw"),
        "{tables}"
    );
    assert_eq!(
        std::fs::read_to_string("/etc/iproute2/rt_tables").unwrap(),
        host_tables
    );
    drop(started);
    assert!(!std::path::Path::new(&private).exists());
}

#[test]
fn lab_providers_route_mark_and_masquerade() {
    if !root_or_skip("lab_providers_route_mark_and_masquerade") {
        return;
    }
    let lab = Lab::new();
    lab.desire(SEED);

    // The dry run lists what each provider produced, labelled with the provider.
    let dry = lab.run(&["reconcile", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let text = stdout(&dry);
    for line in [
        "+ add route default via 192.168.1.1 dev eth0 table 1  (provider wrt)",
        "+ add route 192.168.1.254/32 dev eth0 table 2  (provider fw)",
        "+ add rule 10001: from all fwmark 0x2/0xff lookup 2  (provider fw)",
        "+ add rule 20000: from 192.168.1.20/32 lookup 1  (provider wrt)",
        "+ add route default nexthops via 192.168.1.1 dev eth0 weight 1 via 192.168.1.254 dev eth0 weight 1  (providers wrt, fw (balance))",
        "+ add firewall inet netconverge  (providers, marks, masquerade)",
    ] {
        assert!(text.contains(line), "dry run lacks `{line}`:\n{text}");
    }

    let plan = lab.reconcile();
    lab.wait_lan();
    assert!(plan["summary"]["add"].as_u64().unwrap() > 10, "{plan}");

    // Routing decisions, asked of the kernel.
    assert_eq!(
        lab.ursa.route_get("203.0.113.10 mark 0x1")["gateway"],
        "192.168.1.1"
    );
    assert_eq!(
        lab.ursa.route_get("203.0.113.10 mark 0x2")["gateway"],
        "192.168.1.254"
    );
    // from-rule of wrt (fw is loose): ursa's own address leaves through wrt.
    assert_eq!(
        lab.ursa.route_get("203.0.113.10 from 192.168.1.20")["gateway"],
        "192.168.1.1"
    );
    // Sysctls the providers need.
    for (path, want) in [
        ("/proc/sys/net/ipv4/ip_forward", "1"),
        ("/proc/sys/net/ipv4/conf/all/rp_filter", "2"),
        ("/proc/sys/net/ipv4/conf/eth0/rp_filter", "2"),
    ] {
        let o = lab.ursa.exec(&format!("cat {path}"));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), want, "{path}");
    }
    // Our tables, and no other.
    let tables = String::from_utf8_lossy(&lab.ursa.exec("nft list tables").stdout).into_owned();
    let mut tables: Vec<&str> = tables.lines().collect();
    tables.sort_unstable();
    assert_eq!(
        tables,
        ["table bridge netconverge", "table inet netconverge"]
    );
    // The bridge table marks at bridge prerouting priority −200, before the frame reaches
    // the IP layer: `nft list` names that priority `filter` in the bridge family (where
    // filter is −200, not 0 as in inet); `nft -y` prints the number.
    let bridge = |flags: &str| {
        let o = lab
            .ursa
            .exec(&format!("nft {flags} list table bridge netconverge"));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(bridge("").contains("type filter hook prerouting priority filter;"));
    assert!(bridge("-y").contains("type filter hook prerouting priority -200;"));
    // Both gateways' MACs were resolved into the track sets.
    let listing = String::from_utf8_lossy(&lab.ursa.exec("nft list table inet netconverge").stdout)
        .into_owned();
    assert_eq!(listing.matches("elements = {").count(), 2, "{listing}");

    // vm2 is marked 0x2 at its bridge port: every connection leaves through fw, masqueraded
    // twice (by ursa, then by fw), and wrt's WAN leg sees none of it.
    let wrt_before = Lab::counter(&lab.wrt, "wan");
    let seen2 = lab.seen_from(&lab.vm2);
    assert!(
        seen2.iter().all(|(_, s)| s == FW_WAN),
        "vm2 must leave through fw: {seen2:?}"
    );
    assert_eq!(
        Lab::counter(&lab.wrt, "wan"),
        wrt_before,
        "vm2 traffic crossed wrt"
    );
    assert!(Lab::counter(&lab.fw, "wan") >= 16 * 3);

    // vm1 is not marked: the balanced default spreads its destinations over both gateways,
    // each exactly where the kernel's route lookup for that flow says.
    let seen1 = lab.seen_from(&lab.vm1);
    for (dst, seen) in &seen1 {
        let want = match lab.ursa.route_get(&format!("{dst} from 10.0.0.2 iif br0"))["gateway"]
            .as_str()
            .unwrap()
        {
            "192.168.1.1" => WRT_WAN,
            "192.168.1.254" => FW_WAN,
            other => panic!("unexpected gateway {other}"),
        };
        assert_eq!(seen, want, "vm1 → {dst}");
    }
    assert!(
        seen1.iter().any(|(_, s)| s == WRT_WAN) && seen1.iter().any(|(_, s)| s == FW_WAN),
        "vm1's flows should use both gateways: {seen1:?}"
    );

    // A second reconcile is a no-op: no change planned, nothing applied, the tables untouched.
    let again = lab.reconcile();
    assert_eq!(
        again["summary"],
        serde_json::json!({"add": 0, "change": 0, "remove": 0}),
        "{again}"
    );
    assert!(again.get("applied").is_none(), "{again}");
    let listing_again =
        String::from_utf8_lossy(&lab.ursa.exec("nft list table inet netconverge").stdout)
            .into_owned();
    assert_eq!(listing, listing_again);
    let check = lab.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));

    // Someone edits our table: check reports it, reconcile restores it.
    let o = lab
        .ursa
        .exec("nft flush chain inet netconverge postrouting");
    assert!(o.status.success());
    let check = lab.run(&["check"]);
    assert_eq!(check.status.code(), Some(1), "{}", stdout(&check));
    assert!(
        stdout(&check).contains("firewall inet netconverge")
            && stdout(&check).contains("changed outside netconverge"),
        "{}",
        stdout(&check)
    );
    lab.reconcile();
    assert_eq!(lab.run(&["check"]).status.code(), Some(0));
    assert!(lab.seen_from(&lab.vm2).iter().all(|(_, s)| s == FW_WAN));
}

#[test]
fn lab_track_sends_replies_back_through_the_provider_they_came_from() {
    if !root_or_skip("lab_track_sends_replies_back_through_the_provider_they_came_from") {
        return;
    }
    let lab = Lab::new();
    let _service = Server::start(&lab.ursa.name, 8080);
    // Only wrt is balanced, and wrt's from-rule catches ursa's own address: without tracking,
    // every reply of ursa leaves through wrt.
    let desired = |fw_track: bool| {
        format!(
            "providers:\n  \
             wrt: {{ number: 1, mark: \"0x1\", interface: eth0, gateway: 192.168.1.1, balance: 1, track: true }}\n  \
             fw:  {{ number: 2, mark: \"0x2\", interface: eth0, gateway: 192.168.1.254, loose: true, track: {fw_track} }}\n"
        )
    };
    lab.desire(&desired(false));
    lab.reconcile();
    lab.wait_lan();
    let via_fw = format!("{FW_WAN}:8080");
    let wrt_replies = Lab::counter(&lab.wrt, "replies");
    // fw forwards the connection to ursa, ursa answers through wrt, which masquerades the
    // answer: the internet never sees it come from fw, and the connection fails.
    let untracked = fetch(&lab.internet.name, Some("203.0.113.10"), &via_fw);
    assert!(
        untracked.is_err(),
        "without track the reply should go astray: {untracked:?}"
    );
    assert!(
        Lab::counter(&lab.wrt, "replies") > wrt_replies,
        "the reply should have crossed wrt"
    );

    lab.desire(&desired(true));
    let plan = lab.reconcile();
    assert_eq!(
        plan["summary"]["change"], 1,
        "only the firewall changes: {plan}"
    );
    let wrt_replies = Lab::counter(&lab.wrt, "replies");
    let fw_replies = Lab::counter(&lab.fw, "replies");
    for _ in 0..5 {
        let seen = fetch(&lab.internet.name, Some("203.0.113.10"), &via_fw)
            .expect("with track the connection through fw works");
        // ursa saw the internet client itself (fw forwards without masquerading inward).
        assert_eq!(seen, "203.0.113.10");
    }
    assert_eq!(
        Lab::counter(&lab.wrt, "replies"),
        wrt_replies,
        "a reply crossed wrt"
    );
    assert!(Lab::counter(&lab.fw, "replies") >= fw_replies + 5);
}

#[test]
fn lab_provider_down_and_removed_leaves_a_working_single_default() {
    if !root_or_skip("lab_provider_down_and_removed_leaves_a_working_single_default") {
        return;
    }
    let lab = Lab::new();
    lab.desire(SEED);
    lab.reconcile();
    lab.wait_lan();
    assert_eq!(
        lab.ursa.route_get("203.0.113.10 mark 0x1")["gateway"],
        "192.168.1.1"
    );

    // wrt dies, and the operator drops it from the providers.
    lab.wrt.ip("link set lan0 down");
    lab.desire(
        "providers:\n  fw: { number: 2, mark: \"0x2\", interface: eth0, gateway: 192.168.1.254, balance: 1, track: true }\n\
         masquerade:\n  - { from: 10.0.0.0/24, out: eth0 }\n",
    );
    let plan = lab.reconcile();
    let removed: Vec<String> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "remove")
        .map(|c| {
            format!(
                "{} {}",
                c["kind"].as_str().unwrap(),
                c["id"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        removed,
        [
            "route default via 192.168.1.1 dev eth0 table 1",
            "route 192.168.1.1/32 dev eth0 table 1",
            "rule 10000: from all fwmark 0x1/0xff lookup 1",
        ],
        "{plan}"
    );
    assert_eq!(
        lab.ip_lines("route show table main")[0],
        "default via 192.168.1.254 dev eth0"
    );
    assert!(lab.ursa.ip("route show table 1").trim().is_empty());
    // fw, no longer loose-by-necessity, now has the from-rule; and the VMs still get out.
    assert!(lab
        .ip_lines("rule show")
        .contains(&"20000: from 192.168.1.20 lookup 2".to_string()));
    assert!(lab.seen_from(&lab.vm1).iter().all(|(_, s)| s == FW_WAN));
    let again = lab.reconcile();
    assert!(again.get("applied").is_none(), "{again}");
}

#[test]
fn lab_removing_providers_removes_exactly_what_they_added() {
    if !root_or_skip("lab_removing_providers_removes_exactly_what_they_added") {
        return;
    }
    let lab = Lab::new();
    // A foreign firewall (as Shorewall would have) and foreign routing objects.
    nft(
        &lab.ursa,
        "table ip shorewall {\n chain input {\n type filter hook input priority 0; policy accept;\n tcp dport 2222 accept comment \"ssh\"\n }\n}\n",
    );
    lab.ursa
        .ip("route add 198.51.100.0/24 via 192.168.1.9 dev eth0 onlink table 200");
    lab.ursa
        .ip("rule add pref 500 from 192.168.7.0/24 lookup 200");
    // Without any provider section first, for the baseline.
    lab.desire("");
    lab.reconcile();
    let dump = |lab: &Lab| {
        (
            lab.ursa.ip_json("-4 route show table all"),
            lab.ursa.ip_json("-4 rule show"),
            String::from_utf8_lossy(&lab.ursa.exec("nft list ruleset").stdout).into_owned(),
        )
    };
    let baseline = dump(&lab);
    assert!(baseline.2.contains("table ip shorewall"));

    lab.desire(SEED);
    lab.reconcile();
    assert_ne!(dump(&lab), baseline);

    lab.desire("");
    let plan = lab.reconcile();
    let removed = plan["summary"]["remove"].as_u64().unwrap();
    // 2 routes per provider, the balanced default, 2 fwmark rules, 1 from-rule, the firewall.
    assert_eq!(removed, 9, "{plan}");
    let after = dump(&lab);
    assert_eq!(after.0, baseline.0, "routes differ");
    assert_eq!(after.1, baseline.1, "rules differ");
    assert_eq!(after.2, baseline.2, "nftables ruleset differs");
}

// ---------------------------------------------------------------------------------------------
// Without root: the example file loads and expands as documented.

#[test]
fn the_providers_example_validates() {
    let example = repo().join("examples/providers.yaml");
    let out = netconverge(&["-d", example.to_str().unwrap(), "validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("program `nft` is installed (Debian package `nftables`)"));
}

#[test]
fn every_provider_error_of_a_file_is_reported() {
    let src = "\
links:
  eth0: { kind: external, addresses: [192.168.1.20/24] }
providers:
  wrt: { number: 0, mark: \"0x100\", interface: eth0, gateway: 192.168.1.1 }
  fw: { number: 2, interface: eth0, gateway: 10.1.1.1, balance: 0 }
route_rules:
  - { from: 10.0.0.0/25, provider: nope, priority: 1000 }
  - { from: 10.0.0.0/26, provider: fw, priority: 1001 }
masquerade:
  - { from: 10.0.0.5/24, out: eth0 }
marks:
  - { iif: tap-centos, provider: wrt, mark: \"0x1\" }
";
    let err =
        netconverge::desired::load_str(src, std::path::Path::new("isp.yaml")).expect_err("invalid");
    let positions: Vec<(u32, u32)> = err.0.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(
        positions,
        [
            (4, 18),
            (4, 27),
            (5, 46),
            (5, 65),
            (7, 36),
            (10, 13),
            (12, 34)
        ],
        "{err}"
    );
}

#[test]
fn providers_and_options_declared_in_two_files_name_both_places() {
    let err = netconverge::desired::load_path(&repo().join("tests/data/invalid-merge/providers"))
        .expect_err("duplicates");
    let shown = err.to_string();
    assert_eq!(err.0.len(), 2, "{shown}");
    assert!(
        shown.contains("b.yaml:2:3: provider wrt is declared twice: "),
        "{shown}"
    );
    assert!(shown.contains("a.yaml:4:3 and "), "{shown}");
    assert!(
        shown.contains("b.yaml:4:19: provider_options is declared twice"),
        "{shown}"
    );
}

#[test]
fn the_example_expands_with_labels_and_provider_table_names() {
    let d = netconverge::desired::load_path(&repo().join("examples/providers.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.tables.get("wrt"), Some(&1));
    assert_eq!(d.tables.get("fw"), Some(&2));
    let labels: std::collections::BTreeSet<&str> =
        d.state.origins.values().map(String::as_str).collect();
    assert_eq!(
        labels.into_iter().collect::<Vec<_>>(),
        [
            "provider fw",
            "provider wrt",
            "providers",
            "providers wrt, fw (balance)",
            "providers, marks, masquerade",
            "route_rules: provider wrt",
        ]
    );
    // Every generated route and rule is labelled, and every label names an object.
    for r in d.state.routes.values() {
        assert!(
            d.state
                .origins
                .contains_key(&reconcilers::model::object::ObjectRef::route(r)),
            "{r:?}"
        );
    }
    assert_eq!(d.state.rules.len(), 4);
    let fw = d.state.firewall.as_ref().expect("firewall");
    assert!(
        fw.ruleset.contains("table bridge netconverge"),
        "{}",
        fw.ruleset
    );
    // `show` reads the expansion back as plain routes and rules that load without providers.
    let shown = netconverge::desired::render_state(&d.state, &d.tables);
    assert!(!shown.contains("providers:"));
    let again = netconverge::desired::load_str(&shown, std::path::Path::new("shown.yaml"))
        .unwrap_or_else(|e| panic!("{e}\n{shown}"));
    assert_eq!(again.state.routes, d.state.routes);
    assert_eq!(again.state.rules, d.state.rules);
}

/// `optional`: a provider whose interface is missing is left out of the plan, with a warning,
/// and the balanced default keeps only the other provider. Planned on the fake kernel.
#[test]
fn an_optional_provider_without_its_interface_is_left_out() {
    use reconcilers::kernel::fake::FakeKernel;
    use reconcilers::model::{Address, Link, LinkKind, State};
    let src = "\
links:
  eth0: { kind: external, addresses: [192.168.1.20/24] }
providers:
  wrt: { number: 1, interface: eth0, gateway: 192.168.1.1, balance: 1 }
  isp: { number: 3, interface: ppp0, gateway: 203.0.113.1, local: 203.0.113.2, balance: 2, optional: true }
route_rules:
  - { from: 10.0.0.0/25, provider: isp, priority: 1000 }
";
    let d = netconverge::desired::load_str(src, std::path::Path::new("isp.yaml")).unwrap();
    let mut host = State::default();
    let mut eth0 = Link::new("eth0", LinkKind::External);
    eth0.up = Some(true);
    host.add_link(eth0);
    host.add_address(Address {
        link: "eth0".into(),
        address: "192.168.1.20/24".parse().unwrap(),
        owned: false,
        primary: false,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let plan_ids = |host: State| {
        let mut k = FakeKernel::new(host);
        let p = rt
            .block_on(netconverge::pass::pass(
                &mut k,
                &d,
                netconverge::pass::Mode::DryRun,
                false,
            ))
            .unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<String> = p.plan.changes.iter().map(|c| c.object.id.clone()).collect();
        (ids, p.plan.warnings)
    };
    let (ids, warnings) = plan_ids(host.clone());
    assert!(
        ids.contains(&"default via 192.168.1.1 dev eth0".to_string()),
        "{ids:?}"
    );
    assert!(
        !ids.iter()
            .any(|i| i.contains("table 3") || i.contains("lookup 3")),
        "{ids:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("provider isp is optional and ppp0 is missing")),
        "{warnings:?}"
    );
    // With ppp0 up, isp is back: its table, its rule and a share of the balanced default.
    let mut ppp0 = Link::new("ppp0", LinkKind::External);
    ppp0.up = Some(true);
    host.add_link(ppp0);
    let (ids, warnings) = plan_ids(host);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(
        ids.contains(&"default via 203.0.113.1 dev ppp0 table 3".to_string()),
        "{ids:?}"
    );
    assert!(
        ids.contains(&"1000: from 10.0.0.0/25 lookup 3".to_string()),
        "{ids:?}"
    );
    assert!(
        ids.contains(
            &"default nexthops via 192.168.1.1 dev eth0 weight 1 via 203.0.113.1 dev ppp0 weight 2"
                .to_string()
        ),
        "{ids:?}"
    );
}
