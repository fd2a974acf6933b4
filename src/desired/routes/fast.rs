//! A fast path for the common shape of a large `routes:` section: a top-level block list of
//! one-line flow mappings of plain scalars (`  - { to: 10.1.0.0/16, via: 10.0.0.254, dev: br0 }`).
//!
//! The general YAML parser spends about 65,000 instructions on such an item (span tracking,
//! comment handling, duplicate-key fingerprints, event queues); this scanner reads it in a few
//! hundred. It is only an optimisation and never decides anything about validity: it accepts a
//! section only when every line is of that shape with nothing it would have to interpret (no
//! quotes, comments, anchors, tags, nested collections, unknown or repeated keys, values whose
//! type is not plain), and otherwise gives up so the general parser reads the file as before.
//! The rest of the file — the section's lines blanked, `routes:` turned into `routes: []` — is
//! still parsed by the general parser (see [`crate::desired::load`]), which confirms that the
//! line really is the top-level key, and any error there sends the whole file to the general
//! parser again, so every message and position is what it was.

use serde::de::value::{Error as ValueError, MapDeserializer};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use super::RouteDoc;
use crate::desired::yaml::{reserved, Scalar};

/// A section the scanner read: the section itself, the file with the section blanked, and
/// what the items would have cost the general parser's budgets.
pub(crate) struct FastRoutes {
    /// The section, to be read again item by item when it is converted.
    pub section: Section,
    /// The file's text with `routes:` as `routes: []` and the items' lines empty, so that
    /// every other line keeps its number and columns.
    pub rest: String,
    /// What the items add up to.
    pub counts: Counts,
}

/// What a section's items would have cost the general parser.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Items.
    pub items: usize,
    /// YAML nodes (a mapping and each key and value).
    pub nodes: usize,
    /// Parser events (a mapping's start and end, each scalar).
    pub events: usize,
    /// Bytes of the scalars.
    pub scalar_bytes: usize,
}

/// The lines of a scanned `routes:` section, kept as text: an item is read again when it is
/// converted, so no parsed item is held for the whole load (at 10⁶ routes the parsed items
/// alone were about 1 KB each; the text is some 55 bytes).
#[derive(Debug)]
pub(crate) struct Section {
    text: String,
    /// The line number of the section's first line.
    first_line: usize,
    /// How many items it holds.
    pub len: usize,
}

impl Section {
    /// Call `f` with each item, in order.
    pub(crate) fn each(&self, f: impl FnMut(Spanned<RouteDoc>)) {
        let read = read_items(&self.text, self.first_line, f);
        debug_assert!(read.is_some(), "a scanned section reads again");
    }
}

/// Read the `routes:` section of `text` if it has the simple shape; `None` otherwise.
pub(crate) fn scan(text: &str) -> Option<FastRoutes> {
    if text.contains(['\r', '\t']) {
        return None;
    }
    let start = text
        .match_indices("routes:\n")
        .map(|(i, _)| i)
        .find(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n')?;
    let first_line = 2 + text[..start].bytes().filter(|&b| b == b'\n').count();
    let body_start = start + "routes:\n".len();
    let end = section_end(&text[body_start..]) + body_start;
    let body = &text[body_start..end];
    let counts = read_items(body, first_line, drop)?;
    if counts.items == 0 {
        return None;
    }
    let mut rest = String::with_capacity(text.len() - body.len() + 16);
    rest.push_str(&text[..start]);
    rest.push_str("routes: []\n");
    rest.extend(body.bytes().filter(|&b| b == b'\n').map(|_| '\n'));
    rest.push_str(&text[end..]);
    let section = Section {
        text: body.to_owned(),
        first_line,
        len: counts.items,
    };
    Some(FastRoutes {
        section,
        rest,
        counts,
    })
}

/// Where the section ends: at the first line that starts in column 1 with anything but `- `.
fn section_end(body: &str) -> usize {
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        let first = line.as_bytes().first().copied();
        if !matches!(first, None | Some(b' ' | b'\n')) && !line.starts_with("- ") {
            return offset;
        }
        offset += line.len();
    }
    offset
}

/// Read every item of a section's lines (the first being line `first_line`), calling `f`
/// with each; `None` when a line is not of the simple shape.
fn read_items(
    body: &str,
    first_line: usize,
    mut f: impl FnMut(Spanned<RouteDoc>),
) -> Option<Counts> {
    let mut counts = Counts::default();
    let mut indent: Option<usize> = None;
    for (n, line) in body.split_inclusive('\n').enumerate() {
        let content = line.strip_suffix('\n').unwrap_or(line);
        if content.trim_start_matches(' ').is_empty() {
            continue;
        }
        let spaces = content.len() - content.trim_start_matches(' ').len();
        if !content[spaces..].starts_with("- ") || *indent.get_or_insert(spaces) != spaces {
            return None;
        }
        let line_no = u32::try_from(first_line + n).ok()?;
        f(counts.item(content, spaces, line_no)?);
    }
    Some(counts)
}

impl Counts {
    /// Read one item line (`- { k: v, ... }` after `spaces` spaces).
    fn item(&mut self, line: &str, spaces: usize, line_no: u32) -> Option<Spanned<RouteDoc>> {
        let after_dash = &line[spaces + 2..];
        let brace = spaces + 2 + after_dash.len() - after_dash.trim_start_matches(' ').len();
        let inner = line[brace..].trim_end_matches(' ').strip_prefix('{')?;
        let inner = inner.strip_suffix('}')?;
        let mut doc = empty_doc();
        let mut field_start = brace + 1;
        let mut keys = 0;
        for field in inner.split(',') {
            let key_at = field.len() - field.trim_start_matches(' ').len();
            let (key, after) = field[key_at..].split_once(':')?;
            let gap = after.len() - after.trim_start_matches(' ').len();
            if gap == 0 {
                return None;
            }
            let value = after[gap..].trim_end_matches(' ');
            let value_at = field_start + key_at + key.len() + 1 + gap;
            let at = location(line_no, u32::try_from(value_at + 1).ok()?);
            set_field(&mut doc, key, value, at)?;
            self.scalar_bytes += key.len() + value.len();
            keys += 1;
            field_start += field.len() + 1;
        }
        self.items += 1;
        self.nodes += 1 + 2 * keys;
        self.events += 2 + 2 * keys;
        let at = location(line_no, u32::try_from(brace + 1).ok()?);
        Some(Spanned::new(doc, at, at))
    }
}

/// A route item with no key set.
fn empty_doc() -> RouteDoc {
    RouteDoc {
        to: None,
        via: None,
        dev: None,
        nexthops: None,
        table: None,
        metric: None,
        src: None,
        scope: None,
        onlink: None,
        kind: None,
        mtu: None,
        tos: None,
    }
}

/// Set `key` of `doc` to `value` as the general parser would type it; `None` for an unknown
/// or repeated key, or a value the scanner does not read.
fn set_field(doc: &mut RouteDoc, key: &str, value: &str, at: Location) -> Option<()> {
    fn put<T>(slot: &mut Option<Spanned<T>>, value: Option<T>, at: Location) -> Option<()> {
        if slot.is_some() {
            return None;
        }
        *slot = Some(Spanned::new(value?, at, at));
        Some(())
    }
    if !plain(value) {
        return None;
    }
    match key {
        "to" => put(&mut doc.to, word(value), at),
        "via" => put(&mut doc.via, word(value), at),
        "dev" => put(&mut doc.dev, word(value), at),
        "src" => put(&mut doc.src, word(value), at),
        "scope" => put(&mut doc.scope, word(value), at),
        "type" => put(&mut doc.kind, word(value), at),
        "table" => put(&mut doc.table, table(value), at),
        "metric" => put(&mut doc.metric, number(value), at),
        "mtu" => put(&mut doc.mtu, number(value), at),
        "tos" => put(&mut doc.tos, number(value), at),
        "onlink" => put(&mut doc.onlink, boolean(value), at),
        _ => None,
    }
}

/// Characters that cannot change how a plain scalar in a flow mapping reads: no quotes,
/// comments, anchors, aliases, tags, flow indicators, and no `:` that could start a value.
fn plain(value: &str) -> bool {
    value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !value.ends_with(':')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b':' | b'_' | b'-'))
}

/// A string field: anything plain that is not a number or a reserved word.
fn word(value: &str) -> Option<String> {
    let numeric = value.bytes().all(|b| b.is_ascii_digit());
    (!numeric && !reserved(value)).then(|| value.to_owned())
}

/// A decimal number without a leading zero (which the loader keeps as text).
fn decimal(value: &str) -> Option<i64> {
    let digits = value.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = value.len() > 1 && value.starts_with('0');
    if digits && !leading_zero {
        value.parse().ok()
    } else {
        None
    }
}

fn number(value: &str) -> Option<i64> {
    decimal(value)
}

/// A table: a number or a name.
fn table(value: &str) -> Option<Scalar> {
    if let Some(n) = decimal(value) {
        return Some(Scalar::Int(n.into()));
    }
    let name = value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    (name && !reserved(value)).then(|| Scalar::Str(value.to_owned()))
}

fn boolean(value: &str) -> Option<bool> {
    match value {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// A position as the general parser records it (`Location` has no public constructor, but
/// deserializes from its line and column).
fn location(line: u32, column: u32) -> Location {
    let fields = [("line", line), ("column", column)];
    Location::deserialize(MapDeserializer::<_, ValueError>::new(fields.into_iter()))
        .expect("a line and a column make a Location")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::desired::document::Document;

    /// Every field of an item with its position, for comparing two parses.
    fn fields(item: &Spanned<RouteDoc>) -> Vec<String> {
        fn f<T: std::fmt::Debug>(name: &str, s: &Option<Spanned<T>>) -> Option<String> {
            s.as_ref().map(|s| {
                let (l, c) = (s.referenced.line(), s.referenced.column());
                format!("{name}={:?}@{l}:{c}", s.value)
            })
        }
        let d = &item.value;
        let at = format!("@{}:{}", item.referenced.line(), item.referenced.column());
        [
            f("to", &d.to),
            f("via", &d.via),
            f("dev", &d.dev),
            f("table", &d.table),
            f("metric", &d.metric),
            f("src", &d.src),
            f("scope", &d.scope),
            f("onlink", &d.onlink),
            f("type", &d.kind),
            f("mtu", &d.mtu),
            f("tos", &d.tos),
            Some(at),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn general(text: &str) -> Option<Vec<Vec<String>>> {
        let doc: Document = serde_saphyr::from_str(text).ok()?;
        Some(doc.routes?.iter().map(fields).collect())
    }

    fn fast(text: &str) -> Option<Vec<Vec<String>>> {
        let mut items = Vec::new();
        scan(text)?.section.each(|i| items.push(fields(&i)));
        Some(items)
    }

    const KEYS: &[&str] = &[
        "to", "via", "dev", "table", "metric", "src", "scope", "onlink", "type", "mtu", "tos",
        "weight",
    ];
    const VALUES: &[&str] = &[
        "10.0.0.0/8",
        "10.0.0.254",
        "br0",
        "fd00::1/64",
        "fe80::1",
        "wrt",
        "101",
        "0",
        "010",
        "0x10",
        "true",
        "false",
        "yes",
        "null",
        "~",
        "1e3",
        "1.5",
        "-1",
        "a:b",
        "a: b",
        "link",
        "default",
        "x#y",
        "'q'",
        "\"q\"",
        "&a",
        "*a",
        "[1]",
        "{}",
        "tap-0001",
        "",
        "99999999999999999999",
    ];

    fn item() -> impl Strategy<Value = String> {
        let field =
            (0..KEYS.len(), 0..VALUES.len(), 0..3usize, 1..3usize).prop_map(|(k, v, lead, gap)| {
                format!(
                    "{}{}:{}{}",
                    " ".repeat(lead),
                    KEYS[k],
                    " ".repeat(gap),
                    VALUES[v]
                )
            });
        (prop::collection::vec(field, 0..5), 0..3usize)
            .prop_map(|(f, pad)| format!("{{{}{}}}", f.join(","), " ".repeat(pad)))
    }

    proptest! {
        /// Whenever the scanner reads a section, the general parser reads the same items with
        /// the same values and positions.
        #[test]
        fn agrees_with_the_general_parser(
            items in prop::collection::vec(item(), 1..6),
            indent in 0..3usize,
            before in prop::sample::select(vec!["", "tables: { a: 101 }\n", "# c\n\n"]),
            after in prop::sample::select(vec!["", "\n", "rules: []\n", "  x: 1\n"]),
        ) {
            let mut text = format!("{before}routes:\n");
            for i in &items {
                text.push_str(&format!("{}- {i}\n", " ".repeat(indent)));
            }
            text.push_str(after);
            if let Some(f) = fast(&text) {
                prop_assert_eq!(Some(f), general(&text), "{}", text);
            }
        }
    }

    /// Every key with every value, alone after a `to:`: where the scanner reads the item, the
    /// general parser reads the same; and it reads the plain values of every key.
    #[test]
    fn each_key_and_value_agrees() {
        let mut read = 0;
        for k in KEYS {
            for v in VALUES {
                let text = format!("routes:\n  - {{ to: 10.0.0.0/8, {k}: {v} }}\n");
                if let Some(f) = fast(&text) {
                    assert_eq!(Some(f), general(&text), "{text}");
                    read += 1;
                }
            }
        }
        assert_eq!(read, 80, "how many of the pairs the scanner reads");
    }

    #[test]
    fn reads_the_common_shape() {
        let text = "tables: { a: 101 }\nroutes:\n  - { to: 10.1.0.0/16, via: 10.0.0.254, dev: br0, table: a }\n  - {to: fd00::/64, dev: br0, metric: 10}\n\nlinks: {}\n";
        let f = scan(text).expect("fast path");
        assert_eq!(f.section.len, 2);
        assert_eq!(Some(fast(text).unwrap()), general(text));
        assert_eq!(
            f.rest, "tables: { a: 101 }\nroutes: []\n\n\n\nlinks: {}\n",
            "lines keep their numbers"
        );
        let c = f.counts;
        assert_eq!((c.items, c.nodes, c.events), (2, 9 + 7, 10 + 8));
        assert_eq!(
            c.scalar_bytes,
            "to10.1.0.0/16via10.0.0.254devbr0tablea".len() + 25
        );
    }

    #[test]
    fn leaves_other_shapes_to_the_general_parser() {
        for text in [
            "routes:\n  - to: 10.0.0.0/8\n    type: blackhole\n",
            "routes:\n  - { to: 10.0.0.0/8, type: blackhole } # why\n",
            "routes:\n  - { to: 10.0.0.0/8, to: 10.0.0.0/9 }\n",
            "routes:\n  - { to: 10.0.0.0/8, nexthops: [] }\n",
            "routes:\n  - { to: \"10.0.0.0/8\" }\n",
            "routes:\n\t- { to: 10.0.0.0/8 }\n",
            "routes:\n  - { to: 10.0.0.0/8 }\n   - { to: 10.0.0.0/9 }\n",
            "routes: []\n",
            "links: {}\n",
        ] {
            assert!(scan(text).is_none(), "{text}");
        }
    }
}
