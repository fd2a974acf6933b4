//! External links: every link netconverge does not create — NICs, `lo`, links without a kind,
//! kinds it does not manage (dummy, vlan, bond, wireguard, tun, …) and managed kinds it cannot
//! describe (a veth whose peer is in another namespace). Only their generic attributes (mtu,
//! mac, up, master, addresses) are ever managed; they are never created or deleted.

use netlink_packet_route::link::InfoKind;

use super::netlink::link_id;
use crate::error::KernelError;

/// True for the `IFLA_INFO_KIND`s that map onto a `LinkKind` other than `External` (a tun
/// link still needs its type checked: only taps are managed).
pub fn is_managed_kind(kind: &InfoKind) -> bool {
    matches!(
        kind,
        InfoKind::Bridge | InfoKind::Tun | InfoKind::Veth | InfoKind::Vxlan | InfoKind::MacVlan
    )
}

/// The error for an attempt to create an external link: the planner never asks for one, so
/// this is a bug guard with a readable message.
pub fn refuse_create(name: &str) -> KernelError {
    KernelError::new("create", link_id(name), None)
        .with_hint("external links are never created; they must already exist")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_kinds() {
        assert!(is_managed_kind(&InfoKind::Bridge));
        assert!(is_managed_kind(&InfoKind::MacVlan));
        assert!(!is_managed_kind(&InfoKind::Dummy));
        assert!(!is_managed_kind(&InfoKind::Other("foo".into())));
    }
}
