//! The guardian: a detached process that holds a pending change's deadline and reverts it
//! unless the change was confirmed (its record removed) or rolled back first.
//!
//! It is the same binary (`netconverge [--netns NS] guardian --id ID`), started in a session
//! of its own (setsid: not in the caller's process group, no controlling terminal, so neither
//! a dropped SSH session's SIGHUP nor a SIGKILL of the applying process reaches it), with its
//! output appended to `/run/netconverge/netns/<netns>/guardian.log`.

use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use super::pending;
use crate::pass::Failure;

/// How often the guardian looks at the record: the revert starts at most this late.
const POLL: Duration = Duration::from_millis(100);

/// How long a new guardian waits for its record to appear before it decides the applying
/// process died before writing it (and so before any write).
const FIRST_RECORD: Duration = Duration::from_secs(30);

/// Start the guardian of change `id`; returns its pid.
pub fn spawn(netns: Option<&str>, id: &str) -> Result<u32, Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::Message(format!("cannot find the netconverge binary: {e}")))?;
    // Root-only, like the record: the log holds the revert's plan.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(pending::log_path(netns))
        .map_err(|e| Failure::Message(format!("cannot open the guardian's log: {e}")))?;
    let err = log
        .try_clone()
        .map_err(|e| Failure::Message(format!("cannot open the guardian's log: {e}")))?;
    let mut cmd = Command::new(exe);
    if let Some(ns) = netns {
        cmd.args(["--netns", ns]);
    }
    cmd.args(["guardian", "--id", id])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err);
    // The caller runs this on a thread inside the reconciled namespace; the guardian goes
    // back to the process's own namespace (the main thread's, `/proc/self` is the thread
    // group), so that it does not keep a deleted namespace alive. It enters the target
    // namespace by name when it reverts, as every command does.
    let home_ns = std::fs::File::open("/proc/self/ns/net").ok();
    let home_fd = home_ns.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    // SAFETY: setsid and setns are async-signal-safe system calls and touch nothing of the
    // parent's memory; the fd stays open in the parent until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(fd) = home_fd {
                if libc::setns(fd, libc::CLONE_NEWNET) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| Failure::Message(format!("cannot start the guardian: {e}")))?;
    drop(home_ns);
    // The child is not waited for: it outlives this process and is reaped by init (or the
    // subreaper) when it exits.
    Ok(child.id())
}

/// The guardian's life: wait for the deadline of change `id`, then revert it, unless its
/// record is gone (confirmed or rolled back) or replaced by another change's.
pub fn run(netns: Option<&str>, id: &str) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    let mut seen = false;
    loop {
        match pending::read(netns)? {
            Some(p) if p.id == id => {
                seen = true;
                if pending::boottime() >= p.deadline {
                    break;
                }
            }
            Some(_) => return Ok(ExitCode::SUCCESS),
            None if seen || started.elapsed() > FIRST_RECORD => return Ok(ExitCode::SUCCESS),
            None => {}
        }
        std::thread::sleep(POLL);
    }
    eprintln!("netconverge guardian: the change was not confirmed in time; reverting");
    match super::revert_locked(netns, Some(id)) {
        Ok(Some(r)) => {
            eprint!("{}", r.text());
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
    }
}
