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

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::IpNet;

use crate::model::firewall::Firewall;
use crate::model::object::ObjectRef;
use crate::model::{Route, Rule, State};

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
    /// The gateway; `None` for `gateway: detect` until [`detect::resolve`] finds it.
    pub gateway: Option<Ipv4Addr>,
    /// This host's address on the interface, in the gateway's subnet; `None` for
    /// `local: detect` until [`detect::resolve`] finds it.
    pub local: Option<Ipv4Addr>,
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
    /// Health checks: `watch` probes the path and holds the provider down while it fails.
    pub health: Option<Health>,
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
    /// Main's default route is another program's (the DHCP client's of a provider with
    /// `detect`): the `balance_table` layout's rule 999 looks main up with
    /// `suppress_prefixlength 0`, so that main's specific routes apply first and its default
    /// only after the balance table (rule 32766), when no provider is available.
    pub foreign_main_default: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mask: DEFAULT_MASK,
            default_table: DefaultTable::Main,
            route_filter: RouteFilter::Loose,
            foreign_main_default: false,
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
    /// Input interface (may be a bridge port, see [`crate::model::firewall::MarkLayer`]).
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

impl Provider {
    /// The gateway and the local address, once both are known (declared, or detected).
    pub fn addresses(&self) -> Option<(Ipv4Addr, Ipv4Addr)> {
        Some((self.gateway?, self.local?))
    }
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
    add(p, e, state);
}

/// Add the expansion `e` of `p` to `state`, each object with its label.
fn add(p: &Providers, e: Expansion, state: &mut State) {
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
    reshape(p, skip, &BTreeSet::new(), state);
}

/// [`without`] the providers in `skip`, and with those in `held` held down by their health
/// checks (see [`health`]): their tables stay, their mark rule only routes their own probes,
/// and they leave the balanced and fallback defaults, the `from` rules and the route rules.
pub fn reshape(p: &Providers, skip: &BTreeSet<&str>, held: &BTreeSet<&str>, state: &mut State) {
    replan(p, p, skip, held, state);
}

/// [`reshape`] with the providers as this host has them now (`now`: `loaded` with the
/// addresses [`detect::resolve`] found filled in): what `loaded` expanded to in `state` is
/// replaced by the expansion of `now` without `skip`, with `held` held down.
pub fn replan(
    loaded: &Providers,
    now: &Providers,
    skip: &BTreeSet<&str>,
    held: &BTreeSet<&str>,
    state: &mut State,
) {
    let full = generate(loaded, state);
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
    let mut q = now.clone();
    let gone: BTreeSet<u32> = q
        .providers
        .iter()
        .filter(|x| skip.contains(x.name.as_str()) || held.contains(x.name.as_str()))
        .map(|x| x.number)
        .collect();
    q.providers.retain(|x| !skip.contains(x.name.as_str()));
    q.route_rules.retain(|r| !gone.contains(&r.table));
    let e = generate::generate_held(&q, state, held);
    add(&q, e, state);
}

pub mod detect;
mod firewall;
mod generate;
pub mod health;
#[cfg(test)]
mod tests;

pub use generate::generate;
pub use health::Health;
