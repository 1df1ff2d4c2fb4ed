//! Time stamps nobody meant are refused with an answer that says why: an integer in seconds,
//! milliseconds or nanoseconds where microseconds are expected (422: wrong whenever it is sent),
//! a time past the future window (`ingest.max_future_secs`) or a batch spread over more UTC days
//! than `ingest.max_days_per_batch` (409: valid as the OpenAPI document states samples, refused by
//! the clock or the configuration). Recent data, pushed or polled from devices, goes through.

use serde_json::{Value, json};
use std::time::Duration;
use t3_tests::*;

const ARROW: &str = "application/vnd.apache.arrow.stream";

fn now_us() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    i64::try_from(d.as_micros()).unwrap()
}

fn sample(point: u32, ts: Value) -> Value {
    json!({"point_id": point, "ts": ts, "value": 1.5})
}

/// Posts `body`, asserts a refusal with `code` (409 for what the clock or the configuration
/// refuse, else 422) whose message holds every one of `words`, and that nothing was stored.
async fn refused(server: &TestServer, what: &str, ctype: &str, body: Vec<u8>, code: &str, words: &[&str]) {
    let before = server.count().await;
    let r = server.post_raw("/api/t3000/samples", Some(ctype), body).await;
    let status = match code {
        "ts_in_future" | "too_many_days" => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    r.assert_error(what, status, Some(code));
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    for w in words {
        assert!(message.contains(w), "{what}: the message lacks `{w}`: {message}");
    }
    assert_eq!(server.count().await, before, "{what}: something was stored");
}

fn json_body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integer_time_stamps_in_another_unit_are_refused() {
    let server = TestServer::start("");
    let now = now_us();
    let (secs, millis, nanos) = (now / 1_000_000, now / 1_000, now * 1_000);
    for (unit, ts) in [("seconds", secs), ("milliseconds", millis), ("nanoseconds", nanos)] {
        let body = json!([sample(1, json!(now)), sample(1, json!(ts))]);
        let expect = format!("looks like epoch {unit}");
        refused(&server, unit, "application/json", json_body(&body), "invalid_sample", &["sample 1", &expect]).await;
    }
    // The message tells what to send instead.
    let r = server.post_json("/api/t3000/samples", &json!([sample(1, json!(1_735_689_600_000i64))])).await;
    let m = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(m.contains("2025-01-01T00:00:00Z") && m.contains("send 1735689600000000"), "{m}");

    // The Arrow path: an integer ts column is checked the same way; a timestamp column has its unit.
    let body = arrow_stream(&[1, 1, 1], &[now - 2, now - 1, millis], &[Some(1.0); 3], None, true);
    refused(
        &server,
        "Arrow, milliseconds",
        ARROW,
        body,
        "invalid_sample",
        &["sample 2", "looks like epoch milliseconds"],
    )
    .await;
    let body = arrow_stream(&[1, 1], &[now - 2, now - 1], &[Some(1.0); 2], None, false);
    assert_eq!(server.post_raw("/api/t3000/samples", Some(ARROW), body).await.ok_json()["accepted"], 2);

    // Epoch microseconds and RFC 3339 go through, recent or old.
    let ok = json!([
        sample(3, json!(now)),
        sample(3, json!(BASE_TS)),
        sample(3, json!("2025-06-01T12:00:00.5Z")),
        sample(3, json!("1970-01-01T00:00:00Z")),
    ]);
    assert_eq!(server.post_json("/api/t3000/samples", &ok).await.ok_json()["accepted"], 4);
    assert_eq!(server.samples_of(3).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_stamps_past_the_future_window_are_refused() {
    let server = TestServer::start("");
    let now = now_us();
    let body = json!([sample(1, json!(now)), sample(1, json!("2200-01-01T00:00:00Z"))]);
    refused(
        &server,
        "2200",
        "application/json",
        json_body(&body),
        "ts_in_future",
        &["sample 1", "2200-01-01T00:00:00Z", "ingest.max_future_secs = 300"],
    )
    .await;
    let body = json!([sample(1, json!(now + 3600 * SECOND_US))]);
    refused(&server, "an hour ahead", "application/json", json_body(&body), "ts_in_future", &["sample 0"]).await;
    let body = arrow_stream(&[1], &[now + 3600 * SECOND_US], &[Some(1.0)], None, false);
    refused(&server, "Arrow, an hour ahead", ARROW, body, "ts_in_future", &["ingest.max_future_secs"]).await;
    // A minute ahead (a client clock a little fast) is within the default 5 minutes.
    server.ingest_ok(&[Sample::good(1, now + 60 * SECOND_US, 1.0)]).await;
    assert_eq!(server.samples_of(1).await.len(), 1, "stored");
    // ... but a sample in the future is never the latest value (see safety.rs).
    let latest = server.get("/api/t3000/points/1/value").await;
    latest.assert_error("the latest value of a point whose only sample is ahead", StatusCode::NOT_FOUND, None);

    // The window is configurable.
    let wide = TestServer::start("[ingest]\nmax_future_secs = 7200\n");
    wide.ingest_ok(&[Sample::good(1, now_us() + 3600 * SECOND_US, 1.0)]).await;
    let body = json!([sample(1, json!(now_us() + 3 * 3600 * SECOND_US))]);
    refused(&wide, "3 h ahead", "application/json", json_body(&body), "ts_in_future", &["max_future_secs = 7200"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_may_touch_a_bounded_number_of_days() {
    let server = TestServer::start("");
    let days =
        |n: i64| -> Vec<Sample> { (0..n).map(|d| Sample::good(5, BASE_TS + d * DAY_US + HOUR_US, d as f64)).collect() };
    server.ingest_ok(&days(31)).await;
    refused(
        &server,
        "32 days",
        "application/json",
        json_body(&samples_json(&days(32))),
        "too_many_days",
        &["32", "31"],
    )
    .await;
    // 5,000 samples over 5,000 days: one request, refused whole (no 5,000 files).
    let spread: Vec<Sample> = (0..5000).map(|d| Sample::good(6, BASE_TS - d * DAY_US, 1.0)).collect();
    refused(&server, "5000 days", "application/json", json_body(&samples_json(&spread)), "too_many_days", &["5000"])
        .await;
    let ts: Vec<i64> = days(40).iter().map(|s| s.ts).collect();
    let body = arrow_stream(&[5; 40], &ts, &[Some(1.0); 40], None, false);
    refused(&server, "Arrow, 40 days", ARROW, body, "too_many_days", &["40 distinct UTC days"]).await;
    // Many samples on few days are fine.
    let dense: Vec<Sample> = (0..20_000).map(|i| Sample::good(7, BASE_TS + i * 8 * SECOND_US, 1.0)).collect();
    server.ingest_ok(&dense).await;

    let narrow = TestServer::start("[ingest]\nmax_days_per_batch = 2\n");
    narrow.ingest_ok(&days(2)).await;
    refused(
        &narrow,
        "3 days, limit 2",
        "application/json",
        json_body(&samples_json(&days(3))),
        "too_many_days",
        &["3", "= 2"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_polled_from_devices_is_not_refused() {
    let sim = simulate(&["--listen", "127.0.0.1:0", "--count", "1"]);
    // The strictest window: nothing ahead of the server's clock at all.
    let extra = format!(
        r#"
        [ingest]
        max_future_secs = 0
        {}"#,
        simulated_ahu(port_of(&sim.tcp))
    );
    let server = TestServer::start(&extra);
    poll_until("a few rounds of polls stored", Duration::from_secs(30), || async { server.count().await >= 5 * 256 })
        .await;
    let log = server.stderr();
    assert!(!log.contains("could not be stored"), "collected samples were refused:\n{log}");
    // And they are recent: within the last minute of the server's clock, none ahead of it.
    let rows = server.sql("SELECT min(epoch_us(ts)), max(epoch_us(ts)) FROM samples").await;
    let (lo, hi) = (rows[0][0].as_i64().unwrap(), rows[0][1].as_i64().unwrap());
    let now = now_us();
    assert!(hi <= now && lo > now - 120 * SECOND_US, "polled samples span {lo} .. {hi}, now {now}");
}
