//! Programs in the real server, end to end: `t3000 simulate` serving D simulated T3 controllers
//! over Modbus TCP, `t3000 serve` polling them every second with `[programs] scan_ms = 1000`, and N
//! typical programs ([`crate::typical`]) created through `POST /api/t3000/programs`, enabled. For
//! each N (a fresh server each time; N = 0 is polling alone), after every program shows `running`
//! without an error and a warm-up, the server process's CPU time (`/proc/<pid>/stat`, all threads)
//! over a fixed window, its VmRSS, the program scans done in the window (the `scans` counters of
//! `GET /api/t3000/programs`, read before and after it), the commands the programs sent through the
//! arbiter (`point.write` rows of the audit log by `program:<id>`), and the scans' own `scan_us`
//! (the runner times each scan; the last one of every program).
//!
//! What a program scan costs the server is the CPU above the N = 0 server divided by the program
//! scans: the interpreter, the last-value cache reads, building the scan's environment, the status
//! bookkeeping, the commands, and the tokio task that scans them all once a second.

use anyhow::{Context, bail, ensure};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use t3_benches::report::{Table, bytes, count};
use t3_benches::server::{ADMIN_PASSWORD, Serve, clk_tck, cpu_ticks, http, login, now_us, status_bytes, toml_str};
use t3_benches::sys;

/// What the server part is given.
pub struct Params {
    pub t3000: PathBuf,
    pub work_dir: PathBuf,
    pub devices: u32,
    pub programs: Vec<u32>,
    pub warmup: f64,
    pub secs: f64,
}

/// `t3000 simulate`: D simulated T3 controllers (unit ids 1..=D) on one loopback listener.
struct Simulator {
    child: Child,
    addr: String,
}

impl Simulator {
    fn start(t3000: &Path, devices: u32) -> anyhow::Result<Simulator> {
        let mut child = Command::new(t3000)
            .args(["simulate", "--count", &devices.to_string(), "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("start {} simulate", t3000.display()))?;
        let mut out = BufReader::new(child.stdout.take().context("simulator stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut out, &mut std::io::sink());
        });
        // `modbus-tcp 127.0.0.1:PORT units 1..=D profile T3-controller`
        let Some(addr) = line.trim().strip_prefix("modbus-tcp ").and_then(|r| r.split_whitespace().next()) else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("t3000 simulate did not start (it printed `{}`)", line.trim());
        };
        Ok(Simulator { addr: addr.to_owned(), child })
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's configuration: storage in `data_dir`, any port, warnings only, 1-second scans,
/// the simulated devices polled every second (every point of the T3-controller profile).
fn config(data_dir: &Path, sim: &str, devices: u32) -> anyhow::Result<String> {
    let (host, port) = sim.rsplit_once(':').context("the simulator's address")?;
    let mut s = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[storage]\ndata_dir = {}\n\n[log]\nlevel = \"warn\"\n\n\
         [auth]\nadmin_password = {}\n\n[programs]\nscan_ms = 1000\n",
        toml_str(&data_dir.display().to_string()),
        toml_str(ADMIN_PASSWORD)
    );
    for unit in 1..=devices {
        s.push_str(&format!(
            "\n[[devices]]\nname = \"t3-{unit:03}\"\nprotocol = \"modbus-tcp\"\nip_address = {}\nport = {port}\n\
             unit_id = {unit}\nprofile = \"T3-controller\"\npoll_interval_ms = 1000\n",
            toml_str(host)
        ));
    }
    Ok(s)
}

fn get_json(addr: &str, token: &str, path: &str) -> anyhow::Result<serde_json::Value> {
    let (status, body) = http(addr, Some(token), "GET", path, None)?;
    ensure!(status == 200, "GET {path}: {status} {body}");
    Ok(serde_json::from_str(&body)?)
}

/// The devices' ids in unit order, once all are online (polled).
fn wait_for_devices(addr: &str, token: &str, devices: u32) -> anyhow::Result<Vec<i64>> {
    let t = Instant::now();
    loop {
        let v = get_json(addr, token, "/api/t3000/devices?limit=10000")?;
        let items = v["items"].as_array().context("a JSON array of devices")?;
        let online = items.iter().filter(|d| d["online"].as_bool() == Some(true)).count();
        if online == devices as usize {
            let mut ids: Vec<(String, i64)> = items
                .iter()
                .map(|d| -> anyhow::Result<(String, i64)> {
                    Ok((d["name"].as_str().unwrap_or("").to_owned(), d["id"].as_i64().context("a device id")?))
                })
                .collect::<anyhow::Result<_>>()?;
            ids.sort();
            return Ok(ids.into_iter().map(|(_, id)| id).collect());
        }
        ensure!(t.elapsed() < Duration::from_secs(120), "only {online} of {devices} devices online after 120 s");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// What `GET /api/t3000/programs` says of them all.
struct Views {
    programs: usize,
    running: usize,
    /// The first program that is not running cleanly, and why.
    problem: Option<String>,
    scans: u64,
    /// Every program's last `scan_us`.
    scan_us: Vec<u64>,
}

fn views(addr: &str, token: &str) -> anyhow::Result<Views> {
    let v = get_json(addr, token, "/api/t3000/programs")?;
    let items = v.as_array().context("a JSON array of programs")?;
    let mut out = Views { programs: items.len(), running: 0, problem: None, scans: 0, scan_us: Vec::new() };
    for p in items {
        let clean = p["status"] == "running" && p["error"].is_null() && p["scans"].as_u64().unwrap_or(0) >= 2;
        if clean {
            out.running += 1;
        } else if out.problem.is_none() {
            out.problem =
                Some(format!("program {} ({}): status {}, error {}", p["id"], p["name"], p["status"], p["error"]));
        }
        out.scans += p["scans"].as_u64().unwrap_or(0);
        if let Some(us) = p["scan_us"].as_u64() {
            out.scan_us.push(us);
        }
    }
    Ok(out)
}

/// `(commands, failed)`: `point.write` rows of the audit log by programs, from `from_us` to `to_us`.
fn program_commands(addr: &str, token: &str, from_us: i64, to_us: i64) -> anyhow::Result<(u64, u64)> {
    let (mut n, mut failed) = (0, 0);
    let mut before: Option<i64> = None;
    loop {
        let mut path = format!("/api/t3000/audit?action=point.write&from={from_us}&to={to_us}&limit=10000");
        if let Some(b) = before {
            path.push_str(&format!("&before_seq={b}"));
        }
        let v = get_json(addr, token, &path)?;
        let rows = v.as_array().context("a JSON array of audit entries")?;
        for r in rows {
            if r["actor"].as_str().is_some_and(|a| a.starts_with("program:")) {
                n += 1;
                failed += u64::from(r["result"].as_str().is_some_and(|s| s.starts_with("failed")));
            }
        }
        match rows.last().and_then(|r| r["seq"].as_i64()) {
            Some(seq) if rows.len() == 10_000 => before = Some(seq),
            _ => return Ok((n, failed)),
        }
    }
}

/// One server run with `n` programs.
struct Run {
    programs: u32,
    create_secs: f64,
    secs: f64,
    cpu_s: f64,
    sim_cpu_s: f64,
    scans: u64,
    commands: u64,
    failed: u64,
    scan_us_median: Option<u64>,
    scan_us_p99: Option<u64>,
    rss: u64,
    load: String,
}

fn run(p: &Params, sim: &Simulator, n: u32) -> anyhow::Result<Run> {
    let dir = tempfile::Builder::new().prefix("programs-server-").tempdir_in(&p.work_dir)?;
    let cfg = dir.path().join("t3000.toml");
    std::fs::write(&cfg, config(&dir.path().join("data"), &sim.addr, p.devices)?)?;
    let server = Serve::start(&p.t3000, &cfg, &dir.path().join("server.log"))?;
    let result = (|| -> anyhow::Result<Run> {
        let addr = server.addr.as_str();
        let token = login(addr)?;
        let devices = wait_for_devices(addr, &token, p.devices)?;
        let t = Instant::now();
        for k in 0..n {
            let body = serde_json::json!({
                "name": format!("zone-{k:05}"),
                "device_id": devices[(k % p.devices) as usize],
                "source": crate::typical::program(k, p.devices),
                "enabled": true,
            })
            .to_string();
            let (status, reply) = http(addr, Some(&token), "POST", "/api/t3000/programs", Some(&body))?;
            ensure!(status == 201, "POST /api/t3000/programs (program {k}): {status} {reply}");
        }
        let create_secs = t.elapsed().as_secs_f64();
        // Every program running, without an error, scanned at least twice.
        let t = Instant::now();
        loop {
            let v = views(addr, &token)?;
            ensure!(v.programs == n as usize, "{} programs listed, {n} created", v.programs);
            if v.running == v.programs {
                break;
            }
            ensure!(
                t.elapsed() < Duration::from_secs(120),
                "{} of {n} programs running cleanly after 120 s; {}",
                v.running,
                v.problem.unwrap_or_default()
            );
            std::thread::sleep(Duration::from_secs(1));
        }
        std::thread::sleep(Duration::from_secs_f64(p.warmup));
        let before = views(addr, &token)?;
        let (us0, t0, cpu0, sim0) = (now_us(), Instant::now(), cpu_ticks(&server.pid)?, cpu_ticks(&sim.pid())?);
        std::thread::sleep(Duration::from_secs_f64(p.secs));
        let (cpu1, sim1, secs, us1) =
            (cpu_ticks(&server.pid)?, cpu_ticks(&sim.pid())?, t0.elapsed().as_secs_f64(), now_us());
        let rss = status_bytes(&server.pid, "VmRSS");
        let load = sys::loadavg();
        let after = views(addr, &token)?;
        ensure!(
            after.running == n as usize,
            "{} of {n} programs running cleanly after the window; {}",
            after.running,
            after.problem.unwrap_or_default()
        );
        let (commands, failed) = program_commands(addr, &token, us0, us1)?;
        let mut scan_us = after.scan_us;
        scan_us.sort_unstable();
        let q = |f: f64| (!scan_us.is_empty()).then(|| scan_us[((scan_us.len() - 1) as f64 * f).round() as usize]);
        Ok(Run {
            programs: n,
            create_secs,
            secs,
            cpu_s: (cpu1 - cpu0) as f64 / clk_tck(),
            sim_cpu_s: (sim1 - sim0) as f64 / clk_tck(),
            scans: after.scans - before.scans,
            commands,
            failed,
            scan_us_median: q(0.5),
            scan_us_p99: q(0.99),
            rss,
            load,
        })
    })();
    result.with_context(|| format!("the server with {n} programs; its log:\n{}", server.log_tail()))
}

/// Least-squares slope and intercept of `y` over `x`.
fn fit(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let (sx, sy) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (sxy, sxx) =
        points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + (x - mx) * (y - my), b + (x - mx) * (x - mx)));
    let slope = if sxx > 0.0 { sxy / sxx } else { f64::NAN };
    (slope, my - slope * mx)
}

fn opt_us(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| format!("{v} µs"))
}

/// Runs every N and returns the section of the report.
pub fn measure(p: &Params) -> anyhow::Result<String> {
    std::fs::create_dir_all(&p.work_dir)?;
    let sim = Simulator::start(&p.t3000, p.devices)?;
    let mut runs = Vec::new();
    for &n in &p.programs {
        eprintln!("[programs] t3000 serve with {} devices and {n} programs ...", p.devices);
        let r = run(p, &sim, n)?;
        eprintln!(
            "[programs]   {:.1} % of a core, {} program scans/s, {} commands, {} (load {})",
            r.cpu_s / r.secs * 100.0,
            count((r.scans as f64 / r.secs).round() as u64),
            r.commands,
            bytes(r.rss),
            r.load
        );
        runs.push(r);
    }
    let base = runs.iter().find(|r| r.programs == 0);
    let (slope, _) = fit(&runs.iter().map(|r| (r.scans as f64 / r.secs, r.cpu_s / r.secs)).collect::<Vec<_>>());
    let mut table = Table::new(&[
        "Programs",
        "Program scans/s",
        "Server CPU, % of a core",
        "CPU above N = 0 per program scan",
        "`scan_us` median / p99",
        "Commands/s (failed)",
        "VmRSS",
        "VmRSS above N = 0 per program",
        "Simulator CPU",
        "Load average (1, 5, 15 min)",
    ]);
    for r in &runs {
        let per_s = r.scans as f64 / r.secs;
        let above = base.filter(|_| r.programs > 0).map(|b| r.cpu_s / r.secs - b.cpu_s / b.secs);
        let rss_above = base
            .filter(|_| r.programs > 0)
            .map(|b| bytes(r.rss.saturating_sub(b.rss) / u64::from(r.programs)))
            .unwrap_or_else(|| "-".into());
        table.row(vec![
            count(u64::from(r.programs)),
            count(per_s.round() as u64),
            format!("{:.1} %", r.cpu_s / r.secs * 100.0),
            above.map_or("-".into(), |a| format!("{:.1} µs", a / per_s * 1e6)),
            format!("{} / {}", opt_us(r.scan_us_median), opt_us(r.scan_us_p99)),
            format!("{:.1} ({})", r.commands as f64 / r.secs, r.failed),
            bytes(r.rss),
            rss_above,
            format!("{:.1} %", r.sim_cpu_s / r.secs * 100.0),
            r.load.clone(),
        ]);
    }
    let lines = crate::typical::program(0, p.devices).lines().count();
    let mut md = format!(
        "\n## In the server: `t3000 serve` running N typical programs\n\n\
         - `t3000 simulate --count {d}` (simulated T3 controllers, unit ids 1..{d}, one Modbus TCP listener on \
         127.0.0.1) and `t3000 serve` (`{bin}`) with those {d} devices polled every second (all 256 points of the \
         T3-controller profile) and `[programs] scan_ms = 1000`; a fresh server and data directory for each N.\n\
         - N programs of {lines} lines (`benches/src/bin/programs/typical.rs`: one zone of an air handler in the \
         device's own point names; set points with set-back, START / STOP with hysteresis, TIME-ON / TIME-OFF, IF+, \
         INTERVAL, MAX / MIN / AVG, a GOSUB once a minute; six VARs of its own and OUT6, OUT8 and the zone's valve \
         commanded, each only when its value changes) created with `POST /api/t3000/programs` (`enabled: true`) on \
         the devices in turn; measured once all are `running` without an error, after {w} s of warm-up, over {s} s.\n\
         - Server CPU: user + system time of the `t3000 serve` process (all threads, /proc, 10 ms ticks) per second \
         of wall time. \"Program scans/s\": the `scans` counters of `GET /api/t3000/programs` before and after the \
         window. \"CPU above N = 0 per program scan\": (CPU/s with N - CPU/s with polling alone) / program scans/s. \
         `scan_us`: each program's last scan as the runner times it (`Machine::scan` on the scan's values, in whole \
         microseconds; writes not included). Commands: `point.write` rows of the audit log by `program:<id>` in the \
         window. VmRSS at the end of the window.\n\n",
        d = p.devices,
        bin = p.t3000.display(),
        w = p.warmup,
        s = p.secs,
    );
    md.push_str(&table.render());
    if slope.is_finite() && slope > 0.0 {
        md.push_str(&format!(
            "\nLeast-squares slope of server CPU over program scans/s, all rows: {:.1} µs of CPU per program scan, so \
             about {} such programs per core at T3000's one scan a second (the interpreter alone, above: see the \
             generated program's row).\n",
            slope * 1e6,
            count((1.0 / slope).round() as u64),
        ));
    }
    for r in &runs {
        if r.programs > 0 {
            md.push_str(&format!(
                "- {} programs: created through the API in {:.1} s.\n",
                count(u64::from(r.programs)),
                r.create_secs
            ));
        }
    }
    Ok(md)
}
