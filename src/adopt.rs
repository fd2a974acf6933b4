//! `show --adopt`: hand the objects `show` printed to netconverge, by writing its ownership
//! marks on them — the link alias on links, protocol 157 on routes and rules — so that
//! removing one from the file later removes it from the kernel.
//!
//! Addresses carry no mark of their own that can be changed in place (the kernel keeps an
//! address's IFA_PROTO on replace; deleting and adding it again would take its routes with
//! it): an address is netconverge's when its link is, so adopting a link adopts its
//! addresses, and the addresses of links netconverge does not create (`external`: a NIC)
//! stay foreign.

use reconcilers::kernel::Kernel;
use reconcilers::model::{LinkKind, State, LINK_ALIAS};
use reconcilers::plan::{LinkSet, Op};

/// The writes that adopt the foreign objects of `state`, in the order they must be sent: the
/// links' alias, then the routes replaced with netconverge's protocol, then each rule deleted
/// and added again with it (a rule cannot be replaced in place).
pub fn batches(state: &State) -> Vec<Vec<Op>> {
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
        .filter(|r| !r.owned)
        .map(|r| Op::ReplaceRoute(r.clone()))
        .collect();
    let rules: Vec<_> = state.rules.values().filter(|r| !r.owned).collect();
    let delete_rules = rules.iter().map(|r| Op::DeleteRule((*r).clone())).collect();
    let add_rules = rules.iter().map(|r| Op::AddRule((*r).clone())).collect();
    vec![links, routes, delete_rules, add_rules]
}

/// `state` as it will be once adopted: what [`batches`] marks is owned, and so are the
/// addresses on the links it marks.
pub fn adopted(mut state: State) -> State {
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
    state.routes.values_mut().for_each(|r| r.owned = true);
    state.rules.values_mut().for_each(|r| r.owned = true);
    state
}

/// Send the adopting writes; the errors of the ones that failed (later batches are not sent
/// after a failure).
pub async fn apply<K: Kernel>(kernel: &mut K, state: &State) -> Vec<String> {
    for batch in batches(state).into_iter().filter(|b| !b.is_empty()) {
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
        let b = batches(&foreign());
        assert_eq!(b.len(), 4);
        let names: Vec<&str> = b[0]
            .iter()
            .map(|op| match op {
                Op::SetLink(s) if s.alias.as_deref() == Some(LINK_ALIAS) => s.name.as_str(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(names, ["br9"]);
        let a = adopted(foreign());
        assert!(a.links["br9"].owned && !a.links["eth0"].owned);
    }

    #[tokio::test]
    async fn adopted_links_are_owned_on_the_fake_kernel() {
        let mut k = FakeKernel::default();
        k.state = foreign();
        let state = k.state.clone();
        assert!(apply(&mut k, &state).await.is_empty());
        let seen = k.observe(&[]).await.unwrap();
        assert!(seen.links["br9"].owned, "{:?}", seen.links["br9"]);
        assert!(!seen.links["eth0"].owned);
    }
}
