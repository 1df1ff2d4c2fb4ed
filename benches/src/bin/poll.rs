//! Polling: how fast our Modbus path reads simulated T3 controllers, beside a bare tokio-modbus loop
//! and pymodbus, and what a server polling a fleet costs in CPU and memory.
//!
//! Part 1, throughput: N simulated T3 controllers, each on its own Modbus TCP listener on loopback,
//! served by a child process (this binary with `--role sim`) so the server never shares a runtime
//! with a client. Against them, each client in a child process of its own issues the T3-controller
//! profile's full read plan as the collector makes it (IN1..64, OUT1..64, VAR1..128 values, their
//! auto/manual registers and the registers saying whether each is digital, planned by
//! `t3_drivers::planner` under the profile's limits) back to back on every device at once; the
//! simulator counts what it receives, so every row shows the requests per pass it really saw:
//! - `ours`: the collector's per-poll path at full speed: `ModbusDriver::read` over the plan, then
//!   what `Poller::samples` does (locate each item in its reply, the auto/manual and digital flags,
//!   decode with the point's codec, one `Sample` per point) and a counting `SampleSink`. What it
//!   leaves out of `Poller::poll` is the timer and the status-board update.
//! - `collector`: the real `Collector` with its device tasks, every point's interval set to zero (the
//!   configuration allows 100 ms at least, `DeviceSpec` takes any), and a counting sink. Each poll
//!   still waits for the next tick of tokio's 1 ms timer wheel, so this row shows the task's own
//!   ceiling, not the read path's.
//! - `bare`: `tokio_modbus::client::tcp::connect` and `read_holding_registers` over the same plan,
//!   nothing decoded: the physical limit of this machine.
//! - `pymodbus`: `AsyncModbusTcpClient` under `$T3000_PYTHON`, the same reads, counts printed as JSON.
//!
//! Part 2, fleet: the real `t3000 serve` with a generated configuration of D devices x P points
//! polled every second (each device its own simulator listener, so its own connection), its CPU
//! from `/proc/<pid>/stat` and memory from `/proc/<pid>/status`, beside the same binary with no
//! devices; the polls counted from `GET /api/t3000/devices` and the samples stored from SQL.

#![forbid(unsafe_code)]

use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use t3_benches::args::Args;
use t3_benches::measured::{Measured, get_f, get_u, print, put, run_child};
use t3_benches::report::{self, Table, bytes, count, pass, rate, ratio};
use t3_benches::server::{ADMIN_PASSWORD, clk_tck, cpu_ticks, http, login, now_us, status_bytes, toml_str};
use t3_benches::sys;
use t3_core::clock::{Clock, SystemClock};
use t3_core::config::{CollectorConfig, DeviceConfig, Parity, Protocol, RecordConfig};
use t3_core::{Quality, Sample};
use t3_drivers::codec::RegisterKind;
use t3_drivers::collector::{Collector, CollectorPoint, DeviceSpec, PollGroup, SampleSink, poll_groups};
use t3_drivers::driver::{Driver, DriverError, RawData};
use t3_drivers::modbus::{Endpoint, ModbusDriver};
use t3_drivers::planner::ReadRequest;
use t3_drivers::profile::{Profile, ProfileLibrary, T3_CONTROLLER};
use t3_drivers::simulator::{SimDeviceSpec, Simulator};

const USAGE: &str = "\
poll: Modbus poll throughput (ours vs bare tokio-modbus vs pymodbus) and the cost of polling a fleet

cargo run --release -p t3-benches --bin poll -- [options]
  --parts LIST           throughput,fleet (default both)
  --devices LIST         throughput: concurrent devices per run, each its own listener (default 1,10)
  --clients LIST         throughput: subset of ours,collector,bare,pymodbus (default all)
  --duration S           throughput: measured seconds per run (default 10)
  --warmup S             throughput: seconds polled before the measurement starts (default 2)
  --repeat R             throughput: runs of every client, interleaved; the table shows the median (default 5)
  --fleet-repeat R       fleet: runs of the idle and the polling server, alternating (default 3)
  --fleet-devices D      fleet: simulated devices (default 200)
  --fleet-points P       fleet: points per device, the first P of the T3-controller profile (default 200)
  --fleet-interval-ms I  fleet: poll interval (default 1000)
  --fleet-secs S         fleet: measured seconds (default 60)
  --fleet-warmup S       fleet: seconds after start-up before measuring (default 20)
  --t3000 PATH           the server binary (default: t3000 beside this binary, $CARGO_TARGET_DIR/release)
  --work-dir DIR         where data directories go (default $HOME/.cache/t3000/bench-data)
  --out NAME             write the tables to benches/results/NAME.md (default poll)

pymodbus runs under $T3000_PYTHON (a Python with pymodbus<4; `.ci/run` sets one up).";

const KEYS: &[&str] = &[
    "parts",
    "devices",
    "clients",
    "duration",
    "warmup",
    "repeat",
    "fleet-repeat",
    "fleet-devices",
    "fleet-points",
    "fleet-interval-ms",
    "fleet-secs",
    "fleet-warmup",
    "t3000",
    "work-dir",
    "out",
    // Internal: child processes.
    "role",
    "client",
    "ports",
    "sim-devices",
];
const CLIENTS: [&str; 4] = ["ours", "collector", "bare", "pymodbus"];
/// Every simulated device answers as unit 1 on its own listener.
const UNIT: u8 = 1;
/// Targets of the issue.
const TARGET_VS_BARE: f64 = 0.80;
const TARGET_VS_PYMODBUS: f64 = 5.0;
const TARGET_CPU_PCT: f64 = 10.0;
const TARGET_EXTRA_RSS: u64 = 100_000_000;

#[derive(Debug)]
struct Params {
    throughput: bool,
    fleet: bool,
    devices: Vec<usize>,
    clients: Vec<String>,
    duration: f64,
    warmup: f64,
    repeat: usize,
    fleet_repeat: usize,
    fleet_devices: usize,
    fleet_points: usize,
    fleet_interval_ms: u64,
    fleet_secs: f64,
    fleet_warmup: f64,
    t3000: PathBuf,
    work_dir: PathBuf,
    out: String,
}

fn list(a: &Args, key: &str, default: &[&str]) -> Vec<String> {
    a.string(key)
        .map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
        .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect())
}

impl Params {
    fn from(a: &Args) -> anyhow::Result<Params> {
        let parts = list(a, "parts", &["throughput", "fleet"]);
        for part in &parts {
            if part != "throughput" && part != "fleet" {
                bail!("unknown part `{part}` (expected throughput, fleet)");
            }
        }
        let clients = list(a, "clients", &CLIENTS);
        for c in &clients {
            if !CLIENTS.contains(&c.as_str()) {
                bail!("unknown client `{c}` (expected ours, collector, bare, pymodbus)");
            }
        }
        let devices = list(a, "devices", &["1", "10"])
            .iter()
            .map(|d| d.parse::<usize>().with_context(|| format!("--devices: `{d}`")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        // `poll` and `t3000` are built into the same target directory.
        let sibling = std::env::current_exe()?.with_file_name("t3000");
        let p = Params {
            throughput: parts.iter().any(|p| p == "throughput"),
            fleet: parts.iter().any(|p| p == "fleet"),
            devices,
            clients,
            duration: a.get("duration", 10.0)?,
            warmup: a.get("warmup", 2.0)?,
            repeat: a.get("repeat", 5)?,
            fleet_repeat: a.get("fleet-repeat", 3)?,
            fleet_devices: a.get("fleet-devices", 200)?,
            fleet_points: a.get("fleet-points", 200)?,
            fleet_interval_ms: a.get("fleet-interval-ms", 1000)?,
            fleet_secs: a.get("fleet-secs", 60.0)?,
            fleet_warmup: a.get("fleet-warmup", 20.0)?,
            t3000: a.opt::<PathBuf>("t3000")?.unwrap_or(sibling),
            work_dir: a.opt::<PathBuf>("work-dir")?.unwrap_or_else(sys::default_work_dir),
            out: a.string("out").unwrap_or_else(|| "poll".into()),
        };
        if p.devices.iter().any(|&d| d == 0 || d > 1000) {
            bail!("--devices must be between 1 and 1000");
        }
        if p.duration <= 0.0
            || p.warmup < 0.0
            || p.repeat == 0
            || p.fleet_repeat == 0
            || p.fleet_secs <= 0.0
            || p.fleet_warmup < 0.0
        {
            bail!("--duration, --repeat, --fleet-repeat and --fleet-secs must be positive, the warm-ups at least 0");
        }
        if p.fleet_devices == 0 || p.fleet_devices > 1000 {
            bail!("--fleet-devices must be between 1 and 1000");
        }
        if !(1..=256).contains(&p.fleet_points) {
            bail!("--fleet-points must be between 1 and 256 (the T3-controller profile's points)");
        }
        if !(100..=86_400_000).contains(&p.fleet_interval_ms) {
            bail!("--fleet-interval-ms must be between 100 and 86400000 (what the configuration accepts)");
        }
        Ok(p)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse(KEYS, &[], USAGE)?;
    match args.string("role").as_deref() {
        None => parent(&Params::from(&args)?),
        Some("sim") => run_sim(args.get("sim-devices", 1)?),
        Some("client") => {
            let client = args.string("client").context("--client")?;
            let ports = parse_ports(&args.string("ports").context("--ports")?)?;
            let window = Window { warmup: args.get("warmup", 2.0)?, duration: args.get("duration", 10.0)? };
            print(&run_client(&client, &ports, window)?);
            Ok(())
        }
        Some(other) => bail!("unknown role `{other}`"),
    }
}

fn parse_ports(s: &str) -> anyhow::Result<Vec<u16>> {
    s.split(',').map(|p| p.trim().parse::<u16>().with_context(|| format!("port `{p}`"))).collect()
}

// ------------------------------------------------------------------------------------------------
// The read plan

/// A device's points and their read plan: the collector's own poll group (`collector::poll_groups`)
/// for the T3 controller's first `points` points, so every client issues exactly the requests the
/// collector issues and "ours" decodes with the collector's own code.
#[derive(Debug)]
struct Plan {
    spec: DeviceSpec,
    group: PollGroup,
    requests: Vec<ReadRequest>,
}

impl Plan {
    fn t3(points: usize) -> anyhow::Result<Plan> {
        let profile = t3_profile()?;
        let config: DeviceConfig = serde_json::from_value(serde_json::json!({
            "name": "bench", "protocol": "modbus-tcp", "ip_address": "127.0.0.1", "unit_id": UNIT,
            "profile": T3_CONTROLLER,
        }))?;
        let points: Vec<CollectorPoint> = (profile.points.iter().enumerate())
            .filter(|(_, p)| !p.codec.is_text())
            .take(points)
            .enumerate()
            .map(|(i, (index, _))| CollectorPoint {
                id: i as u32 + 1,
                index,
                interval: Duration::from_secs(1),
                record: RecordConfig::default(),
            })
            .collect();
        let spec = DeviceSpec { config, profile: profile.clone(), points };
        let group = poll_groups(&spec)?.into_iter().next().context("the T3-controller has no points to poll")?;
        let requests = group.plan().to_vec();
        Ok(Plan { spec, group, requests })
    }

    fn registers(&self) -> u64 {
        self.requests.iter().map(|r| u64::from(r.count)).sum()
    }

    /// `(start, count)` of every request; all holding registers for the T3 controller.
    fn holding_spans(&self) -> anyhow::Result<Vec<(u16, u16)>> {
        self.requests
            .iter()
            .map(|r| {
                anyhow::ensure!(r.kind == RegisterKind::Holding, "the plan reads {:?} registers", r.kind);
                Ok((r.start, r.count))
            })
            .collect()
    }

    fn describe(&self) -> String {
        let spans: Vec<String> = self.requests.iter().map(|r| format!("{}+{}", r.start, r.count)).collect();
        let (values, auto_manual, flags) = self.group.counts();
        format!(
            "{} points ({values} values, {auto_manual} auto/manual registers, {flags} analog/digital flags) in {} \
             requests of holding registers, {} registers: {}",
            self.spec.points.len(),
            self.requests.len(),
            self.registers(),
            spans.join(", ")
        )
    }

    /// What the collector's poll does with one poll's results, with recording mode `every`: the
    /// collector's own decoding (`PollGroup::decode`), one sample per point.
    fn samples(
        &self,
        ids: &[u32],
        last: &mut [Option<(f64, Quality, i64)>],
        results: &[Result<RawData, DriverError>],
        ts: i64,
    ) -> Vec<Sample> {
        self.group
            .decode(&self.spec, results)
            .into_iter()
            .map(|(i, value, quality)| {
                last[i] = Some((value, quality, ts));
                Sample::new(ids[i], ts, value, quality)
            })
            .collect()
    }
}

fn t3_profile() -> anyhow::Result<&'static Arc<Profile>> {
    ProfileLibrary::builtin().get(T3_CONTROLLER).context("the built-in profile library has no T3-controller")
}

// ------------------------------------------------------------------------------------------------
// The simulator child

/// Serves `n` simulated T3 controllers, each alone (unit 1) on its own loopback listener, values
/// moving with the wall clock (ticked every second, as `t3000 demo` does). Prints the ports, then
/// answers each `count` line on its standard input with the requests its devices have received so
/// far, and serves until its standard input closes (the parent closes the pipe, or dies).
fn run_sim(n: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let mut ports = Vec::with_capacity(n);
        let mut sims = Vec::with_capacity(n);
        for i in 0..n {
            let spec = SimDeviceSpec::new(format!("sim-{i}"), UNIT, T3_CONTROLLER, 30_000 + i as u32, i as u64);
            let sim = Simulator::new(vec![spec])?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("bind a simulator port")?;
            ports.push(listener.local_addr()?.port().to_string());
            sim.spawn_behaviour(Duration::from_secs(1));
            tokio::spawn(sim.clone().serve_tcp(listener));
            sims.push(sim);
        }
        println!("PORTS\t{}", ports.join(","));
        std::io::stdout().flush()?;
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            for line in std::io::stdin().lines() {
                if line?.trim() == "count" {
                    let total: u64 = sims.iter().flat_map(|s| s.devices()).map(|d| d.requests()).sum();
                    println!("REQUESTS\t{total}");
                    std::io::stdout().flush()?;
                }
            }
            Ok(())
        })
        .await??;
        Ok::<(), anyhow::Error>(())
    })
}

/// A running simulator child process.
#[derive(Debug)]
struct SimChild {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    ports: Vec<u16>,
}

impl SimChild {
    fn start(devices: usize) -> anyhow::Result<SimChild> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--role", "sim", "--sim-devices", &devices.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start the simulator child")?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().context("simulator stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let Some(ports) = line.trim().strip_prefix("PORTS\t") else {
            let _ = child.kill();
            bail!("the simulator did not start (it printed `{}`)", line.trim());
        };
        let ports = parse_ports(ports)?;
        anyhow::ensure!(ports.len() == devices, "the simulator serves {} devices, expected {devices}", ports.len());
        Ok(SimChild { child, stdin, stdout, ports })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn ports_arg(&self) -> String {
        self.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
    }

    /// Modbus requests the simulated devices have received so far.
    fn requests(&mut self) -> anyhow::Result<u64> {
        let stdin = self.stdin.as_mut().context("simulator stdin")?;
        stdin.write_all(b"count\n")?;
        stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        line.trim()
            .strip_prefix("REQUESTS\t")
            .context("no request count from the simulator")?
            .parse()
            .map_err(Into::into)
    }
}

impl Drop for SimChild {
    fn drop(&mut self) {
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

/// Reads whatever else a child prints, so it never writes into a closed pipe.
fn drain(mut out: impl Read + Send + 'static) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut out, &mut std::io::sink());
    });
}

// ------------------------------------------------------------------------------------------------
// /proc

/// CPU ticks per thread name (`comm`) of a process: the tokio workers, the WAL writer, ...
fn cpu_ticks_by_thread(pid: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for t in tasks.flatten() {
        let tid = t.file_name().to_string_lossy().into_owned();
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default().trim().to_owned();
        if let Ok(ticks) = cpu_ticks(&format!("{pid}/task/{tid}")) {
            *out.entry(comm).or_insert(0) += ticks;
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// The client children

#[derive(Debug, Clone, Copy)]
struct Window {
    warmup: f64,
    duration: f64,
}

/// Counts of one device's client task.
#[derive(Debug, Default)]
struct Counters {
    /// Requests answered with data.
    requests: AtomicU64,
    registers: AtomicU64,
    /// Completed passes over the whole plan.
    rounds: AtomicU64,
    /// Points delivered (good samples for ours and the collector; rounds x points for the others).
    points: AtomicU64,
    /// Failed requests.
    errors: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Snapshot {
    requests: u64,
    registers: u64,
    rounds: u64,
    points: u64,
    errors: u64,
    cpu_ticks: u64,
}

fn snapshot(all: &[Arc<Counters>]) -> Snapshot {
    let mut s = Snapshot::default();
    for c in all {
        s.requests += c.requests.load(Ordering::Relaxed);
        s.registers += c.registers.load(Ordering::Relaxed);
        s.rounds += c.rounds.load(Ordering::Relaxed);
        s.points += c.points.load(Ordering::Relaxed);
        s.errors += c.errors.load(Ordering::Relaxed);
    }
    s.cpu_ticks = cpu_ticks("self").unwrap_or(0);
    s
}

/// Counts the samples the collector hands over; nothing is stored.
#[derive(Debug, Default)]
struct CountingSink {
    calls: AtomicU64,
    samples: AtomicU64,
    good: AtomicU64,
}

impl SampleSink for CountingSink {
    fn ingest(&self, samples: Vec<Sample>) -> t3_core::sink::IngestFuture<'_> {
        let good = samples.iter().filter(|s| s.quality.is_good()).count() as u64;
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.samples.fetch_add(samples.len() as u64, Ordering::Relaxed);
        self.good.fetch_add(good, Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }
}

fn run_client(client: &str, ports: &[u16], w: Window) -> anyhow::Result<Measured> {
    let plan = Arc::new(Plan::t3(256)?);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let m = rt.block_on(async {
        match client {
            "ours" => client_ours(plan, ports, w).await,
            "collector" => client_collector(plan, ports, w).await,
            "bare" => client_bare(plan, ports, w).await,
            other => bail!("unknown client `{other}`"),
        }
    })?;
    rt.shutdown_timeout(Duration::from_secs(2));
    Ok(m)
}

/// Waits out the warm-up and the measured window; returns the counts at both ends and the seconds
/// between them.
async fn measure(
    all: &[Arc<Counters>],
    w: Window,
    failed: impl Fn() -> Option<String>,
) -> anyhow::Result<(Snapshot, Snapshot, f64)> {
    tokio::time::sleep(Duration::from_secs_f64(w.warmup)).await;
    if let Some(e) = failed() {
        bail!("{e}");
    }
    let a = snapshot(all);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(w.duration)).await;
    let b = snapshot(all);
    let secs = t0.elapsed().as_secs_f64();
    if let Some(e) = failed() {
        bail!("{e}");
    }
    Ok((a, b, secs))
}

fn window_result(a: Snapshot, b: Snapshot, secs: f64, plan: &Plan) -> Measured {
    let mut m = Measured::new();
    put(&mut m, "secs", secs);
    put(&mut m, "requests", b.requests - a.requests);
    put(&mut m, "registers", b.registers - a.registers);
    put(&mut m, "rounds", b.rounds - a.rounds);
    put(&mut m, "points", b.points - a.points);
    put(&mut m, "errors", b.errors - a.errors);
    put(&mut m, "cpu_secs", (b.cpu_ticks - a.cpu_ticks) as f64 / clk_tck());
    put(&mut m, "plan_requests", plan.requests.len());
    put(&mut m, "plan_registers", plan.registers());
    put(&mut m, "plan_points", plan.spec.points.len());
    m
}

/// The first error any device task reported.
#[derive(Debug, Default)]
struct FirstError(std::sync::Mutex<Option<String>>);

impl FirstError {
    fn set(&self, e: String) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(e);
        }
    }

    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

type Failure = Arc<FirstError>;

/// `ours`: the collector's read path per device, back to back.
async fn client_ours(plan: Arc<Plan>, ports: &[u16], w: Window) -> anyhow::Result<Measured> {
    let stop = Arc::new(AtomicBool::new(false));
    let sink = Arc::new(CountingSink::default());
    let failure: Failure = Default::default();
    let mut all = Vec::new();
    let mut tasks = Vec::new();
    for (d, &port) in ports.iter().enumerate() {
        let c = Arc::new(Counters::default());
        all.push(c.clone());
        let (plan, stop, sink, failure) = (plan.clone(), stop.clone(), sink.clone(), failure.clone());
        tasks.push(tokio::spawn(async move {
            let driver: Arc<dyn Driver> = Arc::new(ModbusDriver::new(
                Endpoint::Tcp { host: "127.0.0.1".into(), port },
                Duration::from_millis(CollectorConfig::default().timeout_ms),
            ));
            let sink: Arc<dyn SampleSink> = sink;
            let clock = SystemClock;
            let ids: Vec<u32> = (0..plan.spec.points.len() as u32).map(|i| d as u32 * 1000 + i + 1).collect();
            let mut last = vec![None; plan.spec.points.len()];
            while !stop.load(Ordering::Relaxed) {
                let results = driver.read(UNIT, &plan.requests).await;
                let now = clock.now_us();
                let samples = plan.samples(&ids, &mut last, &results, now);
                let good = samples.iter().filter(|s| s.quality.is_good()).count() as u64;
                if let Err(e) = sink.ingest(samples).await {
                    failure.set(e.to_string());
                }
                let mut regs = 0;
                let mut ok = 0;
                for (r, req) in results.iter().zip(&plan.requests) {
                    match r {
                        Ok(_) => {
                            ok += 1;
                            regs += u64::from(req.count);
                        }
                        Err(e) => {
                            c.errors.fetch_add(1, Ordering::Relaxed);
                            failure.set(format!("127.0.0.1:{port}: {e}"));
                        }
                    }
                }
                c.requests.fetch_add(ok, Ordering::Relaxed);
                c.registers.fetch_add(regs, Ordering::Relaxed);
                c.points.fetch_add(good, Ordering::Relaxed);
                c.rounds.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let res = measure(&all, w, || failure.get()).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let (a, b, secs) = res?;
    let mut m = window_result(a, b, secs, &plan);
    put(&mut m, "sink_samples", sink.samples.load(Ordering::Relaxed));
    put(&mut m, "rounds_total", snapshot(&all).rounds);
    Ok(m)
}

/// `collector`: the real Collector, each point's interval zero.
async fn client_collector(plan: Arc<Plan>, ports: &[u16], w: Window) -> anyhow::Result<Measured> {
    let sink = Arc::new(CountingSink::default());
    let collector = Collector::new(CollectorConfig::default(), sink.clone(), Arc::new(SystemClock));
    let profile = t3_profile()?.clone();
    let mut names = Vec::new();
    for (d, &port) in ports.iter().enumerate() {
        let name = format!("dev-{d:03}");
        let mut next = d as u32 * 1000;
        let mut spec = DeviceSpec::new(device_config(&name, port, 100, &[]), profile.clone(), |_| {
            next += 1;
            next
        })?;
        anyhow::ensure!(
            spec.points.len() == plan.spec.points.len(),
            "the collector polls {} points",
            spec.points.len()
        );
        for p in &mut spec.points {
            p.interval = Duration::ZERO;
        }
        collector.add_device(spec)?;
        names.push(name);
    }
    // The collector's counters: polls (and failed polls) from the status board, samples from the sink.
    let counters = Arc::new(Counters::default());
    let all = vec![counters.clone()];
    let refresh = {
        let (collector, sink, counters, plan) = (collector.clone(), sink.clone(), counters.clone(), plan.clone());
        move || {
            let (mut polls, mut failed) = (0, 0);
            for s in collector.status().all() {
                polls += s.polls;
                failed += s.failed_polls;
            }
            let ok = polls - failed;
            counters.requests.store(ok * plan.requests.len() as u64, Ordering::Relaxed);
            counters.registers.store(ok * plan.registers(), Ordering::Relaxed);
            counters.rounds.store(polls, Ordering::Relaxed);
            counters.errors.store(failed, Ordering::Relaxed);
            counters.points.store(sink.good.load(Ordering::Relaxed), Ordering::Relaxed);
            let first_error =
                collector.status().all().into_iter().find_map(|s| s.last_error.map(|e| format!("{}: {e}", s.name)));
            if failed > 0 { first_error } else { None }
        }
    };
    tokio::time::sleep(Duration::from_secs_f64(w.warmup)).await;
    if let Some(e) = refresh() {
        bail!("{e}");
    }
    let a = snapshot(&all);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(w.duration)).await;
    let failed = refresh();
    let b = snapshot(&all);
    let secs = t0.elapsed().as_secs_f64();
    collector.shutdown().await;
    if let Some(e) = failed {
        bail!("{e}");
    }
    let mut m = window_result(a, b, secs, &plan);
    put(&mut m, "sink_samples", sink.samples.load(Ordering::Relaxed));
    put(&mut m, "rounds_total", collector.status().all().iter().map(|s| s.polls).sum::<u64>());
    Ok(m)
}

/// `bare`: tokio-modbus, the plan's reads in a loop, nothing decoded.
async fn client_bare(plan: Arc<Plan>, ports: &[u16], w: Window) -> anyhow::Result<Measured> {
    use tokio_modbus::client::Reader;
    let spans = Arc::new(plan.holding_spans()?);
    let points_per_round = plan.spec.points.len() as u64;
    let stop = Arc::new(AtomicBool::new(false));
    let failure: Failure = Default::default();
    let mut all = Vec::new();
    let mut tasks = Vec::new();
    for &port in ports {
        let c = Arc::new(Counters::default());
        all.push(c.clone());
        let (spans, stop, failure) = (spans.clone(), stop.clone(), failure.clone());
        tasks.push(tokio::spawn(async move {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut ctx = match tokio_modbus::client::tcp::connect_slave(addr, tokio_modbus::Slave(UNIT)).await {
                Ok(ctx) => ctx,
                Err(e) => return failure.set(format!("{addr}: {e}")),
            };
            while !stop.load(Ordering::Relaxed) {
                for &(start, n) in spans.iter() {
                    match ctx.read_holding_registers(start, n).await {
                        Ok(Ok(words)) if words.len() == usize::from(n) => {
                            c.requests.fetch_add(1, Ordering::Relaxed);
                            c.registers.fetch_add(words.len() as u64, Ordering::Relaxed);
                        }
                        other => {
                            c.errors.fetch_add(1, Ordering::Relaxed);
                            return failure.set(format!("{addr}: {other:?}"));
                        }
                    }
                }
                c.rounds.fetch_add(1, Ordering::Relaxed);
                c.points.fetch_add(points_per_round, Ordering::Relaxed);
            }
        }));
    }
    let res = measure(&all, w, || failure.get()).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let (a, b, secs) = res?;
    let mut m = window_result(a, b, secs, &plan);
    put(&mut m, "rounds_total", snapshot(&all).rounds);
    Ok(m)
}

/// The pymodbus client: every device's plan in a loop on one asyncio event loop.
const PYMODBUS_CLIENT: &str = r#"
import asyncio, inspect, json, platform, sys, time
import pymodbus
from pymodbus.client import AsyncModbusTcpClient

cfg = json.loads(sys.argv[1])
params = inspect.signature(AsyncModbusTcpClient.read_holding_registers).parameters
unit_kw = "device_id" if "device_id" in params else "slave"

async def device(port, c, stop):
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2)
    if not await client.connect():
        raise RuntimeError(f"pymodbus could not connect to 127.0.0.1:{port}")
    kw = {unit_kw: cfg["unit"]}
    try:
        while not stop.is_set():
            for start, count in cfg["plan"]:
                rr = await client.read_holding_registers(start, count=count, **kw)
                if rr.isError() or len(rr.registers) != count:
                    c[4] += 1
                    raise RuntimeError(f"127.0.0.1:{port}: {rr}")
                c[0] += 1
                c[1] += count
            c[2] += 1
            c[3] += cfg["points_per_round"]
    finally:
        client.close()

async def main():
    stop = asyncio.Event()
    counts = [[0] * 5 for _ in cfg["ports"]]
    tasks = [asyncio.create_task(device(p, c, stop)) for p, c in zip(cfg["ports"], counts)]
    def check():
        for t in tasks:
            if t.done() and t.exception() is not None:
                raise t.exception()
    snap = lambda: [sum(c[i] for c in counts) for i in range(5)]
    await asyncio.sleep(cfg["warmup"])
    check()
    a, t0, cpu0 = snap(), time.monotonic(), time.process_time()
    await asyncio.sleep(cfg["duration"])
    b, t1, cpu1 = snap(), time.monotonic(), time.process_time()
    check()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    keys = ["requests", "registers", "rounds", "points", "errors"]
    out = {k: b[i] - a[i] for i, k in enumerate(keys)}
    out.update(secs=t1 - t0, cpu_secs=cpu1 - cpu0, version=pymodbus.__version__, python=platform.python_version())
    out["rounds_total"] = sum(c[2] for c in counts)
    print(json.dumps(out))

asyncio.run(main())
"#;

/// `$T3000_PYTHON`, or an error saying how to get one.
fn python() -> anyhow::Result<PathBuf> {
    match std::env::var_os("T3000_PYTHON") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => bail!(
            "T3000_PYTHON is not set: the pymodbus client needs a Python with `pymodbus<4` \
             (`.ci/run` creates one in $HOME/.cache/t3000/venv; or run \
             `python3 -m venv ~/.cache/t3000/venv && ~/.cache/t3000/venv/bin/pip install 'pymodbus<4' pyserial` \
             and export T3000_PYTHON=$HOME/.cache/t3000/venv/bin/python), or leave it out with --clients ours,collector,bare"
        ),
    }
}

fn run_pymodbus(dir: &Path, ports: &[u16], plan: &Plan, w: Window) -> anyhow::Result<Measured> {
    let python = python()?;
    let script = dir.join("poll_pymodbus.py");
    std::fs::write(&script, PYMODBUS_CLIENT)?;
    let cfg = serde_json::json!({
        "ports": ports,
        "plan": plan.holding_spans()?,
        "unit": UNIT,
        "warmup": w.warmup,
        "duration": w.duration,
        "points_per_round": plan.spec.points.len(),
    });
    let out = Command::new(&python)
        .arg(&script)
        .arg(cfg.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("run {}", python.display()))?;
    if !out.status.success() {
        bail!("the pymodbus client failed ({}): {}", out.status, String::from_utf8_lossy(&out.stdout));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.starts_with('{')).context("no JSON from the pymodbus client")?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    let mut m = Measured::new();
    for k in ["requests", "registers", "rounds", "points", "errors", "rounds_total"] {
        put(&mut m, k, v[k].as_u64().unwrap_or(0));
    }
    put(&mut m, "secs", v["secs"].as_f64().unwrap_or(f64::NAN));
    put(&mut m, "cpu_secs", v["cpu_secs"].as_f64().unwrap_or(f64::NAN));
    put(
        &mut m,
        "version",
        format!("pymodbus {} on Python {}", v["version"].as_str().unwrap_or("?"), v["python"].as_str().unwrap_or("?")),
    );
    Ok(m)
}

fn run_child_client(client: &str, sim: &mut SimChild, plan: &Plan, w: Window, dir: &Path) -> anyhow::Result<Measured> {
    let sim_pid = sim.pid().to_string();
    let sim0 = cpu_ticks(&sim_pid)?;
    let served0 = sim.requests()?;
    let t0 = Instant::now();
    let mut m = if client == "pymodbus" {
        run_pymodbus(dir, &sim.ports, plan, w)?
    } else {
        run_child(
            Command::new(std::env::current_exe()?)
                .args(["--role", "client", "--client", client, "--ports", &sim.ports_arg()])
                .args(["--warmup", &w.warmup.to_string(), "--duration", &w.duration.to_string()]),
            &format!("{client} client"),
        )?
    };
    let wall = t0.elapsed().as_secs_f64();
    put(&mut m, "server_cpu_pct", (cpu_ticks(&sim_pid)? - sim0) as f64 / clk_tck() / wall * 100.0);
    // What the simulator received over the whole run, per completed pass over the plan: checks that
    // every client (the real collector included) issued the plan the table assumes.
    let served = sim.requests()? - served0;
    let passes = get_u(&m, "rounds_total").max(1);
    put(&mut m, "sim_requests_per_pass", served as f64 / passes as f64);
    Ok(m)
}

// ------------------------------------------------------------------------------------------------
// The fleet: `t3000 serve` with generated devices

/// A `[[devices]]` entry for a simulated T3 controller on `127.0.0.1:port`.
fn device_config(name: &str, port: u16, poll_interval_ms: u64, disabled: &[String]) -> DeviceConfig {
    DeviceConfig {
        name: name.to_owned(),
        device_type: "controller".to_owned(),
        protocol: Protocol::ModbusTcp,
        ip_address: Some("127.0.0.1".to_owned()),
        port: Some(port),
        serial_port: None,
        baud_rate: 9600,
        parity: Parity::None,
        unit_id: UNIT,
        profile: T3_CONTROLLER.to_owned(),
        poll_interval_ms,
        timeout_ms: None,
        enabled: true,
        max_registers: None,
        max_gap: None,
        one_request_per_point: false,
        record: RecordConfig::default(),
        points: disabled
            .iter()
            .map(|n| t3_core::config::PointOverride {
                name: n.clone(),
                enabled: false,
                poll_interval_ms: None,
                record: None,
            })
            .collect(),
        options: Default::default(),
    }
}

/// The server's configuration file: storage in `data_dir`, any port, warnings only, the devices.
fn server_config(data_dir: &Path, ports: &[u16], points: usize, interval_ms: u64) -> anyhow::Result<String> {
    let disabled: Vec<String> = t3_profile()?.numeric_points().skip(points).map(|p| p.name.clone()).collect();
    let mut s = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[storage]\ndata_dir = {}\n\n[log]\nlevel = \"warn\"\n\n[auth]\nadmin_password = {}\n",
        toml_str(&data_dir.display().to_string()),
        toml_str(ADMIN_PASSWORD)
    );
    for (i, &port) in ports.iter().enumerate() {
        let d = device_config(&format!("dev-{i:03}"), port, interval_ms, &disabled);
        s.push_str(&format!(
            "\n[[devices]]\nname = {}\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = {}\nunit_id = {}\nprofile = {}\npoll_interval_ms = {}\n",
            toml_str(&d.name),
            d.port.unwrap_or(502),
            d.unit_id,
            toml_str(&d.profile),
            d.poll_interval_ms
        ));
        for p in &d.points {
            s.push_str(&format!("[[devices.points]]\nname = {}\nenabled = false\n", toml_str(&p.name)));
        }
    }
    Ok(s)
}

/// `(polls, failed polls, devices online)` summed over `GET /api/t3000/devices`.
fn device_polls(addr: &str, token: &str) -> anyhow::Result<(u64, u64, usize)> {
    let (status, body) = http(addr, Some(token), "GET", "/api/t3000/devices?limit=10000", None)?;
    anyhow::ensure!(status == 200, "GET /api/t3000/devices: {status} {body}");
    let v: serde_json::Value = serde_json::from_str(&body)?;
    let (mut polls, mut failed, mut online) = (0, 0, 0);
    for d in v["items"].as_array().context("a JSON array of devices")? {
        let s = &d["status"];
        polls += s["polls"].as_u64().unwrap_or(0);
        failed += s["failed_polls"].as_u64().unwrap_or(0);
        online += usize::from(d["online"].as_bool() == Some(true));
    }
    Ok((polls, failed, online))
}

/// What one `t3000 serve` run measured.
fn run_server(p: &Params, mut sim: Option<&mut SimChild>, label: &str) -> anyhow::Result<Measured> {
    let dir = tempfile::Builder::new().prefix(&format!("poll-{label}-")).tempdir_in(&p.work_dir)?;
    let data = dir.path().join("data");
    let ports = sim.as_ref().map(|s| s.ports.clone()).unwrap_or_default();
    let config = dir.path().join("t3000.toml");
    std::fs::write(&config, server_config(&data, &ports, p.fleet_points, p.fleet_interval_ms)?)?;
    let log = std::fs::File::create(dir.path().join("server.log"))?;
    let mut child = Command::new(&p.t3000)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("start {} (build it with `cargo build --release --bin t3000`)", p.t3000.display()))?;
    let pid = child.id().to_string();
    let result = (|| -> anyhow::Result<Measured> {
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().context("server stdout")?);
        out.read_line(&mut line)?;
        drain(out);
        let addr = line
            .trim()
            .strip_prefix("t3000 listening on http://")
            .with_context(|| format!("the server did not start; its log:\n{}", read_log(dir.path())))?
            .to_owned();
        let token = login(&addr)?;
        let start_wait = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(p.fleet_warmup));
        let sim_pid = sim.as_ref().map(|s| s.pid().to_string());
        let served0 = sim.as_mut().map(|s| s.requests()).transpose()?;
        let (polls0, failed0, online_before) = if sim.is_some() { device_polls(&addr, &token)? } else { (0, 0, 0) };
        let threads0 = cpu_ticks_by_thread(&pid);
        let (ts0, t0, cpu0) = (now_us(), Instant::now(), cpu_ticks(&pid)?);
        let sim0 = sim_pid.as_deref().map(cpu_ticks).transpose()?;
        let rss0 = status_bytes(&pid, "VmRSS");
        let mut rss_max = rss0;
        // VmRSS once a second, to tell a plateau from a leak.
        let mut timeline = vec![rss0];
        while t0.elapsed().as_secs_f64() < p.fleet_secs {
            let left = p.fleet_secs - t0.elapsed().as_secs_f64();
            std::thread::sleep(Duration::from_secs_f64(left.clamp(0.0, 1.0)));
            let rss = status_bytes(&pid, "VmRSS");
            rss_max = rss_max.max(rss);
            timeline.push(rss);
        }
        let (cpu1, secs, ts1) = (cpu_ticks(&pid)?, t0.elapsed().as_secs_f64(), now_us());
        let threads1 = cpu_ticks_by_thread(&pid);
        let sim1 = sim_pid.as_deref().map(cpu_ticks).transpose()?;
        let rss1 = status_bytes(&pid, "VmRSS");
        let hwm = status_bytes(&pid, "VmHWM");
        let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Threads:").map(|t| t.trim().to_owned())))
            .unwrap_or_default();
        let (polls1, failed1, online) = if sim.is_some() { device_polls(&addr, &token)? } else { (0, 0, 0) };
        let served1 = sim.as_mut().map(|s| s.requests()).transpose()?;

        // Samples stored with a timestamp inside the window (the query runs after it).
        let sql = format!(
            "SELECT count(*) AS n, count(*) FILTER (WHERE quality >= 192) AS good FROM samples \
             WHERE epoch_us(ts) >= {ts0} AND epoch_us(ts) < {ts1}"
        );
        let (status, body) = http(
            &addr,
            Some(&token),
            "POST",
            "/api/t3000/query",
            Some(&serde_json::json!({ "sql": sql }).to_string()),
        )?;
        anyhow::ensure!(status == 200, "POST /api/t3000/query: {status} {body}");
        let v: serde_json::Value = serde_json::from_str(&body)?;
        let row = &v["rows"][0];

        let mut m = Measured::new();
        put(&mut m, "devices", ports.len());
        put(&mut m, "startup_to_window_secs", start_wait.elapsed().as_secs_f64() - secs);
        put(&mut m, "secs", secs);
        put(&mut m, "cpu_pct", (cpu1 - cpu0) as f64 / clk_tck() / secs * 100.0);
        // Threads that ran at least 0.1 % of a core, busiest first (threads that ended are not listed).
        let mut by_thread: Vec<(String, f64)> = threads1
            .iter()
            .map(|(name, &b)| {
                let a = threads0.get(name).copied().unwrap_or(0);
                (name.clone(), b.saturating_sub(a) as f64 / clk_tck() / secs * 100.0)
            })
            .filter(|(_, p)| *p >= 0.1)
            .collect();
        by_thread.sort_by(|a, b| b.1.total_cmp(&a.1));
        put(
            &mut m,
            "cpu_by_thread",
            by_thread.iter().map(|(n, p)| format!("{n} {p:.1} %")).collect::<Vec<_>>().join(", "),
        );
        if let (Some(a), Some(b)) = (sim0, sim1) {
            put(&mut m, "sim_cpu_pct", (b - a) as f64 / clk_tck() / secs * 100.0);
        }
        put(&mut m, "rss_start", rss0);
        put(&mut m, "rss_end", rss1);
        put(&mut m, "rss_max", rss_max);
        // Eight evenly spaced points of the timeline, in MiB.
        let picks: Vec<String> = (0..=7)
            .map(|i| timeline[i * (timeline.len() - 1) / 7])
            .map(|b| format!("{:.0}", b as f64 / 1_048_576.0))
            .collect();
        put(&mut m, "rss_timeline", picks.join(" / "));
        put(&mut m, "hwm", hwm);
        put(&mut m, "threads", threads);
        put(&mut m, "polls", polls1 - polls0);
        put(&mut m, "failed_polls", failed1 - failed0);
        if let (Some(a), Some(b)) = (served0, served1) {
            put(&mut m, "sim_requests_per_poll", (b - a) as f64 / (polls1 - polls0).max(1) as f64);
        }
        put(&mut m, "online_before", online_before);
        put(&mut m, "online", online);
        put(&mut m, "stored", row[0].as_u64().unwrap_or(0));
        put(&mut m, "stored_good", row[1].as_u64().unwrap_or(0));
        Ok(m)
    })();
    // SIGTERM: the server persists its buffer and exits; kill it if it takes too long.
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let t = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    result.with_context(|| format!("{label} server run; its log:\n{}", read_log(dir.path())))
}

fn read_log(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

// ------------------------------------------------------------------------------------------------
// The parent

/// The median run by `key` (the lower middle one for an even count), with every run's value.
fn median_by(mut runs: Vec<Measured>, key: impl Fn(&Measured) -> f64) -> (Measured, Vec<f64>) {
    let all: Vec<f64> = runs.iter().map(&key).collect();
    runs.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let m = runs.swap_remove((runs.len() - 1) / 2);
    (m, all)
}

fn per_sec(m: &Measured, k: &str) -> f64 {
    get_f(m, k) / get_f(m, "secs")
}

fn pct(v: f64) -> String {
    if v.is_finite() { format!("{v:.1} %") } else { "n/a".into() }
}

fn signed_bytes(b: i64) -> String {
    if b < 0 { format!("-{}", bytes(b.unsigned_abs())) } else { format!("+{}", bytes(b as u64)) }
}

fn client_label(c: &str) -> &'static str {
    match c {
        "ours" => "ours: ModbusDriver::read + decode + samples + sink (collector's poll path, no timer)",
        "collector" => "ours: Collector device task, interval 0 (waits for the 1 ms timer each poll)",
        "bare" => "bare tokio-modbus loop (no decoding)",
        _ => "pymodbus AsyncModbusTcpClient",
    }
}

fn parent(p: &Params) -> anyhow::Result<()> {
    std::fs::create_dir_all(&p.work_dir).with_context(|| format!("create {}", p.work_dir.display()))?;
    if p.throughput && p.clients.iter().any(|c| c == "pymodbus") {
        python()?;
    }
    if p.fleet && !p.t3000.exists() {
        bail!(
            "{} does not exist: build it with `cargo build --release --bin t3000` (same CARGO_TARGET_DIR), or pass --t3000 PATH",
            p.t3000.display()
        );
    }
    let started = chrono::Utc::now();
    let load_start = sys::loadavg();
    let mut md = String::new();
    md.push_str("# Poll benchmark\n\n");
    md.push_str(&format!("- Command: `{}`\n", report::command_line()));
    md.push_str(&format!("- Run: {} UTC on {}\n", started.format("%Y-%m-%d %H:%M"), sys::machine()));

    let throughput = if p.throughput { Some(throughput(p)?) } else { None };
    let fleet = if p.fleet { Some(fleet(p)?) } else { None };
    md.push_str(&format!(
        "- Load average (1/5/15 min) before the runs: {load_start}; after: {} (anything else running shares the cores).\n",
        sys::loadavg()
    ));
    if let Some(t) = throughput {
        md.push_str(&t);
    }
    if let Some(f) = fleet {
        md.push_str(&f);
    }
    println!("{md}");
    let path = report::write_results(&p.out, &md)?;
    eprintln!("[poll] wrote {}", path.display());
    Ok(())
}

fn throughput(p: &Params) -> anyhow::Result<String> {
    let plan = Plan::t3(256)?;
    let w = Window { warmup: p.warmup, duration: p.duration };
    let scratch = tempfile::Builder::new().prefix("poll-clients-").tempdir_in(&p.work_dir)?;
    // (devices, client) -> median run and every run's requests/s.
    let mut results: Vec<(usize, String, Measured, Vec<f64>)> = Vec::new();
    let mut py_version = String::new();
    for &n in &p.devices {
        let mut sim = SimChild::start(n)?;
        let mut runs: BTreeMap<String, Vec<Measured>> = BTreeMap::new();
        // Clients interleaved run by run, so drift on the machine spreads over all of them.
        for r in 0..p.repeat {
            for c in &p.clients {
                eprintln!("[poll] {n} device(s), {c}, run {}/{} ...", r + 1, p.repeat);
                let m = run_child_client(c, &mut sim, &plan, w, scratch.path())?;
                eprintln!(
                    "[poll]   {} requests/s, {} registers/s, client CPU {}",
                    rate(per_sec(&m, "requests")),
                    rate(per_sec(&m, "registers")),
                    pct(get_f(&m, "cpu_secs") / get_f(&m, "secs") * 100.0)
                );
                if let Some(v) = m.get("version") {
                    py_version = v.clone();
                }
                runs.entry(c.clone()).or_default().push(m);
            }
        }
        drop(sim);
        for c in &p.clients {
            let (m, all) = median_by(runs.remove(c).unwrap_or_default(), |m| per_sec(m, "requests"));
            results.push((n, c.clone(), m, all));
        }
    }

    let mut md = String::new();
    md.push_str(&format!(
        "\n## Poll throughput\n\n\
         - Reads: the T3-controller profile's full plan as `t3_drivers::planner` makes it under the profile's limits \
         (at most {} registers per request, gaps up to {} bridged): {}.\n\
         - Each device is a simulated T3 controller (unit {UNIT}) on its own Modbus TCP listener on 127.0.0.1, \
         all served by one simulator child process (tokio multi-thread runtime, values ticked every second); \
         each client is a child process of its own, one connection per device, the plan issued back to back on every device at once. \
         {} s warm-up, then {} s measured; {} runs per client, interleaved; the table shows the median run by requests/s.\n\
         - Points/s: good samples handed to the sink (ours, collector); completed passes over the plan x {} points (bare, pymodbus).\n\
         - CPU is % of one core over the measured window: the client from its own /proc/self/stat (pymodbus: `time.process_time()`); \
         the simulator from /proc/<pid>/stat over the client's whole run (start-up and warm-up included).\n\n",
        t3_profile()?.limits.max_registers,
        t3_profile()?.limits.max_gap,
        plan.describe(),
        p.warmup,
        p.duration,
        p.repeat,
        plan.spec.points.len()
    ));
    let mut t = Table::new(&[
        "Client",
        "Devices",
        "Requests/s",
        "Registers/s",
        "Points/s",
        "this / bare",
        "Client CPU",
        "CPU µs per request",
        "Simulator CPU",
        "Requests per pass (simulator)",
        "Errors",
        "Every run (requests/s)",
    ]);
    let find = |n: usize, c: &str| results.iter().find(|(d, cl, _, _)| *d == n && cl == c).map(|(_, _, m, _)| m);
    for (n, c, m, all) in &results {
        let req = per_sec(m, "requests");
        let bare = find(*n, "bare").map(|b| per_sec(b, "requests"));
        let cpu = get_f(m, "cpu_secs");
        t.row(vec![
            client_label(c).to_string(),
            n.to_string(),
            rate(req),
            rate(per_sec(m, "registers")),
            rate(per_sec(m, "points")),
            bare.map(|b| format!("{:.0} %", req / b * 100.0)).unwrap_or_else(|| "n/a".into()),
            pct(cpu / get_f(m, "secs") * 100.0),
            format!("{:.1}", cpu * 1e6 / get_f(m, "requests")),
            pct(get_f(m, "server_cpu_pct")),
            format!("{:.2}", get_f(m, "sim_requests_per_pass")),
            count(get_u(m, "errors")),
            all.iter().map(|r| count(r.round() as u64)).collect::<Vec<_>>().join(", "),
        ]);
    }
    md.push_str(&t.render());

    md.push_str("\n### Targets (ours = the collector's poll path, first row of each block)\n\n");
    let mut tt = Table::new(&["Devices", "Target", "Measured", "Result"]);
    for &n in &p.devices {
        let Some(o) = find(n, "ours") else { continue };
        let o_req = per_sec(o, "requests");
        if let Some(b) = find(n, "bare") {
            let r = o_req / per_sec(b, "requests");
            tt.row(vec![
                n.to_string(),
                "ours >= 80 % of bare tokio-modbus (requests/s)".into(),
                format!("{:.0} %", r * 100.0),
                pass(r >= TARGET_VS_BARE),
            ]);
        }
        if let Some(py) = find(n, "pymodbus") {
            let r = o_req / per_sec(py, "requests");
            tt.row(vec![
                n.to_string(),
                "ours >= 5x pymodbus (requests/s)".into(),
                ratio(o_req, per_sec(py, "requests")),
                pass(r >= TARGET_VS_PYMODBUS),
            ]);
        }
        if let Some(b) = find(n, "bare") {
            let per_req = |m: &Measured| get_f(m, "cpu_secs") * 1e6 / get_f(m, "requests");
            tt.row(vec![
                n.to_string(),
                "(for reference) client CPU per request, ours / bare".into(),
                format!("{:.1} / {:.1} µs = {:.2}x", per_req(o), per_req(b), per_req(o) / per_req(b)),
                "reported".into(),
            ]);
        }
        if let (Some(col), Some(b)) = (find(n, "collector"), find(n, "bare")) {
            let r = per_sec(col, "requests") / per_sec(b, "requests");
            tt.row(vec![
                n.to_string(),
                "(for reference) Collector task, interval 0, vs bare".into(),
                format!("{:.0} %", r * 100.0),
                "reported".into(),
            ]);
        }
    }
    md.push_str(&tt.render());
    md.push_str("\n### How each client was measured\n\n");
    md.push_str(
        "- ours (poll path): per device one `t3_drivers::modbus::ModbusDriver` (the collector's driver: a tokio mutex around \
         the tokio-modbus context, a timeout on every request) and a loop of `Driver::read(unit, plan)`, then what \
         `Poller::samples` in `drivers/src/collector.rs` does (item lookup, word copies, the auto/manual and analog/digital \
         flags, `Codec::decode`, unscaled for a digital point, the quality, one `Sample` per point, recording mode \
         `every`) and `SampleSink::ingest` on a sink that counts. Left out of `Poller::poll`: the timer, busy retries \
         (none happened), and the status-board update after each poll.\n",
    );
    md.push_str(
        "- ours (Collector task): the real `Collector::add_device` with a `DeviceSpec` whose points have a zero interval (the \
         configuration's minimum is 100 ms; the struct takes any), a counting sink, polls read from the status board. Every \
         poll ends in `sleep_until(next)` with next = now, which tokio rounds up to its next 1 ms timer tick, so one device \
         polls at most about once per millisecond plus the poll itself: this row measures the device task's scheduling, \
         not the read path.\n",
    );
    md.push_str(
        "- bare: `tokio_modbus::client::tcp::connect_slave` and `Reader::read_holding_registers` over the same spans, answers \
         checked for length, nothing decoded: the most this machine does with tokio-modbus.\n",
    );
    md.push_str(&format!(
        "- pymodbus: `AsyncModbusTcpClient` (`read_holding_registers` with the same spans, one client per device, all on one \
         asyncio loop) under `$T3000_PYTHON`{}.\n",
        if py_version.is_empty() { String::new() } else { format!(": {py_version}") }
    ));
    md.push_str(
        "- Client and simulator share the machine's cores: on a 2-core machine the simulator's CPU is the server side's cost, \
         and a client that needs less CPU per request leaves more to the simulator.\n",
    );
    Ok(md)
}

fn fleet(p: &Params) -> anyhow::Result<String> {
    let mut sim = SimChild::start(p.fleet_devices)?;
    let mut idle_runs = Vec::new();
    let mut busy_runs = Vec::new();
    for r in 0..p.fleet_repeat {
        eprintln!("[poll] fleet run {}/{}: t3000 serve without devices ...", r + 1, p.fleet_repeat);
        let m = run_server(p, None, "idle")?;
        eprintln!("[poll]   CPU {}, RSS {}", pct(get_f(&m, "cpu_pct")), bytes(get_u(&m, "rss_end")));
        idle_runs.push(m);
        eprintln!(
            "[poll] fleet run {}/{}: t3000 serve with {} devices x {} points ...",
            r + 1,
            p.fleet_repeat,
            p.fleet_devices,
            p.fleet_points
        );
        let m = run_server(p, Some(&mut sim), "fleet")?;
        eprintln!(
            "[poll]   CPU {}, RSS {}, {:.1} polls/s, {} stored samples/s",
            pct(get_f(&m, "cpu_pct")),
            bytes(get_u(&m, "rss_end")),
            per_sec(&m, "polls"),
            rate(per_sec(&m, "stored"))
        );
        busy_runs.push(m);
    }
    drop(sim);
    let max_of = |runs: &[Measured], k: &str| runs.iter().map(|m| get_u(m, k)).max().unwrap_or(0);
    let idle_hwm_max = max_of(&idle_runs, "hwm");
    let busy_hwm_max = max_of(&busy_runs, "hwm");
    let (idle, idle_cpu) = median_by(idle_runs, |m| get_f(m, "cpu_pct"));
    let (busy, busy_cpu) = median_by(busy_runs, |m| get_f(m, "cpu_pct"));

    let expected = (p.fleet_devices * p.fleet_points) as f64 * 1000.0 / p.fleet_interval_ms as f64;
    let plan = Plan::t3(p.fleet_points)?;
    let mut md = String::new();
    md.push_str(&format!(
        "\n## Polling a fleet: `t3000 serve` with {} devices x {} points every {} ms\n\n\
         - The real server binary (`{}`) with a generated configuration: {} `[[devices]]`, each a simulated T3 controller \
         on its own loopback listener (so its own connection), profile `T3-controller` with only its first {} points enabled \
         (the others `enabled = false`), `poll_interval_ms = {}`, recording `every` (each poll stores every point), \
         storage in a fresh data directory (WAL ack, Parquet flushes, rollups: the defaults). Per device and poll: {}.\n\
         - Baseline: the same binary and storage settings with no devices. Each run starts a fresh server, waits {} s, then measures {} s: \
         CPU = utime + stime deltas from /proc/<pid>/stat (all threads), % of one core; RSS = VmRSS from /proc/<pid>/status \
         at the start and end of the window (and its highest value sampled every second), VmHWM at the end.\n\
         - Polls from `GET /api/t3000/devices` (the `polls` and `failed_polls` counters) at both ends of the window; \
         stored samples counted afterwards with `POST /api/t3000/query` over the window's timestamps. \
         The simulator ran in its own process ({} listeners); its CPU is shown apart and is not the server's.\n\
         - {} runs of each, alternating; the table shows the median run by CPU.\n\n",
        p.fleet_devices,
        p.fleet_points,
        p.fleet_interval_ms,
        p.t3000.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        p.fleet_devices,
        p.fleet_points,
        p.fleet_interval_ms,
        plan.describe(),
        p.fleet_warmup,
        p.fleet_secs,
        p.fleet_devices,
        p.fleet_repeat,
    ));
    let mut t = Table::new(&[
        "Server",
        "CPU (% of one core)",
        "RSS start",
        "RSS end",
        "RSS max",
        "VmHWM",
        "Threads",
        "Polls/s",
        "Requests per poll (simulator)",
        "Failed polls",
        "Samples stored/s",
        "Simulator CPU",
        "CPU by thread",
        "Every run (CPU)",
    ]);
    for (label, m, all) in [("idle, no devices", &idle, &idle_cpu), ("polling", &busy, &busy_cpu)] {
        let polling = get_u(m, "devices") > 0;
        t.row(vec![
            if polling {
                format!("{} devices x {} points", p.fleet_devices, p.fleet_points)
            } else {
                label.to_string()
            },
            pct(get_f(m, "cpu_pct")),
            bytes(get_u(m, "rss_start")),
            bytes(get_u(m, "rss_end")),
            bytes(get_u(m, "rss_max")),
            bytes(get_u(m, "hwm")),
            m.get("threads").cloned().unwrap_or_default(),
            if polling { format!("{:.1}", per_sec(m, "polls")) } else { "-".into() },
            if polling { format!("{:.2}", get_f(m, "sim_requests_per_poll")) } else { "-".into() },
            if polling { count(get_u(m, "failed_polls")) } else { "-".into() },
            if polling { rate(per_sec(m, "stored")) } else { "-".into() },
            if polling { pct(get_f(m, "sim_cpu_pct")) } else { "-".into() },
            m.get("cpu_by_thread").cloned().unwrap_or_default(),
            all.iter().map(|c| format!("{c:.1} %")).collect::<Vec<_>>().join(", "),
        ]);
    }
    md.push_str(&t.render());

    let cpu = get_f(&busy, "cpu_pct");
    let extra_rss = get_u(&busy, "rss_end") as i64 - get_u(&idle, "rss_end") as i64;
    let extra_hwm = busy_hwm_max as i64 - idle_hwm_max as i64;
    let stored = per_sec(&busy, "stored");
    md.push_str("\n### Targets\n\n");
    let mut tt = Table::new(&["Target", "Measured", "Result"]);
    tt.row(vec![
        format!("CPU while polling {} x {} points/s < 10 % of one core", p.fleet_devices, p.fleet_points),
        format!(
            "{} (idle: {}; polling adds {})",
            pct(cpu),
            pct(get_f(&idle, "cpu_pct")),
            pct(cpu - get_f(&idle, "cpu_pct"))
        ),
        pass(cpu < TARGET_CPU_PCT),
    ]);
    tt.row(vec![
        "memory < 100 MB (95.4 MiB) above the idle server".into(),
        format!(
            "VmRSS {} (end of window, median runs); highest VmHWM of all runs {}",
            signed_bytes(extra_rss),
            signed_bytes(extra_hwm)
        ),
        pass(extra_rss < TARGET_EXTRA_RSS as i64 && extra_hwm < TARGET_EXTRA_RSS as i64),
    ]);
    tt.row(vec![
        "the polling really happened: samples stored per second vs devices x points / interval".into(),
        format!(
            "{} of {} expected ({:.1} %), {} good; {} of {} devices online",
            rate(stored),
            rate(expected),
            stored / expected * 100.0,
            rate(per_sec(&busy, "stored_good")),
            get_u(&busy, "online"),
            p.fleet_devices
        ),
        "reported".into(),
    ]);
    md.push_str(&tt.render());
    md.push_str(&format!(
        "\nRSS growth while polling (end - start of the {} s window, median run): {}; VmRSS in MiB at eight even steps \
         through the window: {} (idle server: {}).\n",
        p.fleet_secs,
        signed_bytes(get_u(&busy, "rss_end") as i64 - get_u(&busy, "rss_start") as i64),
        busy.get("rss_timeline").cloned().unwrap_or_default(),
        idle.get("rss_timeline").cloned().unwrap_or_default(),
    ));
    Ok(md)
}
