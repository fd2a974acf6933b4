//! DHCP and DNS for the VMs on a bridge: one dnsmasq per bridge, its configuration rendered
//! from the desired state and kept under a per-namespace state directory.
//!
//! (Skeleton: the dnsmasq work fills this in.)

use serde::{Deserialize, Serialize};

use crate::kernel::KernelError;
use crate::model::State;
use crate::plan::Change;

/// The desired or observed DHCP/DNS service of one bridge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpServer {
    /// The bridge it serves.
    pub bridge: String,
    /// The rendered dnsmasq configuration.
    pub config: String,
}

/// A change to a bridge's dnsmasq instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhcpOp {
    /// Write the configuration and start, reload or restart the instance as needed.
    Apply(DhcpServer),
    /// Stop the instance of this bridge and remove its files.
    Stop(String),
}

/// Diff the DHCP part of the state.
pub fn diff(_desired: &State, _observed: &State) -> Vec<Change> {
    Vec::new()
}

/// Find the running instances of the namespace `netns` (`None`: the caller's own).
pub fn observe(
    _netns: Option<&str>,
) -> Result<std::collections::BTreeMap<String, DhcpServer>, KernelError> {
    Ok(Default::default())
}

/// Apply one op; processes are started from the calling thread, so they run in its namespace.
pub fn apply(_op: &DhcpOp, _netns: Option<&str>) -> Result<(), KernelError> {
    Ok(())
}
