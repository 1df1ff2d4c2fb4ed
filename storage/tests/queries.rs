use crate::common::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use t3_core::clock::ManualClock;
use t3_core::{Quality, Sample};
use t3_storage::analytics::{Agg, Fill};
use t3_storage::{HistoryMode, HistoryRequest, ReadPath};

#[tokio::test]
async fn late_and_duplicate_samples_last_write_wins_across_files_and_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 3 * DAY);
    let s = open(&config(dir.path()), &clock);
    s.ingest(vec![Sample::good(7, T0 + MIN, 1.0), Sample::good(7, T0 + 2 * MIN, 2.0)]).await.unwrap();
    s.flush().await.unwrap();
    // A late sample for the previous day, a duplicate of a persisted one, and a duplicate within
    // one batch.
    s.ingest(vec![
        Sample::good(7, T0 - DAY + 5 * MIN, -1.0),
        Sample::good(7, T0 + MIN, 10.0),
        Sample::good(7, T0 + 3 * MIN, 3.0),
        Sample::good(7, T0 + 3 * MIN, 30.0),
    ])
    .await
    .unwrap();
    let want = vec![
        (T0 - DAY + 5 * MIN, Some(-1.0), 0xC0),
        (T0 + MIN, Some(10.0), 0xC0),
        (T0 + 2 * MIN, Some(2.0), 0xC0),
        (T0 + 3 * MIN, Some(30.0), 0xC0),
    ];
    assert_eq!(raw(&s, 7, T0 - DAY, T0 + DAY).await, want, "buffer over files");
    s.flush().await.unwrap();
    assert_eq!(raw(&s, 7, T0 - DAY, T0 + DAY).await, want, "newer file over older file");
    let days: Vec<i32> = s.live_files().iter().map(|f| f.meta.day).collect();
    assert!(days.contains(&(((T0 - DAY) / DAY) as i32)), "the late sample landed in its own day: {days:?}");
    s.maintain().await.unwrap();
    assert_eq!(raw(&s, 7, T0 - DAY, T0 + DAY).await, want, "after compaction");
}

#[tokio::test]
async fn time_weighted_average_uses_the_value_before_the_bucket_from_storage() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + DAY);
    let s = open(&config(dir.path()), &clock);
    // 10 since before the range (persisted), then 20 at +2 min and 30 at +8 min (buffered).
    s.ingest(vec![Sample::good(1, T0 - 30 * MIN, 10.0)]).await.unwrap();
    s.flush().await.unwrap();
    s.ingest(vec![Sample::good(1, T0 + 2 * MIN, 20.0), Sample::good(1, T0 + 8 * MIN, 30.0)]).await.unwrap();
    let r = s
        .history(HistoryRequest {
            points: vec![1],
            from: T0,
            to: T0 + 20 * MIN,
            mode: HistoryMode::Aggregate { bucket_us: 10 * MIN, aggs: vec![Agg::Twa, Agg::Avg, Agg::Integral] },
            prior: false,
        })
        .await
        .unwrap();
    let series = &r.series[0];
    assert_eq!(series.ts, vec![T0, T0 + 10 * MIN]);
    assert_eq!(column(series, "twa"), vec![Some((10.0 * 2.0 + 20.0 * 6.0 + 30.0 * 2.0) / 10.0), Some(30.0)]);
    assert_eq!(column(series, "avg"), vec![Some(25.0), None]);
    assert_eq!(column(series, "integral")[1], Some(30.0 * 600.0));
}

#[tokio::test]
async fn interpolation_and_downsampling_through_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + DAY);
    let s = open(&config(dir.path()), &clock);
    let mut rows: Vec<Sample> = (0..5000).map(|i| Sample::good(2, T0 + i * 10_000_000, 20.0)).collect();
    rows[3333].value = 99.0;
    s.ingest(rows.clone()).await.unwrap();
    s.flush().await.unwrap();
    let r = s
        .history(HistoryRequest {
            points: vec![2],
            from: T0,
            to: T0 + 5000 * 10_000_000,
            mode: HistoryMode::Downsample { max_points: 100 },
            prior: false,
        })
        .await
        .unwrap();
    let v = column(&r.series[0], "value");
    assert!(v.len() <= 100);
    assert!(v.contains(&Some(99.0)), "the spike survives downsampling");
    let r = s
        .history(HistoryRequest {
            points: vec![2],
            from: T0 + 5_000_000,
            to: T0 + 25_000_000,
            mode: HistoryMode::Interpolate { step_us: 10_000_000, fill: Fill::Linear, max_gap_us: MIN },
            prior: false,
        })
        .await
        .unwrap();
    assert_eq!(r.series[0].ts, vec![T0 + 5_000_000, T0 + 15_000_000]);
    assert_eq!(column(&r.series[0], "value"), vec![Some(20.0), Some(20.0)]);
}

#[tokio::test]
async fn latest_values_come_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + DAY);
    let cfg = config(dir.path());
    {
        let s = open(&cfg, &clock);
        s.ingest(vec![Sample::good(1, T0, 1.0), Sample::good(1, T0 + MIN, 2.0), Sample::good(2, T0, 5.0)])
            .await
            .unwrap();
        assert_eq!(s.latest(&[1])[0].1.value, 2.0);
        s.shutdown().await.unwrap();
    }
    let s = open(&cfg, &clock);
    assert!(s.latest(&[]).is_empty());
    assert_eq!(s.load_latest().await.unwrap(), 2);
    let all = s.latest(&[]);
    assert_eq!(all.iter().map(|(p, l)| (*p, l.value)).collect::<Vec<_>>(), vec![(1, 2.0), (2, 5.0)]);
}

/// `[from, to)` with `from >= to` holds nothing: every mode answers its columns without rows, and
/// `prior` still finds the last row before `from`, through both readers.
#[tokio::test]
async fn an_empty_range_answers_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 3 * DAY);
    let s = open(&config(dir.path()), &clock);
    s.ingest(vec![Sample::good(1, T0 - MIN, 4.0), Sample::good(1, T0, 5.0)]).await.unwrap();
    s.flush().await.unwrap();
    s.ingest(vec![Sample::good(1, T0 + MIN, 6.0)]).await.unwrap();
    let modes = [
        (HistoryMode::Raw, vec!["value", "quality"]),
        (HistoryMode::Downsample { max_points: 4 }, vec!["value", "quality"]),
        (HistoryMode::Aggregate { bucket_us: MIN, aggs: vec![Agg::Avg, Agg::Twa] }, vec!["avg", "twa"]),
        (HistoryMode::Interpolate { step_us: MIN, fill: Fill::Linear, max_gap_us: DAY }, vec!["value"]),
    ];
    for path in [ReadPath::Direct, ReadPath::DuckDb] {
        for (from, to) in [(T0 + MIN, T0 + MIN), (T0 + 2 * MIN, T0 - DAY)] {
            for (mode, columns) in &modes {
                let prior = matches!(mode, HistoryMode::Raw | HistoryMode::Downsample { .. });
                let req = HistoryRequest { points: vec![2, 1, 2], from, to, mode: mode.clone(), prior };
                let r = s.history_with(req, path).await.unwrap();
                assert_eq!((r.from, r.to, r.partial), (from, to, false));
                assert_eq!(r.series.iter().map(|s| s.point_id).collect::<Vec<_>>(), vec![1, 2], "{mode:?}");
                for series in &r.series {
                    assert!(series.ts.is_empty(), "{mode:?} {path:?}: {series:?}");
                    let names: Vec<&str> = series.columns.iter().map(|(n, _)| n.as_str()).collect();
                    assert_eq!(&names, columns, "{mode:?}");
                }
                if prior {
                    // The last row before `from` (point 1 has rows; point 2 none).
                    let want = if from == T0 + MIN { (T0, 5.0) } else { (T0 + MIN, 6.0) };
                    let p = r.series[0].prior.unwrap().unwrap();
                    assert_eq!((p.ts, p.value), (want.0, Some(want.1)), "{mode:?} {path:?} from {from}");
                    assert_eq!(r.series[1].prior, Some(None));
                } else {
                    assert!(r.series.iter().all(|s| s.prior.is_none()));
                }
            }
        }
    }
}

#[tokio::test]
async fn a_damaged_file_is_quarantined_and_the_answer_is_partial() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 3 * DAY);
    let s = open(&config(dir.path()), &clock);
    // One file per day, so one of them can be damaged.
    s.set_sparse_day_rows(0);
    s.ingest(vec![Sample::good(1, T0, 1.0), Sample::good(1, T0 + DAY, 2.0)]).await.unwrap();
    s.flush().await.unwrap();
    let victim = s.live_files().iter().find(|f| f.meta.day == (T0 / DAY) as i32).unwrap().path.clone();
    let len = std::fs::metadata(&victim).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&victim).unwrap().set_len(len / 2).unwrap();
    let r = s
        .history(HistoryRequest { points: vec![1], from: T0, to: T0 + 2 * DAY, mode: HistoryMode::Raw, prior: false })
        .await
        .unwrap();
    assert!(r.partial);
    assert_eq!(r.series[0].ts, vec![T0 + DAY]);
    assert_eq!(s.live_files().len(), 1);
    assert_eq!(std::fs::read_dir(dir.path().join("quarantine")).unwrap().count(), 1);
}

#[derive(Debug, Clone)]
enum Op {
    Ingest(Vec<(usize, i64, f64, u8)>),
    Flush,
    Maintain,
}

/// The point ids the model test uses (indexed by the generated 0..4): the unsigned extremes too,
/// since the direct reader prunes by the stored (signed) statistics of the UInt32 column.
const MODEL_IDS: [u32; 4] = [0, 7, 2_147_483_648, u32::MAX];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(
            (0usize..4, 0i64..3 * 24 * 60, -50.0f64..50.0, prop_oneof![9 => Just(0xC0u8), 1 => Just(0x18u8)]),
            1..40
        ).prop_map(Op::Ingest),
        2 => Just(Op::Flush),
        1 => Just(Op::Maintain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever order and batching samples arrive in, with flushes and compactions in between,
    /// queries equal a naive in-memory model (last write wins), raw and aggregated. Single points
    /// and all four at once go through the direct reader (at most `DIRECT_MAX_POINTS`); every
    /// answer is also compared with the DuckDB reader's.
    #[test]
    fn queries_equal_a_naive_model(ops in proptest::collection::vec(op(), 1..12), bucket_min in 1i64..180) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let clock = ManualClock::new(T0 + 10 * DAY);
            let mut cfg = config(dir.path());
            cfg.compaction.min_files_per_day = 2;
            cfg.query.threads = 2;
            let s = open(&cfg, &clock);
            let mut model: BTreeMap<(u32, i64), (f64, u8)> = BTreeMap::new();
            for op in &ops {
                match op {
                    Op::Ingest(rows) => {
                        let batch: Vec<Sample> = rows
                            .iter()
                            .map(|&(p, m, v, q)| {
                                let v = if q == 0x18 { f64::NAN } else { v };
                                Sample::new(MODEL_IDS[p], T0 + m * MIN, v, Quality(q))
                            })
                            .collect();
                        for b in &batch {
                            model.insert((b.point_id.0, b.ts), (b.value, b.quality.0));
                        }
                        s.ingest(batch).await.unwrap();
                    }
                    Op::Flush => s.flush().await.unwrap(),
                    Op::Maintain => { s.maintain().await.unwrap(); }
                }
            }
            let (from, to) = (T0, T0 + 3 * DAY);
            let want_of = |p: u32| -> Vec<(i64, Option<f64>, u8)> {
                model
                    .range((p, i64::MIN)..=(p, i64::MAX))
                    .map(|(&(_, t), &(v, q))| (t, (!v.is_nan()).then_some(v), q))
                    .collect()
            };
            let both = |req: HistoryRequest| {
                let s = s.clone();
                async move {
                    let direct = s.history_with(req.clone(), ReadPath::Direct).await.unwrap();
                    let duck = s.history_with(req, ReadPath::DuckDb).await.unwrap();
                    (direct, duck)
                }
            };
            for p in MODEL_IDS {
                let want = want_of(p);
                prop_assert_eq!(raw(&s, p, from, to).await, want.clone());
                let req = HistoryRequest {
                    points: vec![p], from, to,
                    mode: HistoryMode::Aggregate { bucket_us: bucket_min * MIN, aggs: vec![Agg::Count, Agg::Max, Agg::Last] }, prior: false,
                };
                let r = s.history(req.clone()).await.unwrap();
                let (direct, duck) = both(req).await;
                prop_assert_eq!(&direct, &duck);
                prop_assert_eq!(&direct, &r);
                let series = &r.series[0];
                for (k, &b) in series.ts.iter().enumerate() {
                    let inside: Vec<f64> = want.iter()
                        .filter(|r| r.0 >= b && r.0 < b + bucket_min * MIN)
                        .filter_map(|r| r.1)
                        .collect();
                    prop_assert_eq!(column(series, "count")[k], Some(inside.len() as f64));
                    prop_assert_eq!(column(series, "last")[k], inside.last().copied());
                    let mx = inside.iter().copied().fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
                    prop_assert_eq!(column(series, "max")[k], mx);
                }
            }
            // All four points in one request, raw and with the value in force before each bucket.
            let req = HistoryRequest { points: MODEL_IDS.to_vec(), from: from + bucket_min * MIN, to, mode: HistoryMode::Raw, prior: false };
            let r = s.history(req.clone()).await.unwrap();
            for (series, p) in r.series.iter().zip(MODEL_IDS) {
                let want: Vec<i64> = want_of(p).iter().map(|r| r.0).filter(|&t| t >= from + bucket_min * MIN).collect();
                prop_assert_eq!(&series.ts, &want);
            }
            let (direct, duck) = both(req).await;
            prop_assert_eq!(&direct, &duck);
            for mode in [
                HistoryMode::Aggregate { bucket_us: bucket_min * MIN, aggs: Agg::ALL.to_vec() },
                HistoryMode::Interpolate { step_us: bucket_min * MIN, fill: Fill::Linear, max_gap_us: 3 * bucket_min * MIN },
                HistoryMode::Interpolate { step_us: bucket_min * MIN, fill: Fill::Step, max_gap_us: DAY },
                HistoryMode::Downsample { max_points: 8 },
            ] {
                let req = HistoryRequest { points: MODEL_IDS.to_vec(), from: from + 7 * bucket_min * MIN, to: to - DAY, mode, prior: false };
                let (direct, duck) = both(req).await;
                prop_assert_eq!(direct, duck);
            }
            Ok(())
        })?;
    }
}
