//! `mangle` MARK lines that set a provider mark → `marks:`. netconverge marks in prerouting
//! (Shorewall's default chain for MARK), by input interface, source and destination.

use super::lexer::Entry;
use super::net;
use super::out::{MarkOut, Output, Section};
use super::providers::number;
use super::report::Findings;
use super::rtrules::source;

/// Translate the MARK lines; other actions are reported. `mask` is the provider mask;
/// `in_forward`: MARK_IN_FORWARD_CHAIN=Yes (the default chain is then FORWARD).
pub fn translate(
    entries: &[Entry],
    mask: u32,
    in_forward: bool,
    out: &mut Output,
    f: &mut Findings,
) {
    for e in entries {
        let action = e.col(0).unwrap_or_default();
        let Some(arg) = action.strip_prefix("MARK(").and_then(|a| a.split_once(')')) else {
            let word = action.split(['(', ':']).next().unwrap_or_default();
            let why = format!("{word}: only MARK lines that set a provider mark are translated");
            let routing = matches!(
                word,
                "CONNMARK" | "RESTORE" | "SAVE" | "ROUTE" | "TPROXY" | "DIVERT"
            );
            f.push(e.at.clone(), routing, why.clone());
            out.leave_out(Section::Marks, &e.at, &why);
            continue;
        };
        match one(e, arg, mask, in_forward) {
            Ok(marks) => out.marks.extend(marks),
            Err((routing, why)) => {
                f.push(e.at.clone(), routing, why.clone());
                out.leave_out(Section::Marks, &e.at, &why);
            }
        }
    }
}

/// The chain a MARK runs in: prerouting is what netconverge's marks are.
fn chain_ok(chain: &str, in_forward: bool) -> Result<(), (bool, String)> {
    let chain = chain.strip_prefix(':').unwrap_or(chain);
    let chain = if chain.is_empty() && in_forward {
        "F"
    } else {
        chain
    };
    match chain {
        "" | "P" => Ok(()),
        "F" => Err((
            false,
            "a mark set in FORWARD comes after the routing decision; it does not choose a provider"
                .into(),
        )),
        _ => Err((
            true,
            format!("MARK in chain :{chain}: netconverge marks in prerouting only"),
        )),
    }
}

/// `MARK(value[/mask])`: a provider mark, or (other bits) traffic shaping.
fn mark_value(value: &str, mask: u32) -> Result<u32, (bool, String)> {
    let (v, m) = value
        .split_once('/')
        .map_or((value, None), |(v, m)| (v, Some(m)));
    let mark = number(v).ok_or_else(|| (true, format!("MARK({value}): not a number")))?;
    if m.is_some_and(|m| number(m) != Some(mask)) || mark == 0 || mark & !mask != 0 {
        return Err((false, format!("MARK({value}) sets bits outside the provider mask {mask:#x} (traffic shaping); it does not choose a provider")));
    }
    Ok(mark)
}

fn one(
    e: &Entry,
    (value, chain): (&str, &str),
    mask: u32,
    in_forward: bool,
) -> Result<Vec<MarkOut>, (bool, String)> {
    chain_ok(chain, in_forward)?;
    let mark = mark_value(value, mask)?;
    if let Some((i, c)) = e
        .columns
        .iter()
        .enumerate()
        .skip(3)
        .find(|(_, c)| c.as_str() != "-")
    {
        return Err((true, format!("column {} `{c}`: matches on protocol, ports, users and the like have no netconverge equivalent", i + 1)));
    }
    if e.col(1).is_some_and(|s| s.starts_with("$FW") || s == "fw") {
        return Err((
            true,
            "MARK of the firewall's own traffic (OUTPUT): netconverge marks in prerouting only"
                .into(),
        ));
    }
    let to = match e.col(2) {
        None => None,
        Some(d) => Some(net(d).ok_or_else(|| {
            (
                true,
                format!("DEST `{d}`: only an address or network is translated"),
            )
        })?),
    };
    let sources: Vec<Option<&str>> = match e.col(1) {
        None => vec![None],
        Some(s) => s.split(',').map(Some).collect(),
    };
    let mut marks = Vec::new();
    for s in sources {
        let (iif, from) = source(s).map_err(|w| (true, w))?;
        if iif.is_none() && from.is_none() && to.is_none() {
            return Err((
                true,
                "a MARK of every packet has no netconverge equivalent".into(),
            ));
        }
        marks.push(MarkOut {
            iif,
            from,
            to: to.clone(),
            mark,
            at: e.at.clone(),
        });
    }
    Ok(marks)
}
