//! The plugin against a BACnet/IP device we did not write: bacpypes3 (tests/peer/device.py), on
//! 127.0.0.1 with real UDP sockets. The tests call the `Plugin` and `Device` traits directly.
//! They need `$T3000_PYTHON` (default `$HOME/.cache/t3000/venv/bin/python`) with bacpypes3, and
//! fail (never skip) without it.

use serde_json::{Value as Json, json};
use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use t3_plugin_abi::export::{Device, Plugin};
use t3_plugin_abi::*;
use t3_plugin_bacnet::codec::enums::{object_type, property};
use t3_plugin_bacnet::codec::tags::{ObjectId, Value};
use t3_plugin_bacnet::{Bacnet, BacnetDevice};

const INSTANCE: u32 = 599;

/// A bacpypes3 device in a child process.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    port: u16,
}

fn python() -> String {
    std::env::var("T3000_PYTHON")
        .unwrap_or_else(|_| format!("{}/.cache/t3000/venv/bin/python", std::env::var("HOME").unwrap()))
}

impl Peer {
    fn start(args: &[&str]) -> Peer {
        // A free port: bound and released (the device binds it right after).
        let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peer/device.py");
        let mut child = Command::new(python())
            .arg(script)
            .args(["--port", &port.to_string(), "--instance", &INSTANCE.to_string()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} (set T3000_PYTHON to a python with bacpypes3): {e}", python()));
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut peer = Peer { child, stdin, lines, port };
        let ready = peer.line(Duration::from_secs(30));
        assert_eq!(ready, format!("ready 127.0.0.1:{port}"));
        peer
    }

    fn line(&mut self, wait: Duration) -> String {
        match self.lines.recv_timeout(wait) {
            Ok(l) => l,
            Err(e) => panic!("the bacpypes3 device said nothing ({e}); exited: {:?}", self.child.try_wait()),
        }
    }

    /// Runs a command on the device's side and waits for its "ok".
    fn command(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        let answer = self.line(Duration::from_secs(10));
        assert!(answer.starts_with("ok "), "{cmd}: {answer}");
    }

    fn config(&self, extra: Json) -> Vec<u8> {
        let mut c = json!({"ip_address": "127.0.0.1", "port": self.port, "device_instance": INSTANCE,
                           "timeout_ms": 1000, "retries": 1, "name": "peer", "local_address": "127.0.0.1"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c.to_string().into_bytes()
    }

    fn open(&self, extra: Json) -> BacnetDevice {
        let config = self.config(extra);
        Bacnet::check_config(&config).unwrap();
        Bacnet::open(&config).unwrap()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn points(d: &mut BacnetDevice) -> Vec<Json> {
    serde_json::from_str::<Json>(&d.points().unwrap()).unwrap().as_array().unwrap().clone()
}

fn index(points: &[Json], address: &str) -> u32 {
    points.iter().position(|p| p["address"] == address).unwrap_or_else(|| panic!("no point at {address}")) as u32
}

fn read_all(d: &mut BacnetDevice, n: usize) -> Vec<Sample> {
    let idx: Vec<u32> = (0..n as u32).collect();
    let mut out = vec![Sample::new(0, f64::NAN, QUALITY_BAD); n];
    d.read(&idx, &mut out).unwrap();
    out
}

fn read_one(d: &mut BacnetDevice, point: u32) -> Sample {
    let mut out = [Sample::new(point, f64::NAN, QUALITY_BAD)];
    d.read(&[point], &mut out).unwrap();
    out[0]
}

fn health(d: &mut BacnetDevice) -> Json {
    serde_json::from_str(&d.health()).unwrap()
}

/// The expected present values of the standard objects, by address.
const VALUES: [(&str, f64); 12] = [
    ("analog-input,1", 21.5),
    ("analog-input,2", 45.0),
    ("analog-input,3", 70.7),
    ("analog-output,1", 10.0),
    ("analog-value,1", 22.0),
    ("analog-value,2", 0.5),
    ("binary-input,1", 0.0),
    ("binary-output,1", 0.0),
    ("binary-value,1", 1.0),
    ("multi-state-input,1", 2.0),
    ("multi-state-output,1", 1.0),
    ("multi-state-value,1", 1.0),
];

fn check_values(points: &[Json], samples: &[Sample]) {
    for (address, value) in VALUES {
        let s = samples[index(points, address) as usize];
        assert_eq!(s.quality, QUALITY_GOOD, "{address}: {s:?}");
        assert!((s.value - value).abs() < 1e-4, "{address}: {} is not {value}", s.value);
    }
}

#[test]
fn discovery_finds_the_device_with_who_is_and_reads_its_names() {
    let peer = Peer::start(&[]);
    let request =
        json!({"port": peer.port, "broadcast": "127.0.0.1", "low": INSTANCE, "high": INSTANCE, "timeout_ms": 1000});
    let found: Json = serde_json::from_str(&Bacnet::discover(request.to_string().as_bytes()).unwrap()).unwrap();
    assert_eq!(
        found,
        json!([{
            "name": "T3 Test Device",
            "address": format!("127.0.0.1:{}", peer.port),
            "model": "bacpypes3 peer",
            "vendor": "t3000 tests",
            "config": {"ip_address": "127.0.0.1", "port": peer.port, "device_instance": INSTANCE},
        }])
    );
    // The config discovery gives opens the device.
    let config = found[0]["config"].to_string();
    Bacnet::check_config(config.as_bytes()).unwrap();
    // A range without the device: it keeps quiet.
    let request =
        json!({"port": peer.port, "broadcast": "127.0.0.1", "low": 0, "high": INSTANCE - 1, "timeout_ms": 500});
    assert_eq!(Bacnet::discover(request.to_string().as_bytes()).unwrap(), "[]");
}

#[test]
fn the_object_list_becomes_points_with_names_units_states_and_kinds() {
    let peer = Peer::start(&[]);
    let mut d = peer.open(json!({}));
    let ps = points(&mut d);
    let addresses: Vec<&str> = ps.iter().map(|p| p["address"].as_str().unwrap()).collect();
    assert_eq!(addresses, VALUES.map(|(a, _)| a), "the served objects in object-identifier order");
    let p = |a: &str| ps[index(&ps, a) as usize].clone();
    assert_eq!(
        p("analog-input,1"),
        json!({"name": "Zone Temp (analog-input,1)", "description": "Zone temperature", "kind": "analog", "units": "°C",
               "writable": false, "min": -10.0, "max": 50.0, "states": [], "address": "analog-input,1", "class": "input"})
    );
    assert_eq!(p("analog-input,3")["name"], "Zone Temp (analog-input,3)");
    assert_eq!(p("analog-input,3")["units"], "°F");
    assert_eq!(p("analog-input,2")["units"], "%RH");
    assert_eq!(p("analog-input,2")["name"], "Supply RH");
    assert_eq!(p("analog-output,1")["units"], "%");
    assert_eq!(p("analog-value,2")["units"], "ΔK");
    assert_eq!(p("binary-input,1")["states"], json!(["Off", "On"]));
    assert_eq!(p("binary-output,1")["states"], json!(["inactive", "active"]));
    assert_eq!(p("multi-state-input,1")["states"], json!(["Off", "Heat", "Cool", "Auto"]));
    assert_eq!(p("multi-state-value,1")["states"], json!(["Winter", "Summer"]));
    for (a, kind, class, writable) in [
        ("analog-output,1", "analog", "output", true),
        ("analog-value,1", "analog", "variable", true),
        ("analog-value,2", "analog", "variable", false),
        ("binary-input,1", "digital", "input", false),
        ("binary-output,1", "digital", "output", true),
        ("binary-value,1", "digital", "variable", true),
        ("multi-state-input,1", "multistate", "input", false),
        ("multi-state-output,1", "multistate", "output", true),
        ("multi-state-value,1", "multistate", "variable", true),
    ] {
        assert_eq!(
            (p(a)["kind"].as_str(), p(a)["class"].as_str(), p(a)["writable"].as_bool()),
            (Some(kind), Some(class), Some(writable)),
            "{a}"
        );
    }
    let h = health(&mut d);
    assert_eq!(h["connected"], true);
    assert_eq!(h["max_apdu"], 1024, "the device's max-apdu-length-accepted");
}

#[test]
fn polling_batches_present_values_in_one_read_property_multiple() {
    let peer = Peer::start(&[]);
    let mut d = peer.open(json!({}));
    let ps = points(&mut d);
    let before = health(&mut d)["requests"].as_u64().unwrap();
    let samples = read_all(&mut d, ps.len());
    check_values(&ps, &samples);
    let h = health(&mut d);
    assert_eq!(h["requests"].as_u64().unwrap() - before, 1, "one RPM for 12 objects: {h}");
    assert_eq!(h["read_property_multiple"], true);
    // A subset, in another order, with a repeated point.
    let ai2 = index(&ps, "analog-input,2");
    let mso = index(&ps, "multi-state-output,1");
    let mut out = [Sample::new(0, f64::NAN, QUALITY_BAD); 3];
    d.read(&[mso, ai2, mso], &mut out).unwrap();
    assert_eq!(out.map(|s| (s.point, s.value)), [(mso, 1.0), (ai2, 45.0), (mso, 1.0)]);
    // An index past the point list is refused.
    let mut out = [Sample::new(0, f64::NAN, QUALITY_BAD)];
    assert_eq!(d.read(&[99], &mut out).unwrap_err().status, STATUS_INVALID);
}

#[test]
fn a_device_that_rejects_rpm_is_read_with_read_property() {
    let peer = Peer::start(&["--no-rpm"]);
    let mut d = peer.open(json!({}));
    let ps = points(&mut d);
    // The point list needed the fallback already; names and texts are all there.
    assert_eq!(ps[index(&ps, "multi-state-input,1") as usize]["states"], json!(["Off", "Heat", "Cool", "Auto"]));
    assert_eq!(ps[index(&ps, "analog-input,1") as usize]["units"], "°C");
    let samples = read_all(&mut d, ps.len());
    check_values(&ps, &samples);
    let h = health(&mut d);
    assert_eq!(h["read_property_multiple"], false, "remembered for the device: {h}");
    // From now on, one ReadProperty per property: 12 present values and 12 status flags.
    let before = h["requests"].as_u64().unwrap();
    read_all(&mut d, ps.len());
    assert_eq!(health(&mut d)["requests"].as_u64().unwrap() - before, 24);
}

#[test]
fn use_rpm_false_reads_with_read_property() {
    let peer = Peer::start(&[]);
    let mut d = peer.open(json!({"use_rpm": false}));
    let ps = points(&mut d);
    let before = health(&mut d)["requests"].as_u64().unwrap();
    check_values(&ps, &read_all(&mut d, ps.len()));
    assert_eq!(health(&mut d)["requests"].as_u64().unwrap() - before, 24);
}

#[test]
fn max_apdu_limits_the_size_of_rpm_requests() {
    // The configured max_apdu bounds the requests: 11 bytes per object (present value and
    // status flags) fit 11 objects in 128 bytes, so two RPMs; the device segments the answers.
    let peer = Peer::start(&[]);
    let mut d = peer.open(json!({"max_apdu": 128}));
    let ps = points(&mut d);
    let before = health(&mut d)["requests"].as_u64().unwrap();
    check_values(&ps, &read_all(&mut d, ps.len()));
    assert_eq!(health(&mut d)["requests"].as_u64().unwrap() - before, 2);
    // A device that announces 128 bytes and cannot segment: the answers must fit 128 bytes too
    // (at most 29 bytes per object, so 4 objects per RPM).
    let peer = Peer::start(&["--max-apdu", "128", "--no-segmentation"]);
    let mut d = peer.open(json!({}));
    let ps = points(&mut d);
    assert_eq!(health(&mut d)["max_apdu"], 128);
    let before = health(&mut d)["requests"].as_u64().unwrap();
    check_values(&ps, &read_all(&mut d, ps.len()));
    assert_eq!(health(&mut d)["requests"].as_u64().unwrap() - before, 3);
}

#[test]
fn status_flags_become_qualities() {
    let mut peer = Peer::start(&[
        "--fault",
        "analog-input,2",
        "--out-of-service",
        "binary-input,1",
        "--overridden",
        "analog-output,1",
    ]);
    for use_rpm in [true, false] {
        let mut d = peer.open(json!({"use_rpm": use_rpm}));
        let ps = points(&mut d);
        let s = read_all(&mut d, ps.len());
        let q = |a: &str| s[index(&ps, a) as usize].quality;
        assert_eq!(q("analog-input,2"), QUALITY_BAD_DEVICE_FAILURE, "fault, rpm {use_rpm}");
        assert_eq!(q("binary-input,1"), QUALITY_BAD_OUT_OF_SERVICE, "out of service, rpm {use_rpm}");
        assert_eq!(q("analog-output,1"), QUALITY_GOOD_LOCAL_OVERRIDE, "overridden, rpm {use_rpm}");
        assert_eq!(q("analog-input,1"), QUALITY_GOOD);
        // The values are still there.
        assert_eq!(s[index(&ps, "analog-input,2") as usize].value, 45.0);
    }
    // Changed on the device's side: the next read follows.
    peer.command("flags analog-input,2 normal");
    peer.command("flags analog-input,1 fault");
    let mut d = peer.open(json!({}));
    let ps = points(&mut d);
    let s = read_all(&mut d, ps.len());
    assert_eq!(s[index(&ps, "analog-input,2") as usize].quality, QUALITY_GOOD);
    assert_eq!(s[index(&ps, "analog-input,1") as usize].quality, QUALITY_BAD_DEVICE_FAILURE);
}

#[test]
fn writes_at_priority_8_and_relinquish_return_to_the_default() {
    let peer = Peer::start(&[]);
    let mut d = peer.open(json!({}));
    let ps = points(&mut d);
    for (address, value, default) in [
        ("analog-output,1", 55.5, 10.0),
        ("analog-value,1", 19.25, 22.0),
        ("binary-output,1", 1.0, 0.0),
        ("binary-value,1", 0.0, 1.0),
        ("multi-state-output,1", 3.0, 1.0),
        ("multi-state-value,1", 2.0, 1.0),
    ] {
        let i = index(&ps, address);
        d.write(i, value, 8).unwrap_or_else(|e| panic!("{address}: {e:?}"));
        assert_eq!(read_one(&mut d, i).value, value, "{address} after writing {value} at 8");
        // A lower priority does not win over 8.
        d.write(i, default, 16).unwrap();
        assert_eq!(read_one(&mut d, i).value, value, "{address}: priority 16 under 8");
        d.relinquish(i, 16).unwrap();
        d.relinquish(i, 8).unwrap();
        assert_eq!(read_one(&mut d, i).value, default, "{address} after relinquishing 8");
    }
}

#[test]
fn refused_writes_are_device_errors_naming_the_bacnet_error() {
    let mut peer = Peer::start(&[]);
    let mut d = peer.open(json!({}));
    let ps = points(&mut d);
    // A value of the wrong type: bacpypes3 rejects it (invalid-tag) rather than answering
    // property/invalid-data-type; either way the device refused it.
    let ao = ObjectId::new(object_type::ANALOG_OUTPUT, 1);
    let e = d
        .session_mut()
        .write_property(ao, property::PRESENT_VALUE, &Value::CharacterString("fast".into()), Some(8))
        .unwrap_err();
    assert_eq!(e.status, STATUS_DEVICE, "{e:?}");
    assert!(e.message.contains("rejected") && e.message.contains("invalid-tag"), "{}", e.message);
    let e = d.session_mut().write_property(ao, property::PRESENT_VALUE, &Value::Enumerated(1), Some(8)).unwrap_err();
    assert_eq!(e.status, STATUS_DEVICE, "{e:?}");
    // An Error PDU: the point's object is gone from the device.
    peer.command("delete analog-output,1");
    let e = d.write(index(&ps, "analog-output,1"), 5.0, 8).unwrap_err();
    assert_eq!(e.status, STATUS_DEVICE, "{e:?}");
    assert!(e.message.contains("object/unknown-object"), "{}", e.message);
    assert_eq!(d.relinquish(index(&ps, "analog-output,1"), 8).unwrap_err().status, STATUS_DEVICE);
    // What the plugin refuses itself: read-only points, values the kind cannot take, priorities.
    assert_eq!(d.write(index(&ps, "analog-input,1"), 1.0, 8).unwrap_err().status, STATUS_UNSUPPORTED);
    assert_eq!(d.write(index(&ps, "analog-value,2"), 1.0, 8).unwrap_err().status, STATUS_UNSUPPORTED);
    assert_eq!(d.write(index(&ps, "binary-output,1"), 0.5, 8).unwrap_err().status, STATUS_INVALID);
    assert_eq!(d.write(index(&ps, "multi-state-output,1"), 0.0, 8).unwrap_err().status, STATUS_INVALID);
    assert_eq!(d.write(index(&ps, "analog-value,1"), f64::NAN, 8).unwrap_err().status, STATUS_INVALID);
    assert_eq!(d.write(index(&ps, "analog-value,1"), 1.0, 0).unwrap_err().status, STATUS_INVALID);
    assert_eq!(d.write(index(&ps, "analog-value,1"), 1.0, 17).unwrap_err().status, STATUS_INVALID);
    assert_eq!(d.write(99, 1.0, 8).unwrap_err().status, STATUS_INVALID);
}

#[test]
fn unknown_objects_read_as_bad_config_error_for_that_point_only() {
    let mut peer = Peer::start(&[]);
    let mut rpm = peer.open(json!({}));
    let mut rp = peer.open(json!({"use_rpm": false}));
    let ps = points(&mut rpm);
    points(&mut rp);
    peer.command("delete analog-value,2");
    let av2 = index(&ps, "analog-value,2") as usize;
    for (d, what) in [(&mut rpm, "rpm"), (&mut rp, "rp")] {
        let s = read_all(d, ps.len());
        assert!(s[av2].value.is_nan(), "{what}");
        assert_eq!(s[av2].quality, QUALITY_BAD_CONFIG_ERROR, "{what}");
        for (i, s) in s.iter().enumerate() {
            if i != av2 {
                assert_eq!(s.quality, QUALITY_GOOD, "{what}: point {i}");
            }
        }
        // The deleted object alone: RPM of only unknown objects is an error for the whole request.
        let one = read_one(d, av2 as u32);
        assert_eq!((one.value.is_nan(), one.quality), (true, QUALITY_BAD_CONFIG_ERROR), "{what}");
    }
}

#[test]
fn a_device_that_stops_answering_is_unreachable_within_the_timeout() {
    let mut peer = Peer::start(&[]);
    let mut d = peer.open(json!({"timeout_ms": 200, "retries": 1}));
    let ps = points(&mut d);
    peer.child.kill().unwrap();
    peer.child.wait().unwrap();
    let started = Instant::now();
    let idx: Vec<u32> = (0..ps.len() as u32).collect();
    let mut out = vec![Sample::new(0, f64::NAN, QUALITY_BAD); ps.len()];
    let e = d.read(&idx, &mut out).unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.status, STATUS_UNREACHABLE, "{e:?}");
    assert!(took >= Duration::from_millis(400) && took < Duration::from_millis(1500), "{took:?}");
    let h = health(&mut d);
    assert_eq!(h["connected"], false);
    assert_eq!(h["timeouts"], 1);
    assert_eq!(d.write(index(&ps, "analog-output,1"), 1.0, 8).unwrap_err().status, STATUS_UNREACHABLE);
}

#[test]
fn nothing_is_sent_before_points_and_a_wrong_instance_is_named() {
    let peer = Peer::start(&[]);
    // open does no I/O: a device that does not exist opens fine.
    let mut nobody = Bacnet::open(
        br#"{"ip_address": "127.0.0.1", "port": 9, "device_instance": 1, "timeout_ms": 100, "retries": 0}"#,
    )
    .unwrap();
    assert_eq!(health(&mut nobody)["requests"], 0);
    assert_eq!(nobody.points().unwrap_err().status, STATUS_UNREACHABLE);
    let mut d = peer.open(json!({"device_instance": 600}));
    let e = d.points().unwrap_err();
    assert_eq!(e.status, STATUS_DEVICE);
    assert!(e.message.contains("device_instance"), "{}", e.message);
}

#[test]
fn a_long_object_list_comes_segmented_and_is_read_in_batches() {
    let peer = Peer::start(&["--extra", "300"]);
    let mut d = peer.open(json!({}));
    let ps = points(&mut d);
    assert_eq!(ps.len(), 312);
    let h = health(&mut d);
    assert_eq!(h["segmentation"], true);
    // 314 object identifiers (with the device and network port objects) take more than 1476 bytes.
    assert!(h["segmented_answers"].as_u64().unwrap() >= 1, "{h}");
    let extra = index(&ps, "analog-value,399");
    assert_eq!(ps[extra as usize]["name"], "Extra 0299 with a name long enough to fill an APDU quickly");
    let before = health(&mut d)["requests"].as_u64().unwrap();
    let s = read_all(&mut d, ps.len());
    check_values(&ps, &s);
    assert_eq!(s[extra as usize].value, 299.0);
    let used = health(&mut d)["requests"].as_u64().unwrap() - before;
    assert!((2..=40).contains(&used), "{used} RPMs for 312 objects");
}

#[test]
fn a_device_that_cannot_segment_has_its_object_list_read_by_index() {
    let peer = Peer::start(&["--extra", "300", "--no-segmentation"]);
    let mut d = peer.open(json!({}));
    let ps = points(&mut d);
    assert_eq!(ps.len(), 312);
    let h = health(&mut d);
    assert_eq!(h["segmentation"], false);
    assert_eq!(h["segmented_answers"], 0, "{h}");
    assert_eq!(
        ps[index(&ps, "analog-value,250") as usize]["name"],
        "Extra 0150 with a name long enough to fill an APDU quickly"
    );
    check_values(&ps, &read_all(&mut d, ps.len()));
}

/// Samples pushed by the plugin, in a channel.
fn sink() -> (t3_plugin_bacnet::cov::Sink, Receiver<Sample>) {
    let (tx, rx) = channel();
    let tx = Mutex::new(tx);
    (
        Arc::new(move |samples: &[Sample]| {
            let tx = tx.lock().unwrap();
            for s in samples {
                let _ = tx.send(*s);
            }
        }),
        rx,
    )
}

/// Waits for a sample of `point` with `value`.
fn wait_for(rx: &Receiver<Sample>, point: u32, value: f64, within: Duration) -> Sample {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(s) if s.point == point && (s.value - value).abs() < 1e-4 => return s,
            Ok(_) => {}
            Err(e) => panic!("no sample of point {point} = {value} within {within:?}: {e}"),
        }
    }
}

#[test]
fn cov_pushes_changes_made_on_the_device() {
    for confirmed in [false, true] {
        let mut peer = Peer::start(&[]);
        let mut d = peer.open(json!({"cov_lifetime_secs": 60, "cov_confirmed": confirmed}));
        let ps = points(&mut d);
        let ai1 = index(&ps, "analog-input,1");
        let bi1 = index(&ps, "binary-input,1");
        let msi = index(&ps, "multi-state-input,1");
        let (tx, rx) = sink();
        d.subscribe_with(&[ai1, bi1, msi], tx).unwrap();
        // The device sends the current values when subscribed.
        let first = wait_for(&rx, ai1, 21.5, Duration::from_secs(5));
        assert_eq!(first.quality, QUALITY_GOOD);
        assert!(first.ts_us > 0);
        peer.command("set analog-input,1 25.25");
        wait_for(&rx, ai1, 25.25, Duration::from_secs(5));
        peer.command("set binary-input,1 active");
        wait_for(&rx, bi1, 1.0, Duration::from_secs(5));
        peer.command("flags analog-input,1 out-of-service");
        let s = wait_for(&rx, ai1, 25.25, Duration::from_secs(5));
        assert_eq!(s.quality, QUALITY_BAD_OUT_OF_SERVICE, "confirmed {confirmed}");
        // Requests keep working next to the subscription (separate sockets).
        assert_eq!(read_one(&mut d, ai1).value, 25.25);
        let h = health(&mut d);
        assert!(h["cov"]["subscribed"].as_u64().unwrap() >= 2, "{h}");
        assert!(h["cov"]["notifications"].as_u64().unwrap() >= 3, "{h}");
        // Closing stops the thread promptly.
        let started = Instant::now();
        drop(d);
        assert!(started.elapsed() < Duration::from_secs(1), "close took {:?}", started.elapsed());
    }
}

#[test]
fn subscriptions_are_renewed_before_they_expire() {
    let mut peer = Peer::start(&[]);
    let mut d = peer.open(json!({"cov_lifetime_secs": 3}));
    let ps = points(&mut d);
    let av1 = index(&ps, "analog-value,1");
    let (tx, rx) = sink();
    d.subscribe_with(&[av1], tx).unwrap();
    wait_for(&rx, av1, 22.0, Duration::from_secs(5));
    // Renewed at 2/3 of 3 s: after two renewals the first lifetime has long run out, and the
    // device still notifies.
    let deadline = Instant::now() + Duration::from_secs(10);
    while health(&mut d)["cov"]["renewals"].as_u64().unwrap() < 2 {
        assert!(Instant::now() < deadline, "no renewals: {}", health(&mut d));
        let _ = rx.recv_timeout(Duration::from_millis(200));
    }
    peer.command("set analog-value,1 23.5");
    wait_for(&rx, av1, 23.5, Duration::from_secs(5));
}

#[test]
fn subscribe_is_unsupported_when_cov_is_off() {
    let peer = Peer::start(&[]);
    let mut d = peer.open(json!({"cov": false}));
    let ps = points(&mut d);
    let (tx, _rx) = sink();
    assert_eq!(d.subscribe_with(&[0, 1], tx).unwrap_err().status, STATUS_UNSUPPORTED);
    assert_eq!(ps.len(), 12);
}

#[test]
fn the_library_exports_its_declaration() {
    let decl = t3_plugin_bacnet::t3000_plugin_declare();
    assert!(!decl.is_null());
    let described: Json = serde_json::from_str(&Bacnet::describe()).unwrap();
    assert_eq!(described["title"], "BACnet/IP");
    let e = Bacnet::check_config(br#"{"ip_address": "127.0.0.1", "device_instance": 1, "slave_id": 1}"#).unwrap_err();
    assert_eq!(e.status, STATUS_CONFIG);
    assert!(e.message.contains("slave_id"));
}
