//! Auto / manual end to end, with the real binary polling a simulated T3 controller (`t3000
//! simulate`) and a simulated CO2 sensor: `POST /points/{id}/mode` puts a point in manual and back
//! in auto (operators only, audited), the quality of its live value follows at once, back in auto
//! the controller drives the value again and the point's commands are gone (an expiry writes
//! nothing back); `GET /points/in-manual` says who put each point in manual and since when, or that
//! it was put in manual at the controller; a schedule that switched its output to manual gives it
//! back to auto when deleted; a point without an auto/manual switch is refused with 409.

use crate::ws::point_of;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use t3_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Auto/manual register of VAR2 on a T3 controller (8348 + 1).
const VAR2_AUTO_MANUAL: u16 = 8349;

/// Writes one holding register of unit 1 over Modbus TCP (function 06), as a panel or another tool
/// would, and checks the echo.
async fn modbus_write(addr: &str, register: u16, value: u16) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect to the simulator");
    let [rh, rl] = register.to_be_bytes();
    let [vh, vl] = value.to_be_bytes();
    let frame = [0, 7, 0, 0, 0, 6, 1, 6, rh, rl, vh, vl];
    s.write_all(&frame).await.unwrap();
    let mut echo = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut echo)).await.expect("an answer").unwrap();
    assert_eq!(echo, frame, "the write is echoed");
}

async fn point(server: &TestServer, id: u64) -> Value {
    server.get(&format!("/api/t3000/points/{id}")).await.ok_json()
}

async fn in_manual(server: &TestServer) -> Vec<Value> {
    server.get("/api/t3000/points/in-manual").await.ok_json()["items"].as_array().unwrap().clone()
}

async fn mode(server: &TestServer, client: &reqwest::Client, id: u64, body: Value) -> Reply {
    server.call(client, Method::POST, &format!("/api/t3000/points/{id}/mode"), Some(&body)).await
}

fn entry_of(list: &[Value], id: u64) -> Option<Value> {
    list.iter().find(|m| m["point"]["id"] == id).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_go_to_manual_and_back_to_auto_with_who_and_when() {
    let t3 = simulate(&["--listen", "127.0.0.1:0", "--count", "1"]);
    let co2 = simulate(&["--listen", "127.0.0.1:0", "--count", "1", "--profile", "CO2"]);
    let extra = format!(
        "{}\n[[devices]]\nname = \"co2\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = {}\nunit_id = 1\nprofile = \"CO2\"\npoll_interval_ms = 500\n",
        simulated_ahu(port_of(&t3.tcp)),
        port_of(&co2.tcp)
    );
    let mut server = TestServer::start(&extra);
    for d in ["ahu-1", "co2"] {
        poll_until(&format!("{d} online"), Duration::from_secs(30), || async {
            server.get(&format!("/api/t3000/devices/{d}")).await.ok_json()["online"] == true
        })
        .await;
    }
    let in1 = point_of(&server, "ahu-1", "IN1").await;
    let var2 = point_of(&server, "ahu-1", "VAR2").await;
    let out8 = point_of(&server, "ahu-1", "OUT8").await;
    let viewer = server.user_client("vi", "viewer").await;
    let op = server.user_client("op", "operator").await;
    poll_until("IN1 has a value", Duration::from_secs(30), || async { point(&server, in1).await["has_value"] == true })
        .await;
    let p = point(&server, in1).await;
    assert_eq!((p["has_auto_manual"].as_bool(), p["auto_manual"].as_bool()), (Some(true), Some(false)), "{p}");

    // Viewers change no mode; a body that is not a mode is refused.
    mode(&server, &viewer, in1, json!({"mode": "manual"})).await.assert_error(
        "viewer",
        StatusCode::FORBIDDEN,
        Some("forbidden"),
    );
    mode(&server, &op, in1, json!({"mode": "hand"})).await.assert_client_error("an unknown mode");
    mode(&server, &op, 999_999, json!({"mode": "manual"})).await.assert_error(
        "no such point",
        StatusCode::NOT_FOUND,
        None,
    );

    // To manual: confirmed, and the live value says so at once (no waiting for a poll).
    let r = mode(&server, &op, in1, json!({"mode": "manual"})).await.ok_json();
    assert_eq!(
        (r["mode"].as_str(), r["previous"].as_str(), r["changed"].as_bool(), r["quality"].as_str()),
        (Some("manual"), Some("auto"), Some(true), Some("good/local_override")),
        "{r}"
    );
    let p = point(&server, in1).await;
    assert_eq!((p["auto_manual"].as_bool(), p["quality"].as_str()), (Some(true), Some("good/local_override")), "{p}");

    // In manual an input takes a write; relinquishing the last command leaves it in manual at its
    // value (what an operator met: stranded, until put back in auto).
    let w = server
        .call(&op, Method::POST, &format!("/api/t3000/points/{in1}/value"), Some(&json!({"value": 55.5})))
        .await
        .ok_json();
    assert_eq!((w["written"].as_bool(), w["read_back"].as_f64()), (Some(true), Some(55.5)), "{w}");
    let r = server
        .call(&op, Method::POST, &format!("/api/t3000/points/{in1}/relinquish"), Some(&json!({"priority": 8})))
        .await
        .ok_json();
    assert!(r["effective"].is_null(), "{r}");
    let p = point(&server, in1).await;
    assert_eq!((p["auto_manual"].as_bool(), p["value"].as_f64()), (Some(true), Some(55.5)), "{p}");

    // The dashboard's list: IN1, put in manual by op with the auto/manual control, just now.
    let m = entry_of(&in_manual(&server).await, in1).expect("IN1 is listed in manual");
    assert_eq!(
        (m["by"].as_str(), m["via"].as_str(), m["at_controller"].as_bool(), m["remote"].as_str()),
        (Some("op"), Some("mode"), Some(false), Some("127.0.0.1")),
        "{m}"
    );
    assert!(m["since"].as_str().is_some_and(|t| t.ends_with('Z')), "{m}");
    assert_eq!(m["point"]["value"], 55.5, "{m}");

    // A command that expires in 2 s, then back to auto: the command is cleared (the controller owns
    // the value), the quality is good at once, and the controller drives the value again.
    let w = server
        .call(
            &op,
            Method::POST,
            &format!("/api/t3000/points/{in1}/value"),
            Some(&json!({"value": 44.5, "expires_in_secs": 2})),
        )
        .await
        .ok_json();
    assert_eq!(w["read_back"], 44.5, "{w}");
    let expiry = std::time::Instant::now() + Duration::from_secs(2);
    let r = mode(&server, &op, in1, json!({"mode": "auto"})).await.ok_json();
    assert_eq!(
        (r["mode"].as_str(), r["previous"].as_str(), r["changed"].as_bool(), r["quality"].as_str()),
        (Some("auto"), Some("manual"), Some(true), Some("good")),
        "{r}"
    );
    assert_eq!(r["cleared"].as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(r["cleared"][0]["value"], 44.5, "{r}");
    let commands = server.get(&format!("/api/t3000/points/{in1}/commands")).await.ok_json();
    assert_eq!(commands, json!([]));
    let p = point(&server, in1).await;
    assert_eq!((p["auto_manual"].as_bool(), p["quality"].as_str()), (Some(false), Some("good")), "{p}");
    poll_until("the controller drives IN1 again", Duration::from_secs(30), || async {
        let p = point(&server, in1).await;
        p["quality"] == "good" && p["value"].as_f64().is_some_and(|v| v != 44.5 && (5.0..45.0).contains(&v))
    })
    .await;
    // Past the expiry of the cleared command (the expiry task runs every second): nothing was
    // written back, and the point stays in auto.
    poll_until("the cleared command's expiry time has passed", Duration::from_secs(10), || async {
        std::time::Instant::now() > expiry + Duration::from_millis(2500)
    })
    .await;
    let audit = server.get(&format!("/api/t3000/audit?target=point:{in1}&limit=50")).await.ok_json();
    let audit = audit.as_array().unwrap();
    assert!(!audit.iter().any(|e| e["action"] == "point.expire"), "no expiry after auto: {audit:?}");
    let p = point(&server, in1).await;
    assert_eq!((p["auto_manual"].as_bool(), p["quality"].as_str()), (Some(false), Some("good")), "{p}");
    assert!(entry_of(&in_manual(&server).await, in1).is_none(), "IN1 is no longer listed");

    // The audit log has both changes: who, from where, from and to, and what was cleared.
    let changes: Vec<&Value> = audit.iter().filter(|e| e["action"] == "point.mode").collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    let (back, to_manual) = (changes[0], changes[1]);
    assert_eq!(
        (back["actor"].as_str(), back["remote"].as_str(), back["result"].as_str()),
        (Some("op"), Some("127.0.0.1"), Some("ok"))
    );
    assert_eq!((back["old"]["mode"].as_str(), back["new"]["mode"].as_str()), (Some("manual"), Some("auto")), "{back}");
    assert_eq!(back["new"]["cleared"][0]["value"], 44.5, "{back}");
    assert_eq!(
        (to_manual["old"]["mode"].as_str(), to_manual["new"]["mode"].as_str(), to_manual["result"].as_str()),
        (Some("auto"), Some("manual"), Some("ok")),
        "{to_manual}"
    );

    // A write that switches a point to manual is a mode change too.
    server
        .call(
            &op,
            Method::POST,
            &format!("/api/t3000/points/{out8}/value"),
            Some(&json!({"value": 1, "switch_to_manual": true})),
        )
        .await
        .ok_json();
    let m = entry_of(&in_manual(&server).await, out8).expect("OUT8 in manual");
    assert_eq!((m["by"].as_str(), m["via"].as_str()), (Some("op"), Some("write")), "{m}");
    assert_eq!(m["commands"][0]["value"], 1.0, "{m}");
    mode(&server, &op, out8, json!({"mode": "auto"})).await.ok_json();

    // Put in manual at the controller (not through the server): listed as such, since the time
    // the server first saw it there.
    let before = chrono::Utc::now();
    modbus_write(&t3.tcp, VAR2_AUTO_MANUAL, 1).await;
    poll_until("VAR2 is seen in manual", Duration::from_secs(30), || async {
        point(&server, var2).await["auto_manual"] == true
    })
    .await;
    let m = entry_of(&in_manual(&server).await, var2).expect("VAR2 in manual");
    assert_eq!((m["at_controller"].as_bool(), m["by"].is_null(), m["via"].is_null()), (Some(true), true, true), "{m}");
    let since: chrono::DateTime<chrono::Utc> = m["since"].as_str().expect("first seen").parse().unwrap();
    assert!(since >= before - chrono::Duration::seconds(1), "{m}");
    // A restart keeps since when it has been in manual.
    server.stop();
    server.restart();
    poll_until("ahu-1 online again", Duration::from_secs(30), || async {
        server.get("/api/t3000/devices/ahu-1").await.ok_json()["online"] == true
    })
    .await;
    let m = entry_of(&in_manual(&server).await, var2).expect("VAR2 in manual after the restart");
    assert_eq!(
        (m["at_controller"].as_bool(), m["since"].as_str()),
        (Some(true), Some(since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true).as_str())),
        "{m}"
    );
    // The auto/manual control puts it back.
    mode(&server, &op, var2, json!({"mode": "auto"})).await.ok_json();
    assert!(entry_of(&in_manual(&server).await, var2).is_none());

    // A schedule that switched its output to manual gives it back to auto when deleted.
    let s = server.call(&op, Method::POST, "/api/t3000/schedules", Some(&all_week_schedule("s", var2, "24:00"))).await;
    assert_eq!(s.status, StatusCode::CREATED, "{}", s.text());
    let sid = s.json()["id"].as_i64().unwrap();
    poll_until("the schedule switches VAR2 to manual", Duration::from_secs(30), || async {
        entry_of(&in_manual(&server).await, var2).is_some()
    })
    .await;
    let m = entry_of(&in_manual(&server).await, var2).unwrap();
    assert_eq!((m["by"].as_str(), m["via"].as_str()), (Some(format!("schedule:{sid}").as_str()), Some("write")), "{m}");
    let r = server.call(&op, Method::DELETE, &format!("/api/t3000/schedules/{sid}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let p = point(&server, var2).await;
    assert_eq!((p["auto_manual"].as_bool(), p["quality"].as_str()), (Some(false), Some("good")), "{p}");
    let last = server.get(&format!("/api/t3000/audit?target=point:{var2}&action=point.mode&limit=1")).await.ok_json();
    assert_eq!(
        (last[0]["actor"].as_str(), last[0]["new"]["mode"].as_str()),
        (Some(format!("schedule:{sid}").as_str()), Some("auto")),
        "{last}"
    );

    // Points without an auto/manual switch: a library product's register, a pushed point.
    let ppm = server.get("/api/t3000/devices/co2/points").await.ok_json()["points"][0].clone();
    assert_eq!(ppm["has_auto_manual"], false, "{ppm}");
    let r = mode(&server, &op, ppm["id"].as_u64().unwrap(), json!({"mode": "manual"})).await;
    r.assert_error("a CO2 sensor's register", StatusCode::CONFLICT, Some("no_auto_manual"));
    let e = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(e.contains(&format!("({} of co2) has no auto/manual switch", ppm["name"].as_str().unwrap())), "{e}");
    let pushed = server.post_json("/api/t3000/points", &json!({"name": "outdoor"})).await;
    assert_eq!(pushed.status, StatusCode::CREATED, "{}", pushed.text());
    let pushed = pushed.json()["id"].as_u64().unwrap();
    let r = mode(&server, &op, pushed, json!({"mode": "auto"})).await;
    r.assert_error("a pushed point", StatusCode::CONFLICT, Some("no_auto_manual"));
    let e = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(e.contains("has no auto/manual switch"), "{e}");
}
