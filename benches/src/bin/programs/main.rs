//! Control BASIC scans: how fast `t3_core::basic::run` runs real T3000 programs, and how many
//! programs of about 100 lines one core keeps at T3000's scan rate (one scan a second), in the
//! interpreter alone and in the real server.
//!
//! The programs are the real ones committed as test data (`core/tests/data/basic/text/`): the 14
//! listings of the 1998 printout of a DOS panel (`PRINT_P1.TXT` .. `PRINT_P15.TXT`) and the
//! decompiled BTU-meter programs. Each is parsed and bound with every point name and label given
//! an id of its own; the points live in a `Vec<f64>` (or, for comparison, a `HashMap`), start at
//! deterministic values (a third digital 0/1, the rest 0..40 with one decimal) and a few of them
//! change before every scan, so IF+ / IF-, timers and branches do work. The clock moves one second
//! per scan. The "typical 100-line program" is the printout's listings that the server runs
//! (they bind, and no scan of theirs stops with an error), in order, joined into one program until it has at least 100 lines: each listing's line numbers
//! moved past the previous one's, its jumps with them, and its END turned into a GOTO to the next
//! listing's first line.
//!
//! Per program: scans/s over a loop of `--scans` scans (no timing inside the loop; per second of
//! wall time and per second of the thread's CPU time, which other processes on a shared machine
//! do not lower), then each of another `--scans` scans timed alone into an hdrhistogram (median,
//! p99). The program the server part runs ([`typical`]) is measured the same way, beside it.
//!
//! The server part ([`server`]) runs that typical program N times in the real `t3000 serve`
//! against `t3000 simulate`'s controllers and measures the server's CPU per program scan: the
//! interpreter plus everything the runner does around it. There is no peer: no other historian
//! runs Control BASIC.

#![forbid(unsafe_code)]

mod server;
mod typical;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{NaiveDate, NaiveDateTime};
use hdrhistogram::Histogram;
use t3_benches::args::Args;
use t3_benches::datagen::splitmix64;
use t3_benches::report::{self, Table, count};
use t3_benches::server::{clk_tck, cpu_ticks};
use t3_benches::sys;
use t3_core::basic::ast::{Expr, Program, Stmt};
use t3_core::basic::parse::parse;
use t3_core::basic::print::print_expr;
use t3_core::basic::run::{Env, Limits, Machine, PointName};

const USAGE: &str = "\
programs: Control BASIC scans per second of real T3000 programs and of a 100-line program built from them,
and the same in the real server: t3000 serve running N typical programs against simulated T3 controllers

cargo run --release -p t3-benches --bin programs -- [options]
  --parts LIST        interpreter,server (default both)
  --scans N           interpreter: scans per measurement (default 1000000; each program is measured twice: a
                      loop, then every scan timed alone)
  --programs LIST     server: numbers of programs, one server run each (default 0,100,1000,3000; 0 is polling alone)
  --devices D         server: simulated T3 controllers, polled every second (default 16)
  --server-warmup S   server: seconds after every program runs before measuring (default 20)
  --server-secs S     server: measured seconds (default 20)
  --t3000 PATH        server: the binary (default: t3000 beside this binary, $CARGO_TARGET_DIR/release)
  --work-dir DIR      server: where data directories go (default $HOME/.cache/t3000/bench-data)
  --out NAME          write the tables to benches/results/NAME.md (default programs)";

const KEYS: &[&str] =
    &["parts", "scans", "programs", "devices", "server-warmup", "server-secs", "t3000", "work-dir", "out"];

macro_rules! source {
    ($name:literal, $file:literal) => {
        ($name, include_str!(concat!("../../../../core/tests/data/basic/text/", $file)))
    };
}

/// The printout's listings, in panel order (P10 is not in the printout).
const LISTINGS: &[(&str, &str)] = &[
    source!("PRINT P1", "PRINT_P1.TXT"),
    source!("PRINT P2", "PRINT_P2.TXT"),
    source!("PRINT P3", "PRINT_P3.TXT"),
    source!("PRINT P4", "PRINT_P4.TXT"),
    source!("PRINT P5", "PRINT_P5.TXT"),
    source!("PRINT P6", "PRINT_P6.TXT"),
    source!("PRINT P7", "PRINT_P7.TXT"),
    source!("PRINT P8", "PRINT_P8.TXT"),
    source!("PRINT P9", "PRINT_P9.TXT"),
    source!("PRINT P11", "PRINT_P11.TXT"),
    source!("PRINT P12", "PRINT_P12.TXT"),
    source!("PRINT P13", "PRINT_P13.TXT"),
    source!("PRINT P14", "PRINT_P14.TXT"),
    source!("PRINT P15", "PRINT_P15.TXT"),
];

/// T3000's decompiled programs of the BTU-meter test panel.
const BTU: &[(&str, &str)] = &[
    source!("BTUMeter1", "BTUMeter1.txt"),
    source!("BTUMeter3", "BTUMeter3.txt"),
    source!("BTUMeter4", "BTUMeter4.txt"),
    source!("BTUMeter5", "BTUMeter5.txt"),
];

/// Every point name and label gets an id of its own, in the order first seen.
#[derive(Default)]
struct Names(HashMap<String, u32>);

impl Names {
    fn id(&mut self, name: PointName<'_>) -> u32 {
        let key = match name {
            PointName::Ref(p) => print_expr(&Expr::Point(p.clone())),
            PointName::Label(l) => l.to_string(),
        };
        let next = self.0.len() as u32;
        *self.0.entry(key).or_insert(next)
    }
}

/// A point's starting value: a third are digital (0 or 1), the rest 0..40 with one decimal.
fn value(id: u32, round: u64) -> f64 {
    let h = splitmix64((u64::from(id) << 32) ^ round);
    if id.is_multiple_of(3) { (h & 1) as f64 } else { (h % 400) as f64 / 10.0 }
}

/// Points in a vector indexed by id: the cheapest world a program can run in.
struct VecEnv {
    values: Vec<f64>,
    writes: u64,
    alarms: u64,
}

impl Env for VecEnv {
    fn read(&mut self, id: u32) -> Option<f64> {
        self.values.get(id as usize).copied()
    }
    fn write(&mut self, id: u32, value: f64) {
        if let Some(v) = self.values.get_mut(id as usize) {
            *v = value;
        }
        self.writes += 1;
    }
    fn alarm(&mut self, _: u16, _: &str, _: bool) {
        self.alarms += 1;
    }
}

/// Points in a hash map, as a last-value cache keyed by point id would hold them.
struct MapEnv {
    values: HashMap<u32, f64>,
    writes: u64,
    alarms: u64,
}

impl Env for MapEnv {
    fn read(&mut self, id: u32) -> Option<f64> {
        self.values.get(&id).copied()
    }
    fn write(&mut self, id: u32, value: f64) {
        self.values.insert(id, value);
        self.writes += 1;
    }
    fn alarm(&mut self, _: u16, _: &str, _: bool) {
        self.alarms += 1;
    }
}

/// The world a benchmark moves between scans.
trait World: Env {
    fn set(&mut self, id: u32, v: f64);
    fn counts(&self) -> (u64, u64);
}

impl World for VecEnv {
    fn set(&mut self, id: u32, v: f64) {
        self.values[id as usize] = v;
    }
    fn counts(&self) -> (u64, u64) {
        (self.writes, self.alarms)
    }
}

impl World for MapEnv {
    fn set(&mut self, id: u32, v: f64) {
        self.values.insert(id, v);
    }
    fn counts(&self) -> (u64, u64) {
        (self.writes, self.alarms)
    }
}

/// A program ready to run, with its point count.
struct Bound {
    machine: Machine,
    points: u32,
}

fn bind(p: &Program) -> Result<Bound, String> {
    let mut names = Names::default();
    let machine = Machine::new(p, Limits::default(), &mut |n| Ok(names.id(n))).map_err(|e| e.to_string())?;
    Ok(Bound { machine, points: names.0.len() as u32 })
}

/// What one measurement gave.
struct Measured {
    /// The loop's scans per second of wall time ...
    scans_per_s: f64,
    /// ... and per second of this thread's CPU time (user + system, in clock ticks of 10 ms: for
    /// loops of a second or more), which the other processes on the machine do not lower.
    scans_per_cpu_s: f64,
    median_ns: u64,
    p99_ns: u64,
    max_ns: u64,
    steps_per_scan: f64,
    waiting: u64,
    writes_per_scan: f64,
    alarms: u64,
    /// Scans that stopped with an error (of 1,000 warm-up scans and both measurements).
    errors: u64,
    first_error: Option<String>,
}

fn start_time() -> NaiveDateTime {
    // Monday 7 December 2026, 06:00: the printout's programs look at TIME, DOW and DOY.
    NaiveDate::from_ymd_opt(2026, 12, 7).unwrap().and_hms_opt(6, 0, 0).unwrap()
}

/// Runs `scans` scans twice (a loop, then each timed alone), moving two points and the clock
/// before every scan. A scan that stops with an error counts (its time too) and the program is
/// restarted, as an operator would after fixing the cause.
fn measure<W: World>(b: &mut Bound, world: &mut W, scans: u64) -> anyhow::Result<Measured> {
    b.machine.restart();
    let points = u64::from(b.points.max(1));
    let mut now = start_time();
    let mut errors = (0u64, None::<String>);
    let mut run = |i: u64, world: &mut W, timed: bool| -> (u32, bool, Duration) {
        for id in [i % points, (i * 7 + 3) % points] {
            world.set(id as u32, value(id as u32, i));
        }
        now += chrono::Duration::seconds(1);
        let t = timed.then(Instant::now);
        let scan = b.machine.scan(world, now, 1000);
        let took = t.map(|t| t.elapsed()).unwrap_or_default();
        match scan {
            Ok(s) => (s.steps, s.waiting, took),
            Err(e) => {
                errors.0 += 1;
                errors.1.get_or_insert_with(|| format!("{e} (at {})", now.format("%H:%M:%S")));
                b.machine.restart();
                (0, false, took)
            }
        }
    };
    for i in 0..1000 {
        run(i, world, false);
    }
    let (w0, _) = world.counts();
    let (mut steps, mut waiting) = (0u64, 0u64);
    let ticks = cpu_ticks("thread-self")?;
    let t = Instant::now();
    for i in 0..scans {
        let (s, w, _) = run(1000 + i, world, false);
        steps += u64::from(s);
        waiting += u64::from(w);
    }
    let loop_s = t.elapsed().as_secs_f64();
    let cpu_s = (cpu_ticks("thread-self")? - ticks) as f64 / clk_tck();
    let (w1, alarms) = world.counts();
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    for i in 0..scans {
        let (_, _, d) = run(1000 + scans + i, world, true);
        h.record((d.as_nanos() as u64).max(1))?;
    }
    Ok(Measured {
        scans_per_s: scans as f64 / loop_s,
        scans_per_cpu_s: scans as f64 / cpu_s,
        median_ns: h.value_at_quantile(0.5),
        p99_ns: h.value_at_quantile(0.99),
        max_ns: h.max(),
        steps_per_scan: steps as f64 / scans as f64,
        waiting,
        writes_per_scan: (w1 - w0) as f64 / scans as f64,
        alarms,
        errors: errors.0,
        first_error: errors.1,
    })
}

fn vec_env(points: u32) -> VecEnv {
    VecEnv { values: (0..points.max(1)).map(|id| value(id, 0)).collect(), writes: 0, alarms: 0 }
}

fn map_env(points: u32) -> MapEnv {
    MapEnv { values: (0..points.max(1)).map(|id| (id, value(id, 0))).collect(), writes: 0, alarms: 0 }
}

fn max_line(p: &Program) -> u16 {
    p.lines.iter().map(|l| l.number).max().unwrap_or(0)
}

/// Moves a statement's jumps by `offset`; END becomes a GOTO `next` when there is a next part.
fn renumber(s: &mut Stmt, offset: u16, next: Option<u16>) {
    match s {
        Stmt::Goto(n) | Stmt::Gosub(n) | Stmt::OnAlarm(n) | Stmt::OnError(n) => *n += offset,
        Stmt::On { targets, .. } => targets.iter_mut().for_each(|n| *n += offset),
        Stmt::If { then, otherwise, .. } => {
            then.iter_mut().chain(otherwise.iter_mut()).for_each(|s| renumber(s, offset, next));
        }
        Stmt::End => {
            if let Some(n) = next {
                *s = Stmt::Goto(n);
            }
        }
        _ => {}
    }
}

/// Joins programs into one, each after the previous (see the module documentation).
fn join(parts: &[&Program]) -> anyhow::Result<Program> {
    let mut offsets = Vec::with_capacity(parts.len());
    let mut base = 0u32;
    for p in parts {
        offsets.push(base);
        base += (u32::from(max_line(p)) / 10 + 1) * 10;
    }
    if base > u32::from(u16::MAX) {
        bail!("the joined program needs line numbers above 65535");
    }
    let mut out = Program::default();
    for (k, p) in parts.iter().enumerate() {
        let offset = offsets[k] as u16;
        let next = parts.get(k + 1).and_then(|q| q.lines.first()).map(|l| l.number + offsets[k + 1] as u16);
        for line in &p.lines {
            let mut line = line.clone();
            line.number += offset;
            renumber(&mut line.stmt, offset, next);
            out.lines.push(line);
        }
    }
    Ok(out)
}

fn ns(v: u64) -> String {
    if v >= 1_000_000 {
        format!("{:.1} ms", v as f64 / 1e6)
    } else if v >= 10_000 {
        format!("{:.1} µs", v as f64 / 1e3)
    } else {
        format!("{v} ns")
    }
}

/// The interpreter alone: every real program, the joined 100-line program and the server
/// part's typical program, in-process. Returns the report's bullet and its sections.
fn interpreter(scans: u64, devices: u32) -> anyhow::Result<(String, String)> {
    let load_before = sys::loadavg();

    // Every real program: parsed, bound, measured alone.
    let mut each = Table::new(&[
        "Program",
        "Lines",
        "Statements per scan",
        "Scans/s (loop)",
        "Median per scan",
        "p99 per scan",
        "Runs on the server",
    ]);
    let scans_each = scans / 10;
    let mut runnable: Vec<(&str, Program)> = Vec::new();
    for &(name, text) in LISTINGS.iter().chain(BTU) {
        let program = parse(text).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let lines = program.lines.len() as u64;
        match bind(&program) {
            Ok(mut b) => {
                let mut world = vec_env(b.points);
                let m = measure(&mut b, &mut world, scans_each).with_context(|| name.to_string())?;
                let runs = match &m.first_error {
                    None => "yes".to_string(),
                    Some(e) => format!("stops in {} of {} scans: {e}", count(m.errors), count(2 * scans_each + 1000)),
                };
                each.row(vec![
                    name.into(),
                    count(lines),
                    format!("{:.1}", m.steps_per_scan),
                    report::rate(m.scans_per_s),
                    ns(m.median_ns),
                    ns(m.p99_ns),
                    runs,
                ]);
                if name.starts_with("PRINT") && m.errors == 0 && m.waiting == 0 {
                    runnable.push((name, program));
                }
            }
            Err(e) => {
                each.row(vec![
                    name.into(),
                    count(lines),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    format!("no: {e}"),
                ]);
            }
        }
    }

    // The typical 100-line program: the printout's runnable listings joined in order.
    let mut parts = Vec::new();
    let mut lines = 0;
    for (name, p) in &runnable {
        parts.push((*name, p));
        lines += p.lines.len();
        if lines >= 100 {
            break;
        }
    }
    let joined = join(&parts.iter().map(|(_, p)| *p).collect::<Vec<_>>())?;
    let names: Vec<&str> = parts.iter().map(|(n, _)| *n).collect();
    let typical = parse(&typical::program(0, devices)).map_err(|e| anyhow::anyhow!("the typical program: {e}"))?;
    let mut main_table = Table::new(&[
        "Program",
        "Env",
        "Lines",
        "Points",
        "Statements per scan",
        "Writes per scan",
        "Scans/s (loop, wall time)",
        "Scans per CPU second (loop)",
        "Median per scan",
        "p99 per scan",
        "Max per scan",
        "Programs per core at 1 scan/s",
    ]);
    for (label, program) in [("joined listings", &joined), ("the server part's program", &typical)] {
        for env in ["Vec<f64>", "HashMap<u32, f64>"] {
            let mut b = bind(program).map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
            let points = b.points;
            let m = if env == "Vec<f64>" {
                measure(&mut b, &mut vec_env(points), scans)?
            } else {
                measure(&mut b, &mut map_env(points), scans)?
            };
            if m.waiting > 0 || m.errors > 0 {
                bail!("{label} waited in {} scans and stopped in {}: {:?}", m.waiting, m.errors, m.first_error);
            }
            eprintln!("[programs] {label}, {env}: {} alarms raised or cleared", m.alarms);
            main_table.row(vec![
                label.into(),
                env.into(),
                count(program.lines.len() as u64),
                count(u64::from(b.points)),
                format!("{:.1}", m.steps_per_scan),
                format!("{:.1}", m.writes_per_scan),
                report::rate(m.scans_per_s),
                report::rate(m.scans_per_cpu_s),
                ns(m.median_ns),
                ns(m.p99_ns),
                ns(m.max_ns),
                count(m.scans_per_cpu_s as u64),
            ]);
        }
    }

    let bullet = format!(
        "- The 100-line program: {} joined in order ({} lines; each listing's END became a GOTO to the next listing); \
         beside it the program the server part runs ({} lines, see below). Every point name and label bound to an id \
         of its own; points start at deterministic values and two of them change before every scan; the clock moves \
         one second per scan. {} scans in a loop for scans/s, then {} scans each timed alone for the median and p99 \
         (one thread, `Machine::scan` only). No peer: no other historian runs Control BASIC.\n\
         - Load average at the start of the interpreter part: {load_before}; at its end: {}\n",
        names.join(", "),
        joined.lines.len(),
        typical.lines.len(),
        count(scans),
        count(scans),
        sys::loadavg(),
    );
    let mut md = String::from("\n## A typical 100-line program\n\n");
    md.push_str(&main_table.render());
    md.push_str(&format!(
        "\n\"Programs per core\" is the loop's scans per second of CPU time (this thread's user + system time from \
         /proc, 10 ms ticks): at T3000's rate of one scan a second, that many such programs fit on one core. The \
         wall-time rate is lower when other processes share the cores (the load average above). The loop also moves \
         two point values and the clock before every scan, so its rate is a little below 1 / median. The Env's real \
         cost in the server (the last-value cache, the command arbiter) comes on top: the HashMap row shows what a \
         map look-up per read and write adds, and the server part below measures the whole of it. \"Max\" is one \
         scan that the operating system interrupted (this machine's 2 cores are shared).\n\n\
         ## Every real program alone ({} scans each, Env over a Vec)\n\n\
         A program that binds but stops with an error in some scans (its values are random, its TIME units may be \
         the DOS era's) is counted with the error's scans, and restarted.\n\n",
        count(scans / 10)
    ));
    md.push_str(&each.render());
    Ok((bullet, md))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse(KEYS, &[], USAGE)?;
    let parts: Vec<String> = args
        .string("parts")
        .unwrap_or_else(|| "interpreter,server".into())
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect();
    if let Some(p) = parts.iter().find(|p| *p != "interpreter" && *p != "server") {
        bail!("unknown part `{p}` (expected interpreter, server)");
    }
    let scans: u64 = args.get("scans", 1_000_000)?;
    let out = args.string("out").unwrap_or_else(|| "programs".into());
    let programs = args
        .string("programs")
        .unwrap_or_else(|| "0,100,1000,3000".into())
        .split(',')
        .map(|s| s.trim().replace('_', "").parse::<u32>().with_context(|| format!("--programs: `{s}`")))
        .collect::<anyhow::Result<Vec<u32>>>()?;
    let devices: u32 = args.get("devices", 16)?;
    if !(1..=247).contains(&devices) {
        bail!("--devices must be between 1 and 247 (Modbus unit ids)");
    }
    let params = server::Params {
        // `programs` and `t3000` are built into the same target directory.
        t3000: args.opt::<PathBuf>("t3000")?.unwrap_or(std::env::current_exe()?.with_file_name("t3000")),
        work_dir: args.opt::<PathBuf>("work-dir")?.unwrap_or_else(sys::default_work_dir),
        devices,
        programs,
        warmup: args.get("server-warmup", 20.0)?,
        secs: args.get("server-secs", 20.0)?,
    };
    if params.secs <= 0.0 || params.warmup < 0.0 {
        bail!("--server-secs must be positive, --server-warmup at least 0");
    }
    let server_part = parts.iter().any(|p| p == "server");
    if server_part && !params.t3000.exists() {
        bail!(
            "{} not found: build it with `cargo build --release --bin t3000`, or give --t3000",
            params.t3000.display()
        );
    }

    let mut md = String::from("# Programs benchmark: Control BASIC scans\n\n");
    md.push_str(&format!("- Command: `{}`\n", report::command_line()));
    md.push_str(&format!("- Run: {} on {}\n", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"), sys::machine()));
    let mut sections = String::new();
    if parts.iter().any(|p| p == "interpreter") {
        let (bullet, section) = interpreter(scans, devices)?;
        md.push_str(&bullet);
        sections.push_str(&section);
    }
    if server_part {
        sections.push_str(&server::measure(&params)?);
    }
    md.push_str(&sections);
    let path = report::write_results(&out, &md)?;
    println!("{md}");
    eprintln!("[programs] wrote {}", path.display());
    Ok(())
}
