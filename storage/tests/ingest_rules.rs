//! What one ingested batch may hold besides valid samples: no time stamp past the future window of
//! the storage clock (`ingest.max_future_secs`), no more UTC days than `ingest.max_days_per_batch`.

use crate::common::*;
use t3_core::Sample;
use t3_core::clock::ManualClock;
use t3_storage::Error;

const SEC: i64 = 1_000_000;

#[tokio::test]
async fn time_stamps_past_the_future_window_of_the_storage_clock_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = open(&config(dir.path()), &clock);
    let edge = T0 + 300 * SEC;
    s.ingest(vec![Sample::good(1, T0, 1.0), Sample::good(1, edge, 2.0)]).await.unwrap();
    let err = s.ingest(vec![Sample::good(1, T0, 3.0), Sample::good(1, edge + 1, 4.0)]).await.unwrap_err();
    match &err {
        Error::AheadOfClock { index: 1, reason } => {
            assert!(reason.contains("ingest.max_future_secs = 300"), "{reason}");
            assert!(reason.contains("2026-11-26T00:05:00.000001Z"), "{reason}");
        }
        other => panic!("{other}"),
    }
    assert!(err.is_client_error());
    assert_eq!(raw(&s, 1, T0, T0 + DAY).await.len(), 2, "nothing of the refused batch is stored");
    // The window moves with the clock.
    clock.advance(SEC);
    s.ingest(vec![Sample::good(1, edge + 1, 4.0)]).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.ingest.max_future_secs = 0;
    let s = open(&cfg, &clock);
    let now = T0 + SEC;
    s.ingest(vec![Sample::good(1, now, 1.0)]).await.unwrap();
    assert!(matches!(s.ingest(vec![Sample::good(1, now + 1, 1.0)]).await, Err(Error::AheadOfClock { index: 0, .. })));
}

#[tokio::test]
async fn a_batch_on_too_many_days_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = open(&config(dir.path()), &clock);
    let days =
        |n: i64, from: i64| -> Vec<Sample> { (0..n).map(|d| Sample::good(2, from + d * DAY + MIN, 1.0)).collect() };
    s.ingest(days(31, T0 - 40 * DAY)).await.unwrap();
    // Out of order and repeated days count once each.
    let mut batch = days(32, T0 - 40 * DAY);
    batch.extend(days(32, T0 - 40 * DAY));
    batch.reverse();
    let err = s.ingest(batch).await.unwrap_err();
    assert!(matches!(err, Error::TooManyDays { days: 32, limit: 31 }), "{err}");
    assert!(err.to_string().contains("32 distinct UTC days"), "{err}");
    assert!(err.is_client_error());
    assert_eq!(raw(&s, 2, T0 - 41 * DAY, T0).await.len(), 31);
    // Many samples on one day are one day.
    s.ingest((0..1440).map(|m| Sample::good(3, T0 - DAY + m * MIN, 1.0)).collect()).await.unwrap();
    // The limit is configurable.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.ingest.max_days_per_batch = 1;
    let s = open(&cfg, &clock);
    s.ingest(days(1, T0 - DAY)).await.unwrap();
    assert!(matches!(s.ingest(days(2, T0 - 2 * DAY)).await, Err(Error::TooManyDays { days: 2, limit: 1 })));
}
