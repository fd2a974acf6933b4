//! `netconverge watch`: a daemon that applies the desired state whenever its files change and
//! repairs kernel drift whenever rtnetlink reports a change.
//!
//! Everything funnels into one queue of triggers (file event, kernel event, SIGHUP, resync
//! tick, retry, stop) consumed by one loop, so applies never overlap and SIGTERM waits for the
//! current apply. Each burst of triggers ends in a full pass (observe → plan → apply): events
//! only say *that* something changed, which makes lost or coalesced events harmless.
//!
//! The parts, each tested on its own with tokio's paused clock: [`trigger`] (what a burst
//! means, dropping the echoes of our own writes), [`debounce`] (when a burst is over),
//! [`backoff`] (when a failed apply is retried), and the adapters that turn the outside world
//! into triggers: [`files`], [`signals`], [`sources`] (kernel events, resync tick), plus
//! [`systemd`] readiness. [`Daemon`] wires them to the pass.

pub mod backoff;
pub mod debounce;
pub mod files;
pub mod signals;
pub mod sources;
pub mod systemd;
pub mod trigger;

use std::path::PathBuf;
use std::time::Duration;

use reconcilers::error::KernelError;
use reconcilers::kernel::netlink::RtnlKernel;
use reconcilers::kernel::{events, Kernel};
use reconcilers::plan::Plan;
use tokio::sync::mpsc;

use crate::desired::{self, Desired};
use crate::engine::Applied;
use crate::pass::{pass, Failure, Mode};
use backoff::{Backoff, Retry};
use debounce::Debounce;
use trigger::{drain_echoes, Action, Burst, Trigger};

/// Settings of the daemon.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// The desired file or directory.
    pub path: PathBuf,
    /// Quiet time after a file event before reloading (editors write in bursts).
    pub debounce: Duration,
    /// Period of the full resync that covers what has no events (sysctls).
    pub resync: Duration,
    /// Reconcile once and exit (for scripts).
    pub once: bool,
    /// Allow a desired state that removes everything netconverge owns.
    pub allow_empty: bool,
    /// The namespace's name (`None`: the host's own), for per-namespace service files.
    pub netns: Option<String>,
}

/// Run the daemon in the calling thread's namespace until SIGTERM/SIGINT (or after one pass
/// with `once`). Only setup failures return an error; later errors are logged and retried.
pub async fn run(opts: WatchOptions) -> Result<(), Failure> {
    let netns = opts.netns.clone();
    let daemon = Daemon::new(opts, move |protocol| {
        RtnlKernel::connect_in(protocol, netns.clone())
    });
    let tx = daemon.sender();
    // Kept until the daemon returns: dropping the watcher ends the file events.
    let _file_watcher = files::watch(&daemon.opts.path, tx.clone())?;
    sources::kernel_events(events::subscribe()?, tx.clone());
    signals::listen(&tx)?;
    sources::resync_every(daemon.opts.resync, tx);
    daemon.run().await
}

/// The daemon: the loop from triggers to passes, over any kernel.
///
/// It holds the desired state in force and the kernel connection; the trigger sources are
/// attached from outside through [`Daemon::sender`] (see [`run`]), which is what lets the
/// tests drive it with an in-memory kernel and a paused clock.
pub struct Daemon<K, C> {
    opts: WatchOptions,
    debounce: Debounce,
    tx: mpsc::UnboundedSender<Trigger>,
    rx: mpsc::UnboundedReceiver<Trigger>,
    retry: Retry,
    /// Opens a kernel connection for a protocol number (again when a reload changes it).
    connect: C,
    kernel: Option<K>,
    current: Option<Desired>,
    /// The desired state last applied without refusal, to fall back to when a reload is
    /// refused.
    last_good: Option<Desired>,
}

impl<K, C> Daemon<K, C>
where
    K: Kernel,
    C: FnMut(u8) -> Result<K, KernelError>,
{
    /// A daemon for `opts` that reaches the kernel through `connect`; nothing is read or
    /// connected before [`Daemon::run`].
    pub fn new(opts: WatchOptions, connect: C) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Daemon {
            debounce: Debounce::new(opts.debounce),
            retry: Retry::new(Backoff::default(), tx.clone()),
            opts,
            tx,
            rx,
            connect,
            kernel: None,
            current: None,
            last_good: None,
        }
    }

    /// Where trigger sources send their triggers.
    pub fn sender(&self) -> mpsc::UnboundedSender<Trigger> {
        self.tx.clone()
    }

    /// Load, pass, and then one pass per burst of triggers, until a stop (or after the first
    /// pass with `once`). Only a kernel connection that cannot be opened returns an error.
    pub async fn run(mut self) -> Result<(), Failure> {
        let mut reload = true;
        let mut ready = false;
        loop {
            if reload {
                self.load();
            }
            let applied = self.pass().await?;
            // Our own writes echo back as kernel events: drop them, and run one more pass
            // straight away instead, which catches a real change hidden among the echoes.
            let pending = if applied {
                drain_echoes(&mut self.rx, self.debounce.settle).await
            } else {
                Burst::default()
            };
            if !ready {
                systemd::notify_ready();
                ready = true;
            }
            if self.opts.once {
                return Ok(());
            }
            if applied && pending.is_empty() {
                reload = false;
                continue;
            }
            let Some(burst) = self.debounce.next_burst(&mut self.rx, pending).await else {
                return Ok(());
            };
            if burst.contains(Trigger::Retry) {
                self.retry.fired();
            }
            match burst.action() {
                Action::Stop => {
                    tracing::info!("stopping");
                    return Ok(());
                }
                Action::Reload => {
                    tracing::info!("reloading {}", self.opts.path.display());
                    reload = true;
                }
                Action::Replan => reload = false,
            }
        }
    }

    /// Read the files; an invalid state is reported and the one in force stays.
    fn load(&mut self) {
        let loaded = desired::load_path(&self.opts.path).map_err(|d| d.to_string());
        // As root, files others can change are refused on every reload, not only the first.
        let loaded = loaded.and_then(|d| {
            if crate::cli::is_root() {
                desired::permissions::check(&self.opts.path, &d.files)
                    .map_err(|e| e.to_string())?;
            }
            Ok(d)
        });
        match loaded {
            Ok(d) => {
                // The connection marks what it writes with the protocol: a new one needs a
                // new connection.
                if self.current.as_ref().map(|c| c.protocol) != Some(d.protocol) {
                    self.kernel = None;
                }
                self.current = Some(d);
            }
            Err(diags) => {
                tracing::error!(
                    "desired state invalid, keeping the last good one:\n{}",
                    diags
                );
            }
        }
    }

    /// One pass with the desired state in force, if there is one. Returns whether it applied
    /// something without failure (so echoes are coming).
    async fn pass(&mut self) -> Result<bool, Failure> {
        let Some(d) = &self.current else {
            return Ok(false);
        };
        if self.kernel.is_none() {
            self.kernel = Some((self.connect)(d.protocol)?);
        }
        let k = self.kernel.as_mut().expect("connected above");
        match pass(k, d, Mode::Apply, self.opts.allow_empty).await {
            Ok(p) => {
                let failed = p.applied.as_ref().is_some_and(|a| !a.ok());
                self.last_good = self.current.clone();
                if let Some(a) = &p.applied {
                    log_applied(&p.plan, a);
                }
                if failed {
                    self.schedule_retry();
                } else {
                    self.retry.reset();
                }
                Ok(p.applied.is_some() && !failed)
            }
            Err(Failure::Message(e)) => {
                tracing::error!("{e}");
                self.schedule_retry();
                Ok(false)
            }
            Err(e) => {
                // Refused or invalid for this host: retrying will not help, a new edit
                // will. Keep (or go back to) the last good desired state.
                tracing::error!("{e}");
                if self.last_good.is_some() {
                    tracing::warn!("keeping the last good desired state");
                }
                self.current = self.last_good.clone();
                Ok(false)
            }
        }
    }

    fn schedule_retry(&mut self) {
        if let Some(wait) = self.retry.schedule() {
            tracing::warn!("retrying in {} s", wait.as_secs());
        }
    }
}

/// One line per applied change (the daemon's log is its only output), then the summary.
fn log_applied(plan: &Plan, applied: &Applied) {
    for c in &plan.changes {
        tracing::info!(
            "{} {}{}",
            c.action.name(),
            c.object,
            c.note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
    }
    tracing::info!("{}", crate::report::text::applied(applied));
}

#[cfg(test)]
mod tests;
