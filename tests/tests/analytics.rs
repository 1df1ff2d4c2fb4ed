//! Analytics SQL over a whole store, through the real server: 5.76 M samples ingested over HTTP as
//! Arrow into several files per day, then `count(*)` and `avg(value)` over everything with a
//! memory limit far below the store's size and no spilling. Duplicates are resolved only where
//! they can exist, so the query streams through the files instead of grouping every (point, ts).

use serde_json::json;
use t3_tests::*;

const ARROW: &str = "application/vnd.apache.arrow.stream";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_over_a_whole_store_runs_within_a_small_memory_limit() {
    let server = TestServer::start(
        "[query]\nmemory_limit_mb = 64\nspill_limit_mb = 0\nsql_timeout_ms = 300000\n\
         [storage]\nflush_rows = 500000\n[compaction]\nenabled = false\n",
    );
    let (points, days) = (1000u32, 4i64);
    let minutes = days * 1440;
    let start = BASE_TS - days * 86_400 * SECOND_US;
    let value = |p: u32, m: i64| ((p as i64 * 7 + m * 13) % 1000) as f64 / 10.0;
    let mut sum = 0.0;
    let (mut pt, mut ts, mut val) = (Vec::new(), Vec::new(), Vec::new());
    for m in 0..minutes {
        for p in 1..=points {
            pt.push(p);
            ts.push(start + m * 60 * SECOND_US);
            val.push(Some(value(p, m)));
            sum += value(p, m);
        }
        if pt.len() >= 100_000 || m == minutes - 1 {
            let body = arrow_stream(&pt, &ts, &val, None, false);
            // The server refuses a batch (503) while its flusher is behind; the batch is sent again.
            let mut tries = 0;
            loop {
                let r = server.post_raw("/api/t3000/samples", Some(ARROW), body.clone()).await;
                if r.status != reqwest::StatusCode::SERVICE_UNAVAILABLE || tries == 600 {
                    assert_eq!(r.ok_json()["accepted"], json!(pt.len()));
                    break;
                }
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            (pt, ts, val) = (Vec::new(), Vec::new(), Vec::new());
        }
    }
    let n = points as i64 * minutes;
    // Whatever has been flushed by now (several files per day) plus the write buffer.
    let rows = server.sql("SELECT count(*) AS n, avg(value) AS a FROM samples").await;
    assert_eq!(rows[0][0], json!(n));
    let avg = rows[0][1].as_f64().unwrap();
    assert!((avg - sum / n as f64).abs() < 1e-9 * avg.abs().max(1.0), "avg {avg}, expected {}", sum / n as f64);
    // Per day, as an analyst would ask.
    let rows = server.sql("SELECT date_trunc('day', ts) AS d, count(*) FROM samples GROUP BY d ORDER BY d").await;
    let counts: Vec<i64> = rows.iter().map(|r| r[1].as_i64().unwrap()).collect();
    assert_eq!(counts.iter().sum::<i64>(), n);
    assert!(counts.iter().all(|&c| c % points as i64 == 0), "{counts:?}");
}
