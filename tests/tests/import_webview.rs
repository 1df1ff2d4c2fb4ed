//! Import of a T3000 WebView database (`POST /api/t3000/import/webview`, `t3000 import webview`)
//! into the real server: a database with WebView's real schema (its SQL executed as it is) filled
//! with generated rows; every sample checked after the import, value and time stamp; a second
//! import changes nothing; an import killed with SIGKILL midway and run again (through the CLI)
//! ends with every sample exactly once; a database of another schema is refused naming the table.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use t3_tests::webview_db::{self, POINTS, Spec};
use t3_tests::*;

const CONFIG: &str = r#"
[storage]
flush_rows = 5000
flush_interval_secs = 1
[query]
sql_max_rows = 1000000
"#;

const DEVICES: u32 = 3;
const POLLS: u64 = 3000;
/// Berlin in June is UTC+2 all month: every local time maps to one instant.
const TZ: &str = "Europe/Berlin";

fn spec() -> Spec {
    Spec { devices: DEVICES, polls: POLLS, start: "2025-06-01 00:00:00".into(), step_secs: 300 }
}

async fn upload(s: &TestServer, path: &Path, query: &str) -> Reply {
    let body = std::fs::read(path).expect("read the database");
    s.send(
        s.client
            .post(s.url(&format!("/api/t3000/import/webview?{query}")))
            .header("content-type", "application/octet-stream")
            .timeout(Duration::from_secs(120))
            .body(body),
    )
    .await
}

/// Point id of every generated (device, point), from the server's device points.
async fn point_ids(s: &TestServer) -> HashMap<u32, (u32, usize)> {
    let mut ids = HashMap::new();
    for d in 0..DEVICES {
        let r = s.get(&format!("/api/t3000/devices/{}/points", webview_db::device_name(d))).await.ok_json();
        for p in r["points"].as_array().unwrap() {
            if let Some(i) = POINTS.iter().position(|x| x.1 == p["name"].as_str().unwrap()) {
                ids.insert(p["id"].as_u64().unwrap() as u32, (d, i));
            }
        }
    }
    assert_eq!(ids.len(), DEVICES as usize * POINTS.len());
    ids
}

/// Every stored sample is a generated row, each generated row is stored once, value and time.
async fn check_every_sample(s: &TestServer, ids: &HashMap<u32, (u32, usize)>) {
    let spec = spec();
    let samples = s.all_samples().await;
    assert_eq!(samples.len() as u64, u64::from(DEVICES) * POINTS.len() as u64 * POLLS, "one sample per detail row");
    let start =
        chrono::NaiveDateTime::parse_from_str(&spec.start, "%Y-%m-%d %H:%M:%S").unwrap().and_utc().timestamp_micros()
            - 2 * 3600 * 1_000_000;
    let mut got: HashMap<(u32, i64), f64> = HashMap::new();
    for x in &samples {
        assert!(got.insert((x.point_id, x.ts), x.value).is_none(), "sample {x:?} twice");
        assert_eq!(x.quality, 192);
    }
    for (&point, &(d, i)) in ids {
        for k in 0..POLLS {
            let ts = start + (k * spec.step_secs) as i64 * 1_000_000;
            let want = webview_db::expected(d, i, k).1;
            assert_eq!(got.get(&(point, ts)), Some(&want), "device {d} {} poll {k}", POINTS[i].1);
        }
    }
}

/// The files the server holds in `<data dir>/import/` (uploads are kept only while read).
fn held_files(s: &TestServer) -> Vec<String> {
    match std::fs::read_dir(s.data_dir.join("import")) {
        Ok(d) => d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

async fn job(s: &TestServer, id: i64) -> Value {
    s.get(&format!("/api/t3000/import/webview/jobs/{id}")).await.ok_json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webview_import_previews_imports_once_and_resumes_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("webview_t3_device.db");
    let rows = webview_db::build(&db, &spec()).unwrap();
    let mut s = TestServer::start(CONFIG);

    // Preview: what would be created, nothing is.
    let p = upload(&s, &db, &format!("time_zone={TZ}")).await.ok_json();
    assert_eq!(p["history"]["rows"], json!(rows));
    assert_eq!(p["history"]["first"], json!("2025-06-01 00:00:00"));
    assert_eq!(p["devices"].as_array().unwrap().len(), DEVICES as usize);
    assert_eq!(p["devices"][0]["name"], json!(webview_db::device_name(0)));
    assert_eq!(p["devices"][0]["ip_address"], json!("192.0.2.1"));
    assert_eq!(p["devices"][0]["action"], json!("create"));
    assert_eq!(p["devices"][0]["enabled"], json!(false));
    assert_eq!(p["points"].as_array().unwrap().len(), DEVICES as usize * POINTS.len());
    assert_eq!(p["trendlogs"][0]["points"].as_array().unwrap().len(), 3);
    let places: Vec<&str> = p["places"].as_array().unwrap().iter().map(|x| x["path"].as_str().unwrap()).collect();
    assert!(places.contains(&"Main campus / Floor 1 / Room 1"), "{places:?}");
    assert!(p["warnings"].to_string().contains("disabled"), "{}", p["warnings"]);
    assert_eq!(p["job"], Value::Null);
    let name0 = webview_db::device_name(0);
    assert_eq!(s.get(&format!("/api/t3000/devices/{name0}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(s.count().await, 0);
    assert_eq!(held_files(&s), Vec::<String>::new(), "a preview keeps no copy of the file");

    // A viewer may not import nor read the jobs.
    let viewer = s.user_client("vera", "viewer").await;
    let r = s.send(viewer.post(s.url("/api/t3000/import/webview")).body(vec![1u8, 2, 3])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(
        s.call(&viewer, reqwest::Method::GET, "/api/t3000/import/webview/jobs", None).await.status,
        StatusCode::FORBIDDEN
    );

    // Apply in small batches, and kill the server once the job is part way.
    let a = upload(&s, &db, &format!("apply=true&time_zone={TZ}&batch_rows=100")).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text());
    let a = a.json();
    assert_eq!(a["created"]["devices"], json!(DEVICES));
    assert_eq!(a["created"]["trendlogs"], json!(DEVICES));
    let id = a["job"]["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let j = job(&s, id).await;
        let done = j["rows_done"].as_u64().unwrap();
        assert_eq!(j["rows_total"], json!(rows));
        if done > 0 && done < rows {
            let held = held_files(&s);
            assert!(
                held.len() == 1 && held[0].starts_with(&format!("webview-{}-", j["sha256"].as_str().unwrap())),
                "{held:?}"
            );
            break;
        }
        assert!(done < rows, "the job finished before it could be caught midway: {j}");
        assert!(Instant::now() < deadline, "the job made no progress: {j}");
    }
    s.kill9();
    s.restart();
    let j = job(&s, id).await;
    assert_eq!(j["state"], json!("interrupted"), "{j}");
    let done_before = j["rows_done"].as_u64().unwrap();
    assert!(done_before > 0 && done_before < rows, "{j}");
    assert!((s.count().await as u64) < rows);
    assert_eq!(held_files(&s), Vec::<String>::new(), "the killed server's upload is removed at the start");

    // Run again, through the CLI, which follows the job to its end (plain lines: no terminal).
    let out = run_cmd(
        command()
            .args(["import", "webview"])
            .arg(&db)
            .args(["--apply", "--time-zone", TZ, "--batch-rows", "500", "--url", &s.url("")])
            .env("T3000_TOKEN", &s.token),
    );
    assert!(out.status.success(), "t3000 import webview failed:\n{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(&format!("job {id}: done: {rows} samples stored")), "{}", out.stdout);
    assert!(out.stdout.contains("Devices (3)"), "{}", out.stdout);
    let j = job(&s, id).await;
    assert_eq!(
        (j["state"].clone(), j["rows_done"].clone(), j["samples"].clone()),
        (json!("done"), json!(rows), json!(rows))
    );
    assert!(j["skipped"].as_object().unwrap().is_empty(), "{j}");
    assert_eq!(held_files(&s), Vec::<String>::new(), "a finished job keeps no copy of the file");

    // Everything it made.
    let ids = point_ids(&s).await;
    check_every_sample(&s, &ids).await;
    let d = s.get(&format!("/api/t3000/devices/{name0}")).await.ok_json();
    assert_eq!(
        (d["enabled"].clone(), d["ip_address"].clone(), d["port"].clone()),
        (json!(false), json!("192.0.2.1"), json!(502))
    );
    assert!(d["room_id"].as_i64().is_some(), "{d}");
    let (&in1, _) = ids.iter().find(|(_, (dev, i))| *dev == 0 && *i == 0).unwrap();
    let pt = s.get(&format!("/api/t3000/points/{in1}")).await.ok_json();
    assert_eq!(
        (pt["label"].clone(), pt["description"].clone(), pt["units"].clone()),
        (json!("OAT"), json!("Outside air temp"), json!("Deg.C"))
    );
    let logs = s.get("/api/t3000/trendlogs").await.ok_json();
    let log = logs
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == json!(format!("{name0} Temperatures")))
        .expect("trend log");
    assert_eq!(log["interval_ms"], json!(300_000));
    assert_eq!(log["point_ids"].as_array().unwrap().len(), 3);
    assert!(log["point_ids"].as_array().unwrap().contains(&json!(in1)));
    let audit = s.get("/api/t3000/audit?action=import.webview&limit=1000").await.ok_json();
    assert!(audit.as_array().unwrap().len() >= 3 * 3 + 3, "{audit}");

    // A second import of the same file changes nothing.
    let counts = |v: &Value| v.as_array().map(|a| a.len()).unwrap_or(0);
    let (logs_before, audit_before) = (counts(&logs), counts(&audit));
    let again = upload(&s, &db, &format!("apply=true&time_zone={TZ}")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    let again = again.json();
    assert_eq!(again["created"], json!({}));
    assert_eq!(again["updated_points"], json!(0));
    assert_eq!(again["job"]["state"], json!("done"));
    assert!(again["preview"]["devices"].as_array().unwrap().iter().all(|d| d["action"] == json!("exists")));
    assert!(
        again["preview"]["points"].as_array().unwrap().iter().all(|d| d["action"] == json!("unchanged")),
        "{}",
        again["preview"]["points"]
    );
    assert_eq!(counts(&s.get("/api/t3000/trendlogs").await.ok_json()), logs_before);
    assert_eq!(counts(&s.get("/api/t3000/audit?action=import.webview&limit=1000").await.ok_json()), audit_before);
    assert_eq!(s.count().await as u64, rows);
    assert_eq!(counts(&s.get("/api/t3000/import/webview/jobs").await.ok_json()), 1);
    assert_eq!(held_files(&s), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_another_schema_is_refused_naming_the_table_and_nothing_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("other.db");
    webview_db::build(&db, &Spec { devices: 1, polls: 3, start: "2025-06-01 00:00:00".into(), step_secs: 60 }).unwrap();
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("ALTER TABLE TRENDLOG_DATA_DETAIL RENAME TO TRENDLOG_DETAIL").unwrap();
    }
    let s = TestServer::start(CONFIG);
    for query in ["", "apply=true"] {
        let r = upload(&s, &db, query).await;
        r.assert_error("another schema", StatusCode::UNPROCESSABLE_ENTITY, Some("not_webview_schema"));
        let msg = r.json()["error"]["message"].to_string();
        assert!(msg.contains("table TRENDLOG_DATA_DETAIL is missing"), "{msg}");
    }
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"SQLite format 2\0 not really".repeat(100)).unwrap();
    let r = upload(&s, &garbage, "apply=true").await;
    r.assert_error("garbage", StatusCode::UNPROCESSABLE_ENTITY, Some("not_sqlite"));
    let r = upload(&s, &db, "time_zone=Mars/Olympus").await;
    r.assert_error("bad time zone", StatusCode::BAD_REQUEST, Some("invalid_parameter"));
    let msg = r.json()["error"]["message"].to_string();
    assert!(msg.contains("time_zone"), "{msg}");
    // Nothing imported.
    assert_eq!(
        s.get(&format!("/api/t3000/devices/{}", webview_db::device_name(0))).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.get("/api/t3000/import/webview/jobs").await.ok_json(), json!([]));
    assert!(!s.get("/api/t3000/buildings").await.ok_json().to_string().contains("Main campus"));
    assert_eq!(s.count().await, 0);
    assert_eq!(held_files(&s), Vec::<String>::new(), "a refused file is not kept");
}
