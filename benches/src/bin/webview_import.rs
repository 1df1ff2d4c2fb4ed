//! Importing a T3000 WebView database: samples per second from a database of at least 10 M
//! `TRENDLOG_DATA_DETAIL` rows through the real `t3000` binary, and, beside it, what SQLite itself
//! takes to count and to read those rows (the floor any importer of this file stands on).
//!
//! The database has WebView's real schema (its SQL executed as it is, see
//! `t3_tests::webview_db`), D devices x 7 trended points x N polls, built once and cached under
//! `$HOME/.cache/t3000/webview-import/`. A `t3000 serve` starts on a fresh data directory; the
//! import is the product's own path: `t3000 import webview FILE --apply` (upload streamed to the
//! server, the catalog part, then the history job through `Storage::ingest`, acknowledged at the
//! WAL fsync, in batches) followed until the job is done. Figures: the whole command's wall time,
//! the history job's own time and samples/s (from its start and finish time stamps), the server's
//! peak RSS, and a `count(*)` over the stored samples that must equal the rows.
//! SQLite side, on the same file: `SELECT COUNT(*)` and a full read of (ParentId, Value,
//! LoggingTime_Fmt) with the value parsed as a number, medians of 3 runs, page cache warm.

#![forbid(unsafe_code)]

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;
use t3_benches::args::Args;
use t3_benches::measured::{Measured, get_f, get_u, put};
use t3_benches::report::{self, Table, bytes, count, ms, rate};
use t3_benches::server::{ADMIN_PASSWORD, http, login, status_bytes};
use t3_benches::stats::median;
use t3_benches::sys;
use t3_tests::webview_db::{self, POINTS, Spec};

const USAGE: &str = "\
webview_import: importing a T3000 WebView database through the real t3000 binary

usage: webview_import [options]
  --rows N          detail rows, at least (default 10000000)
  --devices D       devices (7 trended points each; default 100)
  --batch-rows B    detail rows per stored batch (default the server's, 50000)
  --t3000 PATH      the server binary (default: t3000 beside this binary)
  --work-dir DIR    where the server's data directory goes (default $HOME/.cache/t3000/bench-data)
  --cache-dir DIR   where the database is kept between runs (default $HOME/.cache/t3000/webview-import)
  --out NAME        results file benches/results/NAME.md (default webview_import)";

const KEYS: &[&str] = &["rows", "devices", "batch-rows", "t3000", "work-dir", "cache-dir", "out"];

fn main() -> anyhow::Result<()> {
    let a = Args::parse(KEYS, &[], USAGE)?;
    let rows: u64 = a.get("rows", 10_000_000)?;
    let devices: u32 = a.get("devices", 100)?;
    let batch_rows: Option<usize> = a.opt("batch-rows")?;
    let out: String = a.get("out", "webview_import".to_owned())?;
    let t3000 = match a.string("t3000") {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()?.with_file_name("t3000"),
    };
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    let cache =
        a.string("cache-dir").map_or_else(|| PathBuf::from(&home).join(".cache/t3000/webview-import"), PathBuf::from);
    let work = a.string("work-dir").map_or_else(sys::default_work_dir, PathBuf::from);
    std::fs::create_dir_all(&cache)?;
    std::fs::create_dir_all(&work)?;

    let per_poll = u64::from(devices) * POINTS.len() as u64;
    let spec = Spec { devices, polls: rows.div_ceil(per_poll), start: "2024-01-01 00:00:00".into(), step_secs: 300 };
    let db = cache.join(format!("webview-{devices}x{}.db", spec.polls));
    let mut m = Measured::new();
    if !db.exists() {
        eprintln!("building {} ({} rows) ...", db.display(), per_poll * spec.polls);
        let tmp = db.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let t = Instant::now();
        webview_db::build(&tmp, &spec)?;
        std::fs::rename(&tmp, &db)?;
        put(&mut m, "build_secs", t.elapsed().as_secs_f64());
    }
    let file_bytes = std::fs::metadata(&db)?.len();

    // SQLite on its own file: count, and a full read of the rows an import must read.
    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let (mut count_ms, mut scan_ms) = (Vec::new(), Vec::new());
    let mut detail_rows = 0u64;
    for _ in 0..3 {
        let t = Instant::now();
        detail_rows = conn.query_row("SELECT COUNT(*) FROM TRENDLOG_DATA_DETAIL", [], |r| r.get::<_, i64>(0))? as u64;
        count_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let mut st = conn.prepare("SELECT ParentId, Value, LoggingTime_Fmt FROM TRENDLOG_DATA_DETAIL")?;
        let mut q = st.query([])?;
        let (mut n, mut sum) = (0u64, 0.0f64);
        while let Some(r) = q.next()? {
            let v: String = r.get(1)?;
            sum +=
                v.parse::<f64>().unwrap_or(0.0) + r.get::<_, i64>(0)? as f64 + r.get_ref(2)?.as_bytes()?.len() as f64;
            n += 1;
        }
        anyhow::ensure!(n == detail_rows && sum.is_finite());
        scan_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    count_ms.sort_by(f64::total_cmp);
    scan_ms.sort_by(f64::total_cmp);
    drop(conn);
    put(&mut m, "rows", detail_rows);
    put(&mut m, "sqlite_count_ms", median(&count_ms));
    put(&mut m, "sqlite_scan_ms", median(&scan_ms));

    import(&t3000, &work, &db, batch_rows, detail_rows, &mut m)?;

    let secs = get_f(&m, "job_ms") / 1000.0;
    let mut t = Table::new(&["what", "time", "rows/s or samples/s"]);
    t.row(vec![
        "ours: `t3000 import webview --apply`, whole command (upload, hash, schema check, catalog, history)".into(),
        ms(get_f(&m, "command_ms")),
        rate(detail_rows as f64 / (get_f(&m, "command_ms") / 1000.0)),
    ]);
    t.row(vec![
        "ours: the history job (read, convert, `Storage::ingest` with WAL fsync per batch, cursor in the catalog)"
            .into(),
        ms(get_f(&m, "job_ms")),
        rate(get_u(&m, "samples") as f64 / secs),
    ]);
    t.row(vec![
        "SQLite: `SELECT COUNT(*) FROM TRENDLOG_DATA_DETAIL` (median of 3)".into(),
        ms(get_f(&m, "sqlite_count_ms")),
        rate(detail_rows as f64 / (get_f(&m, "sqlite_count_ms") / 1000.0)),
    ]);
    t.row(vec![
        "SQLite: read every detail row (ParentId, Value parsed, LoggingTime_Fmt) (median of 3)".into(),
        ms(get_f(&m, "sqlite_scan_ms")),
        rate(detail_rows as f64 / (get_f(&m, "sqlite_scan_ms") / 1000.0)),
    ]);
    t.row(vec![
        "ours: `SELECT count(*) FROM samples` after the import (POST /api/t3000/query)".into(),
        ms(get_f(&m, "count_ms")),
        rate(get_u(&m, "stored") as f64 / (get_f(&m, "count_ms") / 1000.0)),
    ]);
    let md = format!(
        "# WebView import\n\n{}\n\nCommand: `{}`\n\n\
         Database: T3000 WebView's schema (its SQL as it is), {} devices x {} trended points x {} polls = {} \
         `TRENDLOG_DATA_DETAIL` rows, {} on disk{}.\n\n{}\n\
         Stored after the import: {} samples (must equal the rows: {}); skipped rows: {}. \
         Server peak RSS (VmHWM): {}. Batches of {} detail rows.\n",
        sys::machine(),
        report::command_line(),
        devices,
        POINTS.len(),
        spec.polls,
        count(detail_rows),
        bytes(file_bytes),
        m.get("build_secs")
            .map(|_| format!(" (built in {:.0} s, cached for later runs)", get_f(&m, "build_secs")))
            .unwrap_or_default(),
        t.render(),
        count(get_u(&m, "stored")),
        report::pass(get_u(&m, "stored") == detail_rows),
        m.get("skipped").cloned().unwrap_or_default(),
        bytes(get_u(&m, "peak_rss")),
        batch_rows.map_or_else(|| "50,000 (default)".to_owned(), |b| count(b as u64)),
    );
    println!("{md}");
    let path = report::write_results(&out, &md)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// Starts `t3000 serve`, runs `t3000 import webview --apply`, reads the job and the count.
fn import(
    t3000: &Path,
    work: &Path,
    db: &Path,
    batch_rows: Option<usize>,
    rows: u64,
    m: &mut Measured,
) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("webview-import-").tempdir_in(work)?;
    let data = dir.path().join("data");
    let config = dir.path().join("t3000.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = {:?}\n[auth]\nadmin_password = {:?}\n[query]\nsql_max_rows = 1000\n[log]\nlevel = \"warn\"\n",
            data.display().to_string(),
            ADMIN_PASSWORD
        ),
    )?;
    let log = std::fs::File::create(dir.path().join("server.log"))?;
    let mut child = Command::new(t3000)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("start {} (build it with `cargo build --release --bin t3000`)", t3000.display()))?;
    let pid = child.id().to_string();
    let result = (|| -> anyhow::Result<()> {
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("server stdout")?).read_line(&mut line)?;
        let addr =
            line.trim().strip_prefix("t3000 listening on http://").context("the server did not start")?.to_owned();
        let token = login(&addr)?;
        let mut cmd = Command::new(t3000);
        cmd.args(["import", "webview"]).arg(db).args(["--apply", "--url", &format!("http://{addr}")]);
        if let Some(b) = batch_rows {
            cmd.args(["--batch-rows", &b.to_string()]);
        }
        let t = Instant::now();
        let out = cmd.env("T3000_TOKEN", &token).stdin(Stdio::null()).output()?;
        put(m, "command_ms", t.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            bail!(
                "t3000 import webview failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let (status, body) = http(&addr, Some(&token), "GET", "/api/t3000/import/webview/jobs", None)?;
        anyhow::ensure!(status == 200, "GET jobs: {status} {body}");
        let jobs: serde_json::Value = serde_json::from_str(&body)?;
        let j = &jobs[0];
        anyhow::ensure!(j["state"] == "done" && j["rows_done"] == rows, "job not done: {j}");
        let job_us =
            j["finished_us"].as_i64().context("finished_us")? - j["started_us"].as_i64().context("started_us")?;
        put(m, "job_ms", job_us as f64 / 1000.0);
        put(m, "samples", j["samples"].as_u64().unwrap_or(0));
        put(m, "skipped", j["skipped"].to_string());
        let sql = serde_json::json!({ "sql": "SELECT count(*) FROM samples" }).to_string();
        let t = Instant::now();
        let (status, body) = http(&addr, Some(&token), "POST", "/api/t3000/query", Some(&sql))?;
        put(m, "count_ms", t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(status == 200, "count: {status} {body}");
        let v: serde_json::Value = serde_json::from_str(&body)?;
        put(m, "stored", v["rows"][0][0].as_u64().unwrap_or(0));
        put(m, "peak_rss", status_bytes(&pid, "VmHWM"));
        Ok(())
    })();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = child.wait();
    result
}
