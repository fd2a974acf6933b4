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
    let path = lock_path(netns);
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
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
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
