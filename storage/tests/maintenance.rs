use crate::common::*;
use t3_core::Sample;
use t3_core::clock::ManualClock;
use t3_core::config::PointRetention;

#[tokio::test]
async fn compaction_merges_a_days_files_into_one() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 2 * DAY);
    let mut cfg = config(dir.path());
    cfg.compaction.min_files_per_day = 3;
    let s = open(&cfg, &clock);
    for k in 0..4 {
        s.ingest((0..50).map(|i| Sample::good(i % 5, T0 + (k * 50 + i as i64) * MIN, k as f64)).collect())
            .await
            .unwrap();
        s.flush().await.unwrap();
    }
    assert_eq!(file_count(&s), 4);
    let before: Vec<_> = futures_rows(&s).await;
    let report = s.maintain().await.unwrap();
    assert_eq!(report.days_compacted, 1);
    assert_eq!(file_count(&s), 1);
    assert_eq!(futures_rows(&s).await, before);
    assert_eq!(s.maintain().await.unwrap().days_compacted, 0, "one file is below the threshold");
    // Old files are gone from disk once no query holds them.
    let on_disk = walk(&dir.path().join("samples"));
    assert_eq!(on_disk, 1, "retired files deleted");
}

async fn futures_rows(s: &t3_storage::Storage) -> Vec<Vec<(i64, Option<f64>, u8)>> {
    let mut out = Vec::new();
    for p in 0..5 {
        out.push(raw(s, p, T0 - DAY, T0 + 2 * DAY).await);
    }
    out
}

fn walk(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        n += if p.is_dir() { walk(&p) } else { 1 };
    }
    n
}

#[tokio::test]
async fn retention_deletes_old_days_and_honours_per_point_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 10 * DAY);
    let mut cfg = config(dir.path());
    cfg.retention.max_age_days = 5;
    cfg.retention.points =
        vec![PointRetention { points: vec![1], max_age_days: 30 }, PointRetention { points: vec![2], max_age_days: 2 }];
    let s = open(&cfg, &clock);
    // Days T0 .. T0+9, points 1, 2, 3, one sample each per day.
    for d in 0..10 {
        s.ingest((1..=3).map(|p| Sample::good(p, T0 + d * DAY + MIN, d as f64)).collect()).await.unwrap();
    }
    s.flush().await.unwrap();
    s.maintain().await.unwrap();
    let days = |p: u32| {
        let s = s.clone();
        async move { raw(&s, p, T0, T0 + 10 * DAY).await.into_iter().map(|r| r.1.unwrap() as i64).collect::<Vec<_>>() }
    };
    // now = day 10. Global 5 days: days 5..9 stay. Point 1 keeps 30 days; point 2 only 2 days (8, 9).
    assert_eq!(days(1).await, (0..10).collect::<Vec<_>>());
    assert_eq!(days(2).await, vec![8, 9]);
    assert_eq!(days(3).await, (5..10).collect::<Vec<_>>());
    // A second pass finds nothing more to do.
    let again = s.maintain().await.unwrap();
    assert_eq!((again.days_deleted, again.days_rewritten_for_retention), (0, 0));
}
