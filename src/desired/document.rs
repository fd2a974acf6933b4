//! The serde types of one desired-state YAML file, exactly as written.
//!
//! These types are deliberately loose: values that need more than a type check (addresses,
//! prefixes, names, numbers with ranges) are kept as written, with their source position, and
//! checked later in `to_state`/`validate`. That way one file yields *all* its errors instead of
//! stopping at the first bad value, and every message can name the value's line and column.
//! Numbers are read as `i64` so that out-of-range values get a sentence with the allowed range
//! instead of the parser's bare "invalid u32". Only structural problems (unknown keys, a list
//! where a mapping belongs, a syntax error) stop the parse of a file.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// One desired-state file.
///
/// The service sections (`providers` and its companions, `dhcp`) have their document types in
/// their own modules; they are expanded into the same model.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Document {
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
    /// Policy rules.
    #[serde(default)]
    pub rules: Option<Vec<Spanned<RuleDoc>>>,
    /// Shorewall-style providers and their companions (see `providers.rs`).
    #[serde(default)]
    pub providers: Entries<super::providers::ProviderDoc>,
    #[serde(default)]
    pub provider_options: Option<Spanned<super::providers::OptionsDoc>>,
    #[serde(default)]
    pub route_rules: Option<Vec<Spanned<super::providers::RouteRuleDoc>>>,
    #[serde(default)]
    pub masquerade: Option<Vec<Spanned<super::providers::MasqueradeDoc>>>,
    #[serde(default)]
    pub marks: Option<Vec<Spanned<super::providers::MarkDoc>>>,
    /// Written by `show`: which observed objects carry netconverge's ownership marks, so that
    /// `check --observed` can tell its own objects from foreign ones offline. Not desired state.
    #[serde(default)]
    pub managed: Option<ManagedDoc>,
    /// Bridge → DHCP/DNS service (dnsmasq); see `dhcp.rs`.
    #[serde(default)]
    pub dhcp: Entries<Spanned<super::dhcp::DhcpDoc>>,
}

/// `managed:` — ids as plans print them (`tap-centos`, `10.0.0.1/24 on br0`,
/// `default via 192.168.1.1 dev eth0 table 101`, `10001: from all fwmark 0x1/0xff lookup 101`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManagedDoc {
    #[serde(default)]
    pub links: Vec<String>,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub routes: Vec<String>,
    #[serde(default)]
    pub rules: Vec<String>,
}

/// `owner:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OwnerDoc {
    pub protocol: Option<Spanned<i64>>,
}

/// One entry of `links:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkDoc {
    pub kind: Option<Spanned<String>>,
    pub addresses: Option<Vec<Spanned<String>>>,
    pub master: Option<Spanned<String>>,
    pub mtu: Option<Spanned<i64>>,
    pub mac: Option<Spanned<String>>,
    pub up: Option<Spanned<bool>>,
    pub bridge: Option<Spanned<BridgeDoc>>,
    pub tap: Option<Spanned<TapDoc>>,
    pub veth: Option<Spanned<VethDoc>>,
    pub vxlan: Option<Spanned<VxlanDoc>>,
    pub macvlan: Option<Spanned<MacvlanDoc>>,
}

/// `bridge:` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BridgeDoc {
    pub stp: Option<Spanned<bool>>,
    pub forward_delay: Option<Spanned<i64>>,
}

/// `tap:` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TapDoc {
    pub owner: Option<Spanned<Scalar>>,
    pub group: Option<Spanned<Scalar>>,
    pub vnet_hdr: Option<Spanned<bool>>,
    pub multi_queue: Option<Spanned<bool>>,
}

/// `veth:` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VethDoc {
    pub peer: Option<Spanned<String>>,
}

/// `vxlan:` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VxlanDoc {
    pub id: Option<Spanned<i64>>,
    pub local: Option<Spanned<String>>,
    pub remote: Option<Spanned<String>>,
    pub dev: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
}

/// `macvlan:` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MacvlanDoc {
    pub link: Option<Spanned<String>>,
    pub mode: Option<Spanned<String>>,
}

/// One item of `routes:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteDoc {
    pub to: Option<Spanned<String>>,
    pub via: Option<Spanned<String>>,
    pub dev: Option<Spanned<String>>,
    pub nexthops: Option<Spanned<Vec<Spanned<NextHopDoc>>>>,
    pub table: Option<Spanned<Scalar>>,
    pub metric: Option<Spanned<i64>>,
    pub src: Option<Spanned<String>>,
    pub scope: Option<Spanned<String>>,
    pub onlink: Option<Spanned<bool>>,
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub mtu: Option<Spanned<i64>>,
    pub tos: Option<Spanned<i64>>,
}

/// One item of a route's `nexthops:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NextHopDoc {
    pub via: Option<Spanned<String>>,
    pub dev: Option<Spanned<String>>,
    pub weight: Option<Spanned<i64>>,
    pub onlink: Option<Spanned<bool>>,
}

/// One item of `rules:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleDoc {
    pub priority: Option<Spanned<i64>>,
    pub from: Option<Spanned<String>>,
    pub to: Option<Spanned<String>>,
    pub fwmark: Option<Spanned<Scalar>>,
    pub iif: Option<Spanned<String>>,
    pub oif: Option<Spanned<String>>,
    pub not: Option<Spanned<bool>>,
    pub table: Option<Spanned<Scalar>>,
    pub action: Option<Spanned<String>>,
    pub family: Option<Spanned<String>>,
}

/// A YAML scalar of any type, for values that may be written as a string or a bare number or
/// boolean (sysctl values, table references, tap owners, fwmarks).
///
/// A hand-written visitor rather than an untagged enum, because serde buffers untagged enums
/// and `Spanned` loses its position inside the buffer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Str(String),
    Int(i128),
    Bool(bool),
    Float(f64),
    Null,
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v.into()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Scalar, E> {
                Ok(i128::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
        }
        d.deserialize_any(V)
    }
}

/// A YAML mapping kept in source order with the position of every key.
///
/// Not a `BTreeMap<Spanned<String>, V>` because `Spanned` is not `Ord`; and the key positions are
/// what duplicate-across-files messages point at. A `null` mapping (`links:` with nothing under
/// it) reads as empty, which is what users mean by it.
#[derive(Debug)]
pub(crate) struct Entries<V>(pub Vec<(Spanned<String>, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value()?;
                    out.push((key, value));
                }
                Ok(Entries(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Entries<V>, E> {
                Ok(Entries(Vec::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Entries<V>, E> {
                Ok(Entries(Vec::new()))
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Entries<V>, D2::Error> {
                d.deserialize_map(self)
            }
        }
        d.deserialize_option(Vis(PhantomData))
    }
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
