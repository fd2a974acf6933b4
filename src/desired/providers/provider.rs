//! One entry of `providers:` — number, mark, interface, gateway, local address and the
//! Shorewall options — checked on its own, then the checks across providers.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use reconcilers::model::{Family, LinkKind};
use reconcilers::providers::{DefaultTable, Fallback, Options, Provider, MAX_NUMBER};
use serde_saphyr::Spanned;

use super::{ProviderDoc, Sections, RESERVED};
use crate::desired::convert::Converted;
use crate::desired::diagnostics::{Ctx, Pos};
use crate::desired::values as v;
use crate::desired::yaml::Scalar;

/// A mark or mask: a number, or a string in hex (`"0x1"`) or decimal.
pub(super) fn mark_number(
    file: usize,
    s: &Spanned<Scalar>,
    what: &str,
    ctx: &mut Ctx,
) -> Option<u32> {
    let at = Pos::of(file, s);
    let n = match &s.value {
        Scalar::Int(n) => u32::try_from(*n).ok(),
        Scalar::Str(t) => {
            let t = t.trim();
            match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => t.parse().ok(),
            }
        }
        _ => None,
    };
    if n.is_none() {
        ctx.err(
            at,
            format!("{what} must be a number from 0 to 0xffffffff, e.g. \"0x1\""),
        );
    }
    n
}

/// `balance` and `fallback`: `true` or a weight.
fn weight(file: usize, s: &Spanned<Scalar>, what: &str, ctx: &mut Ctx) -> Option<Option<u32>> {
    let at = Pos::of(file, s);
    match &s.value {
        Scalar::Bool(true) => Some(None),
        Scalar::Bool(false) => None,
        Scalar::Int(n) if (1..=256).contains(n) => Some(Some(u32::try_from(*n).expect("range"))),
        _ => {
            ctx.err(at, format!("{what} is `true` or a weight from 1 to 256"));
            None
        }
    }
}

/// A provider's `gateway` or `local`: an address, or `detect` (found on the host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Given {
    Addr(Ipv4Addr),
    Detect,
}

impl Given {
    fn addr(self) -> Option<Ipv4Addr> {
        match self {
            Given::Addr(a) => Some(a),
            Given::Detect => None,
        }
    }
}

/// `detect` or an IPv4 address.
fn given(file: usize, s: &Spanned<String>, what: &str, ctx: &mut Ctx) -> Option<Given> {
    if s.value == DETECT {
        return Some(Given::Detect);
    }
    if s.value.parse::<IpAddr>().is_err() {
        ctx.err(
            Pos::of(file, s),
            format!(
                "{what} `{}` is neither an IPv4 address nor `detect` (read from the interface on the host)",
                s.value
            ),
        );
        return None;
    }
    ipv4(file, s, what, ctx).map(Given::Addr)
}

/// The word (Shorewall's) for an address read from the interface on the host.
pub(super) const DETECT: &str = "detect";

/// Whether a provider entry detects an address: `local: detect`, or `gateway: detect`
/// (which detects the local address too unless `local:` gives it).
pub(super) fn detects(d: &ProviderDoc) -> bool {
    let is = |x: &Option<Spanned<String>>| x.as_ref().is_some_and(|s| s.value == DETECT);
    is(&d.gateway) || is(&d.local)
}

fn ipv4(file: usize, s: &Spanned<String>, what: &str, ctx: &mut Ctx) -> Option<Ipv4Addr> {
    match ctx.check(Pos::of(file, s), v::ip(&s.value, what))? {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => {
            ctx.err(
                Pos::of(file, s),
                format!("{what} {a} is IPv6; providers are IPv4 (as Shorewall's; shorewall6 is separate)"),
            );
            None
        }
    }
}

/// An interface name that will also be written into the nftables ruleset.
pub(super) fn ifname(file: usize, s: &Spanned<String>, ctx: &mut Ctx) -> Option<String> {
    let at = Pos::of(file, s);
    ctx.check(at, v::ifname(&s.value))?;
    if s.value.contains(['"', '\\']) {
        ctx.err(
            at,
            format!(
                "`{}` cannot be used here: it contains a quote or backslash",
                s.value
            ),
        );
        return None;
    }
    Some(s.value.clone())
}

/// Check one provider entry; `None` (with its errors recorded) when anything is wrong.
pub(super) fn provider(
    file: usize,
    name: &Spanned<String>,
    d: &ProviderDoc,
    o: &Options,
    c: &Converted,
    ctx: &mut Ctx,
) -> Option<Provider> {
    let before = ctx.count();
    let at = Pos::of(file, name);
    let n = name.value.as_str();
    check_name(n, at, ctx);
    let number = number(file, d, n, at, ctx);
    let interface = match &d.interface {
        None => {
            ctx.err(at, format!("provider {n} needs an `interface`"));
            None
        }
        Some(i) => ifname(file, i, ctx),
    };
    let gateway = match &d.gateway {
        None => {
            ctx.err(at, format!("provider {n} needs a `gateway`"));
            None
        }
        Some(g) => given(file, g, "gateway", ctx),
    };
    let local = d.local.as_ref().and_then(|l| given(file, l, "local", ctx));
    let track = d.track.as_ref().is_some_and(|t| t.value);
    let health = d
        .health
        .as_ref()
        .and_then(|h| super::health::health(file, h, ctx));
    let mark = mark(file, d, o, at, number, ctx);
    let balance = d
        .balance
        .as_ref()
        .and_then(|b| weight(file, b, "balance", ctx))
        .map(|w| w.unwrap_or(1));
    let fallback = d
        .fallback
        .as_ref()
        .and_then(|f| weight(file, f, "fallback", ctx))
        .map(|w| w.map_or(Fallback::Metric, Fallback::Weight));
    let (duplicate, copy) = duplicate(file, d, o, ctx);
    let (interface, gateway) = (interface?, gateway?);
    if detects(d) {
        check_detect(file, d, &interface, c, ctx);
    }
    let local = local_given(file, d, &interface, gateway, local, c, ctx, at);
    if ctx.count() > before {
        return None;
    }
    Some(Provider {
        name: n.to_string(),
        number: number?,
        mark,
        interface,
        gateway: gateway.addr(),
        local: local?,
        balance,
        fallback,
        track,
        loose: d.loose.as_ref().is_some_and(|l| l.value),
        duplicate,
        copy,
        optional: d.optional.as_ref().is_some_and(|x| x.value),
        health,
    })
}

/// The provider's local address: `Some(None)` when it is detected on the host (`local:
/// detect`, or `gateway: detect` without `local:`), `None` on an error.
#[allow(clippy::too_many_arguments)]
fn local_given(
    file: usize,
    d: &ProviderDoc,
    interface: &str,
    gateway: Given,
    local: Option<Given>,
    c: &Converted,
    ctx: &mut Ctx,
    at: Pos,
) -> Option<Option<Ipv4Addr>> {
    match (gateway, local) {
        (Given::Addr(g), None | Some(Given::Addr(_))) => {
            let l = local.and_then(Given::addr);
            resolve_local(file, d, interface, g, l, c, ctx, at).map(Some)
        }
        (_, Some(Given::Detect)) | (Given::Detect, None) => Some(None),
        (Given::Detect, Some(Given::Addr(l))) => Some(Some(l)),
    }
}

/// `detect` reads what another program (a DHCP client) configured on the interface: not on a
/// link netconverge creates (it owns every address there and would remove the client's), and
/// not with `health` (whose probes are bound to a fixed local address).
fn check_detect(file: usize, d: &ProviderDoc, interface: &str, c: &Converted, ctx: &mut Ctx) {
    let word = [&d.gateway, &d.local]
        .into_iter()
        .flatten()
        .find(|s| s.value == DETECT)
        .map(|s| Pos::of(file, s));
    let Some(at) = word else { return };
    if let Some(l) = c
        .links
        .iter()
        .find(|l| l.link.name == interface && l.link.kind != LinkKind::External)
    {
        ctx.err(
            at,
            format!(
                "`detect` reads the addresses another program (a DHCP client) gives {interface}, but netconverge creates {} and owns every address on it; declare its address and gateway instead",
                l.link.name
            ),
        );
    }
    if let Some(h) = &d.health {
        ctx.err(
            Pos::of(file, h),
            "`health` cannot be combined with `detect` yet (the probes are bound to a fixed local address); give `local:` and `gateway:`, or remove `health`",
        );
    }
}

/// The provider's number, which is also its table's id.
fn number(file: usize, d: &ProviderDoc, n: &str, at: Pos, ctx: &mut Ctx) -> Option<u32> {
    match &d.number {
        None => {
            ctx.err(
                at,
                format!("provider {n} needs a `number` (1..={MAX_NUMBER}): its routing table"),
            );
            None
        }
        Some(x) => ctx
            .check(
                Pos::of(file, x),
                v::ranged(x.value, 1, i64::from(MAX_NUMBER), "provider number"),
            )
            .map(|x| u32::try_from(x).expect("range")),
    }
}

/// A provider name is a word, and not one of the built-in tables'.
fn check_name(n: &str, at: Pos, ctx: &mut Ctx) {
    let valid_name = n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && n.len() <= 32
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        ctx.err(
            at,
            format!("`{n}` is not a provider name: use a letter, then letters, digits, `_` or `-`"),
        );
    } else if RESERVED.contains(&n) {
        ctx.err(
            at,
            format!("provider name `{n}` is reserved (it names a built-in table)"),
        );
    }
}

/// The provider's mark: `mark:` within the mask, or for `track` or `health` without one, the
/// number shifted into the mask (Shorewall assigns one too; the probes of `health` are routed
/// by it).
fn mark(
    file: usize,
    d: &ProviderDoc,
    o: &Options,
    at: Pos,
    number: Option<u32>,
    ctx: &mut Ctx,
) -> Option<u32> {
    let track = d.track.as_ref().is_some_and(|t| t.value) || d.health.is_some();
    let mark = d.mark.as_ref().and_then(|m| {
        let mark = mark_number(file, m, "mark", ctx)?;
        if mark == 0 {
            ctx.err(Pos::of(file, m), "mark 0 is \"no mark\"; give a non-zero mark");
            None
        } else if mark & !o.mask != 0 {
            ctx.err(
                Pos::of(file, m),
                format!(
                    "mark {mark:#x} is outside provider_options.mask {:#x}: the fwmark rule and tracking only look at the masked bits",
                    o.mask
                ),
            );
            None
        } else {
            Some(mark)
        }
    });
    let (None, true, Some(num)) = (mark, track, number) else {
        return mark;
    };
    let assigned = num.checked_shl(o.mask.trailing_zeros()).unwrap_or(0);
    if assigned == 0 || assigned & !o.mask != 0 {
        let t_at = d.track.as_ref().map_or(at, |t| Pos::of(file, t));
        ctx.err(
            t_at,
            format!(
                "track and health need a mark, and number {num} does not fit in mask {:#x}; give `mark:`",
                o.mask
            ),
        );
        return None;
    }
    Some(assigned)
}

/// `duplicate: main` and the `copy` list of interfaces whose main routes it copies.
fn duplicate(file: usize, d: &ProviderDoc, o: &Options, ctx: &mut Ctx) -> (bool, Vec<String>) {
    let duplicate = match &d.duplicate {
        None => false,
        Some(x) if x.value == "main" => true,
        Some(x) => {
            ctx.err(
                Pos::of(file, x),
                format!("duplicate: `{}` cannot be copied; only `main` can", x.value),
            );
            false
        }
    };
    let copy = d
        .copy
        .iter()
        .flatten()
        .filter_map(|l| ifname(file, l, ctx))
        .collect();
    if let (Some(first), None) = (d.copy.as_ref().and_then(|c| c.first()), &d.duplicate) {
        ctx.err(
            Pos::of(file, first),
            "`copy` selects what `duplicate: main` copies; add `duplicate: main`",
        );
    }
    if let (Some(x), true) = (&d.duplicate, o.default_table == DefaultTable::BalanceTable) {
        ctx.err(
            Pos::of(file, x),
            "`duplicate` has no effect with default_table: balance_table, where main is looked up first (rule 999) and routes the local networks; remove it",
        );
    }
    (duplicate, copy)
}

/// This host's address towards the gateway: `local`, or the interface's declared address
/// whose subnet holds the gateway. The gateway must sit in one of the interface's declared
/// subnets (the kernel would refuse the route otherwise).
#[allow(clippy::too_many_arguments)]
fn resolve_local(
    file: usize,
    d: &ProviderDoc,
    interface: &str,
    gateway: Ipv4Addr,
    local: Option<Ipv4Addr>,
    c: &Converted,
    ctx: &mut Ctx,
    at: Pos,
) -> Option<Ipv4Addr> {
    let g_at = d.gateway.as_ref().map_or(at, |g| Pos::of(file, g));
    let subnets: Vec<IpNet> = c
        .addresses
        .iter()
        .filter(|a| a.link == interface && Family::of_net(&a.address) == Family::Inet)
        .map(|a| a.address)
        .collect();
    if let Some(own) = c
        .addresses
        .iter()
        .find(|a| a.address.addr() == IpAddr::V4(gateway))
    {
        ctx.err(
            g_at,
            format!(
                "gateway {gateway} is an address of this host (declared on {}); a gateway must be another machine",
                own.link
            ),
        );
        return None;
    }
    let covering = subnets.iter().find(|n| n.contains(&IpAddr::V4(gateway)));
    if !subnets.is_empty() && covering.is_none() {
        let list: Vec<String> = subnets.iter().map(ToString::to_string).collect();
        ctx.err(
            g_at,
            format!(
                "gateway {gateway} is not in any subnet of {interface} ({})",
                list.join(", ")
            ),
        );
        return None;
    }
    match (local, covering) {
        (Some(l), _) => {
            if !subnets.is_empty() && !subnets.iter().any(|n| n.addr() == IpAddr::V4(l)) {
                let list: Vec<String> = subnets.iter().map(ToString::to_string).collect();
                ctx.err(
                    d.local.as_ref().map_or(at, |x| Pos::of(file, x)),
                    format!(
                        "local {l} is not an address of {interface} ({})",
                        list.join(", ")
                    ),
                );
                return None;
            }
            Some(l)
        }
        (None, Some(n)) => match n.addr() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        },
        (None, None) => {
            ctx.err(
                d.interface.as_ref().map_or(at, |i| Pos::of(file, i)),
                format!(
                    "the provider needs this host's address on {interface}: declare it (links: {{ {interface}: {{ kind: external, addresses: [...] }} }}) or give `local:`"
                ),
            );
            None
        }
    }
}

/// Checks across providers: numbers, marks and gateways used twice, and the `from` rule that
/// two providers sharing an address would both add.
pub(super) fn check_together(providers: &[Provider], at: &[Pos], s: &Sections, ctx: &mut Ctx) {
    let pos_of = |i: usize, f: &dyn Fn(&ProviderDoc) -> Option<Pos>| -> Pos {
        s.providers
            .iter()
            .find(|(_, n, _)| n.value == providers[i].name)
            .and_then(|(_, _, d)| f(d))
            .unwrap_or(at[i])
    };
    let file_of = |i: usize| {
        s.providers
            .iter()
            .find(|(_, n, _)| n.value == providers[i].name)
            .map_or(0, |(f, _, _)| *f)
    };
    for (i, p) in providers.iter().enumerate() {
        for (j, q) in providers.iter().enumerate().take(i) {
            let f = file_of(i);
            if p.number == q.number {
                let here = pos_of(i, &|d| d.number.as_ref().map(|x| Pos::of(f, x)));
                ctx.err(
                    here,
                    format!(
                        "provider number {} is used by both {} ({}) and {}; each provider needs its own table",
                        p.number,
                        q.name,
                        ctx.place(at[j]),
                        p.name
                    ),
                );
            }
            if let (Some(a), Some(b)) = (p.mark, q.mark) {
                if a == b {
                    let here = pos_of(i, &|d| {
                        d.mark
                            .as_ref()
                            .map(|x| Pos::of(f, x))
                            .or_else(|| d.track.as_ref().map(|x| Pos::of(f, x)))
                    });
                    ctx.err(
                        here,
                        format!(
                            "mark {a:#x} is used by both {} ({}) and {}; the mark selects one provider",
                            q.name,
                            ctx.place(at[j]),
                            p.name
                        ),
                    );
                }
            }
            if p.interface == q.interface && p.gateway == q.gateway {
                let gw = p
                    .gateway
                    .map_or_else(|| "(both detect it)".to_string(), |g| g.to_string());
                ctx.err(
                    pos_of(i, &|d| d.gateway.as_ref().map(|x| Pos::of(f, x))),
                    format!(
                        "providers {} and {} are the same gateway {gw} on {}",
                        q.name, p.name, p.interface
                    ),
                );
            }
        }
    }
    shared_locals(providers, at, ctx);
}

/// Shorewall deletes any `from LOCAL` rule before adding its own, so of two providers
/// sharing a local address only the last one's rule survives; say so instead.
fn shared_locals(providers: &[Provider], at: &[Pos], ctx: &mut Ctx) {
    // A detected local address is the interface's primary one: the same for every provider
    // detecting it there.
    let mut by_local: BTreeMap<(Option<Ipv4Addr>, Option<&str>), Vec<usize>> = BTreeMap::new();
    for (i, p) in providers.iter().enumerate() {
        if !p.loose {
            let key = match p.local {
                Some(l) => (Some(l), None),
                None => (None, Some(p.interface.as_str())),
            };
            by_local.entry(key).or_default().push(i);
        }
    }
    for list in by_local.values() {
        if let [first, rest @ ..] = list.as_slice() {
            for &i in rest {
                let p = &providers[i];
                let q = &providers[*first];
                let local = p
                    .local
                    .map_or_else(|| format!("detected on {}", p.interface), |l| l.to_string());
                ctx.err(
                    at[i],
                    format!(
                        "providers {} and {} share the address {local} on {}: each would add `from {local} lookup <its table>` at priority 20000, and in Shorewall the second replaces the first; set `loose: true` on all but one of them",
                        q.name, p.name, p.interface
                    ),
                );
            }
        }
    }
}
