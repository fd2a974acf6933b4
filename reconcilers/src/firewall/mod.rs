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
//! gateway and interface), and applying fills it from the neighbour table of the namespace
//! (`Kernel::neighbour`), probing the gateway once if it has no entry yet.
//!
//! # Layout
//!
//! This module renders and diffs; `tables` does the text work on loaded tables (scripts,
//! digests, gateway sets, what a listing says); `command` runs nft for the rtnetlink kernel;
//! `netlink` asks the kernel over nfnetlink which of the two tables exist.
//! The sequence of kernel calls is `crate::kernel::services`'s, shared with the fake kernel.

use std::fmt::Write as _;
use std::time::Duration;

use ipnet::IpNet;

use crate::model::object::ObjectRef;
use crate::model::State;
use crate::plan::{Action, Change, Object, Op};

pub(crate) mod command;
pub(crate) mod netlink;
pub(crate) mod tables;

pub(crate) use tables::{gateway_sets, load_script, observed, unreadable};

/// The name of both tables.
pub const TABLE: &str = "netconverge";
/// The Debian package that provides `nft`, named in errors.
pub const PACKAGE: &str = "nftables";
/// How long applying waits for a gateway to answer the neighbour probe.
pub(crate) const NEIGHBOUR_WAIT: Duration = Duration::from_millis(1500);

use crate::model::firewall::{Firewall, FirewallOp, Mark, MarkLayer, Problem, Spec};

// ---------------------------------------------------------------------------------------------
// What to render

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
    let (restore, mut pre) = track_rules(spec);
    for m in &spec.marks {
        if m.layer != MarkLayer::Bridge {
            pre.push(mark_rule(m, spec.mask));
        }
    }
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
    chain(
        &mut s,
        "postrouting",
        "type nat hook postrouting priority srcnat; policy accept;",
        &masquerade_rules(spec),
    );
    if s.ends_with("\n\n") {
        s.pop();
    }
    s.push_str("}\n");
    render_bridge(spec, &mut s);
    Firewall::new(s)
}

/// The rules of `track`: restoring a connection's mark onto its packets (prerouting and
/// output), and marking new connections by where they came in (prerouting only). Returns the
/// restore rules and the prerouting rules (which start with the restore rules).
fn track_rules(spec: &Spec) -> (Vec<String>, Vec<String>) {
    let mask = spec.mask;
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
    (restore, pre)
}

fn masquerade_rules(spec: &Spec) -> Vec<String> {
    spec.masquerade
        .iter()
        .map(|m| match &m.from {
            Some(f) => format!(
                "oifname \"{}\" {} masquerade",
                m.out,
                prefix_match("saddr", f)
            ),
            None => format!("oifname \"{}\" meta nfproto ipv4 masquerade", m.out),
        })
        .collect()
}

/// The bridge table, for marks that must see a bridge port as the input interface.
fn render_bridge(spec: &Spec, s: &mut String) {
    let bridge: Vec<String> = spec
        .marks
        .iter()
        .filter(|m| m.layer != MarkLayer::Inet)
        .map(|m| mark_rule(m, spec.mask))
        .collect();
    if bridge.is_empty() {
        return;
    }
    let _ = writeln!(s, "table bridge {TABLE} {{");
    chain(
        s,
        "prerouting",
        "type filter hook prerouting priority -200; policy accept;",
        &bridge,
    );
    s.pop();
    s.push_str("}\n");
}

/// A base chain with its rules, followed by an empty line; nothing without rules.
fn chain(s: &mut String, name: &str, head: &str, rules: &[String]) {
    if rules.is_empty() {
        return;
    }
    let _ = writeln!(s, "\tchain {name} {{\n\t\t{head}");
    for r in rules {
        let _ = writeln!(s, "\t\t{r}");
    }
    s.push_str("\t}\n\n");
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

/// The firewall in the table of kinds.
pub struct FirewallKind;

/// The firewall kind.
pub static KIND: FirewallKind = FirewallKind;

impl crate::kind::Kind for FirewallKind {
    fn kind(&self) -> crate::model::object::ObjectKind {
        crate::model::object::ObjectKind::Firewall
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

    fn diff(&self, cx: &mut crate::kind::PlanCx<'_>) -> Vec<Change> {
        diff(cx.desired, cx.observed)
    }

    fn warnings(&self, desired: &State, observed: &State) -> Vec<String> {
        warnings(desired, observed)
    }

    /// netconverge's tables as they were, when the plan loads or deletes them.
    fn save(&self, cx: &crate::snapshot::SaveCx<'_>, snap: &mut crate::snapshot::Snapshot) {
        let touched = cx
            .plan
            .changes
            .iter()
            .any(|c| c.object.kind == crate::model::object::ObjectKind::Firewall);
        // Saved in the desired form, so that a replace loads it back as it was: the listing
        // without the digest comments (loading writes them again) and the digest that was
        // recorded, so the restored tables compare as loaded from those same files.
        let before = cx.before.firewall.as_ref().map(|f| Firewall {
            ruleset: tables::without_digests(&f.ruleset),
            digest: f.digest.clone(),
            problem: None,
        });
        snap.firewall = touched.then_some(crate::snapshot::Saved {
            key: (),
            before,
            owned: true,
            protocol: None,
        });
    }

    fn restore(&self, snap: &crate::snapshot::Snapshot, target: &mut State) {
        if let Some(saved) = &snap.firewall {
            target.firewall = saved.before.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::firewall::digest;
    use crate::model::firewall::{Masq, Track};

    pub(crate) fn spec() -> Spec {
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

    fn state(fw: Option<Firewall>) -> State {
        State {
            firewall: fw,
            ..State::default()
        }
    }

    #[test]
    fn diff_compares_digests() {
        let d = render(&spec());
        let mut o = observed(
            tables::tests::listed(&d.digest, tables::tests::BODY),
            |_, _| None,
        );
        assert!(diff(&state(Some(d.clone())), &state(Some(o.clone()))).is_empty());
        let add = diff(&state(Some(d.clone())), &state(None));
        assert_eq!(
            (add[0].action, add[0].object.id.as_str()),
            (Action::Add, crate::model::firewall::ID)
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
        let unreadable = unreadable(&crate::error::KernelError::new(
            "list",
            "nftables tables",
            Some(libc::EPERM),
        ));
        assert!(diff(&state(Some(d.clone())), &state(Some(unreadable.clone()))).is_empty());
        assert!(diff(&state(None), &state(Some(unreadable.clone()))).is_empty());
        assert_eq!(warnings(&state(Some(d)), &state(Some(unreadable))).len(), 1);
    }
}
