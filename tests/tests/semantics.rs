//! What stored data means across the write buffer, Parquet and restarts: the last write of a
//! (point, ts) wins, the extreme timestamps survive a round trip, queries racing flushes see every
//! acknowledged sample exactly once, and rollup-backed aggregates equal the raw ones.

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use t3_tests::*;

const NO_FLUSH: &str = "[storage]\nflush_rows = 50000000\nflush_interval_secs = 86400\n";

/// Latest instant accepted: 9999-12-31T23:59:59.999999Z.
const MAX_TS: i64 = 253_402_300_799_999_999;

async fn check_lww(server: &TestServer, t: i64, want: f64, stage: &str) {
    let rows = server.sql("SELECT value FROM samples WHERE point_id = 1 ORDER BY ts").await;
    assert_eq!(rows, vec![vec![json!(want)], vec![json!(5.0)]], "{stage}: SQL");
    let h = server.get(&format!("/api/t3000/points/1/history?from={t}&to={}", t + 2)).await.ok_json();
    assert_eq!(h["value"], json!([want, 5.0]), "{stage}: history");
    // The latest values are loaded in the background after a restart (see the test below).
    let latest = wait_for(Duration::from_secs(10), || async {
        let r = server.get("/api/t3000/points/1/value").await;
        r.status == StatusCode::OK && r.json()["value"] == json!(5.0)
    })
    .await;
    assert!(latest, "{stage}: latest: {}", server.get("/api/t3000/points/1/value").await.text());
    let e = server.get(&format!("/api/t3000/export?points=1&from={t}&to={}", t + 2)).await;
    let lines: Vec<String> = e.text().lines().skip(1).map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{stage}: export rows {lines:?}");
    assert!(lines[0].contains(&format!(",{want},")), "{stage}: export {lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_write_wins_in_buffer_parquet_and_across_restarts() {
    let mut server = TestServer::start(NO_FLUSH);
    let t = BASE_TS + HOUR_US;
    // Within one request, the later sample wins.
    server.ingest_ok(&[Sample::good(1, t, 1.0), Sample::good(1, t, 2.0), Sample::good(1, t + 1, 5.0)]).await;
    check_lww(&server, t, 2.0, "buffer").await;
    server.stop();
    server.restart();
    check_lww(&server, t, 2.0, "parquet").await;
    // A later request overwrites a persisted sample: the buffer wins over the file...
    server.ingest_ok(&[Sample::good(1, t, 3.0)]).await;
    check_lww(&server, t, 3.0, "buffer over parquet").await;
    // ... and the newer file over the older one, after a restart.
    server.stop();
    server.restart();
    check_lww(&server, t, 3.0, "newer file over older file").await;
    // Through the WAL as well.
    server.ingest_ok(&[Sample::good(1, t, 4.0)]).await;
    server.kill9();
    server.restart();
    check_lww(&server, t, 4.0, "WAL replay over parquet").await;
    server.stop();
}

/// `prior=true`: each point's last row before `from` (what a chart shows at its left edge), from
/// the write buffer and from Parquet, for one point and in a batch; refused with aggregates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_row_before_from_is_answered_when_asked() {
    let mut server = TestServer::start(NO_FLUSH);
    let t = BASE_TS + HOUR_US;
    server
        .ingest_ok(&[
            Sample::good(1, t - 2 * HOUR_US, 1.0),
            Sample::good(1, t - HOUR_US, 2.0),
            Sample::good(1, t + HOUR_US, 3.0),
            Sample { point_id: 2, ts: t - 1, value: f64::NAN, quality: 0 },
            Sample::good(3, t - 8 * 24 * HOUR_US, 9.0),
        ])
        .await;
    for stage in ["buffer", "parquet"] {
        let (from, to) = (t, t + 2 * HOUR_US);
        let h = server.get(&format!("/api/t3000/points/1/history?from={from}&to={to}&prior=true")).await.ok_json();
        assert_eq!(h["prior"], json!({"ts": t - HOUR_US, "value": 2.0}), "{stage}: {h}");
        assert_eq!(h["value"], json!([3.0]), "{stage}: {h}");
        let h = server.get(&format!("/api/t3000/points/1/history?from={from}&to={to}&max_points=10&prior=true")).await;
        assert_eq!(h.ok_json()["prior"]["value"], json!(2.0), "{stage}");
        // Not asked for: no field.
        let h = server.get(&format!("/api/t3000/points/1/history?from={from}&to={to}")).await.ok_json();
        assert!(h.get("prior").is_none(), "{stage}: {h}");
        let b = server
            .post_json(
                "/api/t3000/history/batch",
                &json!({"points": [1, 2, 3, 4], "from": from.to_string(), "to": to.to_string(), "prior": true}),
            )
            .await
            .ok_json();
        let prior: Vec<&Value> = b["series"].as_array().expect("series").iter().map(|s| &s["prior"]).collect();
        // Point 2's last row has bad quality (no value); point 3's is more than 7 days back.
        assert_eq!(
            prior,
            [
                &json!({"ts": t - HOUR_US, "value": 2.0}),
                &json!({"ts": t - 1, "value": null}),
                &Value::Null,
                &Value::Null
            ],
            "{stage}: {b}"
        );
        let r =
            server.get(&format!("/api/t3000/points/1/history?from={from}&to={to}&agg=avg&bucket=1h&prior=true")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{stage}: {}", r.text());
        assert!(r.text().contains("prior"), "{}", r.text());
        if stage == "buffer" {
            server.stop();
            server.restart();
        }
    }
    server.stop();
}

async fn check_extremes(server: &TestServer, samples: &[Sample], stage: &str) {
    // The whole accepted range, written as epoch microseconds and as RFC 3339.
    let ranges =
        [format!("from=0&to={}", MAX_TS + 1), "from=1970-01-01T00:00:00Z&to=9999-12-31T23:59:59.999999Z".to_string()];
    let h = server.get(&format!("/api/t3000/points/20/history?{}", ranges[0])).await;
    assert_eq!(h.status, StatusCode::OK, "{stage}: {}", h.text());
    let ts: Vec<i64> = serde_json::from_value(h.json()["ts"].clone()).unwrap();
    assert_eq!(ts, samples.iter().map(|s| s.ts).collect::<Vec<_>>(), "{stage}: history over everything");
    let h = server.get(&format!("/api/t3000/points/20/history?{}", ranges[1])).await;
    let ts: Vec<i64> = serde_json::from_value(h.ok_json()["ts"].clone()).unwrap();
    assert_eq!(ts.len(), samples.len() - 1, "{stage}: `to` is exclusive");
    assert_eq!(server.all_samples().await, samples, "{stage}: SQL");
    let e = server.get(&format!("/api/t3000/export?points=20&{}", ranges[0])).await;
    assert_eq!(e.status, StatusCode::OK, "{stage}: export {}", e.text());
    let text = e.text();
    assert_eq!(text.lines().count(), 1 + samples.len(), "{stage}: export {text}");
    assert!(
        text.contains("1970-01-01T00:00:00.000000Z") && text.contains("9999-12-31T23:59:59.999999Z"),
        "{stage}: export {text}"
    );
    // The latest value is the newest sample not in the future.
    let v = server.get("/api/t3000/points/20/value").await.ok_json();
    assert_eq!(v["ts"], json!(DAY_US), "{stage}: latest");
    let b = server.get(&format!("/api/t3000/points/20/history?{}&agg=count&bucket=1d", ranges[0])).await;
    // One bucket per day of 8000 years exceeds the row limit: a clean 4xx, or an answer.
    assert!(b.status == StatusCode::OK || b.status.is_client_error(), "{stage}: {} {}", b.status, b.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_values_are_served_as_soon_as_the_server_listens() {
    let mut server = TestServer::start(NO_FLUSH);
    server.ingest_ok(&[Sample::good(1, BASE_TS, 1.5)]).await;
    server.stop();
    server.restart();
    // The first request after the listening line.
    let r = server.get("/api/t3000/points/1/value").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "right after a restart, GET /points/1/value: {} (the latest values load after the server listens)",
        r.text()
    );
    assert_eq!(r.json()["value"], json!(1.5));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_timestamps_round_trip() {
    // Only with the future window opened all the way; sent as RFC 3339, since integers this small
    // or large are refused as epoch seconds or nanoseconds.
    let mut server = TestServer::start(&format!("{NO_FLUSH}[ingest]\nmax_future_secs = 315576000000\n"));
    let samples = vec![
        Sample::good(20, 0, 1.0),
        Sample::good(20, 1, 2.0),
        Sample::good(20, DAY_US - 1, 3.0),
        Sample::good(20, DAY_US, 4.0),
        Sample::good(20, MAX_TS - 1, 5.0),
        Sample::good(20, MAX_TS, 6.0),
    ];
    let body: Vec<Value> = [
        "1970-01-01T00:00:00Z",
        "1970-01-01T00:00:00.000001Z",
        "1970-01-01T23:59:59.999999Z",
        "1970-01-02T00:00:00Z",
        "9999-12-31T23:59:59.999998Z",
        "9999-12-31T23:59:59.999999Z",
    ]
    .iter()
    .zip(&samples)
    .map(|(ts, s)| json!({"point_id": s.point_id, "ts": ts, "value": s.value}))
    .collect();
    let r = server.post_json("/api/t3000/samples", &Value::Array(body)).await;
    assert_eq!(r.ok_json()["accepted"], json!(samples.len()));
    check_extremes(&server, &samples, "buffer").await;
    server.stop();
    let days: Vec<String> = manifest_files(&server.data_dir).iter().map(|f| date_of_day(f.day)).collect();
    assert!(days.contains(&"9999-12-31".to_string()) && days.contains(&"1970-01-01".to_string()), "{days:?}");
    server.restart();
    check_extremes(&server, &samples, "parquet").await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queries_racing_flushes_see_each_acknowledged_sample_once() {
    let mut server = TestServer::start(
        "[storage]\nflush_rows = 1000\nflush_interval_secs = 1\n[wal]\ngroup_commit_max_delay_ms = 2\n",
    );
    let acked = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2u32 {
        let (client, url, acked, sent, done) =
            (server.client.clone(), server.url("/api/t3000/samples"), acked.clone(), sent.clone(), done.clone());
        writers.push(tokio::spawn(async move {
            for k in 0..400i64 {
                // 100 samples per request over a few days, so flushes write several files.
                let s: Vec<Sample> = (0..100)
                    .map(|i| Sample::good(w, BASE_TS + k * 10 * MINUTE_US + i * SECOND_US, (k * 1000 + i) as f64))
                    .collect();
                sent.fetch_add(100, Ordering::SeqCst);
                let r = client.post(&url).json(&samples_json(&s)).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                acked.fetch_add(100, Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
        }));
    }
    let mut checks = 0;
    let mut last = 0i64;
    loop {
        let finished = done.load(Ordering::SeqCst);
        let floor = acked.load(Ordering::SeqCst) as i64;
        let rows = server.sql("SELECT count(*), count(DISTINCT (point_id, ts)) FROM samples").await;
        let ceiling = sent.load(Ordering::SeqCst) as i64;
        let (n, distinct) = (rows[0][0].as_i64().unwrap(), rows[0][1].as_i64().unwrap());
        assert_eq!(n, distinct, "duplicates while flushing");
        assert!(n >= floor, "an acknowledged sample is invisible: {n} rows, {floor} acknowledged before the query");
        assert!(n <= ceiling, "{n} rows but only {ceiling} sent");
        assert!(n >= last, "the count went backwards: {last} -> {n}");
        last = n;
        // History over all of writer 0's range sees the same.
        let h = server
            .post_json("/api/t3000/history/batch", &json!({"points": [0, 1], "from": BASE_TS.to_string(), "to": (BASE_TS + 70 * DAY_US).to_string(), "agg": "count", "bucket": "1d"}))
            .await
            .ok_json();
        let total: f64 = h["series"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["count"].as_array().unwrap().iter().map(|c| c.as_f64().unwrap_or(0.0)))
            .sum();
        assert!(total as i64 >= n, "history counted {total}, SQL {n} just before");
        checks += 1;
        if finished && writers.iter().all(|w| w.is_finished()) {
            break;
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(server.count().await, 2 * 400 * 100);
    eprintln!("{checks} consistency checks while ingesting; {} files", manifest_files(&server.data_dir).len());
    assert!(manifest_files(&server.data_dir).len() > 2, "no flush happened during the test");
    server.stop();
}

/// A day of irregular data for a few points: gaps, bad-quality samples, values that jump.
fn irregular_days(days: i64) -> Vec<Sample> {
    let mut out = Vec::new();
    for p in 30..33u32 {
        let mut t = BASE_TS;
        let mut k = 0u64;
        while t < BASE_TS + days * DAY_US {
            k += 1;
            let step = 17 + (k * 7919 + p as u64 * 31) % 600; // 17 s .. 10 min
            t += step as i64 * SECOND_US;
            let bad = k.is_multiple_of(23);
            let value = ((k * 37 + p as u64) % 1000) as f64 / 8.0 - 40.0;
            out.push(Sample {
                point_id: p,
                ts: t,
                value: if bad { f64::NAN } else { value },
                quality: if bad { 0 } else { 192 },
            });
            // A long gap each day.
            if k.is_multiple_of(97) {
                t += 3 * HOUR_US;
            }
        }
    }
    out.retain(|s| s.ts < BASE_TS + days * DAY_US);
    out
}

fn approx_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| approx_equal(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| approx_equal(v, w)))
        }
        _ => a == b,
    }
}

/// The aggregate queries compared between the rollup path and the raw path.
fn agg_queries() -> Vec<Value> {
    let all = "avg,min,max,first,last,count,twa,integral";
    let q = |from: i64, to: i64, bucket: &str| json!({"points": [30, 31, 32], "from": from.to_string(), "to": to.to_string(), "agg": all, "bucket": bucket});
    vec![
        q(BASE_TS, BASE_TS + 3 * DAY_US, "1h"),
        q(BASE_TS, BASE_TS + 3 * DAY_US, "1d"),
        q(BASE_TS, BASE_TS + 3 * DAY_US, "15m"),
        q(BASE_TS + DAY_US, BASE_TS + 2 * DAY_US, "1m"),
        // Partly rolled-up days mixed with raw edges.
        q(BASE_TS + 5 * HOUR_US, BASE_TS + 2 * DAY_US + 7 * HOUR_US, "1h"),
        q(BASE_TS - DAY_US, BASE_TS + 4 * DAY_US, "6h"),
    ]
}

async fn answers(server: &TestServer) -> Vec<Value> {
    let mut out = Vec::new();
    for q in agg_queries() {
        out.push(server.post_json("/api/t3000/history/batch", &q).await.ok_json());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollup_answers_equal_raw_answers() {
    let data = irregular_days(3);
    // Maintenance every second builds the rollups of the (long past) days, one file per day.
    let mut server = TestServer::start(
        "[storage]\nflush_rows = 50000000\nflush_interval_secs = 86400\nsparse_day_rows = 0\n[compaction]\ninterval_secs = 1\n[retention]\ncheck_interval_secs = 1\n",
    );
    for chunk in data.chunks(5000) {
        server.ingest_ok(chunk).await;
    }
    // Persist, then let maintenance roll the days up.
    server.stop();
    server.restart();
    let dir = server.data_dir.clone();
    let d = &dir;
    let rolled = wait_for(Duration::from_secs(30), move || async move {
        let files = manifest_files(d);
        let days = |t: &str| files.iter().filter(|f| f.table == t).count();
        days("rollups1m") >= 3 && days("rollups1h") >= 3
    })
    .await;
    assert!(rolled, "no rollups after 30 s: {:?}\n{}", manifest_files(&dir), server.stderr());
    let with_rollups = answers(&server).await;
    server.stop();

    // The same data directory with rollups disabled answers from the raw samples.
    let mut raw = TestServer::start_in(&dir, "[rollups]\nenabled = false\n[compaction]\nenabled = false\n");
    let from_raw = answers(&raw).await;
    raw.stop();
    let mut mismatches = Vec::new();
    for ((q, a), b) in agg_queries().iter().zip(&with_rollups).zip(&from_raw) {
        if !approx_equal(a, b) {
            let (sa, sb) = (&a["series"], &b["series"]);
            let mut detail = String::new();
            for (x, y) in sa.as_array().unwrap().iter().zip(sb.as_array().unwrap()) {
                for (k, v) in x.as_object().unwrap() {
                    if !approx_equal(v, &y[k]) {
                        let (xv, yv) = (v.as_array().unwrap(), y[k].as_array().unwrap());
                        if let Some(i) = (0..xv.len().max(yv.len())).find(|&i| {
                            !approx_equal(
                                &xv.get(i).cloned().unwrap_or(Value::Null),
                                &yv.get(i).cloned().unwrap_or(Value::Null),
                            )
                        }) {
                            detail.push_str(&format!(
                                "\n  point {} {k}[{i}] (bucket {}): rollups {:?}, raw {:?}",
                                x["point_id"],
                                x["ts"][i],
                                xv.get(i),
                                yv.get(i)
                            ));
                        }
                    }
                }
            }
            mismatches.push(format!("{q}:{detail}"));
        }
    }
    assert!(mismatches.is_empty(), "rollup and raw answers differ:\n{}", mismatches.join("\n"));
}
