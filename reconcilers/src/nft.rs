//! netconverge's own nftables tables: `inet netconverge` (connection tracking of providers,
//! marks, masquerade) and, when a mark is set by bridge port, `bridge netconverge`. Both are
//! replaced together in one `nft -f` transaction and no other table is ever read or written,
//! so they coexist with Shorewall, firewalld or hand-written tables.
//!
//! # Drift detection
//!
//! `nft list` prints a ruleset in its own canonical form (`and 0xffffff00 or 0x2` comes back as
//! `& 0xffffff02 | 0x00000002`), which differs between nft versions, so comparing the listing
//! with the text netconverge loads would either show false drift or need a re-implementation of
//! nft's printer. Instead the table's comment records two digests when the tables are loaded:
//! `netconverge <desired> <listing>` — the digest of the ruleset netconverge rendered, and the
//! digest of what `nft list` printed right after loading it (comment lines left out). On
//! observe, a listing whose digest still matches is the rendered ruleset with that desired
//! digest; anything else (a rule added, deleted or edited, a table flushed) is drift, and so is
//! a gateway whose MAC in the kernel's neighbour table no longer matches the one loaded. The
//! tables are then replaced as a whole. (nft cannot change a table's comment in place, so a
//! replace loads the tables twice: once to list them, once with both digests.)
//!
//! # Gateway MACs
//!
//! `track` on an interface shared by several providers tells their connections apart by the
//! gateway's MAC address (as Shorewall does). The MAC is a fact of the host, not of the desired
//! state: the rendered ruleset holds an empty set per gateway (`gw_N`, commented with the
//! gateway and interface), and `apply` fills it from the neighbour table of the namespace,
//! probing the gateway once if it has no entry yet.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::kernel::KernelError;
use crate::model::{MacAddr, State};
use crate::object::ObjectRef;
use crate::plan::{Action, Change, Object, Op};

/// How the tables are named in plans (`+ add firewall inet netconverge`) and in
/// `State::origins` keys.
pub const ID: &str = "inet netconverge";
/// The name of both tables.
pub const TABLE: &str = "netconverge";
/// The Debian package that provides `nft`, named in errors.
pub const PACKAGE: &str = "nftables";
/// How long `apply` waits for a gateway to answer the neighbour probe.
const NEIGHBOUR_WAIT: Duration = Duration::from_millis(1500);

/// The desired or observed content of netconverge's nftables tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firewall {
    /// Desired: the ruleset netconverge loads (gateway sets empty). Observed: what `nft list`
    /// prints for the tables.
    pub ruleset: String,
    /// Desired: the digest of `ruleset`. Observed: the desired digest recorded in the table's
    /// comment when it was loaded.
    pub digest: String,
    /// Observed: why the tables do not (or may not) hold what was loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

/// Why observed tables cannot be taken as what netconverge loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Problem {
    /// The tables could not be read (no privileges); they are not compared.
    Unreadable(String),
    /// The tables were changed after netconverge loaded them, or a gateway's MAC changed.
    Modified(String),
}

impl Firewall {
    /// A desired firewall with this ruleset.
    pub fn new(ruleset: String) -> Firewall {
        Firewall {
            digest: digest(&ruleset),
            ruleset,
            problem: None,
        }
    }

    fn unreadable(why: String) -> Firewall {
        Firewall {
            ruleset: String::new(),
            digest: String::new(),
            problem: Some(Problem::Unreadable(why)),
        }
    }

    /// Interpret the listing of our tables: intact (its digest matches the one recorded when
    /// it was loaded, and every gateway set holds the gateway's current MAC) or modified.
    fn observed(
        listing: String,
        neighbour: impl Fn(Ipv4Addr, &str) -> Option<MacAddr>,
    ) -> Firewall {
        let recorded = listing.lines().find_map(|l| {
            let rest = l.trim().strip_prefix("comment \"netconverge ")?;
            let mut words = rest.trim_end_matches('"').split_whitespace();
            Some((words.next()?.to_string(), words.next()?.to_string()))
        });
        let problem = match &recorded {
            None => Some("the table has no digest: it was not loaded by netconverge".to_string()),
            Some((_, listed)) if *listed != digest(&without_digests(&listing)) => {
                Some("the tables were changed outside netconverge".to_string())
            }
            Some(_) => gateway_sets(&listing).into_iter().find_map(|g| {
                let now = neighbour(g.gateway, &g.dev)?;
                (g.elements.first() != Some(&now)).then(|| {
                    format!(
                        "gateway {} on {} now has MAC {now}, the table matches {}",
                        g.gateway,
                        g.dev,
                        g.elements
                            .first()
                            .map_or("none".to_string(), ToString::to_string)
                    )
                })
            }),
        };
        Firewall {
            digest: recorded.map(|(d, _)| d).unwrap_or_default(),
            ruleset: listing,
            problem: problem.map(Problem::Modified),
        }
    }
}

/// A write to netconverge's nftables tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirewallOp {
    /// Replace the tables with this content, atomically.
    Replace(Firewall),
    /// Delete the tables.
    Delete,
}

// ---------------------------------------------------------------------------------------------
// What to render

/// The packet handling the provider sections ask for, rendered by [`render`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spec {
    /// The bits of the mark that select a provider.
    pub mask: u32,
    /// Providers whose connections are tracked.
    pub track: Vec<Track>,
    /// Marks set on matching packets.
    pub marks: Vec<Mark>,
    /// Source NAT to the outgoing interface's address.
    pub masquerade: Vec<Masq>,
}

impl Spec {
    /// True when nothing needs netfilter.
    pub fn is_empty(&self) -> bool {
        self.track.is_empty() && self.marks.is_empty() && self.masquerade.is_empty()
    }
}

/// `track` of one provider: new connections arriving through it get its mark, saved in the
/// connection so that every later packet of it (replies included) routes through it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    /// The provider's name (for comments).
    pub provider: String,
    /// The provider's number (names the gateway set).
    pub number: u32,
    /// Its mark.
    pub mark: u32,
    /// Its interface.
    pub interface: String,
    /// On an interface shared with other providers: the gateway, whose MAC identifies the
    /// provider's packets.
    pub gateway: Option<Ipv4Addr>,
}

/// Where a mark rule must run to see its input interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkLayer {
    /// In the inet table: the interface is not a bridge port.
    Inet,
    /// In the bridge table: the interface is a bridge port, which the IP layer never sees
    /// (it sees the bridge); the mark set at bridge prerouting survives into IP routing.
    Bridge,
    /// Both: the interface is not declared, so it may or may not be a bridge port (a rule in
    /// the wrong table never matches).
    Both,
}

/// A mark rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Input interface.
    pub iif: Option<String>,
    /// Source prefix.
    pub from: Option<IpNet>,
    /// Destination prefix.
    pub to: Option<IpNet>,
    /// The mark.
    pub mark: u32,
    /// Which table(s) the rule goes into.
    pub layer: MarkLayer,
}

/// A masquerade rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Masq {
    /// Source prefix (IPv4 only when `None`).
    pub from: Option<IpNet>,
    /// Outgoing interface.
    pub out: String,
}

/// `meta mark set …` / `ct mark set …` keeping the bits outside the mask (other tools, such as
/// Shorewall's traffic shaping, may use them). nft cannot combine two variable operands, so
/// restoring is one rule per provider mark with a constant right-hand side.
fn set_mark(what: &str, mark: u32, mask: u32) -> String {
    if mask == u32::MAX {
        format!("{what} set {mark:#x}")
    } else {
        format!("{what} set {what} and {:#x} or {mark:#x}", !mask)
    }
}

fn prefix_match(dir: &str, net: &IpNet) -> String {
    match net {
        IpNet::V4(_) => format!("ip {dir} {net}"),
        IpNet::V6(_) => format!("ip6 {dir} {net}"),
    }
}

fn mark_rule(m: &Mark, mask: u32) -> String {
    let mut s = String::new();
    if let Some(i) = &m.iif {
        let _ = write!(s, "iifname \"{i}\" ");
    }
    if let Some(f) = &m.from {
        let _ = write!(s, "{} ", prefix_match("saddr", f));
    }
    if let Some(t) = &m.to {
        let _ = write!(s, "{} ", prefix_match("daddr", t));
    }
    s + &set_mark("meta mark", m.mark, mask) + " comment \"marks\""
}

/// Render the tables. The output is what `nft -f` loads (one statement per line, as it
/// wants), laid out like `nft list` so that people reading a plan recognise it.
pub fn render(spec: &Spec) -> Firewall {
    let mask = spec.mask;
    let mut s = format!("table inet {TABLE} {{\n");
    for t in &spec.track {
        if let Some(g) = t.gateway {
            let _ = write!(
                s,
                "\tset gw_{} {{\n\t\ttype ether_addr\n\t\tcomment \"gateway {g} dev {}\"\n\t}}\n\n",
                t.number, t.interface
            );
        }
    }
    let restore: Vec<String> = spec
        .track
        .iter()
        .map(|t| {
            format!(
                "ct mark and {mask:#x} == {:#x} {} comment \"track {}: restore\"",
                t.mark,
                set_mark("meta mark", t.mark, mask),
                t.provider
            )
        })
        .collect();
    let mut pre: Vec<String> = restore.clone();
    for t in &spec.track {
        let by = match t.gateway {
            Some(_) => format!("iifname \"{}\" ether saddr @gw_{}", t.interface, t.number),
            None => format!("iifname \"{}\"", t.interface),
        };
        pre.push(format!(
            "meta mark and {mask:#x} == 0 ct state new {by} {} {} comment \"track {}: new connection\"",
            set_mark("meta mark", t.mark, mask),
            set_mark("ct mark", t.mark, mask),
            t.provider
        ));
    }
    for m in &spec.marks {
        if m.layer != MarkLayer::Bridge {
            pre.push(mark_rule(m, mask));
        }
    }
    let chain = |s: &mut String, name: &str, head: &str, rules: &[String]| {
        if rules.is_empty() {
            return;
        }
        let _ = writeln!(s, "\tchain {name} {{\n\t\t{head}");
        for r in rules {
            let _ = writeln!(s, "\t\t{r}");
        }
        s.push_str("\t}\n\n");
    };
    chain(
        &mut s,
        "prerouting",
        "type filter hook prerouting priority mangle; policy accept;",
        &pre,
    );
    // A route chain: changing the mark of a locally generated packet reroutes it.
    chain(
        &mut s,
        "output",
        "type route hook output priority mangle; policy accept;",
        &restore,
    );
    let nat: Vec<String> = spec
        .masquerade
        .iter()
        .map(|m| match &m.from {
            Some(f) => format!(
                "oifname \"{}\" {} masquerade",
                m.out,
                prefix_match("saddr", f)
            ),
            None => format!("oifname \"{}\" meta nfproto ipv4 masquerade", m.out),
        })
        .collect();
    chain(
        &mut s,
        "postrouting",
        "type nat hook postrouting priority srcnat; policy accept;",
        &nat,
    );
    if s.ends_with("\n\n") {
        s.pop();
    }
    s.push_str("}\n");
    let bridge: Vec<String> = spec
        .marks
        .iter()
        .filter(|m| m.layer != MarkLayer::Inet)
        .map(|m| mark_rule(m, mask))
        .collect();
    if !bridge.is_empty() {
        let _ = writeln!(s, "table bridge {TABLE} {{");
        chain(
            &mut s,
            "prerouting",
            "type filter hook prerouting priority -200; policy accept;",
            &bridge,
        );
        s.pop();
        s.push_str("}\n");
    }
    Firewall::new(s)
}

// ---------------------------------------------------------------------------------------------
// Planning

/// Diff the firewall part of the state: the tables are one object, replaced as a whole.
pub fn diff(desired: &State, observed: &State) -> Vec<Change> {
    let change = |action, before: Option<&Firewall>, after: Option<&Firewall>, note| {
        let op = match after {
            Some(f) => FirewallOp::Replace(f.clone()),
            None => FirewallOp::Delete,
        };
        Change {
            action,
            object: ObjectRef::firewall(),
            before: before.cloned().map(Object::Firewall),
            after: after.cloned().map(Object::Firewall),
            note,
            ops: vec![Op::Firewall(op)],
        }
    };
    match (&desired.firewall, &observed.firewall) {
        (_, Some(o)) if matches!(o.problem, Some(Problem::Unreadable(_))) => Vec::new(),
        (None, None) => Vec::new(),
        (None, Some(o)) => vec![change(
            Action::Remove,
            Some(o),
            None,
            Some("no providers, marks or masquerade left".into()),
        )],
        (Some(d), None) => vec![change(Action::Add, None, Some(d), None)],
        (Some(d), Some(o)) => match &o.problem {
            Some(Problem::Modified(why)) => {
                vec![change(Action::Change, Some(o), Some(d), Some(why.clone()))]
            }
            _ if o.digest == d.digest => Vec::new(),
            _ => vec![change(Action::Change, Some(o), Some(d), None)],
        },
    }
}

/// Warnings for the plan: tables that could not be compared.
pub fn warnings(desired: &State, observed: &State) -> Vec<String> {
    match (&desired.firewall, &observed.firewall) {
        (
            Some(_),
            Some(Firewall {
                problem: Some(Problem::Unreadable(why)),
                ..
            }),
        ) => vec![format!(
            "netconverge's nftables tables were not compared: {why}"
        )],
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// The kernel side

fn missing_nft() -> KernelError {
    KernelError::new("load", format!("nftables table {ID}"), Some(libc::ENOENT)).with_hint(format!(
        "the `nft` program is not installed; providers' track, marks and masquerade need it: install the Debian package `{PACKAGE}`"
    ))
}

/// Run nft with `args`, feeding `input` on stdin; its stderr as the error.
fn nft(args: &[&str], input: Option<&str>) -> Result<String, String> {
    let Some(prog) = crate::programs::find("nft") else {
        return Err(format!("nft is not installed (Debian package `{PACKAGE}`)"));
    };
    let mut child = Command::new(prog)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write to nft: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(err
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" / "))
    }
}

/// Which of our two tables exist; `Err` with nft's message when the tables cannot be listed.
fn our_tables() -> Result<Vec<&'static str>, String> {
    let list = nft(&["list", "tables"], None)?;
    Ok(["inet", "bridge"]
        .into_iter()
        .filter(|fam| {
            list.lines()
                .any(|l| l.trim() == format!("table {fam} {TABLE}"))
        })
        .collect())
}

/// The listing of our tables, inet first.
fn listing(families: &[&str]) -> Result<String, String> {
    let mut out = String::new();
    for fam in families {
        out.push_str(&nft(&["list", "table", fam, TABLE], None)?);
    }
    Ok(out)
}

/// Read netconverge's tables in the calling thread's namespace (`None` when absent, or when
/// nft is not installed: then there is nothing netconverge could have loaded).
pub fn observe() -> Result<Option<Firewall>, KernelError> {
    if crate::programs::find("nft").is_none() {
        return Ok(None);
    }
    let families = match our_tables() {
        Ok(f) => f,
        Err(e) if e.contains("Operation not permitted") => {
            return Ok(Some(Firewall::unreadable(format!(
                "listing them needs CAP_NET_ADMIN ({e})"
            ))))
        }
        Err(e) => {
            return Err(KernelError::new("list", "nftables tables", None).with_hint(e));
        }
    };
    if families.is_empty() {
        return Ok(None);
    }
    let text = listing(&families)
        .map_err(|e| KernelError::new("list", format!("nftables table {ID}"), None).with_hint(e))?;
    Ok(Some(Firewall::observed(text, neighbour)))
}

/// Apply one firewall op in the calling thread's namespace, as one transaction per load.
pub fn apply(op: &FirewallOp) -> Result<(), KernelError> {
    if crate::programs::find("nft").is_none() {
        return Err(missing_nft());
    }
    let fail =
        |e: String| KernelError::new("load", format!("nftables table {ID}"), None).with_hint(e);
    // `add` first so that `delete` cannot fail on a missing table: one file, one transaction.
    let mut head = String::new();
    for fam in ["inet", "bridge"] {
        let _ = writeln!(head, "add table {fam} {TABLE}\ndelete table {fam} {TABLE}");
    }
    let f = match op {
        FirewallOp::Delete => return nft(&["-f", "-"], Some(&head)).map(drop).map_err(fail),
        FirewallOp::Replace(f) => f,
    };
    let mut elements = String::new();
    for g in gateway_sets(&f.ruleset) {
        match resolve_neighbour(g.gateway, &g.dev) {
            Some(mac) => {
                let _ = writeln!(elements, "add element inet {TABLE} {} {{ {mac} }}", g.set);
            }
            None => tracing::warn!(
                "gateway {} on {} does not answer: its set {} stays empty until a later reconcile finds its MAC",
                g.gateway,
                g.dev,
                g.set
            ),
        }
    }
    let script = |comment: &str| {
        let body = f.ruleset.replacen(
            &format!("table inet {TABLE} {{\n"),
            &format!("table inet {TABLE} {{\n\tcomment \"{comment}\"\n"),
            1,
        );
        format!("{head}{body}{elements}")
    };
    nft(
        &["-f", "-"],
        Some(&script(&format!("netconverge {}", f.digest))),
    )
    .map_err(fail)?;
    let families = our_tables().map_err(fail)?;
    let listed = digest(&without_digests(&listing(&families).map_err(fail)?));
    nft(
        &["-f", "-"],
        Some(&script(&format!("netconverge {} {listed}", f.digest))),
    )
    .map(drop)
    .map_err(fail)
}

/// The listing without our digest comment, which is what the listing digest covers.
fn without_digests(listing: &str) -> String {
    listing
        .lines()
        .filter(|l| !l.trim().starts_with("comment \"netconverge "))
        .fold(String::new(), |mut s, l| {
            s.push_str(l);
            s.push('\n');
            s
        })
}

/// 64-bit FNV-1a as hex. Change detection, not security: whoever can edit the tables can
/// edit the comment too. Stable across Rust versions, unlike `DefaultHasher`.
fn digest(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A gateway set of a ruleset or listing.
#[derive(Debug, PartialEq, Eq)]
struct GatewaySet {
    set: String,
    gateway: Ipv4Addr,
    dev: String,
    elements: Vec<MacAddr>,
}

/// The `gw_N` sets with their `gateway G dev I` comments and elements.
fn gateway_sets(text: &str) -> Vec<GatewaySet> {
    let mut out = Vec::new();
    let mut set: Option<String> = None;
    let mut at: Option<(Ipv4Addr, String)> = None;
    let mut elements: Vec<MacAddr> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("set ").and_then(|l| l.strip_suffix(" {")) {
            set = Some(name.to_string());
            at = None;
            elements.clear();
        } else if set.is_none() {
            continue;
        } else if let Some(c) = line
            .strip_prefix("comment \"gateway ")
            .and_then(|c| c.strip_suffix('"'))
        {
            at = c
                .split_once(" dev ")
                .and_then(|(g, d)| Some((g.parse().ok()?, d.to_string())));
        } else if let Some(list) = line
            .strip_prefix("elements = {")
            .and_then(|l| l.strip_suffix('}'))
        {
            elements.extend(
                list.split(',')
                    .filter_map(|m| m.trim().parse::<MacAddr>().ok()),
            );
        } else if line == "}" {
            if let (Some(set), Some((gateway, dev))) = (set.take(), at.take()) {
                out.push(GatewaySet {
                    set,
                    gateway,
                    dev,
                    elements: std::mem::take(&mut elements),
                });
            }
        }
    }
    out
}

/// The MAC of `ip` on `dev` in the neighbour table of the calling thread's namespace (the
/// thread's own view: `/proc/thread-self`, since a namespace thread differs from the process).
fn neighbour(ip: Ipv4Addr, dev: &str) -> Option<MacAddr> {
    let text = std::fs::read_to_string("/proc/thread-self/net/arp").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let [addr, _hw, flags, mac, _mask, device] = f.as_slice() else {
            return None;
        };
        // ATF_COM (0x2): the entry is complete.
        let complete = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()? & 0x2 != 0;
        (complete && *device == dev && addr.parse::<Ipv4Addr>().ok()? == ip)
            .then(|| mac.parse().ok())
            .flatten()
    })
}

/// The gateway's MAC, probing it once (a datagram to the discard port makes the kernel ask)
/// when the neighbour table has no entry yet.
fn resolve_neighbour(ip: Ipv4Addr, dev: &str) -> Option<MacAddr> {
    if let Some(m) = neighbour(ip, dev) {
        return Some(m);
    }
    if let Ok(sock) = UdpSocket::bind("0.0.0.0:0") {
        let _ = sock.send_to(b"netconverge", (IpAddr::V4(ip), 9));
    }
    let start = Instant::now();
    while start.elapsed() < NEIGHBOUR_WAIT {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(m) = neighbour(ip, dev) {
            return Some(m);
        }
    }
    None
}

/// The firewall in the table of kinds.
pub struct FirewallKind;

/// The firewall kind.
pub static KIND: FirewallKind = FirewallKind;

impl crate::kinds::Kind for FirewallKind {
    fn kind(&self) -> crate::object::ObjectKind {
        crate::object::ObjectKind::Firewall
    }

    /// netconverge's tables are its own by name; the desired side owns nothing.
    fn objects(&self, state: &State) -> Vec<(ObjectRef, bool)> {
        state
            .firewall
            .iter()
            .map(|_| (ObjectRef::firewall(), true))
            .collect()
    }

    fn set_owned(&self, _state: &mut State, _owned: &dyn Fn(&ObjectRef) -> bool) {}

    fn diff(&self, cx: &mut crate::kinds::PlanCx<'_>) -> Vec<Change> {
        diff(cx.desired, cx.observed)
    }

    fn warnings(&self, desired: &State, observed: &State) -> Vec<String> {
        warnings(desired, observed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            mask: 0xff,
            track: vec![
                Track {
                    provider: "wrt".into(),
                    number: 1,
                    mark: 1,
                    interface: "eth0".into(),
                    gateway: Some("192.168.1.1".parse().unwrap()),
                },
                Track {
                    provider: "isp".into(),
                    number: 3,
                    mark: 3,
                    interface: "ppp0".into(),
                    gateway: None,
                },
            ],
            marks: vec![Mark {
                iif: Some("tap-centos".into()),
                from: None,
                to: None,
                mark: 2,
                layer: MarkLayer::Bridge,
            }],
            masquerade: vec![Masq {
                from: Some("10.0.0.0/24".parse().unwrap()),
                out: "eth0".into(),
            }],
        }
    }

    #[test]
    fn renders_one_statement_per_line() {
        let f = render(&spec());
        let expected = "\
table inet netconverge {
\tset gw_1 {
\t\ttype ether_addr
\t\tcomment \"gateway 192.168.1.1 dev eth0\"
\t}

\tchain prerouting {
\t\ttype filter hook prerouting priority mangle; policy accept;
\t\tct mark and 0xff == 0x1 meta mark set meta mark and 0xffffff00 or 0x1 comment \"track wrt: restore\"
\t\tct mark and 0xff == 0x3 meta mark set meta mark and 0xffffff00 or 0x3 comment \"track isp: restore\"
\t\tmeta mark and 0xff == 0 ct state new iifname \"eth0\" ether saddr @gw_1 meta mark set meta mark and 0xffffff00 or 0x1 ct mark set ct mark and 0xffffff00 or 0x1 comment \"track wrt: new connection\"
\t\tmeta mark and 0xff == 0 ct state new iifname \"ppp0\" meta mark set meta mark and 0xffffff00 or 0x3 ct mark set ct mark and 0xffffff00 or 0x3 comment \"track isp: new connection\"
\t}

\tchain output {
\t\ttype route hook output priority mangle; policy accept;
\t\tct mark and 0xff == 0x1 meta mark set meta mark and 0xffffff00 or 0x1 comment \"track wrt: restore\"
\t\tct mark and 0xff == 0x3 meta mark set meta mark and 0xffffff00 or 0x3 comment \"track isp: restore\"
\t}

\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\toifname \"eth0\" ip saddr 10.0.0.0/24 masquerade
\t}
}
table bridge netconverge {
\tchain prerouting {
\t\ttype filter hook prerouting priority -200; policy accept;
\t\tiifname \"tap-centos\" meta mark set meta mark and 0xffffff00 or 0x2 comment \"marks\"
\t}
}
";
        assert_eq!(f.ruleset, expected);
        assert_eq!(f.digest, digest(expected));
        assert_eq!(f.problem, None);
    }

    #[test]
    fn full_mask_sets_the_whole_mark() {
        assert_eq!(set_mark("meta mark", 2, u32::MAX), "meta mark set 0x2");
    }

    #[test]
    fn gateway_sets_are_found_in_rulesets_and_listings() {
        let f = render(&spec());
        assert_eq!(
            gateway_sets(&f.ruleset),
            [GatewaySet {
                set: "gw_1".into(),
                gateway: "192.168.1.1".parse().unwrap(),
                dev: "eth0".into(),
                elements: vec![],
            }]
        );
        let listed = "table inet netconverge {\n\tcomment \"netconverge a b\"\n\tset gw_2 {\n\t\ttype ether_addr\n\t\tcomment \"gateway 192.168.1.254 dev eth0\"\n\t\telements = { 52:54:00:00:00:fe }\n\t}\n}\n";
        assert_eq!(
            gateway_sets(listed)[0].elements,
            ["52:54:00:00:00:fe".parse::<MacAddr>().unwrap()]
        );
    }

    fn listed(desired: &str, body: &str) -> String {
        let listed = digest(&without_digests(body));
        body.replacen(
            "table inet netconverge {\n",
            &format!("table inet netconverge {{\n\tcomment \"netconverge {desired} {listed}\"\n"),
            1,
        )
    }

    const BODY: &str = "table inet netconverge {\n\tset gw_2 {\n\t\ttype ether_addr\n\t\tcomment \"gateway 192.168.1.254 dev eth0\"\n\t\telements = { 52:54:00:00:00:fe }\n\t}\n\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\toifname \"eth0\" ip saddr 10.0.0.0/24 masquerade\n\t}\n}\n";

    #[test]
    fn an_intact_listing_is_the_loaded_ruleset() {
        let fw = Firewall::observed(listed("d1", BODY), |_, _| None);
        assert_eq!(fw.digest, "d1");
        assert_eq!(fw.problem, None);
        let same_mac =
            Firewall::observed(listed("d1", BODY), |_, _| "52:54:00:00:00:fe".parse().ok());
        assert_eq!(same_mac.problem, None);
    }

    #[test]
    fn edits_and_new_macs_are_drift() {
        let edited = listed("d1", BODY).replace("10.0.0.0/24", "10.0.9.0/24");
        let fw = Firewall::observed(edited, |_, _| None);
        assert!(
            matches!(fw.problem, Some(Problem::Modified(ref m)) if m.contains("changed outside")),
            "{fw:?}"
        );
        let flushed = listed("d1", BODY)
            .replace("\t\toifname \"eth0\" ip saddr 10.0.0.0/24 masquerade\n", "");
        assert!(Firewall::observed(flushed, |_, _| None).problem.is_some());
        let moved = Firewall::observed(listed("d1", BODY), |_, _| "52:54:00:00:00:aa".parse().ok());
        assert!(
            matches!(moved.problem, Some(Problem::Modified(ref m)) if m.contains("now has MAC 52:54:00:00:00:aa")),
            "{moved:?}"
        );
        let foreign = Firewall::observed(BODY.to_string(), |_, _| None);
        assert!(
            matches!(foreign.problem, Some(Problem::Modified(ref m)) if m.contains("not loaded by netconverge"))
        );
    }

    fn state(fw: Option<Firewall>) -> State {
        State {
            firewall: fw,
            ..State::default()
        }
    }

    #[test]
    fn diff_compares_digests() {
        let d = render(&spec());
        let mut o = Firewall::observed(listed(&d.digest, BODY), |_, _| None);
        assert!(diff(&state(Some(d.clone())), &state(Some(o.clone()))).is_empty());
        let add = diff(&state(Some(d.clone())), &state(None));
        assert_eq!(
            (add[0].action, add[0].object.id.as_str()),
            (Action::Add, ID)
        );
        assert_eq!(add[0].ops, [Op::Firewall(FirewallOp::Replace(d.clone()))]);
        let rm = diff(&state(None), &state(Some(o.clone())));
        assert_eq!(rm[0].action, Action::Remove);
        assert_eq!(rm[0].ops, [Op::Firewall(FirewallOp::Delete)]);
        o.digest = "other".into();
        assert_eq!(
            diff(&state(Some(d.clone())), &state(Some(o.clone())))[0].action,
            Action::Change
        );
        let unreadable = Firewall::unreadable("no".into());
        assert!(diff(&state(Some(d.clone())), &state(Some(unreadable.clone()))).is_empty());
        assert!(diff(&state(None), &state(Some(unreadable.clone()))).is_empty());
        assert_eq!(warnings(&state(Some(d)), &state(Some(unreadable))).len(), 1);
    }
}
