use crate::common::*;
use t3_core::Sample;
use t3_core::clock::ManualClock;
use t3_storage::Storage;

/// Copies a snapshot's files into `dest`, as a restore does.
fn copy_snapshot(snap: &t3_storage::BackupSnapshot, dest: &std::path::Path) {
    for f in &snap.files {
        let to = dest.join(&f.rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f.path, &to).unwrap();
    }
}

async fn all_rows(s: &Storage) -> Vec<Vec<(i64, Option<f64>, u8)>> {
    let mut out = Vec::new();
    for p in 0..5 {
        out.push(raw(s, p, T0 - DAY, T0 + 10 * DAY).await);
    }
    out
}

#[tokio::test]
async fn a_snapshot_pins_its_files_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 2 * DAY);
    let mut cfg = config(dir.path());
    cfg.compaction.min_files_per_day = 2;
    let s = open(&cfg, &clock);
    for k in 0..3 {
        s.ingest((0..50).map(|i| Sample::good(i % 5, T0 + (k * 50 + i as i64) * MIN, k as f64)).collect())
            .await
            .unwrap();
        s.flush().await.unwrap();
    }
    let snap = s.backup_snapshot().await.unwrap();
    let pinned: Vec<_> = snap.files.iter().filter(|f| f.data).map(|f| f.path.clone()).collect();
    assert_eq!(pinned.len(), 3);
    assert_eq!(s.maintain().await.unwrap().days_compacted, 1);
    assert_eq!(file_count(&s), 1, "compaction replaced the three files");
    assert!(pinned.iter().all(|p| p.exists()), "a pinned file was deleted while the snapshot held it");
    let staging = snap.staging_dir().to_owned();
    assert!(staging.join("manifest.json").exists());
    drop(snap);
    assert!(pinned.iter().all(|p| !p.exists()), "the replaced files are deleted once the snapshot lets go");
    assert!(!staging.exists(), "the staging folder is removed with the snapshot");
}

#[tokio::test]
async fn a_copy_answers_as_the_source_did_at_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 2 * DAY);
    let cfg = config(dir.path());
    let s = open(&cfg, &clock);
    s.ingest((0..200).map(|i| Sample::good(i % 5, T0 + i as i64 * MIN, i as f64)).collect()).await.unwrap();
    s.flush().await.unwrap();
    // Buffered only (in the WAL): one overwrite of a flushed key, rows of a second day.
    s.ingest(vec![Sample::good(0, T0, -1.0), Sample::good(1, T0 + DAY + MIN, 7.0), Sample::good(2, T0 + DAY, 8.0)])
        .await
        .unwrap();
    let expected = all_rows(&s).await;
    let snap = s.backup_snapshot().await.unwrap();
    assert_eq!(snap.buffered_rows, 3);
    // After the moment: neither in the copy nor in its answers.
    s.ingest(vec![Sample::good(3, T0 + 2 * DAY, 1.0)]).await.unwrap();
    s.flush().await.unwrap();

    let copy = tempfile::tempdir().unwrap();
    copy_snapshot(&snap, copy.path());
    drop(snap);
    let c = open(&config(copy.path()), &clock);
    assert_eq!(c.recovery().samples_replayed, 0);
    assert_eq!(all_rows(&c).await, expected);
    // The copy takes new samples, which win over the rows it was restored with.
    c.ingest(vec![Sample::good(0, T0, 42.0)]).await.unwrap();
    c.flush().await.unwrap();
    assert_eq!(raw(&c, 0, T0, T0 + 1).await[0].1, Some(42.0));
}

#[tokio::test]
async fn a_staging_folder_left_by_a_crash_is_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 2 * DAY);
    let cfg = config(dir.path());
    let s = open(&cfg, &clock);
    s.ingest(vec![Sample::good(1, T0, 1.0)]).await.unwrap();
    let snap = s.backup_snapshot().await.unwrap();
    let staging = snap.staging_dir().to_owned();
    // As if the process died during the copy: the snapshot is never dropped.
    std::mem::forget(snap);
    s.shutdown().await.unwrap();
    drop(s);
    assert!(staging.exists());
    let s = open(&cfg, &clock);
    assert!(!staging.exists(), "the stale staging folder is still there");
    assert_eq!(raw(&s, 1, T0, T0 + 1).await.len(), 1);
}
