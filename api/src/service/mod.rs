//! The server's long-running parts.

pub mod alarms;
pub mod auth;
pub mod collection;
pub mod control;
pub mod registry;
pub mod scheduler;
