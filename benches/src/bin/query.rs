//! Query latency: one store of P points x D days at 1-minute resolution built through our engine,
//! the same data in SQLite (T3000 WebView schema) and in a native DuckDB table; three questions
//! timed warm on each. Also checks that our per-point query time stays flat when the store grows
//! 10x (P/10 points vs P points, same days, same questions).
//!
//! Stores are cached under `--work-dir` and reused by later runs unless `--rebuild`.

#![forbid(unsafe_code)]

use anyhow::{Context, bail};
use arrow::array::{Float64Array, Int64Array, UInt32Array};
use std::path::PathBuf;
use std::time::Instant;
use t3_benches::args::Args;
use t3_benches::datagen::{DAY_US, START_US, Workload, logging_time_fmt, parse_logging_time};
use t3_benches::report::{self, Table, bytes, count, ms, pass, rate, ratio};
use t3_benches::stats::{Summary, m4, minmax_checksum, time_runs};
use t3_benches::{cache, duck, ours, sqlite, sys};
use t3_storage::query::Column;
use t3_storage::{HistoryMode, HistoryRequest, ReadPath, Storage};

/// The suffix of a cached store's completion marker.
const MARKER: &str = ".complete";

const USAGE: &str = "\
query: warm query latency, ours vs DuckDB (native table) vs SQLite (T3000 WebView schema)

cargo run --release -p t3-benches --bin query -- [options]
  --points P           points (default 1000)
  --days D             days at a 1-minute interval (default 90)
  --runs N             timed runs per question after one warm-up run (default 20)
  --sqlite-max-secs S  stop inserting into SQLite after the day that passes S seconds (default 420;
                       the index is created afterwards);
                       SQLite is then compared with our engine on a store of the same size
  --skip-sqlite        do not build or query SQLite
  --skip-duckdb        do not build or query DuckDB
  --work-dir DIR       cache of generated stores (default $HOME/.cache/t3000/bench-data)
  --rebuild            rebuild the stores even if cached
  --rebuild-ours       rebuild only our stores (after a change to the storage engine); reuse SQLite and DuckDB
  --out NAME           write the tables to benches/results/NAME.md (default query)";

/// Bumped whenever the generator or the store layout changes, so stale caches are not reused.
const DATA_VERSION: &str = "v1";
/// Targets of the issue, milliseconds.
const TARGET_Q1_MS: f64 = 50.0;
const TARGET_Q2_MS: f64 = 50.0;
const TARGET_Q3_MS: f64 = 5.0;
/// Our criterion for "flat" when the store grows 10x.
const FLAT_RATIO: f64 = 1.5;
/// Q1's `max_points`.
const MAX_POINTS: usize = 1000;
/// Rows per ingest call / appender batch / SQLite transaction while building.
const BUILD_BATCH: u64 = 100_000;

#[derive(Debug)]
struct Params {
    points: u32,
    days: u32,
    runs: usize,
    sqlite_max_secs: f64,
    skip_sqlite: bool,
    skip_duckdb: bool,
    work_dir: PathBuf,
    rebuild: bool,
    rebuild_ours: bool,
    out: String,
}

/// A built (or reused) store.
#[derive(Debug, Clone)]
struct Store {
    label: String,
    path: PathBuf,
    points: u32,
    days: u32,
    /// Build time in this run; `None` when reused from the cache.
    build_secs: Option<f64>,
    disk: u64,
    /// Details of the build, if any.
    note: String,
}

impl Store {
    fn samples(&self) -> u64 {
        self.points as u64 * self.days as u64 * 1440
    }
}

/// The three questions for a store of `days` days.
#[derive(Debug, Clone)]
struct Questions {
    q1_point: u32,
    q1_from: i64,
    q2_points: Vec<u32>,
    q2_from: i64,
    to: i64,
}

impl Questions {
    fn new(points: u32, days: u32) -> Questions {
        let to = START_US + days as i64 * DAY_US;
        // Q2's points exist in the P/10 store too, so the growth comparison asks the same thing.
        let small = (points / 10).max(1);
        let n = small.min(10);
        Questions {
            q1_point: 1,
            q1_from: START_US,
            q2_points: (0..n).map(|i| 1 + i * small / n).collect(),
            q2_from: to - DAY_US,
            to,
        }
    }

    fn buckets(&self) -> i64 {
        (MAX_POINTS / 4) as i64
    }
}

/// What a question returned: rows and a check value comparable across systems.
#[derive(Debug, Clone, Copy, Default)]
struct Answer {
    rows: usize,
    check: f64,
}

/// Timings of the three questions on one store.
#[derive(Debug, Clone, Copy)]
struct Timings {
    q: [(Summary, Answer); 3],
}

/// Our Q1 and Q2 through each history reader (`ReadPath::Direct`, `ReadPath::DuckDb`).
#[derive(Debug, Clone, Copy)]
struct ReaderTimings {
    direct: [(Summary, Answer); 2],
    duckdb: [(Summary, Answer); 2],
    /// Files whose footer and page index the direct reader keeps, and their bytes.
    indexed_files: usize,
    index_bytes: usize,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse(
        &["points", "days", "runs", "sqlite-max-secs", "work-dir", "out"],
        &["rebuild", "rebuild-ours", "skip-sqlite", "skip-duckdb"],
        USAGE,
    )?;
    let p = Params {
        points: a.get("points", 1000)?,
        days: a.get("days", 90)?,
        runs: a.get("runs", 20)?,
        sqlite_max_secs: a.get("sqlite-max-secs", 420.0)?,
        skip_sqlite: a.flag("skip-sqlite"),
        skip_duckdb: a.flag("skip-duckdb"),
        work_dir: a.opt::<PathBuf>("work-dir")?.unwrap_or_else(sys::default_work_dir),
        rebuild: a.flag("rebuild"),
        rebuild_ours: a.flag("rebuild-ours"),
        out: a.string("out").unwrap_or_else(|| "query".into()),
    };
    if p.points == 0 || p.days == 0 || p.runs == 0 {
        bail!("--points, --days and --runs must be positive");
    }
    std::fs::create_dir_all(&p.work_dir).with_context(|| format!("create {}", p.work_dir.display()))?;
    let started = chrono::Utc::now();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;

    let load_start = sys::loadavg();
    // ---- Stores ----
    let ours_full = ensure_ours(&rt, &p, p.points, p.days)?;
    let ours_small = if p.points >= 10 { Some(ensure_ours(&rt, &p, p.points / 10, p.days)?) } else { None };
    let duck_full = if p.skip_duckdb { None } else { Some(ensure_duckdb(&p, p.points, p.days)?) };
    let sqlite_store = if p.skip_sqlite { None } else { Some(ensure_sqlite(&p, p.points, p.days)?) };
    let ours_at_sqlite = match &sqlite_store {
        Some(s) if s.days < p.days => Some(ensure_ours(&rt, &p, p.points, s.days)?),
        _ => None,
    };

    // ---- Questions ----
    let qf = Questions::new(p.points, p.days);
    eprintln!("[query] timing ours on {}", ours_full.label);
    let (t_ours, load_latest_ms) = time_ours(&rt, &p, &ours_full, &qf)?;
    eprintln!("[query] timing our two history readers on {}", ours_full.label);
    let t_readers = time_readers(&rt, &p, &ours_full, &qf)?;
    let t_small = match &ours_small {
        Some(s) => {
            eprintln!("[query] timing ours on {}", s.label);
            Some(time_ours(&rt, &p, s, &qf)?.0)
        }
        None => None,
    };
    let t_duck = match &duck_full {
        Some(d) => {
            eprintln!("[query] timing DuckDB on {}", d.label);
            Some(time_duckdb(&p, d, &qf)?)
        }
        None => None,
    };
    let (t_sqlite, t_ours_at_sqlite, qs) = match &sqlite_store {
        Some(s) => {
            let qs = Questions::new(p.points, s.days);
            eprintln!("[query] timing SQLite on {}", s.label);
            let ts = time_sqlite(&p, s, &qs)?;
            let to = match &ours_at_sqlite {
                Some(o) => {
                    eprintln!("[query] timing ours on {}", o.label);
                    time_ours(&rt, &p, o, &qs)?.0
                }
                None => t_ours,
            };
            (Some(ts), Some(to), Some(qs))
        }
        None => (None, None, None),
    };

    // ---- Report ----
    let mut md = String::new();
    md.push_str("# Query benchmark\n\n");
    md.push_str(&format!("- Command: `{}`\n", report::command_line()));
    md.push_str(&format!("- Run: {} UTC on {}\n", started.format("%Y-%m-%d %H:%M"), sys::machine()));
    md.push_str(&format!(
        "- Data: {} points x {} days at a 1-minute interval from 2024-01-01 ({} samples); 80 % analog, 20 % digital points.\n",
        count(p.points as u64),
        p.days,
        count(ours_full.samples())
    ));
    md.push_str(&format!(
        "- Each question runs once to warm up, then {} timed runs (wall clock per call, `std::time::Instant`); median and p95 (nearest rank).\n",
        p.runs
    ));
    md.push_str(&format!(
        "- Load average (1/5/15 min) at the start: {load_start}; at the end: {} (anything else running shares the cores).\n\n",
        sys::loadavg()
    ));

    md.push_str("## Stores\n\n");
    let mut st = Table::new(&[
        "Store",
        "Points x days",
        "Samples",
        "Build time",
        "Build rate",
        "On disk",
        "Bytes/sample",
        "Build detail",
    ]);
    let mut stores: Vec<&Store> = vec![&ours_full];
    stores.extend(ours_small.iter());
    stores.extend(ours_at_sqlite.iter());
    stores.extend(duck_full.iter());
    stores.extend(sqlite_store.iter());
    for s in &stores {
        st.row(vec![
            s.label.clone(),
            format!("{} x {}", count(s.points as u64), s.days),
            count(s.samples()),
            s.build_secs.map(|x| format!("{x:.1} s")).unwrap_or_else(|| "reused (cached)".into()),
            s.build_secs.map(|x| rate(s.samples() as f64 / x)).unwrap_or_else(|| "-".into()),
            bytes(s.disk),
            format!("{:.2}", s.disk as f64 / s.samples() as f64),
            s.note.clone(),
        ]);
    }
    md.push_str(&st.render());
    md.push_str(
        "\nBuild: ours ingests batches of 100,000 samples (4 writer tasks, ack level wal) and flushes after each day \
         (one Parquet file per day, the layout compaction produces); DuckDB appends 100,000-row Arrow batches, commits \
         per day, then CHECKPOINT; SQLite inserts 100,000-row transactions, then creates its index (faster than \
         inserting with the index in place; the `ingest` benchmark measures that way).\n",
    );

    let q_names = |q: &Questions, points: u32, days: u32| -> [String; 3] {
        [
            format!("Q1: point {} over {} days, downsampled to <= {MAX_POINTS} rows (M4)", q.q1_point, days),
            format!("Q2: {} points, last 24 h, raw", q.q2_points.len()),
            format!("Q3: latest value of all {} points", count(points as u64)),
        ]
    };
    let targets = [TARGET_Q1_MS, TARGET_Q2_MS, TARGET_Q3_MS];

    md.push_str(&format!("\n## Ours vs DuckDB, {} points x {} days\n\n", count(p.points as u64), p.days));
    let names = q_names(&qf, p.points, p.days);
    let mut t = Table::new(&[
        "Question",
        "Target",
        "ours median",
        "ours p95",
        "DuckDB median",
        "DuckDB p95",
        "DuckDB / ours",
        "Rows ours / DuckDB",
        "Same answer",
    ]);
    for i in 0..3 {
        let (os, oa) = t_ours.q[i];
        let (ds, da, same) = match &t_duck {
            Some(d) => {
                let (ds, da) = d.q[i];
                (Some(ds), Some(da), same_answer(oa, da))
            }
            None => (None, None, "-".into()),
        };
        t.row(vec![
            names[i].clone(),
            format!("< {}", ms(targets[i])),
            ms(os.median),
            ms(os.p95),
            ds.map(|s| ms(s.median)).unwrap_or_else(|| "-".into()),
            ds.map(|s| ms(s.p95)).unwrap_or_else(|| "-".into()),
            ds.map(|s| ratio(s.median, os.median)).unwrap_or_else(|| "-".into()),
            format!("{} / {}", count(oa.rows as u64), da.map(|a| count(a.rows as u64)).unwrap_or_else(|| "-".into())),
            same,
        ]);
    }
    md.push_str(&t.render());

    if let (Some(ts), Some(to), Some(qs), Some(ss)) = (&t_sqlite, &t_ours_at_sqlite, &qs, &sqlite_store) {
        md.push_str(&format!(
            "\n## Ours vs SQLite (T3000 WebView schema), {} points x {} days{}\n\n",
            count(p.points as u64),
            ss.days,
            if ss.days < p.days {
                format!(
                    " (SQLite loading stopped after {} s at day {} of {}; both sides measured on this smaller store)",
                    p.sqlite_max_secs, ss.days, p.days
                )
            } else {
                String::new()
            }
        ));
        let names = q_names(qs, p.points, ss.days);
        let mut t = Table::new(&[
            "Question",
            "ours median",
            "ours p95",
            "SQLite median",
            "SQLite p95",
            "SQLite / ours",
            "Rows ours / SQLite",
            "Same answer",
        ]);
        for (i, name) in names.iter().enumerate() {
            let (os, oa) = to.q[i];
            let (ss, sa) = ts.q[i];
            t.row(vec![
                name.clone(),
                ms(os.median),
                ms(os.p95),
                ms(ss.median),
                ms(ss.p95),
                ratio(ss.median, os.median),
                format!("{} / {}", count(oa.rows as u64), count(sa.rows as u64)),
                same_answer(oa, sa),
            ]);
        }
        md.push_str(&t.render());
    }

    if let (Some(small), Some(ts)) = (&ours_small, &t_small) {
        md.push_str(&format!(
            "\n## Ours when the store grows 10x ({} -> {} points, {} days; same questions)\n\n",
            count(small.points as u64),
            count(p.points as u64),
            p.days
        ));
        let mut t = Table::new(&[
            "Question",
            &format!("median @ {} samples", count(small.samples())),
            &format!("median @ {} samples", count(ours_full.samples())),
            "big / small",
            &format!("flat (<= {FLAT_RATIO}x)"),
        ]);
        for (i, name) in names.iter().enumerate().take(2) {
            let (a, _) = ts.q[i];
            let (b, _) = t_ours.q[i];
            t.row(vec![
                name.clone(),
                ms(a.median),
                ms(b.median),
                ratio(b.median, a.median),
                pass(b.median / a.median <= FLAT_RATIO),
            ]);
        }
        md.push_str(&t.render());
    }

    md.push_str(&format!(
        "\n## Ours: direct Parquet reader vs DuckDB reader ({} points x {} days, same store)\n\n",
        count(p.points as u64),
        p.days
    ));
    md.push_str(&format!(
        "History requests naming at most {} points use the direct reader (the default above); the DuckDB reader is what \
         answered them before, and still answers requests with more points.\n\n",
        t3_storage::query::DIRECT_MAX_POINTS
    ));
    let mut t = Table::new(&[
        "Question",
        "direct median",
        "direct p95",
        "DuckDB reader median",
        "DuckDB reader p95",
        "DuckDB reader / direct",
        "Same answer",
    ]);
    for (i, name) in names.iter().enumerate().take(2) {
        let (ds, da) = t_readers.direct[i];
        let (ks, ka) = t_readers.duckdb[i];
        t.row(vec![
            name.clone(),
            ms(ds.median),
            ms(ds.p95),
            ms(ks.median),
            ms(ks.p95),
            ratio(ks.median, ds.median),
            same_answer(da, ka),
        ]);
    }
    md.push_str(&t.render());
    md.push_str(&format!(
        "\nThe direct reader keeps the parsed footer and offset index of every file it has read (and the page bounds of \
         point_id and ts): {} files, {} in all ({} per file, as estimated by the parquet crate).\n",
        count(t_readers.indexed_files as u64),
        bytes(t_readers.index_bytes as u64),
        bytes((t_readers.index_bytes / t_readers.indexed_files.max(1)) as u64)
    ));

    md.push_str("\n## Targets (ours, full store)\n\n");
    if (p.points as u64) * (p.days as u64) < 90_000 {
        md.push_str("This store is smaller than the default 1,000 points x 90 days.\n\n");
    }
    let mut tt = Table::new(&["Target", "Measured (median / p95)", "Result"]);
    for i in 0..3 {
        let (s, _) = t_ours.q[i];
        tt.row(vec![
            format!("{} < {}", names[i].split(':').next().unwrap_or(""), ms(targets[i])),
            format!("{} / {}", ms(s.median), ms(s.p95)),
            pass(s.median < targets[i]),
        ]);
    }
    if let Some(ts) = &t_small {
        for i in 0..2 {
            let r = t_ours.q[i].0.median / ts.q[i].0.median;
            tt.row(vec![
                format!("{} flat when the store grows 10x", if i == 0 { "Q1" } else { "Q2" }),
                ratio(t_ours.q[i].0.median, ts.q[i].0.median),
                pass(r <= FLAT_RATIO),
            ]);
        }
    }
    md.push_str(&tt.render());

    md.push_str("\n## How each system answers\n\n");
    md.push_str(&format!(
        "- ours: `Storage::history` (Downsample {{ max_points: {MAX_POINTS} }} for Q1, Raw for Q2) over the Parquet files of the \
         store, reopened as after a restart and never started in the background (no compaction while timing); both name \
         few points, so the direct reader answers them: per daily file only the pages the page index says may hold the \
         points are read and decoded (the footer and page index of each file are parsed on the first query and kept; the \
         warm-up run pays for that). Q3 is `Storage::latest(&[])`, an in-memory cache, seeded at open by `load_latest()` which took {} \
         here.\n",
        ms(load_latest_ms)
    ));
    md.push_str(
        "- DuckDB: one connection to the file database, default settings (threads = cores). Q1: min/max/first/last per bucket \
         in SQL (the same 250 buckets as M4); Q2: `WHERE point_id IN (...) AND ts >= ... ORDER BY point_id, ts`; Q3: \
         `GROUP BY point_id` with `max(ts)`, `arg_max(value, ts)`. Rows are inserted in arrival order (time-major), no index. \
         Results are read through Arrow. Q1's row count is one row per bucket (holding first, last, min and max).\n",
    );
    md.push_str(&format!(
        "- SQLite: `journal_mode=WAL`, `synchronous=NORMAL`, page cache {} MiB, one index on TRENDLOG_DATA_DETAIL(ParentId, \
         LoggingTime_Fmt). Q1: that point's rows in range ordered by time (index range scan), times and values parsed from \
         text and downsampled with the same M4 in Rust; Q2: `ParentId IN (...)` and the time range, ordered, parsed; Q3: per \
         parent the newest detail row through the index (correlated `ORDER BY LoggingTime_Fmt DESC LIMIT 1`).\n",
        sqlite::CACHE_MIB
    ));
    md.push_str(
        "- \"Same answer\": Q1 compares the sum over buckets of (min + max); Q2 the row count and the sum of values; Q3 the \
         number of points and the sum of their latest values.\n",
    );

    println!("{md}");
    let path = report::write_results(&p.out, &md)?;
    eprintln!("[query] wrote {}", path.display());
    Ok(())
}

fn same_answer(a: Answer, b: Answer) -> String {
    let tol = 1e-6 * a.check.abs().max(1.0);
    if (a.check - b.check).abs() <= tol { "yes".into() } else { format!("NO ({} vs {})", a.check, b.check) }
}

// ---------------------------------------------------------------------------------------------
// Building the stores

fn progress(what: &str, day: u32, days: u32, t0: Instant) {
    if day + 1 == days || (day + 1).is_multiple_of(10) {
        eprintln!("[query]   {what}: day {}/{} ({:.0} s)", day + 1, days, t0.elapsed().as_secs_f64());
    }
}

fn ensure_ours(rt: &tokio::runtime::Runtime, p: &Params, points: u32, days: u32) -> anyhow::Result<Store> {
    let name = format!("{DATA_VERSION}-ours-p{points}-d{days}");
    let path = p.work_dir.join(&name);
    let label = format!("ours, {} points x {days} d", count(points as u64));
    if !p.rebuild && !p.rebuild_ours && cache::read_marker(&path, MARKER).is_some() {
        eprintln!("[query] reusing {}", path.display());
        return Ok(Store {
            label,
            disk: sys::disk_usage(&path),
            path,
            points,
            days,
            build_secs: None,
            note: String::new(),
        });
    }
    cache::remove_store(&path, MARKER)?;
    eprintln!("[query] building {} ...", path.display());
    let wl = Workload::new(points);
    let t0 = Instant::now();
    rt.block_on(async {
        let storage = ours::open(&path)?;
        for d in 0..days {
            let first = d as u64 * wl.per_day();
            ours::ingest(&storage, wl, first, wl.per_day(), BUILD_BATCH as usize, 4, ours::OnBacklog::Flush).await?;
            storage.flush().await?;
            progress("ours", d, days, t0);
        }
        storage.shutdown().await?;
        anyhow::Ok(())
    })?;
    let secs = t0.elapsed().as_secs_f64();
    cache::write_marker(&path, MARKER, &[("secs", secs.to_string()), ("days", days.to_string())])?;
    Ok(Store { label, disk: sys::disk_usage(&path), path, points, days, build_secs: Some(secs), note: String::new() })
}

fn ensure_duckdb(p: &Params, points: u32, days: u32) -> anyhow::Result<Store> {
    let path = p.work_dir.join(format!("{DATA_VERSION}-duckdb-p{points}-d{days}.duckdb"));
    let label = format!("DuckDB, {} points x {days} d", count(points as u64));
    if !p.rebuild && cache::read_marker(&path, MARKER).is_some() {
        eprintln!("[query] reusing {}", path.display());
        return Ok(Store {
            label,
            disk: duck::files_size(&path),
            path,
            points,
            days,
            build_secs: None,
            note: String::new(),
        });
    }
    cache::remove_store(&path, MARKER)?;
    eprintln!("[query] building {} ...", path.display());
    let wl = Workload::new(points);
    let t0 = Instant::now();
    {
        let conn = duck::open(&path)?;
        duck::append_days(&conn, &wl, days, BUILD_BATCH, |d| progress("DuckDB", d, days, t0))?;
        conn.execute_batch("CHECKPOINT;")?;
    }
    let secs = t0.elapsed().as_secs_f64();
    cache::write_marker(&path, MARKER, &[("secs", secs.to_string()), ("days", days.to_string())])?;
    Ok(Store { label, disk: duck::files_size(&path), path, points, days, build_secs: Some(secs), note: String::new() })
}

/// Builds SQLite: inserts day by day until done or until a day ends past `--sqlite-max-secs`,
/// then creates the detail index (bulk-load order: faster than inserting with the index in
/// place, and the index comes out packed). The store records how many days it holds.
fn ensure_sqlite(p: &Params, points: u32, days: u32) -> anyhow::Result<Store> {
    let path = p.work_dir.join(format!("{DATA_VERSION}-sqlite-p{points}-d{days}.db"));
    let label_for = |d: u32| format!("SQLite, {} points x {d} d", count(points as u64));
    if !p.rebuild
        && let Some(m) = cache::read_marker(&path, MARKER)
        && let Some(built) = m.get("days").and_then(|v| v.parse::<u32>().ok())
    {
        eprintln!("[query] reusing {} ({built} days)", path.display());
        return Ok(Store {
            label: label_for(built),
            disk: sqlite::files_size(&path),
            path,
            points,
            days: built,
            build_secs: None,
            note: String::new(),
        });
    }
    cache::remove_store(&path, MARKER)?;
    eprintln!("[query] building {} (inserts stop after {} s) ...", path.display(), p.sqlite_max_secs);
    let wl = Workload::new(points);
    let t0 = Instant::now();
    let conn = sqlite::open(&path, sqlite::Sync::Normal)?;
    let parents = sqlite::create_schema(&conn, points)?;
    let mut built = 0;
    for d in 0..days {
        if d > 0 && t0.elapsed().as_secs_f64() > p.sqlite_max_secs {
            eprintln!("[query]   SQLite: stopping after {built} days ({:.0} s)", t0.elapsed().as_secs_f64());
            break;
        }
        let first = d as u64 * wl.per_day();
        let end = first + wl.per_day();
        let mut k = first;
        while k < end {
            let n = (end - k).min(BUILD_BATCH);
            sqlite::insert_batch(&conn, &parents, &wl, k, n)?;
            k += n;
        }
        built = d + 1;
        progress("SQLite", d, days, t0);
    }
    let insert_secs = t0.elapsed().as_secs_f64();
    eprintln!("[query]   SQLite: creating the index ...");
    sqlite::create_indexes(&conn, sqlite::Indexes::Minimal)?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    drop(conn);
    let secs = t0.elapsed().as_secs_f64();
    cache::write_marker(&path, MARKER, &[("secs", secs.to_string()), ("days", built.to_string())])?;
    Ok(Store {
        label: label_for(built),
        disk: sqlite::files_size(&path),
        path,
        points,
        days: built,
        build_secs: Some(secs),
        note: format!("inserts {insert_secs:.0} s + CREATE INDEX {:.0} s", secs - insert_secs),
    })
}

// ---------------------------------------------------------------------------------------------
// Asking the questions

fn value_column(cols: &[(String, Column)]) -> &[Option<f64>] {
    cols.iter()
        .find_map(|(name, c)| match c {
            Column::F64(v) if name == "value" => Some(v.as_slice()),
            _ => None,
        })
        .unwrap_or(&[])
}

/// Times our Q1 and Q2 through `path`.
fn time_history(
    rt: &tokio::runtime::Runtime,
    storage: &Storage,
    runs: usize,
    q: &Questions,
    path: ReadPath,
) -> anyhow::Result<[(Summary, Answer); 2]> {
    let (to, buckets) = (q.to, q.buckets());
    let q1 = time_runs(runs, || {
        let req = HistoryRequest {
            points: vec![q.q1_point],
            from: q.q1_from,
            to,
            mode: HistoryMode::Downsample { max_points: MAX_POINTS },
            prior: false,
        };
        let r = rt.block_on(storage.history_with(req, path))?;
        let series = r.series.first().context("no series")?;
        let vals = value_column(&series.columns);
        let rows = series.ts.iter().zip(vals).filter_map(|(t, v)| v.map(|v| (*t, v)));
        Ok(Answer { rows: series.ts.len(), check: minmax_checksum(rows, q.q1_from, to, buckets) })
    })?;
    let q2 = time_runs(runs, || {
        let req =
            HistoryRequest { points: q.q2_points.clone(), from: q.q2_from, to, mode: HistoryMode::Raw, prior: false };
        let r = rt.block_on(storage.history_with(req, path))?;
        let mut a = Answer::default();
        for s in &r.series {
            a.rows += s.ts.len();
            a.check += value_column(&s.columns).iter().flatten().sum::<f64>();
        }
        Ok(a)
    })?;
    Ok([q1, q2])
}

/// Our Q1 and Q2 through the direct reader and through DuckDB, on the same open store.
fn time_readers(rt: &tokio::runtime::Runtime, p: &Params, s: &Store, q: &Questions) -> anyhow::Result<ReaderTimings> {
    let storage: Storage = ours::open(&s.path)?;
    let direct = time_history(rt, &storage, p.runs, q, ReadPath::Direct)?;
    let duckdb = time_history(rt, &storage, p.runs, q, ReadPath::DuckDb)?;
    let files = storage.live_files();
    let indexed: Vec<usize> = files.iter().map(|f| f.index_memory()).filter(|&b| b > 0).collect();
    rt.block_on(storage.shutdown())?;
    Ok(ReaderTimings { direct, duckdb, indexed_files: indexed.len(), index_bytes: indexed.iter().sum() })
}

/// Opens our store as after a restart and times the three questions. Also returns how long
/// seeding the latest-value cache took.
fn time_ours(rt: &tokio::runtime::Runtime, p: &Params, s: &Store, q: &Questions) -> anyhow::Result<(Timings, f64)> {
    let storage: Storage = ours::open(&s.path)?;
    let t = Instant::now();
    rt.block_on(storage.load_latest())?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let [q1, q2] = time_history(rt, &storage, p.runs, q, ReadPath::Auto)?;
    let q3 = time_runs(p.runs, || {
        let l = storage.latest(&[]);
        Ok(Answer { rows: l.len(), check: l.iter().map(|(_, v)| v.value).sum() })
    })?;
    rt.block_on(storage.shutdown())?;
    Ok((Timings { q: [q1, q2, q3] }, load_ms))
}

fn ts_lit(us: i64) -> String {
    let dt = chrono::DateTime::from_timestamp_micros(us).unwrap_or_default();
    format!("TIMESTAMP '{}'", dt.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f"))
}

fn arrow_col<T: 'static>(b: &arrow::record_batch::RecordBatch, i: usize) -> anyhow::Result<&T> {
    b.column(i).as_any().downcast_ref::<T>().with_context(|| format!("unexpected type of column {i}"))
}

fn time_duckdb(p: &Params, s: &Store, q: &Questions) -> anyhow::Result<Timings> {
    let conn = duckdb::Connection::open(&s.path)?;
    let (to, buckets) = (q.to, q.buckets());
    let span = (to - q.q1_from).max(1);
    let q1_sql = format!(
        "SELECT b, min(value) AS lo, max(value) AS hi, arg_min(value, ts) AS first, arg_max(value, ts) AS last,
                min(epoch_us(ts)) AS first_ts, max(epoch_us(ts)) AS last_ts
         FROM (SELECT least(greatest((epoch_us(ts) - {from}) * {buckets} // {span}, 0), {last}) AS b, ts, value
               FROM samples WHERE point_id = {point} AND ts >= {f} AND ts < {t})
         GROUP BY b ORDER BY b",
        from = q.q1_from,
        last = buckets - 1,
        point = q.q1_point,
        f = ts_lit(q.q1_from),
        t = ts_lit(to),
    );
    let q1 = time_runs(p.runs, || {
        let mut stmt = conn.prepare(&q1_sql)?;
        let mut a = Answer::default();
        for b in stmt.query_arrow([])? {
            let lo = arrow_col::<Float64Array>(&b, 1)?;
            let hi = arrow_col::<Float64Array>(&b, 2)?;
            a.rows += b.num_rows();
            a.check += (0..b.num_rows()).map(|i| lo.value(i) + hi.value(i)).sum::<f64>();
        }
        Ok(a)
    })?;
    let list: Vec<String> = q.q2_points.iter().map(|x| x.to_string()).collect();
    let q2_sql = format!(
        "SELECT point_id, epoch_us(ts) AS ts, value FROM samples
         WHERE point_id IN ({}) AND ts >= {} AND ts < {} ORDER BY point_id, ts",
        list.join(","),
        ts_lit(q.q2_from),
        ts_lit(to)
    );
    let q2 = time_runs(p.runs, || {
        let mut stmt = conn.prepare(&q2_sql)?;
        let (mut pts, mut tss, mut vals) = (Vec::new(), Vec::new(), Vec::new());
        for b in stmt.query_arrow([])? {
            pts.extend(arrow_col::<UInt32Array>(&b, 0)?.values().iter().copied());
            tss.extend(arrow_col::<Int64Array>(&b, 1)?.values().iter().copied());
            vals.extend(arrow_col::<Float64Array>(&b, 2)?.values().iter().copied());
        }
        Ok(Answer { rows: vals.len(), check: vals.iter().sum() })
    })?;
    let q3_sql = "SELECT point_id, max(epoch_us(ts)) AS ts, arg_max(value, ts) AS value FROM samples GROUP BY point_id";
    let q3 = time_runs(p.runs, || {
        let mut stmt = conn.prepare(q3_sql)?;
        let mut a = Answer::default();
        for b in stmt.query_arrow([])? {
            let v = arrow_col::<Float64Array>(&b, 2)?;
            a.rows += b.num_rows();
            a.check += v.values().iter().sum::<f64>();
        }
        Ok(a)
    })?;
    Ok(Timings { q: [q1, q2, q3] })
}

fn parse_row(time: &str, value: &str) -> anyhow::Result<(i64, f64)> {
    let t = parse_logging_time(time).with_context(|| format!("bad LoggingTime_Fmt `{time}`"))?;
    let v = value.parse::<f64>().with_context(|| format!("bad Value `{value}`"))?;
    Ok((t, v))
}

fn time_sqlite(p: &Params, s: &Store, q: &Questions) -> anyhow::Result<Timings> {
    let conn = sqlite::open(&s.path, sqlite::Sync::Normal)?;
    let (to, buckets) = (q.to, q.buckets());
    let (from_txt, to_txt, q2_from_txt) =
        (logging_time_fmt(q.q1_from), logging_time_fmt(to), logging_time_fmt(q.q2_from));
    // Parent ids are the point ids (parents were inserted in point order); T3000 resolves them
    // once through its parent cache.
    let q1 = time_runs(p.runs, || {
        let mut stmt = conn.prepare_cached(
            "SELECT LoggingTime_Fmt, Value FROM TRENDLOG_DATA_DETAIL
             WHERE ParentId = ?1 AND LoggingTime_Fmt >= ?2 AND LoggingTime_Fmt < ?3 ORDER BY LoggingTime_Fmt",
        )?;
        let mut rows = stmt.query(rusqlite::params![q.q1_point, from_txt, to_txt])?;
        let (mut ts, mut vals) = (Vec::new(), Vec::new());
        while let Some(r) = rows.next()? {
            let (t, v) = parse_row(r.get_ref(0)?.as_str()?, r.get_ref(1)?.as_str()?)?;
            ts.push(t);
            vals.push(v);
        }
        let out = m4(&ts, &vals, q.q1_from, to, MAX_POINTS);
        Ok(Answer { rows: out.len(), check: minmax_checksum(out, q.q1_from, to, buckets) })
    })?;
    let list: Vec<String> = q.q2_points.iter().map(|x| x.to_string()).collect();
    let q2_sql = format!(
        "SELECT ParentId, LoggingTime_Fmt, Value FROM TRENDLOG_DATA_DETAIL
         WHERE ParentId IN ({}) AND LoggingTime_Fmt >= ?1 AND LoggingTime_Fmt < ?2 ORDER BY ParentId, LoggingTime_Fmt",
        list.join(",")
    );
    let q2 = time_runs(p.runs, || {
        let mut stmt = conn.prepare_cached(&q2_sql)?;
        let mut rows = stmt.query(rusqlite::params![q2_from_txt, to_txt])?;
        let mut out: Vec<(i64, i64, f64)> = Vec::new();
        while let Some(r) = rows.next()? {
            let (t, v) = parse_row(r.get_ref(1)?.as_str()?, r.get_ref(2)?.as_str()?)?;
            out.push((r.get(0)?, t, v));
        }
        Ok(Answer { rows: out.len(), check: out.iter().map(|x| x.2).sum() })
    })?;
    let q3 = time_runs(p.runs, || {
        let mut stmt = conn.prepare_cached(
            "SELECT p.id, d.LoggingTime_Fmt, d.Value FROM TRENDLOG_DATA p
             JOIN TRENDLOG_DATA_DETAIL d ON d.id = (
                 SELECT id FROM TRENDLOG_DATA_DETAIL WHERE ParentId = p.id ORDER BY LoggingTime_Fmt DESC LIMIT 1)",
        )?;
        let mut rows = stmt.query([])?;
        let mut a = Answer::default();
        while let Some(r) = rows.next()? {
            let (_, v) = parse_row(r.get_ref(1)?.as_str()?, r.get_ref(2)?.as_str()?)?;
            a.rows += 1;
            a.check += v;
        }
        Ok(a)
    })?;
    Ok(Timings { q: [q1, q2, q3] })
}
