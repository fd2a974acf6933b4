//! `show`: writing a [`State`] back as desired-state YAML, the whole state or one object for
//! the plan's diffs. Each section writes itself (in the module of its kind); this puts them
//! in the order of a hand-written file.
//!
//! Hand-written rather than serialised through serde, because the output is for people and
//! must read like the files they write: block style with one field per line (so a unified diff
//! of two objects shows exactly the fields that differ), defaults left out, tables by name,
//! `default` for default routes, and only the strings that need it quoted. Loading the output
//! gives back the same canonical `State` (the round-trip property test holds this).

use std::collections::BTreeMap;

use reconcilers::kinds;
use reconcilers::model::State;
use reconcilers::plan::Object;

use super::{addresses, dhcp, links, managed, routes, rules, sysctl, tables};

/// The full desired-format YAML of `state`, naming tables by the names in `tables`.
pub fn render_state(state: &State, table_names: &BTreeMap<String, u32>) -> String {
    if kinds::objects(state).is_empty() && table_names.is_empty() {
        return "{}\n".into();
    }
    let sections: Vec<String> = [
        tables::render_section(table_names),
        sysctl::render_section(state),
        links::render_section(state),
        routes::render_section(state, table_names),
        rules::render_section(state, table_names),
        dhcp::render_section(state),
        managed::render_section(state),
    ]
    .into_iter()
    .flatten()
    .collect();
    sections.join("\n")
}

/// The canonical YAML of one object, shaped like the desired-state file that declares it, so a
/// plan's diff reads like an edit to the user's own file.
pub fn render_object(obj: &Object, table_names: &BTreeMap<String, u32>) -> String {
    match obj {
        Object::Link(l) => links::render_object(l),
        Object::Address(a) => addresses::render_object(a),
        Object::Route(r) => routes::render_object(r, table_names),
        Object::Rule(r) => rules::render_object(r, table_names),
        Object::Sysctl { name, value } => sysctl::render_object(name, value),
        // Services are shown as the files netconverge generates for them: the nft ruleset
        // and the dnsmasq configuration, which is what a reviewer wants to diff.
        Object::Firewall(f) => text(&f.ruleset),
        Object::Dhcp(d) => text(&dhcp::render_files(d)),
    }
}

fn text(text: &str) -> String {
    let mut s = text.to_owned();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconcilers::model::{
        Address, BridgeOpts, Family, Link, LinkKind, NextHop, Route, RouteType, Rule, RuleAction,
        RuleKey, Scope,
    };

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
            primary: false,
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
            }]
            .into(),
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
                suppress_prefixlength: None,
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
