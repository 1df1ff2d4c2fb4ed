//! HTTP handlers, one module per family of endpoints.

pub mod export;
pub mod health;
pub mod history;
pub mod samples;
