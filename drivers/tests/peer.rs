//! The drivers against pymodbus, a Modbus implementation we did not write, over Modbus TCP and over
//! Modbus RTU through a socat pty pair.
//!
//! `peers/pymodbus_peer.py` serves a datastore this file describes in JSON and prints every write it
//! accepts as a JSON line. Some of its values are packed by Python's `struct` module with explicit
//! byte orders, so the codecs are checked against an encoder that is not ours, not only against
//! their own inverse.
//!
//! These tests need `T3000_PYTHON` (a Python with `pymodbus<4` and pyserial) and `socat`; `.ci/run`
//! installs both. Without them they fail with a message saying so: tests never silently skip.
//!
//! RTU runs without parity only: pymodbus's serial server cannot open a pty with parity here
//! (pyserial's `tcsetattr` with `PARENB` fails with EINVAL on this kernel), and a pty carries bytes
//! without framing anyway, so a pty pair could not tell even parity from none.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value as Json, json};
use t3_core::clock::SystemClock;
use t3_core::config::{CollectorConfig, DeviceConfig, Parity, Protocol, RecordConfig};
use t3_core::{Quality, Sample};
use t3_drivers::codec::{Codec, RegisterKind, Value, ValueType, WordOrder};
use t3_drivers::collector::{CollectError, Collector, DeviceSpec, DeviceState, IngestFuture, SampleSink};
use t3_drivers::driver::{Driver, DriverError, ExceptionCode, RawData};
use t3_drivers::modbus::{Endpoint, ModbusDriver};
use t3_drivers::planner::{self, Limits, PlanItem, ReadRequest};
use t3_drivers::profile::{PointType, Profile, ProfileLibrary, ProfilePoint};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;

const UNIT: u8 = 1;
/// Longest wait for anything a peer does (start, answer, print).
const WAIT: Duration = Duration::from_secs(20);
/// Time a device has to answer one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

// ---- the peer processes ----

fn python() -> String {
    match std::env::var("T3000_PYTHON") {
        Ok(p) if !p.trim().is_empty() => p,
        _ => panic!(
            "T3000_PYTHON is not set: the pymodbus peer tests need a Python with pymodbus<4 and pyserial, \
             and socat. Run the tests through `bash .ci/run`, which installs them and exports T3000_PYTHON \
             (or export T3000_PYTHON=$HOME/.cache/t3000/venv/bin/python after running it once)."
        ),
    }
}

fn require_socat() {
    let ok = std::process::Command::new("socat").arg("-V").output().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "socat is missing: the Modbus RTU peer tests need it for a pty pair. Run the tests through `bash .ci/run`, which installs it."
    );
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/pymodbus_peer.py")
}

/// Sends every line of `reader` to the returned channel.
fn lines_of(reader: impl AsyncRead + Unpin + Send + 'static) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Collects every line of `reader` (a child's standard error) for failure messages.
fn collect_into(reader: impl AsyncRead + Unpin + Send + 'static, log: Arc<Mutex<String>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut log = log.lock();
            log.push_str(&line);
            log.push('\n');
        }
    });
}

/// How the test reaches the peer.
#[derive(Debug, Clone, Copy)]
enum Link {
    Tcp,
    Rtu { baud: u32 },
}

/// A running pymodbus server (killed when dropped; it also exits when its standard input closes).
struct Peer {
    _child: Child,
    /// JSON lines the peer printed after "ready".
    events: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<String>>,
    endpoint: Endpoint,
    /// A socat pty pair (RTU), killed when dropped after the peer.
    _socat: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Peer {
    async fn start(link: Link, spec: &Json) -> Peer {
        let python = python();
        let dir = tempfile::tempdir().unwrap();
        let spec_path = dir.path().join("spec.json");
        std::fs::write(&spec_path, serde_json::to_vec(spec).unwrap()).unwrap();

        let mut cmd = Command::new(&python);
        cmd.arg(script()).arg("--spec").arg(&spec_path);
        let (socat, endpoint) = match link {
            Link::Tcp => {
                cmd.args(["--tcp", "0"]);
                (None, None)
            }
            Link::Rtu { baud } => {
                require_socat();
                let (peer_end, driver_end) = (dir.path().join("peer"), dir.path().join("driver"));
                let socat = start_socat(&peer_end, &driver_end).await;
                cmd.arg("--rtu").arg(&peer_end).args(["--baud", &baud.to_string(), "--parity", "N"]);
                let endpoint = Endpoint::Rtu {
                    path: driver_end.to_string_lossy().into_owned(),
                    baud_rate: baud,
                    parity: Parity::None,
                };
                (Some(socat), Some(endpoint))
            }
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python} (T3000_PYTHON): {e}; run the tests through .ci/run"));
        let mut events = lines_of(child.stdout.take().unwrap());
        let stderr = Arc::new(Mutex::new(String::new()));
        collect_into(child.stderr.take().unwrap(), stderr.clone());

        let ready = match timeout(WAIT, events.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => {
                let status = child.wait().await;
                // Let the stderr task catch up with what the process wrote before it died.
                tokio::time::sleep(Duration::from_millis(200)).await;
                panic!("the pymodbus peer exited before it was ready ({status:?}):\n{}", stderr.lock());
            }
            Err(_) => panic!("the pymodbus peer was not ready within {WAIT:?}:\n{}", stderr.lock()),
        };
        let ready: Json = serde_json::from_str(&ready).unwrap_or_else(|e| panic!("peer said {ready:?}: {e}"));
        assert_eq!(ready["event"], "ready", "{ready}");
        let version = ready["pymodbus"].as_str().unwrap_or_default();
        assert!(version.starts_with("3."), "pymodbus {version}: the peer script is written for pymodbus 3.x");
        let endpoint = endpoint.unwrap_or_else(|| Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port: ready["port"].as_u64().and_then(|p| u16::try_from(p).ok()).expect("a port in the ready line"),
        });
        Peer { _child: child, events, stderr, endpoint, _socat: socat, _dir: dir }
    }

    fn driver(&self) -> ModbusDriver {
        ModbusDriver::new(self.endpoint.clone(), REQUEST_TIMEOUT)
    }

    /// A device of `profile` at this peer, polled every `poll_ms`.
    fn device(&self, name: &str, profile: &str, poll_ms: u64) -> DeviceConfig {
        let (protocol, ip_address, port, serial_port, baud_rate) = match &self.endpoint {
            Endpoint::Tcp { host, port } => (Protocol::ModbusTcp, Some(host.clone()), Some(*port), None, 9600),
            Endpoint::Rtu { path, baud_rate, .. } => (Protocol::ModbusRtu, None, None, Some(path.clone()), *baud_rate),
        };
        DeviceConfig {
            name: name.into(),
            device_type: "controller".into(),
            protocol,
            ip_address,
            port,
            serial_port,
            baud_rate,
            parity: Parity::None,
            unit_id: UNIT,
            profile: profile.into(),
            poll_interval_ms: poll_ms,
            timeout_ms: Some(REQUEST_TIMEOUT.as_millis() as u64),
            enabled: true,
            max_registers: None,
            max_gap: None,
            one_request_per_point: false,
            options: Default::default(),
            record: RecordConfig::default(),
            points: Vec::new(),
        }
    }

    /// The next write the peer reports, which must be `fc` at `address` with `values`.
    async fn expect_write(&mut self, fc: u8, address: u16, values: Json) {
        let want = json!({"event": "write", "fc": fc, "address": address, "values": values});
        let line = match timeout(WAIT, self.events.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!("the peer exited; waiting for {want}:\n{}", self.stderr.lock()),
            Err(_) => panic!("the peer reported no write within {WAIT:?}; waiting for {want}:\n{}", self.stderr.lock()),
        };
        let got: Json = serde_json::from_str(&line).unwrap_or_else(|e| panic!("peer said {line:?}: {e}"));
        assert_eq!(got, want, "the write the peer received");
    }
}

/// A socat pty pair with links `a` and `b`, ready once socat says so.
async fn start_socat(a: &std::path::Path, b: &std::path::Path) -> Child {
    let mut child = Command::new("socat")
        .args(["-d", "-d"])
        .arg(format!("pty,raw,echo=0,link={}", a.display()))
        .arg(format!("pty,raw,echo=0,link={}", b.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start socat: {e}; run the tests through .ci/run, which installs it"));
    let mut lines = lines_of(child.stderr.take().unwrap());
    let mut said = String::new();
    loop {
        match timeout(WAIT, lines.recv()).await {
            Ok(Some(line)) => {
                said.push_str(&line);
                said.push('\n');
                if line.contains("starting data transfer loop") {
                    break;
                }
            }
            Ok(None) => panic!("socat exited before the pty pair was ready:\n{said}"),
            Err(_) => panic!("socat did not set up the pty pair within {WAIT:?}:\n{said}"),
        }
    }
    // Keep draining what socat logs so it never blocks on a full pipe.
    tokio::spawn(async move { while lines.recv().await.is_some() {} });
    assert!(a.exists() && b.exists(), "socat reported ready but the links are missing:\n{said}");
    child
}

// ---- datastore segments ----

/// Words placed as given.
fn words_at(address: u16, words: &[u16]) -> Json {
    json!({"address": address, "words": words})
}

/// A value Python packs with `struct` (format `fmt`) in `order`; integers are `value * scale`, rounded.
fn packed_at(address: u16, fmt: &str, value: Json, order: WordOrder, scale: f64) -> Json {
    json!({"address": address, "pack": fmt, "value": value, "order": order.as_str(), "scale": scale})
}

/// A T3 controller value as the controller stores it: int32 of value x 1000, high word first.
fn t3_at(address: u16, value: f64) -> Json {
    packed_at(address, "i", json!(value), WordOrder::Abcd, 1000.0)
}

// ---- reading and decoding ----

/// Reads `items` with a plan under default limits; returns each item's raw data, in item order.
async fn read_items(driver: &ModbusDriver, items: &[PlanItem]) -> Vec<RawData> {
    let plan = planner::plan(items, &Limits::default()).unwrap();
    assert!(plan.len() < items.len(), "the planner merged nothing: {} requests for {} items", plan.len(), items.len());
    let results = driver.read(UNIT, &plan).await;
    assert_eq!(results.len(), plan.len());
    let mut out: Vec<Option<RawData>> = vec![None; items.len()];
    for (req, res) in plan.iter().zip(results) {
        let data = res.unwrap_or_else(|e| panic!("reading {req} from pymodbus: {e}"));
        assert_eq!(data.len(), usize::from(req.count), "{req}");
        for &(item, offset) in &req.points {
            let (off, n) = (usize::from(offset), usize::from(items[item].count));
            out[item] = Some(match &data {
                RawData::Words(w) => RawData::Words(w[off..off + n].to_vec()),
                RawData::Bits(b) => RawData::Bits(b[off..off + n].to_vec()),
                RawData::Values(_) => panic!("a Modbus driver returned plugin values"),
            });
        }
    }
    out.into_iter().map(|d| d.expect("every item planned")).collect()
}

fn decode(codec: &Codec, data: &RawData) -> Value {
    let value = match data {
        RawData::Words(w) => codec.decode(w),
        RawData::Bits(b) => codec.decode_bits(b),
        RawData::Values(_) => panic!("a Modbus driver returned plugin values"),
    };
    value.unwrap_or_else(|e| panic!("decoding {data:?} with {codec}: {e}"))
}

fn words(data: &RawData) -> &[u16] {
    match data {
        RawData::Words(w) => w,
        RawData::Bits(_) | RawData::Values(_) => panic!("{data:?} where words were expected"),
    }
}

/// Two values are the same: equal numbers (NaN never expected), or equal text.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.to_bits() == y.to_bits() || x == y,
        _ => a == b,
    }
}

// ---- values in every codec and word order ----

/// A value the Rust codec encodes (or, for read-only types, words given as they are on the wire).
struct Case {
    codec: Codec,
    words: Vec<u16>,
    expected: Value,
}

fn num(v: f64) -> Value {
    Value::Number(v)
}

/// Values for every value type: negative, extreme, fractional, scaled (divisors 10/100/1000, a
/// multiplier, offsets), in every word order, encoded by our codec.
fn encoded_cases() -> Vec<Case> {
    use ValueType::*;
    let c = Codec::new;
    let base: Vec<(Codec, Value)> = vec![
        (c(U8Hi), num(200.0)),
        (c(U8Hi).scaled(1.0, 10.0, 0.0), num(25.5)),
        (c(U8Lo), num(255.0)),
        (c(U8Lo).scaled(1.0, 1.0, -40.0), num(-33.0)),
        (c(I8Hi), num(-128.0)),
        (c(I8Hi).scaled(1.0, 10.0, 0.0), num(12.7)),
        (c(I8Lo), num(-5.0)),
        (c(I8Lo).scaled(1.0, 100.0, 0.0), num(-1.27)),
        (c(U16), num(65535.0)),
        (c(U16).scaled(1.0, 100.0, 0.0), num(123.45)),
        (c(U16).scaled(1.0, 10.0, -40.0), num(21.5)),
        (c(I16), num(-32768.0)),
        (c(I16).scaled(1.0, 10.0, 0.0), num(-123.4)),
        (c(I16).scaled(0.5, 1.0, 0.0), num(-7.5)),
        (c(U32), num(4_000_000_000.0)),
        (c(U32).scaled(1.0, 1000.0, 0.0), num(4_000_000.5)),
        (c(I32), num(-2_147_483_648.0)),
        (c(I32).scaled(1.0, 1000.0, 0.0), num(12.345)),
        (c(I32).scaled(1.0, 1000.0, 0.0), num(-1.5)),
        (c(I32).scaled(1.0, 1000.0, 0.0), num(1_000_000.001)),
        (c(I32).scaled(9.0, 5.0, 32.0), num(-40.0)),
        (c(U64), num(18_446_744_073_709_549_568.0)),
        (c(U64), num(1e18)),
        (c(I64), num(-9_223_372_036_854_775_808.0)),
        (c(I64).scaled(1.0, 1000.0, 0.0), num(-1_234_567_890.123)),
        (c(F32), num(-1.5)),
        (c(F32), num(f64::from(f32::MAX))),
        (c(F32), num(f64::from(1.1f32))),
        (c(F32).scaled(1.0, 10.0, 0.0), num(21.5)),
        (c(F64), num(-1234.5678)),
        (c(F64), num(1e300)),
        (c(F64), num(-0.0)),
        (c(F64).scaled(1.0, 100.0, 5.0), num(17.25)),
        (c(Bool), num(1.0)),
        (c(Bool), num(0.0)),
        (c(Str { registers: 4 }), Value::Text("T3-BB".into())),
        (c(Str { registers: 3 }), Value::Text("ab".into())),
        (c(Str { registers: 2 }), Value::Text("\u{e9}t\u{e9}!".into())),
    ];
    let mut cases = Vec::new();
    for order in WordOrder::ALL {
        for (codec, value) in &base {
            let codec = codec.clone().with_order(order);
            let words = codec.encode(value).unwrap_or_else(|e| panic!("encoding {value} with {codec}: {e}"));
            cases.push(Case { codec, words, expected: value.clone() });
        }
        // Read-only bits: the wire word 0x8008 has bits 15 and 3 set; an order that swaps the bytes of a
        // word sees 0x0880 (bits 11 and 7).
        let swapped = matches!(order, WordOrder::Badc | WordOrder::Dcba);
        for (bit, plain, swapped_value) in
            [(3u8, 1.0, 0.0), (15, 1.0, 0.0), (7, 0.0, 1.0), (11, 0.0, 1.0), (0, 0.0, 0.0)]
        {
            cases.push(Case {
                codec: c(Bit { bit }).with_order(order),
                words: vec![0x8008],
                expected: num(if swapped { swapped_value } else { plain }),
            });
        }
        // A boolean register is true for any non-zero word.
        cases.push(Case { codec: c(Bool).with_order(order), words: vec![0x0100], expected: num(1.0) });
    }
    cases
}

/// A value Python packs with `struct` and explicit byte orders, independently of our encoder.
struct Packed {
    fmt: &'static str,
    value: Json,
    scale: f64,
    codec: Codec,
    expected: Value,
}

fn python_cases() -> Vec<Packed> {
    use ValueType::*;
    let c = Codec::new;
    let p = |fmt, value: Json, codec: Codec, expected: Value| Packed { fmt, value, scale: 1.0, codec, expected };
    vec![
        p("h", json!(-1234), c(I16), num(-1234.0)),
        p("H", json!(65000), c(U16), num(65000.0)),
        p("i", json!(-2_000_000_000), c(I32), num(-2_000_000_000.0)),
        p("I", json!(4_000_000_000u32), c(U32), num(4_000_000_000.0)),
        p("q", json!(-1_152_921_504_606_842_880i64), c(I64), num(-1_152_921_504_606_842_880.0)),
        p("Q", json!(18_446_744_073_709_549_568u64), c(U64), num(18_446_744_073_709_549_568.0)),
        p("f", json!(-1.5), c(F32), num(-1.5)),
        p("f", json!(1234.5625), c(F32), num(1234.5625)),
        p("d", json!(-0.1), c(F64), num(-0.1)),
        p("d", json!(1e-300), c(F64), num(1e-300)),
        p("8s", json!("T3-LB"), c(Str { registers: 4 }), Value::Text("T3-LB".into())),
        Packed { fmt: "i", value: json!(12.345), scale: 1000.0, codec: Codec::t3_value(), expected: num(12.345) },
        Packed {
            fmt: "h",
            value: json!(-40.5),
            scale: 10.0,
            codec: c(I16).scaled(1.0, 10.0, 0.0),
            expected: num(-40.5),
        },
        Packed {
            fmt: "I",
            value: json!(1234.56),
            scale: 100.0,
            codec: c(U32).scaled(1.0, 100.0, 0.0),
            expected: num(1234.56),
        },
    ]
}

async fn values_in_every_codec_and_word_order(link: Link) {
    let cases = encoded_cases();
    let packed = python_cases();
    const ENCODED_AT: u16 = 1000;
    const PACKED_AT: u16 = 3000;
    let mut encoded_words = Vec::new();
    let mut encoded_items = Vec::new();
    for case in &cases {
        assert_eq!(case.words.len(), usize::from(case.codec.registers()), "{}", case.codec);
        encoded_items.push((ENCODED_AT + encoded_words.len() as u16, case.codec.registers()));
        encoded_words.extend_from_slice(&case.words);
    }
    let mut segments = vec![words_at(ENCODED_AT, &encoded_words)];
    let mut packed_items = Vec::new();
    let mut at = PACKED_AT;
    let mut packed_codecs = Vec::new();
    for order in WordOrder::ALL {
        for p in &packed {
            let codec = p.codec.clone().with_order(order);
            segments.push(packed_at(at, p.fmt, p.value.clone(), order, p.scale));
            packed_items.push((at, codec.registers()));
            at += codec.registers();
            packed_codecs.push((codec, p.expected.clone()));
        }
    }
    let bits: Vec<bool> = (0..37u32).map(|i| (i * 7 + i / 3) % 3 == 0).collect();
    let inverted: Vec<bool> = bits.iter().map(|b| !b).collect();
    let spec = json!({
        "unit": UNIT,
        "holding": segments,
        "input": segments,
        "coils": [{"address": 0, "bits": bits}],
        "discrete_inputs": [{"address": 100, "bits": inverted}],
    });
    let peer = Peer::start(link, &spec).await;
    let driver = peer.driver();

    for kind in [RegisterKind::Holding, RegisterKind::Input] {
        // Our encoder's words, decoded after the round trip through pymodbus.
        let items: Vec<PlanItem> =
            encoded_items.iter().map(|&(address, count)| PlanItem { kind, address, count }).collect();
        let data = read_items(&driver, &items).await;
        for ((case, got), item) in cases.iter().zip(&data).zip(&items) {
            assert_eq!(words(got), case.words, "{kind} {} ({})", item.address, case.codec);
            let value = decode(&case.codec, got);
            assert!(
                same(&value, &case.expected),
                "{kind} {}: {} decoded {value}, expected {}",
                item.address,
                case.codec,
                case.expected
            );
        }

        // Python's words: decoded by our codec, and equal to what our encoder makes of the same value.
        let items: Vec<PlanItem> =
            packed_items.iter().map(|&(address, count)| PlanItem { kind, address, count }).collect();
        let data = read_items(&driver, &items).await;
        for (((codec, expected), got), item) in packed_codecs.iter().zip(&data).zip(&items) {
            let value = decode(codec, got);
            assert!(
                same(&value, expected),
                "{kind} {}: python-packed {codec} decoded {value}, expected {expected}",
                item.address
            );
            let ours = codec.encode(expected).unwrap();
            assert_eq!(words(got), ours, "{kind} {}: python's words vs ours for {expected} as {codec}", item.address);
        }
    }

    // Booleans from coils and discrete inputs, one point per bit, merged into block reads.
    let codec = Codec::new(ValueType::Bool);
    for (kind, base, invert) in [(RegisterKind::Coil, 0u16, false), (RegisterKind::DiscreteInput, 100, true)] {
        let items: Vec<PlanItem> =
            (0..bits.len() as u16).map(|i| PlanItem { kind, address: base + i, count: 1 }).collect();
        let data = read_items(&driver, &items).await;
        for (i, got) in data.iter().enumerate() {
            let want = if bits[i] != invert { 1.0 } else { 0.0 };
            assert_eq!(decode(&codec, got), num(want), "{kind} {}", usize::from(base) + i);
        }
    }
    let health = driver.health();
    assert!(health.answered > 0 && health.failures == 0 && health.timeouts == 0, "{health:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_values_in_every_codec_and_word_order() {
    values_in_every_codec_and_word_order(Link::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtu_values_in_every_codec_and_word_order() {
    values_in_every_codec_and_word_order(Link::Rtu { baud: 19_200 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtu_at_9600_baud_values_in_every_codec_and_word_order() {
    values_in_every_codec_and_word_order(Link::Rtu { baud: 9600 }).await;
}

// ---- the collector ----

/// Collects every ingested batch into a channel.
#[derive(Debug)]
struct ChannelSink(mpsc::UnboundedSender<Vec<Sample>>);

impl SampleSink for ChannelSink {
    fn ingest(&self, samples: Vec<Sample>) -> IngestFuture<'_> {
        let _ = self.0.send(samples);
        Box::pin(async { Ok(()) })
    }
}

fn collector() -> (Arc<Collector>, mpsc::UnboundedReceiver<Vec<Sample>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let cfg = CollectorConfig { timeout_ms: REQUEST_TIMEOUT.as_millis() as u64, ..CollectorConfig::default() };
    (Collector::new(cfg, Arc::new(ChannelSink(tx)), Arc::new(SystemClock)), rx)
}

/// A device spec with ids 1.. in profile order; returns the ids by point name too.
fn spec_for(config: DeviceConfig, profile: Arc<Profile>) -> (DeviceSpec, HashMap<String, u32>) {
    let mut ids = HashMap::new();
    let spec = DeviceSpec::new(config, profile, |p| {
        let id = ids.len() as u32 + 1;
        ids.insert(p.name.clone(), id);
        id
    })
    .unwrap();
    (spec, ids)
}

/// The first batch in which `pred` holds, as samples by point id.
async fn batch_where(
    rx: &mut mpsc::UnboundedReceiver<Vec<Sample>>,
    what: &str,
    pred: impl Fn(&HashMap<u32, Sample>) -> bool,
) -> HashMap<u32, Sample> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let batch = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(batch)) => batch,
            Ok(None) => panic!("the collector's sink closed while waiting for {what}"),
            Err(_) => panic!("no batch with {what} within {WAIT:?}"),
        };
        let by_id: HashMap<u32, Sample> = batch.into_iter().map(|s| (s.point_id.0, s)).collect();
        if pred(&by_id) {
            return by_id;
        }
    }
}

fn assert_sample(batch: &HashMap<u32, Sample>, ids: &HashMap<String, u32>, name: &str, value: f64, quality: Quality) {
    let s = batch.get(&ids[name]).unwrap_or_else(|| panic!("no sample of {name}"));
    assert_eq!((s.value, s.quality), (value, quality), "{name}");
}

async fn t3_controller_values_and_writes(link: Link) {
    let profile = ProfileLibrary::builtin().get("T3-controller").expect("the T3 controller profile").clone();
    let pt = |name: &str| profile.point(name).unwrap_or_else(|| panic!("no {name} in the T3 profile")).clone();
    let (in1, out1, out2, var1, var128) = (pt("IN1"), pt("OUT1"), pt("OUT2"), pt("VAR1"), pt("VAR128"));
    // The register map of T3000-REFERENCE.md.
    assert_eq!((in1.address, out1.address, var1.address, var128.address), (7484, 7100, 8092, 8346));
    assert_eq!((out1.auto_manual, out2.auto_manual, var1.auto_manual), (Some(7356), Some(7357), Some(8348)));

    let spec = json!({
        "unit": UNIT,
        "holding": [
            // Everything the profile reads, zero, then the values a controller would hold.
            words_at(7000, &[0u16; 1800]),
            // Analog: outputs' and variables' analog/digital registers 1, inputs' range registers
            // with the analog flag in the high byte (range 1, a thermistor curve, in the low byte).
            words_at(7420, &[1u16; 64]),
            words_at(8660, &[1u16; 128]),
            words_at(7804, &[0x0101u16; 64]),
            // Digital: OUT3 and IN3 hold a raw 1 in the low word, not 1000.
            words_at(7422, &[0]),
            words_at(7104, &[0, 1]),
            words_at(7806, &[0x0001]),
            words_at(7488, &[0, 1]),
            t3_at(7484, 12.345),
            t3_at(7486, -40.0),
            t3_at(7610, 2_147_483.647),
            t3_at(7100, -1.5),
            t3_at(7102, 100.0),
            words_at(7357, &[1]),
            t3_at(8092, -2_147_483.648),
            t3_at(8094, 0.001),
            t3_at(8346, 1_000_000.001),
        ],
    });
    let mut peer = Peer::start(link, &spec).await;
    // Python's words, as a T3 controller holds them: int32 x1000, high word first.
    let driver = peer.driver();
    let raw = driver
        .read(
            UNIT,
            &[
                ReadRequest { kind: RegisterKind::Holding, start: 7484, count: 2, points: Vec::new() },
                ReadRequest { kind: RegisterKind::Holding, start: 7100, count: 2, points: Vec::new() },
                ReadRequest { kind: RegisterKind::Holding, start: 8346, count: 2, points: Vec::new() },
            ],
        )
        .await;
    assert_eq!(raw[0], Ok(RawData::Words(vec![0, 12345])), "IN1 = 12.345");
    assert_eq!(raw[1], Ok(RawData::Words(vec![0xFFFF, 0xFA24])), "OUT1 = -1.5");
    assert_eq!(raw[2], Ok(RawData::Words(vec![0x3B9A, 0xCA01])), "VAR128 = 1_000_000.001");
    drop(driver); // a serial port is opened exclusively

    let (collector, mut rx) = collector();
    let (dev, ids) = spec_for(peer.device("t3", "T3-controller", 200), profile);
    assert_eq!(ids.len(), 256);
    collector.add_device(dev).unwrap();

    let full = |b: &HashMap<u32, Sample>| b.len() == 256;
    let batch = batch_where(&mut rx, "all 256 points", full).await;
    // The words (0, 12345) at 7484..7485, placed by Python, are 12.345 exactly as a literal.
    assert_sample(&batch, &ids, "IN1", 12.345, Quality::GOOD);
    assert_sample(&batch, &ids, "IN2", -40.0, Quality::GOOD);
    assert_sample(&batch, &ids, "IN64", 2_147_483.647, Quality::GOOD);
    assert_sample(&batch, &ids, "OUT1", -1.5, Quality::GOOD);
    assert_sample(&batch, &ids, "OUT2", 100.0, Quality::GOOD_LOCAL_OVERRIDE);
    assert_sample(&batch, &ids, "OUT3", 1.0, Quality::GOOD);
    assert_sample(&batch, &ids, "IN3", 1.0, Quality::GOOD);
    assert_sample(&batch, &ids, "VAR1", -2_147_483.648, Quality::GOOD);
    assert_sample(&batch, &ids, "VAR2", 0.001, Quality::GOOD);
    assert_sample(&batch, &ids, "VAR128", 1_000_000.001, Quality::GOOD);
    assert_sample(&batch, &ids, "VAR127", 0.0, Quality::GOOD);
    assert!(batch.values().all(|s| s.quality.0 & 0xC0 == 0xC0), "every point good");

    // OUT1 is in auto: refused, and nothing is written.
    let e = collector.write("t3", "OUT1", 42.5, false).await.unwrap_err();
    assert!(matches!(e, CollectError::Driver(DriverError::InAuto)), "{e:?}");
    // With switch_to_manual: 1 to its auto/manual register (function 06), then the value as two
    // registers (function 16), high word first, x1000. The next write the peer saw is the switch, so
    // the refused write wrote nothing.
    let out = collector.write("t3", "OUT1", 42.5, true).await.unwrap();
    assert_eq!((out.point_id, out.value, out.switched_to_manual), (ids["OUT1"], 42.5, true));
    peer.expect_write(6, 7356, json!([1])).await;
    peer.expect_write(16, 7100, json!([0, 42500])).await;
    // OUT2 is in manual already: only the value, -1.5 = 0xFFFF_FA24.
    let out = collector.write("t3", "OUT2", -1.5, false).await.unwrap();
    assert_eq!((out.value, out.switched_to_manual), (-1.5, false));
    peer.expect_write(16, 7102, json!([0xFFFF, 0xFA24])).await;
    // A variable far from the others, with a fraction.
    let out = collector.write("t3", "VAR128", -0.125, true).await.unwrap();
    assert_eq!((out.value, out.switched_to_manual), (-0.125, true));
    peer.expect_write(6, 8348 + 127, json!([1])).await;
    peer.expect_write(16, 8346, json!([0xFFFF, 0xFF83])).await;
    // A digital output takes a raw 0 or 1 (not x1000), and nothing else.
    let out = collector.write("t3", "OUT3", 0.0, true).await.unwrap();
    assert_eq!(out.value, 0.0);
    peer.expect_write(6, 7358, json!([1])).await;
    peer.expect_write(16, 7104, json!([0, 0])).await;
    let e = collector.write("t3", "OUT3", 0.5, true).await.unwrap_err();
    assert!(matches!(e, CollectError::BadValue { .. }), "{e:?}");
    // Too large for an int32 x1000: refused before anything is sent.
    let e = collector.write("t3", "VAR5", 3e6, true).await.unwrap_err();
    assert!(matches!(e, CollectError::BadValue { .. }), "{e:?}");

    // The write's read-back was recorded, then polls see the new values in manual.
    let written =
        batch_where(&mut rx, "the recorded write of OUT2", |b| b.len() == 1 && b.contains_key(&ids["OUT2"])).await;
    assert_sample(&written, &ids, "OUT2", -1.5, Quality::GOOD_LOCAL_OVERRIDE);
    let batch = batch_where(&mut rx, "a poll after the writes", |b| {
        b.len() == 256 && b.get(&ids["VAR128"]).is_some_and(|s| s.value == -0.125)
    })
    .await;
    assert_sample(&batch, &ids, "OUT1", 42.5, Quality::GOOD_LOCAL_OVERRIDE);
    assert_sample(&batch, &ids, "OUT2", -1.5, Quality::GOOD_LOCAL_OVERRIDE);
    assert_sample(&batch, &ids, "VAR128", -0.125, Quality::GOOD_LOCAL_OVERRIDE);
    assert_sample(&batch, &ids, "IN1", 12.345, Quality::GOOD);
    // A poll updates the status after it stores its samples; this poll's predecessors are done.
    let status = collector.status().get("t3").unwrap();
    assert_eq!(status.state, DeviceState::Online, "{status:?}");
    assert!(status.online && status.polls > 0, "{status:?}");
    assert_eq!((status.exceptions, status.timeouts, status.failed_polls), (0, 0, 0), "{status:?}");
    collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_t3_controller_values_and_writes_through_the_collector() {
    t3_controller_values_and_writes(Link::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtu_t3_controller_values_and_writes_through_the_collector() {
    t3_controller_values_and_writes(Link::Rtu { baud: 19_200 }).await;
}

// ---- writes of every shape ----

fn register_point(name: &str, kind: RegisterKind, address: u16, codec: Codec, writable: bool) -> ProfilePoint {
    ProfilePoint {
        name: name.into(),
        point_type: PointType::Register,
        point_number: 1,
        kind,
        address,
        codec,
        writable,
        unit: None,
        description: String::new(),
        auto_manual: None,
        range: None,
        analog_digital: None,
        plugin: None,
    }
}

fn test_profile() -> Profile {
    use RegisterKind::*;
    Profile {
        name: "pymodbus-test".into(),
        description: "points of every table for the pymodbus peer".into(),
        product_models: Vec::new(),
        limits: Limits::default(),
        points: vec![
            register_point("SETPOINT", Holding, 500, Codec::new(ValueType::U16).scaled(1.0, 10.0, 0.0), true),
            register_point("LIMIT", Holding, 502, "i32 CDAB /100".parse().unwrap(), true),
            register_point("FAN", Coil, 3, Codec::new(ValueType::Bool), true),
            register_point("STATUS", Input, 10, Codec::new(ValueType::U16), false),
            register_point("ALARM", DiscreteInput, 5, Codec::new(ValueType::Bool), false),
        ],
    }
}

async fn writes_of_every_shape(link: Link) {
    let spec = json!({
        "unit": UNIT,
        "holding": [words_at(500, &[0u16; 120])],
        "input": [words_at(10, &[7])],
        "coils": [{"address": 0, "bits": vec![false; 32]}],
        "discrete_inputs": [{"address": 0, "bits": [false, false, false, false, false, true]}],
    });
    let mut peer = Peer::start(link, &spec).await;

    // The driver's own writes: 06 for one register, 16 for several, 05 for one coil, 15 for several.
    let driver = peer.driver();
    driver.write(UNIT, RegisterKind::Holding, 600, RawData::Words(vec![0x1234])).await.unwrap();
    peer.expect_write(6, 600, json!([0x1234])).await;
    driver.write(UNIT, RegisterKind::Holding, 601, RawData::Words(vec![1, 0xFFFF, 3])).await.unwrap();
    peer.expect_write(16, 601, json!([1, 0xFFFF, 3])).await;
    driver.write(UNIT, RegisterKind::Coil, 8, RawData::Bits(vec![true])).await.unwrap();
    peer.expect_write(5, 8, json!([true])).await;
    driver.write(UNIT, RegisterKind::Coil, 9, RawData::Bits(vec![true, false, true])).await.unwrap();
    peer.expect_write(15, 9, json!([true, false, true])).await;
    let back = driver
        .read(
            UNIT,
            &[
                ReadRequest { kind: RegisterKind::Holding, start: 600, count: 4, points: Vec::new() },
                ReadRequest { kind: RegisterKind::Coil, start: 7, count: 6, points: Vec::new() },
            ],
        )
        .await;
    assert_eq!(back[0], Ok(RawData::Words(vec![0x1234, 1, 0xFFFF, 3])));
    assert_eq!(back[1], Ok(RawData::Bits(vec![false, true, true, false, true, false])));
    // Shapes Modbus cannot write are refused without a request.
    for (kind, data) in [
        (RegisterKind::Input, RawData::Words(vec![1])),
        (RegisterKind::DiscreteInput, RawData::Bits(vec![true])),
        (RegisterKind::Holding, RawData::Words(Vec::new())),
        (RegisterKind::Holding, RawData::Bits(vec![true])),
    ] {
        let e = driver.write(UNIT, kind, 0, data).await.unwrap_err();
        assert!(matches!(e, DriverError::Invalid(_)), "{kind}: {e:?}");
    }

    // A serial port is opened exclusively: close this one before the collector opens its own.
    drop(driver);

    // Through the collector: encoded by each point's codec, confirmed by read-back.
    let (collector, mut rx) = collector();
    let (dev, ids) = spec_for(peer.device("io", "pymodbus-test", 200), Arc::new(test_profile()));
    collector.add_device(dev).unwrap();
    let out = collector.write("io", "SETPOINT", 21.5, false).await.unwrap();
    assert_eq!((out.value, out.switched_to_manual), (21.5, false));
    peer.expect_write(6, 500, json!([215])).await;
    let out = collector.write("io", "LIMIT", -12.34, false).await.unwrap();
    assert_eq!(out.value, -12.34);
    // -1234 = 0xFFFF_FB2E, low word first.
    peer.expect_write(16, 502, json!([0xFB2E, 0xFFFF])).await;
    let out = collector.write("io", "FAN", 1.0, false).await.unwrap();
    assert_eq!(out.value, 1.0);
    peer.expect_write(5, 3, json!([true])).await;
    let e = collector.write("io", "STATUS", 1.0, false).await.unwrap_err();
    assert!(matches!(e, CollectError::ReadOnly(_)), "{e:?}");
    let e = collector.write("io", "SETPOINT", 7000.0, false).await.unwrap_err();
    assert!(matches!(e, CollectError::BadValue { .. }), "{e:?}");
    // The next write the peer sees is this one: the refused writes sent nothing.
    let out = collector.write("io", "FAN", 0.0, false).await.unwrap();
    assert_eq!(out.value, 0.0);
    peer.expect_write(5, 3, json!([false])).await;
    let out = collector.write("io", "SETPOINT", 22.5, false).await.unwrap();
    assert_eq!(out.value, 22.5);
    peer.expect_write(6, 500, json!([225])).await;

    // Polls read every table. A poll reads its whole plan under the driver's lock, so one that saw the
    // last write saw every write before it.
    let batch = batch_where(&mut rx, "a poll after the last write", |b| {
        b.len() == 5 && b.get(&ids["SETPOINT"]).is_some_and(|s| s.value == 22.5)
    })
    .await;
    assert_sample(&batch, &ids, "LIMIT", -12.34, Quality::GOOD);
    assert_sample(&batch, &ids, "STATUS", 7.0, Quality::GOOD);
    assert_sample(&batch, &ids, "ALARM", 1.0, Quality::GOOD);
    assert_sample(&batch, &ids, "FAN", 0.0, Quality::GOOD);
    collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_writes_of_every_shape_reach_the_peer() {
    writes_of_every_shape(Link::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtu_writes_of_every_shape_reach_the_peer() {
    writes_of_every_shape(Link::Rtu { baud: 19_200 }).await;
}

// ---- exceptions ----

async fn exceptions_become_bad_samples(link: Link) {
    // Outputs and inputs exist; the variables' registers (8092..) do not.
    let spec = json!({
        "unit": UNIT,
        // IN1 analog (its range register's high byte), 5.5 as int32 x1000.
        "holding": [words_at(7000, &[0u16; 1000]), words_at(7804, &[0x0101]), t3_at(7484, 5.5)],
        "input": [words_at(0, &[1, 2, 3])],
        "coils": [{"address": 0, "bits": vec![true; 8]}],
    });
    let peer = Peer::start(link, &spec).await;
    let driver = peer.driver();
    let req = |kind, start, count| ReadRequest { kind, start, count, points: Vec::new() };
    let illegal: Result<RawData, DriverError> = Err(DriverError::Exception(ExceptionCode::ILLEGAL_DATA_ADDRESS));
    let results = driver
        .read(
            UNIT,
            &[
                req(RegisterKind::Holding, 9000, 2),
                req(RegisterKind::Holding, 7484, 2),
                req(RegisterKind::Holding, 7998, 4),
                req(RegisterKind::Input, 2, 2),
                req(RegisterKind::Coil, 1000, 1),
                req(RegisterKind::DiscreteInput, 0, 1),
                req(RegisterKind::Input, 0, 3),
            ],
        )
        .await;
    // An exception proves the device is alive: the rest of the batch is still read.
    assert_eq!(results[0], illegal);
    assert_eq!(results[1], Ok(RawData::Words(vec![0, 5500])));
    assert_eq!(results[2], illegal, "a read running past the last register");
    assert_eq!(results[3], illegal, "a read running past the last input register");
    assert_eq!(results[4], illegal);
    assert_eq!(results[5], illegal, "no discrete inputs at all");
    assert_eq!(results[6], Ok(RawData::Words(vec![1, 2, 3])));
    let e = results[0].clone().unwrap_err();
    assert_eq!(e.quality(), Quality::BAD_CONFIG_ERROR);
    assert!(!e.is_unreachable());
    assert!(e.to_string().contains("0x02"), "{e}");
    let health = driver.health();
    assert_eq!((health.answered, health.failures, health.timeouts), (7, 0, 0), "{health:?}");

    drop(driver); // a serial port is opened exclusively

    // The collector: the variables become bad samples with NaN, never 0; the rest stays good and the
    // device online.
    let (collector, mut rx) = collector();
    let profile = ProfileLibrary::builtin().get("T3-controller").unwrap().clone();
    let (dev, ids) = spec_for(peer.device("t3", "T3-controller", 200), profile);
    collector.add_device(dev).unwrap();
    let batch = batch_where(&mut rx, "all 256 points", |b| b.len() == 256).await;
    assert_sample(&batch, &ids, "IN1", 5.5, Quality::GOOD);
    assert_sample(&batch, &ids, "OUT64", 0.0, Quality::GOOD);
    for n in 1..=128 {
        let s = &batch[&ids[&format!("VAR{n}")]];
        assert_eq!(s.quality, Quality::BAD_CONFIG_ERROR, "VAR{n}");
        assert!(s.value.is_nan(), "VAR{n} is {} with a bad quality; it must be NaN", s.value);
    }
    let good = batch.values().filter(|s| s.quality == Quality::GOOD).count();
    assert_eq!(good, 128, "inputs and outputs");
    // A poll updates the status after it stores its samples: the next poll's samples mean this
    // poll's status is in.
    batch_where(&mut rx, "a second poll", |b| b.len() == 256).await;
    let status = collector.status().get("t3").unwrap();
    assert_eq!(status.state, DeviceState::Online, "{status:?}");
    assert!(status.exceptions > 0 && status.timeouts == 0, "{status:?}");
    assert!(status.last_error.as_deref().is_some_and(|e| e.contains("0x02")), "{status:?}");
    collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_exceptions_from_the_peer_become_bad_samples_never_zero() {
    exceptions_become_bad_samples(Link::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtu_exceptions_from_the_peer_become_bad_samples_never_zero() {
    exceptions_become_bad_samples(Link::Rtu { baud: 19_200 }).await;
}

// ---- a T3 panel's program table ----

/// A `Str_program_point` record (37 bytes) laid out by hand from the firmware's struct
/// (`main/ud_str.h`), not by our codec.
fn program_bytes(description: &str, label: &str, size: u16, on: u8, rest: [u8; 3]) -> Vec<u8> {
    let mut b = vec![0u8; 37];
    b[..description.len()].copy_from_slice(description.as_bytes());
    b[21..21 + label.len()].copy_from_slice(label.as_bytes());
    b[30..32].copy_from_slice(&size.to_le_bytes());
    b[32] = on;
    b[34..].copy_from_slice(&rest);
    b
}

/// Bytes as registers, the first of each pair in the high half (the firmware sends the struct's
/// bytes in order).
fn byte_words(bytes: &[u8]) -> Vec<u16> {
    bytes.chunks(2).map(|p| u16::from_be_bytes([p[0], p.get(1).copied().unwrap_or(0)])).collect()
}

/// The collector reads a program table that pymodbus serves as the firmware lays it out (the packed
/// array, 19 registers a record) and stops and starts a program by writing its record whole from its
/// first register: the words the peer receives are the record with only on/off changed, its last
/// register carrying the next record's first byte as read. A peer without the table (firmware
/// without it) answers with an exception, reported as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_t3_program_table_is_read_and_programs_switched_whole() {
    let ahu = program_bytes("Air handler", "AHU", 412, 1, [3, 0x10, 0x20]);
    let boiler = program_bytes("Boiler plant", "BOILER", 236, 0, [0; 3]);
    let mut packed = [ahu, boiler].concat();
    packed.resize(16 * 37 + 1, 0);
    let table: Vec<u16> = (0..16).flat_map(|i| byte_words(&packed[i * 37..i * 37 + 38])).collect();
    assert_eq!(table[18], 0x2000 | u16::from(b'B'), "PRG1's last byte, then PRG2's first");
    let mut peer = Peer::start(Link::Tcp, &json!({"unit": UNIT, "holding": [words_at(15504, &table)]})).await;
    let profile = ProfileLibrary::builtin().get("T3-controller").expect("the T3 controller profile").clone();
    let (collector, _rx) = collector();
    let mut config = peer.device("t3", "T3-controller", 3_600_000);
    config.enabled = false; // no polls: the table's requests only
    collector.add_device(spec_for(config, profile.clone()).0).unwrap();

    let programs = collector.read_programs("t3").await.unwrap();
    assert_eq!(programs.len(), 16);
    let p = |i: usize| (programs[i].label.as_str(), programs[i].description.as_str(), programs[i].code_bytes);
    assert_eq!((p(0), programs[0].running), (("AHU", "Air handler", 412), true));
    assert_eq!((p(1), programs[1].running), (("BOILER", "Boiler plant", 236), false));
    assert_eq!(p(15), ("", "", 0));

    collector.set_program_running("t3", 1, false).await.unwrap();
    let mut want = packed[..38].to_vec();
    want[32] = 0;
    peer.expect_write(16, 15504, json!(byte_words(&want))).await;
    collector.set_program_running("t3", 2, true).await.unwrap();
    let mut want = packed[37..75].to_vec();
    want[32] = 1;
    peer.expect_write(16, 15504 + 19, json!(byte_words(&want))).await;
    let programs = collector.read_programs("t3").await.unwrap();
    assert_eq!((programs[0].running, programs[1].running, programs[1].label.as_str()), (false, true, "BOILER"));

    // Firmware without the table.
    let bare = Peer::start(Link::Tcp, &json!({"unit": UNIT, "holding": [words_at(9800, &[0u16; 200])]})).await;
    let mut config = bare.device("old", "T3-controller", 3_600_000);
    config.enabled = false;
    collector.add_device(spec_for(config, profile).0).unwrap();
    let e = collector.read_programs("old").await.unwrap_err();
    assert!(
        matches!(e, CollectError::Refused { exception: ExceptionCode::ILLEGAL_DATA_ADDRESS, first: 15504, .. }),
        "{e:?}"
    );
    let e = collector.set_program_running("old", 3, false).await.unwrap_err();
    assert!(matches!(e, CollectError::Refused { .. }), "{e:?}");
    collector.shutdown().await;
}
