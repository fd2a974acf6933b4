//! One reconcile pass on an open kernel: observe → check host facts → plan → guards → apply.
//! Shared by the one-shot commands and the watch daemon.

use reconcilers::kernel::{Kernel, KernelError};
use reconcilers::plan::Plan;

use crate::desired::{Desired, Diagnostics};
use crate::engine::{self, Applied};
use crate::host;

/// Why a command failed (exit 2).
#[derive(Debug)]
pub enum Failure {
    /// Bad input, with places.
    Invalid(Diagnostics),
    /// The desired state is well-formed but refused before any write (it would remove
    /// everything netconverge owns, or conflicts with objects it does not own).
    Refused(String),
    /// Anything else, as one paragraph.
    Message(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Invalid(d) => write!(f, "the desired state is invalid:\n{d}"),
            Failure::Refused(m) | Failure::Message(m) => f.write_str(m),
        }
    }
}

impl From<KernelError> for Failure {
    fn from(e: KernelError) -> Self {
        Failure::Message(e.to_string())
    }
}

impl From<Diagnostics> for Failure {
    fn from(d: Diagnostics) -> Self {
        Failure::Invalid(d)
    }
}

/// What one pass produced.
#[derive(Debug)]
pub struct Pass {
    /// The plan.
    pub plan: Plan,
    /// What was applied; `None` for a dry run or an empty plan (no write was sent).
    pub applied: Option<Applied>,
}

/// Observe, resolve host facts, plan, and unless `dry_run` apply.
///
/// Refuses (before any write) plans with conflicts, and plans that would remove everything
/// netconverge owns unless `allow_empty`.
pub async fn pass<K: Kernel>(
    kernel: &mut K,
    desired: &Desired,
    dry_run: bool,
    allow_empty: bool,
) -> Result<Pass, Failure> {
    let mut want = desired.state.clone();
    let observed = engine::observe(kernel, &want).await?;
    host::resolve(&mut want, &desired.host_checks, &observed)?;
    let plan = engine::plan(&want, &observed);
    if !plan.conflicts.is_empty() {
        return Err(Failure::Refused(format!(
            "cannot reconcile without touching objects netconverge does not own:\n  {}",
            plan.conflicts.join("\n  ")
        )));
    }
    if !allow_empty && engine::removes_everything_owned(&want, &observed) {
        return Err(Failure::Refused(
            "the desired state would remove every object netconverge manages on this host \
             (an empty or truncated file?); refusing. Pass --allow-empty if that is meant."
                .into(),
        ));
    }
    let applied = if dry_run || plan.is_empty() {
        None
    } else {
        Some(engine::apply(kernel, &plan).await)
    };
    Ok(Pass { plan, applied })
}
