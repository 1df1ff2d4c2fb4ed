use crate::common::*;
use t3_core::Sample;
use t3_core::clock::ManualClock;
use t3_storage::analytics::{self, Agg, Series};
use t3_storage::{HistoryMode, HistoryRequest, Storage};

/// The aggregate computed from raw rows alone, as the reference.
async fn expected(s: &Storage, point: u32, from: i64, to: i64, bucket: i64, aggs: &[Agg]) -> Vec<Vec<Option<f64>>> {
    let rows = raw(s, point, from - 7 * DAY, to).await;
    let prior = rows.iter().rfind(|r| r.0 < from).and_then(|r| r.1);
    let mut series = Series::new(point);
    for (t, v, q) in rows.into_iter().filter(|r| r.0 >= from) {
        series.push(t, v.unwrap_or(f64::NAN), q);
    }
    let b = analytics::aggregate(&series, prior, from, to, bucket, aggs, i64::MAX);
    b.columns.into_iter().map(|c| c.1).collect()
}

async fn actual(s: &Storage, point: u32, from: i64, to: i64, bucket: i64, aggs: &[Agg]) -> Vec<Vec<Option<f64>>> {
    let r = s
        .history(HistoryRequest {
            points: vec![point],
            from,
            to,
            mode: HistoryMode::Aggregate { bucket_us: bucket, aggs: aggs.to_vec() },
            prior: false,
        })
        .await
        .unwrap();
    aggs.iter().map(|a| column(&r.series[0], a.name())).collect()
}

fn close(a: &[Vec<Option<f64>>], b: &[Vec<Option<f64>>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.len() == y.len()
                && x.iter().zip(y).all(|(p, q)| match (p, q) {
                    (Some(p), Some(q)) => (p - q).abs() <= 1e-9 * (1.0 + q.abs()),
                    (p, q) => p == q,
                })
        })
}

#[tokio::test]
async fn rollups_answer_long_aggregates_exactly_and_go_stale_on_late_data() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 4 * DAY);
    let s = open(&config(dir.path()), &clock);
    // Three days of one point every 7 minutes, with a gap and a bad sample.
    let mut rows: Vec<Sample> = (0..(3 * 24 * 60 / 7))
        .filter(|i| !(100..130).contains(i))
        .map(|i| Sample::good(1, T0 + i * 7 * MIN + 13_000_000, (i % 50) as f64 - 10.0))
        .collect();
    rows[40] = Sample::new(1, rows[40].ts, f64::NAN, t3_core::Quality::BAD_COMM_FAILURE);
    rows.push(Sample::good(1, T0 - 2 * DAY, 5.0)); // the value in force long before
    s.ingest(rows).await.unwrap();
    s.flush().await.unwrap();
    let aggs = Agg::ALL;
    // A range that starts and ends mid-day, with hour buckets and day buckets.
    let (from, to) = (T0 + 5 * 3_600_000_000, T0 + 3 * DAY + 2 * 3_600_000_000);
    let before = actual(&s, 1, from, to, 3_600_000_000, &aggs).await;
    assert!(close(&before, &expected(&s, 1, from, to, 3_600_000_000, &aggs).await));

    let report = s.maintain().await.unwrap();
    assert_eq!(report.days_rolled_up, 4, "{report:?}");
    let rollup_files = s.live_files().iter().filter(|f| f.meta.table != t3_storage::manifest::Table::Samples).count();
    assert_eq!(rollup_files, 8);
    for bucket in [3_600_000_000, DAY, 2 * MIN] {
        let got = actual(&s, 1, from, to, bucket, &aggs).await;
        assert!(close(&got, &expected(&s, 1, from, to, bucket, &aggs).await), "bucket {bucket}");
    }
    assert!(close(&actual(&s, 1, from, to, 3_600_000_000, &aggs).await, &before));

    // A late sample into a rolled-up day: first buffered, then in a newer file; either way the
    // answer includes it, and the next pass recomputes that day.
    s.ingest(vec![Sample::good(1, T0 + DAY + 30 * MIN, 1000.0)]).await.unwrap();
    let want = expected(&s, 1, from, to, 3_600_000_000, &aggs).await;
    assert!(close(&actual(&s, 1, from, to, 3_600_000_000, &aggs).await, &want));
    s.flush().await.unwrap();
    assert!(close(&actual(&s, 1, from, to, 3_600_000_000, &aggs).await, &want));
    assert_eq!(s.maintain().await.unwrap().days_rolled_up, 1);
    assert!(close(&actual(&s, 1, from, to, 3_600_000_000, &aggs).await, &want));

    let sql = s.sql("SELECT count(*), max(max) FROM rollups_1h WHERE point_id = 1").await.unwrap();
    assert_eq!(sql.rows[0][1], serde_json::json!(1000.0));
}
