//! The storage engine: ingest, persistence, recovery and the live file set.

mod flush;
mod ingest;
pub mod maintenance;
mod open;
pub mod recovery;
pub mod scrub;

use crate::buffer::{Columns, Frozen, RowFilter, WriteBuffer};
use crate::error::{Error, Result};
use crate::files::manifest::{FileMeta, Manifest, Quarantined, Table};
use crate::files::parquet_io::ParquetOptions;
use crate::files::{LiveFile, Snapshot};
use crate::metrics::Histogram;
use crate::query::QueryEngine;
use crate::vfs::Vfs;
use crate::wal::Wal;
pub use ingest::validate_samples;
use maintenance::TestHook;
use parking_lot::{Mutex, RwLock};
pub use recovery::RecoveryReport;
use recovery::quarantine;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use t3_core::Sample;
use t3_core::clock::Clock;
use t3_core::config::Config;
use tokio::sync::{Notify, watch};

/// The latest value of a point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latest {
    pub ts: i64,
    pub value: f64,
    pub quality: u8,
}

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
pub(crate) struct Shared {
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
    /// Every acknowledged batch, in acknowledgement order (see [`Storage::subscribe`]).
    live: tokio::sync::broadcast::Sender<Arc<[Sample]>>,
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

    /// The retention rules in force: the configuration's plus those set at run time.
    pub fn retention(&self) -> t3_core::config::RetentionConfig {
        let mut r = self.inner.cfg.retention.clone();
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

    pub(crate) fn query_engine(&self) -> Arc<QueryEngine> {
        self.inner.query.clone()
    }

    /// The live files and the buffered rows matching `filter` (sorted, last write wins), taken
    /// atomically so a concurrent flush neither hides nor doubles a sample.
    pub(crate) fn snapshot(&self, filter: &RowFilter<'_>, with_buffer: bool) -> Snapshot {
        let mut cols = Columns::default();
        let files = {
            let st = self.inner.shared.state.lock();
            if with_buffer {
                for f in &st.frozen {
                    f.select(filter, &mut cols);
                }
                st.active.select(filter, &mut cols);
            }
            st.files.clone()
        };
        Snapshot { files, buffered: cols.sort_dedup() }
    }

    /// Live sample files, for the SQL endpoint and exports.
    pub fn live_files(&self) -> Arc<Vec<Arc<LiveFile>>> {
        self.inner.shared.state.lock().files.clone()
    }

    /// Applies a manifest edit: `add` files join the live set and `remove` (by seq) leave it and are
    /// deleted once no query holds them.
    pub(crate) fn edit_files(&self, add: Vec<FileMeta>, remove: &HashSet<u64>) -> Result<()> {
        self.edit_manifest(add, remove, None)
    }

    /// [`Storage::edit_files`], or with `quarantined` set: `remove` leaves the live set for
    /// quarantine (moved, not deleted) and the record is kept.
    fn edit_manifest(&self, add: Vec<FileMeta>, remove: &HashSet<u64>, quarantined: Option<Quarantined>) -> Result<()> {
        let data_dir = &self.inner.data_dir;
        let mut m = self.inner.manifest.lock();
        let mut next = m.clone();
        // Retired files are listed until they are gone, so a crash before their deletion leaves
        // nothing that start-up could mistake for data.
        next.retired.retain(|rel| data_dir.join(rel).exists());
        if quarantined.is_none() {
            let gone = next.files.iter().filter(|f| remove.contains(&f.seq)).map(crate::engine::recovery::rel_string);
            next.retired.extend(gone.collect::<Vec<_>>());
        }
        next.files.retain(|f| !remove.contains(&f.seq));
        next.files.extend(add.iter().cloned());
        next.quarantined.extend(quarantined.iter().cloned());
        next.generation += 1;
        next.store(&*self.inner.vfs, data_dir)?;
        if quarantined.is_some() {
            *self.inner.quarantined.write() = Arc::new(next.quarantined.clone());
        }
        *m = next;
        let mut st = self.inner.shared.state.lock();
        let mut files: Vec<Arc<LiveFile>> = Vec::with_capacity(st.files.len() + add.len());
        for f in st.files.iter() {
            if !remove.contains(&f.meta.seq) {
                files.push(f.clone());
            } else if quarantined.is_none() {
                f.retire();
            }
        }
        files.extend(add.into_iter().map(|meta| LiveFile::new(data_dir, meta, true)));
        st.files = Arc::new(files);
        Ok(())
    }

    /// Records the checksums of files written before checksums were (by seq). Returns how many
    /// live files got one.
    pub(crate) fn record_checksums(&self, crcs: &HashMap<u64, u32>) -> Result<usize> {
        let data_dir = &self.inner.data_dir;
        let mut m = self.inner.manifest.lock();
        let mut next = m.clone();
        let mut n = 0;
        for f in next.files.iter_mut() {
            if let Some(crc) = crcs.get(&f.seq).filter(|_| f.crc32c.is_none()) {
                f.crc32c = Some(*crc);
                n += 1;
            }
        }
        if n == 0 {
            return Ok(0);
        }
        next.generation += 1;
        next.store(&*self.inner.vfs, data_dir)?;
        let metas: HashMap<u64, FileMeta> = next.files.iter().map(|f| (f.seq, f.clone())).collect();
        *m = next;
        let mut st = self.inner.shared.state.lock();
        let files = st
            .files
            .iter()
            .map(|f| match metas.get(&f.meta.seq) {
                Some(meta) if meta.crc32c != f.meta.crc32c => LiveFile::new(data_dir, meta.clone(), true),
                _ => f.clone(),
            })
            .collect();
        st.files = Arc::new(files);
        Ok(n)
    }

    /// Whether background work has been told to stop.
    pub(crate) fn is_stopping(&self) -> bool {
        *self.inner.stop.borrow()
    }

    /// Files taken out of service because they failed a check (acknowledged ones included).
    pub fn quarantined(&self) -> Vec<Quarantined> {
        self.inner.quarantined.read().to_vec()
    }

    /// Marks the quarantine record of `file` (its relative path as listed) acknowledged: it stays
    /// listed, but no longer raises the alarm. Returns whether such a record exists.
    pub fn acknowledge_quarantined(&self, file: &str) -> Result<bool> {
        let mut m = self.inner.manifest.lock();
        let mut next = m.clone();
        let mut found = false;
        for q in next.quarantined.iter_mut().filter(|q| q.file == file) {
            found = true;
            q.acknowledged = true;
        }
        if found {
            next.generation += 1;
            next.store(&*self.inner.vfs, &self.inner.data_dir)?;
            *self.inner.quarantined.write() = Arc::new(next.quarantined.clone());
            *m = next;
        }
        Ok(found)
    }

    /// Whether data a query over `[from, to)` of `points` (all if `None`) would read is known to be
    /// missing: a quarantined sample file overlapped it.
    pub(crate) fn overlaps_quarantined(&self, points: Option<&[u32]>, from: i64, to: i64) -> bool {
        self.inner.quarantined.read().iter().any(|q| {
            q.table == Table::Samples
                && q.rows > 0
                && q.max_ts >= from
                && q.min_ts < to
                && points.is_none_or(|p| p.iter().any(|p| (q.min_point..=q.max_point).contains(p)))
        })
    }

    /// Checks the files a read is about to use that this process has not checked yet (after a
    /// start). A file that fails is named in the error, which the read's retry loop quarantines.
    pub(crate) async fn verify_files(&self, files: Vec<Arc<LiveFile>>) -> Result<()> {
        let unverified: Vec<Arc<LiveFile>> = files.into_iter().filter(|f| !f.is_verified()).collect();
        if unverified.is_empty() {
            return Ok(());
        }
        tokio::task::spawn_blocking(move || {
            for f in unverified {
                f.check().map_err(|message| Error::DataFile { path: f.path.clone(), message })?;
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::Internal(format!("verify task: {e}")))?
    }

    /// Hands out `n` new file sequence numbers.
    pub(crate) fn allocate_seqs(&self, n: u64) -> u64 {
        let mut m = self.inner.manifest.lock();
        let first = m.next_seq;
        m.next_seq += n;
        first
    }

    pub(crate) fn vfs(&self) -> &Arc<dyn Vfs> {
        &self.inner.vfs
    }

    pub(crate) fn parquet_options(&self) -> ParquetOptions {
        self.inner.parquet_options()
    }

    /// Moves a damaged live file to quarantine and out of the live set, and keeps a record of it
    /// (what it held, why) until an operator acknowledges it.
    pub(crate) fn quarantine_file(&self, file: &LiveFile, reason: &str) -> Result<()> {
        if !self.live_files().iter().any(|f| f.meta.seq == file.meta.seq) {
            // Another reader got there first (or the file was replaced meanwhile).
            return Ok(());
        }
        let rel = crate::engine::recovery::rel_string(&file.meta);
        tracing::error!(file = %rel, rows = file.meta.rows, reason, "a data file failed its check; moving it to quarantine/");
        let moved = quarantine(&self.inner.data_dir, &file.path);
        let now = self.inner.clock.now_us();
        let record =
            crate::engine::recovery::record(&self.inner.data_dir, rel, moved, reason.to_string(), &file.meta, now);
        self.edit_manifest(Vec::new(), &HashSet::from([file.meta.seq]), Some(record))
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

    pub(crate) fn run_test_hook(&self, hook: TestHook) {
        let f = self.inner.test_hooks.0.lock().get(&hook).cloned();
        if let Some(f) = f {
            f();
        }
    }

    pub(crate) async fn maintenance_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.maintenance_lock.lock().await
    }
}

impl Inner {
    fn parquet_options(&self) -> ParquetOptions {
        ParquetOptions { row_group_rows: self.cfg.storage.row_group_rows, zstd_level: self.cfg.storage.zstd_level }
    }
}
