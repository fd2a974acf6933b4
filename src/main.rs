//! The `netconverge` binary: parse the command line, set up logging, run the command.

use std::process::ExitCode;

use clap::Parser;
use netconverge::cli::{run, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A daemon's log is its only output: `watch` logs each applied change by default.
    let daemon = matches!(cli.command, netconverge::cli::Command::Watch { .. });
    if !daemon {
        // Rust ignores SIGPIPE, so writing to a closed pipe (`netconverge show | head -1`)
        // would make println! panic; die of the signal quietly instead, as other Unix tools
        // do. Not for the daemon: a log reader going away must not end it.
        // SAFETY: restoring the default disposition of a signal before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 if daemon => "info",
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    netconverge::logging::init(level);
    run(cli)
}
