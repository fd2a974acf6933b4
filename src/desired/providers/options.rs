//! `provider_options:` — the settings shared by all providers (mask, default table, route
//! filter), Shorewall's `shorewall.conf` knobs.

use reconcilers::providers::{DefaultTable, Options, RouteFilter};

use super::provider::{detects, mark_number};
use super::Sections;
use crate::desired::diagnostics::{Ctx, Pos};
use crate::desired::values as v;

/// The options; with a provider that detects its addresses, the balanced default goes to
/// its own table (see [`foreign_default`]).
pub(super) fn options(s: &Sections, ctx: &mut Ctx) -> (Options, Option<Pos>) {
    let (mut o, at) = declared(s, ctx);
    if s.providers.iter().any(|(_, _, d)| detects(d)) {
        foreign_default(s, &mut o, ctx);
    }
    (o, at)
}

/// Beside a DHCP client's default route in main (a provider with `detect`), netconverge's
/// balanced default goes to the balance table — `default_table: balance_table` is the default
/// then, and `main` (which would replace the client's route) an error — and rule 999 looks
/// main up without its default route (`suppress_prefixlength 0`).
fn foreign_default(s: &Sections, o: &mut Options, ctx: &mut Ctx) {
    let explicit = s.options.as_ref().and_then(|(file, doc)| {
        let t = doc.value.default_table.as_ref()?;
        (t.value == "main").then(|| Pos::of(*file, t))
    });
    if let Some(at) = explicit {
        ctx.err(
            at,
            "default_table: main would put netconverge's balanced default in main, where the DHCP client of a provider with `detect` keeps its own default route; use balance_table (the default when a provider detects its addresses)",
        );
    }
    o.default_table = DefaultTable::BalanceTable;
    o.foreign_main_default = true;
}

/// The options as written.
fn declared(s: &Sections, ctx: &mut Ctx) -> (Options, Option<Pos>) {
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
