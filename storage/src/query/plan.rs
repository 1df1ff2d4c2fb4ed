//! Planning and answering a history request: which rows it reads, where rollups can stand in for
//! raw samples, and the shaping of the rows (analytics) through either reader (the direct Parquet
//! reader or DuckDB).

use super::analytics::{self, Agg, Buckets, Fill, Series};
use super::direct::DirectReader;
use super::sql::{QueryEngine, edge_values, fetch_series, rollup_rows_sql};
use super::types::{Column, HistoryMode, HistoryRequest, PRIOR_LOOKBACK_US, PriorRow, SeriesResult};
use crate::buffer::{DAY_US, RowFilter};
use crate::error::{Error, Result};
use crate::files::{LiveFile, Snapshot};
use duckdb::Connection;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Threads the direct reader may use: the configured query threads, at most the cores there are.
fn read_threads(configured: usize) -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    configured.clamp(1, cores)
}

/// Runs `f` on a blocking thread; after `timeout` it is asked to stop (the flag it is given turns
/// true) and the query fails with [`Error::Timeout`].
async fn run_direct<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce(&AtomicBool) -> Result<T> + Send + 'static,
) -> Result<T> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let mut task = tokio::task::spawn_blocking(move || f(&flag));
    tokio::select! {
        r = &mut task => r.map_err(|e| Error::Internal(format!("query task: {e}")))?,
        _ = tokio::time::sleep(timeout) => {
            cancel.store(true, Ordering::Relaxed);
            let _ = task.await;
            Err(Error::Timeout(timeout.as_millis() as u64))
        }
    }
}

/// Where a history query's rows come from. Both readers de-duplicate the same way (the newest
/// file wins a duplicate (point, ts), the write buffer wins over every file).
enum Reader<'a> {
    DuckDb { conn: &'a Connection, snap: &'a Snapshot },
    Direct(DirectReader<'a>),
}

impl Reader<'_> {
    fn series(&self, filter: &RowFilter<'_>, max_rows: usize) -> Result<Vec<Series>> {
        match self {
            Reader::DuckDb { conn, snap } => fetch_series(conn, snap, filter, max_rows),
            Reader::Direct(d) => d.series(filter, max_rows),
        }
    }

    fn edges(&self, filter: &RowFilter<'_>, last: bool) -> Result<HashMap<u32, (i64, Option<f64>)>> {
        match self {
            Reader::DuckDb { conn, snap } => edge_values(conn, snap, filter, last),
            Reader::Direct(d) => d.edges(filter, last),
        }
    }

    /// Rollup rows of `points` in `files` as (point, bucket start, partial).
    /// Rollup rows of `points` in `files` with `window.0 <= ts < window.1`.
    fn rollup_rows(
        &self,
        files: &[Arc<LiveFile>],
        points: &[u32],
        window: (i64, i64),
    ) -> Result<Vec<(u32, i64, analytics::Partial)>> {
        let refs: Vec<&LiveFile> = files.iter().map(|f| &**f).collect();
        match self {
            Reader::DuckDb { conn, .. } => rollup_rows_sql(conn, &refs, points, window),
            Reader::Direct(d) => d.rollup_rows(&refs, points, window),
        }
    }
}

/// What a history request reads besides its range: its points, and the values in force at its edges
/// (looked for up to `lookback` before `from` and, for linear interpolation, `next_window` after `to`).
#[derive(Debug)]
pub(crate) struct Reads {
    /// Sorted, distinct.
    pub points: Vec<u32>,
    pub needs_edges: bool,
    pub lookback: i64,
    pub next_window: i64,
}

impl Reads {
    pub(crate) fn of(req: &HistoryRequest) -> Reads {
        let mut points = req.points.clone();
        points.sort_unstable();
        points.dedup();
        let needs_edges = matches!(
            &req.mode,
            HistoryMode::Aggregate { aggs, .. } if aggs.iter().any(|a| matches!(a, Agg::Twa | Agg::Integral))
        ) || matches!(req.mode, HistoryMode::Interpolate { .. })
            || req.prior;
        let lookback = match &req.mode {
            HistoryMode::Interpolate { max_gap_us, .. } => (*max_gap_us).min(PRIOR_LOOKBACK_US),
            _ => PRIOR_LOOKBACK_US,
        };
        let next_window = match &req.mode {
            HistoryMode::Interpolate { max_gap_us, fill: Fill::Linear, .. } => *max_gap_us,
            _ => 0,
        };
        Reads { points, needs_edges, lookback, next_window }
    }

    /// Every row `req` may read.
    pub(crate) fn filter(&self, req: &HistoryRequest) -> RowFilter<'_> {
        RowFilter {
            points: Some(&self.points),
            from: req.from - self.lookback,
            to: req.to.saturating_add(self.next_window),
        }
    }
}

/// A history request, normalised, with what it needs to be answered.
#[derive(Debug)]
pub(crate) struct HistoryPlan {
    /// Sorted, distinct.
    points: Vec<u32>,
    from: i64,
    to: i64,
    mode: HistoryMode,
    /// Answer each point's last row before `from` too.
    prior: bool,
    /// Whether the values in force at `from` (and, for linear interpolation, after `to`) are needed.
    needs_edges: bool,
    lookback: i64,
    next_window: i64,
    now: i64,
    max_rows: usize,
    rollups: Option<RollupPlan>,
}

impl HistoryPlan {
    /// The plan of `req` (validated by the caller) answered at `now` with at most `max_rows` rows,
    /// `rollups` (see [`plan_rollups`]) read where they can be.
    pub(crate) fn new(
        req: &HistoryRequest,
        reads: Reads,
        now: i64,
        max_rows: usize,
        rollups: Option<RollupPlan>,
    ) -> HistoryPlan {
        let Reads { points, needs_edges, lookback, next_window } = reads;
        HistoryPlan {
            points,
            from: req.from,
            to: req.to,
            mode: req.mode.clone(),
            prior: req.prior,
            needs_edges,
            lookback,
            next_window,
            now,
            max_rows,
            rollups,
        }
    }

    /// Answers the plan from `snap` on a blocking thread, through the direct reader (on up to
    /// `threads` threads, at most the cores there are) or DuckDB; past `timeout` the answer is
    /// [`Error::Timeout`].
    pub(crate) async fn run(
        self,
        engine: &Arc<QueryEngine>,
        snap: Arc<Snapshot>,
        direct: bool,
        threads: usize,
        timeout: Duration,
    ) -> Result<Vec<SeriesResult>> {
        let plan = self;
        let series = if direct {
            let threads = read_threads(threads);
            run_direct(timeout, move |cancel| {
                plan.answer(&Reader::Direct(DirectReader { snap: &snap, threads, cancel }))
            })
            .await?
        } else {
            engine.run(timeout, move |conn| plan.answer(&Reader::DuckDb { conn, snap: &snap })).await?
        };
        Ok(series)
    }

    fn answer(&self, reader: &Reader<'_>) -> Result<Vec<SeriesResult>> {
        let (points, from, to, now) = (&self.points[..], self.from, self.to, self.now);
        if let (Some(plan), HistoryMode::Aggregate { bucket_us, aggs }) = (&self.rollups, &self.mode) {
            return aggregate_with_rollups(reader, plan, points, from, to, *bucket_us, aggs, now, self.max_rows);
        }
        let filter = RowFilter { points: Some(points), from, to };
        let series = reader.series(&filter, self.max_rows)?;
        let (prior, next) = if self.needs_edges {
            let before = RowFilter { points: Some(points), from: from - self.lookback, to: from };
            let after = RowFilter { points: Some(points), from: to, to: to.saturating_add(self.next_window) };
            let next = if self.next_window > 0 { reader.edges(&after, false)? } else { HashMap::new() };
            (reader.edges(&before, true)?, next)
        } else {
            (HashMap::new(), HashMap::new())
        };
        let mut by_point: HashMap<u32, Series> = series.into_iter().map(|s| (s.point_id, s)).collect();
        let mut out = Vec::with_capacity(points.len());
        for &p in points {
            let s = by_point.remove(&p).unwrap_or_else(|| Series::new(p));
            let mut result = match &self.mode {
                HistoryMode::Raw => raw_result(s),
                HistoryMode::Downsample { max_points } => raw_result(analytics::m4(&s, from, to, *max_points)),
                HistoryMode::Aggregate { bucket_us, aggs } => {
                    let prior = prior.get(&p).and_then(|e| e.1);
                    buckets_result(p, analytics::aggregate(&s, prior, from, to, *bucket_us, aggs, now))
                }
                HistoryMode::Interpolate { step_us, fill, max_gap_us } => {
                    let (ts, vals) = analytics::interpolate(
                        &s,
                        prior.get(&p).and_then(|&(t, v)| Some((t, v?))),
                        next.get(&p).and_then(|&(t, v)| Some((t, v?))),
                        from,
                        to,
                        *step_us,
                        *fill,
                        *max_gap_us,
                    );
                    SeriesResult { point_id: p, ts, columns: vec![("value".into(), Column::F64(vals))], prior: None }
                }
            };
            if self.prior {
                result.prior = Some(prior.get(&p).map(|&(ts, value)| PriorRow { ts, value }));
            }
            out.push(result);
        }
        Ok(out)
    }
}

/// Which rollup table and days an aggregate query can read instead of raw samples.
#[derive(Debug)]
pub(crate) struct RollupPlan {
    width: i64,
    files: Vec<Arc<LiveFile>>,
    /// Days (sorted) answered from rollups; everything else in the range comes from raw samples.
    days: Vec<i32>,
}

pub(crate) fn plan_rollups(snap: &Snapshot, mode: &HistoryMode, from: i64, to: i64) -> Option<RollupPlan> {
    let HistoryMode::Aggregate { bucket_us, .. } = mode else { return None };
    let (table, width) = super::rollups::TABLES.into_iter().rev().find(|(_, w)| bucket_us % w == 0)?;
    // A day with buffered (not yet persisted) rows has changed since its rollups were computed.
    let buffered_days: std::collections::BTreeSet<i32> =
        snap.buffered.ts.iter().map(|t| t.div_euclid(DAY_US) as i32).collect();
    let fresh = super::rollups::fresh_rollups(&snap.files, table);
    let mut days = Vec::new();
    let mut files = Vec::new();
    for f in fresh {
        // A rollup file may cover several days; it answers only those wholly inside the range.
        let before = days.len();
        for day in f.meta.day..=f.meta.last_day() {
            let (a, b) = (day as i64 * DAY_US, (day as i64 + 1) * DAY_US);
            if a >= from && b <= to && !buffered_days.contains(&day) {
                days.push(day);
            }
        }
        if days.len() > before {
            files.push(f);
        }
    }
    days.sort_unstable();
    days.dedup();
    (!days.is_empty()).then_some(RollupPlan { width, files, days })
}

/// Aggregates over rollup rows for the planned days and raw samples for the rest of the range,
/// merging both at the rollup width into the requested buckets.
#[allow(clippy::too_many_arguments)]
fn aggregate_with_rollups(
    reader: &Reader<'_>,
    plan: &RollupPlan,
    points: &[u32],
    from: i64,
    to: i64,
    bucket_us: i64,
    aggs: &[Agg],
    now: i64,
    max_rows: usize,
) -> Result<Vec<SeriesResult>> {
    let mut parts: HashMap<u32, Vec<(i64, analytics::Partial)>> = HashMap::new();
    // Rollup rows of the planned days.
    // Only rows of the planned days: a rollup file of several days may hold others.
    let window = (plan.days[0] as i64 * DAY_US, (plan.days[plan.days.len() - 1] as i64 + 1) * DAY_US);
    for (p, t, part) in reader.rollup_rows(&plan.files, points, window)? {
        if plan.days.binary_search(&(t.div_euclid(DAY_US) as i32)).is_ok() {
            parts.entry(p).or_default().push((t, part));
        }
    }
    // Raw samples for the gaps between planned days.
    let mut gaps = Vec::new();
    let mut cursor = from;
    for &d in &plan.days {
        let a = d as i64 * DAY_US;
        if a > cursor {
            gaps.push((cursor, a));
        }
        cursor = a + DAY_US;
    }
    if cursor < to {
        gaps.push((cursor, to));
    }
    for (a, b) in gaps {
        let filter = RowFilter { points: Some(points), from: a, to: b };
        let series = reader.series(&filter, max_rows)?;
        let before = RowFilter { points: Some(points), from: a - PRIOR_LOOKBACK_US, to: a };
        let prior = reader.edges(&before, true)?;
        let mut by_point: HashMap<u32, Series> = series.into_iter().map(|s| (s.point_id, s)).collect();
        for &p in points {
            let s = by_point.remove(&p).unwrap_or_else(|| Series::new(p));
            let (first, ps) = analytics::partials(&s, prior.get(&p).and_then(|e| e.1), a, b, plan.width, now);
            let list = parts.entry(p).or_default();
            list.extend(ps.into_iter().enumerate().map(|(k, part)| (first + k as i64 * plan.width, part)));
        }
    }
    let first_out = analytics::bucket_start(from, bucket_us);
    let n_out = ((to - 1 - first_out) / bucket_us + 1) as usize;
    let mut out = Vec::with_capacity(points.len());
    for &p in points {
        let mut list = parts.remove(&p).unwrap_or_default();
        list.sort_by_key(|e| e.0);
        let mut merged = vec![analytics::Partial::default(); n_out];
        for (t, part) in &list {
            let k = (analytics::bucket_start(*t, bucket_us) - first_out) / bucket_us;
            if let Some(m) = usize::try_from(k).ok().and_then(|k| merged.get_mut(k)) {
                m.merge(part);
            }
        }
        out.push(buckets_result(p, analytics::finish(first_out, bucket_us, &merged, aggs)));
    }
    Ok(out)
}

/// The series of an answer over an empty range (`from >= to`): one per requested point (sorted,
/// each once), without rows, with the columns of `mode`.
pub(crate) fn empty_series(points: &[u32], mode: &HistoryMode) -> Vec<SeriesResult> {
    let mut points = points.to_vec();
    points.sort_unstable();
    points.dedup();
    let empty = |point_id: u32| -> SeriesResult {
        let columns = match mode {
            HistoryMode::Raw | HistoryMode::Downsample { .. } => return raw_result(Series::new(point_id)),
            HistoryMode::Aggregate { aggs, .. } => {
                aggs.iter().map(|a| (a.name().to_string(), Column::F64(Vec::new()))).collect()
            }
            HistoryMode::Interpolate { .. } => vec![("value".into(), Column::F64(Vec::new()))],
        };
        SeriesResult { point_id, ts: Vec::new(), columns, prior: None }
    };
    points.into_iter().map(empty).collect()
}

fn raw_result(s: Series) -> SeriesResult {
    SeriesResult {
        point_id: s.point_id,
        ts: s.ts,
        columns: vec![
            ("value".into(), Column::F64(s.value.into_iter().map(|v| (!v.is_nan()).then_some(v)).collect())),
            ("quality".into(), Column::U8(s.quality)),
        ],
        prior: None,
    }
}

fn buckets_result(point_id: u32, b: Buckets) -> SeriesResult {
    SeriesResult {
        point_id,
        ts: b.ts,
        columns: b.columns.into_iter().map(|(a, c)| (a.name().to_string(), Column::F64(c))).collect(),
        prior: None,
    }
}
