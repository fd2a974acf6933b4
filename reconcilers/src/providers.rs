//! Shorewall-style providers (`shorewall-providers(5)`, Shorewall's "Multi-ISP" feature)
//! expanded into plain kernel objects: routing tables, routes, policy rules, sysctls and the
//! packet marking and masquerading of netconverge's nftables table(s).
//!
//! The expansion is a pure function of the configuration and of the rest of the desired state
//! (`duplicate: main` copies declared routes, `marks` look at which links are bridge ports),
//! run while the desired state is converted. Everything downstream — plans, `check`, `show`,
//! the kernel — sees only ordinary routes, rules and sysctls, each labelled with the provider it
//! came from in `State::origins`, so `reconcile --dry-run` shows what each provider produced.
//!
//! The layout follows Shorewall 5.2's generated script, so that its users find the kernel state
//! they know: for provider number N with gateway G on interface I with local address L,
//!
//! - table N: `G dev I scope link src L` and `default via G dev I src L` (plus, with
//!   `duplicate: main`, the main table's routes through I and the `copy` interfaces);
//! - `fwmark MARK/MASK lookup N` at priority 10000 + N − 1, when the provider has a mark;
//! - `from L lookup N` at priority 20000 unless the provider is `loose`;
//! - the balanced default: one multipath `default` in main (or, with `balance_table`, in table
//!   250 behind the rules `999: from all lookup main` and `32765: from all lookup 250`),
//!   one nexthop per balanced provider weighted by `balance`;
//! - `fallback`: a default through G in table 253 (default) with metric N, or one weighted
//!   multipath default there for the providers that give a weight;
//! - `route_rules` (Shorewall's rtrules) at their own priorities;
//! - `net.ipv4.ip_forward = 1` and rp_filter per `route_filter`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use crate::firewall;
use crate::model::firewall::{self as fw, Firewall};
use crate::model::object::ObjectRef;
use crate::model::{
    Family, LinkKind, NextHop, Route, RouteType, Rule, RuleAction, RuleKey, State, TABLE_DEFAULT,
    TABLE_MAIN,
};

/// First priority of the fwmark rules: provider N's rule sits at `MARK_RULE_BASE + N - 1`.
pub const MARK_RULE_BASE: u32 = 10000;
/// Priority of the `from LOCAL lookup N` rules.
pub const FROM_RULE_PRIORITY: u32 = 20000;
/// `balance_table` layout: priority of `from all lookup main`, ahead of the provider rules so
/// that the main table (which then holds no default route) routes the local networks.
pub const MAIN_FIRST_PRIORITY: u32 = 999;
/// `balance_table` layout: priority of `from all lookup balance`, after every provider rule.
pub const BALANCE_RULE_PRIORITY: u32 = 32765;
/// `balance_table` layout: the table holding the balanced default (Shorewall's `balance`).
pub const TABLE_BALANCE: u32 = 250;
/// The highest provider number Shorewall accepts; 253–255 are the kernel's tables.
pub const MAX_NUMBER: u32 = 252;
/// The mark mask when `provider_options.mask` is not given (Shorewall's PROVIDER_BITS=8).
pub const DEFAULT_MASK: u32 = 0xff;

/// Everything the provider sections declare, checked and resolved (addresses, marks).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Providers {
    /// The providers, in declaration order.
    pub providers: Vec<Provider>,
    /// `provider_options`.
    pub options: Options,
    /// `route_rules` (Shorewall's rtrules).
    pub route_rules: Vec<RouteRule>,
    /// `masquerade` (Shorewall's snat/masq).
    pub masquerade: Vec<Masquerade>,
    /// `marks` (Shorewall's mangle MARK).
    pub marks: Vec<MarkRule>,
}

/// One provider: a gateway to the outside, with its own routing table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provider {
    /// The provider's name (used in labels and as the name of its table).
    pub name: String,
    /// The provider number, which is also its routing table id (1..=252).
    pub number: u32,
    /// The mark that routes packets through this provider: the declared one, or the one
    /// `track` assigns (the number shifted into the mask). `None`: no fwmark rule.
    pub mark: Option<u32>,
    /// The interface the gateway sits on.
    pub interface: String,
    /// The gateway.
    pub gateway: Ipv4Addr,
    /// This host's address on the interface, in the gateway's subnet.
    pub local: Ipv4Addr,
    /// Weight in the balanced default route, if the provider takes part in it.
    pub balance: Option<u32>,
    /// A default route in the `default` table (253), if any.
    pub fallback: Option<Fallback>,
    /// Mark new connections arriving through this provider, so replies leave through it.
    pub track: bool,
    /// No `from LOCAL lookup N` rule.
    pub loose: bool,
    /// `duplicate: main`: copy main's routes into the provider's table.
    pub duplicate: bool,
    /// With `duplicate`: only routes through the interface and these links are copied
    /// (empty: all of main's routes).
    pub copy: Vec<String>,
    /// Shorewall's `optional`: the interface may be missing or down (see the README).
    pub optional: bool,
}

/// How a provider takes part in the `default` table (253).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// Its own default route, with the provider number as metric.
    Metric,
    /// A nexthop with this weight in one multipath default route.
    Weight(u32),
}

/// Where the balanced default route goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DefaultTable {
    /// In main (Shorewall's USE_DEFAULT_RT=No).
    #[default]
    Main,
    /// In table 250, consulted after main and the provider rules (USE_DEFAULT_RT=Yes).
    BalanceTable,
}

/// Reverse-path filtering on the provider interfaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RouteFilter {
    /// rp_filter = 2: the source must be routable through some interface. What multi-ISP
    /// needs, since replies may arrive through either gateway.
    #[default]
    Loose,
    /// rp_filter = 0.
    Off,
    /// rp_filter = 1: the source must be routed back through the arrival interface.
    Strict,
}

impl RouteFilter {
    /// The rp_filter sysctl value.
    pub fn value(self) -> &'static str {
        match self {
            RouteFilter::Loose => "2",
            RouteFilter::Off => "0",
            RouteFilter::Strict => "1",
        }
    }
}

/// `provider_options`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// The bits of the packet mark that select a provider.
    pub mask: u32,
    /// Where the balanced default route goes.
    pub default_table: DefaultTable,
    /// rp_filter on the provider interfaces.
    pub route_filter: RouteFilter,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mask: DEFAULT_MASK,
            default_table: DefaultTable::Main,
            route_filter: RouteFilter::Loose,
        }
    }
}

/// One of `route_rules`: a policy rule sending a selection of traffic to a provider's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRule {
    /// Source prefix.
    pub from: Option<IpNet>,
    /// Destination prefix.
    pub to: Option<IpNet>,
    /// Input interface.
    pub iif: Option<String>,
    /// The provider's name, or `main`.
    pub provider: String,
    /// The table looked up (the provider's number, or 254 for main).
    pub table: u32,
    /// The rule's priority.
    pub priority: u32,
}

/// One of `masquerade`: source NAT to the outgoing interface's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Masquerade {
    /// Source prefix (all sources when `None`).
    pub from: Option<IpNet>,
    /// The outgoing interface.
    pub out: String,
}

/// One of `marks`: set a provider mark on matching packets, so they route through it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkRule {
    /// Input interface (may be a bridge port, see [`fw::MarkLayer`]).
    pub iif: Option<String>,
    /// Source prefix.
    pub from: Option<IpNet>,
    /// Destination prefix.
    pub to: Option<IpNet>,
    /// The mark (within the mask).
    pub mark: u32,
}

/// What generated an object, for labels (`State::origins`) and for the positions that
/// validation messages point at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// The provider with this index in [`Providers::providers`].
    Provider(usize),
    /// The balanced default route.
    Balance,
    /// The weighted multipath default in the `default` table.
    Fallback,
    /// The two rules of the `balance_table` layout.
    BalanceTable,
    /// The route rule with this index in [`Providers::route_rules`].
    RouteRule(usize),
    /// Sysctls that providers need.
    Sysctl,
    /// The nftables table(s).
    Firewall,
}

impl Origin {
    /// The label shown next to the object in plans.
    pub fn label(self, p: &Providers) -> String {
        let names = |f: &dyn Fn(&Provider) -> bool| -> String {
            p.providers
                .iter()
                .filter(|x| f(x))
                .map(|x| x.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Origin::Provider(i) => format!("provider {}", p.providers[i].name),
            Origin::Balance => format!("providers {} (balance)", names(&|x| x.balance.is_some())),
            Origin::Fallback => format!(
                "providers {} (fallback)",
                names(&|x| matches!(x.fallback, Some(Fallback::Weight(_))))
            ),
            Origin::BalanceTable => "provider_options (default_table: balance_table)".into(),
            Origin::RouteRule(i) => format!("route_rules: provider {}", p.route_rules[i].provider),
            Origin::Sysctl => "providers".into(),
            Origin::Firewall => "providers, marks, masquerade".into(),
        }
    }
}

/// The objects the provider sections expand to, each with its origin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Routes.
    pub routes: Vec<(Route, Origin)>,
    /// Policy rules.
    pub rules: Vec<(Rule, Origin)>,
    /// Sysctls (name, value).
    pub sysctls: Vec<(String, String)>,
    /// netconverge's nftables table(s), when track, marks or masquerade need them.
    pub firewall: Option<Firewall>,
}

/// Expand `p` into `state`: routes, rules, sysctls, the firewall, and a label per generated
/// object in `state.origins`.
pub fn expand(p: &Providers, state: &mut State) {
    let e = generate(p, state);
    for (r, o) in e.routes {
        state.origins.insert(ObjectRef::route(&r), o.label(p));
        state.add_route(r);
    }
    for (r, o) in e.rules {
        state.origins.insert(ObjectRef::rule(&r), o.label(p));
        state.add_rule(r);
    }
    // A sysctl the rest of the state sets already is the user's (with the same value:
    // the converter rejects a different one), not the providers'.
    for (name, value) in e.sysctls {
        if !state.sysctls.contains_key(&name) {
            state
                .origins
                .insert(ObjectRef::sysctl(&name), Origin::Sysctl.label(p));
            state.sysctls.insert(name, value);
        }
    }
    if let Some(f) = e.firewall {
        state
            .origins
            .insert(ObjectRef::firewall(), Origin::Firewall.label(p));
        state.firewall = Some(f);
    }
}

/// Shorewall's `optional`: the optional providers whose interface `observed` lacks or has
/// administratively down. They are left out of the state until the interface is back.
pub fn unavailable<'a>(p: &'a Providers, observed: &State) -> Vec<&'a Provider> {
    p.providers
        .iter()
        .filter(|x| {
            x.optional
                && observed
                    .links
                    .get(&x.interface)
                    .is_none_or(|l| l.up == Some(false))
        })
        .collect()
}

/// Replace what `p` expanded to in `state` by the expansion without the providers named in
/// `skip` (and the route rules that look up their tables): the balanced and fallback routes
/// lose their nexthops, the rules and the track rules their entries.
///
/// `state` must hold `p`'s expansion (from [`expand`]); generating from it again gives the
/// same objects, since the expansion only reads links, addresses and main's non-default
/// routes, none of which it adds.
pub fn without(p: &Providers, skip: &BTreeSet<&str>, state: &mut State) {
    let full = generate(p, state);
    for (r, _) in &full.routes {
        if state.origins.remove(&ObjectRef::route(r)).is_some() {
            state.routes.remove(&r.key());
        }
    }
    for (r, _) in &full.rules {
        if state.origins.remove(&ObjectRef::rule(r)).is_some() {
            state.rules.remove(&r.key());
        }
    }
    for (name, _) in &full.sysctls {
        if state.origins.remove(&ObjectRef::sysctl(name)).is_some() {
            state.sysctls.remove(name);
        }
    }
    if state.origins.remove(&ObjectRef::firewall()).is_some() {
        state.firewall = None;
    }
    let mut q = p.clone();
    let gone: BTreeSet<u32> = q
        .providers
        .iter()
        .filter(|x| skip.contains(x.name.as_str()))
        .map(|x| x.number)
        .collect();
    q.providers.retain(|x| !skip.contains(x.name.as_str()));
    q.route_rules.retain(|r| !gone.contains(&r.table));
    expand(&q, state);
}

/// The objects `p` expands to. `base` is the rest of the desired state: `duplicate: main`
/// copies its main-table routes and the subnets of its addresses, and `marks` look up whether
/// an input interface is a bridge port there.
pub fn generate(p: &Providers, base: &State) -> Expansion {
    let mut e = Expansion::default();
    let mask = p.options.mask;
    let mut ordered: Vec<(usize, &Provider)> = p.providers.iter().enumerate().collect();
    ordered.sort_by_key(|(_, x)| x.number);
    for &(i, pr) in &ordered {
        let o = Origin::Provider(i);
        let gw = IpAddr::V4(pr.gateway);
        let local = Some(IpAddr::V4(pr.local));
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
                        ..selector()
                    },
                    pr.number,
                ),
                o,
            ));
        }
        if !pr.loose {
            e.rules.push((
                lookup(
                    FROM_RULE_PRIORITY,
                    RuleKey {
                        from: Some(IpNet::from(IpAddr::V4(pr.local))),
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
    let balanced: Vec<NextHop> = ordered
        .iter()
        .filter_map(|(_, x)| {
            x.balance
                .map(|w| hop(Some(IpAddr::V4(x.gateway)), &x.interface, w))
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
            Some(Fallback::Weight(w)) => Some(hop(Some(IpAddr::V4(x.gateway)), &x.interface, w)),
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
        e.rules.push((
            lookup(MAIN_FIRST_PRIORITY, selector(), TABLE_MAIN),
            Origin::BalanceTable,
        ));
        e.rules.push((
            lookup(BALANCE_RULE_PRIORITY, selector(), TABLE_BALANCE),
            Origin::BalanceTable,
        ));
    }
    for (i, rr) in p.route_rules.iter().enumerate() {
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
    e.sysctls = sysctls(p);
    e.firewall = firewall(p, base);
    e
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

fn hop(via: Option<IpAddr>, dev: &str, weight: u32) -> NextHop {
    NextHop {
        via,
        dev: Some(dev.to_string()),
        weight,
        onlink: false,
    }
}

/// A unicast IPv4 route in canonical form (sorted nexthops, weight 1 when single, the
/// kernel's default scope and metric), as the observed side reads it back.
fn route(table: u32, to: IpNet, mut nexthops: Vec<NextHop>, src: Option<IpAddr>) -> Route {
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

/// `net.ipv4.ip_forward = 1` (providers route for others, and masquerade is for forwarded
/// traffic) and rp_filter on `all` and on each provider interface. The kernel applies the
/// larger of `all` and the interface's value, so both are set.
fn sysctls(p: &Providers) -> Vec<(String, String)> {
    let mut out = BTreeMap::new();
    if !p.providers.is_empty() || !p.masquerade.is_empty() {
        out.insert("net.ipv4.ip_forward".to_string(), "1".to_string());
    }
    if !p.providers.is_empty() {
        let v = p.options.route_filter.value().to_string();
        out.insert("net.ipv4.conf.all.rp_filter".into(), v.clone());
        for pr in &p.providers {
            // sysctl(8) writes a dot inside an interface name as `/`.
            let dev = pr.interface.replace('.', "/");
            out.insert(format!("net.ipv4.conf.{dev}.rp_filter"), v.clone());
        }
    }
    out.into_iter().collect()
}

/// The nftables content: connection tracking per provider, marks and masquerade.
fn firewall(p: &Providers, base: &State) -> Option<Firewall> {
    let mut per_interface: BTreeMap<&str, usize> = BTreeMap::new();
    for pr in &p.providers {
        *per_interface.entry(pr.interface.as_str()).or_default() += 1;
    }
    let mut spec = fw::Spec {
        mask: p.options.mask,
        ..fw::Spec::default()
    };
    let mut ordered: Vec<&Provider> = p.providers.iter().collect();
    ordered.sort_by_key(|x| x.number);
    for pr in ordered {
        let (true, Some(mark)) = (pr.track, pr.mark) else {
            continue;
        };
        spec.track.push(fw::Track {
            provider: pr.name.clone(),
            number: pr.number,
            mark,
            interface: pr.interface.clone(),
            // On an interface shared with another provider, only the gateway's MAC tells
            // whose connection it is.
            gateway: (per_interface[pr.interface.as_str()] > 1).then_some(pr.gateway),
        });
    }
    for m in &p.marks {
        let layer = match m.iif.as_deref().map(|i| base.links.get(i)) {
            None => fw::MarkLayer::Inet,
            Some(None) => fw::MarkLayer::Both,
            Some(Some(l)) if l.master.is_some() && !matches!(l.kind, LinkKind::Bridge(_)) => {
                fw::MarkLayer::Bridge
            }
            Some(Some(_)) => fw::MarkLayer::Inet,
        };
        spec.marks.push(fw::Mark {
            iif: m.iif.clone(),
            from: m.from,
            to: m.to,
            mark: m.mark,
            layer,
        });
    }
    spec.masquerade = p
        .masquerade
        .iter()
        .map(|m| fw::Masq {
            from: m.from,
            out: m.out.clone(),
        })
        .collect();
    (!spec.is_empty()).then(|| firewall::render(&spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The label of the generated object printed as `id`.
    fn origin<'a>(s: &'a State, id: &str) -> &'a str {
        s.origins
            .iter()
            .find(|(r, _)| r.to_string() == id)
            .map(|(_, label)| label.as_str())
            .unwrap_or_else(|| panic!("no origin for {id}: {:?}", s.origins.keys()))
    }
    use crate::model::{Address, Link, Scope};

    /// The seed host's two providers as in the issue: both on eth0, both balanced and tracked,
    /// fw loose (two providers sharing an address cannot both have the from-rule).
    pub(crate) fn seed() -> Providers {
        let pr = |name: &str, number: u32, gw: [u8; 4], loose: bool| Provider {
            name: name.into(),
            number,
            mark: Some(number),
            interface: "eth0".into(),
            gateway: Ipv4Addr::from(gw),
            local: Ipv4Addr::new(192, 168, 1, 20),
            balance: Some(1),
            fallback: None,
            track: true,
            loose,
            duplicate: false,
            copy: vec![],
            optional: false,
        };
        Providers {
            providers: vec![
                pr("wrt", 1, [192, 168, 1, 1], false),
                pr("fw", 2, [192, 168, 1, 254], true),
            ],
            ..Providers::default()
        }
    }

    fn base() -> State {
        let mut s = State::default();
        s.add_link(Link::new("eth0", LinkKind::External));
        let mut br = Link::new("br0", LinkKind::Bridge(Default::default()));
        br.up = Some(true);
        s.add_link(br);
        let mut tap = Link::new("tap-centos", LinkKind::External);
        tap.master = Some("br0".into());
        s.add_link(tap);
        for (link, a) in [("eth0", "192.168.1.20/24"), ("br0", "10.0.0.1/24")] {
            s.add_address(Address {
                link: link.into(),
                address: a.parse().unwrap(),
                owned: false,
            });
        }
        s
    }

    fn ids(s: &State) -> (Vec<String>, Vec<String>) {
        (
            s.routes.values().map(|r| r.id()).collect(),
            s.rules.values().map(|r| r.id()).collect(),
        )
    }

    #[test]
    fn seed_providers_expand_like_shorewall() {
        let mut s = base();
        expand(&seed(), &mut s);
        let (routes, rules) = ids(&s);
        assert_eq!(
            routes,
            [
                "default via 192.168.1.1 dev eth0 table 1",
                "192.168.1.1/32 dev eth0 table 1",
                "default via 192.168.1.254 dev eth0 table 2",
                "192.168.1.254/32 dev eth0 table 2",
                "default nexthops via 192.168.1.1 dev eth0 weight 1 via 192.168.1.254 dev eth0 weight 1",
            ]
        );
        assert_eq!(
            rules,
            [
                "10000: from all fwmark 0x1/0xff lookup 1",
                "10001: from all fwmark 0x2/0xff lookup 2",
                "20000: from 192.168.1.20/32 lookup 1",
            ]
        );
        let host = s
            .routes
            .values()
            .find(|r| r.table == 1 && r.to.prefix_len() == 32)
            .unwrap();
        assert_eq!(host.scope, Scope::Link);
        assert_eq!(host.src, Some("192.168.1.20".parse().unwrap()));
        let def = s
            .routes
            .values()
            .find(|r| r.table == 2 && r.to.prefix_len() == 0)
            .unwrap();
        assert_eq!(def.scope, Scope::Global);
        assert_eq!(def.src, Some("192.168.1.20".parse().unwrap()));
        assert_eq!(s.sysctls["net.ipv4.ip_forward"], "1");
        assert_eq!(s.sysctls["net.ipv4.conf.all.rp_filter"], "2");
        assert_eq!(s.sysctls["net.ipv4.conf.eth0.rp_filter"], "2");
        assert_eq!(
            origin(&s, "route default via 192.168.1.1 dev eth0 table 1"),
            "provider wrt"
        );
        assert_eq!(
            origin(&s, "rule 10001: from all fwmark 0x2/0xff lookup 2"),
            "provider fw"
        );
        assert_eq!(
            origin(&s, "route default nexthops via 192.168.1.1 dev eth0 weight 1 via 192.168.1.254 dev eth0 weight 1"),
            "providers wrt, fw (balance)"
        );
        // Both track on a shared interface: told apart by the gateways' MACs.
        let fw = s.firewall.as_ref().expect("track needs the firewall");
        assert!(
            fw.ruleset
                .contains("comment \"gateway 192.168.1.254 dev eth0\""),
            "{}",
            fw.ruleset
        );
        assert!(fw.ruleset.contains("ether saddr @gw_2"), "{}", fw.ruleset);
    }

    #[test]
    fn a_single_balanced_provider_gives_a_plain_default() {
        let mut p = seed();
        p.providers[1].balance = None;
        let mut s = base();
        expand(&p, &mut s);
        let main: Vec<String> = s
            .routes
            .values()
            .filter(|r| r.table == TABLE_MAIN)
            .map(|r| r.id())
            .collect();
        assert_eq!(main, ["default via 192.168.1.1 dev eth0"]);
    }

    #[test]
    fn weights_and_fallback() {
        let mut p = seed();
        p.providers[0].balance = Some(3);
        p.providers[0].fallback = Some(Fallback::Metric);
        p.providers[1].fallback = Some(Fallback::Weight(2));
        let e = generate(&p, &base());
        let ids: Vec<String> = e.routes.iter().map(|(r, _)| r.id()).collect();
        assert!(
            ids.contains(&"default via 192.168.1.1 dev eth0 table default metric 1".to_string()),
            "{ids:?}"
        );
        assert!(
            ids.contains(&"default via 192.168.1.254 dev eth0 table default".to_string()),
            "{ids:?}"
        );
        assert!(
            ids.contains(
                &"default nexthops via 192.168.1.1 dev eth0 weight 3 via 192.168.1.254 dev eth0 weight 1".to_string()
            ),
            "{ids:?}"
        );
    }

    #[test]
    fn balance_table_layout() {
        let mut p = seed();
        p.options.default_table = DefaultTable::BalanceTable;
        let mut s = base();
        expand(&p, &mut s);
        let (routes, rules) = ids(&s);
        assert!(
            routes.contains(
                &"default nexthops via 192.168.1.1 dev eth0 weight 1 via 192.168.1.254 dev eth0 weight 1 table 250"
                    .to_string()
            ),
            "{routes:?}"
        );
        assert!(!routes
            .iter()
            .any(|r| r.starts_with("default nexthops") && !r.ends_with("table 250")));
        assert_eq!(rules.first().unwrap(), "999: from all lookup main");
        assert_eq!(rules.last().unwrap(), "32765: from all lookup 250");
    }

    #[test]
    fn duplicate_main_copies_routes_through_the_interface_and_copy_links() {
        let mut p = seed();
        p.providers[0].duplicate = true;
        p.providers[0].copy = vec!["br0".into()];
        let mut b = base();
        b.add_address(Address {
            link: "other".into(),
            address: "172.16.0.1/16".parse().unwrap(),
            owned: false,
        });
        b.add_route(route(
            TABLE_MAIN,
            "10.9.0.0/16".parse().unwrap(),
            vec![hop(Some("10.0.0.9".parse().unwrap()), "br0", 1)],
            None,
        ));
        b.add_route(route(
            TABLE_MAIN,
            "10.8.0.0/16".parse().unwrap(),
            vec![hop(Some("172.16.0.9".parse().unwrap()), "other", 1)],
            None,
        ));
        let e = generate(&p, &b);
        let t1: Vec<String> = e
            .routes
            .iter()
            .filter(|(r, _)| r.table == 1)
            .map(|(r, _)| r.id())
            .collect();
        assert_eq!(
            t1,
            [
                "192.168.1.1/32 dev eth0 table 1",
                "default via 192.168.1.1 dev eth0 table 1",
                "10.0.0.0/24 dev br0 table 1",
                "192.168.1.0/24 dev eth0 table 1",
                "10.9.0.0/16 via 10.0.0.9 dev br0 table 1",
            ]
        );
        let subnet = e
            .routes
            .iter()
            .find(|(r, _)| r.table == 1 && r.to.to_string() == "10.0.0.0/24")
            .unwrap();
        assert_eq!(subnet.0.src, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(subnet.0.scope, Scope::Link);
    }

    #[test]
    fn track_without_mark_gets_the_number_in_the_mask() {
        // The converter assigns it; expand only uses `mark`.
        let mut p = seed();
        p.providers[0].mark = None;
        p.providers[0].track = false;
        let e = generate(&p, &base());
        assert!(!e.rules.iter().any(|(r, _)| r.key.priority == 10000));
    }

    #[test]
    fn route_rules_and_origins() {
        let mut p = seed();
        p.route_rules = vec![
            RouteRule {
                from: Some("10.0.0.0/25".parse().unwrap()),
                to: None,
                iif: None,
                provider: "fw".into(),
                table: 2,
                priority: 1000,
            },
            RouteRule {
                from: None,
                to: Some("8.8.8.8/32".parse().unwrap()),
                iif: None,
                provider: "wrt".into(),
                table: 1,
                priority: 11000,
            },
        ];
        let mut s = base();
        expand(&p, &mut s);
        assert_eq!(
            origin(&s, "rule 1000: from 10.0.0.0/25 lookup 2"),
            "route_rules: provider fw"
        );
        assert_eq!(
            origin(&s, "rule 11000: from all to 8.8.8.8/32 lookup 1"),
            "route_rules: provider wrt"
        );
    }

    #[test]
    fn marks_on_bridge_ports_go_to_the_bridge_family() {
        let p = Providers {
            marks: vec![
                MarkRule {
                    iif: Some("tap-centos".into()),
                    from: None,
                    to: None,
                    mark: 2,
                },
                MarkRule {
                    iif: Some("eth0".into()),
                    from: None,
                    to: None,
                    mark: 1,
                },
                MarkRule {
                    iif: Some("undeclared".into()),
                    from: None,
                    to: None,
                    mark: 1,
                },
            ],
            masquerade: vec![Masquerade {
                from: Some("10.0.0.0/24".parse().unwrap()),
                out: "eth0".into(),
            }],
            ..Providers::default()
        };
        let e = generate(&p, &base());
        let text = e.firewall.unwrap().ruleset;
        let bridge = text.split("table bridge").nth(1).expect(&text);
        assert!(bridge.contains("iifname \"tap-centos\""), "{text}");
        assert!(bridge.contains("iifname \"undeclared\""), "{text}");
        assert!(!bridge.contains("iifname \"eth0\""), "{text}");
        let inet = text.split("table bridge").next().unwrap();
        assert!(inet.contains("iifname \"eth0\""), "{text}");
        assert!(inet.contains("iifname \"undeclared\""), "{text}");
        assert!(!inet.contains("iifname \"tap-centos\""), "{text}");
        assert!(
            inet.contains("oifname \"eth0\" ip saddr 10.0.0.0/24 masquerade"),
            "{text}"
        );
        assert_eq!(
            e.sysctls,
            [("net.ipv4.ip_forward".to_string(), "1".to_string())]
        );
        assert!(e.routes.is_empty() && e.rules.is_empty());
    }

    #[test]
    fn optional_providers_without_their_interface_are_left_out() {
        let mut p = seed();
        p.providers.push(Provider {
            name: "isp".into(),
            number: 3,
            mark: Some(3),
            interface: "ppp0".into(),
            gateway: Ipv4Addr::new(203, 0, 113, 1),
            local: Ipv4Addr::new(203, 0, 113, 2),
            balance: Some(2),
            fallback: None,
            track: true,
            loose: true,
            duplicate: false,
            copy: vec![],
            optional: true,
        });
        p.route_rules.push(RouteRule {
            from: Some("10.0.0.0/25".parse().unwrap()),
            to: None,
            iif: None,
            provider: "isp".into(),
            table: 3,
            priority: 1000,
        });
        let mut full = base();
        expand(&p, &mut full);
        let mut observed = base();
        assert_eq!(unavailable(&p, &observed).len(), 1);
        let mut ppp = Link::new("ppp0", LinkKind::External);
        ppp.up = Some(false);
        observed.add_link(ppp.clone());
        assert_eq!(unavailable(&p, &observed)[0].name, "isp");
        ppp.up = Some(true);
        observed.add_link(ppp);
        assert!(unavailable(&p, &observed).is_empty());

        let mut reduced = full.clone();
        without(&p, &BTreeSet::from(["isp"]), &mut reduced);
        let mut expected = base();
        expand(&seed(), &mut expected);
        assert_eq!(reduced, expected);
        // Nothing skipped: the same state.
        let mut same = full.clone();
        without(&p, &BTreeSet::new(), &mut same);
        assert_eq!(same, full);
    }

    #[test]
    fn no_sections_no_objects() {
        let mut s = base();
        let before = s.clone();
        expand(&Providers::default(), &mut s);
        assert_eq!(s, before);
    }

    #[test]
    fn expansion_is_deterministic_and_declaration_order_free() {
        let mut p = seed();
        let a = generate(&p, &base());
        p.providers.reverse();
        let mut sa = base();
        let mut sb = base();
        expand(&seed(), &mut sa);
        expand(&p, &mut sb);
        assert_eq!(sa.routes, sb.routes);
        assert_eq!(sa.rules, sb.rules);
        assert_eq!(sa.firewall, sb.firewall);
        assert_eq!(a, generate(&seed(), &base()));
    }
}
