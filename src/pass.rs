//! One reconcile pass on an open kernel: observe → check host facts → plan → guards → apply.
//! Shared by the one-shot commands and the watch daemon.

use reconcilers::error::KernelError;
use reconcilers::kernel::Kernel;
use reconcilers::model::State;
use reconcilers::plan::Plan;

use crate::desired::{Desired, Diagnostics, ForHost, HealthView};
use crate::engine::{self, Applied};

/// Why a command failed (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad input, with places.
    #[error("the desired state is invalid:\n{0}")]
    Invalid(Diagnostics),
    /// Valid input that this host cannot apply (a tap owner that is not a user here, an
    /// external link that does not exist), each at the place that needs it.
    #[error("this host does not have what the desired state needs:\n{0}")]
    HostFacts(Diagnostics),
    /// The desired state is well-formed but refused before any write (it would remove
    /// everything netconverge owns, or conflicts with objects it does not own).
    #[error("{0}")]
    Refused(String),
    /// The kernel refused an operation (observing, or a write outside a plan).
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// Another run holds the namespace's lock, or the lock file cannot be used.
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    /// Desired files others than root can change, refused as root.
    #[error(transparent)]
    Permissions(#[from] crate::desired::permissions::PermissionError),
    /// A command did part of what was asked (a revert with failed writes): `message` says
    /// what, and `-o json`'s failure document carries `report`, the command's own document
    /// of what it did.
    #[error("{message}")]
    Partial {
        /// The paragraph for stderr (and the document's `error.message`).
        message: String,
        /// What was done, as the command's JSON reports it when it succeeds.
        report: serde_json::Value,
    },
    /// Anything else, as one paragraph.
    #[error("{0}")]
    Message(String),
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
    /// After an apply, the objects the kernel does not hold as written (verify after apply:
    /// the kernel re-observed and planned again), in words.
    pub unverified: Vec<String>,
    /// The taps a process (a VM) held open when the pass observed the kernel.
    pub open_taps: std::collections::BTreeSet<String>,
}

/// The taps of `observed` that a process holds open.
fn open_taps(observed: &State) -> std::collections::BTreeSet<String> {
    observed
        .links
        .values()
        .filter(|l| matches!(&l.kind, reconcilers::model::LinkKind::Tap(t) if t.in_use()))
        .map(|l| l.name.clone())
        .collect()
}

/// Called once before the first write of a non-empty plan, with the plan, the state it was
/// planned against and the protocols of that state's objects (commit-confirmed records its
/// snapshot and starts its guardian here); an error stops the pass before any write.
pub type BeforeApplyFn<'a> =
    &'a mut dyn FnMut(&Plan, &State, &reconcilers::snapshot::Protocols) -> Result<(), Failure>;

/// What runs before the first write: the hook, and whether it reads the protocols.
pub struct BeforeApply<'a> {
    /// The hook.
    pub run: BeforeApplyFn<'a>,
    /// The hook reads the protocols (commit-confirmed's snapshot does): they cost a dump of
    /// every link, address, route and rule, so a hook that only prints is given none.
    pub protocols: bool,
}

/// How a pass treats the target host's facts and the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Plan and apply; host facts must hold.
    Apply,
    /// Plan only, for people (`reconcile --dry-run`): failing host facts become warnings, so
    /// the plan can still be read on a machine that is not the target.
    DryRun,
    /// Plan only, for `check`: failing host facts are errors, since the answer would be wrong.
    Check,
}

/// Observe, resolve host facts, plan, and in `Mode::Apply` apply.
///
/// Refuses (before any write) plans with conflicts, and plans that would remove everything
/// netconverge owns unless `allow_empty`.
pub async fn pass<K: Kernel>(
    kernel: &mut K,
    desired: &Desired,
    mode: Mode,
    allow_empty: bool,
) -> Result<Pass, Failure> {
    let started = std::time::Instant::now();
    let observed = engine::observe(kernel, &desired.state).await?;
    tracing::debug!(elapsed = ?started.elapsed(), "observed");
    pass_observed(
        kernel,
        Given::Kept(desired),
        observed,
        mode,
        allow_empty,
        None,
    )
    .await
}

/// `pass` with a hook run before the first write (`watch --confirm-within` arms its revert).
pub async fn pass_with<K: Kernel>(
    kernel: &mut K,
    desired: &Desired,
    allow_empty: bool,
    before_apply: BeforeApplyFn<'_>,
) -> Result<Pass, Failure> {
    let observed = engine::observe(kernel, &desired.state).await?;
    let hook = BeforeApply {
        run: before_apply,
        protocols: true,
    };
    pass_observed(
        kernel,
        Given::Kept(desired),
        observed,
        Mode::Apply,
        allow_empty,
        Some(hook),
    )
    .await
}

/// The desired state a pass plans for.
pub enum Given<'a> {
    /// Kept for later passes (`watch`): the pass plans for a copy.
    Kept(&'a Desired),
    /// A one-shot command's: its state is moved into the pass (and gone from it after), not
    /// copied.
    Taken(&'a mut Desired),
}

impl<'a> Given<'a> {
    /// The state as the files declare it.
    fn files(&self) -> &State {
        match self {
            Given::Kept(d) => &d.state,
            Given::Taken(d) => &d.state,
        }
    }

    /// The state for the host `observed` describes (copied or taken).
    fn for_host(self, observed: &State, netns: Option<&str>, mode: Mode) -> ForHost<'a> {
        let started = std::time::Instant::now();
        let resolved = match self {
            Given::Kept(d) => d.for_host(observed, netns, &health_view(d, mode)),
            Given::Taken(d) => {
                let health = health_view(d, mode);
                d.take_for_host(observed, netns, &health)
            }
        };
        tracing::debug!(elapsed = ?started.elapsed(), "resolved for this host");
        resolved
    }
}

/// `pass` with the observation already made (the CLI observes while it loads the files).
pub async fn pass_observed<K: Kernel>(
    kernel: &mut K,
    desired: Given<'_>,
    observed: State,
    mode: Mode,
    allow_empty: bool,
    before_apply: Option<BeforeApply<'_>>,
) -> Result<Pass, Failure> {
    // An empty or truncated file is judged by the files, not by what the host made of them:
    // when every provider is left out (an optional one's interface gone, a `detect` one's
    // lease lost), removing what they made is the plan, not a truncated file.
    let files_remove_all =
        !allow_empty && engine::removes_everything_owned(desired.files(), &observed);
    let ForHost {
        state: want,
        failed,
        warnings: mut host_warnings,
    } = desired.for_host(&observed, kernel.netns(), mode);
    if !failed.0.is_empty() {
        if mode != Mode::DryRun {
            return Err(Failure::HostFacts(failed));
        }
        host_warnings.extend(
            failed
                .0
                .iter()
                .map(|e| format!("{e} (reconcile would refuse to apply)")),
        );
    }
    let started = std::time::Instant::now();
    let mut plan = engine::plan(&want, &observed);
    tracing::debug!(elapsed = ?started.elapsed(), changes = plan.changes.len(), "planned");
    plan.warnings.extend(host_warnings);
    if !plan.conflicts.is_empty() {
        return Err(Failure::Refused(format!(
            "cannot reconcile without touching objects netconverge does not own:\n  {}",
            plan.conflicts.join("\n  ")
        )));
    }
    if files_remove_all && engine::removes_everything_owned(&want, &observed) {
        return Err(Failure::Refused(
            "the desired state would remove every object netconverge manages on this host \
             (an empty or truncated file?); refusing. Pass --allow-empty if that is meant."
                .into(),
        ));
    }
    if mode != Mode::Apply || plan.is_empty() {
        return Ok(Pass {
            plan,
            applied: None,
            unverified: Vec::new(),
            open_taps: open_taps(&observed),
        });
    }
    if let Some(hook) = before_apply {
        let protocols = if hook.protocols {
            kernel.protocols().await?
        } else {
            Default::default()
        };
        (hook.run)(&plan, &observed, &protocols)?;
    }
    let applied = engine::apply(kernel, &plan).await;
    let started = std::time::Instant::now();
    let unverified = verify(kernel, &want).await?;
    tracing::debug!(elapsed = ?started.elapsed(), "verified");
    Ok(Pass {
        plan,
        applied: Some(applied),
        unverified,
        open_taps: open_taps(&observed),
    })
}

/// Which providers health holds down in this pass: `watch`'s view when it gave one; for
/// `check`, what the kernel shows (it runs no probes); otherwise none (`reconcile`).
fn health_view(desired: &Desired, mode: Mode) -> HealthView {
    match (&desired.health, mode) {
        (HealthView::Declared, Mode::Check) => HealthView::FromKernel,
        (view, _) => view.clone(),
    }
}

/// Verify after apply: observe again and plan again; whatever is still to do is an object
/// the kernel does not hold as written (a clamped sysctl, an MTU a bridge changed, an address
/// refused later), or a write that failed.
async fn verify<K: Kernel>(kernel: &mut K, want: &State) -> Result<Vec<String>, Failure> {
    let after = engine::observe(kernel, want).await?;
    let again = engine::plan(want, &after);
    Ok(again
        .changes
        .iter()
        .map(|c| match &c.note {
            Some(n) => format!("{} ({n})", c.object),
            None => c.object.to_string(),
        })
        .collect())
}
