//! netconverge's own nftables table(s) (`inet netconverge`, `ip netconverge_nat`): packet
//! marks, connection tracking of providers and masquerade, replaced atomically in one `nft`
//! transaction and never touching other tables.
//!
//! (Skeleton: the providers work fills this in.)

use serde::{Deserialize, Serialize};

use crate::kernel::KernelError;
use crate::model::State;
use crate::plan::Change;

/// The desired or observed content of netconverge's nftables table(s).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firewall {
    /// The canonical ruleset text.
    pub ruleset: String,
}

/// A write to netconverge's nftables table(s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirewallOp {
    /// Replace the table(s) with this content, atomically.
    Replace(Firewall),
    /// Delete the table(s).
    Delete,
}

/// Diff the firewall part of the state.
pub fn diff(_desired: &State, _observed: &State) -> Vec<Change> {
    Vec::new()
}

/// Read netconverge's table(s) in the calling thread's namespace (`None` when absent).
pub fn observe() -> Result<Option<Firewall>, KernelError> {
    Ok(None)
}

/// Apply one firewall op in the calling thread's namespace.
pub fn apply(_op: &FirewallOp) -> Result<(), KernelError> {
    Ok(())
}
