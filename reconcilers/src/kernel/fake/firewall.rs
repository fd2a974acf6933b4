//! An in-memory nft for the fake kernel: loads the scripts netconverge sends (`add table`,
//! `delete table`, table blocks, `add element`) as one transaction each, and lists the tables
//! as the text they were loaded with.
//!
//! Real nft prints its own canonical form; the fake prints the loaded text back unchanged,
//! which is one of the forms the digest scheme must cope with. It understands netconverge's
//! statements and nothing else: anything unexpected is an error, so a malformed script fails
//! the tests instead of passing silently.

use std::collections::BTreeMap;

use crate::error::KernelError;
use crate::firewall::TABLE;
use crate::model::firewall::ID;

/// The families netconverge's tables exist in, in listing order.
const FAMILIES: [&str; 2] = ["inet", "bridge"];

/// netconverge's nftables tables, as `nft list table FAMILY netconverge` would print them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FakeNft {
    /// The listing of each existing table, by family (`inet`, `bridge`). Tests may edit it to
    /// play a change made behind netconverge's back.
    pub tables: BTreeMap<String, String>,
}

impl FakeNft {
    /// Both tables' listings, inet first; `None` when neither exists.
    pub fn listing(&self) -> Option<String> {
        let text: String = FAMILIES
            .iter()
            .filter_map(|f| self.tables.get(*f))
            .map(String::as_str)
            .collect();
        (!self.tables.is_empty()).then_some(text)
    }

    /// Run `script` as `nft -f` would: every statement or none.
    pub fn load(&mut self, script: &str) -> Result<(), KernelError> {
        let mut tables = self.tables.clone();
        let mut lines = script.lines();
        while let Some(line) = lines.next() {
            let t = line.trim();
            if t.is_empty() {
                continue;
            }
            if let Some(rest) = t.strip_prefix("add table ") {
                let family = family(rest)?;
                tables
                    .entry(family.to_string())
                    .or_insert_with(|| format!("table {family} {TABLE} {{\n}}\n"));
            } else if let Some(rest) = t.strip_prefix("delete table ") {
                if tables.remove(family(rest)?).is_none() {
                    return Err(refused(libc::ENOENT, format!("no such table: {t}")));
                }
            } else if let Some(rest) = t.strip_prefix("table ").and_then(|r| r.strip_suffix(" {")) {
                let family = family(rest)?;
                let block = block(line, &mut lines)?;
                let empty = format!("table {family} {TABLE} {{\n}}\n");
                match tables.get(family) {
                    // The fake only fills fresh tables; netconverge's scripts delete first.
                    Some(old) if *old != empty => {
                        return Err(refused(libc::EEXIST, format!("table {family} exists")))
                    }
                    _ => tables.insert(family.to_string(), block),
                };
            } else if let Some(rest) = t.strip_prefix("add element ") {
                add_element(&mut tables, rest)?;
            } else {
                return Err(refused(libc::EINVAL, format!("unexpected statement: {t}")));
            }
        }
        self.tables = tables;
        Ok(())
    }
}

/// The family of `FAMILY netconverge`; other tables are none of the fake's business.
fn family(table: &str) -> Result<&str, KernelError> {
    match table.split_once(' ') {
        Some((f, name)) if name == TABLE && FAMILIES.contains(&f) => Ok(f),
        _ => Err(refused(
            libc::EINVAL,
            format!("not one of netconverge's tables: {table}"),
        )),
    }
}

/// A table block from its first line up to the `}` that closes it (at the start of a line).
fn block<'a>(
    first: &str,
    lines: &mut impl Iterator<Item = &'a str>,
) -> Result<String, KernelError> {
    let mut out = format!("{first}\n");
    for line in lines {
        out.push_str(line);
        out.push('\n');
        if line == "}" {
            return Ok(out);
        }
    }
    Err(refused(libc::EINVAL, "a table block is not closed".into()))
}

/// `inet netconverge SET { MAC }`: the MAC goes into the set's `elements` line.
fn add_element(tables: &mut BTreeMap<String, String>, rest: &str) -> Result<(), KernelError> {
    let bad = || refused(libc::EINVAL, format!("unexpected element: {rest}"));
    let (table, tail) = rest.split_once(" {").ok_or_else(bad)?;
    let (table, set) = table.rsplit_once(' ').ok_or_else(bad)?;
    let element = tail.trim().strip_suffix('}').ok_or_else(bad)?.trim();
    let family = family(table)?;
    let text = tables
        .get_mut(family)
        .ok_or_else(|| refused(libc::ENOENT, format!("no such table: {table}")))?;
    let head = format!("\tset {set} {{\n");
    let start = text
        .find(&head)
        .ok_or_else(|| refused(libc::ENOENT, format!("no such set: {set}")))?;
    let end = start + text[start..].find("\t}\n").ok_or_else(bad)?;
    text.insert_str(end, &format!("\t\telements = {{ {element} }}\n"));
    Ok(())
}

/// nft's refusal, reported as the real kernel reports a failed load.
fn refused(errno: i32, why: String) -> KernelError {
    KernelError::new("load", format!("nftables table {ID}"), Some(errno)).with_hint(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULESET: &str = "table inet netconverge {\n\tset gw_1 {\n\t\ttype ether_addr\n\t}\n}\n";

    #[test]
    fn scripts_load_as_one_transaction() {
        let mut nft = FakeNft::default();
        assert_eq!(nft.listing(), None);
        let script = format!(
            "add table inet netconverge\ndelete table inet netconverge\n{RULESET}add element inet netconverge gw_1 {{ 52:54:00:00:00:01 }}\n"
        );
        nft.load(&script).unwrap();
        assert_eq!(
            nft.listing().unwrap(),
            "table inet netconverge {\n\tset gw_1 {\n\t\ttype ether_addr\n\t\telements = { 52:54:00:00:00:01 }\n\t}\n}\n"
        );
        // A failing statement leaves everything as it was.
        let before = nft.clone();
        let err = nft
            .load("delete table inet netconverge\ndelete table bridge netconverge\n")
            .unwrap_err();
        assert_eq!(err.errno, Some(libc::ENOENT));
        assert_eq!(nft, before);
        assert!(nft.load("flush ruleset\n").is_err());
        assert!(nft.load("add table inet filter\n").is_err());
    }
}
