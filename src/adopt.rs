//! `show --adopt`: hand the objects `show` printed to netconverge, by writing its ownership
//! marks on them — the link alias on links, protocol 157 on routes and rules — so that
//! removing one from the file later removes it from the kernel.
//!
//! Addresses carry no mark of their own that can be changed in place (the kernel keeps an
//! address's IFA_PROTO on replace; deleting and adding it again would take its routes with
//! it): an address is netconverge's when its link is, so adopting a link adopts its
//! addresses, and the addresses of links netconverge does not create (`external`: a NIC)
//! stay foreign. Routes and rules are adopted whatever link they use — as those netconverge
//! writes itself on an `external` NIC are its own — except the ones a running program keeps
//! (a DHCP client, router advertisements, a routing daemon: any protocol but a static
//! configuration's), whose protocol netconverge must not take over: that program would
//! rewrite them, and the two would fight.

use reconcilers::kernel::Kernel;
use reconcilers::model::object::ObjectRef;
use reconcilers::model::{LinkKind, State, LINK_ALIAS};
use reconcilers::plan::{LinkSet, Op};
use reconcilers::snapshot::Protocols;

/// The rtnetlink protocols of a static configuration, which `show --adopt` takes over:
/// unspec (0, `ip rule add`), boot (3, `ip route add`, ifupdown) and static (4, an
/// administrator's, networkd's and NetworkManager's static routes).
const STATIC_PROTOCOLS: [u8; 3] = [0, 3, 4];

/// May the route or rule `id` be adopted? Not when a running program keeps it (its protocol
/// is not a static configuration's); one whose protocol is unknown is.
fn static_config(id: &ObjectRef, protocols: &Protocols) -> bool {
    protocols
        .get(id)
        .is_none_or(|p| STATIC_PROTOCOLS.contains(p))
}

/// The writes that adopt the foreign objects of `state` (with their `protocols`), in the
/// order they must be sent: the links' alias, then the routes replaced with netconverge's
/// protocol, then each rule deleted and added again with it (a rule cannot be replaced in
/// place).
pub fn batches(state: &State, protocols: &Protocols) -> Vec<Vec<Op>> {
    let links = state
        .links
        .values()
        .filter(|l| !l.owned && l.kind != LinkKind::External)
        .map(|l| {
            let mut set = LinkSet::new(&l.name);
            set.alias = Some(LINK_ALIAS.to_string());
            Op::SetLink(set)
        })
        .collect();
    let routes = state
        .routes
        .values()
        .filter(|r| !r.owned && static_config(&ObjectRef::route(r), protocols))
        .map(|r| Op::ReplaceRoute(r.clone()))
        .collect();
    let rules: Vec<_> = state
        .rules
        .values()
        .filter(|r| !r.owned && static_config(&ObjectRef::rule(r), protocols))
        .collect();
    let delete_rules = rules.iter().map(|r| Op::DeleteRule((*r).clone())).collect();
    let add_rules = rules.iter().map(|r| Op::AddRule((*r).clone())).collect();
    vec![links, routes, delete_rules, add_rules]
}

/// `state` as it will be once adopted: what [`batches`] marks is owned, and so are the
/// addresses on the links it marks.
pub fn adopted(mut state: State, protocols: &Protocols) -> State {
    let mut links = std::collections::BTreeSet::new();
    for l in state.links.values_mut() {
        if l.kind != LinkKind::External {
            l.owned = true;
            links.insert(l.name.clone());
        }
    }
    for a in state.addresses.values_mut() {
        a.owned |= links.contains(&a.link);
    }
    for r in state.routes.values_mut() {
        r.owned |= static_config(&ObjectRef::route(r), protocols);
    }
    for r in state.rules.values_mut() {
        r.owned |= static_config(&ObjectRef::rule(r), protocols);
    }
    state
}

/// Send the adopting writes; the errors of the ones that failed (later batches are not sent
/// after a failure).
pub async fn apply<K: Kernel>(kernel: &mut K, state: &State, protocols: &Protocols) -> Vec<String> {
    for batch in batches(state, protocols)
        .into_iter()
        .filter(|b| !b.is_empty())
    {
        let failures: Vec<String> = kernel
            .apply(&batch)
            .await
            .into_iter()
            .filter_map(|r| r.err().map(|e| e.to_string()))
            .collect();
        if !failures.is_empty() {
            return failures;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconcilers::kernel::fake::FakeKernel;
    use reconcilers::model::Link;

    fn foreign() -> State {
        let mut s = State::default();
        s.add_link(Link::new("eth0", LinkKind::External));
        s.add_link(Link::new("br9", LinkKind::Bridge(Default::default())));
        s
    }

    #[test]
    fn links_netconverge_creates_get_the_alias_external_ones_do_not() {
        let b = batches(&foreign(), &Protocols::new());
        assert_eq!(b.len(), 4);
        let names: Vec<&str> = b[0]
            .iter()
            .map(|op| match op {
                Op::SetLink(s) if s.alias.as_deref() == Some(LINK_ALIAS) => s.name.as_str(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(names, ["br9"]);
        let a = adopted(foreign(), &Protocols::new());
        assert!(a.links["br9"].owned && !a.links["eth0"].owned);
    }

    #[tokio::test]
    async fn adopted_links_are_owned_on_the_fake_kernel() {
        let mut k = FakeKernel::default();
        k.state = foreign();
        let state = k.state.clone();
        assert!(apply(&mut k, &state, &Protocols::new()).await.is_empty());
        let seen = k.observe(&[]).await.unwrap();
        assert!(seen.links["br9"].owned, "{:?}", seen.links["br9"]);
        assert!(!seen.links["eth0"].owned);
    }

    fn route(to: &str) -> reconcilers::model::Route {
        use reconcilers::model::{NextHop, Route, RouteType, Scope};
        Route {
            table: 254,
            to: to.parse().unwrap(),
            tos: 0,
            metric: 0,
            kind: RouteType::Unicast,
            nexthops: vec![NextHop {
                via: Some("192.168.7.1".parse().unwrap()),
                dev: Some("eth0".into()),
                weight: 1,
                onlink: false,
            }]
            .into(),
            src: None,
            scope: Scope::Global,
            mtu: None,
            owned: false,
        }
    }

    fn rule() -> reconcilers::model::Rule {
        use reconcilers::model::{Family, Rule, RuleAction, RuleKey};
        Rule {
            key: RuleKey::all(1000, Family::Inet),
            action: RuleAction::Lookup(101),
            owned: false,
        }
    }

    #[test]
    fn routes_a_running_program_keeps_stay_foreign_static_ones_are_adopted() {
        let mut s = foreign();
        let (boot, dhcp, unknown) = (
            route("10.5.0.0/16"),
            route("0.0.0.0/0"),
            route("10.6.0.0/16"),
        );
        let rule = rule();
        let mut protocols = Protocols::new();
        protocols.insert(ObjectRef::route(&boot), 3);
        protocols.insert(ObjectRef::route(&dhcp), 16);
        protocols.insert(ObjectRef::rule(&rule), 0);
        for r in [&boot, &dhcp, &unknown] {
            s.add_route(r.clone());
        }
        s.add_rule(rule.clone());
        let b = batches(&s, &protocols);
        assert_eq!(
            b[1],
            [
                Op::ReplaceRoute(boot.clone()),
                Op::ReplaceRoute(unknown.clone())
            ]
        );
        assert_eq!(b[2], [Op::DeleteRule(rule.clone())]);
        assert_eq!(b[3], [Op::AddRule(rule.clone())]);
        let a = adopted(s, &protocols);
        assert!(a.routes[&boot.key()].owned && a.routes[&unknown.key()].owned);
        assert!(!a.routes[&dhcp.key()].owned);
        assert!(a.rules.values().all(|r| r.owned));
        protocols.insert(ObjectRef::rule(&rule), 186);
        let mut s = foreign();
        s.add_rule(rule);
        assert!(batches(&s, &protocols)[2].is_empty());
        assert!(!adopted(s, &protocols).rules.values().any(|r| r.owned));
    }
}
