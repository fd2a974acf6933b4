//! The pending change of a namespace: the file `/run/netconverge/netns/<netns>/pending.json` that
//! commit-confirmed writes before its first write and that `confirm`, `rollback`, `status` and
//! the guardian read. Root-only (directory 0700, file 0600), written to a temporary file and
//! renamed over the old one, so a reader never sees half a record and a crash leaves either
//! the old record or the new one.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use reconcilers::snapshot::Snapshot;
use serde::{Deserialize, Serialize};

/// A change applied and not yet confirmed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pending {
    /// Unique per apply, so a guardian only ever reverts its own change.
    pub id: String,
    /// The namespace (`None`: the caller's own).
    pub netns: Option<String>,
    /// When the revert is due, in seconds of CLOCK_BOOTTIME (which counts suspend and never
    /// jumps with the wall clock, and is the same for every process).
    pub deadline: f64,
    /// When it was applied, in seconds since the Unix epoch (for people).
    pub applied_at: u64,
    /// The changes, in the plan's words (`add link tap-centos`).
    pub changes: Vec<String>,
    /// The guardian holding the deadline.
    pub guardian: Option<u32>,
    /// For `watch`: the revision of the desired files applied, which is not applied again
    /// once reverted, until the files change.
    #[serde(default)]
    pub revision: Option<String>,
    /// What to put back.
    pub snapshot: Snapshot,
}

/// Why the pending record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PendingError {
    /// A file operation failed.
    #[error("cannot {operation} {}: {source}", path.display())]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The file is not a pending record.
    #[error("{} is not a pending-change record: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// The state directory of a namespace (`host` for the caller's own), shared with dnsmasq.
pub fn state_dir(netns: Option<&str>) -> PathBuf {
    reconcilers::dhcp::instance::state_dir(netns)
}

/// The pending record's file.
pub fn path(netns: Option<&str>) -> PathBuf {
    state_dir(netns).join("pending.json")
}

/// The guardian's log file (its stdout and stderr).
pub fn log_path(netns: Option<&str>) -> PathBuf {
    state_dir(netns).join("guardian.log")
}

/// Seconds of CLOCK_BOOTTIME.
pub fn boottime() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// The namespace's pending record, if there is one.
pub fn read(netns: Option<&str>) -> Result<Option<Pending>, PendingError> {
    let path = path(netns);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| PendingError::Corrupt { path, source }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PendingError::Io {
            operation: "read",
            path,
            source,
        }),
    }
}

/// Write the record atomically (temporary file, fsync, rename, fsync of the directory).
pub fn write(p: &Pending) -> Result<(), PendingError> {
    let dir = state_dir(p.netns.as_deref());
    let io_err = |operation, path: &PathBuf| {
        let path = path.clone();
        move |source| PendingError::Io {
            operation,
            path,
            source,
        }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io_err("create", &dir))?;
    let target = path(p.netns.as_deref());
    let tmp = dir.join(format!(".pending.json.{}", std::process::id()));
    let json = serde_json::to_vec_pretty(p).expect("a pending record serializes");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    f.write_all(&json)
        .and_then(|()| f.sync_all())
        .map_err(io_err("write", &tmp))?;
    fs::rename(&tmp, &target).map_err(io_err("rename", &target))?;
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Remove the record (confirmed or reverted); nothing to do when it is gone.
pub fn remove(netns: Option<&str>) -> Result<(), PendingError> {
    let path = path(netns);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(PendingError::Io {
            operation: "remove",
            path,
            source: e,
        }),
        _ => Ok(()),
    }
}

/// The file naming the revision of the desired files last reverted (for `watch`).
pub fn reverted_path(netns: Option<&str>) -> PathBuf {
    state_dir(netns).join("reverted-revision")
}

/// Remember that `revision` was reverted, atomically.
pub fn mark_reverted(netns: Option<&str>, revision: &str) -> Result<(), PendingError> {
    let target = reverted_path(netns);
    let tmp = state_dir(netns).join(format!(".reverted-revision.{}", std::process::id()));
    fs::write(&tmp, revision)
        .and_then(|()| fs::rename(&tmp, &target))
        .map_err(|source| PendingError::Io {
            operation: "write",
            path: target,
            source,
        })
}

/// The revision last reverted, if any.
pub fn reverted_revision(netns: Option<&str>) -> Option<String> {
    fs::read_to_string(reverted_path(netns)).ok()
}

/// True when process `pid` is alive and is a netconverge guardian.
pub fn guardian_alive(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
            args.iter().any(|a| *a == b"guardian")
        })
        .unwrap_or(false)
}
