//! What a file costs: a long-lived store whose days are sparse (a point that reports once a day,
//! a device that was offline most of the time) against the two layouts the engine can keep.
//!
//! The store holds `--days` days with `--per-day` samples each (one point), built through
//! `Storage::ingest` and `flush`, then maintained (compaction, rollups) until a pass has nothing
//! left to do. It is built twice: with `storage.sparse_day_rows = 0` (every day its own file, the
//! layout before sparse days shared files) and with the default (a run of sparse days within a
//! month shares a file; maintenance merges finished months). For each it reports the files, the
//! manifest, what the build and maintenance took and wrote, and SQL answered through `Storage::sql`
//! on a freshly opened store; the difference between the layouts divided by the difference in
//! files is the cost of one file.

#![forbid(unsafe_code)]

use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use t3_benches::args::Args;
use t3_benches::datagen::{DAY_US, START_US};
use t3_benches::report::{self, Table, bytes, count, ms};
use t3_benches::stats::median;
use t3_benches::sys;
use t3_core::clock::ManualClock;
use t3_core::config::Config;
use t3_core::model::Sample;
use t3_storage::Storage;
use t3_storage::maintenance::MaintenanceReport;
use t3_storage::manifest::Table as StoreTable;
use t3_storage::vfs::RealFs;

const USAGE: &str = "\
files: what a file costs, one layout per day against sparse days sharing files

usage: files [options]
  --days D        days in the store (default 5000)
  --per-day N     samples per day, one point (default 1)
  --runs R        timed runs per query (default 5; the median is reported)
  --work-dir DIR  where the stores are built (default ~/.cache/t3000/bench-data; removed after)
  --out NAME      results file benches/results/NAME.md (default files)";

const KEYS: &[&str] = &["days", "per-day", "runs", "work-dir", "out"];

struct Params {
    days: u32,
    per_day: u32,
    runs: usize,
    work_dir: std::path::PathBuf,
    out: String,
}

/// One layout's figures.
struct Layout {
    name: &'static str,
    sparse_day_rows: usize,
    flush_ms: f64,
    flush_written: u64,
    files_after_flush: usize,
    maintain_ms: f64,
    maintain_written: u64,
    passes: u32,
    sample_files: usize,
    rollup_files: usize,
    manifest_bytes: u64,
    disk: u64,
    /// Live files (samples and rollups) and the queries on the store opened afresh after the
    /// flush, before maintenance ...
    before: Timed,
    /// ... and after maintenance.
    after: Timed,
}

/// Queries on a store opened afresh.
#[derive(Default)]
struct Timed {
    files: usize,
    open_ms: f64,
    /// (median ms, answer) in the order of [`QUERIES`].
    queries: Vec<(f64, String)>,
}

/// The SQL timed on each layout: nothing from the store, everything, the last 30 days, and the
/// hourly rollups.
const QUERIES: &[(&str, &str)] = &[
    ("SELECT 1", "SELECT 1"),
    ("count over all samples", "SELECT count(*) FROM samples"),
    (
        "count and avg, last 30 days",
        "SELECT count(*), round(avg(value), 6) FROM samples WHERE ts >= TIMESTAMP '{recent}'",
    ),
    ("sum of hourly rollup counts", "SELECT sum(count) FROM rollups_1h"),
];

/// Bytes this process has written with write(2) and friends so far (`wchar` in /proc/self/io).
fn written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("wchar: ").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(0)
}

fn count_files(storage: &Storage, tables: &[StoreTable]) -> usize {
    storage.live_files().iter().filter(|f| tables.contains(&f.meta.table)).count()
}

fn config(dir: &Path, sparse_day_rows: usize) -> Config {
    let mut cfg = Config::default();
    cfg.storage.data_dir = dir.to_path_buf();
    cfg.storage.sparse_day_rows = sparse_day_rows;
    // Every day is kept, however old.
    cfg.retention.max_age_days = 0;
    cfg
}

fn end_us(p: &Params) -> i64 {
    START_US + p.days as i64 * DAY_US
}

fn run_layout(p: &Params, name: &'static str, sparse_day_rows: usize) -> anyhow::Result<Layout> {
    let dir = p.work_dir.join(format!("files-{name}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let cfg = config(&dir, sparse_day_rows);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    // The clock stands an hour after the last day, so every day is finished and may be merged.
    let now = end_us(p) + 3_600_000_000;
    let step = DAY_US / p.per_day as i64;
    let (flush_ms, flush_written, files_after_flush) = rt.block_on(async {
        let storage = Storage::open(&cfg, Arc::new(RealFs), ManualClock::new(now))?;
        // A batch holds at most `ingest.max_days_per_batch` days, as a client must send them.
        let days_per_batch = cfg.ingest.max_days_per_batch as i64;
        for first in (0..p.days as i64).step_by(days_per_batch as usize) {
            let mut batch = Vec::new();
            for d in first..(first + days_per_batch).min(p.days as i64) {
                for k in 0..p.per_day as i64 {
                    // From midday on: every sample lies well inside its day.
                    let ts = START_US + d * DAY_US + DAY_US / 2 + k * step / 2;
                    batch.push(Sample::good(1, ts, 20.0 + (d % 50) as f64 / 10.0));
                }
            }
            storage.ingest(batch).await?;
        }
        let w0 = written();
        let t0 = Instant::now();
        storage.flush().await?;
        let flush_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let flush_written = written() - w0;
        let files_after_flush = count_files(&storage, &[StoreTable::Samples]);
        storage.shutdown().await?;
        anyhow::Ok((flush_ms, flush_written, files_after_flush))
    })?;
    let recent = chrono::DateTime::from_timestamp_micros(end_us(p) - 30 * DAY_US)
        .context("timestamp")?
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let before = time_queries(&rt, &cfg, now, &recent, p.runs)?;
    let mut layout = rt.block_on(async {
        let storage = Storage::open(&cfg, Arc::new(RealFs), ManualClock::new(now))?;
        let w1 = written();
        let t1 = Instant::now();
        let mut passes = 0;
        loop {
            let r = storage.maintain().await?;
            passes += 1;
            if r == MaintenanceReport::default() || passes >= 50 {
                break;
            }
        }
        let maintain_ms = t1.elapsed().as_secs_f64() * 1000.0;
        let maintain_written = written() - w1;
        let layout = Layout {
            name,
            sparse_day_rows,
            flush_ms,
            flush_written,
            files_after_flush,
            maintain_ms,
            maintain_written,
            passes,
            sample_files: count_files(&storage, &[StoreTable::Samples]),
            rollup_files: count_files(&storage, &[StoreTable::Rollups1m, StoreTable::Rollups1h]),
            manifest_bytes: std::fs::metadata(dir.join("manifest.json")).map(|m| m.len()).unwrap_or(0),
            disk: 0,
            before,
            after: Timed::default(),
        };
        storage.shutdown().await?;
        anyhow::Ok(layout)
    })?;
    layout.disk = sys::disk_usage(&dir);

    layout.after = time_queries(&rt, &cfg, now, &recent, p.runs)?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(layout)
}

/// Opens the store afresh, as after a restart, and times each of [`QUERIES`].
fn time_queries(
    rt: &tokio::runtime::Runtime,
    cfg: &Config,
    now: i64,
    recent: &str,
    runs: usize,
) -> anyhow::Result<Timed> {
    rt.block_on(async {
        let t = Instant::now();
        let storage = Storage::open(cfg, Arc::new(RealFs), ManualClock::new(now))?;
        let mut timed = Timed { open_ms: t.elapsed().as_secs_f64() * 1000.0, ..Timed::default() };
        timed.files = storage.live_files().len();
        for (_, sql) in QUERIES {
            let sql = sql.replace("{recent}", recent);
            // A warm-up run: the first read of a file verifies its checksum.
            let first = storage.sql(&sql).await?;
            let answer = serde_json::to_string(&first.rows)?;
            let mut times = Vec::with_capacity(runs);
            for _ in 0..runs {
                let t = Instant::now();
                storage.sql(&sql).await?;
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            timed.queries.push((median(&times), answer));
        }
        storage.shutdown().await?;
        anyhow::Ok(timed)
    })
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse(KEYS, &[], USAGE)?;
    let p = Params {
        days: a.get("days", 5000)?,
        per_day: a.get("per-day", 1)?,
        runs: a.get("runs", 5)?,
        work_dir: a.string("work-dir").map(Into::into).unwrap_or_else(sys::default_work_dir),
        out: a.get("out", "files".to_string())?,
    };
    anyhow::ensure!(p.days > 0 && p.per_day > 0 && p.runs > 0, "--days, --per-day and --runs must be positive");
    anyhow::ensure!(p.per_day <= 1440, "--per-day is at most 1440 (one a minute)");
    std::fs::create_dir_all(&p.work_dir)?;
    let load_start = sys::loadavg();
    let default_rows = Config::default().storage.sparse_day_rows;
    let mut layouts = Vec::new();
    for (name, rows) in [("file per day", 0), ("sparse days share files", default_rows)] {
        eprintln!("[files] {name} ...");
        layouts.push(run_layout(&p, name, rows)?);
    }
    // Before maintenance there are no rollups yet, so the layouts are compared stage by stage.
    for (i, (label, _)) in QUERIES.iter().enumerate() {
        let [a, b] = [&layouts[0], &layouts[1]];
        anyhow::ensure!(
            a.before.queries[i].1 == b.before.queries[i].1 && a.after.queries[i].1 == b.after.queries[i].1,
            "{label}: the layouts answered differently: before maintenance {} vs {}, after {} vs {}",
            a.before.queries[i].1,
            b.before.queries[i].1,
            a.after.queries[i].1,
            b.after.queries[i].1
        );
    }

    let mut md = String::new();
    md.push_str("# Files benchmark: what a file costs\n\n");
    md.push_str(&format!("- Command: `{}`\n", report::command_line()));
    md.push_str(&format!("- Run: {} on {}\n", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"), sys::machine()));
    md.push_str(&format!(
        "- Data: one point, {} days from 2024-01-01 with {} sample(s) each ({} samples), ingested through \
         `Storage::ingest`, flushed, then maintained until a pass has nothing to do, with the clock an hour \
         after the last day. Queries through `Storage::sql` on the store opened afresh after the flush (before \
         maintenance) and again after maintenance: one warm-up (it verifies each file's checksum), then the \
         median of {} runs. \"Written\" is what the process wrote \
         (`wchar`), the manifest included.\n",
        count(p.days as u64),
        p.per_day,
        count(p.days as u64 * p.per_day as u64),
        p.runs
    ));
    md.push_str(&format!("- Load average at the start: {load_start}; at the end: {}\n\n", sys::loadavg()));

    let mut t = Table::new(&[
        "Layout",
        "storage.sparse_day_rows",
        "Sample files after flush",
        "Flush",
        "Flush wrote",
        "Maintenance",
        "Maintenance wrote",
        "Sample files",
        "Rollup files",
        "Manifest",
        "On disk",
    ]);
    for l in &layouts {
        t.row(vec![
            l.name.to_string(),
            count(l.sparse_day_rows as u64),
            count(l.files_after_flush as u64),
            ms(l.flush_ms),
            bytes(l.flush_written),
            format!("{} ({} passes)", ms(l.maintain_ms), l.passes),
            bytes(l.maintain_written),
            count(l.sample_files as u64),
            count(l.rollup_files as u64),
            bytes(l.manifest_bytes),
            bytes(l.disk),
        ]);
    }
    md.push_str("## Layouts\n\n");
    md.push_str(&t.render());

    let (a, b) = (&layouts[0], &layouts[1]);
    for (title, x, y) in
        [("after the flush, before maintenance", &a.before, &b.before), ("after maintenance", &a.after, &b.after)]
    {
        let mut t = Table::new(&["", a.name, b.name, "ratio", "per file (difference / difference in files)"]);
        let file_diff = x.files as f64 - y.files as f64;
        let per = |tx: f64, ty: f64| {
            if file_diff > 0.0 { format!("{:.1} µs", (tx - ty) * 1000.0 / file_diff) } else { "-".into() }
        };
        t.row(vec![
            "live files (samples and rollups)".into(),
            count(x.files as u64),
            count(y.files as u64),
            "".into(),
            "".into(),
        ]);
        t.row(vec![
            "open".into(),
            ms(x.open_ms),
            ms(y.open_ms),
            report::ratio(x.open_ms, y.open_ms),
            per(x.open_ms, y.open_ms),
        ]);
        for (i, (label, _)) in QUERIES.iter().enumerate() {
            let (tx, ty) = (x.queries[i].0, y.queries[i].0);
            t.row(vec![label.to_string(), ms(tx), ms(ty), report::ratio(tx, ty), per(tx, ty)]);
        }
        md.push_str(&format!("\n## SQL on the store opened afresh, {title}\n\n"));
        md.push_str(&t.render());
    }
    md.push_str(
        "\nBoth layouts gave the same answers at each stage. The per-file figure divides the difference in time by the difference \
         in live files: what each file a query plans over costs.\n",
    );
    let path = report::write_results(&p.out, &md)?;
    println!("{md}");
    eprintln!("[files] wrote {}", path.display());
    Ok(())
}
