//! The translation's result, section by section, and its YAML: each item says which line it
//! came from, and each section carries a comment for what was left out of it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::report::At;

/// One provider, as netconverge's `providers:` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderOut {
    pub name: String,
    pub number: u32,
    pub mark: Option<u32>,
    pub interface: String,
    pub gateway: Ipv4Addr,
    pub local: Option<Ipv4Addr>,
    pub balance: Option<u32>,
    /// `Some(None)`: `fallback: true`; `Some(Some(w))`: a weight.
    pub fallback: Option<Option<u32>>,
    pub track: bool,
    pub loose: bool,
    pub duplicate: bool,
    pub copy: Vec<String>,
    pub optional: bool,
    pub at: At,
}

/// One `route_rules:` item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRuleOut {
    pub from: Option<String>,
    pub to: Option<String>,
    pub iif: Option<String>,
    pub provider: String,
    pub priority: u32,
    pub at: At,
}

/// One `masquerade:` item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasqOut {
    pub from: Option<String>,
    pub out: String,
    pub at: At,
}

/// One `marks:` item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkOut {
    pub iif: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub mark: u32,
    pub at: At,
}

/// The sections of the output, in the order they are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Sysctl,
    Links,
    Providers,
    Options,
    RouteRules,
    Masquerade,
    Marks,
    /// What belongs to no section netconverge has (filter rules, zones, policies).
    Other,
}

/// Everything the import writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// `external` links whose addresses `duplicate: main` needs, with why.
    pub links: BTreeMap<String, (Vec<Ipv4Net>, String)>,
    pub sysctls: Vec<(String, String, At)>,
    pub providers: Vec<ProviderOut>,
    /// `provider_options`: mask, USE_DEFAULT_RT, route filter.
    pub mask: Option<u32>,
    pub balance_table: bool,
    pub route_filter: Option<&'static str>,
    pub route_rules: Vec<RouteRuleOut>,
    pub masquerade: Vec<MasqOut>,
    pub marks: Vec<MarkOut>,
    /// Comments for what was left out, by the section it would have gone to.
    pub left_out: BTreeMap<Section, Vec<String>>,
}

impl Output {
    /// Note, in the YAML, that something was left out of `section`.
    pub fn leave_out(&mut self, section: Section, at: &At, why: &str) {
        self.left_out
            .entry(section)
            .or_default()
            .push(format!("left out: {at}: {why}"));
    }
}

/// Words YAML reads as something other than a string.
const SPECIAL: [&str; 11] = [
    "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~", "",
];

/// A string as a YAML scalar: plain when that reads back as the same string, else quoted.
pub fn scalar(s: &str) -> String {
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./:".contains(c))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && !SPECIAL.contains(&s.to_ascii_lowercase().as_str())
        && s.parse::<f64>().is_err();
    if plain {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

/// `{ k: v, … }` from the pairs that are present.
fn flow(pairs: &[(&str, Option<String>)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
        .collect();
    format!("{{ {} }}", inner.join(", "))
}

fn hex(m: u32) -> String {
    format!("\"{m:#x}\"")
}

fn opt(s: &Option<String>) -> Option<String> {
    s.as_deref().map(scalar)
}

fn yes(b: bool) -> Option<String> {
    b.then(|| "true".to_string())
}

fn provider_line(p: &ProviderOut) -> String {
    let fallback = p
        .fallback
        .map(|w| w.map_or("true".to_string(), |w| w.to_string()));
    let copy = (!p.copy.is_empty()).then(|| {
        let items: Vec<String> = p.copy.iter().map(|c| scalar(c)).collect();
        format!("[{}]", items.join(", "))
    });
    let body = flow(&[
        ("number", Some(p.number.to_string())),
        ("mark", p.mark.map(hex)),
        ("interface", Some(scalar(&p.interface))),
        ("gateway", Some(p.gateway.to_string())),
        ("local", p.local.map(|l| l.to_string())),
        ("balance", p.balance.map(|b| b.to_string())),
        ("fallback", fallback),
        ("track", yes(p.track)),
        ("loose", yes(p.loose)),
        ("duplicate", p.duplicate.then(|| "main".to_string())),
        ("copy", copy),
        ("optional", yes(p.optional)),
    ]);
    format!("  {}: {body}   # {}\n", scalar(&p.name), p.at)
}

impl Output {
    /// The YAML text: a header, then each section with its items and its left-out comments.
    pub fn yaml(&self, dir: &str) -> String {
        let mut s = format!(
            "# Imported from the Shorewall configuration in {dir} by `netconverge import shorewall`.\n\
             # Each item names the line it came from; `left out:` comments say what was not translated.\n"
        );
        let sections = [
            Section::Sysctl,
            Section::Links,
            Section::Providers,
            Section::Options,
            Section::RouteRules,
            Section::Masquerade,
            Section::Marks,
            Section::Other,
        ];
        for section in sections {
            self.section(section, &mut s);
        }
        s
    }

    fn section(&self, section: Section, s: &mut String) {
        let (key, items) = self.items(section);
        let comments = self.left_out.get(&section).map_or(&[][..], Vec::as_slice);
        if items.is_empty() && comments.is_empty() {
            return;
        }
        s.push('\n');
        for c in comments {
            let _ = writeln!(s, "# {}", c.replace('\n', " "));
        }
        if !items.is_empty() {
            let _ = writeln!(s, "{key}:");
            for i in items {
                s.push_str(&i);
            }
        }
    }

    fn items(&self, section: Section) -> (&'static str, Vec<String>) {
        match section {
            Section::Sysctl => (
                "sysctl",
                self.sysctls
                    .iter()
                    .map(|(k, v, at)| format!("  {k}: \"{v}\"   # {at}\n"))
                    .collect(),
            ),
            Section::Links => (
                "links",
                self.links
                    .iter()
                    .map(|(name, (addrs, why))| {
                        let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                        format!(
                            "  {}: {{ kind: external, addresses: [{}] }}   # {why}\n",
                            scalar(name),
                            list.join(", ")
                        )
                    })
                    .collect(),
            ),
            Section::Providers => (
                "providers",
                self.providers.iter().map(provider_line).collect(),
            ),
            Section::Options => ("provider_options", self.options_lines()),
            Section::RouteRules => (
                "route_rules",
                self.route_rules.iter().map(route_rule_line).collect(),
            ),
            Section::Masquerade => (
                "masquerade",
                self.masquerade.iter().map(masq_line).collect(),
            ),
            Section::Marks => ("marks", self.marks.iter().map(mark_line).collect()),
            Section::Other => ("", Vec::new()),
        }
    }

    fn options_lines(&self) -> Vec<String> {
        if self.providers.is_empty() {
            return Vec::new();
        }
        let mut v = Vec::new();
        if let Some(m) = self.mask {
            v.push(format!(
                "  mask: {}   # PROVIDER_BITS, PROVIDER_OFFSET\n",
                hex(m)
            ));
        }
        let table = if self.balance_table {
            "balance_table   # USE_DEFAULT_RT=Yes"
        } else {
            "main   # USE_DEFAULT_RT=No"
        };
        v.push(format!("  default_table: {table}\n"));
        if let Some(f) = self.route_filter {
            v.push(format!("  route_filter: {f}   # ROUTE_FILTER\n"));
        }
        v
    }
}

fn route_rule_line(r: &RouteRuleOut) -> String {
    let body = flow(&[
        ("from", opt(&r.from)),
        ("to", opt(&r.to)),
        ("iif", opt(&r.iif)),
        ("provider", Some(scalar(&r.provider))),
        ("priority", Some(r.priority.to_string())),
    ]);
    format!("  - {body}   # {}\n", r.at)
}

fn masq_line(m: &MasqOut) -> String {
    let body = flow(&[("from", opt(&m.from)), ("out", Some(scalar(&m.out)))]);
    format!("  - {body}   # {}\n", m.at)
}

fn mark_line(m: &MarkOut) -> String {
    let body = flow(&[
        ("iif", opt(&m.iif)),
        ("from", opt(&m.from)),
        ("to", opt(&m.to)),
        ("mark", Some(hex(m.mark))),
    ]);
    format!("  - {body}   # {}\n", m.at)
}
