//! Renderers of plans and results for people (text) and programs (JSON).

pub mod check;
pub mod json;
pub mod text;
