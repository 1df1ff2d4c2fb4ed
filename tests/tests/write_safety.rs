//! What a write may change, against the real binary and simulated devices (`t3000 simulate`): a
//! thermostat's configuration registers (its Modbus address, filters, factory defaults) are
//! written by admins only, over REST and the WebSocket alike, and the device keeps its register
//! when an operator tries; a value outside a point's range (150 to a percent output, -1 to a
//! 16-bit register, 0.5 to a digital output) is refused with the range and its units before the
//! device is asked; an operator's schedule is held to the same. The devices' registers are read
//! back over Modbus TCP.

use serde_json::{Value, json};
use std::time::Duration;
use t3_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Holding registers `address ..` of unit 1 at `addr` (Modbus TCP, function 03), read as a
/// client of our own would: the test looks at the device, not at what the server says of it.
async fn holding(addr: &str, address: u16, count: u16) -> Vec<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect to the simulator");
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03];
    req.extend_from_slice(&address.to_be_bytes());
    req.extend_from_slice(&count.to_be_bytes());
    s.write_all(&req).await.unwrap();
    let mut head = [0u8; 9];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(head[7], 0x03, "read {address}: exception {:#04x}", head[8]);
    let mut data = vec![0u8; usize::from(head[8])];
    s.read_exact(&mut data).await.unwrap();
    data.chunks(2).map(|w| u16::from_be_bytes([w[0], w[1]])).collect()
}

async fn point(server: &TestServer, device: &str, name: &str) -> Value {
    let points = server.get(&format!("/api/t3000/devices/{device}/points")).await.ok_json();
    let id = points["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["id"].as_u64())
        .unwrap_or_else(|| panic!("{device} has no point {name}"));
    server.get(&format!("/api/t3000/points/{id}")).await.ok_json()
}

/// `POST /points/{id}/value` as `client`: status, error code and message (empty when it worked).
async fn write(server: &TestServer, client: &reqwest::Client, id: &Value, body: Value) -> (u16, String, String) {
    let r = server.call(client, reqwest::Method::POST, &format!("/api/t3000/points/{id}/value"), Some(&body)).await;
    let e = if r.status.is_success() { Value::Null } else { r.json()["error"].clone() };
    (r.status.as_u16(), e["code"].as_str().unwrap_or("").to_owned(), e["message"].as_str().unwrap_or("").to_owned())
}

/// The audit entries of writes to point `id`.
async fn writes_audited(server: &TestServer, id: &Value) -> Vec<Value> {
    let a = server.get(&format!("/api/t3000/audit?action=point.write&target=point:{id}&limit=100")).await.ok_json();
    a.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_writes_need_an_admin_and_ranges_are_checked_before_the_device() {
    let tstat_sim = simulate(&["--listen", "127.0.0.1:0", "--count", "1", "--profile", "TSTAT8"]);
    let ahu_sim = simulate(&["--listen", "127.0.0.1:0", "--count", "1"]);
    let extra = format!(
        "[[devices]]\nname = \"tstat-1\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = {}\nunit_id = 1\n\
         profile = \"TSTAT8\"\npoll_interval_ms = 500\n{}",
        port_of(&tstat_sim.tcp),
        simulated_ahu(port_of(&ahu_sim.tcp))
    );
    let server = TestServer::start(&extra);
    poll_until("both devices online", Duration::from_secs(60), || async {
        let d = server.get("/api/t3000/devices").await.ok_json();
        d["items"].as_array().is_some_and(|a| a.len() == 2 && a.iter().all(|d| d["online"] == true))
    })
    .await;

    // Classes: the thermostat's address and factory-defaults registers are configuration, its
    // day setpoint a setpoint, its temperature a measurement; the list filters by class.
    let address = point(&server, "tstat-1", "MODBUS_ADDRESS").await;
    let defaults = point(&server, "tstat-1", "MODBUS_FACTORY_DEFAULTS").await;
    let filter = point(&server, "tstat-1", "MODBUS_FILTER").await;
    let setpoint = point(&server, "tstat-1", "MODBUS_DAY_SETPOINT").await;
    let temperature = point(&server, "tstat-1", "MODBUS_TEMPRATURE_CHIP").await;
    for (p, class) in [
        (&address, "configuration"),
        (&defaults, "configuration"),
        (&filter, "configuration"),
        (&setpoint, "setpoint"),
        (&temperature, "measurement"),
    ] {
        assert_eq!(p["class"], class, "{p}");
    }
    assert_eq!((&address["min"], &address["max"]), (&json!(0.0), &json!(255.0)), "an 8-bit register: {address}");
    assert_eq!((&filter["min"], &filter["max"]), (&json!(0.0), &json!(65535.0)), "a 16-bit register: {filter}");
    let device_id = &address["device_id"];
    let total = server.get(&format!("/api/t3000/points?device_id={device_id}&limit=1")).await.ok_json()["total"]
        .as_u64()
        .unwrap();
    let mut by_class = 0;
    for (class, member) in [("measurement", &temperature), ("setpoint", &setpoint), ("configuration", &address)] {
        let l = server.get(&format!("/api/t3000/points?device_id={device_id}&class={class}&limit=1000")).await;
        let l = l.ok_json();
        let items = l["items"].as_array().unwrap();
        assert!(items.iter().all(|p| p["class"] == class), "{class}");
        assert!(items.iter().any(|p| p["id"] == member["id"]), "{class} lists {}", member["name"]);
        by_class += l["total"].as_u64().unwrap();
    }
    assert_eq!(by_class, total, "every point is in one class");
    server.get("/api/t3000/points?class=everything").await.assert_error(
        "an unknown class",
        StatusCode::BAD_REQUEST,
        None,
    );

    // An operator cannot write a configuration register, over REST or the WebSocket; the device
    // keeps it. Registers: 6 the Modbus address, 142 the temperature filter.
    let op_token = crate::ws::token_of(&server, "otto", "operator").await;
    let op = client_with_token(&op_token);
    let before = holding(&tstat_sim.tcp, 142, 1).await[0];
    let new_filter = if before == 7 { 8.0 } else { 7.0 };
    for (p, value, register) in [(&address, 5.0, 6u16), (&filter, new_filter, 142), (&defaults, 1.0, 108)] {
        let was = holding(&tstat_sim.tcp, register, 1).await;
        let (status, code, message) = write(&server, &op, &p["id"], json!({"value": value})).await;
        assert_eq!((status, code.as_str()), (403, "forbidden"), "{}: {message}", p["name"]);
        let name = p["name"].as_str().unwrap();
        assert!(message.contains(name) && message.contains("admin"), "the message names the register: {message}");
        assert_eq!(holding(&tstat_sim.tcp, register, 1).await, was, "{name} unchanged on the device");
        assert!(writes_audited(&server, &p["id"]).await.is_empty(), "no write of {name} was attempted");
    }
    let mut ws = crate::ws::connect(&server, &op_token).await;
    let reply = ws.request(json!({"type": "WriteValue", "point_id": filter["id"], "value": new_filter})).await;
    assert_eq!((&reply["type"], &reply["code"]), (&json!("Error"), &json!("forbidden")), "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("MODBUS_FILTER"), "{reply}");
    let r =
        server.call(&op, reqwest::Method::POST, &format!("/api/t3000/points/{}/relinquish", filter["id"]), None).await;
    r.assert_error("an operator's relinquish of a configuration register", StatusCode::FORBIDDEN, Some("forbidden"));
    assert_eq!(holding(&tstat_sim.tcp, 142, 1).await, vec![before]);
    // Nor through a schedule of theirs.
    let schedule = all_week_schedule("filter", filter["id"].as_u64().unwrap(), "23:59");
    let r = server.call(&op, reqwest::Method::POST, "/api/t3000/schedules", Some(&schedule)).await;
    r.assert_error("an operator's schedule of a configuration register", StatusCode::FORBIDDEN, Some("forbidden"));
    assert_eq!(holding(&tstat_sim.tcp, 142, 1).await, vec![before]);

    // An operator writes a setpoint.
    let (status, code, message) = write(&server, &op, &setpoint["id"], json!({"value": 22.5})).await;
    assert_eq!(status, 200, "{code}: {message}");
    assert_eq!(holding(&tstat_sim.tcp, 345, 1).await, vec![225], "the day setpoint, x10");

    // An admin writes the configuration register, within its range.
    let admin = server.client.clone();
    let (status, code, message) = write(&server, &admin, &filter["id"], json!({"value": new_filter})).await;
    assert_eq!(status, 200, "{code}: {message}");
    assert_eq!(holding(&tstat_sim.tcp, 142, 1).await, vec![new_filter as u16]);
    // Outside the register's format: refused with the range, before the device is asked.
    for (p, value, range) in
        [(&filter, -1.0, "0 to 65535"), (&filter, 70000.0, "0 to 65535"), (&address, 300.0, "0 to 255")]
    {
        let audited = writes_audited(&server, &p["id"]).await.len();
        let (status, code, message) = write(&server, &admin, &p["id"], json!({"value": value})).await;
        assert_eq!((status, code.as_str()), (409, "invalid_value"), "{} {value}: {message}", p["name"]);
        assert!(message.contains(range) && message.contains(p["name"].as_str().unwrap()), "{message}");
        assert_eq!(writes_audited(&server, &p["id"]).await.len(), audited, "nothing reached the arbiter");
    }
    assert_eq!(holding(&tstat_sim.tcp, 142, 1).await, vec![new_filter as u16]);
    assert_eq!(holding(&tstat_sim.tcp, 6, 1).await, vec![1]);

    // A percent output (the simulated controller's OUT1: range 4, %) takes 0-100, once the server
    // has read its range code; 150 is refused with the range and unit, and the device is not
    // asked: its value and its auto/manual register (7356) stay.
    let ahu_point = |name: &'static str| {
        let server = &server;
        async move { point(server, "ahu-1", name).await }
    };
    poll_until("OUT1's range code is read", Duration::from_secs(30), || async {
        ahu_point("OUT1").await["range"] == 4
    })
    .await;
    let out1 = ahu_point("OUT1").await;
    assert_eq!(
        (&out1["class"], &out1["min"], &out1["max"], &out1["units"]),
        (&json!("setpoint"), &json!(0.0), &json!(100.0), &json!("%")),
        "{out1}"
    );
    let registers = holding(&ahu_sim.tcp, 7100, 2).await;
    let mode = holding(&ahu_sim.tcp, 7356, 1).await;
    let body = json!({"value": 150.0, "switch_to_manual": true});
    let (status, code, message) = write(&server, &op, &out1["id"], body).await;
    assert_eq!((status, code.as_str()), (409, "invalid_value"), "{message}");
    assert_eq!(message, "150 is outside the range of OUT1: 0 to 100 %");
    let reply = ws
        .request(json!({"type": "WriteValue", "point_id": out1["id"], "value": 150.0, "switch_to_manual": true}))
        .await;
    assert_eq!((&reply["code"], &reply["message"]), (&json!("invalid_value"), &json!(message)), "{reply}");
    let mut schedule = all_week_schedule("valve", out1["id"].as_u64().unwrap(), "23:59");
    schedule["outputs"][0]["on_value"] = json!(150.0);
    let r = server.call(&op, reqwest::Method::POST, "/api/t3000/schedules", Some(&schedule)).await;
    r.assert_error("a schedule writing 150 %", StatusCode::CONFLICT, Some("invalid_value"));
    let said = r.json()["error"]["message"].as_str().unwrap_or("").to_owned();
    assert_eq!(said, "outputs[0]: 150 is outside the range of OUT1: 0 to 100 %");
    assert!(writes_audited(&server, &out1["id"]).await.is_empty(), "the device was not asked");
    assert_eq!((holding(&ahu_sim.tcp, 7100, 2).await, holding(&ahu_sim.tcp, 7356, 1).await), (registers, mode));
    // Within the range it is written.
    let (status, code, message) =
        write(&server, &op, &out1["id"], json!({"value": 55.0, "switch_to_manual": true})).await;
    assert_eq!(status, 200, "{code}: {message}");
    assert_eq!(holding(&ahu_sim.tcp, 7100, 2).await, vec![0, 55_000]);

    // A digital output (OUT6, Off/On) takes 0 or 1.
    poll_until("OUT6 is known digital", Duration::from_secs(30), || async {
        ahu_point("OUT6").await["digital"] == true
    })
    .await;
    let out6 = ahu_point("OUT6").await;
    assert_eq!((&out6["min"], &out6["max"]), (&json!(0.0), &json!(1.0)), "{out6}");
    let (status, code, message) =
        write(&server, &op, &out6["id"], json!({"value": 0.5, "switch_to_manual": true})).await;
    assert_eq!((status, code.as_str()), (409, "invalid_value"), "{message}");
    assert_eq!(message, "OUT6 is digital (Off/On): write 0 (Off) or 1 (On), not 0.5");
}
