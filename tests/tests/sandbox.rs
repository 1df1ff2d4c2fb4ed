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
