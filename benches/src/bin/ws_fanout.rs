//! WebSocket fan-out: C clients subscribed to P points while samples of those points are pushed at
//! R updates/s in total (POST /api/t3000/samples, batches every 10 ms, each sample stamped with the
//! time it was sent). Every client measures the latency from that stamp to the receipt of each
//! PointUpdate (hdrhistogram) and counts what it got; the server's CPU and memory come from /proc.
//!
//! The server is the real `t3000 serve` (a child process); the load generator (a thread, plain
//! HTTP/1.1) and the clients (a minimal WebSocket reader on a tokio runtime) share the machine with it, so
//! the latency includes their scheduling too.

use anyhow::{Context, bail};
use bytes::Buf;
use hdrhistogram::Histogram;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use t3_benches::args::Args;
use t3_benches::server::{ADMIN_PASSWORD, clk_tck, cpu_ticks, http, login, now_us, status_bytes};
use t3_benches::{report, sys};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USAGE: &str = "\
ws_fanout: WebSocket fan-out latency, CPU and memory of `t3000 serve`

cargo build --release --bin t3000
cargo run --release -p t3-benches --bin ws_fanout -- [options]
  --clients C      WebSocket clients, each subscribed to every point (default 500)
  --points P       points (default 1000)
  --rate R         updates per second in total (default 10000)
  --secs S         seconds of load (default 20)
  --batch B        true: subscribe with `batch: true` (PointUpdates frames); false: one frame per
                   update (default true)
  --t3000 PATH     the server binary (default: t3000 beside this program)
  --work-dir DIR   where the server's data directory goes (default $HOME/.cache/t3000/bench-data)
  --out NAME       write the table to benches/results/NAME.md (default ws-fanout)";

const KEYS: &[&str] = &["clients", "points", "rate", "secs", "batch", "t3000", "work-dir", "out"];

/// What one client saw.
struct Seen {
    updates: u64,
    lagged: u64,
    missed: u64,
    latency_us: Histogram<u64>,
    closed: bool,
}

/// The integer after `"key":` in a JSON text.
fn int_field(text: &str, key: &str) -> Option<i64> {
    let at = text.find(key)? + key.len();
    let digits: &str = text[at..].split(|c: char| !(c.is_ascii_digit() || c == '-')).next()?;
    digits.parse().ok()
}

/// The `ts_us` of each update in a PointUpdate or PointUpdates frame, and whether it is part of a
/// snapshot, in one pass over the text (the clients share the 2 cores with the server, so what
/// they spend reading is taken from it).
fn each_update(text: &[u8], ts_key: &memchr::memmem::Finder<'_>, mut f: impl FnMut(i64, bool)) {
    let mut at = 0;
    while let Some(i) = ts_key.find(&text[at..]) {
        let mut j = at + i + ts_key.needle().len();
        let mut ts = 0i64;
        while let Some(d) = text.get(j).filter(|b| b.is_ascii_digit()) {
            ts = ts * 10 + i64::from(d - b'0');
            j += 1;
        }
        // `snapshot` is the update's last field: `..."snapshot":true}`.
        let end = memchr::memchr(b'}', &text[j..]).map_or(text.len(), |k| j + k);
        f(ts, text[..end].ends_with(b"true"));
        at = end;
    }
}

/// A WebSocket client cut down to what the benchmark needs (RFC 6455: the opening handshake,
/// masked text frames out, unmasked unfragmented frames in, a pong for each ping). It reads into
/// one buffer without zeroing it: tungstenite zeroes its read buffer at every read, which took
/// 11 % of this 2-core machine at 500 clients, time the server then did not get.
struct WsClient {
    stream: tokio::net::TcpStream,
    buf: bytes::BytesMut,
}

/// An opcode and a payload.
type Frame = (u8, bytes::Bytes);
const TEXT: u8 = 1;
const CLOSE: u8 = 8;
const PING: u8 = 9;
const PONG: u8 = 10;

impl WsClient {
    async fn connect(addr: &str, path: &str, token: &str) -> anyhow::Result<Self> {
        let mut stream = tokio::net::TcpStream::connect(addr).await.context("connect")?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Authorization: Bearer {token}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = bytes::BytesMut::with_capacity(64 * 1024);
        let head_len = loop {
            if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            anyhow::ensure!(stream.read_buf(&mut buf).await? > 0, "the server closed during the handshake");
        };
        let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
        anyhow::ensure!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        buf.advance(head_len);
        Ok(Self { stream, buf })
    }

    async fn send(&mut self, opcode: u8, payload: &[u8]) -> anyhow::Result<()> {
        let mask: [u8; 4] = rand::random();
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        match payload.len() {
            n @ 0..=125 => frame.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await?;
        Ok(())
    }

    /// The next frame; `None` when the server closed. Cancel safe (only `read_buf` awaits).
    async fn next(&mut self) -> anyhow::Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.parse()? {
                return Ok(Some(frame));
            }
            self.buf.reserve(64 * 1024);
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    fn parse(&mut self) -> anyhow::Result<Option<Frame>> {
        let b = &self.buf[..];
        if b.len() < 2 {
            return Ok(None);
        }
        anyhow::ensure!(b[0] & 0x80 != 0 && b[0] & 0x0F != 0, "fragmented frame");
        anyhow::ensure!(b[1] & 0x80 == 0, "masked frame from the server");
        let (head, len) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (4, usize::from(u16::from_be_bytes([b[2], b[3]]))),
            127 if b.len() >= 10 => (10, u64::from_be_bytes(b[2..10].try_into()?) as usize),
            126 | 127 => return Ok(None),
            n => (2, usize::from(n)),
        };
        if b.len() < head + len {
            return Ok(None);
        }
        let opcode = b[0] & 0x0F;
        self.buf.advance(head);
        Ok(Some((opcode, self.buf.split_to(len).freeze())))
    }
}

async fn client(
    addr: String,
    token: String,
    points: u32,
    batch: bool,
    ready: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Seen> {
    let mut ws = WsClient::connect(&addr, "/api/t3000/ws", &token).await?;
    let ids: Vec<u32> = (1..=points).collect();
    let sub = serde_json::json!({"type": "Subscribe", "request_id": 1, "points": ids, "batch": batch});
    ws.send(TEXT, sub.to_string().as_bytes()).await?;
    let mut seen = Seen {
        updates: 0,
        lagged: 0,
        missed: 0,
        latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
        closed: false,
    };
    let mut snapshot = 0u32;
    let mut counted_ready = false;
    let ts_key = memchr::memmem::Finder::new(b"\"ts_us\":");
    loop {
        let (opcode, payload) = match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
            Err(_) => {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                continue;
            }
            Ok(Ok(Some((CLOSE, _)))) | Ok(Ok(None)) | Ok(Err(_)) => {
                seen.closed = true;
                break;
            }
            Ok(Ok(Some(frame))) => frame,
        };
        if opcode == PING {
            ws.send(PONG, &payload).await?;
            continue;
        }
        if opcode != TEXT {
            continue;
        }
        let text = std::str::from_utf8(&payload)?;
        if text.starts_with("{\"type\":\"PointUpdate") {
            let now = now_us();
            each_update(text.as_bytes(), &ts_key, |ts, in_snapshot| {
                if in_snapshot {
                    snapshot += 1;
                    if snapshot == points && !counted_ready {
                        counted_ready = true;
                        ready.fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    seen.updates += 1;
                    seen.latency_us.saturating_record((now - ts).max(1) as u64);
                }
            });
        } else if text.starts_with("{\"type\":\"Lagged\"") {
            seen.lagged += 1;
            seen.missed += int_field(text, "\"missed\":").unwrap_or(0) as u64;
        }
    }
    Ok(seen)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse(KEYS, &[], USAGE)?;
    let clients: usize = args.get("clients", 500)?;
    let points: u32 = args.get("points", 1000)?;
    let rate: u64 = args.get("rate", 10_000)?;
    let secs: f64 = args.get("secs", 20.0)?;
    let batch: bool = args.get("batch", true)?;
    let out_name = args.string("out").unwrap_or_else(|| "ws-fanout".into());
    let work_dir: PathBuf = args.opt("work-dir")?.unwrap_or_else(sys::default_work_dir);
    let t3000: PathBuf = match args.opt::<PathBuf>("t3000")? {
        Some(p) => p,
        None => std::env::current_exe()?.parent().context("exe dir")?.join("t3000"),
    };
    std::fs::create_dir_all(&work_dir)?;
    let dir = tempfile::Builder::new().prefix("ws-fanout-").tempdir_in(&work_dir)?;
    let config = dir.path().join("t3000.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = {}\n[log]\nlevel = \"warn\"\n[auth]\nadmin_password = \"{ADMIN_PASSWORD}\"\n[websocket]\nmax_clients = {}\n",
            serde_json::Value::String(dir.path().join("data").display().to_string()),
            clients + 10
        ),
    )?;
    let log = std::fs::File::create(dir.path().join("server.log"))?;
    let mut child = Command::new(&t3000)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("start {} (cargo build --release --bin t3000)", t3000.display()))?;
    let pid = child.id().to_string();
    let result = (|| -> anyhow::Result<String> {
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().context("stdout")?);
        out.read_line(&mut line)?;
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let addr =
            line.trim().strip_prefix("t3000 listening on http://").context("the server did not start")?.to_owned();
        let token = login(&addr)?;
        // A first value of every point, so that subscriptions start with a snapshot.
        let seed: Vec<serde_json::Value> =
            (1..=points).map(|p| serde_json::json!({"point_id": p, "ts": now_us(), "value": 0.0})).collect();
        let (status, body) =
            http(&addr, Some(&token), "POST", "/api/t3000/samples", Some(&serde_json::Value::from(seed).to_string()))?;
        anyhow::ensure!(status == 200, "seed: {status} {body}");

        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let ready = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        eprintln!("connecting {clients} clients to ws://{addr}/api/t3000/ws");
        let connect_started = Instant::now();
        let handles: Vec<_> = (0..clients)
            .map(|_| rt.spawn(client(addr.clone(), token.clone(), points, batch, ready.clone(), stop.clone())))
            .collect();
        while (ready.load(Ordering::Relaxed) as usize) < clients {
            if connect_started.elapsed() > Duration::from_secs(120) {
                bail!("only {} of {clients} clients got their snapshot within 120 s", ready.load(Ordering::Relaxed));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let connect_secs = connect_started.elapsed().as_secs_f64();
        eprintln!("all subscribed in {connect_secs:.1} s; {rate} updates/s for {secs} s");
        let rss0 = status_bytes(&pid, "VmRSS") / 1024;
        let (cpu0, self0, t0) = (cpu_ticks(&pid).unwrap_or(0), cpu_ticks("self").unwrap_or(0), Instant::now());
        // The load: a batch every 10 ms, points in turn, from WRITERS threads taking turns (one
        // POST at a time would cap the rate at one fsync per batch).
        const WRITERS: u64 = 4;
        let per_batch = (rate / 100).max(1);
        let sent = Arc::new(AtomicU64::new(0));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (addr, token, sent) = (addr.clone(), token.clone(), sent.clone());
                std::thread::spawn(move || -> anyhow::Result<()> {
                    let mut tick = w;
                    loop {
                        let due = Duration::from_millis(10 * tick);
                        if due.as_secs_f64() >= secs {
                            return Ok(());
                        }
                        if let Some(wait) = due.checked_sub(t0.elapsed()) {
                            std::thread::sleep(wait);
                        }
                        let ts = now_us();
                        let first = tick * per_batch;
                        let batch: Vec<String> = (0..per_batch)
                            .map(|i| {
                                let k = first + i;
                                let p = (k % u64::from(points)) as u32 + 1;
                                // Unique (point, ts) even when a batch holds a point twice.
                                let ts = ts + (i / u64::from(points)) as i64;
                                format!("{{\"point_id\":{p},\"ts\":{ts},\"value\":{}}}", tick % 1000)
                            })
                            .collect();
                        let body = format!("[{}]", batch.join(","));
                        let (status, reply) = http(&addr, Some(&token), "POST", "/api/t3000/samples", Some(&body))?;
                        anyhow::ensure!(status == 200, "ingest: {status} {reply}");
                        sent.fetch_add(per_batch, Ordering::Relaxed);
                        tick += WRITERS;
                    }
                })
            })
            .collect();
        let mut rss_max = rss0;
        while t0.elapsed().as_secs_f64() < secs {
            std::thread::sleep(Duration::from_millis(500));
            rss_max = rss_max.max(status_bytes(&pid, "VmRSS") / 1024);
        }
        for w in writers {
            w.join().map_err(|_| anyhow::anyhow!("a writer panicked"))??;
        }
        let sent = sent.load(Ordering::Relaxed);
        let load_secs = t0.elapsed().as_secs_f64();
        let (cpu1, self1) = (cpu_ticks(&pid).unwrap_or(0), cpu_ticks("self").unwrap_or(0));
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
        let rss1 = status_bytes(&pid, "VmRSS") / 1024;
        let hwm = status_bytes(&pid, "VmHWM") / 1024;
        let mut all = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
        let (mut complete, mut lagged_clients, mut missed, mut closed, mut received) =
            (0usize, 0usize, 0u64, 0usize, 0u64);
        for h in handles {
            let seen = rt.block_on(h)??;
            all.add(&seen.latency_us)?;
            received += seen.updates;
            complete += usize::from(seen.updates == sent && seen.lagged == 0);
            lagged_clients += usize::from(seen.lagged > 0);
            missed += seen.missed;
            closed += usize::from(seen.closed);
        }
        drop(rt);
        let tck = clk_tck();
        let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
        let server_cpu = (cpu1 - cpu0) as f64 / tck / load_secs * 100.0;
        let bench_cpu = (self1 - self0) as f64 / tck / load_secs * 100.0;
        let p99 = ms(0.99);
        let mut md = String::new();
        md.push_str(&format!(
            "# WebSocket fan-out\n\n`{}` on {}; load average before: {}.\n\n",
            report::command_line(),
            sys::machine(),
            sys::loadavg()
        ));
        md.push_str(&format!(
            "{clients} clients, each subscribed to {points} points ({}); {sent} updates pushed in {load_secs:.1} s \
             ({:.0}/s, batches of {per_batch} every 10 ms over HTTP); {:.0} PointUpdates/s delivered in total. \
             Latency: from the time stamped in each sample just before its POST to the client's receipt \
             (the WAL fsync of the ingest is included).\n\n",
            if batch { "`batch: true`: PointUpdates frames" } else { "one PointUpdate frame per update" },
            sent as f64 / load_secs,
            received as f64 / load_secs
        ));
        md.push_str("| measure | value |\n|---|---:|\n");
        md.push_str(&format!(
            "| latency p50 | {:.1} ms |\n| latency p99 | {p99:.1} ms |\n| latency max | {:.1} ms |\n",
            ms(0.5),
            all.max() as f64 / 1000.0
        ));
        md.push_str(&format!("| target p99 < 50 ms | {} |\n", report::pass(p99 < 50.0)));
        md.push_str(&format!("| clients that got every update (no Lagged) | {complete} of {clients} |\n"));
        md.push_str(&format!("| clients that lagged / missed messages | {lagged_clients} / {missed} |\n"));
        md.push_str(&format!("| clients disconnected | {closed} |\n"));
        md.push_str(&format!("| server CPU (% of one core) | {server_cpu:.0} % |\n"));
        md.push_str(&format!("| benchmark process CPU (clients + load) | {bench_cpu:.0} % |\n"));
        md.push_str(&format!(
            "| server RSS: before load / max during / after / peak (VmHWM) | {} / {} / {} / {} MiB |\n",
            rss0 / 1024,
            rss_max / 1024,
            rss1 / 1024,
            hwm / 1024
        ));
        md.push_str(&format!("| time to connect and snapshot all clients | {connect_secs:.1} s |\n"));
        Ok(md)
    })();
    let _ = child.kill();
    let _ = child.wait();
    let md = result?;
    println!("{md}");
    let path = report::write_results(&out_name, &md)?;
    eprintln!("written to {}", path.display());
    Ok(())
}
