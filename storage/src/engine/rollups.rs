//! Computing rollups (their format: [`crate::query::rollups`]). A day's rollups are computed by
//! maintenance once the day is over, from the day's samples (and the value in force when it began),
//! with the same [`analytics::partials`] the raw path uses, and published in batches.

use super::Storage;
use crate::buffer::{Columns, DAY_US};
use crate::error::Result;
use crate::files::manifest::{FileMeta, FileTag, Table, rel_path, source_digest};
use crate::files::parquet_io;
use crate::files::{LiveFile, Snapshot};
use crate::query::analytics::{self, Series};
use crate::query::rollups::{DaySeries, RollupRows, TABLES, fresh_rollups, rollup_schema, sample_days};
use arrow::array::RecordBatch;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a rollup pass computes before it publishes what it has.
const PUBLISH_EVERY: Duration = Duration::from_secs(2);

/// The runs of days that sample files join (a file covering several days and every file meeting
/// it): the rollups of a run are computed together, into one file per table. With files of one
/// day each, every run is a day; a merged sparse month is one run.
fn sample_runs(files: &[Arc<LiveFile>]) -> Vec<(i32, i32, Vec<&FileMeta>)> {
    let mut metas: Vec<&FileMeta> = files.iter().filter(|f| f.meta.table == Table::Samples).map(|f| &f.meta).collect();
    metas.sort_by_key(|m| (m.day, m.seq));
    let mut out: Vec<(i32, i32, Vec<&FileMeta>)> = Vec::new();
    for m in metas {
        match out.last_mut() {
            Some(run) if m.day <= run.1 => {
                run.1 = run.1.max(m.last_day());
                run.2.push(m);
            }
            _ => out.push((m.day, m.last_day(), vec![m])),
        }
    }
    out
}

impl Storage {
    /// Computes missing or stale rollups of every run of days (see [`sample_runs`]) that is over.
    /// Returns the days done.
    pub(super) fn refresh_rollups_blocking(&self, now: i64) -> Result<usize> {
        let files = self.live_files();
        let by_day = sample_days(&files);
        let fresh: HashSet<(i32, i32)> =
            fresh_rollups(&files, Table::Rollups1h).iter().map(|f| (f.meta.day, f.meta.last_day())).collect();
        let mut done = 0;
        // Published in batches: the manifest is rewritten whole on every edit, so a store's first
        // pass over years of days would otherwise write it once per day. A crash before a batch is
        // published loses only that batch's work (start-up removes rollups the manifest does not
        // list, and the next pass computes them again).
        let (mut add, mut stale, mut batch_started) = (Vec::new(), HashSet::new(), Instant::now());
        for (first, last, metas) in sample_runs(&files) {
            let end = (last as i64 + 1) * DAY_US;
            if end > now || fresh.contains(&(first, last)) {
                continue;
            }
            let seqs: HashSet<u64> = metas.iter().map(|m| m.seq).collect();
            let run_files: Vec<Arc<LiveFile>> = files.iter().filter(|f| seqs.contains(&f.meta.seq)).cloned().collect();
            if !self.check_inputs(&run_files) {
                // A file was quarantined: the set changed, the next pass computes from the rest.
                continue;
            }
            let (run_add, run_stale) = self.compute_rollups(&files, first, last, source_digest(metas))?;
            add.extend(run_add);
            stale.extend(run_stale);
            done += (last - first + 1) as usize;
            if batch_started.elapsed() >= PUBLISH_EVERY {
                self.edit_files(std::mem::take(&mut add), &std::mem::take(&mut stale))?;
                batch_started = Instant::now();
            }
        }
        if !add.is_empty() || !stale.is_empty() {
            self.edit_files(add, &stale)?;
        }
        // Rollups of days whose samples are all gone (retention) go too.
        let orphans: HashSet<u64> = files
            .iter()
            .filter(|f| f.meta.table != Table::Samples && by_day.range(f.meta.day..=f.meta.last_day()).next().is_none())
            .map(|f| f.meta.seq)
            .collect();
        if !orphans.is_empty() {
            self.edit_files(Vec::new(), &orphans)?;
        }
        Ok(done)
    }

    /// Computes the rollups of the days `first ..= last`, one day at a time, into one file per
    /// table covering those days. Returns the new files and the rollup files they replace (every
    /// one meeting those days).
    fn compute_rollups(
        &self,
        files: &Arc<Vec<Arc<LiveFile>>>,
        first: i32,
        last: i32,
        source_files: u64,
    ) -> Result<(Vec<FileMeta>, HashSet<u64>)> {
        let snap = Snapshot { files: files.clone(), buffered: Columns::default() };
        let days = (last - first + 1) as u32;
        // The minute rows are streamed to their file day by day; the hour rows (60 times fewer)
        // are kept until then and written after.
        let mut hours: Vec<RecordBatch> = Vec::new();
        let mut failed = None;
        let minutes = (first..=last).filter_map(|day| {
            let (from, to) = (day as i64 * DAY_US, (day as i64 + 1) * DAY_US);
            let result = (|| {
                let DaySeries { mut series, prior } = self.query_engine().day_series(&snap, from, to)?;
                // A point without samples that day still has a value in force through it (its
                // time-weighted rows), as the raw path answers.
                let seen: HashSet<u32> = series.iter().map(|s| s.point_id).collect();
                let mut idle: Vec<u32> = prior.keys().copied().filter(|p| !seen.contains(p)).collect();
                idle.sort_unstable();
                series.extend(idle.into_iter().map(Series::new));
                series.sort_by_key(|s| s.point_id);
                let mut out = Vec::new();
                for (_, width) in TABLES {
                    let mut rows = RollupRows::default();
                    for s in &series {
                        let (start, parts) =
                            analytics::partials(s, prior.get(&s.point_id).copied(), from, to, width, i64::MAX);
                        for (k, p) in parts.iter().enumerate() {
                            if p.count > 0 || p.covered > 0 {
                                rows.push(s.point_id, start + k as i64 * width, p);
                            }
                        }
                    }
                    out.push((!rows.is_empty()).then(|| rows.into_batch()).transpose()?);
                }
                Ok::<_, crate::error::Error>(out)
            })();
            match result {
                Ok(mut out) => {
                    hours.extend(out.pop().flatten());
                    out.pop().flatten().map(Ok)
                }
                Err(e) => {
                    failed = Some(e.to_string());
                    Some(Err(e))
                }
            }
        });
        let mut added = Vec::new();
        let mut write = |table: Table, batches: &mut dyn Iterator<Item = Result<RecordBatch>>| -> Result<()> {
            let seq = self.allocate_seqs(1);
            let path = self.data_dir().join(rel_path(table, first, seq));
            let tag = FileTag { table: Some(table), day: first, days, seq, source_files, ..Default::default() };
            let stats = parquet_io::write_atomic_stream(
                &**self.vfs(),
                &path,
                &tag,
                rollup_schema(),
                batches,
                self.parquet_options(),
            )?;
            if stats.rows == 0 {
                let _ = std::fs::remove_file(&path);
                return Ok(());
            }
            let mut meta = FileMeta::new(table, first, seq, stats);
            meta.days = days;
            meta.source_files = source_files;
            added.push(meta);
            Ok(())
        };
        write(Table::Rollups1m, &mut { minutes })?;
        if let Some(e) = failed {
            return Err(crate::error::Error::Internal(format!("rollups: {e}")));
        }
        write(Table::Rollups1h, &mut hours.into_iter().map(Ok))?;
        let stale = files
            .iter()
            .filter(|f| f.meta.table != Table::Samples && f.meta.day <= last && f.meta.last_day() >= first)
            .map(|f| f.meta.seq)
            .collect();
        Ok((added, stale))
    }
}
