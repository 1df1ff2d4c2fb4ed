//! The process lifecycle and the command line: graceful stop, `demo`, the data-directory lock,
//! `check-config`, `--version` and the offline `export`.

use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use t3_tests::*;

/// Nothing reaches Parquet before the graceful stop.
const NO_FLUSH: &str = r#"
[storage]
flush_rows = 50000000
flush_interval_secs = 86400
"#;

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/t3000.example.toml")
}

fn day_samples(point: u32, day: i64, n: i64) -> Vec<Sample> {
    (0..n)
        .map(|i| {
            Sample::good(point, BASE_TS + day * DAY_US + i * MINUTE_US, (point as i64 * 10_000 + day * 1000 + i) as f64)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_persists_everything_and_empties_the_wal() {
    let mut server = TestServer::start(NO_FLUSH);
    let mut all = Vec::new();
    for day in 0..3 {
        let s = day_samples(1, day, 50);
        server.ingest_ok(&s).await;
        all.extend(s);
    }
    // Writers keep going while SIGTERM arrives: whatever was acknowledged must survive the stop.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2u32 {
        let (client, url, stop) = (server.client.clone(), server.url("/api/t3000/samples"), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for k in 0..100_000i64 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let s: Vec<Sample> = (0..20)
                    .map(|i| Sample::good(100 + w, BASE_TS + k * 20 * SECOND_US + i * SECOND_US, k as f64))
                    .collect();
                match client.post(&url).json(&samples_json(&s)).send().await {
                    Ok(r) if r.status() == StatusCode::OK => acked.extend(s),
                    // 503 while shutting down, or a refused connection once it stopped listening.
                    _ => break,
                }
            }
            acked
        }));
    }
    // Let the writers get some acknowledgements in before the signal.
    let (srv, base) = (&server, all.len() as i64);
    poll_until("writers' samples to arrive", std::time::Duration::from_secs(30), move || async move {
        srv.count().await > base + 100
    })
    .await;
    let status = server.sigterm();
    stop.store(true, Ordering::SeqCst);
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM; stderr:\n{}", server.stderr());
    for w in writers {
        all.extend(w.await.unwrap());
    }
    all.sort_by_key(|s| (s.point_id, s.ts));

    // The WAL holds no record: every segment is a bare 16-byte header (or there is none).
    for (seq, path, size) in wal_segments(&server.data_dir) {
        assert_eq!(size, WAL_HEADER_LEN as u64, "WAL segment {seq} has records after a graceful stop");
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..4], b"T3W2", "segment {seq} header");
        assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()), seq, "segment {seq} header seq");
    }
    // The manifest's Parquet files hold every acknowledged row, once.
    let files = manifest_files(&server.data_dir);
    assert!(!files.is_empty(), "no Parquet file after a graceful stop");
    let mut on_disk = Vec::new();
    for f in &files {
        let rows = read_parquet_samples(&server.data_dir.join(&f.rel_path)).unwrap();
        assert_eq!(rows.len() as u64, f.rows, "{}", f.rel_path.display());
        on_disk.extend(rows);
    }
    on_disk.sort_by_key(|s| (s.point_id, s.ts));
    assert_eq!(on_disk.len(), all.len(), "rows in Parquet vs acknowledged");
    assert_eq!(on_disk, all);
    // No stray file next to the listed ones.
    let listed: BTreeSet<PathBuf> = files.iter().map(|f| f.rel_path.clone()).collect();
    let present: BTreeSet<PathBuf> =
        list_files(&server.data_dir.join("samples")).into_iter().map(|p| Path::new("samples").join(p)).collect();
    assert_eq!(present, listed, "Parquet files on disk vs in the manifest");

    server.restart();
    let h = server.health().await;
    assert_eq!(h["recovery"]["samples_replayed"], json!(0), "{}", pretty(&h["recovery"]));
    assert_eq!(h["recovery"]["dropped"], json!([]));
    assert_eq!(server.all_samples().await, all);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_keeps_its_data_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo-data");
    // The demo also collects from its simulated building (point ids from 1 up); a pushed series
    // far above them is checked on its own.
    const PUSHED: u32 = 4_000_000_000;
    let mut server = TestServer::start_demo(&dir);
    let s = day_samples(PUSHED, 0, 30);
    server.ingest_ok(&s).await;
    server.stop();
    assert!(!manifest_files(&dir).is_empty(), "the demo persisted nothing in {}", dir.display());

    let mut again = TestServer::start_demo(&dir);
    assert_eq!(again.samples_of(PUSHED).await, s);
    let more = day_samples(PUSHED, 1, 5);
    again.ingest_ok(&more).await;
    // Killed this time: the WAL brings the new samples back.
    again.kill9();
    again.restart();
    let mut want = s.clone();
    want.extend(more);
    assert_eq!(again.samples_of(PUSHED).await, want);
    again.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_server_on_the_same_data_dir_is_refused() {
    let mut first = TestServer::start("");
    let s = day_samples(1, 0, 10);
    first.ingest_ok(&s).await;
    match TestServer::try_start_in(&first.data_dir, "") {
        Ok(_) => panic!("a second server started on the same data directory"),
        Err(StartError::Exited { status, stderr }) => {
            assert!(!status.success(), "second server exit status {status}");
            let lower = stderr.to_lowercase();
            assert!(
                lower.contains("lock") || lower.contains("in use"),
                "the message does not mention the lock:\n{stderr}"
            );
        }
        Err(e) => panic!("unexpected: {e}"),
    }
    // The offline export is refused too while the server runs.
    let out = first.root().join("out.csv");
    let o = run(&[
        "export",
        "--data-dir",
        first.data_dir.to_str().unwrap(),
        "--points",
        "1",
        "--from",
        &BASE_TS.to_string(),
        "--to",
        &(BASE_TS + DAY_US).to_string(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "export ran against a live data directory: {o:?}");
    assert!(o.stderr.to_lowercase().contains("in use") || o.stderr.to_lowercase().contains("lock"), "{}", o.stderr);
    // The first server is unharmed.
    assert_eq!(first.all_samples().await, s);
    assert_eq!(first.health().await["writes"], json!("ok"));
    first.stop();
}

#[test]
fn check_config_names_the_bad_key_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let f = write("range.toml", "[server]\nlisten = \"127.0.0.1:0\"\n\n[storage]\nflush_rows = 5\n");
    let o = run(&["check-config", &f]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(o.stderr.contains("storage.flush_rows"), "the key is not named: {}", o.stderr);
    assert!(o.stderr.contains(":5"), "line 5 is not named: {}", o.stderr);

    let f = write("unknown.toml", "[wal]\nsegment_bytes = 2097152\ncolour = \"red\"\n");
    let o = run(&["check-config", &f]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(o.stderr.contains("colour") && o.stderr.contains(":3"), "{}", o.stderr);

    let f = write("syntax.toml", "[server\nlisten = 1\n");
    let o = run(&["check-config", &f]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");

    let o = run(&["check-config", tmp.path().join("missing.toml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "a missing file: {o:?}");

    // An environment override is checked like the file and named in the message.
    let good = write("good.toml", "[server]\nlisten = \"127.0.0.1:0\"\n");
    let o = run_cmd(command().args(["check-config", &good]).env("T3000__WAL__SEGMENT_BYTES", "10"));
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(o.stderr.contains("T3000__WAL__SEGMENT_BYTES") && o.stderr.contains("wal.segment_bytes"), "{}", o.stderr);

    // `serve` refuses a bad configuration with the same exit code, before listening.
    let o = run(&["serve", "--config", &f_range(&tmp)]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(!o.stdout.contains("listening"), "{}", o.stdout);

    let o = run(&["check-config", example_config().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "the example config: {o:?}");
    assert!(o.stdout.contains("OK"), "{}", o.stdout);
}

/// A reader that has gone (`t3000 check-config f | head -1`) ends the command quietly, with
/// status 0, as Unix tools do; it used to panic on the broken pipe.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = command()
        .args(["check-config", example_config().to_str().unwrap()])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn f_range(tmp: &tempfile::TempDir) -> String {
    tmp.path().join("range.toml").to_str().unwrap().to_string()
}

#[test]
fn version_is_printed() {
    let o = run(&["--version"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(o.stdout.trim(), format!("t3000 {}", env!("CARGO_PKG_VERSION")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_export_writes_the_rows_after_a_graceful_stop() {
    let mut server = TestServer::start(NO_FLUSH);
    let p1 = day_samples(1, 0, 4);
    server.ingest_ok(&p1).await;
    server.ingest_ok(&day_samples(2, 0, 4)).await;
    server.stop();

    let out = server.root().join("out.csv");
    let o = run(&[
        "export",
        "--data-dir",
        server.data_dir.to_str().unwrap(),
        "--points",
        "1",
        "--from",
        "2024-01-01T00:00:00Z",
        "--to",
        "2024-01-02T00:00:00Z",
        "--format",
        "csv",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let text = std::fs::read_to_string(&out).unwrap();
    let want: String = std::iter::once("ts,point_id,point_name,unit,value,quality,quality_name\n".to_string())
        .chain(
            p1.iter()
                .enumerate()
                .map(|(i, s)| format!("2024-01-01T00:{i:02}:00.000000Z,1,point 1,,{},192,good\n", s.value)),
        )
        .collect();
    assert_eq!(text, want);

    // The export left the data directory usable and unchanged.
    server.restart();
    assert_eq!(server.count().await, 8);
    server.stop();
}
