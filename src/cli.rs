//! The command line: clap definitions and one function per command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use reconcilers::kernel::netlink::RtnlKernel;
use reconcilers::kernel::netns::run_in_netns;
use reconcilers::model::{LinkKind, DEFAULT_PROTOCOL};

use crate::desired::{self, Desired};
use crate::engine;
use crate::pass::{pass_observed, Failure, Mode, Pass};
use crate::{lock, report};

const AFTER_HELP: &str = "\
Examples:
  netconverge validate                          check desired/*.yaml, no kernel access
  netconverge reconcile --dry-run               show what would change, change nothing
  sudo netconverge reconcile                    converge this host
  sudo netconverge reconcile --confirm-within 2m  apply, revert in 2 minutes unless confirmed
  sudo netconverge confirm                      keep the pending change (rollback: revert it now)
  sudo netconverge --netns lab reconcile        converge the namespace /run/netns/lab
  netconverge show > desired/host.yaml          describe this host as desired state
  netconverge check -o json                     exit 1 when the host has drifted

Exit status: 0 done / valid / in sync, 1 drift (check only), 2 could not do what was asked.";

const STATUS_HELP: &str = "\
Is a `watch` daemon running for this namespace (--netns, else the caller's own), since when,
its last pass (time, result, changes, duration), its last error, the health of providers it
knows, and the change pending confirmation (reconcile --confirm-within), if any.

Read from the state file the daemon keeps in /run/netconverge/netns/NAME/watch.json
(/run/netconverge/host/watch.json for the host's namespace). A file left by a daemon that
is gone (its pid no longer names the process that wrote it) means no daemon.

Exit status: 0 healthy, 1 degraded (the last pass failed, drift the kernel does not hold,
a provider down), 3 no watcher runs, 2 the state could not be read.";

/// netconverge: declarative network state for Linux hosts.
///
/// Describe links (bridges, taps, veth, vxlan, macvlan), addresses, routes, policy rules and
/// sysctls in YAML; netconverge diffs them against the kernel (rtnetlink) and converges the
/// host idempotently, touching only what it owns or what the desired state names.
#[derive(Debug, Parser)]
#[command(name = "netconverge", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// File or directory of *.yaml/*.yml [default: ./desired, then /etc/netconverge]
    #[arg(short, long, global = true, value_name = "PATH")]
    pub desired: Option<PathBuf>,

    /// Act inside the network namespace /run/netns/NAME instead of the caller's (NAME: an entry of /run/netns, no `/`)
    #[arg(long, global = true, value_name = "NAME", value_parser = netns_name)]
    pub netns: Option<String>,

    /// Output format: text, json (one document, stable field names); for check also junit and prometheus; for graph svg
    #[arg(short, long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// More logging on stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less logging on stderr (errors only)
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// At most this many bytes of YAML over all desired files (the per-file cap is 16 MiB)
    #[arg(long, global = true, value_name = "BYTES", default_value_t = desired::budget::Limits::default().max_bytes)]
    pub max_input_size: u64,

    /// At most this many objects (links, addresses, routes, rules, sysctls, …) over all files
    #[arg(long, global = true, value_name = "N", default_value_t = desired::budget::Limits::default().max_objects)]
    pub max_objects: u64,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// For programs.
    Json,
    /// JUnit XML, one test case per object (`check` only).
    Junit,
    /// Prometheus textfile-collector metrics (`check` only).
    Prometheus,
    /// An SVG picture (`graph` only).
    Svg,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check the desired state without touching the kernel (exit 0 valid, 2 invalid).
    ///
    /// Host-independent, so CI can validate a host's files anywhere; facts of the target host
    /// (tap owners, external links) are checked by `reconcile` and `check` on that host.
    /// Files that begin with `match: { hostname: GLOB }` apply only on matching hosts: by
    /// default this machine's hostname, with `--host NAME` the host to check for.
    Validate {
        /// See the directory as host NAME would (which files' `match:` select it); default:
        /// this machine's hostname.
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
    },
    /// Print the observed state as desired-format YAML (round-trips into `check`).
    Show {
        /// Also print the loopback link and the common forwarding/rp_filter sysctls.
        #[arg(long)]
        all: bool,
    },
    /// Plan and apply: make the host match the desired state (exit 0 done or no-op, 2 error). As root, refuses desired files or directories not owned by root or writable by group/others.
    Reconcile {
        /// Print the plan and change nothing (needs no privileges).
        #[arg(long)]
        dry_run: bool,
        /// Allow a desired state that removes every object netconverge owns.
        #[arg(long)]
        allow_empty: bool,
        /// Commit confirmed: revert by itself unless `netconverge confirm` runs within
        /// DURATION (e.g. 30s, 2m). On a terminal it asks; otherwise it exits 0 with the
        /// change pending. A detached guardian holds the deadline, so the revert happens even
        /// if this process or its SSH session dies.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        confirm_within: Option<std::time::Duration>,
    },
    /// Keep the change pending after `reconcile --confirm-within` (exit 0, 2 none pending).
    Confirm,
    /// Revert the change pending after `reconcile --confirm-within` now (exit 0, 2 none).
    Rollback,
    /// Is a watcher running for this namespace, its last pass and error, and the change
    /// pending confirmation (exit 0 healthy, 1 degraded, 3 no watcher).
    #[command(long_about = STATUS_HELP)]
    Status,
    /// The detached process holding a pending change's deadline (started by reconcile).
    #[command(hide = true)]
    Guardian {
        /// The pending change it guards.
        #[arg(long)]
        id: String,
    },
    /// Compare desired and observed state (exit 0 in sync, 1 drift, 2 error).
    Check {
        /// Compare with a `show` snapshot instead of the live host.
        #[arg(long, value_name = "FILE")]
        observed: Option<PathBuf>,
    },
    /// Draw the network: links with their addresses, bridges with their ports, the VMs' taps,
    /// providers with their gateways and tables (Graphviz DOT; `-o svg` for a picture).
    Graph {
        /// Draw the host as observed (needs the namespace) instead of the desired state.
        #[arg(long)]
        observed: bool,
    },
    /// Run as a daemon: apply on every edit of the desired files and repair kernel drift.
    ///
    /// Reloads on file changes (debounced) and on SIGHUP, re-applies when rtnetlink reports a
    /// change, resyncs periodically (sysctls have no events). An invalid or refused edit is
    /// logged with its place and the last good state stays in force; a failed pass is
    /// retried with backoff (1 s doubling to 60 s, reset by a success or an edit) whatever
    /// triggered it, and an object that something keeps undoing is logged as a fight and its
    /// repairs damped. A dnsmasq instance that exits is restarted at once (pidfd); with
    /// --netns, the deletion of the namespace stops its dnsmasq and exits with status 2, for
    /// the service manager to restart the watcher. Stops cleanly on SIGTERM/SIGINT after the
    /// current apply (exit 0). Sends READY=1 to systemd when run as a Type=notify unit. As root,
    /// desired files or directories not owned by root or writable by group/others are refused on
    /// every reload.
    Watch {
        /// Quiet time after a file event before reloading (e.g. 200ms, 1s)
        #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = humantime::parse_duration)]
        debounce: std::time::Duration,
        /// Period of the full resync (e.g. 30s, 5m, 1h)
        #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
        resync: std::time::Duration,
        /// Reconcile once and exit (for scripts)
        #[arg(long)]
        once: bool,
        /// Allow a desired state that removes every object netconverge owns.
        #[arg(long)]
        allow_empty: bool,
        /// Commit confirmed for every applied file change: reverted unless `netconverge
        /// confirm` runs within DURATION; a reverted revision of the files is not applied
        /// again until the files change.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        confirm_within: Option<std::time::Duration>,
        /// Serve /metrics (Prometheus), /healthz (the loop is alive) and /readyz (the first
        /// pass is over) over HTTP on ADDR [default when given without a value:
        /// 127.0.0.1:9581]. Off unless given. It listens in the namespace netconverge was
        /// started in, not the one given by --netns.
        #[arg(long, value_name = "ADDR", num_args = 0..=1,
              default_missing_value = crate::watch::serve::DEFAULT_ADDR)]
        metrics: Option<std::net::SocketAddr>,
    },
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    desired::budget::set(desired::budget::Limits {
        max_bytes: cli.max_input_size,
        max_objects: cli.max_objects,
    });
    let result = match &cli.command {
        Command::Validate { host } => {
            if let Some(h) = host {
                desired::host_match::set_host(h);
            }
            validate(&cli)
        }
        Command::Show { all } => show(&cli, *all),
        Command::Reconcile {
            dry_run,
            allow_empty,
            confirm_within,
        } => reconcile(&cli, *dry_run, *allow_empty, *confirm_within),
        Command::Confirm => crate::confirm::confirm(cli.netns.as_deref()),
        Command::Rollback => crate::confirm::rollback(cli.netns.as_deref()),
        Command::Status => crate::status::run(cli.netns.as_deref(), cli.output == Output::Json),
        Command::Guardian { id } => crate::confirm::guardian::run(cli.netns.as_deref(), id),
        Command::Check { observed } => check(&cli, observed.as_deref()),
        Command::Graph { observed } => graph(&cli, *observed),
        Command::Watch {
            debounce,
            resync,
            once,
            allow_empty,
            confirm_within,
            metrics,
        } => watch(
            &cli,
            *metrics,
            crate::watch::WatchOptions {
                path: desired_path(&cli),
                debounce: *debounce,
                resync: *resync,
                once: *once,
                allow_empty: *allow_empty,
                netns: cli.netns.clone(),
                confirm_within: *confirm_within,
            },
        ),
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("error: {f}");
            ExitCode::from(2)
        }
    }
}

/// The desired path: as given, else ./desired, else /etc/netconverge.
fn desired_path(cli: &Cli) -> PathBuf {
    if let Some(p) = &cli.desired {
        return p.clone();
    }
    let local = PathBuf::from("desired");
    if local.exists() {
        local
    } else {
        PathBuf::from("/etc/netconverge")
    }
}

/// Load the desired state. A directory without any `*.yaml`/`*.yml` file is refused unless
/// `empty_ok` (`reconcile --allow-empty`): it is far more often a wrong path than a wish to
/// remove everything.
fn load(cli: &Cli, empty_ok: bool) -> Result<Desired, Failure> {
    let path = desired_path(cli);
    if !path.exists() {
        return Err(Failure::Message(format!(
            "desired state {} does not exist (give one with --desired PATH)",
            path.display()
        )));
    }
    let started = std::time::Instant::now();
    let d = desired::load_path(&path)?;
    tracing::debug!(elapsed = ?started.elapsed(), "loaded {}", path.display());
    if d.files.is_empty() && !empty_ok {
        return Err(Failure::Invalid(desired::Diagnostics(vec![
            desired::Diagnostic {
                file: path,
                line: 0,
                column: 0,
                message: "holds no *.yaml or *.yml file; give the right directory with --desired \
                      PATH (or `reconcile --allow-empty` to remove everything netconverge \
                      manages)"
                    .into(),
            },
        ])));
    }
    let applies = matches!(
        cli.command,
        Command::Reconcile { dry_run: false, .. } | Command::Watch { .. }
    );
    if applies && is_root() {
        desired::permissions::check(&path, &d.files)?;
    }
    Ok(d)
}

fn validate(cli: &Cli) -> Result<ExitCode, Failure> {
    only_text_or_json(cli, "validate")?;
    let d = load(cli, false)?;
    let s = &d.state;
    let files: Vec<String> = d.applying.iter().map(|f| f.display().to_string()).collect();
    let skipped = d.files.len() - d.applying.len();
    let host = desired::host_match::host();
    println!(
        "valid for host {host}: {} links, {} addresses, {} routes, {} rules, {} sysctls in {}{}",
        s.links.len(),
        s.addresses.len(),
        s.routes.len(),
        s.rules.len(),
        s.sysctls.len(),
        files.join(", "),
        match skipped {
            0 => String::new(),
            n => format!(" ({n} file(s) whose `match:` does not select this host left out)"),
        }
    );
    let mut notes: Vec<String> = d.host_checks.iter().map(host_check_text).collect();
    notes.sort();
    notes.dedup();
    for n in notes {
        println!("note: checked on the target host by reconcile/check: {n}");
    }
    Ok(ExitCode::SUCCESS)
}

fn host_check_text(c: &desired::HostCheck) -> String {
    match c {
        desired::HostCheck::User { name, .. } => format!("user `{name}` exists"),
        desired::HostCheck::Group { name, .. } => format!("group `{name}` exists"),
        desired::HostCheck::ExternalLink { name, .. } => format!("link {name} exists"),
        desired::HostCheck::LinkUp { name, .. } => format!("link {name} is up"),
        desired::HostCheck::Sysctl { name, .. } => format!("sysctl {name} exists"),
        desired::HostCheck::Program { name, package, .. } => {
            format!("program `{name}` is installed (Debian package `{package}`)")
        }
        desired::HostCheck::Resolver { bridge, file, .. } => match file {
            Some(f) => format!("{} does not name {bridge}'s own addresses", f.display()),
            None => format!("the namespace's resolv.conf does not name {bridge}'s own addresses"),
        },
    }
}

/// `--netns NAME`: checked when the command line is parsed, before any file is created.
fn netns_name(s: &str) -> Result<String, String> {
    reconcilers::kernel::netns::check_name(s).map(|()| s.to_string())
}

/// Sysctls `show --all` adds: the ones multi-homed and forwarding hosts care about.
const SHOW_ALL_SYSCTLS: &[&str] = &[
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv6.conf.all.forwarding",
];

/// The host as observed, with the table names of the desired state (if it loads) and the
/// sysctls it names; `all` keeps the loopback link and adds the common forwarding sysctls.
fn observe_host(
    cli: &Cli,
    all: bool,
) -> Result<(reconcilers::model::State, BTreeMap<String, u32>), Failure> {
    // The desired state is optional here: it only lends table names and sysctl names.
    let desired = desired::load_path(&desired_path(cli)).ok();
    let mut names: Vec<String> = desired
        .as_ref()
        .map(|d| reconcilers::kinds::scope(&d.state).sysctls)
        .unwrap_or_default();
    if all {
        names.extend(SHOW_ALL_SYSCTLS.iter().map(|s| s.to_string()));
    }
    // The scope also reads the templates of per-interface sysctls (for the host facts);
    // `show` prints only the sysctls that were asked for.
    let asked: std::collections::BTreeSet<String> = desired
        .as_ref()
        .map(|d| d.state.sysctls.keys().cloned().collect())
        .unwrap_or_default();
    let asked_all = all;
    let protocol = desired
        .as_ref()
        .map(|d| d.protocol)
        .unwrap_or(reconcilers::model::DEFAULT_PROTOCOL);
    let netns = cli.netns.clone();
    let mut state = run_in_netns(cli.netns.as_deref(), move || async move {
        let mut k = RtnlKernel::connect_in(protocol, netns)?;
        reconcilers::kernel::Kernel::observe(&mut k, &names).await
    })??;
    state.sysctls.retain(|name, _| {
        asked.contains(name) || (asked_all && SHOW_ALL_SYSCTLS.contains(&name.as_str()))
    });
    if !all {
        state
            .links
            .retain(|name, l| !(name == "lo" && l.kind == LinkKind::External));
        state.addresses.retain(|(link, _), _| link != "lo");
    }
    let tables = desired.map(|d| d.tables).unwrap_or_default();
    Ok((state, tables))
}

fn show(cli: &Cli, all: bool) -> Result<ExitCode, Failure> {
    only_text_or_json(cli, "show")?;
    let (state, tables) = observe_host(cli, all)?;
    let yaml = desired::render_state(&state, &tables);
    if cli.output == Output::Json {
        // The same document as JSON: same keys, same values.
        let doc: serde_json::Value = serde_saphyr::from_str(&yaml)
            .map_err(|e| Failure::Message(format!("cannot convert show output to JSON: {e}")))?;
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print!("{yaml}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Is the effective user root (who must not apply files others can change)?
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Does CapEff include CAP_NET_ADMIN?
fn has_net_admin() -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:").map(|v| v.trim().to_string()))
        })
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

/// Load the desired state and make one pass over the namespace, on a fresh connection.
///
/// The kernel is observed while the files are parsed (both take tens of milliseconds on a
/// large host). Ownership marks depend on `owner.protocol`: the early observation assumes the
/// default and is redone in the rare case the files name another protocol.
fn load_and_pass(cli: &Cli, mode: Mode, allow_empty: bool) -> Result<(Desired, Pass), Failure> {
    load_and_pass_confirmed(cli, mode, allow_empty, None).map(|(d, p, _)| (d, p))
}

/// `load_and_pass`, arming commit-confirmed with `confirm_within` before the first write.
fn load_and_pass_confirmed(
    cli: &Cli,
    mode: Mode,
    allow_empty: bool,
    confirm_within: Option<std::time::Duration>,
) -> Result<(Desired, Pass, Option<crate::confirm::pending::Pending>), Failure> {
    // An empty directory is only wanted where removing everything is (`--allow-empty`).
    let empty_ok = allow_empty && mode != Mode::Check;
    let (tx, rx) = tokio::sync::oneshot::channel::<Desired>();
    let netns = cli.netns.clone();
    std::thread::scope(|scope| {
        let loader = scope.spawn(move || -> Result<(), Failure> {
            let desired = load(cli, empty_ok)?;
            let _ = tx.send(desired);
            Ok(())
        });
        let passed = run_in_netns(cli.netns.as_deref(), move || async move {
            let mut kernel = RtnlKernel::connect_in(DEFAULT_PROTOCOL, netns.clone())?;
            let early = reconcilers::kernel::Kernel::observe(&mut kernel, &[]).await;
            // A closed channel means the loader failed; it reports why.
            let Ok(desired) = rx.await else {
                return Ok(None);
            };
            let (mut kernel, observed) = if desired.protocol == DEFAULT_PROTOCOL {
                let mut observed = early?;
                let scope = reconcilers::kinds::scope(&desired.state);
                observed.sysctls =
                    reconcilers::kernel::Kernel::read_sysctls(&mut kernel, &scope.sysctls).await?;
                (kernel, observed)
            } else {
                let mut kernel = RtnlKernel::connect_in(desired.protocol, netns.clone())?;
                let observed = engine::observe(&mut kernel, &desired.state).await?;
                (kernel, observed)
            };
            let mut armed = None;
            let protocol = desired.protocol;
            let mut arm = |plan: &reconcilers::plan::Plan,
                           before: &reconcilers::model::State,
                           protocols: &reconcilers::snapshot::Protocols| {
                if let Some(within) = confirm_within {
                    armed = Some(crate::confirm::arm(
                        netns.as_deref(),
                        within,
                        plan,
                        before,
                        protocols,
                        protocol,
                        None,
                    )?);
                }
                Ok(())
            };
            let hook: Option<crate::pass::BeforeApply<'_>> = if confirm_within.is_some() {
                Some(&mut arm)
            } else {
                None
            };
            let p = pass_observed(&mut kernel, &desired, observed, mode, allow_empty, hook).await?;
            Ok::<_, Failure>(Some((desired, p, armed)))
        });
        let loaded = loader
            .join()
            .unwrap_or_else(|_| Err(Failure::Message("the loader panicked".into())));
        loaded?;
        passed??.ok_or_else(|| Failure::Message("the desired state was not loaded".into()))
    })
}

fn print_plan(cli: &Cli, p: &Pass, tables: &BTreeMap<String, u32>) {
    match cli.output {
        Output::Text => {
            for w in &p.plan.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", report::text::plan(&p.plan, tables));
            if let Some(a) = &p.applied {
                println!("{}", report::text::applied(a));
            }
        }
        _ => println!("{}", report::json::plan(&p.plan, p.applied.as_ref())),
    }
}

fn reconcile(
    cli: &Cli,
    dry_run: bool,
    allow_empty: bool,
    confirm_within: Option<std::time::Duration>,
) -> Result<ExitCode, Failure> {
    only_text_or_json(cli, "reconcile")?;
    let lock = if dry_run {
        None
    } else {
        if !has_net_admin() {
            return Err(Failure::Message(
                "reconcile needs CAP_NET_ADMIN to change the network: run it as root (sudo) or \
                 give the binary the capability; `reconcile --dry-run` works without it"
                    .into(),
            ));
        }
        let l = lock::acquire(cli.netns.as_deref())?;
        crate::confirm::recover_orphan(cli.netns.as_deref())?;
        // Held from before the snapshot until the last write, so that a `rollback` from
        // another shell never reverts half an apply.
        let pending_lock = match confirm_within {
            Some(_) => Some(lock::acquire_pending(cli.netns.as_deref())?),
            None => None,
        };
        crate::confirm::refuse_if_pending(cli.netns.as_deref())?;
        Some((l, pending_lock))
    };
    let mode = if dry_run { Mode::DryRun } else { Mode::Apply };
    let within = confirm_within.filter(|_| !dry_run);
    let (desired, p, armed) = load_and_pass_confirmed(cli, mode, allow_empty, within)?;
    let started = std::time::Instant::now();
    print_plan(cli, &p, &desired.tables);
    tracing::debug!(elapsed = ?started.elapsed(), "printed the plan");
    for u in &p.unverified {
        eprintln!("error: verify after apply: the kernel does not hold {u} as written");
    }
    let failed = p.applied.as_ref().is_some_and(|a| !a.ok()) || !p.unverified.is_empty();
    // The lock is released before waiting for a confirmation, so that `confirm` and
    // `rollback` from another shell (and the guardian) can take it.
    drop(lock);
    match armed {
        Some(pending) => crate::confirm::after_apply(
            cli.netns.as_deref(),
            &pending,
            failed,
            cli.output == Output::Json,
        ),
        None if failed => Ok(ExitCode::from(2)),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn graph(cli: &Cli, observed: bool) -> Result<ExitCode, Failure> {
    if !matches!(cli.output, Output::Text | Output::Svg) {
        return Err(Failure::Message(
            "graph prints DOT (the default) or SVG (`-o svg`)".into(),
        ));
    }
    let dot = if observed {
        let (state, tables) = observe_host(cli, false)?;
        report::graph::dot(&state, &Default::default(), &tables)
    } else {
        let d = load(cli, false)?;
        report::graph::dot(&d.state, &d.providers, &d.tables)
    };
    match cli.output {
        Output::Svg => print!(
            "{}",
            report::graph::svg(&dot).map_err(|e| Failure::Message(e.to_string()))?
        ),
        _ => print!("{dot}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn check(cli: &Cli, snapshot: Option<&Path>) -> Result<ExitCode, Failure> {
    if cli.output == Output::Svg {
        return Err(Failure::Message("--output svg is only for `graph`".into()));
    }
    let (desired, p) = match snapshot {
        Some(file) => {
            let desired = load(cli, false)?;
            let p = check_snapshot(&desired, file)?;
            (desired, p)
        }
        None => load_and_pass(cli, Mode::Check, true)?,
    };
    let hostname = cli.netns.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into())
    });
    match cli.output {
        Output::Text => {
            print!("{}", report::check::drift_text(&p.plan));
            if !p.plan.is_empty() {
                print!("\n{}", report::text::plan(&p.plan, &desired.tables));
            }
        }
        Output::Json => println!("{}", report::json::plan(&p.plan, None)),
        Output::Junit => print!(
            "{}",
            report::check::junit(&p.plan, &desired.state, &hostname)
        ),
        Output::Svg => unreachable!("refused above"),
        Output::Prometheus => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            print!("{}", report::check::prometheus(&p.plan, now));
        }
    }
    Ok(if p.plan.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Plan against a `show` snapshot instead of the live host (CI without access to the host).
/// Host facts cannot be checked offline; tap owners and groups given by name are compared by
/// name, as `show` writes names where the host could resolve them.
fn check_snapshot(desired: &Desired, file: &Path) -> Result<Pass, Failure> {
    let snapshot = desired::load_path(file).map_err(|d| {
        Failure::Message(format!(
            "the snapshot {} is not valid show output:\n{d}",
            file.display()
        ))
    })?;
    let mut observed = snapshot.observed_state();
    // `show` writes no nftables state (the firewall is generated from `providers:`, which a
    // snapshot cannot hold), so a snapshot cannot tell whether the firewall drifted: say so
    // instead of reporting it missing.
    let mut unknown = None;
    if desired.state.firewall.is_some() && observed.firewall.is_none() {
        observed.firewall = desired.state.firewall.clone();
        unknown = Some(
            "the snapshot holds no nftables state; netconverge's firewall was not compared (run `check` on the host for that)"
                .to_string(),
        );
    }
    let mut plan = crate::engine::plan(&desired.state, &observed);
    plan.warnings.extend(unknown);
    Ok(Pass {
        plan,
        applied: None,
        unverified: Vec::new(),
    })
}

/// Refuse output formats a command does not have.
fn only_text_or_json(cli: &Cli, command: &str) -> Result<(), Failure> {
    match cli.output {
        Output::Text | Output::Json => Ok(()),
        other => Err(Failure::Message(format!(
            "--output {} is only for `check`, not `{command}`",
            format!("{other:?}").to_lowercase()
        ))),
    }
}

fn watch(
    cli: &Cli,
    metrics: Option<std::net::SocketAddr>,
    opts: crate::watch::WatchOptions,
) -> Result<ExitCode, Failure> {
    if !has_net_admin() {
        return Err(Failure::Message(
            "watch needs CAP_NET_ADMIN to change the network: run it as root".into(),
        ));
    }
    let _lock = lock::acquire(cli.netns.as_deref())?;
    // Bound here, before the daemon's thread enters the namespace: see `watch::serve`.
    let endpoint = metrics
        .map(crate::watch::serve::Endpoint::bind)
        .transpose()
        .map_err(|e| Failure::Message(e.to_string()))?;
    run_in_netns(cli.netns.as_deref(), move || {
        crate::watch::run(opts, endpoint)
    })??;
    Ok(ExitCode::SUCCESS)
}
