//! Data safety against the real binary: a lost or damaged manifest loses no history, a damaged
//! data page is reported (health, alarms, `partial`) until acknowledged, samples written by
//! mistake can be deleted (admin, audited), and a sample stamped in the future never pins a
//! point's latest value.

use serde_json::{Value, json};
use std::path::Path;
use t3_tests::*;

/// Samples stay in the WAL until the test flushes them by stopping the server.
/// No flush but the one at a graceful stop, and one file per day (the tests damage or count one
/// day's file).
const QUIET: &str = r#"
[storage]
flush_rows = 50000000
flush_interval_secs = 86400
sparse_day_rows = 0
"#;

const POINT: u32 = 7;

fn day(d: i64) -> Vec<Sample> {
    (0..120).map(|i| Sample::good(POINT, BASE_TS + d * DAY_US + i * MINUTE_US, (d * 1000 + i) as f64)).collect()
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = list_files(dir).iter().map(|p| p.to_string_lossy().into_owned()).collect();
    out.sort();
    out
}

async fn history(server: &TestServer, extra: &str) -> Value {
    let r = server
        .get(&format!("/api/t3000/points/{POINT}/history?from={BASE_TS}&to={}{extra}", BASE_TS + 3 * DAY_US))
        .await;
    r.ok_json()
}

/// The kinds of the storage alarm's stored transitions, oldest first.
async fn storage_history(server: &TestServer) -> Vec<String> {
    let h = server.get("/api/t3000/alarms/history?rule_id=0").await.ok_json();
    h.as_array().unwrap().iter().rev().map(|e| e["transition"]["kind"]["type"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_manifest_deletes_no_history_even_when_the_start_fails() {
    let mut server = TestServer::start(QUIET);
    let sent: Vec<Sample> = [day(0), day(1), day(2)].concat();
    for d in 0..3 {
        server.ingest_ok(&day(d)).await;
    }
    server.stop();
    let data = server.data_dir.clone();
    let before = files_under(&data.join("samples"));
    assert_eq!(before.len(), 3, "one file per day: {before:?}");
    std::fs::remove_file(data.join("manifest.json")).unwrap();

    // The reported case: a start that then fails (the port is taken) must not have deleted anything.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let failed = TestServer::try_start_in(&data, &format!("{QUIET}\n[server]\nlisten = \"127.0.0.1:{port}\"\n"));
    assert!(failed.is_err(), "the port is taken");
    assert_eq!(files_under(&data.join("samples")), before, "a failed start deleted data files");
    drop(taken);
    // (That start rebuilt and stored the manifest before it failed; lose it once more.)
    std::fs::remove_file(data.join("manifest.json")).unwrap();

    server.restart();
    let health = server.health().await;
    assert_eq!(health["recovery"]["manifest_rebuilt"], json!(true), "{}", pretty(&health["recovery"]));
    assert_eq!(health["recovery"]["dropped"], json!([]));
    assert_eq!(server.all_samples().await, sent, "every sample is back");
    assert!(data.join("manifest.json").exists(), "the rebuilt manifest is stored");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_manifest_stops_the_start_and_t3000_repair_rebuilds_it() {
    let mut server = TestServer::start(QUIET);
    let sent: Vec<Sample> = [day(0), day(1)].concat();
    server.ingest_ok(&sent).await;
    server.stop();
    let data = server.data_dir.clone();
    let before = files_under(&data.join("samples"));
    std::fs::write(data.join("manifest.json"), "{\"format\": \"2\", \"files\": [ {\"table\": ").unwrap();

    let err = server.try_restart().expect_err("a damaged manifest stops the start");
    let text = err.to_string();
    assert!(text.contains("t3000 repair --data-dir"), "the error says how to recover: {text}");
    assert_eq!(files_under(&data.join("samples")), before, "nothing was touched");

    let out = run(&["repair", "--data-dir", &data.to_string_lossy()]);
    assert!(out.status.success(), "repair: {}", out.stderr);
    let said = &out.stdout;
    assert!(said.contains("moved it to") && said.contains("\"manifest_rebuilt\": true"), "{said}");
    assert!(list_files(&data.join("quarantine")).iter().any(|p| p.to_string_lossy().contains("manifest.json")));

    server.restart();
    assert_eq!(server.all_samples().await, sent);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_data_page_is_reported_until_an_operator_acknowledges_it() {
    let mut server = TestServer::start(QUIET);
    for d in 0..2 {
        server.ingest_ok(&day(d)).await;
    }
    server.stop();
    let f = manifest_files(&server.data_dir)
        .into_iter()
        .find(|f| f.day == BASE_TS.div_euclid(DAY_US))
        .expect("day 0's file");
    let path = server.data_dir.join(&f.rel_path);
    // Eight flipped bytes in the middle of the `value` column's pages; the footer stays intact.
    let pages = value_pages(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = pages.start + pages.len() / 2;
    for b in &mut bytes[at..at + 8] {
        *b ^= 0x5A;
    }
    std::fs::write(&path, bytes).unwrap();
    server.restart();

    let body = history(&server, "").await;
    assert_eq!(body["partial"], json!(true), "{body}");
    let values: Vec<Option<f64>> = serde_json::from_value(body["value"].clone()).unwrap();
    assert_eq!(values, day(1).iter().map(|s| Some(s.value)).collect::<Vec<_>>(), "only day 1, exactly as sent");
    // Every later answer over that range says so too; one over another range does not.
    assert_eq!(history(&server, "").await["partial"], json!(true));
    let later = server
        .get(&format!("/api/t3000/points/{POINT}/history?from={}&to={}", BASE_TS + DAY_US, BASE_TS + 2 * DAY_US))
        .await
        .ok_json();
    assert_eq!(later["partial"], json!(false), "{later}");
    let sql = server.sql_reply("SELECT count(*) FROM samples").await.ok_json();
    assert_eq!((sql["rows"].clone(), sql["partial"].clone()), (json!([[120]]), json!(true)), "{sql}");

    let health = server.health().await;
    let q = health["quarantined"].as_array().expect("health lists quarantined files").clone();
    assert_eq!(q.len(), 1, "{}", pretty(&health));
    assert_eq!(q[0]["rows"], json!(120));
    assert_eq!(q[0]["file"].as_str().unwrap(), f.rel_path.to_string_lossy().replace('\\', "/"));
    assert!(q[0]["reason"].as_str().unwrap().contains("checksum"), "{}", q[0]);
    assert!(server.stderr().contains("quarantine"), "the log says so");
    let alarms = server.get("/api/t3000/alarms").await.ok_json();
    let alarm = alarms.as_array().unwrap().iter().find(|a| a["rule_id"] == json!(0)).cloned();
    let alarm = alarm.unwrap_or_else(|| panic!("no storage alarm in {alarms}"));
    assert_eq!((alarm["state"].as_str(), alarm["level"].as_str()), (Some("active"), Some("data_loss")), "{alarm}");
    // Its raise is stored in the alarm history (and so offered to the alert channels).
    poll_until("the storage alarm's raise in the history", std::time::Duration::from_secs(30), || async {
        storage_history(&server).await == ["raised"]
    })
    .await;

    // A restart keeps reporting it, and announces it again while nobody acknowledged it.
    server.stop();
    server.restart();
    assert_eq!(server.health().await["quarantined"].as_array().map(Vec::len), Some(1));
    poll_until("the storage alarm announced again after the restart", std::time::Duration::from_secs(30), || async {
        storage_history(&server).await == ["raised", "raised"]
    })
    .await;

    // A viewer cannot acknowledge; an operator can, through the alarm.
    let viewer = server.user_client("vera", "viewer").await;
    let r = server.call(&viewer, reqwest::Method::POST, "/api/t3000/alarms/0/ack", None).await;
    r.assert_error("viewer acknowledging", StatusCode::FORBIDDEN, None);
    let operator = server.user_client("otto", "operator").await;
    let r = server.call(&operator, reqwest::Method::POST, "/api/t3000/alarms/0/ack", None).await;
    let event = r.ok_json();
    assert_eq!(event["transition"]["to"], json!("acknowledged"), "{event}");
    assert_eq!(server.health().await["quarantined"], json!([]));
    let alarms = server.get("/api/t3000/alarms").await.ok_json();
    assert!(!alarms.as_array().unwrap().iter().any(|a| a["rule_id"] == json!(0)), "{alarms}");
    assert_eq!(storage_history(&server).await, ["raised", "raised", "acknowledged"]);
    let listed = server.get("/api/t3000/storage/quarantine").await.ok_json();
    assert_eq!(listed[0]["acknowledged"], json!(true), "{listed}");
    let audit = server.get("/api/t3000/audit?limit=20").await.text();
    assert!(audit.contains("otto") && audit.contains("storage alarm"), "{audit}");
    // Data is still missing, so answers still say so.
    assert_eq!(history(&server, "").await["partial"], json!(true));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_written_by_mistake_are_deleted_by_an_admin_and_audited() {
    let mut server = TestServer::start("");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    let good = Sample::good(POINT, now - 60_000_000, 21.5);
    // Within the accepted future window, but still in the future: stored, never the latest value.
    let ahead = Sample::good(POINT, now + 120_000_000, 99.0);
    server.ingest_ok(&[good, ahead]).await;
    server.ingest_ok(&day(0)).await;
    let latest = server.get(&format!("/api/t3000/points/{POINT}/value")).await.ok_json();
    assert_eq!(latest["value"], json!(21.5), "a future sample must not be the latest value: {latest}");

    let path = format!("/api/t3000/points/{POINT}/samples?from={BASE_TS}&to={}", BASE_TS + 60 * MINUTE_US);
    let operator = server.user_client("otto", "operator").await;
    let r = server.call(&operator, reqwest::Method::DELETE, &path, None).await;
    r.assert_error("operator deleting samples", StatusCode::FORBIDDEN, None);
    // An empty range (`from` not before `to`) deletes nothing.
    let before = server.samples_of(POINT).await.len();
    let r = server.delete(&format!("/api/t3000/points/{POINT}/samples?from=now&to=now-1h")).await;
    assert_eq!(r.ok_json()["deleted"], json!(0), "{}", r.text());
    assert_eq!(server.samples_of(POINT).await.len(), before);
    let r = server.delete(&path).await;
    assert_eq!(r.ok_json()["deleted"], json!(60), "{}", r.text());
    let left = server.samples_of(POINT).await;
    assert_eq!(left.len(), 2 + 60, "{left:?}");
    assert!(left.iter().all(|s| s.ts >= BASE_TS + 60 * MINUTE_US), "nothing of the range is left");
    let audit = server.get("/api/t3000/audit?limit=20").await.text();
    assert!(audit.contains("delete_samples") && audit.contains("\"deleted\":60"), "{audit}");

    // Deleting the future sample leaves the latest value where it was; deleting the latest one
    // brings back the one before it.
    let r = server.delete(&format!("/api/t3000/points/{POINT}/samples?from={}&to={}", now, now + 3_600_000_000)).await;
    assert_eq!(r.ok_json()["deleted"], json!(1));
    let r = server.delete(&format!("/api/t3000/points/{POINT}/samples?from={}&to={}", now - 3_600_000_000, now)).await;
    assert_eq!(r.ok_json()["deleted"], json!(1));
    let latest = server.get(&format!("/api/t3000/points/{POINT}/value")).await.ok_json();
    assert_eq!(latest["ts"], json!(BASE_TS + 119 * MINUTE_US), "{latest}");
    // And it stays deleted after a restart (the WAL is not replayed over it).
    server.stop();
    server.restart();
    assert_eq!(server.samples_of(POINT).await.len(), 60);
    server.stop();
}
