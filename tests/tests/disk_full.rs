//! A full disk, on a small file system of its own (a tmpfs mounted for the test; `.ci/run` runs as
//! root): the server starts on it read-only, answers queries and logins, refuses writes with 503
//! and says why in `/healthz`, and takes writes again by itself once space returns, without a
//! restart.

use serde_json::{Value, json};
use std::time::Duration;
use t3_tests::system_alarm::WAL_REFUSING;
use t3_tests::*;

/// Nothing is flushed to Parquet by itself while the test runs. No disk floor: this is the WAL's
/// own behaviour when the disk does fill up, the last line of defence behind the floor that
/// refuses writes before (tests/diskspace.rs).
const NO_TIMED_FLUSH: &str = r#"
[storage]
flush_rows = 50000000
flush_interval_secs = 86400
disk_floor_free_mb = 0
"#;

fn samples(from: usize, n: usize) -> Vec<Sample> {
    (from..from + n).map(|i| Sample::good(3, BASE_TS + i as i64 * SECOND_US, i as f64 + 0.25)).collect()
}

async fn login(server: &TestServer) -> Reply {
    server
        .call(
            &reqwest::Client::new(),
            reqwest::Method::POST,
            "/api/t3000/auth/login",
            Some(&json!({ "username": "admin", "password": ADMIN_PASSWORD })),
        )
        .await
}

/// The system alarm "write-ahead log refuses writes" (rule id `WAL_REFUSING`), while it is not normal.
async fn wal_alarm(server: &TestServer) -> Option<Value> {
    let open = server.get("/api/t3000/alarms").await.ok_json();
    open.as_array().expect("a list").iter().find(|a| a["rule_id"] == json!(WAL_REFUSING)).cloned()
}

async fn writes(server: &TestServer) -> Value {
    server.health().await["writes"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_starts_read_only_serves_reads_and_logins_then_recovers_without_restart() {
    let fs = SmallFs::mount("24m");
    let data_dir = fs.path().join("data");
    let mut server = TestServer::start_in(&data_dir, NO_TIMED_FLUSH);
    // Some history in Parquet (the graceful stop persists it) and some only in the WAL.
    server.ingest_ok(&samples(0, 500)).await;
    server.stop();
    server.restart();
    server.ingest_ok(&samples(500, 100)).await;
    server.stop();
    server.restart();
    server.ingest_ok(&samples(600, 50)).await;
    server.kill9();
    let stored = samples(0, 650);

    let filler = fs.fill();
    server.try_restart().unwrap_or_else(|e| panic!("the server does not start on a full disk: {e}"));

    // Read-only, and /healthz says so and why.
    let health = server.health().await;
    assert_eq!(health["status"], json!("ok"));
    assert_eq!(health["writes"], json!("read-only"), "{}", pretty(&health));
    let reason = health["writes_reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("No space left on device"), "writes_reason: {}", pretty(&health));
    server.get("/readyz").await.assert_error("GET /readyz on a full disk", StatusCode::SERVICE_UNAVAILABLE, None);
    // The WAL refusing writes is a system alarm (`WAL_REFUSING`, level fault), with the reason.
    let alarm = wal_alarm(&server).await.unwrap_or_else(|| panic!("no WAL alarm: {}", pretty(&health)));
    assert_eq!((&alarm["state"], &alarm["level"]), (&json!("active"), &json!("fault")), "{}", pretty(&alarm));
    assert!(alarm["message"].as_str().unwrap_or_default().contains("No space left on device"), "{}", pretty(&alarm));

    // Queries answer, over the Parquet files and the replayed WAL.
    assert_eq!(server.all_samples().await, stored);
    let r = server.get(&format!("/api/t3000/points/3/history?from={BASE_TS}&to={}", BASE_TS + DAY_US)).await;
    assert_eq!(r.ok_json()["ts"].as_array().map(Vec::len), Some(stored.len()));

    // Logins work (the session cannot be stored: it is kept in memory) and the token is good.
    let r = login(&server).await;
    assert_eq!(r.status, StatusCode::OK, "login on a full disk: {}\nserver log:\n{}", r.text(), server.stderr());
    let token = r.json()["token"].as_str().expect("a token").to_owned();
    let me = server.call(&client_with_token(&token), reqwest::Method::GET, "/api/t3000/auth/me", None).await;
    assert_eq!(me.ok_json()["username"], json!("admin"));

    // Writes are refused with 503, a JSON error and a retry hint; so are catalog changes.
    let r = server.ingest(&samples(1000, 10)).await;
    r.assert_error("POST /samples on a full disk", StatusCode::SERVICE_UNAVAILABLE, Some("writes_unavailable"));
    assert!(r.headers.contains_key(reqwest::header::RETRY_AFTER), "no Retry-After: {:?}", r.headers);
    let r = server.post_json("/api/t3000/buildings", &json!({ "name": "North" })).await;
    r.assert_error("POST /buildings on a full disk", StatusCode::SERVICE_UNAVAILABLE, Some("catalog_unavailable"));
    let health = server.health().await;
    assert_eq!(health["catalog_writes"], json!("failing"), "{}", pretty(&health));
    assert_eq!(server.all_samples().await, stored, "a refused write stored nothing");

    // A graceful stop on the full disk exits cleanly (nothing can be persisted; the data stays in
    // the WAL), and the next start on it is read-only again, with everything there.
    server.stop();
    server.restart();
    assert_eq!(writes(&server).await, json!("read-only"));
    assert_eq!(server.all_samples().await, stored);

    // Space returns: writes are accepted again without a restart.
    std::fs::remove_file(&filler).unwrap();
    let srv = &server;
    poll_until("/healthz to say writes: ok once space returned", Duration::from_secs(30), move || async move {
        writes(srv).await == json!("ok")
    })
    .await;
    assert_eq!(server.get("/readyz").await.status, StatusCode::OK);
    poll_until("the WAL alarm to clear once space returned", Duration::from_secs(30), move || async move {
        wal_alarm(srv).await.is_some_and(|a| a["state"] == json!("cleared"))
    })
    .await;
    server.ingest_ok(&samples(1000, 10)).await;
    let r = server.post_json("/api/t3000/buildings", &json!({ "name": "North" })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(server.health().await["catalog_writes"], json!("ok"));
    let mut want = stored.clone();
    want.extend(samples(1000, 10));
    assert_eq!(server.all_samples().await, want);

    // And a restart keeps everything.
    server.stop();
    server.restart();
    assert_eq!(server.all_samples().await, want);
    assert_eq!(writes(&server).await, json!("ok"));
    server.stop();
}
