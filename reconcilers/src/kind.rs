//! What an object kind is to the planner, the guards and the reports: the [`Kind`] trait that
//! each kind's module implements, the context the planner hands it, and helpers shared by the
//! kinds whose objects carry ownership marks. The list of kinds is [`crate::kinds::KINDS`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::kernel::Scope;
use crate::model::join::{join, Paired};
use crate::model::object::{Marked, ObjectKind, ObjectRef};
use crate::model::State;
use crate::plan::{Change, Op};
use crate::snapshot::{SaveCx, Snapshot};

/// What the planner hands each kind, in [`crate::kinds::KINDS`] order.
pub struct PlanCx<'a> {
    /// The desired state (resolved for this host).
    pub desired: &'a State,
    /// The observed state, as read.
    pub observed: &'a State,
    /// The observed state as it will be once the links being deleted or recreated are gone,
    /// with the addresses and routes the kernel drops along with them. Set by the links kind,
    /// which plans first; kinds that live on links diff against this.
    pub after_links: Cow<'a, State>,
    /// Desired objects that cannot be reached without touching foreign ones.
    pub conflicts: Vec<String>,
}

impl<'a> PlanCx<'a> {
    /// A context before any kind has planned.
    pub fn new(desired: &'a State, observed: &'a State) -> PlanCx<'a> {
        PlanCx {
            desired,
            observed,
            after_links: Cow::Borrowed(observed),
            conflicts: Vec::new(),
        }
    }
}

/// One object kind, as the planner, the guards and the reports see it.
pub trait Kind: Sync {
    /// Which kind this is.
    fn kind(&self) -> ObjectKind;

    /// Every object of this kind in `state`, with whether netconverge owns it: observed
    /// objects that carry its marks, and the objects only netconverge makes (its nftables
    /// tables, its dnsmasq instances). Desired links, addresses, routes and rules are unmarked.
    fn objects(&self, state: &State) -> Vec<(ObjectRef, bool)>;

    /// Set the ownership marks of this kind's objects in `state` from `owned` (a snapshot read
    /// as the observed side, whose marks `show` wrote down). Runs in [`crate::kinds::KINDS`] order, so a
    /// kind may look at the marks of the kinds before it.
    fn set_owned(&self, state: &mut State, owned: &dyn Fn(&ObjectRef) -> bool);

    /// Whether netconverge owns any of this kind's objects in `observed`, and whether
    /// `desired` keeps one of those (at the same key, whatever it changes), for the
    /// empty-state guard. By default an object is kept when `desired` has one of the same
    /// identity; kinds whose id says more than their key override this.
    fn owned_kept(&self, desired: &State, observed: &State) -> OwnedKept {
        let wanted: std::collections::BTreeSet<ObjectRef> =
            self.objects(desired).into_iter().map(|(r, _)| r).collect();
        let mut owned = self
            .objects(observed)
            .into_iter()
            .filter_map(|(r, owned)| owned.then_some(r))
            .peekable();
        if owned.peek().is_none() {
            OwnedKept::NoneOwned
        } else if owned.any(|r| wanted.contains(&r)) {
            OwnedKept::SomeKept
        } else {
            OwnedKept::NoneKept
        }
    }

    /// What observing must read for this kind of `desired` beyond the kernel's dumps.
    fn scope(&self, _desired: &State, _scope: &mut Scope) {}

    /// This kind's changes from `cx.observed` (or `cx.after_links`) to `cx.desired`.
    fn diff(&self, cx: &mut PlanCx<'_>) -> Vec<Change>;

    /// Foreign objects of this kind that take precedence over desired ones, or that could not
    /// be compared: not drift, but worth a warning.
    fn warnings(&self, _desired: &State, _observed: &State) -> Vec<String> {
        Vec::new()
    }

    /// Commit-confirmed: save into `snap` the keys of this kind that `cx.plan` writes or makes
    /// the kernel drop along with something it deletes, with what each held before.
    fn save(&self, cx: &SaveCx<'_>, snap: &mut Snapshot);

    /// Commit-confirmed: put this kind's saved objects back into `target` (the state as it is
    /// now), so that planning `target` against the host restores them.
    fn restore(&self, snap: &Snapshot, target: &mut State);

    /// Commit-confirmed: the protocol a restoring write must carry when `op` writes one of this
    /// kind's saved objects that was not netconverge's (a foreign route the plan replaced);
    /// `None` for netconverge's own protocol.
    fn restore_protocol(&self, _snap: &Snapshot, _op: &Op) -> Option<u8> {
        None
    }

    /// Commit-confirmed: changes the revert needs beyond the plan of `target` against `now`,
    /// for saved attributes that were absent (the planner reads an absent attribute of the
    /// desired side as "unmanaged" and would leave one the plan added).
    fn restore_absent(&self, _snap: &Snapshot, _now: &State) -> Vec<Change> {
        Vec::new()
    }
}

/// The objects of a marked kind with their marks (for [`Kind::objects`]).
pub fn marked_objects<'a, V: Marked + 'a>(
    items: impl Iterator<Item = &'a V>,
) -> Vec<(ObjectRef, bool)> {
    items.map(|v| (v.object_ref(), v.owned())).collect()
}

/// Set the marks of a marked kind from `owned` (for [`Kind::set_owned`]).
pub fn set_marks<'a, V: Marked + 'a>(
    items: impl Iterator<Item = &'a mut V>,
    owned: &dyn Fn(&ObjectRef) -> bool,
) {
    for v in items {
        let o = owned(&v.object_ref());
        v.set_owned(o);
    }
}

/// What the empty-state guard learns of a kind (see [`Kind::owned_kept`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnedKept {
    /// `observed` holds no object netconverge owns.
    NoneOwned,
    /// It holds some, and `desired` keeps none of them.
    NoneKept,
    /// `desired` keeps at least one of them.
    SomeKept,
}

/// [`Kind::owned_kept`] by key, for kinds whose id says more than their key. Stops at the
/// first owned object `desired` keeps: with any desired state that is not empty, that is
/// the first object of the walk, not the 10,000th.
pub fn owned_kept_by_key<K: Ord, V: Marked>(
    desired: &BTreeMap<K, V>,
    observed: &BTreeMap<K, V>,
) -> OwnedKept {
    let mut out = OwnedKept::NoneOwned;
    for pair in join(desired, observed) {
        match pair {
            Paired::Both(_, _, o) if o.owned() => return OwnedKept::SomeKept,
            Paired::Right(_, o) if o.owned() => out = OwnedKept::NoneKept,
            _ => {}
        }
    }
    out
}
