//! netconverge: a declarative network reconciler for Linux hosts.
//!
//! `desired` loads and validates the YAML, `engine` runs observe → plan → apply against any
//! `reconcilers::kernel::Kernel`, `report` prints plans and check results (`desired::show` writes YAML), `cli` wires it to the command line.
#![warn(missing_docs)]

pub mod adopt;
pub mod cli;
pub mod confirm;
pub mod connectivity;
pub mod desired;
pub mod engine;
pub mod host;
pub mod import;
pub mod lock;
pub mod logging;
pub mod manual;
pub mod pass;
pub mod report;
pub mod status;
pub mod watch;
