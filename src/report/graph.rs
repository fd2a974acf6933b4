//! `netconverge graph`: a picture of the network — links with their addresses, bridges with
//! their ports, the VMs' taps, veth pairs, tunnels and macvlans on their parents, and the
//! providers with their gateways and tables — as Graphviz DOT, or as SVG laid out in-process
//! (layout-rs, so no `dot` program is needed).

use std::fmt::Write as _;

use super::topology::{Node, NodeKind, Topology};

/// Why a picture could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot lay out the graph: {0}")]
pub struct GraphError(String);

/// The topology as DOT: a box per link (an ellipse per bridge, gateway and provider), its
/// label the node's name and what is known about it, each edge labelled with its relation.
pub fn dot(topology: &Topology) -> String {
    let mut out = String::from("digraph netconverge {\n  rankdir=LR;\n  node [shape=box];\n");
    for n in &topology.nodes {
        let _ = writeln!(
            out,
            "  {} [label={}, shape={}];",
            q(&n.id),
            q(&label(n).join("\n")),
            shape(&n.what)
        );
    }
    for e in &topology.edges {
        let _ = writeln!(
            out,
            "  {} -> {} [label={}];",
            q(&e.from),
            q(&e.to),
            q(e.kind.words())
        );
    }
    out.push_str("}\n");
    out
}

/// The topology as the `graph -o json` document's fields: `nodes` and `edges`.
pub fn json(topology: &Topology) -> serde_json::Value {
    serde_json::to_value(topology).unwrap_or_default()
}

/// The lines of a node's label: its name, then what it is.
fn label(n: &Node) -> Vec<String> {
    let mut out = vec![n.id.clone()];
    match &n.what {
        NodeKind::Link { kind: None, .. } => out.push("not declared".into()),
        NodeKind::Link {
            kind: Some(kind),
            addresses,
            vni,
            mode,
            ..
        } => {
            out.push(match (*kind, vni, mode) {
                ("tap", _, _) => "tap (a VM's NIC)".into(),
                (k, Some(id), _) => format!("{k} {id}"),
                (k, _, Some(m)) => format!("{k} {m}"),
                (k, _, _) => k.to_string(),
            });
            out.extend(addresses.iter().cloned());
        }
        NodeKind::Gateway { tables, .. } => out.push(format!("tables: {}", tables.join(", "))),
        NodeKind::Provider {
            gateway,
            table,
            number,
            balance,
            ..
        } => {
            out.push(format!("via {gateway}"));
            out.push(format!("table {table} ({number})"));
            out.extend(balance.map(|w| format!("balance {w}")));
        }
    }
    out
}

/// Bridges, gateways and providers are drawn round, as hubs; every other link as a box.
fn shape(what: &NodeKind) -> &'static str {
    match what {
        NodeKind::Link {
            kind: Some("bridge"),
            ..
        }
        | NodeKind::Gateway { .. }
        | NodeKind::Provider { .. } => "ellipse",
        NodeKind::Link { .. } => "box",
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
    use reconcilers::model::{BridgeOpts, Link, LinkKind, State, TapOpts};
    use reconcilers::providers::Providers;
    use std::collections::BTreeMap;

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
        let d = dot(&Topology::of(&s, &Providers::default(), &BTreeMap::new()));
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
