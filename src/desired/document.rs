//! The serde types of one desired-state YAML file, exactly as written.
//!
//! These types are deliberately loose: values that need more than a type check (addresses,
//! prefixes, names, numbers with ranges) are kept as written, with their source position, and
//! checked later by each section's conversion. That way one file yields *all* its errors instead of
//! stopping at the first bad value, and every message can name the value's line and column.
//! Numbers are read as `i64` so that out-of-range values get a sentence with the allowed range
//! instead of the parser's bare "invalid u32". Only structural problems (unknown keys, a list
//! where a mapping belongs, a syntax error) stop the parse of a file.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::dhcp::DhcpDoc;
use super::links::LinkDoc;
use super::managed::ManagedDoc;
use super::owner::OwnerDoc;
use super::providers::{MarkDoc, MasqueradeDoc, OptionsDoc, ProviderDoc, RouteRuleDoc};
use super::routes::fast::Section;
use super::routes::RouteDoc;
use super::rules::RuleDoc;
use super::yaml::{Entries, Scalar};

/// One desired-state file.
///
/// Only the list of sections: each section's types live in the module of its kind.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Document {
    /// `match: { hostname: GLOB | [GLOB…] }`: the hosts the file applies on (see
    /// `host_match.rs`); absent: all.
    #[serde(default, rename = "match")]
    pub host_match: Option<Spanned<super::host_match::MatchDoc>>,
    /// `owner: { protocol: N }`.
    #[serde(default)]
    pub owner: Option<Spanned<OwnerDoc>>,
    /// Table name → id.
    #[serde(default)]
    pub tables: Entries<Spanned<i64>>,
    /// Sysctl name → value.
    #[serde(default)]
    pub sysctl: Entries<Spanned<Scalar>>,
    /// Link name → link.
    #[serde(default)]
    pub links: Entries<LinkDoc>,
    /// Routes.
    #[serde(default)]
    pub routes: Option<Vec<Spanned<RouteDoc>>>,
    /// Routes read by the fast path instead (`routes/fast.rs`); never both.
    #[serde(skip)]
    pub scanned_routes: Option<Section>,
    /// Policy rules.
    #[serde(default)]
    pub rules: Option<Vec<Spanned<RuleDoc>>>,
    /// Shorewall-style providers and their companions (see `providers/`).
    #[serde(default)]
    pub providers: Entries<ProviderDoc>,
    #[serde(default)]
    pub provider_options: Option<Spanned<OptionsDoc>>,
    #[serde(default)]
    pub route_rules: Option<Vec<Spanned<RouteRuleDoc>>>,
    #[serde(default)]
    pub masquerade: Option<Vec<Spanned<MasqueradeDoc>>>,
    #[serde(default)]
    pub marks: Option<Vec<Spanned<MarkDoc>>>,
    /// Written by `show`: which observed objects carry netconverge's ownership marks, so that
    /// `check --observed` can tell its own objects from foreign ones offline. Not desired state.
    #[serde(default)]
    pub managed: Option<ManagedDoc>,
    /// Bridge → DHCP/DNS service (dnsmasq); see `dhcp/`.
    #[serde(default)]
    pub dhcp: Entries<Spanned<DhcpDoc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Document {
        serde_saphyr::from_str(src).expect("parses")
    }

    #[test]
    fn empty_input_is_an_empty_document() {
        let d = parse("");
        assert!(d.links.0.is_empty() && d.routes.is_none() && d.owner.is_none());
        let d = parse("# nothing\n");
        assert!(d.tables.0.is_empty());
    }

    #[test]
    fn null_sections_are_empty() {
        let d = parse("links:\ntables:\nsysctl:\nroutes:\nrules:\n");
        assert!(d.links.0.is_empty() && d.tables.0.is_empty() && d.sysctl.0.is_empty());
        assert!(d.routes.is_none() && d.rules.is_none());
    }

    #[test]
    fn keys_and_values_keep_their_positions() {
        let d = parse("links:\n  br0:\n    kind: bridge\n    master: br9\n");
        let (name, link) = &d.links.0[0];
        assert_eq!(name.value, "br0");
        assert_eq!((name.referenced.line(), name.referenced.column()), (2, 3));
        let master = link.master.as_ref().expect("master");
        assert_eq!(
            (master.referenced.line(), master.referenced.column()),
            (4, 13)
        );
    }

    #[test]
    fn scalars_of_any_type() {
        let d = parse("sysctl:\n  a: 1\n  b: true\n  c: \"x  y\"\n  d: 1.5\n  e:\n  f: 0x10\n");
        let v: Vec<&Scalar> = d.sysctl.0.iter().map(|(_, v)| &v.value).collect();
        assert_eq!(
            v,
            [
                &Scalar::Int(1),
                &Scalar::Bool(true),
                &Scalar::Str("x  y".into()),
                &Scalar::Float(1.5),
                &Scalar::Null,
                &Scalar::Int(16)
            ]
        );
    }

    #[test]
    fn route_items_and_flow_items() {
        let d = parse(
            "routes:\n  - { to: default, via: 192.168.1.1, dev: eth0, table: wrt }\n  - to: 10.0.0.0/8\n    type: blackhole\n",
        );
        let routes = d.routes.expect("routes");
        assert_eq!(routes.len(), 2);
        assert_eq!(
            routes[0].value.table.as_ref().map(|t| &t.value),
            Some(&Scalar::Str("wrt".into()))
        );
        assert_eq!(
            routes[1].value.kind.as_ref().map(|t| t.value.as_str()),
            Some("blackhole")
        );
        assert_eq!(routes[1].referenced.line(), 3);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = serde_saphyr::from_str::<Document>(
            "links:\n  br0:\n    kind: bridge\n    adresses: []\n",
        )
        .expect_err("unknown key");
        let loc = err.location().expect("location");
        assert_eq!((loc.line(), loc.column()), (4, 5));
    }
}
