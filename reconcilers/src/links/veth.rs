//! Veth pairs: created with their peer in one request; the peer is read back from `IFLA_LINK`.

use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkMessage};

use super::netlink::{
    named_message, parent_in_other_netns, parent_index, push_link_info, NameByIndex,
};
use crate::model::{LinkKind, VethOpts};

/// The kind of a dumped veth end. A veth whose peer lives in another namespace (or whose peer
/// index is unknown here) cannot be described by `VethOpts` and is `External`.
pub fn parse(msg: &LinkMessage, names: &NameByIndex) -> LinkKind {
    if parent_in_other_netns(msg) {
        return LinkKind::External;
    }
    match parent_index(msg).and_then(|i| names.get(&i)) {
        Some(peer) => LinkKind::Veth(VethOpts {
            peer: peer.to_string(),
        }),
        None => LinkKind::External,
    }
}

/// The creation request body for the pair `name` ↔ `opts.peer` (sent with
/// `netlink::CREATE_FLAGS`; both ends appear at once).
pub fn create_message(name: &str, opts: &VethOpts) -> LinkMessage {
    let mut msg = named_message(name);
    let mut peer = named_message(&opts.peer);
    // The peer is born marked too (see `model::CREATE_GROUP`).
    peer.attributes
        .push(LinkAttribute::Group(crate::model::CREATE_GROUP));
    push_link_info(
        &mut msg,
        InfoKind::Veth,
        Some(InfoData::Veth(InfoVeth::Peer(peer))),
    );
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::netlink::{info_data, link_name};
    use netlink_packet_route::link::LinkAttribute;

    #[test]
    fn peer_from_link_index() {
        let mut msg = named_message("v0");
        msg.attributes.push(LinkAttribute::Link(4));
        let names: NameByIndex = [(4, "v1".into())].into();
        assert_eq!(
            parse(&msg, &names),
            LinkKind::Veth(VethOpts { peer: "v1".into() })
        );
        msg.attributes.push(LinkAttribute::LinkNetNsId(0));
        assert_eq!(parse(&msg, &names), LinkKind::External);
    }

    #[test]
    fn unknown_peer_is_external() {
        let msg = named_message("v0");
        assert_eq!(parse(&msg, &NameByIndex::new()), LinkKind::External);
    }

    #[test]
    fn create_names_the_peer() {
        let msg = create_message("v0", &VethOpts { peer: "v1".into() });
        match info_data(&msg) {
            Some(InfoData::Veth(InfoVeth::Peer(p))) => assert_eq!(link_name(p), Some("v1")),
            other => panic!("{other:?}"),
        }
    }
}
