//! WAL recovery through the engine: damaged records cost only themselves, a damaged segment is
//! quarantined once, and a log that cannot create its segment (a full disk at start-up) leaves the
//! engine read-only until it can, without a restart.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use t3_core::Sample;
use t3_storage::vfs::FaultyFs;
use t3_storage::{Error, WriteState};

/// Bytes of a segment header, a record header and a sample (see `wal.rs`).
const HEADER: usize = 16;
const RECORD_HEADER: usize = 24;
const SAMPLE: usize = 21;

fn batch(b: i64, n: i64) -> Vec<Sample> {
    (0..n).map(|i| Sample::good(1, T0 + (b * n + i) * MIN, (b * n + i) as f64)).collect()
}

fn last_segment(dir: &Path) -> PathBuf {
    let segs = t3_storage::wal::list_segments(&dir.join("wal")).unwrap();
    segs.into_iter().rev().find(|(_, p)| std::fs::metadata(p).unwrap().len() > HEADER as u64).unwrap().1
}

fn quarantine(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("quarantine"))
        .map(|d| d.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn a_damaged_record_costs_only_its_samples_and_its_segment_is_quarantined_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = t3_core::clock::ManualClock::new(T0 + 10 * DAY);
    let mut cfg = config(dir.path());
    cfg.storage.flush_rows = 1_000_000;
    let n = 50;
    {
        let s = open(&cfg, &clock);
        for b in 0..4 {
            s.ingest(batch(b, n)).await.unwrap();
        }
        // Dropped without shutdown: everything is in the WAL only.
    }
    let path = last_segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let record = RECORD_HEADER + n as usize * SAMPLE;
    let second = HEADER + record;
    for x in &mut bytes[second + RECORD_HEADER + 100..second + RECORD_HEADER + 116] {
        *x ^= 0xFF;
    }
    std::fs::write(&path, &bytes).unwrap();
    let want: Vec<i64> = [batch(0, n), batch(2, n), batch(3, n)].concat().iter().map(|s| s.ts).collect();

    let s = open(&cfg, &clock);
    let r = s.recovery().clone();
    assert_eq!((r.samples_replayed, r.wal_samples_lost, r.wal_samples_lost_at_most), (150, 50, 0), "{r:?}");
    assert_eq!(r.dropped.len(), 1, "{r:?}");
    assert!(r.dropped[0].contains("50 samples (counted from the intact record header)"), "{}", r.dropped[0]);
    assert_eq!(r.quarantined.len(), 1, "{r:?}");
    assert_eq!(raw(&s, 1, T0, T0 + DAY).await.iter().map(|r| r.0).collect::<Vec<_>>(), want);
    let copies = quarantine(dir.path());
    assert_eq!(copies.len(), 1);
    drop(s);

    // A restart before the flush: the same report, the same copy, no second one.
    let s = open(&cfg, &clock);
    let r = s.recovery().clone();
    assert_eq!((r.samples_replayed, r.wal_samples_lost), (150, 50), "{r:?}");
    assert!(r.quarantined.is_empty(), "copied again: {r:?}");
    assert!(r.dropped[0].contains(&copies[0]), "the report names the copy: {}", r.dropped[0]);
    assert_eq!(quarantine(dir.path()), copies);
    s.flush().await.unwrap();
    drop(s);

    // In Parquet now; the segment is gone and nothing more is reported.
    let s = open(&cfg, &clock);
    assert!(s.recovery().dropped.is_empty(), "{:?}", s.recovery());
    assert_eq!(raw(&s, 1, T0, T0 + DAY).await.iter().map(|r| r.0).collect::<Vec<_>>(), want);
}

#[tokio::test]
async fn a_torn_tail_is_reported_quietly_and_not_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let clock = t3_core::clock::ManualClock::new(T0 + 10 * DAY);
    let cfg = config(dir.path());
    {
        let s = open(&cfg, &clock);
        s.ingest(batch(0, 10)).await.unwrap();
        s.ingest(batch(1, 10)).await.unwrap();
    }
    let path = last_segment(dir.path());
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 30).unwrap();
    let s = open(&cfg, &clock);
    let r = s.recovery();
    assert_eq!((r.samples_replayed, r.wal_torn_samples, r.wal_samples_lost), (10, 10, 0), "{r:?}");
    assert!(r.dropped[0].contains("torn tail"), "{r:?}");
    assert!(r.quarantined.is_empty() && quarantine(dir.path()).is_empty(), "{r:?}");
}

#[tokio::test]
async fn a_full_disk_at_start_up_opens_read_only_and_takes_writes_again_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let clock = t3_core::clock::ManualClock::new(T0 + 10 * DAY);
    let cfg = config(dir.path());
    {
        let s = open(&cfg, &clock);
        s.ingest(batch(0, 10)).await.unwrap();
    }
    let fs = FaultyFs::default();
    fs.faults.set_fail_creates(true);
    let s = open_with(&cfg, &clock, Arc::new(fs.clone()));
    let WriteState::Unavailable(why) = s.write_state() else { panic!("{:?}", s.write_state()) };
    assert!(why.contains("ENOSPC"), "{why}");
    assert_eq!(s.write_refusal(), Some(why));
    // Reads go on, over what was replayed.
    assert_eq!(raw(&s, 1, T0, T0 + DAY).await.len(), 10);
    let err = s.ingest(batch(1, 10)).await.unwrap_err();
    assert!(matches!(err, Error::WalUnavailable(_)) && err.is_retryable(), "{err}");
    assert_eq!(raw(&s, 1, T0, T0 + DAY).await.len(), 10, "nothing of the refused batch is visible");

    fs.faults.set_fail_creates(false);
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.write_state() != WriteState::Ok {
        assert!(Instant::now() < deadline, "still {:?}", s.write_state());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.ingest(batch(1, 10)).await.unwrap();
    s.shutdown().await.unwrap();
    drop(s);
    let s = open(&cfg, &clock);
    assert_eq!(raw(&s, 1, T0, T0 + DAY).await.len(), 20);
}
