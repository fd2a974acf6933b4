//! The `shorewall.conf` settings that change how providers expand: USE_DEFAULT_RT,
//! BALANCE_PROVIDERS, TRACK_PROVIDERS, PROVIDER_BITS/PROVIDER_OFFSET/MASK_BITS, ROUTE_FILTER,
//! IP_FORWARDING. Defaults are the Shorewall 5.2 compiler's for a setting that is absent.

use std::path::Path;

use super::report::{At, Findings};
use super::vars::Vars;

/// `ROUTE_FILTER`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteFilter {
    /// `Keep` or empty: Shorewall leaves rp_filter alone.
    Keep,
    /// A value written to every interface's rp_filter (Yes = 1, No = 0, or a number).
    Set(u8),
}

/// `IP_FORWARDING`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarding {
    /// `On` (and the default).
    On,
    /// `Off`.
    Off,
    /// `Keep`.
    Keep,
}

/// The settings, each with where it was written (for the reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// USE_DEFAULT_RT=Yes: the balanced default in table 250, main looked up first.
    pub use_default_rt: bool,
    /// BALANCE_PROVIDERS: `balance` assumed unless fallback/loose/load/tproxy.
    pub balance_providers: bool,
    /// TRACK_PROVIDERS: `track` assumed unless `notrack`.
    pub track_providers: bool,
    /// The provider mark mask (PROVIDER_BITS ones shifted by PROVIDER_OFFSET).
    pub mask: u32,
    /// PROVIDER_OFFSET, as the compiler adjusts it (at least MASK_BITS when non-zero).
    pub offset: u32,
    /// ROUTE_FILTER.
    pub route_filter: RouteFilter,
    /// IP_FORWARDING.
    pub forwarding: Forwarding,
    /// Where each setting the import used was written.
    pub at: std::collections::BTreeMap<&'static str, At>,
}

/// The settings import reads (others in shorewall.conf concern filtering and logging).
pub const KNOWN: [&str; 9] = [
    "USE_DEFAULT_RT",
    "BALANCE_PROVIDERS",
    "TRACK_PROVIDERS",
    "PROVIDER_BITS",
    "PROVIDER_OFFSET",
    "MASK_BITS",
    "ROUTE_FILTER",
    "IP_FORWARDING",
    "RESTORE_DEFAULT_ROUTE",
];

/// Shorewall's `Yes`/`No` (empty: `default`).
fn yes_no(v: Option<&str>, default: bool) -> Option<bool> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Some(default),
        Some("yes") => Some(true),
        Some("no") => Some(false),
        _ => None,
    }
}

/// Where `shorewall.conf` sets `name`.
fn place(path: &Path, text: &str, name: &str) -> At {
    let line = text
        .lines()
        .position(|l| l.trim_start().starts_with(&format!("{name}=")))
        .map_or(0, |i| i + 1);
    At::new(path, line)
}

/// Read the settings from the variables of `shorewall.conf` (already read into `vars`);
/// `text` is its text (for the line numbers), empty when the file is missing.
pub fn settings(path: &Path, text: &str, vars: &Vars, findings: &mut Findings) -> Settings {
    let mut at = std::collections::BTreeMap::new();
    for name in KNOWN {
        at.insert(name, place(path, text, name));
    }
    let flag = |name: &'static str, default: bool, findings: &mut Findings| {
        yes_no(vars.get(name), default).unwrap_or_else(|| {
            let why = format!(
                "{name}={}: expected Yes or No; {default} assumed",
                vars.get(name).unwrap_or("")
            );
            findings.push(at[name].clone(), true, why);
            default
        })
    };
    let use_default_rt = flag("USE_DEFAULT_RT", false, findings);
    let balance_providers = flag("BALANCE_PROVIDERS", use_default_rt, findings);
    let track_providers = flag("TRACK_PROVIDERS", true, findings);
    let (mask, offset) = mask(vars, &at, findings);
    Settings {
        use_default_rt,
        balance_providers,
        track_providers,
        mask,
        offset,
        route_filter: route_filter(vars, &at, findings),
        forwarding: forwarding(vars, &at, findings),
        at,
    }
}

type Places = std::collections::BTreeMap<&'static str, At>;

fn number(vars: &Vars, name: &'static str, default: u32, at: &Places, f: &mut Findings) -> u32 {
    match vars.get(name).filter(|v| !v.is_empty()) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| {
            f.push(
                at[name].clone(),
                true,
                format!("{name}={v}: not a number; {default} assumed"),
            );
            default
        }),
    }
}

/// PROVIDER_BITS ones shifted by PROVIDER_OFFSET (raised to MASK_BITS when non-zero, as the
/// compiler does).
fn mask(vars: &Vars, at: &Places, f: &mut Findings) -> (u32, u32) {
    let bits = number(vars, "PROVIDER_BITS", 8, at, f);
    let mut offset = number(vars, "PROVIDER_OFFSET", 0, at, f);
    let mask_bits = number(vars, "MASK_BITS", 8, at, f);
    if offset > 0 && offset < mask_bits {
        offset = mask_bits;
    }
    if bits == 0 || bits + offset > 32 {
        f.push(at["PROVIDER_BITS"].clone(), true, format!("PROVIDER_BITS={bits} with PROVIDER_OFFSET={offset} leaves no room for provider marks; 8 and 0 assumed"));
        return (0xff, 0);
    }
    let ones = if bits == 32 {
        u32::MAX
    } else {
        (1u32 << bits) - 1
    };
    (ones << offset, offset)
}

fn route_filter(vars: &Vars, at: &Places, f: &mut Findings) -> RouteFilter {
    let v = vars.get("ROUTE_FILTER").unwrap_or("").to_ascii_lowercase();
    match v.as_str() {
        "" | "keep" => RouteFilter::Keep,
        "yes" | "on" => RouteFilter::Set(1),
        "no" | "off" => RouteFilter::Set(0),
        n => n.parse().map(RouteFilter::Set).unwrap_or_else(|_| {
            f.push(
                at["ROUTE_FILTER"].clone(),
                true,
                format!("ROUTE_FILTER={n}: expected Yes, No, Keep or a number"),
            );
            RouteFilter::Keep
        }),
    }
}

fn forwarding(vars: &Vars, at: &Places, f: &mut Findings) -> Forwarding {
    let v = vars.get("IP_FORWARDING").unwrap_or("").to_ascii_lowercase();
    match v.as_str() {
        "" | "on" | "yes" => Forwarding::On,
        "off" | "no" => Forwarding::Off,
        "keep" => Forwarding::Keep,
        other => {
            f.push(
                at["IP_FORWARDING"].clone(),
                true,
                format!("IP_FORWARDING={other}: expected On, Off or Keep; On assumed"),
            );
            Forwarding::On
        }
    }
}
