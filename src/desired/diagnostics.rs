//! Positions and diagnostics: where a value was written, the collector that gathers every
//! problem of a load with its place, and "did you mean" suggestions for misspelt words.

use std::fmt;
use std::path::PathBuf;

use serde_saphyr::{Location, Spanned};

use super::values::Invalid;

/// One problem found in the desired state, pointing at the offending value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line; 0 when the problem concerns the whole file (it cannot be read).
    pub line: u32,
    /// 1-based column; 0 together with `line`.
    pub column: u32,
    /// A plain sentence saying what is wrong and, where possible, how to fix it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// All problems found in one load, in file and position order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

// ---------------------------------------------------------------------------------------------
// Positions and the diagnostics collector

/// A position in one of the loaded files (an index into the file list), so diagnostics can be
/// sorted in file order and other places can be named in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Pos {
    pub file: usize,
    pub line: u32,
    pub column: u32,
}

impl Pos {
    /// Where a value is used (for an alias: the alias, which is what the user looks at).
    pub fn at(file: usize, loc: &Location) -> Pos {
        Pos {
            file,
            line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
            column: u32::try_from(loc.column()).unwrap_or(u32::MAX),
        }
    }

    /// The position of a spanned value.
    pub fn of<T>(file: usize, s: &Spanned<T>) -> Pos {
        Pos::at(file, &s.referenced)
    }

    /// The whole file (no position known).
    pub fn file(file: usize) -> Pos {
        Pos {
            file,
            line: 0,
            column: 0,
        }
    }
}

/// Collects diagnostics for one load.
pub(crate) struct Ctx {
    pub files: Vec<PathBuf>,
    diags: Vec<(Pos, Diagnostic)>,
    /// False when some file could not be parsed: then "X is not declared" checks are skipped,
    /// since X may well be declared in the broken file and the user would chase ghosts.
    pub complete: bool,
}

impl Ctx {
    pub fn new(files: Vec<PathBuf>) -> Ctx {
        Ctx {
            files,
            diags: Vec::new(),
            complete: true,
        }
    }

    /// A diagnostic at `pos` (not recorded).
    pub fn diag(&self, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.files.get(pos.file).cloned().unwrap_or_default(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }

    /// Record an error at `pos`.
    pub fn err(&mut self, pos: Pos, message: impl Into<String>) {
        let d = self.diag(pos, message);
        self.diags.push((pos, d));
    }

    /// Record the error of `r`, if any, and pass its value on.
    pub fn check<T>(&mut self, pos: Pos, r: Result<T, Invalid>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(m) => {
                self.err(pos, m.0);
                None
            }
        }
    }

    /// How many errors so far; conversions compare before/after to drop a broken object.
    pub fn count(&self) -> usize {
        self.diags.len()
    }

    /// `file:line:col` of a position, for messages that name a second place.
    pub fn place(&self, pos: Pos) -> String {
        let file = self
            .files
            .get(pos.file)
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        if pos.line == 0 {
            file
        } else {
            format!("{file}:{}:{}", pos.line, pos.column)
        }
    }

    /// The diagnostics in file and position order, without repeats.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.diags.sort_by_key(|a| a.0);
        self.diags.dedup();
        self.diags.into_iter().map(|(_, d)| d).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Suggestions

/// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions, so `wtr`
/// is one edit from `wrt`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `word`, if close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `; did you mean `x`?` or nothing.
pub(crate) fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(word, candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("adresses", ["kind", "addresses", "master"]),
            Some("addresses")
        );
        assert_eq!(did_you_mean("wtr", ["wrt", "fw"]), Some("wrt"));
        assert_eq!(did_you_mean("brige", ["bridge", "tap"]), Some("bridge"));
        assert_eq!(did_you_mean("zzzzzz", ["bridge", "tap"]), None);
        assert_eq!(did_you_mean("MTU", ["mtu", "mac"]), Some("mtu"));
    }
}
