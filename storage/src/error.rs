//! The storage engine's errors.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An earlier WAL write or fsync failed. The WAL refuses every later write until the process
    /// restarts: after a failed fsync the kernel may have dropped the dirty pages, so retrying
    /// could acknowledge data that is not on disk.
    #[error("the write-ahead log is poisoned by an earlier I/O failure ({0}); writes are refused until restart")]
    Poisoned(String),
    /// The write-ahead log cannot create a segment now (no file descriptors, a full disk). Nothing
    /// acknowledged is at risk; the log keeps trying and takes writes again once it can.
    #[error("the write-ahead log cannot take writes now ({0}); retry later")]
    WalUnavailable(String),
    /// The data directory's filesystem has less free space than `storage.disk_floor_free_mb`:
    /// new samples are refused before the disk is full, and taken again once space returns
    /// (see [`crate::disk`]). The message says how much is free.
    #[error("{0}; retry later")]
    DiskFull(String),
    /// The catalog cannot be written now: the disk is full, or the process is out of file
    /// descriptors. Reads go on (from memory); the same write may succeed later.
    #[error("the catalog cannot be written now ({0}); retry later")]
    CatalogUnavailable(String),
    /// Too many samples are waiting to be persisted (Parquet writes are failing or falling behind).
    #[error("storage backlog: {buffered} samples wait to be persisted (limit {limit}); retry later")]
    Backlog { buffered: usize, limit: usize },
    /// A sample failed validation; nothing of its batch was stored.
    #[error("sample {index}: {reason}")]
    InvalidSample { index: usize, reason: String },
    /// A sample's time stamp is more than `ingest.max_future_secs` ahead of the storage clock:
    /// valid as such, but not now (a clock or unit mistake); nothing of its batch was stored.
    #[error("sample {index}: {reason}")]
    AheadOfClock { index: usize, reason: String },
    /// The samples of one batch fall on more distinct UTC days than `ingest.max_days_per_batch`.
    #[error(
        "the batch has samples on {days} distinct UTC days, more than ingest.max_days_per_batch = {limit}; send it in several batches"
    )]
    TooManyDays { days: usize, limit: u32 },
    /// A query argument is wrong (unknown aggregate, empty range, bucket too small, ...).
    #[error("{0}")]
    InvalidQuery(String),
    /// The query ran longer than its time limit and was cancelled.
    #[error("query cancelled after {0} ms (the time limit)")]
    Timeout(u64),
    /// The query would return more rows than allowed (`query.max_rows`).
    #[error(
        "the answer would exceed the row limit of {0} (query.max_rows): narrow the range, or ask for fewer rows (max_points, a larger bucket)"
    )]
    TooManyRows(usize),
    /// The engine is shutting down.
    #[error("storage is shutting down")]
    ShuttingDown,
    /// Another process holds the data directory.
    #[error("the data directory {0} is in use by another t3000 process")]
    Locked(PathBuf),
    /// An I/O error on a named file.
    #[error("{op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    /// A DuckDB error (SQL errors in user queries land here too).
    #[error("query engine: {0}")]
    DuckDb(#[from] duckdb::Error),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A data (Parquet) file could not be read: damaged, or an I/O error. Queries check the file
    /// and quarantine it if it is damaged, then answer from the rest (`partial`).
    #[error("reading {path}: {message}")]
    DataFile { path: PathBuf, message: String },
    /// A manifest or other metadata file could not be read.
    #[error("corrupt metadata {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    /// A bug: a state the engine should never reach.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    /// Whether the same request may succeed later without change.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Backlog { .. }
                | Error::WalUnavailable(_)
                | Error::DiskFull(_)
                | Error::CatalogUnavailable(_)
                | Error::Timeout(_)
                | Error::ShuttingDown
        )
    }

    /// Whether the caller's input is at fault (maps to a 4xx).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Error::InvalidSample { .. }
                | Error::AheadOfClock { .. }
                | Error::TooManyDays { .. }
                | Error::InvalidQuery(_)
                | Error::TooManyRows(_)
                | Error::Timeout(_)
        )
    }
}

/// What storage's answer means to a sender of samples (the collector): worth a retry, a refusal of
/// the samples themselves, or a failure.
impl From<Error> for t3_core::SinkError {
    fn from(e: Error) -> Self {
        if e.is_retryable() {
            t3_core::SinkError::Unavailable(e.to_string())
        } else if e.is_client_error() {
            t3_core::SinkError::Refused(e.to_string())
        } else {
            t3_core::SinkError::Failed(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use t3_core::SinkError;

    #[test]
    fn a_sender_of_samples_learns_whether_to_retry() {
        let backlog = SinkError::from(Error::Backlog { buffered: 10, limit: 5 });
        assert!(matches!(backlog, SinkError::Unavailable(_)) && backlog.is_retryable(), "{backlog:?}");
        let invalid = SinkError::from(Error::InvalidSample { index: 0, reason: "value is infinite".into() });
        assert_eq!(invalid, SinkError::Refused("sample 0: value is infinite".into()));
        let broken = SinkError::from(Error::Internal("lost".into()));
        assert!(matches!(broken, SinkError::Failed(_)) && !broken.is_retryable(), "{broken:?}");
    }
}
