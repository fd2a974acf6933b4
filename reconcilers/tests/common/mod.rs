//! Helpers shared by the reconcilers' integration tests (each test file includes this module
//! with `mod common;` and uses the parts it needs).
#![allow(dead_code)]

pub mod oracle;
pub mod states;
