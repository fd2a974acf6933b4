//! The rtnetlink protocol of every route, rule and address, for commit-confirmed snapshots:
//! the model keeps only whether an object is netconverge's, and a revert must write a
//! foreign object back with the protocol it had.

use std::collections::HashSet;

use netlink_packet_route::rule::RuleAttribute;
use netlink_packet_route::AddressFamily;

use super::RtnlKernel;
use crate::error::KernelError;
use crate::links::netlink as links;
use crate::model::object::ObjectRef;
use crate::snapshot::Protocols;
use crate::{addresses, routes, rules};

impl RtnlKernel {
    /// Dump links (for names), addresses, routes and rules, and read each one's protocol.
    pub(super) async fn dump_protocols(&mut self) -> Result<Protocols, KernelError> {
        let mut out = Protocols::new();
        let link_msgs = self.dump_links().await?;
        let names = links::names_by_index(&link_msgs);
        // Ownership does not matter here: only the identity and the protocol are kept.
        let owned_links = HashSet::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            for msg in self.dump_addresses(family).await? {
                let parsed =
                    addresses::netlink::parse_address(&msg, &names, &owned_links, self.protocol);
                if let (Some(a), Some(p)) = (parsed, addresses::netlink::protocol(&msg)) {
                    out.insert(ObjectRef::address(&a), u8::from(p));
                }
            }
            for msg in self.dump_routes(family).await? {
                if let Some(r) = routes::netlink::parse_route(&msg, &names, self.protocol) {
                    out.insert(ObjectRef::route(&r), u8::from(msg.header.protocol));
                }
            }
            for msg in self.dump_rules(family).await? {
                if let Some(r) = rules::netlink::parse_rule(&msg, self.protocol) {
                    let p = msg.attributes.iter().find_map(|a| match a {
                        RuleAttribute::Protocol(p) => Some(u8::from(*p)),
                        _ => None,
                    });
                    out.insert(ObjectRef::rule(&r), p.unwrap_or(0));
                }
            }
        }
        Ok(out)
    }
}
