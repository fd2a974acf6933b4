//! The identity of a running dnsmasq instance: which process netconverge started, in a form no
//! other process can take on, and the pidfd through which it is signalled.
//!
//! dnsmasq's own pid file is not proof: dnsmasq hands it to the user it drops to, so anything
//! running as that user could write a decoy's pid into it. netconverge therefore records, right
//! after the start, the pid and the process's start time (field 22 of `/proc/PID/stat`, in
//! clock ticks since boot, set by the kernel and the same for no two processes that ever held
//! that pid) in a root-owned file of the state directory. A process is the instance only when
//! both match, it is not a zombie, its command line holds our `--conf-file=` and (where it can
//! be read) it is in the namespace being reconciled. Signals go through a pidfd opened before
//! the identity is checked once more, so a pid reused in between cannot be hit.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A started instance: its pid and its start time in clock ticks since boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The daemon's pid.
    pub pid: i32,
    /// `/proc/PID/stat` field 22.
    pub start: u64,
}

impl Identity {
    /// The identity file's text.
    pub(crate) fn render(&self) -> String {
        format!("{} {}\n", self.pid, self.start)
    }

    /// Parse an identity file; `None` when it is not one.
    pub(crate) fn parse(text: &str) -> Option<Identity> {
        let mut it = text.split_whitespace();
        let pid = it.next()?.parse().ok().filter(|p| *p > 0)?;
        let start = it.next()?.parse().ok()?;
        it.next().is_none().then_some(Identity { pid, start })
    }
}

/// The fields of `/proc/PID/stat` after the parenthesised command name (which may hold spaces
/// and parentheses): index 0 is the state (field 3), index 19 the start time (field 22).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The start time of a live (not zombie) process, if there is one with that pid.
pub fn start_time(pid: i32) -> Option<u64> {
    let f = stat_fields(pid)?;
    if matches!(f.first().map(String::as_str), None | Some("Z") | Some("X")) {
        return None;
    }
    f.get(19)?.parse().ok()
}

/// The real uid of a process (`/proc/PID/status` is readable by everyone).
pub(crate) fn uid_of(pid: i32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Does the command line of `pid` hold exactly the argument `want`?
pub(crate) fn has_arg(pid: i32, want: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == want.as_bytes()))
}

/// Is `pid` in the calling thread's network namespace? Reading another process's namespace
/// link needs privileges over it; without them (an unprivileged `check`) this says yes, and the
/// identity (start time, command line naming our state directory) decides alone.
pub(crate) fn same_netns(pid: i32) -> bool {
    match (
        fs::metadata(format!("/proc/{pid}/ns/net")),
        fs::metadata("/proc/thread-self/ns/net"),
    ) {
        (Ok(theirs), Ok(ours)) => theirs.dev() == ours.dev() && theirs.ino() == ours.ino(),
        _ => true,
    }
}

/// Whether the process of `id` still exists short of a zombie. An exiting process releases its
/// memory (its command line reads empty) before it closes its files: until it is a zombie (or
/// gone) it may still hold dnsmasq's sockets, so a stop waits for this, not for `is_alive`.
pub(crate) fn exists(id: Identity) -> bool {
    start_time(id.pid) == Some(id.start)
}

/// Is `id` a live process started with `conf_arg`, in this namespace?
pub(crate) fn is_alive(id: Identity, conf_arg: &str) -> bool {
    start_time(id.pid) == Some(id.start) && has_arg(id.pid, conf_arg) && same_netns(id.pid)
}

/// The recorded identity, if the file holds one (read without following a symlink).
pub(crate) fn read(path: &Path) -> Option<Identity> {
    Identity::parse(&super::instance::read_nofollow(path).ok()?)
}

/// The clock ticks since boot now, to tell processes started after a moment from older ones.
pub(crate) fn now_ticks() -> Option<u64> {
    let up = fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = up.split_whitespace().next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|h| *h > 0)?;
    // Truncation is fine: this is a lower bound, compared with a one-tick margin.
    Some((secs * hz as f64) as u64)
}

/// Signal the instance `id` through a pidfd, checking after opening it that the process
/// behind it is still `id` (so that a pid reused since the last check is never signalled).
/// `Ok(false)`: the instance is gone, nothing was signalled.
pub(crate) fn signal(id: Identity, conf_arg: &str, sig: libc::c_int) -> io::Result<bool> {
    // SAFETY: pidfd_open(2) with a pid and no flags; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, id.pid, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ESRCH) => Ok(false),
            _ => Err(e),
        };
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: `fd` is a fresh descriptor returned by pidfd_open and owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    if !is_alive(id, conf_arg) {
        return Ok(false);
    }
    // SAFETY: pidfd_send_signal(2) on our pidfd, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ESRCH) => Ok(false),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_files_parse_strictly() {
        let id = Identity {
            pid: 42,
            start: 123456,
        };
        assert_eq!(Identity::parse(&id.render()), Some(id));
        for bad in ["", "42", "0 5", "-1 5", "42 x", "42 5 6", "x 5"] {
            assert_eq!(Identity::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_pid_with_another_start_time_is_not_the_instance() {
        let me = i32::try_from(std::process::id()).unwrap();
        let start = start_time(me).expect("own start time");
        let arg = std::env::args().next().unwrap_or_default();
        assert!(is_alive(Identity { pid: me, start }, &arg));
        assert!(!is_alive(
            Identity {
                pid: me,
                start: start + 1
            },
            &arg
        ));
        assert!(!is_alive(
            Identity { pid: me, start },
            "--conf-file=/nowhere"
        ));
        // Nothing is signalled when the identity does not match.
        let other = Identity {
            pid: me,
            start: start + 1,
        };
        assert!(!signal(other, &arg, libc::SIGTERM).unwrap());
    }
}
