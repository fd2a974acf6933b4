//! The Multi-ISP sections, as Shorewall users know them (`shorewall-providers(5)`, rtrules,
//! snat/masq, mangle MARK):
//!
//! ```yaml
//! providers:
//!   wrt: { number: 1, mark: "0x1", interface: eth0, gateway: 192.168.1.1,   balance: 1, track: true }
//!   fw:  { number: 2, mark: "0x2", interface: eth0, gateway: 192.168.1.254, balance: 1, track: true, loose: true }
//! provider_options: { mask: "0xff", default_table: main, route_filter: loose }
//! route_rules:
//!   - { from: 10.0.0.0/25, provider: fw, priority: 1000 }
//! masquerade:
//!   - { from: 10.0.0.0/24, out: eth0 }
//! marks:
//!   - { iif: tap-centos, mark: "0x2" }       # or provider: fw
//! ```
//!
//! Every value is checked with its position, the cross-provider mistakes included (two
//! providers that would both add the same `from` rule, a mark outside the mask, a gateway
//! outside the interface's subnets), and the sections are then expanded by
//! [`reconcilers::providers`] into ordinary routes, rules, sysctls and nftables tables. The
//! generated routes and rules join the declared ones before the cross-object checks, so a
//! generated rule at a priority the user also uses is reported like any other conflict, at the
//! provider that generated it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use reconcilers::model::{Family, State, TABLE_MAIN};
use reconcilers::providers::{
    generate, DefaultTable, Fallback, MarkRule, Masquerade, Options, Origin, Provider, Providers,
    RouteFilter, RouteRule, MAX_NUMBER, TABLE_BALANCE,
};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::convert::Converted;
use super::diagnostics::{Ctx, Pos};
use super::host_checks::HostCheck;
use super::load::Merged;
use super::routes::RouteInfo;
use super::rules::RuleInfo;
use super::values as v;
use super::yaml::{Entries, Scalar};

/// One entry of `providers:` (keyed by the provider's name).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderDoc {
    pub number: Option<Spanned<i64>>,
    pub mark: Option<Spanned<Scalar>>,
    pub interface: Option<Spanned<String>>,
    pub gateway: Option<Spanned<String>>,
    pub local: Option<Spanned<String>>,
    pub balance: Option<Spanned<Scalar>>,
    pub fallback: Option<Spanned<Scalar>>,
    pub track: Option<Spanned<bool>>,
    pub loose: Option<Spanned<bool>>,
    pub duplicate: Option<Spanned<String>>,
    pub copy: Option<Vec<Spanned<String>>>,
    pub optional: Option<Spanned<bool>>,
}

/// `provider_options:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptionsDoc {
    pub mask: Option<Spanned<Scalar>>,
    pub default_table: Option<Spanned<String>>,
    pub route_filter: Option<Spanned<String>>,
}

/// One item of `route_rules:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteRuleDoc {
    pub from: Option<Spanned<String>>,
    pub to: Option<Spanned<String>>,
    pub iif: Option<Spanned<String>>,
    pub provider: Option<Spanned<String>>,
    pub priority: Option<Spanned<i64>>,
}

/// One item of `masquerade:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MasqueradeDoc {
    pub from: Option<Spanned<String>>,
    pub out: Option<Spanned<String>>,
}

/// One item of `marks:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MarkDoc {
    pub iif: Option<Spanned<String>>,
    pub from: Option<Spanned<String>>,
    pub to: Option<Spanned<String>>,
    pub mark: Option<Spanned<Scalar>>,
    pub provider: Option<Spanned<String>>,
}

/// The provider sections of all files, each item with the index of its file.
#[derive(Debug, Default)]
pub(crate) struct Sections {
    providers: Vec<(usize, Spanned<String>, ProviderDoc)>,
    options: Option<(usize, Spanned<OptionsDoc>)>,
    route_rules: Vec<(usize, Spanned<RouteRuleDoc>)>,
    masquerade: Vec<(usize, Spanned<MasqueradeDoc>)>,
    marks: Vec<(usize, Spanned<MarkDoc>)>,
}

impl Sections {
    /// Add one file's sections. A provider or `provider_options` in two files is an error
    /// naming both places; the lists are concatenated in file order. (One argument per
    /// section: the caller holds a partly moved `Document`.)
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        file: usize,
        providers: Entries<ProviderDoc>,
        options: Option<Spanned<OptionsDoc>>,
        route_rules: Option<Vec<Spanned<RouteRuleDoc>>>,
        masquerade: Option<Vec<Spanned<MasqueradeDoc>>>,
        marks: Option<Vec<Spanned<MarkDoc>>>,
        ctx: &mut Ctx,
    ) {
        for (name, doc) in providers.0 {
            let at = Pos::of(file, &name);
            let first = self
                .providers
                .iter()
                .find(|(_, n, _)| n.value == name.value)
                .map(|(f, n, _)| Pos::of(*f, n));
            match first {
                Some(first) => ctx.err(
                    at,
                    format!(
                        "provider {} is declared twice: {} and {}",
                        name.value,
                        ctx.place(first),
                        ctx.place(at)
                    ),
                ),
                None => self.providers.push((file, name, doc)),
            }
        }
        if let Some(o) = options {
            let at = Pos::of(file, &o);
            match &self.options {
                Some((f, first)) => {
                    let first = Pos::of(*f, first);
                    ctx.err(
                        at,
                        format!(
                            "provider_options is declared twice: {} and {}",
                            ctx.place(first),
                            ctx.place(at)
                        ),
                    );
                }
                None => self.options = Some((file, o)),
            }
        }
        self.route_rules
            .extend(route_rules.into_iter().flatten().map(|r| (file, r)));
        self.masquerade
            .extend(masquerade.into_iter().flatten().map(|r| (file, r)));
        self.marks
            .extend(marks.into_iter().flatten().map(|r| (file, r)));
    }

    fn is_empty(&self) -> bool {
        self.providers.is_empty()
            && self.options.is_none()
            && self.route_rules.is_empty()
            && self.masquerade.is_empty()
            && self.marks.is_empty()
    }
}

/// Names that cannot be providers: the kernel's tables and Shorewall's balance table.
const RESERVED: [&str; 5] = ["main", "local", "default", "unspec", "balance"];

/// Check the provider sections and add what they expand to: routes and rules (joining the
/// declared ones for the cross-object checks), sysctls, the nftables tables, a label per
/// generated object, and the providers' names as table names.
pub(crate) fn convert(m: &Merged, ctx: &mut Ctx, c: &mut Converted) {
    let s = &m.providers;
    if s.is_empty() {
        return;
    }
    let before = ctx.count();
    let (options, options_at) = options(s, ctx);
    let mut providers = Vec::new();
    let mut at = Vec::new();
    for (file, name, doc) in &s.providers {
        if let Some(p) = provider(*file, name, doc, &options, c, ctx) {
            providers.push(p);
            at.push(Pos::of(*file, name));
        }
    }
    check_together(&providers, &at, s, ctx);
    let declared: Vec<&str> = s
        .providers
        .iter()
        .map(|(_, n, _)| n.value.as_str())
        .collect();
    let route_rules: Vec<(RouteRule, Pos)> = s
        .route_rules
        .iter()
        .filter_map(|(file, item)| route_rule(*file, item, &providers, &declared, ctx))
        .collect();
    let masquerade: Vec<Masquerade> = s
        .masquerade
        .iter()
        .filter_map(|(file, item)| masquerade(*file, item, ctx))
        .collect();
    let marks: Vec<MarkRule> = s
        .marks
        .iter()
        .filter_map(|(file, item)| mark_rule(*file, item, &providers, &declared, &options, ctx))
        .collect();
    // A broken provider would make the rest of the expansion (the balanced route, the
    // priorities) misleading; its own errors are what to fix.
    if ctx.count() > before {
        return;
    }
    let (route_rules, rr_at): (Vec<RouteRule>, Vec<Pos>) = route_rules.into_iter().unzip();
    let p = Providers {
        providers,
        options,
        route_rules,
        masquerade,
        marks,
    };
    let section_at = at
        .first()
        .copied()
        .or(options_at)
        .or_else(|| s.masquerade.first().map(|(f, i)| Pos::of(*f, i)))
        .or_else(|| s.marks.first().map(|(f, i)| Pos::of(*f, i)))
        .or_else(|| rr_at.first().copied())
        .unwrap_or(Pos::file(0));
    let first = |f: &dyn Fn(&Provider) -> bool| {
        p.providers
            .iter()
            .zip(&at)
            .find(|(x, _)| f(x))
            .map_or(section_at, |(_, a)| *a)
    };
    let pos = |o: Origin| match o {
        Origin::Provider(i) => at[i],
        Origin::RouteRule(i) => rr_at[i],
        Origin::Balance => first(&|x| x.balance.is_some()),
        Origin::Fallback => first(&|x| matches!(x.fallback, Some(Fallback::Weight(_)))),
        Origin::BalanceTable => options_at.unwrap_or(section_at),
        Origin::Sysctl | Origin::Firewall => section_at,
    };
    let e = generate(&p, &base(c));
    c.providers = p.clone();
    // An interface no link declares must exist all the same, unless the provider is optional.
    for (x, x_at) in p.providers.iter().zip(&at) {
        if !x.optional && !c.links.iter().any(|l| l.link.name == x.interface) {
            c.host_checks.push(HostCheck::ExternalLink {
                name: x.interface.clone(),
                at: ctx.diag(
                    *x_at,
                    format!(
                        "interface {} of provider {} does not exist on this host (make the provider `optional` if it comes and goes)",
                        x.interface, x.name
                    ),
                ),
            });
        }
    }
    for (route, o) in e.routes {
        c.origins.insert(
            format!("route {}", reconcilers::routes::id(&route)),
            o.label(&p),
        );
        c.routes.push(RouteInfo {
            at: pos(o),
            route,
            // The gateways were checked against the interface with the provider's own words.
            gateways: Vec::new(),
        });
    }
    for (rule, o) in e.rules {
        c.origins.insert(
            format!("rule {}", reconcilers::rules::id(&rule)),
            o.label(&p),
        );
        c.rules.push(RuleInfo {
            at: pos(o),
            priority_at: pos(o),
            rule,
        });
    }
    for (name, value) in e.sysctls {
        match c.sysctls.get(&name) {
            Some(declared) if *declared != value => {
                let declared_at = m
                    .sysctl
                    .iter()
                    .find(|(_, n, _)| n.value == name)
                    .map_or(section_at, |(f, _, val)| Pos::of(*f, val));
                ctx.err(
                    declared_at,
                    format!(
                        "sysctl {name} is \"{declared}\" here, but the providers need \"{value}\" ({}); remove it or change provider_options",
                        if name.ends_with("rp_filter") {
                            "provider_options.route_filter"
                        } else {
                            "they forward packets"
                        }
                    ),
                );
            }
            Some(_) => {}
            None => {
                c.origins
                    .insert(format!("sysctl {name}"), Origin::Sysctl.label(&p));
                c.sysctls.insert(name, value);
            }
        }
    }
    if let Some(f) = e.firewall {
        c.origins.insert(
            format!("firewall {}", reconcilers::nft::ID),
            Origin::Firewall.label(&p),
        );
        c.firewall = Some(f);
        c.host_checks.push(HostCheck::Program {
            name: "nft".into(),
            package: reconcilers::nft::PACKAGE.into(),
            at: ctx.diag(
                section_at,
                format!(
                    "track, marks and masquerade need the `nft` program: install the Debian package `{}`",
                    reconcilers::nft::PACKAGE
                ),
            ),
        });
    }
    // Plans and `show` name a provider's table after the provider, unless `tables:` already
    // gives the name or the id a meaning of its own.
    let mut names: Vec<(String, u32)> = p
        .providers
        .iter()
        .map(|x| (x.name.clone(), x.number))
        .collect();
    if p.options.default_table == DefaultTable::BalanceTable {
        names.push(("balance".into(), TABLE_BALANCE));
    }
    for (name, id) in names {
        if !c.tables.contains_key(&name) && !c.tables.values().any(|t| *t == id) {
            c.tables.insert(name, id);
        }
    }
}

/// The declared part of the state that the expansion looks at: links (is an `iif` a bridge
/// port?), addresses and main-table routes (`duplicate: main`).
fn base(c: &Converted) -> State {
    let mut s = State::default();
    for l in &c.links {
        s.add_link(l.link.clone());
    }
    for a in &c.addresses {
        s.add_address(a.clone());
    }
    for r in &c.routes {
        s.add_route(r.route.clone());
    }
    s
}

fn options(s: &Sections, ctx: &mut Ctx) -> (Options, Option<Pos>) {
    let mut o = Options::default();
    let Some((file, doc)) = &s.options else {
        return (o, None);
    };
    let file = *file;
    let d = &doc.value;
    if let Some(m) = &d.mask {
        if let Some(mask) = mark_number(file, m, "mask", ctx) {
            if mask == 0 {
                ctx.err(Pos::of(file, m), "mask 0 leaves no bits for provider marks");
            } else {
                o.mask = mask;
            }
        }
    }
    if let Some(t) = &d.default_table {
        if let Some(t) = ctx.check(
            Pos::of(file, t),
            v::keyword(
                &t.value,
                "default_table",
                &[
                    ("main", DefaultTable::Main),
                    ("balance_table", DefaultTable::BalanceTable),
                ],
            ),
        ) {
            o.default_table = t;
        }
    }
    if let Some(f) = &d.route_filter {
        if let Some(f) = ctx.check(
            Pos::of(file, f),
            v::keyword(
                &f.value,
                "route_filter",
                &[
                    ("loose", RouteFilter::Loose),
                    ("off", RouteFilter::Off),
                    ("strict", RouteFilter::Strict),
                ],
            ),
        ) {
            o.route_filter = f;
        }
    }
    (o, Some(Pos::of(file, doc)))
}

/// A mark or mask: a number, or a string in hex (`"0x1"`) or decimal.
fn mark_number(file: usize, s: &Spanned<Scalar>, what: &str, ctx: &mut Ctx) -> Option<u32> {
    let at = Pos::of(file, s);
    let n = match &s.value {
        Scalar::Int(n) => u32::try_from(*n).ok(),
        Scalar::Str(t) => {
            let t = t.trim();
            match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => t.parse().ok(),
            }
        }
        _ => None,
    };
    if n.is_none() {
        ctx.err(
            at,
            format!("{what} must be a number from 0 to 0xffffffff, e.g. \"0x1\""),
        );
    }
    n
}

/// `balance` and `fallback`: `true` or a weight.
fn weight(file: usize, s: &Spanned<Scalar>, what: &str, ctx: &mut Ctx) -> Option<Option<u32>> {
    let at = Pos::of(file, s);
    match &s.value {
        Scalar::Bool(true) => Some(None),
        Scalar::Bool(false) => None,
        Scalar::Int(n) if (1..=256).contains(n) => Some(Some(u32::try_from(*n).expect("range"))),
        _ => {
            ctx.err(at, format!("{what} is `true` or a weight from 1 to 256"));
            None
        }
    }
}

fn ipv4(file: usize, s: &Spanned<String>, what: &str, ctx: &mut Ctx) -> Option<Ipv4Addr> {
    match ctx.check(Pos::of(file, s), v::ip(&s.value, what))? {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => {
            ctx.err(
                Pos::of(file, s),
                format!("{what} {a} is IPv6; providers are IPv4 (as Shorewall's; shorewall6 is separate)"),
            );
            None
        }
    }
}

/// An interface name that will also be written into the nftables ruleset.
fn ifname(file: usize, s: &Spanned<String>, ctx: &mut Ctx) -> Option<String> {
    let at = Pos::of(file, s);
    ctx.check(at, v::ifname(&s.value))?;
    if s.value.contains(['"', '\\']) {
        ctx.err(
            at,
            format!(
                "`{}` cannot be used here: it contains a quote or backslash",
                s.value
            ),
        );
        return None;
    }
    Some(s.value.clone())
}

fn provider(
    file: usize,
    name: &Spanned<String>,
    d: &ProviderDoc,
    o: &Options,
    c: &Converted,
    ctx: &mut Ctx,
) -> Option<Provider> {
    let before = ctx.count();
    let at = Pos::of(file, name);
    let n = name.value.as_str();
    let valid_name = n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && n.len() <= 32
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        ctx.err(
            at,
            format!("`{n}` is not a provider name: use a letter, then letters, digits, `_` or `-`"),
        );
    } else if RESERVED.contains(&n) {
        ctx.err(
            at,
            format!("provider name `{n}` is reserved (it names a built-in table)"),
        );
    }
    let number = match &d.number {
        None => {
            ctx.err(
                at,
                format!("provider {n} needs a `number` (1..={MAX_NUMBER}): its routing table"),
            );
            None
        }
        Some(x) => ctx
            .check(
                Pos::of(file, x),
                v::ranged(x.value, 1, i64::from(MAX_NUMBER), "provider number"),
            )
            .map(|x| u32::try_from(x).expect("range")),
    };
    let interface = match &d.interface {
        None => {
            ctx.err(at, format!("provider {n} needs an `interface`"));
            None
        }
        Some(i) => ifname(file, i, ctx),
    };
    let gateway = match &d.gateway {
        None => {
            ctx.err(at, format!("provider {n} needs a `gateway`"));
            None
        }
        Some(g) => ipv4(file, g, "gateway", ctx),
    };
    let local = d.local.as_ref().and_then(|l| ipv4(file, l, "local", ctx));
    let mark = d.mark.as_ref().and_then(|m| {
        let mark = mark_number(file, m, "mark", ctx)?;
        if mark == 0 {
            ctx.err(Pos::of(file, m), "mark 0 is \"no mark\"; give a non-zero mark");
            None
        } else if mark & !o.mask != 0 {
            ctx.err(
                Pos::of(file, m),
                format!(
                    "mark {mark:#x} is outside provider_options.mask {:#x}: the fwmark rule and tracking only look at the masked bits",
                    o.mask
                ),
            );
            None
        } else {
            Some(mark)
        }
    });
    let balance = d
        .balance
        .as_ref()
        .and_then(|b| weight(file, b, "balance", ctx))
        .map(|w| w.unwrap_or(1));
    let fallback = d
        .fallback
        .as_ref()
        .and_then(|f| weight(file, f, "fallback", ctx))
        .map(|w| w.map_or(Fallback::Metric, Fallback::Weight));
    let track = d.track.as_ref().is_some_and(|t| t.value);
    let duplicate = match &d.duplicate {
        None => false,
        Some(x) if x.value == "main" => true,
        Some(x) => {
            ctx.err(
                Pos::of(file, x),
                format!("duplicate: `{}` cannot be copied; only `main` can", x.value),
            );
            false
        }
    };
    let mut copy = Vec::new();
    for l in d.copy.iter().flatten() {
        if let Some(l) = ifname(file, l, ctx) {
            copy.push(l);
        }
    }
    if let (Some(first), None) = (d.copy.as_ref().and_then(|c| c.first()), &d.duplicate) {
        ctx.err(
            Pos::of(file, first),
            "`copy` selects what `duplicate: main` copies; add `duplicate: main`",
        );
    }
    if let (Some(x), true) = (&d.duplicate, o.default_table == DefaultTable::BalanceTable) {
        ctx.err(
            Pos::of(file, x),
            "`duplicate` has no effect with default_table: balance_table, where main is looked up first (rule 999) and routes the local networks; remove it",
        );
    }
    // Track without a mark: the number shifted into the mask (Shorewall assigns one too).
    let mark = match (mark, track, number) {
        (None, true, Some(num)) => {
            let assigned = num.checked_shl(o.mask.trailing_zeros()).unwrap_or(0);
            if assigned == 0 || assigned & !o.mask != 0 {
                let t_at = d.track.as_ref().map_or(at, |t| Pos::of(file, t));
                ctx.err(
                    t_at,
                    format!(
                        "track needs a mark, and number {num} does not fit in mask {:#x}; give `mark:`",
                        o.mask
                    ),
                );
                None
            } else {
                Some(assigned)
            }
        }
        (m, _, _) => m,
    };
    let (interface, gateway) = (interface?, gateway?);
    let local = resolve_local(file, d, &interface, gateway, local, c, ctx, at);
    if ctx.count() > before {
        return None;
    }
    Some(Provider {
        name: n.to_string(),
        number: number?,
        mark,
        interface,
        gateway,
        local: local?,
        balance,
        fallback,
        track,
        loose: d.loose.as_ref().is_some_and(|l| l.value),
        duplicate,
        copy,
        optional: d.optional.as_ref().is_some_and(|x| x.value),
    })
}

/// This host's address towards the gateway: `local`, or the interface's declared address
/// whose subnet holds the gateway. The gateway must sit in one of the interface's declared
/// subnets (the kernel would refuse the route otherwise).
#[allow(clippy::too_many_arguments)]
fn resolve_local(
    file: usize,
    d: &ProviderDoc,
    interface: &str,
    gateway: Ipv4Addr,
    local: Option<Ipv4Addr>,
    c: &Converted,
    ctx: &mut Ctx,
    at: Pos,
) -> Option<Ipv4Addr> {
    let g_at = d.gateway.as_ref().map_or(at, |g| Pos::of(file, g));
    let subnets: Vec<IpNet> = c
        .addresses
        .iter()
        .filter(|a| a.link == interface && Family::of_net(&a.address) == Family::Inet)
        .map(|a| a.address)
        .collect();
    if let Some(own) = c
        .addresses
        .iter()
        .find(|a| a.address.addr() == IpAddr::V4(gateway))
    {
        ctx.err(
            g_at,
            format!(
                "gateway {gateway} is an address of this host (declared on {}); a gateway must be another machine",
                own.link
            ),
        );
        return None;
    }
    let covering = subnets.iter().find(|n| n.contains(&IpAddr::V4(gateway)));
    if !subnets.is_empty() && covering.is_none() {
        let list: Vec<String> = subnets.iter().map(ToString::to_string).collect();
        ctx.err(
            g_at,
            format!(
                "gateway {gateway} is not in any subnet of {interface} ({})",
                list.join(", ")
            ),
        );
        return None;
    }
    match (local, covering) {
        (Some(l), _) => {
            if !subnets.is_empty() && !subnets.iter().any(|n| n.addr() == IpAddr::V4(l)) {
                let list: Vec<String> = subnets.iter().map(ToString::to_string).collect();
                ctx.err(
                    d.local.as_ref().map_or(at, |x| Pos::of(file, x)),
                    format!(
                        "local {l} is not an address of {interface} ({})",
                        list.join(", ")
                    ),
                );
                return None;
            }
            Some(l)
        }
        (None, Some(n)) => match n.addr() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        },
        (None, None) => {
            ctx.err(
                d.interface.as_ref().map_or(at, |i| Pos::of(file, i)),
                format!(
                    "the provider needs this host's address on {interface}: declare it (links: {{ {interface}: {{ kind: external, addresses: [...] }} }}) or give `local:`"
                ),
            );
            None
        }
    }
}

/// Checks across providers: numbers, marks and gateways used twice, and the `from` rule that
/// two providers sharing an address would both add.
fn check_together(providers: &[Provider], at: &[Pos], s: &Sections, ctx: &mut Ctx) {
    let pos_of = |i: usize, f: &dyn Fn(&ProviderDoc) -> Option<Pos>| -> Pos {
        s.providers
            .iter()
            .find(|(_, n, _)| n.value == providers[i].name)
            .and_then(|(_, _, d)| f(d))
            .unwrap_or(at[i])
    };
    let file_of = |i: usize| {
        s.providers
            .iter()
            .find(|(_, n, _)| n.value == providers[i].name)
            .map_or(0, |(f, _, _)| *f)
    };
    for (i, p) in providers.iter().enumerate() {
        for (j, q) in providers.iter().enumerate().take(i) {
            let f = file_of(i);
            if p.number == q.number {
                let here = pos_of(i, &|d| d.number.as_ref().map(|x| Pos::of(f, x)));
                ctx.err(
                    here,
                    format!(
                        "provider number {} is used by both {} ({}) and {}; each provider needs its own table",
                        p.number,
                        q.name,
                        ctx.place(at[j]),
                        p.name
                    ),
                );
            }
            if let (Some(a), Some(b)) = (p.mark, q.mark) {
                if a == b {
                    let here = pos_of(i, &|d| {
                        d.mark
                            .as_ref()
                            .map(|x| Pos::of(f, x))
                            .or_else(|| d.track.as_ref().map(|x| Pos::of(f, x)))
                    });
                    ctx.err(
                        here,
                        format!(
                            "mark {a:#x} is used by both {} ({}) and {}; the mark selects one provider",
                            q.name,
                            ctx.place(at[j]),
                            p.name
                        ),
                    );
                }
            }
            if p.interface == q.interface && p.gateway == q.gateway {
                ctx.err(
                    pos_of(i, &|d| d.gateway.as_ref().map(|x| Pos::of(f, x))),
                    format!(
                        "providers {} and {} are the same gateway {} on {}",
                        q.name, p.name, p.gateway, p.interface
                    ),
                );
            }
        }
    }
    // Shorewall deletes any `from LOCAL` rule before adding its own, so of two providers
    // sharing a local address only the last one's rule survives; say so instead.
    let mut by_local: BTreeMap<Ipv4Addr, Vec<usize>> = BTreeMap::new();
    for (i, p) in providers.iter().enumerate() {
        if !p.loose {
            by_local.entry(p.local).or_default().push(i);
        }
    }
    for list in by_local.values() {
        if let [first, rest @ ..] = list.as_slice() {
            for &i in rest {
                let p = &providers[i];
                let q = &providers[*first];
                ctx.err(
                    at[i],
                    format!(
                        "providers {} and {} share the address {} on {}: each would add `from {} lookup <its table>` at priority 20000, and in Shorewall the second replaces the first; set `loose: true` on all but one of them",
                        q.name, p.name, p.local, p.interface, p.local
                    ),
                );
            }
        }
    }
}

fn prefix(file: usize, s: &Option<Spanned<String>>, what: &str, ctx: &mut Ctx) -> Option<IpNet> {
    let s = s.as_ref()?;
    ctx.check(Pos::of(file, s), v::prefix(&s.value, what))
}

fn route_rule(
    file: usize,
    item: &Spanned<RouteRuleDoc>,
    providers: &[Provider],
    declared: &[&str],
    ctx: &mut Ctx,
) -> Option<(RouteRule, Pos)> {
    let before = ctx.count();
    let at = Pos::of(file, item);
    let d = &item.value;
    let from = prefix(file, &d.from, "from", ctx);
    let to = prefix(file, &d.to, "to", ctx);
    for (net, s) in [(from, &d.from), (to, &d.to)] {
        if let (Some(IpNet::V6(n)), Some(s)) = (net, s) {
            ctx.err(
                Pos::of(file, s),
                format!("{n} is IPv6; route_rules select traffic for IPv4 provider tables"),
            );
        }
    }
    let iif = d.iif.as_ref().and_then(|i| ifname(file, i, ctx));
    if d.from.is_none() && d.to.is_none() && d.iif.is_none() {
        ctx.err(at, "a route rule needs `from`, `to` or `iif`");
    }
    let priority = match &d.priority {
        None => {
            ctx.err(at, "a route rule needs a `priority` (e.g. 1000: before the provider rules at 10000 and 20000)");
            None
        }
        Some(p) => ctx
            .check(
                Pos::of(file, p),
                v::ranged(p.value, 1, 32765, "route rule priority"),
            )
            .map(|p| u32::try_from(p).expect("range")),
    };
    let table = match &d.provider {
        None => {
            ctx.err(at, "a route rule needs a `provider` (or `main`)");
            None
        }
        Some(p) if p.value == "main" => Some(TABLE_MAIN),
        Some(p) => named(file, p, providers, declared, &["main"], ctx).map(|x| x.number),
    };
    if ctx.count() > before {
        return None;
    }
    Some((
        RouteRule {
            from,
            to,
            iif,
            provider: d
                .provider
                .as_ref()
                .map(|p| p.value.clone())
                .unwrap_or_default(),
            table: table?,
            priority: priority?,
        },
        at,
    ))
}

/// The provider a route rule or mark rule names. An unknown name is an error; a declared
/// provider that did not convert has errors of its own, so it gets no second one here.
fn named<'a>(
    file: usize,
    p: &Spanned<String>,
    providers: &'a [Provider],
    declared: &[&str],
    also: &[&str],
    ctx: &mut Ctx,
) -> Option<&'a Provider> {
    if let Some(x) = providers.iter().find(|x| x.name == p.value) {
        return Some(x);
    }
    if ctx.complete && !declared.contains(&p.value.as_str()) {
        let names: Vec<&str> = declared.iter().chain(also).copied().collect();
        ctx.err(
            Pos::of(file, p),
            format!(
                "unknown provider `{}`{}",
                p.value,
                match super::diagnostics::did_you_mean(&p.value, names.iter().copied()) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None if declared.is_empty() => "; no provider is declared".to_string(),
                    None => format!("; expected one of {}", names.join(", ")),
                }
            ),
        );
    }
    None
}

fn masquerade(file: usize, item: &Spanned<MasqueradeDoc>, ctx: &mut Ctx) -> Option<Masquerade> {
    let before = ctx.count();
    let d = &item.value;
    let from = prefix(file, &d.from, "from", ctx);
    let out = match &d.out {
        None => {
            ctx.err(
                Pos::of(file, item),
                "masquerade needs `out`: the interface whose address the traffic leaves with",
            );
            None
        }
        Some(o) => ifname(file, o, ctx),
    };
    if ctx.count() > before {
        return None;
    }
    Some(Masquerade { from, out: out? })
}

fn mark_rule(
    file: usize,
    item: &Spanned<MarkDoc>,
    providers: &[Provider],
    declared: &[&str],
    o: &Options,
    ctx: &mut Ctx,
) -> Option<MarkRule> {
    let before = ctx.count();
    let at = Pos::of(file, item);
    let d = &item.value;
    let iif = d.iif.as_ref().and_then(|i| ifname(file, i, ctx));
    let from = prefix(file, &d.from, "from", ctx);
    let to = prefix(file, &d.to, "to", ctx);
    if d.iif.is_none() && d.from.is_none() && d.to.is_none() {
        ctx.err(
            at,
            "a mark rule needs `iif`, `from` or `to` to select packets",
        );
    }
    let mark = match (&d.mark, &d.provider) {
        (Some(_), Some(p)) => {
            ctx.err(Pos::of(file, p), "give `mark` or `provider`, not both");
            None
        }
        (None, None) => {
            ctx.err(
                at,
                "a mark rule needs `mark` (or `provider`, meaning its mark)",
            );
            None
        }
        (Some(m), None) => {
            let m_at = Pos::of(file, m);
            match mark_number(file, m, "mark", ctx) {
                Some(0) => {
                    ctx.err(m_at, "mark 0 is \"no mark\"; give a non-zero mark");
                    None
                }
                Some(x) if x & !o.mask != 0 => {
                    ctx.err(
                        m_at,
                        format!("mark {x:#x} is outside provider_options.mask {:#x}", o.mask),
                    );
                    None
                }
                x => x,
            }
        }
        (None, Some(p)) => match named(file, p, providers, declared, &[], ctx) {
            Some(Provider { mark: Some(x), .. }) => Some(*x),
            Some(x) => {
                ctx.err(
                    Pos::of(file, p),
                    format!(
                        "provider {} has no mark; give it `mark:` or `track: true`",
                        x.name
                    ),
                );
                None
            }
            None => None,
        },
    };
    if ctx.count() > before {
        return None;
    }
    Some(MarkRule {
        iif,
        from,
        to,
        mark: mark?,
    })
}

impl super::Desired {
    /// Shorewall's `optional`, applied to the state to reconcile: providers whose interface is
    /// missing or down on the host are left out (with their route rules), and the balanced
    /// route, rules and tables are those of the remaining providers. One warning per skipped
    /// provider. The host decides, so this runs after observing, like the other host checks.
    pub fn skip_unavailable_providers(&self, want: &mut State, observed: &State) -> Vec<String> {
        let down = reconcilers::providers::unavailable(&self.providers, observed);
        if down.is_empty() {
            return Vec::new();
        }
        let warnings = down
            .iter()
            .map(|p| {
                format!(
                    "provider {} is optional and {} is {} on this host: it is left out until the interface is up",
                    p.name,
                    p.interface,
                    if observed.links.contains_key(&p.interface) { "down" } else { "missing" }
                )
            })
            .collect();
        let skip = down.iter().map(|p| p.name.as_str()).collect();
        reconcilers::providers::without(&self.providers, &skip, want);
        warnings
    }
}
