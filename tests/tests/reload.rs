//! Hot reload of the configuration: the file is changed under a running server, then SIGHUP,
//! `POST /api/t3000/config/reload` or the file watch applies it; every effect is observed through
//! the API, polling with a generous timeout.

use crate::ws::{try_connect, ws_url};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;
use t3_tests::*;

const WAIT: Duration = Duration::from_secs(30);

/// A device's points by name: (id, poll interval).
async fn points(server: &TestServer, device: &str) -> Vec<(String, u64, u64)> {
    let r = server.get(&format!("/api/t3000/devices/{device}/points")).await;
    if r.status != StatusCode::OK {
        return Vec::new();
    }
    let v = r.json();
    v["points"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let name = p["name"].as_str().unwrap_or_default().to_owned();
                    (name, p["id"].as_u64().unwrap_or(0), p["poll_interval_ms"].as_u64().unwrap_or(0))
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn point(server: &TestServer, device: &str, name: &str) -> Option<(u64, u64)> {
    points(server, device).await.into_iter().find(|(n, _, _)| n == name).map(|(_, id, ms)| (id, ms))
}

async fn state_of(server: &TestServer, device: &str) -> Value {
    server.get(&format!("/api/t3000/devices/{device}")).await.json()["status"]["state"].clone()
}

async fn good_value(server: &TestServer, id: u64) -> bool {
    let v = server.get(&format!("/api/t3000/points/{id}/value")).await;
    v.status == StatusCode::OK && v.json()["quality"] == 0xC0
}

async fn last_reload(server: &TestServer) -> Value {
    server.health().await["last_reload"].clone()
}

async fn reload_audits(server: &TestServer) -> Vec<Value> {
    let v = server.get("/api/t3000/audit?action=config.reload").await.ok_json();
    v.as_array().cloned().unwrap_or_default()
}

fn device(name: &str, port: u16, unit: u8, extra: &str) -> String {
    format!(
        "[[devices]]\nname = \"{name}\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = {port}\n\
         unit_id = {unit}\nprofile = \"T3-controller\"\npoll_interval_ms = 200\n{extra}"
    )
}

/// SIGHUP: a device's point is enabled and another polled at a new interval, a device is added
/// then removed, all through the devices' own code; a new listen address is only reported (the
/// server keeps listening where it was); each reload is audited and shown in `/healthz`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_device_changes_and_reports_the_listen_address() {
    let sim = simulate(&["--listen", "127.0.0.1:0", "--count", "2"]);
    let port = port_of(&sim.tcp);
    let in2_off = "[[devices.points]]\nname = \"IN2\"\nenabled = false\n";
    let server = TestServer::start(&device("ahu-1", port, 1, in2_off));
    poll_until("ahu-1 online", WAIT, || async { state_of(&server, "ahu-1").await == "online" }).await;
    assert!(point(&server, "ahu-1", "IN2").await.is_none(), "IN2 is not polled at first");
    let (in1, ms) = point(&server, "ahu-1", "IN1").await.expect("IN1");
    assert_eq!(ms, 200);

    // IN2 enabled, IN1 every 700 ms, a second controller, and another listen address.
    let in1_slow = "[[devices.points]]\nname = \"IN1\"\npoll_interval_ms = 700\n";
    server.rewrite_config(&format!(
        "[server]\nlisten = \"127.0.0.1:1\"\n{}{}",
        device("ahu-1", port, 1, in1_slow),
        device("ahu-2", port, 2, "")
    ));
    server.sighup();
    poll_until("IN1 polled every 700 ms", WAIT, || async { point(&server, "ahu-1", "IN1").await == Some((in1, 700)) })
        .await;
    let (in2, _) = point(&server, "ahu-1", "IN2").await.expect("IN2 is polled now");
    poll_until("a good IN2 value", WAIT, || good_value(&server, in2)).await;
    poll_until("ahu-2 online", WAIT, || async { state_of(&server, "ahu-2").await == "online" }).await;

    let last = last_reload(&server).await;
    assert_eq!(last["ok"], true, "{last}");
    assert_eq!(last["trigger"], "sighup", "{last}");
    assert_eq!(last["restart_needed"], serde_json::json!(["server.listen"]), "{last}");
    let applied: Vec<&str> = last["applied"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(applied, ["devices[ahu-1]", "devices[ahu-2]"], "{last}");
    // Still answering where it listened at start (this request is the proof).
    assert_eq!(server.get("/healthz").await.status, StatusCode::OK);
    let log = server.stderr();
    assert!(log.contains("server.listen"), "the log names the key that needs a restart:\n{log}");

    // ahu-2 removed from the file: its polling stops and the catalog forgets it.
    server.rewrite_config(&format!("[server]\nlisten = \"127.0.0.1:1\"\n{}", device("ahu-1", port, 1, in1_slow)));
    server.sighup();
    poll_until("ahu-2 gone", WAIT, || async {
        server.get("/api/t3000/devices/ahu-2").await.status == StatusCode::NOT_FOUND
    })
    .await;
    let audits = reload_audits(&server).await;
    assert_eq!(audits.len(), 2, "one audit entry per reload: {audits:?}");
    assert!(audits.iter().all(|a| a["actor"] == "sighup"), "{audits:?}");
    assert!(
        audits.iter().all(|a| a["result"].as_str().unwrap_or_default().contains("restart needed: server.listen")),
        "{audits:?}"
    );
    let removed =
        audits.iter().find(|a| a["old"].get("devices[ahu-2]").is_some() && a["new"]["devices[ahu-2]"].is_null());
    assert!(removed.is_some(), "the second reload's entry shows ahu-2 removed: {audits:?}");
}

/// `POST /api/t3000/config/reload`: admin only; auth limits, CORS origins, the WebSocket client
/// limit and retention change at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_reload_applies_auth_cors_websocket_and_retention() {
    let start = "[storage]\nack = \"parquet\"\n[retention]\ncheck_interval_secs = 1\n[websocket]\nmax_clients = 5\n";
    let server = TestServer::start(start);
    let anon = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        let (anon, url) = (anon.clone(), server.url("/api/t3000/devices"));
        async move {
            let r = anon
                .request(Method::OPTIONS, url)
                .header("origin", origin)
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "authorization")
                .send()
                .await
                .unwrap();
            r.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()).map(str::to_owned)
        }
    };
    let login = |user: &'static str| {
        let (anon, url) = (anon.clone(), server.url("/api/t3000/auth/login"));
        async move {
            let body = serde_json::json!({"username": user, "password": "wrong-password"});
            anon.post(url).json(&body).send().await.unwrap().status()
        }
    };
    assert_eq!(preflight("https://new.example").await, None);
    assert_eq!(login("bob").await, StatusCode::UNAUTHORIZED);
    assert_eq!(login("bob").await, StatusCode::UNAUTHORIZED, "5 failures allowed at start");
    // Ten days ago: kept forever at start.
    let old_ts = (chrono::Utc::now() - chrono::Duration::days(10)).timestamp_micros();
    server.ingest_ok(&[Sample::good(77, old_ts, 1.0), Sample::good(77, old_ts + 1_000_000, 2.0)]).await;
    assert_eq!(server.samples_of(77).await.len(), 2);

    server.rewrite_config(
        "[storage]\nack = \"parquet\"\n[retention]\ncheck_interval_secs = 1\nmax_age_days = 3\n\
         [websocket]\nmax_clients = 1\n[auth]\nlogin_max_failures = 1\ncors_origins = [\"https://new.example\"]\n",
    );
    let viewer = server.user_client("vera", "viewer").await;
    let r = server.send(viewer.post(server.url("/api/t3000/config/reload"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "only an admin reloads: {}", r.text());
    assert!(reload_audits(&server).await.is_empty(), "a refused request reloads nothing");

    let report = server.post_json("/api/t3000/config/reload", &serde_json::json!({})).await.ok_json();
    let keys: Vec<&str> = report["applied"].as_array().unwrap().iter().filter_map(|c| c["key"].as_str()).collect();
    assert_eq!(
        keys,
        ["auth.cors_origins", "auth.login_max_failures", "retention.max_age_days", "websocket.max_clients"],
        "{report}"
    );
    assert_eq!(report["restart_needed"], serde_json::json!([]), "{report}");
    assert_eq!(report["trigger"], "api");
    assert_eq!(report["actor"], "admin");
    let max = report["applied"].as_array().unwrap().iter().find(|c| c["key"] == "auth.login_max_failures").unwrap();
    assert_eq!((max["old"].as_i64(), max["new"].as_i64()), (Some(5), Some(1)), "{report}");

    assert_eq!(preflight("https://new.example").await.as_deref(), Some("https://new.example"));
    assert_eq!(login("carol").await, StatusCode::UNAUTHORIZED);
    assert_eq!(login("carol").await, StatusCode::TOO_MANY_REQUESTS, "one failure is the limit now");

    // Connected once its Welcome arrives.
    let _first = crate::ws::connect(&server, &server.token).await;
    let second = try_connect(&ws_url(&server, ""), &[("authorization", format!("Bearer {}", server.token))]).await;
    match second {
        Err((status, body)) => {
            assert_eq!(status, 503, "{body}");
            assert!(body.contains("too_many_clients"), "{body}");
        }
        Ok(_) => panic!("a second client got in past websocket.max_clients = 1"),
    }

    poll_until("the 10-day-old samples deleted by retention", WAIT, || async {
        server.samples_of(77).await.is_empty()
    })
    .await;
    let audits = reload_audits(&server).await;
    assert_eq!(audits.len(), 1, "{audits:?}");
    assert_eq!(audits[0]["actor"], "admin");
    assert_eq!(audits[0]["new"]["auth.login_max_failures"], 1, "{audits:?}");
}

/// An invalid file changes nothing; the reply, `/healthz` and the log name the key and its line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_changes_nothing_and_names_key_and_line() {
    let server = TestServer::start("[auth]\nlogin_max_failures = 2\n");
    server.rewrite_config("[auth]\nlogin_max_failures = 1\n[query]\nthreads = 0\n");
    let text = std::fs::read_to_string(server.root().join("t3000.toml")).unwrap();
    let line = text.lines().position(|l| l.trim() == "threads = 0").expect("the bad line") + 1;

    let r = server.post_json("/api/t3000/config/reload", &serde_json::json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"]["code"], "invalid_config", "{body}");
    assert_eq!(body["key"], "query.threads", "{body}");
    assert_eq!(body["line"], line, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(&format!("t3000.toml:{line}: query.threads")),
        "{body}"
    );

    let last = last_reload(&server).await;
    assert_eq!(last["ok"], false, "{last}");
    assert_eq!((last["key"].as_str(), last["line"].as_u64()), (Some("query.threads"), Some(line as u64)), "{last}");
    poll_until("the refusal in the log", WAIT, || async {
        let log = server.stderr();
        log.contains("configuration reload refused") && log.contains(&format!(":{line}: query.threads"))
    })
    .await;

    // Nothing changed: two failed logins still pass as 401 before the third is throttled.
    let anon = reqwest::Client::new();
    let body = serde_json::json!({"username": "dave", "password": "wrong-password"});
    for want in [StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS] {
        let status = anon.post(server.url("/api/t3000/auth/login")).json(&body).send().await.unwrap().status();
        assert_eq!(status, want);
    }
    let audits = reload_audits(&server).await;
    assert_eq!(audits.len(), 1, "{audits:?}");
    assert!(audits[0]["result"].as_str().unwrap().starts_with("refused: "), "{audits:?}");

    // SIGHUP with the same file: refused the same way.
    server.sighup();
    poll_until("the SIGHUP refusal audited", WAIT, || async { reload_audits(&server).await.len() == 2 }).await;
    assert_eq!(last_reload(&server).await["trigger"], "sighup");
}

/// `[server] watch_config`: a change of the file is applied without a signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_watch_applies_a_change_without_a_signal() {
    let server = TestServer::start("[server]\nwatch_config = true\n");
    server.rewrite_config("[server]\nwatch_config = true\n[auth]\ncors_origins = [\"https://watched.example\"]\n");
    poll_until("the file watch reloaded", WAIT, || async {
        let last = last_reload(&server).await;
        last["trigger"] == "file-watch" && last["ok"] == true
    })
    .await;
    let r = reqwest::Client::new()
        .request(Method::OPTIONS, server.url("/api/t3000/devices"))
        .header("origin", "https://watched.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    let allowed = r.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok());
    assert_eq!(allowed, Some("https://watched.example"));
    let audits = reload_audits(&server).await;
    assert_eq!(audits.len(), 1, "one reload for one change: {audits:?}");
    assert_eq!(audits[0]["actor"], "file-watch");
}

/// The demo has no configuration file: the endpoint says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_has_no_file_to_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_demo(&tmp.path().join("data"));
    let r = server.post_json("/api/t3000/config/reload", &serde_json::json!({})).await;
    r.assert_error("reload in the demo", StatusCode::CONFLICT, Some("no_config_file"));
    assert!(r.text().contains("without a configuration file"), "{}", r.text());
}

/// The plugin folders are scanned again at each reload: a device of a plugin that is not there is
/// refused (nothing changes), and once the library is dropped into the folder the same file
/// applies and the device polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_scans_the_plugin_folders_again() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = crate::plugins::plugins_toml(dir.path(), 2000);
    let server = TestServer::start(&plugins);
    let listed = server.get("/api/t3000/plugins").await.ok_json();
    assert_eq!(listed["plugins"], serde_json::json!([]), "{listed}");

    let kit = "[[devices]]\nname = \"kit\"\nprotocol = \"testkit\"\npoll_interval_ms = 200\n";
    server.rewrite_config(&format!("{plugins}{kit}"));
    let r = server.post_json("/api/t3000/config/reload", &serde_json::json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json()["key"], "devices[0].protocol", "{}", r.text());

    std::fs::copy(crate::plugins::testkit(), dir.path().join("libt3_plugin_testkit.so")).unwrap();
    let report = server.post_json("/api/t3000/config/reload", &serde_json::json!({})).await.ok_json();
    assert_eq!(report["applied"][0]["key"], "devices[kit]", "{report}");
    assert_eq!(report["failed"], serde_json::json!([]), "{report}");
    crate::plugins::wait_state(&server, "kit", "online").await;
    let listed = server.get("/api/t3000/plugins").await.ok_json();
    assert_eq!(listed["plugins"][0]["name"], "testkit", "{listed}");
}

/// `[log]`: the level and the file change at once; the format needs a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_changes_the_log_level_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first.log"), dir.path().join("second.log"));
    let log = |level: &str, file: &std::path::Path, format: &str| {
        format!("[log]\nlevel = \"{level}\"\nformat = \"{format}\"\nfile = \"{}\"\n", file.display())
    };
    let server = TestServer::start(&log("warn", &first, "text"));
    // At `warn`, a request line (info) is not written.
    server.get("/api/t3000/devices").await.ok_json();
    let text = std::fs::read_to_string(&first).unwrap();
    assert!(!text.contains("path=/api/t3000/devices"), "{text}");

    server.rewrite_config(&log("info", &second, "json"));
    let report = server.post_json("/api/t3000/config/reload", &serde_json::json!({})).await.ok_json();
    let keys: Vec<&str> = report["applied"].as_array().unwrap().iter().filter_map(|c| c["key"].as_str()).collect();
    assert_eq!(keys, ["log.file", "log.level"], "{report}");
    let restart: Vec<&str> =
        report["restart_needed"].as_array().unwrap().iter().filter_map(|c| c["key"].as_str()).collect();
    assert_eq!(restart, ["log.format"], "{report}");
    assert_eq!(report["failed"], serde_json::json!([]), "{report}");

    server.get("/api/t3000/devices").await.ok_json();
    poll_until("a request line at info in the new file", WAIT, || async {
        std::fs::read_to_string(&second).is_ok_and(|t| t.contains("path=/api/t3000/devices"))
    })
    .await;
    let old = std::fs::read_to_string(&first).unwrap();
    assert!(!old.contains("path=/api/t3000/devices"), "nothing more goes to the old file: {old}");

    // A file the server cannot open (its folder is a file): not applied, the old file stays.
    let blocked = dir.path().join("logs");
    std::fs::write(&blocked, "not a folder").unwrap();
    let third = blocked.join("third.log");
    server.rewrite_config(&log("info", &third, "json"));
    let report = server.post_json("/api/t3000/config/reload", &serde_json::json!({})).await.ok_json();
    assert_eq!(report["applied"], serde_json::json!([]), "{report}");
    let failed = report["failed"].as_array().unwrap();
    assert!(failed.len() == 1 && failed[0]["key"].as_str().unwrap().starts_with("log.file"), "{report}");
    server.get("/api/t3000/config/ping-after-refusal").await;
    poll_until("request lines still in the second file", WAIT, || async {
        std::fs::read_to_string(&second).is_ok_and(|t| t.contains("ping-after-refusal"))
    })
    .await;

    // Fixed on disk, the same file is tried again by the next reload, which says it took.
    std::fs::remove_file(&blocked).unwrap();
    std::fs::create_dir(&blocked).unwrap();
    let report = server.post_json("/api/t3000/config/reload", &serde_json::json!({})).await.ok_json();
    let keys: Vec<&str> = report["applied"].as_array().unwrap().iter().filter_map(|c| c["key"].as_str()).collect();
    assert_eq!(keys, ["log.file"], "{report}");
    assert_eq!(report["failed"], serde_json::json!([]), "{report}");
    server.get("/api/t3000/devices").await.ok_json();
    poll_until("a request line in the file once it could be opened", WAIT, || async {
        std::fs::read_to_string(&third).is_ok_and(|t| t.contains("path=/api/t3000/devices"))
    })
    .await;
}

/// `[alerts]` and the disk thresholds change at once; a channel's secret and its URL's path stay
/// out of the reply and the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_alert_channels_and_disk_thresholds() {
    let server = TestServer::start("");
    let channels = server.get("/api/t3000/alerts/channels").await.ok_json();
    assert_eq!(channels, serde_json::json!([]), "no channel at start");
    let alarm_low = || async {
        let open = server.get("/api/t3000/alarms").await.ok_json();
        open.as_array().unwrap().iter().any(|a| a["rule_id"] == t3_tests::system_alarm::DISK_LOW)
    };
    assert!(!alarm_low().await, "the test machine's disk is above the test thresholds");

    // 16 TiB free wanted: far more than any test machine has.
    server.rewrite_config(
        "[storage]\ndisk_alarm_free_mb = 16777216\ndisk_check_interval_ms = 100\n\
         [[alerts.webhook]]\nname = \"ops\"\nurl = \"http://127.0.0.1:9/hooks/path-key-123\"\nsecret = \"webhook-secret-456\"\n",
    );
    let reply = server.post_json("/api/t3000/config/reload", &serde_json::json!({})).await;
    let text = reply.text();
    let report = reply.ok_json();
    let keys: Vec<&str> = report["applied"].as_array().unwrap().iter().filter_map(|c| c["key"].as_str()).collect();
    assert_eq!(keys, ["alerts.webhook", "storage.disk_alarm_free_mb", "storage.disk_check_interval_ms"], "{report}");
    assert_eq!(report["restart_needed"], serde_json::json!([]), "{report}");
    poll_until("the disk-low alarm under the new threshold", WAIT, || async { alarm_low().await }).await;
    let channels = server.get("/api/t3000/alerts/channels").await.ok_json();
    assert_eq!(channels[0]["name"], "ops", "{channels}");

    let audit = server.get("/api/t3000/audit?action=config.reload").await.text();
    for secret in ["webhook-secret-456", "path-key-123"] {
        assert!(!text.contains(secret), "{secret} in the reply: {text}");
        assert!(!audit.contains(secret), "{secret} in the audit log: {audit}");
        assert!(!server.stderr().contains(secret), "{secret} in the log");
    }
}
