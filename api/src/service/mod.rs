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
pub mod backup;
pub mod collection;
pub mod control;
pub mod devices;
pub mod floorplans;
pub mod import;
pub mod notify;
pub mod overrides;
pub mod point_names;
pub mod programs;
pub mod ranges;
pub mod registry;
pub mod reload;
pub mod retention;
pub mod scheduler;
pub mod sync;
pub mod tickets;
pub mod trendlogs;

/// What the services' unit tests stand on.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;
    use t3_core::clock::ManualClock;
    use t3_core::config::{CollectorConfig, Config};
    use t3_drivers::collector::Collector;
    use t3_storage::Storage;
    use t3_storage::catalog::Catalog;

    /// A fresh data directory with its storage, a catalog with every record kind registered, and a
    /// collector recording into the storage, on a manual clock.
    pub(crate) struct Base {
        pub dir: tempfile::TempDir,
        pub storage: Storage,
        pub catalog: Arc<Catalog>,
        pub collector: Arc<Collector>,
        pub clock: Arc<ManualClock>,
    }

    pub(crate) fn base(now_us: i64, collector: CollectorConfig) -> Base {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.storage.data_dir = dir.path().join("data");
        let clock = ManualClock::new(now_us);
        let storage = Storage::open(&cfg, Arc::new(t3_storage::vfs::RealFs), clock.clone()).unwrap();
        let catalog = Arc::new(Catalog::open(dir.path()).unwrap());
        crate::model::register(&catalog).unwrap();
        let sink = Arc::new(t3_storage::BatchingSink::start(storage.clone()));
        let collector = Collector::new(collector, sink, clock.clone());
        Base { dir, storage, catalog, collector, clock }
    }
}

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
