//! The engine: observe → plan → apply. It knows `State`, `Plan` and the `Kernel` trait, and
//! nothing about object kinds; the reconcilers library does the per-kind work.

use std::time::{Duration, Instant};

use reconcilers::error::KernelError;
use reconcilers::kernel::Kernel;
use reconcilers::model::State;
use reconcilers::plan::{Plan, Summary};

/// What happened when a plan was applied.
#[derive(Debug, Default)]
pub struct Applied {
    /// The plan's counts.
    pub summary: Summary,
    /// Writes that failed, in the order they were sent. Phases after a failing phase are not
    /// started: they may depend on what failed, and the next run converges the rest.
    pub failures: Vec<KernelError>,
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
pub async fn apply<K: Kernel>(kernel: &mut K, plan: &Plan) -> Applied {
    let start = Instant::now();
    let writes_before = kernel.writes();
    let mut failures = Vec::new();
    for (phase, ops) in plan.phases() {
        let started = Instant::now();
        let results = kernel.apply(&ops).await;
        tracing::debug!(?phase, ops = ops.len(), elapsed = ?started.elapsed(), "applied phase");
        for (op, result) in ops.iter().zip(results) {
            match result {
                // Per write, for debugging: callers log each applied change once, in words.
                Ok(()) => tracing::debug!(op = ?op, "applied"),
                Err(e) => {
                    tracing::error!("{e}");
                    failures.push(e);
                }
            }
        }
        if !failures.is_empty() {
            break;
        }
    }
    Applied {
        summary: plan.summary(),
        failures,
        writes: kernel.writes() - writes_before,
        elapsed: start.elapsed(),
    }
}

/// The empty-desired guard: true when applying `desired` would remove every object
/// netconverge owns in `observed` (and it owns at least one); see
/// [`reconcilers::kinds::removes_everything_owned`].
pub fn removes_everything_owned(desired: &State, observed: &State) -> bool {
    reconcilers::kinds::removes_everything_owned(desired, observed)
}
