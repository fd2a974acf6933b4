//! Reports of plans and results: for people (text) and programs (JSON, JUnit, Prometheus).

pub mod check;
pub mod graph;
pub mod json;
pub mod text;
pub mod textfile;
pub mod topology;
