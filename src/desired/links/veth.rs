//! `kind: veth` — one end of a veth pair: its `veth:` block (the peer), the checks that the
//! two ends declare each other, and writing it back.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use reconcilers::model::{LinkKind, VethOpts};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{KindCtx, LinkDoc, LinkInfo};
use crate::desired::diagnostics::{Ctx, Pos};
use crate::desired::values::ifname_at;
use crate::desired::yaml::scalar;

/// `veth:` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VethDoc {
    pub peer: Option<Spanned<String>>,
}

/// The veth options of link `k.name`; the peer's position is kept for the pair checks.
pub(crate) fn convert(k: &mut KindCtx<'_>, d: &LinkDoc, ctx: &mut Ctx) -> Option<LinkKind> {
    let (file, n) = (k.file, k.name);
    let Some(p) = d.veth.as_ref().and_then(|b| b.value.peer.as_ref()) else {
        ctx.err(
            k.kind_at,
            format!("veth link {n} needs `veth: {{ peer: NAME }}`"),
        );
        return None;
    };
    k.peer_at = Some(Pos::of(file, p));
    let peer = ifname_at(file, p, ctx)?;
    if peer == n {
        ctx.err(Pos::of(file, p), format!("veth {n} cannot be its own peer"));
        return None;
    }
    Some(LinkKind::Veth(VethOpts { peer }))
}

/// A declared peer must be a veth naming this link back; an undeclared peer (created with
/// the pair) may be claimed by one veth only.
pub(crate) fn check_peers(links: &[LinkInfo], ctx: &mut Ctx) {
    let by_name: BTreeMap<&str, &LinkInfo> =
        links.iter().map(|l| (l.link.name.as_str(), l)).collect();
    let mut claimed: BTreeMap<&str, &LinkInfo> = BTreeMap::new();
    for l in links {
        let name = l.link.name.as_str();
        let (LinkKind::Veth(v), Some(at)) = (&l.link.kind, l.peer_at) else {
            continue;
        };
        let peer = v.peer.as_str();
        match by_name.get(peer).map(|p| &p.link.kind) {
            Some(LinkKind::Veth(pv)) if pv.peer == name => {}
            Some(LinkKind::Veth(pv)) => ctx.err(
                at,
                format!(
                    "peer {peer} of veth {name} is a veth whose peer is {}, not {name}",
                    pv.peer
                ),
            ),
            Some(k) => ctx.err(
                at,
                format!(
                    "peer {peer} of veth {name} is declared as a {} link, not as a veth with `peer: {name}`",
                    k.name()
                ),
            ),
            None => match claimed.get(peer) {
                Some(first) => {
                    let first_at = first.peer_at.unwrap_or(first.at);
                    ctx.err(
                        at,
                        format!(
                            "{peer} is already the peer of veth {} ({}); a veth has one peer",
                            first.link.name,
                            ctx.place(first_at)
                        ),
                    );
                }
                None => {
                    claimed.insert(peer, l);
                }
            },
        }
    }
}

/// The `veth:` block as `show` writes it.
pub(crate) fn render(s: &mut String, v: &VethOpts, pad: &str) {
    let _ = writeln!(s, "{pad}veth:\n{pad}  peer: {}", scalar(&v.peer));
}
