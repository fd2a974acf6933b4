//! Man pages and shell completions, generated from the clap definitions of [`crate::cli`], so
//! that `--help`, the pages and the completions never disagree (`netconverge man DIR`,
//! `netconverge completions SHELL`; the Debian package is built from their output).
//!
//! The file format's page, `netconverge.yaml(5)`, is written by hand (`docs/netconverge.yaml.5`):
//! it documents YAML, which clap knows nothing about.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::pass::Failure;

/// The section of every generated page: system administration commands.
pub const SECTION: &str = "8";

/// The hand-written page of the file format, installed beside the generated ones.
const FORMAT_PAGE: (&str, &str) = (
    "netconverge.yaml.5",
    include_str!("../docs/netconverge.yaml.5"),
);

/// Write `netconverge.8`, one `netconverge-COMMAND.8` per visible subcommand and
/// `netconverge.yaml.5` into `dir` (created if missing); returns the files written.
pub fn write_pages(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let io =
        |e: std::io::Error| Failure::Message(format!("cannot write to {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = vec![(cmd.clone(), see_also(None))];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push((sub.clone(), see_also(Some(sub.get_name()))));
    }
    let mut written = Vec::new();
    for (cmd, footer) in pages {
        let man = clap_mangen::Man::new(cmd)
            .section(SECTION)
            .manual("System Administration")
            .source(format!("netconverge {}", env!("CARGO_PKG_VERSION")));
        let path = dir.join(man.get_filename());
        let mut file = std::fs::File::create(&path).map_err(io)?;
        man.render(&mut file).map_err(io)?;
        file.write_all(footer.as_bytes()).map_err(io)?;
        written.push(path);
    }
    let path = dir.join(FORMAT_PAGE.0);
    std::fs::write(&path, FORMAT_PAGE.1).map_err(io)?;
    written.push(path);
    Ok(written)
}

/// The SEE ALSO section: the other pages, and the README for what a page cannot hold.
fn see_also(subcommand: Option<&str>) -> String {
    let mut refs = vec![r"\fBnetconverge.yaml\fR(5)".to_string()];
    if subcommand.is_some() {
        refs.insert(0, format!(r"\fBnetconverge\fR({SECTION})"));
    }
    refs.push(r"\fBip\fR(8)".into());
    refs.push(r"\fBsystemd.service\fR(5)".into());
    format!(
        ".SH \"SEE ALSO\"\n{}\n.PP\nThe README (/usr/share/doc/netconverge/README.md) explains \
         each feature at length.\n",
        refs.join(",\n")
    )
}

/// Print the completion script for `shell` on `out`.
pub fn write_completions(shell: Shell, out: &mut dyn Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "netconverge", out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_visible_subcommand_plus_the_command_and_the_format() {
        let dir = std::env::temp_dir().join(format!("nc-man-{}", std::process::id()));
        let written = write_pages(&dir).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"netconverge.8".to_string()), "{names:?}");
        assert!(
            names.contains(&"netconverge-watch.8".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"netconverge.yaml.5".to_string()),
            "{names:?}"
        );
        // The guardian is internal (hidden), and so is clap's `help`.
        assert!(!names
            .iter()
            .any(|n| n.contains("guardian") || n.contains("help")));
        let visible = Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .count();
        assert_eq!(names.len(), visible + 2);
        let watch = std::fs::read_to_string(dir.join("netconverge-watch.8")).unwrap();
        assert!(watch.starts_with(".ie"), "a roff page: {}", &watch[..40]);
        assert!(watch.contains(r#".TH netconverge-watch 8"#), "{watch}");
        assert!(watch.contains("debounce") && watch.contains("SEE ALSO"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn completions_name_the_subcommands_in_each_shell() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            write_completions(shell, &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.contains("reconcile") && text.contains("dry-run"),
                "{shell}: {text}"
            );
        }
    }
}
