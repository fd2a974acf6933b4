//! `netconverge graph`: a picture of the network — links with their addresses, bridges with
//! their ports, the VMs' taps, veth pairs, tunnels and macvlans on their parents, and the
//! providers with their gateways and tables — as Graphviz DOT, or as SVG laid out in-process
//! (layout-rs, so no `dot` program is needed).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use reconcilers::model::{table_word, LinkKind, State};
use reconcilers::providers::Providers;

/// Why a picture could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot lay out the graph: {0}")]
pub struct GraphError(String);

/// The topology of `state` (and of `providers`, when the desired state has any) as DOT.
pub fn dot(state: &State, providers: &Providers, tables: &BTreeMap<String, u32>) -> String {
    let mut out = String::from("digraph netconverge {\n  rankdir=LR;\n  node [shape=box];\n");
    let addrs = addresses(state);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for l in state.links.values() {
        let mut label = vec![l.name.clone(), kind_words(&l.kind)];
        label.extend(addrs.get(l.name.as_str()).cloned().unwrap_or_default());
        node(&mut out, &l.name, &label, shape(&l.kind));
        seen.insert(l.name.clone());
    }
    let mut edges = String::new();
    for l in state.links.values() {
        for (to, label) in links_of(&l.kind, l.master.as_deref()) {
            if !seen.contains(&to) && !state.links.contains_key(&to) {
                node(&mut out, &to, &[to.clone(), "not declared".into()], "box");
                seen.insert(to.clone());
            }
            let _ = writeln!(
                edges,
                "  {} -> {} [label={}];",
                id(&l.name),
                id(&to),
                q(label)
            );
        }
    }
    gateways(state, providers, tables, &mut seen, &mut out, &mut edges);
    for p in &providers.providers {
        let name = format!("provider {}", p.name);
        let table = tables
            .iter()
            .find(|(_, id)| **id == p.number)
            .map_or_else(|| table_word(p.number), |(n, _)| n.clone());
        let mut label = vec![
            name.clone(),
            p.gateway
                .map_or_else(|| "via (detect)".to_string(), |g| format!("via {g}")),
            format!("table {table} ({})", p.number),
        ];
        if let Some(w) = p.balance {
            label.push(format!("balance {w}"));
        }
        node(&mut out, &name, &label, "ellipse");
        if !seen.contains(&p.interface) {
            node(
                &mut out,
                &p.interface,
                &[p.interface.clone(), "not declared".into()],
                "box",
            );
            seen.insert(p.interface.clone());
        }
        let _ = writeln!(
            edges,
            "  {} -> {} [label=\"uplink\"];",
            id(&p.interface),
            id(&name)
        );
    }
    out.push_str(&edges);
    out.push_str("}\n");
    out
}

/// The gateways routes go through (other than the providers'), with the tables that use
/// them, hanging off the link they are reached on.
fn gateways(
    state: &State,
    providers: &Providers,
    tables: &BTreeMap<String, u32>,
    seen: &mut BTreeSet<String>,
    out: &mut String,
    edges: &mut String,
) {
    let mut by_gateway: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for r in state.routes.values() {
        for h in &r.nexthops {
            let (Some(via), Some(dev)) = (h.via, &h.dev) else {
                continue;
            };
            if providers
                .providers
                .iter()
                .any(|p| p.gateway.map(std::net::IpAddr::V4) == Some(via))
            {
                continue;
            }
            let table = tables
                .iter()
                .find(|(_, id)| **id == r.table)
                .map_or_else(|| table_word(r.table), |(n, _)| n.clone());
            by_gateway
                .entry((via.to_string(), dev.clone()))
                .or_default()
                .insert(table);
        }
    }
    for ((via, dev), tables) in by_gateway {
        let name = format!("gateway {via}");
        let list: Vec<String> = tables.into_iter().collect();
        node(
            out,
            &name,
            &[name.clone(), format!("tables: {}", list.join(", "))],
            "ellipse",
        );
        if !seen.contains(&dev) {
            node(out, &dev, &[dev.clone(), "not declared".into()], "box");
            seen.insert(dev.clone());
        }
        let _ = writeln!(edges, "  {} -> {} [label=\"via\"];", id(&dev), id(&name));
    }
}

/// Lay `dot` out as SVG.
pub fn svg(dot: &str) -> Result<String, GraphError> {
    let mut parser = layout::gv::DotParser::new(dot);
    let graph = parser.process().map_err(GraphError)?;
    let mut builder = layout::gv::GraphBuilder::new();
    builder.visit_graph(&graph);
    let mut visual = builder.get();
    let mut writer = layout::backends::svg::SVGWriter::new();
    visual.do_it(false, false, false, &mut writer);
    Ok(writer.finalize())
}

/// The addresses of each link, as written in the desired state.
fn addresses(state: &State) -> BTreeMap<&str, Vec<String>> {
    let mut out: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for a in state.addresses.values() {
        out.entry(a.link.as_str())
            .or_default()
            .push(a.address.to_string());
    }
    out
}

/// How a link's kind reads under its name.
fn kind_words(kind: &LinkKind) -> String {
    match kind {
        LinkKind::Tap(_) => "tap (a VM's NIC)".into(),
        LinkKind::Vxlan(v) => format!("vxlan {}", v.id),
        LinkKind::Macvlan(m) => format!("macvlan {}", m.mode.name()),
        k => k.name().into(),
    }
}

/// Bridges are drawn round, as hubs; every other link as a box.
fn shape(kind: &LinkKind) -> &'static str {
    match kind {
        LinkKind::Bridge(_) => "ellipse",
        _ => "box",
    }
}

/// The links a link leads to: its bridge, its veth peer, its tunnel's device, its parent.
fn links_of(kind: &LinkKind, master: Option<&str>) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = Vec::new();
    if let Some(m) = master {
        out.push((m.to_string(), "port of"));
    }
    match kind {
        LinkKind::Veth(v) => out.push((v.peer.clone(), "veth peer")),
        LinkKind::Vxlan(v) => out.extend(v.dev.clone().map(|d| (d, "over"))),
        LinkKind::Macvlan(m) => out.push((m.link.clone(), "on")),
        _ => {}
    }
    out
}

fn node(out: &mut String, name: &str, label: &[String], shape: &str) {
    let _ = writeln!(
        out,
        "  {} [label={}, shape={shape}];",
        id(name),
        q(&label.join("\n"))
    );
}

/// A node id: the name, quoted.
fn id(name: &str) -> String {
    q(name)
}

/// A DOT string: double-quoted, with `"` and `\` escaped and line breaks as `\n`.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconcilers::model::{BridgeOpts, Link, TapOpts};

    #[test]
    fn ports_and_unknown_parents_are_drawn() {
        let mut s = State::default();
        s.add_link(Link::new("br0", LinkKind::Bridge(BridgeOpts::default())));
        let mut tap = Link::new("tap-vm", LinkKind::Tap(TapOpts::default()));
        tap.master = Some("br0".into());
        s.add_link(tap);
        let mut orphan = Link::new("tap-x", LinkKind::Tap(TapOpts::default()));
        orphan.master = Some("br9".into());
        s.add_link(orphan);
        let d = dot(&s, &Providers::default(), &BTreeMap::new());
        assert!(
            d.contains("\"tap-vm\" -> \"br0\" [label=\"port of\"]"),
            "{d}"
        );
        assert!(d.contains("\"br9\" [label=\"br9\\nnot declared\""), "{d}");
        let svg = svg(&d).expect("lays out");
        assert!(svg.contains("<svg"), "{svg}");
    }

    #[test]
    fn quotes_survive() {
        assert_eq!(q("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }
}
