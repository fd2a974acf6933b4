//! The running side of a bridge's dnsmasq: its files under the namespace's state directory,
//! the daemon process, and how later runs find it again.
//!
//! netconverge keeps no record besides these files. An instance is "running" when the identity
//! netconverge recorded when it started it (`dnsmasq-BRIDGE.instance`: pid and start time, see
//! [`super::identity`]) names a live process whose command line holds exactly our
//! `--conf-file=PATH` and, where `/proc/PID/ns/net` can be read, whose network namespace is the
//! one being reconciled: neither a reused pid nor a decoy written into dnsmasq's pid file is
//! mistaken for the instance, and no other process is ever signalled.
//!
//! dnsmasq drops root for [`super::DNSMASQ_USER`]; every file here is root's and not writable by
//! that user (dnsmasq opens its lease file before dropping root and keeps the descriptor; it
//! hands its pid file to the user, and netconverge takes it back). Files are read and replaced
//! without following symlinks.
//!
//! Processes are started from the calling thread, which `run_in_netns` has moved into the
//! namespace; the child inherits it. dnsmasq daemonizes itself (double fork, `setsid`, standard
//! streams on /dev/null) and its first process exits only once the daemon is listening or has
//! failed, so a one-shot `reconcile` can wait for that exit status and then leave.
//!
//! Everything here that touches the host — files, `/proc`, processes, signals — is reached only
//! through the `Kernel` trait (`RtnlKernel::dhcp_instances` and `apply_dhcp`). Waiting for the
//! daemon (its pid file, its exit) polls with tokio's sleep: `apply` runs in the namespace
//! thread's runtime, which a blocking sleep would stall, and `spawn_blocking` is no way out,
//! since a pool thread is in the process's namespace, not the reconciled one.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use super::identity::{self, Identity};
use super::{config, error};
use crate::error::KernelError;
use crate::model::dhcp::{DhcpOp, DhcpServer};

/// Root of netconverge's runtime files (the lock files live here too).
pub const RUN_DIR: &str = "/run/netconverge";

/// How long a started dnsmasq may take to write its pid file.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stopped dnsmasq may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Poll interval while waiting for a process.
const POLL: Duration = Duration::from_millis(20);

/// The files of one bridge's instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// The bridge.
    pub bridge: String,
    /// The namespace's state directory.
    pub dir: PathBuf,
    /// `dnsmasq-BRIDGE.conf`: the only configuration file the instance reads.
    pub conf: PathBuf,
    /// `dnsmasq-BRIDGE.hosts`: static leases (`--dhcp-hostsfile`, re-read on SIGHUP).
    pub hosts: PathBuf,
    /// `dnsmasq-BRIDGE.names`: names of the static hosts (`--addn-hosts`, re-read on SIGHUP).
    pub names: PathBuf,
    /// `dnsmasq-BRIDGE.pid`: written by dnsmasq.
    pub pid: PathBuf,
    /// `dnsmasq-BRIDGE.leases`: dnsmasq's lease database.
    pub leases: PathBuf,
    /// `dnsmasq-BRIDGE.instance`: the identity of the process netconverge started.
    pub instance: PathBuf,
}

impl Paths {
    /// The files of `bridge`'s instance in namespace `netns` (`None`: the caller's own).
    pub fn new(netns: Option<&str>, bridge: &str) -> Paths {
        let dir = state_dir(netns);
        let file = |ext: &str| dir.join(format!("dnsmasq-{bridge}.{ext}"));
        Paths {
            bridge: bridge.to_string(),
            conf: file("conf"),
            hosts: file("hosts"),
            names: file("names"),
            pid: file("pid"),
            leases: file("leases"),
            instance: file("instance"),
            dir,
        }
    }

    /// The instance's command-line arguments (after the program name): its files, and the
    /// user and group it drops root for (`group`: that user's primary group).
    pub fn args(&self, group: &str) -> Vec<String> {
        vec![
            conf_arg(&self.conf),
            format!("--user={}", super::DNSMASQ_USER),
            format!("--group={group}"),
            format!("--pid-file={}", self.pid.display()),
            format!("--dhcp-leasefile={}", self.leases.display()),
            format!("--dhcp-hostsfile={}", self.hosts.display()),
            format!("--addn-hosts={}", self.names.display()),
        ]
    }

    /// Every file of the instance, for removal.
    fn all(&self) -> [&Path; 6] {
        [
            &self.instance,
            &self.conf,
            &self.hosts,
            &self.names,
            &self.pid,
            &self.leases,
        ]
    }
}

/// The state directory of a namespace: `/run/netconverge/netns/NAME`, or
/// `/run/netconverge/host` for the caller's own (the same naming as the lock files). Named
/// namespaces have a directory of their own so that one named `host` is not the caller's.
pub fn state_dir(netns: Option<&str>) -> PathBuf {
    match netns {
        Some(name) => Path::new(RUN_DIR).join("netns").join(name),
        None => Path::new(RUN_DIR).join("host"),
    }
}

fn conf_arg(conf: &Path) -> String {
    format!("--conf-file={}", conf.display())
}

/// The dnsmasq binary: on `$PATH`, else in the usual sbin directories.
pub(crate) fn binary() -> Option<PathBuf> {
    crate::programs::find("dnsmasq")
}

// ---------------------------------------------------------------------------------------------
// Observation

/// The services found in the state directory of namespace `netns`: every bridge with a
/// configuration or a pid file, its files as they are on disk, and whether its instance is
/// alive. Must run on the namespace's thread (the namespace check compares with it).
pub(crate) fn observe(netns: Option<&str>) -> Result<BTreeMap<String, DhcpServer>, KernelError> {
    let dir = state_dir(netns);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(io_error("read", &dir, e)),
    };
    let mut bridges = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error("read", &dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix("dnsmasq-") else {
            continue;
        };
        if let Some(bridge) = rest
            .strip_suffix(".conf")
            .or_else(|| rest.strip_suffix(".pid"))
        {
            if !bridge.is_empty() {
                bridges.insert(bridge.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    for bridge in bridges {
        let p = Paths::new(netns, &bridge);
        let config = read_or_empty(&p.conf)?;
        let hosts = read_or_empty(&p.hosts)?;
        let names = read_or_empty(&p.names)?;
        let running = running_pid(&p).is_some();
        out.insert(
            bridge.clone(),
            DhcpServer {
                settings: config::parse(&config, &hosts),
                bridge,
                config,
                hosts,
                names,
                running,
            },
        );
    }
    Ok(out)
}

/// Read a file of the state directory without following a symlink (O_NOFOLLOW): a link
/// planted there cannot make netconverge read, or quote, another file.
pub fn read_nofollow(path: &Path) -> io::Result<String> {
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut s = String::new();
    io::Read::read_to_string(&mut f, &mut s)?;
    Ok(s)
}

fn read_or_empty(path: &Path) -> Result<String, KernelError> {
    match read_nofollow(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(io_error("read", path, e)),
    }
}

fn io_error(operation: &str, path: &Path, e: io::Error) -> KernelError {
    let err = KernelError::io(operation, path.display().to_string(), e);
    match err.errno {
        Some(libc::EACCES) | Some(libc::EPERM) => err.with_hint("needs root"),
        _ => err,
    }
}

/// The pid of the bridge's live instance, if there is one: the process netconverge started
/// and recorded, still alive, still the same process.
pub(crate) fn running_pid(p: &Paths) -> Option<i32> {
    running(p).map(|id| id.pid)
}

fn running(p: &Paths) -> Option<Identity> {
    identity::read(&p.instance).filter(|id| identity::is_alive(*id, &conf_arg(&p.conf)))
}

/// The user dnsmasq runs as: its uid and the name of its primary group.
pub(crate) fn dnsmasq_user() -> Option<(u32, String)> {
    let name = std::ffi::CString::new(super::DNSMASQ_USER).ok()?;
    // SAFETY: getpwnam/getgrgid return pointers into static storage that are read at once;
    // netconverge looks users up from one thread at a time.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            return None;
        }
        let (uid, gid) = ((*pw).pw_uid, (*pw).pw_gid);
        let gr = libc::getgrgid(gid);
        let group = if gr.is_null() {
            gid.to_string()
        } else {
            std::ffi::CStr::from_ptr((*gr).gr_name)
                .to_string_lossy()
                .into_owned()
        };
        Some((uid, group))
    }
}

// ---------------------------------------------------------------------------------------------
// Apply

/// Apply one op in namespace `netns`, from the calling thread (which must be in it).
pub(crate) async fn apply(op: &DhcpOp, netns: Option<&str>) -> Result<(), KernelError> {
    match op {
        DhcpOp::Apply(d) => ensure(d, &Paths::new(netns, &d.bridge)).await,
        DhcpOp::Stop(bridge) => stop(&Paths::new(netns, bridge)).await,
    }
}

/// Make the files and the instance match `d`: a changed configuration stops the instance
/// before the file is replaced (so a crash in between leaves "not running", which the next run
/// repairs, rather than an instance running an old configuration); changed hosts files are
/// replaced and signalled with SIGHUP; a missing instance is started.
async fn ensure(d: &DhcpServer, p: &Paths) -> Result<(), KernelError> {
    make_dirs(&p.dir).map_err(|e| io_error("create", &p.dir, e))?;
    let mut pid = running(p);
    let conf_changed = read_or_empty(&p.conf)? != d.config;
    if conf_changed {
        if let Some(old) = pid.take() {
            stop_process(old, p).await?;
        }
    }
    let mut hosts_changed = false;
    for (path, text) in [(&p.hosts, &d.hosts), (&p.names, &d.names)] {
        hosts_changed |= write_if_changed(path, text).map_err(|e| io_error("write", path, e))?;
    }
    write_if_changed(&p.conf, &d.config).map_err(|e| io_error("write", &p.conf, e))?;
    match pid {
        None => start(p).await,
        Some(pid) if hosts_changed => signal(pid, libc::SIGHUP, p),
        Some(_) => Ok(()),
    }
}

/// The state directories, readable by the unprivileged user dnsmasq drops to (it re-reads the
/// hosts files after dropping root) and writable by their owner only. Each must be a real
/// directory, not a symlink: a link planted there would send the files elsewhere.
fn make_dirs(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;
    for d in [Path::new(RUN_DIR), &Path::new(RUN_DIR).join("netns"), dir] {
        if d.starts_with(RUN_DIR) && (d == dir || dir.starts_with(d)) {
            let meta = fs::symlink_metadata(d)?;
            if !meta.file_type().is_dir() {
                return Err(io::Error::other(format!(
                    "{} is not a directory (a symlink?); remove it",
                    d.display()
                )));
            }
            let mode = meta.permissions().mode() & 0o7777;
            let want = (mode | 0o755) & !0o022;
            if mode != want {
                fs::set_permissions(d, fs::Permissions::from_mode(want))?;
            }
        }
    }
    Ok(())
}

/// Replace `path` with `text` unless it already holds exactly that: written to a temporary
/// file in the same directory and renamed over it, so dnsmasq never reads half a file.
/// Returns whether the file changed.
pub(crate) fn write_if_changed(path: &Path, text: &str) -> io::Result<bool> {
    match read_nofollow(path) {
        Ok(old) if old == text => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        // A leftover of a crashed run is removed, never written through (it may be a link).
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o644)
            .open(&tmp)?;
        // The mode above is subject to the umask; dnsmasq must be able to read the file.
        f.set_permissions(fs::Permissions::from_mode(0o644))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| true)
}

/// Start the instance and wait until its pid file names it.
async fn start(p: &Paths) -> Result<(), KernelError> {
    let bin = binary().ok_or_else(|| {
        error(
            "start",
            &p.bridge,
            format!(
                "dnsmasq is not installed (Debian package `{}`; looked for on $PATH and in /usr/sbin, /sbin, /usr/local/sbin)",
                super::PACKAGE
            ),
        )
    })?;
    let (uid, group) = dnsmasq_user().ok_or_else(|| {
        error(
            "start",
            &p.bridge,
            format!(
                "the user `{}` that dnsmasq runs as does not exist (the Debian package `{}` creates it)",
                super::DNSMASQ_USER,
                super::PACKAGE
            ),
        )
    })?;
    // A stale pid file or identity would be taken for the new instance's.
    let _ = fs::remove_file(&p.pid);
    let _ = fs::remove_file(&p.instance);
    let log = p.dir.join(format!(".dnsmasq-{}.start", p.bridge));
    let _ = fs::remove_file(&log);
    let log_file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&log)
        .map_err(|e| io_error("create", &log, e))?;
    let spawned = identity::now_ticks().unwrap_or(0);
    // dnsmasq reports startup failures on stderr and through its exit status, then closes its
    // standard streams; a file rather than a pipe, so nothing waits on a descriptor the daemon
    // might keep.
    let status = Command::new(&bin)
        .args(p.args(&group))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .current_dir("/")
        // Out of netconverge's process group, so a ^C at the terminal does not reach it.
        .process_group(0)
        .status();
    let output = read_nofollow(&log).unwrap_or_default();
    let _ = fs::remove_file(&log);
    let status = status.map_err(|e| {
        error(
            "start",
            &p.bridge,
            format!("cannot run {}: {e}", bin.display()),
        )
        .with_source(e)
    })?;
    if !status.success() {
        let said = output.trim().replace('\n', "; ");
        return Err(error(
            "start",
            &p.bridge,
            if said.is_empty() {
                format!("{} exited with {status}", bin.display())
            } else {
                said
            },
        ));
    }
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(id) = started(p, uid, spawned) {
            return record(p, id);
        }
        tokio::time::sleep(POLL).await;
    }
    Err(error(
        "start",
        &p.bridge,
        format!(
            "dnsmasq reported success but {} does not name a running instance after {} s",
            p.pid.display(),
            START_TIMEOUT.as_secs()
        ),
    ))
}

/// The daemon just started, found by its pid file: a live process started no earlier than
/// `spawned`, running as dnsmasq's user, with our configuration file.
fn started(p: &Paths, uid: u32, spawned: u64) -> Option<Identity> {
    let pid: i32 = read_nofollow(&p.pid).ok()?.trim().parse().ok()?;
    let start = identity::start_time(pid)?;
    let ok = start + 1 >= spawned
        && identity::uid_of(pid) == Some(uid)
        && identity::has_arg(pid, &conf_arg(&p.conf))
        && identity::same_netns(pid);
    ok.then_some(Identity { pid, start })
}

/// Record the identity of the started instance, and take dnsmasq's pid file back from the
/// user it handed it to.
fn record(p: &Paths, id: Identity) -> Result<(), KernelError> {
    write_if_changed(&p.instance, &id.render()).map_err(|e| io_error("write", &p.instance, e))?;
    std::os::unix::fs::lchown(&p.pid, Some(0), Some(0))
        .map_err(|e| io_error("chown", &p.pid, e))?;
    Ok(())
}

fn signal(id: Identity, sig: libc::c_int, p: &Paths) -> Result<(), KernelError> {
    match identity::signal(id, &conf_arg(&p.conf), sig) {
        Ok(_) => Ok(()),
        Err(e) => Err(signal_error(id, p, e)),
    }
}

fn signal_error(id: Identity, p: &Paths, e: io::Error) -> KernelError {
    let err = KernelError::io(
        "signal",
        format!("dnsmasq for {} (pid {})", p.bridge, id.pid),
        e,
    );
    match err.errno {
        Some(libc::EPERM) => err.with_hint("needs CAP_KILL (dnsmasq runs as another user)"),
        _ => err,
    }
}

/// SIGTERM, then SIGKILL after `STOP_TIMEOUT`; returns once the process is gone (or a zombie,
/// which holds no sockets). A signal that cannot be sent is that error, not "survived".
async fn stop_process(id: Identity, p: &Paths) -> Result<(), KernelError> {
    let conf = conf_arg(&p.conf);
    for (sig, wait) in [
        (libc::SIGTERM, STOP_TIMEOUT),
        (libc::SIGKILL, Duration::from_secs(2)),
    ] {
        if !identity::signal(id, &conf, sig).map_err(|e| signal_error(id, p, e))? {
            return Ok(());
        }
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if !identity::exists(id) {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
    }
    Err(error(
        "stop",
        &p.bridge,
        format!("pid {} survived SIGTERM and SIGKILL", id.pid),
    ))
}

/// Stop the instance, if it runs, and remove all its files.
async fn stop(p: &Paths) -> Result<(), KernelError> {
    if let Some(id) = running(p) {
        stop_process(id, p).await?;
    }
    for f in p.all() {
        match fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("remove", f, e)),
        }
    }
    // Only when nothing else (another bridge, a lock) is left in it.
    let _ = fs::remove_dir(&p.dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn paths_per_namespace() {
        let p = Paths::new(Some("lab"), "br0");
        assert_eq!(
            p.conf,
            Path::new("/run/netconverge/netns/lab/dnsmasq-br0.conf")
        );
        assert_eq!(
            p.pid,
            Path::new("/run/netconverge/netns/lab/dnsmasq-br0.pid")
        );
        assert_ne!(
            Paths::new(Some("host"), "br0").dir,
            Paths::new(None, "br0").dir
        );
        let h = Paths::new(None, "br1");
        assert_eq!(h.dir, Path::new("/run/netconverge/host"));
        assert_eq!(
            h.args("nogroup"),
            [
                "--conf-file=/run/netconverge/host/dnsmasq-br1.conf",
                "--user=dnsmasq",
                "--group=nogroup",
                "--pid-file=/run/netconverge/host/dnsmasq-br1.pid",
                "--dhcp-leasefile=/run/netconverge/host/dnsmasq-br1.leases",
                "--dhcp-hostsfile=/run/netconverge/host/dnsmasq-br1.hosts",
                "--addn-hosts=/run/netconverge/host/dnsmasq-br1.names",
            ]
        );
    }

    #[test]
    fn writes_only_changes_atomically() {
        let dir = std::env::temp_dir().join(format!("nc-write-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.conf");
        assert!(write_if_changed(&f, "one\n").unwrap());
        let ino = fs::metadata(&f).unwrap().ino();
        assert!(!write_if_changed(&f, "one\n").unwrap());
        assert_eq!(
            fs::metadata(&f).unwrap().ino(),
            ino,
            "unchanged file rewritten"
        );
        assert!(write_if_changed(&f, "two\n").unwrap());
        assert_eq!(fs::read_to_string(&f).unwrap(), "two\n");
        assert_ne!(
            fs::metadata(&f).unwrap().ino(),
            ino,
            "not replaced by rename"
        );
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.conf"], "temporary file left behind");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unrecorded_process_is_not_an_instance() {
        let dir = std::env::temp_dir().join(format!("nc-inst-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut p = Paths::new(Some("x"), "br0");
        p.instance = dir.join("dnsmasq-br0.instance");
        assert_eq!(running_pid(&p), None, "no identity recorded");
        // A symlink planted in place of the identity file is not followed.
        std::os::unix::fs::symlink("/proc/self/stat", &p.instance).unwrap();
        assert_eq!(running_pid(&p), None);
        let _ = fs::remove_dir_all(&dir);
    }
}
