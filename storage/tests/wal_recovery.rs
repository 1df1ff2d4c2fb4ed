//! WAL recovery through the engine: a log that cannot create its segment (a full disk at start-up)
//! leaves the engine read-only until it can, without a restart.

use crate::common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use t3_core::Sample;
use t3_storage::vfs::FaultyFs;
use t3_storage::{Error, WriteState};

fn batch(b: i64, n: i64) -> Vec<Sample> {
    (0..n).map(|i| Sample::good(1, T0 + (b * n + i) * MIN, (b * n + i) as f64)).collect()
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
