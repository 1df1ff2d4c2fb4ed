//! The DuckDB reader and the SQL sandbox: the engine's queries (history through DuckDB, latest
//! values, compaction and retention rewrites, rollup inputs) and user SQL, over the files of a
//! snapshot and its buffered rows (bound as an Arrow table).
//!
//! DuckDB runs sandboxed, in two in-memory instances. Neither installs or loads extensions, and
//! each locks its configuration so no query can undo its limits:
//! - the engine's own instance (history, exports, compaction, rollups) runs only SQL the server
//!   writes and may read only the Parquet trees (`samples/`, `rollups_1m/`, `rollups_1h/`);
//! - user SQL (the `/query` endpoint) runs in an instance that may read exactly the live Parquet
//!   files it was opened for (`allowed_paths`) and nothing else, whatever path, glob or `..` a
//!   function is given; a new one is opened when the live set gains a file. The statement is
//!   also wrapped as a subquery, which only a read-only query can be.
//!
//! Each instance spills what does not fit in memory, up to `query.spill_limit_mb`: the engine's to
//! `<data dir>/tmp/`, user SQL to `<data dir>/tmp-sql/` (DuckDB removes its files when done).
//!
//! A query's time limit covers the whole request: opening the user instance, setting up the views
//! and planning as well as executing. When it passes, the connection is interrupted (again and
//! again, since DuckDB clears an interrupt when its next statement begins), the work stops at its
//! next step, and the caller is answered [`Error::Timeout`] at most [`CANCEL_GRACE`] later, whether
//! or not DuckDB has let go yet. A connection that was interrupted is not reused.

use super::types::{Latest, PRIOR_LOOKBACK_US, SqlResult};
use crate::buffer::{Columns, DAY_US, RowFilter};
use crate::error::{Error, Result};
use crate::files::manifest::{FileMeta, Table, overlapping};
use crate::files::{LiveFile, Snapshot, candidate_files};
use crate::query::analytics::{self, Series};
use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, UInt8Array, UInt32Array};
use duckdb::vtab::arrow::{ArrowBatchRegistration, ArrowVTab};
use duckdb::{Connection, InterruptHandle};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use t3_core::config::QueryConfig;
use t3_core::model::{MAX_TS, MIN_TS};
use tokio::time::Instant;

/// How long a query past its time limit is given to stop before its caller gets the time-out
/// anyway (the work is then left to finish in the background; its connection is dropped).
pub const CANCEL_GRACE: Duration = Duration::from_millis(250);

/// How often a query past its time limit is interrupted again until it stops.
const INTERRUPT_EVERY: Duration = Duration::from_millis(10);

/// User SQL queries running at once (including ones past their limit that DuckDB has not let go
/// of yet); a query waits for a slot within its own time limit.
const SQL_SLOTS: usize = 4;

/// Pooled connections to one sandboxed in-memory DuckDB instance. The first connection stays in
/// the pool so the others can be cloned from it.
struct Pool {
    conns: Mutex<Vec<Connection>>,
}

impl Pool {
    fn new(conn: Connection) -> Self {
        Pool { conns: Mutex::new(vec![conn]) }
    }

    fn checkout(&self) -> Result<Connection> {
        let mut pool = self.conns.lock();
        if pool.len() > 1 {
            return Ok(pool.pop().expect("len > 1"));
        }
        Ok(pool[0].try_clone()?)
    }

    fn checkin(&self, c: Connection) {
        let mut pool = self.conns.lock();
        if pool.len() < 8 {
            pool.push(c);
        }
    }
}

/// The instance user SQL runs in, and the files it may read.
struct SqlInstance {
    files: HashSet<PathBuf>,
    pool: Pool,
}

/// The query engine: the engine's sandboxed DuckDB instance, and the one for user SQL.
pub(crate) struct QueryEngine {
    pool: Pool,
    cfg: QueryConfig,
    sql: Mutex<Option<Arc<SqlInstance>>>,
    sql_slots: Arc<tokio::sync::Semaphore>,
    sql_temp: PathBuf,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn sql_list<'a>(items: impl IntoIterator<Item = &'a Path>) -> String {
    let items: Vec<String> = items.into_iter().map(|p| sql_str(&p.to_string_lossy())).collect();
    format!("[{}]", items.join(","))
}

pub(crate) fn ts_literal(us: i64) -> String {
    let us = us.clamp(MIN_TS, MAX_TS);
    let dt = chrono::DateTime::from_timestamp_micros(us).unwrap_or_default();
    format!("TIMESTAMP '{}'", dt.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f"))
}

/// Where the engine's DuckDB instance spills query state that does not fit in memory.
fn temp_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tmp")
}

/// Where the user SQL instances spill, apart from the engine's.
fn sql_temp_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tmp-sql")
}

/// Opens an in-memory DuckDB instance that may read only the files in `dirs`, the `files`
/// themselves and its spill folder `temp` (at most `query.spill_limit_mb` of it; none or a limit
/// of 0: it does not spill), never installs or loads an extension, and has its configuration
/// locked.
fn open_sandboxed(cfg: &QueryConfig, temp: Option<&Path>, dirs: &[PathBuf], files: &[&Path]) -> Result<Connection> {
    let temp = temp.filter(|_| cfg.spill_limit_mb > 0);
    let config = duckdb::Config::default()
        .threads(cfg.threads as i64)?
        .max_memory(&format!("{}MB", cfg.memory_limit_mb))?
        .enable_autoload_extension(false)?;
    let conn = Connection::open_in_memory_with_flags(config)?;
    conn.register_table_function::<ArrowVTab>("arrow")?;
    let mut setup = format!(
        "SET autoinstall_known_extensions = false;
         SET autoload_known_extensions = false;
         SET parquet_metadata_cache = true;
         SET temp_directory = {};
         SET max_temp_directory_size = '{}MiB';",
        sql_str(&temp.map(|t| t.to_string_lossy()).unwrap_or_default()),
        cfg.spill_limit_mb
    );
    if !dirs.is_empty() {
        let _ = write!(setup, "SET allowed_directories = {};", sql_list(dirs.iter().map(PathBuf::as_path)));
    }
    if !files.is_empty() {
        let _ = write!(setup, "SET allowed_paths = {};", sql_list(files.iter().copied()));
    }
    // Turning external access off lets DuckDB reach only the allowed paths, the allowed
    // directories and its temporary directory; the lock keeps it so.
    setup.push_str("SET enable_external_access = false; SET lock_configuration = true;");
    conn.execute_batch(&setup)?;
    Ok(conn)
}

/// What a query running on a blocking thread shares with the caller waiting for it: whether its
/// time is up, and the connection to interrupt when it is.
struct Watch {
    limit_ms: u64,
    cancelled: AtomicBool,
    conn: Mutex<Option<Arc<InterruptHandle>>>,
}

impl Watch {
    fn new(limit: Duration) -> Self {
        Watch { limit_ms: limit.as_millis() as u64, cancelled: AtomicBool::new(false), conn: Mutex::new(None) }
    }

    /// The query works on `conn` from now on (interrupted with it when its time is up).
    fn attach(&self, conn: &Connection) -> Result<()> {
        *self.conn.lock() = Some(conn.interrupt_handle());
        self.check()
    }

    /// [`Error::Timeout`] once the time is up: called between the steps of a query.
    fn check(&self) -> Result<()> {
        if self.is_cancelled() { Err(Error::Timeout(self.limit_ms)) } else { Ok(()) }
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.interrupt();
    }

    fn interrupt(&self) {
        if let Some(h) = &*self.conn.lock() {
            h.interrupt();
        }
    }
}

/// Runs `f` on a blocking thread with a time limit of `limit` that ends at `deadline`. Past the
/// deadline the query is cancelled (see [`Watch`]) and the answer is [`Error::Timeout`], at most
/// [`CANCEL_GRACE`] after the deadline, whether or not `f` has returned. `slot`, if given, is held
/// until `f` returns.
async fn run_watched<T: Send + 'static>(
    limit: Duration,
    deadline: Instant,
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
    f: impl FnOnce(&Watch) -> Result<T> + Send + 'static,
) -> Result<T> {
    let watch = Arc::new(Watch::new(limit));
    let w = watch.clone();
    let mut task = tokio::task::spawn_blocking(move || {
        let r = f(&w);
        drop(slot);
        r
    });
    tokio::select! {
        r = &mut task => return r.map_err(|e| Error::Internal(format!("query task: {e}")))?,
        _ = tokio::time::sleep_until(deadline) => {}
    }
    watch.cancel();
    let give_up = tokio::time::sleep(CANCEL_GRACE);
    tokio::pin!(give_up);
    let mut again = tokio::time::interval(INTERRUPT_EVERY);
    loop {
        tokio::select! {
            _ = &mut task => break,
            _ = &mut give_up => {
                tracing::warn!(limit_ms = watch.limit_ms, "a query past its time limit has not stopped yet; answering without it");
                break;
            }
            _ = again.tick() => watch.interrupt(),
        }
    }
    Err(Error::Timeout(watch.limit_ms))
}

impl QueryEngine {
    pub fn new(data_dir: &Path, cfg: &QueryConfig) -> Result<Self> {
        let trees: Vec<PathBuf> = [Table::Samples, Table::Rollups1m, Table::Rollups1h]
            .into_iter()
            .map(|t| data_dir.join(t.dir_name()))
            .collect();
        let conn = open_sandboxed(cfg, Some(&temp_dir(data_dir)), &trees, &[])?;
        Ok(QueryEngine {
            pool: Pool::new(conn),
            cfg: cfg.clone(),
            sql: Mutex::new(None),
            sql_slots: Arc::new(tokio::sync::Semaphore::new(SQL_SLOTS)),
            sql_temp: sql_temp_dir(data_dir),
        })
    }

    fn checkout(&self) -> Result<Connection> {
        self.pool.checkout()
    }

    fn checkin(&self, c: Connection) {
        self.pool.checkin(c)
    }

    /// Runs `f` on a pooled connection on a blocking thread, cancelling it after `timeout`.
    pub(super) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        timeout: Duration,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let me = self.clone();
        run_watched(timeout, Instant::now() + timeout, None, move |watch| {
            let conn = me.checkout()?;
            watch.attach(&conn)?;
            let r = f(&conn);
            if watch.is_cancelled() {
                return Err(Error::Timeout(watch.limit_ms));
            }
            me.checkin(conn);
            r
        })
        .await
    }

    /// The user SQL instance that may read `files`: the current one if it may read them all,
    /// else a new one for exactly these files.
    fn sql_instance(&self, files: &[&Path]) -> Result<Arc<SqlInstance>> {
        if let Some(current) = &*self.sql.lock()
            && files.iter().all(|f| current.files.contains(*f))
        {
            return Ok(current.clone());
        }
        let conn = open_sandboxed(&self.cfg, Some(&self.sql_temp), &[], files)?;
        let fresh =
            Arc::new(SqlInstance { files: files.iter().map(|f| f.to_path_buf()).collect(), pool: Pool::new(conn) });
        *self.sql.lock() = Some(fresh.clone());
        Ok(fresh)
    }

    /// Latest row per point over the given files. Reads the newest files first and skips a file
    /// once every point id in its `[min_point, max_point]` range has a value at least as new as
    /// anything in it, so a store whose points all reported recently reads only its last files.
    pub fn latest_from_files(&self, files: &[Arc<LiveFile>], now_us: i64) -> Result<Vec<(u32, Latest)>> {
        let mut files: Vec<&LiveFile> = files.iter().map(|f| &**f).filter(|f| f.meta.table == Table::Samples).collect();
        files.sort_by_key(|f| std::cmp::Reverse((f.meta.max_ts, f.meta.rank())));
        // Per point: the latest row and the rank of its file (the higher rank wins a tie on ts).
        let mut found: std::collections::BTreeMap<u32, (Latest, u64)> = std::collections::BTreeMap::new();
        let conn = self.checkout()?;
        for f in files {
            let (lo, hi) = (f.meta.min_point, f.meta.max_point);
            let in_range = found.range(lo..=hi);
            let (n, oldest) = in_range.fold((0u64, i64::MAX), |(n, o), (_, (l, _))| (n + 1, o.min(l.ts)));
            if n == u64::from(hi - lo) + 1 && oldest > f.meta.max_ts {
                continue;
            }
            if !f.is_verified() {
                f.check().map_err(|message| Error::DataFile { path: f.path.clone(), message })?;
            }
            // The newest row not in the future: a wrong clock's sample must not pin the value.
            let sql = format!(
                "SELECT point_id, max(epoch_us(ts)), arg_max(value, ts), arg_max(quality, ts) FROM {} WHERE ts <= {} GROUP BY point_id",
                read_parquet(&[f]),
                ts_literal(now_us)
            );
            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let l = Latest { ts: r.get(1)?, value: r.get(2)?, quality: r.get(3)? };
                let e = found.entry(r.get::<_, u32>(0)?).or_insert((l, f.meta.rank()));
                if (l.ts, f.meta.rank()) > (e.0.ts, e.1) {
                    *e = (l, f.meta.rank());
                }
            }
        }
        self.checkin(conn);
        Ok(found.into_iter().map(|(p, (l, _))| (p, l)).collect())
    }
}

impl QueryEngine {
    /// Rows of `files` matching `cond` (after de-duplication).
    pub fn count_where(&self, files: &[Arc<LiveFile>], cond: &str) -> Result<u64> {
        let refs: Vec<&LiveFile> = files.iter().map(|f| &**f).collect();
        let all = RowFilter { points: None, from: MIN_TS, to: MAX_TS + 1 };
        let conn = self.checkout()?;
        let sql = format!("SELECT count(*) FROM {} WHERE {cond}", source_sql(&refs, None, &all).0);
        let n: i64 = conn.query_row(&sql, [], |r| r.get(0))?;
        self.checkin(conn);
        Ok(n as u64)
    }

    /// The lowest and highest time stamp of the de-duplicated rows of `files` matching `cond`
    /// (`None` if there is none).
    pub fn ts_range_where(&self, files: &[Arc<LiveFile>], cond: &str) -> Result<Option<(i64, i64)>> {
        let refs: Vec<&LiveFile> = files.iter().map(|f| &**f).collect();
        let all = RowFilter { points: None, from: MIN_TS, to: MAX_TS + 1 };
        let conn = self.checkout()?;
        let sql = format!(
            "SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM {} WHERE {cond}",
            source_sql(&refs, None, &all).0
        );
        let r: (Option<i64>, Option<i64>) = conn.query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        self.checkin(conn);
        Ok(r.0.zip(r.1))
    }

    /// Streams the de-duplicated rows of `files` in `filter` (and `cond`), sorted by (point, ts),
    /// to `sink` in runs of at most `run_rows` rows; `sink` is called once per run (at least once).
    pub fn stream_rows(
        &self,
        files: &[&LiveFile],
        filter: &RowFilter<'_>,
        cond: Option<&str>,
        sink: &mut RunSink<'_>,
        run_rows: u64,
    ) -> Result<()> {
        let conn = self.checkout()?;
        let sql = format!(
            "SELECT point_id, ts, value, quality FROM {} {} ORDER BY point_id, ts",
            source_sql(files, None, filter).0,
            cond.map(|c| format!("WHERE {c}")).unwrap_or_default()
        );
        {
            let mut stmt = conn.prepare(&sql)?;
            let mut stream = stmt.stream_arrow([])?.map(|b| b.map_err(Error::from)).peekable();
            let mut pending: Option<RecordBatch> = None;
            loop {
                let mut run = RunIter { stream: &mut stream, pending: &mut pending, left: run_rows };
                sink(&mut run)?;
                if pending.is_none() && stream.peek().is_none() {
                    break;
                }
            }
        }
        self.checkin(conn);
        Ok(())
    }
}

impl QueryEngine {
    /// Every point's rows in `[from, to)` (files only) and the value in force at `from`.
    pub fn day_series(&self, snap: &Snapshot, from: i64, to: i64) -> Result<crate::query::rollups::DaySeries> {
        let conn = self.checkout()?;
        let all = crate::query::rollups::all_points_filter(from, to);
        let series = fetch_series(&conn, snap, &all, usize::MAX)?;
        let before = crate::query::rollups::all_points_filter(from - PRIOR_LOOKBACK_US, from);
        let prior =
            edge_values(&conn, snap, &before, true)?.into_iter().filter_map(|(p, (_, v))| Some((p, v?))).collect();
        self.checkin(conn);
        Ok(crate::query::rollups::DaySeries { series, prior })
    }
}

/// Receives one run of sorted rows (see [`QueryEngine::stream_rows`]).
pub(crate) type RunSink<'a> = dyn FnMut(&mut dyn Iterator<Item = Result<RecordBatch>>) -> Result<()> + 'a;

/// Up to `left` rows from a batch stream, splitting the last batch and keeping its rest.
struct RunIter<'a, I: Iterator<Item = Result<RecordBatch>>> {
    stream: &'a mut std::iter::Peekable<I>,
    pending: &'a mut Option<RecordBatch>,
    left: u64,
}

impl<I: Iterator<Item = Result<RecordBatch>>> Iterator for RunIter<'_, I> {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let batch = match self.pending.take() {
            Some(b) => b,
            None => match self.stream.next()? {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            },
        };
        let n = batch.num_rows() as u64;
        if n <= self.left {
            self.left -= n;
            Some(Ok(batch))
        } else {
            let take = self.left as usize;
            *self.pending = Some(batch.slice(take, batch.num_rows() - take));
            self.left = 0;
            Some(Ok(batch.slice(0, take)))
        }
    }
}

fn read_parquet(files: &[&LiveFile]) -> String {
    let mut s = String::from("read_parquet([");
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&sql_str(&f.path.to_string_lossy()));
    }
    s.push_str("], hive_partitioning = false)");
    s
}

/// Builds the SQL that yields `(point_id, ts, value, quality)` for `filter` over `files` (all of
/// the samples table) and, if `buffer` is set, the buffered rows (bound as `arrow(?)`, which the
/// SQL uses as many times as the second value says): one row per (point, ts), the newest source
/// winning.
///
/// Duplicates are resolved only where they can exist, so a query over a compacted store streams
/// through its files without a global GROUP BY (whose state would be the size of the store):
/// - files that [`overlapping`] names are read together and grouped by (point, ts), the file of
///   highest rank winning; maintenance compacts their days soon after;
/// - files whose ranges meet those of a day of buffered rows are anti-joined with the buffer
///   (its hash table is the size of the buffer), which wins over every file;
/// - every other file is read as it is.
fn source_sql(files: &[&LiveFile], buffer: Option<&Columns>, filter: &RowFilter<'_>) -> (String, usize) {
    // Bounds outside what a sample may hold are left out (DuckDB cannot write year 10000).
    let mut bounds = Vec::new();
    if filter.from > MIN_TS {
        bounds.push(format!("ts >= {}", ts_literal(filter.from)));
    }
    if filter.to <= MAX_TS {
        bounds.push(format!("ts < {}", ts_literal(filter.to)));
    }
    if bounds.is_empty() {
        bounds.push("true".to_string());
    }
    let mut cond = bounds.join(" AND ");
    if let Some(points) = filter.points {
        cond.push_str(" AND point_id IN (");
        for (i, p) in points.iter().enumerate() {
            if i > 0 {
                cond.push(',');
            }
            let _ = write!(cond, "{p}");
        }
        cond.push(')');
    }
    let buffered = buffer.map(buffer_days).unwrap_or_default();
    let touches_buffer = |f: &LiveFile| buffered.iter().any(|b| f.meta.meets(b));
    let metas: Vec<&FileMeta> = files.iter().map(|f| &f.meta).collect();
    let overlap = overlapping(&metas);
    let mut dirty: Vec<&LiveFile> = Vec::new();
    let (mut plain, mut shadowed) = (Vec::new(), Vec::new());
    for (f, o) in files.iter().zip(overlap) {
        match (o, touches_buffer(f)) {
            (true, _) => dirty.push(*f),
            (false, false) => plain.push(*f),
            (false, true) => shadowed.push(*f),
        }
    }
    let cols = "point_id, ts, value, quality";
    let mut uses = 0;
    let mut without_buffered = |sql: String| {
        uses += 1;
        format!("SELECT {cols} FROM ({sql}) ANTI JOIN (SELECT point_id, ts FROM arrow(?)) USING (point_id, ts)")
    };
    let mut branches = Vec::new();
    if !plain.is_empty() {
        branches.push(format!("SELECT {cols} FROM {} WHERE {cond}", read_parquet(&plain)));
    }
    if !shadowed.is_empty() {
        branches.push(without_buffered(format!("SELECT {cols} FROM {} WHERE {cond}", read_parquet(&shadowed))));
    }
    if !dirty.is_empty() {
        // Listed by rank (what the files hold, see `FileMeta::rank`), so a higher `file_index` is
        // the newer source of a row.
        dirty.sort_by_key(|f| f.meta.rank());
        let grouped = format!(
            "SELECT point_id, ts, arg_max(value, file_index) AS value, arg_max(quality, file_index) AS quality \
             FROM (SELECT {cols}, file_index FROM {} WHERE {cond}) GROUP BY point_id, ts",
            read_parquet(&dirty)
        );
        let grouped = if dirty.iter().any(|f| touches_buffer(f)) { without_buffered(grouped) } else { grouped };
        branches.push(grouped);
    }
    if buffer.is_some() {
        uses += 1;
        branches.push(format!("SELECT {cols} FROM arrow(?) WHERE {cond}"));
    }
    if branches.is_empty() {
        let none = "(SELECT 0::UINTEGER AS point_id, TIMESTAMP '1970-01-01' AS ts, 0::DOUBLE AS value, 0::UTINYINT AS quality WHERE false)";
        return (none.to_string(), 0);
    }
    (format!("({})", branches.join(" UNION ALL ")), uses)
}

/// The time and point ranges of the buffered rows of each day, as file descriptions (only the
/// ranges are set), to tell which files the buffer may shadow.
fn buffer_days(b: &Columns) -> Vec<FileMeta> {
    let mut days: BTreeMap<i32, FileMeta> = BTreeMap::new();
    for (&p, &t) in b.point.iter().zip(&b.ts) {
        let day = t.div_euclid(DAY_US) as i32;
        let m = days.entry(day).or_insert_with(|| FileMeta {
            min_ts: t,
            max_ts: t,
            min_point: p,
            max_point: p,
            ..FileMeta::new(Table::Samples, day, 0, Default::default())
        });
        (m.min_ts, m.max_ts) = (m.min_ts.min(t), m.max_ts.max(t));
        (m.min_point, m.max_point) = (m.min_point.min(p), m.max_point.max(p));
    }
    days.into_values().collect()
}

/// Runs `sql` (which may contain one `arrow(?)` per buffer use) and collects the Arrow batches.
fn query_batches(conn: &Connection, sql: &str, buffer: Option<&Columns>, uses: usize) -> Result<Vec<RecordBatch>> {
    let mut stmt = conn.prepare(sql)?;
    let batches = match buffer {
        Some(b) => {
            let reg = ArrowBatchRegistration::new(b.clone().into_batch());
            let params: Vec<&ArrowBatchRegistration> = vec![&reg; uses];
            stmt.query_arrow(duckdb::params_from_iter(params))?.collect()
        }
        None => stmt.query_arrow([])?.collect(),
    };
    Ok(batches)
}

/// The rows of each requested point in `filter`, sorted by time. Errors with
/// [`Error::TooManyRows`] past `max_rows`.
pub(super) fn fetch_series(
    conn: &Connection,
    snap: &Snapshot,
    filter: &RowFilter<'_>,
    max_rows: usize,
) -> Result<Vec<Series>> {
    let files = candidate_files(snap, filter);
    let buffer = (!snap.buffered.is_empty()).then_some(&snap.buffered);
    let (source, uses) = source_sql(&files, buffer, filter);
    let sql = format!("SELECT point_id, epoch_us(ts) AS ts, value, quality FROM {} ORDER BY point_id, ts", source);
    let batches = query_batches(conn, &sql, buffer, uses)?;
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    if total > max_rows {
        return Err(Error::TooManyRows(max_rows));
    }
    let mut out: Vec<Series> = Vec::new();
    for b in &batches {
        let p = b.column(0).as_any().downcast_ref::<UInt32Array>().ok_or_else(|| bad_type("point_id"))?;
        let t = b.column(1).as_any().downcast_ref::<Int64Array>().ok_or_else(|| bad_type("ts"))?;
        let v = b.column(2).as_any().downcast_ref::<Float64Array>().ok_or_else(|| bad_type("value"))?;
        let q = b.column(3).as_any().downcast_ref::<UInt8Array>().ok_or_else(|| bad_type("quality"))?;
        for i in 0..b.num_rows() {
            let point = p.value(i);
            if out.last().is_none_or(|s| s.point_id != point) {
                out.push(Series::new(point));
            }
            out.last_mut().expect("pushed above").push(t.value(i), v.value(i), q.value(i));
        }
    }
    Ok(out)
}

fn bad_type(col: &str) -> Error {
    Error::Internal(format!("unexpected Arrow type for column {col}"))
}

/// The last (or first) row per point in `filter`, with its value if that row is usable (a bad
/// sample there means the value is unknown, not that an older one still holds).
pub(super) fn edge_values(
    conn: &Connection,
    snap: &Snapshot,
    filter: &RowFilter<'_>,
    last: bool,
) -> Result<HashMap<u32, (i64, Option<f64>)>> {
    let files = candidate_files(snap, filter);
    let buffer = (!snap.buffered.is_empty()).then_some(&snap.buffered);
    let (pick_ts, pick) = if last { ("max", "arg_max") } else { ("min", "arg_min") };
    let (source, uses) = source_sql(&files, buffer, filter);
    let sql = format!(
        "SELECT point_id, {pick_ts}(epoch_us(ts)), {pick}(value, ts), {pick}(quality, ts) FROM {} GROUP BY point_id",
        source
    );
    let mut out = HashMap::new();
    for b in query_batches(conn, &sql, buffer, uses)? {
        let p = b.column(0).as_any().downcast_ref::<UInt32Array>().ok_or_else(|| bad_type("point_id"))?;
        let t = b.column(1).as_any().downcast_ref::<Int64Array>().ok_or_else(|| bad_type("ts"))?;
        let v = b.column(2).as_any().downcast_ref::<Float64Array>().ok_or_else(|| bad_type("value"))?;
        let q = b.column(3).as_any().downcast_ref::<UInt8Array>().ok_or_else(|| bad_type("quality"))?;
        for i in 0..b.num_rows() {
            let value = analytics::usable(v.value(i), q.value(i)).then(|| v.value(i));
            out.insert(p.value(i), (t.value(i), value));
        }
    }
    Ok(out)
}

/// The one statement of a SQL text: white space and trailing semicolons trimmed off; an empty
/// text, or one with a `;` inside, is refused.
pub fn sql_statement(text: &str) -> Result<&str> {
    let body = text.trim().trim_end_matches(';').trim();
    if body.is_empty() {
        return Err(Error::InvalidQuery("empty query".into()));
    }
    if body.contains(';') {
        return Err(Error::InvalidQuery("one statement only".into()));
    }
    Ok(body)
}

impl QueryEngine {
    /// A slot for a user SQL query, waited for until `deadline` (then [`Error::Timeout`] of `limit`).
    pub(crate) async fn sql_slot(
        &self,
        limit: Duration,
        deadline: Instant,
    ) -> Result<tokio::sync::OwnedSemaphorePermit> {
        match tokio::time::timeout_at(deadline, self.sql_slots.clone().acquire_owned()).await {
            Ok(slot) => slot.map_err(|e| Error::Internal(format!("SQL slots: {e}"))),
            Err(_) => Err(Error::Timeout(limit.as_millis() as u64)),
        }
    }

    /// Runs the user SQL statement `body` over `snap` (views `samples`, `rollups_1m`, `rollups_1h`)
    /// in the instance that may read exactly its files, holding `slot`, answering at most
    /// `limit_rows` rows (`partial` passed on), within `limit` ending at `deadline`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run_sql(
        self: &Arc<Self>,
        snap: Snapshot,
        body: &str,
        limit_rows: usize,
        partial: bool,
        limit: Duration,
        deadline: Instant,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<SqlResult> {
        let all = RowFilter { points: None, from: MIN_TS, to: MAX_TS + 1 };
        // Only a SELECT (or VALUES / FROM-first query) can stand as a subquery, so the wrapper
        // refuses COPY, ATTACH, INSTALL, PRAGMA, SET and every write at parse time.
        let wrapped = format!("SELECT * FROM (\n{body}\n) AS q LIMIT {}", limit_rows + 1);
        let engine = self.clone();
        run_watched(limit, deadline, Some(slot), move |watch| {
            let samples: Vec<&LiveFile> =
                snap.files.iter().map(|f| &**f).filter(|f| f.meta.table == Table::Samples).collect();
            let rollups: Vec<(Table, Vec<Arc<LiveFile>>)> = crate::query::rollups::TABLES
                .into_iter()
                .map(|(table, _)| (table, crate::query::rollups::fresh_rollups(&snap.files, table)))
                .collect();
            let readable: Vec<&Path> = samples
                .iter()
                .map(|f| f.path.as_path())
                .chain(rollups.iter().flat_map(|(_, fs)| fs.iter().map(|f| f.path.as_path())))
                .collect();
            let instance = engine.sql_instance(&readable)?;
            watch.check()?;
            let conn = instance.pool.checkout()?;
            watch.attach(&conn)?;
            let buffer = (!snap.buffered.is_empty()).then_some(&snap.buffered);
            let reg = buffer.map(|b| ArrowBatchRegistration::new(b.clone().into_batch()));
            let result = (|| {
                let (source, _) = source_sql(&samples, buffer, &all);
                // Views live in this connection's temporary catalog; the buffer is bound by token.
                let source = match &reg {
                    Some(r) => {
                        let token: u64 = conn.query_row("SELECT ?::UBIGINT", [r], |row| row.get(0))?;
                        source.replace("arrow(?)", &format!("arrow({token}::UBIGINT)"))
                    }
                    None => source,
                };
                let mut views = format!("CREATE OR REPLACE TEMP VIEW samples AS SELECT * FROM {source};");
                for (table, files) in &rollups {
                    let refs: Vec<&LiveFile> = files.iter().map(|f| &**f).collect();
                    let body = if refs.is_empty() {
                        "SELECT 0::UINTEGER AS point_id, TIMESTAMP '1970-01-01' AS ts, 0::UBIGINT AS count, NULL::DOUBLE AS min, NULL::DOUBLE AS max, NULL::DOUBLE AS avg, NULL::DOUBLE AS first, NULL::DOUBLE AS last, NULL::DOUBLE AS twa, 0::BIGINT AS covered_us WHERE false".to_string()
                    } else {
                        format!("SELECT * FROM {}", read_parquet(&refs))
                    };
                    let _ = write!(views, "CREATE OR REPLACE TEMP VIEW {} AS {body};", table.dir_name());
                }
                conn.execute_batch(&views)?;
                watch.check()?;
                run_user_sql(&conn, &wrapped, limit_rows).map(|r| SqlResult { partial, ..r })
            })();
            drop(reg);
            if watch.is_cancelled() {
                return Err(Error::Timeout(watch.limit_ms));
            }
            instance.pool.checkin(conn);
            result
        })
        .await
    }
}

/// Rollup rows of `points` in `files`, through DuckDB.
pub(super) fn rollup_rows_sql(
    conn: &Connection,
    files: &[&LiveFile],
    points: &[u32],
    window: (i64, i64),
) -> Result<Vec<(u32, i64, analytics::Partial)>> {
    let sql = format!(
        "SELECT point_id, epoch_us(ts), count, min, max, avg, first, last, twa, covered_us FROM {} WHERE point_id IN ({}) AND ts >= {} AND ts < {}",
        read_parquet(files),
        points.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(","),
        ts_literal(window.0),
        ts_literal(window.1)
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let p = crate::query::rollups::partial_of(
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
        );
        out.push((r.get(0)?, r.get(1)?, p));
    }
    Ok(out)
}

fn run_user_sql(conn: &Connection, sql: &str, limit: usize) -> Result<SqlResult> {
    let mut stmt = conn.prepare(sql).map_err(|e| Error::InvalidQuery(e.to_string()))?;
    let batches: Vec<RecordBatch> = stmt.query_arrow([]).map_err(|e| Error::InvalidQuery(e.to_string()))?.collect();
    let schema = stmt.schema();
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut rows = Vec::new();
    let mut truncated = false;
    'outer: for b in &batches {
        let arrays: Vec<_> = b.columns().to_vec();
        for i in 0..b.num_rows() {
            if rows.len() == limit {
                truncated = true;
                break 'outer;
            }
            rows.push(arrays.iter().map(|a| cell(a.as_ref(), i)).collect());
        }
    }
    Ok(SqlResult { columns, rows, truncated, partial: false })
}

/// One Arrow cell as the JSON value the SQL endpoint answers with (numbers as numbers, a NaN or
/// infinity as null, anything else as DuckDB's text form).
pub fn cell(a: &dyn Array, i: usize) -> serde_json::Value {
    use arrow::datatypes::DataType as D;
    use serde_json::Value;
    if a.is_null(i) {
        return Value::Null;
    }
    macro_rules! num {
        ($t:ty) => {
            a.as_any().downcast_ref::<$t>().map(|x| serde_json::json!(x.value(i))).unwrap_or(Value::Null)
        };
    }
    match a.data_type() {
        D::Boolean => num!(arrow::array::BooleanArray),
        D::Int8 => num!(arrow::array::Int8Array),
        D::Int16 => num!(arrow::array::Int16Array),
        D::Int32 => num!(arrow::array::Int32Array),
        D::Int64 => num!(arrow::array::Int64Array),
        D::UInt8 => num!(arrow::array::UInt8Array),
        D::UInt16 => num!(arrow::array::UInt16Array),
        D::UInt32 => num!(arrow::array::UInt32Array),
        D::UInt64 => num!(arrow::array::UInt64Array),
        D::Float32 => num!(arrow::array::Float32Array),
        D::Float64 => {
            let v = a.as_any().downcast_ref::<Float64Array>().map(|x| x.value(i)).unwrap_or(f64::NAN);
            serde_json::Number::from_f64(v).map(Value::Number).unwrap_or(Value::Null)
        }
        _ => match arrow::util::display::array_value_to_string(a, i) {
            Ok(s) => Value::String(s),
            Err(_) => Value::Null,
        },
    }
}
