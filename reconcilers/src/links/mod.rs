//! Links: creation, deletion and attributes of interfaces, one submodule per link kind.

pub mod bridge;
pub mod external;
pub mod macvlan;
pub mod netlink;
pub mod tap;
pub mod veth;
pub mod vxlan;

mod diff;
pub mod ports;

pub(crate) use diff::satisfied;
pub use diff::{diff, effective_up, without_replaced, LinkDiff};
