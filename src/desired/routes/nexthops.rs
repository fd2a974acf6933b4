//! A route's gateways: `via`/`dev` on the route or a `nexthops:` list, canonicalised the way
//! the kernel reports them, and written back in the same two shapes.

use std::fmt::Write as _;

use reconcilers::model::{DevName, NextHop, NextHops};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::RouteDoc;
use crate::desired::diagnostics::{Ctx, Pos};
use crate::desired::values::{ifname_at, ip, num, u32_of};
use crate::desired::yaml::{addr, scalar};

/// One item of a route's `nexthops:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NextHopDoc {
    pub via: Option<Spanned<String>>,
    pub dev: Option<Spanned<String>>,
    pub weight: Option<Spanned<i64>>,
    pub onlink: Option<Spanned<bool>>,
}

/// A nexthop before canonicalisation, with the positions to report at.
pub(crate) struct Hop {
    pub hop: NextHop,
    pub via_at: Option<Pos>,
    pub dev_at: Option<Pos>,
}

/// Where `onlink` is written, if it is set.
type Onlink = Option<Pos>;

fn hop(
    file: usize,
    via: Option<&Spanned<String>>,
    dev: Option<&Spanned<String>>,
    weight: u32,
    onlink: Onlink,
    ctx: &mut Ctx,
) -> Hop {
    // The kernel rejects RTNH_F_ONLINK without a gateway.
    if let (Some(o_at), None) = (onlink, via) {
        ctx.err(o_at, "`onlink` needs a `via`");
    }
    Hop {
        hop: NextHop {
            via: via.and_then(|s| ctx.check(Pos::of(file, s), ip(&s.value, "gateway"))),
            dev: dev.and_then(|s| ifname_at(file, s, ctx)).map(DevName::from),
            weight,
            onlink: onlink.is_some(),
        },
        via_at: via.map(|s| Pos::of(file, s)),
        dev_at: dev.map(|s| Pos::of(file, s)),
    }
}

fn nexthop(file: usize, h: &Spanned<NextHopDoc>, ctx: &mut Ctx) -> Option<Hop> {
    let d = &h.value;
    if d.via.is_none() && d.dev.is_none() {
        ctx.err(Pos::of(file, h), "a nexthop needs `via`, `dev` or both");
        return None;
    }
    let weight = match &d.weight {
        None => 1,
        Some(w) => num(file, w, 1, 256, "weight", ctx).map_or(1, u32_of),
    };
    let onlink = d
        .onlink
        .as_ref()
        .filter(|o| o.value)
        .map(|o| Pos::of(file, o));
    Some(hop(
        file,
        d.via.as_ref(),
        d.dev.as_ref(),
        weight,
        onlink,
        ctx,
    ))
}

/// The route's hops as written: route-level `via`/`dev`, or the `nexthops:` list (not both).
pub(crate) fn convert(file: usize, d: &RouteDoc, ctx: &mut Ctx) -> Vec<Hop> {
    let mut hops: Vec<Hop> = Vec::new();
    if let Some(list) = &d.nexthops {
        let list_at = Pos::of(file, list);
        if d.via.is_some() || d.dev.is_some() {
            ctx.err(
                list_at,
                "`via`/`dev` and `nexthops` cannot be combined; put every gateway under `nexthops`",
            );
        }
        if let Some(o) = &d.onlink {
            ctx.err(
                Pos::of(file, o),
                "route-level `onlink` cannot be combined with `nexthops`; set it on each nexthop",
            );
        }
        if list.value.is_empty() {
            ctx.err(list_at, "`nexthops` is empty");
        }
        hops.extend(list.value.iter().filter_map(|h| nexthop(file, h, ctx)));
    } else if d.via.is_some() || d.dev.is_some() {
        let onlink = d
            .onlink
            .as_ref()
            .filter(|o| o.value)
            .map(|o| Pos::of(file, o));
        hops.push(hop(file, d.via.as_ref(), d.dev.as_ref(), 1, onlink, ctx));
    } else if let Some(o) = d.onlink.as_ref().filter(|o| o.value) {
        ctx.err(Pos::of(file, o), "`onlink` needs a `via`");
    }
    hops
}

/// The nexthops as the kernel reports them: sorted, and a single one with weight 1 (the
/// kernel keeps no weight for a route with one nexthop); with where each one's `via` is
/// written, in the same order.
pub(crate) fn canonical(mut hops: Vec<Hop>) -> (NextHops, ViaPositions) {
    hops.sort_by(|a, b| a.hop.cmp(&b.hop));
    let line_column = |at: Option<Pos>| at.map(|p| (p.line, p.column));
    let via_at = if let [one] = hops.as_slice() {
        ViaPositions::One(line_column(one.via_at))
    } else {
        ViaPositions::Many(Box::new(
            hops.iter().map(|h| line_column(h.via_at)).collect(),
        ))
    };
    // Inline for one hop; collecting `hops` in place would keep its larger buffer (a `Hop`
    // is twice a `NextHop`, and a pushed-to Vec holds four), 384 bytes a route.
    let mut nexthops: NextHops = hops.into_iter().map(|h| h.hop).collect();
    if let [only] = nexthops.as_mut_slice() {
        only.weight = 1;
    }
    (nexthops, via_at)
}

/// Where each nexthop's `via` is written, as line and column: always in the route's own
/// file. 16 bytes, as a route's list of 10⁶ is held whole while the routes convert (at
/// 10⁶ routes this list is the largest part of the peak beside the observed routes): a
/// single-path route (nearly all of them) keeps its one position inline, a multipath one
/// its list behind one thin pointer.
pub(crate) enum ViaPositions {
    /// A route with one nexthop.
    One(Option<LineColumn>),
    /// A multipath route's, in the order of its nexthops (or none, for a route without).
    Many(Box<Box<[Option<LineColumn>]>>),
}

/// A position in the route's own file.
pub(crate) type LineColumn = (u32, u32);

impl ViaPositions {
    /// No positions: a generated route's, whose gateways are checked where it is generated.
    pub(crate) fn none() -> ViaPositions {
        ViaPositions::One(None)
    }

    /// The positions in nexthop order, in `file` (the route's).
    pub(crate) fn iter(&self, file: usize) -> impl Iterator<Item = Option<Pos>> + '_ {
        let all = match self {
            ViaPositions::One(at) => std::slice::from_ref(at),
            ViaPositions::Many(all) => &all[..],
        };
        all.iter()
            .map(move |at| at.map(|(line, column)| Pos { file, line, column }))
    }
}

/// The gateways as `show` writes them: on the route for one hop, else a `nexthops:` list.
pub(crate) fn render(s: &mut String, hops: &[NextHop]) {
    match hops {
        [] => {}
        [h] => {
            if let Some(v) = h.via {
                let _ = writeln!(s, "    via: {}", addr(&v));
            }
            if let Some(d) = &h.dev {
                let _ = writeln!(s, "    dev: {}", scalar(d));
            }
            if h.onlink {
                s.push_str("    onlink: true\n");
            }
        }
        hops => {
            s.push_str("    nexthops:\n");
            for h in hops {
                let mut fields: Vec<String> = Vec::new();
                if let Some(v) = h.via {
                    fields.push(format!("via: {}", addr(&v)));
                }
                if let Some(d) = &h.dev {
                    fields.push(format!("dev: {}", scalar(d)));
                }
                fields.push(format!("weight: {}", h.weight));
                if h.onlink {
                    fields.push("onlink: true".into());
                }
                for (i, f) in fields.iter().enumerate() {
                    let lead = if i == 0 { "      - " } else { "        " };
                    let _ = writeln!(s, "{lead}{f}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u32, column: u32) -> Option<Pos> {
        Some(Pos {
            file: 3,
            line,
            column,
        })
    }

    fn hop(via: &str, via_at: Option<Pos>) -> Hop {
        Hop {
            hop: NextHop {
                via: Some(via.parse().expect("gateway")),
                dev: None,
                weight: 1,
                onlink: false,
            },
            via_at,
            dev_at: None,
        }
    }

    /// The positions follow their nexthops through the sort and come back in the route's
    /// file; one hop's is inline, in a list of 16 bytes an entry.
    #[test]
    fn via_positions_follow_the_sorted_nexthops_in_the_routes_file() {
        let (hops, via_at) = canonical(vec![hop("10.0.0.2", at(5, 7)), hop("10.0.0.1", None)]);
        assert_eq!(hops[0].via, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(via_at.iter(3).collect::<Vec<_>>(), [None, at(5, 7)]);
        let (_, one) = canonical(vec![hop("10.0.0.9", at(2, 4))]);
        assert!(matches!(one, ViaPositions::One(Some((2, 4)))));
        assert_eq!(one.iter(3).collect::<Vec<_>>(), [at(2, 4)]);
        assert_eq!(ViaPositions::none().iter(0).collect::<Vec<_>>(), [None]);
        assert_eq!(std::mem::size_of::<ViaPositions>(), 16);
    }
}
