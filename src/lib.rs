//! netconverge: a declarative network reconciler for Linux hosts.
//!
//! `desired` loads and validates the YAML, `engine` runs observe → plan → apply against any
//! `reconcilers::kernel::Kernel`, `render` prints plans, `cli` wires it to the command line.
#![warn(missing_docs)]

pub mod cli;
pub mod desired;
pub mod engine;
pub mod host;
pub mod lock;
pub mod pass;
pub mod render;
pub mod watch;
