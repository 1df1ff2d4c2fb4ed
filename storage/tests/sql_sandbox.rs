use crate::common::*;
use t3_core::Sample;
use t3_core::clock::ManualClock;
use t3_storage::Error;

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
