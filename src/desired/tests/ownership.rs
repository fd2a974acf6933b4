//! Ownership: the protocol that marks netconverge's routes and rules (`owner:`), and the
//! `managed:` section of a `show` snapshot that says which observed objects carried its marks.

use std::collections::BTreeSet;

use reconcilers::model::object::{ObjectKind, ObjectRef};
use reconcilers::model::DEFAULT_PROTOCOL;

use super::{load, refused_once};

#[test]
fn the_owner_protocol_is_declared_or_the_default() {
    assert_eq!(load("owner: { protocol: 200 }\n").protocol, 200);
    assert_eq!(load("owner: { protocol: 5 }\n").protocol, 5);
    assert_eq!(load("owner: { protocol: 255 }\n").protocol, 255);
    assert_eq!(load("owner: {}\n").protocol, DEFAULT_PROTOCOL);
    assert_eq!(load("tables: { wrt: 101 }\n").protocol, DEFAULT_PROTOCOL);
    assert_eq!(DEFAULT_PROTOCOL, 157);
    refused_once("owner: { protocol: 4 }\n", 1, 20, "reserved");
    refused_once("owner: { protocol: 256 }\n", 1, 20, "out of range");
}

const SNAPSHOT: &str = "\
links:
  br0: { kind: bridge, addresses: [10.0.0.1/24] }
  eth0: { kind: external }
routes:
  - { to: 10.9.0.0/16, dev: br0 }
managed:
  links: [br0]
  addresses: [\"10.0.0.1/24 on br0\"]
";

#[test]
fn a_snapshots_managed_section_is_read_into_ownership() {
    let d = load(SNAPSHOT);
    let want: BTreeSet<ObjectRef> = [
        ObjectRef::new(ObjectKind::Link, "br0"),
        ObjectRef::new(ObjectKind::Address, "10.0.0.1/24 on br0"),
    ]
    .into_iter()
    .collect();
    assert_eq!(d.managed.as_ref(), Some(&want));
    // The desired side owns nothing; the observed side owns what the section lists.
    assert!(d.state.links.values().all(|l| !l.owned));
    let observed = d.observed_state();
    let owned: Vec<(&str, bool)> = observed
        .links
        .values()
        .map(|l| (l.name.as_str(), l.owned))
        .collect();
    assert_eq!(owned, [("br0", true), ("eth0", false)]);
    assert!(observed.addresses.values().all(|a| a.owned));
    assert_eq!(observed.addresses.len(), 1);
    assert!(observed.routes.values().all(|r| !r.owned));
    assert_eq!(observed.routes.len(), 1);
}

#[test]
fn without_a_managed_section_a_snapshot_is_all_owned() {
    let d = load("links:\n  br0: { kind: bridge }\n");
    assert_eq!(d.managed, None);
    let observed = d.observed_state();
    assert_eq!(observed.links.len(), 1);
    assert!(observed.links["br0"].owned);
}
