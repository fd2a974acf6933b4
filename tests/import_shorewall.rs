//! `netconverge import shorewall DIR`: a corpus of malformed and unsupported Shorewall files
//! checked for their `file:line` reports (root-free), the seed's configuration expanding to
//! the same kernel objects as the hand-written providers example, `-d -`, and — with real
//! Shorewall 5.2.8 — configurations started by Shorewall in one namespace and reconciled by
//! netconverge from the imported YAML in another, compared rule by rule, route by route and
//! by `ip route get`, except for the deviations listed with their reasons.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::shorewall::{self, KernelState};
use common::{netconverge, repo, stderr, stdout, Netns};

fn corpus() -> PathBuf {
    repo().join("tests/data/shorewall/corpus")
}

/// Run the binary with `stdin` as its standard input.
fn netconverge_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netconverge"))
        .args(args)
        .env_remove("NETCONVERGE_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run netconverge");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// What a corpus case's `EXPECT` file asks: the exit status, the reports (`file:line` and
/// the start of the message after `not translated: ` or `note: `), lines of the YAML.
struct Expect {
    exit: i32,
    reports: Vec<(String, String)>,
    yaml: Vec<String>,
}

fn expect(dir: &Path) -> Expect {
    let text = std::fs::read_to_string(dir.join("EXPECT")).expect("EXPECT");
    let mut e = Expect {
        exit: -1,
        reports: Vec::new(),
        yaml: Vec::new(),
    };
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("exit ") {
            e.exit = n.trim().parse().expect("exit N");
        } else if let Some(y) = line.strip_prefix("stdout ") {
            e.yaml.push(y.to_string());
        } else if let Some((place, message)) = line.split_once(' ') {
            e.reports.push((place.to_string(), message.to_string()));
        }
    }
    e
}

#[test]
fn every_corpus_case_reports_each_place_and_its_yaml_validates() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "{cases:?}");
    for dir in cases {
        let want = expect(&dir);
        let d = dir.to_str().expect("utf-8");
        let out = netconverge(&["import", "shorewall", d, "--offline"]);
        let (yaml, err) = (stdout(&out), stderr(&out));
        let case = dir.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(out.status.code(), Some(want.exit), "{case}: exit\n{err}");
        let lines: Vec<&str> = err.lines().collect();
        for (place, message) in &want.reports {
            let prefix = format!("{d}/{place}: {message}");
            assert!(
                lines.iter().any(|l| l.starts_with(&prefix)),
                "{case}: no report starting `{prefix}` in:\n{err}"
            );
        }
        // Every report of something affecting routing is one the case expects.
        for l in lines.iter().filter(|l| l.contains(": not translated: ")) {
            let expected = want
                .reports
                .iter()
                .any(|(p, m)| l.starts_with(&format!("{d}/{p}: {m}")));
            assert!(expected, "{case}: unexpected report {l}");
        }
        for y in &want.yaml {
            // Each item ends with a comment naming its line.
            assert!(
                yaml.lines()
                    .any(|l| l.starts_with(&format!("{y}   # {d}/"))),
                "{case}: no line `{y}` in\n{yaml}"
            );
        }
        // Each place left out of the YAML is commented there.
        for l in lines.iter().filter(|l| l.contains(": not translated: ")) {
            let place = l.split(": not translated: ").next().unwrap();
            assert!(
                yaml.contains(&format!("# left out: {place}: "))
                    || yaml.contains(&format!("{place}: ")),
                "{case}: no comment for {place} in\n{yaml}"
            );
        }
        let valid = netconverge_stdin(&["-d", "-", "validate"], &yaml);
        assert_eq!(
            valid.status.code(),
            Some(0),
            "{case}: the YAML does not validate:\n{}\n{yaml}",
            stderr(&valid)
        );
    }
}

#[test]
fn an_unreadable_directory_exits_2() {
    let out = netconverge(&["import", "shorewall", "/nonexistent/shorewall", "--offline"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read /nonexistent/shorewall"),
        "{}",
        stderr(&out)
    );
    let file = repo().join("tests/data/shorewall/seed/providers");
    let out = netconverge(&["import", "shorewall", file.to_str().unwrap(), "--offline"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not a directory"),
        "{}",
        stderr(&out)
    );
}

/// The seed's providers, written by hand as netconverge YAML (as in examples/providers.yaml).
const SEED_BY_HAND: &str = "\
providers:
  wrt: { number: 1, mark: \"0x1\", interface: eth0, gateway: 192.168.1.1, local: 192.168.1.20, balance: 1, track: true }
  fw:  { number: 2, mark: \"0x2\", interface: eth0, gateway: 192.168.1.254, local: 192.168.1.20, balance: 1, track: true, loose: true }
provider_options: { mask: \"0xff\", default_table: main }
route_rules:
  - { to: 8.8.8.8, provider: wrt, priority: 11000 }
masquerade:
  - { from: 10.0.0.0/24, out: eth0 }
marks:
  - { iif: br0, from: 10.0.0.0/25, mark: \"0x2\" }
";

#[test]
fn the_seed_imports_to_what_its_providers_written_by_hand_expand_to() {
    let dir = repo().join("tests/data/shorewall/seed");
    let imported = netconverge::import::shorewall::import(&dir, None).expect("import");
    assert_eq!(imported.exit_status(), 0, "{:?}", imported.findings);
    let got = netconverge::desired::load_str(&imported.yaml, Path::new("imported.yaml"))
        .unwrap_or_else(|e| panic!("{e}\n{}", imported.yaml));
    let want =
        netconverge::desired::load_str(SEED_BY_HAND, Path::new("by-hand.yaml")).expect("by hand");
    assert_eq!(got.state.routes, want.state.routes);
    assert_eq!(got.state.rules, want.state.rules);
    assert_eq!(got.state.sysctls, want.state.sysctls);
    assert_eq!(got.state.firewall, want.state.firewall);
    // The reports say what was left out, the filtering included, each at its line.
    let places: Vec<String> = imported
        .findings
        .0
        .iter()
        .map(|f| f.at.to_string())
        .collect();
    for p in [
        "interfaces:4",
        "providers:3",
        "zones:2",
        "policy:2",
        "rules:3",
    ] {
        assert!(places.iter().any(|x| x.ends_with(p)), "{p} in {places:?}");
    }
}

#[test]
fn standard_input_errors_name_stdin_line_and_column() {
    let out = netconverge_stdin(
        &["-d", "-", "validate"],
        "links:\n  br0:\n    kind: bridge\n    adresses: []\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("<stdin>:4:5: unknown key `adresses`"),
        "{}",
        stderr(&out)
    );
    let out = netconverge_stdin(
        &["-d", "-", "validate"],
        "links:\n  br0: { kind: bridge }\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("in <stdin>"), "{}", stdout(&out));
}

// --- Real Shorewall 5.2.8 against netconverge reconciling the imported YAML ---

const WRT_MAC: &str = "02:00:00:00:01:01";
const FW_MAC: &str = "02:00:00:00:01:fe";

/// One ursa with its two gateways: on one LAN (a bridge in a fourth namespace, both
/// providers shared on eth0) or each on its own link (wrt on eth0, fw on eth1). br0 holds the
/// VMs' subnet. Field order is drop order.
struct Side {
    ursa: Netns,
    _wrt: Netns,
    _fw: Netns,
    _lan: Option<Netns>,
}

fn side(separate: bool) -> Side {
    let (ursa, wrt, fw) = (Netns::new(), Netns::new(), Netns::new());
    let lan = if separate {
        for (i, gw, mac, ip, me) in [
            ("eth0", &wrt, WRT_MAC, "192.168.1.1", "192.168.1.20"),
            ("eth1", &fw, FW_MAC, "192.168.2.254", "192.168.2.20"),
        ] {
            ursa.ip(&format!(
                "link add {i} type veth peer name lan0 netns {}",
                gw.name
            ));
            gw.ip(&format!("link set lan0 address {mac} up"));
            gw.ip(&format!("addr add {ip}/24 dev lan0"));
            ursa.ip(&format!("addr add {me}/24 dev {i}"));
            ursa.ip(&format!("link set {i} up"));
        }
        None
    } else {
        let lan = Netns::new();
        lan.ip("link add lan type bridge forward_delay 0");
        lan.ip("link set lan up");
        for (ns, name, port, mac, ip) in [
            (&ursa, "eth0", "p-ursa", "02:00:00:00:01:14", "192.168.1.20"),
            (&wrt, "lan0", "p-wrt", WRT_MAC, "192.168.1.1"),
            (&fw, "lan0", "p-fw", FW_MAC, "192.168.1.254"),
        ] {
            ns.ip(&format!(
                "link add {name} address {mac} type veth peer name {port} netns {}",
                lan.name
            ));
            ns.ip(&format!("addr add {ip}/24 dev {name}"));
            ns.ip(&format!("link set {name} up"));
            lan.ip(&format!("link set {port} master lan up"));
        }
        Some(lan)
    };
    for cmd in [
        "link add br0 type bridge",
        "addr add 10.0.0.1/24 dev br0",
        "link add d0 type veth peer name d1",
        "link set d1 up",
        "link set d0 master br0",
        "link set d0 up",
        "link set br0 up",
    ] {
        ursa.ip(cmd);
    }
    // One multipath hash seed on both sides, so that the balanced default picks the same
    // gateway per destination under both tools.
    if Path::new("/proc/sys/net/ipv4/fib_multipath_hash_seed").exists() {
        let o = ursa.exec("sysctl -qw net.ipv4.fib_multipath_hash_seed=2026");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let gateways: &[&str] = if separate {
        &["192.168.1.1", "192.168.2.254"]
    } else {
        &["192.168.1.1", "192.168.1.254"]
    };
    for g in gateways {
        let up = common::poll(std::time::Duration::from_secs(10), || {
            ursa.exec(&format!("ping -c1 -W1 {g}")).status.success()
        });
        assert!(up, "gateway {g} does not answer");
    }
    Side {
        ursa,
        _wrt: wrt,
        _fw: fw,
        _lan: lan,
    }
}

/// The routing decisions compared: the balanced default, each mark, ursa's own addresses,
/// forwarded packets from the VMs' subnet (the rtrules' sources among them), and replies
/// arriving through each provider with its mark.
const QUERIES: [&str; 14] = [
    "203.0.113.10",
    "203.0.113.11",
    "203.0.113.12",
    "203.0.113.13",
    "8.8.8.8",
    "203.0.113.10 mark 0x1",
    "203.0.113.10 mark 0x2",
    "203.0.113.10 from 192.168.1.20",
    "203.0.113.10 from 192.168.2.20",
    "203.0.113.10 from 10.0.0.5 iif br0",
    "203.0.113.10 from 10.0.0.200 iif br0",
    "203.0.113.11 from 10.0.0.200 iif br0",
    "10.0.0.2 from 203.0.113.10 iif eth0 mark 0x1",
    "10.0.0.2 from 203.0.113.10 iif eth0 mark 0x2",
];

/// A line only one tool has, on purpose (or the start of one, for answers that depend on
/// the multipath hash), and why.
#[derive(Clone)]
struct Deviation {
    /// `true`: only real Shorewall has the line; `false`: only netconverge.
    shorewall_only: bool,
    line: &'static str,
    why: &'static str,
}

const fn sw(line: &'static str, why: &'static str) -> Deviation {
    Deviation {
        shorewall_only: true,
        line,
        why,
    }
}

const fn nc(line: &'static str, why: &'static str) -> Deviation {
    Deviation {
        shorewall_only: false,
        line,
        why,
    }
}

/// Shorewall's `hostroute` default: a host route to each gateway in main.
const HOSTROUTE_WHY: &str = "Shorewall's hostroute adds a host route to the gateway in main; \
    netconverge leaves main to its owner: the interface's subnet route reaches the gateway \
    already (same answers)";

/// The seed's order (wrt, then the loose fw on the same address): Shorewall's loose fw
/// deletes wrt's from-rule at its start; netconverge keeps it, as the configuration asks.
const FROM_RULE: [Deviation; 3] = [
    nc("rule 20000: from 192.168.1.20 lookup 1", "wrt is not loose: its from-rule, which Shorewall's loose fw deletes by accident of order (`ip rule del from 192.168.1.20`)"),
    nc("get 203.0.113.10 from 192.168.1.20: via 192.168.1.1 dev eth0", "the from-rule: ursa's own address leaves through wrt"),
    sw("get 203.0.113.10 from 192.168.1.20: ", "without the from-rule ursa's own address follows the balanced default"),
];

/// A configuration compared: Shorewall's files and the deviations expected.
struct Case {
    name: &'static str,
    separate: bool,
    files: Vec<(&'static str, String)>,
    deviations: Vec<Deviation>,
    /// A source address a mangle MARK sets 0x2 for: both tools' netfilter must hold it.
    marked_source: Option<&'static str>,
}

/// The files every case shares: zones, an accept-all policy (what is compared is routing).
fn files(
    conf: &str,
    interfaces: &str,
    providers: &str,
    more: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut v = vec![
        (
            "shorewall.conf",
            format!("IP_FORWARDING=On\nROUTE_FILTER=No\n{conf}"),
        ),
        ("zones", "fw firewall\nnet ipv4\nloc ipv4\n".to_string()),
        (
            "interfaces",
            format!("?FORMAT 2\n{interfaces}loc br0 routeback\n"),
        ),
        ("policy", "all all ACCEPT\n".to_string()),
        ("providers", providers.to_string()),
    ];
    v.extend(more.iter().map(|(n, t)| (*n, t.to_string())));
    v
}

fn compare(case: Case) {
    let test = format!("shorewall_import_{}", case.name);
    if !shorewall::installed_or_skip(&test) {
        return;
    }
    let borrowed: Vec<(&str, &str)> = case.files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let config = shorewall::Config::new(&borrowed);
    let compiled = shorewall::compile(config.path()).unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = (side(case.separate), side(case.separate));
    let _started = shorewall::start(&compiled, &a.ursa).unwrap_or_else(|e| panic!("{e}"));
    let dir = config.path().to_str().expect("utf-8");
    let imported = netconverge(&["--netns", &b.ursa.name, "import", "shorewall", dir]);
    let yaml = stdout(&imported);
    assert_eq!(
        imported.status.code(),
        Some(0),
        "{}: import:\n{}\n{yaml}",
        case.name,
        stderr(&imported)
    );
    for command in ["reconcile", "check"] {
        let out = netconverge_stdin(&["--netns", &b.ursa.name, "-d", "-", command], &yaml);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {command}:\n{}{}\n{yaml}",
            case.name,
            stdout(&out),
            stderr(&out)
        );
    }
    let (sw_state, nc_state) = (
        KernelState::read(&a.ursa, &QUERIES),
        KernelState::read(&b.ursa, &QUERIES),
    );
    assert_same_but(
        case.name,
        &sw_state.without_realms(),
        &nc_state,
        &case.deviations,
        &yaml,
    );
    if let Some(src) = case.marked_source {
        assert_marks_source(&a.ursa, &b.ursa, src);
    }
}

/// The MARK by source is in both kernels' netfilter, read with each tool's own lister:
/// Shorewall's as an iptables mangle rule, netconverge's as an nft rule.
fn assert_marks_source(sw: &Netns, nc: &Netns, src: &str) {
    let ipt = String::from_utf8_lossy(&sw.exec("iptables -t mangle -S").stdout).into_owned();
    assert!(
        ipt.lines()
            .any(|l| l.contains(&format!("-s {src}/32")) && l.contains("MARK --set-xmark 0x2/0xff")),
        "Shorewall's mangle table:\n{ipt}"
    );
    let nft =
        String::from_utf8_lossy(&nc.exec("nft list table inet netconverge").stdout).into_owned();
    assert!(
        nft.lines().any(|l| l.contains(&format!("ip saddr {src} "))
            && l.contains("meta mark set")
            && l.contains("| 0x00000002")),
        "netconverge's table:\n{nft}"
    );
}

/// Every difference between the two states is one of `deviations`, and each is seen.
fn assert_same_but(
    name: &str,
    sw: &KernelState,
    nc: &KernelState,
    deviations: &[Deviation],
    yaml: &str,
) {
    let (only_sw, only_nc) = sw.diff(nc);
    let explained = |line: &str, shorewall_only: bool| {
        deviations
            .iter()
            .any(|d| d.shorewall_only == shorewall_only && line.starts_with(d.line))
    };
    let unexplained: Vec<String> = only_sw
        .iter()
        .filter(|l| !explained(l, true))
        .map(|l| format!("only Shorewall: {l}"))
        .chain(
            only_nc
                .iter()
                .filter(|l| !explained(l, false))
                .map(|l| format!("only netconverge: {l}")),
        )
        .collect();
    assert!(
        unexplained.is_empty(),
        "{name}: unexplained differences:\n{}\n\nthe imported YAML:\n{yaml}",
        unexplained.join("\n")
    );
    for d in deviations {
        let side = if d.shorewall_only { &only_sw } else { &only_nc };
        assert!(
            side.iter().any(|l| l.starts_with(d.line)),
            "{name}: deviation no longer seen ({}): {}",
            d.why,
            d.line
        );
    }
}

/// Shorewall's host routes to the two gateways of the shared eth0 in main.
const SHARED_HOSTROUTES: [Deviation; 2] = [
    sw(
        "route table 254: 192.168.1.1 dev eth0 scope link src 192.168.1.20",
        HOSTROUTE_WHY,
    ),
    sw(
        "route table 254: 192.168.1.254 dev eth0 scope link src 192.168.1.20",
        HOSTROUTE_WHY,
    ),
];

fn shared(options_wrt: &str, options_fw: &str, dup: &str) -> String {
    format!(
        "wrt 1 0x1 {dup} eth0:192.168.1.20 192.168.1.1 {options_wrt}\n\
         fw 2 0x2 {dup} eth0:192.168.1.20 192.168.1.254 {options_fw}\n"
    )
}

#[test]
fn shorewall_import_seed_with_rtrules_and_a_mark_by_source() {
    let mut deviations = Vec::from(SHARED_HOSTROUTES);
    deviations.extend(FROM_RULE);
    compare(Case {
        name: "seed",
        separate: false,
        files: files(
            "USE_DEFAULT_RT=No\n",
            "net eth0 -\n",
            &shared("track,balance", "track,balance,loose", "-"),
            &[
                ("rtrules", "10.0.0.0/25 - fw 1000\n- 8.8.8.8 wrt 11000\n"),
                ("mangle", "MARK(0x2) 10.0.0.3 -\n"),
                ("snat", "MASQUERADE 10.0.0.0/24 eth0\n"),
            ],
        ),
        deviations,
        marked_source: Some("10.0.0.3"),
    });
}

#[test]
fn shorewall_import_duplicate_main_with_copy_and_unequal_weights() {
    let mut deviations = Vec::from(SHARED_HOSTROUTES);
    deviations.push(sw(
        "route table 2: 192.168.1.1 dev eth0 scope link src 192.168.1.20",
        "DUPLICATE copies main as Shorewall left it after wrt's start, hostroute included; \
         netconverge copies the declared subnets, and table 2's own route to its gateway is there in both",
    ));
    deviations.extend(FROM_RULE);
    compare(Case {
        name: "duplicate",
        separate: false,
        files: files(
            "USE_DEFAULT_RT=No\n",
            "net eth0 -\n",
            "wrt 1 0x1 main eth0:192.168.1.20 192.168.1.1 track,balance=3 br0\n\
             fw 2 0x2 main eth0:192.168.1.20 192.168.1.254 track,balance=1,loose br0\n",
            &[],
        ),
        deviations,
        marked_source: None,
    });
}

#[test]
fn shorewall_import_use_default_rt() {
    compare(Case {
        name: "use_default_rt",
        separate: false,
        files: files(
            "USE_DEFAULT_RT=Yes\nBALANCE_PROVIDERS=Yes\n",
            "net eth0 -\n",
            &shared("track", "track", "-"),
            &[],
        ),
        deviations: vec![
            SHARED_HOSTROUTES[0].clone(),
            SHARED_HOSTROUTES[1].clone(),
            nc(
                "rule 32766: from all lookup 254",
                "Shorewall deletes the kernel's rule 32766 when main is looked up at 999; \
                 netconverge leaves the kernel's default rules alone (main at 999 answers first: same answers)",
            ),
        ],
        marked_source: None,
    });
}

#[test]
fn shorewall_import_separate_interfaces_optional_and_fallback() {
    compare(Case {
        name: "separate",
        separate: true,
        files: files(
            "USE_DEFAULT_RT=No\n",
            "net eth0 -\nnet eth1 optional\n",
            "wrt 1 - - eth0 192.168.1.1 track,balance\nfw 2 - - eth1 192.168.2.254 track,fallback\n",
            &[("rtrules", "10.0.0.0/25 - fw 1000\n")],
        ),
        deviations: vec![
            sw("route table 254: 192.168.1.1 dev eth0 scope link src 192.168.1.20", HOSTROUTE_WHY),
            sw("route table 254: 192.168.2.254 dev eth1 scope link src 192.168.2.20", HOSTROUTE_WHY),
            sw(
                "route table 253: 192.168.2.254 dev eth1 scope link",
                "Shorewall's host route to the fallback gateway in table 253; eth1's subnet route in main reaches it (same answers)",
            ),
            sw(
                "route table 253: default via 192.168.2.254 dev eth1 src 192.168.2.20 metric 2",
                "the fallback default: Shorewall gives it the provider's source address",
            ),
            nc(
                "route table 253: default via 192.168.2.254 dev eth1 metric 2",
                "netconverge's fallback default has no `src`: the kernel picks eth1's address, the same one",
            ),
        ],
        marked_source: None,
    });
}
