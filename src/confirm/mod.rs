//! Commit confirmed: apply, and revert by itself unless confirmed in time.
//!
//! `reconcile --confirm-within D` records a [`Snapshot`] of what its plan touches and starts
//! a detached guardian process before the first write ([`arm`]); the guardian
//! ([`guardian::run`]) reverts at the deadline unless `confirm` removed the record first.
//! `rollback` reverts at once, `status` shows the record. Everything goes through the pending
//! record under `/run/netconverge/netns/<netns>/` and the namespace's lock, so any shell finds it.

pub mod guardian;
pub mod pending;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use reconcilers::kernel::netlink::RtnlKernel;
use reconcilers::kernel::netns::run_in_netns;
use reconcilers::model::State;
use reconcilers::plan::Plan;
use reconcilers::revert::Reverted;
use reconcilers::snapshot::{Protocols, Snapshot};

use crate::lock;
use crate::pass::Failure;
use pending::Pending;

impl From<pending::PendingError> for Failure {
    fn from(e: pending::PendingError) -> Self {
        Failure::Message(e.to_string())
    }
}

/// Refuse to apply while a change is pending in the namespace (one pending change at a time).
pub fn refuse_if_pending(netns: Option<&str>) -> Result<(), Failure> {
    match pending::read(netns)? {
        None => Ok(()),
        Some(p) => Err(Failure::Refused(format!(
            "a change applied with --confirm-within is pending ({} left); run \
             `netconverge{} confirm` to keep it or `netconverge{} rollback` to revert it first",
            left_words(&p),
            netns_arg(netns),
            netns_arg(netns)
        ))),
    }
}

/// A pending change whose guardian is gone (killed with its systemd unit, say): past its
/// deadline it is reverted now, as the guardian would have; before, a new guardian takes
/// over. Run before taking the pending lock (reverting takes it).
pub fn recover_orphan(netns: Option<&str>) -> Result<(), Failure> {
    let Some(mut p) = pending::read(netns)? else {
        return Ok(());
    };
    if p.guardian.is_some_and(pending::guardian_alive) {
        return Ok(());
    }
    if pending::boottime() >= p.deadline {
        tracing::warn!(
            "the guardian of the pending change is gone and its deadline passed; reverting it now"
        );
        if let Some(r) = revert_locked(netns, Some(&p.id))? {
            eprint!("{}", r.text());
        }
        return Ok(());
    }
    let _lock = lock::acquire_pending(netns)?;
    tracing::warn!("the guardian of the pending change is gone; starting a new one");
    p.guardian = Some(guardian::spawn(netns, &p.id)?);
    pending::write(&p)?;
    Ok(())
}

fn netns_arg(netns: Option<&str>) -> String {
    netns.map(|n| format!(" --netns {n}")).unwrap_or_default()
}

fn left_words(p: &Pending) -> String {
    let left = p.deadline - pending::boottime();
    if left > 0.0 {
        format!("{} s", left.ceil() as u64)
    } else {
        "its deadline has passed".into()
    }
}

/// Before the first write: snapshot what `plan` touches, start the guardian and write the
/// pending record. The guardian waits for the record, so a crash between the two leaves
/// neither a record without a guardian nor a guardian that reverts nothing.
pub fn arm(
    netns: Option<&str>,
    within: Duration,
    plan: &Plan,
    before: &State,
    protocols: &Protocols,
    our_protocol: u8,
    revision: Option<String>,
) -> Result<Pending, Failure> {
    let snapshot = Snapshot::take(plan, before, protocols, our_protocol);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let id = format!("{}-{}", std::process::id(), now.as_nanos());
    let mut p = Pending {
        id: id.clone(),
        netns: netns.map(str::to_string),
        deadline: pending::boottime() + within.as_secs_f64(),
        applied_at: now.as_secs(),
        changes: plan.changes.iter().map(change_words).collect(),
        guardian: None,
        revision,
        snapshot,
    };
    // Root-only: the record says what the host looked like and how to put it back.
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(pending::state_dir(netns))
        .map_err(|e| Failure::Message(format!("cannot create the state directory: {e}")))?;
    p.guardian = Some(guardian::spawn(netns, &id)?);
    pending::write(&p)?;
    Ok(p)
}

fn change_words(c: &reconcilers::plan::Change) -> String {
    let mut s = format!("{} {}", c.action.name(), c.object);
    if let Some(n) = &c.note {
        s.push_str(&format!(" ({n})"));
    }
    s
}

/// Revert `p` now, in its namespace: observe, plan the revert, apply it. The caller holds
/// the lock and removes the record afterwards.
pub fn revert(p: &Pending) -> Result<(Plan, Reverted), Failure> {
    let snap = p.snapshot.clone();
    let netns = p.netns.clone();
    let r = run_in_netns(p.netns.as_deref(), move || async move {
        let mut k = RtnlKernel::connect_in(snap.protocol, netns)?;
        let now = reconcilers::kernel::Kernel::observe(&mut k, &snap.sysctl_names()).await?;
        let plan = reconcilers::revert::plan(&snap, &now);
        let done = reconcilers::revert::apply(&mut k, &snap, &plan).await;
        Ok::<_, Failure>((plan, done))
    })??;
    Ok(r)
}

/// A revert that was applied: its plan and what its writes did.
#[derive(Debug)]
pub struct Revert {
    /// The revert's plan, planned against the state before it.
    pub plan: Plan,
    /// Its writes.
    pub done: Reverted,
}

impl Revert {
    /// The revert as text: its plan, then one line saying what it did.
    pub fn text(&self) -> String {
        let (plan, done) = (&self.plan, &self.done);
        let mut out = crate::report::text::plan(
            plan,
            &BTreeMap::new(),
            crate::report::text::PlanStyle::default(),
            &[],
        );
        let s = plan.summary();
        out.push_str(&format!(
            "Reverted: {} added, {} changed, {} removed ({} writes).\n",
            s.add, s.change, s.remove, done.writes
        ));
        for f in &done.failures {
            out.push_str(&format!("revert write failed: {f}\n"));
        }
        // Objects the revert could not put back without touching foreign ones that took their
        // place meanwhile: said, not forced.
        for c in &plan.conflicts {
            out.push_str(&format!("not put back: {c}\n"));
        }
        out
    }

    /// The revert as the fields of `rollback -o json`'s document: whether it completed, the
    /// plan as in `reconcile -o json`, the writes, the failed ones and what was not put back
    /// (for a revert that did not complete, the `report` of the failure document).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "reverted": self.done.failures.is_empty(),
            "plan": crate::report::json::plan_body(&self.plan, &BTreeMap::new()),
            "writes": self.done.writes,
            "failures": self.done.failures.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            "not_put_back": &self.plan.conflicts,
        })
    }
}

/// Take the lock, and revert the pending change if there is one (and, with `only`, if it is
/// that one). Returns what was done, `None` when nothing was pending.
pub fn revert_locked(netns: Option<&str>, only: Option<&str>) -> Result<Option<Revert>, Failure> {
    let _lock = lock::acquire_pending(netns)?;
    let Some(p) = pending::read(netns)? else {
        return Ok(None);
    };
    if only.is_some_and(|id| id != p.id) {
        return Ok(None);
    }
    let (plan, done) = revert(&p)?;
    let reverted = Revert { plan, done };
    for c in &reverted.plan.changes {
        tracing::info!("{}", change_words(c));
    }
    if !reverted.done.failures.is_empty() {
        // The record stays: `rollback` can try again, `status` shows it.
        return Err(Failure::Partial {
            message: format!(
                "the revert did not complete; the change stays pending, and `netconverge \
                 rollback` tries again:\n{}",
                reverted.text()
            ),
            report: reverted.json(),
        });
    }
    if let Some(rev) = &p.revision {
        pending::mark_reverted(netns, rev)?;
    }
    pending::remove(netns)?;
    Ok(Some(reverted))
}

/// The revision of a desired state: a digest of its files' names and contents, so `watch`
/// can tell "the files changed" from "the same files again".
pub fn revision(d: &crate::desired::Desired) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in &d.files {
        f.hash(&mut h);
        std::fs::read(f).unwrap_or_default().hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

/// `netconverge confirm`: keep the pending change.
pub fn confirm(netns: Option<&str>, json: bool) -> Result<ExitCode, Failure> {
    let _lock = lock::acquire_pending(netns)?;
    let Some(p) = pending::read(netns)? else {
        return Err(Failure::Message("no change is pending confirmation".into()));
    };
    pending::remove(netns)?;
    if json {
        let left = (p.deadline - pending::boottime()).max(0.0);
        println!(
            "{}",
            crate::report::json::document(serde_json::json!({
                "confirmed": p.changes,
                "seconds_left": left,
                "applied_at": p.applied_at,
            }))
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Confirmed: {} change(s) kept ({} were left).",
        p.changes.len(),
        left_words(&p)
    );
    Ok(ExitCode::SUCCESS)
}

/// `netconverge rollback`: revert the pending change now.
pub fn rollback(netns: Option<&str>, json: bool) -> Result<ExitCode, Failure> {
    match revert_locked(netns, None)? {
        Some(r) if json => {
            println!("{}", crate::report::json::document(r.json()));
            Ok(ExitCode::SUCCESS)
        }
        Some(r) => {
            print!("{}", r.text());
            Ok(ExitCode::SUCCESS)
        }
        None => Err(Failure::Message("no change is pending confirmation".into())),
    }
}

/// The change pending confirmation in namespace `netns`, if any (for `netconverge status`).
pub fn pending(netns: Option<&str>) -> Result<Option<pending::Pending>, Failure> {
    Ok(pending::read(netns)?)
}

/// The pending change as the `pending` member of `status -o json` (`null`: none).
pub fn pending_json(p: Option<&pending::Pending>) -> serde_json::Value {
    match p {
        None => serde_json::Value::Null,
        Some(p) => serde_json::json!({
            "changes": p.changes,
            "seconds_left": (p.deadline - pending::boottime()).max(0.0),
            "applied_at": p.applied_at,
            "guardian": p.guardian,
            "guardian_alive": p.guardian.is_some_and(pending::guardian_alive),
        }),
    }
}

/// Print the pending change (or that there is none) for `status`.
pub fn print_pending(netns: Option<&str>, p: Option<&pending::Pending>) {
    let Some(p) = p else {
        println!("No change is pending confirmation.");
        return;
    };
    println!(
        "Pending confirmation: {} change(s), reverted in {} unless `netconverge{} confirm`:",
        p.changes.len(),
        left_words(p),
        netns_arg(netns)
    );
    for c in &p.changes {
        println!("  {c}");
    }
    match p.guardian {
        Some(pid) if pending::guardian_alive(pid) => println!("guardian: pid {pid}"),
        other => println!(
            "guardian: not running (pid {other:?}); run `netconverge{} rollback` to revert",
            netns_arg(netns)
        ),
    }
}

/// After a confirmed apply: revert at once when a write or the verification failed; else ask
/// on a terminal (`y` keeps, anything else or the timeout reverts), or leave the change
/// pending for `confirm` and say so.
///
/// With `json` the stdout holds the plan document only, so the pending line goes to stderr.
pub fn after_apply(
    netns: Option<&str>,
    p: &Pending,
    failed: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    if failed {
        eprintln!("The apply did not complete as written; reverting at once.");
        if let Some(r) = revert_locked(netns, Some(&p.id))? {
            if json {
                eprint!("{}", r.text());
            } else {
                print!("{}", r.text());
            }
        }
        return Ok(ExitCode::from(2));
    }
    use std::io::IsTerminal;
    if !json && std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        return match prompt::ask(p.deadline) {
            true => confirm(netns, false),
            false => rollback(netns, false),
        };
    }
    let left = (p.deadline - pending::boottime()).max(0.0).round() as u64;
    let line = format!(
        "Pending confirmation: run 'netconverge{} confirm' within {left} s or the change is reverted",
        netns_arg(netns)
    );
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

mod prompt {
    //! The terminal question of commit-confirmed, with its countdown.

    use std::io::Write;

    use super::pending;

    /// Ask `Keep this configuration? [y/N] (reverting in N s)` until `deadline`; true for
    /// an answer starting with `y`.
    pub fn ask(deadline: f64) -> bool {
        let mut out = std::io::stdout();
        loop {
            let left = deadline - pending::boottime();
            if left <= 0.0 {
                println!();
                return false;
            }
            let _ = write!(
                out,
                "\rKeep this configuration? [y/N] (reverting in {} s) ",
                left.ceil() as u64
            );
            let _ = out.flush();
            let mut fds = libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let ready = unsafe { libc::poll(&mut fds, 1, 1000) };
            if ready > 0 {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                return line.trim().to_ascii_lowercase().starts_with('y');
            }
        }
    }
}
