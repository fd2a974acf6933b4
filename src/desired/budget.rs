//! Budgets across all files of a desired state: at most so many bytes of input and so many
//! objects, so that a directory of many files, each under the per-file cap, cannot make
//! `validate` or the daemon spend gigabytes (10⁶ routes over 40 files took 1.39 GB when the
//! limits were set; 0.3 GB since the routes fast path and the compact conversion).
//!
//! The limits are process-wide, set once from the command line (`--max-input-size`,
//! `--max-objects`) before anything is loaded.

use std::sync::OnceLock;

use super::document::Document;

/// The overall limits of one load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of YAML over all files.
    pub max_bytes: u64,
    /// Objects over all files: links, addresses, routes, rules, sysctls, tables, DHCP hosts and
    /// ranges, and the provider sections' items.
    pub max_objects: u64,
}

impl Default for Limits {
    /// 64 MiB and 200,000 objects: a hundred times a large host (1,000 taps and 10,000 routes
    /// parse in 0.12 s), well under the memory of a small VM.
    fn default() -> Self {
        Limits {
            max_bytes: 64 << 20,
            max_objects: 200_000,
        }
    }
}

static LIMITS: OnceLock<Limits> = OnceLock::new();

/// Set the limits for the rest of the process; only the first call counts.
pub fn set(limits: Limits) {
    let _ = LIMITS.set(limits);
}

/// The limits in force.
pub fn limits() -> Limits {
    LIMITS.get().copied().unwrap_or_default()
}

/// How many objects a parsed file declares (each list item and mapping entry, and each
/// address, DHCP host and range, counted once).
pub(crate) fn objects(d: &Document) -> u64 {
    fn list<T>(v: &Option<Vec<T>>) -> usize {
        v.as_ref().map_or(0, Vec::len)
    }
    let len = |n: usize| n as u64;
    let addresses: usize = d
        .links
        .0
        .iter()
        .map(|(_, l)| l.addresses.as_ref().map_or(0, Vec::len))
        .sum();
    let dhcp: usize = d
        .dhcp
        .0
        .iter()
        .map(|(_, e)| {
            1 + e.value.ranges.as_ref().map_or(0, Vec::len)
                + e.value.hosts.as_ref().map_or(0, Vec::len)
        })
        .sum();
    len(d.tables.0.len() + d.sysctl.0.len() + d.links.0.len() + addresses)
        + len(list(&d.routes) + list(&d.rules) + d.providers.0.len())
        + len(d.scanned_routes.as_ref().map_or(0, |s| s.len))
        + len(list(&d.route_rules) + list(&d.masquerade) + list(&d.marks) + dhcp)
}
