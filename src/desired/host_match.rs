//! `match:` — host selection, so that one directory (one git repository, one ConfigMap)
//! serves many hosts: a file that begins with `match: { hostname: "ursa*" }` (a glob, or a
//! list of globs, any of which may match) applies only on the hosts whose name matches; a
//! file without `match:` applies everywhere.
//!
//! The host is the machine's hostname unless `validate --host NAME` says which host to see
//! the directory as ([`set_host`]).

use std::sync::OnceLock;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::diagnostics::{Ctx, Pos};

/// `match:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchDoc {
    /// One glob or a list of them.
    pub hostname: Spanned<Globs>,
}

/// One glob or several. (An untagged enum buffers its content, which loses inner positions:
/// errors point at the `hostname:` value.)
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Globs {
    /// `hostname: "ursa*"`.
    One(String),
    /// `hostname: ["ursa*", "lab-?"]`.
    Many(Vec<String>),
}

static HOST: OnceLock<String> = OnceLock::new();

/// See the desired state as host `name` would (for the rest of the process; the first call
/// counts).
pub fn set_host(name: &str) {
    let _ = HOST.set(name.to_string());
}

/// The host files are selected for: the one set with [`set_host`], else this machine's name.
pub fn host() -> String {
    HOST.get().cloned().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default()
    })
}

/// Does the file `file` with `match:` section `m` apply on `host`? A bad glob is an error at
/// its position (and the file is then taken as applying, so that its other errors show too).
pub(crate) fn selects(m: &Spanned<MatchDoc>, file: usize, host: &str, ctx: &mut Ctx) -> bool {
    let at = Pos::of(file, &m.value.hostname);
    let globs: Vec<&String> = match &m.value.hostname.value {
        Globs::One(g) => vec![g],
        Globs::Many(v) => v.iter().collect(),
    };
    if globs.is_empty() {
        ctx.err(
            at,
            "`match: { hostname: [] }` matches no host; give at least one glob such as \"ursa*\"",
        );
        return true;
    }
    let mut any = false;
    let mut valid = true;
    for g in globs {
        match glob::Pattern::new(g) {
            Ok(p) => any |= p.matches(host),
            Err(e) => {
                valid = false;
                ctx.err(at, format!("`{g}` is not a hostname glob: {}", e.msg));
            }
        }
    }
    any || !valid
}

#[cfg(test)]
mod tests {
    use super::super::load::load_sources_for;
    use std::path::PathBuf;

    const BR: &str = "links:\n  br0:\n    kind: bridge\n";

    fn links(files: &[(&str, &str)], host: &str) -> Result<Vec<String>, Vec<String>> {
        let sources = files
            .iter()
            .map(|(n, t)| (PathBuf::from(n), Ok(t.to_string())))
            .collect();
        match load_sources_for(sources, host) {
            Ok(d) => Ok(d.state.links.keys().cloned().collect()),
            Err(e) => Err(e.0.iter().map(|d| d.to_string()).collect()),
        }
    }

    #[test]
    fn a_file_applies_only_on_the_hosts_its_globs_match() {
        let files = [
            ("all.yaml", "links:\n  br-all:\n    kind: bridge\n"),
            (
                "ursa.yaml",
                "match: { hostname: \"ursa*\" }\nlinks:\n  br-ursa:\n    kind: bridge\n",
            ),
            (
                "lab.yaml",
                "match:\n  hostname: [\"lab-?\", \"bench\"]\nlinks:\n  br-lab:\n    kind: bridge\n",
            ),
        ];
        assert_eq!(links(&files, "ursa").unwrap(), ["br-all", "br-ursa"]);
        assert_eq!(links(&files, "ursa-2").unwrap(), ["br-all", "br-ursa"]);
        assert_eq!(links(&files, "lab-1").unwrap(), ["br-all", "br-lab"]);
        assert_eq!(links(&files, "bench").unwrap(), ["br-all", "br-lab"]);
        assert_eq!(links(&files, "lab-10").unwrap(), ["br-all"]);
        assert_eq!(links(&files, "bear").unwrap(), ["br-all"]);
    }

    #[test]
    fn a_file_for_another_host_is_not_merged_so_it_cannot_clash() {
        let a = format!("match: {{ hostname: a }}\n{BR}");
        let b = format!("match: {{ hostname: b }}\n{BR}");
        assert_eq!(
            links(&[("a.yaml", &a), ("b.yaml", &b)], "a").unwrap(),
            ["br0"]
        );
        assert!(links(&[("a.yaml", BR), ("b.yaml", BR)], "a").is_err());
    }

    #[test]
    fn a_bad_match_is_an_error_with_its_position() {
        let e = links(&[("m.yaml", "match: { hostname: \"ursa[\" }\n")], "ursa").unwrap_err();
        assert!(
            e[0].starts_with("m.yaml:1:") && e[0].contains("not a hostname glob"),
            "{e:?}"
        );
        let e = links(&[("m.yaml", "match: { hostname: [] }\n")], "x").unwrap_err();
        assert!(e[0].contains("matches no host"), "{e:?}");
        let e = links(&[("m.yaml", "match: { host: x }\n")], "x").unwrap_err();
        assert!(e[0].starts_with("m.yaml:1:"), "{e:?}");
        let e = links(&[("m.yaml", "match: { hostname: 5 }\n")], "x").unwrap_err();
        assert!(e[0].starts_with("m.yaml:1:"), "{e:?}");
    }
}
