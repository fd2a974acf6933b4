//! `tables:` — the user's routing table names: their declaration, how a route or rule
//! refers to a table (a name, main/default/local, or a number), and writing them back.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use reconcilers::model::{TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN};
use serde_saphyr::Spanned;

use super::diagnostics::{did_you_mean, Ctx, Pos};
use super::load::Merged;
use super::values::{ranged, Invalid};
use super::yaml::{scalar, Scalar};

/// A table name declared under `tables:`.
pub(crate) fn table_name(name: &str) -> Result<(), Invalid> {
    if matches!(name, "main" | "local" | "default" | "unspec") {
        return Err(Invalid::from(format!(
            "table name `{name}` is reserved (main, local and default are built in)"
        )));
    }
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Invalid::from(format!("`{name}` is not a valid table name")));
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return Err(Invalid::from(format!(
            "table name `{name}` is a number; a table name must contain a letter"
        )));
    }
    Ok(())
}

/// A table id declared under `tables:`.
pub(crate) fn table_id(id: i64) -> Result<u32, Invalid> {
    let id = ranged(id, 1, i64::from(u32::MAX), "table id")?;
    let id = u32::try_from(id).expect("in range");
    let which = match id {
        TABLE_DEFAULT => "default",
        TABLE_MAIN => "main",
        TABLE_LOCAL => "local",
        _ => return Ok(id),
    };
    Err(Invalid::from(format!(
        "table id {id} is reserved for the {which} table; use `{which}` where a table is named"
    )))
}

/// A table id as the user would name it.
pub(crate) fn table_label(id: u32, tables: &BTreeMap<String, u32>) -> String {
    match id {
        TABLE_MAIN => "main".into(),
        TABLE_DEFAULT => "default".into(),
        TABLE_LOCAL => "local".into(),
        _ => tables
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| id.to_string()),
    }
}

/// The declared tables, and which names were declared at all (even with a bad id), so a
/// bad declaration does not also make every use of the name an "unknown table".
pub(crate) struct Tables {
    pub ids: BTreeMap<String, u32>,
    declared: Vec<String>,
}

impl Tables {
    /// Check the declarations of all files.
    pub fn new(m: &Merged, ctx: &mut Ctx) -> Tables {
        let mut ids = BTreeMap::new();
        let mut declared = Vec::new();
        let mut by_id: BTreeMap<u32, (String, Pos)> = BTreeMap::new();
        for (file, name, id) in &m.tables {
            declared.push(name.value.clone());
            let name_ok = ctx
                .check(Pos::of(*file, name), table_name(&name.value))
                .is_some();
            let at = Pos::of(*file, id);
            let Some(n) = ctx.check(at, table_id(id.value)) else {
                continue;
            };
            if let Some((other, first)) = by_id.get(&n) {
                ctx.err(
                    at,
                    format!(
                        "table id {n} is used by both {other} ({}) and {}; each table needs its own id",
                        ctx.place(*first),
                        name.value
                    ),
                );
                continue;
            }
            by_id.insert(n, (name.value.clone(), at));
            if name_ok {
                ids.insert(name.value.clone(), n);
            }
        }
        Tables { ids, declared }
    }

    /// Resolve a table reference: a declared name, main/default (and local for rules), or a
    /// number.
    pub fn resolve(
        &self,
        file: usize,
        t: &Spanned<Scalar>,
        rule: bool,
        ctx: &mut Ctx,
    ) -> Option<u32> {
        let at = Pos::of(file, t);
        let number = match &t.value {
            Scalar::Int(n) => Some(*n),
            Scalar::Str(s) if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) => {
                s.parse::<i128>().ok()
            }
            Scalar::Str(_) => None,
            _ => {
                ctx.err(at, "table must be a name or a number");
                return None;
            }
        };
        let id = match number {
            Some(n) => {
                if n <= 0 || n > i128::from(u32::MAX) {
                    ctx.err(at, format!("table {n} is out of range (1..=4294967295)"));
                    return None;
                }
                u32::try_from(n).expect("in range")
            }
            None => {
                let Scalar::Str(name) = &t.value else {
                    unreachable!("numbers handled above")
                };
                match name.as_str() {
                    "main" => TABLE_MAIN,
                    "default" => TABLE_DEFAULT,
                    "local" => TABLE_LOCAL,
                    _ => match self.ids.get(name) {
                        Some(id) => *id,
                        None => {
                            if ctx.complete && !self.declared.contains(name) {
                                let mut names: Vec<&str> =
                                    self.ids.keys().map(String::as_str).collect();
                                names.extend(["main", "default"]);
                                if rule {
                                    names.push("local");
                                }
                                ctx.err(
                                    at,
                                    format!(
                                        "unknown table `{name}`{}",
                                        match did_you_mean(name, names) {
                                            Some(s) => format!("; did you mean `{s}`?"),
                                            None => "; declare it under `tables:`".into(),
                                        }
                                    ),
                                );
                            }
                            return None;
                        }
                    },
                }
            }
        };
        if id == TABLE_LOCAL && !rule {
            ctx.err(
                at,
                "routes cannot be put in the local table (255); the kernel manages it",
            );
            return None;
        }
        Some(id)
    }
}

/// A table as the user names it; `None` for main where that is the default.
pub(crate) fn table_ref(id: u32, tables: &BTreeMap<String, u32>) -> String {
    let label = table_label(id, tables);
    // A name is quoted where YAML needs it; a bare id stays a number.
    if label == id.to_string() {
        label
    } else {
        scalar(&label)
    }
}

/// The `tables:` section of `show`, by id; `None` when no table is named.
pub(crate) fn render_section(tables: &BTreeMap<String, u32>) -> Option<String> {
    if tables.is_empty() {
        return None;
    }
    let mut s = String::from("tables:\n");
    let mut by_id: Vec<(&String, &u32)> = tables.iter().collect();
    by_id.sort_by_key(|(name, id)| (**id, (*name).clone()));
    for (name, id) in by_id {
        let _ = writeln!(s, "  {}: {id}", scalar(name));
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables() {
        assert!(table_name("wrt").is_ok());
        assert!(table_name("main").is_err());
        assert!(table_name("101").is_err());
        assert_eq!(table_id(101), Ok(101));
        assert!(table_id(254).is_err());
        assert!(table_id(0).is_err());
        assert!(table_id(1 << 32).is_err());
        assert_eq!(table_id(i64::from(u32::MAX)), Ok(u32::MAX));
    }
}
