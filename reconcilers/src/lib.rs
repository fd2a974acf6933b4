//! The reconcilers of netconverge: one module per object kind, each diffing a desired `State`
//! against an observed one, plus the `Kernel` boundary they plan against.
#![warn(missing_docs)]

pub mod addresses;
pub mod dhcp;
pub mod error;
pub mod firewall;
pub mod kernel;
pub mod kind;
pub mod kinds;
pub mod links;
pub mod model;
pub mod plan;
pub mod planner;
pub mod programs;
pub mod providers;
pub mod revert;
pub mod routes;
pub mod rules;
pub mod snapshot;
pub mod sysctl;
