//! The topology `netconverge graph` draws: one walk of a state (and its providers) into nodes
//! and edges, which the DOT picture and the JSON document are both rendered from, so the two
//! never disagree.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use reconcilers::model::{table_word, LinkKind, State};
use reconcilers::providers::Providers;
use serde::Serialize;

/// What the network is made of: the links, the gateways routes go through and the
/// providers, and how they hang together.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Topology {
    /// Links first (in name order), then gateways, then providers.
    pub nodes: Vec<Node>,
    /// Each from one node's `id` to another's.
    pub edges: Vec<Edge>,
}

/// One thing in the picture.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Node {
    /// Unique in the topology: a link's name, `gateway ADDRESS` or `provider NAME`.
    pub id: String,
    /// What it is, with what is known about it.
    #[serde(flatten)]
    pub what: NodeKind,
}

/// The kinds of node.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeKind {
    /// A link. One another object names but the state does not hold has `kind: null`.
    Link {
        /// `bridge`, `tap`, `veth`, `vxlan`, `macvlan`, `external`; `None`: not declared.
        kind: Option<&'static str>,
        /// Its addresses, as written (`10.0.0.1/24`).
        addresses: Vec<String>,
        /// Administratively up, down, or `None` when not said (desired) or not known.
        up: Option<bool>,
        /// The MTU, when said.
        mtu: Option<u32>,
        /// The bridge it is a port of.
        master: Option<String>,
        /// A bridge's ports, in name order (empty for other links).
        ports: Vec<String>,
        /// A VXLAN's VNI.
        #[serde(skip_serializing_if = "Option::is_none")]
        vni: Option<u32>,
        /// A macvlan's mode.
        #[serde(skip_serializing_if = "Option::is_none")]
        mode: Option<&'static str>,
    },
    /// A gateway routes go through (other than a provider's).
    Gateway {
        /// Its address.
        address: String,
        /// The link it is reached on.
        link: String,
        /// The tables with routes through it, by name where the desired state names them.
        tables: Vec<String>,
    },
    /// A provider (an ISP) of the desired state.
    Provider {
        /// Its name.
        name: String,
        /// Its gateway (`detect` when it is read from the host at each pass).
        gateway: String,
        /// The link its gateway sits on.
        link: String,
        /// Its routing table, by name.
        table: String,
        /// Its routing table's number.
        number: u32,
        /// The fwmark that routes through it, if any.
        mark: Option<u32>,
        /// Its weight in the balanced default route, if it takes part.
        balance: Option<u32>,
    },
}

/// How two nodes are related.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Edge {
    /// The node's `id` the relation starts at (the port, the link, …).
    pub from: String,
    /// The node's `id` it leads to (the bridge, the gateway, …).
    pub to: String,
    /// What the relation is.
    pub kind: EdgeKind,
}

/// The relations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// A link is a port of a bridge.
    PortOf,
    /// A veth end and its peer.
    VethPeer,
    /// A VXLAN and the device it is sent over.
    Underlay,
    /// A macvlan and its parent link.
    Parent,
    /// A link reaches a gateway.
    Gateway,
    /// A provider is reached over a link.
    ProviderVia,
}

impl EdgeKind {
    /// The label of the edge in the picture.
    pub fn words(self) -> &'static str {
        match self {
            EdgeKind::PortOf => "port of",
            EdgeKind::VethPeer => "veth peer",
            EdgeKind::Underlay => "over",
            EdgeKind::Parent => "on",
            EdgeKind::Gateway => "via",
            EdgeKind::ProviderVia => "uplink",
        }
    }
}

impl Topology {
    /// The topology of `state` and of `providers` (none for an observed state), with the
    /// tables named as in `tables`.
    pub fn of(state: &State, providers: &Providers, tables: &BTreeMap<String, u32>) -> Topology {
        let mut t = Topology::default();
        let ports = ports(state);
        let addrs = addresses(state);
        for l in state.links.values() {
            t.nodes.push(Node {
                id: l.name.clone(),
                what: NodeKind::Link {
                    kind: Some(l.kind.name()),
                    addresses: addrs.get(l.name.as_str()).cloned().unwrap_or_default(),
                    up: l.up,
                    mtu: l.mtu,
                    master: l.master.clone(),
                    ports: ports.get(l.name.as_str()).cloned().unwrap_or_default(),
                    vni: match &l.kind {
                        LinkKind::Vxlan(v) => Some(v.id),
                        _ => None,
                    },
                    mode: match &l.kind {
                        LinkKind::Macvlan(m) => Some(m.mode.name()),
                        _ => None,
                    },
                },
            });
            for (to, kind) in links_of(&l.kind, l.master.as_deref()) {
                t.edge(&l.name, &to, kind);
            }
        }
        t.gateways(state, providers, tables);
        t.providers(providers, tables);
        t.add_undeclared();
        t
    }

    fn edge(&mut self, from: &str, to: &str, kind: EdgeKind) {
        self.edges.push(Edge {
            from: from.to_string(),
            to: to.to_string(),
            kind,
        });
    }

    /// The gateways routes go through (other than the providers'), with the tables that use
    /// them, each hanging off the link it is reached on.
    fn gateways(&mut self, state: &State, providers: &Providers, tables: &BTreeMap<String, u32>) {
        let mut by_gateway: BTreeMap<(IpAddr, String), BTreeSet<String>> = BTreeMap::new();
        for r in state.routes.values() {
            for h in &r.nexthops {
                let (Some(via), Some(dev)) = (h.via, &h.dev) else {
                    continue;
                };
                if providers
                    .providers
                    .iter()
                    .any(|p| p.gateway.map(IpAddr::V4) == Some(via))
                {
                    continue;
                }
                by_gateway
                    .entry((via, dev.to_string()))
                    .or_default()
                    .insert(table_name(tables, r.table));
            }
        }
        for ((via, dev), used_by) in by_gateway {
            let id = format!("gateway {via}");
            self.nodes.push(Node {
                id: id.clone(),
                what: NodeKind::Gateway {
                    address: via.to_string(),
                    link: dev.clone(),
                    tables: used_by.into_iter().collect(),
                },
            });
            self.edge(&dev, &id, EdgeKind::Gateway);
        }
    }

    fn providers(&mut self, providers: &Providers, tables: &BTreeMap<String, u32>) {
        for p in &providers.providers {
            let id = format!("provider {}", p.name);
            self.nodes.push(Node {
                id: id.clone(),
                what: NodeKind::Provider {
                    name: p.name.clone(),
                    // A detected gateway is not known until the host has it: the YAML's word.
                    gateway: p
                        .gateway
                        .map_or_else(|| "detect".to_string(), |g| g.to_string()),
                    link: p.interface.clone(),
                    table: table_name(tables, p.number),
                    number: p.number,
                    mark: p.mark,
                    balance: p.balance,
                },
            });
            self.edge(&p.interface, &id, EdgeKind::ProviderVia);
        }
    }

    /// A node for every link an edge names that the state does not hold, so that every edge
    /// ends at a node.
    fn add_undeclared(&mut self) {
        let known: BTreeSet<String> = self.nodes.iter().map(|n| n.id.clone()).collect();
        let missing: BTreeSet<String> = self
            .edges
            .iter()
            .flat_map(|e| [&e.from, &e.to])
            .filter(|id| !known.contains(*id))
            .cloned()
            .collect();
        let at = self
            .nodes
            .iter()
            .position(|n| !matches!(n.what, NodeKind::Link { .. }))
            .unwrap_or(self.nodes.len());
        let undeclared = missing.into_iter().map(|id| Node {
            id,
            what: NodeKind::Link {
                kind: None,
                addresses: Vec::new(),
                up: None,
                mtu: None,
                master: None,
                ports: Vec::new(),
                vni: None,
                mode: None,
            },
        });
        self.nodes.splice(at..at, undeclared);
    }
}

/// A table by its name in the desired state, else by `ip`'s word or number.
fn table_name(tables: &BTreeMap<String, u32>, id: u32) -> String {
    tables
        .iter()
        .find(|(_, n)| **n == id)
        .map_or_else(|| table_word(id), |(name, _)| name.clone())
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

/// The ports of each bridge.
fn ports(state: &State) -> BTreeMap<&str, Vec<String>> {
    let mut out: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for l in state.links.values() {
        if let Some(m) = &l.master {
            out.entry(m.as_str()).or_default().push(l.name.clone());
        }
    }
    out
}

/// The links a link leads to: its bridge, its veth peer, its tunnel's device, its parent.
fn links_of(kind: &LinkKind, master: Option<&str>) -> Vec<(String, EdgeKind)> {
    let mut out = Vec::new();
    if let Some(m) = master {
        out.push((m.to_string(), EdgeKind::PortOf));
    }
    match kind {
        LinkKind::Veth(v) => out.push((v.peer.clone(), EdgeKind::VethPeer)),
        LinkKind::Vxlan(v) => out.extend(v.dev.clone().map(|d| (d, EdgeKind::Underlay))),
        LinkKind::Macvlan(m) => out.push((m.link.clone(), EdgeKind::Parent)),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconcilers::model::{BridgeOpts, Link, TapOpts};

    #[test]
    fn bridges_list_their_ports_and_every_edge_ends_at_a_node() {
        let mut s = State::default();
        s.add_link(Link::new("br0", LinkKind::Bridge(BridgeOpts::default())));
        for (tap, bridge) in [("tap-b", "br0"), ("tap-a", "br0"), ("tap-x", "br9")] {
            let mut l = Link::new(tap, LinkKind::Tap(TapOpts::default()));
            l.master = Some(bridge.into());
            s.add_link(l);
        }
        let t = Topology::of(&s, &Providers::default(), &BTreeMap::new());
        let ids: Vec<&str> = t.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["br0", "tap-a", "tap-b", "tap-x", "br9"]);
        match &t.nodes[0].what {
            NodeKind::Link { kind, ports, .. } => {
                assert_eq!(*kind, Some("bridge"));
                assert_eq!(ports, &["tap-a", "tap-b"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(t.nodes[4].what, NodeKind::Link { kind: None, .. }));
        assert_eq!(t.edges.len(), 3);
        for e in &t.edges {
            assert_eq!(e.kind, EdgeKind::PortOf);
            assert!(ids.contains(&e.to.as_str()), "{e:?}");
        }
    }

    /// A provider whose gateway is detected on the host is drawn with the YAML's word, and is
    /// not mistaken for the gateway of another route.
    #[test]
    fn a_detected_gateway_is_named_detect() {
        let src = "links:\n  eth0: { kind: external }\nproviders:\n  dhcp: { number: 1, interface: eth0, gateway: detect, balance: 1 }\nroutes:\n  - { to: 10.9.0.0/16, via: 192.0.2.1, dev: eth0 }\n";
        let d = crate::desired::load_str(src, std::path::Path::new("t.yaml")).expect("valid");
        let t = Topology::of(&d.state, &d.providers, &d.tables);
        let provider = t
            .nodes
            .iter()
            .find(|n| n.id == "provider dhcp")
            .expect("provider node");
        match &provider.what {
            NodeKind::Provider { gateway, link, .. } => {
                assert_eq!((gateway.as_str(), link.as_str()), ("detect", "eth0"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            t.nodes.iter().any(|n| n.id == "gateway 192.0.2.1"),
            "{:?}",
            t.nodes
        );
    }
}
