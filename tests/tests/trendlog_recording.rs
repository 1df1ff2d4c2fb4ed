//! Trend logs are T3000's monitors, end to end with the real binary: a trend log records its
//! points at its interval through the collector (a simulated T3 controller polled every 5 s gets
//! one point recorded every second), a point in two logs is recorded at the faster rate, deleting
//! a log gives the point back to the other log or to its own settings, the settings survive a
//! restart, and a plugin device's point is sped up alike. Rates are measured from the time stamps
//! of the stored samples, never from sleeps.

use crate::plugins::{cc, named, plugins_toml, points_of, root, testkit, wait_state};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use t3_tests::*;

/// The device's own poll interval: slow, so a trend log's faster rate stands out.
const OWN_MS: u64 = 5_000;

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

async fn point_id(server: &TestServer, device: &str, name: &str) -> u64 {
    let points = server.get(&format!("/api/t3000/devices/{device}/points")).await.ok_json();
    points["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["id"].as_u64())
        .unwrap_or_else(|| panic!("{device} has no point {name}: {points}"))
}

async fn point(server: &TestServer, id: u64) -> Value {
    server.get(&format!("/api/t3000/points/{id}")).await.ok_json()
}

/// The gaps (seconds) between `n + 1` samples of `point` recorded after `after_us`, leaving out
/// the first one (a poll task that was restarted polls at once).
async fn gaps(server: &TestServer, point: u64, after_us: i64, n: usize, expected_s: f64) -> Vec<f64> {
    let timeout = Duration::from_secs_f64(expected_s * (n as f64 + 2.0) * 2.0 + 15.0);
    let deadline = std::time::Instant::now() + timeout;
    let ts = loop {
        let ts: Vec<i64> =
            server.samples_of(point as u32).await.into_iter().map(|s| s.ts).filter(|&t| t > after_us).collect();
        if ts.len() > n + 1 {
            break ts;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "point {point}: only {} samples after {after_us} within {timeout:?}",
            ts.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    ts[1..].windows(2).take(n).map(|w| (w[1] - w[0]) as f64 / 1e6).collect()
}

/// Asserts that the median gap of `gaps` is `expected_s`, within 30 %.
fn assert_rate(what: &str, gaps: &[f64], expected_s: f64) {
    let mut sorted = gaps.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    assert!(
        (expected_s * 0.7..=expected_s * 1.3).contains(&median),
        "{what}: a sample every {median:.2} s (gaps {gaps:?}), expected every {expected_s} s"
    );
}

/// The effective recording of a point: its interval and the trend logs that cause it.
async fn recording(server: &TestServer, id: u64) -> (u64, Vec<u64>) {
    let p = point(server, id).await;
    let r = &p["recording"];
    let logs = r["trendlogs"].as_array().unwrap_or_else(|| panic!("no recording: {p:#}"));
    (r["interval_ms"].as_u64().unwrap(), logs.iter().map(|v| v.as_u64().unwrap()).collect())
}

fn slow_ahu(port: u16) -> String {
    format!(
        "[[devices]]\nname = \"ahu-1\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = {port}\nunit_id = 1\nprofile = \"T3-controller\"\npoll_interval_ms = {OWN_MS}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trend_log_records_its_points_at_its_interval_until_deleted() {
    let sim = simulate(&["--listen", "127.0.0.1:0", "--count", "1"]);
    let mut server = TestServer::start(&slow_ahu(port_of(&sim.tcp)));
    poll_until("ahu-1 online", Duration::from_secs(30), || async {
        server.get("/api/t3000/devices/ahu-1").await.ok_json()["online"] == true
    })
    .await;
    let in1 = point_id(&server, "ahu-1", "IN1").await;
    let in2 = point_id(&server, "ahu-1", "IN2").await;
    assert_eq!(recording(&server, in1).await, (OWN_MS, vec![]));

    // Bad bodies: 4xx with a JSON error; a missing log is a JSON 404.
    for (body, status) in [
        (json!({"name": "x", "point_ids": [in1], "interval_ms": 999}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"name": "x", "point_ids": [in1], "on_change": true, "deadband": -1.0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"name": "x", "point_ids": [in1], "on_change": "yes"}), StatusCode::BAD_REQUEST),
        (json!({"name": "x", "point_ids": [999_999]}), StatusCode::NOT_FOUND),
    ] {
        server.post_json("/api/t3000/trendlogs", &body).await.assert_error(&body.to_string(), status, None);
    }
    server.get("/api/t3000/trendlogs/999999").await.assert_error(
        "no such log",
        StatusCode::NOT_FOUND,
        Some("not_found"),
    );

    // A trend log at 1 s: IN1 is recorded every second, IN2 stays at the device's 5 s.
    let a = server
        .post_json("/api/t3000/trendlogs", &json!({"name": "fast IN1", "point_ids": [in1], "interval_ms": 1000}))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let a = a.json();
    let a_id = a["id"].as_u64().unwrap();
    assert_eq!((a["on_change"].as_bool(), a["deadband"].as_f64()), (Some(false), Some(0.0)), "{a}");
    assert_eq!(server.get(&format!("/api/t3000/trendlogs/{a_id}")).await.ok_json(), a);
    assert_rate("IN1 in a 1 s log", &gaps(&server, in1, a["updated_us"].as_i64().unwrap(), 5, 1.0).await, 1.0);
    assert_eq!(recording(&server, in1).await, (1000, vec![a_id]));
    // The point's own settings stay its own.
    assert_eq!(point(&server, in1).await["trend"]["interval_ms"], OWN_MS);
    assert_eq!(recording(&server, in2).await, (OWN_MS, vec![]));

    // A second log at 2 s holding IN1 and IN2: IN1 keeps the faster 1 s, IN2 gets 2 s.
    let b = server
        .post_json("/api/t3000/trendlogs", &json!({"name": "both", "point_ids": [in1, in2], "interval_ms": 2000}))
        .await
        .json();
    let b_id = b["id"].as_u64().unwrap();
    let after = b["updated_us"].as_i64().unwrap();
    assert_rate("IN2 in a 2 s log", &gaps(&server, in2, after, 3, 2.0).await, 2.0);
    assert_rate("IN1 in a 1 s and a 2 s log", &gaps(&server, in1, after, 5, 1.0).await, 1.0);
    assert_eq!(recording(&server, in1).await, (1000, vec![a_id, b_id]));
    assert_eq!(recording(&server, in2).await, (2000, vec![b_id]));

    // Deleting the 1 s log: IN1 falls back to the other log's 2 s.
    assert_eq!(server.delete(&format!("/api/t3000/trendlogs/{a_id}")).await.status, StatusCode::NO_CONTENT);
    let after = now_us();
    assert_rate("IN1 left in the 2 s log", &gaps(&server, in1, after, 3, 2.0).await, 2.0);
    assert_eq!(recording(&server, in1).await, (2000, vec![b_id]));

    // A restart recomputes it from the catalog.
    server.stop();
    server.restart();
    poll_until("ahu-1 online again", Duration::from_secs(30), || async {
        server.get("/api/t3000/devices/ahu-1").await.ok_json()["online"] == true
    })
    .await;
    let after = now_us();
    assert_eq!(recording(&server, in1).await, (2000, vec![b_id]));
    assert_rate("IN1 after a restart", &gaps(&server, in1, after, 3, 2.0).await, 2.0);

    // On change: the log says so, the point's own settings still do not.
    let body =
        json!({"name": "both", "point_ids": [in1, in2], "interval_ms": 2000, "on_change": true, "deadband": 0.5});
    let b2 = server.put_json(&format!("/api/t3000/trendlogs/{b_id}"), &body).await.ok_json();
    assert_eq!((b2["on_change"].as_bool(), b2["deadband"].as_f64()), (Some(true), Some(0.5)), "{b2}");
    let p = point(&server, in2).await;
    assert_eq!(
        (p["recording"]["on_change"].as_bool(), p["recording"]["deadband"].as_f64()),
        (Some(true), Some(0.5)),
        "{p:#}"
    );
    assert!(p["trend"]["deadband"].is_null(), "own settings changed: {p:#}");
    server.put_json("/api/t3000/trendlogs/999999", &body).await.assert_error(
        "no such log",
        StatusCode::NOT_FOUND,
        None,
    );

    // Deleting the last log: both points are back to the device's 5 s, every sample.
    assert_eq!(server.delete(&format!("/api/t3000/trendlogs/{b_id}")).await.status, StatusCode::NO_CONTENT);
    let after = now_us();
    assert_rate("IN1 in no log", &gaps(&server, in1, after, 2, 5.0).await, 5.0);
    let p = point(&server, in1).await;
    assert_eq!(p["recording"]["on_change"], false, "{p:#}");
    assert_eq!(recording(&server, in1).await, (OWN_MS, vec![]));
    assert_eq!(recording(&server, in2).await, (OWN_MS, vec![]));

    // Each change is in the audit log.
    for (action, n) in [("trendlog.create", 2), ("trendlog.update", 1), ("trendlog.delete", 2)] {
        let audit = server.get(&format!("/api/t3000/audit?action={action}")).await.ok_json();
        assert_eq!(audit.as_array().map(Vec::len), Some(n), "{action}: {audit:#}");
        assert!(audit[0]["target"].as_str().is_some_and(|t| t.starts_with("trendlog:")), "{audit:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trend_log_speeds_up_a_plugin_devices_point() {
    let dir = tempfile::tempdir().unwrap();
    cc(&root().join("plugins/example-c/example.c"), dir.path(), "libt3_example.so", &[]);
    let device =
        format!("[[devices]]\nname = \"roof\"\nprotocol = \"example-c\"\nseed = 7\npoll_interval_ms = {OWN_MS}\n");
    let server = TestServer::start(&format!("{}\n{device}", plugins_toml(dir.path(), 5000)));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let p = loop {
        let points = server.get("/api/t3000/devices/roof/points").await;
        if let Some(id) = (points.status == StatusCode::OK).then(|| points.json()["points"][0]["id"].as_u64()).flatten()
        {
            break id;
        }
        assert!(std::time::Instant::now() < deadline, "roof lists no points: {}", points.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let t =
        server.post_json("/api/t3000/trendlogs", &json!({"name": "roof", "point_ids": [p], "interval_ms": 1000})).await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.text());
    let t = t.json();
    assert_rate("a plugin point in a 1 s log", &gaps(&server, p, t["updated_us"].as_i64().unwrap(), 5, 1.0).await, 1.0);
    assert_eq!(recording(&server, p).await, (1000, vec![t["id"].as_u64().unwrap()]));
    server.delete(&format!("/api/t3000/trendlogs/{}", t["id"])).await;
    let after = now_us();
    assert_rate("the plugin point in no log", &gaps(&server, p, after, 2, 5.0).await, 5.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_device_restarted_by_a_trend_log_keeps_recording_what_it_pushes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(testkit(), dir.path().join("libt3_plugin_testkit.so")).unwrap();
    // Polled once an hour: P1's values after the first poll can only have been pushed (a new one
    // every 50 ms, recorded on change).
    let extra = format!(
        "{}\n[[devices]]\nname = \"pusher\"\nprotocol = \"testkit\"\npoint_count = 2\nsubscribe = true\npush_ms = 50\npoll_interval_ms = 3600000\n[devices.record]\nmode = \"change\"\n",
        plugins_toml(dir.path(), 5000)
    );
    let server = TestServer::start(&extra);
    let d = wait_state(&server, "pusher", "online").await;
    let points = points_of(&server, &d["id"]).await;
    let (p1, p0) = (named(&points, "P1")["id"].as_u64().unwrap(), named(&points, "P0")["id"].as_u64().unwrap());
    // A trend log on P0 polls the device anew (a new poll task, the same plugin connection).
    let t =
        server.post_json("/api/t3000/trendlogs", &json!({"name": "P0", "point_ids": [p0], "interval_ms": 1000})).await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.text());
    let after = t.json()["updated_us"].as_i64().unwrap();
    assert_eq!(recording(&server, p0).await.0, 1000);
    // P1's pushed values still arrive after the restart (its poll is an hour away).
    poll_until("pushed values recorded after the trend log", Duration::from_secs(20), || async {
        let rows = server
            .sql(&format!("SELECT count(DISTINCT value) FROM samples WHERE point_id = {p1} AND epoch_us(ts) > {after}"))
            .await;
        rows[0][0].as_i64().unwrap_or(0) >= 10
    })
    .await;
}
