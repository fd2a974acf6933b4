//! The invalid corpus: every file under `tests/data/invalid` starts with
//! `# expect: LINE:COL FRAGMENT`; loading it must fail with a diagnostic in that file, at that
//! position, containing that fragment.
//!
//! The alias bomb has a test of its own: it takes seconds in a debug build (the parser expands
//! it up to the loader's limits), and the conversion's mutation testing skips it by name.

use std::fs;
use std::path::{Path, PathBuf};

use crate::desired::load_path;

/// The corpus file that tests the parser's limits rather than a rule.
const ALIAS_BOMB: &str = "alias_bomb.yaml";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/invalid")
}

fn corpus() -> Vec<PathBuf> {
    let dir = dir();
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("yaml"))
        .collect();
    v.sort();
    v
}

/// The position and fragment a corpus file's first line expects.
fn expectation(path: &Path) -> (u32, u32, String) {
    let text = fs::read_to_string(path).expect("readable");
    let first = text.lines().next().unwrap_or_default();
    let spec = first.strip_prefix("# expect: ").unwrap_or_else(|| {
        panic!(
            "{}: first line must be `# expect: L:C fragment`",
            path.display()
        )
    });
    let (pos, fragment) = spec.split_once(' ').expect("position and fragment");
    let (line, col) = pos.split_once(':').expect("LINE:COL");
    (
        line.parse().expect("line"),
        col.parse().expect("col"),
        fragment.to_owned(),
    )
}

/// Why `path` does not load as its first line expects; `None` when it does.
fn failure(path: &Path) -> Option<String> {
    let (line, col, fragment) = expectation(path);
    let Err(diags) = load_path(path) else {
        return Some(format!("{}: loaded without error", path.display()));
    };
    // Display is `FILE:LINE:COL: MESSAGE`, one per line.
    for d in &diags.0 {
        let shown = d.to_string();
        assert!(shown.starts_with(&path.display().to_string()), "{shown}");
        assert!(!shown.contains('\n'), "{shown}");
        assert!(!shown.contains("<input>"), "{shown}");
    }
    let hit = diags.0.iter().any(|d| {
        d.file == path && d.line == line && d.column == col && d.message.contains(&fragment)
    });
    (!hit).then(|| {
        format!(
            "{}: expected {line}:{col} `{fragment}`, got:\n{diags}",
            path.display()
        )
    })
}

#[test]
fn invalid_corpus() {
    let files: Vec<PathBuf> = corpus()
        .into_iter()
        .filter(|p| !p.ends_with(ALIAS_BOMB))
        .collect();
    let failures: Vec<String> = files.iter().filter_map(|p| failure(p)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(files.len() >= 25, "only {} invalid files", files.len());
}

#[test]
fn alias_bomb() {
    assert_eq!(failure(&dir().join(ALIAS_BOMB)), None);
}
