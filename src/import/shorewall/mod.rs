//! `netconverge import shorewall DIR`: a Shorewall configuration's routing — providers,
//! rtrules, mangle MARKs, snat/masq, the interfaces' routing facts and the `shorewall.conf`
//! settings that change the expansion — as netconverge YAML. Everything else (filtering,
//! zones, policies, actions, macros, options without an equivalent) is reported with its
//! `file:line` and why, and the YAML carries a comment where it was left out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

mod conf;
mod host;
mod interfaces;
mod lexer;
mod mangle;
mod out;
mod providers;
pub mod report;
mod rtrules;
mod snat;
mod vars;

pub use host::HostFacts;
pub use lexer::{lex_str, Entry};
pub use report::{At, Finding, Findings};
pub use vars::Vars;

use conf::{Forwarding, RouteFilter};
use out::{Output, Section};

/// Why a directory could not be imported at all (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The directory (or a file in it) could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not a directory.
    #[error("{} is not a directory (give the Shorewall configuration directory, e.g. /etc/shorewall)", .0.display())]
    NotADirectory(PathBuf),
}

/// The YAML and what could not be translated.
#[derive(Clone, Debug)]
pub struct Imported {
    /// netconverge YAML, ready for `netconverge validate`.
    pub yaml: String,
    /// What was left out or changed, each with its place.
    pub findings: Findings,
}

impl Imported {
    /// 0: everything that affects routing was translated; 1: something was not.
    pub fn exit_status(&self) -> u8 {
        u8::from(self.findings.routing())
    }
}

/// A plain interface name (no wildcard, no address).
pub(crate) fn is_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() < 16
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-@".contains(c))
}

/// An IPv4 address or network, as netconverge writes it (`10.0.0.0/24`, `192.0.2.1`).
pub(crate) fn net(s: &str) -> Option<String> {
    if let Ok(a) = s.parse::<std::net::Ipv4Addr>() {
        return Some(a.to_string());
    }
    s.parse::<Ipv4Net>().ok().map(|n| n.trunc().to_string())
}

/// Files that only concern filtering, zones, traffic shaping or logging.
const NOT_ROUTING: [&str; 22] = [
    "zones",
    "policy",
    "rules",
    "hosts",
    "actions",
    "tunnels",
    "blrules",
    "conntrack",
    "stoppedrules",
    "accounting",
    "notrack",
    "secmarks",
    "maclist",
    "arprules",
    "ecn",
    "tcdevices",
    "tcclasses",
    "tcfilters",
    "tcinterfaces",
    "tcpri",
    "blacklist",
    "routestopped",
];
/// Files that change routing or NAT and are not translated.
const ROUTING: [(&str, &str); 6] = [
    ("routes", "routes added to provider tables are not translated; declare them under `routes:` with `table: PROVIDER`"),
    ("nat", "one-to-one NAT has no netconverge equivalent"),
    ("netmap", "network mapping has no netconverge equivalent"),
    ("proxyarp", "proxy ARP entries are not translated"),
    ("tcrules", "the old tcrules file is not read; convert it to mangle with `shorewall update`"),
    ("providers6", "IPv6 providers are not translated"),
];

/// Read the configuration in `dir` and translate it. `host` is what this host says about its
/// interfaces (addresses, gateways), needed where Shorewall would read them at start.
pub fn import(dir: &Path, host: Option<&HostFacts>) -> Result<Imported, ImportError> {
    let unreadable = |path: &Path, source| ImportError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(dir).map_err(|e| unreadable(dir, e))?;
    if !meta.is_dir() {
        return Err(ImportError::NotADirectory(dir.to_path_buf()));
    }
    std::fs::read_dir(dir).map_err(|e| unreadable(dir, e))?;
    let mut f = Findings::default();
    let mut out = Output::default();
    let (vars, settings) = read_settings(dir, &mut f).map_err(|(p, e)| unreadable(&p, e))?;
    let lex = |name: &str, routing: bool, f: &mut Findings| {
        lexer::lex(dir, name, &vars, routing, f).map_err(|e| unreadable(&dir.join(name), e))
    };
    let ifaces = interfaces::read(
        &lex("interfaces", true, &mut f)?.unwrap_or_default(),
        &mut out,
        &mut f,
    );
    let provider_lines = lex("providers", true, &mut f)?.unwrap_or_default();
    providers::Translate::new(&settings, &ifaces, host).all(&provider_lines, &mut out, &mut f);
    let mut names = BTreeMap::new();
    for p in &out.providers {
        names.insert(p.name.clone(), p.name.clone());
        names.insert(p.number.to_string(), p.name.clone());
    }
    for file in ["rtrules", "route_rules"] {
        let entries = lex(file, true, &mut f)?.unwrap_or_default();
        rtrules::translate(&entries, &names, &mut out, &mut f);
    }
    let in_forward = vars.condition("$MARK_IN_FORWARD_CHAIN") == Some(true);
    let mangle_lines = lex("mangle", true, &mut f)?.unwrap_or_default();
    mangle::translate(&mangle_lines, settings.mask, in_forward, &mut out, &mut f);
    snat::snat(
        &lex("snat", true, &mut f)?.unwrap_or_default(),
        &mut out,
        &mut f,
    );
    snat::masq(
        &lex("masq", true, &mut f)?.unwrap_or_default(),
        host,
        &mut out,
        &mut f,
    );
    provider_options(&settings, &ifaces, &mut out, &mut f);
    for name in NOT_ROUTING {
        let entries = lex(name, false, &mut f)?.unwrap_or_default();
        not_translated(
            &entries,
            name,
            false,
            "netconverge does not filter; keep Shorewall (or another firewall) for that",
            &mut out,
            &mut f,
        );
    }
    for (name, why) in ROUTING {
        let entries = lex(name, true, &mut f)?.unwrap_or_default();
        not_translated(&entries, name, true, why, &mut out, &mut f);
    }
    extra_files(dir, &mut out, &mut f);
    comment_the_rest(&mut out, &f);
    Ok(Imported {
        yaml: out.yaml(&dir.display().to_string()),
        findings: f,
    })
}

/// `params`, then `shorewall.conf` (which may use params' variables), and the settings.
/// The files' `$VARS` are params' variables, then the settings of `shorewall.conf`.
fn read_settings(
    dir: &Path,
    f: &mut Findings,
) -> Result<(Vars, conf::Settings), (PathBuf, std::io::Error)> {
    let mut params = Vars::default();
    for (k, v) in [
        ("FW", "fw"),
        ("CONFDIR", "/etc"),
        ("SHAREDIR", "/usr/share"),
    ] {
        params.0.insert(k.into(), v.into());
    }
    let read = |name: &str| match std::fs::read_to_string(dir.join(name)) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err((dir.join(name), e)),
    };
    if let Some(text) = read("params")? {
        params.read_assignments(&dir.join("params"), &text, f);
    }
    if let Some(fw) = read("zones")?.as_deref().and_then(firewall_zone) {
        params.0.insert("FW".into(), fw);
    }
    let conf_path = dir.join("shorewall.conf");
    let conf_text = read("shorewall.conf")?;
    let mut conf = params.clone();
    match &conf_text {
        Some(text) => conf.read_assignments(&conf_path, text, f),
        None => f.push(
            At::new(&conf_path, 0),
            false,
            "missing: the Shorewall 5.2 compiler's defaults are assumed".into(),
        ),
    }
    let settings = conf::settings(&conf_path, conf_text.as_deref().unwrap_or(""), &conf, f);
    let mut vars = conf;
    vars.0.extend(params.0);
    Ok((vars, settings))
}

/// The name of the `firewall` zone in `zones` (what `$FW` stands for).
fn firewall_zone(zones: &str) -> Option<String> {
    zones.lines().find_map(|l| {
        let words: Vec<&str> = l
            .split('#')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        (words.get(1) == Some(&"firewall")).then(|| words[0].to_string())
    })
}

/// `provider_options` (mask, default table, route filter) and the forwarding and rp_filter
/// sysctls.
fn provider_options(
    s: &conf::Settings,
    ifaces: &interfaces::Interfaces,
    out: &mut Output,
    f: &mut Findings,
) {
    let have = !out.providers.is_empty();
    out.mask = Some(s.mask);
    out.balance_table = s.use_default_rt;
    let words = |v: u8| match v {
        0 => Some("off"),
        1 => Some("strict"),
        2 => Some("loose"),
        _ => None,
    };
    let rf_at = s.at["ROUTE_FILTER"].clone();
    match (s.route_filter, have) {
        (RouteFilter::Set(v), true) => match words(v) {
            Some(w) => out.route_filter = Some(w),
            None => f.push(rf_at, true, format!("ROUTE_FILTER={v}: rp_filter is 0, 1 or 2")),
        },
        (RouteFilter::Set(v), false) => {
            for k in ["all", "default"] {
                out.sysctls.push((format!("net.ipv4.conf.{k}.rp_filter"), v.to_string(), rf_at.clone()));
            }
        }
        (RouteFilter::Keep, true) => f.push(rf_at, false, "ROUTE_FILTER=Keep: netconverge's providers set rp_filter 2 (loose) on `all` and the provider interfaces".into()),
        (RouteFilter::Keep, false) => {}
    }
    for (name, i) in ifaces {
        let Some(v) = i.routefilter else { continue };
        let on_provider = out.providers.iter().any(|p| p.interface == i.physical);
        if !on_provider {
            out.sysctls.push((
                format!("net.ipv4.conf.{}.rp_filter", i.physical),
                v.to_string(),
                i.at.clone(),
            ));
        } else if out.route_filter.is_none() {
            out.route_filter = words(v);
            f.push(i.at.clone(), false, format!("{name}: routefilter={v} becomes provider_options.route_filter, which netconverge applies to `all` and every provider interface"));
        } else if out.route_filter != words(v) {
            f.push(i.at.clone(), true, format!("{name}: routefilter={v} differs from ROUTE_FILTER; netconverge has one route_filter for all provider interfaces"));
        }
    }
    let fw_at = s.at["IP_FORWARDING"].clone();
    match (s.forwarding, have) {
        (Forwarding::On, false) => {
            out.sysctls
                .push(("net.ipv4.ip_forward".into(), "1".into(), fw_at))
        }
        (Forwarding::Off, false) => {
            out.sysctls
                .push(("net.ipv4.ip_forward".into(), "0".into(), fw_at))
        }
        (Forwarding::On, true) => {}
        (Forwarding::Off, true) => {
            let why = "IP_FORWARDING=Off: netconverge's providers always turn forwarding on";
            f.push(fw_at.clone(), true, why.into());
            out.leave_out(Section::Sysctl, &fw_at, why);
        }
        (Forwarding::Keep, true) => f.push(
            fw_at,
            false,
            "IP_FORWARDING=Keep: netconverge's providers turn forwarding on".into(),
        ),
        (Forwarding::Keep, false) => {}
    }
}

/// Report every line of a file that is not translated, and comment it once in the YAML.
fn not_translated(
    entries: &[Entry],
    name: &str,
    routing: bool,
    why: &str,
    out: &mut Output,
    f: &mut Findings,
) {
    for e in entries {
        f.push(e.at.clone(), routing, format!("{name}: {why}"));
    }
    if let Some(first) = entries.first() {
        let n = entries.len();
        out.leave_out(
            Section::Other,
            &first.at,
            &format!("{name}: {n} line(s): {why}"),
        );
    }
}

/// A comment in the YAML for every finding about routing that has none yet (the lexer's,
/// the settings'), in the section its file feeds.
fn comment_the_rest(out: &mut Output, f: &Findings) {
    for finding in f.0.iter().filter(|x| x.routing) {
        let place = format!("left out: {}: ", finding.at);
        if out
            .left_out
            .values()
            .flatten()
            .any(|c| c.starts_with(&place))
        {
            continue;
        }
        let name = Path::new(&finding.at.file)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let section = match name {
            "providers" => Section::Providers,
            "shorewall.conf" => Section::Options,
            "rtrules" | "route_rules" => Section::RouteRules,
            "mangle" => Section::Marks,
            "snat" | "masq" => Section::Masquerade,
            _ => Section::Other,
        };
        out.leave_out(section, &finding.at, &finding.message);
    }
}

/// Actions and macros defined in the directory: filtering, not translated.
fn extra_files(dir: &Path, out: &mut Output, f: &mut Findings) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("action.") || n.starts_with("macro."))
        .collect();
    names.sort();
    for n in names {
        let at = At::new(&dir.join(&n), 1);
        let why = format!("{n}: actions and macros are filter rules; netconverge does not filter");
        f.push(at.clone(), false, why.clone());
        out.leave_out(Section::Other, &at, &why);
    }
}
