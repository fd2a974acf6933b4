//! Addresses: the data type of an interface address and its key.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Key of an address: the link and the address with its prefix length (host bits kept).
pub type AddressKey = (String, IpNet);

/// An interface address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// The link carrying it.
    pub link: String,
    /// Address and prefix length, e.g. `10.0.0.1/24`.
    pub address: IpNet,
    /// Observed: carries netconverge's address protocol, or sits on a link netconverge owns.
    #[serde(skip)]
    pub owned: bool,
    /// Observed: an IPv4 address of global scope that the kernel holds as the primary one
    /// of its subnet (no IFA_F_SECONDARY) — what a DHCP client adds, and what a provider's
    /// `local: detect` chooses from. Always false on the desired side.
    #[serde(skip)]
    pub primary: bool,
}

impl Address {
    /// How an address is named in plans: `10.0.0.1/24 on br0`.
    pub fn id(&self) -> String {
        format!("{} on {}", self.address, self.link)
    }

    /// The key of this address.
    pub fn key(&self) -> AddressKey {
        (self.link.clone(), self.address)
    }
}
