//! Misbehaving devices, end to end: the real [`Collector`] polling simulated devices over real
//! loopback sockets (and pseudo-terminals for RTU), with the simulator's faults switched on and off
//! while it runs.
//!
//! What is proven here (RELIABILITY.md, tests 8-12):
//! - every fault gives the documented quality with a NaN value, never a 0 and never the previous
//!   value passed off as good; the device status says what happened; the device comes back;
//! - a late answer is never taken for the answer to a later request (TCP and RTU);
//! - 10,000 timeouts leak no socket and no task, on either side;
//! - a dead device does not hold up a healthy one; offline devices cost no CPU and are probed at
//!   the backoff interval;
//! - discovery finds simulated units over TCP, RTU and T3000's UDP scan.
//!
//! Nothing here sleeps to wait for an outcome: tests wait for a condition (a sample, a status) with
//! a deadline. Only the measurements (poll period, CPU time, probe interval) watch a fixed window.
//!
//! Each test runs on its own multi-thread runtime. The timing-sensitive and heavy tests take the
//! [`LOCK`] exclusively so they do not measure each other; the rest share it.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde_json::json;
use t3_core::clock::SystemClock;
use t3_core::config::{CollectorConfig, DeviceConfig, Parity};
use t3_core::{Quality, Sample};
use t3_drivers::codec::RegisterKind;
use t3_drivers::collector::{Collector, DeviceSpec, DeviceState, DeviceStatus};
use t3_drivers::discovery;
use t3_drivers::driver::{Driver, DriverError, RawData};
use t3_drivers::labels::PointText;
use t3_drivers::modbus::{Endpoint, ModbusDriver};
use t3_drivers::planner::ReadRequest;

use crate::ChannelSink;
use t3_drivers::profile::{ProfileLibrary, ProfilePoint, T3_CONTROLLER};
use t3_drivers::simulator::{Fault, SimDevice, SimDeviceSpec, Simulator};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// Timing-sensitive tests hold it for writing, the others for reading.
static LOCK: RwLock<()> = RwLock::new(());

/// Name of the worker threads of the runtimes built here (at most 15 bytes: the kernel's `comm`).
const WORKER_NAME: &str = "t3-faults-rt";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(WORKER_NAME)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs a test body alongside the other shared tests.
fn shared<F: Future<Output = ()>>(body: F) {
    let _guard = LOCK.read().unwrap_or_else(PoisonError::into_inner);
    runtime().block_on(body);
}

/// Runs a test body while no other test of this module runs.
fn exclusive<F: Future<Output = ()>>(body: F) {
    let _guard = LOCK.write().unwrap_or_else(PoisonError::into_inner);
    runtime().block_on(body);
}

fn collector(cfg: CollectorConfig) -> (Arc<Collector>, mpsc::UnboundedReceiver<Sample>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Collector::new(cfg, Arc::new(ChannelSink(tx)), Arc::new(SystemClock)), rx)
}

/// How the collector reaches a simulated device.
#[derive(Debug, Clone)]
enum Link {
    Tcp(SocketAddr),
    Rtu(String),
}

impl Link {
    fn endpoint(&self) -> Endpoint {
        match self {
            Link::Tcp(a) => Endpoint::Tcp { host: a.ip().to_string(), port: a.port() },
            Link::Rtu(path) => Endpoint::Rtu { path: path.clone(), baud_rate: 115_200, parity: Parity::None },
        }
    }
}

fn point_id(unit: u8, p: &ProfilePoint) -> u32 {
    u32::from(unit) * 100_000 + u32::from(p.address)
}

/// A T3 controller device polling only `points`, every `interval_ms`; `extra` adds or overrides
/// config fields.
fn device(
    name: &str,
    link: &Link,
    unit: u8,
    points: &[&str],
    interval_ms: u64,
    extra: serde_json::Value,
) -> DeviceSpec {
    let mut cfg = json!({
        "name": name,
        "unit_id": unit,
        "profile": T3_CONTROLLER,
        "poll_interval_ms": interval_ms,
    });
    match link {
        Link::Tcp(a) => {
            cfg["protocol"] = json!("modbus-tcp");
            cfg["ip_address"] = json!(a.ip().to_string());
            cfg["port"] = json!(a.port());
        }
        Link::Rtu(path) => {
            cfg["protocol"] = json!("modbus-rtu");
            cfg["serial_port"] = json!(path);
            cfg["baud_rate"] = json!(115_200);
        }
    }
    if let serde_json::Value::Object(extra) = extra {
        for (k, v) in extra {
            cfg[k] = v;
        }
    }
    let config: DeviceConfig = serde_json::from_value(cfg).expect("device config");
    let profile = ProfileLibrary::builtin().get(T3_CONTROLLER).expect("T3 profile").clone();
    let mut spec = DeviceSpec::new(config, profile, |p| point_id(unit, p)).expect("device spec");
    let profile = spec.profile.clone();
    spec.points.retain(|p| points.contains(&profile.points[p.index].name.as_str()));
    assert_eq!(spec.points.len(), points.len(), "every test point is in the profile");
    spec
}

/// The stored id of T3 point `name` of `unit`.
fn id_of(unit: u8, name: &str) -> u32 {
    let profile = ProfileLibrary::builtin().get(T3_CONTROLLER).expect("T3 profile");
    point_id(unit, profile.point(name).expect("point"))
}

fn t3(name: &str, unit: u8, serial: u32) -> SimDeviceSpec {
    SimDeviceSpec::new(name, unit, T3_CONTROLLER, serial, u64::from(serial))
}

async fn serve_tcp(sim: &Arc<Simulator>) -> (SocketAddr, JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    (addr, tokio::spawn(Arc::clone(sim).serve_tcp(listener)))
}

fn serve_rtu(sim: &Arc<Simulator>) -> (String, JoinHandle<std::io::Result<()>>) {
    let (port, path) = Simulator::open_pty().expect("pty");
    (path, tokio::spawn(Arc::clone(sim).serve_rtu(port)))
}

/// A loopback port nothing listens on (connections are refused). Privileged, so no listener of a
/// test running beside this one can be given it by `bind(0)`.
fn refused_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 1))
}

/// Sets `points` of `dev` to `values` and checks the device holds them exactly.
fn set_values(dev: &SimDevice, points: &[&str], values: &[f64]) {
    for (p, v) in points.iter().zip(values) {
        dev.set_value(p, *v).expect("set value");
        assert_eq!(dev.value(p), Some(*v), "{p} holds {v}");
        assert!(!dev.is_manual(p), "{p} is in auto");
    }
}

fn status(c: &Collector, name: &str) -> DeviceStatus {
    c.status().get(name).expect("device status")
}

/// Waits until `cond` holds for the device's status.
async fn wait_status(c: &Collector, name: &str, within: Duration, what: &str, cond: impl Fn(&DeviceStatus) -> bool) {
    let deadline = Instant::now() + within;
    let mut changes = c.status().subscribe();
    loop {
        let s = status(c, name);
        if cond(&s) {
            return;
        }
        assert!(Instant::now() < deadline, "{name}: not {what} within {within:?}; status {s:#?}");
        let _ = tokio::time::timeout(Duration::from_millis(50), changes.recv()).await;
    }
}

fn is_good(q: Quality) -> bool {
    q.0 & 0xC0 == 0xC0
}

// ---------------------------------------------------------------------------------------------
// 1. Every fault of the simulator, through the collector
// ---------------------------------------------------------------------------------------------

/// What a fault must look like from the outside.
#[derive(Debug, Clone, Copy)]
struct Expect {
    /// Quality of every failed read.
    quality: Quality,
    /// The device is marked offline after `offline_after_failures` polls (unreachable); otherwise it
    /// answered (an exception from the device itself) and stays online.
    offline: bool,
    /// The status counter that must grow.
    counter: fn(&DeviceStatus) -> u64,
    /// Part of the status' `last_error`.
    error: &'static str,
}

fn timeouts(s: &DeviceStatus) -> u64 {
    s.timeouts
}
fn exceptions(s: &DeviceStatus) -> u64 {
    s.exceptions
}
fn connection_errors(s: &DeviceStatus) -> u64 {
    s.connection_errors
}
fn protocol_errors(s: &DeviceStatus) -> u64 {
    s.protocol_errors
}

const UNREACHABLE_TIMEOUT: Expect =
    Expect { quality: Quality::BAD_COMM_FAILURE, offline: true, counter: timeouts, error: "no answer within 200 ms" };

fn exception(code: u8) -> Expect {
    let quality = match code {
        1..=3 => Quality::BAD_CONFIG_ERROR,
        0x0A | 0x0B => Quality::BAD_COMM_FAILURE,
        _ => Quality::BAD_DEVICE_FAILURE,
    };
    let error = match code {
        1 => "exception 0x01",
        2 => "exception 0x02",
        3 => "exception 0x03",
        4 => "exception 0x04",
        6 => "exception 0x06",
        0x0A => "exception 0x0a (gateway path unavailable)",
        0x0B => "exception 0x0b (gateway target device failed to respond)",
        _ => unreachable!(),
    };
    Expect { quality, offline: matches!(code, 0x0A | 0x0B), counter: exceptions, error }
}

const POINTS: [&str; 2] = ["VAR1", "VAR2"];
/// Requests one poll of [`POINTS`] takes: their values (8092-8095), their auto/manual registers
/// (8348-8349) and their analog/digital registers (8660-8661).
const REQUESTS_PER_POLL: u64 = 3;
/// Timeout of the fault tests.
const FAULT_TIMEOUT_MS: u64 = 200;
/// A late answer: after the timeout, before the end of the quiet period that follows it on RTU.
const LATE: Fault = Fault::LateAnswer { delay_ms: FAULT_TIMEOUT_MS + 50 };
const BEFORE: [f64; 2] = [11.5, 12.25];
const AFTER: [f64; 2] = [21.75, 22.125];

/// Per point: what was seen since the fault was switched on.
#[derive(Debug, Default, Clone)]
struct Seen {
    bad: usize,
    good_after_bad: Vec<f64>,
}

/// Runs one fault through a collector polling unit 1 of `sim` (every 100 ms, timeout 200 ms,
/// offline after 3 failures): good samples first, then the fault with the expected bad samples
/// and status, then, with the fault off again, good samples with the values set meanwhile.
async fn fault_cycle(sim: &Arc<Simulator>, link: Link, fault: Fault, expect: Expect) {
    let dev = sim.device(1).expect("unit 1");
    set_values(&dev, &POINTS, &BEFORE);
    // The timeout leaves room for a loaded machine: a spurious timeout would fail the test.
    let (c, mut rx) = collector(CollectorConfig {
        timeout_ms: FAULT_TIMEOUT_MS,
        offline_after_failures: 3,
        backoff_initial_ms: 50,
        backoff_max_ms: 200,
        ..Default::default()
    });
    c.add_device(device("dev", &link, 1, &POINTS, 100, json!({}))).expect("add device");
    let ids: Vec<u32> = POINTS.iter().map(|p| id_of(1, p)).collect();
    let label = format!("{fault:?} over {link:?}");

    // Healthy first.
    let mut good: HashSet<u32> = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while good.len() < ids.len() {
        let s =
            tokio::time::timeout_at(deadline, rx.recv()).await.unwrap_or_else(|_| panic!("{label}: no good samples"));
        let s = s.expect("sink open");
        let i = ids.iter().position(|&id| id == s.point_id.0).expect("known point");
        assert_eq!(s.quality, Quality::GOOD, "{label}: healthy sample {s:?}");
        assert_eq!(s.value, BEFORE[i], "{label}: healthy value");
        good.insert(s.point_id.0);
    }
    wait_status(&c, "dev", Duration::from_secs(2), "online", |s| s.state == DeviceState::Online).await;
    let s0 = status(&c, "dev");
    let requests0 = dev.requests();

    // Fault on: the values change meanwhile, so a good sample after the first bad one could only
    // carry a value that was not read now.
    let mut changes = c.status().subscribe();
    dev.set_fault(fault);
    set_values(&dev, &POINTS, &AFTER);
    let mut seen: Vec<Seen> = vec![Seen::default(); ids.len()];
    let need_bad = if expect.offline { 1 } else { 3 };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let done_samples = seen.iter().all(|s| s.bad >= need_bad);
        let st = status(&c, "dev");
        let done_status = if expect.offline {
            st.state == DeviceState::Offline && !st.online
        } else {
            st.polls >= s0.polls + 3 && (expect.counter)(&st) > (expect.counter)(&s0)
        };
        if done_samples && done_status {
            break;
        }
        assert!(Instant::now() < deadline, "{label}: fault not reported within 10 s: seen {seen:?}, status {st:#?}");
        let Ok(s) = tokio::time::timeout(Duration::from_millis(50), rx.recv()).await else { continue };
        let s = s.expect("sink open");
        let i = ids.iter().position(|&id| id == s.point_id.0).expect("known point");
        if is_good(s.quality) {
            // Only a poll that was under way when the fault was switched on may still be good.
            assert!(seen[i].bad == 0, "{label}: good sample {s:?} after a bad one");
            assert!(s.value == BEFORE[i] || s.value == AFTER[i], "{label}: good sample with a foreign value {s:?}");
            assert_eq!(s.quality, Quality::GOOD, "{label}: {s:?}");
            seen[i].good_after_bad.push(s.value);
        } else {
            assert_eq!(s.quality, expect.quality, "{label}: quality of {s:?}");
            assert!(s.value.is_nan(), "{label}: a failed read must carry NaN, got {s:?}");
            seen[i].bad += 1;
        }
    }
    let s1 = status(&c, "dev");
    eprintln!(
        "{label}: {:?}, {} failed polls in a row, last error {:?}",
        s1.state, s1.consecutive_failures, s1.last_error
    );
    // Every status published meanwhile: offline exactly from the third failure in a row on.
    let mut went_offline = false;
    while let Ok(s) = changes.try_recv() {
        if s.state == DeviceState::Offline {
            assert!(expect.offline && s.consecutive_failures >= 3 && !s.online, "{label}: early offline: {s:#?}");
            went_offline = true;
        } else {
            assert!(s.state == DeviceState::Online && s.online, "{label}: {s:#?}");
            assert!(s.consecutive_failures < 3, "{label}: still online after 3 failures: {s:#?}");
        }
    }
    assert_eq!(went_offline, expect.offline, "{label}");
    assert!((expect.counter)(&s1) > (expect.counter)(&s0), "{label}: counter did not grow: {s0:#?} -> {s1:#?}");
    let err = s1.last_error.clone().unwrap_or_default();
    assert!(err.contains(expect.error), "{label}: last_error {err:?} should contain {:?}", expect.error);
    if expect.offline {
        assert!(s1.consecutive_failures >= 3, "{label}: {s1:#?}");
        assert!(s1.failed_polls >= s0.failed_polls + 3, "{label}: {s1:#?}");
    } else {
        assert_eq!(s1.state, DeviceState::Online, "{label}: an exception proves the device is alive: {s1:#?}");
        assert_eq!(s1.failed_polls, s0.failed_polls, "{label}: {s1:#?}");
    }
    let polls = s1.polls - s0.polls;
    let requests = dev.requests() - requests0;
    if let Fault::Exception { code: 6 } = fault {
        // Busy: each of the poll's requests is sent once and retried three times, 20, 40 and 80 ms
        // apart, before it counts as failed.
        let want = 4 * REQUESTS_PER_POLL * (polls - 1);
        assert!(requests >= want, "{label}: {requests} requests in {polls} polls: busy not retried");
        // The status reports the poll's time divided by its requests; the backoff adds 140 ms per poll.
        let poll_ms = s1.rtt_ms.unwrap_or_default() * REQUESTS_PER_POLL as f64;
        assert!(poll_ms >= 140.0, "{label}: a poll took {poll_ms} ms: no backoff between retries");
    } else if let Fault::Exception { code } = fault {
        // Exception 02 on a block read splits it into one read per point (2 points x 3 registers).
        let per_poll = if code == 2 { 2 * REQUESTS_PER_POLL } else { REQUESTS_PER_POLL };
        assert!(
            requests <= per_poll * (polls + 1),
            "{label}: {requests} requests in {polls} polls: retried a final exception"
        );
    }
    if matches!(fault, Fault::Exception { code: 0x0A | 0x0B }) {
        // The gateway answered: its connection is fine; only the device behind it is offline.
        assert_eq!(s1.connection_errors, s0.connection_errors, "{label}: gateway blamed: {s1:#?}");
        assert_eq!(s1.timeouts, s0.timeouts, "{label}: {s1:#?}");
        assert_eq!(s1.protocol_errors, s0.protocol_errors, "{label}: {s1:#?}");
    }

    // Fault off: the device comes back, with the values it holds now.
    dev.set_fault(Fault::None);
    let mut fresh: HashSet<u32> = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while fresh.len() < ids.len() {
        let s = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{label}: no good samples after the fault, status {:#?}", status(&c, "dev")));
        let s = s.expect("sink open");
        let i = ids.iter().position(|&id| id == s.point_id.0).expect("known point");
        if is_good(s.quality) {
            assert_eq!(s.quality, Quality::GOOD, "{label}: {s:?}");
            assert_eq!(s.value, AFTER[i], "{label}: stale value after recovery: {s:?}");
            fresh.insert(s.point_id.0);
        } else {
            // A read under way when the fault was switched off.
            assert_eq!(s.quality, expect.quality, "{label}: {s:?}");
            assert!(s.value.is_nan(), "{label}: {s:?}");
        }
    }
    wait_status(&c, "dev", Duration::from_secs(2), "back online", |s| {
        s.state == DeviceState::Online && s.online && s.consecutive_failures == 0 && s.last_error.is_none()
    })
    .await;
    c.shutdown().await;
}

async fn tcp_fault(fault: Fault, expect: Expect) {
    let sim = Simulator::new(vec![t3("dev", 1, 1001)]).expect("simulator");
    let (addr, server) = serve_tcp(&sim).await;
    fault_cycle(&sim, Link::Tcp(addr), fault, expect).await;
    server.abort();
}

async fn rtu_fault(fault: Fault, expect: Expect) {
    let sim = Simulator::new(vec![t3("dev", 1, 1001)]).expect("simulator");
    let (path, server) = serve_rtu(&sim);
    fault_cycle(&sim, Link::Rtu(path), fault, expect).await;
    server.abort();
}

#[test]
fn tcp_no_answer_times_out_and_goes_offline() {
    shared(tcp_fault(Fault::NoAnswer, UNREACHABLE_TIMEOUT));
}

#[test]
fn tcp_late_answer_times_out_and_goes_offline() {
    shared(tcp_fault(LATE, UNREACHABLE_TIMEOUT));
}

#[test]
fn tcp_exception_01_is_a_config_error_of_a_live_device() {
    shared(tcp_fault(Fault::Exception { code: 1 }, exception(1)));
}

#[test]
fn tcp_exception_02_is_a_config_error_of_a_live_device() {
    shared(tcp_fault(Fault::Exception { code: 2 }, exception(2)));
}

#[test]
fn tcp_exception_03_is_a_config_error_of_a_live_device() {
    shared(tcp_fault(Fault::Exception { code: 3 }, exception(3)));
}

#[test]
fn tcp_exception_04_is_a_device_failure_of_a_live_device() {
    shared(tcp_fault(Fault::Exception { code: 4 }, exception(4)));
}

#[test]
fn tcp_exception_06_busy_is_retried_with_backoff_then_bad() {
    shared(tcp_fault(Fault::Exception { code: 6 }, exception(6)));
}

#[test]
fn tcp_exception_0a_marks_the_device_offline_not_the_gateway() {
    shared(tcp_fault(Fault::Exception { code: 0x0A }, exception(0x0A)));
}

#[test]
fn tcp_exception_0b_marks_the_device_offline_not_the_gateway() {
    shared(tcp_fault(Fault::Exception { code: 0x0B }, exception(0x0B)));
}

#[test]
fn tcp_dropped_connection_is_a_connection_error() {
    shared(tcp_fault(
        Fault::DropConnection,
        Expect {
            quality: Quality::BAD_COMM_FAILURE,
            offline: true,
            counter: connection_errors,
            error: "connection failed",
        },
    ));
}

#[test]
fn tcp_garbage_is_a_protocol_error() {
    shared(tcp_fault(
        Fault::Garbage,
        Expect { quality: Quality::BAD_COMM_FAILURE, offline: true, counter: protocol_errors, error: "invalid reply" },
    ));
}

#[test]
fn tcp_crc_error_is_garbage_on_tcp() {
    shared(tcp_fault(
        Fault::CrcError,
        Expect { quality: Quality::BAD_COMM_FAILURE, offline: true, counter: protocol_errors, error: "invalid reply" },
    ));
}

/// tokio-modbus's RTU decoder drops a frame with a bad CRC byte by byte, looking for a good one, so
/// the request ends in a timeout.
#[test]
fn rtu_crc_error_times_out_and_goes_offline() {
    shared(rtu_fault(Fault::CrcError, UNREACHABLE_TIMEOUT));
}

#[test]
fn rtu_garbage_times_out_and_goes_offline() {
    shared(rtu_fault(Fault::Garbage, UNREACHABLE_TIMEOUT));
}

#[test]
fn rtu_no_answer_times_out_and_goes_offline() {
    shared(rtu_fault(Fault::NoAnswer, UNREACHABLE_TIMEOUT));
}

/// RTU has no transaction id: the driver keeps the line quiet for one more timeout after a timeout,
/// so answers up to twice the timeout late are discarded (250 ms here, timeout 200 ms). Later ones
/// are indistinguishable from the answer to the next request of the same shape.
#[test]
fn rtu_late_answer_times_out_and_goes_offline() {
    shared(rtu_fault(LATE, UNREACHABLE_TIMEOUT));
}

#[test]
fn rtu_exception_04_is_a_device_failure_of_a_live_device() {
    shared(rtu_fault(Fault::Exception { code: 4 }, exception(4)));
}

/// The gateway exception does not close the shared connection: the driver keeps its one connection
/// while unit 2 answers 0x0B and unit 1 keeps answering on it.
#[test]
fn gateway_exception_keeps_the_connection_for_the_other_units() {
    shared(async {
        let sim = Simulator::new(vec![t3("ok", 1, 1001), t3("gone", 2, 1002)]).expect("simulator");
        sim.device(1).expect("unit 1").set_value("VAR1", 5.5).expect("set");
        sim.device(2).expect("unit 2").set_fault(Fault::Exception { code: 0x0B });
        let (addr, server) = serve_tcp(&sim).await;
        let driver = ModbusDriver::new(Link::Tcp(addr).endpoint(), Duration::from_millis(200));
        let req = ReadRequest { kind: RegisterKind::Holding, start: 8092, count: 2, points: Vec::new() };
        for _ in 0..5 {
            let gone = driver.read(2, std::slice::from_ref(&req)).await;
            assert_eq!(gone, vec![Err(DriverError::Exception(t3_drivers::driver::ExceptionCode(0x0B)))]);
            assert_eq!(gone[0].as_ref().unwrap_err().quality(), Quality::BAD_COMM_FAILURE);
            let ok = driver.read(1, std::slice::from_ref(&req)).await;
            assert_eq!(ok, vec![Ok(RawData::Words(vec![0, 5500]))]);
        }
        let h = driver.health();
        assert_eq!((h.connects, h.failures, h.timeouts, h.answered), (1, 0, 0, 10), "{h:?}");
        assert!(h.connected);
        server.abort();
    });
}

// ---------------------------------------------------------------------------------------------
// Late answers are never taken for the next answer
// ---------------------------------------------------------------------------------------------

/// Straight through the driver: a request times out, its answer comes 50 ms later, while the next
/// request (same shape, other registers) is due. The next request must get its own registers or
/// fail; never the late answer.
async fn late_answer_is_not_the_next_answer(link: Link, sim: &Arc<Simulator>) {
    let dev = sim.device(1).expect("unit 1");
    set_values(&dev, &["VAR1", "VAR2"], &[1.111, 2.222]);
    let driver = ModbusDriver::new(link.endpoint(), Duration::from_millis(FAULT_TIMEOUT_MS));
    let var1 = ReadRequest { kind: RegisterKind::Holding, start: 8092, count: 2, points: Vec::new() };
    let var2 = ReadRequest { kind: RegisterKind::Holding, start: 8094, count: 2, points: Vec::new() };
    let (mut answered, mut timed_out) = (0, 0);
    for round in 0..8 {
        dev.set_fault(LATE);
        let late = driver.read(1, std::slice::from_ref(&var1)).await;
        match &late[..] {
            [Err(DriverError::Timeout(_))] => timed_out += 1,
            // On a starved machine our timer can fire after the late answer came in: then it is the
            // answer to this request, and must be VAR1's.
            [Ok(RawData::Words(w))] => assert_eq!(w, &vec![0, 1111], "round {round} over {link:?}"),
            other => panic!("round {round} over {link:?}: {other:?}"),
        }
        dev.set_fault(Fault::None);
        let next = driver.read(1, std::slice::from_ref(&var2)).await;
        match &next[..] {
            [Ok(RawData::Words(w))] => {
                assert_eq!(
                    w,
                    &vec![0, 2222],
                    "round {round} over {link:?}: the late answer to VAR1 was taken for VAR2"
                );
                answered += 1;
            }
            [Err(_)] => {}
            other => panic!("round {round} over {link:?}: {other:?}"),
        }
    }
    assert!(timed_out >= 4, "over {link:?}: only {timed_out} of 8 late answers timed out");
    assert!(answered >= 4, "over {link:?}: only {answered} of 8 follow-up reads were answered");
}

#[test]
fn tcp_late_answer_is_never_the_answer_to_the_next_request() {
    shared(async {
        let sim = Simulator::new(vec![t3("dev", 1, 1001)]).expect("simulator");
        let (addr, server) = serve_tcp(&sim).await;
        late_answer_is_not_the_next_answer(Link::Tcp(addr), &sim).await;
        server.abort();
    });
}

#[test]
fn rtu_late_answer_is_never_the_answer_to_the_next_request() {
    shared(async {
        let sim = Simulator::new(vec![t3("dev", 1, 1001)]).expect("simulator");
        let (path, server) = serve_rtu(&sim);
        late_answer_is_not_the_next_answer(Link::Rtu(path), &sim).await;
        server.abort();
    });
}

/// Through the collector, one request per point so every request has the same shape: the fault
/// flips between late answers (50 ms after the timeout) and none while the values change; every
/// good sample must carry a value its own point held, in auto.
async fn late_answers_never_become_samples_of_other_points(link: Link, sim: &Arc<Simulator>) {
    const P: [&str; 4] = ["VAR1", "VAR2", "VAR3", "VAR4"];
    let dev = sim.device(1).expect("unit 1");
    // Point k holds 100 k + round: no value is ever held by two points.
    let mut held: Vec<HashSet<i64>> = vec![HashSet::new(); P.len()];
    let set_round = |round: i64, held: &mut Vec<HashSet<i64>>| {
        for (k, p) in P.iter().enumerate() {
            let v = 100 * (k as i64 + 1) + round;
            dev.set_value(p, v as f64).expect("set");
            held[k].insert(v);
        }
    };
    set_round(0, &mut held);
    let (c, mut rx) = collector(CollectorConfig {
        timeout_ms: FAULT_TIMEOUT_MS,
        // Never offline: keep polling at full rate through the faults.
        offline_after_failures: 1000,
        backoff_initial_ms: 10,
        backoff_max_ms: 100,
        ..Default::default()
    });
    c.add_device(device("dev", &link, 1, &P, 100, json!({"one_request_per_point": true}))).expect("add");
    let ids: Vec<u32> = P.iter().map(|p| id_of(1, p)).collect();
    let (mut good, mut bad) = (vec![0usize; P.len()], vec![0usize; P.len()]);
    let end = Instant::now() + Duration::from_secs(5);
    let mut next_flip = Instant::now() + Duration::from_millis(500);
    let mut round = 0;
    while Instant::now() < end {
        if Instant::now() >= next_flip {
            round += 1;
            dev.set_fault(if round % 2 == 1 { LATE } else { Fault::None });
            set_round(round, &mut held);
            next_flip += Duration::from_millis(500);
        }
        let Ok(s) = tokio::time::timeout(Duration::from_millis(20), rx.recv()).await else { continue };
        let s = s.expect("sink open");
        let k = ids.iter().position(|&id| id == s.point_id.0).expect("known point");
        // Uncertain: the value was read but the request for its analog/digital flag then timed out.
        if is_good(s.quality) || s.quality == Quality::UNCERTAIN_SUB_NORMAL {
            assert!(s.quality != Quality::GOOD_LOCAL_OVERRIDE, "over {link:?}: {} in auto read as {s:?}", P[k]);
            let v = s.value.round() as i64;
            assert!(
                s.value.fract() == 0.0 && held[k].contains(&v),
                "over {link:?}: {} got {} which it never held (another request's answer)",
                P[k],
                s.value
            );
            good[k] += 1;
        } else {
            assert!(s.value.is_nan(), "{s:?}");
            assert_eq!(s.quality, Quality::BAD_COMM_FAILURE, "{s:?}");
            bad[k] += 1;
        }
    }
    let st = status(&c, "dev");
    c.shutdown().await;
    assert!(good.iter().all(|&n| n > 0) && bad.iter().all(|&n| n > 0), "over {link:?}: good {good:?} bad {bad:?}");
    assert!(st.timeouts > 0, "{st:#?}");
}

#[test]
fn tcp_late_answers_never_become_samples_of_other_points() {
    shared(async {
        let sim = Simulator::new(vec![t3("dev", 1, 1001)]).expect("simulator");
        let (addr, server) = serve_tcp(&sim).await;
        late_answers_never_become_samples_of_other_points(Link::Tcp(addr), &sim).await;
        server.abort();
    });
}

#[test]
fn rtu_late_answers_never_become_samples_of_other_points() {
    shared(async {
        let sim = Simulator::new(vec![t3("dev", 1, 1001)]).expect("simulator");
        let (path, server) = serve_rtu(&sim);
        late_answers_never_become_samples_of_other_points(Link::Rtu(path), &sim).await;
        server.abort();
    });
}

// ---------------------------------------------------------------------------------------------
// 2. 10,000 timeouts leak nothing
// ---------------------------------------------------------------------------------------------

/// Open file descriptors of the process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// Our open sockets with `port` at either end (the listener included): a process-wide fd count
/// would also see the sockets of tests running alongside.
fn sockets_on_port(port: u16) -> usize {
    let mut inodes: HashSet<u64> = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                continue;
            }
            let port_of = |addr: &str| addr.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if (port_of(f[1]) == Some(port) || port_of(f[2]) == Some(port))
                && let Ok(inode) = f[9].parse::<u64>()
                && inode != 0
            {
                inodes.insert(inode);
            }
        }
    }
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse::<u64>().ok())
        .filter(|i| inodes.contains(i))
        .count()
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

#[test]
fn ten_thousand_timeouts_leak_no_task_or_socket() {
    exclusive(async {
        let sim = Simulator::new(vec![t3("dead", 1, 1001)]).expect("simulator");
        let dev = sim.device(1).expect("unit 1");
        dev.set_fault(Fault::NoAnswer);
        let (addr, server) = serve_tcp(&sim).await;
        tokio::task::yield_now().await;
        let (fds0, sockets0, tasks0) = (open_fds(), sockets_on_port(addr.port()), alive_tasks());

        // Each request fails within its timeout +-10 % (plus the loopback connect): never early;
        // the median no more than 10 % late (single requests can be late by however long the
        // machine is busy elsewhere: tests and builds share its cores).
        let timeout = Duration::from_millis(200);
        let driver = ModbusDriver::new(Link::Tcp(addr).endpoint(), timeout);
        let req = ReadRequest { kind: RegisterKind::Holding, start: 8092, count: 2, points: Vec::new() };
        let mut took = Vec::new();
        for _ in 0..7 {
            let t0 = Instant::now();
            let r = driver.read(1, std::slice::from_ref(&req)).await;
            took.push(t0.elapsed());
            assert_eq!(r, vec![Err(DriverError::Timeout(timeout))]);
        }
        took.sort();
        eprintln!("{timeout:?} timeouts took {took:?}");
        assert!(took[0] >= timeout, "a {timeout:?} timeout fired after {:?}", took[0]);
        assert!(took[took.len() / 2] <= timeout * 11 / 10, "{timeout:?} timeouts took {took:?}");
        drop(driver);

        // 10,000 reads that time out after 5 ms: 50 drivers (connections) at a time, each
        // reconnecting after every timeout as it must.
        const TOTAL: usize = 10_000;
        const DRIVERS: usize = 50;
        let t0 = Instant::now();
        let workers: Vec<JoinHandle<(usize, usize)>> = (0..DRIVERS)
            .map(|_| {
                let endpoint = Link::Tcp(addr).endpoint();
                tokio::spawn(async move {
                    let driver = ModbusDriver::new(endpoint, Duration::from_millis(5));
                    let req = ReadRequest { kind: RegisterKind::Holding, start: 8092, count: 2, points: Vec::new() };
                    let (mut timeouts, mut other) = (0, 0);
                    while timeouts < TOTAL / DRIVERS {
                        match &driver.read(1, std::slice::from_ref(&req)).await[..] {
                            [Err(DriverError::Timeout(_))] => timeouts += 1,
                            [Err(_)] => other += 1,
                            r => panic!("a device that never answers answered {r:?}"),
                        }
                    }
                    let h = driver.health();
                    assert_eq!(h.timeouts as usize, timeouts);
                    (timeouts, other)
                })
            })
            .collect();
        let (mut timeouts, mut other) = (0, 0);
        for w in workers {
            let (t, o) = w.await.expect("worker");
            timeouts += t;
            other += o;
        }
        let took = t0.elapsed();
        assert_eq!(timeouts, TOTAL);
        let peak_fds = open_fds();

        // The client sockets are closed; the simulator's connection tasks see the end of their
        // streams and finish.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (fds, sockets, tasks) = (open_fds(), sockets_on_port(addr.port()), alive_tasks());
            if sockets <= sockets0 && tasks <= tasks0 && fds <= fds0 + 8 {
                eprintln!(
                    "10,000 timeouts in {took:?} ({other} other errors); fds {fds0} -> {peak_fds} -> {fds}, \
                     sockets {sockets0} -> {sockets}, tasks {tasks0} -> {tasks}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "leak after {TOTAL} timeouts: fds {fds0} -> {fds}, sockets on the port {sockets0} -> {sockets}, \
                 alive tasks {tasks0} -> {tasks}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(dev.requests() >= TOTAL as u64, "the simulator saw {} requests", dev.requests());
        server.abort();
        let _ = server.await;
        // With the server gone, the listener is closed and no task is left.
        let deadline = Instant::now() + Duration::from_secs(5);
        while sockets_on_port(addr.port()) != 0 || alive_tasks() >= tasks0 {
            assert!(
                Instant::now() < deadline,
                "the server left {} sockets, {} tasks",
                sockets_on_port(addr.port()),
                alive_tasks()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 3. A dead device does not slow a healthy one
// ---------------------------------------------------------------------------------------------

/// Poll period statistics from sample timestamps (microseconds): (mean, largest gap), in ms.
fn periods(ts: &[i64]) -> (f64, f64) {
    let gaps: Vec<f64> = ts.windows(2).map(|w| (w[1] - w[0]) as f64 / 1000.0).collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len().max(1) as f64;
    (mean, gaps.iter().copied().fold(0.0, f64::max))
}

/// Collects the timestamps of `id`'s samples for `window`, after the first one.
async fn sample_times(rx: &mut mpsc::UnboundedReceiver<Sample>, id: u32, window: Duration) -> Vec<i64> {
    let mut ts = Vec::new();
    let end = Instant::now() + window;
    while let Ok(Some(s)) = tokio::time::timeout_at(end, rx.recv()).await {
        if s.point_id.0 == id {
            assert_eq!(s.quality, Quality::GOOD, "{s:?}");
            ts.push(s.ts);
        }
    }
    ts
}

fn check_period(label: &str, ts: &[i64], interval_ms: f64) -> Result<(), String> {
    let (mean, max_gap) = periods(ts);
    eprintln!("{label}: {} polls, mean period {mean:.1} ms, largest gap {max_gap:.1} ms", ts.len());
    if ts.len() < 10 {
        return Err(format!("{label}: only {} samples", ts.len()));
    }
    if (mean - interval_ms).abs() > interval_ms * 0.1 {
        return Err(format!("{label}: mean period {mean:.1} ms, not within 10 % of {interval_ms} ms"));
    }
    if max_gap > 2.0 * interval_ms {
        return Err(format!("{label}: a gap of {max_gap:.1} ms, more than twice the {interval_ms} ms interval"));
    }
    Ok(())
}

fn isolation_config() -> CollectorConfig {
    CollectorConfig {
        timeout_ms: 500,
        offline_after_failures: 3,
        backoff_initial_ms: 100,
        backoff_max_ms: 1000,
        ..Default::default()
    }
}

#[test]
fn a_dead_device_does_not_slow_a_healthy_one() {
    exclusive(async {
        let healthy = Simulator::new(vec![t3("healthy", 1, 1001)]).expect("simulator");
        // Distinct unit ids give distinct point ids.
        let dead = Simulator::new(vec![t3("dead", 2, 1002)]).expect("simulator");
        dead.device(2).expect("unit").set_fault(Fault::NoAnswer);
        let (healthy_addr, s1) = serve_tcp(&healthy).await;
        let (dead_addr, s2) = serve_tcp(&dead).await;
        let refused = refused_port();

        let (c, mut rx) = collector(isolation_config());
        c.add_device(device("healthy", &Link::Tcp(healthy_addr), 1, &POINTS, 100, json!({}))).expect("add");
        c.add_device(device("dead", &Link::Tcp(dead_addr), 2, &POINTS, 100, json!({}))).expect("add");
        c.add_device(device("refused", &Link::Tcp(refused), 3, &POINTS, 100, json!({}))).expect("add");

        let ts = sample_times(&mut rx, id_of(1, "VAR1"), Duration::from_secs(3)).await;
        let dead_status = status(&c, "dead");
        let refused_status = status(&c, "refused");
        c.shutdown().await;
        assert!(dead_status.timeouts >= 2, "the dead device was polled: {dead_status:#?}");
        assert!(refused_status.connection_errors >= 2, "the refused device was polled: {refused_status:#?}");
        check_period("separate endpoints", &ts, 100.0).unwrap();
        s1.abort();
        s2.abort();
    });
}

/// Two units behind ONE Modbus TCP gateway (one simulator, one listener): each device has its own
/// TCP connection, so requests to the dead unit (each holding its connection for the whole 500 ms
/// timeout) never queue the healthy unit's polls. (With one shared connection this measured a mean
/// period of 216 ms and gaps of 565 ms against a 100 ms interval.)
#[test]
fn a_dead_unit_does_not_slow_a_healthy_unit_on_the_same_gateway() {
    exclusive(async {
        let sim = Simulator::new(vec![t3("healthy", 1, 1001), t3("dead", 2, 1002)]).expect("simulator");
        sim.device(2).expect("unit 2").set_fault(Fault::NoAnswer);
        let (addr, server) = serve_tcp(&sim).await;
        let (c, mut rx) = collector(isolation_config());
        c.add_device(device("healthy", &Link::Tcp(addr), 1, &POINTS, 100, json!({}))).expect("add");
        c.add_device(device("dead", &Link::Tcp(addr), 2, &POINTS, 100, json!({}))).expect("add");
        let ts = sample_times(&mut rx, id_of(1, "VAR1"), Duration::from_secs(3)).await;
        let dead_status = status(&c, "dead");
        c.shutdown().await;
        assert!(dead_status.timeouts >= 2, "the dead unit was polled: {dead_status:#?}");
        check_period("one gateway", &ts, 100.0).unwrap();
        server.abort();
    });
}

/// Two units on ONE serial bus (one simulator on one pty), unit 2 dead: each request to it holds
/// the line for its 500 ms timeout, and then the healthy unit is polled at once, so its polls
/// are never further apart than that timeout plus its own interval. (With the whole line left
/// quiet for one more timeout after every timeout, as before, the gaps measured 1.0 s.)
#[test]
fn a_dead_unit_delays_a_healthy_unit_on_the_same_rtu_bus_by_no_more_than_its_timeout() {
    exclusive(async {
        let sim = Simulator::new(vec![t3("healthy", 1, 1001), t3("dead", 2, 1002)]).expect("simulator");
        sim.device(2).expect("unit 2").set_fault(Fault::NoAnswer);
        let (path, server) = serve_rtu(&sim);
        let cfg = isolation_config();
        let timeout_ms = cfg.timeout_ms as f64;
        let (c, mut rx) = collector(cfg);
        c.add_device(device("healthy", &Link::Rtu(path.clone()), 1, &POINTS, 100, json!({}))).expect("add");
        c.add_device(device("dead", &Link::Rtu(path), 2, &POINTS, 100, json!({}))).expect("add");
        let ts = sample_times(&mut rx, id_of(1, "VAR1"), Duration::from_secs(4)).await;
        let dead_status = status(&c, "dead");
        c.shutdown().await;
        server.abort();
        assert!(dead_status.timeouts >= 3, "the dead unit was polled: {dead_status:#?}");
        let (mean, max_gap) = periods(&ts);
        eprintln!("one RTU bus: {} polls, mean period {mean:.1} ms, largest gap {max_gap:.1} ms", ts.len());
        assert!(ts.len() >= 10, "only {} samples of the healthy unit", ts.len());
        // The dead unit's timeout, the healthy unit's interval, and room for a loaded machine.
        assert!(
            max_gap < timeout_ms + 100.0 + 200.0,
            "a gap of {max_gap:.1} ms between the healthy unit's polls: more than the dead unit's \
             {timeout_ms} ms timeout plus the 100 ms interval"
        );
    });
}

/// Two units on one serial bus, unit 2 answering 20 ms after its timeout. Its first late answer
/// comes while unit 1 waits for its own: it is no answer to unit 1 (wrong unit), that request
/// fails, and from then on unit 2's timeouts keep the line quiet until its late answer is in, so
/// unit 1 fails no more and waits for no more than unit 2 holds the line. No sample of unit 1 ever
/// carries unit 2's values.
#[test]
fn a_late_unit_on_an_rtu_bus_never_answers_for_another_and_then_keeps_the_line_quiet() {
    shared(async {
        let sim = Simulator::new(vec![t3("healthy", 1, 1001), t3("late", 2, 1002)]).expect("simulator");
        set_values(&sim.device(1).expect("unit 1"), &POINTS, &BEFORE);
        let late = sim.device(2).expect("unit 2");
        set_values(&late, &POINTS, &AFTER);
        // Long enough to tell "the late answer, then free" from "one more timeout".
        const TIMEOUT_MS: u64 = 400;
        const LATENESS_MS: u64 = 20;
        late.set_fault(Fault::LateAnswer { delay_ms: TIMEOUT_MS + LATENESS_MS });
        let (path, server) = serve_rtu(&sim);
        let (c, mut rx) = collector(CollectorConfig {
            timeout_ms: TIMEOUT_MS,
            // Never offline: unit 2 keeps being asked.
            offline_after_failures: 1000,
            backoff_initial_ms: 10,
            backoff_max_ms: 100,
            ..Default::default()
        });
        c.add_device(device("healthy", &Link::Rtu(path.clone()), 1, &POINTS, 100, json!({}))).expect("add");
        c.add_device(device("late", &Link::Rtu(path), 2, &POINTS, 100, json!({}))).expect("add");
        let ids: Vec<u32> = POINTS.iter().map(|p| id_of(1, p)).collect();
        let (mut good, mut bad) = (0usize, 0usize);
        // Unit 1's polls once unit 2 is known to answer late.
        let (settled, mut ts) = (Instant::now() + Duration::from_millis(1500), Vec::new());
        let end = Instant::now() + Duration::from_secs(5);
        while let Ok(Some(s)) = tokio::time::timeout_at(end, rx.recv()).await {
            let Some(k) = ids.iter().position(|&id| id == s.point_id.0) else { continue };
            if is_good(s.quality) {
                assert_eq!(s.value, BEFORE[k], "unit 1's {} read as {s:?}", POINTS[k]);
                good += 1;
                if k == 0 && Instant::now() > settled {
                    ts.push(s.ts);
                }
            } else {
                assert!(s.value.is_nan(), "{s:?}");
                bad += 1;
            }
        }
        let (healthy, late_status) = (status(&c, "healthy"), status(&c, "late"));
        c.shutdown().await;
        server.abort();
        assert!(late_status.timeouts >= 3, "unit 2 was polled and timed out: {late_status:#?}");
        assert!(good >= 2 * 4, "unit 1 answered only {good} times: {healthy:#?}");
        // One poll of unit 1 (both points) may take the first late answer; a second on a loaded
        // machine (the timer firing after the late answer came in).
        assert!(healthy.failed_polls <= 2 && bad <= 2 * POINTS.len(), "unit 1 failed {bad} samples: {healthy:#?}");
        let (mean, max_gap) = periods(&ts);
        eprintln!(
            "late unit on the bus: {} polls of unit 1, mean period {mean:.1} ms, largest gap {max_gap:.1} ms",
            ts.len()
        );
        // Unit 2 holds the line for its timeout and its lateness; then unit 1's interval, and
        // room for a loaded machine. (Quiet for one whole timeout more, the gaps were 840 ms.)
        let bound = (TIMEOUT_MS + LATENESS_MS + 100 + 150) as f64;
        assert!(
            ts.len() >= 4 && max_gap < bound,
            "unit 1's polls {max_gap:.1} ms apart (bound {bound} ms): {healthy:#?}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// 4. Offline devices cost no CPU and are probed at the backoff interval
// ---------------------------------------------------------------------------------------------

/// CPU time (user + system) of this test's runtime threads, in clock ticks (1/100 s): the
/// process-wide figure would include tests running alongside.
fn runtime_cpu_ticks() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task").flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        // "tid (comm) state ...": comm may hold spaces, so split after the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        if &stat[open + 1..close] != WORKER_NAME {
            continue;
        }
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the state field (field 3).
        total += f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
    }
    total
}

fn process_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let close = stat.rfind(')').expect("comm");
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0)
}

#[test]
fn offline_devices_cost_no_cpu_and_are_probed_at_the_backoff_interval() {
    exclusive(async {
        const N: usize = 20;
        let backoff_max = Duration::from_millis(500);
        let (c, _rx) = collector(CollectorConfig {
            timeout_ms: 200,
            offline_after_failures: 3,
            backoff_initial_ms: 100,
            backoff_max_ms: backoff_max.as_millis() as u64,
            ..Default::default()
        });
        let mut ports = Vec::new();
        for _ in 0..N {
            ports.push(refused_port());
        }
        for (i, addr) in ports.iter().enumerate() {
            c.add_device(device(&format!("gone-{i:02}"), &Link::Tcp(*addr), 1, &POINTS, 100, json!({}))).expect("add");
        }
        let names: Vec<String> = (0..N).map(|i| format!("gone-{i:02}")).collect();
        // Backoff after failure n: 100, 200, 400, then the 500 ms cap from the fourth failure on.
        for n in &names {
            wait_status(&c, n, Duration::from_secs(5), "offline at the backoff cap", |s| {
                s.state == DeviceState::Offline && s.consecutive_failures >= 4
            })
            .await;
        }
        let mut changes = c.status().subscribe();
        let before: HashMap<String, DeviceStatus> = names.iter().map(|n| (n.clone(), status(&c, n))).collect();
        let (cpu0, proc0) = (runtime_cpu_ticks(), process_cpu_ticks());
        let window = Duration::from_secs(2);
        let t0 = Instant::now();
        // Every probe of an offline device fails and counts one more failed poll.
        let mut probes: HashMap<String, Vec<Instant>> = HashMap::new();
        let mut failed: HashMap<String, u64> = before.iter().map(|(n, s)| (n.clone(), s.failed_polls)).collect();
        while let Ok(Ok(s)) = tokio::time::timeout_at(t0 + window, changes.recv()).await {
            let last = failed.get_mut(&s.name).expect("known device");
            if s.failed_polls > *last {
                *last = s.failed_polls;
                probes.entry(s.name.clone()).or_default().push(Instant::now());
            }
        }
        let elapsed = t0.elapsed();
        let (cpu, procs) = (runtime_cpu_ticks() - cpu0, process_cpu_ticks() - proc0);
        c.shutdown().await;

        let share = cpu as f64 / 100.0 / elapsed.as_secs_f64();
        eprintln!(
            "{N} offline devices for {elapsed:?}: runtime threads used {} ms CPU ({:.2} % of a core), \
             the whole process {} ms",
            cpu * 10,
            share * 100.0,
            procs * 10
        );
        assert!(share < 0.05, "offline devices used {:.1} % of a core", share * 100.0);

        let mut intervals = Vec::new();
        for n in &names {
            let times = probes.get(n).cloned().unwrap_or_default();
            let count = times.len();
            // 2 s at 400-600 ms between probes: 3 to 5 probes, give or take the window's edges.
            assert!((2..=6).contains(&count), "{n}: {count} probes in {elapsed:?}");
            intervals.extend(times.windows(2).map(|w| w[1] - w[0]));
        }
        let lo = backoff_max * 8 / 10 - Duration::from_millis(20);
        let hi = backoff_max * 12 / 10 + Duration::from_millis(60);
        let (min, max) = (intervals.iter().min().copied(), intervals.iter().max().copied());
        eprintln!("probe intervals: {} measured, {min:?} .. {max:?}", intervals.len());
        assert!(
            intervals.iter().all(|d| *d >= lo && *d <= hi),
            "probe intervals outside {lo:?}..{hi:?}: {intervals:?}"
        );
        for n in &names {
            assert_eq!(before[n].state, DeviceState::Offline);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 5. Discovery
// ---------------------------------------------------------------------------------------------

fn discovery_sim() -> Arc<Simulator> {
    Simulator::new(vec![t3("panel", 1, 0x0001_2345), SimDeviceSpec::new("thermostat", 5, "TSTAT8", 0x0005_4321, 5)])
        .expect("simulator")
}

#[test]
fn scan_tcp_finds_units_with_serial_numbers_and_profiles() {
    shared(async {
        let sim = discovery_sim();
        let (addr, server) = serve_tcp(&sim).await;
        let units: Vec<u8> = (1..=10).collect();
        let t0 = Instant::now();
        let found = discovery::scan_tcp(&["127.0.0.1".into()], addr.port(), &units, Duration::from_millis(200), 4)
            .await
            .expect("scan");
        eprintln!("scan_tcp of 10 units: {:?}", t0.elapsed());
        let got: Vec<(u8, u32, Option<&str>)> =
            found.iter().map(|f| (f.identity.unit_id, f.identity.serial_number, f.profile.as_deref())).collect();
        assert_eq!(got, vec![(1, 0x0001_2345, Some(T3_CONTROLLER)), (5, 0x0005_4321, Some("TSTAT8"))], "{found:#?}");
        assert!(found.iter().all(|f| f.endpoint == format!("tcp://127.0.0.1:{}", addr.port())), "{found:#?}");
        server.abort();
    });
}

#[test]
fn scan_rtu_finds_units_on_a_pty() {
    shared(async {
        let sim = discovery_sim();
        let (path, server) = serve_rtu(&sim);
        let units: Vec<u8> = (1..=10).collect();
        let found = discovery::scan_rtu(&path, 115_200, Parity::None, &units, Duration::from_millis(200)).await;
        let got: Vec<(u8, u32, Option<&str>)> =
            found.iter().map(|f| (f.identity.unit_id, f.identity.serial_number, f.profile.as_deref())).collect();
        assert_eq!(got, vec![(1, 0x0001_2345, Some(T3_CONTROLLER)), (5, 0x0005_4321, Some("TSTAT8"))], "{found:#?}");
        server.abort();
    });
}

#[test]
fn scan_udp_finds_the_simulator() {
    shared(async {
        let sim = discovery_sim();
        let (addr, tcp) = serve_tcp(&sim).await;
        // The TCP server is up (it advertises its address in the scan replies).
        let header = ModbusDriver::new(Link::Tcp(addr).endpoint(), Duration::from_secs(1)).discover(&[1]).await;
        assert_eq!(header.len(), 1);
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let udp_addr = socket.local_addr().expect("addr");
        let udp = tokio::spawn(Arc::clone(&sim).serve_udp_scan(socket));
        let replies = discovery::scan_udp(udp_addr, Duration::from_millis(300)).await.expect("scan");
        let got: Vec<(u32, u16, u32)> =
            replies.iter().map(|r| (r.serial_number, r.modbus_address, r.master_serial)).collect();
        assert_eq!(got, vec![(0x0001_2345, 1, 0), (0x0005_4321, 5, 0x0001_2345)], "{replies:#?}");
        for r in &replies {
            assert_eq!((r.ip, r.modbus_port), (std::net::Ipv4Addr::LOCALHOST, addr.port()), "{r:#?}");
        }
        assert_eq!(replies[0].panel_name, "panel");
        assert!(!replies[0].is_sub_device() && replies[1].is_sub_device());
        udp.abort();
        tcp.abort();
    });
}

// ---------------------------------------------------------------------------------------------
// Labels kept in the panel's point records
// ---------------------------------------------------------------------------------------------

/// The collector reads the labels and descriptions a T3 controller keeps in its point records, as
/// the simulator serves them (the model's, and a renamed one), in few requests; a panel that refuses
/// the reads gives no labels and no error.
#[test]
fn labels_are_read_from_the_panels_point_records() {
    shared(async {
        let sim = Simulator::new(vec![t3("AHU-1", 1, 0x0001_0001)]).expect("simulator");
        let (addr, server) = serve_tcp(&sim).await;
        let dev = sim.device(1).expect("device 1");
        dev.set_point_text("OUT5", &PointText::new("VAV1 RHT", "VAV 1 reheat valve, and more"))
            .expect("OUT5 has a record");
        assert!(dev.set_point_text("NOPE", &PointText::default()).is_err());
        let (c, _rx) = collector(CollectorConfig { enabled: false, ..CollectorConfig::default() });
        let points = ["IN1", "IN8", "OUT5", "OUT6", "VAR1", "VAR7", "VAR128"];
        c.add_device(device("ahu", &Link::Tcp(addr), 1, &points, 60_000, json!({}))).expect("add");
        let before = dev.requests();
        let mut got: Vec<(u32, PointText)> = c.read_labels("ahu").await.expect("labels");
        got.sort_by_key(|(id, _)| *id);
        let want = |name: &str, label: &str, description: &str| (id_of(1, name), PointText::new(label, description));
        let mut expected = vec![
            want("IN1", "ZN1 TEMP", "Zone 1 temperature"),
            want("IN8", "SUP TEMP", "Supply air temp"),
            // An output's description holds 18 characters (its range's voltages follow).
            want("OUT5", "VAV1 RHT", "VAV 1 reheat valve"),
            want("OUT6", "FAN CMD", "Supply fan command"),
            want("VAR1", "ZN1 SP", "Zone 1 setpoint"),
            want("VAR7", "HTG KWH", "Heating energy"),
            // An unused point: an empty record.
            want("VAR128", "", ""),
        ];
        expected.sort_by_key(|(id, _)| *id);
        assert_eq!(got, expected);
        // Reads of up to 100 registers through the records: IN1 | IN8, OUT5 + OUT6, VAR1 | VAR7 | VAR128.
        assert_eq!(dev.requests() - before, 6);

        dev.set_fault(Fault::Exception { code: 2 });
        assert_eq!(c.read_labels("ahu").await.expect("no error"), Vec::new());
        assert!(c.read_labels("nope").await.is_err());
        server.abort();
    });
}

// ---------------------------------------------------------------------------------------------
// A panel's point configuration, read and written for hardware sync
// ---------------------------------------------------------------------------------------------

/// The collector reads a T3 panel's labels, descriptions, range codes, digital flags and auto/manual
/// as the simulator serves them, writes labels, descriptions, ranges and digital flags back (read back
/// from the simulated panel's registers), and fails the whole read when the panel refuses it (never
/// taking an unread label for an empty one).
#[test]
fn panel_configuration_is_read_and_written() {
    shared(async {
        let sim = Simulator::new(vec![t3("AHU-1", 1, 0x0001_0001)]).expect("simulator");
        let (addr, server) = serve_tcp(&sim).await;
        let dev = sim.device(1).expect("device 1");
        let (c, _rx) = collector(CollectorConfig { enabled: false, ..CollectorConfig::default() });
        let points = ["IN1", "IN3", "OUT1", "OUT6", "VAR1", "VAR128"];
        c.add_device(device("ahu", &Link::Tcp(addr), 1, &points, 60_000, json!({}))).expect("add");
        let got = c.read_panel("ahu").await.expect("panel");
        let of = |name: &str| got.iter().find(|p| p.name == name).cloned().unwrap_or_else(|| panic!("{name}"));
        let in1 = of("IN1");
        assert_eq!(
            (in1.point, in1.text.label.as_str(), in1.range, in1.digital, in1.manual),
            (id_of(1, "IN1"), "ZN1 TEMP", Some(1), Some(false), Some(false))
        );
        assert_eq!(got.len(), points.len());
        // The simulator's digital points (an occupancy input, a fan command) say so.
        assert!(got.iter().any(|p| p.digital == Some(true)), "{got:#?}");

        // Renamed on the "device" (its registers), read by the collector.
        dev.set_point_text("VAR1", &PointText::new("SP ZONE1", "Zone one set point")).expect("VAR1");
        assert_eq!(c.read_panel("ahu").await.expect("panel").iter().find(|p| p.name == "VAR1").unwrap().text, {
            PointText::new("SP ZONE1", "Zone one set point")
        });

        // Written by the collector, read back from the simulated panel's registers.
        let back = c.write_point_text("ahu", "OUT1", Some("HTG VLV2"), None).await.expect("label");
        assert_eq!(back.label, "HTG VLV2");
        let on_panel = dev.point_text("OUT1").expect("OUT1 record");
        assert_eq!(on_panel.label, "HTG VLV2");
        assert_eq!(on_panel.description, of("OUT1").text.description, "the description is kept");
        c.write_point_text("ahu", "IN3", None, Some("Return air temperature, long")).await.expect("description");
        assert_eq!(dev.point_text("IN3").unwrap().description, "Return air temperatu");

        // IN1: range 2 (thermistor °F), still analog: one register, flag in the high byte.
        c.write_range("ahu", "IN1", Some(2), None).await.expect("input range");
        assert_eq!(dev.registers(RegisterKind::Holding, 7804, 1), Some(vec![0x0102]));
        // VAR128: range 1, digital: its range and analog/digital registers.
        c.write_range("ahu", "VAR128", Some(1), Some(true)).await.expect("variable range");
        assert_eq!(dev.registers(RegisterKind::Holding, 8532 + 127, 1), Some(vec![1]));
        assert_eq!(dev.registers(RegisterKind::Holding, 8660 + 127, 1), Some(vec![0]));
        let var128 = c.read_panel("ahu").await.expect("panel").into_iter().find(|p| p.name == "VAR128").unwrap();
        assert_eq!((var128.range, var128.digital), (Some(1), Some(true)));
        assert!(c.write_range("ahu", "VAR128", Some(300), None).await.is_err(), "a range code is one byte");

        dev.set_fault(Fault::Exception { code: 2 });
        assert!(c.read_panel("ahu").await.is_err(), "a refused read fails the whole read");
        dev.set_fault(Fault::None);
        assert!(c.read_panel("nope").await.is_err());
        server.abort();
    });
}

/// The collector reads a T3 panel's weekly and annual routines (records, times, days, event flags,
/// panel number) as the simulator serves them and writes them back whole, read back from the
/// simulated panel's registers; a refused read fails the whole read.
#[test]
fn panel_routines_are_read_and_written() {
    use t3_core::schedule::MonthDay;
    use t3_drivers::t3::records::{Record, WeeklyRoutine};
    use t3_drivers::t3::{from_registers, routines};
    shared(async {
        let sim = Simulator::new(vec![t3("AHU-1", 7, 0x0001_0001)]).expect("simulator");
        let (addr, server) = serve_tcp(&sim).await;
        let dev = sim.device(7).expect("device 7");
        let (c, _rx) = collector(CollectorConfig { enabled: false, ..CollectorConfig::default() });
        c.add_device(device("ahu", &Link::Tcp(addr), 7, &["IN1"], 60_000, json!({}))).expect("add");
        let r = c.read_routines("ahu").await.expect("routines");
        assert_eq!(r.panel, 7, "the panel number is the simulated device's address");
        assert_eq!((r.weekly.len(), r.annual.len()), (8, 4));
        let wr1 = &r.weekly[0];
        assert_eq!((wr1.record.label.as_str(), wr1.record.description.as_str()), ("OCC", "Occupied hours"));
        assert_eq!(wr1.times.days[0][..2], [(7, 0), (18, 0)]);
        assert_eq!(wr1.flags.map(|f| f[0][..3].to_vec()), Some(vec![1, 0, 0xFF]));
        assert_eq!(wr1.record.override_1.target(), Some((5, 1)), "AR1 as holiday 1");
        assert_eq!(r.annual[0].record.label, "HOLIDAYS");
        assert_eq!(routines::days_of(&r.annual[0].days).len(), 3);
        assert!(r.weekly[1..].iter().all(|w| w.record == WeeklyRoutine::default()));

        // Weekly routine 2 written whole: its record, times and flags.
        let mut times = wr1.times.clone();
        times.days[6][0] = (9, 15);
        times.days[6][1] = (0, 0);
        let rec =
            WeeklyRoutine { label: "NIGHT".into(), description: "Night setback".into(), ..WeeklyRoutine::default() };
        c.write_weekly("ahu", 2, &rec, Some(&times), true).await.expect("write WR2");
        let on_panel = dev.registers(RegisterKind::Holding, 15808 + 21, 21).expect("WR2 record");
        assert_eq!(WeeklyRoutine::decode(&from_registers(&on_panel)).unwrap(), rec);
        let flags = from_registers(&dev.registers(RegisterKind::Holding, 33201 + 36, 36).unwrap());
        assert_eq!(&flags[6 * 8..6 * 8 + 2], &[1, 0], "Sunday's pair is flagged");
        let back = c.read_routines("ahu").await.expect("routines");
        assert_eq!((back.weekly[1].record.label.as_str(), &back.weekly[1].times), ("NIGHT", &times));
        // The record alone (no times given) leaves the times as they are.
        let renamed = WeeklyRoutine { label: "NIGHT2".into(), ..rec.clone() };
        c.write_weekly("ahu", 2, &renamed, None, true).await.expect("rename WR2");
        assert_eq!(c.read_routines("ahu").await.unwrap().weekly[1].times, times);

        // Annual routine 4: its 33-byte record and its days.
        let mut ar = back.annual[3].record.clone();
        ar.label = "PLANT".into();
        let days = routines::bitmap_of(&[MonthDay::new(3, 1).unwrap()]);
        c.write_annual("ahu", 4, &ar, &days).await.expect("write AR4");
        let again = c.read_routines("ahu").await.expect("routines");
        assert_eq!((again.annual[3].record.label.as_str(), again.annual[3].days.days()), ("PLANT", vec![61]));
        assert!(c.write_annual("ahu", 5, &ar, &days).await.is_err(), "a panel has 4 annual routines");
        assert!(c.write_weekly("ahu", 0, &rec, None, false).await.is_err(), "routines count from 1");

        // A refused read fails the whole read.
        dev.set_fault(Fault::Exception { code: 2 });
        assert!(c.read_routines("ahu").await.is_err());
        dev.set_fault(Fault::None);
        server.abort();
    });
}
