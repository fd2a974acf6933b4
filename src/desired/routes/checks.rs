//! The checks across routes: every gateway is reachable on its device, every device is up,
//! and no route key is declared twice.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use reconcilers::model::object::ObjectRef;
use reconcilers::model::{Family, RouteType};

use crate::desired::convert::Converted;
use crate::desired::diagnostics::{Ctx, Pos};
use crate::desired::host_facts::HostCheck;
use crate::desired::values::is_v6_link_local;

/// A gateway must be reachable: when the route names a declared device with declared
/// addresses of the gateway's family, the gateway must sit in one of those subnets (or in a
/// declared device route on it), unless the route says `onlink`.
pub(crate) fn gateways(c: &Converted, ctx: &mut Ctx) {
    let mut subnets: BTreeMap<&str, Vec<IpNet>> = BTreeMap::new();
    let mut own: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for a in &c.addresses {
        subnets.entry(a.link.as_str()).or_default().push(a.address);
        own.entry(a.address.addr()).or_insert(a.link.as_str());
    }
    let declared: BTreeSet<&str> = c.links.iter().map(|l| l.link.name.as_str()).collect();
    // Device routes (no gateway) also make their prefix reachable on that device.
    let mut dev_routes: BTreeMap<&str, Vec<IpNet>> = BTreeMap::new();
    for r in &c.routes {
        if r.route.kind == RouteType::Unicast {
            for h in &r.route.nexthops {
                if let (None, Some(dev)) = (h.via, &h.dev) {
                    dev_routes.entry(dev.as_str()).or_default().push(r.route.to);
                }
            }
        }
    }
    for r in &c.routes {
        for g in r.gateways() {
            if let Some(link) = own.get(&g.via) {
                ctx.err(
                    g.at,
                    format!(
                        "gateway {} is an address of this host (declared on {link}); a gateway must be another machine",
                        g.via
                    ),
                );
                continue;
            }
            let Some(dev) = g.dev else {
                continue;
            };
            if g.onlink || is_v6_link_local(&g.via) || !declared.contains(dev) {
                continue;
            }
            let fam = Family::of(&g.via);
            let nets: Vec<IpNet> = subnets
                .get(dev)
                .map(|v| {
                    v.iter()
                        .copied()
                        .filter(|n| Family::of_net(n) == fam)
                        .collect()
                })
                .unwrap_or_default();
            if nets.is_empty() {
                continue;
            }
            let reachable = nets.iter().any(|n| n.contains(&g.via))
                || dev_routes
                    .get(dev)
                    .is_some_and(|v| v.iter().any(|n| n.contains(&g.via)));
            if !reachable {
                let list: Vec<String> = nets.iter().map(ToString::to_string).collect();
                ctx.err(
                    g.at,
                    format!(
                        "gateway {} is not in any subnet of {dev} ({}); add `onlink: true` if it is reachable anyway",
                        g.via,
                        list.join(", ")
                    ),
                );
            }
        }
    }
}

/// A unicast route through a device needs the device up: the kernel refuses the route on a
/// down link (ENETDOWN, or ENETUNREACH for a gateway), so a route over a link declared
/// `up: false` is refused here, and one over an external link whose state is not declared
/// becomes a host fact (the link must be up when the route is added).
pub(crate) fn devices_up(c: &mut Converted, ctx: &mut Ctx) {
    let links: BTreeMap<&str, (&reconcilers::model::Link, Pos)> = c
        .links
        .iter()
        .map(|l| (l.link.name.as_str(), (&l.link, l.at)))
        .collect();
    let mut facts = Vec::new();
    for r in c
        .routes
        .iter()
        .filter(|r| r.route.kind == RouteType::Unicast)
    {
        let devs: BTreeSet<&str> = r
            .route
            .nexthops
            .iter()
            .filter_map(|h| h.dev.as_deref())
            .collect();
        for dev in devs {
            let Some((link, at)) = links.get(dev) else {
                continue;
            };
            match (link.up, &link.kind) {
                (Some(false), _) => ctx.err(
                    r.at,
                    format!(
                        "{} goes through {dev}, which is declared `up: false` (at {}); the kernel refuses routes over a down link",
                        ObjectRef::route(&r.route),
                        ctx.place(*at)
                    ),
                ),
                (None, reconcilers::model::LinkKind::External) => facts.push(HostCheck::LinkUp {
                    name: dev.to_string(),
                    at: ctx.diag(
                        r.at,
                        format!(
                            "{} goes through {dev}, which is down on this host; bring it up or declare `up: true` on it",
                            ObjectRef::route(&r.route)
                        ),
                    ),
                }),
                _ => {}
            }
        }
    }
    c.host_checks.extend(facts);
}

/// The same route key declared twice. The routes are sorted by key (stably, so the first
/// declared comes first) rather than put in a map: at 10⁶ routes a map of keys cost some 80
/// bytes a route, the sorted indices cost 4.
pub(crate) fn duplicates(c: &Converted, ctx: &mut Ctx) {
    let routes = &c.routes;
    let mut order: Vec<u32> =
        (0..u32::try_from(routes.len()).expect("the object budget bounds routes")).collect();
    let key = |i: &u32| routes[*i as usize].route.key();
    order.sort_by_key(key);
    for group in order.chunk_by(|a, b| key(a) == key(b)) {
        let first = &routes[group[0] as usize];
        for &i in &group[1..] {
            let r = &routes[i as usize];
            ctx.err(
                r.at,
                format!(
                    "{} is declared twice: {} and {} (one route per destination, table, metric and tos)",
                    ObjectRef::route(&r.route),
                    ctx.place(first.at),
                    ctx.place(r.at)
                ),
            );
        }
    }
}
