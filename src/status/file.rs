//! The watcher's state file: what `watch` last did, kept by the daemon in the namespace's
//! state directory (`/run/netconverge/netns/NAME/watch.json`, `/run/netconverge/host/…`) and
//! read by `netconverge status`.
//!
//! It is replaced atomically (a temporary file in the same directory, then `rename`), so a
//! reader never sees half a file. It names the daemon by pid *and* process start time (field
//! 22 of `/proc/PID/stat`): a file left by a daemon that was killed, whose pid is later reused,
//! is not taken for a running watcher — the same identity the dnsmasq instances use.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use reconcilers::dhcp::identity::start_time;
use serde::{Deserialize, Serialize};

/// The file's name in the state directory.
pub const FILE_NAME: &str = "watch.json";

/// The state file of namespace `netns` (`None`: the caller's own).
pub fn path(netns: Option<&str>) -> PathBuf {
    reconcilers::dhcp::instance::state_dir(netns).join(FILE_NAME)
}

/// What the daemon publishes about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DaemonState {
    /// The watcher's pid.
    pub pid: i32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_ticks: u64,
    /// When it started, in Unix seconds.
    pub started_at: f64,
    /// The desired file or directory it watches.
    pub desired: String,
    /// The last pass, once there was one.
    pub last_pass: Option<LastPass>,
    /// The last error, with its time (kept after later passes succeed).
    pub last_error: Option<LastError>,
    /// Health of each provider by name (`true`: up), as far as the daemon knows it.
    #[serde(default)]
    pub providers: BTreeMap<String, bool>,
}

/// One pass of the daemon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastPass {
    /// When it ended, in Unix seconds.
    pub at: f64,
    /// Whether it planned and applied without a failure.
    pub ok: bool,
    /// How many changes it planned.
    pub changes: usize,
    /// How long it took.
    pub seconds: f64,
    /// What the kernel still does not hold after it (drift still pending).
    #[serde(default)]
    pub unverified: Vec<String>,
}

/// An error of the daemon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastError {
    /// When, in Unix seconds.
    pub at: f64,
    /// The error in words.
    pub message: String,
}

/// Why the state file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// A file system operation failed.
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
    /// The file is not a state file.
    #[error("{} is not a watcher state file: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
}

impl DaemonState {
    /// The state of the calling process, starting now, before any pass.
    pub fn of_this_process(desired: &Path) -> DaemonState {
        let pid = i32::try_from(std::process::id()).unwrap_or(0);
        DaemonState {
            pid,
            start_ticks: start_time(pid).unwrap_or(0),
            started_at: unix_now(),
            desired: desired.display().to_string(),
            last_pass: None,
            last_error: None,
            providers: BTreeMap::new(),
        }
    }

    /// Whether the process the file names is still the daemon that wrote it.
    pub fn daemon_alive(&self) -> bool {
        self.pid > 0 && start_time(self.pid) == Some(self.start_ticks)
    }
}

/// Replace `path` with `state`: write a temporary file beside it, then rename it over.
pub fn write(path: &Path, state: &DaemonState) -> Result<(), StateFileError> {
    let io_err = |operation, path: &Path| {
        let path = path.to_path_buf();
        move |source| StateFileError::Io {
            operation,
            path,
            source,
        }
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    }
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    let text = serde_json::to_string_pretty(state).expect("a state serialises");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o644)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    f.write_all(text.as_bytes())
        .map_err(io_err("write", &tmp))?;
    fs::rename(&tmp, path).map_err(io_err("rename into", path))
}

/// The state file at `path`; `None` when there is none.
pub fn read(path: &Path) -> Result<Option<DaemonState>, StateFileError> {
    let text = match reconcilers::dhcp::instance::read_nofollow(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateFileError::Io {
                operation: "read",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| StateFileError::Parse {
            path: path.to_path_buf(),
            source,
        })
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_state_reads_back_and_no_temporary_file_is_left() {
        let dir = std::env::temp_dir().join(format!("nc-status-{}", std::process::id()));
        let p = dir.join(FILE_NAME);
        assert_eq!(read(&p).unwrap(), None, "no file: no daemon");
        let mut s = DaemonState::of_this_process(Path::new("/etc/netconverge"));
        s.last_pass = Some(LastPass {
            at: 1.5,
            ok: false,
            changes: 3,
            seconds: 0.25,
            unverified: vec!["dhcp br0".into()],
        });
        write(&p, &s).unwrap();
        s.last_error = Some(LastError {
            at: 2.0,
            message: "boom".into(),
        });
        write(&p, &s).unwrap();
        assert_eq!(read(&p).unwrap(), Some(s.clone()));
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE_NAME)]);
        fs::write(&p, "{").unwrap();
        assert!(matches!(read(&p), Err(StateFileError::Parse { .. })));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_the_process_that_wrote_it_is_the_daemon() {
        let me = DaemonState::of_this_process(Path::new("d"));
        assert!(me.daemon_alive());
        let reused = DaemonState {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        };
        assert!(!reused.daemon_alive(), "same pid, another process");
        let gone = DaemonState { pid: 0, ..me };
        assert!(!gone.daemon_alive());
    }

    #[test]
    fn paths_are_per_namespace() {
        assert_eq!(
            path(Some("a")),
            Path::new("/run/netconverge/netns/a/watch.json")
        );
        assert_eq!(path(None), Path::new("/run/netconverge/host/watch.json"));
    }
}
