//! Damaged files: torn and bit-flipped WAL segments, damaged WAL records and record headers, a
//! truncated segment header, a truncated Parquet file found at start-up, and a Parquet file damaged
//! while the server runs. The server must start, say what it lost (in samples), keep everything
//! else (every intact WAL record after a damaged one too), and never serve damaged data.

use serde_json::{Value, json};
use std::fs::OpenOptions;
use std::path::Path;
use t3_tests::*;

/// Nothing is flushed to Parquet while the test runs: the data lives in the WAL only.
/// No flush but the one at a graceful stop, and one file per day (the tests damage one day's file).
const WAL_ONLY: &str = r#"
[storage]
flush_rows = 50000000
flush_interval_secs = 86400
sparse_day_rows = 0
"#;

const BATCH: usize = 10;

/// Batch `b`: point 1, ten samples one second apart starting at `BASE_TS + b minutes`.
fn batch(b: usize) -> Vec<Sample> {
    (0..BATCH)
        .map(|i| Sample::good(1, BASE_TS + b as i64 * MINUTE_US + i as i64 * SECOND_US, (b * 100 + i) as f64 + 0.5))
        .collect()
}

fn batches(range: std::ops::Range<usize>) -> Vec<Sample> {
    range.flat_map(batch).collect()
}

/// The last WAL segment that holds records (more than its 16-byte header).
fn last_segment_with_records(data_dir: &Path) -> (u64, std::path::PathBuf, u64) {
    wal_segments(data_dir)
        .into_iter()
        .rev()
        .find(|s| s.2 > 16)
        .unwrap_or_else(|| panic!("no WAL segment with records in {}", data_dir.display()))
}

fn dropped_lines(health: &Value) -> Vec<String> {
    health["recovery"]["dropped"]
        .as_array()
        .unwrap_or_else(|| panic!("recovery.dropped is not an array: {health}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect()
}

fn quarantined(health: &Value) -> Vec<String> {
    health["recovery"]["quarantined"]
        .as_array()
        .unwrap_or_else(|| panic!("recovery.quarantined is not an array: {health}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect()
}

/// Asserts some line of `recovery.dropped` names WAL segment `seq`.
fn assert_names_segment(health: &Value, seq: u64) {
    let lines = dropped_lines(health);
    let name = format!("{seq:020}.wal");
    assert!(
        lines.iter().any(|l| l.contains(&format!("WAL segment {seq}")) || l.contains(&name)),
        "recovery.dropped does not name segment {seq}: {}",
        pretty(&health["recovery"])
    );
}

async fn ingest_batches(server: &TestServer, range: std::ops::Range<usize>) {
    // One request each, awaited: one WAL record per batch.
    for b in range {
        server.ingest_ok(&batch(b)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_last_wal_record_loses_only_that_batch() {
    let mut server = TestServer::start(WAL_ONLY);
    ingest_batches(&server, 0..5).await;
    server.kill9();
    assert!(manifest_files(&server.data_dir).is_empty(), "nothing should have reached Parquet");
    let (seq, path, size) = last_segment_with_records(&server.data_dir);
    let records = wal_records(&std::fs::read(&path).unwrap());
    assert_eq!(records.len(), 5, "one WAL record per acknowledged request");
    OpenOptions::new().write(true).open(&path).unwrap().set_len(size - 3).unwrap();

    server.restart();
    let health = server.health().await;
    assert_eq!(health["status"], json!("ok"));
    assert_names_segment(&health, seq);
    assert_eq!(health["recovery"]["samples_replayed"], json!(4 * BATCH), "{}", pretty(&health["recovery"]));
    assert_eq!(server.all_samples().await, batches(0..4), "all but the torn batch");
    // What every crash during a write leaves: reported as a torn tail, not as damage.
    assert_eq!(health["recovery"]["wal_torn_samples"], json!(BATCH), "{}", pretty(&health["recovery"]));
    assert_eq!(health["recovery"]["wal_samples_lost"], json!(0), "{}", pretty(&health["recovery"]));
    assert!(dropped_lines(&health).iter().all(|l| l.contains("torn tail")), "{}", pretty(&health["recovery"]));
    assert!(quarantined(&health).is_empty(), "a torn tail is not quarantined: {}", pretty(&health["recovery"]));
    assert!(list_files(&server.data_dir.join("quarantine")).is_empty());

    // The log goes on: new writes after the torn tail are kept across a graceful restart.
    server.ingest_ok(&batch(7)).await;
    server.stop();
    server.restart();
    let health = server.health().await;
    assert!(dropped_lines(&health).is_empty(), "the torn segment is reported again: {}", pretty(&health["recovery"]));
    let mut want = batches(0..4);
    want.extend(batch(7));
    assert_eq!(server.all_samples().await, want);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bit_mid_segment_loses_only_that_record() {
    let mut server = TestServer::start(WAL_ONLY);
    ingest_batches(&server, 0..6).await;
    server.kill9();
    let (seq, path, _) = last_segment_with_records(&server.data_dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let records = wal_records(&bytes);
    assert_eq!(records.len(), 6, "one WAL record per acknowledged request");
    // A bit of a sample value in the third record's payload.
    let r = records[2].clone();
    let at = r.start + WAL_RECORD_HEADER_LEN + 3 * 21 + 14;
    assert!(at < r.end);
    bytes[at] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();

    server.restart();
    let health = server.health().await;
    assert_names_segment(&health, seq);
    let mut want = batches(0..2);
    want.extend(batches(3..6));
    assert_eq!(server.all_samples().await, want, "every record but the damaged one, nothing invented");
    assert_eq!(health["recovery"]["wal_samples_lost"], json!(BATCH), "{}", pretty(&health["recovery"]));
    server.stop();
}

/// The reported case: 16 bytes flipped in record 2 of 4 lost that record and every intact record
/// after it. Now only the damaged record is lost, the loss is counted in samples, and the damaged
/// segment is copied to `quarantine/` once, however often the server restarts before it is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_record_costs_only_its_samples_and_is_quarantined_once() {
    const N: usize = 1000;
    let big = |b: usize| -> Vec<Sample> {
        (0..N).map(|i| Sample::good(2, BASE_TS + (b * N + i) as i64 * SECOND_US, (b * N + i) as f64)).collect()
    };
    let mut server = TestServer::start(WAL_ONLY);
    for b in 0..4 {
        server.ingest_ok(&big(b)).await;
    }
    server.kill9();
    let (seq, path, _) = last_segment_with_records(&server.data_dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let records = wal_records(&bytes);
    assert_eq!(records.len(), 4, "one WAL record per acknowledged request");
    let at = records[1].start + WAL_RECORD_HEADER_LEN + 5_000;
    for b in &mut bytes[at..at + 16] {
        *b ^= 0xFF;
    }
    std::fs::write(&path, &bytes).unwrap();
    let want: Vec<Sample> = [big(0), big(2), big(3)].concat();

    server.restart();
    let health = server.health().await;
    let recovery = &health["recovery"];
    assert_names_segment(&health, seq);
    assert_eq!(recovery["samples_replayed"], json!(3 * N), "{}", pretty(recovery));
    assert_eq!(recovery["wal_samples_lost"], json!(N), "counted from the intact header: {}", pretty(recovery));
    assert_eq!(recovery["wal_samples_lost_at_most"], json!(0), "{}", pretty(recovery));
    let line = dropped_lines(&health).join("\n");
    assert!(line.contains(&format!("{N} samples")), "the loss is told in samples: {line}");
    assert_eq!(server.all_samples().await, want);
    let copies = list_files(&server.data_dir.join("quarantine"));
    assert_eq!(copies.len(), 1, "one copy in quarantine/: {copies:?}");
    assert_eq!(quarantined(&health).len(), 1, "{}", pretty(recovery));

    // Killed again before the segment's records reach Parquet: the same damage is reported, and
    // the copy made at the first start is named rather than made again.
    server.kill9();
    server.restart();
    let health = server.health().await;
    assert_names_segment(&health, seq);
    assert_eq!(list_files(&server.data_dir.join("quarantine")), copies, "a second copy of the same segment");
    assert_eq!(quarantined(&health), Vec::<String>::new(), "nothing new was quarantined");
    assert!(
        dropped_lines(&health).iter().any(|l| l.contains(&copies[0].to_string_lossy().to_string())),
        "the report names the existing copy: {}",
        pretty(&health["recovery"])
    );
    assert_eq!(server.all_samples().await, want);

    // Once in Parquet the segment is gone, and with it the report.
    server.stop();
    server.restart();
    let health = server.health().await;
    assert!(dropped_lines(&health).is_empty(), "{}", pretty(&health["recovery"]));
    assert_eq!(server.all_samples().await, want);
    server.stop();
}

/// A damaged record *header*: the record's count is unknown, so the loss is an upper bound from
/// its length, labelled as such; replay finds the next record by its marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_record_header_is_skipped_with_an_estimate() {
    let mut server = TestServer::start(WAL_ONLY);
    ingest_batches(&server, 0..4).await;
    server.kill9();
    let (seq, path, _) = last_segment_with_records(&server.data_dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let records = wal_records(&bytes);
    for b in &mut bytes[records[1].start..records[1].start + 16] {
        *b ^= 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();

    server.restart();
    let health = server.health().await;
    let recovery = &health["recovery"];
    assert_names_segment(&health, seq);
    assert_eq!(recovery["wal_samples_lost"], json!(0), "{}", pretty(recovery));
    assert_eq!(recovery["wal_samples_lost_at_most"], json!(BATCH), "{}", pretty(recovery));
    assert!(dropped_lines(&health).join("\n").contains("estimated"), "{}", pretty(recovery));
    let mut want = batch(0);
    want.extend(batches(2..4));
    assert_eq!(server.all_samples().await, want);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_segment_header_is_reported_and_parquet_data_kept() {
    let mut server = TestServer::start(WAL_ONLY);
    ingest_batches(&server, 0..2).await;
    // Persisted to Parquet by the graceful stop.
    server.stop();
    server.restart();
    ingest_batches(&server, 2..4).await;
    server.kill9();
    let (seq, path, _) = last_segment_with_records(&server.data_dir);
    OpenOptions::new().write(true).open(&path).unwrap().set_len(5).unwrap();

    server.restart();
    let health = server.health().await;
    assert_eq!(health["status"], json!("ok"));
    assert_names_segment(&health, seq);
    assert_eq!(server.all_samples().await, batches(0..2), "Parquet data kept, the cut segment's data gone");
    // Still writable.
    server.ingest_ok(&batch(9)).await;
    assert_eq!(server.count().await, 3 * BATCH as i64);
    server.stop();
}

/// Two days of data, one Parquet file each (written by a graceful stop). Returns the samples per day.
async fn two_days_in_parquet(server: &mut TestServer) -> (Vec<Sample>, Vec<Sample>) {
    let day1: Vec<Sample> = (0..100).map(|i| Sample::good(5, BASE_TS + i * MINUTE_US, i as f64)).collect();
    let day2: Vec<Sample> =
        (0..100).map(|i| Sample::good(5, BASE_TS + DAY_US + i * MINUTE_US, 1000.0 + i as f64)).collect();
    server.ingest_ok(&day1).await;
    server.ingest_ok(&day2).await;
    server.stop();
    let files = manifest_files(&server.data_dir);
    assert_eq!(files.len(), 2, "one file per day: {files:?}");
    (day1, day2)
}

fn day1_file(server: &TestServer) -> ManifestFile {
    let day = BASE_TS.div_euclid(DAY_US);
    manifest_files(&server.data_dir).into_iter().find(|f| f.day == day).expect("the manifest lists day 1's file")
}

fn quarantine_holds(server: &TestServer, f: &ManifestFile) -> bool {
    let name = f.rel_path.file_name().unwrap().to_string_lossy().into_owned();
    list_files(&server.data_dir.join("quarantine")).iter().any(|p| p.to_string_lossy().contains(&name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_parquet_file_is_quarantined_at_start() {
    let mut server = TestServer::start(WAL_ONLY);
    let (_day1, day2) = two_days_in_parquet(&mut server).await;
    let f = day1_file(&server);
    let path = server.data_dir.join(&f.rel_path);
    let size = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new().write(true).open(&path).unwrap().set_len(size / 2).unwrap();

    server.restart();
    let health = server.health().await;
    let name = f.rel_path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        quarantined(&health).iter().any(|q| q.contains(&name)),
        "recovery.quarantined does not name {name}: {}",
        pretty(&health["recovery"])
    );
    assert!(
        dropped_lines(&health).iter().any(|l| l.contains(&name)),
        "recovery.dropped: {}",
        pretty(&health["recovery"])
    );
    assert!(!path.exists(), "the damaged file is still at {}", path.display());
    assert!(quarantine_holds(&server, &f), "quarantine/ holds: {:?}", list_files(&server.data_dir.join("quarantine")));
    assert!(!manifest_files(&server.data_dir).iter().any(|m| m.seq == f.seq), "the manifest still lists it");

    // Queries answer, with the other day intact.
    assert_eq!(server.all_samples().await, day2);
    let r = server.get(&format!("/api/t3000/points/5/history?from={BASE_TS}&to={}", BASE_TS + 2 * DAY_US)).await;
    let body = r.ok_json();
    assert_eq!(body["ts"].as_array().map(Vec::len), Some(day2.len()), "{body}");
    assert_eq!(body["partial"], json!(true), "the range covers the quarantined file's rows: {body}");
    assert_eq!(health["quarantined"].as_array().map(Vec::len), Some(1), "{}", pretty(&health));
    server.stop();
}

/// Overwrites the last `n` bytes of a file (the Parquet footer) with garbage, keeping its size.
fn smash_tail(path: &Path, n: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len - n.min(len)..] {
        *b = 0xA5;
    }
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_damaged_while_running_history_is_partial_and_file_quarantined() {
    let mut server = TestServer::start(WAL_ONLY);
    let (_day1, day2) = two_days_in_parquet(&mut server).await;
    server.restart();
    let f = day1_file(&server);
    let path = server.data_dir.join(&f.rel_path);
    smash_tail(&path, 64);

    let r = server.get(&format!("/api/t3000/points/5/history?from={BASE_TS}&to={}", BASE_TS + 2 * DAY_US)).await;
    let body = r.ok_json();
    assert_eq!(body["partial"], json!(true), "history over a damaged file: {body}");
    let ts: Vec<i64> = serde_json::from_value(body["ts"].clone()).unwrap();
    assert_eq!(ts, day2.iter().map(|s| s.ts).collect::<Vec<_>>(), "the undamaged day is served whole");
    assert!(quarantine_holds(&server, &f), "quarantine/ holds: {:?}", list_files(&server.data_dir.join("quarantine")));
    assert!(!path.exists(), "the damaged file is still in place");
    assert!(!manifest_files(&server.data_dir).iter().any(|m| m.seq == f.seq), "the manifest still lists it");

    let r = server.sql_reply("SELECT count(*) FROM samples").await;
    assert_eq!(r.ok_json()["rows"], json!([[day2.len()]]));
    assert_eq!(server.health().await["status"], json!("ok"));
    // And the next start is clean.
    server.stop();
    server.restart();
    assert!(dropped_lines(&server.health().await).is_empty());
    assert_eq!(server.all_samples().await, day2);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_damaged_while_running_sql_still_answers() {
    let mut server = TestServer::start(WAL_ONLY);
    let (_day1, day2) = two_days_in_parquet(&mut server).await;
    server.restart();
    let f = day1_file(&server);
    smash_tail(&server.data_dir.join(&f.rel_path), 64);

    // The SQL endpoint is the first to meet the damaged file.
    let r = server.sql_reply("SELECT count(*) FROM samples").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "SQL over a damaged file: {} {}\nserver log:\n{}",
        r.status,
        r.text(),
        server.stderr()
    );
    let body = r.json();
    assert_eq!(body["rows"], json!([[day2.len()]]), "{body}");
    assert_eq!(body["partial"], json!(true), "{body}");
    assert!(quarantine_holds(&server, &f), "quarantine/ holds: {:?}", list_files(&server.data_dir.join("quarantine")));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_data_pages_behind_an_intact_footer() {
    let mut server = TestServer::start(WAL_ONLY);
    let (day1, day2) = two_days_in_parquet(&mut server).await;
    let f = day1_file(&server);
    let path = server.data_dir.join(&f.rel_path);
    // Garbage over the second half of the `value` column chunk; the footer stays readable.
    let pages = value_pages(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[(pages.start + pages.len() / 2)..pages.end] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();

    server.restart();
    let health = server.health().await;
    assert_eq!(health["recovery"]["quarantined"], json!([]), "the footer is intact: {}", pretty(&health["recovery"]));

    // The latest values (loaded from the files at start-up) still come from the undamaged day.
    let last = *day2.last().unwrap();
    let srv = &server;
    let loaded = wait_for(std::time::Duration::from_secs(5), move || async move {
        let r = srv.get("/api/t3000/points/5/value").await;
        r.status == StatusCode::OK && r.json()["ts"] == json!(last.ts)
    })
    .await;
    let mut problems = Vec::new();
    if !loaded {
        problems.push(format!(
            "GET /points/5/value after a restart with one damaged file: {}",
            server.get("/api/t3000/points/5/value").await.text()
        ));
    }

    // History never serves damaged data as good, and says when rows are missing.
    let quarantined_before = quarantine_holds(&server, &f);
    let r = server.get(&format!("/api/t3000/points/5/history?from={BASE_TS}&to={}", BASE_TS + 2 * DAY_US)).await;
    let body = r.ok_json();
    let ts: Vec<i64> = serde_json::from_value(body["ts"].clone()).unwrap();
    let values: Vec<Option<f64>> = serde_json::from_value(body["value"].clone()).unwrap();
    let sent: Vec<Sample> = day1.iter().chain(&day2).copied().collect();
    for (t, v) in ts.iter().zip(&values) {
        assert!(
            sent.iter().any(|s| s.ts == *t && Some(s.value) == *v),
            "history served ({t}, {v:?}), which was never sent: damaged data served as good"
        );
    }
    assert!(ts.ends_with(&day2.iter().map(|s| s.ts).collect::<Vec<_>>()), "day 2 is served whole");
    if ts.len() < sent.len() && !quarantined_before && body["partial"] != json!(true) {
        problems.push(format!("{} of {} rows served, but partial is false", ts.len(), sent.len()));
    }
    if !quarantine_holds(&server, &f) {
        problems.push("the damaged file was not quarantined".into());
    }
    assert!(problems.is_empty(), "{}\nserver log:\n{}", problems.join("\n"), server.stderr());
    server.stop();
}
