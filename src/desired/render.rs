//! Writing a [`State`] back as desired-state YAML: the whole state for `show`, one object for
//! the plan's diffs.
//!
//! Hand-written rather than serialised through serde, because the output is for people and
//! must read like the files they write: block style with one field per line (so a unified diff
//! of two objects shows exactly the fields that differ), defaults left out, tables by name,
//! `default` for default routes, and only the strings that need it quoted. Loading the output
//! gives back the same canonical `State` (the round-trip property test holds this).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use reconcilers::model::{
    Address, Family, Ident, Link, LinkKind, Route, RouteType, Rule, RuleAction, State, TABLE_MAIN,
};
use reconcilers::plan::Object;

/// The full desired-format YAML of `state`, naming tables by the names in `tables`.
///
/// Addresses on a link that `state` does not hold are written under that link as
/// `kind: external`: an address can only sit on an existing interface.
pub fn render_state(state: &State, tables: &BTreeMap<String, u32>) -> String {
    let mut sections: Vec<String> = Vec::new();
    if !tables.is_empty() {
        let mut s = String::from("tables:\n");
        let mut by_id: Vec<(&String, &u32)> = tables.iter().collect();
        by_id.sort_by_key(|(name, id)| (**id, (*name).clone()));
        for (name, id) in by_id {
            let _ = writeln!(s, "  {}: {id}", scalar(name));
        }
        sections.push(s);
    }
    if !state.sysctls.is_empty() {
        let mut s = String::from("sysctl:\n");
        for (name, value) in &state.sysctls {
            let _ = writeln!(s, "  {}: {}", scalar(name), quote(value));
        }
        sections.push(s);
    }
    let mut addrs: BTreeMap<&str, Vec<&IpNet>> = BTreeMap::new();
    for a in state.addresses.values() {
        addrs.entry(a.link.as_str()).or_default().push(&a.address);
    }
    let mut names: Vec<&str> = state.links.keys().map(String::as_str).collect();
    names.extend(addrs.keys().filter(|n| !state.links.contains_key(**n)));
    names.sort_unstable();
    if !names.is_empty() {
        let mut s = String::from("links:\n");
        for name in names {
            let _ = writeln!(s, "  {}:", scalar(name));
            match state.links.get(name) {
                Some(l) => link_fields(&mut s, l, 4),
                None => s.push_str("    kind: external\n"),
            }
            if let Some(list) = addrs.get(name) {
                s.push_str("    addresses:\n");
                for a in list {
                    let _ = writeln!(s, "      - {}", scalar(&a.to_string()));
                }
            }
        }
        sections.push(s);
    }
    if !state.routes.is_empty() {
        let mut s = String::from("routes:\n");
        for r in state.routes.values() {
            route_item(&mut s, r, tables);
        }
        sections.push(s);
    }
    if !state.rules.is_empty() {
        let mut s = String::from("rules:\n");
        for r in state.rules.values() {
            rule_item(&mut s, r, tables);
        }
        sections.push(s);
    }
    if let Some(d) = super::dhcp::render_section(state) {
        sections.push(d);
    }
    if let Some(m) = managed_section(state) {
        sections.push(m);
    }
    if sections.is_empty() {
        return "{}\n".into();
    }
    sections.join("\n")
}

/// The `managed:` section `show` adds when the observed state holds objects carrying
/// netconverge's marks, so that a snapshot keeps ownership for `check --observed`.
fn managed_section(state: &State) -> Option<String> {
    let links: Vec<String> = state
        .links
        .values()
        .filter(|l| l.owned)
        .map(|l| l.name.clone())
        .collect();
    let addresses: Vec<String> = state
        .addresses
        .values()
        .filter(|a| a.owned && !state.links.get(&a.link).is_some_and(|l| l.owned))
        .map(|a| reconcilers::addresses::id(&a.link, &a.address))
        .collect();
    let routes: Vec<String> = state
        .routes
        .values()
        .filter(|r| r.owned)
        .map(reconcilers::routes::id)
        .collect();
    let rules: Vec<String> = state
        .rules
        .values()
        .filter(|r| r.owned)
        .map(reconcilers::rules::id)
        .collect();
    if links.is_empty() && addresses.is_empty() && routes.is_empty() && rules.is_empty() {
        return None;
    }
    let mut s = String::from(
        "# Objects carrying netconverge's ownership marks when this was shown; read by\n\
         # `check --observed` to tell them from foreign ones. Not part of the desired state.\n\
         managed:\n",
    );
    for (key, ids) in [
        ("links", links),
        ("addresses", addresses),
        ("routes", routes),
        ("rules", rules),
    ] {
        if ids.is_empty() {
            continue;
        }
        let _ = writeln!(s, "  {key}:");
        for id in ids {
            let _ = writeln!(s, "    - {}", quote(&id));
        }
    }
    Some(s)
}

/// The canonical YAML of one object, shaped like the desired-state file that declares it, so a
/// plan's diff reads like an edit to the user's own file.
pub fn render_object(obj: &Object, tables: &BTreeMap<String, u32>) -> String {
    let mut s = String::new();
    match obj {
        Object::Link(l) => {
            let _ = writeln!(s, "links:\n  {}:", scalar(&l.name));
            link_fields(&mut s, l, 4);
        }
        Object::Address(Address { link, address, .. }) => {
            let _ = writeln!(
                s,
                "links:\n  {}:\n    addresses:\n      - {}",
                scalar(link),
                scalar(&address.to_string())
            );
        }
        Object::Route(r) => {
            s.push_str("routes:\n");
            route_item(&mut s, r, tables);
        }
        Object::Rule(r) => {
            s.push_str("rules:\n");
            rule_item(&mut s, r, tables);
        }
        Object::Sysctl { name, value } => {
            let _ = writeln!(s, "sysctl:\n  {}: {}", scalar(name), quote(value));
        }
        // Services are shown as the files netconverge generates for them: the nft ruleset
        // and the dnsmasq configuration, which is what a reviewer wants to diff.
        Object::Firewall(f) => push_text(&mut s, &f.ruleset),
        Object::Dhcp(d) => push_text(&mut s, &super::dhcp::render_files(d)),
    }
    s
}

fn push_text(s: &mut String, text: &str) {
    s.push_str(text);
    if !text.ends_with('\n') {
        s.push('\n');
    }
}

/// The fields of a link (not its addresses, which are objects of their own).
fn link_fields(s: &mut String, l: &Link, ind: usize) {
    let pad = " ".repeat(ind);
    let pad2 = " ".repeat(ind + 2);
    let _ = writeln!(s, "{pad}kind: {}", l.kind.name());
    match &l.kind {
        LinkKind::External => {}
        LinkKind::Bridge(b) => {
            if b.stp.is_some() || b.forward_delay.is_some() {
                let _ = writeln!(s, "{pad}bridge:");
                if let Some(v) = b.stp {
                    let _ = writeln!(s, "{pad2}stp: {v}");
                }
                if let Some(v) = b.forward_delay {
                    let _ = writeln!(s, "{pad2}forward_delay: {v}");
                }
            }
        }
        LinkKind::Tap(t) => {
            if t.owner.is_some()
                || t.group.is_some()
                || t.vnet_hdr.is_some()
                || t.multi_queue.is_some()
            {
                let _ = writeln!(s, "{pad}tap:");
                if let Some(v) = &t.owner {
                    let _ = writeln!(s, "{pad2}owner: {}", ident(v));
                }
                if let Some(v) = &t.group {
                    let _ = writeln!(s, "{pad2}group: {}", ident(v));
                }
                if let Some(v) = t.vnet_hdr {
                    let _ = writeln!(s, "{pad2}vnet_hdr: {v}");
                }
                if let Some(v) = t.multi_queue {
                    let _ = writeln!(s, "{pad2}multi_queue: {v}");
                }
            }
        }
        LinkKind::Veth(v) => {
            let _ = writeln!(s, "{pad}veth:\n{pad2}peer: {}", scalar(&v.peer));
        }
        LinkKind::Vxlan(v) => {
            let _ = writeln!(s, "{pad}vxlan:\n{pad2}id: {}", v.id);
            if let Some(a) = v.local {
                let _ = writeln!(s, "{pad2}local: {}", addr(&a));
            }
            if let Some(a) = v.remote {
                let _ = writeln!(s, "{pad2}remote: {}", addr(&a));
            }
            if let Some(d) = &v.dev {
                let _ = writeln!(s, "{pad2}dev: {}", scalar(d));
            }
            if let Some(p) = v.port {
                let _ = writeln!(s, "{pad2}port: {p}");
            }
        }
        LinkKind::Macvlan(m) => {
            let _ = writeln!(
                s,
                "{pad}macvlan:\n{pad2}link: {}\n{pad2}mode: {}",
                scalar(&m.link),
                m.mode.name()
            );
        }
    }
    if let Some(m) = &l.master {
        let _ = writeln!(s, "{pad}master: {}", scalar(m));
    }
    if let Some(m) = l.mtu {
        let _ = writeln!(s, "{pad}mtu: {m}");
    }
    if let Some(m) = l.mac {
        let _ = writeln!(s, "{pad}mac: {}", quote(&m.to_string()));
    }
    if let Some(u) = l.up {
        let _ = writeln!(s, "{pad}up: {u}");
    }
}

/// A table as the user names it; `None` for main where that is the default.
fn table_ref(id: u32, tables: &BTreeMap<String, u32>) -> String {
    let label = super::validate::table_label(id, tables);
    // A name is quoted where YAML needs it; a bare id stays a number.
    if label == id.to_string() {
        label
    } else {
        scalar(&label)
    }
}

fn route_item(s: &mut String, r: &Route, tables: &BTreeMap<String, u32>) {
    let fam = r.family();
    // `default` reads as IPv4 unless a gateway or the source says IPv6 (as loading does).
    let to = if r.to.prefix_len() == 0 {
        let v6_hint = r
            .nexthops
            .iter()
            .filter_map(|h| h.via)
            .chain(r.src)
            .any(|a| a.is_ipv6());
        if fam == Family::Inet || v6_hint {
            "default".to_string()
        } else {
            scalar(&r.to.to_string())
        }
    } else {
        scalar(&r.to.to_string())
    };
    let _ = writeln!(s, "  - to: {to}");
    if r.kind != RouteType::Unicast {
        let _ = writeln!(s, "    type: {}", r.kind.name());
    }
    match r.nexthops.as_slice() {
        [] => {}
        [h] => {
            if let Some(v) = h.via {
                let _ = writeln!(s, "    via: {}", addr(&v));
            }
            if let Some(d) = &h.dev {
                let _ = writeln!(s, "    dev: {}", scalar(d));
            }
            if h.onlink {
                s.push_str("    onlink: true\n");
            }
        }
        hops => {
            s.push_str("    nexthops:\n");
            for h in hops {
                let mut first = true;
                let mut field = |s: &mut String, text: String| {
                    let lead = if first { "      - " } else { "        " };
                    first = false;
                    let _ = writeln!(s, "{lead}{text}");
                };
                if let Some(v) = h.via {
                    field(s, format!("via: {}", addr(&v)));
                }
                if let Some(d) = &h.dev {
                    field(s, format!("dev: {}", scalar(d)));
                }
                field(s, format!("weight: {}", h.weight));
                if h.onlink {
                    field(s, "onlink: true".into());
                }
            }
        }
    }
    if r.table != TABLE_MAIN {
        let _ = writeln!(s, "    table: {}", table_ref(r.table, tables));
    }
    if r.metric != Route::default_metric(fam) {
        let _ = writeln!(s, "    metric: {}", r.metric);
    }
    if let Some(a) = r.src {
        let _ = writeln!(s, "    src: {}", addr(&a));
    }
    if r.scope != Route::default_scope(fam, r.kind, &r.nexthops) {
        let _ = writeln!(s, "    scope: {}", r.scope.name());
    }
    if let Some(m) = r.mtu {
        let _ = writeln!(s, "    mtu: {m}");
    }
    if r.tos != 0 {
        let _ = writeln!(s, "    tos: {}", r.tos);
    }
}

fn rule_item(s: &mut String, r: &Rule, tables: &BTreeMap<String, u32>) {
    let k = &r.key;
    let _ = writeln!(s, "  - priority: {}", k.priority);
    // The family is implied by from/to; say it only when nothing else does.
    let implied = k.from.or(k.to).map_or(Family::Inet, |n| Family::of_net(&n));
    if implied != k.family {
        let _ = writeln!(
            s,
            "    family: {}",
            match k.family {
                Family::Inet => "ipv4",
                Family::Inet6 => "ipv6",
            }
        );
    }
    if k.not {
        s.push_str("    not: true\n");
    }
    if let Some(f) = k.from {
        let _ = writeln!(s, "    from: {}", scalar(&f.to_string()));
    }
    if let Some(t) = k.to {
        let _ = writeln!(s, "    to: {}", scalar(&t.to_string()));
    }
    if let Some((mark, mask)) = k.fwmark {
        let text = if mask == u32::MAX {
            format!("{mark:#x}")
        } else {
            format!("{mark:#x}/{mask:#x}")
        };
        let _ = writeln!(s, "    fwmark: {}", quote(&text));
    }
    if let Some(i) = &k.iif {
        let _ = writeln!(s, "    iif: {}", scalar(i));
    }
    if let Some(o) = &k.oif {
        let _ = writeln!(s, "    oif: {}", scalar(o));
    }
    match r.action {
        RuleAction::Lookup(t) => {
            let _ = writeln!(s, "    table: {}", table_ref(t, tables));
        }
        RuleAction::Blackhole => s.push_str("    action: blackhole\n"),
        RuleAction::Unreachable => s.push_str("    action: unreachable\n"),
        RuleAction::Prohibit => s.push_str("    action: prohibit\n"),
    }
}

fn ident(i: &Ident) -> String {
    match i {
        Ident::Id(n) => n.to_string(),
        Ident::Name(s) => scalar(s),
    }
}

fn addr(a: &IpAddr) -> String {
    scalar(&a.to_string())
}

/// Words a YAML parser may read as something other than a string.
fn reserved(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "nan" | "inf"
    )
}

/// `s` as a YAML scalar: plain when it can only read back as the same string, else quoted.
/// Anything with `:` is quoted (IPv6 addresses, MACs), as the spec's examples write them.
pub(super) fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !s.starts_with(['-', '.'])
        && !reserved(s)
        && (!s.starts_with(|c: char| c.is_ascii_digit())
            || s.parse::<IpAddr>().is_ok()
            || s.parse::<IpNet>().is_ok());
    if plain {
        s.to_owned()
    } else {
        quote(s)
    }
}

/// A double-quoted YAML string.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconcilers::model::{BridgeOpts, NextHop, RuleKey, Scope};

    #[test]
    fn quoting() {
        assert_eq!(scalar("br0"), "br0");
        assert_eq!(scalar("10.0.0.1/24"), "10.0.0.1/24");
        assert_eq!(scalar("fd00:10::1/64"), "\"fd00:10::1/64\"");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("1.5"), "\"1.5\"");
        assert_eq!(scalar("0x10"), "\"0x10\"");
        assert_eq!(scalar("a b"), "\"a b\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn object_shapes() {
        let t = BTreeMap::from([("wrt".to_string(), 101)]);
        let mut l = Link::new("br0", LinkKind::Bridge(BridgeOpts::default()));
        l.mtu = Some(1500);
        assert_eq!(
            render_object(&Object::Link(l), &t),
            "links:\n  br0:\n    kind: bridge\n    mtu: 1500\n"
        );
        let a = Address {
            link: "br0".into(),
            address: "10.0.0.1/24".parse().unwrap(),
            owned: false,
        };
        assert_eq!(
            render_object(&Object::Address(a), &t),
            "links:\n  br0:\n    addresses:\n      - 10.0.0.1/24\n"
        );
        let r = Route {
            table: 101,
            to: "0.0.0.0/0".parse().unwrap(),
            tos: 0,
            metric: 0,
            kind: RouteType::Unicast,
            nexthops: vec![NextHop {
                via: Some("192.168.1.1".parse().unwrap()),
                dev: Some("eth0".into()),
                weight: 1,
                onlink: false,
            }],
            src: None,
            scope: Scope::Global,
            mtu: None,
            owned: false,
        };
        assert_eq!(
            render_object(&Object::Route(r), &t),
            "routes:\n  - to: default\n    via: 192.168.1.1\n    dev: eth0\n    table: wrt\n"
        );
        let rule = Rule {
            key: RuleKey {
                priority: 10001,
                family: Family::Inet,
                from: None,
                to: None,
                fwmark: Some((1, 0xff)),
                iif: None,
                oif: None,
                not: false,
            },
            action: RuleAction::Lookup(101),
            owned: false,
        };
        assert_eq!(
            render_object(&Object::Rule(rule), &t),
            "rules:\n  - priority: 10001\n    fwmark: \"0x1/0xff\"\n    table: wrt\n"
        );
        let sc = Object::Sysctl {
            name: "net.ipv4.ip_forward".into(),
            value: "1".into(),
        };
        assert_eq!(
            render_object(&sc, &t),
            "sysctl:\n  net.ipv4.ip_forward: \"1\"\n"
        );
    }

    #[test]
    fn empty_state() {
        assert_eq!(render_state(&State::default(), &BTreeMap::new()), "{}\n");
    }
}
