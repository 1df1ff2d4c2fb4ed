//! HTTP connections against the server's limits: slow and idle clients are closed on time, a
//! request in progress is not; SIGTERM ends within `server.shutdown_timeout_secs` whatever the
//! clients do, and still flushes; a flood of idle connections over the cap, under a low open-files
//! limit, leaves storage its descriptors (flushes go on, writes are accepted afterwards).

use serde_json::json;
use std::time::{Duration, Instant};
use t3_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (end of stream or reset); `None` if it is still
/// open after `limit`. Whatever the server sends before closing is returned too.
async fn wait_closed(stream: &mut (impl AsyncReadExt + Unpin), limit: Duration) -> Option<(Duration, Vec<u8>)> {
    let t0 = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(t0.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some((t0.elapsed(), got)),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one HTTP/1.1 response with a Content-Length body; returns the status line and body.
async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&got[end + 4..end + 4 + len]).into_owned();
                return (head.lines().next().unwrap_or_default().to_string(), body);
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .expect("a response within 30 s")
            .expect("read a response");
        assert!(n > 0, "the connection closed before a whole response: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
}

/// One sample of `GET /metrics` (`name{labels}` as written there), or 0 if absent.
async fn metric(server: &TestServer, series: &str) -> f64 {
    let text = server.get("/metrics").await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_closed_and_busy_ones_are_not() {
    let server = TestServer::start("[server]\nheader_read_timeout_secs = 2\nidle_timeout_secs = 4\n");
    let addr = server.addr();

    // Slowloris: a request head trickled a byte at a time, never finished.
    let slowloris = async {
        let (mut rd, mut wr) = TcpStream::connect(&addr).await.unwrap().into_split();
        let t0 = Instant::now();
        let writer = tokio::spawn(async move {
            for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter().chain([b'a'; 200].iter()) {
                if wr.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let closed = wait_closed(&mut rd, Duration::from_secs(30)).await;
        writer.abort();
        let (_, sent) = closed.expect("a slowloris client is still connected after 30 s");
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(1900), "closed after {took:?}, before the 2 s header timeout");
        assert!(took < Duration::from_secs(15), "closed only after {took:?}");
        assert!(sent.is_empty(), "no response to half a head: {}", String::from_utf8_lossy(&sent));
        took
    };

    // A client that connects and sends nothing.
    let idle = async {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        let (took, _) = wait_closed(&mut s, Duration::from_secs(30)).await.expect("an idle client stays connected");
        assert!(took >= Duration::from_millis(3900) && took < Duration::from_secs(20), "idle closed after {took:?}");
        took
    };

    // A keep-alive client: one request answered, then idle until closed.
    let keep_alive = async {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let (status, _) = read_response(&mut s).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let (took, _) =
            wait_closed(&mut s, Duration::from_secs(30)).await.expect("a keep-alive client stays connected");
        assert!(took >= Duration::from_millis(3500) && took < Duration::from_secs(20), "closed after {took:?}");
    };

    // A request in progress longer than both timeouts: its body arrives in two halves, 5 s apart.
    let busy = async {
        let body =
            samples_json(&[Sample::good(9, BASE_TS, 1.0), Sample::good(9, BASE_TS + SECOND_US, 2.0)]).to_string();
        let mut s = TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /api/t3000/samples HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            server.token,
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&body.as_bytes()[..body.len() / 2]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        s.write_all(&body.as_bytes()[body.len() / 2..])
            .await
            .expect("the connection of a request in progress stays open");
        let (status, reply) = read_response(&mut s).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}: {reply}");
    };

    let (took, _, _, _) = tokio::join!(slowloris, idle, keep_alive, busy);
    eprintln!("slowloris closed after {took:?}");
    assert_eq!(server.samples_of(9).await.len(), 2);
    assert_eq!(metric(&server, "t3000_http_connections_closed_total{reason=\"header_timeout\"}").await, 1.0);
    assert!(metric(&server, "t3000_http_connections_closed_total{reason=\"idle\"}").await >= 2.0);
    // Ordinary clients never notice.
    assert_eq!(server.health().await["writes"], json!("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_half_sent_requests_ends_within_the_bound_and_flushes() {
    let mut server = TestServer::start(
        "[server]\nshutdown_timeout_secs = 3\nheader_read_timeout_secs = 600\nidle_timeout_secs = 600\n\
         [storage]\nflush_rows = 50000000\nflush_interval_secs = 86400\n",
    );
    let acked: Vec<Sample> = (0..200).map(|i| Sample::good(1, BASE_TS + i * SECOND_US, i as f64)).collect();
    server.ingest_ok(&acked).await;
    let addr = server.addr();

    // Half a request head.
    let mut half_head = TcpStream::connect(&addr).await.unwrap();
    half_head.write_all(b"POST /api/t3000/samples HTTP/1.1\r\nHost: x\r\nContent-Ty").await.unwrap();
    // A whole head and half its body: the handler waits for the rest.
    let body = samples_json(&[Sample::good(2, BASE_TS, 1.0)]).to_string();
    let mut half_body = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/t3000/samples HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        server.token,
        body.len()
    );
    half_body.write_all(head.as_bytes()).await.unwrap();
    half_body.write_all(&body.as_bytes()[..body.len() / 2]).await.unwrap();
    // A WebSocket client, which the shutdown does not wait for.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{addr}/api/t3000/ws"
    ))
    .unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {}", server.token).parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("WebSocket connect");
    // The half-sent body is a request in progress (besides the /metrics request itself).
    poll_until("the half-sent body's request in progress", Duration::from_secs(30), || async {
        metric(&server, "t3000_http_requests_in_progress").await >= 2.0
    })
    .await;

    let t0 = Instant::now();
    server.send_sigterm();
    let status = server.wait_exit(Duration::from_secs(40));
    let took = t0.elapsed();
    let log = server.stderr();
    let status =
        status.unwrap_or_else(|| panic!("still running 40 s after SIGTERM (shutdown_timeout_secs = 3):\n{log}"));
    assert_eq!(status.code(), Some(0), "exit status {status}:\n{log}");
    // The whole shutdown fits in its budget (plus the runtime's 2 s for stray blocking tasks and
    // process exit).
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?} with shutdown_timeout_secs = 3");
    assert!(log.contains("dropped after server.shutdown_timeout_secs"), "{log}");
    drop((half_head, half_body, ws));
    for (seq, _, size) in wal_segments(&server.data_dir) {
        assert_eq!(size, 16, "WAL segment {seq} has records after the stop: the final flush did not run");
    }
    eprintln!("SIGTERM with half-sent requests took {took:?}");

    server.restart();
    let h = server.health().await;
    assert_eq!(h["recovery"]["samples_replayed"], json!(0), "{}", pretty(&h["recovery"]));
    assert_eq!(server.samples_of(1).await, acked, "acknowledged samples after the restart");
    assert!(server.samples_of(2).await.is_empty(), "the half-sent body was never acknowledged nor stored");
    server.stop();
}

/// Open descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// The soft `Max open files` of a process, from /proc.
fn nofile_soft(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("Max open files");
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_leaves_storage_its_descriptors() {
    const FLOOD: usize = 600;
    let sim = simulate(&["--listen", "127.0.0.1:0", "--count", "1"]);
    let extra = format!(
        r#"
        [storage]
        flush_interval_secs = 1
        [server]
        idle_timeout_secs = 600
        header_read_timeout_secs = 600
        {}"#,
        simulated_ahu(port_of(&sim.tcp))
    );
    // Started with a soft limit of 256 under a hard limit of 512: the server raises it to 512, keeps
    // 256 for storage and devices, and takes at most 256 connections.
    let mut server = TestServer::start_with_nofile(&extra, 256, 512);
    let pid = server.pid().unwrap();
    assert_eq!(nofile_soft(pid), 512, "the soft open-files limit is raised to the hard limit");
    assert_eq!(metric(&server, "t3000_http_max_connections").await, 256.0);
    // Point ids above the device's (1 ..= 256).
    let before = vec![Sample::good(10_007, BASE_TS, 1.0)];
    server.ingest_ok(&before).await;
    poll_until("the device's first samples in a Parquet file", Duration::from_secs(30), || async {
        !manifest_files(&server.data_dir).is_empty()
    })
    .await;

    // The flood: connections that send nothing, more than the open-files limit.
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        flood.push(TcpStream::connect(server.addr()).await.expect("connect (the listen queue holds the rest)"));
    }
    let fds = open_fds(pid);
    assert!(fds < 512 - 64, "the server holds {fds} descriptors under a limit of 512 during the flood");
    // Storage goes on meanwhile: the collector's samples are flushed (a WAL rotation each) into
    // new Parquet files.
    let files = manifest_files(&server.data_dir).iter().map(|f| f.seq).max().unwrap_or(0);
    poll_until("two more flushes during the flood", Duration::from_secs(60), || async {
        manifest_files(&server.data_dir).iter().filter(|f| f.seq > files).count() >= 2
    })
    .await;
    eprintln!("{fds} descriptors open in the server during a flood of {FLOOD} connections");
    drop(flood);

    // Afterwards writes are accepted (the WAL was never poisoned) and the server is ready.
    let after: Vec<Sample> = (0..50).map(|i| Sample::good(10_008, BASE_TS + i * SECOND_US, i as f64)).collect();
    server.ingest_ok(&after).await;
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text());
    assert_eq!(metric(&server, "t3000_writes_refused").await, 0.0);
    assert!(!server.stderr().contains("poisoned"), "{}", server.stderr());
    server.stop();
    server.restart();
    assert_eq!(server.samples_of(10_007).await, before);
    assert_eq!(server.samples_of(10_008).await, after);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cap_that_leaves_no_reserve_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("t3000.toml");
    let text = config_text(&tmp.path().join("data"), "[server]\nmax_connections = 300\n");
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap();
    for args in [["check-config", config, "", ""], ["serve", "--config", config, ""]] {
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        let out = run_cmd(command_with_nofile(512, 512).args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}\n{}", out.stdout, out.stderr);
        assert!(out.stderr.contains("server.max_connections") && out.stderr.contains("at most 256"), "{}", out.stderr);
    }
    // The same file is fine where the limit leaves room.
    let out = run_cmd(command_with_nofile(4096, 4096).args(["check-config", config]));
    assert!(out.status.success(), "{}", out.stderr);
}
