//! The BACnet/IP plugin end to end, with the real binary and the real plugin library
//! (`libt3_plugin_bacnet.so`, copied into a plugin folder) against a BACnet/IP device we did not
//! write: bacpypes3 (`plugins/bacnet/tests/peer/device.py`) on 127.0.0.1 at a free port. Through
//! HTTP (and the CLI): discovery (`POST /devices/discover`, `t3000 discover --bacnet`), adding the
//! device found, its objects as points with names, units and states, history, writes through the
//! arbiter at BACnet priorities with relinquish and the device's range, a change made on the device
//! arriving by COV when polling is far off, the ReadProperty fallback, status flags as qualities,
//! and a device that stops answering going offline.
//!
//! Needs `$T3000_PYTHON` (default `$HOME/.cache/t3000/venv/bin/python`) with bacpypes3 (`.ci/run`
//! installs it) and the plugin (`cargo build --release -p t3-plugin-bacnet`, or
//! `$T3000_BACNET_PLUGIN`); fails, never skips, without them.

use crate::plugins::{device, named, plugins_toml, points_of, root, wait_state};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;
use t3_tests::*;

const INSTANCE: u32 = 599;

fn python() -> String {
    std::env::var("T3000_PYTHON")
        .unwrap_or_else(|_| format!("{}/.cache/t3000/venv/bin/python", std::env::var("HOME").unwrap_or_default()))
}

/// The BACnet/IP plugin, built by cargo beside the test executables.
fn bacnet_plugin() -> PathBuf {
    if let Some(p) = std::env::var_os("T3000_BACNET_PLUGIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let lib = exe.parent().unwrap().join("..").join("libt3_plugin_bacnet.so");
    assert!(lib.is_file(), "build it first: cargo build --release -p t3-plugin-bacnet ({})", lib.display());
    lib
}

/// A plugin folder holding the BACnet/IP plugin.
fn plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(bacnet_plugin(), dir.path().join("libt3_plugin_bacnet.so")).unwrap();
    dir
}

/// A bacpypes3 device in a child process, on 127.0.0.1 at a free port.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    port: u16,
}

impl Peer {
    fn start(args: &[&str]) -> Peer {
        // A free port: bound and released (the device binds it right after); never 47808.
        let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = root().join("plugins/bacnet/tests/peer/device.py");
        let mut child = Command::new(python())
            .arg(&script)
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

    /// Changes the device from its own side and waits for its "ok".
    fn command(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        let answer = self.line(Duration::from_secs(10));
        assert!(answer.starts_with("ok "), "{cmd}: {answer}");
    }

    /// Kills the device: it stops answering.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `[plugins]` with `dir`, and a collector that gives up on a silent device quickly.
fn server_toml(dir: &Path) -> String {
    format!(
        "{}[collector]\noffline_after_failures = 2\nbackoff_initial_ms = 100\nbackoff_max_ms = 500\n",
        plugins_toml(dir, 5000)
    )
}

fn id_of(points: &[Value], name: &str) -> u64 {
    named(points, name)["id"].as_u64().unwrap()
}

/// GET /points/{id}/value, or null before the first sample.
async fn latest(server: &TestServer, id: u64) -> Value {
    let r = server.get(&format!("/api/t3000/points/{id}/value")).await;
    if r.status == StatusCode::NOT_FOUND { Value::Null } else { r.ok_json() }
}

async fn samples(server: &TestServer, id: u64, filter: &str) -> i64 {
    let rows = server.sql(&format!("SELECT count(*) FROM samples WHERE point_id = {id} {filter}")).await;
    rows[0][0].as_i64().unwrap_or(0)
}

/// The objects of device.py and what the server makes of them: point name, object, units, kind.
const OBJECTS: [(&str, &str, &str, &str); 12] = [
    // analog-input,3 shares its name with analog-input,1: both get their object appended.
    ("Zone Temp (analog-input,1)", "analog-input,1", "°C", "analog"),
    ("Supply RH", "analog-input,2", "%RH", "analog"),
    ("Zone Temp (analog-input,3)", "analog-input,3", "°F", "analog"),
    ("Damper", "analog-output,1", "%", "analog"),
    ("Setpoint", "analog-value,1", "°C", "analog"),
    ("Offset", "analog-value,2", "ΔK", "analog"),
    ("Fan Status", "binary-input,1", "", "digital"),
    ("Fan Cmd", "binary-output,1", "", "digital"),
    ("Occupied", "binary-value,1", "", "digital"),
    ("Mode", "multi-state-input,1", "", "multistate"),
    ("Speed", "multi-state-output,1", "", "multistate"),
    ("Season", "multi-state-value,1", "", "multistate"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bacnet_device_is_discovered_added_polled_written_and_followed_by_cov() {
    let mut peer = Peer::start(&[]);
    let dir = plugin_dir();
    let port = peer.port.to_string();

    // The CLI finds it through the plugin (one JSON line, with the config that adds it) ...
    let dir_arg = dir.path().display().to_string();
    let cli = [
        "discover",
        "--bacnet",
        "--broadcast",
        "127.0.0.1",
        "--bacnet-port",
        &port,
        "--timeout-ms",
        "1000",
        "--plugin-dir",
        &dir_arg,
    ];
    let out = run(&cli);
    assert!(out.status.success(), "{}", out.stderr);
    let lines: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    let expected_config =
        json!({"protocol": "bacnet-ip", "ip_address": "127.0.0.1", "port": peer.port, "device_instance": INSTANCE});
    assert_eq!(
        lines[0],
        json!({"protocol": "bacnet-ip", "name": "T3 Test Device", "address": format!("127.0.0.1:{port}"),
               "model": "bacpypes3 peer", "vendor": "t3000 tests", "config": expected_config}),
    );
    // ... a device instance range without it finds nothing ...
    let mut range = cli.to_vec();
    range.extend(["--low", "600", "--high", "700"]);
    let out = run(&range);
    assert!(out.status.success() && out.stdout.trim().is_empty(), "{out:?}");
    // ... and without the plugin it says which folders it searched.
    let empty = tempfile::tempdir().unwrap();
    let empty_arg = empty.path().display().to_string();
    let mut unserved = cli.to_vec();
    *unserved.last_mut().unwrap() = &empty_arg;
    let out = run(&unserved);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains("no loaded plugin serves protocol \"bacnet-ip\"") && out.stderr.contains(&empty_arg),
        "{}",
        out.stderr
    );

    let server = TestServer::start(&server_toml(dir.path()));
    // The API finds it too.
    let options = json!({"broadcast": "127.0.0.1", "port": peer.port, "timeout_ms": 1000});
    let found = server
        .post_json("/api/t3000/devices/discover", &json!({"protocol": "bacnet-ip", "options": options}))
        .await
        .ok_json();
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0]["found"];
    assert_eq!(
        (&f["name"], &f["model"], &f["vendor"]),
        (&json!("T3 Test Device"), &json!("bacpypes3 peer"), &json!("t3000 tests"))
    );
    assert_eq!(f["config"], expected_config);
    assert_eq!(found[0]["known_device_id"], Value::Null);

    // Added with the config found and a name; polling is far off (10 minutes), so what changes
    // later can only arrive by COV.
    let mut body = f["config"].clone();
    body["name"] = "ahu".into();
    body["poll_interval_ms"] = 600_000.into();
    body["timeout_ms"] = 1000.into();
    let created = server.post_json("/api/t3000/devices", &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let id = created.json()["id"].clone();
    let d = wait_state(&server, "ahu", "online").await;
    assert_eq!(d["protocol"], "bacnet-ip");
    let again = server
        .post_json("/api/t3000/devices/discover", &json!({"protocol": "bacnet-ip", "options": options}))
        .await
        .ok_json();
    assert_eq!(again[0]["known_device_id"], id, "the device added is known: {again:#}");

    // Its objects are its points: named after the objects, with units, kinds, objects and states.
    let listed = server.get(&format!("/api/t3000/devices/{id}/points")).await.ok_json();
    let dpoints = listed["points"].as_array().unwrap();
    assert_eq!(dpoints.len(), OBJECTS.len(), "{dpoints:#?}");
    for (name, object, units, kind) in OBJECTS {
        let p = named(dpoints, name);
        assert_eq!(
            (&p["object"], &p["encoding"], &p["register_kind"]),
            (&json!(object), &json!(kind), &json!("plugin"))
        );
        assert_eq!(p["unit"].as_str().unwrap_or(""), units, "{p}");
    }
    assert_eq!(named(dpoints, "Fan Status")["states"], json!(["Off", "On"]));
    assert_eq!(named(dpoints, "Mode")["states"], json!(["Off", "Heat", "Cool", "Auto"]));
    assert_eq!(named(dpoints, "Season")["states"], json!(["Winter", "Summer"]));
    assert_eq!((&named(dpoints, "Setpoint")["min"], &named(dpoints, "Setpoint")["max"]), (&json!(5.0), &json!(35.0)));
    assert_eq!(named(dpoints, "Setpoint")["writable"], true);
    assert_eq!(named(dpoints, "Offset")["writable"], false, "analog-value,2 is not commandable");

    let points = points_of(&server, &id).await;
    assert_eq!(points.len(), OBJECTS.len(), "{points:#?}");
    for (name, _, units, _) in OBJECTS {
        assert_eq!(named(&points, name)["units"], units, "{}", named(&points, name));
    }
    // The first poll's values, good.
    poll_until("the first values", Duration::from_secs(20), || async {
        points_of(&server, &id).await.iter().all(|p| p["has_value"] == true)
    })
    .await;
    let points = points_of(&server, &id).await;
    for (name, value) in [
        ("Zone Temp (analog-input,1)", 21.5),
        ("Supply RH", 45.0),
        ("Fan Status", 0.0),
        ("Occupied", 1.0),
        ("Mode", 2.0),
    ] {
        let p = named(&points, name);
        assert_eq!((&p["value"], &p["quality"]), (&json!(value), &json!("good")), "{p}");
    }
    // What the plugin says of its kinds and states, GET /points says too: digital points are
    // digital (drawn as steps), states are the range's name.
    let fan = named(&points, "Fan Status");
    assert_eq!(
        (&fan["digital"], &fan["range_name"], &fan["trend"]["line"]),
        (&json!(true), &json!("Off/On"), &json!("step")),
        "{fan}"
    );
    let mode = named(&points, "Mode");
    assert_eq!((&mode["digital"], &mode["range_name"]), (&json!(false), &json!("Off/Heat/Cool/Auto")), "{mode}");
    let zone = named(&points, "Zone Temp (analog-input,1)");
    assert_eq!((&zone["digital"], &zone["range_name"]), (&json!(false), &Value::Null), "{zone}");

    // History is stored.
    let rh = id_of(&points, "Supply RH");
    poll_until("Supply RH in history", Duration::from_secs(20), || async { samples(&server, rh, "").await >= 1 }).await;

    // COV: a change made on the device reaches the point's latest value with no poll due.
    let polls = device(&server, "ahu").await["status"]["polls"].clone();
    peer.command("set analog-input,2 47");
    poll_until("the pushed Supply RH 47", Duration::from_secs(20), || async {
        latest(&server, rh).await["value"] == 47.0
    })
    .await;
    assert_eq!(device(&server, "ahu").await["status"]["polls"], polls, "no poll brought it");
    poll_until("the pushed value in history", Duration::from_secs(20), || async {
        samples(&server, rh, "AND value = 47").await >= 1
    })
    .await;

    // Writes go through the arbiter at BACnet priorities and read back what wins at the device.
    let sp = id_of(&points, "Setpoint");
    let write = |value: f64, priority: u8| {
        let server = &server;
        async move {
            server
                .post_json(&format!("/api/t3000/points/{sp}/value"), &json!({"value": value, "priority": priority}))
                .await
        }
    };
    let relinquish = |priority: u8| {
        let server = &server;
        async move {
            server
                .post_json(&format!("/api/t3000/points/{sp}/relinquish"), &json!({"priority": priority}))
                .await
                .ok_json()
        }
    };
    let w = write(24.0, 8).await.ok_json();
    assert_eq!(w["read_back"], 24.0, "{w}");
    let w = write(19.0, 15).await.ok_json();
    assert_eq!(w["read_back"], 24.0, "priority 15 does not win over 8: {w}");
    let r = relinquish(8).await;
    assert_eq!(r["read_back"], 19.0, "with 8 relinquished, 15 wins: {r}");
    let r = relinquish(15).await;
    assert_eq!(r["read_back"], 22.0, "with every slot empty, the relinquish default: {r}");
    // Values outside what the device states are refused before it is asked.
    write(36.0, 8).await.assert_client_error("above the Setpoint's max-pres-value 35");
    write(4.0, 8).await.assert_client_error("below the Setpoint's min-pres-value 5");
    let occupied = id_of(&points, "Occupied");
    server
        .post_json(&format!("/api/t3000/points/{occupied}/value"), &json!({"value": 2, "priority": 8}))
        .await
        .assert_client_error("a binary value other than 0 / 1");
    let season = id_of(&points, "Season");
    server
        .post_json(&format!("/api/t3000/points/{season}/value"), &json!({"value": 3, "priority": 8}))
        .await
        .assert_client_error("a state past the Season's two");
    let w = server
        .post_json(&format!("/api/t3000/points/{season}/value"), &json!({"value": 2, "priority": 8}))
        .await
        .ok_json();
    assert_eq!(w["read_back"], 2.0, "{w}");
    assert_eq!(latest(&server, sp).await["value"], 22.0);
    assert_eq!(server.health().await["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bacnet_device_without_rpm_is_polled_with_its_faults_and_goes_offline_when_it_stops_answering() {
    let mut peer = Peer::start(&["--no-rpm", "--fault", "analog-input,2"]);
    let dir = plugin_dir();
    let extra = format!(
        "{}\n[[devices]]\nname = \"rp\"\nprotocol = \"bacnet-ip\"\nip_address = \"127.0.0.1\"\nport = {}\n\
         device_instance = {INSTANCE}\npoll_interval_ms = 200\ntimeout_ms = 2000\n",
        server_toml(dir.path()),
        peer.port
    );
    let server = TestServer::start(&extra);
    let d = wait_state(&server, "rp", "online").await;
    let points = points_of(&server, &d["id"]).await;
    assert_eq!(points.len(), OBJECTS.len(), "ReadProperty reads the whole object list: {points:#?}");
    let (zone, rh) = (id_of(&points, "Zone Temp (analog-input,1)"), id_of(&points, "Supply RH"));

    // Polled with ReadProperty: values arrive, again and again.
    poll_until("polled samples", Duration::from_secs(20), || async { samples(&server, zone, "").await >= 3 }).await;
    let v = latest(&server, zone).await;
    assert_eq!((&v["value"], &v["quality_name"]), (&json!(21.5), &json!("good")), "{v}");
    // The fault flag of analog-input,2 is a bad quality.
    let v = latest(&server, rh).await;
    assert_eq!(v["quality_name"], "bad/device_failure", "{v}");
    assert_eq!(named(&points_of(&server, &d["id"]).await, "Supply RH")["quality"], "bad/device_failure");
    // A change on the device is polled in.
    peer.command("set analog-input,1 23.25");
    poll_until("the polled change", Duration::from_secs(20), || async {
        latest(&server, zone).await["value"] == 23.25
    })
    .await;

    // The device stops answering: offline, bad-quality samples, the server goes on.
    let good_before = samples(&server, zone, "").await;
    peer.kill();
    let d = wait_state(&server, "rp", "offline").await;
    assert!(d["status"]["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{d:#}");
    poll_until("bad-quality samples of the silent device", Duration::from_secs(20), || async {
        let v = latest(&server, zone).await;
        v["quality_name"].as_str().is_some_and(|q| q.starts_with("bad")) && v["value"].is_null()
    })
    .await;
    poll_until("bad samples in history", Duration::from_secs(20), || async {
        samples(&server, zone, "AND quality < 64").await >= 1
    })
    .await;
    assert!(samples(&server, zone, "").await > good_before);
    assert_eq!(server.health().await["status"], "ok");
}
