//! `interfaces`: which interfaces exist under which name (`physical=`), and the options that
//! matter for routing (`optional`, `routefilter`) or that netconverge has no use for because
//! it does not filter (`bridge`, `routeback`, and the filter options).

use std::collections::BTreeMap;

use super::lexer::Entry;
use super::out::{Output, Section};
use super::report::{At, Findings};

/// One interface of the `interfaces` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// The kernel's name (`physical=`, else the name written).
    pub physical: String,
    /// `optional`: providers on it are optional.
    pub optional: bool,
    /// `routefilter[=N]`: rp_filter for this interface.
    pub routefilter: Option<u8>,
    /// Where it was declared.
    pub at: At,
}

/// The interfaces by the name the other files use.
pub type Interfaces = BTreeMap<String, Interface>;

/// Options that only shape filtering, ARP or logging: no effect on routing.
const FILTER_ONLY: [&str; 24] = [
    "arp_filter",
    "arp_ignore",
    "blacklist",
    "dhcp",
    "ignore",
    "logmartians",
    "maclist",
    "mss",
    "nets",
    "nosmurfs",
    "proxyndp",
    "required",
    "rpfilter",
    "sfilter",
    "sourceroute",
    "tcpflags",
    "unmanaged",
    "upnp",
    "upnpclient",
    "wait",
    "accept_ra",
    "forward",
    "destonly",
    "nodbl",
];

/// Read the interfaces; what cannot be used is reported.
pub fn read(entries: &[Entry], out: &mut Output, f: &mut Findings) -> Interfaces {
    let mut all = Interfaces::new();
    for e in entries {
        // ?FORMAT 1 has a BROADCAST column between INTERFACE and OPTIONS.
        let options_col = if e.format >= 2 { 2 } else { 3 };
        let Some(name) = e.col(1) else {
            f.push(e.at.clone(), false, "no INTERFACE column".into());
            continue;
        };
        let mut iface = Interface {
            physical: name.to_string(),
            optional: false,
            routefilter: None,
            at: e.at.clone(),
        };
        for option in e
            .col(options_col)
            .unwrap_or_default()
            .split(',')
            .filter(|o| !o.is_empty())
        {
            option_into(e, name, option, &mut iface, out, f);
        }
        all.insert(name.to_string(), iface);
    }
    all
}

fn option_into(
    e: &Entry,
    name: &str,
    option: &str,
    iface: &mut Interface,
    out: &mut Output,
    f: &mut Findings,
) {
    let (word, value) = option.split_once('=').unwrap_or((option, ""));
    match word {
        "optional" => iface.optional = true,
        "physical" => iface.physical = value.to_string(),
        "routefilter" => match value {
            "" => iface.routefilter = Some(1),
            v => match v.parse() {
                Ok(n) if n <= 2 => iface.routefilter = Some(n),
                _ => f.push(
                    e.at.clone(),
                    true,
                    format!("{name}: routefilter={v}: expected 0, 1 or 2"),
                ),
            },
        },
        "bridge" | "routeback" => {
            let why = format!("{name}: `bridge`/`routeback` are filtering facts; netconverge does not filter, so traffic bridged or routed back out of {name} passes as with routeback");
            if !out
                .left_out
                .get(&Section::Links)
                .is_some_and(|l| l.iter().any(|c| c.ends_with(&why)))
            {
                f.push(e.at.clone(), false, why.clone());
                out.leave_out(Section::Links, &e.at, &why);
            }
        }
        "proxyarp" => {
            let why = format!("{name}: proxyarp changes which addresses this host answers and routes for; netconverge does not set it (add sysctl net.ipv4.conf.{name}.proxy_arp and the routes by hand)");
            f.push(e.at.clone(), true, why.clone());
            out.leave_out(Section::Sysctl, &e.at, &why);
        }
        w if FILTER_ONLY.contains(&w) => {
            f.push(e.at.clone(), false, format!("{name}: `{option}` concerns filtering, ARP or logging, which netconverge does not do"));
        }
        _ => f.push(
            e.at.clone(),
            false,
            format!("{name}: unknown interface option `{option}`, ignored"),
        ),
    }
}
