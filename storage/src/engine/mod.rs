//! The storage engine: [`Storage`] and every `impl Storage`, a file per concern (opening and
//! recovery, ingest, flushing, the live file set, the read, maintenance, rollup and export entry
//! points; see the crate's `# Layout`). Its state is defined here and private to this folder: the
//! submodules use it directly, nothing outside does.

mod backup;
mod disk;
mod export;
mod flush;
mod ingest;
mod live;
pub mod maintenance;
mod open;
mod read;
pub mod recovery;
mod rollups;
pub mod scrub;
mod sink;

use crate::buffer::{Frozen, WriteBuffer};
use crate::files::LiveFile;
use crate::files::manifest::{Manifest, Quarantined};
use crate::files::parquet_io::ParquetOptions;
use crate::metrics::Histogram;
use crate::query::Latest;
use crate::query::QueryEngine;
use crate::vfs::Vfs;
use crate::wal::Wal;
pub use backup::{BackupSnapshot, SnapshotFile};
pub use ingest::validate_samples;
use maintenance::TestHook;
use parking_lot::{Mutex, RwLock};
pub use recovery::RecoveryReport;
pub use sink::BatchingSink;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use t3_core::Sample;
use t3_core::clock::Clock;
use t3_core::config::Config;
use tokio::sync::{Notify, watch};

#[derive(Debug, Default)]
struct BufState {
    active: WriteBuffer,
    frozen: Vec<Arc<Frozen>>,
    /// Generation of the frozen buffers, parallel to `frozen`.
    frozen_gen: Vec<u64>,
    files: Arc<Vec<Arc<LiveFile>>>,
    /// Bumped by every commit; a buffer frozen at generation g holds every sample of commits <= g.
    commit_gen: u64,
    /// The first WAL segment the active buffer's samples may come from.
    next_wal_from: u64,
}

/// The part of the engine the WAL thread writes into.
#[derive(Debug)]
struct Shared {
    clock: Arc<dyn Clock>,
    state: Mutex<BufState>,
    latest: RwLock<HashMap<u32, Latest>>,
    buffered_rows: AtomicUsize,
    flush_rows: usize,
    flush_wanted: Notify,
}

/// The storage engine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: Config,
    data_dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
    wal: Wal,
    manifest: Mutex<Manifest>,
    /// The manifest's quarantine records, for queries to read without waiting for a manifest
    /// write (which holds `manifest` across an fsync).
    quarantined: RwLock<Arc<Vec<Quarantined>>>,
    persist_lock: tokio::sync::Mutex<()>,
    /// One maintenance pass at a time; flushes go on meanwhile (both edit the manifest by delta).
    maintenance_lock: tokio::sync::Mutex<()>,
    persisted_gen: AtomicU64,
    query: Arc<QueryEngine>,
    recovery: RecoveryReport,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    stats: Stats,
    /// Per-point retention set at run time (the catalog's), besides the configuration's.
    point_retention: RwLock<Vec<t3_core::config::PointRetention>>,
    /// The configuration's `[retention]` in force: `cfg.retention` until a configuration reload
    /// sets another ([`Storage::set_retention`]).
    cfg_retention: RwLock<t3_core::config::RetentionConfig>,
    /// Every acknowledged batch, in acknowledgement order (see [`Storage::subscribe`]).
    live: tokio::sync::broadcast::Sender<Arc<[Sample]>>,
    /// The data directory's free space; refuses writes at the floor.
    disk: Arc<crate::disk::DiskGuard>,
    /// Held for the life of the engine (an exclusive lock on `<data_dir>/LOCK`).
    _lock: std::fs::File,
    test_hooks: TestHooks,
    /// Days with fewer rows in a flush are sparse (see [`flush::sparse_runs`]): `storage.sparse_day_rows`
    /// unless a test sets it.
    sparse_day_rows: AtomicUsize,
}

type HookFn = Arc<dyn Fn() + Send + Sync>;

/// Code tests run at [`TestHook`] points.
#[derive(Default)]
struct TestHooks(Mutex<HashMap<TestHook, HookFn>>);

impl std::fmt::Debug for TestHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.lock().keys()).finish()
    }
}

/// Batches the live bus keeps for a slow receiver (a batch is dropped once every receiver has it; a
/// receiver further behind gets `Lagged`, so one slow subscriber holds at most this many).
pub const LIVE_BATCHES: usize = 1024;

/// Counters for metrics and the system status.
#[derive(Debug, Default)]
pub struct Stats {
    pub samples_ingested: AtomicU64,
    pub files_written: AtomicU64,
    pub flush_failures: AtomicU64,
    /// Latency of WAL group commits (write start to fsync done); shared with the WAL thread.
    pub wal_commit_seconds: Arc<Histogram>,
    /// Latency of flushes: a frozen write buffer written as Parquet and published in the manifest.
    pub flush_seconds: Histogram,
}

impl Storage {
    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    pub fn recovery(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Sets the per-point retention that comes from outside the configuration (the catalog's point
    /// settings), replacing the previous set. The configuration's `[[retention.points]]` win for the
    /// points they list.
    pub fn set_point_retention(&self, overrides: Vec<t3_core::config::PointRetention>) {
        *self.inner.point_retention.write() = overrides;
    }

    /// Replaces the configuration's `max_age_days` and `[[retention.points]]` (a configuration
    /// reload); the next maintenance pass deletes by them. `check_interval_secs` keeps the value
    /// the engine started with (its timer is set at start).
    pub fn set_retention(&self, cfg: &t3_core::config::RetentionConfig) {
        let mut r = self.inner.cfg_retention.write();
        r.max_age_days = cfg.max_age_days;
        r.points = cfg.points.clone();
    }

    /// The configuration's `[retention]` in force (without the per-point settings of the catalog).
    pub fn config_retention(&self) -> t3_core::config::RetentionConfig {
        self.inner.cfg_retention.read().clone()
    }

    /// The retention rules in force: the configuration's plus those set at run time.
    pub fn retention(&self) -> t3_core::config::RetentionConfig {
        let mut r = self.config_retention();
        let listed: HashSet<u32> = r.points.iter().flat_map(|o| o.points.iter().copied()).collect();
        for o in self.inner.point_retention.read().iter() {
            let points: Vec<u32> = o.points.iter().copied().filter(|p| !listed.contains(p)).collect();
            if !points.is_empty() {
                r.points.push(t3_core::config::PointRetention { points, max_age_days: o.max_age_days });
            }
        }
        r
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    fn query_engine(&self) -> Arc<QueryEngine> {
        self.inner.query.clone()
    }

    /// Whether background work has been told to stop.
    fn is_stopping(&self) -> bool {
        *self.inner.stop.borrow()
    }

    /// Hands out `n` new file sequence numbers.
    fn allocate_seqs(&self, n: u64) -> u64 {
        let mut m = self.inner.manifest.lock();
        let first = m.next_seq;
        m.next_seq += n;
        first
    }

    fn vfs(&self) -> &Arc<dyn Vfs> {
        &self.inner.vfs
    }

    fn parquet_options(&self) -> ParquetOptions {
        self.inner.parquet_options()
    }

    /// Runs `f` whenever maintenance reaches `hook` (`None` removes it). For tests.
    #[doc(hidden)]
    pub fn set_test_hook(&self, hook: TestHook, f: Option<HookFn>) {
        let mut hooks = self.inner.test_hooks.0.lock();
        match f {
            Some(f) => hooks.insert(hook, f),
            None => hooks.remove(&hook),
        };
    }

    /// Sets the row count below which a flush writes a day into a file of several days (0: every
    /// day its own file, as before multi-day files). For tests that need one file per day.
    #[doc(hidden)]
    pub fn set_sparse_day_rows(&self, rows: usize) {
        self.inner.sparse_day_rows.store(rows, Ordering::Relaxed);
    }

    fn run_test_hook(&self, hook: TestHook) {
        let f = self.inner.test_hooks.0.lock().get(&hook).cloned();
        if let Some(f) = f {
            f();
        }
    }

    async fn maintenance_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.maintenance_lock.lock().await
    }
}

impl Inner {
    fn parquet_options(&self) -> ParquetOptions {
        let s = &self.cfg.storage;
        ParquetOptions { row_group_rows: s.row_group_rows, page_rows: s.page_rows, zstd_level: s.zstd_level }
    }
}
