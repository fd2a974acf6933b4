//! The providers' expansion into the state: the generated routes, rules, sysctls and
//! nftables tables join the declared ones, each labelled with the provider (or section) it
//! came from and reported at its position; the providers' names become table names.

use reconcilers::providers::{generate, DefaultTable, Fallback, Origin, Provider, TABLE_BALANCE};

use super::{base, Checked};
use crate::desired::convert::Converted;
use crate::desired::diagnostics::{Ctx, Pos};
use crate::desired::host_checks::HostCheck;
use crate::desired::load::Merged;
use crate::desired::routes::RouteInfo;
use crate::desired::rules::RuleInfo;

/// Add what the checked providers expand to.
pub(super) fn add(m: &Merged, k: Checked, c: &mut Converted, ctx: &mut Ctx) {
    let Checked {
        providers: p,
        at,
        rr_at,
        options_at,
    } = k;
    let s = &m.providers;
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
