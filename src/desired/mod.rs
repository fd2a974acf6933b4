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
use std::path::{Path, PathBuf};

use reconcilers::model::State;

mod addresses;
pub mod budget;
mod convert;
mod dhcp;
mod diagnostics;
mod document;
mod host_facts;
pub mod host_match;
mod links;
mod load;
mod managed;
mod owner;
pub mod permissions;
mod providers;
mod routes;
mod rules;
mod show;
mod sysctl;
mod tables;
mod values;
mod yaml;

pub use diagnostics::{Diagnostic, Diagnostics};
pub use host_facts::{ForHost, HostCheck};
pub use providers::HealthView;
pub use show::{render_object, render_state};

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
    /// Which providers the health checks hold down: `watch` sets it from its probes; a
    /// `check` pass with the default reads it from the kernel.
    pub health: providers::HealthView,
    /// The files that apply on this host (those whose `match:` selects it, or has none).
    pub applying: Vec<PathBuf>,
    /// From a `show` snapshot's `managed:` section: the objects that carried netconverge's
    /// marks. `None` when the files have no such section.
    pub managed: Option<std::collections::BTreeSet<reconcilers::model::object::ObjectRef>>,
}

/// Load a file, or every `*.yaml`/`*.yml` file of a directory in name order (dot-files are
/// skipped: editors leave them behind), and merge them. An empty directory gives an empty
/// state; refusing to apply that is the caller's decision (`--allow-empty`).
pub fn load_path(path: &Path) -> Result<Desired, Diagnostics> {
    load::load_path(path)
}

/// Load the desired state from standard input (`-d -`); messages name it `<stdin>`.
pub fn load_stdin() -> Result<Desired, Diagnostics> {
    load::load_stdin()
}

/// Load one document held in memory (stdin, tests); `file` is the name used in messages.
pub fn load_str(src: &str, file: &Path) -> Result<Desired, Diagnostics> {
    load::load_sources(vec![(file.to_path_buf(), Ok(src.to_owned()))])
}

#[cfg(test)]
mod tests;
