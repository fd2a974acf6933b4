//! The links reconciler: which links to create, change, recreate or delete.

use std::collections::BTreeSet;

use crate::model::object::ObjectRef;
use crate::model::{Link, LinkKind, State, TapOpts, LINK_ALIAS};
use crate::plan::{Action, Change, LinkSet, Object, Op};

use super::ports;

/// True when the desired value is unmanaged (`None`) or equal to the observed one.
pub(crate) fn satisfied<T: PartialEq>(desired: &Option<T>, observed: &Option<T>) -> bool {
    desired.is_none() || desired == observed
}

/// The `up` state netconverge wants: as written, or up for links it creates (a declared
/// bridge or tap that stays down is never what people mean); external links are left alone.
pub fn effective_up(link: &Link) -> Option<bool> {
    match (&link.kind, link.up) {
        (LinkKind::External, up) => up,
        (_, Some(up)) => Some(up),
        (_, None) => Some(true),
    }
}

/// The desired link as it will be: with the effective `up`, so plans and drift reports show
/// the value that is compared.
fn as_applied(link: &Link) -> Object {
    let mut l = link.clone();
    l.up = effective_up(link);
    Object::Link(l)
}

/// The observed link reduced to what `desired` manages, so that a plan's diff shows the
/// attributes that change and not everything the kernel reports.
fn managed_view(observed: &Link, desired: &Link) -> Object {
    let mut l = observed.clone();
    if desired.mtu.is_none() {
        l.mtu = None;
    }
    if desired.mac.is_none() {
        l.mac = None;
    }
    if effective_up(desired).is_none() {
        l.up = None;
    }
    if desired.master.is_none() && !observed.owned {
        l.master = None;
    }
    l.kind = match (&desired.kind, &observed.kind) {
        (LinkKind::External, _) => LinkKind::External,
        (LinkKind::Bridge(d), LinkKind::Bridge(o)) => LinkKind::Bridge(crate::model::BridgeOpts {
            stp: d.stp.and(o.stp),
            forward_delay: d.forward_delay.and(o.forward_delay),
        }),
        (LinkKind::Tap(d), LinkKind::Tap(o)) => LinkKind::Tap(TapOpts {
            owner: d.owner.as_ref().and(o.owner.clone()),
            group: d.group.as_ref().and(o.group.clone()),
            vnet_hdr: d.vnet_hdr.and(o.vnet_hdr),
            multi_queue: d.multi_queue.and(o.multi_queue),
            open_queues: 0,
        }),
        (_, other) => other.clone(),
    };
    Object::Link(l)
}

/// The result of diffing links: the changes, plus the names of links whose kernel object is
/// (re)created or deleted, so that the other reconcilers know the addresses and routes on them
/// will be gone.
#[derive(Debug, Default)]
pub struct LinkDiff {
    /// Changes to links (including bridge-port membership).
    pub changes: Vec<Change>,
    /// Links deleted or recreated by these changes.
    pub replaced: BTreeSet<String>,
    /// Desired links that cannot be reconciled (a foreign link of another kind in the way).
    pub conflicts: Vec<String>,
}

/// Why an existing link must be recreated to match, if it must.
fn recreate_reason(desired: &Link, observed: &Link) -> Option<String> {
    match (&desired.kind, &observed.kind) {
        (LinkKind::External, _) => None,
        (d, o) if std::mem::discriminant(d) != std::mem::discriminant(o) => {
            Some(format!("kind changes from {} to {}", o.name(), d.name()))
        }
        // Recreating a tap a process holds open would cut that process (a VM) off for good:
        // the change waits until the tap is closed (`tap::in_use_note` says so).
        (LinkKind::Tap(_), LinkKind::Tap(o)) if o.in_use() => None,
        (LinkKind::Tap(d), LinkKind::Tap(o)) => {
            let want = d.multi_queue.unwrap_or(false);
            (want != o.multi_queue.unwrap_or(false))
                .then(|| "multi_queue cannot change on an existing tap".to_string())
        }
        (LinkKind::Veth(d), LinkKind::Veth(o)) => {
            (d.peer != o.peer).then(|| format!("veth peer changes from {} to {}", o.peer, d.peer))
        }
        (LinkKind::Vxlan(d), LinkKind::Vxlan(o)) => {
            let same = d.id == o.id
                && satisfied(&d.local, &o.local)
                && satisfied(&d.remote, &o.remote)
                && satisfied(&d.dev, &o.dev)
                && (d.port.unwrap_or(4789) == o.port.unwrap_or(4789));
            (!same).then(|| "vxlan options cannot change in place".to_string())
        }
        (LinkKind::Macvlan(d), LinkKind::Macvlan(o)) => {
            (d != o).then(|| "macvlan parent and mode cannot change in place".to_string())
        }
        _ => None,
    }
}

/// Generic attributes (mtu, mac, up) that differ, as a set request.
fn attribute_set(desired: &Link, observed: Option<&Link>) -> LinkSet {
    let mut set = LinkSet::new(&desired.name);
    let up = effective_up(desired);
    match observed {
        None => {
            set.mtu = desired.mtu;
            set.mac = desired.mac;
            set.up = up;
        }
        Some(o) => {
            if !satisfied(&desired.mtu, &o.mtu) {
                set.mtu = desired.mtu;
            }
            if !satisfied(&desired.mac, &o.mac) {
                set.mac = desired.mac;
            }
            if !satisfied(&up, &o.up) {
                set.up = up;
            }
            if let (LinkKind::Bridge(d), LinkKind::Bridge(ob)) = (&desired.kind, &o.kind) {
                if !satisfied(&d.stp, &ob.stp) || !satisfied(&d.forward_delay, &ob.forward_delay) {
                    set.bridge = Some(d.clone());
                }
            }
        }
    }
    set
}

/// Tap options that differ but can change in place.
fn tap_change(desired: &Link, observed: &Link) -> Option<TapOpts> {
    let (LinkKind::Tap(d), LinkKind::Tap(o)) = (&desired.kind, &observed.kind) else {
        return None;
    };
    // While a process has it open the tap's options are that process's (the kernel refuses a
    // second opener of a single-queue tap, EBUSY, and an opener of a multi-queue one would
    // set the device's vnet_hdr under it); they are applied once it is closed.
    if o.in_use() {
        return None;
    }
    let same = satisfied(&d.owner, &o.owner)
        && satisfied(&d.group, &o.group)
        && satisfied(&d.vnet_hdr, &o.vnet_hdr);
    if same {
        return None;
    }
    Some(TapOpts {
        owner: d.owner.clone().or_else(|| o.owner.clone()),
        group: d.group.clone().or_else(|| o.group.clone()),
        vnet_hdr: d.vnet_hdr.or(o.vnet_hdr),
        multi_queue: o.multi_queue,
        open_queues: 0,
    })
}

/// The ops that create `desired` from nothing (a veth whose peer is created by its partner's
/// op only gets its attributes set).
fn create_ops(desired: &Link, creates_pair: bool) -> Vec<Op> {
    let mut ops = Vec::new();
    if creates_pair {
        ops.push(Op::CreateLink(desired.clone()));
    }
    let mut set = attribute_set(desired, None);
    set.alias = Some(LINK_ALIAS.to_string());
    set.master = ports::master_change(desired, None);
    ops.push(Op::SetLink(set));
    ops
}

/// Of a veth pair that is created in one go, the end whose op creates it: the one with the
/// smaller name when both ends are declared.
fn creates_pair(desired: &Link, state: &State) -> bool {
    match &desired.kind {
        LinkKind::Veth(v) => match state.links.get(&v.peer) {
            Some(peer) if matches!(&peer.kind, LinkKind::Veth(p) if p.peer == desired.name) => {
                desired.name < peer.name
            }
            _ => true,
        },
        _ => true,
    }
}

/// Diff the links of `desired` against `observed`.
pub fn diff(desired: &State, observed: &State) -> LinkDiff {
    let mut out = LinkDiff::default();
    for d in desired.links.values() {
        match observed.links.get(&d.name) {
            // A missing external link is reported by the host checks before any write.
            None if d.kind == LinkKind::External => {}
            None => add(d, desired, &mut out),
            Some(o) => existing(d, o, &mut out),
        }
    }
    for o in observed.links.values() {
        if !o.owned || desired.links.contains_key(&o.name) {
            continue;
        }
        // Deleting one end of a veth deletes the other: keep an undeclared end whose peer is
        // still wanted, and finish its mark if a crash came between its creation and its alias
        // (the declared end's own mark is finished by `existing`).
        if let LinkKind::Veth(v) = &o.kind {
            if desired.links.contains_key(&v.peer) {
                if o.mark_pending {
                    out.changes.push(finish_mark(o));
                }
                continue;
            }
        }
        out.changes.push(Change {
            action: Action::Remove,
            object: ObjectRef::link(&o.name),
            before: Some(Object::Link(o.clone())),
            after: None,
            note: None,
            ops: vec![Op::DeleteLink(o.name.clone())],
        });
        out.replaced.insert(o.name.clone());
    }
    out
}

/// Write the alias on a link of netconverge's that only carries its creation group.
fn finish_mark(o: &Link) -> Change {
    let mut set = LinkSet::new(&o.name);
    set.alias = Some(LINK_ALIAS.to_string());
    Change {
        action: Action::Change,
        object: ObjectRef::link(&o.name),
        before: Some(Object::Link(o.clone())),
        after: Some(Object::Link(o.clone())),
        note: Some("finish netconverge's mark".into()),
        ops: vec![Op::SetLink(set)],
    }
}

/// A desired link the kernel lacks (a veth end the peer's creation brings along is planned
/// without a create of its own). The peer's request creates the pair whether the peer is added
/// or recreated (re-paired): a peer the kernel has unchanged would have this end already.
fn add(d: &Link, desired: &State, out: &mut LinkDiff) {
    let pair_created_by_peer = !creates_pair(d, desired);
    out.changes.push(Change {
        action: Action::Add,
        object: ObjectRef::link(&d.name),
        before: None,
        after: Some(as_applied(d)),
        note: pair_created_by_peer.then(|| "created with its veth peer".to_string()),
        ops: create_ops(d, !pair_created_by_peer),
    });
    out.replaced.insert(d.name.clone());
}

/// A desired link the kernel has: recreated (if netconverge's) when its kind options cannot
/// change in place, a conflict when it is foreign, else its attributes set.
fn existing(d: &Link, o: &Link, out: &mut LinkDiff) {
    match recreate_reason(d, o) {
        Some(reason) if o.owned => {
            let mut ops = vec![Op::DeleteLink(d.name.clone())];
            ops.extend(create_ops(d, true));
            out.changes.push(Change {
                action: Action::Change,
                object: ObjectRef::link(&d.name),
                before: Some(Object::Link(o.clone())),
                after: Some(as_applied(d)),
                note: Some(format!("recreate: {reason}")),
                ops,
            });
            out.replaced.insert(d.name.clone());
        }
        Some(reason) => out.conflicts.push(format!(
            "link {} exists but was not created by netconverge and {reason}; \
             delete it by hand or declare it as it is",
            d.name
        )),
        None => {
            let mut set = attribute_set(d, Some(o));
            set.master = ports::master_change(d, Some(o));
            if o.mark_pending {
                set.alias = Some(LINK_ALIAS.to_string());
            }
            let mut ops = Vec::new();
            if let Some(opts) = tap_change(d, o) {
                ops.push(Op::SetTap {
                    name: d.name.clone(),
                    opts,
                });
            }
            if !set.is_empty() {
                ops.push(Op::SetLink(set));
            }
            if !ops.is_empty() {
                out.changes.push(Change {
                    action: Action::Change,
                    object: ObjectRef::link(&d.name),
                    before: Some(managed_view(o, d)),
                    after: Some(as_applied(d)),
                    note: None,
                    ops,
                });
            }
        }
    }
}

/// The observed state as it will be once the link changes are applied, as far as the other
/// reconcilers are concerned: addresses and routes on deleted or recreated links are gone
/// (the kernel removes them with the link).
pub fn without_replaced<'a>(
    observed: &'a State,
    replaced: &BTreeSet<String>,
) -> std::borrow::Cow<'a, State> {
    if replaced.is_empty() {
        return std::borrow::Cow::Borrowed(observed);
    }
    let mut s = observed.clone();
    s.addresses.retain(|(link, _), _| !replaced.contains(link));
    s.routes.retain(|_, r| {
        !r.nexthops
            .iter()
            .any(|n| n.dev.as_deref().is_some_and(|d| replaced.contains(d)))
    });
    std::borrow::Cow::Owned(s)
}
