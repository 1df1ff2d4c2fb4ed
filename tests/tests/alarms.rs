//! Alarm rules judged at once: a rule created, edited or enabled on a point whose latest value is
//! already past its limit raises its alarm when it is saved, not at the point's next sample; and an
//! acknowledged alarm keeps when it started.

use serde_json::{Value, json};
use std::time::Duration;
use t3_tests::*;

/// How long an alarm may take to appear: far below any heartbeat, far above the server's work.
const AT_ONCE: Duration = Duration::from_secs(3);

fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64
}

async fn alarm_of(server: &TestServer, rule: i64) -> Value {
    let all = server.get("/api/t3000/alarms?state=all").await.ok_json();
    all.as_array().unwrap().iter().find(|a| a["rule_id"] == rule).cloned().unwrap_or(Value::Null)
}

async fn wait_state(server: &TestServer, rule: i64, state: &str, what: &str) -> Value {
    poll_until(what, AT_ONCE, || async { alarm_of(server, rule).await["state"] == state }).await;
    alarm_of(server, rule).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_is_judged_against_the_latest_value_when_created_edited_or_enabled() {
    // A device that is not polled (a failed poll would store bad-quality samples over the pushed
    // ones): its points exist, and only pushed samples give them values.
    let port = REFUSED_PORT;
    let server = TestServer::start(&format!(
        "[[devices]]\nname = \"ahu\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = {port}\nunit_id = 1\nprofile = \"T3-controller\"\nenabled = false\n"
    ));
    let points = server.get("/api/t3000/devices/ahu/points").await.ok_json();
    let point = |name: &str| {
        points["points"].as_array().unwrap().iter().find(|p| p["name"] == name).and_then(|p| p["id"].as_u64()).unwrap()
    };
    let (var1, var2, var3) = (point("VAR1"), point("VAR2"), point("VAR3"));
    let at = now_us();
    server
        .ingest_ok(&[
            Sample::good(var1 as u32, at, 3.0),
            Sample::good(var2 as u32, at, 3.0),
            Sample::good(var3 as u32, at, 3.0),
        ])
        .await;
    let low = |p: u64, limit: f64, enabled: bool| {
        json!({"name": format!("low {p}"), "point_id": p, "enabled": enabled,
            "rule": {"condition": {"kind": "limits", "low": limit}}})
    };

    // Created below its limit: active at once, started at the sample.
    let created = server.create_alarm_rule(&low(var1, 5.0, true)).await;
    let a = wait_state(&server, created, "active", "the new rule's alarm").await;
    assert_eq!(a["started_us"], json!(at), "{a}");
    assert_eq!(a["level"], "low", "{a}");

    // Edited from a limit the value is within to one it is past.
    let edited = server.create_alarm_rule(&low(var2, 2.0, true)).await;
    assert_eq!(alarm_of(&server, edited).await["state"], "normal");
    let r = server.put_json(&format!("/api/t3000/alarms/rules/{edited}"), &low(var2, 4.0, true)).await;
    r.ok_json();
    wait_state(&server, edited, "active", "the tightened rule's alarm").await;

    // Enabled.
    let disabled = server.create_alarm_rule(&low(var3, 5.0, false)).await;
    assert_eq!(alarm_of(&server, disabled).await["state"], "normal");
    let r = server.put_json(&format!("/api/t3000/alarms/rules/{disabled}"), &low(var3, 5.0, true)).await;
    r.ok_json();
    wait_state(&server, disabled, "active", "the enabled rule's alarm").await;

    // Acknowledged: still unresolved, still started at the sample; since and acknowledged_us are
    // the acknowledgement.
    let ack = server.post_json(&format!("/api/t3000/alarms/{created}/ack"), &json!({})).await.ok_json();
    let a = alarm_of(&server, created).await;
    assert_eq!(a["state"], "acknowledged", "{a}");
    assert_eq!(a["started_us"], json!(at), "{a}");
    assert_eq!(a["acknowledged_us"], ack["transition"]["at_us"], "{a}");
    assert_eq!(a["since_us"], ack["transition"]["at_us"], "{a}");
    assert_eq!(a["acknowledged_by"], "admin", "{a}");
    let open = server.get("/api/t3000/alarms").await.ok_json();
    assert!(open.as_array().unwrap().iter().any(|a| a["rule_id"] == created), "acknowledged is open: {open}");
}
