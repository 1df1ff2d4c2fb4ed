//! BACnet/IP polling: how fast our plugin (`t3-plugin-bacnet`) reads every point of one device,
//! with ReadPropertyMultiple and with ReadProperty, beside a Python integrator's bacpypes3 client
//! doing the same reads against the same device in the same run.
//!
//! The device is bacpypes3 itself (`plugins/bacnet/tests/peer/device.py`, a child process) on
//! 127.0.0.1 at a free UDP port, serving its 12 standard objects plus `N - 12` analog values
//! (`--extra`), so N points. Against it, one client at a time, each a child process:
//! - `ours-rpm` / `ours-rp`: this binary with `--role ours`: `Bacnet::open` with `use_rpm` true /
//!   false and `cov` false, `Device::points`, then `Device::read` of all N points (present value
//!   and status flags of every object, as the collector asks for them) back to back. Requests and
//!   segmented answers from the plugin's own `health`.
//! - `py-rpm` / `py-rp`: `benches/peers/bacnet_client.py` under `$T3000_PYTHON`: a bacpypes3
//!   `Application` doing `read_property_multiple` (the objects cut into as many requests as ours
//!   needed per pass) or `read_property` for each object's present-value and status-flags.
//!
//! Every client runs passes back to back; the window runs from the end of the first pass to end
//! after the warm-up to the end of the first pass to end `--duration` seconds later. Both sides
//! measure their own CPU time and the device process's (from `/proc/<pid>/stat`) over their
//! window, and their peak RSS (VmHWM; Python: `ru_maxrss`). Clients are interleaved run by run;
//! the table shows the median run by points/s.

#![forbid(unsafe_code)]

use anyhow::{Context, bail};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};
use t3_benches::args::Args;
use t3_benches::measured::{Measured, get_f, get_u, print, put, run_child};
use t3_benches::report::{self, Table, bytes, count, rate, ratio};
use t3_benches::server::{clk_tck, cpu_ticks};
use t3_benches::{stats, sys};
use t3_plugin_abi::export::{Device, Plugin};
use t3_plugin_abi::{QUALITY_BAD, Sample};
use t3_plugin_bacnet::{Bacnet, BacnetDevice};

const USAGE: &str = "\
bacnet: BACnet/IP polling throughput of our plugin (ReadPropertyMultiple, ReadProperty) vs a bacpypes3 client

cargo run --release -p t3-benches --bin bacnet -- [options]
  --points LIST    device sizes: points (objects) served by the bacpypes3 device, each at least 12 (default 100,300)
  --clients LIST   subset of ours-rpm,ours-rp,py-rpm,py-rp (default all)
  --duration S     measured seconds per run (default 3)
  --warmup S       seconds of passes before the measurement starts (default 0.5)
  --repeat R       runs of every client, interleaved; the table shows the median (default 3)
  --out NAME       write the tables to benches/results/NAME.md (default bacnet)

The device (plugins/bacnet/tests/peer/device.py) and the Python client (benches/peers/bacnet_client.py)
run under $T3000_PYTHON, default $HOME/.cache/t3000/venv/bin/python (a Python with bacpypes3 0.0.x;
`.ci/run` sets one up).";

const KEYS: &[&str] = &[
    "points",
    "clients",
    "duration",
    "warmup",
    "repeat",
    "out",
    // Internal: the `ours` child.
    "role",
    "port",
    "rpm",
    "device-pid",
];
const CLIENTS: [&str; 4] = ["ours-rpm", "ours-rp", "py-rpm", "py-rp"];
/// Objects of device.py without `--extra`.
const STANDARD_OBJECTS: usize = 12;
const INSTANCE: u32 = 599;
/// Embedded so the binary runs from anywhere; written to a scratch directory at start.
const DEVICE_PY: &str = include_str!("../../../plugins/bacnet/tests/peer/device.py");
const CLIENT_PY: &str = include_str!("../../peers/bacnet_client.py");

#[derive(Debug)]
struct Params {
    points: Vec<usize>,
    clients: Vec<String>,
    duration: f64,
    warmup: f64,
    repeat: usize,
    out: String,
}

fn list(a: &Args, key: &str, default: &[&str]) -> Vec<String> {
    a.string(key)
        .map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
        .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect())
}

impl Params {
    fn from(a: &Args) -> anyhow::Result<Params> {
        let clients = list(a, "clients", &CLIENTS);
        for c in &clients {
            if !CLIENTS.contains(&c.as_str()) {
                bail!("unknown client `{c}` (expected {})", CLIENTS.join(", "));
            }
        }
        let points = list(a, "points", &["100", "300"])
            .iter()
            .map(|d| d.parse::<usize>().with_context(|| format!("--points: `{d}`")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if points.iter().any(|&n| !(STANDARD_OBJECTS..=5000).contains(&n)) {
            bail!("--points must be between {STANDARD_OBJECTS} (the device's standard objects) and 5000");
        }
        let p = Params {
            points,
            clients,
            duration: a.get("duration", 3.0)?,
            warmup: a.get("warmup", 0.5)?,
            repeat: a.get("repeat", 3)?,
            out: a.string("out").unwrap_or_else(|| "bacnet".into()),
        };
        if p.duration <= 0.0 || p.warmup < 0.0 || p.repeat == 0 {
            bail!("--duration and --repeat must be positive, --warmup at least 0");
        }
        Ok(p)
    }
}

fn per_sec(m: &Measured, k: &str) -> f64 {
    get_f(m, k) / get_f(m, "secs")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse(KEYS, &[], USAGE)?;
    match args.string("role").as_deref() {
        None => parent(&Params::from(&args)?),
        Some("ours") => {
            let port: u16 = args.opt("port")?.context("--port")?;
            let rpm: bool = args.opt("rpm")?.context("--rpm")?;
            let device_pid = args.string("device-pid").context("--device-pid")?;
            let w = Window { warmup: args.get("warmup", 0.5)?, duration: args.get("duration", 3.0)? };
            print(&run_ours(port, rpm, &device_pid, w)?);
            Ok(())
        }
        Some(other) => bail!("unknown role `{other}`"),
    }
}

fn python() -> PathBuf {
    match std::env::var_os("T3000_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            home.join(".cache/t3000/venv/bin/python")
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    warmup: f64,
    duration: f64,
}

// ------------------------------------------------------------------------------------------------
// The device

/// The bacpypes3 device in a child process.
#[derive(Debug)]
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
}

impl Peer {
    fn start(script: &Path, points: usize) -> anyhow::Result<Peer> {
        // A free port: bound and released (the device binds it right after).
        let port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
        let python = python();
        let mut child = Command::new(&python)
            .arg(script)
            .args(["--port", &port.to_string(), "--instance", &INSTANCE.to_string()])
            .args(["--extra", &(points - STANDARD_OBJECTS).to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| {
                format!("start {} (set T3000_PYTHON to a Python with bacpypes3; `.ci/run` makes one)", python.display())
            })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("device stdout")?;
        let (tx, lines): (_, Receiver<String>) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut peer = Peer { child, stdin, port };
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(l) if l == format!("ready 127.0.0.1:{port}") => Ok(peer),
            other => {
                let exited = peer.child.try_wait();
                bail!("the bacpypes3 device did not start: {other:?} (exited: {exited:?})")
            }
        }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Closing its standard input ends device.py's command loop, and with it the device.
        drop(self.stdin.take());
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn open(port: u16, rpm: bool) -> anyhow::Result<BacnetDevice> {
    let config = json!({
        "ip_address": "127.0.0.1", "port": port, "device_instance": INSTANCE, "local_address": "127.0.0.1",
        "use_rpm": rpm, "cov": false, "name": "bench",
    })
    .to_string();
    Bacnet::check_config(config.as_bytes()).map_err(|e| anyhow::anyhow!("check_config: {e:?}"))?;
    Bacnet::open(config.as_bytes()).map_err(|e| anyhow::anyhow!("open: {e:?}"))
}

fn health(d: &mut BacnetDevice) -> Json {
    serde_json::from_str(&d.health()).unwrap_or(Json::Null)
}

/// One `Device::read` of every point; the number of samples that came back bad.
fn read_all(d: &mut BacnetDevice, idx: &[u32], out: &mut [Sample]) -> anyhow::Result<usize> {
    for s in out.iter_mut() {
        *s = Sample::new(0, f64::NAN, QUALITY_BAD);
    }
    d.read(idx, out).map_err(|e| anyhow::anyhow!("read: {e:?}"))?;
    Ok(out.iter().filter(|s| s.quality & 0xC0 != 0xC0).count())
}

/// What the device serves, as our plugin sees it: the points' addresses (`analog-input,1`) and
/// the requests one RPM pass over all of them takes.
#[derive(Debug)]
struct Probe {
    addresses: Vec<String>,
    rpm_requests: u64,
    rpm_segmented: u64,
}

fn probe(port: u16) -> anyhow::Result<Probe> {
    let mut d = open(port, true)?;
    let points: Json = serde_json::from_str(&d.points().map_err(|e| anyhow::anyhow!("points: {e:?}"))?)?;
    let addresses: Vec<String> = points
        .as_array()
        .context("points is not an array")?
        .iter()
        .map(|p| p["address"].as_str().map(str::to_owned).context("a point without address"))
        .collect::<anyhow::Result<_>>()?;
    let idx: Vec<u32> = (0..addresses.len() as u32).collect();
    let mut out = vec![Sample::new(0, f64::NAN, QUALITY_BAD); idx.len()];
    let bad = read_all(&mut d, &idx, &mut out)?;
    anyhow::ensure!(bad == 0, "{bad} of {} points read bad: {:?}", idx.len(), health(&mut d));
    let h0 = health(&mut d);
    read_all(&mut d, &idx, &mut out)?;
    let h1 = health(&mut d);
    let delta = |k: &str| h1[k].as_u64().unwrap_or(0) - h0[k].as_u64().unwrap_or(0);
    Ok(Probe { addresses, rpm_requests: delta("requests"), rpm_segmented: delta("segmented_answers") })
}

// ------------------------------------------------------------------------------------------------
// Our client (child process)

fn run_ours(port: u16, rpm: bool, device_pid: &str, w: Window) -> anyhow::Result<Measured> {
    let mut d = open(port, rpm)?;
    let n = d
        .points()
        .map_err(|e| anyhow::anyhow!("points: {e:?}"))
        .and_then(|p| Ok(serde_json::from_str::<Json>(&p)?.as_array().map(Vec::len).unwrap_or(0)))?;
    let idx: Vec<u32> = (0..n as u32).collect();
    let mut out = vec![Sample::new(0, f64::NAN, QUALITY_BAD); n];
    let mut bad = 0;
    let warmup_end = Instant::now() + Duration::from_secs_f64(w.warmup);
    while Instant::now() < warmup_end {
        bad += read_all(&mut d, &idx, &mut out)?;
    }
    let h0 = health(&mut d);
    let cpu0 = cpu_ticks("self")?;
    let dev0 = cpu_ticks(device_pid)?;
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(w.duration);
    let mut latencies = Vec::new();
    loop {
        let a = Instant::now();
        bad += read_all(&mut d, &idx, &mut out)?;
        let b = Instant::now();
        latencies.push((b - a).as_secs_f64() * 1e6);
        if b >= end {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = (cpu_ticks("self")? - cpu0) as f64 / clk_tck();
    let dev = (cpu_ticks(device_pid)? - dev0) as f64 / clk_tck();
    let h1 = health(&mut d);
    let delta = |k: &str| h1[k].as_u64().unwrap_or(0) - h0[k].as_u64().unwrap_or(0);
    anyhow::ensure!(
        h1["read_property_multiple"].as_bool() == Some(rpm),
        "the plugin's read_property_multiple is {} (asked for {rpm})",
        h1["read_property_multiple"]
    );
    let mut m = Measured::new();
    put(&mut m, "passes", latencies.len());
    put(&mut m, "points", latencies.len() * n);
    put(&mut m, "requests", delta("requests"));
    put(&mut m, "segmented", delta("segmented_answers"));
    // `failures` counts every request answered with an error (or not at all after a transport
    // error), `timeouts` the ones never answered.
    put(&mut m, "timeouts", delta("timeouts"));
    put(&mut m, "error_answers", delta("failures"));
    put(&mut m, "last_error", h1["last_error"].as_str().unwrap_or(""));
    put(&mut m, "bad_samples", bad);
    put(&mut m, "secs", secs);
    put(&mut m, "cpu_secs", cpu);
    put(&mut m, "device_cpu_secs", dev);
    put(&mut m, "peak_rss", sys::peak_rss());
    latencies.sort_by(f64::total_cmp);
    put(&mut m, "p50_us", stats::percentile(&latencies, 0.50));
    put(&mut m, "p99_us", stats::percentile(&latencies, 0.99));
    put(&mut m, "max_us", latencies.last().copied().unwrap_or(f64::NAN));
    Ok(m)
}

// ------------------------------------------------------------------------------------------------
// Running the clients

fn run_client(client: &str, peer: &Peer, probe: &Probe, dir: &Path, w: Window) -> anyhow::Result<Measured> {
    let rpm = client.ends_with("-rpm");
    if client.starts_with("ours") {
        return run_child(
            Command::new(std::env::current_exe()?)
                .args(["--role", "ours", "--port", &peer.port.to_string(), "--rpm", &rpm.to_string()])
                .args(["--device-pid", &peer.pid()])
                .args(["--warmup", &w.warmup.to_string(), "--duration", &w.duration.to_string()]),
            &format!("{client} client"),
        );
    }
    let cfg = json!({
        "device": format!("127.0.0.1:{}", peer.port),
        "objects": probe.addresses,
        "mode": if rpm { "rpm" } else { "rp" },
        "requests": probe.rpm_requests,
        "warmup": w.warmup,
        "duration": w.duration,
        "device_pid": peer.child.id(),
    });
    let python = python();
    let out = Command::new(&python)
        .arg(dir.join("bacnet_client.py"))
        .arg(cfg.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("run {}", python.display()))?;
    if !out.status.success() {
        bail!("the {client} client failed ({}): {}", out.status, String::from_utf8_lossy(&out.stdout));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.starts_with('{')).context("no JSON from the bacpypes3 client")?;
    let v: Json = serde_json::from_str(line)?;
    let mut m = Measured::new();
    for k in ["passes", "points", "requests", "property_errors", "failures", "peak_rss"] {
        put(&mut m, k, v[k].as_u64().unwrap_or(0));
    }
    for k in ["secs", "cpu_secs", "device_cpu_secs"] {
        put(&mut m, k, v[k].as_f64().unwrap_or(f64::NAN));
    }
    for k in ["version", "first_property_error", "first_failure"] {
        put(&mut m, k, v[k].as_str().unwrap_or(""));
    }
    let mut lat: Vec<f64> = v["latencies_us"].as_array().into_iter().flatten().filter_map(Json::as_f64).collect();
    lat.sort_by(f64::total_cmp);
    put(&mut m, "p50_us", stats::percentile(&lat, 0.50));
    put(&mut m, "p99_us", stats::percentile(&lat, 0.99));
    put(&mut m, "max_us", lat.last().copied().unwrap_or(f64::NAN));
    Ok(m)
}

/// The median run by points/s, and every run's points/s in order.
fn median_by(mut runs: Vec<Measured>) -> (Measured, Vec<f64>) {
    let all: Vec<f64> = runs.iter().map(|m| per_sec(m, "points")).collect();
    runs.sort_by(|a, b| per_sec(a, "points").total_cmp(&per_sec(b, "points")));
    // The lower middle run for an even count: a run that happened, not an average of two.
    let mid = (runs.len() - 1) / 2;
    (runs.swap_remove(mid), all)
}

fn label(client: &str) -> &'static str {
    match client {
        "ours-rpm" => "ours: t3-plugin-bacnet, ReadPropertyMultiple",
        "ours-rp" => "ours: t3-plugin-bacnet, ReadProperty",
        "py-rpm" => "bacpypes3 client, read_property_multiple",
        _ => "bacpypes3 client, read_property",
    }
}

fn ms_of_us(us: f64) -> String {
    report::ms(us / 1e3)
}

fn parent(p: &Params) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let device_py = scratch.path().join("device.py");
    std::fs::write(&device_py, DEVICE_PY)?;
    std::fs::write(scratch.path().join("bacnet_client.py"), CLIENT_PY)?;
    let w = Window { warmup: p.warmup, duration: p.duration };
    let load_before = sys::loadavg();
    let started = chrono::Utc::now();

    // (points, client) -> median run, every run's points/s.
    let mut results: Vec<(usize, String, Measured, Vec<f64>)> = Vec::new();
    let mut probes: Vec<(usize, Probe)> = Vec::new();
    let mut py_version = String::new();
    for &n in &p.points {
        eprintln!("[bacnet] starting the bacpypes3 device with {n} objects ...");
        let peer = Peer::start(&device_py, n)?;
        let probe = probe(peer.port)?;
        anyhow::ensure!(
            probe.addresses.len() == n,
            "the plugin found {} points on the device, expected {n}",
            probe.addresses.len()
        );
        eprintln!(
            "[bacnet]   {} points; one ReadPropertyMultiple pass takes {} requests ({} segmented answers)",
            n, probe.rpm_requests, probe.rpm_segmented
        );
        let mut runs: BTreeMap<String, Vec<Measured>> = BTreeMap::new();
        for r in 0..p.repeat {
            for c in &p.clients {
                eprintln!("[bacnet] {n} points, {c}, run {}/{} ...", r + 1, p.repeat);
                let m = run_client(c, &peer, &probe, scratch.path(), w)?;
                eprintln!(
                    "[bacnet]   points: {}, requests: {}, full read p50 {}, client CPU {:.0} %, device CPU {:.0} %",
                    rate(per_sec(&m, "points")),
                    rate(per_sec(&m, "requests")),
                    ms_of_us(get_f(&m, "p50_us")),
                    get_f(&m, "cpu_secs") / get_f(&m, "secs") * 100.0,
                    get_f(&m, "device_cpu_secs") / get_f(&m, "secs") * 100.0,
                );
                if let Some(v) = m.get("version") {
                    py_version = v.clone();
                }
                runs.entry(c.clone()).or_default().push(m);
            }
        }
        drop(peer);
        for c in &p.clients {
            let (m, all) = median_by(runs.remove(c).unwrap_or_default());
            results.push((n, c.clone(), m, all));
        }
        probes.push((n, probe));
    }

    let mut md = String::new();
    md.push_str("# BACnet/IP poll benchmark\n\n");
    md.push_str(&format!("- Command: `{}`\n", report::command_line()));
    md.push_str(&format!("- Run: {} on {}\n", started.format("%Y-%m-%d %H:%M UTC"), sys::machine()));
    md.push_str(&format!(
        "- Load average (1/5/15 min) before the runs: {load_before}; after: {} (anything else running shares the cores).\n",
        sys::loadavg()
    ));
    md.push_str(&format!(
        "- Device: bacpypes3 (`plugins/bacnet/tests/peer/device.py`: its 12 standard objects plus `--extra N-12` analog values, \
         max APDU 1024, segmentation both) on 127.0.0.1 at a free UDP port, one Python process; {}. \
         bacpypes3 is single-threaded Python and spends far more CPU per request than either client (the device and \
         client CPU columns); with one request outstanding at a time, the rest of each round trip is waiting for \
         loopback wake-ups. Client and device share the machine's 2 cores.\n",
        if py_version.is_empty() { "Python and bacpypes3 versions not reported".to_string() } else { py_version.clone() }
    ));
    md.push_str(&format!(
        "- Each pass reads present-value and status-flags of every object, one request at a time. \
         ReadPropertyMultiple: {}; the bacpypes3 client cuts the objects into as many requests, of nearly equal size. \
         ReadProperty: 2 requests per point.\n",
        probes
            .iter()
            .map(|(n, pr)| format!(
                "{n} points take {} requests per pass with our plugin ({} of them answered segmented)",
                pr.rpm_requests, pr.rpm_segmented
            ))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    md.push_str(&format!(
        "- Each client is a child process; {} s of passes as warm-up, then {} s measured (to the end of the pass running \
         then); {} runs per client, interleaved; the table shows the median run by points/s (the lower middle one for \
         an even count). Full read = one pass over all points. CPU is % of one core over the measured window; \
         device CPU from /proc/<pid>/stat over the same window. Peak RSS: VmHWM (ours), `ru_maxrss` (bacpypes3).\n\n",
        p.warmup, p.duration, p.repeat
    ));
    let mut t = Table::new(&[
        "Client",
        "Points",
        "Points/s",
        "ours / bacpypes3",
        "Requests/s",
        "Requests per pass",
        "Passes",
        "Full read p50",
        "Full read p99",
        "Client CPU",
        "Client CPU µs per point",
        "Device CPU",
        "Device CPU µs per request",
        "Client peak RSS",
        "Errors",
        "Every run (points/s)",
    ]);
    let find = |n: usize, c: &str| results.iter().find(|(d, cl, _, _)| *d == n && cl == c).map(|(_, _, m, _)| m);
    for (n, c, m, all) in &results {
        let peer_of = match c.as_str() {
            "ours-rpm" => find(*n, "py-rpm"),
            "ours-rp" => find(*n, "py-rp"),
            _ => None,
        };
        let passes = get_u(m, "passes").max(1) as f64;
        let errors = if c.starts_with("ours") {
            let mut s = format!("{} unanswered, {} bad samples", get_u(m, "timeouts"), get_u(m, "bad_samples"));
            let e = get_u(m, "error_answers");
            if e > 0 {
                s.push_str(&format!("; {:.1} error answers per pass (last: {})", e as f64 / passes, m["last_error"]));
            }
            s
        } else {
            let mut s = format!("{} failed requests", get_u(m, "failures"));
            let e = get_u(m, "property_errors");
            if e > 0 {
                s.push_str(&format!(
                    "; {:.1} property errors per pass ({})",
                    e as f64 / passes,
                    m["first_property_error"]
                ));
            }
            if !m["first_failure"].is_empty() {
                s.push_str(&format!("; first failure: {}", m["first_failure"]));
            }
            s
        };
        let cpu = get_f(m, "cpu_secs");
        t.row(vec![
            label(c).to_string(),
            n.to_string(),
            rate(per_sec(m, "points")),
            peer_of.map(|o| ratio(per_sec(m, "points"), per_sec(o, "points"))).unwrap_or_else(|| "-".into()),
            rate(per_sec(m, "requests")),
            format!("{:.0}", get_f(m, "requests") / get_f(m, "passes")),
            count(get_u(m, "passes")),
            ms_of_us(get_f(m, "p50_us")),
            ms_of_us(get_f(m, "p99_us")),
            format!("{:.1} %", cpu / get_f(m, "secs") * 100.0),
            format!("{:.1}", cpu * 1e6 / get_f(m, "points")),
            format!("{:.1} %", get_f(m, "device_cpu_secs") / get_f(m, "secs") * 100.0),
            format!("{:.0}", get_f(m, "device_cpu_secs") * 1e6 / get_f(m, "requests")),
            bytes(get_u(m, "peak_rss")),
            errors,
            all.iter().map(|r| count(r.round() as u64)).collect::<Vec<_>>().join(", "),
        ]);
    }
    md.push_str("## Reading every point of one device\n\n");
    md.push_str(&t.render());
    md.push_str(
        "\n- ours: `t3_plugin_bacnet::Bacnet::open` (the rlib; the server calls the same code through the cdylib and the \
         plugin ABI) with `use_rpm` true or false and `cov` false, then `Device::read` of all points, which reads present \
         value and status flags of each object and turns them into samples. Requests, segmented answers, timeouts and \
         error answers from the plugin's `health` (an error inside a ReadPropertyMultiple answer is not one); bad \
         samples = samples whose quality is not good.\n\
         - bacpypes3: `benches/peers/bacnet_client.py`, an `Application` on 127.0.0.1 awaiting \
         `read_property_multiple` / `read_property` one at a time, identifiers parsed once before the first pass. \
         Property errors are properties the device answered with an error; failed requests got no usable answer.\n\
         - The test device has no status-flags on `binary-value,1` (bacpypes3's commandable binary value answers \
         unknown-property): one error per pass for every client. Our plugin then gives that point good quality from \
         its present value alone.\n\
         - Full read p99 is the nearest-rank percentile of the measured passes: with fewer than 100 passes it is the \
         slowest one.\n\
         - Points/s is bounded by the device and the round trips; the client CPU per point says how much work each \
         client itself does for the same reads.\n"
    );
    print!("{md}");
    let path = report::write_results(&p.out, &md)?;
    eprintln!("[bacnet] wrote {}", path.display());
    Ok(())
}
