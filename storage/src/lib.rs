//! t3-storage: durable ingest, columnar storage and queries for samples.
//!
//! # Data flow
//! As samples arrive ([`Storage::ingest`]) they are validated, appended to the write-ahead log and
//! fsynced in a group commit ([`wal`]); only then are they placed in the in-memory write buffer
//! ([`buffer`], Arrow builders), the latest-value cache is updated, and the caller is acknowledged.
//! When the buffer reaches `flush_rows` rows or its oldest sample is `flush_interval_secs` old, it
//! is frozen at a WAL segment boundary, sorted by (point, ts) with duplicates resolved (the last
//! write wins), and written as one Parquet file per UTC day, or one for a run of sparse days of a
//! month (fewer than `storage.sparse_day_rows` rows each) ([`files::parquet_io`]):
//! `samples/day=YYYY-MM-DD/part-<seq>.parquet`, under the first day it holds. Each file is published atomically (temporary
//! name, fsync, rename, directory fsync), then recorded in the [`manifest`], and only then is the
//! WAL behind it deleted. Start-up replays whatever the manifest does not cover.
//!
//! Queries ([`query`]) read exactly the files the manifest lists plus the buffered rows, so
//! everything acknowledged is visible at once: the engine takes a snapshot of both
//! (`files::Snapshot`) and the query layer answers from it, history requests naming few points
//! through the direct Parquet reader ([`query::direct`]: only the pages the page index says may hold
//! the points), everything else in DuckDB; [`query::analytics`] shapes the rows into buckets,
//! interpolated grids or chart points.
//!
//! # Layout
//! Three layers, each a folder, importing downwards only (`engine` → `query` → `files`; all of them
//! use the leaf modules below), checked by `.ci/module-cycles.py`:
//! - [`engine`]: [`Storage`] and every `impl Storage`; its internals are private to the folder.
//!   - `engine/open.rs`: opening a data directory, the WAL replayed; [`engine::recovery`]: the
//!     manifest reconciled with the files at start (rebuilt if lost), nothing deleted unless proven
//!     garbage, damaged files moved to `quarantine/`.
//!   - `engine/ingest.rs`: validation, the WAL commit into the write buffer, the latest values;
//!     `engine/flush.rs`: the buffer written as Parquet and published, the background tasks.
//!   - `engine/live.rs`: the live file set (snapshots, manifest edits, quarantine records).
//!   - `engine/read.rs`: the history and SQL entry points (retried without a damaged file);
//!     `engine/export.rs`: the export entry point.
//!   - `engine/backup.rs`: a consistent copy for a backup (the live files pinned, the buffered
//!     rows written out, a manifest for the copy).
//!   - `engine/sink.rs`: [`BatchingSink`], the collector's way in (the polls of many devices in one
//!     ingest, each acknowledged with storage's typed answer).
//!   - [`engine::maintenance`]: retention and compaction; `engine/rollups.rs`: computing rollups;
//!     [`engine::scrub`]: every file's checksum verified again in the background.
//! - [`files`]: what is durable and visible: [`files::LiveFile`] and `files::Snapshot`;
//!   [`files::manifest`]: the list of live files; [`files::parquet_io`]: writing them;
//!   [`files::page_index`]: reading exactly the rows of a filter from one.
//! - [`query`]: how a question is answered from a snapshot, never naming [`Storage`].
//!   - `query/types.rs`: requests and answers; `query/plan.rs`: what a history request reads and
//!     where rollups stand in for raw samples ([`query::rollups`]: their format).
//!   - `query/sql.rs`: the DuckDB reader and the SQL sandbox; [`query::direct`]: the direct Parquet
//!     reader; [`query::analytics`]: buckets, interpolation, downsampling.
//!   - [`query::export`]: a history written as CSV, xlsx or Parquet in bounded memory.
//! - Leaves: [`wal`]: the write-ahead log; [`buffer`]: the write buffer and the row types every
//!   layer uses; [`catalog`]: the metadata catalog (buildings, devices, points, users, ...) and the
//!   audit log; [`vfs`]: the file operations durability depends on, with a fault-injecting variant
//!   for tests; [`metrics`]: latency histograms; [`disk`]: the data directory's free space and
//!   the floor below which writes are refused (its watcher task is `engine/disk.rs`); [`error`].
//!
//! [`analytics`], [`export`], [`manifest`], [`maintenance`] and [`recovery`] are re-exported at the
//! root, where the other crates have found them before the layers.

pub mod buffer;
pub mod catalog;
pub mod disk;
pub mod engine;
pub mod error;
pub mod files;
pub mod metrics;
pub mod query;
pub mod vfs;
pub mod wal;

pub use disk::{DiskLevel, DiskSettings, DiskStatus};
pub use engine::{BackupSnapshot, BatchingSink, RecoveryReport, Storage, validate_samples};
pub use error::{Error, Result};
pub use query::{HistoryMode, HistoryRequest, HistoryResult, Latest, PriorRow, ReadPath, SeriesResult, SqlResult};
pub use wal::WriteState;

// The paths other crates have used since before the layers.
pub use engine::{maintenance, recovery};
pub use files::manifest;
pub use query::{analytics, export};
