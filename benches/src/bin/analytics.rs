//! Building-analytics SQL: eight questions a facility engineer asks of three years of trend data
//! (and the seventh written a second way, as three aggregates), each run through our SQL endpoint's engine (`Storage::sql`, the views `samples` and
//! `rollups_1h`) and against the same rows in a native DuckDB table, side by side.
//!
//! The store of P points x D days at a 1-minute interval is built through `Storage::ingest` with the
//! engine's background flusher running, flushed, and maintained (compaction, rollups) until a pass
//! has nothing left to do: the steady state a server reaches. DuckDB gets the same rows through its
//! appender, and our hourly rollups as a native table. Each (question, system) runs in its own child
//! process (this binary with `--child`), so the peak RSS is that of one question on one system.
//! Stores are cached under `--work-dir` and reused by later runs unless `--rebuild`.

#![forbid(unsafe_code)]

use anyhow::{Context, bail};
use arrow::record_batch::RecordBatch;
use chrono::{Datelike, NaiveDate};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;
use t3_benches::args::Args;
use t3_benches::datagen::{DAY_US, Kind, START_US, Workload};
use t3_benches::report::{self, Table, bytes, count, ms, rate, ratio};
use t3_benches::stats::median;
use t3_benches::{cache, duck, ours, sys};
use t3_core::clock::ManualClock;
use t3_core::config::Config;
use t3_storage::Storage;
use t3_storage::maintenance::MaintenanceReport;
use t3_storage::manifest::Table as StoreTable;
use t3_storage::vfs::RealFs;

/// `storage.page_rows` of our store: pages twice the default, which scan about 20% faster (a
/// site that runs such SQL more than it draws one-point trends would set this).
const PAGE_ROWS: usize = 16_384;

/// The suffix of a cached store's completion marker.
const MARKER: &str = ".built";

const USAGE: &str = "\
analytics: building-analytics SQL, our SQL engine (Storage::sql) vs the same rows in a native DuckDB table

cargo run --release -p t3-benches --bin analytics -- [options]
  --points P               points (default 1000; every 10 form a zone: 4 rooms, occupancy, power meter, ...)
  --days D                 days at a 1-minute interval from 2024-01-01 (default 1096: 1.58 billion samples)
  --runs N                 timed runs per question after one warm-up run (default 3)
  --max-secs-per-query S   stop timing a question once its timed runs have taken S seconds (at least
                           one timed run is always made; default 300)
  --memory-limit-mb M      query.memory_limit_mb of ours and DuckDB's memory_limit (default: our default, 2048)
  --threads T              query.threads of ours and DuckDB's threads (default: our default, 2)
  --timeout-secs S         query.sql_timeout_ms of ours, in seconds (default 900)
  --queries LIST           comma-separated subset of q1..q9 (default all)
  --work-dir DIR           cache of generated stores (default $HOME/.cache/t3000/bench-data)
  --rebuild                rebuild both stores even if cached
  --rebuild-ours           rebuild only our store (after a change to the storage engine); reuse DuckDB's
  --no-disk-check          build even if the free space looks too small for the estimate
  --build-only             build (or find) the stores and stop
  --out NAME               write the report to benches/results/NAME.md (default analytics)";

const KEYS: &[&str] = &[
    "points",
    "days",
    "runs",
    "max-secs-per-query",
    "memory-limit-mb",
    "threads",
    "timeout-secs",
    "queries",
    "work-dir",
    "out",
    // Child processes only.
    "child",
    "query",
    "answer-file",
];
const FLAGS: &[&str] = &["rebuild", "rebuild-ours", "no-disk-check", "build-only"];

/// Bumped whenever the generator, the build or the store layout changes, so stale caches are not reused.
const DATA_VERSION: &str = "a2";
/// Samples per ingest call / appender batch while building.
const BUILD_BATCH: u64 = 100_000;
/// Concurrent writer tasks while building ours.
const WRITERS: usize = 4;
/// Rows our SQL endpoint may return (`query.sql_max_rows`); the largest answer here is 109,600 rows.
const SQL_MAX_ROWS: usize = 1_000_000;
/// Target of the issue: ours within this factor of DuckDB's native table.
const TARGET_RATIO: f64 = 1.5;
/// Answers agree when numbers differ by at most this much, relatively (sums in a different order).
const REL_TOLERANCE: f64 = 1e-9;
/// Disk estimates per sample, from the 100 x 30 run (5.2 and 7.9 bytes, rounded up): ours
/// (samples, 1-minute and 1-hour rollups; the WAL is gone after the flush) and DuckDB (samples and
/// hourly rollups; less per sample on bigger tables).
const OURS_BYTES_PER_SAMPLE: f64 = 5.5;
const DUCK_BYTES_PER_SAMPLE: f64 = 8.0;

#[derive(Debug, Clone)]
struct Params {
    points: u32,
    days: u32,
    runs: usize,
    max_secs_per_query: f64,
    memory_limit_mb: u64,
    threads: usize,
    timeout_secs: u64,
    queries: Vec<String>,
    work_dir: PathBuf,
    rebuild: bool,
    rebuild_ours: bool,
    no_disk_check: bool,
    out: String,
}

impl Params {
    fn from(a: &Args) -> anyhow::Result<Params> {
        let defaults = Config::default().query;
        let all: Vec<String> = questions(1, 1).iter().map(|q| q.id.to_string()).collect();
        let queries: Vec<String> = match a.string("queries") {
            Some(s) => s.split(',').map(|x| x.trim().to_ascii_lowercase()).filter(|x| !x.is_empty()).collect(),
            None => all.clone(),
        };
        for q in &queries {
            if !all.contains(q) {
                bail!("unknown query `{q}` (expected one of {})", all.join(", "));
            }
        }
        let p = Params {
            points: a.get("points", 1000)?,
            days: a.get("days", 1096)?,
            runs: a.get("runs", 3)?,
            max_secs_per_query: a.get("max-secs-per-query", 300.0)?,
            memory_limit_mb: a.get("memory-limit-mb", defaults.memory_limit_mb)?,
            threads: a.get("threads", defaults.threads)?,
            timeout_secs: a.get("timeout-secs", 900)?,
            queries,
            work_dir: a.opt::<PathBuf>("work-dir")?.unwrap_or_else(sys::default_work_dir),
            rebuild: a.flag("rebuild"),
            rebuild_ours: a.flag("rebuild-ours"),
            no_disk_check: a.flag("no-disk-check"),
            out: a.string("out").unwrap_or_else(|| "analytics".into()),
        };
        if p.points == 0 || p.days == 0 || p.runs == 0 || p.threads == 0 {
            bail!("--points, --days, --runs and --threads must be positive");
        }
        if !(64..=1_048_576).contains(&p.memory_limit_mb) {
            bail!("--memory-limit-mb must be within 64 ..= 1048576 (query.memory_limit_mb's range)");
        }
        if !(1..=3600).contains(&p.timeout_secs) {
            bail!("--timeout-secs must be within 1 ..= 3600 (query.sql_timeout_ms's range)");
        }
        Ok(p)
    }

    /// The options a child needs to ask the same question of the same store.
    fn child_args(&self) -> Vec<String> {
        vec![
            "--points".into(),
            self.points.to_string(),
            "--days".into(),
            self.days.to_string(),
            "--runs".into(),
            self.runs.to_string(),
            "--max-secs-per-query".into(),
            self.max_secs_per_query.to_string(),
            "--memory-limit-mb".into(),
            self.memory_limit_mb.to_string(),
            "--threads".into(),
            self.threads.to_string(),
            "--timeout-secs".into(),
            self.timeout_secs.to_string(),
            "--work-dir".into(),
            self.work_dir.display().to_string(),
        ]
    }

    fn samples(&self) -> u64 {
        self.points as u64 * self.days as u64 * 1440
    }

    /// End (exclusive) of the data.
    fn end_us(&self) -> i64 {
        START_US + self.days as i64 * DAY_US
    }

    /// What our engine's clock says: one hour after the last sample (all days are over).
    fn now_us(&self) -> i64 {
        self.end_us() + 3_600_000_000
    }

    fn ours_path(&self) -> PathBuf {
        self.work_dir.join(format!("{DATA_VERSION}-analytics-ours-p{}-d{}", self.points, self.days))
    }

    fn duck_path(&self) -> PathBuf {
        self.work_dir.join(format!("{DATA_VERSION}-analytics-duckdb-p{}-d{}.duckdb", self.points, self.days))
    }

    /// Our configuration: defaults, with the query limits of this run.
    fn ours_config(&self) -> Config {
        let mut cfg = ours::config(&self.ours_path());
        cfg.query.memory_limit_mb = self.memory_limit_mb;
        cfg.query.threads = self.threads;
        cfg.query.sql_timeout_ms = self.timeout_secs * 1000;
        cfg.query.sql_max_rows = SQL_MAX_ROWS;
        cfg.storage.page_rows = PAGE_ROWS;
        cfg
    }
}

fn open_ours(p: &Params, clock: Arc<ManualClock>) -> anyhow::Result<Storage> {
    Storage::open(&p.ours_config(), Arc::new(RealFs), clock)
        .with_context(|| format!("open storage in {}", p.ours_path().display()))
}

fn open_duck(p: &Params) -> anyhow::Result<duckdb::Connection> {
    let config =
        duckdb::Config::default().threads(p.threads as i64)?.max_memory(&format!("{}MB", p.memory_limit_mb))?;
    Ok(duckdb::Connection::open_with_flags(p.duck_path(), config)?)
}

// ---------------------------------------------------------------------------------------------
// Point metadata and the questions

/// A point's metadata, as a building's point list has it.
struct PointMeta {
    name: String,
    kind: &'static str,
    zone: String,
    room: Option<String>,
    unit: &'static str,
    high_limit: Option<&'static str>,
}

fn point_meta(wl: &Workload, id: u32) -> PointMeta {
    let zone_no = (id - 1) / 10 + 1;
    let zone = format!("Z{zone_no:03}");
    let floor = (zone_no - 1) / 10 + 1;
    let m = |name: String, kind, unit, room: Option<String>, high_limit| PointMeta {
        name,
        kind,
        zone: zone.clone(),
        room,
        unit,
        high_limit,
    };
    match wl.kind(id) {
        Kind::RoomTemp => {
            let room = format!("{floor:02}.{:02}", ((zone_no - 1) % 10) * 4 + (id - 1) % 10 + 1);
            m(format!("Room {room} temperature"), "room_temp", "°C", Some(room), Some("24.0"))
        }
        Kind::Occupancy => m(format!("{zone} occupancy"), "occupancy", "state", None, None),
        Kind::Power => m(format!("{zone} electricity meter"), "power", "kW", None, None),
        Kind::Co2 => m(format!("{zone} CO2"), "co2", "ppm", None, Some("1000.0")),
        Kind::Valve => m(format!("{zone} heating valve"), "valve", "%", None, None),
        Kind::SupplyAir => m(format!("{zone} supply air temperature"), "supply_air", "°C", None, None),
        Kind::Fan => m(format!("{zone} fan status"), "fan", "state", None, None),
        Kind::Humidity => m(format!("{zone} humidity"), "humidity", "%", None, Some("60.0")),
        Kind::Alarm => m(format!("{zone} alarm"), "alarm", "state", None, None),
    }
}

/// `points(point_id, name, kind, zone, room, unit, high_limit) AS (VALUES ...)`: the point list,
/// given to both systems in the query text.
fn points_cte(points: u32) -> String {
    let wl = Workload::analytics(points);
    let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut s = String::from("points(point_id, name, kind, zone, room, unit, high_limit) AS (VALUES\n");
    for id in 1..=points {
        let m = point_meta(&wl, id);
        let _ = writeln!(
            s,
            "    ({id}, {}, {}, {}, {}, {}, {}){}",
            q(&m.name),
            q(m.kind),
            q(&m.zone),
            m.room.as_deref().map(q).unwrap_or_else(|| "NULL".into()),
            q(m.unit),
            m.high_limit.unwrap_or("NULL"),
            if id == points { "" } else { "," }
        );
    }
    s.push(')');
    s
}

fn ts_lit(us: i64) -> String {
    let dt = chrono::DateTime::from_timestamp_micros(us).unwrap_or_default();
    format!("TIMESTAMP '{}'", dt.naive_utc().format("%Y-%m-%d %H:%M:%S"))
}

fn date_us(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_micros()
}

fn day_text(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).unwrap_or_default().format("%Y-%m-%d").to_string()
}

/// A time window `[from, to)` with a description.
#[derive(Debug, Clone)]
struct Window {
    from: i64,
    to: i64,
    label: String,
}

impl Window {
    fn between(from: i64, to: i64, what: &str) -> Window {
        Window { from, to, label: format!("{what} ({} .. {})", day_text(from), day_text(to - 1)) }
    }
}

/// The windows the questions use, from the data's extent.
#[derive(Debug, Clone)]
struct Windows {
    /// The last full calendar month, else the last 30 days.
    month: Window,
    /// The last full calendar year, else all the data.
    year: Window,
    /// The last 90 days.
    recent: Window,
}

impl Windows {
    fn new(days: u32) -> Windows {
        let start = START_US;
        let end = start + days as i64 * DAY_US;
        let end_date = chrono::DateTime::from_timestamp_micros(end).unwrap_or_default().date_naive();
        let month_end = end_date.with_day(1).expect("day 1");
        let month_start = month_end - chrono::Months::new(1);
        let month = if date_us(month_start) >= start {
            Window::between(date_us(month_start), date_us(month_end), "last full month")
        } else {
            let from = (end - 30 * DAY_US).max(start);
            Window::between(from, end, "last 30 days (no full month in the data)")
        };
        let year_end = NaiveDate::from_ymd_opt(end_date.year(), 1, 1).expect("Jan 1");
        let year_start = NaiveDate::from_ymd_opt(end_date.year() - 1, 1, 1).expect("Jan 1");
        let year = if date_us(year_start) >= start {
            Window::between(date_us(year_start), date_us(year_end), "last full year")
        } else {
            Window::between(start, end, "all the data (no full year in it)")
        };
        let recent = Window::between((end - 90 * DAY_US).max(start), end, "last 90 days");
        Windows { month, year, recent }
    }
}

/// One question: the same SQL text runs on both systems.
#[derive(Debug, Clone)]
struct Question {
    id: &'static str,
    title: String,
    sql: String,
}

fn questions(points: u32, days: u32) -> Vec<Question> {
    let w = Windows::new(days);
    let pts = points_cte(points);
    let (m0, m1) = (ts_lit(w.month.from), ts_lit(w.month.to));
    let (y0, y1) = (ts_lit(w.year.from), ts_lit(w.year.to));
    let (r0, r1) = (ts_lit(w.recent.from), ts_lit(w.recent.to));
    let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let pivot: Vec<String> = months
        .iter()
        .enumerate()
        .map(|(i, m)| format!("       sum(s.value) FILTER (WHERE month(s.ts) = {}) / 60.0 AS {m},", i + 1))
        .collect();
    vec![
        Question {
            id: "q1",
            title: "Count and average over all samples".into(),
            sql: "SELECT count(*) AS samples, avg(value) AS avg_value FROM samples".into(),
        },
        Question {
            id: "q2",
            title: "Daily energy per meter, kWh: integral of the power (kW) held until the next sample (at most 15 min)"
                .into(),
            sql: format!(
                "WITH {pts},
meters AS (SELECT point_id, name FROM points WHERE kind = 'power'),
steps AS (
    SELECT point_id, ts, value, lead(ts) OVER (PARTITION BY point_id ORDER BY ts) AS next_ts
    FROM samples
    WHERE point_id IN (SELECT point_id FROM meters)
)
SELECT m.name AS meter, CAST(s.ts AS DATE) AS day,
       sum(s.value * least(date_diff('second', s.ts, s.next_ts), 900)) / 3600.0 AS kwh
FROM steps s JOIN meters m USING (point_id)
WHERE s.next_ts IS NOT NULL
GROUP BY ALL
ORDER BY meter, day"
            ),
        },
        Question {
            id: "q3",
            title: format!("The 10 hottest rooms, {}", w.month.label),
            sql: format!(
                "WITH {pts}
SELECT p.room, avg(s.value) AS avg_temp, max(s.value) AS max_temp
FROM samples s JOIN points p USING (point_id)
WHERE p.kind = 'room_temp' AND s.ts >= {m0} AND s.ts < {m1}
GROUP BY p.room
ORDER BY avg_temp DESC, p.room
LIMIT 10"
            ),
        },
        Question {
            id: "q4",
            title: "Hours above the point's high limit (rooms 24 °C, CO2 1000 ppm), per point, all the data".into(),
            sql: format!(
                "WITH {pts}
SELECT p.name, p.unit, p.high_limit,
       count(*) FILTER (WHERE s.value > p.high_limit) / 60.0 AS hours_above,
       max(s.value) AS peak
FROM samples s JOIN points p USING (point_id)
WHERE p.high_limit IS NOT NULL
GROUP BY ALL
ORDER BY hours_above DESC, p.name"
            ),
        },
        Question {
            id: "q5",
            title: "Occupied hours per zone and month, from the occupancy sensor (0/1, each state held until the next sample)"
                .into(),
            sql: format!(
                "WITH {pts},
sensors AS (SELECT point_id, zone FROM points WHERE kind = 'occupancy'),
steps AS (
    SELECT point_id, ts, value, lead(ts) OVER (PARTITION BY point_id ORDER BY ts) AS next_ts
    FROM samples
    WHERE point_id IN (SELECT point_id FROM sensors)
)
SELECT z.zone, date_trunc('month', s.ts) AS month,
       sum(least(date_diff('second', s.ts, s.next_ts), 900)) FILTER (WHERE s.value = 1) / 3600.0 AS occupied_hours
FROM steps s JOIN sensors z USING (point_id)
WHERE s.next_ts IS NOT NULL
GROUP BY ALL
ORDER BY z.zone, month"
            ),
        },
        Question {
            id: "q6",
            title: format!("Hourly rollups joined with the point list: time-weighted mean, min, max per zone and kind, {}", w.year.label),
            sql: format!(
                "WITH {pts}
SELECT p.zone, p.kind, p.unit,
       sum(r.twa * r.covered_us) / sum(r.covered_us) AS time_weighted_avg,
       min(r.min) AS min_value, max(r.max) AS max_value, sum(r.count) AS samples
FROM rollups_1h r JOIN points p USING (point_id)
WHERE r.ts >= {y0} AND r.ts < {y1} AND r.twa IS NOT NULL
GROUP BY ALL
ORDER BY p.zone, p.kind"
            ),
        },
        Question {
            id: "q7",
            title: format!("Percentiles (5, 50, 95) of all room temperatures per day, {}", w.recent.label),
            // One aggregate with a list of fractions keeps one copy of the values per day; see q9.
            sql: format!(
                "WITH {pts}
SELECT day, q[1] AS p05, q[2] AS p50, q[3] AS p95, samples
FROM (
    SELECT CAST(s.ts AS DATE) AS day, quantile_cont(s.value, [0.05, 0.5, 0.95]) AS q, count(*) AS samples
    FROM samples s
    WHERE s.point_id IN (SELECT point_id FROM points WHERE kind = 'room_temp')
      AND s.ts >= {r0} AND s.ts < {r1}
    GROUP BY day
)
ORDER BY day"
            ),
        },
        Question {
            id: "q8",
            title: format!("Monthly energy per meter (kWh, 1-minute kW samples / 60), pivoted to one column per month, {}", w.year.label),
            sql: format!(
                "WITH {pts}
SELECT p.name AS meter,
{}
       sum(s.value) / 60.0 AS total
FROM samples s JOIN points p USING (point_id)
WHERE p.kind = 'power' AND s.ts >= {y0} AND s.ts < {y1}
GROUP BY p.name
ORDER BY p.name",
                pivot.join("\n")
            ),
        },
        Question {
            id: "q9",
            title: format!(
                "Q7 written with three quantile aggregates (each keeps its own copy of the values), {}",
                w.recent.label
            ),
            sql: format!(
                "WITH {pts}
SELECT CAST(s.ts AS DATE) AS day,
       quantile_cont(s.value, 0.05) AS p05, quantile_cont(s.value, 0.5) AS p50,
       quantile_cont(s.value, 0.95) AS p95, count(*) AS samples
FROM samples s
WHERE s.point_id IN (SELECT point_id FROM points WHERE kind = 'room_temp')
  AND s.ts >= {r0} AND s.ts < {r1}
GROUP BY day
ORDER BY day"
            ),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Answers

/// A query's answer: column names and rows of JSON cells (numbers, strings, null), as our SQL
/// endpoint answers.
#[derive(Debug, Clone, Default)]
struct Answer {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
    truncated: bool,
}

impl Answer {
    fn to_json(&self) -> Value {
        serde_json::json!({ "columns": self.columns, "rows": self.rows, "truncated": self.truncated })
    }

    fn from_json(v: Value) -> anyhow::Result<Answer> {
        let Value::Object(mut o) = v else { bail!("an answer is a JSON object") };
        let columns = match o.remove("columns") {
            Some(Value::Array(c)) => c.into_iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect(),
            _ => bail!("answer without columns"),
        };
        let rows = match o.remove("rows") {
            Some(Value::Array(r)) => r
                .into_iter()
                .map(|row| match row {
                    Value::Array(cells) => Ok(cells),
                    _ => bail!("a row is an array"),
                })
                .collect::<anyhow::Result<_>>()?,
            _ => bail!("answer without rows"),
        };
        Ok(Answer { columns, rows, truncated: o.get("truncated").and_then(Value::as_bool).unwrap_or(false) })
    }
}

/// DuckDB's Arrow batches as cells, converted by the function `Storage::sql` converts with.
fn arrow_answer(batches: &[RecordBatch], columns: Vec<String>) -> Answer {
    let mut rows = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            rows.push(b.columns().iter().map(|a| t3_storage::query::cell(a.as_ref(), i)).collect());
        }
    }
    Answer { columns, rows, truncated: false }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn cells_agree(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (as_number(a), as_number(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= REL_TOLERANCE * x.abs().max(y.abs()).max(1e-9),
        _ => false,
    }
}

/// `None` when both answers agree (same columns, same rows in the same order, numbers within
/// [`REL_TOLERANCE`]); else the first difference.
fn compare(ours: &Answer, theirs: &Answer) -> Option<String> {
    if ours.columns != theirs.columns {
        return Some(format!("columns differ: {:?} vs {:?}", ours.columns, theirs.columns));
    }
    if ours.truncated || theirs.truncated {
        return Some("an answer was cut at query.sql_max_rows".into());
    }
    if ours.rows.len() != theirs.rows.len() {
        return Some(format!("{} rows vs {} rows", ours.rows.len(), theirs.rows.len()));
    }
    for (i, (a, b)) in ours.rows.iter().zip(&theirs.rows).enumerate() {
        if a.len() != b.len() || a.iter().zip(b).any(|(x, y)| !cells_agree(x, y)) {
            return Some(format!("row {i} differs: ours {a:?}, DuckDB {b:?}"));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Child: one question on one system

/// What a child measured, passed to the parent as `RESULT<TAB>key<TAB>value` lines.
#[derive(Debug, Clone, Default)]
struct Measured {
    ok: bool,
    error: String,
    open_ms: f64,
    warmup_ms: f64,
    runs_ms: Vec<f64>,
    rows: usize,
    rss_open: u64,
    peak_rss: u64,
}

impl Measured {
    fn print(&self) {
        println!("RESULT\tstatus\t{}", if self.ok { "ok" } else { "error" });
        println!("RESULT\terror\t{}", self.error.replace(['\n', '\t'], " "));
        println!("RESULT\topen_ms\t{}", self.open_ms);
        println!("RESULT\twarmup_ms\t{}", self.warmup_ms);
        println!("RESULT\truns_ms\t{}", self.runs_ms.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","));
        println!("RESULT\trows\t{}", self.rows);
        println!("RESULT\trss_open\t{}", self.rss_open);
        println!("RESULT\tpeak_rss\t{}", self.peak_rss);
    }

    fn parse(stdout: &str) -> Option<Measured> {
        let kv: HashMap<&str, &str> =
            stdout.lines().filter_map(|l| l.strip_prefix("RESULT\t")).filter_map(|l| l.split_once('\t')).collect();
        let status = *kv.get("status")?;
        let f = |k: &str| kv.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
        let u = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        Some(Measured {
            ok: status == "ok",
            error: kv.get("error").unwrap_or(&"").to_string(),
            open_ms: f("open_ms"),
            warmup_ms: f("warmup_ms"),
            runs_ms: kv
                .get("runs_ms")
                .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
                .unwrap_or_default(),
            rows: u("rows") as usize,
            rss_open: u("rss_open"),
            peak_rss: u("peak_rss"),
        })
    }

    fn median_ms(&self) -> f64 {
        let mut v = self.runs_ms.clone();
        v.sort_by(f64::total_cmp);
        median(&v)
    }
}

/// Runs `f` once to warm up, then timed until `--runs` runs or `--max-secs-per-query` (at least one
/// timed run). Stops at the first error.
fn measure(p: &Params, m: &mut Measured, mut f: impl FnMut() -> anyhow::Result<Answer>) -> Option<Answer> {
    let t = Instant::now();
    let mut last = match f() {
        Ok(a) => a,
        Err(e) => {
            m.warmup_ms = t.elapsed().as_secs_f64() * 1e3;
            m.error = format!("{e:#}");
            return None;
        }
    };
    m.warmup_ms = t.elapsed().as_secs_f64() * 1e3;
    let budget = Instant::now();
    while m.runs_ms.len() < p.runs && (m.runs_ms.is_empty() || budget.elapsed().as_secs_f64() < p.max_secs_per_query) {
        let t = Instant::now();
        match f() {
            Ok(a) => last = a,
            Err(e) => {
                m.error = format!("timed run {}: {e:#}", m.runs_ms.len() + 1);
                return None;
            }
        }
        m.runs_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    m.ok = true;
    m.rows = last.rows.len();
    Some(last)
}

fn run_child(p: &Params, system: &str, question: &Question, answer_file: &Path) -> anyhow::Result<Measured> {
    let mut m = Measured::default();
    let answer = match system {
        "ours" => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let t = Instant::now();
            let storage = open_ours(p, ManualClock::new(p.now_us()))?;
            m.open_ms = t.elapsed().as_secs_f64() * 1e3;
            m.rss_open = sys::current_rss();
            let a = measure(p, &mut m, || {
                let r = rt.block_on(storage.sql(&question.sql))?;
                Ok(Answer { columns: r.columns, rows: r.rows, truncated: r.truncated })
            });
            rt.block_on(storage.shutdown())?;
            a
        }
        "duckdb" => {
            let t = Instant::now();
            let conn = open_duck(p)?;
            m.open_ms = t.elapsed().as_secs_f64() * 1e3;
            m.rss_open = sys::current_rss();
            measure(p, &mut m, || {
                let mut stmt = conn.prepare(&question.sql)?;
                let batches: Vec<RecordBatch> = stmt.query_arrow([])?.collect();
                let schema = stmt.schema();
                let columns = schema.fields().iter().map(|f| f.name().clone()).collect();
                // Converting to cells is outside the timing for DuckDB (its native result is Arrow);
                // ours converts to JSON inside `Storage::sql`, as the endpoint answers.
                Ok(arrow_answer(&batches, columns))
            })
        }
        other => bail!("unknown system `{other}`"),
    };
    if let Some(a) = answer {
        std::fs::write(answer_file, serde_json::to_vec(&a.to_json())?)?;
    }
    m.peak_rss = sys::peak_rss();
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// Building the stores

/// Free bytes on the file system holding `dir` (`df -Pk`).
fn free_bytes(dir: &Path) -> anyhow::Result<u64> {
    let out = Command::new("df").arg("-Pk").arg(dir).output().context("run df")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1).context("df printed no file system")?;
    let kb: u64 = line.split_whitespace().nth(3).context("df: no Available column")?.parse()?;
    Ok(kb * 1024)
}

fn progress(what: &str, day: u32, days: u32, t0: Instant) {
    if day + 1 == days || (day + 1).is_multiple_of(30) {
        eprintln!("[analytics]   {what}: day {}/{} ({:.0} s)", day + 1, days, t0.elapsed().as_secs_f64());
    }
}

/// A built (or reused) store and what its build took.
#[derive(Debug, Clone, Default)]
struct Built {
    reused: bool,
    fields: HashMap<String, String>,
    disk: u64,
}

impl Built {
    fn secs(&self, k: &str) -> Option<f64> {
        self.fields.get(k).and_then(|v| v.parse().ok())
    }

    fn get(&self, k: &str) -> String {
        self.fields.get(k).cloned().unwrap_or_else(|| "?".into())
    }
}

fn count_files(storage: &Storage, table: StoreTable) -> usize {
    storage.live_files().iter().filter(|f| f.meta.table == table).count()
}

fn ensure_ours(p: &Params) -> anyhow::Result<Built> {
    let path = p.ours_path();
    if !p.rebuild
        && !p.rebuild_ours
        && let Some(fields) = cache::read_marker(&path, MARKER)
    {
        eprintln!("[analytics] reusing {}", path.display());
        return Ok(Built { reused: true, fields, disk: sys::disk_usage(&path) });
    }
    cache::remove_store(&path, MARKER)?;
    eprintln!("[analytics] building {} ...", path.display());
    let wl = Workload::analytics(p.points);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // The clock follows the data: while day d is ingested it is the end of day d, as if the
    // samples arrived live; at the end it is one hour past the last sample.
    let clock = ManualClock::new(START_US + DAY_US);
    let fields = rt.block_on(async {
        let storage = open_ours(p, clock.clone())?;
        storage.start_background();
        let t0 = Instant::now();
        let mut backlog = 0;
        for d in 0..p.days {
            clock.set(START_US + (d as i64 + 1) * DAY_US);
            let first = d as u64 * wl.per_day();
            let run =
                ours::ingest(&storage, wl, first, wl.per_day(), BUILD_BATCH as usize, WRITERS, ours::OnBacklog::Wait)
                    .await?;
            backlog += run.backlog_rejections;
            progress("ours", d, p.days, t0);
        }
        let ingest_secs = t0.elapsed().as_secs_f64();
        storage.flush().await?;
        let flush_secs = t0.elapsed().as_secs_f64() - ingest_secs;
        clock.set(p.now_us());
        let files_before = count_files(&storage, StoreTable::Samples);
        eprintln!("[analytics]   ours: ingested in {ingest_secs:.0} s; maintenance until nothing is left to do ...");
        let t1 = Instant::now();
        let mut total = MaintenanceReport::default();
        let mut passes = 0;
        loop {
            let r = storage.maintain().await?;
            passes += 1;
            eprintln!("[analytics]   ours: maintenance pass {passes}: {r:?} ({:.0} s)", t1.elapsed().as_secs_f64());
            if r == MaintenanceReport::default() || passes >= 50 {
                break;
            }
            total.days_compacted += r.days_compacted;
            total.files_removed += r.files_removed;
            total.days_rolled_up += r.days_rolled_up;
        }
        let maintain_secs = t1.elapsed().as_secs_f64();
        let fields = vec![
            ("ingest_secs", ingest_secs.to_string()),
            ("flush_secs", flush_secs.to_string()),
            ("maintain_secs", maintain_secs.to_string()),
            ("maintain_passes", passes.to_string()),
            ("days_compacted", total.days_compacted.to_string()),
            ("days_rolled_up", total.days_rolled_up.to_string()),
            ("backlog_rejections", backlog.to_string()),
            ("sample_files_before", files_before.to_string()),
            ("sample_files", count_files(&storage, StoreTable::Samples).to_string()),
            ("rollup_1m_files", count_files(&storage, StoreTable::Rollups1m).to_string()),
            ("rollup_1h_files", count_files(&storage, StoreTable::Rollups1h).to_string()),
        ];
        storage.shutdown().await?;
        anyhow::Ok(fields)
    })?;
    cache::write_marker(&path, MARKER, &fields)?;
    let fields = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Ok(Built { reused: false, fields, disk: sys::disk_usage(&path) })
}

/// The live hourly rollup files of our store (their rows become DuckDB's `rollups_1h`).
fn our_rollup_files(p: &Params) -> anyhow::Result<Vec<PathBuf>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let storage = open_ours(p, ManualClock::new(p.now_us()))?;
    let files: Vec<PathBuf> =
        storage.live_files().iter().filter(|f| f.meta.table == StoreTable::Rollups1h).map(|f| f.path.clone()).collect();
    rt.block_on(storage.shutdown())?;
    Ok(files)
}

fn ensure_duckdb(p: &Params) -> anyhow::Result<Built> {
    let path = p.duck_path();
    if !p.rebuild
        && let Some(fields) = cache::read_marker(&path, MARKER)
    {
        eprintln!("[analytics] reusing {}", path.display());
        return Ok(Built { reused: true, fields, disk: duck::files_size(&path) });
    }
    cache::remove_store(&path, MARKER)?;
    eprintln!("[analytics] building {} ...", path.display());
    let wl = Workload::analytics(p.points);
    let rollups = our_rollup_files(p)?;
    let t0 = Instant::now();
    {
        let conn = open_duck(p)?;
        conn.execute_batch(duck::CREATE)?;
        duck::append_days(&conn, &wl, p.days, BUILD_BATCH, |d| progress("DuckDB", d, p.days, t0))?;
        let list: Vec<String> =
            rollups.iter().map(|f| format!("'{}'", f.to_string_lossy().replace('\'', "''"))).collect();
        conn.execute_batch(&format!(
            "CREATE TABLE rollups_1h AS SELECT * FROM read_parquet([{}], hive_partitioning = false) ORDER BY ts, point_id; CHECKPOINT;",
            list.join(",")
        ))?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let fields = vec![("build_secs", secs.to_string()), ("rollup_files", rollups.len().to_string())];
    cache::write_marker(&path, MARKER, &fields)?;
    let fields = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Ok(Built { reused: false, fields, disk: duck::files_size(&path) })
}

// ---------------------------------------------------------------------------------------------
// Parent

/// One (question, system) run as seen by the parent.
#[derive(Debug, Clone, Default)]
struct Outcome {
    m: Measured,
    answer: Option<Answer>,
    wall_secs: f64,
}

fn spawn_child(p: &Params, system: &str, q: &Question) -> anyhow::Result<Outcome> {
    let dir = p.work_dir.join("analytics-answers");
    std::fs::create_dir_all(&dir)?;
    let answer_file = dir.join(format!("{}-{system}.json", q.id));
    let _ = std::fs::remove_file(&answer_file);
    let exe = std::env::current_exe()?;
    let t = Instant::now();
    let out = Command::new(exe)
        .args(p.child_args())
        .args(["--child", system, "--query", q.id, "--answer-file"])
        .arg(&answer_file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("start the {system} child for {}", q.id))?;
    let wall_secs = t.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let m = match Measured::parse(&stdout) {
        Some(m) if out.status.success() => m,
        parsed => {
            // The child died (killed by the kernel's OOM killer, an abort) or failed before it
            // could report: the question failed on this system.
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
            let mut m = parsed.unwrap_or_default();
            m.ok = false;
            m.error = format!("child process {}: {}", out.status, tail.join(" / ").replace('\t', " "));
            m
        }
    };
    let answer = if m.ok {
        let bytes = std::fs::read(&answer_file).with_context(|| format!("read {}", answer_file.display()))?;
        let _ = std::fs::remove_file(&answer_file);
        Some(Answer::from_json(serde_json::from_slice(&bytes)?)?)
    } else {
        None
    };
    Ok(Outcome { m, answer, wall_secs })
}

fn secs_text(s: Option<f64>) -> String {
    s.map(|x| if x < 100.0 { format!("{x:.1} s") } else { format!("{x:.0} s") }).unwrap_or_else(|| "?".into())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse(KEYS, FLAGS, USAGE)?;
    let p = Params::from(&args)?;
    if let Some(system) = args.string("child") {
        let id = args.string("query").context("--child needs --query")?;
        let answer_file = args.opt::<PathBuf>("answer-file")?.context("--child needs --answer-file")?;
        let q = questions(p.points, p.days).into_iter().find(|q| q.id == id).context("unknown --query")?;
        let m = match run_child(&p, &system, &q, &answer_file) {
            Ok(m) => m,
            Err(e) => Measured { error: format!("{e:#}"), peak_rss: sys::peak_rss(), ..Measured::default() },
        };
        m.print();
        return Ok(());
    }
    std::fs::create_dir_all(&p.work_dir).with_context(|| format!("create {}", p.work_dir.display()))?;
    let started = chrono::Utc::now();
    let load_start = sys::loadavg();

    // ---- Disk ----
    let ours_cached = !p.rebuild && !p.rebuild_ours && cache::read_marker(&p.ours_path(), MARKER).is_some();
    let duck_cached = !p.rebuild && cache::read_marker(&p.duck_path(), MARKER).is_some();
    let need = (if ours_cached { 0.0 } else { OURS_BYTES_PER_SAMPLE }
        + if duck_cached { 0.0 } else { DUCK_BYTES_PER_SAMPLE })
        * p.samples() as f64;
    let free = free_bytes(&p.work_dir)?;
    let disk_note = format!(
        "free space in {} before building: {}; estimated need for the stores to build: {}",
        p.work_dir.display(),
        bytes(free),
        bytes(need as u64)
    );
    eprintln!("[analytics] {disk_note}");
    if need * 1.1 + 2e9 > free as f64 && !p.no_disk_check {
        bail!("not enough disk: {disk_note} (plus 10 % and 2 GB of margin); --no-disk-check to try anyway");
    }

    // ---- Stores ----
    let ours_built = ensure_ours(&p)?;
    let duck_built = ensure_duckdb(&p)?;
    if args.flag("build-only") {
        eprintln!("[analytics] stores ready: {} and {}", p.ours_path().display(), p.duck_path().display());
        return Ok(());
    }

    // ---- Questions ----
    let all = questions(p.points, p.days);
    let asked: Vec<&Question> = all.iter().filter(|q| p.queries.iter().any(|x| x == q.id)).collect();
    let mut results: Vec<(&Question, Outcome, Outcome, Option<String>)> = Vec::new();
    for q in &asked {
        eprintln!("[analytics] {}: {}", q.id, q.title);
        let o = spawn_child(&p, "ours", q)?;
        eprintln!(
            "[analytics]   ours: {} (median {}, peak RSS {})",
            if o.m.ok { "ok" } else { &o.m.error },
            ms(o.m.median_ms()),
            bytes(o.m.peak_rss)
        );
        let d = spawn_child(&p, "duckdb", q)?;
        eprintln!(
            "[analytics]   DuckDB: {} (median {}, peak RSS {})",
            if d.m.ok { "ok" } else { &d.m.error },
            ms(d.m.median_ms()),
            bytes(d.m.peak_rss)
        );
        let diff = match (&o.answer, &d.answer) {
            (Some(a), Some(b)) => compare(a, b),
            _ => None,
        };
        if let Some(why) = &diff {
            eprintln!("[analytics]   ANSWERS DIFFER: {why}");
        }
        results.push((q, o, d, diff));
    }

    // ---- Report ----
    let windows = Windows::new(p.days);
    let mut md = String::new();
    md.push_str("# Analytics benchmark: building-analytics SQL, ours vs DuckDB (native table)\n\n");
    md.push_str(&format!("- Command: `{}`\n", report::command_line()));
    md.push_str(&format!("- Run: {} UTC on {}\n", started.format("%Y-%m-%d %H:%M"), sys::machine()));
    md.push_str(&format!(
        "- Data: {} points x {} days at a 1-minute interval from 2024-01-01 ({} samples). Every 10 points are a zone: \
         4 room temperatures, an occupancy sensor (0/1), an electricity meter (power, kW), CO2, a heating valve, a \
         supply-air temperature and a fan status (0/1); the point list (name, kind, zone, room, unit, high limit) is a \
         `VALUES` list in each query's text.\n",
        count(p.points as u64),
        p.days,
        count(p.samples())
    ));
    md.push_str(&format!(
        "- Memory limit: **{} MB** and {} threads on both sides (ours: `query.memory_limit_mb`, `query.threads`; \
         DuckDB: `memory_limit`, `threads`). Ours: `query.sql_timeout_ms` = {} s, `query.sql_max_rows` = {}, `storage.page_rows` = \
         {} (the default is {}), all other settings default (a query that outgrows the limit spills to `<data dir>/tmp-sql/`, at most \
         `query.spill_limit_mb` = {} MiB). DuckDB: a file database with its default temporary directory (it may spill).\n",
        p.memory_limit_mb,
        p.threads,
        p.timeout_secs,
        count(SQL_MAX_ROWS as u64),
        count(PAGE_ROWS as u64),
        count(Config::default().storage.page_rows as u64),
        count(t3_core::config::QueryConfig::default().spill_limit_mb)
    ));
    md.push_str(&format!(
        "- Each (question, system) runs in its own child process: open the store, one warm-up run, then up to {} timed \
         runs (fewer once the timed runs of a question pass {} s; at least one). Peak RSS is the child's VmHWM (store \
         opening, warm-up and runs). Ours is timed through `Storage::sql` including its conversion of the answer to \
         JSON values (what the endpoint sends); DuckDB up to its Arrow result.\n",
        p.runs, p.max_secs_per_query
    ));
    md.push_str(&format!(
        "- Windows: month = {}; year = {}; recent = {}.\n",
        windows.month.label, windows.year.label, windows.recent.label
    ));
    md.push_str(&format!(
        "- Answers are compared cell by cell (numbers within a relative {REL_TOLERANCE:e}); the run fails if they differ.\n"
    ));
    md.push_str(&format!(
        "- Load average (1/5/15 min) at the start: {load_start}; at the end: {} (2 cores shared with other work).\n\n",
        sys::loadavg()
    ));

    md.push_str("## Stores\n\n");
    let mut st = Table::new(&["Store", "Samples", "Build", "On disk", "Bytes/sample", "Detail"]);
    let ob = &ours_built;
    let ingest = ob.secs("ingest_secs");
    st.row(vec![
        format!("ours{}", if ob.reused { " (cached)" } else { "" }),
        count(p.samples()),
        format!(
            "ingest {} ({}), flush {}, maintenance {}",
            secs_text(ingest),
            ingest.map(|s| rate(p.samples() as f64 / s)).unwrap_or_default(),
            secs_text(ob.secs("flush_secs")),
            secs_text(ob.secs("maintain_secs"))
        ),
        bytes(ob.disk),
        format!("{:.2}", ob.disk as f64 / p.samples() as f64),
        format!(
            "{} sample files after ingest, {} after maintenance ({} passes, {} days compacted, {} days rolled up); \
             rollup files: {} (1 min), {} (1 h)",
            ob.get("sample_files_before"),
            ob.get("sample_files"),
            ob.get("maintain_passes"),
            ob.get("days_compacted"),
            ob.get("days_rolled_up"),
            ob.get("rollup_1m_files"),
            ob.get("rollup_1h_files")
        ),
    ]);
    let db = &duck_built;
    st.row(vec![
        format!("DuckDB{}", if db.reused { " (cached)" } else { "" }),
        count(p.samples()),
        format!("{} (appender, then rollups_1h)", secs_text(db.secs("build_secs"))),
        bytes(db.disk),
        format!("{:.2}", db.disk as f64 / p.samples() as f64),
        format!("table samples + table rollups_1h (our {} hourly rollup files, loaded)", db.get("rollup_files")),
    ]);
    md.push_str(&st.render());
    md.push_str(&format!(
        "\n{disk_note}.\n\nOurs: `Storage::ingest` in batches of {} samples from {WRITERS} writer tasks (ack level wal), the \
         background flusher and maintenance running, the engine's clock following the data (the end of the day being \
         ingested); then `flush()`, then `maintain()` (compaction, rollups) again and again until a pass has nothing \
         to do. DuckDB: the same rows through the Arrow appender (arrival order), then our hourly rollups loaded into \
         a native table `rollups_1h` of the same columns; CHECKPOINT.\n",
        count(BUILD_BATCH)
    ));

    md.push_str(&format!("\n## Questions, {} points x {} days\n\n", count(p.points as u64), p.days));
    let mut t = Table::new(&[
        "Question",
        "ours median",
        "DuckDB median",
        "ours / DuckDB",
        "<= 1.5x",
        "ours peak RSS",
        "DuckDB peak RSS",
        "Rows",
        "Same answer",
    ]);
    let mut failures = Vec::new();
    for (q, o, d, diff) in &results {
        let cell = |x: &Outcome| if x.m.ok { ms(x.m.median_ms()) } else { "FAILED".into() };
        let both = o.m.ok && d.m.ok;
        let r = o.m.median_ms() / d.m.median_ms();
        let same = match (both, diff) {
            (false, _) => "-".to_string(),
            (true, None) => "yes".to_string(),
            (true, Some(_)) => "**NO**".to_string(),
        };
        if let Some(why) = diff {
            failures.push(format!("{}: {why}", q.id));
        }
        t.row(vec![
            format!("{}: {}", q.id.to_uppercase(), q.title),
            cell(o),
            cell(d),
            if both { ratio(o.m.median_ms(), d.m.median_ms()) } else { "-".into() },
            if both {
                report::pass(r <= TARGET_RATIO)
            } else if !o.m.ok {
                "FAIL".into()
            } else {
                "-".into()
            },
            bytes(o.m.peak_rss),
            bytes(d.m.peak_rss),
            if both {
                count(o.m.rows as u64)
            } else {
                format!("{} / {}", count(o.m.rows as u64), count(d.m.rows as u64))
            },
            same,
        ]);
    }
    md.push_str(&t.render());
    let finished = results.iter().filter(|(_, o, _, _)| o.m.ok).count();
    let within = results
        .iter()
        .filter(|(_, o, d, _)| o.m.ok && d.m.ok && o.m.median_ms() / d.m.median_ms() <= TARGET_RATIO)
        .count();
    md.push_str(&format!(
        "\nGoals of the issue: every question finishes within `query.memory_limit_mb` = {} MB: **{finished} of {}** did \
         on ours; ours within {TARGET_RATIO}x of DuckDB's native table: **{within} of {}**. Ratios are of medians; \
         peak RSS includes the process (runtime, DuckDB, the open store), so it may exceed the limit, which bounds \
         DuckDB's buffer manager.\n",
        p.memory_limit_mb,
        results.len(),
        results.len()
    ));
    let errors: Vec<String> = results
        .iter()
        .flat_map(|(q, o, d, _)| {
            let mut v = Vec::new();
            if !o.m.ok {
                v.push(format!("- {} on ours failed: `{}`", q.id.to_uppercase(), o.m.error));
            }
            if !d.m.ok {
                v.push(format!("- {} on DuckDB failed: `{}`", q.id.to_uppercase(), d.m.error));
            }
            v
        })
        .collect();
    if !errors.is_empty() {
        md.push_str("\n### Failures\n\n");
        md.push_str(&errors.join("\n"));
        md.push('\n');
    }
    if !failures.is_empty() {
        md.push_str("\n### Answers that differ\n\n");
        for f in &failures {
            md.push_str(&format!("- {f}\n"));
        }
    }

    md.push_str("\n## Every run\n\n");
    let mut t = Table::new(&[
        "Question",
        "System",
        "Open",
        "Warm-up",
        "Timed runs",
        "RSS after open",
        "Peak RSS",
        "Child wall time",
    ]);
    for (q, o, d, _) in &results {
        for (name, x) in [("ours", o), ("DuckDB", d)] {
            t.row(vec![
                q.id.to_uppercase(),
                name.into(),
                ms(x.m.open_ms),
                if x.m.warmup_ms.is_finite() { ms(x.m.warmup_ms) } else { "-".into() },
                if x.m.runs_ms.is_empty() {
                    "-".into()
                } else {
                    x.m.runs_ms.iter().map(|v| ms(*v)).collect::<Vec<_>>().join(", ")
                },
                bytes(x.m.rss_open),
                bytes(x.m.peak_rss),
                format!("{:.1} s", x.wall_secs),
            ]);
        }
    }
    md.push_str(&t.render());

    md.push_str("\n## The SQL\n\nThe same text runs on both systems; `points(...)` is a `VALUES` list of every point (its first rows shown).\n");
    let cte = points_cte(p.points);
    let short: String = {
        let lines: Vec<&str> = cte.lines().collect();
        if lines.len() > 6 {
            format!("{}\n    ... ({} rows)\n{}", lines[..4].join("\n"), p.points, lines[lines.len() - 1])
        } else {
            cte.clone()
        }
    };
    for q in &asked {
        md.push_str(&format!(
            "\n{}: {}\n\n```sql\n{}\n```\n",
            q.id.to_uppercase(),
            q.title,
            q.sql.replace(&cte, &short)
        ));
    }

    let path = report::write_results(&p.out, &md)?;
    println!("{md}");
    eprintln!("[analytics] wrote {}", path.display());
    if !failures.is_empty() {
        bail!("the two systems answered differently: {}", failures.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(rows: Vec<Vec<Value>>) -> Answer {
        Answer { columns: vec!["a".into(), "b".into()], rows, truncated: false }
    }

    #[test]
    fn answers_agree_within_tolerance_and_differences_are_caught() {
        let a = answer(vec![vec![serde_json::json!("x"), serde_json::json!(1.0)]]);
        let close = answer(vec![vec![serde_json::json!("x"), serde_json::json!(1.0 + 1e-12)]]);
        assert_eq!(compare(&a, &close), None);
        let far = answer(vec![vec![serde_json::json!("x"), serde_json::json!(1.001)]]);
        assert!(compare(&a, &far).is_some());
        let text = answer(vec![vec![serde_json::json!("y"), serde_json::json!(1.0)]]);
        assert!(compare(&a, &text).is_some());
        // Decimals arrive as text on both sides; they compare as numbers.
        let dec = answer(vec![vec![serde_json::json!("x"), serde_json::json!("1.000")]]);
        assert_eq!(compare(&a, &dec), None);
        assert!(compare(&a, &answer(vec![])).is_some());
        let round = Answer::from_json(a.to_json()).expect("round trip");
        assert_eq!(compare(&a, &round), None);
    }

    #[test]
    fn windows_follow_the_data() {
        let w = Windows::new(1096);
        assert_eq!(day_text(w.month.from), "2026-12-01");
        assert_eq!(day_text(w.month.to), "2027-01-01");
        assert_eq!(day_text(w.year.from), "2026-01-01");
        assert_eq!(day_text(w.year.to), "2027-01-01");
        assert_eq!(w.recent.to - w.recent.from, 90 * DAY_US);
        let w = Windows::new(30);
        assert_eq!((w.month.from, w.year.from, w.recent.from), (START_US, START_US, START_US));
        assert_eq!(w.month.to, START_US + 30 * DAY_US);
    }

    #[test]
    fn the_point_list_names_every_point_once() {
        let cte = points_cte(1000);
        assert_eq!(cte.lines().count(), 1002);
        assert!(cte.contains("(1000, 'Z100 fan status', 'fan', 'Z100', NULL, 'state', NULL)"), "{cte}");
        assert_eq!(cte.matches("'room_temp'").count(), 400);
        assert_eq!(cte.matches("'power'").count(), 100);
        assert_eq!(questions(1000, 1096).len(), 9);
    }
}
