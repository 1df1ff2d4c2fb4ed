use crate::common::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use t3_core::clock::ManualClock;
use t3_core::{Quality, Sample};
use t3_storage::analytics::{Agg, Fill};
use t3_storage::{HistoryMode, HistoryRequest};

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

#[tokio::test]
async fn a_damaged_file_is_quarantined_and_the_answer_is_partial() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 3 * DAY);
    let s = open(&config(dir.path()), &clock);
    s.ingest(vec![Sample::good(1, T0, 1.0), Sample::good(1, T0 + DAY, 2.0)]).await.unwrap();
    s.flush().await.unwrap();
    let victim = s.live_files().iter().find(|f| f.meta.day == (T0 / DAY) as i32).unwrap().path.clone();
    let len = std::fs::metadata(&victim).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&victim).unwrap().set_len(len / 2).unwrap();
    let r = s
        .history(HistoryRequest { points: vec![1], from: T0, to: T0 + 2 * DAY, mode: HistoryMode::Raw })
        .await
        .unwrap();
    assert!(r.partial);
    assert_eq!(r.series[0].ts, vec![T0 + DAY]);
    assert_eq!(s.live_files().len(), 1);
    assert_eq!(std::fs::read_dir(dir.path().join("quarantine")).unwrap().count(), 1);
}

#[derive(Debug, Clone)]
enum Op {
    Ingest(Vec<(u32, i64, f64, u8)>),
    Flush,
    Maintain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(
            (0u32..4, 0i64..3 * 24 * 60, -50.0f64..50.0, prop_oneof![9 => Just(0xC0u8), 1 => Just(0x18u8)]),
            1..40
        ).prop_map(Op::Ingest),
        2 => Just(Op::Flush),
        1 => Just(Op::Maintain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever order and batching samples arrive in, with flushes and compactions in between,
    /// queries equal a naive in-memory model (last write wins), raw and aggregated.
    #[test]
    fn queries_equal_a_naive_model(ops in proptest::collection::vec(op(), 1..12), bucket_min in 1i64..180) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let clock = ManualClock::new(T0 + 10 * DAY);
            let mut cfg = config(dir.path());
            cfg.compaction.min_files_per_day = 2;
            let s = open(&cfg, &clock);
            let mut model: BTreeMap<(u32, i64), (f64, u8)> = BTreeMap::new();
            for op in &ops {
                match op {
                    Op::Ingest(rows) => {
                        let batch: Vec<Sample> = rows
                            .iter()
                            .map(|&(p, m, v, q)| {
                                let v = if q == 0x18 { f64::NAN } else { v };
                                Sample::new(p, T0 + m * MIN, v, Quality(q))
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
            for p in 0u32..4 {
                let want: Vec<(i64, Option<f64>, u8)> = model
                    .range((p, i64::MIN)..(p + 1, i64::MIN))
                    .map(|(&(_, t), &(v, q))| (t, (!v.is_nan()).then_some(v), q))
                    .collect();
                prop_assert_eq!(raw(&s, p, from, to).await, want.clone());
                let r = s.history(HistoryRequest {
                    points: vec![p], from, to,
                    mode: HistoryMode::Aggregate { bucket_us: bucket_min * MIN, aggs: vec![Agg::Count, Agg::Max, Agg::Last] },
                }).await.unwrap();
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
            Ok(())
        })?;
    }
}
