//! `rtrules` (and the older `route_rules`) → `route_rules:`: SOURCE (an address, an
//! interface, or `interface:address`), DEST, PROVIDER (a name, a number or `main`),
//! PRIORITY. A MARK column or an exclusion has no netconverge equivalent.

use std::collections::BTreeMap;

use super::lexer::Entry;
use super::out::{Output, RouteRuleOut, Section};
use super::report::Findings;
use super::{is_ifname, net};

/// Translate every line; `providers` maps the translated providers' names and numbers to
/// their names.
pub fn translate(
    entries: &[Entry],
    providers: &BTreeMap<String, String>,
    out: &mut Output,
    f: &mut Findings,
) {
    for e in entries {
        match one(e, providers) {
            Ok(r) => out.route_rules.push(r),
            Err(why) => {
                f.push(e.at.clone(), true, why.clone());
                out.leave_out(Section::RouteRules, &e.at, &why);
            }
        }
    }
}

/// SOURCE: `(iif, from)`.
pub fn source(s: Option<&str>) -> Result<(Option<String>, Option<String>), String> {
    let Some(s) = s else { return Ok((None, None)) };
    if s.starts_with('!')
        || s.contains(",!")
        || s.starts_with('~')
        || s.starts_with('+')
        || s.starts_with('&')
    {
        return Err(format!(
            "SOURCE `{s}`: exclusions, MAC addresses and ipsets have no netconverge equivalent"
        ));
    }
    if let Some(n) = net(s) {
        return Ok((None, Some(n)));
    }
    if let Some((i, a)) = s.split_once(':') {
        let n = net(a)
            .ok_or_else(|| format!("SOURCE `{s}`: `{a}` is not an IPv4 address or network"))?;
        return is_ifname(i)
            .then(|| (Some(i.to_string()), Some(n)))
            .ok_or_else(|| format!("SOURCE `{s}`: `{i}` is not an interface name"));
    }
    is_ifname(s)
        .then(|| (Some(s.to_string()), None))
        .ok_or_else(|| format!("SOURCE `{s}` is neither an address nor an interface"))
}

fn one(e: &Entry, providers: &BTreeMap<String, String>) -> Result<RouteRuleOut, String> {
    if let Some(m) = e.col(4) {
        return Err(format!("MARK {m}: route rules on a mark have no netconverge equivalent (route_rules select by from, to and iif)"));
    }
    if let Some(c) = e.columns.get(5) {
        return Err(format!(
            "unexpected column `{c}` (rtrules has SOURCE DEST PROVIDER PRIORITY MARK)"
        ));
    }
    let (iif, from) = source(e.col(0))?;
    let to = match e.col(1) {
        None => None,
        Some(d) => {
            Some(net(d).ok_or_else(|| format!("DEST `{d}` is not an IPv4 address or network"))?)
        }
    };
    if iif.is_none() && from.is_none() && to.is_none() {
        return Err(
            "a rule for every packet (no SOURCE or DEST) has no netconverge equivalent".into(),
        );
    }
    let p = e.col(2).ok_or("no PROVIDER")?;
    let provider = if p == "main" || p == "254" {
        "main".to_string()
    } else {
        providers
            .get(p)
            .cloned()
            .ok_or_else(|| format!("PROVIDER `{p}` is not a provider that was translated"))?
    };
    let written = e.col(3).ok_or("no PRIORITY")?;
    let pr = written.trim_end_matches('!');
    let priority = pr
        .parse::<u32>()
        .ok()
        .filter(|p| (1..=32765).contains(p))
        .ok_or_else(|| format!("PRIORITY `{written}` is not a number from 1 to 32765"))?;
    Ok(RouteRuleOut {
        from,
        to,
        iif,
        provider,
        priority,
        at: e.at.clone(),
    })
}
