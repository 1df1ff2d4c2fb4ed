//! `GET /healthz`.

use crate::http::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use std::sync::atomic::Ordering;
use t3_storage::WriteState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` while the server serves.
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_secs: u64,
    /// Whether samples are accepted: `ok`; `read-only` while the data directory's free space is
    /// below `storage.disk_floor_free_mb` (see `disk`) or the WAL cannot create a segment (a full
    /// disk, no file descriptors left), when writes are refused with 503 and the server takes
    /// writes again by itself once space returns; `poisoned` after a failed WAL write or fsync,
    /// when writes are refused until a restart (after the disk is fixed). Queries and logins are
    /// served in every state.
    pub writes: &'static str,
    /// Why writes are refused (absent while they are accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writes_reason: Option<String>,
    /// Whether the catalog (buildings, devices, users, sessions, the audit log) can be written:
    /// `ok`, or `failing` from a failed catalog write (a full disk) until one succeeds. While it
    /// fails, changes are refused with 503 and login sessions are kept in memory until restart.
    pub catalog_writes: &'static str,
    /// Why the last catalog write failed (absent while writes succeed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_writes_reason: Option<String>,
    /// The data directory's free space.
    pub disk: DiskHealth,
    /// Samples acknowledged and not yet in Parquet.
    pub buffered_samples: usize,
    /// Samples acknowledged since start.
    pub samples_ingested: u64,
    /// Parquet files written by flushes of the write buffer since start.
    pub files_written: u64,
    /// Failed attempts to persist the write buffer since start (the data stays in the WAL).
    pub flush_failures: u64,
    /// What start-up recovery did.
    #[schema(value_type = Object)]
    pub recovery: t3_storage::RecoveryReport,
    /// Data files that failed a check (at start, on first read, or in the scrub) and were moved to
    /// `quarantine/`, not yet acknowledged (`POST /api/t3000/storage/quarantine/ack`): their rows
    /// are missing from every answer over their range.
    pub quarantined: Vec<crate::http::routes::storage::QuarantinedFile>,
    /// Plugin files found at start (or at the last configuration reload) and refused, with why (`GET /api/t3000/plugins` lists all).
    pub plugins_refused: Vec<crate::http::routes::plugins::PluginInfo>,
    /// The last configuration reload since start (SIGHUP, `POST /api/t3000/config/reload`, or the
    /// file watch): when, and whether it was applied or refused with the key and line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reload: Option<crate::service::reload::LastReload>,
}

/// The data directory's free space, as of the latest measurement (every
/// `storage.disk_check_interval_ms` and after every flush).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DiskHealth {
    /// `ok`; `low` below the alarm threshold (system alarm -1); `floor` below the floor, when
    /// writes of samples are refused with 503 `disk_full` (system alarm -2).
    pub level: &'static str,
    /// Free bytes (absent until a measurement succeeded).
    pub free_bytes: Option<u64>,
    /// The filesystem's size in bytes (absent until a measurement succeeded).
    pub total_bytes: Option<u64>,
    /// Free bytes below which the alarm is raised.
    pub alarm_free_bytes: u64,
    /// Free bytes below which writes are refused (0: never).
    pub floor_free_bytes: u64,
    /// Samples refused at the floor since start.
    pub refused_samples: u64,
    /// For a person: `data directory /x: 3.2 MiB free of 8.0 MiB, below ...`.
    pub summary: String,
    /// Why the latest measurement failed (absent when it succeeded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<t3_storage::DiskStatus> for DiskHealth {
    fn from(d: t3_storage::DiskStatus) -> Self {
        DiskHealth {
            level: d.level.as_str(),
            free_bytes: d.space.map(|s| s.free_bytes),
            total_bytes: d.space.map(|s| s.total_bytes),
            alarm_free_bytes: d.alarm_free_bytes,
            floor_free_bytes: d.floor_free_bytes,
            refused_samples: d.refused_samples,
            summary: d.describe(),
            error: d.error,
        }
    }
}

/// Liveness: 200 once the server is serving.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health)), security(()))]
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    let stats = state.storage.stats();
    let (writes, writes_reason) = match state.storage.write_state() {
        WriteState::Ok => match state.storage.write_refusal() {
            None => ("ok", None),
            Some(disk) => ("read-only", Some(disk)),
        },
        WriteState::Unavailable(why) => ("read-only", Some(why)),
        WriteState::Poisoned(why) => ("poisoned", Some(why)),
    };
    let catalog_writes_reason = state.catalog.write_failure();
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: state.started.elapsed().as_secs(),
        writes,
        writes_reason,
        catalog_writes: if catalog_writes_reason.is_some() { "failing" } else { "ok" },
        catalog_writes_reason,
        disk: state.storage.disk().into(),
        buffered_samples: state.storage.buffered_rows(),
        samples_ingested: stats.samples_ingested.load(Ordering::Relaxed),
        files_written: stats.files_written.load(Ordering::Relaxed),
        flush_failures: stats.flush_failures.load(Ordering::Relaxed),
        recovery: state.storage.recovery().clone(),
        quarantined: state
            .storage
            .quarantined()
            .into_iter()
            .filter(|q| !q.acknowledged)
            .map(crate::http::routes::storage::QuarantinedFile::from)
            .collect(),
        plugins_refused: state
            .plugins
            .entries()
            .iter()
            .filter(|e| e.state == t3_drivers::plugin::EntryState::Refused)
            .map(crate::http::routes::plugins::PluginInfo::from)
            .collect(),
        last_reload: state.reload.last(),
    })
}

/// Readiness: 200 when the server accepts writes, 503 with the reason when it does not (the disk
/// below its floor, the WAL read-only for now, e.g. a full disk, or poisoned).
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, description = "ready"), (status = 503, body = crate::http::error::ErrorBody)), security(()))]
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, crate::http::error::ApiError> {
    match state.storage.write_refusal() {
        None => Ok("ready\n"),
        Some(why) => {
            Err(crate::http::error::ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "not_ready", why))
        }
    }
}
