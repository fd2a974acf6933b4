//! Helpers shared by the reconcilers' integration tests (each test file includes this module
//! with `mod common;`).

pub mod oracle;
