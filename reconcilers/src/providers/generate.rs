//! Generating the kernel objects of the providers: each provider's table and rules, the
//! balanced and fallback defaults, the balance table's rules and the route rules (the
//! sysctls and the firewall come from [`super::firewall`]).

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;

use super::{
    firewall, DefaultTable, Expansion, Fallback, Origin, Provider, Providers,
    BALANCE_RULE_PRIORITY, FROM_RULE_PRIORITY, MAIN_FIRST_PRIORITY, MARK_RULE_BASE, TABLE_BALANCE,
};
use crate::model::{
    Family, NextHop, NextHops, Route, RouteType, Rule, RuleAction, RuleKey, State, TABLE_DEFAULT,
    TABLE_MAIN,
};

/// The objects `p` expands to. `base` is the rest of the desired state: `duplicate: main`
/// copies its main-table routes and the subnets of its addresses, and `marks` look up whether
/// an input interface is a bridge port there.
pub fn generate(p: &Providers, base: &State) -> Expansion {
    generate_held(p, base, &BTreeSet::new())
}

/// [`generate`] with the providers named in `held` held down by their health checks: each
/// keeps its table and its mark rule narrowed to its own probes (`oif` its interface, see
/// [`super::health`]), and has no `from` rule, no fallback and no nexthop in the defaults.
///
/// A provider whose gateway or local address is still to be detected makes nothing: no
/// table, rule, nexthop or tracking, and the route rules that look up its table are left out.
pub fn generate_held(p: &Providers, base: &State, held: &BTreeSet<&str>) -> Expansion {
    let mut e = Expansion::default();
    let mut ordered: Vec<(usize, &Provider)> = p
        .providers
        .iter()
        .enumerate()
        .filter(|(_, x)| x.addresses().is_some())
        .collect();
    ordered.sort_by_key(|(_, x)| x.number);
    for &(i, pr) in &ordered {
        let is_held = held.contains(pr.name.as_str());
        provider(
            pr,
            Origin::Provider(i),
            p.options.mask,
            base,
            is_held,
            &mut e,
        );
    }
    let unknown: BTreeSet<u32> = p
        .providers
        .iter()
        .filter(|x| x.addresses().is_none())
        .map(|x| x.number)
        .collect();
    let serving: Vec<(usize, &Provider)> = ordered
        .into_iter()
        .filter(|(_, x)| !held.contains(x.name.as_str()))
        .collect();
    defaults(p, &serving, &mut e);
    for (i, rr) in p.route_rules.iter().enumerate() {
        if unknown.contains(&rr.table) {
            continue;
        }
        let key = RuleKey {
            from: rr.from,
            to: rr.to,
            iif: rr.iif.clone(),
            family: rr
                .from
                .or(rr.to)
                .map_or(Family::Inet, |n| Family::of_net(&n)),
            ..selector()
        };
        e.rules
            .push((lookup(rr.priority, key, rr.table), Origin::RouteRule(i)));
    }
    e.sysctls = firewall::sysctls(p);
    e.firewall = firewall::firewall(p, base);
    e
}

/// One provider's table (the gateway's host route, its default, the copies of main), its
/// mark and source rules, and its `fallback` route by metric; `held`: only the table and the
/// probes' mark rule.
fn provider(pr: &Provider, o: Origin, mask: u32, base: &State, held: bool, e: &mut Expansion) {
    let Some((gateway, local)) = pr.addresses() else {
        return;
    };
    let gw = IpAddr::V4(gateway);
    let local_ip = IpAddr::V4(local);
    let local = Some(local_ip);
    e.routes.push((
        route(
            pr.number,
            IpNet::from(gw),
            vec![hop(None, &pr.interface, 1)],
            local,
        ),
        o,
    ));
    e.routes.push((
        route(
            pr.number,
            Family::Inet.any(),
            vec![hop(Some(gw), &pr.interface, 1)],
            local,
        ),
        o,
    ));
    if pr.duplicate {
        for r in duplicated(pr, base) {
            // The provider's own two routes win over a copy at the same key.
            if !e.routes.iter().any(|(x, _)| x.key() == r.key()) {
                e.routes.push((r, o));
            }
        }
    }
    if let Some(mark) = pr.mark {
        e.rules.push((
            lookup(
                MARK_RULE_BASE + pr.number - 1,
                RuleKey {
                    fwmark: Some((mark, mask)),
                    oif: held.then(|| pr.interface.clone()),
                    ..selector()
                },
                pr.number,
            ),
            o,
        ));
    }
    if held {
        return;
    }
    if !pr.loose {
        e.rules.push((
            lookup(
                FROM_RULE_PRIORITY,
                RuleKey {
                    from: Some(IpNet::from(local_ip)),
                    ..selector()
                },
                pr.number,
            ),
            o,
        ));
    }
    if pr.fallback == Some(Fallback::Metric) {
        let mut r = route(
            TABLE_DEFAULT,
            Family::Inet.any(),
            vec![hop(Some(gw), &pr.interface, 1)],
            None,
        );
        r.metric = pr.number;
        e.routes.push((r, o));
    }
}

/// The balanced default (in main, or in the balance table behind its two rules) and the
/// weighted fallback default.
fn defaults(p: &Providers, ordered: &[(usize, &Provider)], e: &mut Expansion) {
    let balanced: Vec<NextHop> = ordered
        .iter()
        .filter_map(|(_, x)| {
            let w = x.balance?;
            Some(hop(x.gateway.map(IpAddr::V4), &x.interface, w))
        })
        .collect();
    let balance_table = match p.options.default_table {
        DefaultTable::Main => TABLE_MAIN,
        DefaultTable::BalanceTable => TABLE_BALANCE,
    };
    if !balanced.is_empty() {
        e.routes.push((
            route(balance_table, Family::Inet.any(), balanced, None),
            Origin::Balance,
        ));
    }
    let weighted: Vec<NextHop> = ordered
        .iter()
        .filter_map(|(_, x)| match x.fallback {
            Some(Fallback::Weight(w)) => Some(hop(x.gateway.map(IpAddr::V4), &x.interface, w)),
            _ => None,
        })
        .collect();
    if !weighted.is_empty() {
        e.routes.push((
            route(TABLE_DEFAULT, Family::Inet.any(), weighted, None),
            Origin::Fallback,
        ));
    }
    if p.options.default_table == DefaultTable::BalanceTable && !p.providers.is_empty() {
        // Beside a DHCP client's default route in main, main answers here only with its
        // more specific routes (see `Options::foreign_main_default`).
        let main_first = RuleKey {
            suppress_prefixlength: p.options.foreign_main_default.then_some(0),
            ..selector()
        };
        e.rules.push((
            lookup(MAIN_FIRST_PRIORITY, main_first, TABLE_MAIN),
            Origin::BalanceTable,
        ));
        e.rules.push((
            lookup(BALANCE_RULE_PRIORITY, selector(), TABLE_BALANCE),
            Origin::BalanceTable,
        ));
    }
}

/// The rule selector matching everything (IPv4), to fill in with struct update syntax.
fn selector() -> RuleKey {
    RuleKey::all(0, Family::Inet)
}

fn lookup(priority: u32, key: RuleKey, table: u32) -> Rule {
    Rule {
        key: RuleKey { priority, ..key },
        action: RuleAction::Lookup(table),
        owned: false,
    }
}

pub(super) fn hop(via: Option<IpAddr>, dev: &str, weight: u32) -> NextHop {
    NextHop {
        via,
        dev: Some(dev.into()),
        weight,
        onlink: false,
    }
}

/// A unicast IPv4 route in canonical form (sorted nexthops, weight 1 when single, the
/// kernel's default scope and metric), as the observed side reads it back.
pub(super) fn route(table: u32, to: IpNet, nexthops: Vec<NextHop>, src: Option<IpAddr>) -> Route {
    let mut nexthops = NextHops::from(nexthops);
    nexthops.sort();
    if let [only] = nexthops.as_mut_slice() {
        only.weight = 1;
    }
    let fam = Family::of_net(&to);
    Route {
        table,
        to: to.trunc(),
        tos: 0,
        metric: Route::default_metric(fam),
        kind: RouteType::Unicast,
        scope: Route::default_scope(fam, RouteType::Unicast, &nexthops),
        nexthops,
        src,
        mtu: None,
        owned: false,
    }
}

/// `duplicate: main`: the IPv4 routes of main through the provider's interface and its `copy`
/// links (all of them without `copy`), default routes excepted, moved to the provider's table;
/// plus the subnet routes the kernel makes for the addresses on those links, which Shorewall
/// copies too (they are in main as `proto kernel` routes).
fn duplicated(pr: &Provider, base: &State) -> Vec<Route> {
    let through =
        |dev: &str| pr.copy.is_empty() || dev == pr.interface || pr.copy.iter().any(|c| c == dev);
    let mut out = Vec::new();
    for a in base.addresses.values() {
        let IpNet::V4(net) = a.address else { continue };
        if net.prefix_len() == 32 || !through(&a.link) {
            continue;
        }
        out.push(route(
            pr.number,
            IpNet::V4(net.trunc()),
            vec![hop(None, &a.link, 1)],
            Some(a.address.addr()),
        ));
    }
    for r in base.routes.values() {
        let via_copied = !r.nexthops.is_empty()
            && r.nexthops
                .iter()
                .all(|h| h.dev.as_deref().is_some_and(through));
        if r.table == TABLE_MAIN
            && r.family() == Family::Inet
            && r.to.prefix_len() != 0
            && r.kind == RouteType::Unicast
            && via_copied
        {
            out.push(Route {
                table: pr.number,
                owned: false,
                ..r.clone()
            });
        }
    }
    // An address's subnet route and a declared route to the same prefix: the declared wins.
    let mut seen = BTreeSet::new();
    let mut uniq: Vec<Route> = Vec::new();
    for r in out.into_iter().rev() {
        if seen.insert(r.key()) {
            uniq.push(r);
        }
    }
    uniq.reverse();
    uniq
}
