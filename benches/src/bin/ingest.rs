//! Ingest throughput: the same generated samples through our storage engine, SQLite in the
//! T3000 WebView style, and DuckDB's appender. Each system runs in its own child process (this
//! binary with `--system`), so peak RSS is per system; the parent prints and saves the table.

#![forbid(unsafe_code)]

use anyhow::{Context, bail};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
use t3_benches::args::Args;
use t3_benches::datagen::Workload;
use t3_benches::measured::{Measured, get_f, get_u, print, put, run_child};
use t3_benches::report::{self, Table, bytes, count, pass, rate, ratio, us_as_ms};
use t3_benches::{duck, ours, sqlite, sys};

const USAGE: &str = "\
ingest: sustained ingest throughput, ours vs SQLite (T3000 WebView schema) vs DuckDB

cargo run --release -p t3-benches --bin ingest -- [options]
  --samples N          samples to ingest (default 20000000)
  --points P           points, sampled once a minute (default 1000)
  --batch B            samples per batch / transaction (default 10000)
  --writers W          concurrent writer tasks for our engine (default 4)
  --systems LIST       comma-separated subset of ours,sqlite,duckdb (default all)
  --repeat R           runs of ours and DuckDB; the table shows the median run (default 3)
  --sqlite-repeat R    runs of SQLite (default 1)
  --sqlite-sync S      normal|full: SQLite's synchronous pragma (default normal)
  --sqlite-indexes I   minimal|t3000: one index on the detail table, or T3000 WebView's four (default minimal)
  --sqlite-max-secs S  stop SQLite after this many seconds and report the samples it took (default 270)
  --work-dir DIR       where the temporary stores go (default $HOME/.cache/t3000/bench-data)
  --out NAME           write the table to benches/results/NAME.md (default ingest)
  --keep               keep the stores instead of deleting them";

const KEYS: &[&str] = &[
    "samples",
    "points",
    "batch",
    "writers",
    "systems",
    "repeat",
    "sqlite-repeat",
    "sqlite-sync",
    "sqlite-indexes",
    "sqlite-max-secs",
    "work-dir",
    "out",
    "system",
];
const SYSTEMS: [&str; 3] = ["ours", "sqlite", "duckdb"];

/// Target of the issue: at least this many samples per second through our engine.
const TARGET_RATE: f64 = 2_000_000.0;
/// Target: at least this many times SQLite's rate.
const TARGET_VS_SQLITE: f64 = 20.0;
/// Target: peak RSS below 500 MB.
const TARGET_RSS: u64 = 500_000_000;

#[derive(Debug)]
struct Params {
    samples: u64,
    points: u32,
    batch: usize,
    writers: usize,
    systems: Vec<String>,
    repeat: usize,
    sqlite_repeat: usize,
    sqlite_sync: sqlite::Sync,
    sqlite_indexes: sqlite::Indexes,
    sqlite_max_secs: f64,
    work_dir: PathBuf,
    out: String,
    keep: bool,
}

impl Params {
    fn from(a: &Args) -> anyhow::Result<Params> {
        let systems: Vec<String> = a
            .string("systems")
            .map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
            .unwrap_or_else(|| SYSTEMS.iter().map(|s| s.to_string()).collect());
        for s in &systems {
            if !SYSTEMS.contains(&s.as_str()) {
                bail!("unknown system `{s}` (expected ours, sqlite, duckdb)");
            }
        }
        let p = Params {
            samples: a.get("samples", 20_000_000)?,
            points: a.get("points", 1000)?,
            batch: a.get("batch", 10_000)?,
            writers: a.get("writers", 4)?,
            systems,
            repeat: a.get("repeat", 3)?,
            sqlite_repeat: a.get("sqlite-repeat", 1)?,
            sqlite_sync: a.get("sqlite-sync", sqlite::Sync::Normal)?,
            sqlite_indexes: a.get("sqlite-indexes", sqlite::Indexes::Minimal)?,
            sqlite_max_secs: a.get("sqlite-max-secs", 270.0)?,
            work_dir: a.opt::<PathBuf>("work-dir")?.unwrap_or_else(sys::default_work_dir),
            out: a.string("out").unwrap_or_else(|| "ingest".into()),
            keep: a.flag("keep"),
        };
        if p.samples == 0 || p.points == 0 || p.batch == 0 || p.writers == 0 {
            bail!("--samples, --points, --batch and --writers must be positive");
        }
        if p.repeat == 0 || p.sqlite_repeat == 0 {
            bail!("--repeat and --sqlite-repeat must be positive");
        }
        Ok(p)
    }

    /// The options a child needs to reproduce the run.
    fn child_args(&self) -> Vec<String> {
        let mut v = vec![
            "--samples".into(),
            self.samples.to_string(),
            "--points".into(),
            self.points.to_string(),
            "--batch".into(),
            self.batch.to_string(),
            "--writers".into(),
            self.writers.to_string(),
            "--sqlite-sync".into(),
            self.sqlite_sync.name().to_ascii_lowercase(),
            "--sqlite-indexes".into(),
            match self.sqlite_indexes {
                sqlite::Indexes::Minimal => "minimal".into(),
                sqlite::Indexes::T3000 => "t3000".into(),
            },
            "--sqlite-max-secs".into(),
            self.sqlite_max_secs.to_string(),
            "--work-dir".into(),
            self.work_dir.display().to_string(),
        ];
        if self.keep {
            v.push("--keep".into());
        }
        v
    }
}

fn put_latency(m: &mut Measured, h: &hdrhistogram::Histogram<u64>) {
    put(m, "batches", h.len());
    put(m, "p50_us", h.value_at_quantile(0.50));
    put(m, "p99_us", h.value_at_quantile(0.99));
    put(m, "max_us", h.max());
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse(KEYS, &["keep"], USAGE)?;
    let p = Params::from(&args)?;
    std::fs::create_dir_all(&p.work_dir).with_context(|| format!("create {}", p.work_dir.display()))?;
    if let Some(system) = args.string("system") {
        let m = match system.as_str() {
            "ours" => run_ours(&p)?,
            "sqlite" => run_sqlite(&p)?,
            "duckdb" => run_duckdb(&p)?,
            other => bail!("unknown system `{other}`"),
        };
        print(&m);
        return Ok(());
    }
    parent(&p)
}

fn tempdir(p: &Params, system: &str) -> anyhow::Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new().prefix(&format!("ingest-{system}-")).tempdir_in(&p.work_dir)?)
}

fn finish_dir(p: &Params, dir: tempfile::TempDir) {
    if p.keep {
        eprintln!("  kept {}", dir.keep().display());
    }
}

fn run_ours(p: &Params) -> anyhow::Result<Measured> {
    let wl = Workload::new(p.points);
    let dir = tempdir(p, "ours")?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let m = rt.block_on(async {
        let storage = ours::open(dir.path())?;
        storage.start_background();
        let t0 = Instant::now();
        let run = ours::ingest(&storage, wl, 0, p.samples, p.batch, p.writers, ours::OnBacklog::Wait).await?;
        let acked = t0.elapsed().as_secs_f64();
        storage.flush().await?;
        let total = t0.elapsed().as_secs_f64();
        let disk = sys::disk_usage(storage.data_dir());
        let files = sys::count_files(storage.data_dir(), ".parquet");
        storage.shutdown().await?;
        let mut m = Measured::new();
        put(&mut m, "samples", p.samples);
        put(&mut m, "writers", p.writers);
        put(&mut m, "secs_acked", acked);
        put(&mut m, "secs_total", total);
        put(&mut m, "disk_bytes", disk);
        put(&mut m, "parquet_files", files);
        put(&mut m, "backlog_rejections", run.backlog_rejections);
        put_latency(&mut m, &run.latency_us);
        anyhow::Ok(m)
    })?;
    drop(rt);
    let mut m = m;
    put(&mut m, "peak_rss", sys::peak_rss());
    finish_dir(p, dir);
    Ok(m)
}

fn run_sqlite(p: &Params) -> anyhow::Result<Measured> {
    let wl = Workload::new(p.points);
    let dir = tempdir(p, "sqlite")?;
    let db = dir.path().join("t3000.db");
    let conn = sqlite::open(&db, p.sqlite_sync)?;
    let parents = sqlite::create_schema(&conn, p.points)?;
    sqlite::create_indexes(&conn, p.sqlite_indexes)?;
    let mut hist = ours::latency_histogram();
    let batches = p.samples.div_ceil(p.batch as u64);
    let mut inserted = 0u64;
    let mut capped = false;
    let t0 = Instant::now();
    for b in 0..batches {
        if t0.elapsed().as_secs_f64() > p.sqlite_max_secs {
            capped = true;
            break;
        }
        let start = b * p.batch as u64;
        let n = (p.samples - start).min(p.batch as u64);
        let t = Instant::now();
        sqlite::insert_batch(&conn, &parents, &wl, start, n)?;
        hist.saturating_record(t.elapsed().as_micros() as u64);
        inserted += n;
    }
    let acked = t0.elapsed().as_secs_f64();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    let total = t0.elapsed().as_secs_f64();
    let disk = sqlite::files_size(&db);
    drop(conn);
    let mut m = Measured::new();
    put(&mut m, "samples", inserted);
    put(&mut m, "writers", 1);
    put(&mut m, "capped", u8::from(capped));
    put(&mut m, "secs_acked", acked);
    put(&mut m, "secs_total", total);
    put(&mut m, "disk_bytes", disk);
    put_latency(&mut m, &hist);
    put(&mut m, "peak_rss", sys::peak_rss());
    finish_dir(p, dir);
    Ok(m)
}

fn run_duckdb(p: &Params) -> anyhow::Result<Measured> {
    let wl = Workload::new(p.points);
    let dir = tempdir(p, "duckdb")?;
    let db = dir.path().join("bench.duckdb");
    let conn = duck::open(&db)?;
    let mut hist = ours::latency_histogram();
    let batches = p.samples.div_ceil(p.batch as u64);
    let t0 = Instant::now();
    {
        let mut app = conn.appender("samples")?;
        for b in 0..batches {
            let start = b * p.batch as u64;
            let n = (p.samples - start).min(p.batch as u64);
            let rb = duck::batch(&wl, start, n);
            let t = Instant::now();
            app.append_record_batch(rb)?;
            app.flush()?;
            hist.saturating_record(t.elapsed().as_micros() as u64);
        }
    }
    let acked = t0.elapsed().as_secs_f64();
    conn.execute_batch("CHECKPOINT;")?;
    let total = t0.elapsed().as_secs_f64();
    let rows: u64 = conn.query_row("SELECT count(*) FROM samples", [], |r| r.get(0))?;
    anyhow::ensure!(rows == p.samples, "DuckDB holds {rows} rows, expected {}", p.samples);
    let disk = duck::files_size(&db);
    drop(conn);
    let mut m = Measured::new();
    put(&mut m, "samples", p.samples);
    put(&mut m, "writers", 1);
    put(&mut m, "secs_acked", acked);
    put(&mut m, "secs_total", total);
    put(&mut m, "disk_bytes", disk);
    put_latency(&mut m, &hist);
    put(&mut m, "peak_rss", sys::peak_rss());
    finish_dir(p, dir);
    Ok(m)
}

fn run_system(p: &Params, system: &str) -> anyhow::Result<Measured> {
    let exe = std::env::current_exe()?;
    eprintln!("[ingest] {system}: {} samples ...", count(p.samples));
    let t = Instant::now();
    let m = run_child(Command::new(exe).arg("--system").arg(system).args(p.child_args()), &format!("{system} run"))?;
    eprintln!("[ingest] {system}: done in {:.1} s", t.elapsed().as_secs_f64());
    Ok(m)
}

fn parent(p: &Params) -> anyhow::Result<()> {
    let wl = Workload::new(p.points);
    let started = chrono::Utc::now();

    // The generator's own cost, which every system pays inside its timing.
    let gen_t = Instant::now();
    let mut buf = Vec::new();
    let mut checksum = 0.0;
    let mut k = 0;
    while k < p.samples {
        let n = (p.samples - k).min(p.batch as u64) as usize;
        wl.fill(k, n, &mut buf);
        checksum += buf.iter().map(|s| s.value).sum::<f64>();
        k += n as u64;
    }
    let gen_rate = p.samples as f64 / gen_t.elapsed().as_secs_f64();
    eprintln!("[ingest] generator: {} on one core (checksum {checksum:.1})", rate(gen_rate));

    let load_start = sys::loadavg();
    let mut results: Vec<(String, Measured)> = Vec::new();
    for s in &p.systems {
        let runs = if s == "sqlite" { p.sqlite_repeat } else { p.repeat };
        let mut all = Vec::with_capacity(runs);
        for _ in 0..runs {
            all.push(run_system(p, s)?);
        }
        let rate_of = |m: &Measured| get_f(m, "samples") / get_f(m, "secs_total");
        let rates: Vec<String> = all.iter().map(|m| format!("{:.2} M", rate_of(m) / 1e6)).collect();
        let max_rss = all.iter().map(|m| get_u(m, "peak_rss")).max().unwrap_or(0);
        all.sort_by(|a, b| rate_of(a).total_cmp(&rate_of(b)));
        let mut median = all.swap_remove(all.len() / 2);
        put(&mut median, "runs", rates.join(", "));
        put(&mut median, "peak_rss_max", max_rss);
        results.push((s.clone(), median));
    }
    let find = |name: &str| results.iter().find(|(s, _)| s == name).map(|(_, m)| m);
    let ours_rate = find("ours").map(|m| get_f(m, "samples") / get_f(m, "secs_total"));

    let minutes = p.samples.div_ceil(p.points as u64);
    let mut md = String::new();
    md.push_str("# Ingest benchmark\n\n");
    md.push_str(&format!("- Command: `{}`\n", report::command_line()));
    md.push_str(&format!("- Run: {} UTC on {}\n", started.format("%Y-%m-%d %H:%M"), sys::machine()));
    md.push_str(&format!(
        "- Workload: {} samples = {} points x {} minutes ({:.1} days at a 1-minute interval from 2024-01-01, arriving time-major), \
         batches of {} samples; 80 % analog points (room temperature, humidity, CO2, valve, supply air), 20 % digital.\n",
        count(p.samples),
        count(p.points as u64),
        count(minutes),
        minutes as f64 / 1440.0,
        count(p.batch as u64)
    ));
    md.push_str(&format!(
        "- Data generation alone: {} on one core; every system below generates its batches inside its timed loop.\n",
        rate(gen_rate)
    ));
    md.push_str(&format!("- Stores in `{}`.\n", p.work_dir.display()));
    md.push_str(&format!(
        "- Load average (1/5/15 min) before the runs: {load_start}; after: {} (anything else running shares the cores).\n\n",
        sys::loadavg()
    ));

    let mut t = Table::new(&[
        "System",
        "Writers",
        "Samples",
        "Time (s)",
        "Samples/s",
        "ours / this",
        "Ack p50",
        "Ack p99",
        "Ack max",
        "Peak RSS",
        "On disk",
        "Bytes/sample",
        "Every run (samples/s)",
    ]);
    for (name, m) in &results {
        let samples = get_u(m, "samples");
        let secs = get_f(m, "secs_total");
        let r = samples as f64 / secs;
        let label = match name.as_str() {
            "ours" => "ours (t3-storage, WAL fsync per group commit + Parquet)".to_string(),
            "sqlite" => format!(
                "SQLite, T3000 WebView schema (WAL, synchronous={}{})",
                p.sqlite_sync.name(),
                if get_u(m, "capped") == 1 { format!(", CAPPED at {} s", p.sqlite_max_secs) } else { String::new() }
            ),
            _ => "DuckDB native table (Arrow appender, commit per batch)".to_string(),
        };
        t.row(vec![
            label,
            get_u(m, "writers").to_string(),
            count(samples),
            format!("{secs:.2}"),
            rate(r),
            ours_rate.map(|o| ratio(o, r)).unwrap_or_else(|| "n/a".into()),
            us_as_ms(get_u(m, "p50_us")),
            us_as_ms(get_u(m, "p99_us")),
            us_as_ms(get_u(m, "max_us")),
            bytes(get_u(m, "peak_rss")),
            bytes(get_u(m, "disk_bytes")),
            format!("{:.2}", get_u(m, "disk_bytes") as f64 / samples as f64),
            m.get("runs").cloned().unwrap_or_default(),
        ]);
    }
    md.push_str(&t.render());

    if let Some(o) = find("ours") {
        let orate = get_f(o, "samples") / get_f(o, "secs_total");
        let rss = get_u(o, "peak_rss_max");
        md.push_str("\n## Targets (ours)\n\n");
        if p.samples < 20_000_000 {
            md.push_str(
                "This run is smaller than the default 20,000,000 samples; fixed costs (start-up, the final flush) weigh more.\n\n",
            );
        }
        let mut tt = Table::new(&["Target", "Measured", "Result"]);
        tt.row(vec![
            "ingest >= 2,000,000 samples/s (final flush to Parquet included)".into(),
            rate(orate),
            pass(orate >= TARGET_RATE),
        ]);
        if let Some(s) = find("sqlite") {
            let srate = get_f(s, "samples") / get_f(s, "secs_total");
            let capped = get_u(s, "capped") == 1;
            tt.row(vec![
                format!("ours >= 20x SQLite{}", if capped { " (SQLite capped: fewer samples)" } else { "" }),
                ratio(orate, srate),
                pass(orate / srate >= TARGET_VS_SQLITE),
            ]);
        }
        tt.row(vec![
            "p99 ack latency per batch reported".into(),
            format!(
                "p50 {} / p99 {} / max {}",
                us_as_ms(get_u(o, "p50_us")),
                us_as_ms(get_u(o, "p99_us")),
                us_as_ms(get_u(o, "max_us"))
            ),
            "reported".into(),
        ]);
        tt.row(vec!["peak RSS < 500 MB (476.8 MiB), highest of all runs".into(), bytes(rss), pass(rss < TARGET_RSS)]);
        md.push_str(&tt.render());
    }

    md.push_str("\n## Notes\n\n");
    if let Some(o) = find("ours") {
        md.push_str(&format!(
            "- ours: {} tokio writer tasks each await `Storage::ingest(batch)` (ack level `wal`: the batch is in a WAL group commit \
             that was fsynced) before generating the next batch; the background flusher writes zstd Parquet meanwhile. \
             The time includes the final `flush()` to Parquet. Rate counting acknowledgements only (before the final flush): {}. \
             Batches refused with `Backlog` (flusher behind) and retried: {}. Parquet files written: {}. \
             Ack latency = first attempt to acknowledgement, including any retries.\n",
            p.writers,
            rate(get_f(o, "samples") / get_f(o, "secs_acked")),
            get_u(o, "backlog_rejections"),
            get_u(o, "parquet_files"),
        ));
    }
    if let Some(s) = find("sqlite") {
        md.push_str(&format!(
            "- SQLite (bundled {}): tables TRENDLOG_DATA (parent, unique on SerialNumber, PanelId, PointId, PointIndex, PointType) and \
             TRENDLOG_DATA_DETAIL (id INTEGER PRIMARY KEY, ParentId, Value TEXT, LoggingTime_Fmt TEXT `YYYY-MM-DD HH:MM:SS`) with {}; \
             `journal_mode=WAL`, `synchronous={}`{}; page cache {} MiB; one transaction per batch of {} rows, one writer \
             (SQLite has a single writer). Ack latency = insert + COMMIT of one batch. The time includes a final \
             `wal_checkpoint(TRUNCATE)`; on disk = db + -wal + -shm after it.{}\n",
            rusqlite::version(),
            match p.sqlite_indexes {
                sqlite::Indexes::Minimal => "one index on (ParentId, LoggingTime_Fmt)".to_string(),
                sqlite::Indexes::T3000 => "T3000 WebView's four detail indexes: (ParentId), (LoggingTime_Fmt DESC), \
                     (ParentId, LoggingTime_Fmt), (LoggingTime_Fmt, ParentId)"
                    .to_string(),
            },
            p.sqlite_sync.name(),
            match p.sqlite_sync {
                sqlite::Sync::Normal => {
                    " (in WAL mode a COMMIT is not fsynced, only checkpoints are: safe against a process crash, \
                     but a power loss can drop the last transactions; ours fsyncs before every ack)"
                }
                sqlite::Sync::Full => " (every COMMIT fsyncs the WAL)",
            },
            sqlite::CACHE_MIB,
            count(p.batch as u64),
            if get_u(s, "capped") == 1 {
                format!(
                    " SQLite was stopped after {} s, at {} of {} samples; its rate is over the samples it took (a fuller table only gets slower).",
                    p.sqlite_max_secs,
                    count(get_u(s, "samples")),
                    count(p.samples)
                )
            } else {
                String::new()
            }
        ));
    }
    if find("duckdb").is_some() {
        md.push_str(&format!(
            "- DuckDB {}: native table (point_id UINTEGER, ts TIMESTAMP, value DOUBLE, quality UTINYINT) in a file database; \
             one connection; each batch is appended as an Arrow record batch and `flush()`ed (one commit per batch). \
             Ack latency = append + flush. The time includes a final CHECKPOINT; on disk = .duckdb + .wal after it.\n",
            duckdb_version()
        ));
    }
    md.push_str(&format!(
        "- Each run is a child process of its own, so its peak RSS (VmHWM) is its own. Ours and DuckDB ran {} times, SQLite {}; \
         each row shows the run with the median throughput (its latencies, RSS and size) and lists every run's rate; the \
         targets use the median run, and the highest RSS of all runs.\n",
        p.repeat, p.sqlite_repeat
    ));

    println!("{md}");
    let path = report::write_results(&p.out, &md)?;
    eprintln!("[ingest] wrote {}", path.display());
    Ok(())
}

fn duckdb_version() -> String {
    duckdb::Connection::open_in_memory()
        .and_then(|c| c.query_row("SELECT version()", [], |r| r.get::<_, String>(0)))
        .unwrap_or_else(|_| "?".into())
}
