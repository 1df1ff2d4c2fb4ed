//! Field devices end to end: `t3000 simulate` as the building, `t3000 discover` finding it,
//! `t3000 serve` collecting from it, and `t3000 demo`'s simulated building.

use serde_json::Value;
use std::time::Duration;
use t3_tests::*;

async fn device(server: &TestServer, name: &str) -> Value {
    server.get(&format!("/api/t3000/devices/{name}")).await.ok_json()
}

async fn point_id(server: &TestServer, device: &str, point: &str) -> u64 {
    let points = server.get(&format!("/api/t3000/devices/{device}/points")).await.ok_json();
    points["points"]
        .as_array()
        .expect("points")
        .iter()
        .find(|p| p["name"] == point)
        .and_then(|p| p["id"].as_u64())
        .unwrap_or_else(|| panic!("{device} has no point {point}: {points}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_finds_simulated_controllers_over_tcp_and_udp() {
    let sim = simulate(&["--listen", "127.0.0.1:0", "--count", "2", "--udp", "127.0.0.1:0"]);
    let out = run(&["discover", "--tcp", "127.0.0.1", "--port", &port_of(&sim.tcp).to_string(), "--units", "1-4"]);
    assert!(out.status.success(), "discover failed: {}", out.stderr);
    let found: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(found.len(), 2, "units 1 and 2 answer, 3 and 4 do not: {}", out.stdout);
    for (f, unit) in found.iter().zip([1u64, 2]) {
        assert_eq!(f["unit_id"], unit, "{f}");
        assert_eq!(f["serial_number"], 10_000 + unit, "{f}");
        assert_eq!(f["profile"], "T3-controller", "{f}");
    }

    let out = run(&["discover", "--udp", sim.udp.as_deref().expect("udp"), "--timeout-ms", "1000"]);
    assert!(out.status.success(), "UDP discover failed: {}", out.stderr);
    let replies: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let serials: Vec<u64> = replies.iter().filter_map(|r| r["serial_number"].as_u64()).collect();
    assert!(serials.contains(&10_001), "the UDP scan found {serials:?}: {}", out.stdout);

    let out = run(&["discover"]);
    assert_eq!(out.status.code(), Some(2), "discover without a target is a usage error: {}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_collects_from_a_configured_device_and_keeps_point_ids() {
    let sim = simulate(&["--listen", "127.0.0.1:0", "--count", "1"]);
    let extra = simulated_ahu(port_of(&sim.tcp));
    let mut server = TestServer::start(&extra);
    poll_until("ahu-1 online", Duration::from_secs(30), || async {
        device(&server, "ahu-1").await["status"]["state"] == "online"
    })
    .await;
    let status = device(&server, "ahu-1").await;
    assert_eq!(status["profile"], "T3-controller");
    assert!(status["status"]["last_seen"].as_i64().is_some(), "{status}");

    let in1 = point_id(&server, "ahu-1", "IN1").await;
    let var128 = point_id(&server, "ahu-1", "VAR128").await;
    let points = server.get("/api/t3000/devices/ahu-1/points").await.ok_json();
    assert_eq!(points["points"].as_array().map(Vec::len), Some(256), "IN1..64, OUT1..64, VAR1..128");
    poll_until("a good IN1 value", Duration::from_secs(30), || async {
        let v = server.get(&format!("/api/t3000/points/{in1}/value")).await;
        v.status == StatusCode::OK && v.json()["quality"] == 0xC0
    })
    .await;
    let v = server.get(&format!("/api/t3000/points/{in1}/value")).await.ok_json();
    let t = v["value"].as_f64().expect("a number");
    assert!((-40.0..=120.0).contains(&t), "IN1 of a simulated controller reads {t}");

    // Point ids survive a restart; collection goes on into the same series.
    server.stop();
    server.restart();
    assert_eq!(point_id(&server, "ahu-1", "IN1").await, in1);
    assert_eq!(point_id(&server, "ahu-1", "VAR128").await, var128);
    let before = server.samples_of(in1 as u32).await.len();
    poll_until("more IN1 samples after the restart", Duration::from_secs(30), || async {
        server.samples_of(in1 as u32).await.len() > before
    })
    .await;

    let missing = server.get("/api/t3000/devices/nope").await;
    missing.assert_error("unknown device", StatusCode::NOT_FOUND, None);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_is_down_is_marked_offline_with_bad_samples() {
    // A port nothing listens on.
    let port = REFUSED_PORT;
    let extra = format!(
        r#"
        [collector]
        offline_after_failures = 2
        backoff_initial_ms = 50
        [[devices]]
        name = "gone"
        protocol = "modbus-tcp"
        ip_address = "127.0.0.1"
        port = {port}
        unit_id = 1
        profile = "T3-controller"
        poll_interval_ms = 100
        "#
    );
    let mut server = TestServer::start(&extra);
    poll_until("gone offline", Duration::from_secs(30), || async {
        device(&server, "gone").await["status"]["state"] == "offline"
    })
    .await;
    let status = device(&server, "gone").await;
    assert!(status["status"]["connection_errors"].as_u64() > Some(0), "{status}");
    assert!(status["status"]["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{status}");
    let in1 = point_id(&server, "gone", "IN1").await;
    poll_until("IN1's bad sample is stored", Duration::from_secs(30), || async {
        !server.samples_of(in1 as u32).await.is_empty()
    })
    .await;
    for s in server.samples_of(in1 as u32).await {
        assert_eq!(s.quality, 0x18, "comm failure quality: {s:?}");
        assert!(s.value.is_nan(), "a failed read stores no value (NaN), not {}", s.value);
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_collects_from_its_simulated_building() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_demo(&tmp.path().join("demo"));
    let devices = server.get("/api/t3000/devices").await.ok_json()["items"].clone();
    let names: Vec<&str> = devices.as_array().expect("list").iter().filter_map(|d| d["name"].as_str()).collect();
    assert_eq!(names.len(), 10, "{devices}");
    let profiles: std::collections::BTreeSet<&str> =
        devices.as_array().unwrap().iter().filter_map(|d| d["profile"].as_str()).collect();
    assert!(profiles.len() >= 4, "a mix of Temco products: {profiles:?}");
    poll_until("every demo device online", Duration::from_secs(60), || async {
        let d = server.get("/api/t3000/devices").await.ok_json();
        d["items"].as_array().unwrap().iter().all(|d| d["online"] == true && d["status"]["state"] == "online")
    })
    .await;
    let in1 = point_id(&server, "floor1-ahu", "IN1").await;
    poll_until("a live temperature", Duration::from_secs(30), || async {
        server.get(&format!("/api/t3000/points/{in1}/value")).await.status == StatusCode::OK
    })
    .await;
    server.stop();
}

#[test]
fn check_config_names_an_unknown_profile_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t3000.toml");
    std::fs::write(
        &path,
        "[[devices]]\nname = \"a\"\nprotocol = \"modbus-tcp\"\nip_address = \"10.0.0.5\"\nunit_id = 1\nprofile = \"T9-nothing\"\n",
    )
    .unwrap();
    let out = run(&["check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("t3000.toml:6: devices[0].profile: unknown profile `T9-nothing`"), "{}", out.stderr);

    std::fs::write(&path, "[[devices]]\nname = \"a\"\nprotocol = \"modbus-rtu\"\nunit_id = 1\nprofile = \"TSTAT8\"\n")
        .unwrap();
    let out = run(&["check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("devices[0].serial_port: is required for protocol \"modbus-rtu\""), "{}", out.stderr);
}

/// GET /points of the demo's device `device`, by point name.
async fn demo_points(server: &TestServer, device: &str) -> std::collections::HashMap<String, Value> {
    let d = self::device(server, device).await;
    let id = d["id"].as_i64().expect("device id");
    let page = server.get(&format!("/api/t3000/points?device_id={id}&limit=1000")).await.ok_json();
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| (p["name"].as_str().expect("name").to_owned(), p.clone()))
        .collect()
}

/// The demo building's points have names and units, as a commissioned building's: the T3 controllers'
/// labels and descriptions come from their panels' point records (the VAV controller's zones named
/// after its boxes), the library devices' main points are labelled and carry the units the register
/// library states (CO2 in ppm). A user's label wins over the panel's and the demo's, across a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_points_have_labels_descriptions_and_units() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_demo(&tmp.path().join("demo"));
    let ahu_labels = |points: &std::collections::HashMap<String, Value>| {
        ["IN1", "IN5", "IN7", "IN8", "OUT5", "OUT6", "OUT7", "VAR1", "VAR5"].map(|n| points[n]["label"].clone())
    };
    let want = ["ZN1 TEMP", "OA TEMP", "ZONE CO2", "SUP TEMP", "CHW VLV", "FAN CMD", "OA DMPR", "ZN1 SP", "OCC MODE"];
    poll_until("the AHU panel's labels", Duration::from_secs(60), || async {
        ahu_labels(&demo_points(&server, "floor1-ahu").await) == want
    })
    .await;
    let ahu = demo_points(&server, "floor1-ahu").await;
    assert_eq!(ahu["IN8"]["description"], "Supply air temp");
    assert_eq!(ahu["OUT6"]["description"], "Supply fan command");
    // Every point the panel uses (a range code other than "unused") has a label and a description.
    poll_until("range codes read", Duration::from_secs(60), || async {
        demo_points(&server, "floor1-ahu").await["IN1"]["range"].as_u64() == Some(1)
    })
    .await;
    let ahu = demo_points(&server, "floor1-ahu").await;
    let used: Vec<&Value> = ahu.values().filter(|p| p["range"].as_u64().is_some_and(|r| r != 0)).collect();
    assert_eq!(used.len(), 25, "IN1-10, OUT1-8, VAR1-7");
    for p in &used {
        assert!(p["label"].as_str().is_some_and(|l| !l.is_empty()), "{p}");
        assert!(p["description"].as_str().is_some_and(|d| !d.is_empty()), "{p}");
    }
    let vav = demo_points(&server, "floor2-vav").await;
    assert_eq!((vav["IN1"]["label"].as_str(), vav["OUT1"]["label"].as_str()), (Some("VAV1 TMP"), Some("VAV1 RHT")));

    // Library devices: units from the register library's text, labels from the demo.
    let co2 = demo_points(&server, "floor1-lobby-co2").await;
    assert_eq!(co2["MODBUS_CO2"]["units"], "ppm");
    assert_eq!(co2["MODBUS_CO2"]["label"], "RM CO2");
    assert_eq!(co2["MODBUS_TEMPERATURE_CELSIUS"]["units"], "°C");
    assert_eq!(co2["MODBUS_HUMIDITY"]["units"], "%RH");
    assert_eq!(
        (co2["MODBUS_ADDRESS"]["units"].as_str(), co2["MODBUS_ADDRESS"]["label"].as_str()),
        (Some(""), Some(""))
    );
    assert_eq!(co2["MODBUS_ADDRESS"]["description"], "Modbus device address", "the library's description");
    let tstat = demo_points(&server, "floor1-tstat-101").await;
    assert_eq!(tstat["MODBUS_TEMPRATURE_CHIP"]["label"], "ZONE TEMP");
    assert_eq!(tstat["MODBUS_COOLING_VALVE"]["units"], "%");

    // A user's labels win over the panel's and the demo's, and stay after a restart.
    let in1 = ahu["IN1"]["id"].as_u64().unwrap();
    let co2_id = co2["MODBUS_CO2"]["id"].as_u64().unwrap();
    for (id, label) in [(in1, "Lobby zone"), (co2_id, "Lobby CO2")] {
        server.put_json(&format!("/api/t3000/points/{id}"), &serde_json::json!({ "label": label })).await.ok_json();
    }
    let cleared = co2["MODBUS_HUMIDITY"]["id"].as_u64().unwrap();
    server.put_json(&format!("/api/t3000/points/{cleared}"), &serde_json::json!({ "label": "" })).await.ok_json();
    server.stop();
    server.restart();
    poll_until("the AHU panel's labels after a restart", Duration::from_secs(60), || async {
        demo_points(&server, "floor1-ahu").await["IN8"]["label"] == "SUP TEMP"
    })
    .await;
    assert_eq!(demo_points(&server, "floor1-ahu").await["IN1"]["label"], "Lobby zone");
    let co2 = demo_points(&server, "floor1-lobby-co2").await;
    assert_eq!(co2["MODBUS_CO2"]["label"], "Lobby CO2");
    assert_eq!(co2["MODBUS_CO2"]["units"], "ppm");
    assert_eq!(co2["MODBUS_HUMIDITY"]["label"], "", "a label a user cleared is not put back");
    assert_eq!(co2["MODBUS_TEMPERATURE_CELSIUS"]["label"], "RM TEMP");
    server.stop();
}
