//! The rules reconciler (diff) and its rtnetlink codec (netlink).

pub mod netlink;

mod diff;

pub use diff::{diff, id, shadows};
