//! netconverge's tables as text: the scripts that load them (with the digests in the inet
//! table's comment and the gateway MACs), and what a listing of them says (intact or modified,
//! see the module above). Pure text work: reading and loading the tables is the kernel's
//! (`crate::kernel::services` calls these with what `Kernel::list_firewall` returned).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::TABLE;
use crate::error::KernelError;
use crate::model::firewall::{digest, Firewall, Problem};
use crate::model::MacAddr;

/// The observed firewall when the tables cannot be listed without privileges (`error` is the
/// listing's EPERM): not compared, with a warning.
pub(crate) fn unreadable(error: &KernelError) -> Firewall {
    let why = error.hint.clone().unwrap_or_else(|| error.to_string());
    Firewall {
        ruleset: String::new(),
        digest: String::new(),
        problem: Some(Problem::Unreadable(format!(
            "listing them needs CAP_NET_ADMIN ({why})"
        ))),
    }
}

/// Interpret the listing of our tables: intact (its digest matches the one recorded when
/// it was loaded, and every gateway set holds the gateway's current MAC) or modified.
pub(crate) fn observed(
    listing: String,
    neighbour: impl Fn(Ipv4Addr, &str) -> Option<MacAddr>,
) -> Firewall {
    let recorded = listing.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("comment \"netconverge ")?;
        let mut words = rest.trim_end_matches('"').split_whitespace();
        Some((words.next()?.to_string(), words.next()?.to_string()))
    });
    let problem = match &recorded {
        None => Some("the table has no digest: it was not loaded by netconverge".to_string()),
        Some((_, listed)) if *listed != digest(&without_digests(&listing)) => {
            Some("the tables were changed outside netconverge".to_string())
        }
        Some(_) => gateway_sets(&listing).into_iter().find_map(|g| {
            let now = neighbour(g.gateway, &g.dev)?;
            (g.elements.first() != Some(&now)).then(|| {
                format!(
                    "gateway {} on {} now has MAC {now}, the table matches {}",
                    g.gateway,
                    g.dev,
                    g.elements
                        .first()
                        .map_or("none".to_string(), ToString::to_string)
                )
            })
        }),
    };
    Firewall {
        digest: recorded.map(|(d, _)| d).unwrap_or_default(),
        ruleset: listing,
        problem: problem.map(Problem::Modified),
    }
}

/// The statements that delete both tables in one transaction: `add` first, so that `delete`
/// cannot fail on a missing table.
pub(crate) fn delete_script() -> String {
    let mut head = String::new();
    for fam in ["inet", "bridge"] {
        let _ = writeln!(head, "add table {fam} {TABLE}\ndelete table {fam} {TABLE}");
    }
    head
}

/// The script that replaces both tables with `f` as one transaction, the gateway sets filled
/// with `macs` (set name, MAC). The inet table's comment records `f`'s digest and, when
/// `loaded` is the listing of a first load of this same script, the digest of that listing.
pub(crate) fn load_script(
    f: &Firewall,
    macs: &[(String, MacAddr)],
    loaded: Option<&str>,
) -> String {
    let comment = match loaded {
        None => format!("netconverge {}", f.digest),
        Some(listing) => format!(
            "netconverge {} {}",
            f.digest,
            digest(&without_digests(listing))
        ),
    };
    let body = f.ruleset.replacen(
        &format!("table inet {TABLE} {{\n"),
        &format!("table inet {TABLE} {{\n\tcomment \"{comment}\"\n"),
        1,
    );
    let mut elements = String::new();
    for (set, mac) in macs {
        let _ = writeln!(elements, "add element inet {TABLE} {set} {{ {mac} }}");
    }
    format!("{}{body}{elements}", delete_script())
}

/// The listing without our digest comment, which is what the listing digest covers.
pub(crate) fn without_digests(listing: &str) -> String {
    listing
        .lines()
        .filter(|l| !l.trim().starts_with("comment \"netconverge "))
        .fold(String::new(), |mut s, l| {
            s.push_str(l);
            s.push('\n');
            s
        })
}

/// A gateway set of a ruleset or listing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GatewaySet {
    /// The set's name (`gw_N`).
    pub set: String,
    /// The gateway, from the set's comment.
    pub gateway: Ipv4Addr,
    /// The interface it is reached on, from the set's comment.
    pub dev: String,
    /// The MACs the set holds (none in a rendered ruleset).
    pub elements: Vec<MacAddr>,
}

/// The `gw_N` sets with their `gateway G dev I` comments and elements.
pub(crate) fn gateway_sets(text: &str) -> Vec<GatewaySet> {
    let mut out = Vec::new();
    let mut set: Option<String> = None;
    let mut at: Option<(Ipv4Addr, String)> = None;
    let mut elements: Vec<MacAddr> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("set ").and_then(|l| l.strip_suffix(" {")) {
            set = Some(name.to_string());
            at = None;
            elements.clear();
        } else if set.is_none() {
            continue;
        } else if let Some(c) = line
            .strip_prefix("comment \"gateway ")
            .and_then(|c| c.strip_suffix('"'))
        {
            at = c
                .split_once(" dev ")
                .and_then(|(g, d)| Some((g.parse().ok()?, d.to_string())));
        } else if let Some(list) = line
            .strip_prefix("elements = {")
            .and_then(|l| l.strip_suffix('}'))
        {
            elements.extend(
                list.split(',')
                    .filter_map(|m| m.trim().parse::<MacAddr>().ok()),
            );
        } else if line == "}" {
            if let (Some(set), Some((gateway, dev))) = (set.take(), at.take()) {
                out.push(GatewaySet {
                    set,
                    gateway,
                    dev,
                    elements: std::mem::take(&mut elements),
                });
            }
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn gateway_sets_are_found_in_rulesets_and_listings() {
        let f = super::super::render(&super::super::tests::spec());
        assert_eq!(
            gateway_sets(&f.ruleset),
            [GatewaySet {
                set: "gw_1".into(),
                gateway: "192.168.1.1".parse().unwrap(),
                dev: "eth0".into(),
                elements: vec![],
            }]
        );
        let listed = "table inet netconverge {\n\tcomment \"netconverge a b\"\n\tset gw_2 {\n\t\ttype ether_addr\n\t\tcomment \"gateway 192.168.1.254 dev eth0\"\n\t\telements = { 52:54:00:00:00:fe }\n\t}\n}\n";
        assert_eq!(
            gateway_sets(listed)[0].elements,
            ["52:54:00:00:00:fe".parse::<MacAddr>().unwrap()]
        );
    }

    pub(crate) fn listed(desired: &str, body: &str) -> String {
        let listed = digest(&without_digests(body));
        body.replacen(
            "table inet netconverge {\n",
            &format!("table inet netconverge {{\n\tcomment \"netconverge {desired} {listed}\"\n"),
            1,
        )
    }

    pub(crate) const BODY: &str = "table inet netconverge {\n\tset gw_2 {\n\t\ttype ether_addr\n\t\tcomment \"gateway 192.168.1.254 dev eth0\"\n\t\telements = { 52:54:00:00:00:fe }\n\t}\n\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\toifname \"eth0\" ip saddr 10.0.0.0/24 masquerade\n\t}\n}\n";

    #[test]
    fn an_intact_listing_is_the_loaded_ruleset() {
        let fw = observed(listed("d1", BODY), |_, _| None);
        assert_eq!(fw.digest, "d1");
        assert_eq!(fw.problem, None);
        let same_mac = observed(listed("d1", BODY), |_, _| "52:54:00:00:00:fe".parse().ok());
        assert_eq!(same_mac.problem, None);
    }

    #[test]
    fn edits_and_new_macs_are_drift() {
        let edited = listed("d1", BODY).replace("10.0.0.0/24", "10.0.9.0/24");
        let fw = observed(edited, |_, _| None);
        assert!(
            matches!(fw.problem, Some(Problem::Modified(ref m)) if m.contains("changed outside")),
            "{fw:?}"
        );
        let flushed = listed("d1", BODY)
            .replace("\t\toifname \"eth0\" ip saddr 10.0.0.0/24 masquerade\n", "");
        assert!(observed(flushed, |_, _| None).problem.is_some());
        let moved = observed(listed("d1", BODY), |_, _| "52:54:00:00:00:aa".parse().ok());
        assert!(
            matches!(moved.problem, Some(Problem::Modified(ref m)) if m.contains("now has MAC 52:54:00:00:00:aa")),
            "{moved:?}"
        );
        let foreign = observed(BODY.to_string(), |_, _| None);
        assert!(
            matches!(foreign.problem, Some(Problem::Modified(ref m)) if m.contains("not loaded by netconverge"))
        );
    }
}
