//! One reconcile at a time per network namespace: an exclusive `flock` on
//! `/run/netconverge/<netns>.lock`, released when the process exits (even if killed).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
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

/// The lock file of a namespace (`host` for the caller's own namespace).
pub fn lock_path(netns: Option<&str>) -> PathBuf {
    PathBuf::from(LOCK_DIR).join(format!("{}.lock", netns.unwrap_or("host")))
}

/// Take the namespace's lock without waiting; an error says who holds it.
pub fn acquire(netns: Option<&str>) -> Result<Lock, String> {
    let path = lock_path(netns);
    fs::create_dir_all(LOCK_DIR).map_err(|e| format!("cannot create {LOCK_DIR}: {e}"))?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open lock file {}: {e}", path.display()))?;
    // SAFETY: flock on a valid, owned file descriptor.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            format!(
                "another netconverge is already reconciling namespace {} (lock {} is held)",
                netns.unwrap_or("of this host"),
                path.display()
            )
        } else {
            format!("cannot lock {}: {e}", path.display())
        });
    }
    Ok(Lock { _file: file, path })
}
