//! The SQL endpoint is a sandbox: one read-only statement over the `samples` view. Reading or
//! writing files outside the data directory, attaching databases, installing or loading extensions,
//! changing settings, several statements, and DDL are all refused with a 4xx and a JSON error, and
//! leave no trace on disk.

use serde_json::json;
use std::path::PathBuf;
use t3_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_endpoint_refuses_escapes_and_leaves_no_trace() {
    // No time-based flush: the data directory must not change while the probes run.
    let mut server = TestServer::start("[storage]\nflush_interval_secs = 86400\n");
    let samples: Vec<Sample> = (0..10).map(|i| Sample::good(1, BASE_TS + i * SECOND_US, i as f64)).collect();
    server.ingest_ok(&samples).await;
    let data = server.data_dir.canonicalize().unwrap();
    let tag = format!("t3000-sandbox-{}-{}", std::process::id(), rand::random::<u32>());
    let tmp_csv = PathBuf::from(format!("/tmp/{tag}.csv"));
    let tmp_db = PathBuf::from(format!("/tmp/{tag}.db"));
    let tmp_parquet = PathBuf::from(format!("/tmp/{tag}.parquet"));
    let in_data = data.join("x.csv");
    // A file right next to the data directory: `..` must not reach it.
    let secret = server.root().canonicalize().unwrap().join("secret.csv");
    std::fs::write(&secret, "name,value\nsecret-marker,1\n").unwrap();
    let before = list_files(&data);

    let probes: Vec<String> = vec![
        "SELECT * FROM read_csv('/etc/passwd')".into(),
        "SELECT * FROM read_csv_auto('/etc/passwd')".into(),
        "SELECT * FROM '/etc/passwd'".into(),
        "SELECT * FROM read_text('/etc/hostname')".into(),
        "SELECT * FROM read_blob('/etc/passwd')".into(),
        "SELECT * FROM read_json('/proc/self/environ')".into(),
        "SELECT * FROM sniff_csv('/etc/passwd')".into(),
        "SELECT * FROM read_parquet('/etc/*.parquet')".into(),
        format!("SELECT * FROM read_csv('{}')", secret.display()),
        format!("SELECT * FROM read_csv('{}/../secret.csv')", data.display()),
        format!("SELECT * FROM read_text('{}/../secret.csv')", data.display()),
        format!("SELECT * FROM read_csv('{}/samples/../../secret.csv')", data.display()),
        format!("SELECT * FROM read_parquet('{}/../**/*.parquet')", data.display()),
        format!("COPY (SELECT 1) TO '{}'", in_data.display()),
        format!("COPY (SELECT 1) TO '{}'", tmp_csv.display()),
        format!("COPY samples TO '{}' (FORMAT parquet)", tmp_parquet.display()),
        format!("SELECT * FROM query('COPY (SELECT 1) TO ''{}''')", tmp_csv.display()),
        format!("EXPORT DATABASE '/tmp/{tag}-export'"),
        format!("ATTACH '{}'", tmp_db.display()),
        format!("ATTACH '{}' AS x", data.join("x.db").display()),
        "INSTALL httpfs".into(),
        "LOAD httpfs".into(),
        "FORCE INSTALL httpfs".into(),
        "SET enable_external_access = true".into(),
        "SET lock_configuration = false".into(),
        "RESET enable_external_access".into(),
        "PRAGMA enable_external_access".into(),
        "SELECT 1; SELECT 2".into(),
        "SELECT 1; COPY (SELECT 1) TO '/tmp/x.csv'".into(),
        "CREATE TABLE t AS SELECT 1".into(),
        "CREATE OR REPLACE TEMP VIEW samples AS SELECT 1".into(),
        "DROP VIEW samples".into(),
        "CREATE MACRO m() AS 1".into(),
        "SELECT * FROM glob('/etc/*')".into(),
    ];
    let mut leaks = Vec::new();
    for sql in &probes {
        let r = server.sql_reply(sql).await;
        if sql.contains("glob(") && r.status == StatusCode::OK {
            // Refusing is expected; an empty listing would do too. Listing /etc would not.
            let rows = r.json()["rows"].clone();
            if rows.as_array().is_some_and(|a| !a.is_empty()) {
                leaks.push(format!("`{sql}` listed {rows}"));
            }
            continue;
        }
        if r.text().contains("secret-marker") {
            leaks.push(format!("`{sql}` read a file outside the data directory: {}", r.text()));
            continue;
        }
        if !r.status.is_client_error() {
            leaks.push(format!("`{sql}` answered {}: {}", r.status, r.text()));
            continue;
        }
        r.assert_client_error(sql);
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "`{sql}`: {}", r.text());
    }
    assert!(leaks.is_empty(), "the sandbox let through:\n{}", leaks.join("\n"));

    // The same probes from several connections at once (the pool clones connections).
    let mut tasks = Vec::new();
    for sql in probes.iter().filter(|s| !s.contains("glob(")).cloned() {
        let (client, url) = (server.client.clone(), server.url("/api/t3000/query"));
        tasks.push(tokio::spawn(async move {
            let r = client.post(url).json(&json!({ "sql": sql })).send().await.unwrap();
            (sql, r.status())
        }));
    }
    for t in tasks {
        let (sql, status) = t.await.unwrap();
        assert!(status.is_client_error(), "concurrently, `{sql}` answered {status}");
    }

    for p in
        [&tmp_csv, &tmp_db, &tmp_parquet, &in_data, &data.join("x.db"), &PathBuf::from(format!("/tmp/{tag}-export"))]
    {
        assert!(!p.exists(), "{} was created", p.display());
    }
    assert_eq!(list_files(&data), before, "files in the data directory changed");

    // The settings are as they were, and legitimate queries work.
    let rows =
        server.sql("SELECT current_setting('enable_external_access'), current_setting('lock_configuration')").await;
    assert_eq!(rows, vec![vec![json!(false), json!(true)]]);
    assert_eq!(server.count().await, 10);
    let rows = server.sql("SELECT point_id, sum(value) FROM samples GROUP BY ALL").await;
    assert_eq!(rows, vec![vec![json!(1), json!(45.0)]]);
    assert_eq!(server.health().await["status"], json!("ok"));
    server.stop();
}

/// Text in files user SQL must not read.
const MARKER: &str = "t3-canary-51d2e8";
/// What DuckDB says when the sandbox refuses a path.
const REFUSED: &str = "file system operations are disabled by configuration";

/// `text` as DuckDB shows a BLOB of it.
fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// `path` relative to `from` (both absolute), with `..` where needed.
fn relative(path: &std::path::Path, from: &std::path::Path) -> PathBuf {
    let p: Vec<_> = path.components().collect();
    let f: Vec<_> = from.components().collect();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_reads_no_file_of_the_server_but_its_live_parquet_files() {
    // Every sample is published in Parquet at once, so there are live files to compare with.
    let mut server = TestServer::start("[storage]\nack = \"parquet\"\nflush_interval_secs = 86400\n");
    let samples: Vec<Sample> = (0..10).map(|i| Sample::good(1, BASE_TS + i * SECOND_US, i as f64)).collect();
    server.ingest_ok(&samples).await;
    let data = server.data_dir.canonicalize().unwrap();
    let root = server.root().canonicalize().unwrap();
    // A floor plan, a user (their password hash goes into the catalog), and canaries.
    let b = server.post_json("/api/t3000/buildings", &json!({"name": "HQ"})).await.json();
    let floor =
        server.post_json(&format!("/api/t3000/buildings/{}/floors", b["id"]), &json!({"name": "F1"})).await.json();
    let svg = format!(r#"<svg xmlns="http://www.w3.org/2000/svg"><text>{MARKER}</text></svg>"#);
    let req = server
        .client
        .put(server.url(&format!("/api/t3000/floors/{}/plan", floor["id"])))
        .header("content-type", "image/svg+xml")
        .body(svg);
    assert_eq!(server.send(req).await.status, StatusCode::OK);
    let _viewer = server.user_client("viewer", "viewer").await;
    std::fs::write(data.join("demo-admin-password"), format!("{MARKER}\n")).unwrap();
    std::fs::write(root.join("secret.csv"), format!("name,value\n{MARKER},1\n")).unwrap();

    let mut targets: Vec<PathBuf> = vec![
        data.join("points.json"),
        data.join("manifest.json"),
        data.join("floorplans").join(floor["id"].to_string()),
        data.join("demo-admin-password"),
        root.join("secret.csv"),
        root.join("t3000.toml"),
        root.join("server-1.log"),
    ];
    for e in std::fs::read_dir(&data).unwrap().chain(std::fs::read_dir(data.join("wal")).unwrap()) {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("catalog.duckdb") || name.ends_with(".wal") {
            targets.push(p);
        }
    }
    // points.json is written once a device has points; the storage tests cover it with a canary.
    targets.retain(|t| t.exists());
    assert!(targets.iter().any(|t| t.ends_with("catalog.duckdb")), "{targets:?}");
    let live_file = list_files(&data.join("samples")).into_iter().next().expect("a live sample file");
    let live_file = data.join("samples").join(live_file);
    let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();

    let functions = [
        "read_blob",
        "read_text",
        "read_csv",
        "read_csv_auto",
        "read_single_csv_file",
        "read_parquet",
        "read_single_parquet_file",
        "read_duckdb",
        "parquet_metadata",
        "parquet_schema",
        "parquet_file_metadata",
        "parquet_kv_metadata",
        "parquet_full_metadata",
        "sniff_csv",
        "glob",
    ];
    let mut leaks = Vec::new();
    for target in &targets {
        let dir = target.parent().unwrap();
        let name = target.file_name().unwrap().to_string_lossy().to_string();
        let spellings = [
            target.display().to_string(),
            relative(target, &cwd).display().to_string(),
            format!(
                "{}/{}",
                live_file.parent().unwrap().display(),
                relative(target, live_file.parent().unwrap()).display()
            ),
            format!("{}/samples/../{}", data.display(), relative(target, &data).display()),
            format!("{}/*", dir.display()),
            format!("{}/**/{name}", data.display()),
            format!("{}/../**/{name}", data.display()),
        ];
        for path in spellings {
            let arg = format!("'{}'", path.replace('\'', "''"));
            let mut probes: Vec<(String, &str)> =
                functions.iter().map(|f| (format!("SELECT * FROM {f}({arg})"), *f)).collect();
            probes.push((format!("SELECT * FROM {arg}"), "replacement scan"));
            for (sql, function) in probes {
                let r = server.sql_reply(&sql).await;
                let text = r.text();
                if [MARKER, "$argon2"].iter().any(|m| text.contains(m) || text.contains(&hex(m))) {
                    leaks.push(format!("`{sql}` read a file: {text}"));
                } else if r.status == StatusCode::OK {
                    if r.json()["rows"].as_array().is_some_and(|rows| !rows.is_empty()) {
                        leaks.push(format!("`{sql}` answered {text}"));
                    }
                } else if r.status != StatusCode::BAD_REQUEST
                    || (!["glob", "replacement scan"].contains(&function) && !text.contains(REFUSED))
                {
                    // A function made to read files must be stopped by the sandbox, not by chance.
                    leaks.push(format!("`{sql}` was not refused by the sandbox: {} {text}", r.status));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "the sandbox let through:\n{}", leaks.join("\n"));

    // What the sandbox allows: the live Parquet files, through the views and by name.
    let live_lit = format!("'{}'", live_file.display());
    assert_eq!(server.sql(&format!("SELECT count(*) FROM read_parquet({live_lit})")).await, vec![vec![json!(10)]]);
    assert_eq!(server.sql("SELECT count(*), sum(value) FROM samples").await, vec![vec![json!(10), json!(45.0)]]);
    server.stop();
}
