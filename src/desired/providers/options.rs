//! `provider_options:` — the settings shared by all providers (mask, default table, route
//! filter), Shorewall's `shorewall.conf` knobs.

use reconcilers::providers::{DefaultTable, Options, RouteFilter};

use super::provider::mark_number;
use super::Sections;
use crate::desired::diagnostics::{Ctx, Pos};
use crate::desired::values as v;

pub(super) fn options(s: &Sections, ctx: &mut Ctx) -> (Options, Option<Pos>) {
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
