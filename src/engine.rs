//! The engine: observe → plan → apply. It knows `State`, `Plan` and the `Kernel` trait, and
//! nothing about object kinds; the reconcilers library does the per-kind work.

use std::time::{Duration, Instant};

use reconcilers::error::KernelError;
use reconcilers::kernel::Kernel;
use reconcilers::model::object::ObjectRef;
use reconcilers::model::State;
use reconcilers::plan::{Action, Op, Plan, Summary};

/// What happened when a plan was applied.
#[derive(Debug, Default)]
pub struct Applied {
    /// The counts of the changes that were applied completely (every write succeeded); a
    /// change with a failed or unsent write is not counted.
    pub summary: Summary,
    /// How many changes the plan had.
    pub planned: usize,
    /// Writes that failed, in the order they were sent. Phases after a failing phase are not
    /// started: they may depend on what failed, and the next run converges the rest.
    pub failures: Vec<KernelError>,
    /// The changes a failed write belongs to.
    pub failed: Vec<ObjectRef>,
    /// The changes with writes that were never sent (their phase was not started, or a check
    /// before the first write refused the plan).
    pub not_started: Vec<ObjectRef>,
    /// Netlink (and sysctl) write requests sent.
    pub writes: u64,
    /// Wall time of the apply.
    pub elapsed: Duration,
}

impl Applied {
    /// True when every write succeeded.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// How many changes were applied completely.
    pub fn applied(&self) -> usize {
        self.summary.add + self.summary.change + self.summary.remove
    }
}

/// Read what the kernel has, including what the kinds of the desired state need read (its
/// sysctls).
pub async fn observe<K: Kernel>(kernel: &mut K, desired: &State) -> Result<State, KernelError> {
    kernel
        .observe(&reconcilers::kinds::scope(desired).sysctls)
        .await
}

/// Plan the changes from `observed` to `desired` (both canonical and resolved).
pub fn plan(desired: &State, observed: &State) -> Plan {
    reconcilers::planner::plan(desired, observed)
}

/// Apply `plan` phase by phase; the writes within a phase are pipelined by the kernel.
///
/// Before the first write, what a service would refuse is checked (`nft -c` on the rendered
/// firewall): a refusal sends nothing. After a failing phase no later phase is started.
pub async fn apply<K: Kernel>(kernel: &mut K, plan: &Plan) -> Applied {
    let start = Instant::now();
    let writes_before = kernel.writes();
    let phases = plan.phases_by_change();
    let mut failures = Vec::new();
    // Per change: whether one of its writes failed, and how many are still unsent.
    let mut outcome = vec![Outcome::NoFailure; plan.changes.len()];
    let mut unsent_ops = vec![0usize; plan.changes.len()];
    for (_, ops) in &phases {
        for (_, owners) in ops {
            for &i in owners {
                unsent_ops[i] += 1;
            }
        }
    }
    for (op, owners) in phases.iter().flat_map(|(_, ops)| ops) {
        if let Err(e) = reconcilers::kernel::preflight(kernel, op).await {
            tracing::error!("{e}");
            failures.push(e);
            owners.iter().for_each(|&i| outcome[i] = Outcome::Failed);
        }
    }
    let refused = !failures.is_empty();
    for (phase, ops) in phases.iter().filter(|_| !refused) {
        let started = Instant::now();
        let batch: Vec<Op> = ops.iter().map(|(op, _)| op.clone()).collect();
        let results = kernel.apply(&batch).await;
        tracing::debug!(?phase, ops = ops.len(), elapsed = ?started.elapsed(), "applied phase");
        for ((op, owners), result) in ops.iter().zip(results) {
            for &i in owners {
                unsent_ops[i] -= 1;
            }
            match result {
                // Per write, for debugging: callers log each applied change once, in words.
                Ok(()) => tracing::debug!(op = ?op, "applied"),
                Err(e) => {
                    tracing::error!("{e}");
                    failures.push(e);
                    owners.iter().for_each(|&i| outcome[i] = Outcome::Failed);
                }
            }
        }
        if !failures.is_empty() {
            break;
        }
    }
    let mut applied = Applied {
        planned: plan.changes.len(),
        failures,
        writes: kernel.writes() - writes_before,
        elapsed: start.elapsed(),
        ..Applied::default()
    };
    for (i, change) in plan.changes.iter().enumerate() {
        match (outcome[i], unsent_ops[i]) {
            (Outcome::Failed, _) => applied.failed.push(change.object.clone()),
            (_, 0) => count(&mut applied.summary, change.action),
            _ => applied.not_started.push(change.object.clone()),
        }
    }
    applied
}

/// What became of one change's writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// None failed (some may not have been sent).
    NoFailure,
    /// One failed, or was refused before the first write.
    Failed,
}

fn count(s: &mut Summary, action: Action) {
    match action {
        Action::Add => s.add += 1,
        Action::Change => s.change += 1,
        Action::Remove => s.remove += 1,
    }
}

/// The empty-desired guard: true when applying `desired` would remove every object
/// netconverge owns in `observed` (and it owns at least one); see
/// [`reconcilers::kinds::removes_everything_owned`].
pub fn removes_everything_owned(desired: &State, observed: &State) -> bool {
    reconcilers::kinds::removes_everything_owned(desired, observed)
}
