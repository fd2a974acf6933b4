//! `links:` — interfaces by name: the attributes every kind shares (master, mtu, mac, up,
//! addresses), the table of link kinds, the checks across links, and writing links back.
//!
//! Each link kind keeps its options block, its checks and its writer in a module named after
//! it; [`KINDS`] is the one list of them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use reconcilers::model::{Link, LinkKind, State};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::addresses;
use super::convert::Converted;
use super::diagnostics::{Ctx, Pos};
use super::host_facts::HostCheck;
use super::values::{ifname, ifname_at, keyword, mac, num, u32_of};
use super::yaml::{quote, scalar};

pub(crate) mod bridge;
pub(crate) mod external;
pub(crate) mod macvlan;
pub(crate) mod tap;
pub(crate) mod veth;
pub(crate) mod vxlan;

/// One entry of `links:`. Each kind's options block is a field named after the kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkDoc {
    pub kind: Option<Spanned<String>>,
    pub addresses: Option<Vec<Spanned<String>>>,
    pub master: Option<Spanned<String>>,
    pub mtu: Option<Spanned<i64>>,
    pub mac: Option<Spanned<String>>,
    pub up: Option<Spanned<bool>>,
    pub bridge: Option<Spanned<bridge::BridgeDoc>>,
    pub tap: Option<Spanned<tap::TapDoc>>,
    pub veth: Option<Spanned<veth::VethDoc>>,
    pub vxlan: Option<Spanned<vxlan::VxlanDoc>>,
    pub macvlan: Option<Spanned<macvlan::MacvlanDoc>>,
}

/// A converted link and the positions the cross-link checks report at.
pub(crate) struct LinkInfo {
    pub at: Pos,
    pub link: Link,
    pub master_at: Option<Pos>,
    pub peer_at: Option<Pos>,
}

/// What a kind's converter is given and may hand back besides the kind.
pub(crate) struct KindCtx<'a> {
    pub file: usize,
    /// The link's name.
    pub name: &'a str,
    /// Where the name is written.
    pub at: Pos,
    /// Where `kind:` is written (missing-block errors point here).
    pub kind_at: Pos,
    /// Host facts the kind needs (tap owners, external links).
    pub host_checks: Vec<HostCheck>,
    /// Where a veth's peer is written, for the pair checks.
    pub peer_at: Option<Pos>,
}

/// One link kind: the word of `kind:`, where its options block is written (if it is), its
/// converter, and whether the MTU range is the driver's business (external links).
pub(crate) struct KindEntry {
    pub word: &'static str,
    pub block: fn(&LinkDoc, usize) -> Option<Pos>,
    pub convert: fn(&mut KindCtx<'_>, &LinkDoc, &mut Ctx) -> Option<LinkKind>,
    pub any_mtu: bool,
}

/// The link kinds, in the order messages list them. Adding a kind: a module, its block in
/// [`LinkDoc`], its `LinkKind` variant, and an entry here (the writer's match then fails to
/// compile until the kind has a writer).
pub(crate) static KINDS: [KindEntry; 6] = [
    KindEntry {
        word: "external",
        block: |_, _| None,
        convert: external::convert,
        any_mtu: true,
    },
    KindEntry {
        word: "bridge",
        block: |d, f| d.bridge.as_ref().map(|b| Pos::of(f, b)),
        convert: bridge::convert,
        any_mtu: false,
    },
    KindEntry {
        word: "tap",
        block: |d, f| d.tap.as_ref().map(|b| Pos::of(f, b)),
        convert: tap::convert,
        any_mtu: false,
    },
    KindEntry {
        word: "veth",
        block: |d, f| d.veth.as_ref().map(|b| Pos::of(f, b)),
        convert: veth::convert,
        any_mtu: false,
    },
    KindEntry {
        word: "vxlan",
        block: |d, f| d.vxlan.as_ref().map(|b| Pos::of(f, b)),
        convert: vxlan::convert,
        any_mtu: false,
    },
    KindEntry {
        word: "macvlan",
        block: |d, f| d.macvlan.as_ref().map(|b| Pos::of(f, b)),
        convert: macvlan::convert,
        any_mtu: false,
    },
];

/// The kind entry `link` names with `kind:`, and where that is written.
fn kind_entry(
    file: usize,
    name: &Spanned<String>,
    d: &LinkDoc,
    ctx: &mut Ctx,
) -> Option<(&'static KindEntry, Pos)> {
    let words: Vec<(&str, &'static KindEntry)> = KINDS.iter().map(|k| (k.word, k)).collect();
    let Some(k) = &d.kind else {
        let list: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
        ctx.err(
            Pos::of(file, name),
            format!(
                "link {} needs a `kind` (one of {})",
                name.value,
                list.join(", ")
            ),
        );
        return None;
    };
    let at = Pos::of(file, k);
    let entry = ctx.check(at, keyword(&k.value, "link kind", &words))?;
    // Options blocks of other kinds are a mistake (a copy-paste, a wrong kind).
    for other in KINDS.iter().filter(|o| o.word != entry.word) {
        if let Some(pos) = (other.block)(d, file) {
            ctx.err(
                pos,
                format!(
                    "`{}:` options do not apply to {}, a link of kind {}",
                    other.word, name.value, entry.word
                ),
            );
        }
    }
    Some((entry, at))
}

/// Check one declared link and add it (and its addresses) to `c`; a link with any error is
/// left out, with its errors recorded.
pub(crate) fn convert(
    file: usize,
    name: &Spanned<String>,
    d: &LinkDoc,
    ctx: &mut Ctx,
    c: &mut Converted,
) {
    let before = ctx.count();
    let at = Pos::of(file, name);
    let n = name.value.as_str();
    let _ = ctx.check(at, ifname(n));
    let entry = kind_entry(file, name, d, ctx);
    let mut k = KindCtx {
        file,
        name: n,
        at,
        kind_at: entry.map_or(at, |(_, p)| p),
        host_checks: Vec::new(),
        peer_at: None,
    };
    let kind = entry.and_then(|(e, _)| (e.convert)(&mut k, d, ctx));
    let master = d.master.as_ref().and_then(|m| ifname_at(file, m, ctx));
    // The MTU range of an external link depends on its driver (`lo` has 65536, CAN links 16),
    // which only the host knows, and `show` must round-trip whatever it observed; the links
    // netconverge creates are Ethernet-like and take 68..=65535.
    let (mtu_lo, mtu_hi) = match entry {
        Some((e, _)) if e.any_mtu => (0, i64::from(u32::MAX)),
        _ => (68, 65535),
    };
    let mtu = d
        .mtu
        .as_ref()
        .and_then(|m| num(file, m, mtu_lo, mtu_hi, "mtu", ctx));
    let mac = d
        .mac
        .as_ref()
        .and_then(|m| ctx.check(Pos::of(file, m), mac(&m.value)));
    let addrs = addresses::convert(file, n, d.addresses.as_deref(), ctx);
    ipv6_mtu(file, n, d, mtu, &addrs, ctx);
    let Some(kind) = kind.filter(|_| ctx.count() == before) else {
        return;
    };
    let mut l = Link::new(n, kind);
    l.master = master;
    l.mtu = mtu.map(u32_of);
    l.mac = mac;
    l.up = d.up.as_ref().map(|u| u.value);
    c.host_checks.append(&mut k.host_checks);
    c.links.push(LinkInfo {
        at,
        link: l,
        master_at: d.master.as_ref().map(|m| Pos::of(file, m)),
        peer_at: k.peer_at,
    });
    c.addresses.extend(addrs);
}

/// IPv6 needs an MTU of at least 1280 (RFC 8200): below it the kernel turns IPv6 off on the
/// link and refuses its addresses, which would be found only by a failed write.
fn ipv6_mtu(
    file: usize,
    name: &str,
    d: &LinkDoc,
    mtu: Option<i64>,
    addrs: &[reconcilers::model::Address],
    ctx: &mut Ctx,
) {
    let (Some(m), Some(at)) = (mtu, d.mtu.as_ref()) else {
        return;
    };
    if let Some(a) = addrs.iter().find(|a| a.address.addr().is_ipv6()) {
        if m < 1280 {
            ctx.err(
                Pos::of(file, at),
                format!(
                    "mtu {m} of {name} is below 1280, the minimum for IPv6, and {name} has the IPv6 address {}: raise the MTU or remove the address",
                    a.address
                ),
            );
        }
    }
}

/// The checks across links: every `master` is a declared bridge, veth ends pair up, a
/// `passthru` macvlan is alone on its parent.
pub(crate) fn check(links: &[LinkInfo], ctx: &mut Ctx) {
    check_masters(links, ctx);
    veth::check_peers(links, ctx);
    macvlan::check_passthru(links, ctx);
}

fn check_masters(links: &[LinkInfo], ctx: &mut Ctx) {
    let by_name: BTreeMap<&str, &LinkInfo> =
        links.iter().map(|l| (l.link.name.as_str(), l)).collect();
    for l in links {
        let name = l.link.name.as_str();
        let (Some(master), Some(at)) = (&l.link.master, l.master_at) else {
            continue;
        };
        if master == name {
            ctx.err(at, format!("{name} cannot be its own master"));
        } else if matches!(l.link.kind, LinkKind::Bridge(_)) {
            ctx.err(
                at,
                format!("bridge {name} cannot be a port of another bridge ({master})"),
            );
        } else {
            match by_name.get(master.as_str()) {
                Some(m) if matches!(m.link.kind, LinkKind::Bridge(_)) => {}
                Some(m) => ctx.err(
                    at,
                    format!(
                        "master {master} of {name} is not a declared bridge ({master} is a {} link)",
                        m.link.kind.name()
                    ),
                ),
                None if ctx.complete => ctx.err(
                    at,
                    format!("master {master} of {name} is not a declared bridge"),
                ),
                None => {}
            }
        }
    }
}

/// The `links:` section of `show`, addresses under their links. Addresses on a link that
/// `state` does not hold are written under that link as `kind: external`: an address can
/// only sit on an existing interface.
pub(crate) fn render_section(state: &State) -> Option<String> {
    let addrs = addresses::by_link(state);
    let mut names: Vec<&str> = state.links.keys().map(String::as_str).collect();
    names.extend(addrs.keys().filter(|n| !state.links.contains_key(**n)));
    names.sort_unstable();
    if names.is_empty() {
        return None;
    }
    let mut s = String::from("links:\n");
    for name in names {
        let _ = writeln!(s, "  {}:", scalar(name));
        match state.links.get(name) {
            Some(l) => render_fields(&mut s, l, 4),
            None => s.push_str("    kind: external\n"),
        }
        if let Some(list) = addrs.get(name) {
            addresses::render_list(&mut s, list, 4);
        }
    }
    Some(s)
}

/// One link as a plan's diff shows it.
pub(crate) fn render_object(l: &Link) -> String {
    let mut s = format!("links:\n  {}:\n", scalar(&l.name));
    render_fields(&mut s, l, 4);
    s
}

/// The fields of a link (not its addresses, which are objects of their own).
fn render_fields(s: &mut String, l: &Link, ind: usize) {
    let pad = " ".repeat(ind);
    let _ = writeln!(s, "{pad}kind: {}", l.kind.name());
    match &l.kind {
        LinkKind::External => {}
        LinkKind::Bridge(o) => bridge::render(s, o, &pad),
        LinkKind::Tap(o) => tap::render(s, o, &pad),
        LinkKind::Veth(o) => veth::render(s, o, &pad),
        LinkKind::Vxlan(o) => vxlan::render(s, o, &pad),
        LinkKind::Macvlan(o) => macvlan::render(s, o, &pad),
    }
    if let Some(m) = &l.master {
        let _ = writeln!(s, "{pad}master: {}", scalar(m));
    }
    if let Some(m) = l.mtu {
        let _ = writeln!(s, "{pad}mtu: {m}");
    }
    if let Some(m) = l.mac {
        let _ = writeln!(s, "{pad}mac: {}", quote(&m.to_string()));
    }
    if let Some(u) = l.up {
        let _ = writeln!(s, "{pad}up: {u}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconcilers::model::{BridgeOpts, MacvlanMode, MacvlanOpts, TapOpts, VethOpts, VxlanOpts};

    #[test]
    fn every_link_kind_has_one_entry_and_round_trips_its_word() {
        let kinds = [
            LinkKind::External,
            LinkKind::Bridge(BridgeOpts::default()),
            LinkKind::Tap(TapOpts::default()),
            LinkKind::Veth(VethOpts { peer: "x".into() }),
            LinkKind::Vxlan(VxlanOpts {
                id: 1,
                local: None,
                remote: None,
                dev: None,
                port: None,
            }),
            LinkKind::Macvlan(MacvlanOpts {
                link: "eth0".into(),
                mode: MacvlanMode::Bridge,
            }),
        ];
        assert_eq!(kinds.len(), KINDS.len());
        for k in &kinds {
            let entries = KINDS.iter().filter(|e| e.word == k.name()).count();
            assert_eq!(entries, 1, "{}", k.name());
        }
    }
}
