//! Background maintenance: retention, then compaction, then rollups ([`crate::query::rollups`]).
//!
//! - Retention deletes whole days older than `retention.max_age_days`; per-point overrides keep
//!   some points longer (the day is rewritten with only them) or drop some sooner (the day is
//!   rewritten without them).
//! - Compaction merges a day's files, once it has `compaction.min_files_per_day` of them or two of
//!   them may hold the same (point, ts) (see [`overlapping`]), into one sorted, de-duplicated
//!   file, so a query opens one file per day and never needs to resolve duplicates across files.
//!
//! Both write the new file before the manifest changes, and retire the old files only after it has
//! changed; a query that still holds an old file keeps reading it until it finishes. A rewritten
//! file holds only rows of its inputs, so it takes their WAL range (and with it their
//! [`rank`](crate::files::manifest::FileMeta::rank)): a flush that publishes newer rows of the same day
//! while the rewrite runs keeps winning over it. Inputs are checked (checksum) before they are
//! read, so a damaged file is quarantined rather than copied into a new file with a valid checksum.

use crate::buffer::{DAY_US, RowFilter};
use crate::engine::Storage;
use crate::error::{Error, Result};
use crate::files::LiveFile;
use crate::files::manifest::{FileMeta, FileTag, Table, day_of_ts, month_of, overlapping, rel_path};
use crate::files::parquet_io;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// What one maintenance pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MaintenanceReport {
    pub days_deleted: usize,
    pub days_rewritten_for_retention: usize,
    pub days_compacted: usize,
    pub files_removed: usize,
    pub days_rolled_up: usize,
    /// Days not compacted or rewritten because the disk is at its floor (see [`crate::disk`]).
    pub rewrites_skipped_for_disk: usize,
}

/// What retention wants done to one day.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Keep {
    All,
    Nothing,
    /// Keep only these points.
    Only(Vec<u32>),
    /// Keep every point but these.
    AllBut(Vec<u32>),
}

fn retention_for_day(cfg: &t3_core::config::RetentionConfig, day: i32, now: i64) -> Keep {
    let day_end = (day as i64 + 1) * DAY_US;
    let expired = |age_days: u32| age_days > 0 && day_end <= now - age_days as i64 * DAY_US;
    let overridden: Vec<&t3_core::config::PointRetention> = cfg.points.iter().collect();
    if expired(cfg.max_age_days) {
        let keep: Vec<u32> =
            overridden.iter().filter(|o| !expired(o.max_age_days)).flat_map(|o| o.points.iter().copied()).collect();
        if keep.is_empty() { Keep::Nothing } else { Keep::Only(keep) }
    } else {
        let drop: Vec<u32> =
            overridden.iter().filter(|o| expired(o.max_age_days)).flat_map(|o| o.points.iter().copied()).collect();
        if drop.is_empty() { Keep::All } else { Keep::AllBut(drop) }
    }
}

fn id_list(ids: &[u32]) -> String {
    ids.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",")
}

impl Storage {
    /// One pass of retention, compaction and rollups. Flushes go on meanwhile: both change the
    /// manifest by adding and removing named files, never by replacing the list wholesale.
    pub async fn maintain(&self) -> Result<MaintenanceReport> {
        let _guard = self.maintenance_lock().await;
        let now = self.clock().now_us();
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.maintain_blocking(now))
            .await
            .map_err(|e| Error::Internal(format!("maintenance task: {e}")))?
    }

    fn maintain_blocking(&self, now: i64) -> Result<MaintenanceReport> {
        let mut report = MaintenanceReport::default();
        let cfg = self.config().clone();
        let retention = self.retention();
        let samples: Vec<Arc<LiveFile>> =
            self.live_files().iter().filter(|f| f.meta.table == Table::Samples).cloned().collect();
        for unit in units(samples, cfg.compaction.target_file_rows as u64, now) {
            let files = &unit.files;
            let cond = match unit_keep(&retention, unit.first, unit.last, now) {
                UnitKeep::All => None,
                UnitKeep::Nothing => {
                    let seqs: HashSet<u64> = files.iter().map(|f| f.meta.seq).collect();
                    self.edit_files(Vec::new(), &seqs)?;
                    tracing::info!(
                        from = %crate::files::manifest::day_string(unit.first),
                        to = %crate::files::manifest::day_string(unit.last),
                        files = seqs.len(),
                        "retention: deleted expired days"
                    );
                    report.days_deleted += (unit.last - unit.first + 1) as usize;
                    report.files_removed += seqs.len();
                    continue;
                }
                UnitKeep::Where(c) => Some(c),
            };
            // Files that may share rows are compacted at once, whatever their count: until then
            // every query resolves their duplicates. A file of several days in a month that is
            // not (or no longer) merged is split into days.
            let metas: Vec<&FileMeta> = files.iter().map(|f| &f.meta).collect();
            let split = !unit.merge && files.iter().any(|f| f.meta.days > 1);
            let compact = cfg.compaction.enabled
                && (split || files.len() >= cfg.compaction.min_files_per_day || overlapping(&metas).contains(&true));
            if (cond.is_some() || compact) && !self.check_inputs(files) {
                continue;
            }
            let must_drop = match &cond {
                Some(c) => self.query_engine().count_where(files, &format!("NOT ({c})"))? > 0,
                None => false,
            };
            if !must_drop && !compact {
                continue;
            }
            // A rewrite needs room for the new files before the old ones go: none at the floor
            // (whole expired days are still deleted above, which frees space).
            if self.inner.disk.refusing() {
                report.rewrites_skipped_for_disk += 1;
                continue;
            }
            let added = self.rewrite_unit(&unit, cond.as_deref())?;
            self.run_test_hook(TestHook::RewriteWritten);
            let seqs: HashSet<u64> = files.iter().map(|f| f.meta.seq).collect();
            self.edit_files(added, &seqs)?;
            report.files_removed += seqs.len();
            if must_drop {
                report.days_rewritten_for_retention += 1;
            } else {
                report.days_compacted += 1;
            }
        }
        if cfg.rollups.enabled && !self.inner.disk.refusing() {
            report.days_rolled_up = self.refresh_rollups_blocking(now)?;
        }
        if report != MaintenanceReport::default() {
            tracing::info!(?report, "maintenance pass");
        }
        Ok(report)
    }

    /// Checks the files a rewrite is about to read that this process has not checked yet; one that
    /// fails is quarantined and the day is left for the next pass. Returns whether all passed.
    pub(super) fn check_inputs(&self, files: &[Arc<LiveFile>]) -> bool {
        let mut all_ok = true;
        for f in files.iter().filter(|f| !f.is_verified()) {
            if let Err(why) = f.check() {
                all_ok = false;
                if let Err(e) = self.quarantine_file(f, &why) {
                    tracing::error!(error = %e, "could not quarantine {}", f.path.display());
                }
            }
        }
        all_ok
    }

    /// Writes the rows of a unit's files (de-duplicated, sorted, filtered by `cond`) into new files
    /// of at most `compaction.target_file_rows` rows: one file for the days of its rows if the
    /// unit is merged, else files per day. The files are not yet in the manifest.
    pub(super) fn rewrite_unit(&self, unit: &Unit, cond: Option<&str>) -> Result<Vec<FileMeta>> {
        self.run_test_hook(TestHook::RewriteInputsChosen);
        if !unit.merge {
            let mut added = Vec::new();
            for day in unit.first..=unit.last {
                added.extend(self.rewrite_days(day, day, &unit.files, cond)?);
            }
            return Ok(added);
        }
        // The output covers the days of the rows it keeps (a multi-day file never crosses a month,
        // and the unit's files are of one month).
        let range = match cond {
            None => Some((
                unit.files.iter().map(|f| f.meta.min_ts).min().unwrap_or(0),
                unit.files.iter().map(|f| f.meta.max_ts).max().unwrap_or(0),
            )),
            Some(c) => self.query_engine().ts_range_where(&unit.files, c)?,
        };
        let Some((lo, hi)) = range else { return Ok(Vec::new()) };
        let (first, last) = (day_of_ts(lo).max(unit.first), day_of_ts(hi).min(unit.last));
        self.rewrite_days(first, last, &unit.files, cond)
    }

    /// Writes the rows of `files` in days `first ..= last` (de-duplicated, sorted, filtered by
    /// `cond`) into new files covering those days. `files` must hold every live file that covers
    /// any of those days.
    fn rewrite_days(
        &self,
        first: i32,
        last: i32,
        files: &[Arc<LiveFile>],
        cond: Option<&str>,
    ) -> Result<Vec<FileMeta>> {
        let replaces: Vec<u64> = files.iter().map(|f| f.meta.seq).collect();
        let refs: Vec<&LiveFile> =
            files.iter().filter(|f| f.meta.day <= last && f.meta.last_day() >= first).map(|f| &**f).collect();
        let wal_min = refs.iter().map(|f| f.meta.wal_min).min().unwrap_or(0);
        let wal_max = refs.iter().map(|f| f.meta.wal_max).max().unwrap_or(0);
        let all = RowFilter { points: None, from: first as i64 * DAY_US, to: (last as i64 + 1) * DAY_US };
        let days = (last - first + 1) as u32;
        let target = self.config().compaction.target_file_rows as u64;
        let opts = self.parquet_options();
        let vfs = self.vfs().clone();
        let mut added = Vec::new();
        self.query_engine().stream_rows(
            &refs,
            &all,
            cond,
            &mut |batches| {
                // Called with consecutive runs of sorted rows of at most `target` rows each.
                let seq = self.allocate_seqs(1);
                let path = self.data_dir().join(rel_path(Table::Samples, first, seq));
                let tag = FileTag {
                    table: Some(Table::Samples),
                    day: first,
                    days,
                    seq,
                    wal_min,
                    wal_max,
                    replaces: replaces.clone(),
                    source_files: 0,
                    // Every file of these days is an input, so nothing of lower rank remains.
                    disjoint: true,
                };
                let stats =
                    parquet_io::write_atomic_stream(&*vfs, &path, &tag, crate::buffer::sample_schema(), batches, opts)?;
                if stats.rows > 0 {
                    let mut meta = FileMeta::new(Table::Samples, first, seq, stats);
                    meta.days = days;
                    (meta.wal_min, meta.wal_max, meta.disjoint) = (wal_min, wal_max, true);
                    added.push(meta);
                } else {
                    let _ = std::fs::remove_file(&path);
                }
                Ok(())
            },
            target,
        )?;
        Ok(added)
    }
}

/// Sample files that maintenance rewrites together.
#[derive(Debug)]
pub(super) struct Unit {
    pub files: Vec<Arc<LiveFile>>,
    /// The days the files cover.
    pub first: i32,
    pub last: i32,
    /// Merged into one file (a sparse month that is over), or else rewritten into one file per day.
    pub merge: bool,
}

/// Splits sample files into units. A calendar month that is over and whose files hold at most
/// `sparse_rows` rows in all is one unit, rewritten into one file: a store of sparse days keeps
/// one file per month instead of one per day. Any other month is split into runs of days that
/// files join (a file of several days and every file meeting it), each rewritten per day, which
/// for files of one day each is one unit per day. The month in progress is never merged: its
/// files change with every flush, and a month's file would be rewritten (and its rollups
/// recomputed) on every pass.
pub(super) fn units(files: Vec<Arc<LiveFile>>, sparse_rows: u64, now: i64) -> Vec<Unit> {
    let mut by_month: BTreeMap<i32, Vec<Arc<LiveFile>>> = BTreeMap::new();
    for f in files {
        by_month.entry(month_of(f.meta.day)).or_default().push(f);
    }
    let mut out = Vec::new();
    for (_, mut files) in by_month {
        files.sort_by_key(|f| (f.meta.day, f.meta.seq));
        let rows: u64 = files.iter().map(|f| f.meta.rows).sum();
        let first = files[0].meta.day;
        let last = files.iter().map(|f| f.meta.last_day()).max().unwrap_or(first);
        if rows <= sparse_rows && month_over(first, now) {
            out.push(Unit { files, first, last, merge: true });
            continue;
        }
        let mut run: Option<Unit> = None;
        for f in files {
            match &mut run {
                Some(u) if f.meta.day <= u.last => {
                    u.last = u.last.max(f.meta.last_day());
                    u.files.push(f);
                }
                _ => {
                    out.extend(run.take());
                    let (first, last) = (f.meta.day, f.meta.last_day());
                    run = Some(Unit { files: vec![f], first, last, merge: false });
                }
            }
        }
        out.extend(run);
    }
    out
}

/// Whether the calendar month of `day` has ended at `now`.
pub(super) fn month_over(day: i32, now: i64) -> bool {
    let mut end = day;
    while month_of(end) == month_of(day) {
        end += 1;
    }
    end as i64 * DAY_US <= now
}

/// What retention wants done to the days `first ..= last` of a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
enum UnitKeep {
    All,
    Nothing,
    /// Keep the rows matching this SQL condition.
    Where(String),
}

fn unit_keep(cfg: &t3_core::config::RetentionConfig, first: i32, last: i32, now: i64) -> UnitKeep {
    // Runs of days with the same rule.
    let mut runs: Vec<(i32, i32, Keep)> = Vec::new();
    for day in first..=last {
        let keep = retention_for_day(cfg, day, now);
        match runs.last_mut() {
            Some(r) if r.2 == keep => r.1 = day,
            _ => runs.push((day, day, keep)),
        }
    }
    let pred = |k: &Keep| match k {
        Keep::All => None,
        Keep::Nothing => Some("false".to_string()),
        Keep::Only(p) => Some(format!("point_id IN ({})", id_list(p))),
        Keep::AllBut(p) => Some(format!("point_id NOT IN ({})", id_list(p))),
    };
    if let [(_, _, keep)] = &runs[..] {
        return match keep {
            Keep::All => UnitKeep::All,
            Keep::Nothing => UnitKeep::Nothing,
            k => UnitKeep::Where(pred(k).unwrap_or_default()),
        };
    }
    let parts: Vec<String> = runs
        .iter()
        .filter(|r| r.2 != Keep::Nothing)
        .map(|(a, b, k)| {
            let range = format!(
                "ts >= {} AND ts < {}",
                crate::query::ts_literal(*a as i64 * DAY_US),
                crate::query::ts_literal((*b as i64 + 1) * DAY_US)
            );
            match pred(k) {
                Some(p) => format!("({range} AND {p})"),
                None => format!("({range})"),
            }
        })
        .collect();
    if parts.is_empty() { UnitKeep::Nothing } else { UnitKeep::Where(parts.join(" OR ")) }
}

impl Storage {
    /// Deletes every sample of `point` in `[from, to)`: for mistakes (a wrong clock, a test). What
    /// is buffered is flushed first, then each day that may hold such rows is rewritten without
    /// them, the same way retention rewrites a day (so a concurrent flush keeps winning). Samples
    /// acknowledged after the call starts are not deleted. Returns how many rows were removed: none
    /// when `from >= to` (the range is empty).
    pub async fn delete_samples(&self, point: u32, from: i64, to: i64) -> Result<u64> {
        if from >= to {
            return Ok(0);
        }
        self.flush().await?;
        let _guard = self.maintenance_lock().await;
        let me = self.clone();
        let removed = tokio::task::spawn_blocking(move || me.delete_blocking(point, from, to))
            .await
            .map_err(|e| Error::Internal(format!("delete task: {e}")))??;
        self.forget_latest_in(point, from, to).await?;
        Ok(removed)
    }

    fn delete_blocking(&self, point: u32, from: i64, to: i64) -> Result<u64> {
        let samples: Vec<Arc<LiveFile>> =
            self.live_files().iter().filter(|f| f.meta.table == Table::Samples).cloned().collect();
        let (first, last) = (day_of_ts(from), day_of_ts(to - 1));
        let doomed = format!(
            "point_id = {point} AND ts >= {} AND ts < {}",
            crate::query::ts_literal(from),
            crate::query::ts_literal(to)
        );
        let mut removed = 0;
        let now = self.clock().now_us();
        for unit in units(samples, self.config().compaction.target_file_rows as u64, now) {
            if unit.last < first || unit.first > last {
                continue;
            }
            let files = &unit.files;
            let holds = files.iter().any(|f| {
                (f.meta.min_point..=f.meta.max_point).contains(&point) && f.meta.max_ts >= from && f.meta.min_ts < to
            });
            if !holds {
                continue;
            }
            if !self.check_inputs(files) {
                return Err(Error::Internal(format!(
                    "a file of {} .. {} failed its checksum and was quarantined; nothing of those days was deleted, try again",
                    crate::files::manifest::day_string(unit.first),
                    crate::files::manifest::day_string(unit.last)
                )));
            }
            let n = self.query_engine().count_where(files, &doomed)?;
            if n == 0 {
                continue;
            }
            let added = self.rewrite_unit(&unit, Some(&format!("NOT ({doomed})")))?;
            let seqs: HashSet<u64> = files.iter().map(|f| f.meta.seq).collect();
            self.edit_files(added, &seqs)?;
            removed += n;
        }
        if removed > 0 {
            tracing::warn!(point, from, to, rows = removed, "deleted samples");
        }
        Ok(removed)
    }
}

/// Points inside maintenance where a test can run code, to interleave a flush (or anything else)
/// with a rewrite deterministically. Not for production use.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TestHook {
    /// A rewrite has chosen its input files and not yet read them.
    RewriteInputsChosen,
    /// A rewrite has written its output files and not yet published them.
    RewriteWritten,
}

#[cfg(test)]
mod tests {
    use super::*;
    use t3_core::config::{PointRetention, RetentionConfig};

    #[test]
    fn retention_rules() {
        let now = 100 * DAY_US;
        let mut cfg = RetentionConfig { max_age_days: 30, ..Default::default() };
        assert_eq!(retention_for_day(&cfg, 90, now), Keep::All);
        // Day 69 ends exactly 30 days before now: expired. Day 70 still has a moment inside the window.
        assert_eq!(retention_for_day(&cfg, 70, now), Keep::All);
        assert_eq!(retention_for_day(&cfg, 69, now), Keep::Nothing);
        cfg.points = vec![
            PointRetention { points: vec![1, 2], max_age_days: 365 },
            PointRetention { points: vec![9], max_age_days: 7 },
        ];
        assert_eq!(retention_for_day(&cfg, 10, now), Keep::Only(vec![1, 2]));
        assert_eq!(retention_for_day(&cfg, 80, now), Keep::AllBut(vec![9]));
        assert_eq!(retention_for_day(&cfg, 95, now), Keep::All);
        let forever = RetentionConfig { max_age_days: 0, ..Default::default() };
        assert_eq!(retention_for_day(&forever, 0, now), Keep::All);
    }
}
