//! "A duplicate keeps the last written value" under every interleaving of ingest, flush,
//! compaction, retention and deletion: the newest acknowledged value of each (point, ts) is what
//! every query answers, before and after a restart.

use crate::common::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use t3_core::Sample;
use t3_core::clock::ManualClock;
use t3_core::config::PointRetention;
use t3_storage::Storage;
use t3_storage::maintenance::TestHook;

const POINTS: u32 = 20;
const TIMES: i64 = 30;

fn round(v: f64) -> Vec<Sample> {
    (0..POINTS).flat_map(|p| (0..TIMES).map(move |t| Sample::good(p, T0 + t * MIN, v))).collect()
}

/// Every stored value of the keys `round` writes, as (point, ts) -> value.
async fn stored(s: &Storage) -> BTreeMap<(u32, i64), f64> {
    let mut out = BTreeMap::new();
    for p in 0..POINTS {
        for (t, v, _) in raw(s, p, T0 - DAY, T0 + 2 * DAY).await {
            out.insert((p, t), v.unwrap());
        }
    }
    out
}

fn expect_all(m: &BTreeMap<(u32, i64), f64>, v: f64, when: &str) {
    assert_eq!(m.len(), (POINTS as i64 * TIMES) as usize, "{when}: rows");
    let wrong: Vec<_> = m.iter().filter(|(_, x)| **x != v).take(5).collect();
    assert!(wrong.is_empty(), "{when}: expected every value {v}, found e.g. {wrong:?}");
}

/// Runs a flush of `round(v)` from inside maintenance at `hook`.
fn flush_at(s: &Storage, hook: TestHook, v: f64) {
    let inner = s.clone();
    let handle = tokio::runtime::Handle::current();
    let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    s.set_test_hook(
        hook,
        Some(Arc::new(move || {
            // Once: the rewrite of the flushed file would call it again.
            if fired.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            handle.block_on(async {
                inner.ingest(round(v)).await.unwrap();
                inner.flush().await.unwrap();
            })
        })),
    );
}

/// The reproduction of the rollback: a flush published while a compaction pass runs carries newer
/// values than the compaction's inputs, and must win over the compaction's output, which is
/// written (and numbered) after it. Checked at every point a flush can fall into a rewrite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_during_compaction_keeps_the_newest_values() {
    for hook in [TestHook::RewriteInputsChosen, TestHook::RewriteWritten] {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(T0 + 2 * DAY);
        let mut cfg = config(dir.path());
        cfg.compaction.min_files_per_day = 2;
        let s = open(&cfg, &clock);
        s.ingest(round(1.0)).await.unwrap();
        s.flush().await.unwrap();
        s.ingest(round(2.0)).await.unwrap();
        s.flush().await.unwrap();
        flush_at(&s, hook, 3.0);
        s.maintain().await.unwrap();
        expect_all(&stored(&s).await, 3.0, &format!("{hook:?}: after the pass"));
        // The next pass compacts the flushed file with the first pass's output.
        s.set_test_hook(hook, None);
        s.maintain().await.unwrap();
        expect_all(&stored(&s).await, 3.0, &format!("{hook:?}: after the next pass"));
        s.shutdown().await.unwrap();
        drop(s);
        let s = open(&cfg, &clock);
        expect_all(&stored(&s).await, 3.0, &format!("{hook:?}: after a restart"));
        assert_eq!(file_count(&s), 1, "{hook:?}: one file per day after compaction");
        s.shutdown().await.unwrap();
    }
}

/// The same for a retention rewrite (a per-point override drops one point from the day) and for a
/// deletion, which rewrite a day the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_during_a_retention_rewrite_or_a_deletion_keeps_the_newest_values() {
    for deletion in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(T0 + 20 * DAY);
        let mut cfg = config(dir.path());
        cfg.compaction.enabled = false;
        let s = open(&cfg, &clock);
        // A point outside the others, whose rows the rewrite removes.
        let doomed = POINTS + 1;
        s.ingest(vec![Sample::good(doomed, T0, 9.0)]).await.unwrap();
        s.ingest(round(1.0)).await.unwrap();
        s.flush().await.unwrap();
        flush_at(&s, TestHook::RewriteInputsChosen, 2.0);
        if deletion {
            assert_eq!(s.delete_samples(doomed, T0, T0 + 1).await.unwrap(), 1);
        } else {
            s.set_point_retention(vec![PointRetention { points: vec![doomed], max_age_days: 1 }]);
            assert_eq!(s.maintain().await.unwrap().days_rewritten_for_retention, 1);
        }
        expect_all(&stored(&s).await, 2.0, &format!("deletion={deletion}"));
        assert!(raw(&s, doomed, T0 - DAY, T0 + DAY).await.is_empty(), "deletion={deletion}: the rows are gone");
        s.shutdown().await.unwrap();
    }
}

/// A randomized run against the real engine: rounds of overwrites of random keys, flushes,
/// maintenance passes (compaction with a low threshold, retention of one point, rollups) with
/// flushes falling into them at random points, and restarts, all checked against a model after
/// every step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_interleavings_match_a_model() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("T3000_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_0001);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 3 * DAY);
    let mut cfg = config(dir.path());
    cfg.compaction.min_files_per_day = 2;
    let mut s = open(&cfg, &clock);
    let mut model: BTreeMap<(u32, i64), f64> = BTreeMap::new();
    let keys: Vec<(u32, i64)> = (0..POINTS).flat_map(|p| (0..TIMES).map(move |t| (p, T0 + t * MIN))).collect();
    let mut value = 0.0;
    for step in 0..120 {
        let op = rng.random_range(0..10);
        match op {
            0..=4 => {
                value += 1.0;
                let n = rng.random_range(1..keys.len());
                let batch: Vec<Sample> = (0..n)
                    .map(|_| keys[rng.random_range(0..keys.len())])
                    .map(|(p, t)| Sample::good(p, t, value))
                    .collect();
                for x in &batch {
                    model.insert((x.point_id.0, x.ts), value);
                }
                s.ingest(batch).await.unwrap();
            }
            5 | 6 => s.flush().await.unwrap(),
            7 | 8 => {
                let hook = if rng.random_bool(0.5) { TestHook::RewriteInputsChosen } else { TestHook::RewriteWritten };
                value += 1.0;
                let (p, t) = keys[rng.random_range(0..keys.len())];
                model.insert((p, t), value);
                let (inner, handle, v) = (s.clone(), tokio::runtime::Handle::current(), value);
                let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let once = fired.clone();
                s.set_test_hook(
                    hook,
                    Some(Arc::new(move || {
                        if !once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                            handle.block_on(async {
                                inner.ingest(vec![Sample::good(p, t, v)]).await.unwrap();
                                inner.flush().await.unwrap();
                            })
                        }
                    })),
                );
                s.maintain().await.unwrap();
                s.set_test_hook(hook, None);
                if !fired.load(std::sync::atomic::Ordering::SeqCst) {
                    // Nothing was rewritten this pass: write the value now.
                    s.ingest(vec![Sample::good(p, t, v)]).await.unwrap();
                }
            }
            _ => {
                s.shutdown().await.unwrap();
                drop(s);
                s = open(&cfg, &clock);
            }
        }
        let got = stored(&s).await;
        if got != model {
            let diff: Vec<_> = model.iter().filter(|(k, v)| got.get(k) != Some(v)).take(5).collect();
            panic!("seed {seed}, step {step} (op {op}): {} keys differ from the model, e.g. {diff:?}", {
                model.iter().filter(|(k, v)| got.get(k) != Some(v)).count()
            });
        }
    }
    s.shutdown().await.unwrap();
}

/// Real concurrency: one task writes rounds of overwrites while another runs flushes and
/// maintenance passes as fast as it can; every key ends at the last acknowledged value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ingest_flush_and_compaction_keep_the_last_value() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 2 * DAY);
    let mut cfg = config(dir.path());
    cfg.compaction.min_files_per_day = 2;
    let s = open(&cfg, &clock);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (s, stop) = (s.clone(), stop.clone());
        tokio::spawn(async move {
            let mut passes = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                s.flush().await.unwrap();
                s.maintain().await.unwrap();
                passes += 1;
                tokio::task::yield_now().await;
            }
            passes
        })
    };
    let rounds = 200;
    for r in 1..=rounds {
        s.ingest(round(r as f64)).await.unwrap();
        if r % 10 == 0 {
            tokio::task::yield_now().await;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let passes = churn.await.unwrap();
    assert!(passes > 1, "maintenance ran during the writes ({passes} passes)");
    s.maintain().await.unwrap();
    expect_all(&stored(&s).await, rounds as f64, "after the run");
    s.shutdown().await.unwrap();
    drop(s);
    let s = open(&cfg, &clock);
    s.maintain().await.unwrap();
    expect_all(&stored(&s).await, rounds as f64, "after a restart and a pass");
    s.shutdown().await.unwrap();
}
