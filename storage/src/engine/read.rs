//! The history and SQL entry points: requests validated, the snapshot taken and its files checked,
//! the answer computed by the query layer ([`crate::query`]), and a query that hits a damaged file
//! retried without it (quarantined, the answer marked partial).

use super::Storage;
use crate::buffer::RowFilter;
use crate::error::{Error, Result};
use crate::files::{LiveFile, touched_files};
use crate::query::{
    DIRECT_MAX_POINTS, HistoryMode, HistoryPlan, HistoryRequest, HistoryResult, ReadPath, Reads, SqlResult,
    empty_series, plan_rollups, sql_statement,
};
use std::sync::Arc;
use std::time::Duration;
use t3_core::model::{MAX_TS, MIN_TS};
use tokio::time::Instant;

impl Storage {
    /// Answers a history request over files and the write buffer.
    pub async fn history(&self, req: HistoryRequest) -> Result<HistoryResult> {
        self.history_with(req, ReadPath::Auto).await
    }

    /// [`Storage::history`] through a chosen reader (both give the same answer; tests and
    /// benchmarks compare them).
    ///
    /// A range whose `from` is not before its `to` holds nothing: each series comes back empty
    /// (with its columns, and with `prior` when asked: the last row before `from`).
    pub async fn history_with(&self, req: HistoryRequest, path: ReadPath) -> Result<HistoryResult> {
        if req.points.is_empty() {
            return Err(Error::InvalidQuery("no points requested".into()));
        }
        if req.from >= req.to {
            return self.empty_history(req, path).await;
        }
        let max_rows = self.config().query.max_rows;
        match &req.mode {
            HistoryMode::Aggregate { bucket_us, .. } | HistoryMode::Interpolate { step_us: bucket_us, .. } => {
                if *bucket_us <= 0 {
                    return Err(Error::InvalidQuery("bucket / step must be positive".into()));
                }
                let n = (req.to - req.from) / bucket_us + 1;
                if n as u128 * req.points.len() as u128 > max_rows as u128 {
                    return Err(Error::TooManyRows(max_rows));
                }
            }
            HistoryMode::Downsample { max_points } if *max_points == 0 => {
                return Err(Error::InvalidQuery("max_points must be at least 1".into()));
            }
            _ => {}
        }
        let mut partial = false;
        loop {
            match self.history_once(&req, path).await {
                Ok(mut r) => {
                    r.partial |= partial;
                    return Ok(r);
                }
                Err(e @ (Error::DuckDb(_) | Error::DataFile { .. }))
                    if self.quarantine_after_error(&e.to_string(), Some((req.from, req.to))).await =>
                {
                    tracing::warn!(error = %e, "query hit a damaged file; retrying without it");
                    partial = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The answer over an empty range `[from, to)` (`from >= to`): no rows, the mode's columns,
    /// and the last row before `from` when `prior` asks for it.
    async fn empty_history(&self, req: HistoryRequest, path: ReadPath) -> Result<HistoryResult> {
        let mut series = empty_series(&req.points, &req.mode);
        let mut partial = false;
        if req.prior {
            // The rows before `from`: a raw query of nothing (`[from, from)`) that looks back.
            let points = series.iter().map(|s| s.point_id).collect();
            let lookup = HistoryRequest { points, from: req.from, to: req.from, mode: HistoryMode::Raw, prior: true };
            let found = self.history_once(&lookup, path).await?;
            partial = found.partial;
            for (s, f) in series.iter_mut().zip(found.series) {
                s.prior = f.prior;
            }
        }
        Ok(HistoryResult { from: req.from, to: req.to, series, partial })
    }

    /// After a failed query: decodes the files the error names (or, if it names none, the live
    /// files overlapping `[from, to)`) and quarantines those that fail. Returns whether any did.
    /// Runs only when something already went wrong, so a healthy query never pays for it.
    pub(super) async fn quarantine_after_error(&self, message: &str, range: Option<(i64, i64)>) -> bool {
        let files = self.live_files();
        let named: Vec<Arc<LiveFile>> =
            files.iter().filter(|f| message.contains(&*f.path.to_string_lossy())).cloned().collect();
        let suspects = match (named.is_empty(), range) {
            (false, _) => named,
            (true, Some((from, to))) => {
                files.iter().filter(|f| f.meta.max_ts >= from && f.meta.min_ts < to).cloned().collect()
            }
            (true, None) => return false,
        };
        let bad: Vec<(Arc<LiveFile>, String)> = tokio::task::spawn_blocking(move || {
            suspects.into_iter().filter_map(|f| f.check().err().map(|why| (f, why))).collect()
        })
        .await
        .unwrap_or_default();
        for (f, why) in &bad {
            if let Err(e) = self.quarantine_file(f, why) {
                tracing::error!(error = %e, "could not quarantine {}", f.path.display());
            }
        }
        !bad.is_empty()
    }

    async fn history_once(&self, req: &HistoryRequest, path: ReadPath) -> Result<HistoryResult> {
        let reads = Reads::of(req);
        let wide = reads.filter(req);
        let snap = Arc::new(self.snapshot(&wide, true));
        self.verify_files(touched_files(&snap, &wide)).await?;
        let partial = self.overlaps_quarantined(Some(&reads.points), req.from, req.to);
        let rollups =
            if self.config().rollups.enabled { plan_rollups(&snap, &req.mode, req.from, req.to) } else { None };
        let direct = match path {
            ReadPath::Auto => reads.points.len() <= DIRECT_MAX_POINTS,
            ReadPath::Direct => true,
            ReadPath::DuckDb => false,
        };
        let plan = HistoryPlan::new(req, reads, self.clock().now_us(), self.config().query.max_rows, rollups);
        let timeout = Duration::from_millis(self.config().query.timeout_ms);
        let series = plan.run(&self.query_engine(), snap, direct, self.config().query.threads, timeout).await?;
        Ok(HistoryResult { from: req.from, to: req.to, series, partial })
    }

    /// Runs a read-only SQL query over the views `samples`, `rollups_1m` and `rollups_1h`. A file
    /// that the error names and that fails to decode is quarantined and the query runs again
    /// (the answer then says `partial`). The whole call, retries included, ends within the SQL
    /// time limit (plus at most [`CANCEL_GRACE`](crate::query::CANCEL_GRACE)); past it the answer is [`Error::Timeout`].
    pub async fn sql(&self, text: &str) -> Result<SqlResult> {
        let limit = Duration::from_millis(self.config().query.sql_timeout_ms);
        let deadline = Instant::now() + limit;
        let mut partial = false;
        loop {
            match self.sql_once(text, limit, deadline).await {
                Ok(mut r) => {
                    r.partial |= partial;
                    return Ok(r);
                }
                Err(e @ (Error::InvalidQuery(_) | Error::DuckDb(_) | Error::DataFile { .. }))
                    if self.quarantine_after_error(&e.to_string(), None).await =>
                {
                    partial = true
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn sql_once(&self, text: &str, limit: Duration, deadline: Instant) -> Result<SqlResult> {
        let body = sql_statement(text)?;
        let engine = self.query_engine();
        let slot = engine.sql_slot(limit, deadline).await?;
        let all = RowFilter { points: None, from: MIN_TS, to: MAX_TS + 1 };
        let snap = self.snapshot(&all, true);
        self.verify_files(snap.files.to_vec()).await?;
        let partial = self.overlaps_quarantined(None, MIN_TS, MAX_TS + 1);
        let limit_rows = self.config().query.sql_max_rows;
        engine.run_sql(snap, body, limit_rows, partial, limit, deadline, slot).await
    }
}
