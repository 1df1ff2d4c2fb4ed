//! The server's own faults reach the on-call, end to end: two simulated T3 controllers (one
//! `t3000 simulate` each, so that one stops while the other answers), programs that divide by
//! zero, and a webhook receiver that keeps what it gets. Each device that stops answering is
//! notified, also the second one while the devices-offline alarm is on and acknowledged (which
//! then needs a new acknowledgement); one that answers again while the other does not is
//! published; the end of the alarm says that every device answers again instead of repeating the
//! fault. Each program in error is notified, and a restart with the programs still in error sends
//! nothing about them (no clear, no raise).

use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::Duration;
use t3_tests::system_alarm::{DEVICES_OFFLINE, PROGRAM_ERROR};
use t3_tests::webhook::Hit;
use t3_tests::*;

const WAIT: Duration = Duration::from_secs(30);

/// A `[[devices]]` table for the simulated T3 controller `name` at `127.0.0.1:port`.
fn device(name: &str, port: u16) -> String {
    format!(
        "[[devices]]\nname = \"{name}\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = {port}\nunit_id = 1\nprofile = \"T3-controller\"\npoll_interval_ms = 200\n"
    )
}

/// A simulated T3 controller listening on `port` (0: any free port).
fn controller(port: u16) -> Sim {
    simulate(&["--listen", &format!("127.0.0.1:{port}"), "--count", "1"])
}

/// What the webhook was told about alarm `id`, in order: `(event, state, message)`.
fn notified(hits: &Mutex<Vec<Hit>>, id: i64) -> Vec<(String, String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    hits.lock()
        .unwrap()
        .iter()
        .flat_map(|h| h.json()["alarms"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["rule_id"] == json!(id))
        .map(|a| (text(&a["event"]), text(&a["state"]), text(&a["message"])))
        .collect()
}

/// Waits for the next notification about alarm `id` (the one after the `seen` first ones) and
/// checks it is `(event, state, message)`; `seen` counts it.
async fn next_notified(hits: &Mutex<Vec<Hit>>, id: i64, seen: &mut usize, want: (&str, &str, &str)) {
    let what = format!("notification {} of alarm {id}: {want:?}", *seen + 1);
    poll_until(&what, WAIT, || async { notified(hits, id).len() > *seen }).await;
    let got = notified(hits, id)[*seen].clone();
    assert_eq!((got.0.as_str(), got.1.as_str(), got.2.as_str()), want, "{what}; all: {:#?}", notified(hits, id));
    *seen += 1;
}

/// Alarm `id` as `GET /alarms` lists it.
async fn listed(server: &TestServer, id: i64) -> Option<Value> {
    let open = server.get("/api/t3000/alarms").await.ok_json();
    open.as_array().expect("a list").iter().find(|a| a["rule_id"] == json!(id)).cloned()
}

async fn online(server: &TestServer, name: &str) -> bool {
    server.get(&format!("/api/t3000/devices/{name}")).await.ok_json()["online"] == true
}

async fn program(server: &TestServer, id: i64) -> Value {
    server.get(&format!("/api/t3000/programs/{id}")).await.ok_json()
}

/// Creates an enabled program on `device`; its id.
async fn create_program(server: &TestServer, device: i64, name: &str, source: &str) -> i64 {
    let body = json!({"name": name, "device_id": device, "enabled": true, "source": source});
    let r = server.post_json("/api/t3000/programs", &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["id"].as_i64().expect("the program's id")
}

async fn acknowledge(server: &TestServer, id: i64) {
    let ack = server.post_json(&format!("/api/t3000/alarms/{id}/ack"), &json!({})).await.ok_json();
    assert_eq!(ack["transition"]["to"], json!("acknowledged"), "{}", pretty(&ack));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_new_system_fault_is_notified_its_end_says_so_and_a_restart_sends_nothing() {
    let (hook, hits) = webhook::receiver(false).await;
    let mut ahu1 = controller(0);
    let mut ahu2 = controller(0);
    let (port1, port2) = (port_of(&ahu1.tcp), port_of(&ahu2.tcp));
    let extra = format!(
        r#"
[collector]
offline_after_failures = 2
backoff_initial_ms = 100
backoff_max_ms = 500

[programs]
scan_ms = 200

[alerts]
digest_after = 1000

[[alerts.webhook]]
name = "on-call"
url = "http://127.0.0.1:{hook}/hook"
events = ["raised", "level_changed", "cleared", "acknowledged"]
backoff_ms = 100

{}
{}
"#,
        device("ahu-1", port1),
        device("ahu-2", port2)
    );
    let mut server = TestServer::start(&extra);
    let srv = &server;
    poll_until("both controllers online", WAIT, || async { online(srv, "ahu-1").await && online(srv, "ahu-2").await })
        .await;
    let mut offline = 0;

    // ahu-1 stops answering: notified. Acknowledged.
    drop(ahu1);
    next_notified(&hits, DEVICES_OFFLINE, &mut offline, ("raised", "active", "1 device(s) do not answer: ahu-1")).await;
    acknowledge(&server, DEVICES_OFFLINE).await;
    next_notified(
        &hits,
        DEVICES_OFFLINE,
        &mut offline,
        ("acknowledged", "acknowledged", "1 device(s) do not answer: ahu-1"),
    )
    .await;

    // ahu-2 stops too: a new fault, notified, and nobody has acknowledged it.
    drop(ahu2);
    let both = "2 device(s) do not answer: ahu-1, ahu-2 (new: ahu-2)";
    next_notified(&hits, DEVICES_OFFLINE, &mut offline, ("raised", "active", both)).await;
    let alarm = listed(&server, DEVICES_OFFLINE).await.expect("listed");
    assert_eq!((&alarm["state"], &alarm["message"]), (&json!("active"), &json!(both)), "{}", pretty(&alarm));

    // ahu-1 answers again while ahu-2 does not: published, the alarm stays on.
    ahu1 = controller(port1);
    let back = "ahu-1 answers again; 1 device(s) do not answer: ahu-2";
    next_notified(&hits, DEVICES_OFFLINE, &mut offline, ("cleared", "active", back)).await;

    // ahu-2 too: the alarm clears, saying so rather than repeating the fault.
    ahu2 = controller(port2);
    let ended = "every device answers again";
    next_notified(&hits, DEVICES_OFFLINE, &mut offline, ("cleared", "cleared", ended)).await;
    let alarm = listed(&server, DEVICES_OFFLINE).await.expect("listed until acknowledged");
    assert_eq!((&alarm["state"], &alarm["message"]), (&json!("cleared"), &json!(ended)), "{}", pretty(&alarm));
    let history = server.get(&format!("/api/t3000/alarms/history?rule_id={DEVICES_OFFLINE}")).await.ok_json();
    let kinds: Vec<(String, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            (e["transition"]["kind"]["type"].as_str().unwrap().into(), e["transition"]["to"].as_str().unwrap().into())
        })
        .collect();
    let kinds: Vec<(&str, &str)> = kinds.iter().map(|(k, t)| (k.as_str(), t.as_str())).collect();
    assert_eq!(
        kinds,
        [
            ("raised", "active"),
            ("acknowledged", "acknowledged"),
            ("raised", "active"),
            ("cleared", "active"),
            ("cleared", "cleared")
        ],
        "{}",
        pretty(&history)
    );

    // Two programs divide by zero: each is notified; a third runs fine.
    let ahu = server.get("/api/t3000/devices/ahu-1").await.ok_json()["id"].as_i64().unwrap();
    let divider = create_program(&server, ahu, "divider", "10 A = 0\n20 VAR20 = 10 / A\n").await;
    let mut programs = 0;
    let first = format!("program {divider} \"divider\" line 20: division by zero");
    next_notified(&hits, PROGRAM_ERROR, &mut programs, ("raised", "active", &first)).await;
    let halver = create_program(&server, ahu, "halver", "10 B = 0\n30 VAR21 = 5 / B\n").await;
    let second =
        format!("{first}; program {halver} \"halver\" line 30: division by zero (new: program {halver} \"halver\")");
    next_notified(&hits, PROGRAM_ERROR, &mut programs, ("raised", "active", &second)).await;
    let counter = create_program(&server, ahu, "counter", "10 C = C + 1\n").await;

    // A restart with both still in error: nothing about them. The acknowledgement after the first
    // scans is the last thing the webhook hears about the alarm.
    server.stop();
    server.restart();
    let srv = &server;
    poll_until("the first scans after the restart", WAIT, || async {
        program(srv, divider).await["status"] == "error"
            && program(srv, halver).await["status"] == "error"
            && program(srv, counter).await["scans"].as_u64().unwrap_or_default() >= 2
    })
    .await;
    acknowledge(&server, PROGRAM_ERROR).await;
    next_notified(&hits, PROGRAM_ERROR, &mut programs, ("acknowledged", "acknowledged", &second)).await;
    assert_eq!(notified(&hits, PROGRAM_ERROR).len(), programs, "{:#?}", notified(&hits, PROGRAM_ERROR));
    assert_eq!(notified(&hits, DEVICES_OFFLINE).len(), offline, "{:#?}", notified(&hits, DEVICES_OFFLINE));
    let history = server.get(&format!("/api/t3000/alarms/history?rule_id={PROGRAM_ERROR}")).await.ok_json();
    let to: Vec<&str> =
        history.as_array().unwrap().iter().rev().map(|e| e["transition"]["to"].as_str().unwrap()).collect();
    assert_eq!(to, ["active", "active", "acknowledged"], "{}", pretty(&history));
    drop((ahu1, ahu2));
    server.stop();
}
