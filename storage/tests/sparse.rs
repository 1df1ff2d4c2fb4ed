//! Many sparse days must not mean many files: a flush writes a run of sparse days of one month as
//! one file, maintenance merges a month that is over and holds few rows into one file (and its
//! rollups into one file per table), and splits such a month back into days once it is dense.
//! Every answer (raw, aggregate with rollups, SQL) stays what a store of one file per day gives.

use crate::common::*;
use std::collections::BTreeMap;
use t3_core::Sample;
use t3_core::clock::ManualClock;
use t3_core::config::{Config, PointRetention};
use t3_storage::analytics::Agg;
use t3_storage::manifest::{FileMeta, Table};
use t3_storage::{HistoryMode, HistoryRequest, Storage};

/// 2026-07-03T00:00:00Z: the first data day, 146 days before `T0` (2026-11-26).
const FIRST: i64 = T0 - 146 * DAY;
/// Data days: 2026-07-03 .. 2026-10-28 (four months, all over at `T0`).
const DAYS: i64 = 118;
const POINTS: u32 = 3;

fn value(point: u32, day: i64, k: i64) -> f64 {
    ((point as i64 * 31 + day * 7 + k * 3) % 97) as f64
}

/// A model of the stored rows: (point, ts) -> value, the last write winning.
type Model = BTreeMap<(u32, i64), f64>;

/// Writes the data set: a sample or two per point and day, flushed every ten days (so flushes
/// write multi-day files), then a later flush overwriting some old rows (files that overlap).
async fn load(s: &Storage, model: &mut Model) {
    for d in 0..DAYS {
        let mut batch = Vec::new();
        for p in 1..=POINTS {
            for k in 0..(1 + (d + p as i64) % 2) {
                let ts = FIRST + d * DAY + (p as i64 * 37 + k * 600) * MIN;
                batch.push(Sample::good(p, ts, value(p, d, k)));
            }
        }
        for x in &batch {
            model.insert((x.point_id.0, x.ts), x.value);
        }
        s.ingest(batch).await.unwrap();
        if d % 10 == 9 {
            s.flush().await.unwrap();
        }
    }
    s.flush().await.unwrap();
    let over: Vec<Sample> =
        (0..DAYS).step_by(9).map(|d| Sample::good(2, FIRST + d * DAY + (2 * 37) * MIN, 1000.0 + d as f64)).collect();
    for x in &over {
        model.insert((2, x.ts), x.value);
    }
    // One day per batch at most 31 days: split.
    for chunk in over.chunks(3) {
        s.ingest(chunk.to_vec()).await.unwrap();
    }
    s.flush().await.unwrap();
}

fn sample_files(s: &Storage) -> Vec<FileMeta> {
    let mut v: Vec<FileMeta> =
        s.live_files().iter().filter(|f| f.meta.table == Table::Samples).map(|f| f.meta.clone()).collect();
    v.sort_by_key(|m| m.day);
    v
}

fn rollup_files(s: &Storage) -> Vec<FileMeta> {
    s.live_files().iter().filter(|f| f.meta.table != Table::Samples).map(|f| f.meta.clone()).collect()
}

fn model_rows(model: &Model, point: u32, from: i64, to: i64) -> Vec<(i64, Option<f64>, u8)> {
    model.range((point, from)..(point, to)).map(|(k, v)| (k.1, Some(*v), 192)).collect()
}

async fn aggregate(s: &Storage, from: i64, to: i64, bucket: i64) -> Vec<Vec<Vec<Option<f64>>>> {
    let r = s
        .history(HistoryRequest {
            points: (1..=POINTS).collect(),
            from,
            to,
            mode: HistoryMode::Aggregate { bucket_us: bucket, aggs: Agg::ALL.to_vec() },
            prior: false,
        })
        .await
        .unwrap();
    r.series.iter().map(|sr| Agg::ALL.iter().map(|a| column(sr, a.name())).collect()).collect()
}

fn close(a: &[Vec<Vec<Option<f64>>>], b: &[Vec<Vec<Option<f64>>>]) -> bool {
    a.len() == b.len()
        && a.iter().flatten().zip(b.iter().flatten()).all(|(x, y)| {
            x.len() == y.len()
                && x.iter().zip(y).all(|(p, q)| match (p, q) {
                    (Some(p), Some(q)) => (p - q).abs() <= 1e-9 * (1.0 + q.abs()),
                    (p, q) => p == q,
                })
        })
}

/// Ranges that start and end inside months, so a month's rollup file answers only some days.
const RANGES: [(i64, i64); 4] = [
    (FIRST, FIRST + DAYS * DAY),
    (FIRST + 20 * DAY, FIRST + 45 * DAY),
    (FIRST + 33 * DAY + 5 * 3_600_000_000, FIRST + 71 * DAY),
    (FIRST + 90 * DAY, FIRST + 91 * DAY),
];

/// Raw rows, aggregates and SQL of `s` match the model and the reference store.
async fn check(s: &Storage, reference: &Storage, model: &Model, what: &str) {
    for p in 1..=POINTS {
        let got = raw(s, p, FIRST - DAY, T0).await;
        assert_eq!(got, model_rows(model, p, FIRST - DAY, T0), "{what}: raw rows of point {p}");
        let want = raw(reference, p, FIRST - DAY, T0).await;
        assert_eq!(want, model_rows(model, p, FIRST - DAY, T0), "{what}: raw rows of point {p} in the reference");
    }
    for (from, to) in RANGES {
        for bucket in [3_600_000_000, DAY, 7 * DAY] {
            let (a, b) = (aggregate(s, from, to, bucket).await, aggregate(reference, from, to, bucket).await);
            if !close(&a, &b) {
                for (i, (x, y)) in a.iter().flatten().zip(b.iter().flatten()).enumerate() {
                    for (k, (p, q)) in x.iter().zip(y).enumerate() {
                        if !close(&[vec![vec![*p]]], &[vec![vec![*q]]]) {
                            eprintln!("column {i} bucket {k}: {p:?} != {q:?}");
                        }
                    }
                }
                panic!("{what}: aggregate {from}..{to} by {bucket}");
            }
        }
    }
    let sum: f64 = model.values().sum();
    let r = s.sql("SELECT count(*), sum(value) FROM samples").await.unwrap();
    assert_eq!(r.rows[0][0], serde_json::json!(model.len()), "{what}: SQL count");
    assert!((r.rows[0][1].as_f64().unwrap() - sum).abs() < 1e-6, "{what}: SQL sum");
}

fn reference_config(dir: &std::path::Path) -> Config {
    let mut cfg = config(dir);
    cfg.compaction.enabled = false;
    cfg.rollups.enabled = false;
    cfg
}

/// A store under test and a reference store (no compaction, no rollups) loaded with the same
/// sparse days, and the model of what they hold.
struct Setup {
    dir: tempfile::TempDir,
    ref_dir: tempfile::TempDir,
    clock: std::sync::Arc<ManualClock>,
    cfg: Config,
    s: Storage,
    reference: Storage,
    model: Model,
}

async fn setup(tune: impl FnOnce(&mut Config)) -> Setup {
    let (dir, ref_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = ManualClock::new(T0);
    let mut cfg = config(dir.path());
    tune(&mut cfg);
    let s = open(&cfg, &clock);
    let reference = open(&reference_config(ref_dir.path()), &clock);
    let mut model = Model::new();
    load(&s, &mut model).await;
    load(&reference, &mut Model::new()).await;
    Setup { dir, ref_dir, clock, cfg, s, reference, model }
}

#[tokio::test]
async fn sparse_months_become_one_file_each_and_answer_as_before() {
    let Setup { dir, ref_dir: _ref_dir, clock, cfg, s, reference, mut model } = setup(|_| {}).await;
    // Flushes of ten sparse days wrote one file per run of days within a month.
    let flushed = sample_files(&s);
    assert!(flushed.iter().any(|f| f.days > 1), "{flushed:?}");
    assert!(flushed.len() < 30, "{} files", flushed.len());
    check(&s, &reference, &model, "flushed").await;

    let report = s.maintain().await.unwrap();
    assert_eq!(report.days_compacted, 4, "{report:?}");
    let files = sample_files(&s);
    // July (from the 3rd), August, September, October (to the 28th): one file each, covering the
    // days of its rows and never two months.
    let covered: Vec<(String, u32)> = files.iter().map(|f| (t3_storage::manifest::day_string(f.day), f.days)).collect();
    assert_eq!(
        covered,
        [("2026-07-03".into(), 29), ("2026-08-01".into(), 31), ("2026-09-01".into(), 30), ("2026-10-01".into(), 28)],
    );
    assert!(files.iter().all(|f| f.disjoint));
    // Rollups: one file per table and month.
    let rollups = rollup_files(&s);
    assert_eq!(rollups.len(), 8, "{rollups:?}");
    assert!(rollups.iter().all(|f| f.days > 1));
    check(&s, &reference, &model, "merged, with rollups").await;
    // The rollup views list each file once: one row per point and hour of every covered day.
    let r = s.sql("SELECT count(*), count(DISTINCT (point_id, ts)) FROM rollups_1h").await.unwrap();
    assert_eq!(r.rows[0][0], r.rows[0][1]);
    // Nothing more to do.
    let again = s.maintain().await.unwrap();
    assert_eq!((again.days_compacted, again.days_rolled_up), (0, 0), "{again:?}");

    // A late sample into a merged month: the month's rollups go stale at once, the answers
    // include it, and the next pass merges and rolls the month up again.
    let late = Sample::good(1, FIRST + 40 * DAY + 3 * MIN, 555.0);
    model.insert((1, late.ts), late.value);
    s.ingest(vec![late]).await.unwrap();
    reference.ingest(vec![late]).await.unwrap();
    s.flush().await.unwrap();
    reference.flush().await.unwrap();
    check(&s, &reference, &model, "late sample").await;
    let report = s.maintain().await.unwrap();
    assert_eq!(report.days_rolled_up, 31, "{report:?}");
    check(&s, &reference, &model, "late sample merged").await;
    assert_eq!(sample_files(&s).len(), 5, "two files in August until it has enough to merge");

    // A restart, then a restart without the manifest: the files describe their days themselves.
    s.shutdown().await.unwrap();
    drop(s);
    let s = open(&cfg, &clock);
    check(&s, &reference, &model, "restarted").await;
    let before = sample_files(&s);
    s.shutdown().await.unwrap();
    drop(s);
    std::fs::remove_file(dir.path().join("manifest.json")).unwrap();
    let s = open(&cfg, &clock);
    assert!(s.recovery().manifest_rebuilt);
    let mut after = sample_files(&s);
    for f in after.iter_mut() {
        f.disjoint = before.iter().find(|b| b.seq == f.seq).map(|b| b.disjoint).unwrap_or(false);
    }
    let key = |v: &[FileMeta]| v.iter().map(|f| (f.seq, f.day, f.days, f.rows)).collect::<Vec<_>>();
    assert_eq!(key(&after), key(&before));
    s.maintain().await.unwrap();
    check(&s, &reference, &model, "manifest rebuilt").await;
    assert_eq!(rollup_files(&s).len(), 8);
}

#[tokio::test]
async fn retention_and_deletion_cut_multi_day_files_by_day() {
    let Setup { dir: _dir, ref_dir, clock, cfg, s, reference, mut model } =
        setup(|c| c.compaction.min_files_per_day = 2).await;
    s.maintain().await.unwrap();
    assert_eq!(sample_files(&s).len(), 4);

    // Deleting a point's rows across the end of August and into September cuts both months' files.
    // (Less than a week: rollups carry a value at most 7 days into a day, raw aggregates over a
    // range carry it through any gap, so longer gaps answer differently with rollups, whatever
    // the files.)
    let (from, to) = (FIRST + 57 * DAY + 3 * 3_600_000_000, FIRST + 62 * DAY);
    // An empty range (`from` not before `to`) deletes nothing.
    assert_eq!(s.delete_samples(2, to, from).await.unwrap(), 0);
    assert_eq!(s.delete_samples(2, from, from).await.unwrap(), 0);
    check(&s, &reference, &model, "nothing deleted").await;
    let n = s.delete_samples(2, from, to).await.unwrap();
    assert_eq!(n as usize, model.range((2, from)..(2, to)).count());
    assert_eq!(reference.delete_samples(2, from, to).await.unwrap(), n);
    model.retain(|k, _| !(k.0 == 2 && (from..to).contains(&k.1)));
    assert_eq!(sample_files(&s).len(), 4);
    check(&s, &reference, &model, "deleted").await;

    // Retention of 100 days (point 3: 130 days) ends inside August: the days before lose their
    // rows, July entirely but for point 3's last days.
    let retention = |cfg: &mut Config| {
        cfg.retention.max_age_days = 100;
        cfg.retention.points = vec![PointRetention { points: vec![3], max_age_days: 130 }];
    };
    let (mut cfg2, mut ref_cfg) = (cfg.clone(), reference_config(ref_dir.path()));
    retention(&mut cfg2);
    retention(&mut ref_cfg);
    s.shutdown().await.unwrap();
    reference.shutdown().await.unwrap();
    drop((s, reference));
    let s = open(&cfg2, &clock);
    let reference = open(&ref_cfg, &clock);
    let report = s.maintain().await.unwrap();
    reference.maintain().await.unwrap();
    let expired = |age: i64, ts: i64| (ts.div_euclid(DAY) + 1) * DAY <= T0 - age * DAY;
    model.retain(|k, _| !expired(if k.0 == 3 { 130 } else { 100 }, k.1));
    assert_eq!(report.days_rewritten_for_retention, 2, "{report:?}");
    check(&s, &reference, &model, "after retention").await;
    let files = sample_files(&s);
    assert_eq!(files.len(), 4, "{files:?}");
    // July keeps only point 3's days from 2026-07-19 (130 days before T0), and its file says so.
    assert_eq!((t3_storage::manifest::day_string(files[0].day), files[0].days), ("2026-07-19".into(), 13));
    assert_eq!(s.maintain().await.unwrap().days_rewritten_for_retention, 0);
}

#[tokio::test]
async fn a_month_that_turns_dense_is_split_into_days() {
    let Setup { dir: _dir, ref_dir: _ref_dir, clock: _clock, cfg: _cfg, s, reference, mut model } =
        setup(|c| c.compaction.target_file_rows = 100_000).await;
    s.maintain().await.unwrap();
    assert_eq!(sample_files(&s).len(), 4);
    // 120,000 rows on 2026-09-10 (a dense day, and more than the month may hold in one file).
    let day = FIRST + 69 * DAY;
    let dense: Vec<Sample> =
        (0..120_000).map(|i| Sample::good(10 + (i % 100) as u32, day + (i / 100) * 1_000_000, i as f64)).collect();
    for x in &dense {
        model.insert((x.point_id.0, x.ts), x.value);
    }
    for chunk in dense.chunks(40_000) {
        s.ingest(chunk.to_vec()).await.unwrap();
        reference.ingest(chunk.to_vec()).await.unwrap();
    }
    s.flush().await.unwrap();
    reference.flush().await.unwrap();
    s.maintain().await.unwrap();
    let files = sample_files(&s);
    let september: Vec<&FileMeta> =
        files.iter().filter(|f| t3_storage::manifest::day_string(f.day).starts_with("2026-09")).collect();
    // One file per day, two for the dense day (more rows than a file may hold).
    assert_eq!(september.len(), 31, "{september:?}");
    assert!(september.iter().all(|f| f.days == 1 && f.disjoint));
    assert_eq!(files.len(), 3 + 31);
    check(&s, &reference, &model, "split").await;
    let r = s.sql("SELECT count(*) FROM samples WHERE point_id = 57").await.unwrap();
    assert_eq!(r.rows[0][0], serde_json::json!(1200));
    assert_eq!(s.maintain().await.unwrap().days_compacted, 0);
}
