//! Hardware sync end to end: the real binary polls a simulated T3 controller (`t3000 simulate`); the
//! test renames points on the "device" by writing its registers over Modbus TCP (as T3000 would) and
//! on the server over the API, and checks `GET /devices/{id}/sync`, `t3000 sync` and applying with
//! each strategy: a device change arrives in the catalog, a server change is written to the device's
//! registers (read back here over Modbus), a second sync has nothing to do, and a change on both sides
//! is a conflict the strategy decides. Every applied change is in the audit log as `sync.apply`.

use crate::ws::point_of;
use serde_json::{Value, json};
use std::time::Duration;
use t3_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// First holding register of each T3 point record (T3000-REFERENCE: IN 11472, VAR 12944; 23 and 20
/// registers a record).
fn record_of(point: &str) -> u16 {
    let (first, size, n) = match point.split_at(point.find(|c: char| c.is_ascii_digit()).unwrap()) {
        ("IN", n) => (11472, 23, n),
        ("OUT", n) => (10000, 23, n),
        ("VAR", n) => (12944, 20, n),
        _ => panic!("{point}"),
    };
    first + (n.parse::<u16>().unwrap() - 1) * size
}

/// The first 15 registers of a record: a 21-byte description then a 9-byte label, NUL-padded,
/// two bytes a register, the first in the high half (the firmware's packed struct as it serves it).
fn text_words(label: &str, description: &str) -> Vec<u16> {
    let mut bytes = [0u8; 30];
    bytes[..description.len()].copy_from_slice(description.as_bytes());
    bytes[21..21 + label.len()].copy_from_slice(label.as_bytes());
    bytes.chunks(2).map(|b| u16::from_be_bytes([b[0], b[1]])).collect()
}

fn label_of(words: &[u16]) -> String {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    let label = &bytes[21..30];
    String::from_utf8_lossy(&label[..label.iter().position(|&b| b == 0).unwrap_or(9)]).into_owned()
}

async fn exchange(addr: &str, request: &[u8], answer_len: usize) -> Vec<u8> {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect to the simulator");
    s.write_all(request).await.unwrap();
    let mut answer = vec![0u8; answer_len];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut answer)).await.expect("an answer").unwrap();
    answer
}

/// Writes holding registers of unit 1 (function 16), as T3000 renames a point.
async fn modbus_write(addr: &str, register: u16, words: &[u16]) {
    let n = words.len() as u16;
    let mut frame = vec![0, 9, 0, 0];
    frame.extend_from_slice(&(7 + 2 * n).to_be_bytes());
    frame.extend_from_slice(&[1, 16]);
    frame.extend_from_slice(&register.to_be_bytes());
    frame.extend_from_slice(&n.to_be_bytes());
    frame.push((2 * n) as u8);
    frame.extend(words.iter().flat_map(|w| w.to_be_bytes()));
    let answer = exchange(addr, &frame, 12).await;
    assert_eq!(answer[7], 16, "write taken: {answer:?}");
}

/// Reads holding registers of unit 1 (function 03).
pub(crate) async fn modbus_read(addr: &str, register: u16, count: u16) -> Vec<u16> {
    let mut frame = vec![0, 8, 0, 0, 0, 6, 1, 3];
    frame.extend_from_slice(&register.to_be_bytes());
    frame.extend_from_slice(&count.to_be_bytes());
    let answer = exchange(addr, &frame, 9 + 2 * usize::from(count)).await;
    assert_eq!(answer[7], 3, "read answered: {answer:?}");
    answer[9..].chunks(2).map(|b| u16::from_be_bytes([b[0], b[1]])).collect()
}

async fn diff(server: &TestServer, strategy: &str) -> Value {
    server.get(&format!("/api/t3000/devices/ahu-1/sync?strategy={strategy}")).await.ok_json()
}

async fn apply(server: &TestServer, body: Value) -> Value {
    server.post_json("/api/t3000/devices/ahu-1/sync", &body).await.ok_json()
}

/// The rows of one point.
fn rows_of(report: &Value, point: &str) -> Vec<Value> {
    report["differences"].as_array().unwrap().iter().filter(|r| r["point"] == point).cloned().collect()
}

async fn label(server: &TestServer, id: u64) -> Value {
    server.get(&format!("/api/t3000/points/{id}")).await.ok_json()["label"].clone()
}

/// A simulated T3 controller and the server polling it as `ahu-1`, once it is online.
async fn ahu_online() -> (Sim, TestServer) {
    let sim = simulate(&["--listen", "127.0.0.1:0", "--count", "1"]);
    let server = TestServer::start(&simulated_ahu(port_of(&sim.tcp)));
    poll_until("ahu-1 online", Duration::from_secs(30), || async {
        server.get("/api/t3000/devices/ahu-1").await.ok_json()["online"] == true
    })
    .await;
    (sim, server)
}

fn cli_sync(server: &TestServer, args: &[&str]) -> Output {
    let url = server.url("");
    let mut cmd = command();
    cmd.args(["sync", "ahu-1", "--url", url.trim_end_matches('/')]).args(args).env("T3000_TOKEN", &server.token);
    run_cmd(&mut cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_sync_both_ways_incrementally_with_conflicts_decided_by_the_strategy() {
    let (sim, server) = ahu_online().await;
    let in1 = point_of(&server, "ahu-1", "IN1").await;
    let var1 = point_of(&server, "ahu-1", "VAR1").await;

    // First sync: the catalog has nothing of its own, so everything the panel has goes to the server.
    let first = diff(&server, "per_field").await;
    let in1_rows = rows_of(&first, "IN1");
    let label_row = in1_rows.iter().find(|r| r["field"] == "label").expect("IN1 label differs");
    assert_eq!(
        (&label_row["device"], &label_row["server"], &label_row["changed"], &label_row["direction"]),
        (&json!("ZN1 TEMP"), &Value::Null, &json!("device"), &json!("to_server")),
        "{label_row}"
    );
    let range_row = in1_rows.iter().find(|r| r["field"] == "range").expect("IN1 range differs");
    assert_eq!(range_row["device"], 1, "thermistor in °C: {range_row}");
    assert!(first["differences"].as_array().unwrap().iter().all(|r| r["direction"] == "to_server"));
    // Viewers and operators see the differences but apply nothing.
    let op = server.user_client("op", "operator").await;
    let refused = server.call(&op, reqwest::Method::POST, "/api/t3000/devices/ahu-1/sync", Some(&json!({}))).await;
    refused.assert_error("operator applies", StatusCode::FORBIDDEN, Some("forbidden"));
    let applied = apply(&server, json!({"strategy": "device_wins"})).await;
    assert_eq!(applied["applied"].as_array().unwrap().len(), first["differences"].as_array().unwrap().len());
    assert!(applied["applied"].as_array().unwrap().iter().all(|a| a["error"].is_null()), "{applied}");
    assert_eq!(label(&server, in1).await, "ZN1 TEMP");
    // A second sync has nothing to do.
    let again = diff(&server, "per_field").await;
    assert_eq!(again["differences"], json!([]), "{again}");
    assert!(again["last_synced_us"].as_i64().is_some());

    // Renamed on the device: the label arrives in the catalog, nothing else changes.
    modbus_write(&sim.tcp, record_of("IN1"), &text_words("ZN1 NEW", "Zone 1 temperature")).await;
    let report = diff(&server, "server_wins").await;
    let rows = report["differences"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{report}");
    assert_eq!(
        (&rows[0]["point"], &rows[0]["field"], &rows[0]["device"], &rows[0]["server"], &rows[0]["last_synced"]),
        (&json!("IN1"), &json!("label"), &json!("ZN1 NEW"), &json!("ZN1 TEMP"), &json!("ZN1 TEMP"))
    );
    // Only the device changed: it goes to the server even under server-wins.
    assert_eq!((&rows[0]["changed"], &rows[0]["direction"]), (&json!("device"), &json!("to_server")));
    // The CLI shows the same row.
    let out = cli_sync(&server, &[]);
    let text = &out.stdout;
    assert!(out.status.success(), "{text} {}", out.stderr);
    assert!(text.contains("1 field(s) differ") && text.contains("\"ZN1 NEW\"") && text.contains("to-server"), "{text}");
    let applied = apply(&server, json!({"strategy": "server_wins"})).await;
    assert_eq!(applied["applied"].as_array().unwrap().len(), 1, "{applied}");
    assert_eq!(label(&server, in1).await, "ZN1 NEW");

    // Renamed on the server: applied with the CLI, written to the device's registers.
    server.put_json(&format!("/api/t3000/points/{var1}"), &json!({"label": "SP ONE"})).await.ok_json();
    let rows = diff(&server, "per_field").await["differences"].clone();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!((&rows[0]["point"], &rows[0]["direction"]), (&json!("VAR1"), &json!("to_device")));
    let out = cli_sync(&server, &["--strategy", "server-wins", "--apply"]);
    let text = &out.stdout;
    assert!(out.status.success(), "{text} {}", out.stderr);
    assert!(text.contains("VAR1 label to-device \"SP ONE\": ok"), "{text}");
    assert_eq!(label_of(&modbus_read(&sim.tcp, record_of("VAR1"), 15).await), "SP ONE");
    assert_eq!(diff(&server, "per_field").await["differences"], json!([]));

    // Both sides changed: a conflict. Per field without a choice leaves it; server-wins writes it.
    modbus_write(&sim.tcp, record_of("IN1"), &text_words("DEV LBL", "Zone 1 temperature")).await;
    server.put_json(&format!("/api/t3000/points/{in1}"), &json!({"label": "SRV LBL"})).await.ok_json();
    let rows = diff(&server, "per_field").await["differences"].clone();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!((&rows[0]["changed"], &rows[0]["direction"]), (&json!("both"), &Value::Null));
    let left = apply(&server, json!({"strategy": "per_field"})).await;
    assert_eq!((left["applied"].as_array().unwrap().len(), left["unresolved"].as_array().unwrap().len()), (0, 1));
    assert_eq!(label_of(&modbus_read(&sim.tcp, record_of("IN1"), 15).await), "DEV LBL");
    let won = apply(&server, json!({"strategy": "server_wins"})).await;
    assert_eq!(won["applied"][0]["direction"], "to_device", "{won}");
    assert_eq!(label_of(&modbus_read(&sim.tcp, record_of("IN1"), 15).await), "SRV LBL");
    assert_eq!(label(&server, in1).await, "SRV LBL");

    // Again both; this time a per-field choice takes the device's.
    modbus_write(&sim.tcp, record_of("IN1"), &text_words("DEV TWO", "Zone 1 temperature")).await;
    server.put_json(&format!("/api/t3000/points/{in1}"), &json!({"label": "SRV TWO"})).await.ok_json();
    let chosen = apply(
        &server,
        json!({"strategy": "per_field", "choices": [{"point_id": in1, "field": "label", "direction": "to_server"}]}),
    )
    .await;
    assert_eq!(chosen["applied"][0]["value"], "DEV TWO", "{chosen}");
    assert_eq!(label(&server, in1).await, "DEV TWO");
    assert_eq!(diff(&server, "per_field").await["differences"], json!([]));

    // A choice for a point the device does not sync is refused.
    let bad = server
        .post_json(
            "/api/t3000/devices/ahu-1/sync",
            &json!({"choices": [{"point_id": 999_999, "field": "label", "direction": "to_server"}]}),
        )
        .await;
    bad.assert_error("unknown point", StatusCode::CONFLICT, Some("invalid_choice"));
    server.get("/api/t3000/devices/nope/sync").await.assert_error("no device", StatusCode::NOT_FOUND, None);

    // Every applied change is audited, with the point, the field and both values.
    let audit = server.get("/api/t3000/audit?action=sync.apply&limit=1000").await.ok_json();
    let entries = audit.as_array().or_else(|| audit["items"].as_array()).cloned().unwrap_or_default();
    let to_device: Vec<&Value> = entries
        .iter()
        .filter(|e| e["target"] == format!("point:{in1}") && e["new"]["direction"] == "to_device")
        .collect();
    assert_eq!(to_device.len(), 1, "{audit}");
    assert_eq!(
        (&to_device[0]["old"]["fields"]["label"], &to_device[0]["new"]["fields"]["label"], &to_device[0]["result"]),
        (&json!("DEV LBL"), &json!("SRV LBL"), &json!("ok"))
    );
    // The first sync's changes too, one entry per point.
    let first_in1 = entries.iter().find(|e| e["target"] == format!("point:{in1}") && e["new"]["fields"]["range"] == 1);
    assert_eq!(first_in1.expect("IN1's first sync")["new"]["fields"]["label"], "ZN1 TEMP");
}

/// Registers of a T3 panel's routines (the firmware's `modbus.h`): weekly routine records (21
/// registers each), their times (72: 9 day types x 8 events of minutes, hours), the annual routines'
/// day bitmaps (23) and the weekly routines' event flags (36).
const WR_RECORDS: u16 = 15808;
const WR_TIMES: u16 = 32044;
const AR_DAYS: u16 = 32620;
const WR_FLAGS: u16 = 33201;

fn bytes_of(words: &[u16]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

fn words_of(bytes: &[u8]) -> Vec<u16> {
    bytes.chunks(2).map(|b| u16::from_be_bytes([b[0], *b.get(1).unwrap_or(&0)])).collect()
}

/// One ON/OFF pair of a day type (0 = Monday .. 8 = Holiday 2), each time as (hours, minutes).
type Pair = (usize, (u8, u8), (u8, u8));

/// A routine's 144 bytes of times with `pairs` set, written as T3000 writes them: per day, per
/// event, minutes then hours.
fn times_bytes(pairs: &[Pair]) -> Vec<u8> {
    let mut b = vec![0u8; 144];
    let mut used = [0usize; 9];
    for &(day, on, off) in pairs {
        let at = day * 16 + used[day] * 4;
        b[at..at + 4].copy_from_slice(&[on.1, on.0, off.1, off.0]);
        used[day] += 1;
    }
    b
}

async fn schedules(server: &TestServer) -> Vec<Value> {
    server.get("/api/t3000/schedules").await.ok_json().as_array().unwrap().clone()
}

async fn calendars(server: &TestServer) -> Vec<Value> {
    server.get("/api/t3000/calendars").await.ok_json().as_array().unwrap().clone()
}

fn named<'a>(rows: &'a [Value], prefix: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .unwrap_or_else(|| panic!("{prefix} in {rows:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weekly_and_annual_routines_sync_both_ways_with_schedules_and_calendars() {
    let (sim, server) = ahu_online().await;

    // The simulated panel's WR1 "OCC" (weekdays 07:00-18:00, Saturday 08:00-12:00, AR1 as its
    // holidays) and AR1 "HOLIDAYS" (01-01, 07-04, 12-25), read over Modbus, with nothing in the catalog.
    let first = diff(&server, "per_field").await;
    let wr1 = rows_of(&first, "WR1");
    let field = |rows: &[Value], f: &str| rows.iter().find(|r| r["field"] == f).cloned().unwrap_or(Value::Null);
    assert_eq!(field(&wr1, "label")["device"], "OCC", "{first}");
    assert_eq!(field(&wr1, "description")["device"], "Occupied hours");
    let week = json!([{"on": "07:00", "off": "18:00"}]);
    assert_eq!(field(&wr1, "times")["device"]["monday"], week);
    assert_eq!(field(&wr1, "times")["device"]["friday"], week);
    assert_eq!(field(&wr1, "times")["device"]["saturday"], json!([{"on": "08:00", "off": "12:00"}]));
    assert_eq!(field(&wr1, "times")["device"]["sunday"], Value::Null);
    assert_eq!(field(&wr1, "holidays")["device"], json!(["AR1"]));
    assert!(wr1.iter().all(|r| r["point_id"].is_null() && r["direction"] == "to_server"), "{wr1:?}");
    let ar1 = rows_of(&first, "AR1");
    assert_eq!(field(&ar1, "label")["device"], "HOLIDAYS");
    assert_eq!(field(&ar1, "days")["device"], json!(["01-01", "07-04", "12-25"]));
    // Empty routines are not shown.
    assert!(rows_of(&first, "WR2").is_empty() && rows_of(&first, "AR2").is_empty());

    // Device wins: a schedule and a calendar are made, linked.
    let applied = apply(&server, json!({"strategy": "device_wins"})).await;
    assert!(applied["applied"].as_array().unwrap().iter().all(|a| a["error"].is_null()), "{applied}");
    let cal = named(&calendars(&server).await, "ahu-1 AR1").clone();
    assert_eq!((&cal["name"], &cal["holiday"]), (&json!("ahu-1 AR1 HOLIDAYS"), &json!("holiday1")));
    assert_eq!(cal["recurring"], json!(["01-01", "07-04", "12-25"]));
    let s = named(&schedules(&server).await, "ahu-1 WR1").clone();
    assert_eq!((&s["name"], &s["description"]), (&json!("ahu-1 WR1 OCC"), &json!("Occupied hours")));
    assert_eq!(s["weekly_schedule"]["days"]["tuesday"], week);
    assert_eq!(s["calendar_ids"], json!([cal["id"]]));
    assert_eq!(diff(&server, "per_field").await["differences"], json!([]), "in step after the first sync");

    // Changed on the controller (as T3000 writes a routine's times): Monday 06:30-19:00 and
    // 20:00-22:00, the rest as before; the new times arrive in the schedule.
    let mut pairs: Vec<Pair> = vec![(0, (6, 30), (19, 0)), (0, (20, 0), (22, 0))];
    pairs.extend((1..5).map(|d| (d, (7, 0), (18, 0))));
    pairs.push((5, (8, 0), (12, 0)));
    modbus_write(&sim.tcp, WR_TIMES, &words_of(&times_bytes(&pairs))).await;
    let report = diff(&server, "server_wins").await;
    let rows = report["differences"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{report}");
    assert_eq!(
        (&rows[0]["point"], &rows[0]["field"], &rows[0]["changed"]),
        (&json!("WR1"), &json!("times"), &json!("device"))
    );
    apply(&server, json!({"strategy": "server_wins"})).await;
    let s = named(&schedules(&server).await, "ahu-1 WR1").clone();
    assert_eq!(
        s["weekly_schedule"]["days"]["monday"],
        json!([{"on": "06:30", "off": "19:00"}, {"on": "20:00", "off": "22:00"}])
    );

    // Changed on the server: renamed, Sunday 10:00 to midnight added, Saturday dropped, no holiday
    // calendar; all of it is written to the controller's registers.
    let mut days = s["weekly_schedule"]["days"].clone();
    days["sunday"] = json!([{"on": "10:00", "off": "24:00"}]);
    days["saturday"] = json!([]);
    let body = json!({"name": "ahu-1 WR1 OCC HRS", "description": "Occupied hours", "weekly_schedule": {"days": days},
        "calendar_ids": []});
    server.put_json(&format!("/api/t3000/schedules/{}", s["id"]), &body).await.ok_json();
    let report = diff(&server, "per_field").await;
    let rows = rows_of(&report, "WR1");
    let fields: Vec<&str> = rows.iter().map(|r| r["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["label", "times", "holidays"], "{report}");
    assert!(rows.iter().all(|r| r["direction"] == "to_device"), "{rows:?}");
    let out = cli_sync(&server, &["--apply"]);
    assert!(out.status.success(), "{} {}", out.stdout, out.stderr);
    assert!(out.stdout.contains("WR1") && out.stdout.contains("to-device"), "{}", out.stdout);
    let record = bytes_of(&modbus_read(&sim.tcp, WR_RECORDS, 21).await);
    assert_eq!(&record[21..30], b"OCC HRS\0\0", "label at byte 21");
    assert_eq!(&record[..15], b"Occupied hours\0");
    assert_eq!(&record[36..39], &[0, 0, 0], "override 1 no longer links AR1");
    let times = bytes_of(&modbus_read(&sim.tcp, WR_TIMES, 72).await);
    // Sunday (day 6): ON 10:00, OFF 24:00 held as 00:00; Saturday (day 5) empty; Monday as before.
    assert_eq!(&times[6 * 16..6 * 16 + 4], &[0, 10, 0, 0]);
    assert_eq!(&times[5 * 16..5 * 16 + 16], &[0; 16]);
    assert_eq!(&times[..8], &[30, 6, 0, 19, 0, 20, 0, 22]);
    // The event flags agree: ON 1, OFF 0, unused 0xFF, by day then event.
    let flags = bytes_of(&modbus_read(&sim.tcp, WR_FLAGS, 36).await);
    assert_eq!(&flags[6 * 8..6 * 8 + 8], &[1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    assert_eq!(&flags[5 * 8..5 * 8 + 8], &[0xFF; 8]);
    assert_eq!(diff(&server, "per_field").await["differences"], json!([]));

    // A calendar day added on the server goes to the annual routine's bitmap: 12-26 is day 361
    // (days numbered as in a leap year), bit 0 of byte 45.
    let mut recurring = cal["recurring"].clone();
    recurring.as_array_mut().unwrap().push(json!("12-26"));
    let body = json!({"name": cal["name"], "holiday": "holiday1", "recurring": recurring});
    server.put_json(&format!("/api/t3000/calendars/{}", cal["id"]), &body).await.ok_json();
    let won = apply(&server, json!({"strategy": "per_field"})).await;
    assert_eq!((&won["applied"][0]["point"], &won["applied"][0]["field"]), (&json!("AR1"), &json!("days")), "{won}");
    let bitmap = bytes_of(&modbus_read(&sim.tcp, AR_DAYS, 23).await);
    assert_eq!(bitmap[45] & 1, 1, "12-26 set: {bitmap:?}");
    assert_eq!(bitmap[0] & 1, 1, "01-01 kept");
    assert_eq!(bitmap[23], 1 << 1, "07-04 is day 186: bit 1 of byte 23");

    // Both sides changed the label: a conflict a choice by routine name decides.
    let mut record = bytes_of(&modbus_read(&sim.tcp, WR_RECORDS, 21).await);
    record[21..30].copy_from_slice(b"DEV OCC\0\0");
    modbus_write(&sim.tcp, WR_RECORDS, &words_of(&record)).await;
    let s = named(&schedules(&server).await, "ahu-1 WR1").clone();
    let body =
        json!({"name": "ahu-1 WR1 SRV OCC", "description": s["description"], "weekly_schedule": s["weekly_schedule"]});
    server.put_json(&format!("/api/t3000/schedules/{}", s["id"]), &body).await.ok_json();
    let rows = diff(&server, "per_field").await["differences"].clone();
    assert_eq!(
        (&rows[0]["point"], &rows[0]["changed"], &rows[0]["direction"]),
        (&json!("WR1"), &json!("both"), &Value::Null)
    );
    let chosen =
        apply(&server, json!({"choices": [{"point": "WR1", "field": "label", "direction": "to_server"}]})).await;
    assert_eq!(chosen["applied"][0]["value"], "DEV OCC", "{chosen}");
    assert_eq!(named(&schedules(&server).await, "ahu-1 WR1")["name"], "ahu-1 WR1 DEV OCC");
    // A choice naming no routine of the panel is refused.
    let bad = server
        .post_json(
            "/api/t3000/devices/ahu-1/sync",
            &json!({"choices": [{"point": "WR9", "field": "times", "direction": "skip"}]}),
        )
        .await;
    bad.assert_error("WR9", StatusCode::CONFLICT, Some("invalid_choice"));

    // The schedule's changes written to the controller are audited against the schedule.
    let audit = server.get("/api/t3000/audit?action=sync.apply&limit=1000").await.ok_json();
    let entries = audit.as_array().or_else(|| audit["items"].as_array()).cloned().unwrap_or_default();
    let target = format!("schedule:{}", s["id"]);
    let written = entries
        .iter()
        .find(|e| e["target"] == target && e["new"]["direction"] == "to_device")
        .unwrap_or_else(|| panic!("{target} in {audit}"));
    assert_eq!(written["new"]["fields"]["label"], "OCC HRS");
    assert_eq!(written["result"], "ok");
}
