//! routes reconciler.

pub mod netlink;
