//! The server's long-running parts, each with its dependencies passed in (`Arc<Catalog>`,
//! `Arc<Collector>`, `Storage`, `Arc<dyn Clock>`, ...) and its own error type.
//!
//! What belongs here: what the server does whoever asks (REST, the WebSocket, a schedule, a
//! timer). Nothing here knows HTTP: no axum, no `AppState`, no `ApiError` (`http::error` maps each
//! service's error to a status and a JSON body); `.ci/api-layers.py` checks that. The wall-clock
//! time comes only from the injected `Clock` (monotonic `Instant`s measure intervals: rate limits,
//! refresh periods).

pub mod alarms;
pub mod audit;
pub mod auth;
pub mod collection;
pub mod control;
pub mod devices;
pub mod floorplans;
pub mod import;
pub mod overrides;
pub mod ranges;
pub mod registry;
pub mod retention;
pub mod scheduler;
pub mod sync;
pub mod tickets;
pub mod trendlogs;

/// Who or what acts, for the audit log: a user (`alice`, from an address) or the server itself
/// (`schedule:3`, `system`).
#[derive(Debug, Clone)]
pub struct Issuer {
    /// `alice`, `schedule:3`, ...
    pub actor: String,
    pub remote: Option<String>,
    /// A user's role; `None` for the server itself (a schedule, an expiry), which acts with what
    /// its author was allowed when it was set up.
    pub role: Option<crate::model::user::Role>,
}
