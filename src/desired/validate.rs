//! The checks of the desired state: value checks used while converting (`to_state` calls
//! them on every value) and the cross-object checks that need the whole merged state
//! (bridges, veth pairs, gateways, duplicate routes and rules).
//!
//! Every check reports through [`Ctx`], which collects all diagnostics with their positions so
//! that one run shows every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use reconcilers::model::{
    Family, LinkKind, MacAddr, RouteKey, RouteType, RuleAction, RuleKey, TABLE_DEFAULT,
    TABLE_LOCAL, TABLE_MAIN,
};
use serde_saphyr::{Location, Spanned};

use super::to_state::{Converted, LinkInfo};
use super::Diagnostic;

// ---------------------------------------------------------------------------------------------
// Positions and the diagnostics collector

/// A position in one of the loaded files (an index into the file list), so diagnostics can be
/// sorted in file order and other places can be named in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Pos {
    pub file: usize,
    pub line: u32,
    pub column: u32,
}

impl Pos {
    /// Where a value is used (for an alias: the alias, which is what the user looks at).
    pub fn at(file: usize, loc: &Location) -> Pos {
        Pos {
            file,
            line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
            column: u32::try_from(loc.column()).unwrap_or(u32::MAX),
        }
    }

    /// The position of a spanned value.
    pub fn of<T>(file: usize, s: &Spanned<T>) -> Pos {
        Pos::at(file, &s.referenced)
    }

    /// The whole file (no position known).
    pub fn file(file: usize) -> Pos {
        Pos {
            file,
            line: 0,
            column: 0,
        }
    }
}

/// Collects diagnostics for one load.
pub(crate) struct Ctx {
    pub files: Vec<PathBuf>,
    diags: Vec<(Pos, Diagnostic)>,
    /// False when some file could not be parsed: then "X is not declared" checks are skipped,
    /// since X may well be declared in the broken file and the user would chase ghosts.
    pub complete: bool,
}

impl Ctx {
    pub fn new(files: Vec<PathBuf>) -> Ctx {
        Ctx {
            files,
            diags: Vec::new(),
            complete: true,
        }
    }

    /// A diagnostic at `pos` (not recorded).
    pub fn diag(&self, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.files.get(pos.file).cloned().unwrap_or_default(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }

    /// Record an error at `pos`.
    pub fn err(&mut self, pos: Pos, message: impl Into<String>) {
        let d = self.diag(pos, message);
        self.diags.push((pos, d));
    }

    /// Record the error of `r`, if any, and pass its value on.
    pub fn check<T>(&mut self, pos: Pos, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(m) => {
                self.err(pos, m);
                None
            }
        }
    }

    /// How many errors so far; conversions compare before/after to drop a broken object.
    pub fn count(&self) -> usize {
        self.diags.len()
    }

    /// `file:line:col` of a position, for messages that name a second place.
    pub fn place(&self, pos: Pos) -> String {
        let file = self
            .files
            .get(pos.file)
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        if pos.line == 0 {
            file
        } else {
            format!("{file}:{}:{}", pos.line, pos.column)
        }
    }

    /// The diagnostics in file and position order, without repeats.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.diags.sort_by_key(|a| a.0);
        self.diags.dedup();
        self.diags.into_iter().map(|(_, d)| d).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Suggestions

/// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions, so `wtr`
/// is one edit from `wrt`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `word`, if close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `; did you mean `x`?` or nothing.
pub(crate) fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(word, candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

/// Parse one of a fixed set of words, with a did-you-mean on failure.
pub(crate) fn keyword<T: Copy>(word: &str, what: &str, words: &[(&str, T)]) -> Result<T, String> {
    if let Some((_, v)) = words.iter().find(|(w, _)| *w == word) {
        return Ok(*v);
    }
    let names: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
    Err(format!(
        "unknown {what} `{word}`; expected one of {}{}",
        names.join(", "),
        suggest(word, names.iter().copied())
    ))
}

// ---------------------------------------------------------------------------------------------
// Value checks

/// The kernel's rules for interface names (`dev_valid_name`).
pub(crate) fn ifname(name: &str) -> Result<(), String> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name.len() > 15 {
        "it is longer than 15 bytes"
    } else if name == "." || name == ".." {
        "`.` and `..` are reserved"
    } else if name.contains('/') {
        "it contains `/`"
    } else if name.contains(':') {
        "it contains `:`"
    } else if name.chars().any(char::is_whitespace) {
        "it contains whitespace"
    } else if name.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(format!("`{name}` is not a valid interface name: {why}"))
}

/// An IP address (a gateway, a source, a tunnel end).
pub(crate) fn ip(s: &str, what: &str) -> Result<IpAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{what} `{s}` is not an IP address"))
}

/// An interface address: address and prefix length, host bits kept.
pub(crate) fn host_cidr(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if !s.contains('/') {
        return Err(match s.parse::<IpAddr>() {
            Ok(a) => {
                let example = match a {
                    IpAddr::V4(_) => format!("{a}/24"),
                    IpAddr::V6(_) => format!("{a}/64"),
                };
                format!("address {a} needs a prefix length, e.g. {example}")
            }
            Err(_) => format!("`{s}` is not an address with a prefix length, e.g. 10.0.0.1/24"),
        });
    }
    let net: IpNet = s
        .parse()
        .map_err(|_| format!("`{s}` is not an address with a prefix length, e.g. 10.0.0.1/24"))?;
    let a = net.addr();
    if a.is_unspecified() || a.is_multicast() || is_v4_broadcast(&a) {
        return Err(format!("address {net} is not a unicast address"));
    }
    Ok(net)
}

fn is_v4_broadcast(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V4(v4) if v4.is_broadcast())
}

/// A destination or selector prefix: a CIDR without host bits, or an address meaning a host
/// route (`/32`, `/128`). Host bits are an error rather than silently cleared, because
/// `10.0.0.5/24` usually means the author confused an interface address with a route.
pub(crate) fn prefix(s: &str, what: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if s.contains('/') {
        let net: IpNet = s
            .parse()
            .map_err(|_| format!("{what} `{s}` is not a prefix (e.g. 10.0.0.0/24)"))?;
        if net != net.trunc() {
            return Err(format!(
                "{what} {net} has host bits set; did you mean {}?",
                net.trunc()
            ));
        }
        Ok(net)
    } else {
        let a: IpAddr = s
            .parse()
            .map_err(|_| format!("{what} `{s}` is not an address or prefix (e.g. 10.0.0.0/24)"))?;
        Ok(IpNet::from(a))
    }
}

/// A link's MAC address; must be usable as a station address.
pub(crate) fn mac(s: &str) -> Result<MacAddr, String> {
    let m: MacAddr = s.trim().parse()?;
    if m.0[0] & 1 == 1 {
        return Err(format!(
            "MAC {m} must be a unicast MAC (the lowest bit of the first byte is the multicast bit)"
        ));
    }
    if m.0 == [0; 6] {
        return Err(format!("MAC {m} is not a usable address"));
    }
    Ok(m)
}

/// A number within `lo..=hi`.
pub(crate) fn ranged(v: i64, lo: i64, hi: i64, what: &str) -> Result<i64, String> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{what} {v} is out of range ({lo}..={hi})"))
    }
}

/// A sysctl name as `sysctl(8)` writes it. Only `net.*` is netconverge's business; a `/` may
/// stand for a dot inside an interface name (`net.ipv4.conf.eth0/100.rp_filter`).
pub(crate) fn sysctl_name(name: &str) -> Result<(), String> {
    if !name.starts_with("net.") {
        return Err(format!(
            "`{name}` is not a network sysctl: names are written dotted and start with `net.`, e.g. net.ipv4.ip_forward"
        ));
    }
    let bad_char = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '@' | '+')));
    if let Some(c) = bad_char {
        return Err(format!(
            "`{name}` is not a valid sysctl name: it contains {c:?}"
        ));
    }
    for part in name.split('.') {
        let as_path = part.replace('/', ".");
        if part.is_empty() || as_path == "." || as_path == ".." {
            return Err(format!(
                "`{name}` is not a valid sysctl name: it has an empty or `.`/`..` component"
            ));
        }
    }
    Ok(())
}

/// Parse `MARK`, `MARK/MASK` (hex with `0x` or decimal) into (mark, mask).
pub(crate) fn fwmark(s: &str) -> Result<(u32, u32), String> {
    fn num(p: &str) -> Option<u32> {
        let p = p.trim();
        match p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => p.parse().ok(),
        }
    }
    let bad = || format!("`{s}` is not a fwmark: write MARK or MARK/MASK, e.g. \"0x1/0xff\"");
    let (mark, mask) = match s.split_once('/') {
        Some((m, k)) => (num(m).ok_or_else(bad)?, num(k).ok_or_else(bad)?),
        None => (num(s).ok_or_else(bad)?, u32::MAX),
    };
    check_fwmark(mark, mask)?;
    Ok((mark, mask))
}

/// A mark/mask pair that can match something and is stored by the kernel as given.
pub(crate) fn check_fwmark(mark: u32, mask: u32) -> Result<(), String> {
    if mask == 0 {
        return Err("fwmark mask 0 matches every packet; drop `fwmark` instead".into());
    }
    if mark & !mask != 0 {
        return Err(format!(
            "fwmark {mark:#x}/{mask:#x} has mark bits outside the mask, so the rule can never match"
        ));
    }
    Ok(())
}

/// A table name declared under `tables:`.
pub(crate) fn table_name(name: &str) -> Result<(), String> {
    if matches!(name, "main" | "local" | "default" | "unspec") {
        return Err(format!(
            "table name `{name}` is reserved (main, local and default are built in)"
        ));
    }
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{name}` is not a valid table name"));
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "table name `{name}` is a number; a table name must contain a letter"
        ));
    }
    Ok(())
}

/// A table id declared under `tables:`.
pub(crate) fn table_id(id: i64) -> Result<u32, String> {
    let id = ranged(id, 1, i64::from(u32::MAX), "table id")?;
    let id = u32::try_from(id).expect("in range");
    let which = match id {
        TABLE_DEFAULT => "default",
        TABLE_MAIN => "main",
        TABLE_LOCAL => "local",
        _ => return Ok(id),
    };
    Err(format!(
        "table id {id} is reserved for the {which} table; use `{which}` where a table is named"
    ))
}

/// A family keyword (`family:` of a rule).
pub(crate) fn family(word: &str) -> Result<Family, String> {
    keyword(
        word,
        "family",
        &[("ipv4", Family::Inet), ("ipv6", Family::Inet6)],
    )
}

/// "IPv4"/"IPv6", for messages.
pub(crate) fn family_name(f: Family) -> &'static str {
    match f {
        Family::Inet => "IPv4",
        Family::Inet6 => "IPv6",
    }
}

/// A user or group name as passwd/group allow it (and as `useradd` would accept).
pub(crate) fn ident_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 32
        || name.starts_with('-')
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ':' || c == '/' || c == ',')
    {
        return Err(format!("`{name}` is not a valid user or group name"));
    }
    Ok(())
}

/// IPv6 link-local (`fe80::/10`): always on-link, but needs a device to mean anything.
pub(crate) fn is_v6_link_local(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

/// A table id as the user would name it.
pub(crate) fn table_label(id: u32, tables: &BTreeMap<String, u32>) -> String {
    match id {
        TABLE_MAIN => "main".into(),
        TABLE_DEFAULT => "default".into(),
        TABLE_LOCAL => "local".into(),
        _ => tables
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| id.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-object checks

/// All checks that need more than one object.
pub(crate) fn cross_check(c: &Converted, ctx: &mut Ctx) {
    check_links(&c.links, ctx);
    check_gateways(c, ctx);
    check_routes(c, ctx);
    check_rules(c, ctx);
}

fn check_links(links: &[LinkInfo], ctx: &mut Ctx) {
    let by_name: BTreeMap<&str, &LinkInfo> =
        links.iter().map(|l| (l.link.name.as_str(), l)).collect();
    // Undeclared veth peers, to catch two veths claiming the same one.
    let mut claimed: BTreeMap<&str, &LinkInfo> = BTreeMap::new();
    for l in links {
        let name = l.link.name.as_str();
        if let (Some(master), Some(at)) = (&l.link.master, l.master_at) {
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
        if let (LinkKind::Veth(v), Some(at)) = (&l.link.kind, l.peer_at) {
            let peer = v.peer.as_str();
            match by_name.get(peer) {
                Some(p) => match &p.link.kind {
                    LinkKind::Veth(pv) if pv.peer == name => {}
                    LinkKind::Veth(pv) => ctx.err(
                        at,
                        format!(
                            "peer {peer} of veth {name} is a veth whose peer is {}, not {name}",
                            pv.peer
                        ),
                    ),
                    k => ctx.err(
                        at,
                        format!(
                            "peer {peer} of veth {name} is declared as a {} link, not as a veth with `peer: {name}`",
                            k.name()
                        ),
                    ),
                },
                None => {
                    if let Some(first) = claimed.get(peer) {
                        let first_at = first.peer_at.unwrap_or(first.at);
                        ctx.err(
                            at,
                            format!(
                                "{peer} is already the peer of veth {} ({}); a veth has one peer",
                                first.link.name,
                                ctx.place(first_at)
                            ),
                        );
                    } else {
                        claimed.insert(peer, l);
                    }
                }
            }
        }
    }
}

/// A gateway must be reachable: when the route names a declared device with declared
/// addresses of the gateway's family, the gateway must sit in one of those subnets (or in a
/// declared device route on it), unless the route says `onlink`.
fn check_gateways(c: &Converted, ctx: &mut Ctx) {
    let mut subnets: BTreeMap<&str, Vec<IpNet>> = BTreeMap::new();
    let mut own: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for a in &c.addresses {
        subnets.entry(a.link.as_str()).or_default().push(a.address);
        own.entry(a.address.addr()).or_insert(a.link.as_str());
    }
    let declared: BTreeSet<&str> = c.links.iter().map(|l| l.link.name.as_str()).collect();
    // Device routes (no gateway) also make their prefix reachable on that device.
    let mut dev_routes: BTreeMap<&str, Vec<IpNet>> = BTreeMap::new();
    for r in &c.routes {
        if r.route.kind == RouteType::Unicast {
            for h in &r.route.nexthops {
                if let (None, Some(dev)) = (h.via, &h.dev) {
                    dev_routes.entry(dev.as_str()).or_default().push(r.route.to);
                }
            }
        }
    }
    for r in &c.routes {
        for g in &r.gateways {
            if let Some(link) = own.get(&g.via) {
                ctx.err(
                    g.at,
                    format!(
                        "gateway {} is an address of this host (declared on {link}); a gateway must be another machine",
                        g.via
                    ),
                );
                continue;
            }
            let Some(dev) = g.dev.as_deref() else {
                continue;
            };
            if g.onlink || is_v6_link_local(&g.via) || !declared.contains(dev) {
                continue;
            }
            let fam = Family::of(&g.via);
            let nets: Vec<IpNet> = subnets
                .get(dev)
                .map(|v| {
                    v.iter()
                        .copied()
                        .filter(|n| Family::of_net(n) == fam)
                        .collect()
                })
                .unwrap_or_default();
            if nets.is_empty() {
                continue;
            }
            let reachable = nets.iter().any(|n| n.contains(&g.via))
                || dev_routes
                    .get(dev)
                    .is_some_and(|v| v.iter().any(|n| n.contains(&g.via)));
            if !reachable {
                let list: Vec<String> = nets.iter().map(ToString::to_string).collect();
                ctx.err(
                    g.at,
                    format!(
                        "gateway {} is not in any subnet of {dev} ({}); add `onlink: true` if it is reachable anyway",
                        g.via,
                        list.join(", ")
                    ),
                );
            }
        }
    }
}

/// How a route key reads in messages.
pub(crate) fn describe_route(key: &RouteKey, tables: &BTreeMap<String, u32>) -> String {
    let to = if key.to.prefix_len() == 0 {
        format!("default ({})", key.to)
    } else {
        key.to.to_string()
    };
    let tos = if key.tos != 0 {
        format!(", tos {:#x}", key.tos)
    } else {
        String::new()
    };
    format!(
        "route to {to} in table {} (metric {}{tos})",
        table_label(key.table, tables),
        key.metric
    )
}

fn check_routes(c: &Converted, ctx: &mut Ctx) {
    let mut seen: BTreeMap<RouteKey, Pos> = BTreeMap::new();
    for r in &c.routes {
        let key = r.route.key();
        if let Some(first) = seen.get(&key) {
            ctx.err(
                r.at,
                format!(
                    "{} is declared twice: {} and {}",
                    describe_route(&key, &c.tables),
                    ctx.place(*first),
                    ctx.place(r.at)
                ),
            );
        } else {
            seen.insert(key, r.at);
        }
    }
}

/// How a rule selector reads in messages.
pub(crate) fn describe_selector(k: &RuleKey) -> String {
    let mut parts = Vec::new();
    if k.not {
        parts.push("not".to_string());
    }
    match (&k.from, &k.to) {
        (None, None) if k.fwmark.is_none() && k.iif.is_none() && k.oif.is_none() => {
            parts.push(format!("from all ({})", family_name(k.family)));
        }
        _ => {}
    }
    if let Some(f) = k.from {
        parts.push(format!("from {f}"));
    }
    if let Some(t) = k.to {
        parts.push(format!("to {t}"));
    }
    if let Some((m, mask)) = k.fwmark {
        parts.push(format!("fwmark {m:#x}/{mask:#x}"));
    }
    if let Some(i) = &k.iif {
        parts.push(format!("iif {i}"));
    }
    if let Some(o) = &k.oif {
        parts.push(format!("oif {o}"));
    }
    parts.join(" ")
}

fn check_rules(c: &Converted, ctx: &mut Ctx) {
    let mut by_key: BTreeMap<RuleKey, Pos> = BTreeMap::new();
    let mut by_prio: BTreeMap<(u32, Family), Vec<(Pos, &RuleKey)>> = BTreeMap::new();
    for r in &c.rules {
        let key = &r.rule.key;
        if let Some(first) = by_key.get(key) {
            ctx.err(
                r.at,
                format!(
                    "rule {} ({}) is declared twice: {} and {}",
                    key.priority,
                    describe_selector(key),
                    ctx.place(*first),
                    ctx.place(r.at)
                ),
            );
            continue;
        }
        by_key.insert(key.clone(), r.at);
        let same = by_prio.entry((key.priority, key.family)).or_default();
        match same.iter().find(|(_, other)| !sources_disjoint(other, key)) {
            Some((first, other)) => ctx.err(
                r.priority_at,
                format!(
                    "priority {} is used by two different {} rules ({} at {} and {} here); give each rule its own priority, the kernel would order them arbitrarily",
                    key.priority,
                    family_name(key.family),
                    describe_selector(other),
                    ctx.place(*first),
                    describe_selector(key),
                ),
            ),
            None => same.push((r.at, key)),
        }
    }
}

/// Two rules whose `from` prefixes do not overlap never match the same packet, so their order
/// at one priority does not matter (Shorewall puts every provider's `from` rule at 20000).
fn sources_disjoint(a: &RuleKey, b: &RuleKey) -> bool {
    match (a.from, b.from) {
        (Some(x), Some(y)) if !a.not && !b.not => {
            !x.contains(&y.network()) && !y.contains(&x.network())
        }
        _ => false,
    }
}

/// The kernel's own rules (0 local, 32766 main, 32767 default) exist in every namespace and
/// are ignored when observing, so declaring one would show as a change forever.
pub(crate) fn kernel_default_rule(key: &RuleKey, action: RuleAction) -> Option<&'static str> {
    let plain = key.from.is_none()
        && key.to.is_none()
        && key.fwmark.is_none()
        && key.iif.is_none()
        && key.oif.is_none()
        && !key.not;
    match (plain, key.priority, action) {
        (true, 0, RuleAction::Lookup(TABLE_LOCAL)) => Some("0: from all lookup local"),
        (true, 32766, RuleAction::Lookup(TABLE_MAIN)) => Some("32766: from all lookup main"),
        (true, 32767, RuleAction::Lookup(TABLE_DEFAULT)) => Some("32767: from all lookup default"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("adresses", ["kind", "addresses", "master"]),
            Some("addresses")
        );
        assert_eq!(did_you_mean("wtr", ["wrt", "fw"]), Some("wrt"));
        assert_eq!(did_you_mean("brige", ["bridge", "tap"]), Some("bridge"));
        assert_eq!(did_you_mean("zzzzzz", ["bridge", "tap"]), None);
        assert_eq!(did_you_mean("MTU", ["mtu", "mac"]), Some("mtu"));
    }

    #[test]
    fn interface_names() {
        assert!(ifname("tap-centos").is_ok());
        assert!(ifname("eth0.100").is_ok());
        assert!(ifname("").is_err());
        assert!(ifname("a-very-long-name0").is_err());
        assert!(ifname("a/b").is_err());
        assert!(ifname("a b").is_err());
        assert!(ifname("..").is_err());
        assert!(ifname("eth0:1").is_err());
        assert!(ifname("123456789012345").is_ok());
    }

    #[test]
    fn addresses_and_prefixes() {
        assert_eq!(host_cidr("10.0.0.1/24").unwrap().to_string(), "10.0.0.1/24");
        assert!(host_cidr("10.0.0.1")
            .unwrap_err()
            .contains("needs a prefix length"));
        assert!(host_cidr("10.0.0.1/33").is_err());
        assert!(host_cidr("224.0.0.1/4").unwrap_err().contains("unicast"));
        assert_eq!(prefix("10.0.0.5", "to").unwrap().to_string(), "10.0.0.5/32");
        assert_eq!(prefix("fd00::1", "to").unwrap().to_string(), "fd00::1/128");
        assert!(prefix("10.0.0.5/24", "to")
            .unwrap_err()
            .contains("did you mean 10.0.0.0/24?"));
        assert!(prefix("x", "to").is_err());
    }

    #[test]
    fn macs() {
        assert!(mac("52:54:00:12:34:56").is_ok());
        assert!(mac("01:00:5e:00:00:01").unwrap_err().contains("unicast"));
        assert!(mac("ff:ff:ff:ff:ff:ff").unwrap_err().contains("unicast"));
        assert!(mac("00:00:00:00:00:00").is_err());
        assert!(mac("52:54:00:12:34").is_err());
    }

    #[test]
    fn fwmarks() {
        assert_eq!(fwmark("0x1/0xff"), Ok((1, 0xff)));
        assert_eq!(fwmark("0x1"), Ok((1, u32::MAX)));
        assert_eq!(fwmark("16"), Ok((16, u32::MAX)));
        assert_eq!(fwmark("0"), Ok((0, u32::MAX)));
        assert!(fwmark("0x3/0x1").is_err());
        assert!(fwmark("0x1/0").is_err());
        assert!(fwmark("0xzz").is_err());
        assert!(fwmark("0x100000000").is_err());
    }

    #[test]
    fn sysctl_names() {
        assert!(sysctl_name("net.ipv4.ip_forward").is_ok());
        assert!(sysctl_name("net.ipv4.conf.eth0/100.rp_filter").is_ok());
        assert!(sysctl_name("vm.swappiness").is_err());
        assert!(sysctl_name("net..x").is_err());
        assert!(sysctl_name("net.ipv4.").is_err());
        assert!(sysctl_name("net.a b").is_err());
        assert!(sysctl_name("net.conf.//.x").is_err());
    }

    #[test]
    fn tables() {
        assert!(table_name("wrt").is_ok());
        assert!(table_name("main").is_err());
        assert!(table_name("101").is_err());
        assert_eq!(table_id(101), Ok(101));
        assert!(table_id(254).is_err());
        assert!(table_id(0).is_err());
        assert!(table_id(1 << 32).is_err());
        assert_eq!(table_id(i64::from(u32::MAX)), Ok(u32::MAX));
    }

    #[test]
    fn keywords() {
        let e = keyword(
            "blakhole",
            "route type",
            &[("unicast", 0), ("blackhole", 1)],
        )
        .unwrap_err();
        assert!(e.contains("did you mean `blackhole`?"), "{e}");
    }
}
