//! Reading and parsing the desired-state files, and merging them into one set of declarations.
//!
//! Each file is parsed twice: first into `IgnoredAny`, which walks every node (so budgets stop
//! an alias bomb or absurd nesting wherever it sits, and a syntax error anywhere is reported),
//! then into the typed [`Document`]. Config files are small, so the second pass costs nothing
//! that matters, and the typed schema alone would stop at the first unknown key before the
//! budget saw the rest of the file.

use std::fs;
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{DefaultMessageFormatter, Error, MessageFormatter, Spanned};

use super::convert;
use super::diagnostics::{suggest, Ctx, Diagnostic, Diagnostics, Pos};
use super::document::Document;
use super::links::LinkDoc;
use super::owner::OwnerDoc;
use super::routes::RouteItems;
use super::rules::RuleDoc;
use super::yaml::Scalar;
use super::Desired;

/// The largest file read; a network configuration is a few kilobytes, so anything near this is
/// a mistake (or an attack) rather than a configuration.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Parser limits. Generous for any real network configuration (thousands of links), tight
/// enough that hostile YAML fails fast.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 1_000_000,
            max_nodes: 200_000,
            max_depth: 32,
            max_documents: 1,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_total_scalar_bytes: 16 << 20,
            max_merge_keys: 1_000,
        },
        // `0755` stays the text the user wrote (sysctl values), instead of becoming a float.
        leading_zero_numbers_as_strings: true,
    }
}

/// All declarations of all files, each with the index of its file.
#[derive(Default)]
pub(crate) struct Merged {
    pub owner: Option<(usize, Spanned<OwnerDoc>)>,
    pub tables: Vec<(usize, Spanned<String>, Spanned<i64>)>,
    pub sysctl: Vec<(usize, Spanned<String>, Spanned<Scalar>)>,
    pub links: Vec<(usize, Spanned<String>, LinkDoc)>,
    pub routes: Vec<(usize, RouteItems)>,
    pub rules: Vec<(usize, Spanned<RuleDoc>)>,
    /// `providers:`, `provider_options:`, `route_rules:`, `masquerade:`, `marks:`.
    pub providers: super::providers::Sections,
    /// `dhcp:` entries by bridge (see `dhcp.rs`).
    pub dhcp: super::dhcp::DhcpEntries,
    /// `managed:` ids of all files, `None` when no file has the section.
    pub managed: Option<std::collections::BTreeSet<reconcilers::model::object::ObjectRef>>,
}

/// A file's text, or why it could not be read.
type Source = (PathBuf, Result<String, ReadError>);

pub(crate) fn load_path(path: &Path) -> Result<Desired, Diagnostics> {
    let fail = |message: String| {
        Err(Diagnostics(vec![Diagnostic {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message,
        }]))
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return fail(format!("cannot read the desired state: {e}")),
    };
    if !meta.is_dir() {
        return load_sources(vec![(path.to_path_buf(), read(path))]);
    }
    let entries = match fs::read_dir(path) {
        Ok(e) => e,
        Err(e) => return fail(format!("cannot list the directory: {e}")),
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => return fail(format!("cannot list the directory: {e}")),
        };
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let p = entry.path();
        // Follows symlinks: a link to a file is a file.
        if p.is_file() {
            files.push(p);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let sources = files
        .into_iter()
        .map(|p| {
            let text = read(&p);
            (p, text)
        })
        .collect();
    load_sources(sources)
}

/// Why a desired-state file could not be read as text.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The file system refused.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// Larger than any configuration.
    #[error("the file is {0} bytes; a desired-state file may be at most {MAX_FILE_BYTES}")]
    TooLarge(u64),
    /// Not text.
    #[error("the file is not UTF-8 text (invalid byte at offset {0})")]
    NotUtf8(usize),
}

/// The name standard input has in messages (`-d -`).
pub(crate) const STDIN_NAME: &str = "<stdin>";

/// Load the desired state from standard input (`-d -`), with the same cap as a file.
pub(crate) fn load_stdin() -> Result<Desired, Diagnostics> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let text = std::io::stdin()
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)
        .and_then(|n| match n as u64 > MAX_FILE_BYTES {
            true => Err(ReadError::TooLarge(n as u64)),
            false => String::from_utf8(bytes)
                .map_err(|e| ReadError::NotUtf8(e.utf8_error().valid_up_to())),
        });
    load_sources(vec![(PathBuf::from(STDIN_NAME), text)])
}

fn read(path: &Path) -> Result<String, ReadError> {
    let meta = fs::metadata(path)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge(meta.len()));
    }
    let bytes = fs::read(path)?;
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8(e.utf8_error().valid_up_to()))
}

/// Parse, merge, convert and check; the common tail of every load. Files whose `match:`
/// does not select this host (see `host_match.rs`) are left out.
pub(crate) fn load_sources(sources: Vec<Source>) -> Result<Desired, Diagnostics> {
    load_sources_for(sources, &super::host_match::host())
}

/// [`load_sources`] as host `host` sees the files.
pub(crate) fn load_sources_for(sources: Vec<Source>, host: &str) -> Result<Desired, Diagnostics> {
    let files: Vec<PathBuf> = sources.iter().map(|(p, _)| p.clone()).collect();
    let mut ctx = Ctx::new(files.clone());
    let mut docs = Vec::new();
    let mut applying = Vec::new();
    let limits = super::budget::limits();
    let (mut bytes, mut objects) = (0u64, 0u64);
    for (i, (_, text)) in sources.into_iter().enumerate() {
        // The budgets across files: the input is refused at the file that crosses one, before
        // that file is parsed (bytes) or before the next one is (objects).
        if let Ok(t) = &text {
            bytes += t.len() as u64;
            if bytes > limits.max_bytes {
                ctx.err(Pos::file(i), format!(
                    "the desired state exceeds {} bytes over its files (at this file); raise --max-input-size if that is meant",
                    limits.max_bytes
                ));
                ctx.complete = false;
                break;
            }
        }
        let (doc, errors) = match text {
            Ok(t) => parse_all(&t, i),
            Err(e) => (None, vec![(Pos::file(i), e.to_string())]),
        };
        if !errors.is_empty() {
            // What the file declares in the entries that failed is unknown: "X is not
            // declared" checks are off, the other checks run over what did parse.
            ctx.complete = false;
        }
        for (pos, message) in errors {
            ctx.err(pos, message);
        }
        if let Some(doc) = doc {
            objects += super::budget::objects(&doc);
            if objects > limits.max_objects {
                ctx.err(Pos::file(i), format!(
                    "the desired state declares more than {} objects over its files (at this file); raise --max-objects if that is meant",
                    limits.max_objects
                ));
                ctx.complete = false;
                break;
            }
            let selected = doc
                .host_match
                .as_ref()
                .is_none_or(|m| super::host_match::selects(m, i, host, &mut ctx));
            if selected {
                applying.push(files[i].clone());
                docs.push((i, doc));
            }
        }
    }
    let mut merged = merge(docs, &mut ctx);
    let managed = merged.managed.take();
    let mut converted = convert::convert(&mut merged, &mut ctx);
    convert::cross_check(&mut converted, &merged, &mut ctx);
    // The parsed documents are not needed past here; freed before the routes are moved into
    // the state.
    drop(merged);
    let diags = ctx.finish();
    if !diags.is_empty() {
        return Err(Diagnostics(diags));
    }
    Ok(Desired {
        tables: std::mem::take(&mut converted.tables),
        protocol: converted.protocol,
        host_checks: std::mem::take(&mut converted.host_checks),
        providers: std::mem::take(&mut converted.providers),
        files,
        applying,
        state: converted.into_state(),
        managed,
        health: Default::default(),
    })
}

/// The most errors reported for one file: past that, the rest is noise.
const MAX_ERRORS_PER_FILE: usize = 20;

/// Parse one file's text and report every error in it, not only the first: the typed parse
/// stops at its first error, so the entry holding it (the item of a top-level section, or
/// the section when the error is on its key) is blanked out — its lines emptied, so every
/// other position stays where it was — and the rest parsed again, until it parses or nothing
/// more can be learnt. Returns what parsed of the file (its failed entries left out) and the
/// errors. A file that parses costs one parse, as before.
fn parse_all(text: &str, file: usize) -> (Option<Document>, Vec<(Pos, String)>) {
    let mut errors: Vec<(Pos, String)> = Vec::new();
    let mut text = std::borrow::Cow::Borrowed(text);
    loop {
        let (pos, message) = match parse(&text, file) {
            Ok(doc) => return (Some(doc), errors),
            Err(e) => e,
        };
        let repeated = errors.iter().any(|(p, _)| *p == pos);
        if !repeated {
            errors.push((pos, message));
        }
        let range = (pos.line > 0 && !repeated && errors.len() < MAX_ERRORS_PER_FILE)
            .then(|| entry_lines(&text, pos.line as usize))
            .flatten();
        let Some(range) = range else {
            return (None, errors);
        };
        text = std::borrow::Cow::Owned(blank_lines(&text, range));
    }
}

/// Indentation of a line that holds YAML (not blank, not a comment).
fn indent_of(line: &str) -> Option<usize> {
    let trimmed = line.trim_start_matches(' ');
    (!trimmed.is_empty() && !trimmed.starts_with('#')).then(|| line.len() - trimmed.len())
}

/// The 0-based line range of the entry holding 1-based `line`: the item of a top-level
/// section it sits in (a `name:` key or a `- ` list item one level down), or the whole
/// section when it sits on the section's own line. `None` when no such entry is found.
fn entry_lines(text: &str, line: usize) -> Option<std::ops::Range<usize>> {
    let lines: Vec<&str> = text.lines().collect();
    let at = line.checked_sub(1)?.min(lines.len().checked_sub(1)?);
    let top = (0..=at)
        .rev()
        .find(|&i| indent_of(lines[i]) == Some(0) && !lines[i].starts_with('-'))?;
    let end_of = |start: usize, is_child: &dyn Fn(&str, usize) -> bool| {
        (start + 1..lines.len())
            .find(|&i| indent_of(lines[i]).is_some_and(|n| is_child(lines[i], n)))
            .unwrap_or(lines.len())
    };
    let section_end = end_of(top, &|l, n| n == 0 && !l.starts_with('-'));
    if at == top {
        return Some(top..section_end);
    }
    // The indentation of the section's items: that of its first line of YAML.
    let child = (top + 1..section_end).find_map(|i| indent_of(lines[i]))?;
    let starts_item = |l: &str, n: usize| n == child && (child > 0 || l.starts_with('-'));
    let item = (top + 1..=at)
        .rev()
        .find(|&i| indent_of(lines[i]).is_some_and(|n| starts_item(lines[i], n)))?;
    let item_end = end_of(item, &|l, n| n < child || starts_item(l, n)).min(section_end);
    Some(item..item_end)
}

/// `text` with the lines of `range` emptied (their line breaks kept).
fn blank_lines(text: &str, range: std::ops::Range<usize>) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if range.contains(&i) {
            out.extend(line.strip_suffix('\n').map(|_| '\n'));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Parse one file's text.
fn parse(text: &str, file: usize) -> Result<Document, (Pos, String)> {
    let fail = |e: Error| {
        let pos = e.location().map_or(Pos::file(file), |l| Pos::at(file, &l));
        (pos, message(&e))
    };
    if let Some(doc) = parse_fast(text) {
        return Ok(doc);
    }
    // The untyped walk stops an alias bomb wherever it sits, even under a key the typed parse
    // would reject first. It costs a second full parse, so it is only done when the text can
    // hold aliases at all (network configurations rarely use anchors).
    if text.contains('&') || text.contains('*') {
        serde_saphyr::from_str_with_options::<IgnoredAny>(text, options()).map_err(fail)?;
    }
    serde_saphyr::from_str_with_options::<Document>(text, options()).map_err(fail)
}

/// The file read with the `routes:` fast path (`routes/fast.rs`), or `None` when the section
/// does not have its shape or the rest of the file has any problem: then the general parser
/// reads the whole file, so errors are reported exactly as without the fast path. The rest is
/// parsed under the budgets less what the scanned items would have cost, so a file is refused
/// by the same limits either way.
fn parse_fast(text: &str) -> Option<Document> {
    let fast = super::routes::fast::scan(text)?;
    let mut opts = options();
    if let Some(b) = opts.budget.as_mut() {
        let c = &fast.counts;
        b.max_nodes = b.max_nodes.checked_sub(c.nodes)?;
        b.max_events = b.max_events.checked_sub(c.events)?;
        b.max_total_scalar_bytes = b.max_total_scalar_bytes.checked_sub(c.scalar_bytes)?;
    }
    let rest = &fast.rest;
    if rest.contains('&') || rest.contains('*') {
        serde_saphyr::from_str_with_options::<IgnoredAny>(rest, opts.clone()).ok()?;
    }
    let mut doc = serde_saphyr::from_str_with_options::<Document>(rest, opts).ok()?;
    // `routes: []` read back empty proves the scanned line is the top-level key.
    if !doc.routes.as_ref().is_some_and(Vec::is_empty) {
        return None;
    }
    doc.routes = None;
    doc.scanned_routes = Some(fast.section);
    Some(doc)
}

/// A key or word of the file as an error may quote it: only when it looks like something a
/// person writes in a netconverge file (a short word of letters, digits and `_.-/`). Anything
/// else — a line of `/etc/shadow` read through a symlinked `-d`, a token, a key — is not
/// repeated: an error message must not become a way to read a file one cannot read.
fn shown(word: &str) -> String {
    let plain = !word.is_empty()
        && word.len() <= 64
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if plain {
        format!("`{word}`")
    } else {
        "(not shown: it does not look like a netconverge key)".to_string()
    }
}

/// The parser's own text with whatever it quotes from the file left out.
fn redact_quoted(m: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    for c in m.chars() {
        match quote {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None if matches!(c, '"' | '`' | '\'') => {
                out.push(c);
                quote = Some(c);
            }
            None => out.push(c),
        }
    }
    out
}

/// Which of the parser's limits a file crossed, in words that say what to do about it. The
/// size limits are crossed by an alias bomb and by a file that is merely large (tens of
/// thousands of routes written as block mappings) alike, so the message names both.
fn budget_message(breach: &BudgetBreach) -> String {
    use BudgetBreach as B;
    match breach {
        B::Depth { .. } => format!(
            "the document exceeds the loader's safety limits ({breach:?}): it is nested deeper than any network configuration"
        ),
        B::Aliases { .. } | B::Anchors { .. } | B::AliasAnchorRatio { .. } | B::MergeKeys { .. } => format!(
            "the document exceeds the loader's safety limits ({breach:?}): aliases expand too far (an alias bomb?)"
        ),
        _ => format!(
            "the document exceeds the loader's safety limits ({breach:?}): aliases expand too far, or the file is larger than one parse may be; split it into several files, or write routes one to a line (`- {{ to: 10.1.0.0/16, via: 10.0.0.254 }}`), which is read without that limit"
        ),
    }
}

/// The parser's error as one plain sentence (its position is reported separately).
fn message(e: &Error) -> String {
    let mut inner = e;
    while let Error::AliasError { error, .. } | Error::WithSnippet { error, .. } = inner {
        inner = error;
    }
    let text = match inner {
        Error::SerdeUnknownField {
            field, expected, ..
        } => format!(
            "unknown key {}; expected one of {}{}",
            shown(field),
            expected.join(", "),
            suggest(field, expected.iter().copied())
        ),
        Error::SerdeUnknownVariant {
            variant, expected, ..
        } => format!(
            "unknown value {}; expected one of {}{}",
            shown(variant),
            expected.join(", "),
            suggest(variant, expected.iter().copied())
        ),
        Error::DuplicateMappingKey { key: Some(k), .. } => {
            format!("{} appears twice in this mapping", shown(k))
        }
        Error::DuplicateMappingKey { key: None, .. } => {
            "a key appears twice in this mapping".to_string()
        }
        Error::Budget {
            breach: BudgetBreach::Documents { .. },
            ..
        }
        | Error::MultipleDocuments { .. } => {
            "a file holds one YAML document; put `---`-separated documents in separate files"
                .to_string()
        }
        Error::Budget { breach, .. } => budget_message(breach),
        Error::InvalidScalar { ty, .. } => match *ty {
            "bool" | "boolean" => "expected true or false".to_string(),
            t if t.starts_with('i') || t.starts_with('u') => "expected a whole number".to_string(),
            t => format!("expected a value of type {t}"),
        },
        Error::SerdeMissingField { field, .. } => format!("missing key `{field}`"),
        other => {
            let m = DefaultMessageFormatter.format_message(other).into_owned();
            match m.as_str() {
                "expected mapping start" => "expected a mapping (`key: value` lines)".into(),
                "expected sequence start" => "expected a list (`- item` lines)".into(),
                "expected string scalar" => "expected a single value (a string)".into(),
                "invalid boolean" => "expected true or false".into(),
                _ => redact_quoted(&m),
            }
        }
    };
    // Keep diagnostics one line each, whatever the parser put in its text.
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Merge the documents; the same link, table, sysctl or `owner` in two files is an error
/// naming both places (within one file the parser already rejects duplicate keys).
fn merge(docs: Vec<(usize, Document)>, ctx: &mut Ctx) -> Merged {
    let mut m = Merged::default();
    for (file, doc) in docs {
        if let Some(managed) = doc.managed {
            managed.merge_into(m.managed.get_or_insert_with(Default::default));
        }
        if let Some(owner) = doc.owner {
            merge_once("owner", file, owner, &mut m.owner, ctx);
        }
        merge_named("table", file, doc.tables.0, &mut m.tables, ctx);
        merge_named("sysctl", file, doc.sysctl.0, &mut m.sysctl, ctx);
        merge_named("link", file, doc.links.0, &mut m.links, ctx);
        merge_named("dhcp for", file, doc.dhcp.0, &mut m.dhcp, ctx);
        if let Some(items) = doc.routes {
            m.routes.push((file, RouteItems::Parsed(items)));
        }
        if let Some(section) = doc.scanned_routes {
            m.routes.push((file, RouteItems::Scanned(section)));
        }
        m.rules
            .extend(doc.rules.into_iter().flatten().map(|r| (file, r)));
        m.providers.add(
            file,
            doc.providers,
            doc.provider_options,
            doc.route_rules,
            doc.masquerade,
            doc.marks,
            ctx,
        );
    }
    m
}

/// Append one file's named entries to `out`; a name an earlier file already declared is an
/// error naming both places.
pub(crate) fn merge_named<V>(
    what: &str,
    file: usize,
    entries: Vec<(Spanned<String>, V)>,
    out: &mut Vec<(usize, Spanned<String>, V)>,
    ctx: &mut Ctx,
) {
    for (name, value) in entries {
        let at = Pos::of(file, &name);
        let first = out
            .iter()
            .find(|(_, n, _)| n.value == name.value)
            .map(|(f, n, _)| Pos::of(*f, n));
        match first {
            Some(first) => ctx.err(
                at,
                format!(
                    "{what} {} is declared twice: {} and {}",
                    name.value,
                    ctx.place(first),
                    ctx.place(at)
                ),
            ),
            None => out.push((file, name, value)),
        }
    }
}

/// Keep a section that may be declared once across all files; a second one is an error
/// naming both places.
pub(crate) fn merge_once<T>(
    what: &str,
    file: usize,
    value: Spanned<T>,
    out: &mut Option<(usize, Spanned<T>)>,
    ctx: &mut Ctx,
) {
    let at = Pos::of(file, &value);
    match out {
        Some((f, first)) => {
            let first = Pos::of(*f, first);
            ctx.err(
                at,
                format!(
                    "{what} is declared twice: {} and {}",
                    ctx.place(first),
                    ctx.place(at)
                ),
            );
        }
        None => *out = Some((file, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(src: &str) -> Vec<String> {
        match load_sources(vec![(PathBuf::from("t.yaml"), Ok(src.to_owned()))]) {
            Ok(_) => Vec::new(),
            Err(d) => d.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn unknown_key_suggests() {
        let e = errs("links:\n  br0:\n    kind: bridge\n    adresses: [10.0.0.1/24]\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("t.yaml:4:5: unknown key `adresses`"),
            "{e:?}"
        );
        assert!(e[0].ends_with("did you mean `addresses`?"), "{e:?}");
    }

    /// A file that is only large is told how to split it, besides the alias bomb it may be
    /// (`tests/data/invalid/alias_bomb.yaml`); a breach only aliases make names them alone.
    #[test]
    fn a_large_file_is_told_to_split() {
        let size = budget_message(&BudgetBreach::Nodes { nodes: 200_001 });
        assert!(size.contains("split it into several files"), "{size}");
        let aliases = budget_message(&BudgetBreach::Aliases { aliases: 10_001 });
        assert!(aliases.contains("an alias bomb?"), "{aliases}");
        assert!(!aliases.contains("split"), "{aliases}");
        let depth = budget_message(&BudgetBreach::Depth { depth: 33 });
        assert!(depth.contains("nested deeper"), "{depth}");
        for m in [size, aliases, depth] {
            assert!(
                m.starts_with("the document exceeds the loader's safety limits"),
                "{m}"
            );
        }
    }

    #[test]
    fn top_level_unknown_key() {
        let e = errs("link:\n  br0: { kind: bridge }\n");
        assert!(e[0].contains("did you mean `links`?"), "{e:?}");
    }

    #[test]
    fn syntax_error_has_a_position() {
        let e = errs("links:\n  br0:\n    kind: bridge\n   mtu: 1\n");
        assert!(e[0].starts_with("t.yaml:4:4: "), "{e:?}");
    }

    #[test]
    fn bad_type_is_one_sentence() {
        let e = errs("links:\n  br0:\n    kind: bridge\n    mtu: abc\n");
        assert_eq!(e, ["t.yaml:4:10: expected a whole number"]);
        let e = errs("links:\n  br0:\n    kind: bridge\n    up: maybe\n");
        assert_eq!(e, ["t.yaml:4:9: expected true or false"]);
    }

    #[test]
    fn duplicate_key_in_one_file() {
        let e = errs("links:\n  br0: { kind: bridge }\n  br0: { kind: tap }\n");
        assert!(e[0].starts_with("t.yaml:3:3: `br0` appears twice"), "{e:?}");
    }

    #[test]
    fn several_documents_are_refused() {
        let e = errs("links: {}\n---\nlinks: {}\n");
        assert!(e[0].contains("one YAML document"), "{e:?}");
    }

    #[test]
    fn many_errors_at_once() {
        let e = errs(
            "links:\n  br0:\n    kind: bridge\n    mtu: 10\n    mac: \"01:00:00:00:00:01\"\n    addresses: [10.0.0.1]\n",
        );
        assert_eq!(e.len(), 3, "{e:?}");
    }

    #[test]
    fn two_structural_errors_in_one_file_are_two_messages() {
        let e = errs(
            "links:\n  br0:\n    kind: bridge\n    adresses: [10.0.0.1/24]\n  br1:\n    kind: bridg\n  br2:\n    kind: bridge\nroutes:\n  - to: default\n    vai: 192.0.2.1\nlinkz: {}\n",
        );
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(
            e[0].starts_with("t.yaml:4:5: unknown key `adresses`"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("t.yaml:6:11: unknown link kind `bridg`"),
            "{e:?}"
        );
        assert!(e[2].starts_with("t.yaml:11:5: unknown key `vai`"), "{e:?}");
        assert!(
            e[3].starts_with("t.yaml:12:1: unknown key `linkz`"),
            "{e:?}"
        );
    }

    #[test]
    fn a_list_at_the_sections_indentation_is_split_per_item() {
        let e = errs("routes:\n- to: default\n  vai: 192.0.2.1\n- to: 10.0.0.0/8\n  dve: eth0\n");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("t.yaml:3:3: unknown key `vai`"), "{e:?}");
        assert!(e[1].starts_with("t.yaml:5:3: unknown key `dve`"), "{e:?}");
    }

    #[test]
    fn a_syntax_error_is_reported_once_and_the_rest_still_checked() {
        let e = errs(
            "links:\n  br0:\n    kind: bridge\n   mtu: 1\n  br1:\n    kind: bridge\n    mtu: abc\n",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("t.yaml:4:4: "), "{e:?}");
        assert_eq!(e[1], "t.yaml:7:10: expected a whole number");
    }

    #[test]
    fn cross_file_checks_run_over_what_parsed() {
        let d = load_sources(vec![
            (
                PathBuf::from("a.yaml"),
                Ok("links:\n  br0:\n    kind: bridge\n    mtuu: 1\n  br1:\n    kind: bridge\n".into()),
            ),
            (
                PathBuf::from("b.yaml"),
                // br1 twice is an error whatever a.yaml's br0 was; the route's link might be
                // the br0 that failed, so it is not reported as undeclared.
                Ok("links:\n  br1:\n    kind: bridge\nroutes:\n  - to: 10.1.0.0/16\n    dev: br0\n".into()),
            ),
        ])
        .unwrap_err();
        let e: Vec<String> = d.0.iter().map(ToString::to_string).collect();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("a.yaml:4:5: unknown key `mtuu`"), "{e:?}");
        assert!(
            e[1].starts_with("b.yaml:2:3: link br1 is declared twice"),
            "{e:?}"
        );
    }

    #[test]
    fn errors_per_file_are_capped() {
        let mut src = String::from("links:\n");
        for i in 0..50 {
            src.push_str(&format!("  br{i}:\n    kind: bridge\n    mtuu: 1\n"));
        }
        assert_eq!(errs(&src).len(), MAX_ERRORS_PER_FILE);
    }

    #[test]
    fn blanking_keeps_every_other_line_in_place() {
        assert_eq!(blank_lines("a\nb\nc\n", 1..2), "a\n\nc\n");
        assert_eq!(blank_lines("a\nb", 1..2), "a\n");
        let text = "# c\nlinks:\n  br0:\n    kind: x\n\n  # c\n  br1: {}\nroutes: []\n";
        assert_eq!(entry_lines(text, 4), Some(2..6));
        assert_eq!(entry_lines(text, 7), Some(6..7));
        assert_eq!(entry_lines(text, 2), Some(1..7));
        assert_eq!(entry_lines(text, 8), Some(7..8));
        assert_eq!(entry_lines(text, 1), None);
    }

    #[test]
    fn missing_file() {
        let e = load_path(Path::new("/nonexistent/netconverge/x.yaml")).unwrap_err();
        assert_eq!(e.0[0].line, 0);
        assert!(e
            .to_string()
            .starts_with("/nonexistent/netconverge/x.yaml: cannot read"));
    }
}
