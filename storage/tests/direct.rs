//! The direct Parquet reader (history requests naming at most `DIRECT_MAX_POINTS` points) against
//! the DuckDB reader, on the same stores: same answers, including duplicates across files and the
//! write buffer, the value in force before the range, rollups, compaction and damaged files.

use crate::common::*;
use t3_core::clock::ManualClock;
use t3_core::{Quality, Sample};
use t3_storage::analytics::{Agg, Fill};
use t3_storage::query::DIRECT_MAX_POINTS;
use t3_storage::{HistoryMode, HistoryRequest, HistoryResult, ReadPath, Storage};

/// 70 ordinary ids (more than `DIRECT_MAX_POINTS`) and the unsigned extremes (pruning reads UInt32
/// statistics stored as INT32).
fn ids() -> Vec<u32> {
    let ids: Vec<u32> = (0..70).map(|i| i * 3).chain([2_147_483_647, 2_147_483_648, u32::MAX - 1, u32::MAX]).collect();
    assert!(ids.len() > DIRECT_MAX_POINTS);
    ids
}

fn value(p: u32, m: i64) -> f64 {
    ((p as i64 % 1000) * 31 + m).rem_euclid(97) as f64 * 0.5 - 10.0
}

/// Every point every 2 minutes over `[from, to)`, with a bad sample now and then.
fn samples(points: &[u32], from: i64, to: i64, salt: i64) -> Vec<Sample> {
    let mut out = Vec::new();
    for &p in points {
        let mut t = from;
        while t < to {
            let m = (t - T0) / MIN + salt;
            out.push(if m.rem_euclid(53) == 0 {
                Sample::new(p, t, f64::NAN, Quality::BAD_COMM_FAILURE)
            } else {
                Sample::good(p, t, value(p, m))
            });
            t += 2 * MIN;
        }
    }
    out
}

async fn both(s: &Storage, req: &HistoryRequest) -> (HistoryResult, HistoryResult) {
    let direct = s.history_with(req.clone(), ReadPath::Direct).await.unwrap();
    let duck = s.history_with(req.clone(), ReadPath::DuckDb).await.unwrap();
    (direct, duck)
}

/// Asks many questions through both readers and checks the answers are identical.
async fn compare(s: &Storage, stage: &str) {
    let ids = ids();
    // (points, every range and mode or only some)
    let point_sets: Vec<(Vec<u32>, bool)> = vec![
        (vec![ids[0]], true),
        (vec![ids[1]], true),
        (vec![ids[71], ids[73]], true),
        (vec![ids[5], 1_000_001], true),
        (ids[62..].to_vec(), true),
        (ids[..DIRECT_MAX_POINTS].to_vec(), false),
    ];
    let ranges = [
        (T0 - 3 * DAY, T0 + DAY),
        (T0 - 2 * DAY + 17 * MIN, T0 - DAY + 3 * 60 * MIN),
        (T0 - 10 * MIN, T0 + 10 * MIN),
        (T0 - DAY, T0),
    ];
    let modes = [
        HistoryMode::Raw,
        HistoryMode::Aggregate { bucket_us: 60 * MIN, aggs: Agg::ALL.to_vec() },
        HistoryMode::Interpolate { step_us: 5 * MIN, fill: Fill::Linear, max_gap_us: 30 * MIN },
        HistoryMode::Downsample { max_points: 100 },
        HistoryMode::Aggregate { bucket_us: 10 * MIN, aggs: Agg::ALL.to_vec() },
        HistoryMode::Aggregate { bucket_us: DAY, aggs: vec![Agg::Twa, Agg::Count] },
        HistoryMode::Interpolate { step_us: 7 * MIN, fill: Fill::Step, max_gap_us: 3 * DAY },
    ];
    for (points, every) in &point_sets {
        let (ranges, modes) = if *every { (&ranges[..], &modes[..]) } else { (&ranges[..2], &modes[..3]) };
        for &(from, to) in ranges {
            for mode in modes {
                // The rows before `from` too, where they apply.
                let prior = matches!(mode, HistoryMode::Raw | HistoryMode::Downsample { .. });
                let req = HistoryRequest { points: points.clone(), from, to, mode: mode.clone(), prior };
                let (direct, duck) = both(s, &req).await;
                assert_eq!(direct, duck, "{stage}: {req:?}");
                assert!(!direct.partial);
            }
        }
    }
    // More points than the threshold: `Auto` takes DuckDB, and the direct reader still agrees.
    let req = HistoryRequest {
        points: ids.clone(),
        from: T0 - DAY - 30 * MIN,
        to: T0 + DAY,
        mode: HistoryMode::Raw,
        prior: true,
    };
    let (direct, duck) = both(s, &req).await;
    assert_eq!(direct, duck, "{stage}: all points");
    assert!(duck.series.iter().all(|r| r.prior.is_some()), "{stage}: prior asked for");
    assert_eq!(s.history(req).await.unwrap(), duck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_reader_and_duckdb_give_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 5 * DAY);
    let mut cfg = config(dir.path());
    // Several row groups per file and several pages per row group (pages are 8,192 rows), read
    // on two threads; compaction splits a day into several files.
    cfg.storage.row_group_rows = 16_384;
    cfg.query.threads = 2;
    cfg.compaction.min_files_per_day = 2;
    cfg.compaction.target_file_rows = 25_000;
    let s = open(&cfg, &clock);
    // One file per day (a flush would write these sparse days into one file).
    s.set_sparse_day_rows(0);
    let ids = ids();
    let (a, b, c) = (ids[1], ids[71], ids[73]);

    // Three days of every point (one file per day), and a sample long before for `a`.
    s.ingest(samples(&ids, T0 - 3 * DAY, T0, 0)).await.unwrap();
    s.ingest(vec![Sample::good(a, T0 - 6 * DAY, 111.0)]).await.unwrap();
    s.flush().await.unwrap();
    // Newer files: a few points rewritten over part of a day (duplicates of persisted rows), and
    // the first hours of the last day; `a`'s old sample gets a new value.
    s.ingest(samples(&[a, b, c], T0 - 2 * DAY + 60 * MIN, T0 - 2 * DAY + 300 * MIN, 7)).await.unwrap();
    s.ingest(samples(&ids[..20], T0, T0 + 6 * 60 * MIN, 0)).await.unwrap();
    s.ingest(vec![Sample::good(a, T0 - 6 * DAY, 222.0)]).await.unwrap();
    s.flush().await.unwrap();
    // The write buffer: duplicates of rows in both files, and new rows.
    s.ingest(vec![
        Sample::good(a, T0 - 2 * DAY + 120 * MIN, 1000.0),
        Sample::good(b, T0 - 3 * DAY, 2000.0),
        Sample::good(c, T0 - DAY - 2 * MIN, 3000.0),
        Sample::good(a, T0 + 60 * MIN + 30_000_000, 4000.0),
        Sample::new(ids[0], T0 - DAY + 4 * MIN, f64::NAN, Quality::BAD_COMM_FAILURE),
    ])
    .await
    .unwrap();
    assert!(file_count(&s) >= 6, "several files per day: {}", file_count(&s));

    // The answers themselves: the newest source wins.
    let rows = raw(&s, a, T0 - 2 * DAY + 118 * MIN, T0 - 2 * DAY + 124 * MIN).await;
    let rewritten = |m: i64| value(a, (T0 - 2 * DAY + m * MIN - T0) / MIN + 7);
    assert_eq!(
        rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        vec![Some(rewritten(118)), Some(1000.0), Some(rewritten(122))],
        "buffer over the newer file over the older one"
    );
    assert_eq!(raw(&s, b, T0 - 3 * DAY, T0 - 3 * DAY + MIN).await, vec![(T0 - 3 * DAY, Some(2000.0), 0xC0)]);
    assert_eq!(raw(&s, ids[0], T0 - DAY + 4 * MIN, T0 - DAY + 5 * MIN).await[0].1, None);
    // The value in force before the range comes from the newest file holding it.
    let r = s
        .history(HistoryRequest {
            points: vec![a],
            from: T0 - 5 * DAY,
            to: T0 - 4 * DAY,
            mode: HistoryMode::Aggregate { bucket_us: DAY, aggs: vec![Agg::Twa] },
            prior: false,
        })
        .await
        .unwrap();
    assert_eq!(column(&r.series[0], "twa"), vec![Some(222.0)]);
    // The direct reader parsed and kept the page index of the files it read.
    assert!(s.live_files().iter().any(|f| f.index_memory() > 0));

    compare(&s, "files and buffer").await;
    // Compaction (several files per day) and rollups of the days that are over; the last day has
    // buffered rows, so its rollups are not used.
    let report = s.maintain().await.unwrap();
    assert!(report.days_compacted >= 2, "{report:?}");
    compare(&s, "after compaction and rollups").await;
    s.flush().await.unwrap();
    compare(&s, "buffer flushed").await;
    s.maintain().await.unwrap();
    compare(&s, "compacted again").await;
}

/// Damages the file of day `T0` in one of two ways; both readers quarantine it and answer from the
/// rest, with `partial`.
async fn damaged_file_case(path: ReadPath, garble_pages: bool, read_first: bool) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 3 * DAY);
    let s = open(&config(dir.path()), &clock);
    // One file per day, so one of them can be damaged.
    s.set_sparse_day_rows(0);
    s.ingest(vec![Sample::good(1, T0, 1.0), Sample::good(1, T0 + DAY, 2.0)]).await.unwrap();
    s.flush().await.unwrap();
    let req = HistoryRequest { points: vec![1], from: T0, to: T0 + 2 * DAY, mode: HistoryMode::Raw, prior: false };
    if read_first {
        // The page index of the file is cached before the damage.
        assert_eq!(s.history_with(req.clone(), path).await.unwrap().series[0].ts, vec![T0, T0 + DAY]);
    }
    let victim = s.live_files().iter().find(|f| f.meta.day == (T0 / DAY) as i32).unwrap().path.clone();
    if garble_pages {
        // The footer stays intact; the first page's header and data are overwritten.
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&victim).unwrap();
        f.write_all_at(&[0xFF; 48], 4).unwrap();
    } else {
        let len = std::fs::metadata(&victim).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&victim).unwrap().set_len(len / 2).unwrap();
    }
    let r = s.history_with(req, path).await.unwrap();
    let case = format!("{path:?}, garbled pages {garble_pages}, read first {read_first}");
    assert!(r.partial, "{case}");
    assert_eq!(r.series[0].ts, vec![T0 + DAY], "{case}");
    assert_eq!(s.live_files().len(), 1, "{case}");
    assert_eq!(std::fs::read_dir(dir.path().join("quarantine")).unwrap().count(), 1, "{case}");
}

#[tokio::test]
async fn a_damaged_file_is_quarantined_by_either_reader() {
    // (A truncated file whose footer was read before may still serve the pages it has left.)
    for path in [ReadPath::Direct, ReadPath::DuckDb] {
        for (garble_pages, read_first) in [(false, false), (true, false), (true, true)] {
            damaged_file_case(path, garble_pages, read_first).await;
        }
    }
}

#[tokio::test]
async fn the_row_limit_counts_rows_after_duplicates_are_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 3 * DAY);
    let mut cfg = config(dir.path());
    cfg.query.max_rows = 1_000;
    let s = open(&cfg, &clock);
    let day =
        |d: i64, v: f64| -> Vec<Sample> { (0..600).map(|i| Sample::good(1, T0 + d * DAY + i * MIN, v)).collect() };
    // 1,200 rows read but 600 distinct: within the limit.
    s.ingest(day(0, 1.0)).await.unwrap();
    s.flush().await.unwrap();
    s.ingest(day(0, 2.0)).await.unwrap();
    s.flush().await.unwrap();
    let req = HistoryRequest { points: vec![1], from: T0, to: T0 + 2 * DAY, mode: HistoryMode::Raw, prior: false };
    for path in [ReadPath::Direct, ReadPath::DuckDb] {
        let r = s.history_with(req.clone(), path).await.unwrap();
        assert_eq!(r.series[0].ts.len(), 600, "{path:?}");
        assert_eq!(column(&r.series[0], "value")[0], Some(2.0), "{path:?}");
    }
    // 1,200 distinct rows on two days (files and buffer): refused by both readers.
    s.ingest(day(1, 3.0)).await.unwrap();
    for flushed in [false, true] {
        if flushed {
            s.flush().await.unwrap();
        }
        for path in [ReadPath::Direct, ReadPath::DuckDb] {
            let e = s.history_with(req.clone(), path).await.unwrap_err();
            assert!(matches!(e, t3_storage::Error::TooManyRows(1_000)), "{path:?}, flushed {flushed}: {e}");
        }
    }
}
