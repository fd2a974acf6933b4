//! `providers` → netconverge's `providers:`: NUMBER, MARK (assigned as Shorewall assigns it
//! when `track` has none), DUPLICATE, INTERFACE (with `:ADDRESS` for a shared interface),
//! GATEWAY (an address, `address,mac`, or `detect` read from this host), OPTIONS and COPY.

use std::net::Ipv4Addr;

use super::conf::Settings;
use super::host::HostFacts;
use super::interfaces::Interfaces;
use super::lexer::Entry;
use super::out::{Output, ProviderOut, Section};
use super::report::{At, Findings};

/// A provider number or mark: decimal or `0x` hex.
pub fn number(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// What one line's OPTIONS say, before the defaults of shorewall.conf are applied.
#[derive(Default)]
struct Opts {
    track: Option<bool>,
    balance: Option<u32>,
    loose: bool,
    optional: bool,
    fallback: Option<Option<u32>>,
    src: Option<Ipv4Addr>,
    /// Options that change routing and have no netconverge equivalent.
    untranslated: Vec<String>,
    /// Options without effect here.
    notes: Vec<String>,
}

fn options(col: Option<&str>) -> Opts {
    let mut o = Opts::default();
    for option in col.unwrap_or_default().split(',').filter(|x| !x.is_empty()) {
        let (word, value) = option.split_once('=').unwrap_or((option, ""));
        let weight = value.parse::<u32>().ok().filter(|w| *w > 0);
        match (word, value) {
            ("track", "") => o.track = Some(true),
            ("notrack", "") => o.track = Some(false),
            ("balance" | "primary", "") => o.balance = Some(1),
            ("balance", _) if weight.is_some() => o.balance = weight,
            ("loose", "") => o.loose = true,
            ("optional", "") => o.optional = true,
            ("fallback", "") => o.fallback = Some(None),
            ("fallback", _) if weight.is_some() => o.fallback = Some(weight),
            ("src", v) if v.parse::<Ipv4Addr>().is_ok() => o.src = v.parse().ok(),
            ("autosrc" | "hostroute", "") => o.notes.push(format!("`{word}` is what netconverge does anyway (the gateway's host route in the provider's table; none in main, see the README)")),
            ("persistent", "") => o.notes.push("`persistent` concerns `shorewall disable`; netconverge's providers are always applied as declared".into()),
            ("noautosrc" | "nohostroute", "") => o.untranslated.push(format!("`{word}`: netconverge always adds the gateway's host route to the provider's table")),
            ("mtu" | "load", _) | ("tproxy" | "local", "") => o.untranslated.push(format!("`{option}` has no netconverge equivalent")),
            _ => o.untranslated.push(format!("`{option}` is not a provider option")),
        }
    }
    o
}

/// The translation state across lines: Shorewall's last assigned mark.
pub struct Translate<'a> {
    pub settings: &'a Settings,
    pub interfaces: &'a Interfaces,
    pub host: Option<&'a HostFacts>,
    last_mark: u32,
}

impl<'a> Translate<'a> {
    /// Start with no mark assigned.
    pub fn new(
        settings: &'a Settings,
        interfaces: &'a Interfaces,
        host: Option<&'a HostFacts>,
    ) -> Self {
        Translate {
            settings,
            interfaces,
            host,
            last_mark: 0,
        }
    }

    /// Translate every line into `out.providers`; what cannot be translated is left out with
    /// a comment and a finding.
    pub fn all(&mut self, entries: &[Entry], out: &mut Output, f: &mut Findings) {
        for e in entries {
            match self.one(e, out, f) {
                Ok(p) => out.providers.push(p),
                Err(why) => {
                    f.push(e.at.clone(), true, why.clone());
                    out.leave_out(Section::Providers, &e.at, &why);
                }
            }
        }
        shared_locals(&mut out.providers, f);
    }

    fn one(
        &mut self,
        e: &Entry,
        out: &mut Output,
        f: &mut Findings,
    ) -> Result<ProviderOut, String> {
        let name = e.col(0).ok_or("no NAME column")?.to_string();
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid || name == "balance" {
            return Err(format!("provider name `{name}` cannot be a netconverge provider (letters, digits, `_`; not `balance`, netconverge's name for table 250)"));
        }
        let num = e.col(1).and_then(number).filter(|n| (1..=252).contains(n));
        let num = num.ok_or_else(|| {
            format!(
                "provider {name}: NUMBER `{}` is not a number from 1 to 252",
                e.col(1).unwrap_or("-")
            )
        })?;
        let (written, address) = match e.col(4) {
            Some(i) => i.split_once(':').map_or((i, None), |(a, b)| (a, Some(b))),
            None => return Err(format!("provider {name}: no INTERFACE")),
        };
        let iface = self.interfaces.get(written);
        let interface = iface.map_or(written, |i| i.physical.as_str()).to_string();
        if iface.is_none() {
            f.push(e.at.clone(), false, format!("provider {name}: {written} is not in the interfaces file (Shorewall would refuse it)"));
        }
        if interface.contains(['+', '*']) {
            return Err(format!(
                "provider {name}: {interface} is a wildcard; a provider needs one interface"
            ));
        }
        let o = options(e.col(6));
        for n in &o.notes {
            f.push(e.at.clone(), false, format!("provider {name}: {n}"));
        }
        if let Some(u) = o.untranslated.first() {
            return Err(format!("provider {name}: {u}"));
        }
        let gateway = self.gateway(&name, &interface, e, f)?;
        let local = self.local(&name, &interface, address, &o, gateway, e, f)?;
        let track = o.track.unwrap_or(self.settings.track_providers);
        let mark = self.mark(&name, e.col(2), track)?;
        let balance = o
            .balance
            .or((self.settings.balance_providers && o.fallback.is_none() && !o.loose).then_some(1));
        if balance.is_some() && o.fallback.is_some() {
            return Err(format!("provider {name}: balance and fallback are mutually exclusive (Shorewall refuses both)"));
        }
        let (duplicate, copy) = self.duplicate(&name, &interface, e, out, f)?;
        Ok(ProviderOut {
            name,
            number: num,
            mark,
            interface: interface.clone(),
            gateway,
            local,
            balance,
            fallback: o.fallback,
            track,
            loose: o.loose,
            duplicate,
            copy,
            optional: o.optional || iface.is_some_and(|i| i.optional),
            at: e.at.clone(),
        })
    }

    fn gateway(
        &self,
        name: &str,
        interface: &str,
        e: &Entry,
        f: &mut Findings,
    ) -> Result<Ipv4Addr, String> {
        let g = e.col(5).unwrap_or("-");
        if g.eq_ignore_ascii_case("detect") {
            let found = self.host.and_then(|h| h.gateways.get(interface));
            let Some(found) = found else {
                return Err(format!("provider {name}: GATEWAY detect, and this host has no default route via {interface} to read it from (write the gateway's address)"));
            };
            f.push(e.at.clone(), false, format!("provider {name}: GATEWAY detect: {found}, read from this host's default route via {interface}"));
            return Ok(*found);
        }
        if g == "-" || g.eq_ignore_ascii_case("none") {
            return Err(format!(
                "provider {name}: GATEWAY `{g}`: netconverge's providers need a gateway address"
            ));
        }
        let (addr, mac) = g.split_once(',').map_or((g, None), |(a, m)| (a, Some(m)));
        if let Some(mac) = mac {
            f.push(e.at.clone(), false, format!("provider {name}: the gateway's MAC {mac} is not written: netconverge reads it from the neighbour table (after a probe), as Shorewall does without one"));
        }
        addr.parse()
            .map_err(|_| format!("provider {name}: GATEWAY `{addr}` is not an IPv4 address"))
    }

    #[allow(clippy::too_many_arguments)]
    fn local(
        &self,
        name: &str,
        interface: &str,
        address: Option<&str>,
        o: &Opts,
        gateway: Ipv4Addr,
        e: &Entry,
        f: &mut Findings,
    ) -> Result<Option<Ipv4Addr>, String> {
        if let Some(a) = address {
            return a.parse().map(Some).map_err(|_| {
                format!("provider {name}: `{interface}:{a}`: {a} is not an IPv4 address")
            });
        }
        if let Some(src) = o.src {
            return Ok(Some(src));
        }
        let found = self
            .host
            .and_then(|h| h.addresses.get(interface))
            .and_then(|nets| nets.iter().find(|n| n.contains(&gateway)).or(nets.first()));
        match found {
            Some(n) => {
                f.push(e.at.clone(), false, format!("provider {name}: local address {} read from this host's {interface} (Shorewall reads it when it starts)", n.addr()));
                Ok(Some(n.addr()))
            }
            None => Err(format!("provider {name}: this host's address on {interface} is unknown (not written as {interface}:ADDRESS, and {interface} has none here); write it as INTERFACE {interface}:ADDRESS or run import on the host")),
        }
    }

    /// The provider's mark: as written, or for `track` without one the next one Shorewall
    /// assigns (the last mark plus 1 << PROVIDER_OFFSET).
    fn mark(&mut self, name: &str, col: Option<&str>, track: bool) -> Result<Option<u32>, String> {
        let mark = match col {
            Some(m) => number(m)
                .filter(|m| *m != 0)
                .ok_or_else(|| format!("provider {name}: MARK `{m}` is not a non-zero number"))?,
            None if track => self.last_mark + (1 << self.settings.offset),
            None => return Ok(None),
        };
        if mark & !self.settings.mask != 0 {
            return Err(format!("provider {name}: mark {mark:#x} is outside the provider mask {:#x} (PROVIDER_BITS/PROVIDER_OFFSET)", self.settings.mask));
        }
        self.last_mark = mark;
        Ok(Some(mark))
    }

    fn duplicate(
        &self,
        name: &str,
        interface: &str,
        e: &Entry,
        out: &mut Output,
        f: &mut Findings,
    ) -> Result<(bool, Vec<String>), String> {
        let Some(d) = e.col(3) else {
            if e.col(7).is_some_and(|c| c != "none") {
                f.push(
                    e.at.clone(),
                    false,
                    format!(
                        "provider {name}: COPY without DUPLICATE is ignored (Shorewall refuses it)"
                    ),
                );
            }
            return Ok((false, Vec::new()));
        };
        if d != "main" {
            return Err(format!(
                "provider {name}: DUPLICATE {d}: netconverge copies only main"
            ));
        }
        if self.settings.use_default_rt {
            f.push(e.at.clone(), false, format!("provider {name}: DUPLICATE main left out: with USE_DEFAULT_RT=Yes main is looked up first (Shorewall refuses DUPLICATE there)"));
            return Ok((false, Vec::new()));
        }
        let copy: Vec<String> = match e.col(7) {
            None => Vec::new(),
            Some("none") => vec![interface.to_string()],
            Some(c) => c
                .split(',')
                .map(|x| {
                    self.interfaces
                        .get(x)
                        .map_or(x, |i| i.physical.as_str())
                        .to_string()
                })
                .collect(),
        };
        if let Some(w) = copy.iter().find(|c| {
            c.contains(['*', '+']) || matches!(c.as_str(), "blackhole" | "unreachable" | "prohibit")
        }) {
            return Err(format!(
                "provider {name}: COPY {w}: netconverge copies the routes of named interfaces only"
            ));
        }
        self.declare_for_copy(interface, &copy, e, out, f);
        Ok((true, copy))
    }

    /// `duplicate: main` copies the declared routes and subnets: declare the addresses of
    /// the interfaces it copies, as this host has them (Shorewall copies the kernel's main).
    fn declare_for_copy(
        &self,
        interface: &str,
        copy: &[String],
        e: &Entry,
        out: &mut Output,
        f: &mut Findings,
    ) {
        let mut names: Vec<&str> = vec![interface];
        names.extend(copy.iter().map(String::as_str));
        for n in names {
            match self.host.and_then(|h| h.addresses.get(n)) {
                Some(nets) if !nets.is_empty() => {
                    out.links.entry(n.to_string()).or_insert_with(|| (nets.clone(), format!("its subnets, for DUPLICATE main at {}", e.at)));
                }
                _ => f.push(e.at.clone(), true, format!("DUPLICATE main: {n}'s subnets are unknown here (no address on this host), so its routes are not copied")),
            }
        }
    }
}

/// Of providers sharing a local address without `loose`, only the last one's `from` rule
/// survives Shorewall's start (each deletes the rule before adding its own): the others are
/// written `loose`, which is what Shorewall ends up with, and said so.
fn shared_locals(providers: &mut [ProviderOut], f: &mut Findings) {
    let n = providers.len();
    for i in 0..n {
        let later = providers[i + 1..]
            .iter()
            .find(|q| !q.loose && q.local == providers[i].local && q.local.is_some())
            .map(|q| q.name.clone());
        if let (false, Some(q)) = (providers[i].loose, later) {
            let p = &mut providers[i];
            p.loose = true;
            let at: At = p.at.clone();
            f.push(at, false, format!("provider {}: written `loose`: it shares {} with {q}, whose start deletes {}'s `from` rule in Shorewall", p.name, p.local.map(|l| l.to_string()).unwrap_or_default(), p.name));
        }
    }
    for i in 0..n {
        let (before, rest) = providers.split_at(i);
        let p = &rest[0];
        if let (true, Some(q)) = (
            p.loose,
            before.iter().find(|q| !q.loose && q.local == p.local),
        ) {
            f.push(p.at.clone(), false, format!("provider {}: `loose` here makes Shorewall 5.2's start delete {}'s `from {} lookup {}` rule too (measured); netconverge keeps that rule, as the configuration asks", p.name, q.name, q.local.map(|l| l.to_string()).unwrap_or_default(), q.number));
        }
    }
}
