//! netconverge: a declarative network reconciler for Linux hosts.
#![warn(missing_docs)]

pub mod desired;
