//! `kind: macvlan` — a macvlan on a parent link: its `macvlan:` block (parent and mode), its
//! checks, and writing it back.

use std::fmt::Write as _;

use reconcilers::model::{LinkKind, MacvlanMode, MacvlanOpts};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{KindCtx, LinkDoc};
use crate::desired::diagnostics::{Ctx, Pos};
use crate::desired::values::{ifname_at, keyword};
use crate::desired::yaml::scalar;

/// `macvlan:` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MacvlanDoc {
    pub link: Option<Spanned<String>>,
    pub mode: Option<Spanned<String>>,
}

/// The macvlan options of link `k.name`; `None` (with the errors recorded) when they are wrong.
pub(crate) fn convert(k: &mut KindCtx<'_>, d: &LinkDoc, ctx: &mut Ctx) -> Option<LinkKind> {
    let (file, n) = (k.file, k.name);
    let Some(l) = d.macvlan.as_ref().and_then(|b| b.value.link.as_ref()) else {
        ctx.err(
            k.kind_at,
            format!("macvlan link {n} needs `macvlan: {{ link: PARENT }}`"),
        );
        return None;
    };
    let parent = ifname_at(file, l, ctx)?;
    if parent == n {
        ctx.err(
            Pos::of(file, l),
            format!("macvlan {n} cannot be its own parent"),
        );
    }
    let mode = match d.macvlan.as_ref().and_then(|b| b.value.mode.as_ref()) {
        None => Some(MacvlanMode::Bridge),
        Some(m) => ctx.check(
            Pos::of(file, m),
            keyword(
                &m.value,
                "macvlan mode",
                &[
                    ("private", MacvlanMode::Private),
                    ("vepa", MacvlanMode::Vepa),
                    ("bridge", MacvlanMode::Bridge),
                    ("passthru", MacvlanMode::Passthru),
                    ("source", MacvlanMode::Source),
                ],
            ),
        ),
    };
    Some(LinkKind::Macvlan(MacvlanOpts {
        link: parent,
        mode: mode?,
    }))
}

/// A `passthru` macvlan takes its parent whole: the kernel refuses a second macvlan of any
/// mode on that parent (EINVAL on create), so two on one parent are refused here, before any
/// link is made.
pub(crate) fn check_passthru(links: &[super::LinkInfo], ctx: &mut Ctx) {
    let on = |l: &super::LinkInfo| match &l.link.kind {
        LinkKind::Macvlan(m) => Some((m.link.clone(), m.mode == MacvlanMode::Passthru)),
        _ => None,
    };
    for l in links {
        let Some((parent, true)) = on(l) else {
            continue;
        };
        let others: Vec<&str> = links
            .iter()
            .filter(|o| o.link.name != l.link.name)
            .filter(|o| on(o).is_some_and(|(p, _)| p == parent))
            .map(|o| o.link.name.as_str())
            .collect();
        if !others.is_empty() {
            ctx.err(
                l.at,
                format!(
                    "macvlan {} is `passthru` on {parent}, which then takes no other macvlan, but {} is declared on it too",
                    l.link.name,
                    others.join(", ")
                ),
            );
        }
    }
}

/// The `macvlan:` block as `show` writes it, indented by `pad`.
pub(crate) fn render(s: &mut String, m: &MacvlanOpts, pad: &str) {
    let _ = writeln!(
        s,
        "{pad}macvlan:\n{pad}  link: {}\n{pad}  mode: {}",
        scalar(&m.link),
        m.mode.name()
    );
}
