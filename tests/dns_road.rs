//! On the road: the VMs' DNS follows whatever network the host is on. Root tests in a lab of
//! namespaces: two "networks", each with its own resolver answering `www.example.test`
//! differently; the host namespace's resolv.conf points at one of them, as a DHCP client
//! would write it; a guest behind br0 asks netconverge's dnsmasq.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{netconverge_at, poll, resolve_a, root_or_skip, stderr, stdout, Netns, TempDir};

/// What each network's resolver answers for `www.example.test`.
const FIRST: &str = "10.99.1.1";
const SECOND: &str = "10.99.2.2";

/// A network's resolver: a dnsmasq in its own namespace, reached from the host over a veth,
/// answering `www.example.test` with `answer` and nothing else.
struct Resolver {
    child: Child,
    ns: Netns,
    /// Its address, as a resolv.conf would name it.
    addr: String,
}

impl Resolver {
    fn new(host: &Netns, n: u8, answer: &str) -> Resolver {
        let ns = Netns::new();
        let (here, there) = (format!("192.0.{n}.1"), format!("192.0.{n}.53"));
        host.ip(&format!(
            "link add up{n} type veth peer name eth0 netns {}",
            ns.name
        ));
        host.ip(&format!("addr add {here}/24 dev up{n}"));
        host.ip(&format!("link set up{n} up"));
        ns.ip(&format!("addr add {there}/24 dev eth0"));
        ns.ip("link set eth0 up");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "dnsmasq", "--keep-in-foreground"])
            .args(["--conf-file=/dev/null", "--no-resolv", "--no-hosts"])
            .args(["--bind-interfaces", &format!("--listen-address={there}")])
            .arg(format!("--address=/www.example.test/{answer}"))
            .arg("--pid-file=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq for a network's resolver");
        Resolver {
            child,
            ns,
            addr: there,
        }
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.ns;
    }
}

/// Kills what netconverge started in the host namespace and removes its state and the
/// namespace's resolv.conf directory; declared before the namespace so it runs first.
struct Cleanup {
    ns: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        common::kill_processes_in(&self.ns);
        let _ = fs::remove_dir_all(format!("/run/netconverge/netns/{}", self.ns));
        let _ = fs::remove_dir_all(format!("/etc/netns/{}", self.ns));
    }
}

/// The lab: the host with br0 and netconverge's dnsmasq, a guest on a br0 port, and two
/// networks' resolvers.
struct Lab {
    dir: TempDir,
    guest: Netns,
    first: Resolver,
    second: Resolver,
    _cleanup: Cleanup,
    host: Netns,
}

impl Lab {
    fn new(dns: &str) -> Lab {
        let host = Netns::new();
        let cleanup = Cleanup {
            ns: host.name.clone(),
        };
        let guest = Netns::new();
        host.ip(&format!(
            "link add vm0 type veth peer name eth0 netns {}",
            guest.name
        ));
        guest.ip("link set eth0 address 52:54:00:00:00:42");
        guest.ip("addr add 10.0.0.50/24 dev eth0");
        guest.ip("link set eth0 up");
        let first = Resolver::new(&host, 1, FIRST);
        let second = Resolver::new(&host, 2, SECOND);
        let lab = Lab {
            dir: TempDir::new("road"),
            guest,
            first,
            second,
            _cleanup: cleanup,
            host,
        };
        lab.point_at(&lab.first.addr.clone());
        lab.write(dns);
        lab
    }

    /// The host namespace's resolv.conf, where `ip netns exec` (and netconverge's dnsmasq)
    /// find it.
    fn resolv_conf(&self) -> PathBuf {
        PathBuf::from(format!("/etc/netns/{}/resolv.conf", self.host.name))
    }

    /// What a DHCP client does on a new network: write the resolver it was given.
    fn point_at(&self, addr: &str) {
        let f = self.resolv_conf();
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        let tmp = f.with_extension("tmp");
        fs::write(
            &tmp,
            format!("# written by the DHCP client\nnameserver {addr}\n"),
        )
        .unwrap();
        fs::rename(&tmp, &f).unwrap();
    }

    fn write(&self, dns: &str) {
        let yaml = format!(
            "links:\n  br0: {{ kind: bridge, addresses: [10.0.0.1/24] }}\n  vm0: {{ kind: external, master: br0, up: true }}\n\
             dhcp:\n  br0:\n    ranges: [\"10.0.0.100-10.0.0.199\"]\n    domain: vm.test\n\
             \x20   hosts: [{{ mac: \"52:54:00:00:00:42\", ip: 10.0.0.50, name: guest }}]\n{dns}"
        );
        fs::write(self.dir.path().join("host.yaml"), yaml).unwrap();
    }

    /// Run netconverge; asserts the exit code and returns stdout.
    fn run(&self, args: &[&str], code: i32) -> String {
        let out = netconverge_at(&self.host, self.dir.path(), args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}:\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// The second run changes nothing and `check` agrees.
    fn assert_converged(&self) {
        let again = self.run(&["reconcile"], 0);
        assert!(again.contains("No changes"), "second reconcile: {again}");
        self.run(&["check"], 0);
    }

    /// The IPv4 answers the guest gets for `name` from netconverge's dnsmasq on 10.0.0.1.
    fn resolve(&self, name: &str) -> Vec<String> {
        resolve_a(&self.guest, name, "10.0.0.1")
    }
}

/// The default (`dns:` left out) follows the host's resolv.conf: the guest gets the first
/// network's answer, and after the "DHCP client" rewrites the file, the second's — without
/// any netconverge command. A second reconcile is a no-op before and after.
#[test]
fn the_guests_dns_follows_the_hosts_resolver() {
    if !root_or_skip("the_guests_dns_follows_the_hosts_resolver") {
        return;
    }
    let lab = Lab::new("");
    let plan = lab.run(&["reconcile"], 0);
    assert!(plan.contains("+ add dhcp br0"), "{plan}");
    let conf = fs::read_to_string(format!(
        "/run/netconverge/netns/{}/dnsmasq-br0.conf",
        lab.host.name
    ))
    .expect("dnsmasq configuration");
    assert!(
        conf.contains(&format!("resolv-file={}", lab.resolv_conf().display())),
        "dnsmasq reads the namespace's resolv.conf:\n{conf}"
    );
    assert!(
        poll(Duration::from_secs(10), || lab.resolve("www.example.test")
            == [FIRST]),
        "the first network's answer: {:?}",
        lab.resolve("www.example.test")
    );
    assert_eq!(lab.resolve("guest.vm.test"), ["10.0.0.50"]);
    lab.assert_converged();

    // On the road: the DHCP client of the new network rewrites resolv.conf.
    lab.point_at(&lab.second.addr);
    assert!(
        poll(Duration::from_secs(10), || lab.resolve("www.example.test")
            == [SECOND]),
        "the second network's answer, without a netconverge run: {:?}",
        lab.resolve("www.example.test")
    );
    lab.assert_converged();
}

/// `upstream: []` is the isolated lab: only `domain` names are answered. Switching to it
/// from the default restarts dnsmasq and says why.
#[test]
fn an_empty_upstream_answers_only_the_domain() {
    if !root_or_skip("an_empty_upstream_answers_only_the_domain") {
        return;
    }
    let lab = Lab::new("");
    lab.run(&["reconcile"], 0);
    assert!(poll(Duration::from_secs(10), || lab
        .resolve("www.example.test")
        == [FIRST]));
    lab.write("    dns: { upstream: [] }\n");
    let plan = lab.run(&["reconcile"], 0);
    assert!(
        plan.contains("~ change dhcp br0  (restart: the upstream source changed)"),
        "{plan}"
    );
    assert!(
        poll(Duration::from_secs(10), || lab.resolve("guest.vm.test")
            == ["10.0.0.50"]),
        "domain names still resolve"
    );
    assert!(
        lab.resolve("www.example.test").is_empty(),
        "nothing outside the domain is forwarded"
    );
    lab.assert_converged();

    // An explicit resolver file works the same way as the host's.
    lab.write(&format!(
        "    dns: {{ resolv_file: {} }}\n",
        lab.resolv_conf().display()
    ));
    let plan = lab.run(&["reconcile"], 0);
    assert!(
        plan.contains("restart: the upstream source changed"),
        "{plan}"
    );
    assert!(poll(Duration::from_secs(10), || lab
        .resolve("www.example.test")
        == [FIRST]));
    lab.assert_converged();
}
