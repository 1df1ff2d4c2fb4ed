//! Disk-space protection on a small file system of its own (an 8 MB tmpfs mounted for the test;
//! `.ci/run` runs as root, and the test fails, never skips, if it cannot mount): a ballast file
//! takes the free space below the alarm threshold (system alarm `DISK_LOW`), then below the floor (system
//! alarm `DISK_FLOOR`, writes refused with 503 `disk_full` before the disk is full, reads still answered);
//! once the ballast is deleted, writes resume and the alarms end by themselves, with every
//! acknowledged sample kept and the same server process running throughout.
//!
//! Also the other system alarms an end-to-end test can provoke: plugin refused (`PLUGIN_REFUSED`, a file in the
//! plugin folder that is not a plugin) and devices offline (`DEVICES_OFFLINE`, a device on a port nothing listens on).

use serde_json::{Value, json};
use std::time::Duration;
use t3_tests::system_alarm::*;
use t3_tests::*;

const MIB: u64 = 1 << 20;

/// Thresholds for an 8 MiB file system: alarm below 4 MiB free, floor at 2 MiB; measured every
/// 100 ms so the test waits little (it polls, never sleeps).
const THRESHOLDS: &str = r#"
[storage]
disk_alarm_free_mb = 4
disk_alarm_free_percent = 0
disk_floor_free_mb = 2
disk_check_interval_ms = 100
"#;

const WAIT: Duration = Duration::from_secs(30);

fn samples(from: usize, n: usize) -> Vec<Sample> {
    (from..from + n).map(|i| Sample::good(3, BASE_TS + i as i64 * SECOND_US, i as f64 + 0.5)).collect()
}

/// The system alarm `id` as `GET /alarms` lists it (open alarms), if it is listed.
async fn system_alarm(server: &TestServer, id: i64) -> Option<Value> {
    let open = server.get("/api/t3000/alarms").await.ok_json();
    open.as_array().expect("a list").iter().find(|a| a["rule_id"] == json!(id)).cloned()
}

async fn disk_level(server: &TestServer) -> Value {
    server.health().await["disk"]["level"].clone()
}

/// Waits until `/healthz` shows the disk at `level` and the system alarm `id` in `state`
/// (`None`: not listed, i.e. normal).
async fn wait_for_alarm(server: &TestServer, level: &str, id: i64, state: Option<&str>) {
    let what = format!("disk level {level} and system alarm {id} {state:?}");
    let ok = wait_for(WAIT, || async {
        disk_level(server).await == json!(level)
            && system_alarm(server, id).await.map(|a| a["state"].as_str().unwrap_or_default().to_owned()).as_deref()
                == state
    })
    .await;
    assert!(
        ok,
        "timed out after {WAIT:?} waiting for {what}\nhealthz: {}\nalarms: {}\nserver log:\n{}",
        pretty(&server.health().await),
        pretty(&server.get("/api/t3000/alarms?state=all").await.json()),
        server.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_disk_raises_an_alarm_the_floor_refuses_writes_and_space_returning_resumes_them() {
    let fs = SmallFs::mount("8m");
    let mut server = TestServer::start_in(&fs.path().join("data"), THRESHOLDS);
    let pid = server.pid();
    let health = server.health().await;
    assert_eq!(health["disk"]["level"], json!("ok"), "{}", pretty(&health));
    assert_eq!(health["disk"]["floor_free_bytes"], json!(2 * MIB));
    let mut stored = samples(0, 200);
    server.ingest_ok(&stored).await;
    let b = server.post_json("/api/t3000/buildings", &json!({"name": "Plant room"})).await.json();
    let floor = server.post_json(&format!("/api/t3000/buildings/{}/floors", b["id"]), &json!({"name": "L1"})).await;
    let plan = format!("/api/t3000/floors/{}/plan", floor.json()["id"].as_i64().expect("a floor"));

    // Below the alarm threshold: a warning, writes still accepted.
    fs.fill_to(3 * MIB);
    wait_for_alarm(&server, "low", DISK_LOW, Some("active")).await;
    let low = system_alarm(&server, DISK_LOW).await.unwrap();
    assert_eq!(low["level"], json!("warning"), "{}", pretty(&low));
    let message = low["message"].as_str().unwrap_or_default();
    assert!(message.contains("below the alarm threshold of 4.0 MiB"), "{}", pretty(&low));
    server.ingest_ok(&samples(200, 50)).await;
    stored.extend(samples(200, 50));

    // Below the floor: writes refused with 503, a JSON error and Retry-After, before the disk is full.
    let filler = fs.fill_to(MIB);
    wait_for_alarm(&server, "floor", DISK_FLOOR, Some("active")).await;
    assert!(fs.free() > 0, "the floor refuses writes before the disk is full");
    let r = server.ingest(&samples(1000, 10)).await;
    r.assert_error("POST /samples below the floor", StatusCode::SERVICE_UNAVAILABLE, Some("disk_full"));
    let message = r.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("below the floor of 2.0 MiB"), "{message}");
    assert!(r.headers.contains_key(reqwest::header::RETRY_AFTER), "no Retry-After: {:?}", r.headers);
    server.get("/readyz").await.assert_error("GET /readyz below the floor", StatusCode::SERVICE_UNAVAILABLE, None);
    let health = server.health().await;
    assert_eq!(health["writes"], json!("read-only"), "{}", pretty(&health));
    assert!(health["writes_reason"].as_str().unwrap_or_default().contains("below the floor"), "{}", pretty(&health));
    assert!(health["disk"]["refused_samples"].as_u64().unwrap_or_default() >= 10, "{}", pretty(&health));
    let floor = system_alarm(&server, DISK_FLOOR).await.unwrap();
    assert_eq!(floor["level"], json!("fault"), "{}", pretty(&floor));
    // Reads answer, over everything acknowledged.
    assert_eq!(server.all_samples().await, stored);
    let metrics = server.get("/metrics").await.text();
    assert!(metrics.contains("\nt3000_disk_level 2\n"), "{metrics}");
    assert!(metrics.contains("\nt3000_writes_refused 1\n"), "{metrics}");
    // A backup stages files in the data directory: refused below the floor, nothing written.
    let r = server.post_json("/api/t3000/backup", &json!({})).await;
    r.assert_error("POST /backup below the floor", StatusCode::SERVICE_UNAVAILABLE, Some("disk_full"));
    assert!(
        r.json()["error"]["message"].as_str().unwrap_or_default().contains("a backup, which stages files"),
        "{}",
        r.text()
    );
    // So is a floor plan upload.
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="2" height="1"/>"#.to_vec();
    let r = server.send(server.client.put(server.url(&plan)).header("content-type", "image/svg+xml").body(svg)).await;
    r.assert_error("PUT a floor plan below the floor", StatusCode::SERVICE_UNAVAILABLE, Some("disk_full"));
    let staged = server.data_dir.join("tmp");
    assert_eq!(list_files(&staged), Vec::<std::path::PathBuf>::new(), "nothing staged");

    // The floor alarm is acknowledged like any alarm.
    let ack = server.post_json(&format!("/api/t3000/alarms/{DISK_FLOOR}/ack"), &json!({})).await.ok_json();
    assert_eq!(ack["transition"]["to"], json!("acknowledged"), "{}", pretty(&ack));

    // Space returns: writes resume by themselves; the acknowledged floor alarm ends, the disk-low
    // alarm is cleared and waits for its acknowledgement.
    std::fs::remove_file(&filler).unwrap();
    wait_for_alarm(&server, "ok", DISK_FLOOR, None).await;
    wait_for_alarm(&server, "ok", DISK_LOW, Some("cleared")).await;
    assert_eq!(server.health().await["writes"], json!("ok"));
    assert_eq!(server.get("/readyz").await.status, StatusCode::OK);
    server.ingest_ok(&samples(1000, 10)).await;
    stored.extend(samples(1000, 10));
    assert_eq!(server.all_samples().await, stored, "no acknowledged sample lost");
    server.post_json(&format!("/api/t3000/alarms/{DISK_LOW}/ack"), &json!({})).await.ok_json();
    assert_eq!(system_alarm(&server, DISK_LOW).await, None);

    // Every transition is in the alarm history.
    let history = server.get(&format!("/api/t3000/alarms/history?rule_id={DISK_FLOOR}")).await.ok_json();
    let states: Vec<&str> =
        history.as_array().unwrap().iter().rev().map(|e| e["transition"]["to"].as_str().unwrap_or_default()).collect();
    assert_eq!(states, ["active", "acknowledged", "normal"], "{}", pretty(&history));

    // The same process served throughout, and a restart keeps everything.
    assert!(server.is_running(), "the server crashed:\n{}", server.stderr());
    assert_eq!(server.pid(), pid);
    server.stop();
    server.restart();
    assert_eq!(server.all_samples().await, stored);
    server.stop();
}

/// A file in the plugin folder that is not a plugin raises the plugin-refused alarm, naming the
/// file and why; it is acknowledged like any alarm and ends once the file is gone (at the next
/// start, when the folder is scanned again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_plugin_is_a_system_alarm() {
    let plugins = tempfile::tempdir().unwrap();
    let bad = plugins.path().join("garbage.so");
    std::fs::write(&bad, b"not a shared library").unwrap();
    let extra = format!("[plugins]\ndirs = [\"{}\"]\n", plugins.path().display());
    let mut server = TestServer::start(&extra);

    let all = server.get("/api/t3000/alarms?state=all").await.json();
    let alarm = system_alarm(&server, PLUGIN_REFUSED)
        .await
        .unwrap_or_else(|| panic!("no plugin-refused alarm: {}", pretty(&all)));
    assert_eq!((&alarm["state"], &alarm["level"]), (&json!("active"), &json!("warning")), "{}", pretty(&alarm));
    let message = alarm["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("1 plugin file(s) refused: "), "{message}");
    assert!(message.contains(&bad.display().to_string()), "{message}");
    let ack = server.post_json(&format!("/api/t3000/alarms/{PLUGIN_REFUSED}/ack"), &json!({})).await.ok_json();
    assert_eq!(ack["transition"]["to"], json!("acknowledged"));
    assert_eq!(system_alarm(&server, PLUGIN_REFUSED).await.unwrap()["state"], json!("acknowledged"));

    std::fs::remove_file(&bad).unwrap();
    server.stop();
    server.restart();
    assert_eq!(system_alarm(&server, PLUGIN_REFUSED).await, None, "the acknowledged alarm ended with its cause");
    let history = server.get(&format!("/api/t3000/alarms/history?rule_id={PLUGIN_REFUSED}")).await.ok_json();
    let states: Vec<&str> =
        history.as_array().unwrap().iter().rev().map(|e| e["transition"]["to"].as_str().unwrap_or_default()).collect();
    assert_eq!(states, ["active", "acknowledged", "normal"], "{}", pretty(&history));
    server.stop();
}

/// A device that does not answer, watched by no rule, raises the devices-offline system alarm
/// (DEVICES_OFFLINE) naming it; once an enabled `device_offline` rule watches it, the rule's alarm speaks for
/// it and the system alarm no longer counts it (no duplicate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_offline_without_a_rule_is_a_system_alarm_and_a_rule_takes_it_over() {
    // A port nothing listens on.
    let port = REFUSED_PORT;
    let extra = format!(
        "[collector]\noffline_after_failures = 2\nbackoff_initial_ms = 100\nbackoff_max_ms = 500\n\n[[devices]]\nname = \"ghost\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = {port}\nunit_id = 1\nprofile = \"T3-controller\"\npoll_interval_ms = 200\n"
    );
    let mut server = TestServer::start(&extra);
    let srv = &server;
    poll_until("the devices-offline system alarm", WAIT, || async {
        system_alarm(srv, DEVICES_OFFLINE).await.is_some_and(|a| a["state"] == json!("active"))
    })
    .await;
    let alarm = system_alarm(&server, DEVICES_OFFLINE).await.unwrap();
    assert_eq!(alarm["level"], json!("offline"), "{}", pretty(&alarm));
    assert_eq!(alarm["message"], json!("1 device(s) do not answer: ghost"), "{}", pretty(&alarm));

    let device_id = server.get("/api/t3000/devices/ghost").await.ok_json()["id"].clone();
    let body =
        json!({"name": "ghost offline", "device_id": device_id, "rule": {"condition": {"kind": "device_offline"}}});
    let rule = server.create_alarm_rule(&body).await;
    poll_until("the rule's alarm to take over from the system alarm", WAIT, || async {
        let open = srv.get("/api/t3000/alarms").await.ok_json();
        let state =
            |id: i64| open.as_array().unwrap().iter().find(|a| a["rule_id"] == json!(id)).map(|a| a["state"].clone());
        state(rule) == Some(json!("active")) && state(DEVICES_OFFLINE) == Some(json!("cleared"))
    })
    .await;
    server.stop();
}
