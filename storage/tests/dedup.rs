//! Duplicates are resolved where they can occur, not by every query: a flush proves its files
//! share no (point, ts) with older ones (`FileMeta::disjoint`), a query groups only the files that
//! may overlap and anti-joins the write buffer, and maintenance compacts a day whose files overlap
//! at once. So SQL over a whole store runs within a memory limit far below the store's size, and
//! the newest row still wins everywhere.

use crate::common::*;
use serde_json::json;
use t3_core::Sample;
use t3_core::clock::ManualClock;
use t3_storage::manifest::Table;

fn sample_files(s: &t3_storage::Storage) -> Vec<t3_storage::manifest::FileMeta> {
    let mut v: Vec<_> =
        s.live_files().iter().filter(|f| f.meta.table == Table::Samples).map(|f| f.meta.clone()).collect();
    v.sort_by_key(|m| m.seq);
    v
}

fn value(point: u32, minute: i64) -> f64 {
    ((point as i64 * 7 + minute * 13) % 1000) as f64 / 10.0
}

/// Live collection flushes consecutive windows; two flushes meet at an instant when a scan was
/// cut between them. Neither shares a row with the other, and both say so. A real overwrite is
/// flagged, and that day is compacted at once although it has fewer files than the threshold.
#[tokio::test]
async fn flushes_prove_what_they_do_not_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut cfg = config(dir.path());
    cfg.compaction.min_files_per_day = 10_000;
    cfg.rollups.enabled = false;
    let s = open(&cfg, &clock);
    let t = T0 - DAY;
    // Minute 0 for points 1..=3, then the scan is cut.
    s.ingest((1..=3).map(|p| Sample::good(p, t, 1.0)).collect()).await.unwrap();
    s.flush().await.unwrap();
    // The rest of minute 0 (points 4..=6) and minute 1 for all: meets the first file at `t`.
    let mut next: Vec<Sample> = (4..=6).map(|p| Sample::good(p, t, 1.0)).collect();
    next.extend((1..=6).map(|p| Sample::good(p, t + MIN, 2.0)));
    s.ingest(next).await.unwrap();
    s.flush().await.unwrap();
    let files = sample_files(&s);
    assert_eq!(files.len(), 2);
    assert!(files.iter().all(|f| f.disjoint), "{files:?}");

    // An overwrite of point 2 at minute 0.
    s.ingest(vec![Sample::good(2, t, 9.0)]).await.unwrap();
    s.flush().await.unwrap();
    let files = sample_files(&s);
    assert_eq!(files.iter().map(|f| f.disjoint).collect::<Vec<_>>(), [true, true, false]);
    let r = s.sql("SELECT count(*), sum(value) FROM samples").await.unwrap();
    assert_eq!(r.rows, vec![vec![json!(12), json!(1.0 * 5.0 + 9.0 + 2.0 * 6.0)]]);
    assert_eq!(raw(&s, 2, t, t + 2 * MIN).await, vec![(t, Some(9.0), 192), (t + MIN, Some(2.0), 192)]);

    // The flag survives a restart (it is in the manifest and in each file).
    drop(s);
    let s = open(&cfg, &clock);
    assert_eq!(sample_files(&s).iter().map(|f| f.disjoint).collect::<Vec<_>>(), [true, true, false]);

    let report = s.maintain().await.unwrap();
    assert_eq!(report.days_compacted, 1, "{report:?}");
    let files = sample_files(&s);
    assert_eq!(files.len(), 1);
    assert!(files[0].disjoint);
    assert_eq!(raw(&s, 2, t, t + 2 * MIN).await, vec![(t, Some(9.0), 192), (t + MIN, Some(2.0), 192)]);
    // Nothing left to do: disjoint files below the threshold stay as they are.
    s.ingest(vec![Sample::good(1, t + 2 * MIN, 3.0)]).await.unwrap();
    s.flush().await.unwrap();
    assert_eq!(s.maintain().await.unwrap().days_compacted, 0);
    assert_eq!(sample_files(&s).len(), 2);
}

/// 2.16 M rows in 11 files per day, far more than a 64 MiB memory limit can group by (point,
/// ts), and no spilling: the answer comes from streaming the files. Rows overwritten in a later
/// file and in the write buffer still count once, with their newest value.
#[tokio::test]
async fn sql_over_a_whole_store_needs_no_global_dedup() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut cfg = config(dir.path());
    cfg.compaction.enabled = false;
    cfg.rollups.enabled = false;
    cfg.query.memory_limit_mb = 64;
    cfg.query.spill_limit_mb = 0;
    cfg.query.sql_timeout_ms = 600_000;
    cfg.storage.flush_rows = 10_000_000;
    let s = open(&cfg, &clock);
    // One file per day and flush.
    s.set_sparse_day_rows(0);
    let (points, days) = (500u32, 3i64);
    let start = T0 - days * DAY;
    let minutes = days * 1440;
    let mut expected_sum = 0.0;
    let mut batch = Vec::new();
    for m in 0..minutes {
        for p in 1..=points {
            let v = value(p, m);
            expected_sum += v;
            batch.push(Sample::good(p, start + m * MIN, v));
        }
        if batch.len() >= 10_000 {
            s.ingest(std::mem::take(&mut batch)).await.unwrap();
        }
        if (m + 1) % 400 == 0 {
            s.ingest(std::mem::take(&mut batch)).await.unwrap();
            s.flush().await.unwrap();
        }
    }
    s.ingest(std::mem::take(&mut batch)).await.unwrap();
    s.flush().await.unwrap();
    let files = sample_files(&s);
    assert!(files.len() >= 3 * 4, "{} files", files.len());
    assert!(files.iter().all(|f| f.disjoint));
    let n = (points as i64 * minutes) as u64;
    let check = |r: t3_storage::SqlResult, sum: f64| {
        assert_eq!(r.rows[0][0], json!(n));
        let got = r.rows[0][1].as_f64().unwrap();
        assert!((got - sum).abs() < 1e-6 * sum, "sum {got}, expected {sum}");
    };
    check(s.sql("SELECT count(*), sum(value) FROM samples").await.unwrap(), expected_sum);

    // Overwrite every point at one minute of each day, half in a file, half still buffered.
    let mut sum = expected_sum;
    let mut overwrite = |m: i64, p: u32| {
        sum += 1000.0 - value(p, m);
        Sample::good(p, start + m * MIN, 1000.0)
    };
    let flushed: Vec<Sample> =
        (0..days).flat_map(|d| (1..=points).map(move |p| (d * 1440 + 100, p))).map(|(m, p)| overwrite(m, p)).collect();
    s.ingest(flushed).await.unwrap();
    s.flush().await.unwrap();
    let buffered: Vec<Sample> =
        (0..days).flat_map(|d| (1..=points).map(move |p| (d * 1440 + 900, p))).map(|(m, p)| overwrite(m, p)).collect();
    s.ingest(buffered).await.unwrap();
    assert_eq!(sample_files(&s).iter().filter(|f| !f.disjoint).count(), 3);
    check(s.sql("SELECT count(*), sum(value) FROM samples").await.unwrap(), sum);
    let r = s.sql("SELECT count(*) FROM samples WHERE value = 1000").await.unwrap();
    assert_eq!(r.rows[0][0], json!(2 * days * points as i64));
    assert_eq!(raw(&s, 7, start + 100 * MIN, start + 101 * MIN).await, vec![(start + 100 * MIN, Some(1000.0), 192)]);
    assert_eq!(raw(&s, 7, start + 900 * MIN, start + 901 * MIN).await, vec![(start + 900 * MIN, Some(1000.0), 192)]);
}
