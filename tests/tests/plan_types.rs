//! The implementation plan's types (shared/seed/T3000-implementation-plan.md: A1.1 - A1.4 for REST,
//! A2.1 for the WebSocket) as a client built from the plan declares them: every kind of message
//! the real server sends over a real WebSocket, with a simulated building behind it (values,
//! alarms, device status, schedules, system status, batches, lag), and the real REST answers for
//! buildings, devices, points and schedules must deserialise into them. A missing field or a
//! field of another type fails the test; fields the plan does not have are allowed.

use crate::ws::{WAIT, connect, connect_small_buffer, now_us, point_of, push, token_of};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use t3_tests::*;

/// The plan's types, as it writes them (derives, `tag`), and the types it names without giving:
/// those are the least its text implies, or where it implies nothing our documented shape.
mod plan {
    #![allow(dead_code)]
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Serialize};

    // ---- A2.1 api/src/websocket/t3000_messages.rs ----
    #[derive(Debug, Serialize, Deserialize)]
    #[serde(tag = "type")]
    pub enum T3000Message {
        DeviceStatus {
            device_id: u32,
            online: bool,
            last_seen: i64,
            connection_quality: f32,
        },
        PointUpdate {
            point_id: u32,
            point_type: String,
            value: f64,
            timestamp: i64,
            quality: u8,
        },
        AlarmNotification {
            alarm_id: u32,
            device_id: u32,
            point_id: u32,
            alarm_type: String,
            message: String,
            severity: u8,
            timestamp: i64,
        },
        ScheduleUpdate {
            schedule_id: u32,
            status: String,
            next_run: i64,
        },
        SystemStatus {
            active_devices: u32,
            active_points: u32,
            collection_rate: f64,
            system_errors: Vec<String>,
        },
    }

    // ---- A1.1 api/src/t3000/buildings.rs ----
    #[derive(Debug, Serialize, Deserialize)]
    pub struct BuildingResponse {
        pub id: i32,
        pub name: String,
        pub description: Option<String>,
        pub floors: Vec<FloorResponse>,
    }

    /// Named, not given: "floor/room hierarchy".
    #[derive(Debug, Serialize, Deserialize)]
    pub struct FloorResponse {
        pub id: i32,
        pub name: String,
        pub rooms: Vec<RoomResponse>,
    }

    /// Implied by the hierarchy.
    #[derive(Debug, Serialize, Deserialize)]
    pub struct RoomResponse {
        pub id: i32,
        pub name: String,
    }

    // ---- A1.2 api/src/t3000/devices.rs ----
    #[derive(Debug, Serialize, Deserialize)]
    pub struct DeviceResponse {
        pub id: i32,
        pub name: String,
        pub device_type: String,
        pub ip_address: Option<String>,
        pub online: bool,
        pub last_seen: Option<DateTime<Utc>>,
        pub point_counts: PointCounts,
    }

    /// Named, not given: a count per point type ("input", "output", "variable").
    #[derive(Debug, Serialize, Deserialize)]
    pub struct PointCounts {
        pub inputs: u32,
        pub outputs: u32,
        pub variables: u32,
    }

    // ---- A1.3 api/src/t3000/points.rs ----
    #[derive(Debug, Serialize, Deserialize)]
    pub struct PointResponse {
        pub id: i32,
        pub device_id: i32,
        pub point_number: i32,
        pub point_type: String, // "input", "output", "variable"
        pub value: f64,
        pub units: String,
        pub label: String,
        pub auto_manual: bool,
        pub updated_at: DateTime<Utc>,
    }

    // ---- A1.4 api/src/t3000/schedules.rs ----
    #[derive(Debug, Serialize, Deserialize)]
    pub struct ScheduleResponse {
        pub id: i32,
        pub name: String,
        pub schedule_type: String,
        pub status: String, // "active", "inactive", "running"
        pub next_run: Option<DateTime<Utc>>,
        pub weekly_schedule: WeeklySchedule,
    }

    /// Named, not given; the plan implies nothing of its shape, so this is our documented one
    /// (the ON/OFF pairs of each of T3000's day types).
    #[derive(Debug, Serialize, Deserialize)]
    pub struct WeeklySchedule {
        pub days: std::collections::BTreeMap<String, Vec<OnOff>>,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub struct OnOff {
        pub on: String,
        pub off: String,
    }
}

/// The server's messages that the plan does not have (replies and flow control), as a client
/// declares them from /api/t3000/ws/schema.json.
mod extra {
    #![allow(dead_code)]
    use serde::Deserialize;
    use serde_json::Value;

    #[derive(Debug, Deserialize)]
    #[serde(tag = "type")]
    pub enum Extra {
        Welcome {
            username: String,
            role: String,
            server_version: String,
            ping_interval_secs: u64,
            client_timeout_secs: u64,
            queue_messages: u64,
        },
        Subscribed {
            request_id: Value,
            points: Option<u64>,
            all_points: bool,
            devices: Option<u64>,
            alarms: bool,
            schedules: bool,
            programs: bool,
            system: bool,
            snapshot_points: u64,
            max_rate_hz: Option<f64>,
            batch: bool,
        },
        Unsubscribed {
            request_id: Value,
        },
        ProgramUpdate {
            program_id: i64,
            name: String,
            change: String,
            status: String,
            enabled: bool,
            error: Option<Value>,
            last_scan: Option<String>,
            scan_us: Option<u64>,
            timestamp: i64,
            time: String,
        },
        Pong {
            request_id: Value,
        },
        Lagged {
            missed: u64,
        },
        /// `alarm` is an AlarmNotification without its `type`: checked against the plan too.
        AlarmAcknowledged {
            request_id: Value,
            alarm: serde_json::Map<String, Value>,
        },
        ValueWritten {
            request_id: Value,
            result: Value,
        },
        Error {
            request_id: Value,
            code: String,
            message: String,
        },
    }
}

const PLAN_KINDS: [&str; 5] = ["DeviceStatus", "PointUpdate", "AlarmNotification", "ScheduleUpdate", "SystemStatus"];

/// Milliseconds since the Unix epoch, now.
fn now_ms() -> i64 {
    now_us() / 1000
}

/// Checks one message against the plan's types (or, for the kinds it lacks, against ours) and
/// that its times are epoch milliseconds of this test's time; records its kind in `seen`.
fn check(v: &Value, started_ms: i64, seen: &mut BTreeSet<String>) {
    let kind = v["type"].as_str().unwrap_or_else(|| panic!("a message without a type: {v}"));
    seen.insert(kind.to_owned());
    // A plausible time of this test: from its start (minus a minute) to an hour from now; the
    // same value in microseconds or seconds would be far outside.
    let recent = |ms: i64, what: &str| {
        assert!(ms >= started_ms - 60_000 && ms <= now_ms() + 3_600_000, "{what} = {ms} is not epoch ms of now: {v}")
    };
    if kind == "PointUpdates" {
        let updates = v["updates"].as_array().unwrap_or_else(|| panic!("PointUpdates without updates: {v}"));
        assert!(!updates.is_empty(), "{v}");
        for u in updates {
            assert_eq!(u["type"], "PointUpdate", "{v}");
            check(u, started_ms, &mut BTreeSet::new());
        }
        return;
    }
    if !PLAN_KINDS.contains(&kind) {
        let e = serde_json::from_value::<extra::Extra>(v.clone())
            .unwrap_or_else(|e| panic!("{kind} does not match the schema's message: {e}\n{v}"));
        if let extra::Extra::AlarmAcknowledged { alarm, .. } = e {
            let mut alarm = Value::Object(alarm);
            alarm["type"] = json!("AlarmNotification");
            check(&alarm, started_ms, &mut BTreeSet::new());
        }
        return;
    }
    let m = serde_json::from_value::<plan::T3000Message>(v.clone())
        .unwrap_or_else(|e| panic!("{kind} does not match the plan's T3000Message: {e}\n{v}"));
    match m {
        plan::T3000Message::PointUpdate { timestamp, quality, point_type, .. } => {
            recent(timestamp, "PointUpdate.timestamp");
            assert_eq!(v["ts_us"].as_i64().map(|us| us.div_euclid(1000)), Some(timestamp), "{v}");
            if v["has_value"] == false {
                assert_eq!(v["value"], 0.0, "no value: 0: {v}");
            }
            assert_eq!(v["quality_name"].as_str().map(|n| n.starts_with("good")), Some(quality >= 0xC0), "{v}");
            assert!(["input", "output", "variable", "register", "manual"].contains(&point_type.as_str()), "{v}");
        }
        plan::T3000Message::DeviceStatus { last_seen, connection_quality, online, .. } => {
            if last_seen == 0 {
                assert!(v["last_seen_time"].is_null() && !online, "0: never answered: {v}");
            } else {
                recent(last_seen, "DeviceStatus.last_seen");
            }
            assert!((0.0..=1.0).contains(&connection_quality), "{v}");
        }
        plan::T3000Message::AlarmNotification { severity, timestamp, .. } => {
            recent(timestamp, "AlarmNotification.timestamp");
            assert!([1, 2].contains(&severity), "{v}");
        }
        plan::T3000Message::ScheduleUpdate { next_run, status, .. } => {
            if next_run == 0 {
                assert!(v["next_run_time"].is_null(), "{v}");
            } else {
                assert!(next_run > now_ms() - 60_000 && next_run < now_ms() + 9 * 86_400_000, "next_run: {v}");
            }
            assert!(["active", "inactive", "deleted"].contains(&status.as_str()), "{v}");
        }
        plan::T3000Message::SystemStatus { system_errors, .. } => {
            recent(v["timestamp"].as_i64().unwrap(), "SystemStatus.timestamp");
            assert_eq!(v["error_count"].as_u64().map(|n| n > 0), Some(!system_errors.is_empty()), "{v}");
        }
    }
}

/// The `type` a tagged schema fixes (the served schema writes `enum: [Kind]` inside each variant).
fn type_tag(v: &Value) -> Option<String> {
    if let Some(t) = v["properties"]["type"]["enum"][0].as_str() {
        return Some(t.to_owned());
    }
    v.as_object()?.values().find_map(|x| match x {
        Value::Array(a) => a.iter().find_map(type_tag),
        Value::Object(_) => type_tag(x),
        _ => None,
    })
}

/// Deserialises a REST answer into a plan type, failing with the JSON on a mismatch.
fn rest<T: serde::de::DeserializeOwned>(what: &str, v: &Value) -> T {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{what} does not match the plan's type: {e}\n{v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_and_answer_matches_the_plans_types() {
    let started_ms = now_ms();
    let sim = simulate(&["--listen", "127.0.0.1:0", "--count", "1"]);
    let port = port_of(&sim.tcp);
    // A port where nothing answers: a device that never answered (last_seen 0 over the socket).
    let dead_port = REFUSED_PORT;
    let server = TestServer::start(
        "[websocket]\nsystem_status_interval_secs = 1\n[collector]\noffline_after_failures = 2\nbackoff_initial_ms = 100\n",
    );
    let b = server.post_json("/api/t3000/buildings", &json!({"name": "B", "description": "main"})).await.json();
    let f = server.post_json(&format!("/api/t3000/buildings/{}/floors", b["id"]), &json!({"name": "F"})).await.json();
    let room = server.post_json(&format!("/api/t3000/floors/{}/rooms", f["id"]), &json!({"name": "R"})).await.json();
    let device = |name: &str, port: u16, room: Value| {
        json!({"name": name, "protocol": "modbus-tcp", "ip_address": "127.0.0.1", "port": port, "unit_id": 1,
            "profile": "T3-controller", "poll_interval_ms": 500, "room_id": room, "timeout_ms": 300})
    };
    let r = server.post_json("/api/t3000/devices", &device("ahu", port, room["id"].clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = server.post_json("/api/t3000/devices", &device("ghost", dead_port, Value::Null)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    poll_until("ahu online", Duration::from_secs(30), || async {
        server.get("/api/t3000/devices/ahu").await.ok_json()["online"] == true
    })
    .await;
    // A manual point without a value, one with a label and units.
    let manual = server.post_json("/api/t3000/points", &json!({"name": "outdoor-temp"})).await;
    assert_eq!(manual.status, StatusCode::CREATED, "{}", manual.text());
    let manual = manual.json()["id"].as_u64().unwrap();
    let (var1, var2) = (point_of(&server, "ahu", "VAR1").await, point_of(&server, "ahu", "VAR2").await);
    let r = server.put_json(&format!("/api/t3000/points/{var1}"), &json!({"label": "SAT", "units": "degC"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let op = token_of(&server, "op", "operator").await;

    // One client follows everything one message at a time, one in batches.
    let mut a = connect(&server, &op).await;
    let r = a
        .request(json!({"type": "Subscribe", "points": "all", "devices": "all", "alarms": true,
            "schedules": true, "programs": true, "system": true}))
        .await;
    assert_eq!(r["type"], "Subscribed", "{r}");
    let mut batched = connect(&server, &server.token).await;
    let r = batched.request(json!({"type": "Subscribe", "points": "all", "batch": true})).await;
    assert_eq!(r["batch"], true, "{r}");
    batched.expect("PointUpdates", WAIT, |v| v["type"] == "PointUpdates").await;
    a.expect("the ghost's status", WAIT, |v| v["type"] == "DeviceStatus" && v["name"] == "ghost").await;
    a.expect("SystemStatus", WAIT, |v| v["type"] == "SystemStatus").await;
    // What came so far (snapshots, first changes, statuses) already matches.
    for v in a.log.iter().chain(&batched.log) {
        check(v, started_ms, &mut BTreeSet::new());
    }

    // An alarm, raised by a write from the socket, then acknowledged.
    let rule = server
        .post_json(
            "/api/t3000/alarms/rules",
            &json!({"name": "VAR1 high", "point_id": var1,
                "rule": {"condition": {"kind": "limits", "high": 50.0, "deadband": 1.0}}}),
        )
        .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.text());
    let rule = rule.json()["id"].as_i64().unwrap();
    let w = a.request(json!({"type": "WriteValue", "point_id": var1, "value": 60.0, "switch_to_manual": true})).await;
    assert_eq!(w["type"], "ValueWritten", "{w}");
    // The rule's own alarm: the ghost's "devices offline" system alarm may come before it.
    let raised = a.expect("the alarm", WAIT, |v| v["type"] == "AlarmNotification" && v["alarm_id"] == rule).await;
    assert_eq!((raised["severity"].as_u64(), raised["message"].as_str()), (Some(1), Some("VAR1 high")), "{raised}");
    let ack = a.request(json!({"type": "AckAlarm", "alarm_id": rule})).await;
    assert_eq!(ack["type"], "AlarmAcknowledged", "{ack}");
    a.expect("the acknowledgement", WAIT, |v| {
        v["type"] == "AlarmNotification" && v["alarm_id"] == rule && v["alarm_type"] == "acknowledged"
    })
    .await;

    // A schedule: created, its state written.
    let body = all_week_schedule("occupancy", var2, "23:59");
    let s = server.post_json("/api/t3000/schedules", &body).await;
    assert_eq!(s.status, StatusCode::CREATED, "{}", s.text());
    let sid = s.json()["id"].as_i64().unwrap();
    let u = a.expect("ScheduleUpdate", WAIT, |v| v["type"] == "ScheduleUpdate" && v["change"] == "state").await;
    assert!(u["next_run"].as_i64() > Some(0), "the next change is known: {u}");

    // A program: created (a ProgramUpdate).
    let device = server.get("/api/t3000/devices/ahu").await.ok_json()["id"].clone();
    let p = server
        .post_json("/api/t3000/programs", &json!({"name": "p", "device_id": device, "source": "10 VAR2 = 1\n"}))
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.text());
    a.expect("ProgramUpdate", WAIT, |v| v["type"] == "ProgramUpdate" && v["change"] == "created").await;

    // REST, while all of it exists: every item of each list and each single answer.
    let buildings = server.get("/api/t3000/buildings").await.ok_json();
    for v in buildings["items"].as_array().unwrap() {
        let b: plan::BuildingResponse = rest("a building", v);
        assert_eq!((b.floors.len(), b.floors[0].rooms.len()), (1, 1), "{v}");
    }
    rest::<plan::BuildingResponse>(
        "GET /buildings/{id}",
        &server.get(&format!("/api/t3000/buildings/{}", b["id"])).await.ok_json(),
    );
    let devices = server.get("/api/t3000/devices").await.ok_json();
    let devices = devices["items"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    for v in devices {
        let d: plan::DeviceResponse = rest("a device", v);
        assert_eq!(d.last_seen.is_some(), d.name == "ahu", "{v}");
    }
    rest::<plan::DeviceResponse>("GET /devices/{id}", &server.get("/api/t3000/devices/ahu").await.ok_json());
    poll_until("VAR1 has a value over REST", WAIT, || async {
        server.get(&format!("/api/t3000/points/{var1}")).await.ok_json()["has_value"] == true
    })
    .await;
    let points = server.get("/api/t3000/points?limit=10000").await.ok_json();
    let points = points["items"].as_array().unwrap();
    assert!(points.len() > 10, "{}", points.len());
    for v in points {
        let p: plan::PointResponse = rest("a point", v);
        if p.id as u64 == manual {
            assert_eq!((p.device_id, p.point_number, p.value, p.label.as_str()), (0, 0, 0.0, ""), "{v}");
            assert_eq!((p.updated_at.timestamp(), &v["has_value"], &v["quality"]), (0, &json!(false), &Value::Null));
        } else if p.id as u64 == var1 {
            assert_eq!((p.label.as_str(), p.units.as_str(), p.point_number), ("SAT", "degC", 1), "{v}");
            assert!((p.updated_at.timestamp_millis() - now_ms()).abs() < 600_000, "{v}");
        }
    }
    rest::<plan::PointResponse>("GET /points/{id}", &server.get(&format!("/api/t3000/points/{var1}")).await.ok_json());
    rest::<plan::PointResponse>(
        "GET /points/{manual}",
        &server.get(&format!("/api/t3000/points/{manual}")).await.ok_json(),
    );
    let schedules = server.get("/api/t3000/schedules").await.ok_json();
    let schedules = schedules.as_array().or(schedules["items"].as_array()).unwrap().clone();
    assert_eq!(schedules.len(), 1);
    for v in &schedules {
        let s: plan::ScheduleResponse = rest("a schedule", v);
        assert!(s.next_run.is_some() && s.weekly_schedule.days.len() == 7, "{v}");
    }
    rest::<plan::ScheduleResponse>(
        "GET /schedules/{id}",
        &server.get(&format!("/api/t3000/schedules/{sid}")).await.ok_json(),
    );

    assert_eq!(server.delete(&format!("/api/t3000/schedules/{sid}")).await.status, StatusCode::NO_CONTENT);
    let u =
        a.expect("ScheduleUpdate deleted", WAIT, |v| v["type"] == "ScheduleUpdate" && v["change"] == "deleted").await;
    assert_eq!((u["next_run"].as_i64(), &u["next_run_time"]), (Some(0), &Value::Null), "{u}");

    // Replies and refusals.
    assert_eq!(a.request(json!({"type": "Ping"})).await["type"], "Pong");
    assert_eq!(a.request(json!({"type": "Subscribe", "pionts": [1]})).await["type"], "Error");
    assert_eq!(a.request(json!({"type": "Unsubscribe", "points": [manual]})).await["type"], "Unsubscribed");

    // The device goes away: offline, and its points' failed reads (no value, bad quality).
    drop(sim);
    a.expect("ahu offline", Duration::from_secs(60), |v| {
        v["type"] == "DeviceStatus" && v["name"] == "ahu" && v["online"] == false
    })
    .await;
    a.expect("a SystemStatus with errors", WAIT, |v| {
        v["type"] == "SystemStatus" && v["system_errors"].as_array().is_some_and(|e| !e.is_empty())
    })
    .await;
    a.drain(Duration::from_millis(500)).await;
    batched.drain(Duration::from_millis(200)).await;

    // A client that falls behind: Lagged (a server of its own with the smallest queue).
    let small = TestServer::start("[websocket]\nqueue_messages = 16\n");
    let mut slow = connect_small_buffer(&small).await;
    slow.request(json!({"type": "Subscribe", "points": "all"})).await;
    push(&small, 100, 200, 1.0).await;
    slow.expect("Lagged", Duration::from_secs(30), |v| v["type"] == "Lagged").await;

    let mut seen = BTreeSet::new();
    for v in a.log.iter().chain(&batched.log).chain(&slow.log) {
        check(v, started_ms, &mut seen);
    }
    // Every kind the served schema names was sent and checked.
    let schema = server.call(&reqwest::Client::new(), reqwest::Method::GET, "/api/t3000/ws/schema.json", None).await;
    let schema = schema.ok_json();
    let kinds: BTreeSet<String> =
        schema["$defs"]["ServerMessage"]["oneOf"].as_array().unwrap().iter().filter_map(type_tag).collect();
    assert_eq!(kinds.len(), 15, "{kinds:?}");
    assert_eq!(seen, kinds, "every kind of message the server sends");
    // The AsyncAPI document names the same messages the server sends.
    let doc = server.call(&reqwest::Client::new(), reqwest::Method::GET, "/api/t3000/ws/asyncapi.json", None).await;
    let doc = doc.ok_json();
    let sent: BTreeSet<String> = doc["operations"]["sendServerMessages"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["$ref"].as_str().unwrap().rsplit('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(sent, kinds, "{doc}");
    assert_eq!(doc["servers"]["t3000"]["host"], server.addr(), "{doc}");
}
