//! The manifest lost, emptied, garbled or replaced by an older copy: no history is deleted, and
//! what can be proven garbage (a half-written temporary file) is.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::Path;
use t3_core::Sample;
use t3_core::clock::ManualClock;
use t3_storage::Storage;
use t3_storage::manifest::MANIFEST_FILE;

/// Five days of one sample a minute for three points, flushed in several files per day, the first
/// days compacted, and some of the last day still only in the WAL. Returns every row as the model.
async fn history(s: &Storage) -> BTreeMap<(u32, i64), f64> {
    let mut model = BTreeMap::new();
    for round in 0..3 {
        for day in 0..5 {
            let batch: Vec<Sample> = (0..3)
                .flat_map(|p| {
                    (0..60).map(move |m| {
                        Sample::good(
                            p,
                            T0 + day * DAY + (round * 60 + m) * MIN,
                            (day * 1000 + m) as f64 + round as f64 / 10.0,
                        )
                    })
                })
                .collect();
            for x in &batch {
                model.insert((x.point_id.0, x.ts), x.value);
            }
            s.ingest(batch).await.unwrap();
        }
        s.flush().await.unwrap();
        if round == 1 {
            s.maintain().await.unwrap();
        }
    }
    // Overwrites of day 0 that only the WAL holds.
    let late: Vec<Sample> = (0..10).map(|m| Sample::good(1, T0 + m * MIN, -1.0)).collect();
    for x in &late {
        model.insert((1, x.ts), -1.0);
    }
    s.ingest(late).await.unwrap();
    model
}

async fn everything(s: &Storage) -> BTreeMap<(u32, i64), f64> {
    let mut out = BTreeMap::new();
    for p in 0..3 {
        for (t, v, _) in raw(s, p, T0 - DAY, T0 + 10 * DAY).await {
            out.insert((p, t), v.unwrap());
        }
    }
    out
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

/// Simulates kill -9: the engine is dropped without a shutdown (the WAL keeps what it acknowledged).
fn crash(s: Storage) {
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_manifest_is_rebuilt_from_the_files_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 10 * DAY);
    let mut cfg = config(dir.path());
    cfg.compaction.min_files_per_day = 2;
    let s = open(&cfg, &clock);
    assert!(!s.recovery().manifest_rebuilt, "a new data directory has nothing to rebuild");
    let model = history(&s).await;
    assert_eq!(everything(&s).await, model);
    crash(s);
    let before = files_under(&dir.path().join("samples"));
    std::fs::remove_file(dir.path().join(MANIFEST_FILE)).unwrap();

    let s = open(&cfg, &clock);
    let report = s.recovery().clone();
    assert!(report.manifest_rebuilt, "{report:?}");
    assert!(report.dropped.is_empty() && report.quarantined.is_empty(), "{report:?}");
    assert_eq!(everything(&s).await, model, "every acknowledged value, the WAL's overwrites included");
    // Only files proven garbage went, each named with its reason: sample files replaced by a file
    // beside them or whose rows the WAL still holds, and rollups (recomputed).
    let after = files_under(&dir.path().join("samples"));
    let gone: Vec<&String> = before.iter().filter(|f| !after.contains(f)).collect();
    let named = |f: &&String| {
        report.strays.iter().any(|l| l.contains(Path::new(f.as_str()).file_name().unwrap().to_str().unwrap()))
    };
    assert!(gone.iter().all(named), "{gone:?} / {report:?}");
    // The rebuilt manifest is stored, and the next start finds nothing to do.
    s.shutdown().await.unwrap();
    drop(s);
    let s = open(&cfg, &clock);
    assert!(!s.recovery().manifest_rebuilt && s.recovery().adopted.is_empty(), "{:?}", s.recovery());
    assert_eq!(everything(&s).await, model);
    // Maintenance goes on as before: compaction merges what the rebuild adopted.
    s.maintain().await.unwrap();
    assert_eq!(everything(&s).await, model);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_or_garbage_manifest_stops_the_start_and_repair_rebuilds_it() {
    for content in ["", "{\"format\": \"2\", \"generation\": 7, \"files\": [", "\u{0}\u{0}\u{0}garbage"] {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(T0 + 10 * DAY);
        let cfg = config(dir.path());
        let s = open(&cfg, &clock);
        let model = history(&s).await;
        s.shutdown().await.unwrap();
        drop(s);
        let data_files = files_under(&dir.path().join("samples"));
        std::fs::write(dir.path().join(MANIFEST_FILE), content).unwrap();

        let err = Storage::open(&cfg, std::sync::Arc::new(t3_storage::vfs::RealFs), clock.clone()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("t3000 repair --data-dir"), "{content:?}: {msg}");
        assert_eq!(
            files_under(&dir.path().join("samples")),
            data_files,
            "{content:?}: a refused start touches no data file"
        );

        let moved = t3_storage::recovery::set_aside_manifest(dir.path()).unwrap().expect("moved");
        assert!(moved.contains("quarantine"), "{moved}");
        let s = open(&cfg, &clock);
        assert!(s.recovery().manifest_rebuilt);
        assert_eq!(everything(&s).await, model, "{content:?}");
        s.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_manifest_loses_nothing_written_since() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 10 * DAY);
    let mut cfg = config(dir.path());
    cfg.compaction.min_files_per_day = 2;
    let s = open(&cfg, &clock);
    // An early state of the store, saved as a backup would be.
    s.ingest((0..3).map(|p| Sample::good(p, T0 + 5 * MIN, 0.5)).collect()).await.unwrap();
    s.flush().await.unwrap();
    let old = std::fs::read(dir.path().join(MANIFEST_FILE)).unwrap();
    // Then more days, flushes and compactions (which retire the files the old copy lists).
    let mut model = history(&s).await;
    s.flush().await.unwrap();
    s.maintain().await.unwrap();
    for p in 0..3 {
        model.entry((p, T0 + 5 * MIN)).or_insert(0.5);
    }
    assert_eq!(everything(&s).await, model);
    s.shutdown().await.unwrap();
    drop(s);
    std::fs::write(dir.path().join(MANIFEST_FILE), old).unwrap();

    let s = open(&cfg, &clock);
    let report = s.recovery().clone();
    assert!(!report.adopted.is_empty(), "the newer files are adopted: {report:?}");
    assert!(report.dropped.is_empty(), "the old copy's files were replaced, not lost: {report:?}");
    assert_eq!(everything(&s).await, model);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strays_are_removed_only_when_proven_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 10 * DAY);
    let cfg = config(dir.path());
    let s = open(&cfg, &clock);
    let model = history(&s).await;
    s.shutdown().await.unwrap();
    drop(s);
    let day_dir = dir.path().join("samples/day=2026-11-26");
    let listed = files_under(&day_dir);
    // A half-written file: a temporary name, cut short. Garbage.
    let bytes = std::fs::read(&listed[0]).unwrap();
    std::fs::write(day_dir.join("part-00000000000000000900.parquet.tmp"), &bytes[..bytes.len() / 2]).unwrap();
    // A published file the manifest has lost the entry of (its rows are nowhere else): adopted.
    let path = dir.path().join(MANIFEST_FILE);
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let lost = manifest["files"].as_array_mut().unwrap().remove(0);
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    // A file with our name and no readable content: doubtful, so quarantined (kept), not deleted.
    std::fs::write(day_dir.join("part-00000000000000000950.parquet"), b"not parquet at all").unwrap();

    let s = open(&cfg, &clock);
    let report = s.recovery().clone();
    assert_eq!(report.stray_files_removed, 1, "{report:?}");
    assert!(report.strays[0].contains(".tmp"), "{report:?}");
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    assert!(report.quarantined[0].contains("part-00000000000000000950"), "{report:?}");
    assert!(Path::new(&report.quarantined[0]).exists());
    assert_eq!(s.quarantined().len(), 1, "the doubtful file is recorded for the operator");
    assert_eq!(report.adopted.len(), 1, "{report:?}");
    assert!(report.adopted[0].contains(&format!("part-{:020}", lost["seq"].as_u64().unwrap())), "{report:?}");
    assert_eq!(everything(&s).await, model);
    s.shutdown().await.unwrap();
}
