//! What the import could not translate, each with its `file:line` and why.

use std::fmt;
use std::path::Path;

/// A place in the Shorewall configuration: `DIR/providers:3`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct At {
    /// The file, as the directory was given plus its name.
    pub file: String,
    /// The line (1-based; the first line of a continued line).
    pub line: usize,
}

impl At {
    /// `path:line`.
    pub fn new(path: &Path, line: usize) -> At {
        At {
            file: path.display().to_string(),
            line,
        }
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One thing left out or changed on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Where it was written.
    pub at: At,
    /// Does leaving it out change how packets are routed (exit status 1)?
    pub routing: bool,
    /// Why, in one sentence.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.routing {
            "not translated"
        } else {
            "note"
        };
        write!(f, "{}: {kind}: {}", self.at, self.message)
    }
}

/// Everything the import reports, in the order it was found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    /// Record one finding.
    pub fn push(&mut self, at: At, routing: bool, message: String) {
        self.0.push(Finding {
            at,
            routing,
            message,
        });
    }

    /// Something that affects routing was left out.
    pub fn routing(&self) -> bool {
        self.0.iter().any(|f| f.routing)
    }

    /// The findings as `import -o json` lists them: `[{"file","line","routing","message"}]`.
    pub fn json(&self) -> serde_json::Value {
        self.0
            .iter()
            .map(|f| {
                serde_json::json!({
                    "file": f.at.file,
                    "line": f.at.line,
                    "routing": f.routing,
                    "message": f.message,
                })
            })
            .collect()
    }
}
