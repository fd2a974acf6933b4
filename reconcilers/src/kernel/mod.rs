//! The boundary between the reconcilers and the kernel.
//!
//! Planning code only ever sees `State` and `Op`; the `Kernel` trait turns ops into writes.
//! `netlink::RtnlKernel` talks rtnetlink (plus `/dev/net/tun` and `/proc/sys`), `fake::FakeKernel`
//! applies ops to an in-memory `State` so that planning is testable without root.

use std::future::Future;

// Kept at its old path: the binary crate imports it from here.
pub use crate::error::KernelError;
use crate::model::State;
use crate::plan::Op;

pub mod events;
pub mod fake;
pub mod netlink;
pub mod netns;
pub mod tap;

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
