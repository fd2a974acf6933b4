//! `addresses:` of a link — interface addresses with their prefix length: checking the list,
//! and writing it back under its link.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ipnet::IpNet;
use reconcilers::model::{Address, State};
use serde_saphyr::Spanned;

use super::diagnostics::{Ctx, Pos};
use super::values::{host_cidr, is_v6_link_local};
use super::yaml::scalar;

/// The addresses declared on `link`, each once.
pub(crate) fn convert(
    file: usize,
    link: &str,
    list: Option<&[Spanned<String>]>,
    ctx: &mut Ctx,
) -> Vec<Address> {
    let mut seen: Vec<(IpNet, Pos)> = Vec::new();
    for a in list.unwrap_or_default() {
        let pos = Pos::of(file, a);
        let Some(net) = ctx.check(pos, host_cidr(&a.value)) else {
            continue;
        };
        // The kernel makes an fe80:: address on every IPv6 link itself and netconverge leaves
        // kernel-made addresses alone, so a declared one would be added again on every pass
        // (EEXIST after the first).
        if is_v6_link_local(&net.addr()) {
            ctx.err(
                pos,
                format!(
                    "address {net} on {link} is IPv6 link-local (fe80::/10): the kernel makes those itself and netconverge does not manage them; declare a global or unique-local (fd00::/8) address instead"
                ),
            );
            continue;
        }
        if let Some((_, first)) = seen.iter().find(|(x, _)| *x == net) {
            ctx.err(
                pos,
                format!(
                    "address {net} is listed twice on {link} (also at {})",
                    ctx.place(*first)
                ),
            );
            continue;
        }
        seen.push((net, pos));
    }
    seen.into_iter()
        .map(|(address, _)| Address {
            link: link.to_owned(),
            address,
            owned: false,
            primary: false,
        })
        .collect()
}

/// The addresses of `state` grouped by link name.
pub(crate) fn by_link(state: &State) -> BTreeMap<&str, Vec<&IpNet>> {
    let mut out: BTreeMap<&str, Vec<&IpNet>> = BTreeMap::new();
    for a in state.addresses.values() {
        out.entry(a.link.as_str()).or_default().push(&a.address);
    }
    out
}

/// An `addresses:` list indented by `ind`.
pub(crate) fn render_list(s: &mut String, list: &[&IpNet], ind: usize) {
    let pad = " ".repeat(ind);
    let _ = writeln!(s, "{pad}addresses:");
    for a in list {
        let _ = writeln!(s, "{pad}  - {}", scalar(&a.to_string()));
    }
}

/// One address as a plan's diff shows it: under its link.
pub(crate) fn render_object(a: &Address) -> String {
    format!(
        "links:\n  {}:\n    addresses:\n      - {}\n",
        scalar(&a.link),
        scalar(&a.address.to_string())
    )
}
