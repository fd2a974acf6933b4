//! addresses reconciler.

pub mod netlink;
