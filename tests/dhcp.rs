//! DHCP and DNS for the VMs (`dhcp:`): the desired-state side without privileges, and, as root,
//! the ursa example with `desired/ursa-dhcp.yaml` reconciled in a namespace whose br0 serves
//! "VMs" — each a namespace of its own, its `eth0` a veth whose other end is a port of br0 (a
//! stand-in for a tap) — that ask for leases with busybox udhcpc and resolve each other's names
//! with busybox nslookup.
//!
//! Every dnsmasq a test starts is killed when the test ends, even on panic: deleting a
//! namespace does not kill the processes in it, so [`Ursa`] holds a guard that kills the
//! instances named by the pid files of the namespace's state directory, then any process left
//! in the test's namespaces, and removes the state directory.

mod common;

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use netconverge::desired::{load_path, load_str, render_state};

/// The state directory netconverge keeps a namespace's dnsmasq files in.
fn state_dir(ns: &str) -> PathBuf {
    PathBuf::from("/run/netconverge/netns").join(ns)
}

/// The pid of the live dnsmasq of br0 in `ns`: the pid file's number, if that process is not
/// a zombie and was started with our configuration file.
fn dnsmasq_pid(ns: &str) -> Option<i32> {
    let dir = state_dir(ns);
    let pid: i32 = fs::read_to_string(dir.join("dnsmasq-br0.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    alive_instance(pid, ns).then_some(pid)
}

/// Is `pid` a live dnsmasq using a configuration file of `ns`'s state directory?
fn alive_instance(pid: i32, ns: &str) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let zombie = stat
        .rsplit_once(')')
        .is_none_or(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']));
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let want = format!("--conf-file={}/", state_dir(ns).display());
    !zombie && String::from_utf8_lossy(&cmdline).contains(&want)
}

/// Wait (bounded) until `pid` is no longer a live instance of `ns`.
fn wait_gone(pid: i32, ns: &str) -> bool {
    poll(Duration::from_secs(10), || !alive_instance(pid, ns))
}

/// Kills what a test left running in its namespaces, then removes the dnsmasq state directory.
/// Declared before the namespaces it covers, so it runs while they still exist.
struct Reaper {
    namespaces: Vec<String>,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let dir = state_dir(ns);
            for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !(name.starts_with("dnsmasq-") && name.ends_with(".pid")) {
                    continue;
                }
                let pid = fs::read_to_string(entry.path())
                    .ok()
                    .and_then(|p| p.trim().parse::<i32>().ok());
                if let Some(pid) = pid.filter(|p| alive_instance(*p, ns)) {
                    // SAFETY: kill(2) on a dnsmasq this test's namespace started.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    wait_gone(pid, ns);
                }
            }
            // Anything else still in the namespace (a udhcpc past its deadline).
            kill_processes_in(ns);
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

/// A VM: a namespace whose `eth0` is the peer of a br0 port in ursa.
struct Vm {
    ns: Netns,
    /// The br0 port in ursa.
    port: String,
}

/// What a DHCP client was given.
#[derive(Debug, Default)]
struct Lease {
    ip: String,
    router: String,
    dns: String,
    domain: String,
}

/// The udhcpc event script: records what the client was given, in a file.
const SCRIPT: &str = r#"#!/bin/sh
case "$1" in
  bound|renew)
    printf 'ip=%s\nrouter=%s\ndns=%s\ndomain=%s\n' "$ip" "$router" "$dns" "$domain" > "$LEASE_FILE.tmp"
    mv "$LEASE_FILE.tmp" "$LEASE_FILE" ;;
esac
exit 0
"#;

impl Vm {
    /// Ask for a lease with busybox udhcpc (sending `hostname`), within a bounded time.
    fn dhcp(&self, dir: &Path, hostname: &str) -> Lease {
        let script = dir.join("udhcpc.script");
        if !script.exists() {
            fs::write(&script, SCRIPT).unwrap();
            Command::new("chmod")
                .args(["+x", script.to_str().unwrap()])
                .status()
                .unwrap();
        }
        let out = dir.join(format!("lease-{}", self.ns.name));
        let _ = fs::remove_file(&out);
        // -q: exit once bound; -n: exit if no lease after the -t discovers; -f: foreground.
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns.name, "busybox", "udhcpc"])
            .args([
                "-i", "eth0", "-f", "-q", "-n", "-t", "10", "-T", "1", "-A", "1",
            ])
            .args(["-x", &format!("hostname:{hostname}")])
            .args(["-s", script.to_str().unwrap()])
            .env("LEASE_FILE", &out)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("busybox udhcpc");
        let done = poll(Duration::from_secs(30), || {
            child.try_wait().ok().flatten().is_some()
        });
        if !done {
            let _ = child.kill();
        }
        let o = child.wait_with_output().unwrap();
        assert!(
            done && o.status.success(),
            "udhcpc in {} got no lease: {}\n{}",
            self.ns.name,
            stdout(&o),
            stderr(&o)
        );
        let text = fs::read_to_string(&out).expect("the script recorded the lease");
        let mut l = Lease::default();
        for line in text.lines() {
            let (k, v) = line.split_once('=').unwrap();
            match k {
                "ip" => l.ip = v.into(),
                "router" => l.router = v.into(),
                "dns" => l.dns = v.into(),
                "domain" => l.domain = v.into(),
                _ => {}
            }
        }
        l
    }

    /// Put an address on the VM's NIC (what the client would do with its lease).
    fn configure(&self, ip: &str) {
        self.ns.ip(&format!("addr add {ip}/24 dev eth0"));
    }

    /// The IPv4 addresses `name` resolves to through the nameserver 10.0.0.1 (empty when it
    /// does not resolve).
    fn resolve(&self, name: &str) -> Vec<String> {
        resolve_a(&self.ns, name, "10.0.0.1")
    }
}

/// The ursa example plus its dhcp file in a namespace; `eth0` leads to a LAN namespace and
/// br0 has one port per VM.
struct Ursa {
    _reaper: Reaper,
    ns: Netns,
    _lan: Netns,
    vms: Vec<Vm>,
    dir: TempDir,
}

impl Ursa {
    /// `macs[i]` is the MAC of VM i (None: the kernel's random one).
    fn new(macs: &[Option<&str>]) -> Ursa {
        let (ns, lan) = host_with_nic();
        let dir = TempDir::new("dhcp");
        let src = fs::read_to_string(repo().join("desired/ursa.yaml")).unwrap();
        let src = src
            .replace("owner: tom", "owner: nobody")
            .replace("group: kvm", "group: nogroup");
        fs::write(dir.path().join("ursa.yaml"), src).unwrap();
        fs::copy(
            repo().join("desired/ursa-dhcp.yaml"),
            dir.path().join("ursa-dhcp.yaml"),
        )
        .unwrap();
        let mut vms = Vec::new();
        let mut ports = String::from("links:\n");
        for (i, mac) in macs.iter().enumerate() {
            let vm = Netns::new();
            let port = format!("vm{i}");
            ns.ip(&format!(
                "link add {port} type veth peer name eth0 netns {}",
                vm.name
            ));
            if let Some(mac) = mac {
                vm.ip(&format!("link set eth0 address {mac}"));
            }
            vm.ip("link set eth0 up");
            // The ursa side is a port of br0, declared like a tap someone else made.
            ports.push_str(&format!(
                "  {port}:\n    kind: external\n    master: br0\n    up: true\n"
            ));
            vms.push(Vm { ns: vm, port });
        }
        fs::write(dir.path().join("vms.yaml"), ports).unwrap();
        let mut namespaces = vec![ns.name.clone(), lan.name.clone()];
        namespaces.extend(vms.iter().map(|v| v.ns.name.clone()));
        Ursa {
            _reaper: Reaper { namespaces },
            ns,
            _lan: lan,
            vms,
            dir,
        }
    }

    fn dhcp_file(&self) -> PathBuf {
        self.dir.path().join("ursa-dhcp.yaml")
    }

    fn edit(&self, from: &str, to: &str) {
        let s = fs::read_to_string(self.dhcp_file()).unwrap();
        assert!(s.contains(from), "ursa-dhcp.yaml has no `{from}`");
        fs::write(self.dhcp_file(), s.replacen(from, to, 1)).unwrap();
    }

    fn run(&self, extra: &[&str]) -> Output {
        netconverge_at(&self.ns, self.dir.path(), extra)
    }

    /// Reconcile; returns the plan text.
    fn reconcile(&self) -> String {
        let out = self.run(&["reconcile"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "reconcile:\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    fn pid(&self) -> Option<i32> {
        dnsmasq_pid(&self.ns.name)
    }

    fn state_file(&self, ext: &str) -> PathBuf {
        state_dir(&self.ns.name).join(format!("dnsmasq-br0.{ext}"))
    }
}

fn in_range(ip: &str, lo: [u8; 4], hi: [u8; 4]) -> bool {
    let a: Ipv4Addr = ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
    (Ipv4Addr::from(lo)..=Ipv4Addr::from(hi)).contains(&a)
}

// ---------------------------------------------------------------------------------------------
// As root

/// The whole service: one dnsmasq in ursa's namespace, bound to br0 only; a static lease, a
/// dynamic one from the range, the router and the nameserver; names resolving from VM to VM;
/// a second reconcile that changes nothing; `check` and `show` covering the service.
#[test]
fn vms_get_leases_router_and_dns_and_resolve_each_other() {
    if !root_or_skip("vms_get_leases_router_and_dns_and_resolve_each_other") {
        return;
    }
    let u = Ursa::new(&[Some("52:54:00:00:00:01"), None]);
    let plan = u.reconcile();
    assert!(plan.contains("+ add dhcp br0  (start dnsmasq)"), "{plan}");

    // One instance, in ursa's namespace, reading our configuration file only.
    let pid = u.pid().expect("dnsmasq runs after reconcile");
    let ns_ino = fs::metadata(format!("/run/netns/{}", u.ns.name))
        .unwrap()
        .ino();
    let proc_ino = fs::metadata(format!("/proc/{pid}/ns/net")).unwrap().ino();
    assert_eq!(ns_ino, proc_ino, "dnsmasq runs in another namespace");
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let conf = u.state_file("conf");
    assert_eq!(
        args.iter()
            .filter(|a| a.starts_with("--conf-file="))
            .count(),
        1,
        "{args:?}"
    );
    assert!(args.contains(&format!("--conf-file={}", conf.display())));
    let text = fs::read_to_string(&conf).unwrap();
    for line in [
        "interface=br0",
        "bind-dynamic",
        "resolv-file=/etc/resolv.conf",
        "no-hosts",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    // Bound to br0's addresses, never to the wildcard.
    let ss = u.ns.exec("ss -H -lun");
    let sockets = stdout(&ss);
    assert!(sockets.contains("10.0.0.1:53"), "{sockets}");
    assert!(
        !sockets.contains("0.0.0.0:53") && !sockets.contains("*:53"),
        "{sockets}"
    );

    // The static VM gets its fixed address, the other one an address from the range; both
    // get the router and the nameserver 10.0.0.1 and the domain.
    let (fedora, other) = (&u.vms[0], &u.vms[1]);
    let tmp = u.dir.path();
    let l = fedora.dhcp(tmp, "fedora");
    assert_eq!(l.ip, "10.0.0.11", "{l:?}");
    assert_eq!(
        (l.router.as_str(), l.dns.as_str()),
        ("10.0.0.1", "10.0.0.1")
    );
    assert_eq!(l.domain, "vm.ursa");
    let d = other.dhcp(tmp, "centos");
    assert!(
        in_range(&d.ip, [10, 0, 0, 100], [10, 0, 0, 199]),
        "{d:?} not in the range"
    );
    assert_eq!(
        (d.router.as_str(), d.dns.as_str()),
        ("10.0.0.1", "10.0.0.1")
    );
    fedora.configure(&l.ip);
    other.configure(&d.ip);
    // Names through dnsmasq, from the other VM: the static host by its declared name, the
    // dynamic one by the name it sent with its request.
    assert_eq!(other.resolve("fedora.vm.ursa"), ["10.0.0.11"]);
    assert_eq!(fedora.resolve("centos.vm.ursa"), vec![d.ip.clone()]);
    assert!(fedora.resolve("nobody-here.vm.ursa").is_empty());

    // Idempotent: nothing to do, the same instance keeps running.
    let again = u.reconcile();
    assert!(again.contains("No changes."), "{again}");
    assert_eq!(u.pid(), Some(pid), "a no-op reconcile restarted dnsmasq");
    let c = u.run(&["check"]);
    assert_eq!(c.status.code(), Some(0), "{}\n{}", stdout(&c), stderr(&c));

    // `show` describes the service, and its output checks clean against the host.
    let shown = u.run(&["show"]);
    let yaml = stdout(&shown);
    assert!(yaml.contains("dhcp:\n  br0:\n"), "{yaml}");
    assert!(yaml.contains("- \"10.0.0.100-10.0.0.199\""), "{yaml}");
    let snap = TempDir::new("dhcp-show");
    fs::write(snap.path().join("host.yaml"), &yaml).unwrap();
    let d = snap.path().to_str().unwrap();
    let c = netconverge(&["-d", d, "--netns", &u.ns.name, "check"]);
    assert_eq!(
        c.status.code(),
        Some(0),
        "check after show:\n{}\n{}\n{yaml}",
        stdout(&c),
        stderr(&c)
    );
    // The test's guard leaves no dnsmasq behind.
    let ns = u.ns.name.clone();
    drop(u);
    assert!(wait_gone(pid, &ns), "dnsmasq survived its test");
}

/// How changes reach the running instance: a static host added is a SIGHUP (same pid, the
/// new name resolves), a new range is a restart (new pid, the next client gets an address from
/// it), a dead instance is drift that reconcile repairs, and removing `dhcp:` stops the
/// instance and removes its files.
#[test]
fn hosts_change_reloads_range_change_restarts_removal_stops() {
    if !root_or_skip("hosts_change_reloads_range_change_restarts_removal_stops") {
        return;
    }
    let u = Ursa::new(&[None, None]);
    u.reconcile();
    let pid = u.pid().expect("dnsmasq runs");
    let (probe, client) = (&u.vms[0], &u.vms[1]);
    // A VM with a hand-set address, to ask the nameserver.
    probe.configure("10.0.0.50");
    assert!(probe.resolve("debian.vm.ursa").is_empty());

    // Static hosts only: SIGHUP, same process, the new name resolves.
    u.edit(
        "      - { mac: \"52:54:00:00:00:01\", ip: 10.0.0.11, name: fedora }\n",
        "      - { mac: \"52:54:00:00:00:01\", ip: 10.0.0.11, name: fedora }\n      - { mac: \"52:54:00:00:00:09\", ip: 10.0.0.19, name: debian }\n",
    );
    let plan = u.reconcile();
    assert!(
        plan.contains("~ change dhcp br0  (reload with SIGHUP: only the static hosts changed)"),
        "{plan}"
    );
    assert!(
        plan.contains("+52:54:00:00:00:09,10.0.0.19,debian"),
        "{plan}"
    );
    assert_eq!(u.pid(), Some(pid), "a hosts change restarted dnsmasq");
    assert!(
        poll(Duration::from_secs(5), || probe.resolve("debian.vm.ursa")
            == ["10.0.0.19"]),
        "dnsmasq did not re-read the names after SIGHUP"
    );

    // The range: restart, and the next client gets an address from the new range.
    u.edit("10.0.0.100-10.0.0.199", "10.0.0.200-10.0.0.249");
    let plan = u.reconcile();
    assert!(
        plan.contains("~ change dhcp br0  (restart: the configuration changed)"),
        "{plan}"
    );
    assert!(
        plan.contains("+dhcp-range=10.0.0.200,10.0.0.249,255.255.255.0,12h"),
        "{plan}"
    );
    let restarted = u.pid().expect("dnsmasq runs after the restart");
    assert_ne!(restarted, pid);
    assert!(
        !alive_instance(pid, &u.ns.name),
        "the old instance survived"
    );
    let l = client.dhcp(u.dir.path(), "vm1");
    assert!(
        in_range(&l.ip, [10, 0, 0, 200], [10, 0, 0, 249]),
        "{l:?} not in the new range"
    );

    // A dead instance is drift; reconcile starts it again.
    // SAFETY: kill(2) on the dnsmasq this test started.
    unsafe { libc::kill(restarted, libc::SIGTERM) };
    assert!(wait_gone(restarted, &u.ns.name));
    let c = u.run(&["check"]);
    assert_eq!(c.status.code(), Some(1), "{}\n{}", stdout(&c), stderr(&c));
    assert!(
        stdout(&c).contains("dhcp br0") && stdout(&c).contains("-not running"),
        "{}",
        stdout(&c)
    );
    let plan = u.reconcile();
    assert!(plan.contains("start: dnsmasq is not running"), "{plan}");
    let revived = u.pid().expect("reconcile restarted the dead instance");
    assert_eq!(u.reconcile().lines().last(), Some(NO_CHANGES));

    // Without `dhcp:` the instance is stopped and its files are gone.
    fs::remove_file(u.dhcp_file()).unwrap();
    let plan = u.reconcile();
    assert!(
        plan.contains("- remove dhcp br0  (stop dnsmasq and remove its files)"),
        "{plan}"
    );
    assert!(!alive_instance(revived, &u.ns.name), "dnsmasq still runs");
    assert_eq!(u.pid(), None);
    for ext in ["conf", "hosts", "names", "pid", "leases"] {
        assert!(!u.state_file(ext).exists(), "dnsmasq-br0.{ext} left behind");
    }
    assert_eq!(u.reconcile().lines().last(), Some(NO_CHANGES));
    // The port the VMs use is untouched by all this.
    assert!(u
        .ns
        .ip(&format!("link show {}", client.port))
        .contains("master br0"));
}

const NO_CHANGES: &str = "No changes. The host matches the desired state.";

// ---------------------------------------------------------------------------------------------
// Without privileges

/// `validate` rejects a range outside br0's subnet at the range's line and column.
#[test]
fn validate_rejects_a_range_outside_the_subnet() {
    let dir = TempDir::new("dhcp-invalid");
    let file = dir.path().join("host.yaml");
    fs::write(
        &file,
        "links:\n  br0:\n    kind: bridge\n    addresses: [10.0.0.1/24]\ndhcp:\n  br0:\n    ranges: [\"10.0.0.100-10.0.0.199\", \"10.1.0.100-10.1.0.199\"]\n",
    )
    .unwrap();
    let out = netconverge(&["-d", file.to_str().unwrap(), "validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}:7:39: range 10.1.0.100-10.1.0.199 is outside br0's subnet 10.0.0.0/24",
            file.display()
        )),
        "{err}"
    );
}

/// The example loads into the files dnsmasq reads, and `show`'s rendering of it loads back
/// into the same state.
#[test]
fn the_example_renders_dnsmasq_files_and_round_trips() {
    let d = load_path(&repo().join("desired")).unwrap_or_else(|e| panic!("{e}"));
    let s = &d.state.dhcp["br0"];
    assert!(s.running);
    let lines: Vec<&str> = s.config.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        [
            "interface=br0",
            "except-interface=lo",
            "bind-dynamic",
            "resolv-file=/etc/resolv.conf",
            "no-hosts",
            "domain-needed",
            "domain=vm.ursa",
            "local=/vm.ursa/",
            "dhcp-authoritative",
            "dhcp-range=10.0.0.100,10.0.0.199,255.255.255.0,12h",
            "dhcp-option=option:router,10.0.0.1",
            "enable-ra",
            "dhcp-range=fd00:10::100,fd00:10::1ff,64,12h",
        ]
    );
    assert_eq!(s.hosts, "52:54:00:00:00:01,10.0.0.11,fedora\n");
    assert_eq!(s.names, "10.0.0.11 fedora.vm.ursa fedora\n");
    let text = render_state(&d.state, &d.tables);
    let again = load_str(&text, Path::new("shown.yaml")).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(again.state.dhcp, d.state.dhcp, "{text}");
}

/// The router defaults to the bridge's address in the range's subnet, and the same bridge
/// served twice (in two files) names both places.
#[test]
fn router_default_and_duplicates_across_files() {
    let src = "links:\n  br0:\n    kind: bridge\n    addresses: [192.168.5.1/24, 10.0.0.1/24]\ndhcp:\n  br0:\n    ranges: [\"10.0.0.100-10.0.0.199\"]\n";
    let d = load_str(src, Path::new("a.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let s = &d.state.dhcp["br0"].settings;
    assert_eq!(s.router, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert!(s.static_subnets.is_empty());

    let dir = TempDir::new("dhcp-merge");
    fs::write(dir.path().join("a.yaml"), src).unwrap();
    fs::write(dir.path().join("b.yaml"), "dhcp:\n  br0:\n    lease: 1h\n").unwrap();
    let err = load_path(dir.path()).unwrap_err().to_string();
    assert!(err.contains("dhcp for br0 is declared twice"), "{err}");
    assert!(
        err.contains("a.yaml:6:3") && err.contains("b.yaml:2:3"),
        "{err}"
    );
}
