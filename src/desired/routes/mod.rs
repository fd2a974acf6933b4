//! `routes:` — routes by (table, destination, TOS, metric): checking each item and turning it
//! into the kernel's canonical form (default metric and scope filled in, host bits refused),
//! and writing routes back. Gateways are in [`nexthops`], the checks across routes in
//! [`checks`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use reconcilers::model::{Family, NextHop, Route, RouteType, Scope, State, TABLE_MAIN};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::diagnostics::{Ctx, Pos};
use super::tables::{table_ref, Tables};
use super::values::{family_name, ip, is_v6_link_local, keyword, num, prefix, u32_of};
use super::yaml::{addr, scalar, Scalar};

pub(crate) mod checks;
pub(crate) mod fast;
pub(crate) mod nexthops;

use nexthops::{Hop, NextHopDoc};

/// One item of `routes:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteDoc {
    pub to: Option<Spanned<String>>,
    pub via: Option<Spanned<String>>,
    pub dev: Option<Spanned<String>>,
    pub nexthops: Option<Spanned<Vec<Spanned<NextHopDoc>>>>,
    pub table: Option<Spanned<Scalar>>,
    pub metric: Option<Spanned<i64>>,
    pub src: Option<Spanned<String>>,
    pub scope: Option<Spanned<String>>,
    pub onlink: Option<Spanned<bool>>,
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub mtu: Option<Spanned<i64>>,
    pub tos: Option<Spanned<i64>>,
}

/// The items of one file's `routes:`: parsed by the general parser, or scanned by the fast
/// path and read again, one at a time, when converted.
pub(crate) enum RouteItems {
    Parsed(Vec<Spanned<RouteDoc>>),
    Scanned(fast::Section),
}

impl RouteItems {
    /// How many items there are.
    pub(crate) fn len(&self) -> usize {
        match self {
            RouteItems::Parsed(items) => items.len(),
            RouteItems::Scanned(section) => section.len,
        }
    }

    /// Call `f` with each item, in order.
    pub(crate) fn each(&self, mut f: impl FnMut(&Spanned<RouteDoc>)) {
        match self {
            RouteItems::Parsed(items) => items.iter().for_each(f),
            RouteItems::Scanned(section) => section.each(|item| f(&item)),
        }
    }
}

/// One gateway of a route, for the reachability check: a nexthop with a `via`, and where
/// that `via` is written.
pub(crate) struct Gateway<'a> {
    pub via: IpAddr,
    pub dev: Option<&'a str>,
    pub onlink: bool,
    pub at: Pos,
}

/// A converted route.
pub(crate) struct RouteInfo {
    pub at: Pos,
    pub route: Route,
    /// Where each nexthop's `via` is written, in the order of `route.nexthops`.
    pub via_at: nexthops::ViaPositions,
}

impl RouteInfo {
    /// The route's gateways with their positions (none for a generated route, whose gateways
    /// are checked in the words of the section that generated it).
    pub(crate) fn gateways(&self) -> impl Iterator<Item = Gateway<'_>> {
        self.route
            .nexthops
            .iter()
            .zip(self.via_at.iter(self.at.file))
            .filter_map(|(h, at)| {
                Some(Gateway {
                    via: h.via?,
                    dev: h.dev.as_deref(),
                    onlink: h.onlink,
                    at: at?,
                })
            })
    }
}

/// Check one item of `routes:`; `None` (with its errors recorded) when anything is wrong.
pub(crate) fn convert(
    file: usize,
    item: &Spanned<RouteDoc>,
    tables: &Tables,
    ctx: &mut Ctx,
) -> Option<RouteInfo> {
    let before = ctx.count();
    let at = Pos::of(file, item);
    let d = &item.value;
    // `None` when the type is misspelt: then the checks that depend on it are skipped, as
    // they would only repeat the same mistake.
    let kind = route_type(file, d, ctx);
    let hops = nexthops::convert(file, d, ctx);
    let src = d
        .src
        .as_ref()
        .and_then(|s| ctx.check(Pos::of(file, s), ip(&s.value, "src")));
    let to = destination(file, d, at, &hops, src, ctx)?;
    let fam = Family::of_net(&to);
    let kind = kind?;
    check_shape(file, d, at, kind, &to, &hops, src, ctx);
    let table = match &d.table {
        None => Some(TABLE_MAIN),
        Some(t) => tables.resolve(file, t, false, ctx),
    };
    let metric = metric(file, d, fam, ctx);
    let (nexthops, via_at) = nexthops::canonical(hops);
    let scope = scope(file, d, fam, kind, &nexthops, ctx);
    let mtu = d.mtu.as_ref().and_then(|m| {
        let lo = if fam == Family::Inet6 { 1280 } else { 68 };
        num(file, m, lo, 65535, "route mtu", ctx).map(u32_of)
    });
    let tos = tos(file, d, fam, ctx);
    if ctx.count() > before {
        return None;
    }
    Some(RouteInfo {
        at,
        route: Route {
            table: table?,
            to,
            tos: tos?,
            metric: metric?,
            kind,
            nexthops,
            src,
            scope: scope?,
            mtu,
            owned: false,
        },
        via_at,
    })
}

fn route_type(file: usize, d: &RouteDoc, ctx: &mut Ctx) -> Option<RouteType> {
    let Some(k) = &d.kind else {
        return Some(RouteType::Unicast);
    };
    ctx.check(
        Pos::of(file, k),
        keyword(
            &k.value,
            "route type",
            &[
                ("unicast", RouteType::Unicast),
                ("blackhole", RouteType::Blackhole),
                ("unreachable", RouteType::Unreachable),
                ("prohibit", RouteType::Prohibit),
            ],
        ),
    )
}

/// The destination; `default` takes its family from the gateways and source.
fn destination(
    file: usize,
    d: &RouteDoc,
    at: Pos,
    hops: &[Hop],
    src: Option<IpAddr>,
    ctx: &mut Ctx,
) -> Option<IpNet> {
    let Some(to_s) = &d.to else {
        ctx.err(at, "a route needs `to` (a prefix, an address or `default`)");
        return None;
    };
    if to_s.value.trim() == "default" {
        let v6 = hops
            .iter()
            .filter_map(|h| h.hop.via)
            .chain(src)
            .any(|a| a.is_ipv6());
        return Some(if v6 { Family::Inet6 } else { Family::Inet }.any());
    }
    ctx.check(Pos::of(file, to_s), prefix(&to_s.value, "destination"))
}

/// How a destination reads in messages; formatted only when a message is made (turning every
/// destination into text up front was 7% of loading 10,000 routes).
struct ToText<'a>(&'a IpNet);

impl std::fmt::Display for ToText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.prefix_len() == 0 {
            f.write_str("default")
        } else {
            self.0.fmt(f)
        }
    }
}

/// The type fits the gateways, and every gateway and the source fit the destination's family.
#[allow(clippy::too_many_arguments)]
fn check_shape(
    file: usize,
    d: &RouteDoc,
    at: Pos,
    kind: RouteType,
    to: &IpNet,
    hops: &[Hop],
    src: Option<IpAddr>,
    ctx: &mut Ctx,
) {
    let fam = Family::of_net(to);
    let to_text = ToText(to);
    if kind != RouteType::Unicast {
        if let Some(h) = hops.first() {
            ctx.err(
                h.via_at.or(h.dev_at).unwrap_or(at),
                format!(
                    "a {} route cannot have `via`, `dev` or `nexthops`",
                    kind.name()
                ),
            );
        }
    } else if hops.is_empty() && d.nexthops.is_none() {
        ctx.err(
            at,
            format!(
                "route to {to_text} needs `via`, `dev` or `nexthops` (or a `type` such as blackhole)"
            ),
        );
    }
    for h in hops {
        let (Some(g), Some(g_at)) = (h.hop.via, h.via_at) else {
            continue;
        };
        if Family::of(&g) != fam {
            ctx.err(
                g_at,
                format!(
                    "gateway {g} is {} but the route to {to_text} is {}",
                    family_name(Family::of(&g)),
                    family_name(fam)
                ),
            );
        } else if is_v6_link_local(&g) && h.hop.dev.is_none() && h.dev_at.is_none() {
            ctx.err(g_at, format!("link-local gateway {g} needs `dev`"));
        }
    }
    if let (Some(s), Some(ss)) = (src, &d.src) {
        if Family::of(&s) != fam {
            ctx.err(
                Pos::of(file, ss),
                format!(
                    "src {s} is {} but the route to {to_text} is {}",
                    family_name(Family::of(&s)),
                    family_name(fam)
                ),
            );
        }
    }
}

/// The metric; IPv6 has no metric 0: the kernel turns it into 1024.
fn metric(file: usize, d: &RouteDoc, fam: Family, ctx: &mut Ctx) -> Option<u32> {
    let Some(m) = &d.metric else {
        return Some(Route::default_metric(fam));
    };
    num(file, m, 0, i64::from(u32::MAX), "metric", ctx).map(|m| {
        let m = u32_of(m);
        if m == 0 && fam == Family::Inet6 {
            Route::default_metric(fam)
        } else {
            m
        }
    })
}

fn scope(
    file: usize,
    d: &RouteDoc,
    fam: Family,
    kind: RouteType,
    nexthops: &[NextHop],
    ctx: &mut Ctx,
) -> Option<Scope> {
    let Some(s) = &d.scope else {
        return Some(Route::default_scope(fam, kind, nexthops));
    };
    let s_at = Pos::of(file, s);
    let words = [
        ("global", Scope::Global),
        ("site", Scope::Site),
        ("link", Scope::Link),
        ("host", Scope::Host),
    ];
    let has_gateway = nexthops.iter().any(|h| h.via.is_some());
    match ctx.check(s_at, keyword(&s.value, "scope", &words)) {
        // The kernel reports every IPv6 route as global.
        Some(sc) if fam == Family::Inet6 && sc != Scope::Global => {
            ctx.err(
                s_at,
                format!("IPv6 routes have no scope; remove `scope: {}`", sc.name()),
            );
            None
        }
        Some(sc @ (Scope::Link | Scope::Host)) if has_gateway => {
            ctx.err(
                s_at,
                format!(
                    "scope {} is invalid for a route with a gateway; use global or site",
                    sc.name()
                ),
            );
            None
        }
        sc => sc,
    }
}

fn tos(file: usize, d: &RouteDoc, fam: Family, ctx: &mut Ctx) -> Option<u8> {
    let Some(t) = &d.tos else {
        return Some(0);
    };
    let t_at = Pos::of(file, t);
    match num(file, t, 0, 255, "tos", ctx) {
        Some(0) => Some(0),
        Some(_) if fam == Family::Inet6 => {
            ctx.err(t_at, "IPv6 routes cannot have `tos`");
            None
        }
        Some(x) if x & 3 != 0 => {
            ctx.err(
                t_at,
                format!("tos {x:#x} has ECN bits set; use a DSCP value (a multiple of 4)"),
            );
            None
        }
        Some(x) => Some(u8::try_from(x).expect("in range")),
        None => None,
    }
}

/// The `routes:` section of `show`; `None` when the state has no route.
pub(crate) fn render_section(state: &State, tables: &BTreeMap<String, u32>) -> Option<String> {
    if state.routes.is_empty() {
        return None;
    }
    let mut s = String::from("routes:\n");
    for r in state.routes.values() {
        render_item(&mut s, r, tables);
    }
    Some(s)
}

/// One route as a plan's diff shows it.
pub(crate) fn render_object(r: &Route, tables: &BTreeMap<String, u32>) -> String {
    let mut s = String::from("routes:\n");
    render_item(&mut s, r, tables);
    s
}

fn render_item(s: &mut String, r: &Route, tables: &BTreeMap<String, u32>) {
    let fam = r.family();
    // `default` reads as IPv4 unless a gateway or the source says IPv6 (as loading does).
    let v6_hint = r
        .nexthops
        .iter()
        .filter_map(|h| h.via)
        .chain(r.src)
        .any(|a| a.is_ipv6());
    let to = if r.to.prefix_len() == 0 && (fam == Family::Inet || v6_hint) {
        "default".to_string()
    } else {
        scalar(&r.to.to_string())
    };
    let _ = writeln!(s, "  - to: {to}");
    if r.kind != RouteType::Unicast {
        let _ = writeln!(s, "    type: {}", r.kind.name());
    }
    nexthops::render(s, &r.nexthops);
    if r.table != TABLE_MAIN {
        let _ = writeln!(s, "    table: {}", table_ref(r.table, tables));
    }
    if r.metric != Route::default_metric(fam) {
        let _ = writeln!(s, "    metric: {}", r.metric);
    }
    if let Some(a) = r.src {
        let _ = writeln!(s, "    src: {}", addr(&a));
    }
    if r.scope != Route::default_scope(fam, r.kind, &r.nexthops) {
        let _ = writeln!(s, "    scope: {}", r.scope.name());
    }
    if let Some(m) = r.mtu {
        let _ = writeln!(s, "    mtu: {m}");
    }
    if r.tos != 0 {
        let _ = writeln!(s, "    tos: {}", r.tos);
    }
}
