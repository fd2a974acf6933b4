//! `snat` (and the older `masq`) MASQUERADE lines → `masquerade:`. SNAT to a given address,
//! exceptions (CONTINUE, ACCEPT, NONAT) and matches on ports or marks have no equivalent.

use super::host::HostFacts;
use super::lexer::Entry;
use super::out::{MasqOut, Output, Section};
use super::report::Findings;
use super::{is_ifname, net};

/// `snat`: ACTION SOURCE DEST PROTO PORT IPSEC MARK USER SWITCH ORIGDEST PROBABILITY.
pub fn snat(entries: &[Entry], out: &mut Output, f: &mut Findings) {
    for e in entries {
        let action = e.col(0).unwrap_or_default();
        let r = if action != "MASQUERADE" {
            Err(format!("{action}: only MASQUERADE is translated"))
        } else {
            lines(e, e.col(1), e.col(2), 3, None)
        };
        record(e, r, out, f);
    }
}

/// `masq`: INTERFACE SOURCE ADDRESS PROTO PORT(S) IPSEC MARK USER SWITCH ORIGDEST PROBABILITY.
/// A SOURCE that names an interface means its networks, read from this host.
pub fn masq(entries: &[Entry], host: Option<&HostFacts>, out: &mut Output, f: &mut Findings) {
    for e in entries {
        let r = match e.col(2) {
            Some(a) => Err(format!("ADDRESS {a}: SNAT to a given address has no netconverge equivalent (masquerade uses the outgoing interface's address)")),
            None => lines(e, e.col(1), e.col(0), 3, host),
        };
        record(e, r, out, f);
    }
}

fn record(e: &Entry, r: Result<Vec<MasqOut>, String>, out: &mut Output, f: &mut Findings) {
    match r {
        Ok(m) => out.masquerade.extend(m),
        Err(why) => {
            f.push(e.at.clone(), true, why.clone());
            out.leave_out(Section::Masquerade, &e.at, &why);
        }
    }
}

/// The masquerade items of one line: one per source network.
fn lines(
    e: &Entry,
    source: Option<&str>,
    dest: Option<&str>,
    first_match: usize,
    host: Option<&HostFacts>,
) -> Result<Vec<MasqOut>, String> {
    if let Some((i, c)) = e
        .columns
        .iter()
        .enumerate()
        .skip(first_match)
        .find(|(_, c)| c.as_str() != "-")
    {
        return Err(format!("column {} `{c}`: matches on protocol, ports, marks and the like have no netconverge equivalent", i + 1));
    }
    let out = dest.ok_or("no outgoing interface")?;
    if out.contains(':') || !is_ifname(out) {
        return Err(format!(
            "`{out}`: only a plain outgoing interface is translated"
        ));
    }
    let Some(source) = source else {
        return Ok(vec![MasqOut {
            from: None,
            out: out.to_string(),
            at: e.at.clone(),
        }]);
    };
    let mut items = Vec::new();
    for s in source.split(',') {
        for from in sources(s, host)? {
            items.push(MasqOut {
                from: Some(from),
                out: out.to_string(),
                at: e.at.clone(),
            });
        }
    }
    Ok(items)
}

fn sources(s: &str, host: Option<&HostFacts>) -> Result<Vec<String>, String> {
    if s.starts_with('!') || s.contains('!') {
        return Err(format!(
            "SOURCE `{s}`: exclusions have no netconverge equivalent"
        ));
    }
    if let Some(n) = net(s) {
        return Ok(vec![n]);
    }
    if !is_ifname(s) {
        return Err(format!(
            "SOURCE `{s}` is neither a network nor an interface"
        ));
    }
    match host.and_then(|h| h.addresses.get(s)) {
        Some(nets) if !nets.is_empty() => Ok(nets.iter().map(|n| n.trunc().to_string()).collect()),
        _ => Err(format!("SOURCE {s}: the networks of {s} are unknown here (no address on this host); write them out")),
    }
}
