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
//! [`backoff`] (when a failed apply is retried), [`fight`] (an object that something keeps
//! undoing), and the adapters that turn the outside world
//! into triggers: [`files`], [`signals`], [`sources`] (kernel events, resync tick, the
//! namespace's existence), [`supervise`] (dnsmasq instances by pidfd), plus
//! [`systemd`] (readiness, status, watchdog) with [`progress`] (the status line), and
//! [`events`] (`-o json`'s JSON Lines). [`Daemon`] wires them to the pass.

pub mod backoff;
pub mod confirmed;
pub mod debounce;
pub mod events;
pub mod fight;
pub mod files;
pub mod health;
pub mod liveness;
pub mod metrics;
pub mod progress;
pub mod queue;
pub mod reattach;
pub mod serve;
pub mod signals;
pub mod sources;
pub mod supervise;
pub mod systemd;
pub mod trigger;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reconcilers::error::KernelError;
use reconcilers::kernel::netlink::RtnlKernel;
use reconcilers::kernel::{events as netlink_events, Kernel};
use reconcilers::plan::Plan;

use crate::desired::{self, Desired};
use crate::engine::Applied;
use crate::pass::{pass, pass_observed, Failure, Given, Mode};
use crate::status::{self, file::DaemonState, file::LastError, file::LastPass};
use backoff::{Backoff, Retry};
use debounce::{Debounce, Pending};
use fight::Fights;
use liveness::Liveness;
use metrics::Metrics;
use progress::Progress;
use queue::{Receiver, Sender};
use reconcilers::model::State;
use systemd::{Heartbeat, Notifier, NotifyState};
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
    /// Commit confirmed: each applied file change is reverted unless confirmed in time.
    pub confirm_within: Option<Duration>,
    /// `-o json`: one JSON document per event on stdout (see [`events`]).
    pub json: bool,
}

/// Run the daemon in the calling thread's namespace until SIGTERM/SIGINT (or after one pass
/// with `once`), serving its metrics on `endpoint` if given. Only setup failures return an
/// error; later errors are logged and retried.
pub async fn run(opts: WatchOptions, endpoint: Option<serve::Endpoint>) -> Result<(), Failure> {
    let netns = opts.netns.clone();
    let status_file = status::file::path(netns.as_deref());
    let mut daemon = Daemon::new(opts, move |protocol| {
        RtnlKernel::connect_in(protocol, netns.clone()).map(RtnlKernel::with_route_cache)
    });
    if let Some(ep) = endpoint {
        tracing::info!(
            "serving /metrics, /healthz and /readyz on http://{}",
            ep.addr()
        );
        ep.spawn(daemon.metrics(), daemon.liveness());
    }
    daemon.publish_status(status_file);
    if daemon.opts.json {
        daemon.events = events::Events::to(Arc::new(events::Stdout::default()));
    }
    daemon
        .events
        .started(&daemon.opts.path, daemon.opts.netns.as_deref());
    let tx = daemon.sender();
    // Kept until the daemon returns: dropping the watcher ends the file events.
    let _file_watcher = files::watch(&daemon.opts.path, tx.clone())?;
    sources::kernel_events(netlink_events::subscribe()?, tx.clone());
    signals::listen(&tx)?;
    if let Some(name) = daemon.opts.netns.clone() {
        let id = sources::namespace_id(&name).ok_or_else(|| {
            Failure::Message(format!("the network namespace {name} does not exist"))
        })?;
        sources::namespace_gone(name, id, tx.clone());
    }
    sources::resync_every(daemon.opts.resync, tx);
    if let Some(interval) = systemd::watchdog_interval() {
        systemd::watchdog(daemon.heartbeat(), interval, daemon.notifier.clone());
    }
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
    tx: Sender,
    rx: Receiver,
    retry: Retry,
    /// Opens a kernel connection for a protocol number (again when a reload changes it).
    connect: C,
    kernel: Option<K>,
    current: Option<Desired>,
    /// The desired state last applied without refusal, to fall back to when a reload is
    /// refused.
    last_good: Option<Desired>,
    /// True while `last_good` is a copy of the load in force (`current`), so a pass that
    /// succeeds need not copy it again: a 10,000-route copy after each drift repair.
    good_is_current: bool,
    /// With `confirm_within`: the revision of the files whose change was last armed (its
    /// drift repairs are not armed again) and the reverted revision last logged.
    confirmed: confirmed::Gate,
    /// What keeps kernel events and the resync from running a pass before the retry.
    hold: Option<Hold>,
    fights: Fights,
    supervisor: supervise::Supervisor,
    metrics: Arc<Metrics>,
    live: Arc<Liveness>,
    health: health::Monitor,
    /// The providers' health checks must be (re)configured from the desired state: after a
    /// load. `seeded`: the first configuration, which reads the kernel, was made.
    health_stale: bool,
    health_seeded: bool,
    /// Where readiness, status and the watchdog's pings go (systemd).
    notifier: Arc<dyn Notifier>,
    /// Waiting or busy, for the watchdog.
    heartbeat: Arc<Heartbeat>,
    /// What the last passes did, for `STATUS=`.
    progress: Progress,
    /// The taps a VM held open at the last pass (see [`reattach`]).
    open_taps: reattach::OpenTaps,
    /// Where the daemon publishes its state for `netconverge status`, and that state.
    status: Option<(PathBuf, DaemonState)>,
    /// `-o json`'s events (nowhere by default).
    events: events::Events,
    /// Why the coming pass runs, for its event.
    triggers: Vec<&'static str>,
}

/// Why the daemon waits for the retry.
#[derive(Debug)]
enum Hold {
    /// The last pass failed with this plan.
    Failing(Plan),
    /// The last pass failed before it had a plan (a kernel connection, a lock).
    Unplanned,
    /// An object is being fought over (see [`fight`]).
    Fight,
}

/// What a pass did, for what comes next.
#[derive(Clone, Copy, Debug, Default)]
struct Outcome {
    /// Writes were sent (their echoes are coming).
    wrote: bool,
    /// Writes were sent and all succeeded.
    ok: bool,
}

impl<K, C> Daemon<K, C>
where
    K: Kernel,
    C: FnMut(u8) -> Result<K, KernelError>,
{
    /// A daemon for `opts` that reaches the kernel through `connect`; nothing is read or
    /// connected before [`Daemon::run`].
    pub fn new(opts: WatchOptions, connect: C) -> Self {
        let (tx, rx) = queue::channel();
        let metrics = Arc::new(Metrics::new());
        let prober = Arc::new(health::probe::IcmpProber {
            netns: opts.netns.clone(),
        });
        Daemon {
            health: health::Monitor::new(prober, Arc::clone(&metrics), tx.clone()),
            health_stale: true,
            health_seeded: false,
            debounce: Debounce::new(opts.debounce),
            retry: Retry::new(Backoff::default(), tx.clone()),
            opts,
            tx,
            rx,
            connect,
            kernel: None,
            current: None,
            last_good: None,
            good_is_current: false,
            confirmed: confirmed::Gate::default(),
            hold: None,
            fights: Fights::default(),
            supervisor: supervise::Supervisor::default(),
            metrics,
            live: Arc::new(Liveness::default()),
            notifier: Arc::new(systemd::Systemd),
            heartbeat: Arc::new(Heartbeat::default()),
            progress: Progress::default(),
            open_taps: reattach::OpenTaps::default(),
            status: None,
            events: events::Events::default(),
            triggers: vec!["start"],
        }
    }

    /// Send the daemon's events (`-o json`) to `sink`.
    pub fn with_events(mut self, sink: Arc<dyn events::Sink>) -> Self {
        self.events = events::Events::to(sink);
        self
    }

    /// Announce readiness, status and reloads to `notifier` instead of systemd.
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// Settle kernel bursts for `settle` instead of [`debounce::KERNEL_SETTLE`]: the scripted
    /// tests keep timelines written against a settle of their own.
    #[cfg(test)]
    pub(crate) fn with_settle(mut self, settle: Duration) -> Self {
        self.debounce.settle = settle;
        self
    }

    /// The loop's heartbeat, for the watchdog (which must not keep it alive).
    pub fn heartbeat(&self) -> std::sync::Weak<Heartbeat> {
        Arc::downgrade(&self.heartbeat)
    }

    /// Tell the service manager what the last pass did; `ready` after the first pass and
    /// after a reload.
    fn announce(&self, ready: bool) {
        let line = self.progress.line();
        let status = NotifyState::Status(&line);
        if ready {
            self.notifier.notify(&[NotifyState::Ready, status]);
        } else {
            self.notifier.notify(&[status]);
        }
    }

    /// Send the providers' health probes through `prober` instead of ICMP (tests).
    pub fn with_prober(mut self, prober: Arc<dyn health::probe::Prober>) -> Self {
        self.health = health::Monitor::new(prober, Arc::clone(&self.metrics), self.tx.clone());
        self
    }

    /// The daemon's metrics, for whatever exposes them.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// The daemon's heartbeat and readiness.
    pub fn liveness(&self) -> Arc<Liveness> {
        Arc::clone(&self.live)
    }

    /// Keep the state file `path` for `netconverge status` (written at once, then after every
    /// pass). Not done by default, so that tests of the loop write nothing outside their dir.
    pub fn publish_status(&mut self, path: PathBuf) {
        let state = DaemonState::of_this_process(&self.opts.path);
        self.status = Some((path, state));
        self.write_status();
    }

    /// Where trigger sources send their triggers.
    pub fn sender(&self) -> Sender {
        self.tx.clone()
    }

    /// Load, pass, and then one pass per burst of triggers, until a stop (or after the first
    /// pass with `once`). Only a kernel connection that cannot be opened returns an error.
    pub async fn run(mut self) -> Result<(), Failure> {
        let mut reload = true;
        // READY=1 is due after the first pass, and again after a SIGHUP's reload.
        let mut ready = true;
        let mut repair = false;
        self.live.spawn_ticker();
        loop {
            self.heartbeat.busy();
            let early = if reload {
                self.load_while_observing().await
            } else {
                None
            };
            let outcome = self.pass(repair, early).await?;
            self.supervise().await;
            // Our own writes echo back as kernel events, those of failed writes too: drop
            // them. After a success, run one more pass straight away instead, which catches a
            // real change hidden among the echoes.
            let mut pending = if outcome.wrote {
                drain_echoes(&mut self.rx, self.debounce.settle).await
            } else {
                Pending::default()
            };
            if ready {
                self.live.set_ready();
            }
            self.announce(ready);
            ready = false;
            if self.opts.once {
                self.events.stopped("once");
                return Ok(());
            }
            if outcome.ok && self.hold.is_none() && pending.is_empty() {
                reload = false;
                repair = false;
                self.triggers = vec!["follow_up"];
                continue;
            }
            let burst = loop {
                self.heartbeat.idle();
                let Some(burst) = self.debounce.next_burst(&mut self.rx, pending).await else {
                    return Ok(());
                };
                self.heartbeat.busy();
                pending = Pending::default();
                if burst.contains(Trigger::Retry) {
                    self.retry.fired();
                }
                if !self.waits_for_retry(burst).await {
                    break burst;
                }
            };
            // Kernel events, the resync and the retry answer drift: what they apply is a repair.
            repair = burst.action() == Action::Replan;
            self.triggers = burst.names();
            if burst.contains(Trigger::Resync) {
                if let Some(k) = self.kernel.as_mut() {
                    k.forget_cache();
                }
            }
            match burst.action() {
                Action::Gone => {
                    self.stopping("namespace_gone");
                    return Err(self.gone());
                }
                Action::Stop => {
                    tracing::info!("stopping");
                    self.stopping("signal");
                    return Ok(());
                }
                Action::Reload => {
                    tracing::info!("reloading {}", self.opts.path.display());
                    // A change of the files starts the backoff over.
                    self.retry.reset();
                    self.hold = None;
                    reload = true;
                    // `systemctl reload` (SIGHUP) is reported until the reload's pass is over.
                    if burst.contains(Trigger::Reload) {
                        systemd::reloading(self.notifier.as_ref());
                        ready = true;
                    }
                }
                Action::Replan => reload = false,
            }
        }
    }

    /// Tell the service manager and `-o json` that the daemon ends, for `reason`.
    fn stopping(&self, reason: &str) {
        self.notifier.notify(&[NotifyState::Stopping]);
        self.events.stopped(reason);
    }

    /// While a failure (or a fight) holds the daemon, a burst of kernel events or the resync
    /// waits for the retry, unless it changes the plan: re-planned, the same failing plan
    /// would only fail again. Files, SIGHUP, the retry and a stop never wait.
    async fn waits_for_retry(&mut self, burst: Burst) -> bool {
        if burst.action() != Action::Replan || burst.contains(Trigger::Retry) {
            return false;
        }
        let failing = match &self.hold {
            None => return false,
            Some(Hold::Failing(plan)) => plan.clone(),
            Some(Hold::Unplanned) | Some(Hold::Fight) => {
                // A fight's hold may outlast its retry: make sure one is coming.
                self.schedule_retry();
                tracing::debug!("held until the retry");
                return true;
            }
        };
        self.sync_health().await;
        let (Some(d), Some(k)) = (&self.current, self.kernel.as_mut()) else {
            return false;
        };
        match pass(k, d, Mode::Check, self.opts.allow_empty).await {
            Ok(p) if p.plan.changes != failing.changes => false,
            Ok(_) => {
                tracing::debug!("the same failing plan: waiting for the retry");
                true
            }
            Err(e) => {
                tracing::debug!("re-plan refused ({e}): waiting for the retry");
                true
            }
        }
    }

    /// Watch the dnsmasq instances that are running now (see [`supervise`]).
    async fn supervise(&mut self) {
        let Some(k) = self.kernel.as_mut() else {
            return;
        };
        match k.service_pidfds().await {
            Ok(live) => self.supervisor.update(live, &self.tx),
            Err(e) => tracing::warn!("cannot watch the dnsmasq instances: {e}"),
        }
    }

    /// The namespace is gone: stop its dnsmasq instances (an orphaned namespace would live on
    /// for them) and give the error to exit with.
    fn gone(&mut self) -> Failure {
        let name = self.opts.netns.clone().unwrap_or_default();
        tracing::error!(
            "the network namespace {name} was deleted or replaced; stopping its dnsmasq \
             instances and exiting so that the service manager restarts the watcher"
        );
        self.supervisor.terminate_all();
        Failure::Message(format!(
            "the network namespace {name} disappeared while it was watched; a restarted \
             `watch` reconciles the namespace of that name once it exists again"
        ))
    }

    /// Read the files while the kernel is observed (both take about 10 ms at 10,000 routes):
    /// the load runs on a blocking thread, the observation here. Returns the observation when
    /// it holds for the state in force after the load: the same connection (a protocol
    /// change opens a new one), with the sysctls of the loaded state read after the load.
    /// Under `--confirm-within` the pass observes for itself, as it arms what it observed.
    async fn load_while_observing(&mut self) -> Option<State> {
        let path = self.opts.path.clone();
        let loading = tokio::task::spawn_blocking(move || read_desired(&path));
        // No sysctls yet: which ones to read depends on the state being loaded.
        let observed = match self.kernel.as_mut() {
            Some(k) if self.opts.confirm_within.is_none() => k.observe(&[]).await.ok(),
            _ => None,
        };
        let loaded = loading.await.unwrap_or_else(|e| {
            Err(Failure::Message(format!(
                "reading the desired state failed: {e}"
            )))
        });
        self.loaded(loaded);
        let mut observed = observed?;
        let (Some(k), Some(d)) = (self.kernel.as_mut(), self.current.as_ref()) else {
            return None;
        };
        let scope = reconcilers::kinds::scope(&d.state);
        observed.sysctls = k.read_sysctls(&scope.sysctls).await.ok()?;
        Some(observed)
    }

    /// Take a load: an invalid state is reported and the one in force stays.
    fn loaded(&mut self, loaded: Result<Desired, Failure>) {
        match loaded {
            Ok(d) => {
                // The connection marks what it writes with the protocol: a new one needs a
                // new connection.
                if self.current.as_ref().map(|c| c.protocol) != Some(d.protocol) {
                    self.kernel = None;
                }
                self.current = Some(d);
                self.good_is_current = false;
                self.health_stale = true;
            }
            Err(failure) => {
                self.events.invalid(&failure);
                let diags = match &failure {
                    Failure::Invalid(d) => d.to_string(),
                    other => other.to_string(),
                };
                self.progress.error(std::time::SystemTime::now(), &diags);
                tracing::error!(
                    "desired state invalid, keeping the last good one:\n{}",
                    diags
                );
                self.note_error(format!("desired state invalid: {diags}"));
            }
        }
    }

    /// One pass with the desired state in force, if there is one. A failure holds the
    /// daemon (see [`Daemon::waits_for_retry`]) and schedules the retry; so does a fight found
    /// among the repairs of a pass that answered kernel events (`repair`).
    ///
    /// `early` is the kernel as observed while the files were read, if it holds.
    async fn pass(&mut self, repair: bool, early: Option<State>) -> Result<Outcome, Failure> {
        let Some(protocol) = self.current.as_ref().map(|d| d.protocol) else {
            return Ok(Outcome::default());
        };
        if self.kernel.is_none() {
            self.kernel = Some((self.connect)(protocol)?);
        }
        self.sync_health().await;
        let (Some(d), Some(k)) = (&self.current, self.kernel.as_mut()) else {
            return Ok(Outcome::default());
        };
        let started = std::time::Instant::now();
        let allow_empty = self.opts.allow_empty;
        let result = match (self.opts.confirm_within, early) {
            (None, Some(observed)) => {
                let given = Given::Kept(d);
                pass_observed(k, given, observed, Mode::Apply, allow_empty, None).await
            }
            (None, None) => pass(k, d, Mode::Apply, allow_empty).await,
            (Some(within), _) => {
                let netns = self.opts.netns.as_deref();
                match self
                    .confirmed
                    .pass(k, d, netns, within, self.opts.allow_empty)
                    .await
                {
                    Some(r) => r,
                    None => return Ok(Outcome::default()),
                }
            }
        };
        self.metrics.passes.inc();
        match result {
            Ok(p) => Ok(self.passed(p, repair, started)),
            Err(Failure::Message(e)) => {
                self.metrics.failures.inc();
                self.report_failure(started, &Failure::Message(e.clone()));
                self.progress.failed(std::time::SystemTime::now(), &e);
                tracing::error!("{e}");
                self.note_pass(started, 0, &[], Some(e));
                self.hold = Some(Hold::Unplanned);
                self.schedule_retry();
                Ok(Outcome::default())
            }
            Err(e) => {
                self.metrics.failures.inc();
                self.report_failure(started, &e);
                self.progress
                    .failed(std::time::SystemTime::now(), &e.to_string());
                // Refused or invalid for this host: retrying will not help, a new edit
                // will. Keep (or go back to) the last good desired state.
                tracing::error!("{e}");
                self.note_pass(started, 0, &[], Some(e.to_string()));
                if self.last_good.is_some() {
                    tracing::warn!("keeping the last good desired state");
                }
                self.current = self.last_good.clone();
                self.good_is_current = true;
                Ok(Outcome::default())
            }
        }
    }

    /// The event of a pass that failed without a plan.
    fn report_failure(&self, started: std::time::Instant, e: &Failure) {
        self.events.pass(&events::PassReport {
            triggers: &self.triggers,
            plan: None,
            applied: None,
            unverified: &[],
            error: Some(e),
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    /// Give the desired state in force the providers the health checks hold down, after
    /// (re)configuring the checks when the files were loaded. The first configuration starts
    /// the providers the kernel shows held down (a restarted watcher) out of service.
    async fn sync_health(&mut self) {
        let (Some(d), Some(k)) = (self.current.as_mut(), self.kernel.as_mut()) else {
            return;
        };
        if self.health_stale {
            let mut held = std::collections::BTreeSet::new();
            if !self.health_seeded && d.providers.providers.iter().any(|p| p.health.is_some()) {
                match crate::engine::observe(k, &d.state).await {
                    Ok(observed) => {
                        held = reconcilers::providers::health::held_in(&d.providers, &observed)
                            .into_iter()
                            .map(|p| p.name.clone())
                            .collect();
                    }
                    Err(e) => tracing::warn!("cannot read which providers are held down: {e}"),
                }
            }
            self.health.configure(&d.providers, &held);
            self.health_stale = false;
            self.health_seeded = true;
        }
        d.health = desired::HealthView::Held(self.health.down());
    }

    /// What a pass that planned (and maybe applied) leads to: metrics, status, logs, and
    /// whether the daemon is held until the retry.
    fn passed(
        &mut self,
        p: crate::pass::Pass,
        repair: bool,
        started: std::time::Instant,
    ) -> Outcome {
        let failed = p.applied.as_ref().is_some_and(|a| !a.ok());
        self.events.pass(&events::PassReport {
            triggers: &self.triggers,
            plan: Some(&p.plan),
            applied: p.applied.as_ref(),
            unverified: &p.unverified,
            error: None,
            seconds: started.elapsed().as_secs_f64(),
        });
        self.record_metrics(&p.plan, p.applied.as_ref(), repair);
        self.progress.passed(
            std::time::SystemTime::now(),
            p.plan.changes.len(),
            p.applied.as_ref(),
            &p.unverified,
        );
        if !self.good_is_current {
            self.last_good = self.current.clone();
            self.good_is_current = true;
        }
        if let Some(a) = &p.applied {
            log_applied(&p.plan, a);
        }
        self.warn_reattach(&p);
        for u in &p.unverified {
            tracing::warn!("the kernel does not hold as written: {u}");
        }
        if repair {
            self.record_repairs(&p.plan);
        }
        let error = p.applied.as_ref().filter(|_| failed);
        let error = error.map(crate::report::text::applied);
        self.note_pass(started, p.plan.changes.len(), &p.unverified, error);
        if failed {
            self.hold = Some(Hold::Failing(p.plan.clone()));
            self.schedule_retry();
        } else if self.fights.ongoing(tokio::time::Instant::now()) {
            // A repair that wins a round of a fight does not end it: kernel events
            // wait for the retry, whose backoff keeps growing until the fight is over.
            self.hold = Some(Hold::Fight);
        } else {
            self.hold = None;
            self.retry.reset();
        }
        Outcome {
            wrote: p.applied.is_some(),
            ok: p.applied.is_some() && !failed,
        }
    }

    /// Name (and count) the taps this pass recreated under a VM that must reattach.
    fn warn_reattach(&mut self, p: &crate::pass::Pass) {
        let open_now = p.open_taps.clone();
        for tap in self
            .open_taps
            .recreated(&p.plan, p.applied.as_ref(), open_now)
        {
            tracing::warn!("{}", reattach::warning(&tap));
            self.metrics
                .tap_reattach
                .get_or_create(&metrics::LinkLabel { link: tap })
                .inc();
        }
    }

    /// Record a pass that began at `started` in the state file (if one is kept): its changes,
    /// what the kernel still does not hold, and its error (`None`: it succeeded).
    fn note_pass(
        &mut self,
        started: std::time::Instant,
        changes: usize,
        unverified: &[String],
        error: Option<String>,
    ) {
        let Some((_, state)) = self.status.as_mut() else {
            return;
        };
        let at = status::file::unix_now();
        state.last_pass = Some(LastPass {
            at,
            ok: error.is_none(),
            changes,
            seconds: started.elapsed().as_secs_f64(),
            unverified: unverified.to_vec(),
        });
        if let Some(message) = error {
            state.last_error = Some(LastError { at, message });
        }
        // The providers with health checks, and whether each is in service.
        if let Some(d) = &self.current {
            let down = self.health.down();
            state.providers = d
                .providers
                .providers
                .iter()
                .filter(|p| p.health.is_some())
                .map(|p| (p.name.clone(), !down.contains(&p.name)))
                .collect();
        }
        self.write_status();
    }

    /// Record an error outside a pass (a reload refused) in the state file.
    fn note_error(&mut self, message: String) {
        if let Some((_, state)) = self.status.as_mut() {
            let at = status::file::unix_now();
            state.last_error = Some(LastError { at, message });
            self.write_status();
        }
    }

    fn write_status(&self) {
        if let Some((path, state)) = &self.status {
            if let Err(e) = status::file::write(path, state) {
                tracing::warn!("{e}");
            }
        }
    }

    /// What a planned (and maybe applied) pass tells the metrics.
    fn record_metrics(&self, plan: &Plan, applied: Option<&Applied>, repair: bool) {
        self.metrics.record_drift(plan);
        match applied {
            Some(a) => {
                self.metrics.writes.inc_by(a.writes);
                if a.ok() {
                    let _ = self.metrics.last_success.set(unix_now());
                } else {
                    self.metrics.failures.inc();
                }
                if repair {
                    self.metrics.record_repairs(plan);
                }
            }
            // Nothing to apply: the kernel is as desired.
            None if plan.changes.is_empty() => {
                let _ = self.metrics.last_success.set(unix_now());
            }
            None => {}
        }
    }

    /// Count the repairs of `plan`, and name each object that is now fought over.
    fn record_repairs(&mut self, plan: &Plan) {
        let now = tokio::time::Instant::now();
        for (object, n) in self
            .fights
            .record(plan.changes.iter().map(|c| &c.object), now)
        {
            self.metrics.fights.inc();
            self.events.fight(&object, n);
            tracing::warn!(
                "fight: {object} was undone {n} times within {} s; its repairs now wait for the \
                 retry backoff (netconverge_fights_total {})",
                fight::FIGHT_WINDOW.as_secs(),
                self.fights.total
            );
        }
    }

    /// How many fights were seen since the start.
    pub fn fights_total(&self) -> u64 {
        self.fights.total
    }

    fn schedule_retry(&mut self) {
        if let Some(wait) = self.retry.schedule() {
            tracing::warn!("retrying in {} s", wait.as_secs());
        }
    }
}

/// Seconds since the Unix epoch, for timestamps in metrics.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
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

/// Read the files, and as root refuse files others can change (on every reload, not only
/// the first).
fn read_desired(path: &std::path::Path) -> Result<Desired, Failure> {
    let d = desired::load_path(path).map_err(Failure::Invalid)?;
    if crate::cli::is_root() {
        desired::permissions::check(path, &d.files)?;
    }
    Ok(d)
}

#[cfg(test)]
mod tests;
