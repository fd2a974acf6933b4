//! The boundary between the reconcilers and the kernel.
//!
//! Planning code only ever sees `State` and `Op`; the `Kernel` trait turns ops into writes.
//! `netlink::RtnlKernel` talks rtnetlink (plus `/dev/net/tun` and `/proc/sys`), `fake::FakeKernel`
//! applies ops to an in-memory `State` so that planning is testable without root.

use std::fmt;
use std::future::Future;

use crate::model::State;
use crate::plan::Op;

pub mod events;
pub mod fake;
pub mod netlink;
pub mod netns;
pub mod tap;

/// A failed kernel operation, with enough context to act on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelError {
    /// What the operation was about (`route default via 192.168.1.254 table 102`).
    pub object: String,
    /// The operation (`add`, `delete`, `set`, `dump`, …).
    pub operation: String,
    /// The errno, when the kernel gave one.
    pub errno: Option<i32>,
    /// A hint on the likely cause, when one is known.
    pub hint: Option<String>,
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
        }
    }

    /// Attach a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The symbolic name of an errno (`ENETUNREACH`), for messages people can search for.
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
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

impl std::error::Error for KernelError {}

/// What the reconcilers need from a kernel.
pub trait Kernel {
    /// Read the whole state: links, addresses, routes of every table, rules, and the sysctls
    /// named in `sysctls` (missing ones are left out of the result).
    fn observe(&mut self, sysctls: &[String]) -> impl Future<Output = Result<State, KernelError>>;

    /// Send a batch of writes that do not depend on each other, pipelined; one result per op,
    /// in the same order.
    fn apply(&mut self, ops: &[Op]) -> impl Future<Output = Vec<Result<(), KernelError>>>;

    /// How many write requests this kernel has been sent so far (for "a no-op reconcile writes
    /// nothing" checks).
    fn writes(&self) -> u64;
}
