//! An import of a T3000 WebView database's history: a job kept in the catalog, so an interrupted
//! import (a restart, kill -9) continues from its cursor when the same file is imported again.

use serde::{Deserialize, Serialize};

/// One WebView import job (stored), identified by its file's SHA-256 and size.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebviewImportJob {
    #[serde(default)]
    pub id: i64,
    /// SHA-256 of the database file, hex.
    pub sha256: String,
    pub bytes: u64,
    /// The IANA time zone `LoggingTime_Fmt` was read in.
    pub time_zone: String,
    /// `running`, `interrupted` (the server stopped during it: import the file again to continue),
    /// `done` or `failed`.
    pub state: String,
    /// The last `TRENDLOG_DATA_DETAIL` rowid whose sample is durably stored (0: none yet).
    pub cursor_rowid: i64,
    /// The highest rowid when the job started; rows above it are not part of this job.
    pub last_rowid: i64,
    /// Detail rows of the job (up to `last_rowid`).
    pub rows_total: u64,
    /// Detail rows dealt with (stored or skipped), up to the cursor.
    pub rows_done: u64,
    /// Samples stored.
    pub samples: u64,
    /// Rows not stored, by reason (`unknown_parent`, `bad_value`, `bad_time`, `in_future`, ...).
    #[serde(default)]
    pub skipped: std::collections::BTreeMap<String, u64>,
    pub started_us: i64,
    pub updated_us: i64,
    pub finished_us: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
}

record!(WebviewImportJob, "webview_import");
