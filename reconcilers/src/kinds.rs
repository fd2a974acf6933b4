//! The table of object kinds: the one list that everything "for each kind" goes through —
//! planning, object ids, ownership counting for the empty-state guard, `State::is_empty`, the
//! ownership projection of `check --observed`, and the per-kind reports.
//!
//! A kind is a module with a [`Kind`] implementation (see [`crate::kind`]); adding one means
//! writing that module and adding it to [`KINDS`] (its `ObjectKind` variant and `State` field
//! make the compiler point at the rest).

use crate::kernel::Scope;
use crate::kind::{Kind, OwnedKept};
use crate::model::object::ObjectRef;
use crate::model::State;

/// Every kind, in plan order: links first (the others live on them), services last.
pub static KINDS: [&dyn Kind; 7] = [
    &crate::links::KIND,
    &crate::sysctl::KIND,
    &crate::addresses::KIND,
    &crate::routes::KIND,
    &crate::rules::KIND,
    &crate::firewall::KIND,
    &crate::dhcp::KIND,
];

/// What observing must read for `desired`, from every kind.
pub fn scope(desired: &State) -> Scope {
    let mut scope = Scope::default();
    for k in &KINDS {
        k.scope(desired, &mut scope);
    }
    scope
}

/// Every object of `state` in plan order, with its ownership mark.
pub fn objects(state: &State) -> Vec<(ObjectRef, bool)> {
    KINDS.iter().flat_map(|k| k.objects(state)).collect()
}

/// The empty-state guard: true when applying `desired` would remove every object
/// netconverge owns in `observed` (and it owns at least one) — what an empty or truncated
/// desired file looks like.
pub fn removes_everything_owned(desired: &State, observed: &State) -> bool {
    let mut owned = false;
    for k in KINDS {
        match k.owned_kept(desired, observed) {
            OwnedKept::SomeKept => return false,
            OwnedKept::NoneKept => owned = true,
            OwnedKept::NoneOwned => {}
        }
    }
    owned
}

impl State {
    /// True when the state holds no object of any kind.
    pub fn is_empty(&self) -> bool {
        KINDS.iter().all(|k| k.objects(self).is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::object::ObjectKind;
    use crate::model::{Address, Link, LinkKind, NextHop, Route, RouteType, Scope};

    #[test]
    fn every_object_kind_is_in_the_table_once() {
        let kinds: Vec<ObjectKind> = KINDS.iter().map(|k| k.kind()).collect();
        for k in ObjectKind::ALL {
            assert_eq!(kinds.iter().filter(|x| **x == k).count(), 1, "{k}");
        }
        assert_eq!(kinds[0], ObjectKind::Link, "links plan first");
    }

    fn route(via: &str, owned: bool) -> Route {
        Route {
            table: 1,
            to: "0.0.0.0/0".parse().unwrap(),
            tos: 0,
            metric: 0,
            kind: RouteType::Unicast,
            nexthops: vec![NextHop {
                via: Some(via.parse().unwrap()),
                dev: Some("eth0".into()),
                weight: 1,
                onlink: false,
            }]
            .into(),
            src: None,
            scope: Scope::Global,
            mtu: None,
            owned,
        }
    }

    #[test]
    fn the_guard_counts_every_kind_and_keeps_by_key() {
        let mut observed = State::default();
        observed.add_route(route("192.168.1.1", true));
        // A route whose gateway changes is kept (same key), not removed.
        let mut desired = State::default();
        desired.add_route(route("192.168.1.254", false));
        assert!(!removes_everything_owned(&desired, &observed));
        assert!(removes_everything_owned(&State::default(), &observed));
        // Keeping one of two owned routes is not removing everything; a desired route at
        // another key keeps none.
        let mut other = route("192.168.1.1", true);
        other.to = "10.9.0.0/16".parse().unwrap();
        observed.add_route(other.clone());
        let mut only_other = State::default();
        only_other.add_route(other.clone());
        assert!(!removes_everything_owned(&only_other, &observed));
        other.to = "10.8.0.0/16".parse().unwrap();
        let mut elsewhere = State::default();
        elsewhere.add_route(other);
        assert!(removes_everything_owned(&elsewhere, &observed));
        // Keeping a foreign route keeps nothing netconverge owns.
        let mut foreign_at = route("192.168.1.1", false);
        foreign_at.to = "10.7.0.0/16".parse().unwrap();
        let mut one_owned = State::default();
        one_owned.add_route(route("192.168.1.1", true));
        one_owned.add_route(foreign_at.clone());
        let mut keeps_foreign = State::default();
        keeps_foreign.add_route(foreign_at);
        assert!(removes_everything_owned(&keeps_foreign, &one_owned));
        // Foreign objects do not count.
        let mut foreign = State::default();
        foreign.add_route(route("192.168.1.1", false));
        assert!(!removes_everything_owned(&State::default(), &foreign));
        // The firewall is netconverge's own: an empty desired state would remove it.
        let fw = State {
            firewall: Some(crate::model::firewall::Firewall::new(
                "table inet netconverge {}".into(),
            )),
            ..State::default()
        };
        assert!(removes_everything_owned(&State::default(), &fw));
        assert!(!removes_everything_owned(&fw, &fw));
    }

    #[test]
    fn is_empty_sees_every_kind() {
        assert!(State::default().is_empty());
        let mut s = State::default();
        s.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
        assert!(!s.is_empty());
        let fw = State {
            firewall: Some(crate::model::firewall::Firewall::new(String::new())),
            ..State::default()
        };
        assert!(!fw.is_empty());
    }

    #[test]
    fn a_snapshot_marks_addresses_on_owned_links_as_owned() {
        let mut s = State::default();
        s.add_link(Link::new("br0", LinkKind::Bridge(Default::default())));
        s.add_link(Link::new("eth0", LinkKind::External));
        for (link, a) in [("br0", "10.0.0.1/24"), ("eth0", "192.168.1.20/24")] {
            s.add_address(Address {
                link: link.into(),
                address: a.parse().unwrap(),
                owned: false,
                primary: false,
            });
        }
        let only_br0 = |r: &ObjectRef| *r == ObjectRef::link("br0");
        for k in &KINDS {
            k.set_owned(&mut s, &only_br0);
        }
        let owned: Vec<String> = objects(&s)
            .into_iter()
            .filter(|(_, o)| *o)
            .map(|(r, _)| r.to_string())
            .collect();
        assert_eq!(owned, ["link br0", "address 10.0.0.1/24 on br0"]);
    }
}
