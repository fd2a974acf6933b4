//! `route_rules:`, `masquerade:` and `marks:` — the providers' companion sections (Shorewall's
//! rtrules, snat and mangle MARK), each item checked against the declared providers.

use ipnet::IpNet;
use reconcilers::model::TABLE_MAIN;
use reconcilers::providers::{MarkRule, Masquerade, Options, Provider, RouteRule};
use serde_saphyr::Spanned;

use super::provider::{ifname, mark_number};
use super::{MarkDoc, MasqueradeDoc, RouteRuleDoc};
use crate::desired::diagnostics::{Ctx, Pos};
use crate::desired::values as v;

fn prefix(file: usize, s: &Option<Spanned<String>>, what: &str, ctx: &mut Ctx) -> Option<IpNet> {
    let s = s.as_ref()?;
    ctx.check(Pos::of(file, s), v::prefix(&s.value, what))
}

pub(super) fn route_rule(
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
                match crate::desired::diagnostics::did_you_mean(&p.value, names.iter().copied()) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None if declared.is_empty() => "; no provider is declared".to_string(),
                    None => format!("; expected one of {}", names.join(", ")),
                }
            ),
        );
    }
    None
}

pub(super) fn masquerade(
    file: usize,
    item: &Spanned<MasqueradeDoc>,
    ctx: &mut Ctx,
) -> Option<Masquerade> {
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

pub(super) fn mark_rule(
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
