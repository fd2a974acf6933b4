//! The running side of a bridge's dnsmasq: its files under the namespace's state directory,
//! the daemon process, and how later runs find it again.
//!
//! netconverge keeps no record besides these files. An instance is "running" when its pid
//! file names a live process whose command line holds exactly our `--conf-file=PATH` and, where
//! `/proc/PID/ns/net` can be read, whose network namespace is the one being reconciled: a stale
//! pid file whose number was reused by another process is not mistaken for the instance.
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
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

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
            dir,
        }
    }

    /// The instance's command-line arguments (after the program name).
    pub fn args(&self) -> Vec<String> {
        vec![
            conf_arg(&self.conf),
            format!("--pid-file={}", self.pid.display()),
            format!("--dhcp-leasefile={}", self.leases.display()),
            format!("--dhcp-hostsfile={}", self.hosts.display()),
            format!("--addn-hosts={}", self.names.display()),
        ]
    }

    /// Every file of the instance, for removal.
    fn all(&self) -> [&Path; 5] {
        [
            &self.conf,
            &self.hosts,
            &self.names,
            &self.pid,
            &self.leases,
        ]
    }
}

/// The state directory of a namespace: `/run/netconverge/NAME`, or `/run/netconverge/host`
/// for the caller's own (the same naming as the lock files).
pub fn state_dir(netns: Option<&str>) -> PathBuf {
    Path::new(RUN_DIR).join(netns.unwrap_or("host"))
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

fn read_or_empty(path: &Path) -> Result<String, KernelError> {
    match fs::read_to_string(path) {
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

/// The pid of the bridge's live instance, if there is one.
pub(crate) fn running_pid(p: &Paths) -> Option<i32> {
    let text = fs::read_to_string(&p.pid).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    (pid > 0 && is_instance(pid, &p.conf)).then_some(pid)
}

/// Is `pid` a live (not zombie) dnsmasq started with `conf`, in the calling thread's network
/// namespace?
pub(crate) fn is_instance(pid: i32, conf: &Path) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    // The state is the field after the parenthesised command name, which may hold spaces.
    let Ok(stat) = fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, None | Some("Z") | Some("X")) {
        return false;
    }
    let Ok(cmdline) = fs::read(proc_dir.join("cmdline")) else {
        return false;
    };
    let want = conf_arg(conf);
    if !cmdline.split(|b| *b == 0).any(|arg| arg == want.as_bytes()) {
        return false;
    }
    // Reading another process's namespace link needs privileges over it; without them (an
    // unprivileged `check`) the command line alone decides, which names our state directory
    // and so the namespace already.
    match (
        fs::metadata(proc_dir.join("ns/net")),
        fs::metadata("/proc/thread-self/ns/net"),
    ) {
        (Ok(theirs), Ok(ours)) => theirs.dev() == ours.dev() && theirs.ino() == ours.ino(),
        _ => true,
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
    let mut pid = running_pid(p);
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
/// hosts files after dropping root).
fn make_dirs(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;
    for d in [Path::new(RUN_DIR), dir] {
        if d.starts_with(RUN_DIR) {
            let mode = fs::metadata(d)?.permissions().mode() & 0o7777;
            if mode & 0o005 != 0o005 {
                fs::set_permissions(d, fs::Permissions::from_mode(mode | 0o755))?;
            }
        }
    }
    Ok(())
}

/// Replace `path` with `text` unless it already holds exactly that: written to a temporary
/// file in the same directory and renamed over it, so dnsmasq never reads half a file.
/// Returns whether the file changed.
pub(crate) fn write_if_changed(path: &Path, text: &str) -> io::Result<bool> {
    match fs::read(path) {
        Ok(old) if old == text.as_bytes() => return Ok(false),
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
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
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
    // A stale pid file would be taken for the new instance's until dnsmasq rewrites it.
    let _ = fs::remove_file(&p.pid);
    let log = p.dir.join(format!(".dnsmasq-{}.start", p.bridge));
    let log_file = fs::File::create(&log).map_err(|e| io_error("create", &log, e))?;
    // dnsmasq reports startup failures on stderr and through its exit status, then closes its
    // standard streams; a file rather than a pipe, so nothing waits on a descriptor the daemon
    // might keep.
    let status = Command::new(&bin)
        .args(p.args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .current_dir("/")
        // Out of netconverge's process group, so a ^C at the terminal does not reach it.
        .process_group(0)
        .status();
    let output = fs::read_to_string(&log).unwrap_or_default();
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
        if running_pid(p).is_some() {
            return Ok(());
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

fn signal(pid: i32, sig: libc::c_int, p: &Paths) -> Result<(), KernelError> {
    // SAFETY: kill(2) with a pid checked to be our instance just before.
    if unsafe { libc::kill(pid, sig) } == 0 {
        return Ok(());
    }
    Err(KernelError::io(
        "signal",
        format!("dnsmasq for {} (pid {pid})", p.bridge),
        io::Error::last_os_error(),
    ))
}

/// SIGTERM, then SIGKILL after `STOP_TIMEOUT`; returns once the process is gone (or a zombie,
/// which holds no sockets).
async fn stop_process(pid: i32, p: &Paths) -> Result<(), KernelError> {
    for (sig, wait) in [
        (libc::SIGTERM, STOP_TIMEOUT),
        (libc::SIGKILL, Duration::from_secs(2)),
    ] {
        if !is_instance(pid, &p.conf) {
            return Ok(());
        }
        // ESRCH (it just exited) is fine; the loop below sees it gone.
        // SAFETY: kill(2) on a pid just checked to be our instance.
        unsafe { libc::kill(pid, sig) };
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if !is_instance(pid, &p.conf) {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
    }
    Err(error(
        "stop",
        &p.bridge,
        format!("pid {pid} survived SIGTERM and SIGKILL"),
    ))
}

/// Stop the instance, if it runs, and remove all its files.
async fn stop(p: &Paths) -> Result<(), KernelError> {
    if let Some(pid) = running_pid(p) {
        stop_process(pid, p).await?;
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

    #[test]
    fn paths_per_namespace() {
        let p = Paths::new(Some("lab"), "br0");
        assert_eq!(p.conf, Path::new("/run/netconverge/lab/dnsmasq-br0.conf"));
        assert_eq!(p.pid, Path::new("/run/netconverge/lab/dnsmasq-br0.pid"));
        let h = Paths::new(None, "br1");
        assert_eq!(h.dir, Path::new("/run/netconverge/host"));
        assert_eq!(
            h.args(),
            [
                "--conf-file=/run/netconverge/host/dnsmasq-br1.conf",
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
    fn our_own_process_is_not_an_instance() {
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(!is_instance(
            me,
            Path::new("/run/netconverge/x/dnsmasq-br0.conf")
        ));
        assert!(!is_instance(i32::MAX, Path::new("/nonexistent")));
    }
}
