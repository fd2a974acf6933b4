//! One reconcile at a time per network namespace: an exclusive `flock` on
//! `/run/netconverge/netns/<netns>.lock` (`/run/netconverge/host.lock` for the caller's own),
//! released when the process exits (even if killed). The lock file is opened without following
//! a symlink, in directories that must be real directories.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Where lock files live.
pub const LOCK_DIR: &str = "/run/netconverge";

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct Lock {
    _file: File,
    /// The lock file.
    pub path: PathBuf,
}

/// The lock file of a namespace (`host.lock` for the caller's own namespace; named ones in
/// `netns/`, so that a namespace named `host` is not the caller's).
pub fn lock_path(netns: Option<&str>) -> PathBuf {
    match netns {
        Some(name) => PathBuf::from(LOCK_DIR)
            .join("netns")
            .join(format!("{name}.lock")),
        None => PathBuf::from(LOCK_DIR).join("host.lock"),
    }
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("another netconverge is already reconciling namespace {netns} (lock {} is held)", path.display())]
    Held {
        /// The namespace, in words.
        netns: String,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be created, opened or locked.
    #[error("cannot {operation} {}: {source}", path.display())]
    Io {
        /// What was being done (`create`, `open lock file`, `lock`).
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Take the namespace's lock without waiting; an error says who holds it.
pub fn acquire(netns: Option<&str>) -> Result<Lock, LockError> {
    take(netns, lock_path(netns), libc::LOCK_EX | libc::LOCK_NB)
}

/// The lock of a namespace's pending change (commit confirmed), in its state directory:
/// taken by an apply that arms a revert for as long as it writes, and by `confirm`,
/// `rollback` and the guardian. Apart from the reconcile lock, which a `watch` daemon holds
/// for its whole life and which must not keep the guardian from reverting.
pub fn pending_lock_path(netns: Option<&str>) -> PathBuf {
    PathBuf::from(LOCK_DIR)
        .join(netns.unwrap_or("host"))
        .join("pending.lock")
}

/// Take the namespace's pending-change lock, waiting for whoever holds it (an apply in
/// progress, a revert in progress).
pub fn acquire_pending(netns: Option<&str>) -> Result<Lock, LockError> {
    take(netns, pending_lock_path(netns), libc::LOCK_EX)
}

fn take(netns: Option<&str>, path: PathBuf, how: libc::c_int) -> Result<Lock, LockError> {
    let io_err = |operation, path: &PathBuf| {
        let path = path.clone();
        move |source| LockError::Io {
            operation,
            path,
            source,
        }
    };
    let dir = path.parent().map(PathBuf::from).unwrap_or_default();
    fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    for d in [PathBuf::from(LOCK_DIR), dir] {
        let meta = fs::symlink_metadata(&d).map_err(io_err("create", &d))?;
        if !meta.is_dir() {
            return Err(io_err("use", &d)(io::Error::other(
                "not a directory (a symlink?); remove it",
            )));
        }
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o644)
        .open(&path)
        .map_err(io_err("open lock file", &path))?;
    // SAFETY: flock on a valid, owned file descriptor.
    let rc = unsafe { libc::flock(file.as_raw_fd(), how) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(LockError::Held {
                netns: netns.unwrap_or("of this host").to_string(),
                path,
            });
        }
        return Err(io_err("lock", &path)(e));
    }
    Ok(Lock { _file: file, path })
}
