//! Shorewall's variables: the simple `NAME=value` assignments of `params` and
//! `shorewall.conf`, `$NAME`/`${NAME}` expansion, and the `?IF` expressions on them.

use std::collections::BTreeMap;
use std::path::Path;

use super::report::{At, Findings};

/// The variables known to the import, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vars(pub BTreeMap<String, String>);

/// A shell word made of letters, digits and `_`, not starting with a digit.
fn is_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Vars {
    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Expand `$NAME` and `${NAME}` in `word`; `Err(NAME)` for a variable that is not set.
    pub fn expand(&self, word: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = word;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let (name, tail) = match after.strip_prefix('{') {
                Some(b) => match b.split_once('}') {
                    Some((n, t)) => (n, t),
                    None => return Err(after.to_string()),
                },
                None => {
                    let end = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            if name.is_empty() {
                out.push('$');
            } else {
                out.push_str(self.get(name).ok_or_else(|| name.to_string())?);
            }
            rest = tail;
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Read the assignments of a `params`-style file into the variables; lines that are shell
    /// code rather than a plain assignment are reported (what they set stays unknown).
    pub fn read_assignments(&mut self, path: &Path, text: &str, findings: &mut Findings) {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line).trim();
            match self.assignment(line) {
                Some((name, value)) => {
                    self.0.insert(name, value);
                }
                None => findings.push(
                    At::new(path, i + 1),
                    false,
                    "not a plain NAME=value assignment: shell code that import does not run (variables it sets stay unknown)".into(),
                ),
            }
        }
    }

    /// `NAME=value`, `NAME="value $X"`, `NAME='value'`, with a trailing comment.
    fn assignment(&self, line: &str) -> Option<(String, String)> {
        let (name, value) = line.split_once('=')?;
        if !is_name(name) {
            return None;
        }
        let value = value.trim();
        let value = if let Some(v) = value.strip_prefix('\'') {
            v.split_once('\'')?.0.to_string()
        } else if let Some(v) = value.strip_prefix('"') {
            let inner = v.split_once('"')?.0;
            if inner.contains(['`', '\\']) || inner.contains("$(") {
                return None;
            }
            self.expand(inner).ok()?
        } else {
            let v = value.split_once(" #").map_or(value, |(v, _)| v).trim();
            if v.contains(|c: char| c.is_whitespace() || "`\\;|&()<>\"'".contains(c)) {
                return None;
            }
            self.expand(v).ok()?
        };
        Some((name.to_string(), value))
    }

    /// A `?IF` expression: `[!] $VAR`, `$VAR == value`, `$VAR != value`, `__IPV4`,
    /// `__IPV6`, `0`, `1`. `None` when it cannot be decided.
    pub fn condition(&self, expr: &str) -> Option<bool> {
        let expr = expr.trim();
        if let Some(inner) = expr.strip_prefix('!') {
            return self.condition(inner).map(|v| !v);
        }
        for (op, equal) in [("==", true), ("!=", false), ("eq", true), ("ne", false)] {
            let parts: Vec<&str> = expr.split(&format!(" {op} ")).collect();
            if let [a, b] = parts.as_slice() {
                let same = self.operand(a)? == self.operand(b)?;
                return Some(same == equal);
            }
        }
        if expr.contains(char::is_whitespace) {
            return None;
        }
        match expr {
            "__IPV4" | "1" => Some(true),
            "__IPV6" | "0" => Some(false),
            _ => {
                let v = self.operand(expr)?;
                Some(!(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("no")))
            }
        }
    }

    /// A `?IF` operand: a variable (set, or it cannot be decided) or a literal.
    fn operand(&self, s: &str) -> Option<String> {
        let s = s.trim();
        if let Some(name) = s.strip_prefix('$') {
            let name = name.trim_start_matches('{').trim_end_matches('}');
            return self.get(name).map(str::to_string);
        }
        if let Some(q) = s.strip_prefix('\'').and_then(|q| q.strip_suffix('\'')) {
            return Some(q.to_string());
        }
        if let Some(q) = s.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
            return Some(q.to_string());
        }
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c))
            .then(|| s.to_string())
            .filter(|s| !s.starts_with("__"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> (Vars, Findings) {
        let mut v = Vars::default();
        let mut f = Findings::default();
        v.read_assignments(Path::new("params"), text, &mut f);
        (v, f)
    }

    #[test]
    fn assignments_and_expansion() {
        let (v, f) = vars("A=eth0\nexport B=\"$A:1\"\nC='${A}x'\nD=$(hostname)\n# comment\n");
        assert_eq!(v.get("A"), Some("eth0"));
        assert_eq!(v.get("B"), Some("eth0:1"));
        assert_eq!(v.get("C"), Some("${A}x"), "single quotes do not expand");
        assert_eq!(v.get("D"), None);
        assert_eq!(f.0.len(), 1, "{f:?}");
        assert_eq!(f.0[0].at.line, 4);
        assert_eq!(v.expand("${A}.5:$B-x"), Ok("eth0.5:eth0:1-x".into()));
        assert_eq!(v.expand("$NOPE"), Err("NOPE".into()));
        assert_eq!(v.expand("a$"), Ok("a$".into()));
    }

    #[test]
    fn conditions() {
        let (v, _) = vars("Y=Yes\nN=No\nZ=0\nE=\nS=eth0\n");
        assert_eq!(v.condition("$Y"), Some(true));
        assert_eq!(v.condition("! $Y"), Some(false));
        for falsy in ["$N", "$Z", "$E", "__IPV6", "0"] {
            assert_eq!(v.condition(falsy), Some(false), "{falsy}");
        }
        assert_eq!(v.condition("$S == eth0"), Some(true));
        assert_eq!(v.condition("$S != 'eth0'"), Some(false));
        assert_eq!(v.condition("$S eq \"eth1\""), Some(false));
        assert_eq!(v.condition("$UNSET"), None);
        assert_eq!(v.condition("$S == $UNSET"), None);
        assert_eq!(v.condition("__CAPABILITY"), None);
        assert_eq!(v.condition("$A && $B"), None);
    }
}
