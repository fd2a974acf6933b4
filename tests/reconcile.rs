//! `reconcile` end to end, as root, each test in its own namespace: the ursa example from an
//! empty namespace, checked with `ip -j`, `ip route get` and `ip monitor`; idempotence; edits
//! of each kind; foreign objects; dry-run; bad input; the guards.

mod common;

use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::Value;

/// The ursa host: `eth0` is a veth whose peer sits in a second namespace (the LAN), as the
/// host's NIC would.
struct Ursa {
    ns: Netns,
    _lan: Netns,
    dir: TempDir,
}

impl Ursa {
    fn new() -> Ursa {
        let (ns, lan) = host_with_nic();
        let dir = TempDir::new("ursa");
        // The example names user tom and group kvm; this host has nobody/nogroup.
        let src = std::fs::read_to_string(repo().join("desired/ursa.yaml")).unwrap();
        let src = src
            .replace("owner: tom", "owner: nobody")
            .replace("group: kvm", "group: nogroup");
        std::fs::write(dir.path().join("ursa.yaml"), src).unwrap();
        Ursa { ns, _lan: lan, dir }
    }

    fn file(&self) -> std::path::PathBuf {
        self.dir.path().join("ursa.yaml")
    }

    fn edit(&self, from: &str, to: &str) {
        let s = std::fs::read_to_string(self.file()).unwrap();
        assert!(s.contains(from), "ursa.yaml has no `{from}`");
        std::fs::write(self.file(), s.replacen(from, to, 1)).unwrap();
    }

    fn run(&self, extra: &[&str]) -> std::process::Output {
        netconverge_at(&self.ns, self.dir.path(), extra)
    }

    fn reconcile_json(&self) -> Value {
        reconcile_json_at(&self.ns, self.dir.path())
    }

    /// `ip monitor` in the namespace, to see every change the kernel makes.
    fn monitor(&self) -> Monitor {
        let child = Command::new("ip")
            .args([
                "-n",
                &self.ns.name,
                "monitor",
                "link",
                "address",
                "route",
                "rule",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("ip monitor");
        std::thread::sleep(std::time::Duration::from_millis(200));
        Monitor(Some(child))
    }
}

struct Monitor(Option<Child>);

impl Monitor {
    /// Stop and return what the kernel announced.
    fn events(mut self) -> String {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut child = self.0.take().unwrap();
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn summary(plan: &Value) -> (u64, u64, u64) {
    let s = &plan["summary"];
    (
        s["add"].as_u64().unwrap(),
        s["change"].as_u64().unwrap(),
        s["remove"].as_u64().unwrap(),
    )
}

fn ids(plan: &Value, action: &str) -> Vec<String> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == action)
        .map(|c| {
            format!(
                "{} {}",
                c["kind"].as_str().unwrap(),
                c["id"].as_str().unwrap()
            )
        })
        .collect()
}

fn add_foreign_objects(u: &Ursa) {
    u.ns.ip("route add 198.51.100.0/24 via 192.168.1.9 dev eth0 onlink table 200");
    u.ns.ip("rule add pref 500 from 192.168.7.0/24 lookup 200");
}

fn assert_foreign_objects(u: &Ursa) {
    let r = u.ns.ip_json("route show table 200");
    assert_eq!(r[0]["dst"], "198.51.100.0/24", "foreign route lost: {r}");
    let rules = u.ns.ip_json("rule show");
    assert!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["priority"] == 500),
        "foreign rule lost: {rules}"
    );
}

#[test]
fn builds_ursa_from_nothing_then_does_nothing() {
    if !root_or_skip("builds_ursa_from_nothing_then_does_nothing") {
        return;
    }
    let u = Ursa::new();
    add_foreign_objects(&u);

    let plan = u.reconcile_json();
    assert!(summary(&plan).0 > 5, "{plan}");
    assert!(
        plan["applied"]["failures"].as_array().unwrap().is_empty(),
        "{plan}"
    );

    // Links, masters, owners, alias.
    let links = u.ns.ip_json("-d link show");
    let link = |n: &str| {
        links
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["ifname"] == n)
            .unwrap_or_else(|| panic!("{n} missing: {links}"))
            .clone()
    };
    let br0 = link("br0");
    assert_eq!(br0["linkinfo"]["info_kind"], "bridge");
    assert_eq!(br0["ifalias"], "managed-by: netconverge");
    assert!(br0["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    let taps: Vec<Value> = links
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["ifname"].as_str().unwrap().starts_with("tap-"))
        .cloned()
        .collect();
    assert!(!taps.is_empty());
    for t in &taps {
        assert_eq!(t["linkinfo"]["info_kind"], "tun");
        assert_eq!(t["linkinfo"]["info_data"]["type"], "tap");
        assert_eq!(t["linkinfo"]["info_data"]["user"], "nobody");
        assert_eq!(t["linkinfo"]["info_data"]["group"], "nogroup");
        assert_eq!(t["linkinfo"]["info_data"]["persist"], true);
        assert_eq!(t["master"], "br0");
        assert_eq!(t["ifalias"], "managed-by: netconverge");
    }
    let eth0 = link("eth0");
    assert!(
        eth0.get("ifalias").is_none(),
        "external link must not be marked"
    );

    // Addresses.
    let addrs = u.ns.ip_json("addr show dev br0");
    let locals: Vec<&str> = addrs[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["local"].as_str().unwrap())
        .collect();
    assert!(locals.contains(&"10.0.0.1"), "{locals:?}");
    assert!(locals.contains(&"fd00:10::1"), "{locals:?}");

    // The balanced default in main, one default per provider table, the fwmark rules.
    let main = u.ns.ip_json("route show default");
    let hops: Vec<&str> = main[0]["nexthops"]
        .as_array()
        .expect("multipath default")
        .iter()
        .map(|h| h["gateway"].as_str().unwrap())
        .collect();
    assert_eq!(hops, vec!["192.168.1.1", "192.168.1.254"]);
    assert_eq!(
        u.ns.ip_json("route show table 101")[0]["gateway"],
        "192.168.1.1"
    );
    assert_eq!(
        u.ns.ip_json("route show table 102")[0]["gateway"],
        "192.168.1.254"
    );
    assert_eq!(
        u.ns.route_get("203.0.113.10 mark 0x1")["gateway"],
        "192.168.1.1"
    );
    assert_eq!(
        u.ns.route_get("203.0.113.10 mark 0x2")["gateway"],
        "192.168.1.254"
    );

    // A second run changes nothing, says so, and sends no write: the kernel announces nothing.
    let mon = u.monitor();
    let out = u.run(&["reconcile"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("No changes. The host matches the desired state."));
    let events = mon.events();
    assert!(
        events.trim().is_empty(),
        "a no-op reconcile changed the kernel:\n{events}"
    );
    let again = u.reconcile_json();
    assert_eq!(summary(&again), (0, 0, 0));
    assert!(
        again.get("applied").is_none(),
        "no apply, no writes: {again}"
    );
    assert_foreign_objects(&u);

    // check agrees.
    let c = u.run(&["check"]);
    assert_eq!(c.status.code(), Some(0), "{}", stdout(&c));
}

#[test]
fn edits_of_each_kind_converge_with_exactly_the_expected_changes() {
    if !root_or_skip("edits_of_each_kind_converge_with_exactly_the_expected_changes") {
        return;
    }
    let u = Ursa::new();
    add_foreign_objects(&u);
    u.reconcile_json();

    // Add a tap.
    u.edit(
        "links:\n",
        "links:\n  tap-extra:\n    kind: tap\n    master: br0\n",
    );
    let p = u.reconcile_json();
    assert_eq!(ids(&p, "add"), vec!["link tap-extra"], "{p}");
    assert_eq!(summary(&p), (1, 0, 0));
    assert_eq!(u.ns.ip_json("link show tap-extra")[0]["master"], "br0");

    // Change an address (10.0.0.1/24 -> 10.0.0.2/24).
    u.edit("10.0.0.1/24", "10.0.0.2/24");
    let p = u.reconcile_json();
    assert_eq!(ids(&p, "add"), vec!["address 10.0.0.2/24 on br0"], "{p}");
    assert_eq!(ids(&p, "remove"), vec!["address 10.0.0.1/24 on br0"], "{p}");

    // Change a route's gateway (table fw: .254 -> .253).
    u.edit(
        "{ to: default, via: 192.168.1.254, dev: eth0, table: fw }",
        "{ to: default, via: 192.168.1.253, dev: eth0, table: fw }",
    );
    let p = u.reconcile_json();
    assert_eq!(summary(&p), (0, 1, 0), "{p}");
    assert_eq!(
        u.ns.ip_json("route show table 102")[0]["gateway"],
        "192.168.1.253"
    );

    // Change a weight in the balanced default.
    u.edit("weight: 1 }", "weight: 3 }");
    let p = u.reconcile_json();
    assert_eq!(summary(&p), (0, 1, 0), "{p}");
    let weights: Vec<u64> = u.ns.ip_json("route show default")[0]["nexthops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["weight"].as_u64().unwrap_or(1))
        .collect();
    assert!(weights.contains(&3), "{weights:?}");

    // Drop a rule.
    u.edit(
        "  - { priority: 10002, fwmark: \"0x2/0xff\", table: fw }\n",
        "",
    );
    let p = u.reconcile_json();
    assert_eq!(summary(&p), (0, 0, 1), "{p}");
    assert!(!u
        .ns
        .ip_json("rule show")
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["priority"] == 10002));

    // Rename a table id (wrt 101 -> 111): its route moves, its rule is rewritten.
    u.edit("wrt: 101", "wrt: 111");
    let p = u.reconcile_json();
    assert_eq!(summary(&p), (1, 1, 1), "{p}");
    assert_eq!(
        u.ns.ip_json("route show table 111")[0]["gateway"],
        "192.168.1.1"
    );
    assert!(u
        .ns
        .ip_json("route show table 101")
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        u.ns.route_get("203.0.113.10 mark 0x1")["gateway"],
        "192.168.1.1"
    );

    // Each edit converged in one pass.
    assert_eq!(summary(&u.reconcile_json()), (0, 0, 0));
    assert_foreign_objects(&u);

    // Removing a tap from the file deletes it; removing eth0 deletes nothing.
    u.edit("  tap-extra:\n    kind: tap\n    master: br0\n", "");
    let p = u.reconcile_json();
    assert_eq!(ids(&p, "remove"), vec!["link tap-extra"], "{p}");
    assert!(u
        .ns
        .ip_json("link show")
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["ifname"] != "tap-extra"));
}

#[test]
fn dry_run_changes_nothing_and_bad_input_is_refused_before_any_write() {
    if !root_or_skip("dry_run_changes_nothing_and_bad_input_is_refused_before_any_write") {
        return;
    }
    let u = Ursa::new();
    let before = u.ns.ip("-d link show");

    let mon = u.monitor();
    let out = u.run(&["reconcile", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("+ add link br0"), "{text}");
    assert!(text.contains("+++ desired"), "{text}");
    assert!(text.lines().last().unwrap().starts_with("Plan: "), "{text}");

    // Bad input: exit 2, file:line:col on stderr.
    let good = std::fs::read_to_string(u.file()).unwrap();
    std::fs::write(u.file(), good.replacen("master: br0", "master: br9", 1)).unwrap();
    let out = u.run(&["reconcile"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("ursa.yaml:"), "{err}");
    assert!(err.contains("br9"), "{err}");

    // A tap owner that does not exist on this host: refused before any write.
    std::fs::write(
        u.file(),
        good.replacen("owner: nobody", "owner: no-such-user-nc", 1),
    )
    .unwrap();
    let out = u.run(&["reconcile"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no-such-user-nc"), "{}", stderr(&out));

    // A missing external link: refused before any write.
    std::fs::write(u.file(), good.replacen("eth0:", "eth7:", 1)).unwrap();
    let out = u.run(&["reconcile"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("eth7"), "{}", stderr(&out));

    let events = mon.events();
    assert!(events.trim().is_empty(), "kernel changed:\n{events}");
    assert_eq!(before, u.ns.ip("-d link show"));
}

#[test]
fn guards_empty_desired_lock_and_privileges() {
    if !root_or_skip("guards_empty_desired_lock_and_privileges") {
        return;
    }
    let u = Ursa::new();
    u.reconcile_json();

    // An empty file would remove everything: refused, nothing deleted.
    let good = std::fs::read_to_string(u.file()).unwrap();
    std::fs::write(u.file(), "").unwrap();
    let out = u.run(&["reconcile"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--allow-empty"), "{}", stderr(&out));
    assert_eq!(u.ns.ip_json("link show br0")[0]["ifname"], "br0");

    // With --allow-empty it proceeds and removes what netconverge made, not eth0.
    let out = u.run(&["reconcile", "--allow-empty"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let names: Vec<String> =
        u.ns.ip_json("link show")
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_string())
            .collect();
    assert!(names.contains(&"eth0".to_string()));
    assert!(!names.contains(&"br0".to_string()), "{names:?}");
    std::fs::write(u.file(), good).unwrap();

    // The per-namespace lock: while another process holds it, reconcile refuses.
    let lock = format!("/run/netconverge/netns/{}.lock", u.ns.name);
    std::fs::create_dir_all("/run/netconverge/netns").unwrap();
    let mut holder = Command::new("flock")
        .args([lock.as_str(), "sleep", "5"])
        .spawn()
        .expect("flock(1)");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = u.run(&["reconcile"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("another netconverge"),
        "{}",
        stderr(&out)
    );

    // Without CAP_NET_ADMIN: exit 2 with a hint, before any write.
    let d = u.dir.path().to_str().unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            env!("CARGO_BIN_EXE_netconverge"),
            "--netns",
            &u.ns.name,
            "-d",
            d,
            "reconcile",
        ])
        .output()
        .expect("setpriv");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("CAP_NET_ADMIN"), "{}", stderr(&out));
}

/// Open a tap the way an unprivileged qemu does: TUNSETIFF as `uid`:`gid` with no
/// capabilities, inside the namespace. `/dev/net/tun` itself is opened first, as root (libvirt
/// hands qemu that descriptor; here the device node may be 0600): the kernel checks the tap's
/// owner at TUNSETIFF, with the credentials of that moment. Returns whether it allowed it.
fn attach_as(ns: &Netns, uid: u32, gid: u32, tap: &str) -> bool {
    let script = format!(
        "import fcntl, os, struct\n\
         fd = os.open('/dev/net/tun', os.O_RDWR)\n\
         os.setgroups([])\n\
         os.setresgid({gid}, {gid}, {gid})\n\
         os.setresuid({uid}, {uid}, {uid})\n\
         ifr = struct.pack('16sH', b'{tap}', 0x0002 | 0x1000 | 0x4000)\n\
         fcntl.ioctl(fd, 0x400454ca, ifr)\n"
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "python3", "-c", &script])
        .output()
        .expect("python3");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("PermissionError") || err.contains("Operation not permitted"),
            "{err}"
        );
    }
    out.status.success()
}

#[test]
fn taps_are_persistent_and_usable_by_their_owner_only() {
    if !root_or_skip("taps_are_persistent_and_usable_by_their_owner_only") {
        return;
    }
    let u = Ursa::new();
    u.reconcile_json();
    // The owner (nobody:nogroup) can attach as qemu would; another user, or the owner outside
    // the tap's group, cannot (the kernel wants both to match when both are set).
    assert!(
        attach_as(&u.ns, 65534, 65534, "tap-centos"),
        "the owner could not open its tap"
    );
    assert!(
        !attach_as(&u.ns, 65533, 65534, "tap-centos"),
        "a stranger opened the tap"
    );
    assert!(
        !attach_as(&u.ns, 65534, 65533, "tap-centos"),
        "the group was not enforced"
    );
    // Persistent: the tap outlives every process that had it open.
    assert_eq!(
        u.ns.ip_json("-d link show tap-centos")[0]["linkinfo"]["info_data"]["persist"],
        true
    );
    // Changing the owner is done in place (same ifindex), and the new owner can attach.
    let before = u.ns.ip_json("link show tap-centos")[0]["ifindex"].clone();
    let s = std::fs::read_to_string(u.file()).unwrap();
    let s = s.replacen("owner: nobody", "owner: 65533", 1);
    std::fs::write(u.file(), s).unwrap();
    let p = u.reconcile_json();
    assert_eq!(summary(&p), (0, 1, 0), "{p}");
    assert_eq!(u.ns.ip_json("link show tap-centos")[0]["ifindex"], before);
    assert!(attach_as(&u.ns, 65533, 65534, "tap-centos"));
    assert!(
        !attach_as(&u.ns, 65534, 65534, "tap-centos"),
        "the old owner kept access"
    );
}
