//! The desired state: reading the YAML files, checking them, and turning them into the shared
//! [`State`] model that the planners diff against the observed state.
//!
//! Loading is host-independent (no kernel or passwd access), so `validate` gives the same
//! answer on a laptop as on the target. What only the target can answer (does user `tom`
//! exist, is there an `eth0`) comes back as [`HostCheck`]s for the caller to resolve.
//!
//! Every problem is reported as a [`Diagnostic`] naming file, line and column; loading
//! collects all of them instead of stopping at the first, so one `validate` run shows
//! everything to fix. A structural error (syntax, unknown key, wrong type) stops the parse of
//! its own file only; the other files are still checked.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use reconcilers::model::State;

mod dhcp;
mod document;
mod load;
mod providers;
mod render;
mod to_state;
mod validate;

pub use render::{render_object, render_state};

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

/// A fact the desired state relies on that only the target host can confirm. `validate` is
/// host-independent, so these are handed to the caller instead of being errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostCheck {
    /// A tap owner given by name must be a user on the host.
    User {
        /// The user name.
        name: String,
        /// Where it is written; the message says what is needed.
        at: Diagnostic,
    },
    /// A tap group given by name must be a group on the host.
    Group {
        /// The group name.
        name: String,
        /// Where it is written; the message says what is needed.
        at: Diagnostic,
    },
    /// An `external` link is never created, so it must already exist.
    ExternalLink {
        /// The interface name.
        name: String,
        /// Where it is declared; the message says what is needed.
        at: Diagnostic,
    },
    /// A program netconverge runs to apply part of the state (`nft` for the nftables
    /// tables) must be installed.
    Program {
        /// The program's name, looked up in `$PATH` and the sbin directories.
        name: String,
        /// The Debian package that provides it.
        package: String,
        /// The section that needs it; the message says what to install.
        at: Diagnostic,
    },
}

impl HostCheck {
    /// The position and the sentence to show when the check fails.
    pub fn at(&self) -> &Diagnostic {
        match self {
            HostCheck::User { at, .. }
            | HostCheck::Group { at, .. }
            | HostCheck::ExternalLink { at, .. }
            | HostCheck::Program { at, .. } => at,
        }
    }
}

/// A loaded, checked desired state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// The canonical state; tap owners and groups may still be `Ident::Name` (resolving them
    /// needs the host).
    pub state: State,
    /// The user's table names (never main/local/default), for printing ids back as names.
    pub tables: BTreeMap<String, u32>,
    /// The rtnetlink protocol that marks netconverge's routes and rules.
    pub protocol: u8,
    /// What the host must provide for this state to apply.
    pub host_checks: Vec<HostCheck>,
    /// The provider sections, already expanded into `state`; kept for `optional` providers,
    /// which the host decides about (`skip_unavailable_providers`).
    pub providers: reconcilers::providers::Providers,
    /// The files read, in merge order.
    pub files: Vec<PathBuf>,
    /// From a `show` snapshot's `managed:` section: the objects that carried netconverge's
    /// marks, as `"<kind> <id>"`. `None` when the files have no such section.
    pub managed: Option<std::collections::BTreeSet<String>>,
}

impl Desired {
    /// This state read as the observed side of a plan, for `check --observed SNAPSHOT`.
    ///
    /// `show` writes which objects carry netconverge's marks in a `managed:` section; those
    /// are marked owned, everything else is foreign (as on the live host). A snapshot without
    /// the section (hand-written, or from elsewhere) is read as a host netconverge manages
    /// entirely: everything is owned, so anything the desired state lacks shows as drift.
    pub fn observed_state(&self) -> State {
        let mut s = self.state.clone();
        let owned = |kind: &str, id: &str| {
            self.managed
                .as_ref()
                .is_none_or(|m| m.contains(&format!("{kind} {id}")))
        };
        for l in s.links.values_mut() {
            l.owned = owned("link", &l.name);
        }
        // On links netconverge created every address is its own (`show` lists only the others).
        let owned_links: std::collections::BTreeSet<String> = s
            .links
            .values()
            .filter(|l| l.owned)
            .map(|l| l.name.clone())
            .collect();
        for a in s.addresses.values_mut() {
            a.owned = owned_links.contains(&a.link)
                || owned("address", &reconcilers::addresses::id(&a.link, &a.address));
        }
        for r in s.routes.values_mut() {
            r.owned = owned("route", &reconcilers::routes::id(r));
        }
        for r in s.rules.values_mut() {
            r.owned = owned("rule", &reconcilers::rules::id(r));
        }
        s
    }
}

/// Load a file, or every `*.yaml`/`*.yml` file of a directory in name order (dot-files are
/// skipped: editors leave them behind), and merge them. An empty directory gives an empty
/// state; refusing to apply that is the caller's decision (`--allow-empty`).
pub fn load_path(path: &Path) -> Result<Desired, Diagnostics> {
    load::load_path(path)
}

/// Load one document held in memory (stdin, tests); `file` is the name used in messages.
pub fn load_str(src: &str, file: &Path) -> Result<Desired, Diagnostics> {
    load::load_sources(vec![(file.to_path_buf(), Ok(src.to_owned()))])
}
