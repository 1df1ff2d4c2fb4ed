use crate::common::*;
use std::sync::Arc;
use t3_core::clock::ManualClock;
use t3_core::{Quality, Sample};
use t3_storage::Error;
use t3_storage::vfs::FaultyFs;

#[tokio::test]
async fn acknowledged_samples_survive_an_unclean_stop() {
    let dir = tempfile::tempdir().unwrap();
    // After the last sample (T0 + 1599 min): ingest refuses time stamps ahead of the clock.
    let clock = ManualClock::new(T0 + 2 * DAY);
    let cfg = config(dir.path());
    {
        let s = open(&cfg, &clock);
        s.ingest((0..1500).map(|i| Sample::good(1, T0 + i * MIN, i as f64)).collect()).await.unwrap();
        s.flush().await.unwrap();
        s.ingest((1500..1600).map(|i| Sample::good(1, T0 + i * MIN, i as f64)).collect()).await.unwrap();
        // Dropped without shutdown: the last 100 samples exist only in the WAL.
    }
    let s = open(&cfg, &clock);
    assert_eq!(s.recovery().samples_replayed, 100);
    assert!(s.recovery().dropped.is_empty());
    let rows = raw(&s, 1, T0, T0 + 2 * DAY).await;
    assert_eq!(rows.len(), 1600);
    assert!(rows.iter().enumerate().all(|(i, r)| r.1 == Some(i as f64)));
    // After a flush the replayed WAL is gone and nothing is replayed twice.
    s.flush().await.unwrap();
    drop(s);
    let s = open(&cfg, &clock);
    assert_eq!(s.recovery().samples_replayed, 0);
    assert_eq!(raw(&s, 1, T0, T0 + 2 * DAY).await.len(), 1600);
}

#[tokio::test]
async fn shutdown_persists_and_truncates_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cfg = config(dir.path());
    let s = open(&cfg, &clock);
    s.ingest(vec![Sample::good(3, T0, 1.5)]).await.unwrap();
    assert_eq!(s.buffered_rows(), 1);
    s.shutdown().await.unwrap();
    assert_eq!(s.buffered_rows(), 0);
    let wal_bytes: u64 =
        std::fs::read_dir(dir.path().join("wal")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(wal_bytes <= 16, "only an empty segment header may remain, found {wal_bytes} bytes");
    drop(s);
    let s = open(&cfg, &clock);
    assert_eq!(s.recovery().samples_replayed, 0);
    assert_eq!(raw(&s, 3, T0, T0 + 1).await, vec![(T0, Some(1.5), 0xC0)]);
}

#[tokio::test]
async fn fsync_failure_refuses_writes_and_acknowledges_none() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cfg = config(dir.path());
    let fs = FaultyFs::default();
    let s = open_with(&cfg, &clock, Arc::new(fs.clone()));
    s.ingest(vec![Sample::good(1, T0, 1.0)]).await.unwrap();
    fs.faults.set_fail_syncs(true);
    let err = s.ingest(vec![Sample::good(1, T0 + 1, 2.0)]).await.unwrap_err();
    assert!(matches!(err, Error::Poisoned(_)), "{err}");
    fs.faults.set_fail_syncs(false);
    // Still refused: the failed fsync may have lost pages; only a restart clears the poison.
    assert!(matches!(s.ingest(vec![Sample::good(1, T0 + 2, 3.0)]).await, Err(Error::Poisoned(_))));
    assert!(s.write_refusal().is_some());
    // Queries still answer, and show only what was acknowledged.
    assert_eq!(raw(&s, 1, T0, T0 + 10).await.len(), 1);
    drop(s);
    let s = open(&cfg, &clock);
    let rows = raw(&s, 1, T0, T0 + 10).await;
    // The refused sample may or may not have reached the disk, but the acknowledged one must be there.
    assert!(rows.contains(&(T0, Some(1.0), 0xC0)));
    assert!(!rows.iter().any(|r| r.0 == T0 + 2));
}

#[tokio::test]
async fn write_failure_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let fs = FaultyFs::default();
    let s = open_with(&config(dir.path()), &clock, Arc::new(fs.clone()));
    fs.faults.set_fail_writes(true);
    assert!(matches!(s.ingest(vec![Sample::good(1, T0, 1.0)]).await, Err(Error::Poisoned(_))));
    assert_eq!(s.buffered_rows(), 0);
    assert!(raw(&s, 1, T0, T0 + 10).await.is_empty());
}

#[tokio::test]
async fn parquet_flush_failure_keeps_data_in_wal_and_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cfg = config(dir.path());
    let fs = FaultyFs::default();
    let s = open_with(&cfg, &clock, Arc::new(fs.clone()));
    s.ingest((0..10).map(|i| Sample::good(1, T0 + i, i as f64)).collect()).await.unwrap();
    fs.faults.set_fail_parquet_creates(true);
    assert!(s.flush().await.is_err());
    // The data is still acknowledged, visible and in the WAL.
    assert_eq!(raw(&s, 1, T0, T0 + 100).await.len(), 10);
    assert_eq!(file_count(&s), 0);
    assert!(s.write_refusal().is_none(), "a failed flush does not poison the WAL");
    fs.faults.set_fail_parquet_creates(false);
    // The WAL rotated before the failed attempt; ingest goes on into a fresh segment.
    s.ingest(vec![Sample::good(1, T0 + 50, 50.0)]).await.unwrap();
    s.flush().await.unwrap();
    assert_eq!(s.buffered_rows(), 0);
    assert_eq!(raw(&s, 1, T0, T0 + 100).await.len(), 11);
    drop(s);
    let s = open(&cfg, &clock);
    assert_eq!(s.recovery().samples_replayed, 0);
    assert_eq!(raw(&s, 1, T0, T0 + 100).await.len(), 11);
}

#[tokio::test]
async fn invalid_samples_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = open(&config(dir.path()), &clock);
    for bad in [
        Sample::good(1, -1, 1.0),
        Sample::good(1, 253_402_300_800_000_000, 1.0),
        Sample::good(1, T0, f64::NAN),
        Sample::good(1, T0, f64::INFINITY),
    ] {
        let err = s.ingest(vec![Sample::good(1, T0 + 5, 5.0), bad]).await.unwrap_err();
        assert!(matches!(err, Error::InvalidSample { index: 1, .. }), "{err}");
    }
    // NaN is how a bad-quality sample says "no value".
    s.ingest(vec![Sample::new(1, T0, f64::NAN, Quality::BAD_COMM_FAILURE)]).await.unwrap();
    assert_eq!(raw(&s, 1, T0, T0 + 10).await, vec![(T0, None, 0x18)]);
}

#[tokio::test]
async fn ack_level_parquet_waits_for_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut cfg = config(dir.path());
    cfg.storage.ack = t3_core::config::AckLevel::Parquet;
    let s = open(&cfg, &clock);
    s.ingest(vec![Sample::good(1, T0, 1.0)]).await.unwrap();
    assert_eq!(s.buffered_rows(), 0);
    assert_eq!(file_count(&s), 1);
}

#[tokio::test]
async fn a_second_process_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cfg = config(dir.path());
    let _s = open(&cfg, &clock);
    let err = t3_storage::Storage::open(&cfg, Arc::new(t3_storage::vfs::RealFs), clock.clone()).unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
}
