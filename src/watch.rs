//! `netconverge watch`: a daemon that applies the desired state whenever its files change and
//! repairs kernel drift whenever rtnetlink reports a change.
//!
//! Everything funnels into one queue of triggers (file event, kernel event, SIGHUP, resync
//! tick, retry, stop) consumed by one loop, so applies never overlap and SIGTERM waits for the
//! current apply. Each burst of triggers ends in a full pass (observe → plan → apply): events
//! only say *that* something changed, which makes lost or coalesced events harmless.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use reconcilers::kernel::events;
use reconcilers::kernel::netlink::RtnlKernel;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout, Instant};

use crate::desired::{self, Desired};
use crate::pass::{pass, Failure, Mode};

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

/// Why the loop wakes up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    /// A file in the desired directory changed.
    File,
    /// The kernel reported a change.
    Kernel,
    /// SIGHUP: reload the files.
    Reload,
    /// The periodic resync.
    Resync,
    /// A failed apply's retry is due.
    Retry,
    /// SIGTERM/SIGINT.
    Stop,
}

/// Quiet time after a kernel event: short, so drift is repaired fast, but long enough to
/// coalesce the dozens of events one `ip link del` produces.
const KERNEL_SETTLE: Duration = Duration::from_millis(15);
/// First and longest wait before retrying a failed apply.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Run the daemon in the calling thread's namespace until SIGTERM/SIGINT (or after one pass
/// with `once`). Only setup failures return an error; later errors are logged and retried.
pub async fn run(opts: WatchOptions) -> Result<(), Failure> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Trigger>();

    let _file_watcher = watch_files(&opts.path, tx.clone())?;
    let mut kernel_events = events::subscribe()?;
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            while kernel_events.recv().await.is_some() {
                if tx.send(Trigger::Kernel).is_err() {
                    break;
                }
            }
        });
    }
    spawn_signal(SignalKind::hangup(), Trigger::Reload, tx.clone())?;
    spawn_signal(SignalKind::terminate(), Trigger::Stop, tx.clone())?;
    spawn_signal(SignalKind::interrupt(), Trigger::Stop, tx.clone())?;
    {
        let tx = tx.clone();
        let period = opts.resync;
        tokio::spawn(async move {
            loop {
                sleep(period).await;
                if tx.send(Trigger::Resync).is_err() {
                    break;
                }
            }
        });
    }

    let mut current: Option<Desired> = None;
    // The desired state last applied without refusal, to fall back to when a reload is refused.
    let mut last_good: Option<Desired> = None;
    let mut kernel: Option<RtnlKernel> = None;
    let mut backoff = BACKOFF_MIN;
    let mut retry_pending = false;
    let mut reload = true;
    let mut notified = false;
    // Non-echo triggers that arrived while draining echoes, and whether to re-check at once.
    let mut pending: Vec<Trigger> = Vec::new();
    let mut verify = false;

    loop {
        if reload {
            match desired::load_path(&opts.path) {
                Ok(d) => {
                    if current.as_ref().map(|c| c.protocol) != Some(d.protocol) {
                        kernel = None;
                    }
                    current = Some(d);
                }
                Err(diags) => {
                    tracing::error!(
                        "desired state invalid, keeping the last good one:\n{}",
                        diags
                    );
                }
            }
        }
        let mut applied_something = false;
        if let Some(d) = current.clone() {
            let d = &d;
            if kernel.is_none() {
                kernel = Some(RtnlKernel::connect_in(d.protocol, opts.netns.clone())?);
            }
            let k = kernel.as_mut().expect("connected above");
            match pass(k, d, Mode::Apply, opts.allow_empty).await {
                Ok(p) => {
                    let failed = p.applied.as_ref().is_some_and(|a| !a.ok());
                    applied_something = p.applied.is_some() && !failed;
                    last_good = current.clone();
                    if let Some(a) = &p.applied {
                        for c in &p.plan.changes {
                            tracing::info!(
                                "{} {} {}{}",
                                c.action.name(),
                                c.kind.name(),
                                c.id,
                                c.note
                                    .as_deref()
                                    .map(|n| format!(" ({n})"))
                                    .unwrap_or_default()
                            );
                        }
                        tracing::info!("{}", crate::report::text::applied(a));
                    }
                    if failed {
                        schedule_retry(&tx, &mut backoff, &mut retry_pending);
                    } else {
                        backoff = BACKOFF_MIN;
                    }
                }
                Err(Failure::Message(e)) => {
                    tracing::error!("{e}");
                    schedule_retry(&tx, &mut backoff, &mut retry_pending);
                }
                Err(e) => {
                    // Refused or invalid for this host: retrying will not help, a new edit
                    // will. Keep (or go back to) the last good desired state.
                    tracing::error!("{e}");
                    if last_good.is_some() {
                        tracing::warn!("keeping the last good desired state");
                    }
                    current = last_good.clone();
                }
            }
            // Our own writes echo back as kernel events: drop them, and run one more pass
            // straight away instead, which catches a real change hidden among the echoes.
            if applied_something {
                pending = drain_echoes(&mut rx).await;
                verify = true;
            }
        }
        if !notified {
            notify_ready();
            notified = true;
        }
        if opts.once {
            return Ok(());
        }

        if verify && pending.is_empty() {
            verify = false;
            reload = false;
            continue;
        }
        verify = false;
        // Wait for the next burst of triggers.
        let mut burst = std::mem::take(&mut pending);
        if burst.is_empty() {
            let Some(first) = rx.recv().await else {
                return Ok(());
            };
            burst.push(first);
        }
        let quiet = |b: &[Trigger]| {
            if b.contains(&Trigger::File) {
                opts.debounce
            } else {
                KERNEL_SETTLE
            }
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !burst.contains(&Trigger::Stop) && Instant::now() < deadline {
            match timeout(quiet(&burst), rx.recv()).await {
                Ok(Some(t)) => burst.push(t),
                Ok(None) | Err(_) => break,
            }
        }
        if burst.contains(&Trigger::Stop) {
            tracing::info!("stopping");
            return Ok(());
        }
        if burst.contains(&Trigger::Retry) {
            retry_pending = false;
        }
        reload = burst
            .iter()
            .any(|t| matches!(t, Trigger::File | Trigger::Reload));
        if reload {
            tracing::info!("reloading {}", opts.path.display());
        }
    }
}

/// Drop the kernel events already queued (echoes of our writes) and return the other
/// triggers, in order.
async fn drain_echoes(rx: &mut mpsc::UnboundedReceiver<Trigger>) -> Vec<Trigger> {
    sleep(KERNEL_SETTLE).await;
    let mut keep = Vec::new();
    while let Ok(t) = rx.try_recv() {
        if t != Trigger::Kernel {
            keep.push(t);
        }
    }
    keep
}

fn schedule_retry(tx: &mpsc::UnboundedSender<Trigger>, backoff: &mut Duration, pending: &mut bool) {
    if *pending {
        return;
    }
    *pending = true;
    let wait = *backoff;
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
    tracing::warn!("retrying in {} s", wait.as_secs());
    let tx = tx.clone();
    tokio::spawn(async move {
        sleep(wait).await;
        let _ = tx.send(Trigger::Retry);
    });
}

fn spawn_signal(
    kind: SignalKind,
    trigger: Trigger,
    tx: mpsc::UnboundedSender<Trigger>,
) -> Result<(), Failure> {
    let mut s =
        signal(kind).map_err(|e| Failure::Message(format!("cannot handle signals: {e}")))?;
    tokio::spawn(async move {
        while s.recv().await.is_some() {
            if tx.send(trigger).is_err() {
                break;
            }
        }
    });
    Ok(())
}

/// Watch the desired directory (or a single file's directory), not single files: editors
/// replace files by rename and ConfigMaps swap a `..data` symlink, which a watch on the file
/// itself would miss.
fn watch_files(
    path: &Path,
    tx: mpsc::UnboundedSender<Trigger>,
) -> Result<notify::RecommendedWatcher, Failure> {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    };
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            if !ev.kind.is_access() {
                let _ = tx.send(Trigger::File);
            }
        }
    })
    .map_err(|e| Failure::Message(format!("cannot watch {}: {e}", dir.display())))?;
    watcher
        .watch(&dir, RecursiveMode::Recursive)
        .map_err(|e| Failure::Message(format!("cannot watch {}: {e}", dir.display())))?;
    Ok(watcher)
}

/// Tell systemd (Type=notify) that the daemon is up, if it is listening.
fn notify_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(_) => return,
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|addr| sock.send_to_addr(b"READY=1", &addr))
    } else {
        sock.send_to(b"READY=1", Path::new(&path))
    };
    if let Err(e) = sent {
        tracing::warn!("sd_notify READY=1 failed: {e}");
    }
}
