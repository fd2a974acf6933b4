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
use crate::pass::{pass_observed, Failure, Given, Mode, Pass};
use crate::{lock, report};

const AFTER_HELP: &str = "\
Examples:
  netconverge validate                          check desired/*.yaml, no kernel access
  netconverge reconcile --dry-run               show what would change, change nothing
  sudo netconverge reconcile                    converge this host
  sudo netconverge reconcile --confirm-within 2m  apply, revert in 2 minutes unless confirmed
  sudo netconverge confirm                      keep the pending change (rollback: revert it now)
  sudo netconverge reconcile --netns lab        converge the namespace /run/netns/lab
  netconverge show > desired/host.yaml          describe this host as desired state
  sudo netconverge show --adopt > host.yaml     ... and hand what it prints to netconverge
  netconverge check -o json                     exit 1 when the host has drifted
  netconverge import shorewall /etc/shorewall | netconverge reconcile -d - --dry-run
                                                Shorewall's providers as netconverge YAML, planned

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
/// `netconverge COMMAND --help` lists the options of a command.
#[derive(Debug, Parser)]
#[command(name = "netconverge", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Before the command, for older scripts: as the command's `--desired`.
    #[arg(short, long, value_name = "PATH", hide = true)]
    pub desired: Option<PathBuf>,

    /// Before the command, for older scripts: as the command's `--netns`.
    #[arg(long, value_name = "NAME", value_parser = netns_name, hide = true)]
    pub netns: Option<String>,

    /// Before the command, for older scripts: as the command's `--output`.
    #[arg(short, long, value_enum, hide = true)]
    pub output: Option<Output>,

    /// More logging on stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, display_order = 900)]
    pub verbose: u8,

    /// Less logging on stderr (errors only)
    #[arg(short, long, global = true, display_order = 901)]
    pub quiet: bool,

    /// Before the command, for older scripts: as the command's `--max-input-size`.
    #[arg(long, value_name = "BYTES", hide = true)]
    pub max_input_size: Option<u64>,

    /// Before the command, for older scripts: as the command's `--max-objects`.
    #[arg(long, value_name = "N", hide = true)]
    pub max_objects: Option<u64>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the desired state is, and how much of it may be read.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct DesiredArgs {
    /// File or directory of *.yaml/*.yml, or `-` for standard input [default: ./desired, then /etc/netconverge]
    #[arg(short, long, value_name = "PATH")]
    pub desired: Option<PathBuf>,
    /// At most this many bytes of YAML over all desired files [default: 64 MiB; each file at most 16 MiB]
    #[arg(long, value_name = "BYTES")]
    pub max_input_size: Option<u64>,
    /// At most this many objects (links, addresses, routes, rules, sysctls, …) over all files [default: 200000]
    #[arg(long, value_name = "N")]
    pub max_objects: Option<u64>,
}

/// The namespace a command acts in.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct NetnsArg {
    /// Act inside the network namespace /run/netns/NAME instead of the caller's (NAME: an entry of /run/netns, no `/`)
    #[arg(long, value_name = "NAME", value_parser = netns_name)]
    pub netns: Option<String>,
}

/// How a plan is printed for people.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct PlanArgs {
    /// Colour the plan (add green, change yellow, remove red): auto is on a terminal unless NO_COLOR is set
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = Color::Auto)]
    pub color: Color,
    /// One line per object instead of its diff (the default above 200 changes)
    #[arg(long, conflicts_with = "diff")]
    pub summary: bool,
    /// The diff of every object, however many change
    #[arg(long)]
    pub diff: bool,
}

/// When to colour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// On a terminal, unless NO_COLOR is set.
    #[default]
    Auto,
    /// Always (for `less -R`).
    Always,
    /// Never.
    Never,
}

/// Output formats, as resolved for the command (and as accepted before it, for older scripts).
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

/// `-o` of the commands that print text or JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TextOrJson {
    /// For people.
    Text,
    /// For programs: one document on stdout, with `format_version`.
    Json,
}

/// `-o` of `watch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WatchOutput {
    /// Nothing on stdout: the log on stderr is for people.
    Text,
    /// Also one JSON document per line on stdout for each event (started, pass, invalid,
    /// fight, stopped), with `format_version` (JSON Lines).
    Json,
}

impl From<WatchOutput> for Output {
    fn from(o: WatchOutput) -> Output {
        match o {
            WatchOutput::Text => Output::Text,
            WatchOutput::Json => Output::Json,
        }
    }
}

/// `-o` of `check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckOutput {
    /// For people: the drift and the plan that would repair it.
    Text,
    /// For programs: the plan as one document, with `format_version`.
    Json,
    /// JUnit XML, one test case per object.
    Junit,
    /// Prometheus textfile-collector metrics.
    Prometheus,
}

/// `-o` of `graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphOutput {
    /// Graphviz DOT.
    #[value(alias = "text")]
    Dot,
    /// An SVG picture, laid out in-process.
    Svg,
    /// `{"format_version","observed","nodes","edges"}`: the same topology as a document.
    Json,
}

impl From<TextOrJson> for Output {
    fn from(o: TextOrJson) -> Output {
        match o {
            TextOrJson::Text => Output::Text,
            TextOrJson::Json => Output::Json,
        }
    }
}

impl From<CheckOutput> for Output {
    fn from(o: CheckOutput) -> Output {
        match o {
            CheckOutput::Text => Output::Text,
            CheckOutput::Json => Output::Json,
            CheckOutput::Junit => Output::Junit,
            CheckOutput::Prometheus => Output::Prometheus,
        }
    }
}

impl From<GraphOutput> for Output {
    fn from(o: GraphOutput) -> Output {
        match o {
            GraphOutput::Dot => Output::Text,
            GraphOutput::Svg => Output::Svg,
            GraphOutput::Json => Output::Json,
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check the desired state without touching the kernel (exit 0 valid, 2 invalid).
    ///
    /// Host-independent, so CI can validate a host's files anywhere; facts of the target host
    /// (tap owners, external links) are checked by `reconcile` and `check` on that host.
    /// Every error of every file is reported, each at its file:line:column. Files that begin
    /// with `match: { hostname: GLOB }` apply only on matching hosts: by default this
    /// machine's hostname, with `--host NAME` the host to check for.
    Validate {
        /// See the directory as host NAME would (which files' `match:` select it); default:
        /// this machine's hostname.
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
        /// Where the desired state is.
        #[command(flatten)]
        desired: DesiredArgs,
        /// text, or json: `{"format_version","valid","errors":[{file,line,column,message}],"counts"}`
        #[arg(short, long, value_enum)]
        output: Option<TextOrJson>,
    },
    /// Print the observed state as desired-format YAML (round-trips into `check`).
    ///
    /// The objects it prints stay foreign (netconverge never removes them) unless --adopt
    /// hands them to netconverge.
    Show {
        /// Also print the loopback link and the common forwarding/rp_filter sysctls.
        #[arg(long)]
        all: bool,
        /// After printing, mark the printed links, addresses, routes and rules as
        /// netconverge's (link alias, protocol 157), so that removing one from the file later
        /// removes it from the kernel; `external` links and their addresses, and routes and
        /// rules of a running program (dhcp, ra, routing daemons) stay foreign. Needs
        /// CAP_NET_ADMIN.
        #[arg(long)]
        adopt: bool,
        /// Where the desired state is.
        #[command(flatten)]
        desired: DesiredArgs,
        /// The namespace.
        #[command(flatten)]
        netns: NetnsArg,
        /// text (YAML), or json (the same document as JSON, with `format_version`)
        #[arg(short, long, value_enum)]
        output: Option<TextOrJson>,
    },
    /// Plan and apply: make the host match the desired state (exit 0 done or no-op, 2 error).
    ///
    /// The plan is printed before the first write. Changes that can cut the connection it runs
    /// over (a default route; the route, address or link of $SSH_CONNECTION) are marked
    /// `(may cut connectivity)`: apply those with --confirm-within. As root, refuses desired
    /// files or directories not owned by root or writable by group/others.
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
        /// How the plan is printed.
        #[command(flatten)]
        plan: PlanArgs,
        /// Where the desired state is.
        #[command(flatten)]
        desired: DesiredArgs,
        /// The namespace.
        #[command(flatten)]
        netns: NetnsArg,
        /// text, or json (the plan and what was applied, one document)
        #[arg(short, long, value_enum)]
        output: Option<TextOrJson>,
    },
    /// Keep the change pending after `reconcile --confirm-within` (exit 0, 2 none pending).
    Confirm {
        /// The namespace.
        #[command(flatten)]
        netns: NetnsArg,
        /// text, or json: the changes kept, the seconds that were left, when they were applied
        #[arg(short, long, value_enum)]
        output: Option<TextOrJson>,
    },
    /// Revert the change pending after `reconcile --confirm-within` now (exit 0, 2 none).
    Rollback {
        /// The namespace.
        #[command(flatten)]
        netns: NetnsArg,
        /// text, or json: the revert's plan as `reconcile -o json` has it, its writes, the
        /// failed ones and what was not put back
        #[arg(short, long, value_enum)]
        output: Option<TextOrJson>,
    },
    /// Is a watcher running for this namespace, its last pass and error, and the change
    /// pending confirmation (exit 0 healthy, 1 degraded, 3 no watcher).
    #[command(long_about = STATUS_HELP)]
    Status {
        /// The namespace.
        #[command(flatten)]
        netns: NetnsArg,
        /// text, or json
        #[arg(short, long, value_enum)]
        output: Option<TextOrJson>,
    },
    /// The detached process holding a pending change's deadline (started by reconcile).
    #[command(hide = true)]
    Guardian {
        /// The pending change it guards.
        #[arg(long)]
        id: String,
        /// The namespace.
        #[command(flatten)]
        netns: NetnsArg,
    },
    /// Compare desired and observed state (exit 0 in sync, 1 drift, 2 error).
    Check {
        /// Compare with a `show` snapshot instead of the live host.
        #[arg(long, value_name = "FILE")]
        observed: Option<PathBuf>,
        /// How the plan is printed.
        #[command(flatten)]
        plan: PlanArgs,
        /// Where the desired state is.
        #[command(flatten)]
        desired: DesiredArgs,
        /// The namespace.
        #[command(flatten)]
        netns: NetnsArg,
        /// Output format
        #[arg(short, long, value_enum)]
        output: Option<CheckOutput>,
        /// Also write the Prometheus metrics to FILE for node_exporter's textfile collector,
        /// atomically; a check that cannot run writes `netconverge_check_success 0` there.
        #[arg(long, value_name = "FILE")]
        textfile: Option<PathBuf>,
        /// The host checked, naming the JUnit suite [default: the --netns name, else this
        /// machine's hostname]
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
    },
    /// Draw the network: links with their addresses, bridges with their ports, the VMs' taps,
    /// providers with their gateways and tables (Graphviz DOT; `-o svg` for a picture).
    Graph {
        /// Draw the host as observed (needs the namespace) instead of the desired state.
        #[arg(long)]
        observed: bool,
        /// Where the desired state is.
        #[command(flatten)]
        desired: DesiredArgs,
        /// The namespace.
        #[command(flatten)]
        netns: NetnsArg,
        /// Output format
        #[arg(short, long, value_enum)]
        output: Option<GraphOutput>,
    },
    /// Write another tool's configuration as netconverge YAML (stdout); see `import shorewall --help`.
    #[command(subcommand)]
    Import(ImportFrom),
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
    /// current apply (exit 0). Under a Type=notify unit it sends READY=1, STATUS= after every pass,
    /// RELOADING=1/STOPPING=1, and WATCHDOG=1 at half of WatchdogSec=. As root,
    /// desired files or directories not owned by root or writable by group/others are refused on
    /// every reload. Its output is its log on stderr; with `-o json` also one JSON document per
    /// line on stdout for each event (JSON Lines). Providers with `health:` are probed with ICMP
    /// echo through their own path
    /// (needs CAP_NET_RAW); one failing `down` rounds in a row is taken out of service until
    /// `up` good rounds bring it back (only `watch` acts on health: `reconcile` applies every
    /// provider as declared, `check` accepts a provider `watch` holds down). Providers with
    /// `gateway: detect`/`local: detect` follow their interface's DHCP client: the address and
    /// route events of a new lease start a pass that moves their table, rules and nexthop.
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
        /// Where the desired state is.
        #[command(flatten)]
        desired: DesiredArgs,
        /// The namespace.
        #[command(flatten)]
        netns: NetnsArg,
        /// Output format (the log goes to stderr either way)
        #[arg(short, long, value_enum)]
        output: Option<WatchOutput>,
    },
    /// Write the man pages (netconverge(8), one per command, netconverge.yaml(5)) into DIR.
    Man {
        /// Directory to write the pages into (created if missing).
        dir: PathBuf,
    },
    /// Print the completion script for SHELL (bash, zsh, fish, elvish, powershell).
    ///
    /// E.g. `netconverge completions bash > /etc/bash_completion.d/netconverge`; the Debian
    /// package installs them for bash, zsh and fish.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// The command's `--desired` group, for the commands that read the desired state.
    fn desired_args(&self) -> Option<&DesiredArgs> {
        match self {
            Command::Validate { desired, .. }
            | Command::Show { desired, .. }
            | Command::Reconcile { desired, .. }
            | Command::Check { desired, .. }
            | Command::Graph { desired, .. }
            | Command::Watch { desired, .. } => Some(desired),
            Command::Confirm { .. }
            | Command::Rollback { .. }
            | Command::Status { .. }
            | Command::Guardian { .. }
            | Command::Import(_)
            | Command::Man { .. }
            | Command::Completions { .. } => None,
        }
    }

    /// The command's `--netns`.
    fn netns(&self) -> Option<&String> {
        match self {
            Command::Validate { .. } | Command::Man { .. } | Command::Completions { .. } => None,
            Command::Show { netns, .. }
            | Command::Reconcile { netns, .. }
            | Command::Confirm { netns, .. }
            | Command::Rollback { netns, .. }
            | Command::Status { netns, .. }
            | Command::Guardian { netns, .. }
            | Command::Check { netns, .. }
            | Command::Graph { netns, .. }
            | Command::Watch { netns, .. }
            | Command::Import(ImportFrom::Shorewall { netns, .. }) => netns.netns.as_ref(),
        }
    }

    /// The command's `-o`, as the common format.
    fn output(&self) -> Option<Output> {
        match self {
            Command::Validate { output, .. }
            | Command::Show { output, .. }
            | Command::Reconcile { output, .. }
            | Command::Confirm { output, .. }
            | Command::Rollback { output, .. }
            | Command::Status { output, .. } => output.map(Output::from),
            Command::Check { output, .. } => output.map(Output::from),
            Command::Graph { output, .. } => output.map(Output::from),
            Command::Watch { output, .. } => output.map(Output::from),
            Command::Import(ImportFrom::Shorewall { output, .. }) => output.map(Output::from),
            Command::Guardian { .. } | Command::Man { .. } | Command::Completions { .. } => None,
        }
    }

    /// How the command prints plans.
    fn plan_args(&self) -> PlanArgs {
        match self {
            Command::Reconcile { plan, .. } | Command::Check { plan, .. } => plan.clone(),
            _ => PlanArgs::default(),
        }
    }
}

impl Cli {
    /// Fold the command's own options into the ones given before it (the command's win), so
    /// that the rest of the code reads one place.
    fn resolve(mut self) -> Cli {
        if let Some(d) = self.command.desired_args().cloned() {
            self.desired = d.desired.or(self.desired);
            self.max_input_size = d.max_input_size.or(self.max_input_size);
            self.max_objects = d.max_objects.or(self.max_objects);
        }
        self.netns = self.command.netns().cloned().or(self.netns);
        self.output = self.command.output().or(self.output);
        self
    }

    /// The output format of the command.
    pub fn format(&self) -> Output {
        self.output.unwrap_or(Output::Text)
    }

    /// How plans are printed: colour (`--color`, `NO_COLOR`, a terminal) and summary.
    fn plan_style(&self, changes: usize) -> report::text::PlanStyle {
        use std::io::IsTerminal;
        let args = self.command.plan_args();
        let color = match args.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        };
        report::text::PlanStyle::for_size(color, args.summary, args.diff, changes)
    }
}

/// The other tools `import` reads.
#[derive(Debug, Subcommand)]
pub enum ImportFrom {
    /// Translate a Shorewall configuration's routing into netconverge YAML on stdout.
    ///
    /// Reads providers, rtrules (and route_rules), mangle MARK lines that set provider marks,
    /// snat (and masq), interfaces (optional, routefilter, physical=) and the shorewall.conf
    /// settings that change the expansion (USE_DEFAULT_RT, BALANCE_PROVIDERS, TRACK_PROVIDERS,
    /// PROVIDER_BITS/PROVIDER_OFFSET/MASK_BITS, ROUTE_FILTER, IP_FORWARDING), with params
    /// variables, ?IF/?ELSE/?ENDIF, ?FORMAT, ?SECTION, INCLUDE and continuation lines. What
    /// Shorewall reads from the host at start (an interface's address without
    /// INTERFACE:ADDRESS, GATEWAY detect, the subnets DUPLICATE copies) is read from this host
    /// (or --netns) unless --offline. Everything not translated (filter rules, policies,
    /// zones, actions, macros, options without an equivalent) is listed on stderr as
    /// file:line and why, and commented in the YAML. Exit 0: all routing translated; 1:
    /// something affecting routing was not; 2: the directory cannot be read.
    ///
    /// Example: netconverge import shorewall /etc/shorewall | netconverge reconcile -d - --dry-run
    Shorewall {
        /// The configuration directory.
        #[arg(default_value = "/etc/shorewall")]
        dir: PathBuf,
        /// Do not read addresses and gateways from this host: what needs them is reported instead.
        #[arg(long)]
        offline: bool,
        /// The namespace whose addresses and gateways stand for the host's.
        #[command(flatten)]
        netns: NetnsArg,
        /// text (the YAML on stdout, the findings on stderr), or json: the YAML, each finding
        /// with its file and line, and whether all the routing was translated
        #[arg(short, long, value_enum)]
        output: Option<TextOrJson>,
    },
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let cli = cli.resolve();
    let defaults = desired::budget::Limits::default();
    desired::budget::set(desired::budget::Limits {
        max_bytes: cli.max_input_size.unwrap_or(defaults.max_bytes),
        max_objects: cli.max_objects.unwrap_or(defaults.max_objects),
    });
    let json = cli.format() == Output::Json;
    let netns = cli.netns.as_deref();
    let result = match &cli.command {
        Command::Validate { host, .. } => {
            if let Some(h) = host {
                desired::host_match::set_host(h);
            }
            validate(&cli)
        }
        Command::Show { all, adopt, .. } => show(&cli, *all, *adopt),
        Command::Reconcile {
            dry_run,
            allow_empty,
            confirm_within,
            ..
        } => reconcile(&cli, *dry_run, *allow_empty, *confirm_within),
        Command::Confirm { .. } => crate::confirm::confirm(netns, json),
        Command::Rollback { .. } => crate::confirm::rollback(netns, json),
        Command::Status { .. } => crate::status::run(netns, json),
        Command::Guardian { id, .. } => crate::confirm::guardian::run(netns, id),
        Command::Check {
            observed,
            textfile,
            host,
            ..
        } => check(&cli, observed.as_deref(), textfile.as_deref(), host.clone()),
        Command::Graph { observed, .. } => graph(&cli, *observed),
        Command::Import(ImportFrom::Shorewall { dir, offline, .. }) => {
            import_shorewall(&cli, dir, *offline)
        }
        Command::Man { .. } | Command::Completions { .. } => manual(&cli),
        Command::Watch {
            debounce,
            resync,
            once,
            allow_empty,
            confirm_within,
            metrics,
            ..
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
                json,
            },
        ),
    };
    match result {
        Ok(code) => code,
        Err(f) if json => {
            println!("{}", report::json::failure(&f));
            eprintln!("error: {f}");
            ExitCode::from(2)
        }
        Err(f) => {
            eprintln!("error: {f}");
            ExitCode::from(2)
        }
    }
}

/// `man DIR` and `completions SHELL`: files and scripts, for which there is no `-o`.
fn manual(cli: &Cli) -> Result<ExitCode, Failure> {
    if cli.format() != Output::Text {
        return Err(Failure::Message(
            "`man` and `completions` write man pages and shell scripts; --output is not for them"
                .into(),
        ));
    }
    match &cli.command {
        Command::Man { dir } => crate::manual::write_pages(dir).map(|written| {
            written.iter().for_each(|p| println!("{}", p.display()));
            ExitCode::SUCCESS
        }),
        Command::Completions { shell } => {
            crate::manual::write_completions(*shell, &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        _ => unreachable!("only man and completions come here"),
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
    if path.as_os_str() == "-" {
        if matches!(cli.command, Command::Watch { .. }) {
            return Err(Failure::Message(
                "watch cannot follow standard input; give a file or directory with --desired"
                    .into(),
            ));
        }
        return Ok(desired::load_stdin()?);
    }
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
    let mut notes: Vec<String> = d.host_checks.iter().map(host_check_text).collect();
    notes.sort();
    notes.dedup();
    if cli.format() == Output::Json {
        let doc = serde_json::json!({
            "valid": true,
            "errors": [],
            "counts": {
                "links": s.links.len(),
                "addresses": s.addresses.len(),
                "routes": s.routes.len(),
                "rules": s.rules.len(),
                "sysctls": s.sysctls.len(),
            },
            "host": host,
            "files": files,
            "files_left_out": skipped,
            "host_checks": notes,
        });
        println!("{}", report::json::document(doc));
        return Ok(ExitCode::SUCCESS);
    }
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
        desired::HostCheck::TapAccess { tap, .. } => {
            format!("tap {tap}'s owner is in its group and can open /dev/net/tun (a warning)")
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
fn observe_host(cli: &Cli, all: bool) -> Result<Observed, Failure> {
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
    Ok(Observed {
        state,
        tables,
        protocol,
    })
}

/// The host as `show` and `graph --observed` read it.
struct Observed {
    state: reconcilers::model::State,
    /// Table names of the desired state, if it loads.
    tables: BTreeMap<String, u32>,
    /// The protocol that marks netconverge's routes and rules (`owner.protocol`).
    protocol: u8,
}

/// The comment `show` starts with: whether the objects it prints stay foreign.
const SHOW_FOREIGN: &str = "\
# The objects below that netconverge did not create stay foreign: it never removes them, even
# when they leave the file. `netconverge show --adopt` hands them to netconverge.
";

/// The comment `show --adopt` starts with.
const SHOW_ADOPTED: &str = "\
# Adopted (show --adopt): the objects listed under `managed:` at the end carry netconverge's
# marks now, so removing one from the file removes it from the kernel. The others stay
# foreign: `external` links and their addresses, and routes and rules a running program keeps
# (a DHCP client, router advertisements, a routing daemon).
";

fn show(cli: &Cli, all: bool, adopt: bool) -> Result<ExitCode, Failure> {
    only_text_or_json(cli, "show")?;
    if adopt && !has_net_admin() {
        return Err(Failure::Message(
            "show --adopt writes ownership marks and needs CAP_NET_ADMIN (run it as root)".into(),
        ));
    }
    let Observed {
        state: observed,
        tables,
        protocol,
    } = observe_host(cli, all)?;
    // Which routes and rules a running program keeps (by protocol), which adopting leaves.
    let protocols = if adopt {
        let netns = cli.netns.clone();
        run_in_netns(cli.netns.as_deref(), move || async move {
            let mut k = RtnlKernel::connect_in(protocol, netns)?;
            reconcilers::kernel::Kernel::protocols(&mut k).await
        })??
    } else {
        Default::default()
    };
    let state = if adopt {
        crate::adopt::adopted(observed.clone(), &protocols)
    } else {
        observed.clone()
    };
    let yaml = desired::render_state(&state, &tables);
    if cli.format() == Output::Json {
        // The same document as JSON: same keys, same values.
        let doc: serde_json::Value = serde_saphyr::from_str(&yaml)
            .map_err(|e| Failure::Message(format!("cannot convert show output to JSON: {e}")))?;
        let doc = serde_json::json!({ "adopted": adopt, "state": doc });
        println!("{}", report::json::document(doc));
    } else {
        print!("{}{yaml}", if adopt { SHOW_ADOPTED } else { SHOW_FOREIGN });
    }
    if adopt {
        // After printing, so that the marks are only written once the user has the file.
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let netns = cli.netns.clone();
        let failures = run_in_netns(cli.netns.as_deref(), move || async move {
            let mut k = RtnlKernel::connect_in(protocol, netns)?;
            Ok::<_, Failure>(crate::adopt::apply(&mut k, &observed, &protocols).await)
        })??;
        if !failures.is_empty() {
            return Err(Failure::Message(format!(
                "adopting failed; what was printed as managed is not all marked:\n  {}",
                failures.join("\n  ")
            )));
        }
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

/// What loading and one pass produced.
struct Passed {
    /// What was loaded; after `reconcile` (applied or dry) its state has been moved into the
    /// pass (`Given::Taken`): its tables and files are left.
    desired: Desired,
    pass: Pass,
    /// The pending change, when commit-confirmed was armed.
    armed: Option<crate::confirm::pending::Pending>,
    /// The SSH session's path through the host, when this runs under SSH.
    ssh: Option<crate::connectivity::SshPath>,
    /// The plan was printed (text) before the first write.
    printed: bool,
    /// The JSON plan's objects, being rendered while the writes run (`-o json`).
    written: Option<std::thread::JoinHandle<report::json::Written>>,
}

/// Load the desired state and make one pass over the namespace, on a fresh connection.
///
/// The kernel is observed while the files are parsed (both take tens of milliseconds on a
/// large host). Ownership marks depend on `owner.protocol`: the early observation assumes the
/// default and is redone in the rare case the files name another protocol. In text output the
/// plan is printed before the first write (with `print_first`), arming commit-confirmed with
/// `confirm_within` follows it.
fn load_and_pass(
    cli: &Cli,
    mode: Mode,
    allow_empty: bool,
    confirm_within: Option<std::time::Duration>,
) -> Result<Passed, Failure> {
    // An empty directory is only wanted where removing everything is (`--allow-empty`).
    let empty_ok = allow_empty && mode != Mode::Check;
    let (tx, rx) = tokio::sync::oneshot::channel::<Desired>();
    let netns = cli.netns.clone();
    let mut output = PlanOutput::of(cli);
    std::thread::scope(|scope| {
        let loader = scope.spawn(move || -> Result<(), Failure> {
            let desired = load(cli, empty_ok)?;
            let _ = tx.send(desired);
            Ok(())
        });
        let passed = run_in_netns(cli.netns.as_deref(), move || async move {
            let started = std::time::Instant::now();
            let mut kernel = RtnlKernel::connect_in(DEFAULT_PROTOCOL, netns.clone())?;
            let early = reconcilers::kernel::Kernel::observe(&mut kernel, &[]).await;
            // A closed channel means the loader failed; it reports why.
            let Ok(mut desired) = rx.await else {
                return Ok(None);
            };
            let (mut kernel, observed) = finish_observing(kernel, early, &desired, &netns).await?;
            tracing::debug!(elapsed = ?started.elapsed(), "observed");
            let ssh = crate::connectivity::ssh_path(&mut kernel).await;
            let mut armed = None;
            let protocol = desired.protocol;
            let tables = desired.tables.clone();
            let mut before_apply =
                |plan: &reconcilers::plan::Plan,
                 before: &reconcilers::model::State,
                 protocols: &reconcilers::snapshot::Protocols| {
                    output.before_writes(plan, &tables, ssh.as_ref());
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
            let hook = (mode == Mode::Apply).then(|| crate::pass::BeforeApply {
                run: &mut before_apply,
                protocols: confirm_within.is_some(),
            });
            let given = given(mode, &mut desired);
            let p = pass_observed(&mut kernel, given, observed, mode, allow_empty, hook).await?;
            Ok::<_, Failure>(Some(Passed {
                desired,
                pass: p,
                armed,
                ssh,
                printed: output.printed,
                written: output.written,
            }))
        });
        let loaded = loader
            .join()
            .unwrap_or_else(|_| Err(Failure::Message("the loader panicked".into())));
        loaded?;
        passed??.ok_or_else(|| Failure::Message("the desired state was not loaded".into()))
    })
}

/// `check` reports against the desired state after the pass (JUnit lists it); the other
/// commands only print the plan, so their state is moved into the pass.
fn given(mode: Mode, desired: &mut Desired) -> Given<'_> {
    match mode {
        Mode::Check => Given::Kept(desired),
        Mode::Apply | Mode::DryRun => Given::Taken(desired),
    }
}

/// What is done for the output before the first write: the text plan is printed then; the
/// JSON plan's objects start being rendered on another thread, while the writes run.
struct PlanOutput {
    printer: Option<PlanPrinter>,
    json: bool,
    /// The text plan was printed.
    printed: bool,
    /// The JSON plan's objects, being rendered.
    written: Option<std::thread::JoinHandle<report::json::Written>>,
}

impl PlanOutput {
    fn of(cli: &Cli) -> PlanOutput {
        PlanOutput {
            printer: (cli.format() == Output::Text).then(|| PlanPrinter::of(cli)),
            json: cli.format() == Output::Json,
            printed: false,
            written: None,
        }
    }

    fn before_writes(
        &mut self,
        plan: &reconcilers::plan::Plan,
        tables: &BTreeMap<String, u32>,
        ssh: Option<&crate::connectivity::SshPath>,
    ) {
        if let Some(p) = &self.printer {
            p.print(plan, tables, ssh);
            self.printed = true;
        }
        if self.json {
            let cuts = crate::connectivity::may_cut(plan, ssh);
            self.written = Some(report::json::Written::spawn(plan, tables, cuts));
        }
    }
}

/// The observation made while the files loaded, completed with the desired state's sysctls;
/// redone on a connection with the files' protocol when they name another.
async fn finish_observing(
    mut kernel: RtnlKernel,
    early: Result<reconcilers::model::State, reconcilers::error::KernelError>,
    desired: &Desired,
    netns: &Option<String>,
) -> Result<(RtnlKernel, reconcilers::model::State), Failure> {
    if desired.protocol == DEFAULT_PROTOCOL {
        let mut observed = early?;
        let scope = reconcilers::kinds::scope(&desired.state);
        observed.sysctls =
            reconcilers::kernel::Kernel::read_sysctls(&mut kernel, &scope.sysctls).await?;
        Ok((kernel, observed))
    } else {
        let mut kernel = RtnlKernel::connect_in(desired.protocol, netns.clone())?;
        let observed = engine::observe(&mut kernel, &desired.state).await?;
        Ok((kernel, observed))
    }
}

/// How a command prints its plan as text (everything it needs, for the thread that applies).
#[derive(Clone, Debug)]
struct PlanPrinter {
    color: bool,
    summary: bool,
    diff: bool,
    /// `reconcile` suggests `--confirm-within` for changes that may cut connectivity.
    suggest_confirm: bool,
}

impl PlanPrinter {
    fn of(cli: &Cli) -> PlanPrinter {
        let style = cli.plan_style(0);
        let args = cli.command.plan_args();
        let suggest_confirm = matches!(
            cli.command,
            Command::Reconcile {
                confirm_within: None,
                ..
            }
        );
        PlanPrinter {
            color: style.color,
            summary: args.summary,
            diff: args.diff,
            suggest_confirm,
        }
    }

    /// Print the plan on stdout; its warnings on stderr before it and again after its
    /// summary line (a long plan scrolls them away); the advice for changes that may cut
    /// connectivity last.
    fn print(
        &self,
        plan: &reconcilers::plan::Plan,
        tables: &BTreeMap<String, u32>,
        ssh: Option<&crate::connectivity::SshPath>,
    ) {
        use std::io::Write;
        let cuts = crate::connectivity::may_cut(plan, ssh);
        let style = report::text::PlanStyle::for_size(
            self.color,
            self.summary,
            self.diff,
            plan.changes.len(),
        );
        for w in &plan.warnings {
            eprintln!("warning: {w}");
        }
        print!("{}", report::text::plan(plan, tables, style, &cuts));
        let _ = std::io::stdout().flush();
        for w in &plan.warnings {
            eprintln!("warning: {w}");
        }
        let n = cuts.iter().filter(|c| **c).count();
        if n > 0 && self.suggest_confirm {
            println!(
                "{n} change(s) may cut connectivity to this host: apply with `--confirm-within 2m` \
                 to have them reverted unless you confirm."
            );
        }
    }
}

/// Print the plan of `passed` (with what was applied); `written` is the JSON plan's objects
/// rendered while the writes ran.
fn print_plan(
    cli: &Cli,
    passed: &Passed,
    written: Option<std::thread::JoinHandle<report::json::Written>>,
) {
    let p = &passed.pass;
    match cli.format() {
        Output::Text => {
            if !passed.printed {
                PlanPrinter::of(cli).print(&p.plan, &passed.desired.tables, passed.ssh.as_ref());
            }
            if let Some(a) = &p.applied {
                println!("{}", report::text::applied(a));
            }
        }
        _ => {
            // Made here when no thread made them (no write was due), or when it panicked.
            let written = written.and_then(|w| w.join().ok()).unwrap_or_else(|| {
                let cuts = crate::connectivity::may_cut(&p.plan, passed.ssh.as_ref());
                report::json::Written::of(&p.plan.changes, &passed.desired.tables, &cuts)
            });
            println!(
                "{}",
                report::json::plan(&p.plan, p.applied.as_ref(), &written)
            );
        }
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
    let mut passed = load_and_pass(cli, mode, allow_empty, within)?;
    let started = std::time::Instant::now();
    let written = passed.written.take();
    print_plan(cli, &passed, written);
    let Passed { pass: p, armed, .. } = passed;
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
            cli.format() == Output::Json,
        ),
        None if failed => Ok(ExitCode::from(2)),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// `import shorewall DIR`: the YAML on stdout, the findings on stderr.
fn import_shorewall(cli: &Cli, dir: &Path, offline: bool) -> Result<ExitCode, Failure> {
    use crate::import::shorewall::{import, HostFacts};
    only_text_or_json(cli, "import")?;
    let host = if offline {
        None
    } else {
        let netns = cli.netns.clone();
        let observed = run_in_netns(cli.netns.as_deref(), move || async move {
            let mut k = RtnlKernel::connect_in(DEFAULT_PROTOCOL, netns)?;
            reconcilers::kernel::Kernel::observe(&mut k, &[]).await
        });
        match observed {
            Ok(Ok(state)) => Some(HostFacts::from_state(&state)),
            Ok(Err(e)) => {
                eprintln!("warning: cannot read this host's addresses ({e}); continuing as with --offline");
                None
            }
            Err(e) => {
                eprintln!("warning: cannot read this host's addresses ({e}); continuing as with --offline");
                None
            }
        }
    };
    let imported = import(dir, host.as_ref()).map_err(|e| Failure::Message(e.to_string()))?;
    if cli.format() == Output::Json {
        let doc = serde_json::json!({
            "yaml": imported.yaml,
            "findings": imported.findings.json(),
            "routing_translated": !imported.findings.routing(),
        });
        println!("{}", report::json::document(doc));
        return Ok(ExitCode::from(imported.exit_status()));
    }
    print!("{}", imported.yaml);
    for finding in &imported.findings.0 {
        eprintln!("{finding}");
    }
    Ok(ExitCode::from(imported.exit_status()))
}

fn graph(cli: &Cli, observed: bool) -> Result<ExitCode, Failure> {
    if !matches!(cli.format(), Output::Text | Output::Svg | Output::Json) {
        return Err(Failure::Message(
            "graph prints DOT (the default), SVG (`-o svg`) or JSON (`-o json`)".into(),
        ));
    }
    // One walk of the topology feeds every format.
    let topology = if observed {
        let o = observe_host(cli, false)?;
        report::topology::Topology::of(&o.state, &Default::default(), &o.tables)
    } else {
        let d = load(cli, false)?;
        report::topology::Topology::of(&d.state, &d.providers, &d.tables)
    };
    let dot = report::graph::dot(&topology);
    match cli.format() {
        Output::Svg => print!(
            "{}",
            report::graph::svg(&dot).map_err(|e| Failure::Message(e.to_string()))?
        ),
        Output::Json => {
            let mut doc = report::graph::json(&topology);
            doc["observed"] = observed.into();
            println!("{}", report::json::document(doc));
        }
        _ => print!("{dot}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn check(
    cli: &Cli,
    snapshot: Option<&Path>,
    textfile: Option<&Path>,
    host: Option<String>,
) -> Result<ExitCode, Failure> {
    if cli.format() == Output::Svg {
        return Err(Failure::Message("--output svg is only for `graph`".into()));
    }
    let checked = match snapshot {
        Some(file) => load(cli, false).and_then(|desired| {
            let pass = check_snapshot(&desired, file)?;
            Ok(Passed {
                desired,
                pass,
                armed: None,
                ssh: None,
                printed: false,
                written: None,
            })
        }),
        None => load_and_pass(cli, Mode::Check, true, None),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    if let Some(path) = textfile {
        let body = match &checked {
            Ok(passed) => report::textfile::succeeded(&passed.pass.plan, now),
            Err(_) => report::textfile::failed(now),
        };
        if let Err(e) = report::textfile::write(path, &body) {
            let e = format!("cannot write the textfile {}: {e}", path.display());
            // The check's own error, if any, is the one to exit with.
            match checked {
                Ok(_) => return Err(Failure::Message(e)),
                Err(_) => eprintln!("error: {e}"),
            }
        }
    }
    let passed = checked?;
    let (p, desired) = (&passed.pass, &passed.desired);
    let hostname = host.or_else(|| cli.netns.clone()).unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into())
    });
    match cli.format() {
        Output::Text => {
            print!("{}", report::check::drift_text(&p.plan));
            if !p.plan.is_empty() {
                println!();
                PlanPrinter::of(cli).print(&p.plan, &desired.tables, passed.ssh.as_ref());
            }
        }
        Output::Json => print_plan(cli, &passed, None),
        Output::Junit => print!(
            "{}",
            report::check::junit(&p.plan, &desired.state, &hostname)
        ),
        Output::Svg => unreachable!("refused above"),
        Output::Prometheus => print!("{}", report::check::prometheus(&p.plan, now)),
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
        open_taps: Default::default(),
    })
}

/// Refuse output formats a command does not have.
fn only_text_or_json(cli: &Cli, command: &str) -> Result<(), Failure> {
    match cli.format() {
        Output::Text | Output::Json => Ok(()),
        other => Err(Failure::Message(format!(
            "`{command}` prints text or json; --output {} is for `{}`",
            format!("{other:?}").to_lowercase(),
            if other == Output::Svg {
                "graph"
            } else {
                "check"
            }
        ))),
    }
}

fn watch(
    cli: &Cli,
    metrics: Option<std::net::SocketAddr>,
    opts: crate::watch::WatchOptions,
) -> Result<ExitCode, Failure> {
    only_text_or_json(cli, "watch")?;
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
