//! t3-storage: durable ingest, columnar storage and queries for samples.
//!
//! # Data flow
//! As samples arrive ([`Storage::ingest`]) they are validated, appended to the write-ahead log and
//! fsynced in a group commit ([`wal`]); only then are they placed in the in-memory write buffer
//! ([`buffer`], Arrow builders), the latest-value cache is updated, and the caller is acknowledged.
//! When the buffer reaches `flush_rows` rows or its oldest sample is `flush_interval_secs` old, it
//! is frozen at a WAL segment boundary, sorted by (point, ts) with duplicates resolved (the last
//! write wins), and written as one Parquet file per UTC day ([`files::parquet_io`]):
//! `samples/day=YYYY-MM-DD/part-<seq>.parquet`. Each file is published atomically (temporary
//! name, fsync, rename, directory fsync), then recorded in the [`manifest`], and only then is the
//! WAL behind it deleted. Start-up replays whatever the manifest does not cover.
//!
//! Queries ([`query`]) read exactly the files the manifest lists plus the buffered rows, so
//! everything acknowledged is visible at once: history requests naming few points through the
//! direct Parquet reader ([`direct`]: only the pages the page index says may hold the points),
//! everything else in DuckDB; [`analytics`] shapes the rows into buckets, interpolated grids or
//! chart points.
//!
//! # Layout
//! - [`engine`]: [`Storage`], recovery, flushing, the live file set.
//! - [`wal`], [`buffer`], [`files::parquet_io`], [`manifest`]: the durability path; [`recovery`]: the
//!   manifest reconciled with the files at start (rebuilt if lost), nothing deleted unless proven
//!   garbage; [`engine::scrub`]: every file's checksum verified again in the background.
//! - [`maintenance`]: retention and compaction; [`rollups`]: 1-minute and 1-hour aggregates.
//! - [`query`], [`direct`], [`analytics`]: reading.
//! - [`catalog`]: the metadata catalog (buildings, devices, points, users, ...) and the audit log.
//! - [`vfs`]: the file operations durability depends on, with a fault-injecting variant for tests.

pub mod buffer;
pub mod catalog;
pub mod engine;
pub mod error;
pub mod files;
pub mod metrics;
pub mod query;
pub mod vfs;
pub mod wal;

pub use engine::{RecoveryReport, Storage, validate_samples};
pub use error::{Error, Result};
pub use query::{HistoryMode, HistoryRequest, HistoryResult, Latest, PriorRow, ReadPath, SeriesResult, SqlResult};
pub use wal::WriteState;

// Public paths other crates use, kept where they were before the modules moved.
pub use engine::{maintenance, recovery};
pub use files::manifest;
pub use query::{analytics, export};
