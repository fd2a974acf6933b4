//! netconverge: a declarative network reconciler for Linux hosts.
//!
//! `desired` loads and validates the YAML, `engine` runs observe → plan → apply against any
//! `reconcilers::kernel::Kernel`, `report` prints plans and check results (`desired::show` writes YAML), `cli` wires it to the command line.
#![warn(missing_docs)]

pub mod cli;
pub mod confirm;
pub mod desired;
pub mod engine;
pub mod host;
pub mod lock;
pub mod pass;
pub mod report;
pub mod status;
pub mod watch;
