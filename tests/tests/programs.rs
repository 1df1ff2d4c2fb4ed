//! Control BASIC programs run by the server, end to end: the real binary polls a simulated T3
//! controller (`t3000 simulate`) and runs programs against it. Programs are created, read, changed
//! and deleted; a text that does not parse or names an unknown point is refused with 422 and its
//! line and column; a program run once drives an output that the device then holds (read back
//! over Modbus); an enabled program runs on its scan and leaves a point an operator put in manual
//! alone until it is back in auto; a program that divides by zero stops with
//! `error` and its line and raises the system alarm while another keeps running; disabling a
//! program relinquishes its commands; viewers read but do not write; `ProgramUpdate`s reach
//! WebSocket clients subscribed with `programs: true`.

use crate::sync::modbus_read;
use crate::ws::{WAIT, connect, point_of, token_of};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use t3_tests::*;

/// The value registers of OUT2 on a T3 controller (7100 + 2 x 1): an i32, thousandths.
const OUT2_VALUE: u16 = 7102;

/// The rule id of the system alarm "program in error".
const PROGRAM_ERROR_ALARM: i64 = 4_294_967_290;

async fn program(server: &TestServer, id: i64) -> Value {
    server.get(&format!("/api/t3000/programs/{id}")).await.ok_json()
}

async fn value(server: &TestServer, point: u64) -> Option<f64> {
    server.get(&format!("/api/t3000/points/{point}/value")).await.json()["value"].as_f64()
}

async fn program_alarm(server: &TestServer) -> Option<Value> {
    let alarms = server.get("/api/t3000/alarms").await.ok_json();
    let list = alarms.as_array().or(alarms["items"].as_array()).cloned().unwrap_or_default();
    list.into_iter().find(|a| a["rule_id"] == PROGRAM_ERROR_ALARM)
}

fn created(r: Reply) -> Value {
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_run_against_a_simulated_controller() {
    let sim = simulate(&["--listen", "127.0.0.1:0", "--count", "1"]);
    let extra = format!("{}\n[programs]\nscan_ms = 200\n", simulated_ahu(port_of(&sim.tcp)));
    let server = TestServer::start(&extra);
    poll_until("ahu-1 online", Duration::from_secs(30), || async {
        server.get("/api/t3000/devices/ahu-1").await.ok_json()["online"] == true
    })
    .await;
    let device = server.get("/api/t3000/devices/ahu-1").await.ok_json()["id"].as_i64().unwrap();
    let out2 = point_of(&server, "ahu-1", "OUT2").await;
    let var20 = point_of(&server, "ahu-1", "VAR20").await;
    let var21 = point_of(&server, "ahu-1", "VAR21").await;
    for p in [out2, var20, var21] {
        poll_until("the point has a value", WAIT, || async { value(&server, p).await.is_some() }).await;
    }
    // A label programs can name (the simulator's labels have spaces, which the language does not).
    let r = server.put_json(&format!("/api/t3000/points/{var21}"), &json!({"label": "RUNS"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let op_token = token_of(&server, "op", "operator").await;
    let op = client_with_token(&op_token);
    let viewer = server.user_client("vi", "viewer").await;
    let mut ws = connect(&server, &op_token).await;
    let r = ws.request(json!({"type": "Subscribe", "programs": true})).await;
    assert_eq!((&r["type"], &r["programs"]), (&json!("Subscribed"), &json!(true)), "{r}");

    // Refused texts: 422 with the line and column of the error.
    let create = |body: Value| {
        let (server, op) = (&server, &op);
        async move { server.call(op, Method::POST, "/api/t3000/programs", Some(&body)).await }
    };
    let r = create(json!({"name": "bad", "device_id": device, "source": "10 VAR20 = 1\n20 IF VAR20 > 1 VAR21 = 2\n"}))
        .await;
    r.assert_error("a syntax error", StatusCode::UNPROCESSABLE_ENTITY, Some("syntax_error"));
    let e = &r.json()["error"];
    assert_eq!(e["line"], 2, "{e}");
    assert!(e["column"].as_u64().is_some_and(|c| c > 1), "{e}");
    assert!(e["message"].as_str().unwrap().starts_with("line 2, column "), "{e}");
    let r = create(json!({"name": "bad", "device_id": device, "source": "10 VAR20 = 1\n20 VAR21 = VAR999\n"})).await;
    r.assert_error("an unknown point", StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_point"));
    assert_eq!((&r.json()["error"]["line"], &r.json()["error"]["column"]), (&json!(2), &json!(12)), "{}", r.text());
    let r = create(json!({"name": "bad", "device_id": 999, "source": "10 END\n"})).await;
    r.assert_error("an unknown device", StatusCode::NOT_FOUND, Some("not_found"));
    let check = server
        .call(
            &op,
            Method::POST,
            "/api/t3000/programs/check",
            Some(&json!({"device_id": device, "source": "10 RUNS = 1 +\n"})),
        )
        .await
        .ok_json();
    assert_eq!((&check["ok"], &check["error"]["line"]), (&json!(false), &json!(1)), "{check}");
    let check = server
        .call(
            &op,
            Method::POST,
            "/api/t3000/programs/check",
            Some(&json!({"device_id": device, "source": "10 RUNS = 1\n"})),
        )
        .await
        .ok_json();
    assert_eq!(check, json!({"ok": true}));
    // Viewers read, and write nothing.
    let r = server
        .call(
            &viewer,
            Method::POST,
            "/api/t3000/programs",
            Some(&json!({"name": "v", "device_id": device, "source": ""})),
        )
        .await;
    r.assert_error("a viewer creates", StatusCode::FORBIDDEN, Some("forbidden"));

    // Created disabled, read, renamed; run once: OUT2 reaches the device.
    let r =
        create(json!({"name": "valve", "device_id": device, "source": "10 OUT2 = 42.5\n20 VAR20 = VAR20 + 1\n"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let valve = r.json();
    let valve_id = valve["id"].as_i64().unwrap();
    assert_eq!((&valve["status"], &valve["enabled"], &valve["scans"]), (&json!("stopped"), &json!(false), &json!(0)));
    assert_eq!(
        valve["writes"].as_array().unwrap().iter().map(|w| w["name"].clone()).collect::<Vec<_>>(),
        [json!("OUT2"), json!("VAR20")]
    );
    ws.expect("ProgramUpdate created", WAIT, |v| {
        v["type"] == "ProgramUpdate" && v["program_id"] == valve_id && v["change"] == "created"
    })
    .await;
    let r = server
        .call(&op, Method::PUT, &format!("/api/t3000/programs/{valve_id}"), Some(&json!({"name": "zone valve"})))
        .await;
    assert_eq!(r.ok_json()["name"], "zone valve");
    assert_eq!(program(&server, valve_id).await["name"], "zone valve");
    let r = server.call(&viewer, Method::POST, &format!("/api/t3000/programs/{valve_id}/run"), None).await;
    r.assert_error("a viewer runs", StatusCode::FORBIDDEN, Some("forbidden"));
    let before = value(&server, var20).await.unwrap();
    let ran = server.call(&op, Method::POST, &format!("/api/t3000/programs/{valve_id}/run"), None).await.ok_json();
    assert_eq!((&ran["status"], &ran["scans"]), (&json!("stopped"), &json!(1)), "{ran}");
    assert!(ran["last_scan"].is_string() && ran["scan_us"].is_u64(), "{ran}");
    let words = modbus_read(&sim.tcp, OUT2_VALUE, 2).await;
    let raw = ((u32::from(words[0]) << 16) | u32::from(words[1])) as i32;
    assert_eq!(raw, 42_500, "OUT2 on the device: {words:?}");
    poll_until("VAR20 counted the run", WAIT, || async { value(&server, var20).await == Some(before + 1.0) }).await;
    let commands = server.get(&format!("/api/t3000/points/{out2}/commands")).await.ok_json();
    let commands = commands.as_array().or(commands["commands"].as_array()).cloned().unwrap_or_default();
    assert!(
        commands.iter().any(|c| c["priority"] == 16 && c["source"] == format!("program:{valve_id}")),
        "{commands:?}"
    );

    // Enabled: it runs on its scan (a counter through a label).
    let counter = created(create(json!({"name": "counter", "device_id": device, "source": "10 RUNS = SCANS\n"})).await);
    let counter_id = counter["id"].as_i64().unwrap();
    let enabled = server.call(&op, Method::POST, &format!("/api/t3000/programs/{counter_id}/enable"), None).await;
    assert_eq!(enabled.ok_json()["status"], "running");
    ws.expect("ProgramUpdate state running", WAIT, |v| {
        v["type"] == "ProgramUpdate" && v["program_id"] == counter_id && v["status"] == "running"
    })
    .await;
    poll_until("the counter runs", WAIT, || async { value(&server, var21).await.is_some_and(|v| v >= 3.0) }).await;

    // A point an operator put in manual is left alone (as a controller's programs leave it); back
    // in auto, the program takes it over.
    let var22 = point_of(&server, "ahu-1", "VAR22").await;
    let r = server
        .call(&op, Method::POST, &format!("/api/t3000/points/{var22}/mode"), Some(&json!({"mode": "manual"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let held = created(
        create(json!({"name": "held", "device_id": device, "enabled": true, "source": "10 VAR22 = 77\n"})).await,
    );
    let held_id = held["id"].as_i64().unwrap();
    poll_until("the program scans", WAIT, || async {
        program(&server, held_id).await["scans"].as_u64().is_some_and(|n| n >= 3)
    })
    .await;
    assert_ne!(value(&server, var22).await, Some(77.0), "a point in manual is not written");
    let commands = server.get(&format!("/api/t3000/points/{var22}/commands")).await.ok_json();
    assert_eq!(commands, json!([]), "nothing commanded on a point in manual");
    let r = server
        .call(&op, Method::POST, &format!("/api/t3000/points/{var22}/mode"), Some(&json!({"mode": "auto"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    poll_until("back in auto, the program drives it", WAIT, || async { value(&server, var22).await == Some(77.0) })
        .await;

    // A division by zero stops that program alone, with its line, and raises the system alarm.
    let bad = created(
        create(json!({"name": "divider", "device_id": device, "enabled": true,
            "source": "10 A = 0\n20 VAR20 = 10 / A\n"}))
        .await,
    );
    let bad_id = bad["id"].as_i64().unwrap();
    poll_until("the divider stops", WAIT, || async { program(&server, bad_id).await["status"] == "error" }).await;
    let p = program(&server, bad_id).await;
    assert_eq!(
        (&p["error"]["line_number"], &p["error"]["line"], &p["error"]["message"]),
        (&json!(20), &json!(2), &json!("division by zero")),
        "{p}"
    );
    let update = ws
        .expect("ProgramUpdate error", WAIT, |v| {
            v["type"] == "ProgramUpdate" && v["program_id"] == bad_id && v["status"] == "error"
        })
        .await;
    assert_eq!(update["error"]["line_number"], 20, "{update}");
    poll_until("the system alarm", WAIT, || async {
        program_alarm(&server).await.is_some_and(|a| a["state"] == "active")
    })
    .await;
    let alarm = program_alarm(&server).await.unwrap();
    assert!(alarm["message"].as_str().unwrap().contains("\"divider\" line 20: division by zero"), "{alarm}");
    let scans = program(&server, counter_id).await["scans"].as_u64().unwrap();
    let counted = value(&server, var21).await.unwrap();
    poll_until("the counter keeps running", WAIT, || async {
        program(&server, counter_id).await["scans"].as_u64().unwrap() > scans + 3
            && value(&server, var21).await.is_some_and(|v| v > counted)
    })
    .await;
    assert_eq!(program(&server, counter_id).await["status"], "running");

    // Disabled: its commands are relinquished.
    let r = server.call(&op, Method::POST, &format!("/api/t3000/programs/{valve_id}/disable"), None).await.ok_json();
    assert_eq!(r["status"], "stopped");
    let commands = server.get(&format!("/api/t3000/points/{out2}/commands")).await.ok_json();
    let commands = commands.as_array().or(commands["commands"].as_array()).cloned().unwrap_or_default();
    assert!(commands.iter().all(|c| c["priority"] != 16), "nothing at 16 any more: {commands:?}");

    // Deleted: gone, announced, and the system alarm is no longer active.
    let r = server.call(&op, Method::DELETE, &format!("/api/t3000/programs/{bad_id}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    server.get(&format!("/api/t3000/programs/{bad_id}")).await.assert_error("gone", StatusCode::NOT_FOUND, None);
    ws.expect("ProgramUpdate deleted", WAIT, |v| {
        v["type"] == "ProgramUpdate" && v["program_id"] == bad_id && v["change"] == "deleted"
    })
    .await;
    poll_until("the system alarm is over", WAIT, || async {
        program_alarm(&server).await.is_none_or(|a| a["state"] != "active")
    })
    .await;
    let list = server.call(&viewer, Method::GET, "/api/t3000/programs", None).await.ok_json();
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");

    // Audited.
    let audit = server.get("/api/t3000/audit?action=program.run").await.ok_json();
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");
}
