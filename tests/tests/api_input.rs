//! Bad input to every endpoint: each is refused with a 4xx and a JSON error `{"error": {"code",
//! "message"}}`, stores nothing, and leaves the server healthy. Then one happy path per endpoint.

use serde_json::{Value, json};
use std::time::Duration;
use t3_tests::*;

/// A refused POST: what it is, content type, body, status (any 4xx if `None`), error code.
type PostCase = (&'static str, Option<&'static str>, Vec<u8>, Option<StatusCode>, Option<&'static str>);

/// A refused POST to `path`: path, what it is, content type, body, status, error code.
type EndpointCase =
    (&'static str, &'static str, Option<&'static str>, Vec<u8>, Option<StatusCode>, Option<&'static str>);

const ARROW: &str = "application/vnd.apache.arrow.stream";
const JSON: &str = "application/json";

/// Small bodies only, so 413 is easy to provoke; a short SQL time limit.
const STRICT: &str = r#"
[server]
max_body_bytes = 4096
[query]
sql_timeout_ms = 1000
"#;

/// 2024-01-01T10:00:00Z.
const T: i64 = BASE_TS + 10 * HOUR_US;

/// Seeds a few samples so "nothing was stored" is checked against a non-empty store.
async fn seeded() -> (TestServer, i64) {
    let server = TestServer::start(STRICT);
    let seed: Vec<Sample> = (0..5).map(|i| Sample::good(1, T + i * SECOND_US, i as f64)).collect();
    server.ingest_ok(&seed).await;
    let n = server.count().await;
    assert_eq!(n, 5);
    (server, n)
}

/// After a refused request: nothing stored, the server healthy. The count is asked again when it
/// hits this server's 1 s SQL limit (a cancelled query's threads may still hold the CPU for a moment).
async fn still_fine(server: &TestServer, what: &str, count: i64) {
    let mut tries = 0;
    let stored = loop {
        let r = server.sql_reply("SELECT count(*) FROM samples").await;
        tries += 1;
        if r.status == StatusCode::UNPROCESSABLE_ENTITY && r.text().contains("query_timeout") && tries < 5 {
            continue;
        }
        assert_eq!(r.status, StatusCode::OK, "{what}: counting afterwards: {}", r.text());
        break r.json()["rows"][0][0].as_i64().expect("a count");
    };
    assert_eq!(stored, count, "{what}: the sample count changed");
    let r = server.get("/healthz").await;
    assert_eq!(r.status, StatusCode::OK, "{what}: /healthz afterwards: {}", r.text());
    assert_eq!(r.json()["writes"], json!("ok"), "{what}: writes refused afterwards");
}

fn sample(point: Value, ts: Value, value: Value) -> Value {
    json!({ "point_id": point, "ts": ts, "value": value })
}

fn good(i: i64) -> Value {
    sample(json!(2), json!(T + i * SECOND_US), json!(1.5))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_samples_are_refused_and_store_nothing() {
    let (mut server, count) = seeded().await;
    let s = |v: Value| serde_json::to_vec(&v).unwrap();
    let bad_req = StatusCode::BAD_REQUEST;
    let unproc = StatusCode::UNPROCESSABLE_ENTITY;
    // (what, content type, body, status (None: any 4xx), code)
    let cases: Vec<PostCase> = vec![
        ("malformed JSON", Some(JSON), b"[{\"point_id\": 1, \"ts\": 1".to_vec(), Some(bad_req), Some("invalid_json")),
        ("empty body", Some(JSON), Vec::new(), Some(bad_req), Some("invalid_json")),
        ("an object, not an array", Some(JSON), s(good(0)), Some(bad_req), Some("invalid_json")),
        ("point_id a string", Some(JSON), s(json!([sample(json!("a"), json!(T), json!(1))])), Some(bad_req), None),
        ("point_id negative", Some(JSON), s(json!([sample(json!(-1), json!(T), json!(1))])), Some(bad_req), None),
        (
            "point_id > u32",
            Some(JSON),
            s(json!([sample(json!(4_294_967_296u64), json!(T), json!(1))])),
            Some(bad_req),
            None,
        ),
        ("value a string", Some(JSON), s(json!([sample(json!(1), json!(T), json!("x"))])), Some(bad_req), None),
        (
            "value 1e400",
            Some(JSON),
            format!("[{{\"point_id\":1,\"ts\":{T},\"value\":1e400}}]").into_bytes(),
            Some(bad_req),
            None,
        ),
        (
            "quality 256",
            Some(JSON),
            s(json!([{"point_id": 1, "ts": T, "value": 1, "quality": 256}])),
            Some(bad_req),
            None,
        ),
        (
            "quality negative",
            Some(JSON),
            s(json!([{"point_id": 1, "ts": T, "value": 1, "quality": -1}])),
            Some(bad_req),
            None,
        ),
        ("ts a float", Some(JSON), s(json!([sample(json!(1), json!(1.5), json!(1))])), Some(bad_req), None),
        ("ts a bool", Some(JSON), s(json!([sample(json!(1), json!(true), json!(1))])), Some(bad_req), None),
        (
            "ts not RFC 3339",
            Some(JSON),
            s(json!([sample(json!(1), json!("yesterday"), json!(1))])),
            Some(bad_req),
            None,
        ),
        (
            "ts past i64",
            Some(JSON),
            s(json!([sample(json!(1), json!(9_223_372_036_854_775_808u64), json!(1))])),
            Some(bad_req),
            None,
        ),
        (
            "unknown field",
            Some(JSON),
            s(json!([{"point_id": 1, "ts": T, "value": 1, "unit": "degC"}])),
            Some(bad_req),
            None,
        ),
        ("missing point_id", Some(JSON), s(json!([{"ts": T, "value": 1}])), Some(bad_req), None),
        ("missing ts", Some(JSON), s(json!([{"point_id": 1, "value": 1}])), Some(bad_req), None),
        (
            "ts year 10000 (RFC 3339)",
            Some(JSON),
            s(json!([sample(json!(1), json!("10000-01-01T00:00:00Z"), json!(1))])),
            None,
            None,
        ),
        (
            "ts after 9999 (epoch us)",
            Some(JSON),
            s(json!([sample(json!(1), json!(253_402_300_800_000_000i64), json!(1))])),
            Some(unproc),
            Some("invalid_sample"),
        ),
        (
            "ts negative (epoch us)",
            Some(JSON),
            s(json!([sample(json!(1), json!(-1), json!(1))])),
            Some(unproc),
            Some("invalid_sample"),
        ),
        (
            "ts before 1970 (RFC 3339)",
            Some(JSON),
            s(json!([sample(json!(1), json!("1969-12-31T23:59:59Z"), json!(1))])),
            Some(unproc),
            Some("invalid_sample"),
        ),
        (
            "value null, good quality",
            Some(JSON),
            s(json!([{"point_id": 1, "ts": T, "value": null, "quality": 192}])),
            Some(unproc),
            Some("invalid_sample"),
        ),
        (
            "value null, quality omitted",
            Some(JSON),
            s(json!([sample(json!(1), json!(T), Value::Null)])),
            Some(unproc),
            Some("invalid_sample"),
        ),
        (
            "value null, uncertain quality",
            Some(JSON),
            s(json!([{"point_id": 1, "ts": T, "value": null, "quality": 64}])),
            Some(unproc),
            Some("invalid_sample"),
        ),
        ("value missing", Some(JSON), s(json!([{"point_id": 1, "ts": T}])), None, None),
        (
            "good samples then a bad one",
            Some(JSON),
            s(json!([good(100), good(101), {"point_id": 2, "ts": -5, "value": 1}])),
            Some(unproc),
            Some("invalid_sample"),
        ),
        ("text/plain", Some("text/plain"), s(json!([good(102)])), Some(StatusCode::UNSUPPORTED_MEDIA_TYPE), None),
        (
            "application/xml",
            Some("application/xml"),
            b"<samples/>".to_vec(),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            None,
        ),
        ("JSON sent as Arrow", Some(ARROW), s(json!([good(103)])), Some(bad_req), None),
        (
            "Arrow NaN, good quality",
            Some(ARROW),
            arrow_stream(&[3, 3], &[T, T + 1], &[Some(1.0), Some(f64::NAN)], Some(&[192, 192]), false),
            Some(unproc),
            Some("invalid_sample"),
        ),
        (
            "Arrow NaN, quality column absent",
            Some(ARROW),
            arrow_stream(&[3], &[T], &[Some(f64::NAN)], None, false),
            Some(unproc),
            Some("invalid_sample"),
        ),
        (
            "Arrow null value, good quality",
            Some(ARROW),
            arrow_stream(&[3, 3], &[T, T + 1], &[Some(1.0), None], Some(&[192, 192]), false),
            Some(unproc),
            Some("invalid_sample"),
        ),
        (
            "Arrow infinity",
            Some(ARROW),
            arrow_stream(&[3], &[T], &[Some(f64::INFINITY)], Some(&[192]), true),
            Some(unproc),
            Some("invalid_sample"),
        ),
        (
            "Arrow ts negative",
            Some(ARROW),
            arrow_stream(&[3], &[-1], &[Some(1.0)], Some(&[192]), true),
            Some(unproc),
            Some("invalid_sample"),
        ),
        (
            "Arrow truncated stream",
            Some(ARROW),
            {
                let full = arrow_stream(
                    &[3, 3, 3],
                    &[T, T + 1, T + 2],
                    &[Some(1.0), Some(2.0), Some(3.0)],
                    Some(&[192; 3]),
                    false,
                );
                full[..full.len() / 2].to_vec()
            },
            Some(bad_req),
            None,
        ),
        ("Arrow garbage", Some(ARROW), b"definitely not arrow".to_vec(), Some(bad_req), None),
        (
            "body over max_body_bytes",
            Some(JSON),
            s(Value::Array((0..200).map(good).collect())),
            Some(StatusCode::PAYLOAD_TOO_LARGE),
            Some("body_too_large"),
        ),
    ];
    let mut failures = Vec::new();
    for (what, ct, body, status, code) in cases {
        let r = server.post_raw("/api/t3000/samples", ct, body).await;
        if let Err(e) = r.check_error(status, code) {
            failures.push(format!("{what}: {e}"));
        }
        still_fine(&server, what, count).await;
    }

    // An oversized body without a Content-Length (chunked) is cut off too.
    let big = serde_json::to_vec(&Value::Array((0..400).map(good).collect())).unwrap();
    let path = server.root().join("big.json");
    std::fs::write(&path, &big).unwrap();
    let file = tokio::fs::File::open(&path).await.unwrap();
    let sent = server
        .client
        .post(server.url("/api/t3000/samples"))
        .header("content-type", JSON)
        .body(reqwest::Body::from(file))
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let r = Reply {
                status: resp.status(),
                headers: resp.headers().clone(),
                body: resp.bytes().await.unwrap().to_vec(),
            };
            if let Err(e) = r.check_error(Some(StatusCode::PAYLOAD_TOO_LARGE), Some("body_too_large")) {
                failures.push(format!("chunked body over max_body_bytes: {e}"));
            }
        }
        // The server answers 413 as soon as the limit is passed and closes the connection; a
        // client still writing the rest of the body may see the broken pipe before the answer.
        // Either way nothing may be stored, which `still_fine` checks below.
        Err(e) if e.is_request() => {
            eprintln!("chunked body over max_body_bytes: connection closed while sending ({e})")
        }
        Err(e) => failures.push(format!("chunked body over max_body_bytes: {e}")),
    }
    still_fine(&server, "chunked body", count).await;
    assert_all_refused(&failures);

    // A bad quality carries no value: accepted, and the point reports no value.
    let r =
        server.post_json("/api/t3000/samples", &json!([{"point_id": 4, "ts": T, "value": null, "quality": 0}])).await;
    assert_eq!(r.ok_json()["accepted"], json!(1));
    assert_eq!(server.count().await, count + 1);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_history_and_latest_requests_are_refused() {
    let (mut server, count) = seeded().await;
    let day = format!("from={T}&to={}", T + DAY_US);
    let h = |q: &str| format!("/api/t3000/points/1/history?{q}");
    let cases: Vec<(String, StatusCode, Option<&str>)> = vec![
        (format!("/api/t3000/points/abc/history?{day}"), StatusCode::BAD_REQUEST, Some("invalid_point_id")),
        (format!("/api/t3000/points/-1/history?{day}"), StatusCode::BAD_REQUEST, Some("invalid_point_id")),
        (format!("/api/t3000/points/4294967296/history?{day}"), StatusCode::BAD_REQUEST, Some("invalid_point_id")),
        (format!("/api/t3000/points/1.5/history?{day}"), StatusCode::BAD_REQUEST, Some("invalid_point_id")),
        (h(&format!("from=yesterday&to={T}")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("from={T}&to=soon")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("from=10000-01-01T00:00:00Z&to={T}")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("from=-5&to={T}")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h("from=now-5q"), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h("from=%ZZ"), StatusCode::BAD_REQUEST, None),
        (h(&format!("{day}&agg=median&bucket=1m")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("{day}&agg=&bucket=1m")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("{day}&agg=avg")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("{day}&agg=avg&bucket=0s")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("{day}&agg=avg&bucket=5x")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("{day}&agg=avg&bucket=-1m")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("{day}&agg=avg&bucket=1m5")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        // 86,400,000,000 buckets: valid, but past query.max_rows.
        (h(&format!("{day}&agg=avg&bucket=1us")), StatusCode::CONFLICT, Some("too_many_rows")),
        (h(&format!("{day}&bucket=1m")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("{day}&fill=cubic&bucket=1m")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("{day}&fill=linear")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("{day}&fill=linear&bucket=1m&max_gap=soon")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("{day}&max_gap=1h")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("{day}&max_points=0")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("{day}&max_points=-1")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("{day}&max_points=many")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (h(&format!("{day}&colour=red")), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        ("/api/t3000/points/abc/value".into(), StatusCode::BAD_REQUEST, Some("invalid_point_id")),
        ("/api/t3000/points/4294967296/value".into(), StatusCode::BAD_REQUEST, Some("invalid_point_id")),
        ("/api/t3000/points/123456/value".into(), StatusCode::NOT_FOUND, Some("not_found")),
        ("/api/t3000/points/batch?ids=a".into(), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        ("/api/t3000/points/batch?ids=1,,x".into(), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        ("/api/t3000/points/batch?ids=".into(), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        ("/api/t3000/points/batch?points=1".into(), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        ("/api/t3000/export".into(), StatusCode::BAD_REQUEST, None),
        (format!("/api/t3000/export?points=a&{day}"), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (format!("/api/t3000/export?points=&{day}"), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (format!("/api/t3000/export?points=1&{day}&format=pdf"), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (format!("/api/t3000/export?points=1&{day}&layout=tall"), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (format!("/api/t3000/export?points=1&{day}&bucket=0s"), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (format!("/api/t3000/export?points=1&{day}&bucket=999ms"), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        (format!("/api/t3000/export?points=1&{day}&sheet=2"), StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        ("/api/t3000/nothing-here".into(), StatusCode::NOT_FOUND, Some("not_found")),
        // Paths without an extension outside /api are the UI's routes (its page); a missing file is a 404.
        ("/nothing-here.js".into(), StatusCode::NOT_FOUND, Some("not_found")),
    ];
    let mut failures = Vec::new();
    for (path, status, code) in cases {
        let r = server.get(&path).await;
        if let Err(e) = r.check_error(Some(status), code) {
            failures.push(format!("GET {path}: {e}"));
        }
        still_fine(&server, &path, count).await;
    }
    assert_all_refused(&failures);

    // A range whose `from` is not before its `to` is empty: every shape answers without rows.
    for q in [
        format!("from={}&to={T}", T + HOUR_US),
        format!("from={T}&to={T}"),
        format!("from={T}&to={T}&agg=avg,max&max_points=10"),
        format!("from={}&to={T}&fill=linear&bucket=1m", T + HOUR_US),
    ] {
        let r = server.get(&h(&q)).await.ok_json();
        assert_eq!(r["ts"], json!([]), "{q}: {r}");
        assert!(r["from"].as_i64() >= r["to"].as_i64(), "{q}: {r}");
    }
    let r = server.get(&h(&format!("from={T}&to={T}&agg=avg,max&bucket=1m"))).await.ok_json();
    assert_eq!((&r["avg"], &r["max"]), (&json!([]), &json!([])), "{r}");
    let r = server.get(&format!("/api/t3000/export?points=1&from={}&to={T}", T + 1)).await;
    assert_eq!(
        (r.status, r.text()),
        (StatusCode::OK, "ts,point_id,point_name,unit,value,quality,quality_name\n".to_string())
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_batch_and_sql_bodies_are_refused() {
    let (mut server, count) = seeded().await;
    let s = |v: Value| serde_json::to_vec(&v).unwrap();
    let bad = StatusCode::BAD_REQUEST;
    let cases: Vec<EndpointCase> = vec![
        ("/api/t3000/history/batch", "malformed JSON", Some(JSON), b"{\"points\": [1".to_vec(), Some(bad), None),
        ("/api/t3000/history/batch", "no points", Some(JSON), s(json!({"from": T, "to": T + 1})), Some(bad), None),
        (
            "/api/t3000/history/batch",
            "empty points",
            Some(JSON),
            s(json!({"points": [], "from": T.to_string(), "to": (T + HOUR_US).to_string()})),
            Some(bad),
            Some("invalid_parameter"),
        ),
        ("/api/t3000/history/batch", "points not a list", Some(JSON), s(json!({"points": 1})), Some(bad), None),
        ("/api/t3000/history/batch", "point a string", Some(JSON), s(json!({"points": ["a"]})), Some(bad), None),
        ("/api/t3000/history/batch", "point negative", Some(JSON), s(json!({"points": [-1]})), Some(bad), None),
        (
            "/api/t3000/history/batch",
            "bad from",
            Some(JSON),
            s(json!({"points": [1], "from": "yesterday"})),
            Some(bad),
            Some("invalid_parameter"),
        ),
        (
            "/api/t3000/history/batch",
            "bucket without agg or fill",
            Some(JSON),
            s(json!({"points": [1], "bucket": "1m", "agg": null})),
            Some(bad),
            Some("invalid_parameter"),
        ),
        (
            "/api/t3000/history/batch",
            "max_gap without fill, a wrong one beside agg",
            Some(JSON),
            s(json!({"points": [1], "agg": "avg", "bucket": "1m", "max_gap": "soon"})),
            Some(bad),
            Some("invalid_parameter"),
        ),
        (
            "/api/t3000/history/batch",
            "prior with agg",
            Some(JSON),
            s(json!({"points": [1], "agg": "avg", "bucket": "1m", "prior": true})),
            Some(bad),
            Some("invalid_parameter"),
        ),
        (
            "/api/t3000/history/batch",
            "unknown agg",
            Some(JSON),
            s(json!({"points": [1], "agg": "median", "bucket": "1m"})),
            Some(bad),
            Some("invalid_parameter"),
        ),
        (
            "/api/t3000/history/batch",
            "bad bucket",
            Some(JSON),
            s(json!({"points": [1], "agg": "avg", "bucket": "1 minute"})),
            Some(bad),
            Some("invalid_parameter"),
        ),
        (
            "/api/t3000/history/batch",
            "bad fill",
            Some(JSON),
            s(json!({"points": [1], "fill": "spline", "bucket": "1m"})),
            Some(bad),
            Some("invalid_parameter"),
        ),
        (
            "/api/t3000/history/batch",
            "max_points 0",
            Some(JSON),
            s(json!({"points": [1], "max_points": 0})),
            Some(bad),
            Some("invalid_parameter"),
        ),
        (
            "/api/t3000/history/batch",
            "unknown field",
            Some(JSON),
            s(json!({"points": [1], "colour": "red"})),
            Some(bad),
            None,
        ),
        ("/api/t3000/history/batch", "text/plain", Some("text/plain"), s(json!({"points": [1]})), None, None),
        (
            "/api/t3000/history/batch",
            "body over max_body_bytes",
            Some(JSON),
            s(json!({"points": (0..2000).collect::<Vec<u32>>()})),
            Some(StatusCode::PAYLOAD_TOO_LARGE),
            None,
        ),
        ("/api/t3000/query", "malformed JSON", Some(JSON), b"{\"sql\": ".to_vec(), Some(bad), None),
        ("/api/t3000/query", "no sql", Some(JSON), s(json!({})), Some(bad), None),
        ("/api/t3000/query", "sql a number", Some(JSON), s(json!({"sql": 1})), Some(bad), None),
        ("/api/t3000/query", "unknown field", Some(JSON), s(json!({"sql": "SELECT 1", "limit": 5})), Some(bad), None),
        ("/api/t3000/query", "empty sql", Some(JSON), s(json!({"sql": "  "})), Some(bad), Some("invalid_query")),
        (
            "/api/t3000/query",
            "syntax error",
            Some(JSON),
            s(json!({"sql": "SELEC count(*) FROM samples"})),
            Some(bad),
            Some("invalid_query"),
        ),
        (
            "/api/t3000/query",
            "unknown table",
            Some(JSON),
            s(json!({"sql": "SELECT * FROM no_such_table"})),
            Some(bad),
            Some("invalid_query"),
        ),
        (
            "/api/t3000/query",
            "unknown column",
            Some(JSON),
            s(json!({"sql": "SELECT temperature FROM samples"})),
            Some(bad),
            Some("invalid_query"),
        ),
        (
            "/api/t3000/query",
            "INSERT",
            Some(JSON),
            s(json!({"sql": "INSERT INTO samples VALUES (1, TIMESTAMP '2024-01-01', 1, 192)"})),
            Some(bad),
            None,
        ),
        ("/api/t3000/query", "DELETE", Some(JSON), s(json!({"sql": "DELETE FROM samples"})), Some(bad), None),
        ("/api/t3000/query", "text/plain", Some("text/plain"), s(json!({"sql": "SELECT 1"})), None, None),
        (
            "/api/t3000/query",
            "body over max_body_bytes",
            Some(JSON),
            s(json!({"sql": format!("SELECT '{}'", "x".repeat(5000))})),
            Some(StatusCode::PAYLOAD_TOO_LARGE),
            None,
        ),
    ];
    let mut failures = Vec::new();
    for (path, what, ct, body, status, code) in cases {
        let what = format!("POST {path}: {what}");
        let r = server.post_raw(path, ct, body).await;
        if let Err(e) = r.check_error(status, code) {
            failures.push(format!("{what}: {e}"));
        }
        still_fine(&server, &what, count).await;
    }

    // A query past the time limit is cancelled with a 422, and the server goes on.
    let started = std::time::Instant::now();
    let r = server
        .sql_reply("SELECT count(*) FROM range(1000000000000) a, range(1000) b WHERE a.range % 7 = b.range")
        .await;
    if let Err(e) = r.check_error(Some(StatusCode::UNPROCESSABLE_ENTITY), Some("query_timeout")) {
        failures.push(format!("SQL over its time limit: {e}"));
    }
    assert!(started.elapsed() < Duration::from_secs(30), "the time limit took {:?}", started.elapsed());
    still_fine(&server, "timeout", count).await;
    assert_all_refused(&failures);

    // `from` after `to`: an empty range, answered without rows.
    let from = T + 5 * SECOND_US;
    let body = json!({"points": [1, 2], "from": from.to_string(), "to": T.to_string(), "prior": true});
    let r = server.post_json("/api/t3000/history/batch", &body).await.ok_json();
    assert_eq!((r["from"].as_i64(), r["to"].as_i64()), (Some(from), Some(T)), "{r}");
    for series in r["series"].as_array().unwrap() {
        assert_eq!(series["ts"], json!([]), "{r}");
    }
    // The last row before `from` is still there to be found.
    assert_eq!(r["series"][0]["prior"]["ts"], json!(T + 4 * SECOND_US), "{r}");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_gets_a_json_error() {
    let server = TestServer::start(STRICT);
    let mut failures = Vec::new();
    for (method, path) in [
        (reqwest::Method::GET, "/api/t3000/samples"),
        (reqwest::Method::DELETE, "/api/t3000/query"),
        (reqwest::Method::POST, "/api/t3000/points/1/history"),
    ] {
        let resp = server.client.request(method.clone(), server.url(path)).send().await.unwrap();
        let r = Reply {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.bytes().await.unwrap().to_vec(),
        };
        if let Err(e) = r.check_error(Some(StatusCode::METHOD_NOT_ALLOWED), None) {
            failures.push(format!("{method} {path}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{} requests with a wrong method:\n{}", failures.len(), failures.join("\n"));
}

/// Fails the test listing every bad request that was not refused as expected.
fn assert_all_refused(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} bad requests were not refused as expected:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn f64s(v: &Value) -> Vec<Option<f64>> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(Value::as_f64).collect()
}

fn assert_close(what: &str, got: &Value, want: &[f64]) {
    let got = f64s(got);
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        let g = g.unwrap_or_else(|| panic!("{what}: null in {got:?}, want {want:?}"));
        assert!((g - w).abs() < 1e-9, "{what}: {got:?} vs {want:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_a_good_request() {
    let mut server = TestServer::start("[query]\nsql_max_rows = 500\n");

    // Ingest, JSON: RFC 3339 and epoch-microsecond timestamps.
    let p7 = json!([
        {"point_id": 7, "ts": "2024-01-01T10:00:00Z", "value": 1.0},
        {"point_id": 7, "ts": "2024-01-01T11:00:10+01:00", "value": 2.0, "quality": 192},
        {"point_id": 7, "ts": T + 40 * SECOND_US, "value": 4.0},
        {"point_id": 7, "ts": T + 60 * SECOND_US, "value": 8.0},
        {"point_id": 7, "ts": T + 75 * SECOND_US, "value": 16.0},
        {"point_id": 10, "ts": T, "value": null, "quality": 0},
    ]);
    let r = server.post_json("/api/t3000/samples", &p7).await.ok_json();
    assert_eq!(r, json!({"accepted": 6, "durability": "wal"}));

    // Ingest, Arrow: a timestamp column with quality, and an integer one without.
    let n = 1000;
    let ts8: Vec<i64> = (0..n).map(|i| T + i * SECOND_US).collect();
    let v8: Vec<Option<f64>> = (0..n)
        .map(|i| {
            Some(match i {
                500 => 1000.0,
                700 => -1000.0,
                _ => (i as f64 * 0.1).sin(),
            })
        })
        .collect();
    let body = arrow_stream(&vec![8; n as usize], &ts8, &v8, Some(&vec![192; n as usize]), false);
    let r = server.post_raw("/api/t3000/samples", Some(ARROW), body).await.ok_json();
    assert_eq!(r["accepted"], json!(n));
    let body = arrow_stream(
        &[9, 9, 9],
        &[T, T + SECOND_US, T + 2 * SECOND_US],
        &[Some(0.5), Some(1.5), Some(2.5)],
        None,
        true,
    );
    let r =
        server.post_raw("/api/t3000/samples", Some("application/vnd.apache.arrow.stream; charset=binary"), body).await;
    assert_eq!(r.ok_json()["accepted"], json!(3));

    // Raw history.
    let range = format!("from={T}&to={}", T + 2 * MINUTE_US);
    let b = server.get(&format!("/api/t3000/points/7/history?{range}")).await.ok_json();
    let ts7: Vec<i64> = [0, 10, 40, 60, 75].iter().map(|s| T + s * SECOND_US).collect();
    assert_eq!(b["point_id"], json!(7));
    assert_eq!(b["from"], json!(T));
    assert_eq!(b["to"], json!(T + 2 * MINUTE_US));
    assert_eq!(b["partial"], json!(false));
    assert_eq!(b["ts"], json!(ts7));
    assert_eq!(b["value"], json!([1.0, 2.0, 4.0, 8.0, 16.0]));
    assert_eq!(b["quality"], json!([192, 192, 192, 192, 192]));
    let b = server.get(&format!("/api/t3000/points/9/history?{range}")).await.ok_json();
    assert_eq!(b["value"], json!([0.5, 1.5, 2.5]), "Arrow with integer ts and no quality column: {b}");
    assert_eq!(b["quality"], json!([192, 192, 192]));
    let b = server.get(&format!("/api/t3000/points/10/history?{range}")).await.ok_json();
    assert_eq!((&b["value"], &b["quality"]), (&json!([null]), &json!([0])), "{b}");
    let b = server.get(&format!("/api/t3000/points/404/history?{range}")).await.ok_json();
    assert_eq!(b["ts"], json!([]), "a point without data has an empty series");

    // Aggregates, including the time-weighted average and the integral (step semantics).
    let b = server
        .get(&format!("/api/t3000/points/7/history?{range}&agg=avg,min,max,count,first,last,twa,integral&bucket=1m"))
        .await
        .ok_json();
    assert_eq!(b["ts"], json!([T, T + MINUTE_US]), "{b}");
    assert_close("avg", &b["avg"], &[7.0 / 3.0, 12.0]);
    assert_close("min", &b["min"], &[1.0, 8.0]);
    assert_close("max", &b["max"], &[4.0, 16.0]);
    assert_close("count", &b["count"], &[3.0, 2.0]);
    assert_close("first", &b["first"], &[1.0, 8.0]);
    assert_close("last", &b["last"], &[4.0, 16.0]);
    assert_close("twa", &b["twa"], &[2.5, 14.0]);
    assert_close("integral", &b["integral"], &[150.0, 840.0]);

    // Interpolation on a 5 s grid.
    let b = server
        .get(&format!("/api/t3000/points/7/history?from={T}&to={}&fill=linear&bucket=5s", T + 20 * SECOND_US))
        .await
        .ok_json();
    assert_eq!(b["ts"], json!([T, T + 5 * SECOND_US, T + 10 * SECOND_US, T + 15 * SECOND_US]));
    assert_close("linear", &b["value"], &[1.0, 1.5, 2.0, 2.0 + 2.0 * 5.0 / 30.0]);
    let b = server
        .get(&format!("/api/t3000/points/7/history?from={T}&to={}&fill=step&bucket=5s", T + 20 * SECOND_US))
        .await
        .ok_json();
    assert_close("step", &b["value"], &[1.0, 1.0, 2.0, 2.0]);

    // Downsampling keeps the spikes, the first and the last row.
    let b = server
        .get(&format!("/api/t3000/points/8/history?from={T}&to={}&max_points=20", T + n * SECOND_US))
        .await
        .ok_json();
    let ts: Vec<i64> = serde_json::from_value(b["ts"].clone()).unwrap();
    let vals: Vec<f64> = f64s(&b["value"]).into_iter().map(|v| v.unwrap()).collect();
    assert!(!ts.is_empty() && ts.len() <= 20, "{} rows for max_points=20", ts.len());
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats: {ts:?}");
    assert!(ts.iter().all(|t| ts8.contains(t)), "only real rows");
    assert_eq!((ts[0], *ts.last().unwrap()), (ts8[0], *ts8.last().unwrap()));
    assert!(vals.contains(&1000.0) && vals.contains(&-1000.0), "the spikes survive: {vals:?}");

    // Several points at once.
    let b = server
        .post_json(
            "/api/t3000/history/batch",
            &json!({"points": [8, 7], "from": T.to_string(), "to": (T + 2 * MINUTE_US).to_string()}),
        )
        .await
        .ok_json();
    assert_eq!((&b["from"], &b["to"], &b["partial"]), (&json!(T), &json!(T + 2 * MINUTE_US), &json!(false)), "{b}");
    let series = b["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(series[0]["point_id"], json!(7));
    assert_eq!(series[0]["value"], json!([1.0, 2.0, 4.0, 8.0, 16.0]));
    assert_eq!(series[1]["point_id"], json!(8));
    assert_eq!(series[1]["ts"].as_array().unwrap().len(), 120);
    let b = server
        .post_json(
            "/api/t3000/history/batch",
            &json!({"points": [7], "from": "2024-01-01T10:00:00Z", "to": "2024-01-01T10:02:00Z", "agg": "avg", "bucket": "1m"}),
        )
        .await
        .ok_json();
    assert_close("batch avg", &b["series"][0]["avg"], &[7.0 / 3.0, 12.0]);

    // Latest values.
    let b = server.get("/api/t3000/points/7/value").await.ok_json();
    assert_eq!(
        b,
        json!({"point_id": 7, "ts": T + 75 * SECOND_US, "timestamp": "2024-01-01T10:01:15.000000Z", "value": 16.0,
            "units": null, "quality": 192, "quality_name": "good"})
    );
    let b = server.get("/api/t3000/points/10/value").await.ok_json();
    assert_eq!(
        b,
        json!({"point_id": 10, "ts": T, "timestamp": "2024-01-01T10:00:00.000000Z", "value": null, "units": null,
            "quality": 0, "quality_name": "bad"})
    );
    let b = server.get("/api/t3000/points/batch?ids=7,10,424242").await.ok_json();
    let ids: Vec<u64> = b["values"].as_array().unwrap().iter().map(|v| v["point_id"].as_u64().unwrap()).collect();
    assert_eq!(ids, vec![7, 10], "{b}");
    let b = server.get("/api/t3000/points/batch").await.ok_json();
    let ids: Vec<u64> = b["values"].as_array().unwrap().iter().map(|v| v["point_id"].as_u64().unwrap()).collect();
    assert_eq!(ids, vec![7, 8, 9, 10], "{b}");

    // SQL.
    let rows = server.sql("SELECT point_id, count(*) FROM samples GROUP BY point_id ORDER BY point_id").await;
    assert_eq!(
        rows,
        vec![vec![json!(7), json!(5)], vec![json!(8), json!(n)], vec![json!(9), json!(3)], vec![json!(10), json!(1)]]
    );
    let b = server.sql_reply("SELECT * FROM samples").await.ok_json();
    assert_eq!(b["columns"], json!(["point_id", "ts", "value", "quality"]));
    assert_eq!((b["rows"].as_array().unwrap().len(), &b["truncated"]), (500, &json!(true)), "sql_max_rows = 500");
    let rows = server.sql("SELECT value, quality FROM samples WHERE point_id = 10;").await;
    assert_eq!(rows, vec![vec![Value::Null, json!(0)]]);

    // Exports.
    let r = server.get(&format!("/api/t3000/export?points=7&{range}&format=csv")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.content_type().starts_with("text/csv"), "{}", r.content_type());
    let disposition = r.headers.get("content-disposition").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(disposition.contains("attachment") && disposition.contains(".csv"), "{disposition}");
    assert_eq!(
        r.text(),
        "ts,point_id,point_name,unit,value,quality,quality_name\n\
         2024-01-01T10:00:00.000000Z,7,point 7,,1,192,good\n\
         2024-01-01T10:00:10.000000Z,7,point 7,,2,192,good\n\
         2024-01-01T10:00:40.000000Z,7,point 7,,4,192,good\n\
         2024-01-01T10:01:00.000000Z,7,point 7,,8,192,good\n\
         2024-01-01T10:01:15.000000Z,7,point 7,,16,192,good\n"
    );
    let r = server.get(&format!("/api/t3000/export?points=7,9&{range}&format=csv&layout=wide&bucket=1m")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.text(),
        "ts,point 7,point 9\n2024-01-01T10:00:00.000000Z,2.3333333333333335,1.5\n2024-01-01T10:01:00.000000Z,12,\n"
    );
    let r = server.get(&format!("/api/t3000/export?points=7,9&{range}&format=parquet")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes_of(&r.body))
        .expect("the Parquet export is a Parquet file")
        .build()
        .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 8);
    let r = server.get(&format!("/api/t3000/export?points=7&{range}&format=xlsx")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.body.starts_with(b"PK\x03\x04"), "an xlsx file is a zip archive");

    // The OpenAPI document lists every route.
    let doc = server.get("/api/t3000/openapi.json").await.ok_json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    for (path, method) in [
        ("/healthz", "get"),
        ("/api/openapi.json", "get"),
        ("/api/t3000/samples", "post"),
        ("/api/t3000/points/batch", "get"),
        ("/api/t3000/points/{id}/value", "get"),
        ("/api/t3000/points/{id}/history", "get"),
        ("/api/t3000/history/batch", "post"),
        ("/api/t3000/query", "post"),
        ("/api/t3000/export", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "openapi.json lacks {method} {path}");
    }

    // Health.
    let h = server.health().await;
    assert_eq!((&h["status"], &h["writes"]), (&json!("ok"), &json!("ok")), "{h}");
    server.stop();
}

fn bytes_of(b: &[u8]) -> bytes::Bytes {
    bytes::Bytes::from(b.to_vec())
}
