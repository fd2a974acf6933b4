//! `watch --confirm-within`: the gate in front of the daemon's passes. A file change is
//! applied with its revert armed (one pending change at a time); while a change is pending
//! nothing else is applied; a revision of the files that was reverted unconfirmed is not
//! applied again until the files change. Drift repairs of a revision already armed are not
//! armed again.

use std::time::Duration;

use reconcilers::kernel::Kernel;

use crate::confirm::{self, pending};
use crate::desired::Desired;
use crate::lock;
use crate::pass::{pass_with, Failure, Pass};

/// What the gate remembers between passes.
#[derive(Debug, Default)]
pub struct Gate {
    /// The revision whose change was last armed (or found with nothing to do).
    armed: Option<String>,
    /// The reverted revision last logged, so the log says it once.
    logged: Option<String>,
}

impl Gate {
    /// One pass through the gate; `None` when the gate holds it back.
    pub async fn pass<K: Kernel>(
        &mut self,
        kernel: &mut K,
        desired: &Desired,
        netns: Option<&str>,
        within: Duration,
        allow_empty: bool,
    ) -> Option<Result<Pass, Failure>> {
        if let Err(e) = confirm::recover_orphan(netns) {
            return Some(Err(e));
        }
        match pending::read(netns) {
            Ok(None) => {}
            Ok(Some(_)) => {
                tracing::debug!("a change is pending confirmation; not applying");
                return None;
            }
            Err(e) => return Some(Err(e.into())),
        }
        let rev = confirm::revision(desired);
        if pending::reverted_revision(netns).as_deref() == Some(rev.as_str()) {
            if self.logged.as_deref() != Some(rev.as_str()) {
                tracing::warn!(
                    "revision {rev} of the desired files was reverted unconfirmed; not applying it again until the files change"
                );
                self.logged = Some(rev);
            }
            return None;
        }
        if self.armed.as_deref() == Some(rev.as_str()) {
            // A drift repair of a revision whose change was armed (and confirmed).
            return Some(
                crate::pass::pass(kernel, desired, crate::pass::Mode::Apply, allow_empty).await,
            );
        }
        Some(
            self.armed_pass(kernel, desired, netns, within, allow_empty, rev)
                .await,
        )
    }

    async fn armed_pass<K: Kernel>(
        &mut self,
        kernel: &mut K,
        desired: &Desired,
        netns: Option<&str>,
        within: Duration,
        allow_empty: bool,
        rev: String,
    ) -> Result<Pass, Failure> {
        let mut armed = None;
        let p = {
            // Held until the last write, so that a rollback never reverts half an apply.
            let _pending_lock = lock::acquire_pending(netns)?;
            let protocol = desired.protocol;
            let revision = Some(rev.clone());
            let mut arm = |plan: &reconcilers::plan::Plan,
                           before: &reconcilers::model::State,
                           protocols: &reconcilers::snapshot::Protocols| {
                armed = Some(confirm::arm(
                    netns,
                    within,
                    plan,
                    before,
                    protocols,
                    protocol,
                    revision.clone(),
                )?);
                Ok(())
            };
            pass_with(kernel, desired, allow_empty, &mut arm).await?
        };
        self.armed = Some(rev);
        if let Some(pending) = armed {
            let failed = p.applied.as_ref().is_some_and(|a| !a.ok()) || !p.unverified.is_empty();
            if failed {
                tracing::error!("the apply did not complete as written; reverting at once");
                match confirm::revert_locked(netns, Some(&pending.id)) {
                    Ok(Some(r)) => tracing::warn!("{}", r.text()),
                    Ok(None) => {}
                    Err(e) => tracing::error!("{e}"),
                }
            } else {
                tracing::warn!(
                    "Pending confirmation: run 'netconverge confirm' within {} s or the change is reverted",
                    within.as_secs()
                );
            }
        }
        Ok(p)
    }
}
