//! A bounded, seeded mutation fuzz of the shipped desired files (`desired/*.yaml`,
//! `examples/providers.yaml`): a few thousand mutants — bytes flipped, lines dropped,
//! duplicated or swapped, hostile tokens spliced in — are loaded in-process (no panic), and a
//! sample of them is reconciled as root in a fresh namespace each: exit 0 or 2 only, and an
//! unchanged `ip -j` snapshot when refused. The seed is fixed (`NETCONVERGE_FUZZ_SEED`
//! overrides it, `NETCONVERGE_FUZZ_MUTANTS` the count), so a failure is reproducible.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;

/// A small xorshift generator: reproducible from its seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Tokens that each broke something once, or mean something to the kernel, YAML or dnsmasq.
const TOKENS: &[&str] = &[
    "%d",
    "all",
    "default",
    "fe80::1/64",
    "\"1\\n0\"",
    ",eth0",
    "\"",
    "'",
    "#",
    "&a",
    "*a",
    "- ",
    ": ",
    "{",
    "}",
    "[",
    "]",
    "-1",
    "0",
    "65536",
    "4294967296",
    "99999999999999999999",
    "0x1",
    "010",
    "passthru",
    "up: false",
    "mtu: 1200",
    "::",
    "/33",
    "/129",
    "..",
    "/",
    "\t",
    "~",
    "null",
    "true",
    "1e9",
    "\u{0}",
    "\u{feff}",
    "é",
];

fn mutate(src: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = src.lines().map(str::to_string).collect();
    for _ in 0..=rng.below(3) {
        let n = lines.len().max(1);
        let i = rng.below(n);
        match rng.below(6) {
            0 if !lines.is_empty() => {
                lines.remove(i);
            }
            1 if !lines.is_empty() => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 if lines.len() > 1 => {
                let j = rng.below(n);
                lines.swap(i, j);
            }
            3 if !lines.is_empty() => {
                let l = &mut lines[i];
                let mut b: Vec<char> = l.chars().collect();
                if !b.is_empty() {
                    let k = rng.below(b.len());
                    b[k] = char::from(32 + (rng.below(95) as u8));
                }
                *l = b.into_iter().collect();
            }
            _ if !lines.is_empty() => {
                let l = &mut lines[i];
                let cut = l.char_indices().map(|(p, _)| p).nth(rng.below(l.len() + 1));
                let at = cut.unwrap_or(l.len());
                l.insert_str(at, TOKENS[rng.below(TOKENS.len())]);
            }
            _ => lines.push(TOKENS[rng.below(TOKENS.len())].to_string()),
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The shipped files, with tap owners every test host has.
fn corpus() -> Vec<(String, String)> {
    let root = repo();
    let mut out = Vec::new();
    for f in [
        "desired/ursa.yaml",
        "desired/ursa-dhcp.yaml",
        "examples/providers.yaml",
    ] {
        let text = std::fs::read_to_string(root.join(f)).unwrap();
        let text = text
            .replace("owner: tom", "owner: nobody")
            .replace("group: kvm", "group: nogroup");
        out.push((f.to_string(), text));
    }
    // ursa-dhcp.yaml needs ursa.yaml's br0; fuzz the pair as one file too.
    let pair = format!("{}{}", out[0].1, out[1].1.replace("dhcp:", "\ndhcp:"));
    out.push(("ursa+dhcp".into(), pair));
    out
}

#[test]
fn mutants_of_the_shipped_files_never_panic_when_loaded() {
    let seed = env_or("NETCONVERGE_FUZZ_SEED", 0x5eed_2026);
    let count = env_or("NETCONVERGE_FUZZ_MUTANTS", 3000);
    let mut rng = Rng(seed | 1);
    let files = corpus();
    let (mut valid, mut invalid) = (0, 0);
    for n in 0..count {
        let (name, src) = &files[rng.below(files.len())];
        let m = mutate(src, &mut rng);
        let loaded = std::panic::catch_unwind(|| {
            netconverge::desired::load_str(&m, Path::new("m.yaml")).is_ok()
        });
        match loaded {
            Ok(true) => valid += 1,
            Ok(false) => invalid += 1,
            Err(_) => panic!("mutant {n} of {name} (seed {seed:#x}) panicked:\n{m}"),
        }
    }
    eprintln!("{count} mutants: {valid} valid, {invalid} refused");
    assert!(valid > 0 && invalid > 0, "the mutants exercise both paths");
}

fn snapshot(ns: &Netns) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for what in [
        "link show",
        "addr show",
        "-4 route show table all",
        "-6 route show table all",
        "-4 rule",
        "-6 rule",
    ] {
        for line in ns.ip(what).lines() {
            // Operational state and timers move on their own; the objects do not.
            let mut keep = Vec::new();
            let mut words = line.split_whitespace();
            while let Some(w) = words.next() {
                if w == "state" {
                    words.next();
                } else if !w.contains("LOWER_UP") && !w.contains("lft") {
                    keep.push(w);
                }
            }
            let keep = keep.join(" ");
            out.insert(format!("{what}: {keep}"));
        }
    }
    out
}

/// Kills what a mutant started in its namespace (dnsmasq) and removes its state directory.
struct Reap(String);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Ok(out) = std::process::Command::new("ip")
            .args(["netns", "pids", &self.0])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    // SAFETY: kill(2) on a process inside the test's own namespace.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        let _ = std::fs::remove_dir_all(format!("/run/netconverge/netns/{}", self.0));
    }
}

#[test]
fn sampled_mutants_exit_0_or_2_and_write_nothing_when_refused() {
    if !root_or_skip("sampled_mutants_exit_0_or_2_and_write_nothing_when_refused") {
        return;
    }
    let seed = env_or("NETCONVERGE_FUZZ_SEED", 0x5eed_2026) ^ 0xabcd;
    let count = env_or("NETCONVERGE_FUZZ_KERNEL_MUTANTS", 40);
    let mut rng = Rng(seed | 1);
    let files = corpus();
    let mut failures = Vec::new();
    let mut seen = [0u32; 3];
    for n in 0..count {
        let (name, src) = &files[rng.below(files.len())];
        let m = mutate(src, &mut rng);
        let (ns, _lan) = host_with_nic();
        let _reap = Reap(ns.name.clone());
        let dir = TempDir::new("fuzz");
        std::fs::write(dir.path().join("m.yaml"), &m).unwrap();
        let before = snapshot(&ns);
        let out = netconverge_at(&ns, dir.path(), &["reconcile"]);
        let bucket = match out.status.code() {
            Some(0) => 0,
            Some(2) if stderr(&out).contains("m.yaml:") => 1,
            _ => 2,
        };
        seen[bucket] += 1;
        match out.status.code() {
            Some(0) => {}
            Some(2) if stderr(&out).contains("is invalid") || stderr(&out).contains("m.yaml:") => {
                let after = snapshot(&ns);
                if after != before {
                    let diff: Vec<_> = after.symmetric_difference(&before).collect();
                    failures.push(format!(
                        "mutant {n} of {name}: refused after writes {diff:?}\n{m}"
                    ));
                }
            }
            Some(2) => {} // a kernel failure after validation is the faults issue's to report
            other => failures.push(format!(
                "mutant {n} of {name}: exit {other:?}: {}\n{m}",
                stderr(&out)
            )),
        }
    }
    eprintln!(
        "{count} mutants reconciled: {} applied, {} refused at a place, {} failed otherwise",
        seen[0], seen[1], seen[2]
    );
    assert!(
        failures.is_empty(),
        "seed {seed:#x}:\n{}",
        failures.join("\n")
    );
}
