use crate::common::*;
use serde_json::json;
use std::path::{Component, Path, PathBuf};
use t3_core::Sample;
use t3_core::clock::ManualClock;
use t3_storage::Error;
use t3_storage::catalog::{AuditEntry, Catalog};
use t3_storage::manifest::Table;

#[tokio::test]
async fn sql_reads_samples_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = open(&config(dir.path()), &clock);
    s.ingest(vec![Sample::good(1, T0, 1.0), Sample::good(2, T0, 2.0)]).await.unwrap();
    s.flush().await.unwrap();
    s.ingest(vec![Sample::good(3, T0, 3.0)]).await.unwrap();
    let r = s.sql("SELECT count(*) AS n, sum(value) AS total FROM samples").await.unwrap();
    assert_eq!(r.columns, vec!["n", "total"]);
    assert_eq!(r.rows, vec![vec![serde_json::json!(3), serde_json::json!(6.0)]]);

    let outside = std::env::temp_dir().join(format!("t3-sandbox-{}.csv", std::process::id()));
    let inside = dir.path().join("x.csv");
    let attempts = [
        "SELECT * FROM read_csv('/etc/passwd')".to_string(),
        "SELECT * FROM read_text('/etc/hostname')".to_string(),
        format!("COPY (SELECT 1) TO '{}'", outside.display()),
        format!("COPY (SELECT 1) TO '{}'", inside.display()),
        "ATTACH '/tmp/t3-sandbox.db' AS x".to_string(),
        "INSTALL httpfs".to_string(),
        "LOAD httpfs".to_string(),
        "SET enable_external_access = true".to_string(),
        "CREATE TABLE t AS SELECT 1".to_string(),
        "SELECT 1; SELECT 2".to_string(),
        "SELECT * FROM glob('/etc/*')".to_string(),
        "PRAGMA version".to_string(),
    ];
    for sql in &attempts {
        match s.sql(sql).await {
            Err(Error::InvalidQuery(_)) => {}
            Ok(r) => assert!(r.rows.is_empty(), "{sql} returned {:?}", r.rows),
            Err(e) => panic!("{sql}: expected a refusal, got {e}"),
        }
    }
    assert!(!outside.exists());
    assert!(!inside.exists());
    assert!(!std::path::Path::new("/tmp/t3-sandbox.db").exists());
    // The sandbox still lets the next query read samples.
    assert_eq!(s.sql("SELECT count(*) FROM samples").await.unwrap().rows[0][0], serde_json::json!(3));
}

/// Text in every file user SQL must not read, so an answer that carries it is caught whatever
/// function produced it.
const MARKER: &str = "t3-canary-7f3a9c";

/// The message DuckDB gives when the sandbox refuses a path.
const REFUSED: &str = "file system operations are disabled by configuration";

/// `path` relative to `from` (both absolute), with `..` where needed.
fn relative(path: &Path, from: &Path) -> PathBuf {
    let p: Vec<Component<'_>> = path.components().collect();
    let f: Vec<Component<'_>> = from.components().collect();
    let common = p.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// `text` as DuckDB shows a BLOB of it.
fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The ways a query may name `target`: absolute, relative to the working directory, through `..`
/// out of the Parquet tree and out of a live file, with redundant separators, as a `file://` URL,
/// and by globs.
fn spellings(target: &Path, data: &Path, live: &Path, cwd: &Path) -> Vec<String> {
    let t = target.display().to_string();
    let dir = target.parent().unwrap();
    let name = target.file_name().unwrap().to_string_lossy().to_string();
    let day_dir = live.parent().unwrap();
    let mut out = vec![
        t.clone(),
        relative(target, cwd).display().to_string(),
        format!("{}/{}", day_dir.display(), relative(target, day_dir).display()),
        format!("{}/{}", live.display(), relative(target, live).display()),
        format!("{}/samples/../{}", data.display(), relative(target, data).display()),
        format!("{}//.//{}", dir.display(), name),
        format!("file://{t}"),
        format!("{}/*", dir.display()),
        format!("{}/**/{name}", data.display()),
        format!("{}/../**/{name}", data.display()),
    ];
    out.dedup();
    out
}

/// One answer, as text (rows or the error) and whether rows came back.
async fn probe(s: &t3_storage::Storage, sql: &str) -> (String, Option<usize>) {
    match s.sql(sql).await {
        Ok(r) => (serde_json::to_string(&r.rows).unwrap(), Some(r.rows.len())),
        Err(e) => (e.to_string(), None),
    }
}

/// Calls of `name` with `arg` as the first argument, as itself and in a list, followed by up to
/// two harmless constants (`duckdb_functions()` lists a table function's named options with its
/// positional parameters, so how many a function takes is found by trying).
fn calls(name: &str, arg: &str) -> Vec<String> {
    let mut out = Vec::new();
    for first in [arg.to_string(), format!("[{arg}]")] {
        for rest in ["", ", 'value'", ", 'value', 1"] {
            out.push(format!("SELECT * FROM \"{name}\"({first}{rest})"));
        }
    }
    out
}

/// The answer to the first of `calls` that binds (or the last one's refusal).
async fn probe_calls(s: &t3_storage::Storage, calls: &[String]) -> (String, String, Option<usize>) {
    let mut last = (String::new(), String::new(), None);
    for sql in calls {
        let (text, rows) = probe(s, sql).await;
        let unbound = text.contains("No function matches");
        last = (sql.clone(), text, rows);
        if !unbound {
            break;
        }
    }
    last
}

/// Whether a function is one that reads a path by design.
fn reads_files(name: &str) -> bool {
    name.starts_with("read_")
        || name.starts_with("parquet_")
        || name.ends_with("_scan")
        || name.contains("sniff")
        || name == "glob"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_function_reads_any_file_but_the_live_parquet_files() {
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().canonicalize().unwrap();
    let data = root_path.join("data");
    let clock = ManualClock::new(T0 + 3 * DAY);
    let s = open(&config(&data), &clock);
    // Two days of samples in Parquet (with their rollups), and one buffered sample (in the WAL).
    let samples: Vec<Sample> =
        (0..2 * 24 * 60).map(|m| Sample::good(1 + (m % 3) as u32, T0 + m * MIN, m as f64)).collect();
    s.ingest(samples).await.unwrap();
    s.flush().await.unwrap();
    s.maintain().await.unwrap();
    s.ingest(vec![Sample::good(9, T0 + 2 * DAY, 9.0)]).await.unwrap();
    let live: Vec<PathBuf> = s.live_files().iter().map(|f| f.path.clone()).collect();
    assert!(s.live_files().iter().any(|f| f.meta.table == Table::Rollups1h), "rollups were computed: {live:?}");
    let live_sample =
        s.live_files().iter().find(|f| f.meta.table == Table::Samples).unwrap().path.canonicalize().unwrap();

    // Everything else a data directory holds, and files outside it.
    let catalog = Catalog::open(&data).unwrap();
    catalog
        .audit_record(AuditEntry {
            seq: 0,
            ts: T0,
            actor: format!("admin {MARKER}"),
            remote: None,
            action: "user.create".into(),
            target: Some(MARKER.into()),
            old: None,
            new: Some(json!({ "password_hash": MARKER })),
            result: "ok".into(),
        })
        .unwrap();
    std::fs::write(data.join("points.json"), format!("{{\"{MARKER}\": 1}}\n")).unwrap();
    std::fs::create_dir_all(data.join("floorplans")).unwrap();
    std::fs::write(data.join("floorplans/1"), format!("<svg><text>{MARKER}</text></svg>")).unwrap();
    std::fs::write(data.join("demo-admin-password"), format!("{MARKER}\n")).unwrap();
    std::fs::write(data.join("t3000.log"), format!("level,message\ninfo,{MARKER}\n")).unwrap();
    let day_dir = live_sample.parent().unwrap();
    std::fs::write(day_dir.join("canary.csv"), format!("name,value\n{MARKER},1\n")).unwrap();
    // A Parquet file in the tree that the manifest does not list.
    std::fs::copy(&live_sample, day_dir.join("part-99999999999999999999.parquet")).unwrap();
    std::fs::write(root_path.join("secret.csv"), format!("name,value\n{MARKER},1\n")).unwrap();
    // In the system's temporary folder, removed when the test ends (however it ends).
    let outside_file = tempfile::Builder::new().prefix("t3-sql-canary-").suffix(".csv").tempfile().unwrap();
    std::fs::write(outside_file.path(), format!("name,value\n{MARKER},1\n")).unwrap();
    let outside = outside_file.path().canonicalize().unwrap();

    let mut targets: Vec<PathBuf> = vec![
        data.join("points.json"),
        data.join("floorplans/1"),
        data.join("demo-admin-password"),
        data.join("t3000.log"),
        data.join("manifest.json"),
        data.join("LOCK"),
        day_dir.join("canary.csv"),
        day_dir.join("part-99999999999999999999.parquet"),
        root_path.join("secret.csv"),
        outside.clone(),
        PathBuf::from("/etc/passwd"),
    ];
    for e in std::fs::read_dir(&data).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with("catalog.duckdb") {
            targets.push(p);
        }
    }
    for e in std::fs::read_dir(data.join("wal")).unwrap() {
        targets.push(e.unwrap().path());
    }
    assert!(targets.iter().any(|t| t.ends_with("catalog.duckdb")));
    assert!(targets.iter().any(|t| t.extension().is_some_and(|e| e == "wal")), "{targets:?}");

    // Every table function DuckDB has whose first parameter can be a path.
    let r = s
        .sql(
            "SELECT DISTINCT function_name FROM duckdb_functions() \
             WHERE function_type IN ('table', 'table_macro') AND len(parameter_types) > 0 \
             AND (parameter_types[1] IN ('VARCHAR', 'VARCHAR[]', 'ANY', 'ANY[]', 'VARIANT') OR parameter_types[1] IS NULL) \
             ORDER BY ALL",
        )
        .await
        .unwrap();
    let functions: Vec<String> = r.rows.iter().map(|row| row[0].as_str().unwrap().to_string()).collect();
    let names: Vec<&str> = functions.iter().map(String::as_str).collect();
    for expected in [
        "read_csv",
        "read_csv_auto",
        "read_single_csv_file",
        "read_text",
        "read_blob",
        "read_parquet",
        "read_single_parquet_file",
        "parquet_scan",
        "parquet_metadata",
        "parquet_full_metadata",
        "parquet_schema",
        "parquet_file_metadata",
        "parquet_kv_metadata",
        "parquet_bloom_probe",
        "read_duckdb",
        "sniff_csv",
        "glob",
    ] {
        assert!(names.contains(&expected), "{expected} is not among the functions probed: {names:?}");
    }

    // Control: the probes do read what the sandbox allows, a live Parquet file.
    let live_lit = lit(&live_sample.display().to_string());
    for (sql, min_rows) in [
        (format!("SELECT * FROM read_parquet({live_lit})"), 1),
        (format!("SELECT * FROM read_blob({live_lit})"), 1),
        (format!("SELECT * FROM parquet_metadata({live_lit})"), 1),
        (format!("SELECT * FROM glob({live_lit})"), 1),
    ] {
        let r = s.sql(&sql).await.unwrap_or_else(|e| panic!("`{sql}`: {e}"));
        assert!(r.rows.len() >= min_rows, "`{sql}`: {:?}", r.rows);
    }

    let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
    let mut leaks = Vec::new();
    let mut probes = 0;
    for target in &targets {
        for (i, path) in spellings(target, &data, &live_sample, &cwd).into_iter().enumerate() {
            let arg = lit(&path);
            // Every function gets the plain path; those made to read files get every spelling.
            let mut queries: Vec<(Vec<String>, Option<&str>)> = functions
                .iter()
                .filter(|f| i == 0 || reads_files(f))
                .map(|f| (calls(f, &arg), Some(f.as_str())))
                .collect();
            queries.push((vec![format!("SELECT * FROM {arg}")], None));
            queries.push((vec![format!("SELECT * FROM read_parquet([{live_lit}, {arg}])")], Some("read_parquet")));
            queries.push((vec![format!("SELECT * FROM read_blob([{live_lit}, {arg}])")], Some("read_blob")));
            for (calls, function) in queries {
                probes += 1;
                let (sql, text, rows) = probe_calls(&s, &calls).await;
                if text.contains(MARKER) || text.contains(&hex(MARKER)) {
                    leaks.push(format!("`{sql}` read the canary: {text}"));
                } else if function.is_none_or(reads_files) && rows.is_some_and(|n| n > 0) {
                    leaks.push(format!("`{sql}` answered {text}"));
                } else if function.is_some_and(|f| reads_files(f) && f != "glob") && !text.contains(REFUSED) {
                    // A file-reading function must be stopped by the sandbox, not by chance.
                    leaks.push(format!("`{sql}` was not refused by the sandbox: {text}"));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "{} of {probes} probes got through:\n{}", leaks.len(), leaks.join("\n"));

    // No probe left a trace, and the live files are the ones there were.
    let now: Vec<PathBuf> = s.live_files().iter().map(|f| f.path.clone()).collect();
    assert_eq!(now, live);
    assert!(!data.join("tmp").exists() || std::fs::read_dir(data.join("tmp")).unwrap().next().is_none());

    // The analytic queries the README describes still work over the views.
    let q = |sql: &'static str| {
        let s = &s;
        async move { s.sql(sql).await.unwrap_or_else(|e| panic!("`{sql}`: {e}")).rows }
    };
    assert_eq!(q("SELECT count(*), count(DISTINCT point_id) FROM samples").await, vec![vec![json!(2881), json!(4)]]);
    assert_eq!(
        q("SELECT point_id, count(*) FROM samples WHERE ts < TIMESTAMP '2026-11-27' GROUP BY ALL ORDER BY 1").await,
        vec![vec![json!(1), json!(480)], vec![json!(2), json!(480)], vec![json!(3), json!(480)]]
    );
    let hourly = q("SELECT time_bucket(INTERVAL 1 hour, ts) AS h, point_id, avg(value), max(value) FROM samples \
                    WHERE point_id = 1 GROUP BY ALL ORDER BY h LIMIT 2")
    .await;
    assert_eq!(hourly.len(), 2);
    assert_eq!(hourly[0][3], json!(57.0));
    let rollups = q("SELECT count(*), sum(count)::BIGINT FROM rollups_1h WHERE point_id = 1").await;
    assert_eq!(rollups, vec![vec![json!(48), json!(960)]]);
    let minute = q("SELECT sum(count)::BIGINT FROM rollups_1m").await;
    assert_eq!(minute, vec![vec![json!(2 * 24 * 60)]]);
    let window = q("SELECT point_id, value - lag(value) OVER (PARTITION BY point_id ORDER BY ts) AS d FROM samples \
                    WHERE point_id = 2 ORDER BY ts LIMIT 2 OFFSET 1")
    .await;
    assert_eq!(window[0][1], json!(3.0));
}
