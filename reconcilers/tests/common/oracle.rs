//! An oracle for passes on the fake kernel that does not go through the planner: it reads what
//! the fake holds (`FakeKernel::state`, its nft tables, its dnsmasq instances) and compares
//! that with the desired state object by object, in the model's own terms.
//!
//! A pass is right when
//! - the kernel holds every desired object as desired, for every kind of the table of kinds
//!   ([`holds`]; ownership marks aside, and only the attributes the desired object manages);
//! - every foreign object of the kernel before the pass is still there, unchanged, unless a
//!   desired object sits at its key or the link it lives on was netconverge's and is gone
//!   ([`foreign_kept`]);
//! - every object netconverge owns afterwards is desired, so whatever it owned and no longer
//!   wants is gone ([`only_desired_owned`]).
//!
//! Property tests call [`pass`] (the three together) after a reconcile; tests of other ways of
//! changing the kernel (a revert, a pass with injected faults that is then repeated) can call
//! the parts they need.

use std::collections::BTreeSet;
use std::net::IpAddr;

use reconcilers::kernel::fake::FakeKernel;
use reconcilers::kinds::KINDS;
use reconcilers::model::object::ObjectKind;
use reconcilers::model::{normalize_sysctl_value, Link, LinkKind, State};

/// What went wrong, in words a failing test prints.
pub type Verdict = Result<(), String>;

/// `holds`, `foreign_kept` and `only_desired_owned` for one pass: `before` is the fake's
/// network before the pass (`k.state.clone()`), `k` the fake after it.
pub fn pass(before: &State, k: &FakeKernel, desired: &State) -> Verdict {
    holds(k, desired)?;
    foreign_kept(before, &k.state, desired)?;
    only_desired_owned(&k.state, desired)
}

/// The fake holds every desired object, for every kind in the table of kinds. The match has no
/// catch-all, so a new kind does not compile here until the oracle knows what it means.
pub fn holds(k: &FakeKernel, desired: &State) -> Verdict {
    for kind in &KINDS {
        match kind.kind() {
            ObjectKind::Link => links_hold(&k.state, desired)?,
            ObjectKind::Address => addresses_hold(&k.state, desired)?,
            ObjectKind::Route => routes_hold(&k.state, desired)?,
            ObjectKind::Rule => rules_hold(&k.state, desired)?,
            ObjectKind::Sysctl => sysctls_hold(&k.state, desired)?,
            ObjectKind::Firewall => firewall_holds(k, desired)?,
            ObjectKind::Dhcp => dhcp_holds(k, desired)?,
        }
    }
    Ok(())
}

/// `Some` desired values are what the kernel has; `None` is not managed.
fn managed<T: PartialEq + std::fmt::Debug>(
    what: &str,
    want: &Option<T>,
    have: &Option<T>,
) -> Verdict {
    match want {
        Some(w) if Some(w) != have.as_ref() => {
            Err(format!("{what}: want {w:?}, kernel has {have:?}"))
        }
        _ => Ok(()),
    }
}

fn links_hold(kernel: &State, desired: &State) -> Verdict {
    for d in desired.links.values() {
        let Some(l) = kernel.links.get(&d.name) else {
            // A missing external link is the host checks' business, not the planner's.
            if d.kind == LinkKind::External {
                continue;
            }
            return Err(format!("link {} missing", d.name));
        };
        let what = format!("link {}", d.name);
        link_kind_holds(&what, &d.kind, &l.kind)?;
        managed(&format!("{what} mtu"), &d.mtu, &l.mtu)?;
        managed(&format!("{what} mac"), &d.mac, &l.mac)?;
        // Links netconverge creates are up unless the desired state says otherwise.
        let up = match d.kind {
            LinkKind::External => d.up,
            _ => Some(d.up.unwrap_or(true)),
        };
        managed(&format!("{what} up"), &up, &l.up)?;
        if d.master.is_some() || l.owned {
            // On a link netconverge owns, no master means not a port of any bridge.
            if d.master != l.master {
                return Err(format!(
                    "{what} master: want {:?}, kernel has {:?}",
                    d.master, l.master
                ));
            }
        }
    }
    Ok(())
}

/// The kind and the options the desired link gives (the kernel fills in the others).
fn link_kind_holds(what: &str, want: &LinkKind, have: &LinkKind) -> Verdict {
    let ok = match (want, have) {
        (LinkKind::External, _) => true,
        (LinkKind::Bridge(w), LinkKind::Bridge(h)) => {
            some_equal(&w.stp, &h.stp) && some_equal(&w.forward_delay, &h.forward_delay)
        }
        (LinkKind::Tap(w), LinkKind::Tap(h)) => {
            some_equal(&w.owner, &h.owner)
                && some_equal(&w.group, &h.group)
                && some_equal(&w.vnet_hdr, &h.vnet_hdr)
                && w.multi_queue.unwrap_or(false) == h.multi_queue.unwrap_or(false)
        }
        (LinkKind::Veth(w), LinkKind::Veth(h)) => w == h,
        (LinkKind::Vxlan(w), LinkKind::Vxlan(h)) => {
            w.id == h.id
                && some_equal(&w.local, &h.local)
                && some_equal(&w.remote, &h.remote)
                && some_equal(&w.dev, &h.dev)
                && w.port.unwrap_or(4789) == h.port.unwrap_or(4789)
        }
        (LinkKind::Macvlan(w), LinkKind::Macvlan(h)) => w == h,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: want {want:?}, kernel has {have:?}"))
    }
}

fn some_equal<T: PartialEq>(want: &Option<T>, have: &Option<T>) -> bool {
    want.is_none() || want == have
}

fn addresses_hold(kernel: &State, desired: &State) -> Verdict {
    for (key, d) in &desired.addresses {
        if !kernel.addresses.contains_key(key) {
            return Err(format!("address {} on {} missing", d.address, d.link));
        }
    }
    Ok(())
}

fn routes_hold(kernel: &State, desired: &State) -> Verdict {
    for (key, d) in &desired.routes {
        let Some(r) = kernel.routes.get(key) else {
            return Err(format!("route {} missing", d.id()));
        };
        let same = r.kind == d.kind
            && r.nexthops == d.nexthops
            && r.scope == d.scope
            && some_equal(&d.src, &r.src)
            && some_equal(&d.mtu, &r.mtu);
        if !same {
            return Err(format!("route {}: want {d:?}, kernel has {r:?}", d.id()));
        }
    }
    Ok(())
}

fn rules_hold(kernel: &State, desired: &State) -> Verdict {
    for (key, d) in &desired.rules {
        match kernel.rules.get(key) {
            Some(r) if r.action == d.action => {}
            other => return Err(format!("rule {}: want {d:?}, kernel has {other:?}", d.id())),
        }
    }
    Ok(())
}

fn sysctls_hold(kernel: &State, desired: &State) -> Verdict {
    for (name, value) in &desired.sysctls {
        let want = normalize_sysctl_value(value);
        if kernel.sysctls.get(name) != Some(&want) {
            return Err(format!(
                "sysctl {name}: want {want:?}, kernel has {:?}",
                kernel.sysctls.get(name)
            ));
        }
    }
    Ok(())
}

/// The tables loaded are the desired ruleset (what loading adds aside: the digest comment and
/// the gateway sets' elements), and each gateway set whose gateway's MAC is known holds it.
fn firewall_holds(k: &FakeKernel, desired: &State) -> Verdict {
    let listing = k.nft.listing();
    let Some(f) = &desired.firewall else {
        return match listing {
            None => Ok(()),
            Some(l) => Err(format!("no firewall desired, nft has:\n{l}")),
        };
    };
    let Some(listing) = listing else {
        return Err("firewall desired, nft has no tables".into());
    };
    if rendered_part(&listing) != f.ruleset {
        return Err(format!(
            "nft tables differ from the desired ruleset:\n{listing}"
        ));
    }
    for ((ip, dev), mac) in &k.neighbours {
        let IpAddr::V4(gw) = ip else { continue };
        if f.ruleset.contains(&format!("gateway {gw} dev {dev}"))
            && !listing.contains(&format!("elements = {{ {mac} }}"))
        {
            return Err(format!(
                "gateway {gw} on {dev}: {mac} not in its set:\n{listing}"
            ));
        }
    }
    Ok(())
}

/// A listing without what loading adds to the rendered ruleset (the digest comment, the
/// gateway sets' elements): the ruleset itself.
pub fn rendered_part(listing: &str) -> String {
    listing
        .lines()
        .filter(|l| {
            let l = l.trim();
            !l.starts_with("comment \"netconverge ") && !l.starts_with("elements = {")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// One running dnsmasq per desired bridge with the desired files, and no other.
fn dhcp_holds(k: &FakeKernel, desired: &State) -> Verdict {
    let have: Vec<&String> = k.dhcp.keys().collect();
    let want: Vec<&String> = desired.dhcp.keys().collect();
    if have != want {
        return Err(format!(
            "dnsmasq instances: want {want:?}, kernel has {have:?}"
        ));
    }
    for (bridge, d) in &desired.dhcp {
        let o = &k.dhcp[bridge];
        if !o.running || (&o.config, &o.hosts, &o.names) != (&d.config, &d.hosts, &d.names) {
            return Err(format!("dnsmasq on {bridge}: want {d:?}, kernel has {o:?}"));
        }
    }
    Ok(())
}

/// Every foreign object of `before` is in `after` as it was, unless a desired object sits at
/// its key (the desired state is authoritative there) or it lived on a link netconverge owned
/// that is gone (the kernel drops it with the link).
pub fn foreign_kept(before: &State, after: &State, desired: &State) -> Verdict {
    let gone_owned: BTreeSet<&str> = before
        .links
        .values()
        .filter(|l| l.owned && !after.links.contains_key(&l.name))
        .map(|l| l.name.as_str())
        .collect();
    for l in before.links.values().filter(|l| !l.owned) {
        // A foreign link is never deleted; its desired attributes may be set.
        if !after.links.contains_key(&l.name) {
            return Err(format!("foreign link {} deleted", l.name));
        }
        if !desired.links.contains_key(&l.name) && after.links[&l.name] != *l {
            return Err(format!(
                "foreign link {} changed: {:?}",
                l.name, after.links[&l.name]
            ));
        }
    }
    for (key, a) in before.addresses.iter().filter(|(_, a)| !a.owned) {
        if after.addresses.get(key) != Some(a) && !gone_owned.contains(a.link.as_str()) {
            return Err(format!("foreign address {} on {} lost", a.address, a.link));
        }
    }
    for (key, r) in before.routes.iter().filter(|(_, r)| !r.owned) {
        let through_gone = r
            .nexthops
            .iter()
            .any(|n| n.dev.as_deref().is_some_and(|d| gone_owned.contains(d)));
        if after.routes.get(key) != Some(r) && !desired.routes.contains_key(key) && !through_gone {
            return Err(format!("foreign route {} lost or changed", r.id()));
        }
    }
    for (key, r) in before.rules.iter().filter(|(_, r)| !r.owned) {
        if after.rules.get(key) != Some(r) && !desired.rules.contains_key(key) {
            return Err(format!("foreign rule {} lost or changed", r.id()));
        }
    }
    Ok(())
}

/// Everything netconverge owns in `kernel` is desired (by key; a veth end counts as desired
/// when its peer is, since the pair is one object to the kernel).
pub fn only_desired_owned(kernel: &State, desired: &State) -> Verdict {
    let wanted_link = |l: &Link| {
        desired.links.contains_key(&l.name)
            || matches!(&l.kind, LinkKind::Veth(v) if desired.links.contains_key(&v.peer))
    };
    if let Some(l) = kernel.links.values().find(|l| l.owned && !wanted_link(l)) {
        return Err(format!("owned link {} not desired", l.name));
    }
    if let Some((_, a)) = kernel
        .addresses
        .iter()
        .find(|(k, a)| a.owned && !desired.addresses.contains_key(*k))
    {
        return Err(format!(
            "owned address {} on {} not desired",
            a.address, a.link
        ));
    }
    if let Some((_, r)) = kernel
        .routes
        .iter()
        .find(|(k, r)| r.owned && !desired.routes.contains_key(*k))
    {
        return Err(format!("owned route {} not desired", r.id()));
    }
    if let Some((_, r)) = kernel
        .rules
        .iter()
        .find(|(k, r)| r.owned && !desired.rules.contains_key(*k))
    {
        return Err(format!("owned rule {} not desired", r.id()));
    }
    Ok(())
}
