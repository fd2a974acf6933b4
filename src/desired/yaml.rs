//! YAML plumbing shared by every section: the loose scalar and the ordered, positioned
//! mapping the documents parse into, and the quoting `show` writes values with.

use std::fmt;
use std::fmt::Write as _;
use std::marker::PhantomData;
use std::net::IpAddr;

use ipnet::IpNet;
use reconcilers::model::Ident;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

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

/// A user or group as written back.
pub(crate) fn ident(i: &Ident) -> String {
    match i {
        Ident::Id(n) => n.to_string(),
        Ident::Name(s) => scalar(s),
    }
}

/// An address as written back.
pub(crate) fn addr(a: &IpAddr) -> String {
    scalar(&a.to_string())
}

/// Words a YAML parser may read as something other than a string (booleans, null, special
/// floats), in any case. Compared in place: lowercasing a copy cost an allocation per scalar
/// (3% of a 10⁶-route `validate`, with its free, where the routes fast path asks).
pub(crate) fn reserved(s: &str) -> bool {
    [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf",
    ]
    .iter()
    .any(|w| w.eq_ignore_ascii_case(s))
}

/// `s` as a YAML scalar: plain when it can only read back as the same string, else quoted.
/// Anything with `:` is quoted (IPv6 addresses, MACs), as the spec's examples write them.
pub(crate) fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !s.starts_with(['-', '.'])
        && !reserved(s)
        && (!s.starts_with(|c: char| c.is_ascii_digit())
            || s.parse::<IpAddr>().is_ok()
            || s.parse::<IpNet>().is_ok());
    if plain {
        s.to_owned()
    } else {
        quote(s)
    }
}

/// A double-quoted YAML string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(scalar("br0"), "br0");
        assert_eq!(scalar("10.0.0.1/24"), "10.0.0.1/24");
        assert_eq!(scalar("fd00:10::1/64"), "\"fd00:10::1/64\"");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("1.5"), "\"1.5\"");
        assert_eq!(scalar("0x10"), "\"0x10\"");
        assert_eq!(scalar("a b"), "\"a b\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
