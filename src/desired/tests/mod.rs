//! Root-free tests of the desired-state conversion: YAML in, the model the reconcilers are
//! given out, compared with values written here from the YAML rather than recomputed by the
//! code under test. One file per kind, like the conversion itself.
//!
//! They are unit tests of the library on purpose: cargo-mutants then builds only the
//! library's test target for each conversion mutant, not the binary and an integration test
//! besides (see `.cargo/mutants-desired.toml`).

use std::path::Path;

use super::{load_str, Desired};

mod invalid_corpus;
mod links;
mod ownership;
mod routes;
mod rules;
mod services;
mod sysctl;
mod tables;

/// The name the test documents are loaded under.
const FILE: &str = "t.yaml";

/// `yaml` loaded, or the test fails with its diagnostics.
fn load(yaml: &str) -> Desired {
    load_str(yaml, Path::new(FILE)).unwrap_or_else(|e| panic!("{e}\n---\n{yaml}"))
}

/// The diagnostics of a document that must be refused, as (line, column, message).
fn refused(yaml: &str) -> Vec<(u32, u32, String)> {
    match load_str(yaml, Path::new(FILE)) {
        Ok(d) => panic!("loaded, but must be refused:\n{yaml}\n{:?}", d.state),
        Err(e) => {
            e.0.into_iter()
                .map(|d| (d.line, d.column, d.message))
                .collect()
        }
    }
}

/// Refused with exactly the diagnostics `expected`, in order: each at its `line:column`, its
/// message starting with its text.
fn refused_at(yaml: &str, expected: &[(u32, u32, &str)]) {
    let diags = refused(yaml);
    let at: Vec<(u32, u32)> = diags.iter().map(|(l, c, _)| (*l, *c)).collect();
    let want: Vec<(u32, u32)> = expected.iter().map(|(l, c, _)| (*l, *c)).collect();
    assert_eq!(at, want, "{diags:?}\n---\n{yaml}");
    for ((_, _, m), (_, _, start)) in diags.iter().zip(expected) {
        assert!(m.starts_with(start), "`{m}` does not start with `{start}`");
    }
}

/// Refused with exactly one diagnostic, at `line:column`, whose message contains `fragment`.
fn refused_once(yaml: &str, line: u32, column: u32, fragment: &str) {
    let diags = refused(yaml);
    assert_eq!(diags.len(), 1, "{diags:?}\n---\n{yaml}");
    let (l, c, m) = &diags[0];
    assert_eq!((*l, *c), (line, column), "{m}\n---\n{yaml}");
    assert!(
        m.contains(fragment),
        "`{m}` lacks `{fragment}`\n---\n{yaml}"
    );
}
