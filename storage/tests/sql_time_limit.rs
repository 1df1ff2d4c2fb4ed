//! The SQL time limit bounds the whole request, however many files the store holds: a store of
//! thousands of one-sample days (one Parquet file each) answers within a bounded time of the limit,
//! and a query that cannot finish in time is answered with a time-out error, not run to its end.

use crate::common::*;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use t3_core::Sample;
use t3_core::clock::ManualClock;
use t3_storage::Error;
use t3_storage::vfs::{VFile, Vfs};

/// The operating system's files without fsync: this test writes thousands of files and is about
/// queries, not durability.
#[derive(Debug)]
struct NoSyncFs;

#[derive(Debug)]
struct NoSyncFile(std::fs::File);

impl Write for NoSyncFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl VFile for NoSyncFile {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Vfs for NoSyncFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn VFile>> {
        Ok(Box::new(NoSyncFile(std::fs::File::create(path)?)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}

const DAYS: i64 = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_time_limit_holds_over_thousands_of_day_files() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + DAY);
    let mut cfg = config(dir.path());
    cfg.query.sql_timeout_ms = 2000;
    // Such a batch is now refused by default (ingest.max_days_per_batch); the store can still come
    // to hold this many days over time.
    cfg.ingest.max_days_per_batch = DAYS as u32;
    let limit = Duration::from_millis(cfg.query.sql_timeout_ms);
    // Generous: the limit, the time a cancelled query is given to stop, and a loaded machine.
    let bound = limit + Duration::from_secs(2);
    let s = open_with(&cfg, &clock, Arc::new(NoSyncFs));
    // One file per day: the layout that made SQL slow before multi-day files.
    s.set_sparse_day_rows(0);
    // One sample a day for DAYS days, one file each (as one POST spread over that many days does).
    s.ingest((0..DAYS).map(|d| Sample::good(1, T0 - d * DAY + MIN, d as f64)).collect()).await.unwrap();
    s.flush().await.unwrap();
    assert_eq!(file_count(&s), DAYS as usize);
    // A buffered sample in a day that has a file: that day must be de-duplicated.
    s.ingest(vec![Sample::good(1, T0 - 5 * DAY + MIN, -1.0)]).await.unwrap();

    let queries = [
        // Whatever it costs to set up the views over DAYS files, this one cannot finish in time.
        "SELECT count(*) FROM samples a, samples b, samples c WHERE a.value + b.value + c.value < -5",
        "SELECT a.ts, b.ts, c.value FROM samples a, samples b, samples c ORDER BY a.value * b.value - c.value LIMIT 3",
    ];
    for sql in queries {
        let started = Instant::now();
        let answer = tokio::time::timeout(bound * 10, s.sql(sql)).await;
        let took = started.elapsed();
        let answer = answer.unwrap_or_else(|_| panic!("`{sql}`: no answer after {took:?} (limit {limit:?})"));
        assert!(took <= bound, "`{sql}`: answered after {took:?}; the limit is {limit:?}");
        match answer {
            Err(Error::Timeout(ms)) => assert_eq!(ms, cfg.query.sql_timeout_ms),
            other => panic!("`{sql}`: expected a time-out after {limit:?}, got {other:?} after {took:?}"),
        }
        let message = Error::Timeout(cfg.query.sql_timeout_ms).to_string();
        assert!(message.contains("time limit"), "{message}");
    }

    // Simple queries over every file either answer or time out, always within the bound, and
    // with a limit that leaves room they answer correctly (the buffered row wins its day).
    for sql in ["SELECT count(*) FROM samples", "SELECT min(value), max(ts) FROM samples"] {
        let started = Instant::now();
        let answer = tokio::time::timeout(bound * 10, s.sql(sql)).await;
        let took = started.elapsed();
        let answer = answer.unwrap_or_else(|_| panic!("`{sql}`: no answer after {took:?} (limit {limit:?})"));
        assert!(took <= bound, "`{sql}`: answered after {took:?}; the limit is {limit:?}");
        assert!(matches!(answer, Ok(_) | Err(Error::Timeout(_))), "`{sql}`: {answer:?}");
    }
    drop(s);
    let mut cfg = cfg.clone();
    cfg.query.sql_timeout_ms = 60_000;
    let s = open_with(&cfg, &clock, Arc::new(NoSyncFs));
    let r = s.sql("SELECT count(*), min(value), count(DISTINCT ts::DATE) FROM samples").await.unwrap();
    assert_eq!(r.rows, vec![vec![serde_json::json!(DAYS), serde_json::json!(-1.0), serde_json::json!(DAYS)]]);
}
