//! Crash safety: SIGKILL during concurrent ingest, with Parquet flushes happening mid-ingest, then
//! restart on the same data directory. Every acknowledged sample must be there exactly once with
//! its value; every batch is all or nothing; nothing that was never sent appears.

use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use t3_tests::*;
use tokio::sync::Notify;

const ROUNDS: usize = 5;
const CLIENTS: usize = 4;
const BATCH: usize = 500;
/// Batch `k` covers `[BASE_TS + k * SLOT, BASE_TS + k * SLOT + BATCH s)`: keys never collide and a
/// few hundred batches span several days, so flushes write several day files.
const SLOT: i64 = 10 * MINUTE_US;

const CONFIG: &str = r#"
[storage]
flush_rows = 2000
flush_interval_secs = 1
[wal]
group_commit_max_delay_ms = 5
[query]
sql_max_rows = 5000000
"#;

fn point_of(k: u64) -> u32 {
    1 + (k % 8) as u32
}

fn value_of(k: u64, i: usize) -> f64 {
    k as f64 * 1000.0 + i as f64 + 0.25
}

fn batch(k: u64) -> Vec<Sample> {
    (0..BATCH)
        .map(|i| Sample::good(point_of(k), BASE_TS + k as i64 * SLOT + i as i64 * SECOND_US, value_of(k, i)))
        .collect()
}

/// Which batch and index a stored sample claims to be.
fn key_of(s: &Sample) -> Option<(u64, usize)> {
    let off = s.ts - BASE_TS;
    if off < 0 {
        return None;
    }
    let (k, rest) = ((off / SLOT) as u64, off % SLOT);
    if rest % SECOND_US != 0 || rest / SECOND_US >= BATCH as i64 {
        return None;
    }
    Some((k, (rest / SECOND_US) as usize))
}

#[derive(Debug, Default)]
struct Ledger {
    /// Batches sent (acknowledged or not).
    sent: BTreeSet<u64>,
    /// Batches that got a 200.
    acked: BTreeSet<u64>,
}

/// Checks what the server holds against the ledger; returns the stored row count.
async fn verify(server: &TestServer, ledger: &Ledger, round: usize) -> usize {
    let stored = server.all_samples().await;
    let mut per_batch: HashMap<u64, usize> = HashMap::new();
    for s in &stored {
        let (k, i) = key_of(s).unwrap_or_else(|| panic!("round {round}: stored sample {s:?} was never sent"));
        assert!(ledger.sent.contains(&k), "round {round}: stored sample {s:?} belongs to batch {k}, never sent");
        assert_eq!(s.point_id, point_of(k), "round {round}: wrong point for {s:?}");
        assert_eq!(s.value, value_of(k, i), "round {round}: wrong value for {s:?}");
        assert_eq!(s.quality, 192, "round {round}: wrong quality for {s:?}");
        *per_batch.entry(k).or_default() += 1;
    }
    let keys: HashSet<(u32, i64)> = stored.iter().map(|s| (s.point_id, s.ts)).collect();
    assert_eq!(keys.len(), stored.len(), "round {round}: duplicate (point_id, ts) rows in the samples view");
    for k in &ledger.acked {
        let n = per_batch.get(k).copied().unwrap_or(0);
        assert_eq!(n, BATCH, "round {round}: acknowledged batch {k} has {n} of {BATCH} samples after the crash");
    }
    for (k, n) in &per_batch {
        assert_eq!(*n, BATCH, "round {round}: batch {k} (acked: {}) is torn: {n} of {BATCH}", ledger.acked.contains(k));
    }
    let rows = server.sql("SELECT count(*) = count(DISTINCT (point_id, ts)), count(*) FROM samples").await;
    assert_eq!(rows[0][0], serde_json::json!(true), "round {round}: duplicates by SQL: {rows:?}");
    assert_eq!(rows[0][1].as_u64(), Some(stored.len() as u64), "round {round}: count(*) disagrees with the rows");
    stored.len()
}

/// A kill can tear the WAL record being written (never an acknowledged one: `verify` checks that),
/// and nothing else: Parquet files and the manifest are published atomically.
fn assert_crash_damage_only(rec: &serde_json::Value, round: usize) {
    for d in rec["dropped"].as_array().expect("dropped") {
        let d = d.as_str().unwrap_or_default();
        assert!(
            d.starts_with("WAL segment") && d.contains("torn"),
            "round {round}: unexpected damage: {}",
            pretty(rec)
        );
    }
    for q in rec["quarantined"].as_array().expect("quarantined") {
        let q = q.as_str().unwrap_or_default();
        assert!(q.ends_with(".wal"), "round {round}: a data file was quarantined after a crash: {}", pretty(rec));
    }
}

/// When to kill the server.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// SIGKILL once this many batches were acknowledged.
    AfterAcks(usize),
    /// SIGKILL after this long.
    After(Duration),
    /// SIGTERM after the first duration, SIGKILL the second after it (during the shutdown flush).
    DuringShutdown(Duration, Duration),
}

/// Posts batches from `CLIENTS` tasks until the server dies; kills it as `kill` says.
async fn ingest_until_killed(server: &mut TestServer, ledger: &mut Ledger, next: &Arc<AtomicU64>, kill: Kill) {
    let kill_after = match kill {
        Kill::AfterAcks(n) => n,
        _ => usize::MAX,
    };
    let acked = Arc::new(AtomicUsize::new(0));
    let reached = Arc::new(Notify::new());
    let url = server.url("/api/t3000/samples");
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, url, next, acked, reached) =
            (server.client.clone(), url.clone(), next.clone(), acked.clone(), reached.clone());
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            let mut ok = Vec::new();
            let mut unexpected = Vec::new();
            // Bounded: the server is killed after `kill_after` acks; this is a safety net.
            for _ in 0..10_000 {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let body = samples_json(&batch(k));
                sent.push(k);
                match client.post(&url).json(&body).send().await {
                    Ok(resp) if resp.status() == StatusCode::OK => {
                        let v: serde_json::Value = match resp.json().await {
                            Ok(v) => v,
                            // The reply was cut by the kill: not known to be acknowledged.
                            Err(_) => break,
                        };
                        assert_eq!(v["accepted"], serde_json::json!(BATCH), "reply {v}");
                        ok.push(k);
                        if acked.fetch_add(1, Ordering::SeqCst) + 1 == kill_after {
                            reached.notify_one();
                        }
                    }
                    Ok(resp) => {
                        unexpected.push(format!(
                            "batch {k}: {} {}",
                            resp.status(),
                            resp.text().await.unwrap_or_default()
                        ));
                        break;
                    }
                    // Connection refused / reset: the server is gone.
                    Err(_) => break,
                }
            }
            (sent, ok, unexpected)
        }));
    }
    match kill {
        Kill::AfterAcks(_) => {
            tokio::time::timeout(Duration::from_secs(120), reached.notified()).await.unwrap_or_else(|_| {
                panic!("{kill_after} acknowledgements did not arrive in 120 s:\n{}", server.stderr())
            });
        }
        // A pause that only picks the moment of the kill; nothing depends on what happened by then.
        Kill::After(d) => tokio::time::sleep(d).await,
        Kill::DuringShutdown(d, grace) => {
            tokio::time::sleep(d).await;
            server.send_sigterm();
            tokio::time::sleep(grace).await;
        }
    }
    // Requests are in flight while the process dies.
    server.kill9();
    let mut unexpected = Vec::new();
    for t in tasks {
        let (sent, ok, bad) = t.await.expect("client task");
        ledger.sent.extend(sent);
        ledger.acked.extend(ok);
        unexpected.extend(bad);
    }
    assert!(unexpected.is_empty(), "non-200 replies before the kill: {unexpected:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_ingest_loses_no_acknowledged_sample() {
    let seed: u64 = std::env::var("T3000_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("crash test seed {seed} (rerun with T3000_TEST_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut server = TestServer::start(CONFIG);
    let next = Arc::new(AtomicU64::new(0));
    let mut ledger = Ledger::default();
    let mut recovery_times = Vec::new();
    for round in 1..=ROUNDS {
        let kill_after = rng.random_range(5..=40);
        let acked_before = ledger.acked.len();
        ingest_until_killed(&mut server, &mut ledger, &next, Kill::AfterAcks(kill_after)).await;
        let files_at_kill = manifest_files(&server.data_dir).len();
        server.restart();
        let health = server.health().await;
        let rec = &health["recovery"];
        recovery_times.push(server.startup);
        eprintln!(
            "round {round}: killed after {kill_after} acks ({} acked in total, {} sent, {files_at_kill} files); \
             recovery took {:?} to listening (engine {} ms), replayed {} samples from {} segments, dropped {}",
            ledger.acked.len(),
            ledger.sent.len(),
            server.startup,
            rec["duration_ms"],
            rec["samples_replayed"],
            rec["wal_segments_replayed"],
            rec["dropped"],
        );
        assert!(ledger.acked.len() >= acked_before + kill_after, "the ledger lost acknowledgements");
        assert_crash_damage_only(rec, round);
        let rows = verify(&server, &ledger, round).await;
        assert!(rows >= ledger.acked.len() * BATCH);
    }

    final_check(&mut server, &ledger).await;
    let max = recovery_times.iter().max().copied().unwrap_or_default();
    eprintln!("crash test: {ROUNDS} rounds, {} batches acknowledged, max recovery {max:?}", ledger.acked.len());
}

/// A graceful stop persists everything: the Parquet files alone hold every row exactly once, and
/// say the same as the server after a restart.
async fn final_check(server: &mut TestServer, ledger: &Ledger) {
    server.stop();
    let in_wal: Vec<_> = wal_segments(&server.data_dir).into_iter().filter(|s| s.2 > 16).collect();
    assert!(in_wal.is_empty(), "WAL segments with records after a graceful stop: {in_wal:?}");
    let mut seen: BTreeMap<(u32, i64), f64> = BTreeMap::new();
    let mut total_rows = 0u64;
    for f in manifest_files(&server.data_dir).iter().filter(|f| f.table == "samples") {
        let rows = read_parquet_samples(&server.data_dir.join(&f.rel_path)).expect("read a live Parquet file");
        assert_eq!(rows.len() as u64, f.rows, "{}: the manifest's row count", f.rel_path.display());
        total_rows += f.rows;
        for s in rows {
            if let Some(prev) = seen.insert((s.point_id, s.ts), s.value) {
                panic!("({}, {}) is stored twice on disk (values {prev} and {})", s.point_id, s.ts, s.value);
            }
        }
    }
    server.restart();
    let stored = verify(server, ledger, usize::MAX).await;
    assert_eq!(stored as u64, total_rows, "the Parquet files and the samples view disagree");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_compaction_rollups_and_shutdown() {
    let seed: u64 = std::env::var("T3000_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("compaction crash test seed {seed} (rerun with T3000_TEST_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Small flushes make many files per day; maintenance every second compacts them and builds rollups.
    let mut server = TestServer::start(
        r#"
        [storage]
        flush_rows = 1000
        flush_interval_secs = 1
        [wal]
        group_commit_max_delay_ms = 5
        [compaction]
        interval_secs = 1
        min_files_per_day = 2
        [retention]
        check_interval_secs = 1
        [query]
        sql_max_rows = 5000000
        "#,
    );
    let next = Arc::new(AtomicU64::new(0));
    let mut ledger = Ledger::default();
    let mut compacted = 0;
    for round in 1..=6 {
        let kill = if round % 2 == 0 {
            Kill::DuringShutdown(
                Duration::from_millis(rng.random_range(200..1500)),
                Duration::from_millis(rng.random_range(0..40)),
            )
        } else {
            Kill::After(Duration::from_millis(rng.random_range(300..1500)))
        };
        ingest_until_killed(&mut server, &mut ledger, &next, kill).await;
        compacted += server
            .stderr()
            .lines()
            .filter(|l| {
                l.contains("maintenance pass") && l.contains("days_compacted") && !l.contains("days_compacted: 0")
            })
            .count();
        server.restart();
        let rec = server.health().await["recovery"].clone();
        eprintln!(
            "round {round}: {kill:?}; {} acked, {} sent; recovery {:?}, replayed {}, dropped {}",
            ledger.acked.len(),
            ledger.sent.len(),
            server.startup,
            rec["samples_replayed"],
            rec["dropped"]
        );
        assert_crash_damage_only(&rec, round);
        verify(&server, &ledger, round).await;
    }
    eprintln!("maintenance passes that compacted a day: at least {compacted}");
    final_check(&mut server, &ledger).await;
}
