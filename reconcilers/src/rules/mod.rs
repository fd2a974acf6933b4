//! rules reconciler.

pub mod netlink;
