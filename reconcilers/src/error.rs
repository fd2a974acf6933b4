//! The errors of the reconcilers, all in one place: a kernel operation that failed
//! ([`KernelError`]), a program netconverge runs that failed ([`ProgramError`]), and values that
//! do not parse ([`LeaseError`], [`MacAddrError`], [`SysctlNameError`]).
//!
//! Every error says what it is about and, where there is one, keeps its cause as
//! `Error::source`. The messages are written to be shown alone (the CLI prints one paragraph from
//! the outermost error), so a message includes its cause's words where they help.

use std::fmt;
use std::num::ParseIntError;
use std::sync::Arc;

/// The cause of a [`KernelError`]. Shared, so that one failure (a lost connection before a
/// batch) can be reported for every op of the batch.
type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// A failed kernel operation, with enough context to act on it: the object, the operation, the
/// errno (when the kernel gave one), a hint on the likely cause and the underlying error.
///
/// Two errors are equal when they say the same thing (object, operation, errno, hint); the
/// underlying error is not compared (an `io::Error` has no equality), its errno is.
#[derive(Clone, Debug, thiserror::Error)]
pub struct KernelError {
    /// What the operation was about (`route default via 192.168.1.254 table 102`).
    pub object: String,
    /// The operation (`add`, `delete`, `set`, `dump`, …).
    pub operation: String,
    /// The errno, when the kernel gave one.
    pub errno: Option<i32>,
    /// A hint on the likely cause, when one is known.
    pub hint: Option<String>,
    /// The underlying error (an `io::Error`, a program's failure), when there is one.
    #[source]
    source: Option<Cause>,
}

impl KernelError {
    /// A new error without a hint.
    pub fn new(
        operation: impl Into<String>,
        object: impl Into<String>,
        errno: Option<i32>,
    ) -> Self {
        KernelError {
            object: object.into(),
            operation: operation.into(),
            errno,
            hint: None,
            source: None,
        }
    }

    /// An error caused by `e`, with its errno.
    pub fn io(operation: impl Into<String>, object: impl Into<String>, e: std::io::Error) -> Self {
        let errno = e.raw_os_error();
        KernelError::new(operation, object, errno).with_source(e)
    }

    /// Attach a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Attach the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }
}

impl PartialEq for KernelError {
    fn eq(&self, other: &Self) -> bool {
        self.object == other.object
            && self.operation == other.operation
            && self.errno == other.errno
            && self.hint == other.hint
    }
}

impl Eq for KernelError {}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.operation, self.object)?;
        if let Some(e) = self.errno {
            let text = std::io::Error::from_raw_os_error(e).to_string();
            // std appends " (os error N)"; keep only the words.
            let text = text.split(" (os error").next().unwrap_or(&text).to_string();
            write!(f, ": {text} ({} {e})", errno_name(e))?;
        }
        if let Some(h) = &self.hint {
            write!(f, ": {h}")?;
        }
        Ok(())
    }
}

/// The symbolic name of an errno (`ENETUNREACH`), for messages people can search for.
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ERANGE => "ERANGE",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETDOWN => "ENETDOWN",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ENOBUFS => "ENOBUFS",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        _ => "errno",
    }
}

/// A program netconverge runs (`nft`) that could not be run or reported a failure.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// The program is not on `$PATH` nor in the sbin directories.
    #[error("{program} is not installed (Debian package `{package}`)")]
    NotInstalled {
        /// The program.
        program: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// The program could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Its input could not be written, or its output not read.
    #[error("cannot write to {program}: {source}")]
    Io {
        /// The program.
        program: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It ran and failed; `stderr` holds its non-empty error lines joined with ` / `.
    #[error("{stderr}")]
    Failed {
        /// The program.
        program: &'static str,
        /// What it printed on stderr, one line.
        stderr: String,
    },
}

impl ProgramError {
    /// True when the program said it lacks the privileges (EPERM from the kernel).
    pub fn not_permitted(&self) -> bool {
        matches!(self, ProgramError::Failed { stderr, .. } if stderr.contains("Operation not permitted"))
    }
}

/// A lease time that dnsmasq cannot take.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// Not a number with a unit, nor `infinite`.
    #[error(
        "lease `{0}` is not a lease time: write a number with a unit s, m, h, d or w (e.g. 12h), or `infinite`"
    )]
    Syntax(String),
    /// Shorter than dnsmasq's minimum (it would silently raise it).
    #[error("lease of {0} s is shorter than dnsmasq's minimum of 2 minutes (2m)")]
    TooShort(u64),
    /// Too long for dnsmasq's 32-bit lease times.
    #[error("lease of {0} s is too long; write `infinite` for leases that never expire")]
    TooLong(u64),
}

/// A string that is not a MAC address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MacAddrError {
    /// Not six groups separated by `:` or `-`.
    #[error("`{0}` is not a MAC address (six hex bytes separated by `:`)")]
    Shape(String),
    /// A group that is not a hex byte.
    #[error("`{input}` is not a MAC address: `{byte}` is not a hex byte")]
    Byte {
        /// The whole input.
        input: String,
        /// The group at fault.
        byte: String,
        /// Why it does not parse.
        #[source]
        source: ParseIntError,
    },
}

/// A string that is not a sysctl name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a sysctl name (like net.ipv4.ip_forward)")]
pub struct SysctlNameError(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn kernel_errors_read_as_one_paragraph() {
        let e = KernelError::new("add", "route default table 1", Some(libc::ENETUNREACH))
            .with_hint("the gateway is not on a connected network");
        assert_eq!(
            e.to_string(),
            "add route default table 1: Network is unreachable (ENETUNREACH 101): the gateway is not on a connected network"
        );
        assert!(e.source().is_none());
    }

    #[test]
    fn io_errors_keep_their_cause_and_errno() {
        let e = KernelError::io(
            "read",
            "sysctl x.y",
            std::io::Error::from_raw_os_error(libc::EACCES),
        );
        assert_eq!(e.errno, Some(libc::EACCES));
        assert!(e.source().is_some());
        // The cause is not part of equality: the errno already says it.
        assert_eq!(
            e,
            KernelError::new("read", "sysctl x.y", Some(libc::EACCES))
        );
        let cloned = e.clone();
        assert!(cloned.source().is_some());
    }

    #[test]
    fn program_errors_say_what_failed() {
        let missing = ProgramError::NotInstalled {
            program: "nft",
            package: "nftables",
        };
        assert_eq!(
            missing.to_string(),
            "nft is not installed (Debian package `nftables`)"
        );
        let eperm = ProgramError::Failed {
            program: "nft",
            stderr: "Error: Could not process rule: Operation not permitted".into(),
        };
        assert!(eperm.not_permitted());
        assert!(!missing.not_permitted());
    }
}
