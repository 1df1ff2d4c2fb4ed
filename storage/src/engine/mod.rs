//! The storage engine: ingest, persistence, recovery and the live file set.

mod ingest;
pub mod maintenance;
mod open;
pub mod recovery;
pub mod scrub;

use crate::buffer::{Columns, Frozen, RowFilter, WriteBuffer, as_ts, sorted_dedup_indices};
use crate::error::{Error, Result};
use crate::files::manifest::{FileMeta, FileTag, Manifest, Quarantined, Table, day_of_ts, month_of, rel_path};
use crate::files::parquet_io::{self, ParquetOptions};
use crate::files::{LiveFile, Snapshot};
use crate::metrics::Histogram;
use crate::query::QueryEngine;
use crate::vfs::Vfs;
use crate::wal::{self, Wal};
use arrow::array::UInt32Array;
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;
pub use ingest::validate_samples;
use maintenance::TestHook;
use parking_lot::{Mutex, RwLock};
pub use recovery::RecoveryReport;
use recovery::quarantine;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
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
    /// Days with fewer rows in a flush are sparse (see [`sparse_runs`]): `storage.sparse_day_rows`
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

    /// Persists everything acknowledged so far to Parquet and truncates the WAL.
    pub async fn flush(&self) -> Result<()> {
        let generation = self.inner.shared.state.lock().commit_gen;
        self.persist_through(generation).await
    }

    async fn persist_through(&self, generation: u64) -> Result<()> {
        let _guard = self.inner.persist_lock.lock().await;
        if self.inner.persisted_gen.load(Ordering::SeqCst) >= generation {
            return Ok(());
        }
        let need_rotate = !self.inner.shared.state.lock().active.is_empty();
        if need_rotate {
            self.inner.wal.rotate().await?;
        }
        loop {
            let next = {
                let st = self.inner.shared.state.lock();
                st.frozen.first().cloned().map(|f| (f, st.frozen_gen[0]))
            };
            let Some((frozen, generation)) = next else { break };
            if let Err(e) = self.persist_frozen(frozen, generation).await {
                self.inner.stats.flush_failures.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    }

    async fn persist_frozen(&self, frozen: Arc<Frozen>, generation: u64) -> Result<()> {
        let inner = self.inner.clone();
        let f = frozen.clone();
        tokio::task::spawn_blocking(move || inner.publish_frozen(&f))
            .await
            .map_err(|e| Error::Internal(format!("persist task: {e}")))??;
        self.inner.persisted_gen.fetch_max(generation, Ordering::SeqCst);
        Ok(())
    }

    /// Starts the time-based flush and the maintenance loop (compaction, retention, rollups).
    pub fn start_background(&self) {
        let me = self.clone();
        let mut stop = self.inner.stop.subscribe();
        let flusher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut backoff = Duration::from_millis(500);
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = me.inner.shared.flush_wanted.notified() => {}
                    _ = tick.tick() => {}
                }
                if !me.flush_due() {
                    continue;
                }
                match me.flush().await {
                    Ok(()) => backoff = Duration::from_millis(500),
                    Err(e) => {
                        tracing::error!(error = %e, "persisting the write buffer failed; the data stays in the WAL and will be retried");
                        tokio::select! {
                            _ = stop.changed() => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        });
        let me = self.clone();
        let mut stop = self.inner.stop.subscribe();
        let maintenance = tokio::spawn(async move {
            let secs = me.inner.cfg.compaction.interval_secs.min(me.inner.cfg.retention.check_interval_secs);
            let mut tick = tokio::time::interval(Duration::from_secs(secs.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tick.tick() => {}
                }
                if let Err(e) = me.maintain().await {
                    tracing::error!(error = %e, "maintenance (compaction / retention / rollups) failed; will retry");
                }
            }
        });
        let me = self.clone();
        let mut stop = self.inner.stop.subscribe();
        let scrubber = tokio::spawn(async move {
            let cfg = &me.inner.cfg.storage;
            if cfg.scrub_interval_secs == 0 {
                return;
            }
            // The first pass soon after start (files are otherwise checked only when first read),
            // then one per interval.
            let mut wait = Duration::from_secs(60);
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                if let Err(e) = me.scrub(Some(cfg.scrub_mib_per_sec)).await {
                    tracing::error!(error = %e, "scrub failed; will retry");
                }
                wait = Duration::from_secs(cfg.scrub_interval_secs);
            }
        });
        self.inner.tasks.lock().extend([flusher, maintenance, scrubber]);
    }

    fn flush_due(&self) -> bool {
        let st = self.inner.shared.state.lock();
        if !st.frozen.is_empty() || st.active.len() >= self.inner.cfg.storage.flush_rows {
            return true;
        }
        let max_age = self.inner.cfg.storage.flush_interval_secs as i64 * 1_000_000;
        st.active.first_insert_us.is_some_and(|t| self.inner.clock.now_us() - t >= max_age)
    }

    /// Stops background work, persists the write buffer and truncates the WAL.
    pub async fn shutdown(&self) -> Result<()> {
        let _ = self.inner.stop.send(true);
        let tasks: Vec<_> = self.inner.tasks.lock().drain(..).collect();
        for t in tasks {
            let _ = t.await;
        }
        let result = if self.write_refusal().is_some() { Ok(()) } else { self.flush().await };
        tracing::info!(buffered = self.buffered_rows(), "storage shut down");
        result
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

    /// Writes a frozen buffer as one sorted file per day, publishes them in the manifest, drops the
    /// buffer from the query view and truncates the WAL behind it. Runs on a blocking thread.
    fn publish_frozen(&self, frozen: &Frozen) -> Result<()> {
        let started = Instant::now();
        let batch = &frozen.batch;
        let points = crate::buffer::as_u32(batch.column(0)).values();
        let ts = as_ts(batch.column(1)).values();
        let sorted = sorted_dedup_indices(points, ts);
        let mut rows_of_day: BTreeMap<i32, usize> = BTreeMap::new();
        for &i in &sorted {
            *rows_of_day.entry(day_of_ts(ts[i as usize])).or_default() += 1;
        }
        // Each part is a range of days: one dense day, or a run of sparse days of one month.
        let first_day_of_part = sparse_runs(&rows_of_day, self.sparse_day_rows.load(Ordering::Relaxed));
        let mut parts: BTreeMap<i32, Vec<u32>> = BTreeMap::new();
        for i in sorted {
            parts.entry(first_day_of_part[&day_of_ts(ts[i as usize])]).or_default().push(i);
        }
        let first_seq = {
            let mut m = self.manifest.lock();
            let s = m.next_seq;
            m.next_seq += parts.len() as u64;
            s
        };
        // Flushes run one at a time, so every live file is older than this one; a rewrite that
        // publishes meanwhile holds only rows of files listed here.
        let live = self.shared.state.lock().files.clone();
        let mut metas = Vec::with_capacity(parts.len());
        for (k, (day, idx)) in parts.into_iter().enumerate() {
            let last_day = day_of_ts(idx.iter().map(|&i| ts[i as usize]).max().unwrap_or(0)).max(day);
            let days = (last_day - day + 1) as u32;
            // Rows of several days, in (point, ts) order: `sorted_dedup_indices` sorted them.
            let part: RecordBatch = take_record_batch(batch, &UInt32Array::from(idx))?;
            let seq = first_seq + k as u64;
            let path = self.data_dir.join(rel_path(Table::Samples, day, seq));
            let tag = FileTag {
                table: Some(Table::Samples),
                day,
                days,
                seq,
                wal_min: frozen.wal_from,
                wal_max: frozen.wal_through,
                ..Default::default()
            };
            let disjoint = self.shares_no_key(&part, &live);
            let tag = FileTag { disjoint, ..tag };
            let stats = parquet_io::write_atomic(&*self.vfs, &path, &tag, &[part], self.parquet_options())?;
            let mut meta = FileMeta::new(Table::Samples, day, seq, stats);
            meta.days = days;
            (meta.wal_min, meta.wal_max, meta.disjoint) = (frozen.wal_from, frozen.wal_through, disjoint);
            metas.push(meta);
        }
        let mut m = self.manifest.lock();
        let mut next = m.clone();
        next.files.extend(metas.iter().cloned());
        next.wal_persisted_through = next.wal_persisted_through.max(frozen.wal_through);
        next.generation += 1;
        next.store(&*self.vfs, &self.data_dir)?;
        *m = next;
        drop(m);
        {
            let mut st = self.shared.state.lock();
            let mut files: Vec<Arc<LiveFile>> = st.files.iter().cloned().collect();
            files.extend(metas.iter().map(|meta| LiveFile::new(&self.data_dir, meta.clone(), true)));
            st.files = Arc::new(files);
            if let Some(pos) = st.frozen.iter().position(|f| std::ptr::eq(&**f, frozen)) {
                st.frozen.remove(pos);
                st.frozen_gen.remove(pos);
            }
        }
        self.shared.buffered_rows.fetch_sub(frozen.len(), Ordering::Relaxed);
        self.stats.files_written.fetch_add(metas.len() as u64, Ordering::Relaxed);
        self.stats.flush_seconds.observe(started.elapsed());
        for (seq, path) in wal::list_segments(&self.data_dir.join("wal"))? {
            if seq <= frozen.wal_through {
                std::fs::remove_file(&path).map_err(|e| Error::io("remove WAL segment", &path, e))?;
            }
        }
        Ok(())
    }
}

impl Inner {
    /// Whether the rows of `part` (one day of a flush, sorted by (point, ts), no key twice) share
    /// no (point, ts) with any of the `live` files: a file whose time and point ranges do not meet
    /// the part's is skipped, the others are read where the ranges meet (live collection meets
    /// the previous flush at most at its last instant). A file that cannot be read proves
    /// nothing: the answer is then `false`, which costs a query's duplicate resolution, never a row.
    fn shares_no_key(&self, part: &RecordBatch, live: &[Arc<LiveFile>]) -> bool {
        let points = crate::buffer::as_u32(part.column(0)).values();
        let ts = as_ts(part.column(1)).values();
        if points.is_empty() {
            return true;
        }
        let (min_point, max_point) = (points[0], points[points.len() - 1]);
        let (min_ts, max_ts) = ts.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
        let mut distinct: Vec<u32> = points.to_vec();
        distinct.dedup();
        let never = AtomicBool::new(false);
        for f in live.iter().filter(|f| f.meta.table == Table::Samples) {
            let m = &f.meta;
            if m.max_ts < min_ts || max_ts < m.min_ts || m.max_point < min_point || max_point < m.min_point {
                continue;
            }
            let lo = distinct.partition_point(|&p| p < m.min_point);
            let hi = distinct.partition_point(|&p| p <= m.max_point);
            let filter =
                RowFilter { points: Some(&distinct[lo..hi]), from: min_ts.max(m.min_ts), to: max_ts.min(m.max_ts) + 1 };
            let Ok(batches) = crate::files::page_index::read_rows(f, &filter, &never) else { return false };
            for b in &batches {
                let p = crate::buffer::as_u32(b.column(0)).values();
                let t = as_ts(b.column(1)).values();
                for i in 0..b.num_rows() {
                    let key = (p[i], t[i]);
                    let at = points.partition_point(|&x| x < key.0);
                    let end = points.partition_point(|&x| x <= key.0);
                    if ts[at..end].binary_search(&key.1).is_ok() {
                        return false;
                    }
                }
            }
        }
        true
    }
}

/// Maps each day (with its row count) to the first day of the file it goes into: a dense day
/// (at least `sparse_rows` rows) to itself, a sparse day to the first day of its run of sparse
/// days of the same calendar month (broken by a dense day).
pub(crate) fn sparse_runs(rows_of_day: &BTreeMap<i32, usize>, sparse_rows: usize) -> HashMap<i32, i32> {
    let mut out = HashMap::with_capacity(rows_of_day.len());
    let mut run: Option<i32> = None;
    for (&day, &rows) in rows_of_day {
        if rows >= sparse_rows {
            out.insert(day, day);
            run = None;
            continue;
        }
        let first = match run {
            Some(first) if month_of(first) == month_of(day) => first,
            _ => day,
        };
        run = Some(first);
        out.insert(day, first);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_days_of_a_month_share_a_file_and_dense_days_break_runs() {
        // 2024-01-30, 2024-01-31, 2024-02-01 .. 2024-02-05.
        let d0 = 19_752;
        let rows: BTreeMap<i32, usize> =
            [(d0, 5), (d0 + 1, 5), (d0 + 2, 5), (d0 + 3, 20_000), (d0 + 4, 1), (d0 + 6, 1)].into();
        let runs = sparse_runs(&rows, 10_000);
        let firsts: Vec<i32> = rows.keys().map(|d| runs[d] - d0).collect();
        assert_eq!(firsts, [0, 0, 2, 3, 4, 4]);
        // 0: every day its own file.
        let runs = sparse_runs(&rows, 0);
        assert!(rows.keys().all(|d| runs[d] == *d));
    }
}
