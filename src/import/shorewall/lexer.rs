//! Shorewall's configuration syntax, read the way its compiler reads it: `#` comments,
//! `\` continuation lines, `INCLUDE`, `?FORMAT`, `?SECTION`, `?IF`/`?ELSIF`/`?ELSE`/`?ENDIF`
//! on variables it can resolve, and `$VAR`/`${VAR}` expansion. What it cannot follow is
//! reported with its `file:line` instead of being guessed.

use std::path::{Path, PathBuf};

use super::report::{At, Findings};
use super::vars::Vars;

/// How deep `INCLUDE`s may nest (Shorewall has no limit; a loop would never end).
const MAX_INCLUDE_DEPTH: usize = 8;

/// One configuration line: its place, its columns (`-` kept as written) and the `?FORMAT`
/// and `?SECTION` in force there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Where the line starts.
    pub at: At,
    /// The whitespace-separated columns, variables expanded.
    pub columns: Vec<String>,
    /// The `?FORMAT` in force (1 when none was given).
    pub format: u32,
    /// The `?SECTION` in force, if any.
    pub section: Option<String>,
}

impl Entry {
    /// Column `i`, with Shorewall's `-` (and a missing column) as `None`.
    pub fn col(&self, i: usize) -> Option<&str> {
        self.columns
            .get(i)
            .map(String::as_str)
            .filter(|c| *c != "-" && !c.is_empty())
    }
}

/// The state of one `?IF` block.
#[derive(Clone, Copy)]
struct Cond {
    /// Lines are taken in the current branch.
    active: bool,
    /// A branch of this block was already taken (or could not be decided).
    done: bool,
    /// The enclosing block is active.
    outer: bool,
}

/// Reads one file and what it includes into entries.
struct Lexer<'a> {
    dir: &'a Path,
    vars: &'a Vars,
    findings: &'a mut Findings,
    /// Does what this file holds affect routing (for the exit status of what is left out)?
    routing: bool,
    entries: Vec<Entry>,
    conds: Vec<Cond>,
    format: u32,
    section: Option<String>,
}

/// Lex `DIR/name`; `Ok(None)` when the file does not exist, `Err` when it cannot be read.
pub fn lex(
    dir: &Path,
    name: &str,
    vars: &Vars,
    routing: bool,
    findings: &mut Findings,
) -> Result<Option<Vec<Entry>>, std::io::Error> {
    let path = dir.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut lx = Lexer {
        dir,
        vars,
        findings,
        routing,
        entries: Vec::new(),
        conds: Vec::new(),
        format: 1,
        section: None,
    };
    lx.text(&path, &text, 0);
    if let Some(open) = lx.conds.len().checked_sub(1) {
        let at = At::new(&path, text.lines().count().max(1));
        lx.findings.push(
            at,
            routing,
            format!("{} ?IF block(s) not closed with ?ENDIF", open + 1),
        );
    }
    Ok(Some(lx.entries))
}

/// Lex a text held in memory (tests).
pub fn lex_str(path: &Path, text: &str, vars: &Vars, findings: &mut Findings) -> Vec<Entry> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut lx = Lexer {
        dir,
        vars,
        findings,
        routing: true,
        entries: Vec::new(),
        conds: Vec::new(),
        format: 1,
        section: None,
    };
    lx.text(path, text, 0);
    lx.entries
}

/// The text before a `#` comment.
fn strip_comment(line: &str) -> &str {
    line.split_once('#').map_or(line, |(before, _)| before)
}

impl Lexer<'_> {
    fn active(&self) -> bool {
        self.conds.last().is_none_or(|c| c.active)
    }

    fn text(&mut self, path: &Path, text: &str, depth: usize) {
        let mut pending: Option<(usize, String)> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = strip_comment(raw).trim_end();
            let (start, mut joined) = pending.take().unwrap_or((i + 1, String::new()));
            if let Some(head) = line.strip_suffix('\\') {
                joined.push_str(head);
                joined.push(' ');
                pending = Some((start, joined));
                continue;
            }
            joined.push_str(line);
            self.line(At::new(path, start), joined.trim(), depth);
        }
        if let Some((start, joined)) = pending {
            self.line(At::new(path, start), joined.trim(), depth);
        }
    }

    fn line(&mut self, at: At, line: &str, depth: usize) {
        if line.is_empty() {
            return;
        }
        if let Some(directive) = line.strip_prefix('?') {
            return self.directive(at, directive);
        }
        if !self.active() {
            return;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if first == "INCLUDE" {
            let rest: Vec<&str> = words.collect();
            return self.include(at, &rest.join(" "), depth);
        }
        if matches!(first, "SHELL" | "BEGIN" | "PERL" | "END") {
            let why = format!("`{first}` embeds shell or Perl code, which import cannot run");
            return self.findings.push(at, self.routing, why);
        }
        if line.contains(';') {
            let why = "the `;` alternate column syntax is not supported by import; write the columns in order";
            return self.findings.push(at, self.routing, why.to_string());
        }
        let mut columns = Vec::new();
        for word in line.split_whitespace() {
            match self.vars.expand(word) {
                Ok(w) => columns.push(w),
                Err(name) => {
                    let why = format!("${name} is not set in params or shorewall.conf (or is set by shell code import cannot run)");
                    return self.findings.push(at, self.routing, why);
                }
            }
        }
        self.entries.push(Entry {
            at,
            columns,
            format: self.format,
            section: self.section.clone(),
        });
    }

    fn include(&mut self, at: At, name: &str, depth: usize) {
        let name = match self.vars.expand(name.trim()) {
            Ok(n) if !n.is_empty() => n,
            _ => {
                let why = format!("INCLUDE `{name}`: cannot tell which file it names");
                return self.findings.push(at, self.routing, why);
            }
        };
        if depth >= MAX_INCLUDE_DEPTH {
            let why =
                format!("INCLUDE {name}: nested more than {MAX_INCLUDE_DEPTH} deep (a loop?)");
            return self.findings.push(at, self.routing, why);
        }
        let path: PathBuf = if Path::new(&name).is_absolute() {
            PathBuf::from(&name)
        } else {
            self.dir.join(&name)
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => self.text(&path, &text, depth + 1),
            Err(e) => {
                let why = format!("INCLUDE {}: {e}", path.display());
                self.findings.push(at, self.routing, why);
            }
        }
    }

    fn directive(&mut self, at: At, d: &str) {
        let (word, rest) = d.split_once(char::is_whitespace).unwrap_or((d, ""));
        let rest = rest.trim();
        match word.to_ascii_uppercase().as_str() {
            "IF" => {
                let outer = self.active();
                // An undecided condition takes neither branch of its block.
                let decided = if outer {
                    self.condition(&at, rest)
                } else {
                    Some(false)
                };
                let active = decided == Some(true);
                self.conds.push(Cond {
                    active,
                    done: active || !outer || decided.is_none(),
                    outer,
                });
            }
            "ELSIF" | "ELSE" => self.branch(at, word, rest),
            "ENDIF" => {
                if self.conds.pop().is_none() {
                    self.findings
                        .push(at, self.routing, "?ENDIF without ?IF".into());
                }
            }
            _ if !self.active() => {}
            "FORMAT" => match rest.parse() {
                Ok(n) => self.format = n,
                Err(_) => {
                    self.findings
                        .push(at, self.routing, format!("?FORMAT {rest}: not a number"))
                }
            },
            "SECTION" => self.section = Some(rest.to_ascii_uppercase()),
            "COMMENT" => {}
            "INCLUDE" => self.include(at, rest, 0),
            other => {
                let why = format!("?{other} is not supported by import (only ?IF/?ELSIF/?ELSE/?ENDIF, ?FORMAT, ?SECTION, ?COMMENT, ?INCLUDE)");
                self.findings.push(at, self.routing, why);
            }
        }
    }

    fn branch(&mut self, at: At, word: &str, rest: &str) {
        let Some(top) = self.conds.last().copied() else {
            let why = format!("?{word} without ?IF");
            return self.findings.push(at, self.routing, why);
        };
        let open = !top.done && top.outer;
        let decided = match open {
            false => Some(false),
            true if word.eq_ignore_ascii_case("ELSE") => Some(true),
            true => self.condition(&at, rest),
        };
        let take = decided == Some(true);
        let c = self.conds.last_mut().expect("checked above");
        c.active = take;
        c.done |= take || decided.is_none();
    }

    /// Evaluate a `?IF` expression; one it cannot decide is reported.
    fn condition(&mut self, at: &At, expr: &str) -> Option<bool> {
        let v = self.vars.condition(expr);
        if v.is_none() {
            let why = format!("?IF {expr}: cannot be decided from params and shorewall.conf; the whole block is left out");
            self.findings.push(at.clone(), self.routing, why);
        }
        v
    }
}
