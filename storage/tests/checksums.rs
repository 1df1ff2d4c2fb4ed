//! Damage inside a data page (where the footer stays intact and zstd may decode to wrong values) is
//! caught by the file's CRC-32C: on the first read after a start and by the scrub. The file is
//! quarantined, every later answer over its range says `partial`, the record stays until an
//! operator acknowledges it, and rollups never count the lost rows.

use crate::common::*;
use std::path::{Path, PathBuf};
use t3_core::Sample;
use t3_core::clock::ManualClock;
use t3_storage::analytics::Agg;
use t3_storage::{HistoryMode, HistoryRequest, Storage};

const POINT: u32 = 5;

fn value_at(ts: i64) -> f64 {
    (ts / MIN) as f64 * 0.25
}

/// Two days of one sample a minute, flushed, rolled up.
async fn two_days(s: &Storage) {
    let rows: Vec<Sample> = (0..2 * 1440).map(|m| Sample::good(POINT, T0 + m * MIN, value_at(T0 + m * MIN))).collect();
    s.ingest(rows).await.unwrap();
    s.flush().await.unwrap();
    s.maintain().await.unwrap();
}

fn day0_file(dir: &Path) -> PathBuf {
    let day = dir.join("samples/day=2026-11-26");
    std::fs::read_dir(&day).unwrap().flatten().map(|e| e.path()).next().expect("day 0 has a file")
}

/// Flips 8 bytes in the middle of the `value` column's pages: the footer stays intact.
fn flip(path: &Path) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let (start, len) = {
        let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
        let rg = reader.metadata().row_group(0);
        let col = rg.columns().iter().find(|c| c.column_path().string() == "value").expect("a value column");
        col.byte_range()
    };
    let mut bytes = std::fs::read(path).unwrap();
    let at = (start + len / 2) as usize;
    for b in &mut bytes[at..at + 8] {
        *b ^= 0x5A;
    }
    std::fs::write(path, bytes).unwrap();
}

async fn history(s: &Storage, mode: HistoryMode) -> t3_storage::HistoryResult {
    s.history(HistoryRequest { points: vec![POINT], from: T0, to: T0 + 2 * DAY, mode, prior: false }).await.unwrap()
}

fn daily_counts(r: &t3_storage::HistoryResult) -> Vec<Option<f64>> {
    column(&r.series[0], "count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_data_page_is_caught_reported_and_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 3 * DAY);
    let cfg = config(dir.path());
    let s = open(&cfg, &clock);
    two_days(&s).await;
    let daily = HistoryMode::Aggregate { bucket_us: DAY, aggs: vec![Agg::Count] };
    assert_eq!(daily_counts(&history(&s, daily.clone()).await), vec![Some(1440.0), Some(1440.0)]);
    s.shutdown().await.unwrap();
    drop(s);
    let damaged = day0_file(dir.path());
    flip(&damaged);

    let s = open(&cfg, &clock);
    assert!(s.recovery().quarantined.is_empty(), "the footer is intact: start-up cannot see it");
    let r = history(&s, HistoryMode::Raw).await;
    assert!(r.partial, "the first answer says rows are missing");
    let ts = &r.series[0].ts;
    let values = column(&r.series[0], "value");
    assert_eq!(ts.len(), 1440, "day 1 is served whole, day 0 not at all");
    for (t, v) in ts.iter().zip(&values) {
        assert_eq!(*v, Some(value_at(*t)), "a wrong value was served at {t}");
    }
    assert!(!damaged.exists(), "moved to quarantine/");
    let q = s.quarantined();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!((q[0].rows, q[0].acknowledged), (1440, false), "{q:?}");
    assert!(q[0].reason.contains("checksum"), "{q:?}");
    assert!(dir.path().join(&q[0].moved_to).exists(), "{q:?}");

    // Later answers over that range still say so, and aggregates never count the lost rows: the
    // day's rollups are stale at once and recomputed by the next pass.
    let r = history(&s, HistoryMode::Raw).await;
    assert!(r.partial, "a later answer over the lost range is partial too");
    let other_day = s
        .history(HistoryRequest {
            points: vec![POINT],
            from: T0 + DAY,
            to: T0 + 2 * DAY,
            mode: HistoryMode::Raw,
            prior: false,
        })
        .await
        .unwrap();
    assert!(!other_day.partial, "a range the lost file did not cover is whole");
    let r = history(&s, daily.clone()).await;
    assert_eq!(daily_counts(&r), vec![Some(0.0), Some(1440.0)], "before the rollups are recomputed");
    s.maintain().await.unwrap();
    assert_eq!(daily_counts(&history(&s, daily.clone()).await), vec![Some(0.0), Some(1440.0)], "after");
    let sql = s.sql("SELECT count(*) FROM samples").await.unwrap();
    assert!(sql.partial);
    assert_eq!(sql.rows, vec![vec![serde_json::json!(1440)]]);

    // The record survives a restart until acknowledged.
    assert!(s.acknowledge_quarantined(&q[0].file).unwrap());
    assert!(!s.acknowledge_quarantined("samples/day=1999-01-01/part-1.parquet").unwrap());
    s.shutdown().await.unwrap();
    drop(s);
    let s = open(&cfg, &clock);
    let q = s.quarantined();
    assert_eq!((q.len(), q[0].acknowledged), (1, true));
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrub_finds_damage_in_a_file_nobody_reads() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 3 * DAY);
    let cfg = config(dir.path());
    let s = open(&cfg, &clock);
    two_days(&s).await;
    let clean = s.scrub(None).await.unwrap();
    assert!(clean.quarantined.is_empty() && clean.files_checked >= 2, "{clean:?}");
    // Damage while running, to a file this process wrote (and so trusts until the scrub).
    flip(&day0_file(dir.path()));
    let report = s.scrub(None).await.unwrap();
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    assert_eq!(s.quarantined().len(), 1);
    let r = history(&s, HistoryMode::Raw).await;
    assert!(r.partial);
    assert_eq!(r.series[0].ts.len(), 1440);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_never_copies_a_damaged_file_into_a_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 3 * DAY);
    let mut cfg = config(dir.path());
    cfg.compaction.min_files_per_day = 2;
    let s = open(&cfg, &clock);
    s.ingest((0..600).map(|m| Sample::good(POINT, T0 + m * MIN, value_at(T0 + m * MIN))).collect()).await.unwrap();
    s.flush().await.unwrap();
    s.shutdown().await.unwrap();
    drop(s);
    flip(&day0_file(dir.path()));
    let s = open(&cfg, &clock);
    s.ingest((600..700).map(|m| Sample::good(POINT, T0 + m * MIN, value_at(T0 + m * MIN))).collect()).await.unwrap();
    s.flush().await.unwrap();
    s.maintain().await.unwrap();
    assert_eq!(s.quarantined().len(), 1, "the damaged input was quarantined, not compacted");
    let r = history(&s, HistoryMode::Raw).await;
    assert!(r.partial);
    let values = column(&r.series[0], "value");
    assert_eq!(r.series[0].ts.len(), 100);
    assert!(r.series[0].ts.iter().zip(&values).all(|(t, v)| *v == Some(value_at(*t))));
    s.shutdown().await.unwrap();
}
