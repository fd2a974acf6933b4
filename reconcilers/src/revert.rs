//! Reverts for commit-confirmed: the plan that puts back what a [`Snapshot`] saved, and its
//! apply, which writes foreign objects back with the protocol they had.
//!
//! The revert is an ordinary plan: the state as it is now with the saved keys put back (each
//! kind does its own, [`crate::kind::Kind::restore`]) is planned against the state now, so
//! the same diff and the same phases run as for any reconcile, and a revert of a revert is
//! empty. Keys the plan did not touch hold the same object on both sides and plan nothing.

use crate::error::KernelError;
use crate::kernel::Kernel;
use crate::kinds::KINDS;
use crate::model::State;
use crate::plan::{Op, Plan};
use crate::snapshot::Snapshot;

/// The plan that turns `now` back into what `snap` saved, at the saved keys only. Each
/// change's note starts with `revert`.
pub fn plan(snap: &Snapshot, now: &State) -> Plan {
    let mut target = now.clone();
    target.origins.clear();
    for k in &KINDS {
        k.restore(snap, &mut target);
    }
    let mut plan = crate::planner::plan(&target, now);
    for k in &KINDS {
        plan.changes.extend(k.restore_absent(snap, now));
    }
    for c in &mut plan.changes {
        c.note = Some(match c.note.take() {
            Some(n) => format!("revert: {n}"),
            None => "revert".to_string(),
        });
    }
    plan
}

/// The protocol a restoring write must carry when it is not netconverge's own.
pub fn protocol_of(snap: &Snapshot, op: &Op) -> Option<u8> {
    KINDS.iter().find_map(|k| k.restore_protocol(snap, op))
}

/// What applying a revert did.
#[derive(Debug, Default)]
pub struct Reverted {
    /// Writes that failed. Unlike a reconcile, a revert goes on with the later phases after
    /// a failure: putting back as much as it can matters more than stopping early.
    pub failures: Vec<KernelError>,
    /// Write requests sent.
    pub writes: u64,
}

/// Apply a revert plan phase by phase; writes of foreign objects go with their own protocol
/// ([`Kernel::apply_as`]), the others pipelined as usual.
pub async fn apply<K: Kernel>(kernel: &mut K, snap: &Snapshot, plan: &Plan) -> Reverted {
    let before = kernel.writes();
    let mut failures = Vec::new();
    for (_phase, ops) in plan.phases() {
        let (foreign, ours): (Vec<&Op>, Vec<&Op>) =
            ops.iter().partition(|op| protocol_of(snap, op).is_some());
        let ours: Vec<Op> = ours.into_iter().cloned().collect();
        let mut results = kernel.apply(&ours).await;
        for op in foreign {
            let protocol = protocol_of(snap, op).expect("partitioned on it");
            results.extend(kernel.apply_as(protocol, std::slice::from_ref(op)).await);
        }
        for r in results {
            if let Err(e) = r {
                tracing::error!("revert: {e}");
                failures.push(e);
            }
        }
    }
    Reverted {
        failures,
        writes: kernel.writes() - before,
    }
}
