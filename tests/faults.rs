//! Honest partial failure (root, each test in its own namespace): a write the kernel refuses
//! is reported with what was applied and what was not, the counts leave it out, the exit is
//! 2, and a clean rerun converges; a firewall nft would refuse is refused before the first
//! write; a firewall that fails to load leaves no provider routing live without its NAT. The
//! oracle is `ip -j`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// Run netconverge with `PATH` starting at `bin` (where a stand-in `nft` may sit).
fn run_with_path(ns: &Netns, desired: &Path, bin: &Path, mode: &str, args: &[&str]) -> Output {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(env!("CARGO_BIN_EXE_netconverge"))
        .args(["--netns", &ns.name, "-d", desired.to_str().unwrap()])
        .args(args)
        .env("PATH", path)
        .env("NC_TEST_NFT", mode)
        .env_remove("NETCONVERGE_LOG")
        .output()
        .expect("run netconverge")
}

/// A stand-in `nft` in `dir`: with NC_TEST_NFT=refuse it refuses every script (`-f`, `-c` or
/// not), with refuse-load only real loads; everything else goes to the real nft.
fn nft_wrapper(dir: &Path) {
    let real = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("CI installs nftables");
    let script = format!(
        "#!/bin/sh\n\
         check=no; load=no\n\
         for a in \"$@\"; do case \"$a\" in -c) check=yes;; -f) load=yes;; esac; done\n\
         if [ $load = yes ] && {{ [ \"$NC_TEST_NFT\" = refuse ] || {{ [ \"$NC_TEST_NFT\" = refuse-load ] && [ $check = no ]; }}; }}; then\n\
           cat >/dev/null; echo 'Error: Could not process rule: No such file or directory' >&2; exit 1\n\
         fi\n\
         exec {real} \"$@\"\n"
    );
    let p = dir.join("nft");
    std::fs::write(&p, script).unwrap();
    sh(&format!("chmod 755 {}", p.display()));
}

/// What `ip` shows of a namespace: links, addresses, routes of every table, rules.
fn kernel_view(ns: &Netns) -> String {
    let links: Vec<String> = ns
        .ip_json("link show")
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("{} {}", l["ifname"], l["ifalias"]))
        .collect();
    format!(
        "{links:?}\n{}\n{}\n{}",
        ns.ip("-4 address show"),
        ns.ip("route show table all"),
        ns.ip("rule show")
    )
}

const PROVIDERS: &str = "\
links:
  eth0: { kind: external, addresses: [192.168.1.20/24], up: true }
  br0: { kind: bridge, addresses: [10.0.0.1/24] }
providers:
  wrt: { number: 1, mark: \"0x1\", interface: eth0, gateway: 192.168.1.1, balance: 1 }
masquerade:
  - { from: 10.0.0.0/24, out: eth0 }
";

#[test]
fn a_failed_write_is_reported_with_what_was_and_was_not_applied() {
    if !root_or_skip("a_failed_write_is_reported_with_what_was_and_was_not_applied") {
        return;
    }
    let (ns, _lan) = host_with_nic();
    // A source address the host does not have: valid input, refused by the kernel at the
    // write (EINVAL, "invalid prefsrc"); a down link would be refused before any write now.
    ns.ip("link set eth0 up");
    let dir = TempDir::new("partial");
    std::fs::write(
        dir.path().join("h.yaml"),
        "tables: { t: 101 }\n\
         links:\n  eth0: { kind: external, addresses: [192.168.9.2/24] }\n  br0: { kind: bridge }\n\
         routes:\n  - { to: 198.51.100.0/24, via: 192.168.9.1, dev: eth0, table: t, src: 203.0.113.99 }\n\
         rules:\n  - { priority: 1000, from: 10.1.0.0/16, table: t }\n",
    )
    .unwrap();
    let out = netconverge_at(&ns, dir.path(), &["reconcile"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}{}", stderr(&out));
    assert!(
        text.contains("Applied 2 of 4 changes (2 added, 0 changed, 0 removed")
            && text.contains(
                "failed: route 198.51.100.0/24 via 192.168.9.1 dev eth0 table 101; \
                 not started: rule 1000: from 10.1.0.0/16 lookup 101"
            ),
        "{text}"
    );
    // The oracle agrees: the link and the address are there, the route and the rule are not.
    assert!(ns.ip("link show br0").contains("br0"));
    assert!(ns.ip("-4 address show eth0").contains("192.168.9.2/24"));
    assert_eq!(ns.ip("route show table all proto 157"), "");
    assert!(!ns.ip("rule show").contains("1000:"));

    // JSON says the same, with counts that leave the failure out.
    let out = netconverge_at(&ns, dir.path(), &["-o", "json", "reconcile"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let a = &doc["applied"];
    assert_eq!(a["planned"], 2, "{a}");
    assert_eq!(a["summary"]["add"], 0, "{a}");
    assert_eq!(a["failed"][0]["kind"], "route", "{a}");
    assert_eq!(a["not_started"][0]["kind"], "rule", "{a}");
    assert!(a["failures"][0].as_str().unwrap().contains("EINVAL"), "{a}");

    // Once the cause is gone a clean rerun converges, and check is clean.
    ns.ip("address add 203.0.113.99/32 dev lo");
    let out = netconverge_at(&ns, dir.path(), &["reconcile"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(ns.ip("route show table 101").contains("198.51.100.0/24"));
    assert_eq!(
        netconverge_at(&ns, dir.path(), &["check"]).status.code(),
        Some(0)
    );
}

#[test]
fn a_firewall_nft_refuses_is_refused_before_the_first_write() {
    if !root_or_skip("a_firewall_nft_refuses_is_refused_before_the_first_write") {
        return;
    }
    let (ns, _lan) = host_with_nic();
    let dir = TempDir::new("nftc");
    let bin = TempDir::new("nftc-bin");
    nft_wrapper(bin.path());
    std::fs::write(dir.path().join("h.yaml"), PROVIDERS).unwrap();
    let before = kernel_view(&ns);
    let out = run_with_path(&ns, dir.path(), bin.path(), "refuse", &["reconcile"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("Applied 0 of"), "{text}");
    assert!(text.contains("failed: firewall"), "{text}");
    assert!(text.contains("check nftables table"), "{text}");
    assert!(text.contains("(0 writes)"), "{text}");
    assert_eq!(kernel_view(&ns), before, "nothing may change");
}

#[test]
fn a_firewall_that_fails_to_load_leaves_no_provider_routing_without_nat() {
    if !root_or_skip("a_firewall_that_fails_to_load_leaves_no_provider_routing_without_nat") {
        return;
    }
    let (ns, _lan) = host_with_nic();
    let dir = TempDir::new("nftf");
    let bin = TempDir::new("nftf-bin");
    nft_wrapper(bin.path());
    std::fs::write(dir.path().join("h.yaml"), PROVIDERS).unwrap();
    let out = run_with_path(&ns, dir.path(), bin.path(), "refuse-load", &["reconcile"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("failed: firewall"), "{text}");
    assert!(text.contains("not started: route"), "{text}");
    // No provider table, no fwmark rule, no default route: nothing routes without the NAT.
    assert_eq!(ns.ip("route show table all proto 157"), "", "{text}");
    assert!(!ns.ip("rule show").contains("fwmark"), "{text}");
    // With a working nft the rerun converges, NAT first.
    let out = run_with_path(&ns, dir.path(), bin.path(), "pass", &["reconcile"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(ns
        .ip("route show table 1")
        .contains("default via 192.168.1.1"));
    assert!(ns.exec("nft list table inet netconverge").status.success());
    let out = run_with_path(&ns, dir.path(), bin.path(), "pass", &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}
