//! Flushing: the write buffer frozen at a WAL segment boundary, written as sorted Parquet files (a
//! dense day per file, sparse days of a month together), published in the manifest, and the WAL
//! behind it deleted; the background tasks (time-based flush, maintenance, scrub) and shutdown.

use super::{Inner, Storage};
use crate::buffer::{Frozen, RowFilter, as_ts, sorted_dedup_indices};
use crate::error::{Error, Result};
use crate::files::LiveFile;
use crate::files::manifest::{FileMeta, FileTag, Table, day_of_ts, month_of, rel_path};
use crate::files::parquet_io;
use crate::wal;
use arrow::array::UInt32Array;
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

impl Storage {
    /// Persists everything acknowledged so far to Parquet and truncates the WAL.
    pub async fn flush(&self) -> Result<()> {
        let generation = self.inner.shared.state.lock().commit_gen;
        self.persist_through(generation).await
    }

    pub(super) async fn persist_through(&self, generation: u64) -> Result<()> {
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
            let persisted = self.persist_frozen(frozen, generation).await;
            // A flush takes and frees space (a Parquet file in, WAL segments out): measure again.
            self.inner.disk.check();
            if let Err(e) = persisted {
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
        let disk = self.spawn_disk_watcher();
        self.inner.tasks.lock().extend([flusher, maintenance, scrubber, disk]);
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
}

impl Inner {
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
pub(super) fn sparse_runs(rows_of_day: &BTreeMap<i32, usize>, sparse_rows: usize) -> HashMap<i32, i32> {
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
