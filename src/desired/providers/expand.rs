//! The providers' expansion into the state: the generated routes, rules, sysctls and
//! nftables tables join the declared ones, each labelled with the provider (or section) it
//! came from and reported at its position; the providers' names become table names.

use reconcilers::model::object::ObjectRef;
use reconcilers::providers::{
    generate, DefaultTable, Fallback, Origin, Provider, Providers, TABLE_BALANCE,
};

use super::{base, Checked};
use crate::desired::convert::Converted;
use crate::desired::diagnostics::{Ctx, Pos};
use crate::desired::host_facts::HostCheck;
use crate::desired::load::Merged;
use crate::desired::routes::nexthops::ViaPositions;
use crate::desired::routes::RouteInfo;
use crate::desired::rules::RuleInfo;

/// Where each generated object is reported: at the provider or route rule it came from,
/// else at the first place of the sections.
struct Places {
    at: Vec<Pos>,
    rr_at: Vec<Pos>,
    options_at: Option<Pos>,
    section_at: Pos,
}

impl Places {
    fn new(m: &Merged, k: &Checked) -> Places {
        let s = &m.providers;
        let section_at =
            k.at.first()
                .copied()
                .or(k.options_at)
                .or_else(|| s.masquerade.first().map(|(f, i)| Pos::of(*f, i)))
                .or_else(|| s.marks.first().map(|(f, i)| Pos::of(*f, i)))
                .or_else(|| k.rr_at.first().copied())
                .unwrap_or(Pos::file(0));
        Places {
            at: k.at.clone(),
            rr_at: k.rr_at.clone(),
            options_at: k.options_at,
            section_at,
        }
    }

    fn first(&self, p: &Providers, f: impl Fn(&Provider) -> bool) -> Pos {
        p.providers
            .iter()
            .zip(&self.at)
            .find(|(x, _)| f(x))
            .map_or(self.section_at, |(_, a)| *a)
    }

    fn of(&self, p: &Providers, o: Origin) -> Pos {
        match o {
            Origin::Provider(i) => self.at[i],
            Origin::RouteRule(i) => self.rr_at[i],
            Origin::Balance => self.first(p, |x| x.balance.is_some()),
            Origin::Fallback => self.first(p, |x| matches!(x.fallback, Some(Fallback::Weight(_)))),
            Origin::BalanceTable => self.options_at.unwrap_or(self.section_at),
            Origin::Sysctl | Origin::Firewall => self.section_at,
        }
    }
}

/// Add what the checked providers expand to.
pub(super) fn add(m: &Merged, k: Checked, c: &mut Converted, ctx: &mut Ctx) {
    let places = Places::new(m, &k);
    let p = k.providers;
    let e = generate(&p, &base(c));
    c.providers = p.clone();
    interfaces(&p, &places, c, ctx);
    // Exactly: `c.routes` was reserved for the declared routes, and growing it would double it.
    c.routes.reserve_exact(e.routes.len());
    for (route, o) in e.routes {
        c.origins.insert(ObjectRef::route(&route), o.label(&p));
        c.routes.push(RouteInfo {
            at: places.of(&p, o),
            route,
            // The gateways were checked against the interface with the provider's own words.
            via_at: ViaPositions::none(),
        });
    }
    for (rule, o) in e.rules {
        c.origins.insert(ObjectRef::rule(&rule), o.label(&p));
        c.rules.push(RuleInfo {
            at: places.of(&p, o),
            priority_at: places.of(&p, o),
            rule,
        });
    }
    for (name, value) in e.sysctls {
        sysctl(m, &p, places.section_at, name, value, c, ctx);
    }
    if let Some(f) = e.firewall {
        c.origins
            .insert(ObjectRef::firewall(), Origin::Firewall.label(&p));
        c.firewall = Some(f);
        c.host_checks.push(HostCheck::Program {
            name: "nft".into(),
            package: reconcilers::firewall::PACKAGE.into(),
            at: ctx.diag(
                places.section_at,
                format!(
                    "track, marks and masquerade need the `nft` program: install the Debian package `{}`",
                    reconcilers::firewall::PACKAGE
                ),
            ),
        });
    }
    table_names(&p, c);
}

/// An interface no link declares must exist all the same, unless the provider is optional.
fn interfaces(p: &Providers, places: &Places, c: &mut Converted, ctx: &mut Ctx) {
    for (x, x_at) in p.providers.iter().zip(&places.at) {
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
}

/// A sysctl the providers need; a declared one with another value is an error at the
/// declaration.
fn sysctl(
    m: &Merged,
    p: &Providers,
    section_at: Pos,
    name: String,
    value: String,
    c: &mut Converted,
    ctx: &mut Ctx,
) {
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
                .insert(ObjectRef::sysctl(&name), Origin::Sysctl.label(p));
            c.sysctls.insert(name, value);
        }
    }
}

/// Plans and `show` name a provider's table after the provider, unless `tables:` already
/// gives the name or the id a meaning of its own.
fn table_names(p: &Providers, c: &mut Converted) {
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
