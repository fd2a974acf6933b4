//! Conversion of the merged documents into the canonical model, checking every value on the
//! way (the checks need the parsed values anyway).
//!
//! Canonical means what the observed side produces for the same kernel object: destination
//! prefixes without host bits, the kernel's default metric and scope filled in, nexthops
//! sorted, a single nexthop with weight 1, fwmark masks explicit, sysctl values
//! whitespace-normalised. An object with any error is left out, and its errors are recorded;
//! cross-object checks then run on what converted.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use reconcilers::model::{
    Address, BridgeOpts, Family, Ident, Link, LinkKind, MacvlanMode, MacvlanOpts, NextHop, Route,
    RouteType, Rule, RuleAction, RuleKey, Scope, State, TapOpts, VethOpts, VxlanOpts,
    DEFAULT_PROTOCOL, TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN,
};
use serde_saphyr::Spanned;

use super::document::{LinkDoc, NextHopDoc, RouteDoc, RuleDoc, Scalar};
use super::load::Merged;
use super::validate::{self as v, Ctx, Pos};
use super::HostCheck;

/// A converted link and the positions the cross-object checks report at.
pub(crate) struct LinkInfo {
    pub at: Pos,
    pub link: Link,
    pub master_at: Option<Pos>,
    pub peer_at: Option<Pos>,
}

/// One gateway of a route, for the reachability check.
pub(crate) struct Gateway {
    pub via: IpAddr,
    pub dev: Option<String>,
    pub onlink: bool,
    pub at: Pos,
}

/// A converted route.
pub(crate) struct RouteInfo {
    pub at: Pos,
    pub route: Route,
    pub gateways: Vec<Gateway>,
}

/// A converted rule.
pub(crate) struct RuleInfo {
    pub at: Pos,
    pub priority_at: Pos,
    pub rule: Rule,
}

/// Everything that converted, before cross-object checks.
pub(crate) struct Converted {
    pub protocol: u8,
    pub tables: BTreeMap<String, u32>,
    pub links: Vec<LinkInfo>,
    pub addresses: Vec<Address>,
    pub routes: Vec<RouteInfo>,
    pub rules: Vec<RuleInfo>,
    pub sysctls: BTreeMap<String, String>,
    pub host_checks: Vec<HostCheck>,
    /// Labels of generated objects (`providers.rs`), by `"<kind> <id>"`.
    pub origins: BTreeMap<String, String>,
    /// netconverge's nftables tables, generated from the provider sections.
    pub firewall: Option<reconcilers::nft::Firewall>,
    /// The provider sections, checked (for `optional`, decided on the host).
    pub providers: reconcilers::providers::Providers,
    /// DHCP/DNS services by bridge (`dhcp.rs`; converted after the links they serve).
    pub dhcp: BTreeMap<String, reconcilers::dnsmasq::DhcpServer>,
}

impl Converted {
    /// The model state of everything converted.
    pub fn into_state(self) -> State {
        let mut s = State::default();
        for l in self.links {
            s.add_link(l.link);
        }
        for a in self.addresses {
            s.add_address(a);
        }
        for r in self.routes {
            s.add_route(r.route);
        }
        for r in self.rules {
            s.add_rule(r.rule);
        }
        s.sysctls = self.sysctls;
        s.origins = self.origins;
        s.firewall = self.firewall;
        s.dhcp = self.dhcp;
        s
    }
}

/// Convert all merged documents, recording every error in `ctx`.
pub(crate) fn convert(m: &Merged, ctx: &mut Ctx) -> Converted {
    let protocol = protocol(m, ctx);
    let tables = Tables::new(m, ctx);
    let mut c = Converted {
        protocol,
        tables: tables.ids.clone(),
        links: Vec::new(),
        addresses: Vec::new(),
        routes: Vec::new(),
        rules: Vec::new(),
        sysctls: BTreeMap::new(),
        host_checks: Vec::new(),
        origins: BTreeMap::new(),
        firewall: None,
        providers: Default::default(),
        dhcp: BTreeMap::new(),
    };
    for (file, name, value) in &m.sysctl {
        sysctl(*file, name, value, ctx, &mut c.sysctls);
    }
    for (file, name, doc) in &m.links {
        link(*file, name, doc, ctx, &mut c);
    }
    for (file, item) in &m.routes {
        if let Some(r) = route(*file, item, &tables, ctx) {
            c.routes.push(r);
        }
    }
    for (file, item) in &m.rules {
        if let Some(r) = rule(*file, item, &tables, ctx) {
            c.rules.push(r);
        }
    }
    super::dhcp::convert(m, &mut c, ctx);
    super::providers::convert(m, ctx, &mut c);
    c
}

fn protocol(m: &Merged, ctx: &mut Ctx) -> u8 {
    let Some((file, owner)) = &m.owner else {
        return DEFAULT_PROTOCOL;
    };
    let Some(p) = &owner.value.protocol else {
        return DEFAULT_PROTOCOL;
    };
    let at = Pos::of(*file, p);
    if (0..=4).contains(&p.value) {
        ctx.err(
            at,
            format!(
                "protocol {} is reserved (0-4 are unspec, redirect, kernel, boot and static, which `ip route` uses); pick an unused number such as {DEFAULT_PROTOCOL}",
                p.value
            ),
        );
        return DEFAULT_PROTOCOL;
    }
    ctx.check(at, v::ranged(p.value, 5, 255, "protocol"))
        .map_or(DEFAULT_PROTOCOL, |p| u8::try_from(p).expect("in range"))
}

/// The declared tables, and which names were declared at all (even with a bad id), so a
/// bad declaration does not also make every use of the name an "unknown table".
struct Tables {
    ids: BTreeMap<String, u32>,
    declared: Vec<String>,
}

impl Tables {
    fn new(m: &Merged, ctx: &mut Ctx) -> Tables {
        let mut ids = BTreeMap::new();
        let mut declared = Vec::new();
        let mut by_id: BTreeMap<u32, (String, Pos)> = BTreeMap::new();
        for (file, name, id) in &m.tables {
            declared.push(name.value.clone());
            let name_ok = ctx
                .check(Pos::of(*file, name), v::table_name(&name.value))
                .is_some();
            let at = Pos::of(*file, id);
            let Some(n) = ctx.check(at, v::table_id(id.value)) else {
                continue;
            };
            if let Some((other, first)) = by_id.get(&n) {
                ctx.err(
                    at,
                    format!(
                        "table id {n} is used by both {other} ({}) and {}; each table needs its own id",
                        ctx.place(*first),
                        name.value
                    ),
                );
                continue;
            }
            by_id.insert(n, (name.value.clone(), at));
            if name_ok {
                ids.insert(name.value.clone(), n);
            }
        }
        Tables { ids, declared }
    }

    /// Resolve a table reference: a declared name, main/default (and local for rules), or a
    /// number.
    fn resolve(&self, file: usize, t: &Spanned<Scalar>, rule: bool, ctx: &mut Ctx) -> Option<u32> {
        let at = Pos::of(file, t);
        let number = match &t.value {
            Scalar::Int(n) => Some(*n),
            Scalar::Str(s) if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) => {
                s.parse::<i128>().ok()
            }
            Scalar::Str(_) => None,
            _ => {
                ctx.err(at, "table must be a name or a number");
                return None;
            }
        };
        let id = match number {
            Some(n) => {
                if n <= 0 || n > i128::from(u32::MAX) {
                    ctx.err(at, format!("table {n} is out of range (1..=4294967295)"));
                    return None;
                }
                u32::try_from(n).expect("in range")
            }
            None => {
                let Scalar::Str(name) = &t.value else {
                    unreachable!("numbers handled above")
                };
                match name.as_str() {
                    "main" => TABLE_MAIN,
                    "default" => TABLE_DEFAULT,
                    "local" => TABLE_LOCAL,
                    _ => match self.ids.get(name) {
                        Some(id) => *id,
                        None => {
                            if ctx.complete && !self.declared.contains(name) {
                                let mut names: Vec<&str> =
                                    self.ids.keys().map(String::as_str).collect();
                                names.extend(["main", "default"]);
                                if rule {
                                    names.push("local");
                                }
                                ctx.err(
                                    at,
                                    format!(
                                        "unknown table `{name}`{}",
                                        match v::did_you_mean(name, names) {
                                            Some(s) => format!("; did you mean `{s}`?"),
                                            None => "; declare it under `tables:`".into(),
                                        }
                                    ),
                                );
                            }
                            return None;
                        }
                    },
                }
            }
        };
        if id == TABLE_LOCAL && !rule {
            ctx.err(
                at,
                "routes cannot be put in the local table (255); the kernel manages it",
            );
            return None;
        }
        Some(id)
    }
}

fn sysctl(
    file: usize,
    name: &Spanned<String>,
    value: &Spanned<Scalar>,
    ctx: &mut Ctx,
    out: &mut BTreeMap<String, String>,
) {
    let name_ok = ctx
        .check(Pos::of(file, name), v::sysctl_name(&name.value))
        .is_some();
    let at = Pos::of(file, value);
    let text = match &value.value {
        Scalar::Str(s) => reconcilers::model::normalize_sysctl_value(s),
        Scalar::Int(n) => n.to_string(),
        Scalar::Bool(b) => u8::from(*b).to_string(),
        Scalar::Float(_) => {
            ctx.err(
                at,
                format!(
                    "sysctl {} must be a string or whole number; write the value in quotes",
                    name.value
                ),
            );
            return;
        }
        Scalar::Null => {
            // A missing value has no position of its own; point at the name.
            ctx.err(
                Pos::of(file, name),
                format!("sysctl {} needs a value", name.value),
            );
            return;
        }
    };
    if text.is_empty() {
        ctx.err(at, format!("sysctl {} has an empty value", name.value));
        return;
    }
    if name_ok {
        out.insert(name.value.clone(), text);
    }
}

/// A user or group: a number, or a name resolved on the host.
fn ident(file: usize, s: &Spanned<Scalar>, what: &str, ctx: &mut Ctx) -> Option<Ident> {
    let at = Pos::of(file, s);
    let number = match &s.value {
        Scalar::Int(n) => *n,
        Scalar::Str(t) if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) => {
            t.parse().unwrap_or(i128::MAX)
        }
        Scalar::Str(t) => {
            return ctx
                .check(at, v::ident_name(t))
                .map(|()| Ident::Name(t.clone()))
        }
        _ => {
            ctx.err(at, format!("{what} must be a name or a number"));
            return None;
        }
    };
    // (uid_t)-1 means "unchanged" to the kernel, so it cannot be an owner.
    if !(0..i128::from(u32::MAX)).contains(&number) {
        ctx.err(
            at,
            format!("{what} {number} is out of range (0..=4294967294)"),
        );
        return None;
    }
    Some(Ident::Id(u32::try_from(number).expect("in range")))
}

fn ifname_at(file: usize, s: &Spanned<String>, ctx: &mut Ctx) -> Option<String> {
    ctx.check(Pos::of(file, s), v::ifname(&s.value))
        .map(|()| s.value.clone())
}

fn num(file: usize, s: &Spanned<i64>, lo: i64, hi: i64, what: &str, ctx: &mut Ctx) -> Option<i64> {
    ctx.check(Pos::of(file, s), v::ranged(s.value, lo, hi, what))
}

fn u32_of(n: i64) -> u32 {
    u32::try_from(n).expect("range-checked")
}

const KINDS: [&str; 6] = ["external", "bridge", "tap", "veth", "vxlan", "macvlan"];

fn link(file: usize, name: &Spanned<String>, d: &LinkDoc, ctx: &mut Ctx, c: &mut Converted) {
    let before = ctx.count();
    let at = Pos::of(file, name);
    let n = name.value.as_str();
    let _ = ctx.check(at, v::ifname(n));
    let kind_word = match &d.kind {
        None => {
            ctx.err(
                at,
                format!("link {n} needs a `kind` (one of {})", KINDS.join(", ")),
            );
            None
        }
        Some(k) => ctx
            .check(
                Pos::of(file, k),
                v::keyword(
                    &k.value,
                    "link kind",
                    &[
                        ("external", "external"),
                        ("bridge", "bridge"),
                        ("tap", "tap"),
                        ("veth", "veth"),
                        ("vxlan", "vxlan"),
                        ("macvlan", "macvlan"),
                    ],
                ),
            )
            .map(|w| (w, Pos::of(file, k))),
    };
    // Kind blocks that do not belong to the kind.
    let blocks: [(&str, Option<Pos>); 5] = [
        ("bridge", d.bridge.as_ref().map(|b| Pos::of(file, b))),
        ("tap", d.tap.as_ref().map(|b| Pos::of(file, b))),
        ("veth", d.veth.as_ref().map(|b| Pos::of(file, b))),
        ("vxlan", d.vxlan.as_ref().map(|b| Pos::of(file, b))),
        ("macvlan", d.macvlan.as_ref().map(|b| Pos::of(file, b))),
    ];
    if let Some((kw, _)) = kind_word {
        for (block, pos) in blocks {
            if let Some(pos) = pos {
                if block != kw {
                    ctx.err(
                        pos,
                        format!("`{block}:` options do not apply to {n}, a link of kind {kw}"),
                    );
                }
            }
        }
    }
    let mut peer_at = None;
    let kind = kind_word.and_then(|(kw, kind_at)| match kw {
        "external" => Some(LinkKind::External),
        "bridge" => {
            let mut o = BridgeOpts::default();
            if let Some(b) = &d.bridge {
                o.stp = b.value.stp.as_ref().map(|s| s.value);
                if let Some(fd) = &b.value.forward_delay {
                    // With STP on, the kernel only accepts 2..=30 s (in centiseconds).
                    let (lo, hi, what) = if o.stp == Some(true) {
                        (200, 3000, "forward_delay (centiseconds) with STP on")
                    } else {
                        (0, i64::from(u32::MAX), "forward_delay (centiseconds)")
                    };
                    o.forward_delay = num(file, fd, lo, hi, what, ctx).map(u32_of);
                }
            }
            Some(LinkKind::Bridge(o))
        }
        "tap" => {
            let mut o = TapOpts::default();
            if let Some(t) = &d.tap {
                let t = &t.value;
                if let Some(s) = &t.owner {
                    o.owner = ident(file, s, "tap owner", ctx);
                    if let Some(Ident::Name(u)) = &o.owner {
                        c.host_checks.push(HostCheck::User {
                            name: u.clone(),
                            at: ctx.diag(
                                Pos::of(file, s),
                                format!("tap owner `{u}` does not exist on this host"),
                            ),
                        });
                    }
                }
                if let Some(s) = &t.group {
                    o.group = ident(file, s, "tap group", ctx);
                    if let Some(Ident::Name(g)) = &o.group {
                        c.host_checks.push(HostCheck::Group {
                            name: g.clone(),
                            at: ctx.diag(
                                Pos::of(file, s),
                                format!("tap group `{g}` does not exist on this host"),
                            ),
                        });
                    }
                }
                o.vnet_hdr = t.vnet_hdr.as_ref().map(|s| s.value);
                o.multi_queue = t.multi_queue.as_ref().map(|s| s.value);
            }
            Some(LinkKind::Tap(o))
        }
        "veth" => {
            let Some(p) = d.veth.as_ref().and_then(|b| b.value.peer.as_ref()) else {
                ctx.err(
                    kind_at,
                    format!("veth link {n} needs `veth: {{ peer: NAME }}`"),
                );
                return None;
            };
            peer_at = Some(Pos::of(file, p));
            let peer = ifname_at(file, p, ctx)?;
            if peer == n {
                ctx.err(Pos::of(file, p), format!("veth {n} cannot be its own peer"));
                return None;
            }
            Some(LinkKind::Veth(VethOpts { peer }))
        }
        "vxlan" => {
            let Some(b) = &d.vxlan else {
                ctx.err(
                    kind_at,
                    format!("vxlan link {n} needs `vxlan: {{ id: VNI }}`"),
                );
                return None;
            };
            let b = &b.value;
            let Some(id) = &b.id else {
                ctx.err(
                    kind_at,
                    format!("vxlan link {n} needs `vxlan: {{ id: VNI }}`"),
                );
                return None;
            };
            let id = num(file, id, 0, (1 << 24) - 1, "vxlan id", ctx).map(u32_of);
            let local = b.local.as_ref().and_then(|s| {
                let a = ctx.check(Pos::of(file, s), v::ip(&s.value, "local"))?;
                if a.is_multicast() || a.is_unspecified() {
                    ctx.err(
                        Pos::of(file, s),
                        format!("local {a} must be a unicast address"),
                    );
                    return None;
                }
                Some(a)
            });
            let remote = b
                .remote
                .as_ref()
                .and_then(|s| ctx.check(Pos::of(file, s), v::ip(&s.value, "remote")));
            let dev = b.dev.as_ref().and_then(|s| ifname_at(file, s, ctx));
            if let (Some(l), Some(r), Some(rs)) = (local, remote, &b.remote) {
                if Family::of(&l) != Family::of(&r) {
                    ctx.err(
                        Pos::of(file, rs),
                        format!("local {l} and remote {r} are of different address families"),
                    );
                }
            }
            if let (Some(r), Some(rs)) = (remote, &b.remote) {
                // The kernel needs a device to join a multicast group on.
                if r.is_multicast() && dev.is_none() {
                    ctx.err(
                        Pos::of(file, rs),
                        format!("multicast remote {r} needs `dev` (the link to join the group on)"),
                    );
                }
            }
            if let (Some(dv), Some(ds)) = (&dev, &b.dev) {
                if dv == n {
                    ctx.err(
                        Pos::of(file, ds),
                        format!("vxlan {n} cannot be its own `dev`"),
                    );
                }
            }
            let port = b
                .port
                .as_ref()
                .and_then(|p| num(file, p, 1, 65535, "vxlan port", ctx))
                .map(|p| u16::try_from(p).expect("in range"));
            Some(LinkKind::Vxlan(VxlanOpts {
                id: id?,
                local,
                remote,
                dev,
                port,
            }))
        }
        "macvlan" => {
            let Some(l) = d.macvlan.as_ref().and_then(|b| b.value.link.as_ref()) else {
                ctx.err(
                    kind_at,
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
                    v::keyword(
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
        _ => unreachable!("keyword() only returns listed kinds"),
    });
    let master_at = d.master.as_ref().map(|m| Pos::of(file, m));
    let master = d.master.as_ref().and_then(|m| ifname_at(file, m, ctx));
    // The MTU range of an external link depends on its driver (`lo` has 65536, CAN links 16),
    // which only the host knows, and `show` must round-trip whatever it observed; the links
    // netconverge creates are Ethernet-like and take 68..=65535.
    let (mtu_lo, mtu_hi) = match kind_word {
        Some(("external", _)) => (0, i64::from(u32::MAX)),
        _ => (68, 65535),
    };
    let mtu = d
        .mtu
        .as_ref()
        .and_then(|m| num(file, m, mtu_lo, mtu_hi, "mtu", ctx))
        .map(u32_of);
    let mac = d
        .mac
        .as_ref()
        .and_then(|m| ctx.check(Pos::of(file, m), v::mac(&m.value)));
    let mut addrs: Vec<(IpNet, Pos)> = Vec::new();
    for a in d.addresses.iter().flatten() {
        let pos = Pos::of(file, a);
        let Some(net) = ctx.check(pos, v::host_cidr(&a.value)) else {
            continue;
        };
        if let Some((_, first)) = addrs.iter().find(|(x, _)| *x == net) {
            ctx.err(
                pos,
                format!(
                    "address {net} is listed twice on {n} (also at {})",
                    ctx.place(*first)
                ),
            );
            continue;
        }
        addrs.push((net, pos));
    }
    if ctx.count() > before {
        return;
    }
    let Some(kind) = kind else { return };
    if matches!(kind, LinkKind::External) {
        c.host_checks.push(HostCheck::ExternalLink {
            name: n.to_owned(),
            at: ctx.diag(
                at,
                format!("external link `{n}` does not exist on this host"),
            ),
        });
    }
    let mut l = Link::new(n, kind);
    l.master = master;
    l.mtu = mtu;
    l.mac = mac;
    l.up = d.up.as_ref().map(|u| u.value);
    c.links.push(LinkInfo {
        at,
        link: l,
        master_at,
        peer_at,
    });
    for (net, _) in addrs {
        c.addresses.push(Address {
            link: n.to_owned(),
            address: net,
            owned: false,
        });
    }
}

/// A nexthop before canonicalisation, with the positions to report at.
struct Hop {
    hop: NextHop,
    via_at: Option<Pos>,
    dev_at: Option<Pos>,
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
            via: via.and_then(|s| ctx.check(Pos::of(file, s), v::ip(&s.value, "gateway"))),
            dev: dev.and_then(|s| ifname_at(file, s, ctx)),
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

fn route(
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
    let kind = match &d.kind {
        None => Some(RouteType::Unicast),
        Some(k) => ctx.check(
            Pos::of(file, k),
            v::keyword(
                &k.value,
                "route type",
                &[
                    ("unicast", RouteType::Unicast),
                    ("blackhole", RouteType::Blackhole),
                    ("unreachable", RouteType::Unreachable),
                    ("prohibit", RouteType::Prohibit),
                ],
            ),
        ),
    };
    // Next hops.
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
        for h in &list.value {
            if let Some(h) = nexthop(file, h, ctx) {
                hops.push(h);
            }
        }
    } else if d.via.is_some() || d.dev.is_some() {
        let onlink = d
            .onlink
            .as_ref()
            .filter(|o| o.value)
            .map(|o| Pos::of(file, o));
        hops.push(hop(file, d.via.as_ref(), d.dev.as_ref(), 1, onlink, ctx));
    } else if let Some(o) = &d.onlink {
        if o.value {
            ctx.err(Pos::of(file, o), "`onlink` needs a `via`");
        }
    }
    let src = d
        .src
        .as_ref()
        .and_then(|s| ctx.check(Pos::of(file, s), v::ip(&s.value, "src")));
    // Destination; `default` takes its family from the gateways and source.
    let Some(to_s) = &d.to else {
        ctx.err(at, "a route needs `to` (a prefix, an address or `default`)");
        return None;
    };
    let to_at = Pos::of(file, to_s);
    let to = if to_s.value.trim() == "default" {
        let v6 = hops
            .iter()
            .filter_map(|h| h.hop.via)
            .chain(src)
            .any(|a| a.is_ipv6());
        Some(if v6 { Family::Inet6 } else { Family::Inet }.any())
    } else {
        ctx.check(to_at, v::prefix(&to_s.value, "destination"))
    };
    let to = to?;
    let fam = Family::of_net(&to);
    let to_text = if to.prefix_len() == 0 {
        "default".to_string()
    } else {
        to.to_string()
    };
    let kind = kind?;
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
    for h in &hops {
        if let (Some(g), Some(g_at)) = (h.hop.via, h.via_at) {
            if Family::of(&g) != fam {
                ctx.err(
                    g_at,
                    format!(
                        "gateway {g} is {} but the route to {to_text} is {}",
                        v::family_name(Family::of(&g)),
                        v::family_name(fam)
                    ),
                );
            } else if v::is_v6_link_local(&g) && h.hop.dev.is_none() && h.dev_at.is_none() {
                ctx.err(g_at, format!("link-local gateway {g} needs `dev`"));
            }
        }
    }
    if let (Some(s), Some(ss)) = (src, &d.src) {
        if Family::of(&s) != fam {
            ctx.err(
                Pos::of(file, ss),
                format!(
                    "src {s} is {} but the route to {to_text} is {}",
                    v::family_name(Family::of(&s)),
                    v::family_name(fam)
                ),
            );
        }
    }
    let table = match &d.table {
        None => Some(TABLE_MAIN),
        Some(t) => tables.resolve(file, t, false, ctx),
    };
    // IPv6 has no metric 0: the kernel turns it into 1024.
    let metric = match &d.metric {
        None => Some(Route::default_metric(fam)),
        Some(m) => num(file, m, 0, i64::from(u32::MAX), "metric", ctx).map(|m| {
            let m = u32_of(m);
            if m == 0 && fam == Family::Inet6 {
                Route::default_metric(fam)
            } else {
                m
            }
        }),
    };
    let mut nexthops: Vec<NextHop> = hops.iter().map(|h| h.hop.clone()).collect();
    nexthops.sort();
    // The kernel keeps no weight for a route with one nexthop.
    if let [only] = nexthops.as_mut_slice() {
        only.weight = 1;
    }
    let has_gateway = nexthops.iter().any(|h| h.via.is_some());
    let scope = match &d.scope {
        None => Some(Route::default_scope(fam, kind, &nexthops)),
        Some(s) => {
            let s_at = Pos::of(file, s);
            let sc = ctx.check(
                s_at,
                v::keyword(
                    &s.value,
                    "scope",
                    &[
                        ("global", Scope::Global),
                        ("site", Scope::Site),
                        ("link", Scope::Link),
                        ("host", Scope::Host),
                    ],
                ),
            );
            match sc {
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
    };
    let mtu = d.mtu.as_ref().and_then(|m| {
        let lo = if fam == Family::Inet6 { 1280 } else { 68 };
        num(file, m, lo, 65535, "route mtu", ctx).map(u32_of)
    });
    let tos = match &d.tos {
        None => Some(0),
        Some(t) => {
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
    };
    if ctx.count() > before {
        return None;
    }
    let gateways = hops
        .iter()
        .filter_map(|h| {
            Some(Gateway {
                via: h.hop.via?,
                dev: h.hop.dev.clone(),
                onlink: h.hop.onlink,
                at: h.via_at?,
            })
        })
        .collect();
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
        gateways,
    })
}

fn rule(file: usize, item: &Spanned<RuleDoc>, tables: &Tables, ctx: &mut Ctx) -> Option<RuleInfo> {
    let before = ctx.count();
    let at = Pos::of(file, item);
    let d = &item.value;
    let Some(p) = &d.priority else {
        ctx.err(at, "a rule needs `priority`");
        return None;
    };
    let priority_at = Pos::of(file, p);
    let priority = num(file, p, 0, i64::from(u32::MAX), "priority", ctx).map(u32_of);
    let sel = |s: &Option<Spanned<String>>, what: &str, ctx: &mut Ctx| -> Option<IpNet> {
        let s = s.as_ref()?;
        if s.value.trim() == "all" {
            return None;
        }
        ctx.check(Pos::of(file, s), v::prefix(&s.value, what))
    };
    let from = sel(&d.from, "from", ctx);
    let to = sel(&d.to, "to", ctx);
    if let (Some(f), Some(t), Some(ts)) = (from, to, &d.to) {
        if Family::of_net(&f) != Family::of_net(&t) {
            ctx.err(
                Pos::of(file, ts),
                format!("from {f} and to {t} are of different address families"),
            );
        }
    }
    let inferred = from.or(to).map(|n| Family::of_net(&n));
    let family = match &d.family {
        None => inferred.unwrap_or(Family::Inet),
        Some(f) => {
            let f_at = Pos::of(file, f);
            match ctx.check(f_at, v::family(&f.value)) {
                Some(fam) => {
                    if let Some(sel) = from.or(to).filter(|n| Family::of_net(n) != fam) {
                        ctx.err(
                            f_at,
                            format!(
                                "family {} does not match {sel} ({})",
                                f.value,
                                v::family_name(Family::of_net(&sel))
                            ),
                        );
                    }
                    fam
                }
                None => Family::Inet,
            }
        }
    };
    let fwmark = d.fwmark.as_ref().and_then(|m| {
        let m_at = Pos::of(file, m);
        match &m.value {
            Scalar::Str(s) => ctx.check(m_at, v::fwmark(s)),
            Scalar::Int(n) => match u32::try_from(*n) {
                Ok(n) => ctx.check(m_at, v::check_fwmark(n, u32::MAX).map(|()| (n, u32::MAX))),
                Err(_) => {
                    ctx.err(m_at, format!("fwmark {n} is out of range (0..=0xffffffff)"));
                    None
                }
            },
            _ => {
                ctx.err(m_at, "fwmark must be MARK or MARK/MASK, e.g. \"0x1/0xff\"");
                None
            }
        }
    });
    let iif = d.iif.as_ref().and_then(|s| ifname_at(file, s, ctx));
    let oif = d.oif.as_ref().and_then(|s| ifname_at(file, s, ctx));
    let table = d
        .table
        .as_ref()
        .map(|t| (Pos::of(file, t), tables.resolve(file, t, true, ctx)));
    #[derive(Clone, Copy, PartialEq)]
    enum Act {
        Lookup,
        Blackhole,
        Unreachable,
        Prohibit,
    }
    let act = match &d.action {
        None => Some(Act::Lookup),
        Some(a) => ctx.check(
            Pos::of(file, a),
            v::keyword(
                &a.value,
                "rule action",
                &[
                    ("lookup", Act::Lookup),
                    ("blackhole", Act::Blackhole),
                    ("unreachable", Act::Unreachable),
                    ("prohibit", Act::Prohibit),
                ],
            ),
        ),
    };
    let action = match (act, &table) {
        (None, _) => None,
        (Some(Act::Lookup), Some((_, t))) => t.map(RuleAction::Lookup),
        (Some(Act::Lookup), None) => {
            ctx.err(
                d.action.as_ref().map_or(at, |a| Pos::of(file, a)),
                "a rule needs `table` to look up (or an `action` such as unreachable)",
            );
            None
        }
        (Some(_), Some((t_at, _))) => {
            let name = d.action.as_ref().map_or("", |s| s.value.as_str());
            ctx.err(
                *t_at,
                format!("a rule with action {name} cannot have `table`"),
            );
            None
        }
        (Some(Act::Blackhole), None) => Some(RuleAction::Blackhole),
        (Some(Act::Unreachable), None) => Some(RuleAction::Unreachable),
        (Some(Act::Prohibit), None) => Some(RuleAction::Prohibit),
    };
    if ctx.count() > before {
        return None;
    }
    let key = RuleKey {
        priority: priority?,
        family,
        from,
        to,
        fwmark,
        iif,
        oif,
        not: d.not.as_ref().is_some_and(|n| n.value),
    };
    let action = action?;
    if let Some(which) = v::kernel_default_rule(&key, action) {
        ctx.err(
            priority_at,
            format!("this is the kernel's own rule `{which}`, which always exists; remove it"),
        );
        return None;
    }
    Some(RuleInfo {
        at,
        priority_at,
        rule: Rule {
            key,
            action,
            owned: false,
        },
    })
}
