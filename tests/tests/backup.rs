//! Backup and restore with the real binary: `t3000 backup` against a server under heavy ingest and
//! compaction, `t3000 restore` into an empty directory, a second server on it answering as the
//! first did at the backup's moment; damaged, truncated, partial and incremental archives.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use t3_tests::{Output, Sample, SmallFs, TestServer, list_files, poll_until, run};

/// Small flushes make many files per day, and maintenance every second compacts them.
const BUSY: &str = r#"
[storage]
flush_rows = 1000
flush_interval_secs = 1
[wal]
group_commit_max_delay_ms = 5
[compaction]
interval_secs = 1
min_files_per_day = 2
[query]
sql_max_rows = 5000000
"#;

/// Flushes without compaction: the files a full backup holds stay for the incremental one.
const STILL: &str = r#"
[storage]
flush_rows = 1000
flush_interval_secs = 1
[compaction]
enabled = false
"#;

/// A configured device, not polled (its failed polls would store samples of their own): its points
/// get ids in `points.json`.
const DEVICE: &str = "[[devices]]\nname = \"ahu\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = 1\n\
                      unit_id = 1\nprofile = \"T3-controller\"\nenabled = false\n";

const POINTS: u64 = 20;
/// The first point id of the samples (above the device's).
const FIRST_POINT: u64 = 1001;
/// Time steps per batch (each of every point).
const STEPS: u64 = 50;

/// Batch `b`: every point at `STEPS` consecutive seconds after those of batch `b - 1`, so the
/// batches acknowledged up to any moment are exactly the rows up to a time stamp.
fn batch(start: i64, b: u64) -> Vec<Sample> {
    (0..STEPS * POINTS)
        .map(|i| {
            let step = b * STEPS + i / POINTS;
            Sample::good((i % POINTS + FIRST_POINT) as u32, start + step as i64 * 1_000_000, (b * 1000 + i) as f64)
        })
        .collect()
}

fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64
}

async fn cli(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || run(&args.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap()
}

async fn backup(server: &TestServer, file: &Path, incremental: Option<&Path>) -> Output {
    let mut args = vec!["backup".to_string(), "--url".into(), server.url(""), "--token".into(), server.token.clone()];
    if let Some(prev) = incremental {
        args.extend(["--incremental".into(), prev.display().to_string()]);
    }
    args.push(file.display().to_string());
    cli(args).await
}

async fn restore(file: &Path, bases: &[&Path], dir: &Path) -> Output {
    let mut args =
        vec!["restore".to_string(), file.display().to_string(), "--data-dir".into(), dir.display().to_string()];
    for b in bases {
        args.extend(["--base".into(), b.display().to_string()]);
    }
    cli(args).await
}

fn assert_ok(what: &str, out: &Output) {
    assert!(out.status.success(), "{what} failed ({}):\n{}\n{}", out.status, out.stdout, out.stderr);
}

/// Refused with exit code 1, nothing written into `dir`, and the message contains every one of `words`.
fn assert_refused(what: &str, out: &Output, dir: &Path, words: &[&str]) {
    assert_eq!(out.status.code(), Some(1), "{what} was not refused:\n{}\n{}", out.stdout, out.stderr);
    for w in words {
        assert!(out.stderr.contains(w), "{what}: the message does not say `{w}`:\n{}", out.stderr);
    }
    assert!(
        !dir.exists() || std::fs::read_dir(dir).unwrap().next().is_none(),
        "{what}: something was written into {}",
        dir.display()
    );
}

/// The archive's manifest (`BACKUP.json`) as restored beside the data.
fn restored_manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("BACKUP.json")).unwrap()).unwrap()
}

/// Rows and aggregates up to `until` (inclusive), as both servers must answer them.
async fn answers(server: &TestServer, until: i64) -> (Vec<Vec<Value>>, Vec<Vec<Value>>, Value) {
    let rows = server
        .sql(&format!(
            "SELECT point_id, epoch_us(ts), value, quality FROM samples WHERE epoch_us(ts) <= {until} ORDER BY point_id, ts"
        ))
        .await;
    let agg = server
        .sql(&format!(
            "SELECT point_id, count(*), sum(value), min(epoch_us(ts)), max(epoch_us(ts)) FROM samples \
             WHERE epoch_us(ts) <= {until} GROUP BY point_id ORDER BY point_id"
        ))
        .await;
    let buildings = server.get("/api/t3000/buildings").await.ok_json();
    (rows, agg, buildings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_ingest_and_compaction_restores_the_moment_it_was_taken() {
    let config = format!("{BUSY}{DEVICE}");
    let server = TestServer::start(&config);
    let b = server.post_json("/api/t3000/buildings", &json!({"name": "Plant room"})).await.json();
    let floor =
        server.post_json(&format!("/api/t3000/buildings/{}/floors", b["id"]), &json!({"name": "L1"})).await.json();
    let svg =
        br##"<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"><rect width="20" height="10"/></svg>"##;
    let plan = format!("/api/t3000/floors/{}/plan", floor["id"]);
    let r = server
        .send(server.client.put(server.url(&plan)).header("content-type", "image/svg+xml").body(svg.to_vec()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // Heavy ingest in the background: batch after batch, each acknowledged before the next.
    let start = now_us() - 2 * 86_400_000_000;
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let pusher = {
        let (client, url, acked, stop) =
            (server.client.clone(), server.url("/api/t3000/samples"), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut b = 0;
            while !stop.load(Ordering::SeqCst) {
                let r = client.post(&url).json(&t3_tests::samples_json(&batch(start, b))).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK, "ingest: {}", r.text().await.unwrap_or_default());
                b += 1;
                acked.store(b, Ordering::SeqCst);
            }
        })
    };
    // Until compaction has replaced files at least once, so it runs while the backup does.
    poll_until("a compaction under ingest", Duration::from_secs(60), || async {
        server.stderr().lines().any(|l| l.contains("maintenance pass") && !l.contains("days_compacted: 0"))
    })
    .await;

    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("full.tar");
    let acked_before = acked.load(Ordering::SeqCst);
    let out = backup(&server, &archive, None).await;
    let sent_after = acked.load(Ordering::SeqCst) + 1;
    assert_ok("backup", &out);
    eprintln!("{}", out.stdout);
    // Ingest goes on a little after the backup: none of it may reach the copy.
    let target = sent_after + 5;
    poll_until("more ingest", Duration::from_secs(60), || async { acked.load(Ordering::SeqCst) >= target }).await;
    stop.store(true, Ordering::SeqCst);
    pusher.await.unwrap();

    let dir = tmp.path().join("restored");
    let out = restore(&archive, &[], &dir).await;
    assert_ok("restore", &out);
    let manifest = restored_manifest(&dir);
    let paths: Vec<&str> =
        manifest["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    for must in ["manifest.json", "catalog.duckdb", "points.json", "t3000.effective.toml"] {
        assert!(paths.contains(&must), "{must} not in the archive: {paths:?}");
    }
    assert!(paths.iter().any(|p| p.starts_with("floorplans/")), "{paths:?}");
    let effective = std::fs::read_to_string(dir.join("t3000.effective.toml")).unwrap();
    assert!(!effective.contains(t3_tests::ADMIN_PASSWORD), "a secret in the archive's configuration");
    assert!(effective.contains("name = \"ahu\""), "{effective}");

    let points = std::fs::read(dir.join("points.json")).unwrap();
    assert_eq!(points, std::fs::read(server.data_dir.join("points.json")).unwrap(), "points.json");
    let copy = TestServer::start_in(&dir, &config);
    // The copy holds a prefix of the batches: every one acknowledged before the backup started,
    // none sent after it ended, and no batch in part.
    let n = copy.count().await as u64;
    assert_eq!(n % (STEPS * POINTS), 0, "a batch restored in part: {n} rows");
    let batches = n / (STEPS * POINTS);
    assert!(
        (acked_before..=sent_after).contains(&batches),
        "restored {batches} batches; {acked_before} were acknowledged before the backup, {sent_after} sent by its end"
    );
    let until = start + (batches * STEPS) as i64 * 1_000_000 - 1;
    let (rows, agg, buildings) = answers(&copy, until).await;
    assert_eq!(rows.len() as u64, n, "rows after the restored moment");
    assert_eq!(answers(&server, until).await, (rows, agg, buildings), "the copy answers differently");
    let history = format!("/api/t3000/points/1003/history?from={start}&to={}&agg=avg&bucket=15m", until + 1);
    assert_eq!(copy.get(&history).await.ok_json()["series"], server.get(&history).await.ok_json()["series"]);
    let r = copy.get(&plan).await;
    assert_eq!((r.status, r.body.as_slice()), (StatusCode::OK, svg.as_slice()), "the floor plan");
    // Both go on: the copy takes new samples.
    copy.ingest_ok(&batch(start, batches)).await;
    eprintln!(
        "restored {batches} batches ({acked_before} acknowledged before the backup, {sent_after} sent by its end)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_partial_and_incremental_archives() {
    let server = TestServer::start(STILL);
    let start = now_us() - 86_400_000_000;
    for b in 0..4 {
        server.ingest_ok(&batch(start, b)).await;
    }
    // At least one file published, for the incremental backup to find in the full one.
    let manifest = server.data_dir.join("manifest.json");
    poll_until("a flush", Duration::from_secs(30), || async {
        let m: Value = std::fs::read(&manifest).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        m["files"].as_array().is_some_and(|f| !f.is_empty())
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full.tar");
    assert_ok("full backup", &backup(&server, &full, None).await);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&full).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the archive holds password hashes: its owner's only");
    let out = backup(&server, &full, None).await;
    assert!(!out.status.success() && out.stderr.contains("exists"), "overwrote an archive: {}", out.stderr);

    // Only an admin may take one.
    let viewer = server.user_client("vic", "viewer").await;
    let r = server.call(&viewer, reqwest::Method::POST, "/api/t3000/backup", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A base manifest that is not one.
    let r = server.post_json("/api/t3000/backup", &json!({"base": {"format": 9}})).await;
    r.assert_client_error("a bad base manifest");

    // Incremental: after more data and a flush, only the new files travel.
    for b in 4..8 {
        server.ingest_ok(&batch(start, b)).await;
    }
    let incr = tmp.path().join("incr.tar");
    assert_ok("incremental backup", &backup(&server, &incr, Some(&full)).await);

    let dir = tmp.path().join("r");
    let full_id = {
        let d = tmp.path().join("full-only");
        assert_ok("restore full", &restore(&full, &[], &d).await);
        restored_manifest(&d)["id"].as_str().unwrap().to_owned()
    };
    assert_refused(
        "an incremental without its base",
        &restore(&incr, &[], &dir).await,
        &dir,
        &["needs its base archive", &full_id, "--base"],
    );
    assert_ok("restore incremental", &restore(&incr, &[&full], &dir).await);
    let m = restored_manifest(&dir);
    let in_base = m["entries"].as_array().unwrap().iter().filter(|e| e["in_base"] == true).count();
    assert!(in_base > 0, "nothing taken from the base: {m}");
    assert_eq!(m["base"]["id"], full_id.as_str());
    let expected = server.all_samples().await;
    let copy = TestServer::start_in(&dir, STILL);
    assert_eq!(copy.all_samples().await, expected, "the incremental restore answers differently");
    assert_eq!(expected.len() as u64, 8 * STEPS * POINTS);
    drop(copy);
    // A chain: an incremental archive on the incremental one needs both below it.
    for b in 8..10 {
        server.ingest_ok(&batch(start, b)).await;
    }
    let incr2 = tmp.path().join("incr2.tar");
    assert_ok("second incremental backup", &backup(&server, &incr2, Some(&incr)).await);
    let dir2 = tmp.path().join("r2");
    let out = restore(&incr2, &[&incr], &dir2).await;
    assert_refused("a chain without its full archive", &out, &dir2, &["needs its base archive", &full_id]);
    assert_ok("restore the chain", &restore(&incr2, &[&full, &incr], &dir2).await);
    let expected = server.all_samples().await;
    let copy = TestServer::start_in(&dir2, STILL);
    assert_eq!(copy.all_samples().await, expected, "the chain restores differently");
    assert_eq!(expected.len() as u64, 10 * STEPS * POINTS);
    drop(copy);

    // Not into a directory that holds anything.
    let busy = tmp.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("x"), b"x").unwrap();
    let out = restore(&full, &[], &busy).await;
    assert!(out.status.code() == Some(1) && out.stderr.contains("is not empty"), "{}", out.stderr);

    let bytes = std::fs::read(&full).unwrap();
    let damaged = |name: &str, content: &[u8]| {
        let p: PathBuf = tmp.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    };
    let empty = tmp.path().join("never");
    // One flipped byte inside a data file.
    let mut flipped = bytes.clone();
    let at = flipped.windows(4).position(|w| w == b"PAR1").expect("a Parquet file in the archive") + 100;
    flipped[at] ^= 0x40;
    let out = restore(&damaged("flipped.tar", &flipped), &[], &empty).await;
    assert_refused("a flipped byte", &out, &empty, &["checksum mismatch", ".parquet", "nothing was restored"]);
    // Cut short in the middle.
    let out = restore(&damaged("truncated.tar", &bytes[..bytes.len() / 2]), &[], &empty).await;
    assert_refused("a truncated archive", &out, &empty, &["nothing was restored"]);
    assert!(out.stderr.contains("truncated") || out.stderr.contains("partial"), "{}", out.stderr);
    // Everything but the manifest: a backup that did not finish.
    let manifest_at = (0..bytes.len()).step_by(512).find(|&i| bytes[i..].starts_with(b"BACKUP.json\0")).unwrap();
    let out = restore(&damaged("partial.tar", &bytes[..manifest_at]), &[], &empty).await;
    assert_refused("a partial archive", &out, &empty, &["partial", "BACKUP.json"]);
    // A file missing from the middle (its header and data cut out).
    let data_at = (0..bytes.len()).step_by(512).find(|&i| bytes[i..].starts_with(b"samples/")).unwrap();
    let size =
        usize::from_str_radix(std::str::from_utf8(&bytes[data_at + 124..data_at + 135]).unwrap().trim(), 8).unwrap();
    let end = data_at + 512 + size.div_ceil(512) * 512;
    let name = std::str::from_utf8(&bytes[data_at..data_at + 100]).unwrap().trim_end_matches('\0').to_owned();
    let missing = [&bytes[..data_at], &bytes[end..]].concat();
    let out = restore(&damaged("missing.tar", &missing), &[], &empty).await;
    assert_refused("a missing file", &out, &empty, &["is missing", &name]);
    // The manifest itself damaged.
    let mut bad_manifest = bytes.clone();
    let body = manifest_at + 512 + 20;
    bad_manifest[body] ^= 0x01;
    let out = restore(&damaged("manifest.tar", &bad_manifest), &[], &empty).await;
    assert_refused("a damaged manifest", &out, &empty, &["BACKUP.json is damaged"]);

    // A disk that fills up during the restore: the target is left as it was (not there), with
    // nothing half written beside it.
    let fs = SmallFs::mount("8m");
    fs.fill_to(bytes.len() as u64 / 2);
    let target = fs.path().join("restored");
    let out = restore(&full, &[], &target).await;
    assert_refused("a restore onto a full disk", &out, &target, &["No space left", "nothing was restored"]);
    assert!(!target.exists(), "the target appeared");
    let left: Vec<String> = std::fs::read_dir(fs.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "filler")
        .collect();
    assert!(left.is_empty(), "left beside the target: {left:?}");

    // The empty root of a freshly mounted disk is a target too (nothing is renamed across it).
    let disk = SmallFs::mount("64m");
    assert_ok("restore onto a mount point", &restore(&full, &[], disk.path()).await);
    assert_eq!(restored_manifest(disk.path())["id"], full_id.as_str());
}

/// A client that stops reading a backup is cut off once the response has not moved for
/// `server.idle_timeout_secs`: the backup ends, its staging folder goes, the files it held are
/// let go, and the audit log says it failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_the_client_stops_reading_is_cut_off_and_audited_as_failed() {
    let server = TestServer::start("[server]\nidle_timeout_secs = 2\n");
    // Three 8 MiB floor plans (noise behind a PNG signature): more than the sockets' buffers hold.
    let b = server.post_json("/api/t3000/buildings", &json!({"name": "Plant room"})).await.json();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for f in 0..3 {
        let floor = server
            .post_json(&format!("/api/t3000/buildings/{}/floors", b["id"]), &json!({"name": format!("L{f}")}))
            .await;
        let id = floor.json()["id"].as_i64().expect("a floor");
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend((0..(8 << 20) - 16).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        }));
        let put =
            server.client.put(server.url(&format!("/api/t3000/floors/{id}/plan"))).header("content-type", "image/png");
        assert_eq!(server.send(put.body(png)).await.status, StatusCode::OK);
    }

    // The request, then nothing read.
    let mut sock = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let request = format!(
        "POST /api/t3000/backup HTTP/1.1\r\nhost: t3000\r\nauthorization: Bearer {}\r\ncontent-length: 0\r\n\r\n",
        server.token
    );
    tokio::io::AsyncWriteExt::write_all(&mut sock, request.as_bytes()).await.unwrap();

    poll_until("the stalled backup cut off", Duration::from_secs(60), || async {
        server.get("/metrics").await.text().contains("t3000_http_connections_closed_total{reason=\"stalled\"} 1\n")
    })
    .await;
    poll_until("the backup audited as failed", Duration::from_secs(30), || async {
        let log = server.get("/api/t3000/audit?action=backup").await.json();
        log.as_array().is_some_and(|a| a.iter().any(|e| e["result"].as_str().unwrap_or("").starts_with("failed")))
    })
    .await;
    let staged = server.data_dir.join("tmp");
    poll_until("the staging folder removed", Duration::from_secs(30), || async { list_files(&staged).is_empty() })
        .await;
    drop(sock);
}
