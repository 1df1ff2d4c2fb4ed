//! The catalog and control API end to end: authentication and roles, buildings / floors / rooms,
//! devices added over the API polling a `t3000 simulate` device, points, writes through the
//! command arbiter (priorities, expiry, relinquish) and the audit log.

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use t3_tests::*;

fn anon() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_logout_throttling_and_password_change() {
    let server = TestServer::start("[auth]\nlogin_max_failures = 3\n");
    // Public: health, readiness, the OpenAPI document. Everything else needs a token.
    for path in ["/healthz", "/readyz", "/api/openapi.json", "/api/t3000/openapi.json"] {
        let r = server.call(&anon(), Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    }
    for path in ["/api/t3000/devices", "/api/t3000/points/1/value", "/api/t3000/buildings"] {
        let r = server.call(&anon(), Method::GET, path, None).await;
        r.assert_error(path, StatusCode::UNAUTHORIZED, Some("unauthorized"));
        assert_eq!(r.headers.get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));
    }
    let bad = server.call(&client_with_token("t3_not-a-token"), Method::GET, "/api/t3000/devices", None).await;
    bad.assert_error("a made-up token", StatusCode::UNAUTHORIZED, None);

    let login = |user: &'static str, pass: &'static str| {
        let server = &server;
        async move {
            server
                .call(
                    &anon(),
                    Method::POST,
                    "/api/t3000/auth/login",
                    Some(&json!({"username": user, "password": pass})),
                )
                .await
        }
    };
    login("admin", "wrong password").await.assert_error(
        "wrong password",
        StatusCode::UNAUTHORIZED,
        Some("invalid_credentials"),
    );
    login("nobody", "wrong password").await.assert_error(
        "unknown user",
        StatusCode::UNAUTHORIZED,
        Some("invalid_credentials"),
    );
    login("admin", "wrong again").await.assert_error("wrong password", StatusCode::UNAUTHORIZED, None);
    login("admin", "and again").await.assert_error("wrong password", StatusCode::UNAUTHORIZED, None);
    // Three failures for admin from this address: even the right password is refused for now.
    let throttled = login("admin", ADMIN_PASSWORD).await;
    throttled.assert_error("throttled", StatusCode::TOO_MANY_REQUESTS, Some("login_throttled"));
    assert!(throttled.headers.get("retry-after").is_some());

    // A session ends at logout.
    let viewer = server.user_client("vera", "viewer").await;
    assert_eq!(server.call(&viewer, Method::GET, "/api/t3000/auth/me", None).await.ok_json()["role"], "viewer");
    let r = server.call(&viewer, Method::POST, "/api/t3000/auth/logout", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    server.call(&viewer, Method::GET, "/api/t3000/auth/me", None).await.assert_error(
        "after logout",
        StatusCode::UNAUTHORIZED,
        None,
    );

    // Password change needs the current password, then the old one stops working.
    let op = server.user_client("otto", "operator").await;
    let change = |cur: &str, new: &str| json!({"current_password": cur, "new_password": new});
    server
        .call(&op, Method::POST, "/api/t3000/auth/password", Some(&change("wrong", "new-password-1")))
        .await
        .assert_error("wrong current password", StatusCode::FORBIDDEN, Some("wrong_password"));
    server
        .call(&op, Method::POST, "/api/t3000/auth/password", Some(&change("otto-password", "short")))
        .await
        .assert_error("weak password", StatusCode::UNPROCESSABLE_ENTITY, Some("weak_password"));
    let r = server
        .call(&op, Method::POST, "/api/t3000/auth/password", Some(&change("otto-password", "new-password-1")))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    login("otto", "otto-password").await.assert_error("old password", StatusCode::UNAUTHORIZED, None);
    assert_eq!(login("otto", "new-password-1").await.status, StatusCode::OK);

    // Machines use API tokens; revoking one stops it at once.
    let issued = server.post_json("/api/t3000/tokens", &json!({"name": "bms-gateway"})).await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text());
    let issued = issued.json();
    let machine = client_with_token(issued["token"].as_str().unwrap());
    assert_eq!(server.call(&machine, Method::GET, "/api/t3000/devices", None).await.status, StatusCode::OK);
    let listed = server.get("/api/t3000/tokens").await.ok_json();
    assert!(
        listed.to_string().contains("bms-gateway") && !listed.to_string().contains("t3_"),
        "no secrets listed: {listed}"
    );
    let r = server.delete(&format!("/api/t3000/tokens/{}", issued["id"])).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    server.call(&machine, Method::GET, "/api/t3000/devices", None).await.assert_error(
        "revoked",
        StatusCode::UNAUTHORIZED,
        None,
    );

    // The last admin cannot be demoted or deleted.
    let users = server.get("/api/t3000/users").await.ok_json();
    let admin_id = users.as_array().unwrap().iter().find(|u| u["username"] == "admin").unwrap()["id"].clone();
    server.put_json(&format!("/api/t3000/users/{admin_id}"), &json!({"role": "viewer"})).await.assert_error(
        "last admin",
        StatusCode::CONFLICT,
        Some("last_admin"),
    );

    // Logins are audited, failures included.
    let audit = server.get("/api/t3000/audit?action=login&limit=100").await.ok_json();
    let results: Vec<&str> = audit.as_array().unwrap().iter().filter_map(|e| e["result"].as_str()).collect();
    assert!(
        results.contains(&"invalid credentials") && results.contains(&"throttled") && results.contains(&"ok"),
        "{results:?}"
    );
    assert!(audit.as_array().unwrap().iter().all(|e| e["remote"] == "127.0.0.1"), "{audit}");
}

/// Every endpoint x anonymous / viewer / operator / admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorisation_matrix() {
    let server = TestServer::start("");
    let viewer = server.user_client("vic", "viewer").await;
    let operator = server.user_client("ola", "operator").await;
    // (method, path, body, least role: 0 public, 1 viewer, 2 operator, 3 admin)
    let b = json!({"name": "x"});
    let cases: Vec<(Method, &str, Option<Value>, u8)> = vec![
        (Method::GET, "/healthz", None, 0),
        (Method::GET, "/readyz", None, 0),
        (Method::GET, "/api/openapi.json", None, 0),
        (Method::GET, "/api/t3000/buildings", None, 1),
        (Method::POST, "/api/t3000/buildings", Some(b.clone()), 3),
        (Method::PUT, "/api/t3000/buildings/999", Some(b.clone()), 3),
        (Method::DELETE, "/api/t3000/buildings/999", None, 3),
        (Method::GET, "/api/t3000/buildings/999/floors", None, 1),
        (Method::POST, "/api/t3000/buildings/999/floors", Some(b.clone()), 3),
        (Method::GET, "/api/t3000/floors/999/rooms", None, 1),
        (Method::POST, "/api/t3000/floors/999/rooms", Some(b.clone()), 3),
        (Method::PUT, "/api/t3000/floors/999", Some(b.clone()), 3),
        (Method::DELETE, "/api/t3000/rooms/999", None, 3),
        (Method::GET, "/api/t3000/devices", None, 1),
        (Method::POST, "/api/t3000/devices", Some(json!({})), 3),
        (Method::PUT, "/api/t3000/devices/999", Some(json!({})), 3),
        (Method::DELETE, "/api/t3000/devices/999", None, 3),
        (Method::GET, "/api/t3000/devices/999/points", None, 1),
        (Method::GET, "/api/t3000/devices/999/status", None, 1),
        (Method::POST, "/api/t3000/devices/discover", Some(json!({})), 3),
        (Method::GET, "/api/t3000/points", None, 1),
        (Method::POST, "/api/t3000/points", Some(json!({})), 3),
        (Method::PUT, "/api/t3000/points/999", Some(json!({})), 3),
        (Method::DELETE, "/api/t3000/points/999", None, 3),
        (Method::GET, "/api/t3000/points/999/value", None, 1),
        (Method::POST, "/api/t3000/points/999/value", Some(json!({"value": 1})), 2),
        (Method::POST, "/api/t3000/points/999/relinquish", Some(json!({})), 2),
        (Method::POST, "/api/t3000/points/999/mode", Some(json!({"mode": "auto"})), 2),
        (Method::GET, "/api/t3000/points/in-manual", None, 1),
        (Method::GET, "/api/t3000/points/999/commands", None, 1),
        (Method::GET, "/api/t3000/points/batch", None, 1),
        (Method::GET, "/api/t3000/points/999/history?from=now-1h&to=now", None, 1),
        (Method::POST, "/api/t3000/history/batch", Some(json!({})), 1),
        (Method::POST, "/api/t3000/query", Some(json!({"sql": "SELECT 1"})), 1),
        (Method::GET, "/api/t3000/export?points=1&from=now-1h&to=now", None, 1),
        (Method::POST, "/api/t3000/samples", Some(json!([])), 2),
        (Method::GET, "/api/t3000/programs", None, 1),
        (Method::POST, "/api/t3000/programs", Some(json!({})), 2),
        (Method::GET, "/api/t3000/programs/999", None, 1),
        (Method::PUT, "/api/t3000/programs/999", Some(json!({})), 2),
        (Method::DELETE, "/api/t3000/programs/999", None, 2),
        (Method::POST, "/api/t3000/programs/999/run", None, 2),
        (Method::POST, "/api/t3000/programs/999/enable", None, 2),
        (Method::POST, "/api/t3000/programs/999/disable", None, 2),
        (Method::POST, "/api/t3000/programs/check", Some(json!({})), 2),
        (Method::GET, "/api/t3000/users", None, 3),
        (Method::POST, "/api/t3000/users", Some(json!({})), 3),
        (Method::GET, "/api/t3000/tokens", None, 3),
        (Method::GET, "/api/t3000/audit", None, 3),
        (Method::GET, "/api/t3000/auth/me", None, 1),
        (Method::GET, "/api/t3000/buildings/999", None, 1),
        (Method::GET, "/api/t3000/devices/999", None, 1),
        (Method::GET, "/api/t3000/points/999", None, 1),
        (Method::GET, "/api/t3000/schedules", None, 1),
        (Method::GET, "/api/t3000/schedules/999", None, 1),
        (Method::POST, "/api/t3000/schedules", Some(json!({})), 2),
        (Method::PUT, "/api/t3000/schedules/999", Some(json!({})), 2),
        (Method::DELETE, "/api/t3000/schedules/999", None, 2),
        (Method::POST, "/api/t3000/schedules/999/run", None, 2),
        (Method::GET, "/api/t3000/calendars", None, 1),
        (Method::POST, "/api/t3000/calendars", Some(json!({})), 2),
        (Method::PUT, "/api/t3000/calendars/999", Some(json!({})), 2),
        (Method::DELETE, "/api/t3000/calendars/999", None, 2),
        (Method::GET, "/api/t3000/alarms", None, 1),
        (Method::GET, "/api/t3000/alarms/history", None, 1),
        (Method::GET, "/api/t3000/alarms/rules", None, 1),
        (Method::POST, "/api/t3000/alarms/rules", Some(json!({})), 3),
        (Method::PUT, "/api/t3000/alarms/rules/999", Some(json!({})), 3),
        (Method::DELETE, "/api/t3000/alarms/rules/999", None, 3),
        (Method::POST, "/api/t3000/alarms/999/ack", None, 2),
        (Method::PUT, "/api/t3000/users/999", Some(json!({})), 3),
        (Method::DELETE, "/api/t3000/users/999", None, 3),
        (Method::POST, "/api/t3000/tokens", Some(json!({})), 3),
        (Method::DELETE, "/api/t3000/tokens/999", None, 3),
        (Method::GET, "/metrics", None, 1),
        (Method::POST, "/api/t3000/auth/password", Some(json!({})), 1),
        (Method::GET, "/api/t3000/trendlogs", None, 1),
        (Method::POST, "/api/t3000/trendlogs", Some(json!({})), 3),
        (Method::PUT, "/api/t3000/trendlogs/999", Some(json!({})), 3),
        (Method::DELETE, "/api/t3000/trendlogs/999", None, 3),
        (Method::POST, "/api/t3000/ws/ticket", None, 1),
        (Method::POST, "/api/t3000/backup", Some(json!({"base": {"format": 9}})), 3),
        // Without the upgrade headers: 400 `not_a_websocket` once authorised.
        (Method::GET, "/api/t3000/ws", None, 1),
    ];
    let clients = [(1u8, &viewer, "viewer"), (2, &operator, "operator"), (3, &server.client, "admin")];
    // Every endpoint of the matrix is in the OpenAPI document.
    let doc = server.call(&anon(), Method::GET, "/api/openapi.json", None).await.ok_json();
    for (method, path, _, _) in &cases {
        let template: Vec<String> = path
            .split('?')
            .next()
            .unwrap()
            .split('/')
            .map(|seg| if seg.parse::<u64>().is_ok() { "{id}".to_owned() } else { seg.to_owned() })
            .collect();
        let template = template.join("/");
        let m = method.as_str().to_lowercase();
        assert!(doc["paths"][&template][&m].is_object(), "the OpenAPI document lacks {m} {template}");
    }
    for (method, path, body, least) in &cases {
        let r = server.call(&anon(), method.clone(), path, body.as_ref()).await;
        if *least == 0 {
            assert_eq!(r.status, StatusCode::OK, "anonymous {method} {path}: {}", r.text());
            continue;
        }
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "anonymous {method} {path}: {}", r.text());
        for (level, client, name) in clients {
            let r = server.call(client, method.clone(), path, body.as_ref()).await;
            if level < *least {
                r.assert_error(&format!("{name} {method} {path}"), StatusCode::FORBIDDEN, Some("forbidden"));
            } else {
                assert!(
                    r.status != StatusCode::UNAUTHORIZED
                        && r.status != StatusCode::FORBIDDEN
                        && !r.status.is_server_error(),
                    "{name} {method} {path}: {} {}",
                    r.status,
                    r.text()
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buildings_floors_and_rooms() {
    let server = TestServer::start("");
    let created = |r: Reply| {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()
    };
    let hq =
        created(server.post_json("/api/t3000/buildings", &json!({"name": "HQ", "time_zone": "Europe/Berlin"})).await);
    let annex = created(server.post_json("/api/t3000/buildings", &json!({"name": "Annex"})).await);
    assert_eq!(annex["time_zone"], "UTC");
    let (hq_id, annex_id) = (hq["id"].as_i64().unwrap(), annex["id"].as_i64().unwrap());
    let f2 = created(
        server.post_json(&format!("/api/t3000/buildings/{hq_id}/floors"), &json!({"name": "Second", "level": 2})).await,
    );
    let f1 = created(
        server.post_json(&format!("/api/t3000/buildings/{hq_id}/floors"), &json!({"name": "First", "level": 1})).await,
    );
    let room =
        created(server.post_json(&format!("/api/t3000/floors/{}/rooms", f1["id"]), &json!({"name": "101"})).await);
    created(server.post_json(&format!("/api/t3000/floors/{}/rooms", f1["id"]), &json!({"name": "102"})).await);

    // The tree: floors lowest first, each with its rooms.
    let tree = server.get(&format!("/api/t3000/buildings/{hq_id}")).await.ok_json();
    let floors: Vec<&str> = tree["floors"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(floors, ["First", "Second"]);
    assert_eq!(tree["floors"][0]["rooms"].as_array().unwrap().len(), 2);
    let rooms = server.get(&format!("/api/t3000/floors/{}/rooms", f1["id"])).await.ok_json();
    assert_eq!(rooms.as_array().unwrap().len(), 2);

    // Search and paging.
    let found = server.get("/api/t3000/buildings?q=ann").await.ok_json();
    assert_eq!(found["total"], 1);
    assert_eq!(found["items"][0]["id"], annex_id);
    let page = server.get("/api/t3000/buildings?limit=1&offset=1").await.ok_json();
    assert_eq!((page["total"].as_u64(), page["items"].as_array().unwrap().len()), (Some(2), 1));

    // Updates, and bad input answered with a 4xx naming the problem.
    let r = server.put_json(&format!("/api/t3000/rooms/{}", room["id"]), &json!({"name": "101 Reception"})).await;
    assert_eq!(r.ok_json()["name"], "101 Reception");
    server.post_json("/api/t3000/buildings", &json!({"name": "X", "time_zone": "Mars/Olympus"})).await.assert_error(
        "bad time zone",
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("invalid_time_zone"),
    );
    server.post_json("/api/t3000/buildings", &json!({"name": ""})).await.assert_error(
        "empty name",
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
    );
    server.post_json("/api/t3000/buildings", &json!({"nme": "typo"})).await.assert_error(
        "unknown field",
        StatusCode::BAD_REQUEST,
        Some("invalid_json"),
    );
    server.post_json("/api/t3000/buildings/9999/floors", &json!({"name": "F"})).await.assert_error(
        "no building",
        StatusCode::NOT_FOUND,
        None,
    );

    // Deleting a building deletes its floors and rooms, in one go.
    let r = server.delete(&format!("/api/t3000/buildings/{hq_id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    server.get(&format!("/api/t3000/floors/{}/rooms", f2["id"])).await.assert_error(
        "floor gone",
        StatusCode::NOT_FOUND,
        None,
    );
    let r = server.delete(&format!("/api/t3000/rooms/{}", room["id"])).await;
    r.assert_error("room gone", StatusCode::NOT_FOUND, None);

    // The audit log has each change with old and new.
    let audit = server.get("/api/t3000/audit?action=room.update").await.ok_json();
    assert_eq!(audit[0]["old"]["name"], "101");
    assert_eq!(audit[0]["new"]["name"], "101 Reception");
    assert_eq!(audit[0]["actor"], "admin");
}

async fn point_of(server: &TestServer, device: &str, name: &str) -> u64 {
    let points = server.get(&format!("/api/t3000/devices/{device}/points")).await.ok_json();
    points["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["id"].as_u64())
        .unwrap_or_else(|| panic!("{device} has no point {name}: {points}"))
}

/// A device added over the API polls at once, moves between rooms, restarts when changed, stops
/// when deleted; its points can be labelled, created and deleted; a configured device is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_and_points_over_the_api_reach_the_collector() {
    let sim = simulate(&["--listen", "127.0.0.1:0", "--count", "2"]);
    let port = port_of(&sim.tcp);
    let extra = format!(
        "[[devices]]\nname = \"from-config\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = {port}\nunit_id = 2\nprofile = \"T3-controller\"\n"
    );
    let server = TestServer::start(&extra);
    let b = server.post_json("/api/t3000/buildings", &json!({"name": "B"})).await.json();
    let f = server.post_json(&format!("/api/t3000/buildings/{}/floors", b["id"]), &json!({"name": "F"})).await.json();
    let room = server.post_json(&format!("/api/t3000/floors/{}/rooms", f["id"]), &json!({"name": "R"})).await.json();

    let body = json!({
        "name": "ahu-api", "protocol": "modbus-tcp", "ip_address": "127.0.0.1", "port": port, "unit_id": 1,
        "profile": "T3-controller", "poll_interval_ms": 200, "room_id": room["id"],
        "points": [{"name": "VAR2", "enabled": false}]
    });
    let r = server.post_json("/api/t3000/devices", &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let dev = r.json();
    let id = dev["id"].as_i64().unwrap();
    assert_eq!(
        (dev["floor_id"].clone(), dev["building_id"].clone()),
        (f["id"].clone(), b["id"].clone()),
        "the room places it: {dev}"
    );
    assert_eq!(dev["source"], "api");
    poll_until("ahu-api online", Duration::from_secs(30), || async {
        server.get(&format!("/api/t3000/devices/{id}")).await.ok_json()["online"] == true
    })
    .await;
    let d = server.get(&format!("/api/t3000/devices/{id}")).await.ok_json();
    assert_eq!(d["point_counts"]["inputs"], 64);
    assert_eq!(d["point_counts"]["variables"], 127, "VAR2 is disabled: {d}");
    assert!(d["last_seen"].as_str().is_some_and(|s| s.ends_with('Z')), "{d}");
    let in1 = point_of(&server, "ahu-api", "IN1").await;
    poll_until("IN1 has a value", Duration::from_secs(30), || async {
        server.get(&format!("/api/t3000/points/{in1}/value")).await.status == StatusCode::OK
    })
    .await;

    // Range codes as the device reports them: the simulator's IN1 is analog (flag in the high byte
    // of its range register) with range 1, a thermistor in deg C.
    poll_until("IN1's range code is read", Duration::from_secs(30), || async {
        server.get(&format!("/api/t3000/points/{in1}")).await.ok_json()["range"].is_u64()
    })
    .await;
    let p = server.get(&format!("/api/t3000/points/{in1}")).await.ok_json();
    assert_eq!(
        (&p["range"], &p["digital"], &p["range_name"], &p["units"]),
        (&json!(1), &json!(false), &json!("°C"), &json!("°C"))
    );
    // IN9, occupancy: digital, range 10, and T3000's names of its two states; no units.
    let in9 = point_of(&server, "ahu-api", "IN9").await;
    let p = server.get(&format!("/api/t3000/points/{in9}")).await.ok_json();
    assert_eq!(
        (&p["digital"], &p["range_name"], &p["units"]),
        (&json!(true), &json!("Unoccupied/Occupied"), &json!("")),
        "{p}"
    );

    // Filters: by room, by online, by name.
    let in_room = server.get(&format!("/api/t3000/devices?room_id={}", room["id"])).await.ok_json();
    assert_eq!(in_room["total"], 1);
    let by_name = server.get("/api/t3000/devices?q=CONFIG").await.ok_json();
    assert_eq!(by_name["items"][0]["name"], "from-config");

    // Points: list with filters and values, label one, create VAR2 (disabled above) and see it polled.
    let vars = server.get(&format!("/api/t3000/points?device_id={id}&point_type=variable&limit=1000")).await.ok_json();
    assert_eq!(vars["total"], 127);
    let r = server.put_json(&format!("/api/t3000/points/{in1}"), &json!({"label": "Lobby air", "units": "degC"})).await;
    assert_eq!(r.ok_json()["label"], "Lobby air");
    // (The simulated panel's own descriptions are searched too: "Supply air temp" is IN8's.)
    let found = server.get("/api/t3000/points?q=lobby").await.ok_json();
    assert_eq!(found["items"][0]["id"], in1);
    // Every word is found in the name, label, description or device name.
    let found = server.get("/api/t3000/points?q=AHU-api%20lobby").await.ok_json();
    assert_eq!((found["total"].as_u64(), &found["items"][0]["id"]), (Some(1), &json!(in1)), "{found}");
    assert_eq!(server.get("/api/t3000/points?q=ahu-api%20nothing-like-this").await.ok_json()["total"], 0);
    let profiles = server.get("/api/t3000/profiles").await.ok_json();
    let t3 = profiles.as_array().unwrap().iter().find(|p| p["name"] == "T3-controller").expect("T3-controller");
    assert!(t3["points"].as_u64() >= Some(256) && !t3["product_models"].as_array().unwrap().is_empty(), "{t3}");
    assert_eq!(profiles.as_array().unwrap().len(), 25, "the T3 controller and Temco's 24 products");
    assert_eq!(found["items"][0]["units"], "degC");
    assert!(found["items"][0]["value"].is_number(), "{found}");
    let r = server.post_json("/api/t3000/points", &json!({"device_id": id, "name": "var2", "label": "Setpoint"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let var2 = r.json()["id"].as_u64().unwrap();
    poll_until("VAR2 starts producing history", Duration::from_secs(30), || async {
        !server.samples_of(var2 as u32).await.is_empty()
    })
    .await;
    server.post_json("/api/t3000/points", &json!({"device_id": id, "name": "VAR2"})).await.assert_error(
        "already polled",
        StatusCode::CONFLICT,
        Some("exists"),
    );
    // The device is a record, so its profile's points are what is there: one it lacks is not found.
    server.post_json("/api/t3000/points", &json!({"device_id": id, "name": "VAR999"})).await.assert_error(
        "not in the profile",
        StatusCode::NOT_FOUND,
        Some("unknown_point"),
    );
    // A manual point takes pushed values.
    let manual = server.post_json("/api/t3000/points", &json!({"name": "outdoor-temp", "units": "degC"})).await;
    assert_eq!(manual.status, StatusCode::CREATED, "{}", manual.text());
    let manual_id = manual.json()["id"].as_u64().unwrap();
    server.ingest_ok(&[Sample::good(manual_id as u32, BASE_TS, 4.5)]).await;
    let m = server.get(&format!("/api/t3000/points/{manual_id}")).await.ok_json();
    assert_eq!((m["point_type"].as_str(), m["value"].as_f64()), (Some("manual"), Some(4.5)));
    let v = server.get(&format!("/api/t3000/points/{manual_id}/value")).await.ok_json();
    assert_eq!((v["units"].as_str(), v["quality_name"].as_str()), (Some("degC"), Some("good")), "{v}");
    assert_eq!(v["timestamp"], "2024-01-01T00:00:00.000000Z");
    // What a manual point is, not what a body says, refuses polling settings and writes: 409.
    let r = server.put_json(&format!("/api/t3000/points/{manual_id}"), &json!({"trend": {"interval_ms": 1000}})).await;
    r.assert_error("polling a manual point", StatusCode::CONFLICT, Some("invalid_trend"));
    let r = server.post_json(&format!("/api/t3000/points/{manual_id}/value"), &json!({"value": 1.0})).await;
    r.assert_error("writing a manual point", StatusCode::CONFLICT, Some("not_writable"));

    // A trend log names points that belong together.
    let tl = server
        .post_json(
            "/api/t3000/trendlogs",
            &json!({"name": "AHU temps", "point_ids": [in1, manual_id], "interval_ms": 5000}),
        )
        .await;
    assert_eq!(tl.status, StatusCode::CREATED, "{}", tl.text());
    let tl_id = tl.json()["id"].clone();
    server.post_json("/api/t3000/trendlogs", &json!({"name": "bad", "point_ids": [999_999]})).await.assert_error(
        "unknown point",
        StatusCode::NOT_FOUND,
        Some("unknown_point"),
    );
    let r = server
        .put_json(&format!("/api/t3000/trendlogs/{tl_id}"), &json!({"name": "AHU", "point_ids": [in1]}))
        .await
        .ok_json();
    assert_eq!((r["point_ids"].as_array().map(Vec::len), r["interval_ms"].as_u64()), (Some(1), Some(60_000)), "{r}");
    assert_eq!(server.get("/api/t3000/trendlogs").await.ok_json()[0]["name"], "AHU");
    assert_eq!(server.delete(&format!("/api/t3000/trendlogs/{tl_id}")).await.status, StatusCode::NO_CONTENT);

    // Deleting a point stops its polling; history stays.
    assert_eq!(server.delete(&format!("/api/t3000/points/{var2}")).await.status, StatusCode::NO_CONTENT);
    let d = server.get(&format!("/api/t3000/devices/{id}")).await.ok_json();
    assert_eq!(d["point_counts"]["variables"], 127);
    assert!(!server.samples_of(var2 as u32).await.is_empty());

    // A changed device restarts with its new settings; a renamed one keeps its point ids.
    let mut changed = body.clone();
    changed["name"] = json!("ahu-renamed");
    changed["poll_interval_ms"] = json!(500);
    let r = server.put_json(&format!("/api/t3000/devices/{id}"), &changed).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(point_of(&server, "ahu-renamed", "IN1").await, in1);
    // A change the device cannot be polled with (its 32-bit points need two registers a read) is
    // refused, and the device goes on as it was: same definition, still polled.
    let mut narrow = changed.clone();
    narrow["name"] = json!("ahu-narrow");
    narrow["max_registers"] = json!(1);
    let r = server.put_json(&format!("/api/t3000/devices/{id}"), &narrow).await;
    r.assert_error("points wider than max_registers", StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_device"));
    let d = server.get(&format!("/api/t3000/devices/{id}")).await.ok_json();
    assert_eq!((d["name"].as_str(), d["config"]["max_registers"].is_null()), (Some("ahu-renamed"), true), "{d}");
    assert!(d["status"].is_object(), "polled again: {d}");
    assert_eq!(point_of(&server, "ahu-renamed", "IN1").await, in1);
    // A place that does not exist is not found; places that exist but apart conflict.
    let mut placed = changed.clone();
    placed["building_id"] = json!(999_999);
    placed["floor_id"] = Value::Null;
    placed["room_id"] = Value::Null;
    let r = server.put_json(&format!("/api/t3000/devices/{id}"), &placed).await;
    r.assert_error("no such building", StatusCode::NOT_FOUND, Some("not_found"));
    placed["building_id"] = json!(999_999);
    placed["room_id"] = room["id"].clone();
    let r = server.put_json(&format!("/api/t3000/devices/{id}"), &placed).await;
    r.assert_error("a room outside the building", StatusCode::CONFLICT, Some("invalid_place"));

    // The configuration file's device: place yes, settings no, delete no.
    let cfg_dev = server.get("/api/t3000/devices/from-config").await.ok_json();
    let mut moved = cfg_dev["config"].clone();
    moved["room_id"] = room["id"].clone();
    let r = server.put_json("/api/t3000/devices/from-config", &moved).await;
    assert_eq!(r.ok_json()["room_id"], room["id"]);
    let mut edited = cfg_dev["config"].clone();
    edited["poll_interval_ms"] = json!(5000);
    server.put_json("/api/t3000/devices/from-config", &edited).await.assert_error(
        "config device",
        StatusCode::CONFLICT,
        Some("defined_in_config"),
    );
    server.delete("/api/t3000/devices/from-config").await.assert_error("config device", StatusCode::CONFLICT, None);

    // Bad devices are refused with the field named; nothing is added. A name another device has
    // is a valid body that conflicts with what is there.
    let dup = server.post_json("/api/t3000/devices", &json!({"name": "from-config", "protocol": "modbus-tcp", "ip_address": "127.0.0.1", "unit_id": 1, "profile": "T3-controller"})).await;
    dup.assert_error("duplicate name", StatusCode::CONFLICT, Some("device_conflict"));
    assert!(dup.json()["error"]["message"].as_str().unwrap().starts_with("name: "), "{}", dup.text());
    let unknown = server
        .post_json(
            "/api/t3000/devices",
            &json!({"name": "x", "protocol": "modbus-tcp", "ip_address": "127.0.0.1", "unit_id": 1, "profile": "T9"}),
        )
        .await;
    unknown.assert_error("unknown profile", StatusCode::UNPROCESSABLE_ENTITY, None);
    assert!(
        unknown.json()["error"]["message"].as_str().unwrap().starts_with("profile: unknown profile `T9`"),
        "{}",
        unknown.text()
    );
    // A name no protocol can have is malformed; a well-formed name no loaded plugin serves is a
    // device the server cannot poll, named in the answer.
    server.post_json("/api/t3000/devices", &json!({"name": "x", "protocol": "Carrier Pigeon"})).await.assert_error(
        "malformed protocol",
        StatusCode::BAD_REQUEST,
        None,
    );
    let pigeon = server.post_json("/api/t3000/devices", &json!({"name": "x", "protocol": "carrier-pigeon"})).await;
    pigeon.assert_error("unserved protocol", StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_device"));
    assert!(
        pigeon.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no loaded plugin serves protocol \"carrier-pigeon\""),
        "{}",
        pigeon.text()
    );
    assert_eq!(server.get("/api/t3000/devices").await.ok_json()["total"], 2);

    // Deleting stops polling at once.
    assert_eq!(server.delete(&format!("/api/t3000/devices/{id}")).await.status, StatusCode::NO_CONTENT);
    server.get(&format!("/api/t3000/devices/{id}/status")).await.assert_error("deleted", StatusCode::NOT_FOUND, None);
    let before = server.samples_of(in1 as u32).await.len();
    // Two poll intervals of the deleted device pass while the other device keeps polling.
    let other = point_of(&server, "from-config", "IN1").await;
    let seen = server.samples_of(other as u32).await.len();
    poll_until("the configured device polls on", Duration::from_secs(30), || async {
        server.samples_of(other as u32).await.len() >= seen + 2
    })
    .await;
    assert_eq!(server.samples_of(in1 as u32).await.len(), before, "no samples after the device was deleted");

    // Discovery over the API finds both simulated units and marks the known one.
    let found = server
        .post_json(
            "/api/t3000/devices/discover",
            &json!({"protocol": "modbus-tcp", "hosts": ["127.0.0.1"], "port": port, "unit_ids": [1, 2, 3]}),
        )
        .await
        .ok_json();
    let units: Vec<(u64, bool)> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["found"]["unit_id"].as_u64().unwrap(), f["known_device_id"].is_number()))
        .collect();
    assert_eq!(units, [(1, false), (2, true)], "{found}");
}

async fn write(server: &TestServer, client: &reqwest::Client, point: u64, body: Value) -> Reply {
    server.call(client, Method::POST, &format!("/api/t3000/points/{point}/value"), Some(&body)).await
}

/// Writes through the arbiter: roles, auto/manual, priorities, relinquish, expiry, audit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_through_the_command_arbiter() {
    let sim = simulate(&["--listen", "127.0.0.1:0", "--count", "1"]);
    let extra = format!(
        "[[devices]]\nname = \"ahu\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = {}\nunit_id = 1\nprofile = \"T3-controller\"\npoll_interval_ms = 200\n",
        port_of(&sim.tcp)
    );
    let mut server = TestServer::start(&extra);
    poll_until("ahu online", Duration::from_secs(30), || async {
        server.get("/api/t3000/devices/ahu").await.ok_json()["online"] == true
    })
    .await;
    let var1 = point_of(&server, "ahu", "VAR1").await;
    let in1 = point_of(&server, "ahu", "IN1").await;
    let viewer = server.user_client("vi", "viewer").await;
    let op = server.user_client("op", "operator").await;

    write(&server, &viewer, var1, json!({"value": 21.5})).await.assert_error(
        "viewer",
        StatusCode::FORBIDDEN,
        Some("forbidden"),
    );
    write(&server, &op, var1, json!({"value": 21.5})).await.assert_error(
        "in auto",
        StatusCode::CONFLICT,
        Some("point_in_auto"),
    );
    write(&server, &op, in1, json!({"value": 1.0})).await.assert_error(
        "an input in auto",
        StatusCode::CONFLICT,
        Some("input_in_auto"),
    );
    write(&server, &op, var1, json!({"value": 21.5, "priority": 0})).await.assert_error(
        "priority 0",
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
    );

    // Operator at 8, switching the variable to manual: written and read back.
    let r = write(&server, &op, var1, json!({"value": 21.5, "switch_to_manual": true})).await.ok_json();
    assert_eq!(
        (r["written"].as_bool(), r["read_back"].as_f64(), r["switched_to_manual"].as_bool()),
        (Some(true), Some(21.5), Some(true)),
        "{r}"
    );
    assert_eq!(r["effective"]["priority"], 8);
    // A schedule-level command at 15 is held underneath: no write.
    let r = write(&server, &op, var1, json!({"value": 18.0, "priority": 15})).await.ok_json();
    assert_eq!((r["written"].as_bool(), r["effective"]["value"].as_f64()), (Some(false), Some(21.5)), "{r}");
    // A higher priority (5) for 1 s wins, then expires and 8 wins again.
    let r = write(&server, &op, var1, json!({"value": 25.0, "priority": 5, "expires_in_secs": 1})).await.ok_json();
    assert_eq!((r["written"].as_bool(), r["effective"]["priority"].as_u64()), (Some(true), Some(5)), "{r}");
    poll_until("the priority 5 command expires", Duration::from_secs(30), || async {
        let c = server.get(&format!("/api/t3000/points/{var1}/commands")).await.ok_json();
        c.as_array().unwrap().iter().all(|c| c["priority"] != 5)
    })
    .await;
    poll_until("the device holds 21.5 again", Duration::from_secs(30), || async {
        server.get(&format!("/api/t3000/points/{var1}/value")).await.ok_json()["value"].as_f64() == Some(21.5)
    })
    .await;
    // Relinquishing 8 reveals 15.
    let r = server
        .call(&op, Method::POST, &format!("/api/t3000/points/{var1}/relinquish"), Some(&json!({"priority": 8})))
        .await
        .ok_json();
    assert_eq!(
        (r["written"].as_bool(), r["effective"]["value"].as_f64(), r["effective"]["priority"].as_u64()),
        (Some(true), Some(18.0), Some(15)),
        "{r}"
    );
    let commands = server.get(&format!("/api/t3000/points/{var1}/commands")).await.ok_json();
    assert_eq!(commands.as_array().unwrap().len(), 1, "{commands}");
    // A value the variable cannot hold (its register is a 32-bit integer of thousandths) is a valid
    // request the point's configuration refuses: 409, and nothing changes.
    let r = write(&server, &op, var1, json!({"value": 9.007199254740992e15, "priority": 3})).await;
    r.assert_error("out of the point's range", StatusCode::CONFLICT, Some("invalid_value"));
    let after = server.get(&format!("/api/t3000/points/{var1}/commands")).await.ok_json();
    assert_eq!(after, commands);

    // The audit log: each write recorded with who, from where, old -> new and its result.
    let audit = server.get(&format!("/api/t3000/audit?target=point:{var1}&limit=50")).await.ok_json();
    let actions: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["result"].as_str().unwrap()))
        .collect();
    assert!(actions.contains(&("point.relinquish", "ok")) && actions.contains(&("point.expire", "ok")), "{actions:?}");
    assert!(actions.iter().filter(|(a, _)| *a == "point.write").count() >= 4, "{actions:?}");
    assert!(
        actions.iter().any(|(a, r)| *a == "point.write" && r.starts_with("failed")),
        "the refused write in auto is recorded: {actions:?}"
    );
    assert!(audit.as_array().unwrap().iter().all(|e| e["result"] != "pending"), "{audit}");

    // Commands survive a restart.
    server.stop();
    server.restart();
    let commands = server.get(&format!("/api/t3000/points/{var1}/commands")).await.ok_json();
    assert_eq!(commands[0]["value"], 18.0, "{commands}");

    // Per-point write rate limit (60 a minute by default): the 61st within the minute is refused.
    let mut limited = false;
    for i in 0..70 {
        let r = write(&server, &server.client, var1, json!({"value": i, "priority": 16})).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "the write rate limit never applied");

    // A program belongs to a device (tests/tests/programs.rs runs them).
    let p = server
        .post_json("/api/t3000/programs", &json!({"name": "ahu-seq", "source": "10 IF IN1 > 22 THEN OUT1 = 1"}))
        .await;
    p.assert_error("a program without a device", StatusCode::BAD_REQUEST, Some("invalid_json"));
    assert!(p.text().contains("device_id"), "{}", p.text());
}

async fn value_of(server: &TestServer, point: u64) -> Option<f64> {
    server.get(&format!("/api/t3000/points/{point}/value")).await.json()["value"].as_f64()
}

/// Alarm rules raised, acknowledged and cleared by real samples (and a device going offline);
/// schedules driving an output through the arbiter, with a holiday calendar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_and_schedules_drive_and_watch_a_simulated_device() {
    let sim = simulate(&["--listen", "127.0.0.1:0", "--count", "1"]);
    let extra = format!(
        "[collector]\noffline_after_failures = 2\nbackoff_initial_ms = 100\n\n[[devices]]\nname = \"ahu\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = {}\nunit_id = 1\nprofile = \"T3-controller\"\npoll_interval_ms = 200\n",
        port_of(&sim.tcp)
    );
    let server = TestServer::start(&extra);
    poll_until("ahu online", Duration::from_secs(30), || async {
        server.get("/api/t3000/devices/ahu").await.ok_json()["online"] == true
    })
    .await;
    let device_id = server.get("/api/t3000/devices/ahu").await.ok_json()["id"].clone();
    let (var1, var2) = (point_of(&server, "ahu", "VAR1").await, point_of(&server, "ahu", "VAR2").await);
    let viewer = server.user_client("vi", "viewer").await;
    let op = server.user_client("op", "operator").await;

    // A high limit on VAR1 and an offline rule on the device.
    let high = server
        .create_alarm_rule(&json!({"name": "VAR1 high", "point_id": var1,
        "rule": {"condition": {"kind": "limits", "high": 50.0, "deadband": 1.0}, "message": "too warm"}}))
        .await;
    let offline = server
        .create_alarm_rule(
            &json!({"name": "ahu offline", "device_id": device_id, "rule": {"condition": {"kind": "device_offline"}}}),
        )
        .await;
    server
        .post_json(
            "/api/t3000/alarms/rules",
            &json!({"name": "x", "point_id": var1, "rule": {"condition": {"kind": "limits", "low": 5, "high": 1}}}),
        )
        .await
        .assert_error("low above high", StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_rule"));

    let alarm = |id: i64| {
        let server = &server;
        async move {
            let all = server.get("/api/t3000/alarms?state=all").await.ok_json();
            all.as_array().unwrap().iter().find(|a| a["rule_id"] == id).cloned().unwrap()
        }
    };
    assert_eq!(alarm(high).await["state"], "normal");
    let w = write(&server, &op, var1, json!({"value": 60.0, "switch_to_manual": true})).await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.text());
    poll_until("the high alarm is raised", Duration::from_secs(30), || async {
        alarm(high).await["state"] == "active"
    })
    .await;
    assert_eq!(alarm(high).await["level"], "high");
    let open = server.get("/api/t3000/alarms").await.ok_json();
    assert_eq!(open.as_array().unwrap().len(), 1, "only open alarms by default: {open}");

    let ack = |client: &reqwest::Client| {
        let (server, client) = (&server, client.clone());
        async move { server.call(&client, Method::POST, &format!("/api/t3000/alarms/{high}/ack"), None).await }
    };
    ack(&viewer).await.assert_error("viewer ack", StatusCode::FORBIDDEN, None);
    let r = ack(&op).await.ok_json();
    assert_eq!(
        (r["transition"]["to"].as_str(), r["transition"]["kind"]["by"].as_str()),
        (Some("acknowledged"), Some("op")),
        "{r}"
    );
    ack(&op).await.assert_error("acknowledged twice", StatusCode::CONFLICT, Some("cannot_acknowledge"));
    // Back under the limit minus the deadband: the acknowledged alarm returns to normal.
    write(&server, &op, var1, json!({"value": 20.0})).await.ok_json();
    poll_until("the alarm returns to normal", Duration::from_secs(30), || async {
        alarm(high).await["state"] == "normal"
    })
    .await;
    let hist = server.get(&format!("/api/t3000/alarms/history?rule_id={high}")).await.ok_json();
    let kinds: Vec<&str> =
        hist.as_array().unwrap().iter().rev().map(|e| e["transition"]["kind"]["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["raised", "acknowledged", "normal"], "{hist}");
    assert_eq!(hist[0]["message"], "too warm");

    // A schedule ON all day every day drives VAR2 to its on_value at priority 15.
    let all_day = json!([{"on": "00:00", "off": "24:00"}]);
    let days: serde_json::Map<String, Value> =
        ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
            .iter()
            .map(|d| (d.to_string(), all_day.clone()))
            .collect();
    let body = json!({"name": "occupancy", "weekly_schedule": {"days": days},
        "outputs": [{"point_id": var2, "on_value": 1.0, "off_value": 0.0, "switch_to_manual": true}]});
    let r = server.call(&op, Method::POST, "/api/t3000/schedules", Some(&body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "operators edit schedules: {}", r.text());
    let s = r.json();
    let sid = s["id"].as_i64().unwrap();
    assert_eq!(
        (s["on"].as_bool(), s["next_run"].is_null(), s["status"].as_str()),
        (Some(true), true, Some("active")),
        "{s}"
    );
    poll_until("the schedule writes VAR2 = 1", Duration::from_secs(30), || async {
        value_of(&server, var2).await == Some(1.0)
    })
    .await;
    let cmds = server.get(&format!("/api/t3000/points/{var2}/commands")).await.ok_json();
    assert_eq!(
        (cmds[0]["priority"].as_u64(), cmds[0]["source"].as_str()),
        (Some(15), Some(format!("schedule:{sid}").as_str())),
        "{cmds}"
    );

    // Today becomes a holiday (Holiday1 has no pairs): OFF now, ON again at the next midnight (UTC).
    let today = chrono_today();
    let cal = server
        .call(
            &op,
            Method::POST,
            "/api/t3000/calendars",
            Some(&json!({"name": "today", "holiday": "holiday1", "dates": [today]})),
        )
        .await;
    assert_eq!(cal.status, StatusCode::CREATED, "{}", cal.text());
    let mut with_cal = body.clone();
    with_cal["calendar_ids"] = json!([cal.json()["id"]]);
    let s = server.call(&op, Method::PUT, &format!("/api/t3000/schedules/{sid}"), Some(&with_cal)).await.ok_json();
    assert_eq!(s["on"], false, "{s}");
    assert!(s["next_run"].as_str().is_some_and(|t| t.ends_with("T00:00:00Z")), "ON again at midnight: {s}");
    poll_until("the schedule writes VAR2 = 0", Duration::from_secs(30), || async {
        value_of(&server, var2).await == Some(0.0)
    })
    .await;
    let r = server.call(&op, Method::POST, &format!("/api/t3000/schedules/{sid}/run"), None).await.ok_json();
    assert_eq!((r["on"].as_bool(), r["errors"].as_array().map(Vec::len)), (Some(false), Some(0)), "{r}");
    server
        .call(
            &op,
            Method::POST,
            "/api/t3000/schedules",
            Some(&json!({"name": "bad", "weekly_schedule": {"days": {"monday": [{"on": "10:00", "off": "09:00"}]}}})),
        )
        .await
        .assert_error("off before on", StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_schedule"));

    // Deleting the schedule relinquishes its command.
    assert_eq!(
        server.call(&op, Method::DELETE, &format!("/api/t3000/schedules/{sid}"), None).await.status,
        StatusCode::NO_CONTENT
    );
    let cmds = server.get(&format!("/api/t3000/points/{var2}/commands")).await.ok_json();
    assert!(cmds.as_array().unwrap().is_empty(), "{cmds}");

    // The device goes away: the offline alarm is raised.
    drop(sim);
    poll_until("the offline alarm is raised", Duration::from_secs(60), || async {
        alarm(offline).await["state"] == "active"
    })
    .await;
    assert_eq!(alarm(offline).await["level"], "offline");
}

/// Today's date in UTC, `YYYY-MM-DD`.
fn chrono_today() -> String {
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Browsers get CORS headers for the configured origins only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_only_for_configured_origins() {
    let server = TestServer::start("[auth]\ncors_origins = [\"https://bms.example.com\"]\n");
    let preflight = |origin: &'static str| {
        let server = &server;
        async move {
            anon()
                .request(Method::OPTIONS, server.url("/api/t3000/devices"))
                .header("origin", origin)
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "authorization")
                .send()
                .await
                .unwrap()
        }
    };
    let ok = preflight("https://bms.example.com").await;
    assert_eq!(
        ok.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("https://bms.example.com")
    );
    let foreign = preflight("https://evil.example").await;
    assert!(foreign.headers().get("access-control-allow-origin").is_none(), "{:?}", foreign.headers());
    let get = server
        .client
        .get(server.url("/api/t3000/devices"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK, "same request, no CORS grant: the browser, not the server, refuses it");
    assert!(get.headers().get("access-control-allow-origin").is_none());
}

/// A point's retention set over the API reaches the storage engine's retention passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_point_retention_set_over_the_api() {
    let server = TestServer::start("[storage]\nflush_interval_secs = 1\n[retention]\ncheck_interval_secs = 1\n");
    let create = |name: &'static str, trend: Value| {
        let server = &server;
        async move {
            let r = server.post_json("/api/t3000/points", &json!({"name": name, "trend": trend})).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
            r.json()["id"].as_u64().unwrap() as u32
        }
    };
    let short = create("short-lived", json!({"retention_days": 30})).await;
    let kept = create("kept", json!({})).await;
    server.post_json("/api/t3000/points", &json!({"name": "x", "trend": {"interval_ms": 1000}})).await.assert_error(
        "a manual point is not polled",
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("invalid_trend"),
    );
    // Two years old: past the 30 days of `short`, kept forever for `kept` (no global limit).
    server.ingest_ok(&[Sample::good(short, BASE_TS, 1.0), Sample::good(kept, BASE_TS, 2.0)]).await;
    poll_until("the old samples of the short-lived point are deleted", Duration::from_secs(60), || async {
        server.samples_of(short).await.is_empty()
    })
    .await;
    assert_eq!(server.samples_of(kept).await.len(), 1);
    let p = server.get(&format!("/api/t3000/points/{short}")).await.ok_json();
    assert_eq!(p["trend"]["retention_days"], 30, "{p}");
    let r = server.put_json(&format!("/api/t3000/points/{kept}"), &json!({"trend": {"retention_days": 0}})).await;
    r.assert_error("0 days", StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_trend"));
}

async fn one_point(server: &TestServer, id: u64) -> Value {
    server.get(&format!("/api/t3000/points/{id}")).await.ok_json()
}

/// How charts draw a point (`trend.line`): by default a step for what holds its value until the
/// next sample (digital points, outputs, variables, points recorded on change, manual points) and
/// a straight line only for a measurement recorded at every poll; a choice is kept (also for a
/// device of the configuration file, and across a restart), `default` forgets it, and a bad value
/// is refused with a JSON error naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trend_lines_follow_the_point_unless_chosen() {
    let sim = simulate(&["--listen", "127.0.0.1:0"]);
    // Recorded at every poll (the configuration's default), IN2 on change.
    let extra = format!(
        "{}\n[[devices.points]]\nname = \"IN2\"\nrecord = {{ mode = \"change\", deadband = 0.5, heartbeat_secs = 60 }}\n",
        simulated_ahu(port_of(&sim.tcp))
    );
    let mut server = TestServer::start(&extra);
    let line = |p: &Value| (p["trend"]["line"].as_str().map(str::to_owned), p["trend"]["line_default"].as_bool());
    let step = (Some("step".to_owned()), Some(true));
    let linear = (Some("linear".to_owned()), Some(true));

    let in1 = point_of(&server, "ahu-1", "IN1").await;
    let in2 = point_of(&server, "ahu-1", "IN2").await;
    let in9 = point_of(&server, "ahu-1", "IN9").await;
    let out1 = point_of(&server, "ahu-1", "OUT1").await;
    let var1 = point_of(&server, "ahu-1", "VAR1").await;
    // An analog input read at every poll moves between its samples: the one linear default.
    assert_eq!(line(&one_point(&server, in1).await), linear, "{}", one_point(&server, in1).await);
    let p = one_point(&server, in2).await;
    assert_eq!((line(&p), p["trend"]["deadband"].as_f64()), (step.clone(), Some(0.5)), "on change: {p}");
    assert_eq!(line(&one_point(&server, out1).await), step, "an output holds its command");
    assert_eq!(line(&one_point(&server, var1).await), step, "a variable (setpoint)");
    // IN9 is digital (occupancy) once the server has read its range register.
    poll_until("IN9 is known to be digital", Duration::from_secs(30), || async {
        one_point(&server, in9).await["digital"] == true
    })
    .await;
    assert_eq!(line(&one_point(&server, in9).await), step, "a digital input");
    let manual = server.post_json("/api/t3000/points", &json!({"name": "meter"})).await;
    assert_eq!(manual.status, StatusCode::CREATED, "{}", manual.text());
    let manual = manual.json()["id"].as_u64().unwrap();
    assert_eq!(
        line(&one_point(&server, manual).await),
        step,
        "pushed values: the server cannot tell how they were taken"
    );

    // A choice is the point's own: a device of the configuration file takes it too.
    let r = server.put_json(&format!("/api/t3000/points/{out1}"), &json!({"trend": {"line": "linear"}})).await;
    assert_eq!(line(&r.ok_json()), (Some("linear".to_owned()), Some(false)));
    let r = server.put_json(&format!("/api/t3000/points/{in1}"), &json!({"trend": {"line": "step"}})).await;
    assert_eq!(line(&r.ok_json()), (Some("step".to_owned()), Some(false)));
    let created = server.post_json("/api/t3000/points", &json!({"name": "pushed", "trend": {"line": "linear"}})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(line(&created.json()), (Some("linear".to_owned()), Some(false)));
    // Other changes leave it alone; the list shows it as the point does.
    let r = server.put_json(&format!("/api/t3000/points/{out1}"), &json!({"label": "Zone 1 valve"})).await;
    assert_eq!(line(&r.ok_json()), (Some("linear".to_owned()), Some(false)));
    let list = server.get("/api/t3000/points?q=ahu-1&limit=1000").await.ok_json();
    let listed = |id: u64| list["items"].as_array().unwrap().iter().find(|p| p["id"] == id).cloned().unwrap();
    assert_eq!(line(&listed(out1)), (Some("linear".to_owned()), Some(false)));
    assert_eq!(line(&listed(var1)), step);
    let audit = server.get("/api/t3000/audit?action=point.update").await.ok_json();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["old"]["trend"]["line"] == "step" && a["new"]["trend"]["line"] == "linear"),
        "the change is audited: {audit}"
    );

    // Bad values: 400 with a JSON error naming the field; nothing changes.
    for bad in [json!("curvy"), json!(1), json!("STEP")] {
        let r = server.put_json(&format!("/api/t3000/points/{out1}"), &json!({"trend": {"line": bad}})).await;
        let code = r.assert_error("a bad line", StatusCode::BAD_REQUEST, Some("invalid_json"));
        assert!(r.text().contains("trend.line"), "{code}: {}", r.text());
    }
    assert_eq!(line(&one_point(&server, out1).await), (Some("linear".to_owned()), Some(false)));

    // Kept across a restart; `default` forgets the choice.
    server.stop();
    server.restart();
    assert_eq!(line(&one_point(&server, out1).await), (Some("linear".to_owned()), Some(false)));
    let r = server.put_json(&format!("/api/t3000/points/{out1}"), &json!({"trend": {"line": "default"}})).await;
    assert_eq!(line(&r.ok_json()), step);
    let r = server.put_json(&format!("/api/t3000/points/{in1}"), &json!({"trend": {"line": "default"}})).await;
    assert_eq!(line(&r.ok_json()), linear);

    // The OpenAPI document says the same.
    let doc = server.get("/api/openapi.json").await.ok_json();
    let schemas = &doc["components"]["schemas"];
    let t = &schemas["TrendSettings"]["properties"];
    assert!(serde_json::to_string(&t["line"]).unwrap().contains("#/components/schemas/LineSetting"), "{}", t["line"]);
    assert_eq!(schemas["LineSetting"]["enum"], json!(["step", "linear", "default"]), "{}", schemas["LineSetting"]);
    assert_eq!(t["line_default"]["readOnly"], true, "{}", t["line_default"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floor_plans_images_and_badges() {
    let server = TestServer::start("");
    let b = server.post_json("/api/t3000/buildings", &json!({"name": "HQ"})).await.json();
    let floor =
        server.post_json(&format!("/api/t3000/buildings/{}/floors", b["id"]), &json!({"name": "F1"})).await.json();
    let plan = format!("/api/t3000/floors/{}/plan", floor["id"]);
    let upload = |ct: &'static str, body: Vec<u8>| {
        let req = server.client.put(server.url(&plan)).header("content-type", ct).body(body);
        server.send(req)
    };
    server.get(&plan).await.assert_error("no plan yet", StatusCode::NOT_FOUND, None);

    let svg = br##"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100"><rect width="200" height="100" fill="#eee"/></svg>"##;
    let r = upload("image/svg+xml", svg.to_vec()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["plan"]["content_type"], "image/svg+xml");
    assert_eq!(r.json()["plan"]["bytes"], svg.len());
    let got = server.get(&plan).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, svg);
    assert_eq!(got.headers["content-type"], "image/svg+xml");
    let csp = got.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("sandbox") && csp.contains("default-src 'none'"), "an SVG plan runs nothing: {csp}");
    let file = server.data_dir.join("floorplans").join(floor["id"].to_string());
    assert_eq!(std::fs::read(&file).unwrap(), svg);

    // Wrong or lying content types, empty and oversized bodies are refused; the plan stays.
    upload("image/png", svg.to_vec()).await.assert_error(
        "SVG sent as PNG",
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("invalid_image"),
    );
    upload("text/html", b"<html>".to_vec()).await.assert_error("HTML", StatusCode::UNSUPPORTED_MEDIA_TYPE, None);
    upload("image/png", Vec::new()).await.assert_error("empty", StatusCode::BAD_REQUEST, None);
    let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
    big.resize(8 * 1024 * 1024 + 1, 0);
    upload("image/png", big).await.assert_error("9 MiB", StatusCode::PAYLOAD_TOO_LARGE, None);
    assert_eq!(server.get(&plan).await.body, svg);

    // Badges: fractions of the image, known points, each once.
    let point = server.post_json("/api/t3000/points", &json!({"name": "lobby-temp", "units": "degC"})).await.json();
    let badges = format!("{plan}/points");
    let r = server.put_json(&badges, &json!({"points": [{"point_id": point["id"], "x": 0.25, "y": 0.75}]})).await;
    assert_eq!(r.ok_json()["plan_points"][0]["x"], 0.25);
    server.put_json(&badges, &json!({"points": [{"point_id": 987654, "x": 0.5, "y": 0.5}]})).await.assert_error(
        "unknown point",
        StatusCode::NOT_FOUND,
        Some("unknown_point"),
    );
    for (body, code) in [
        (json!({"points": [{"point_id": point["id"], "x": 1.5, "y": 0.5}]}), "invalid_position"),
        (
            json!({"points": [{"point_id": point["id"], "x": 0.1, "y": 0.1}, {"point_id": point["id"], "x": 0.2, "y": 0.2}]}),
            "duplicate_point",
        ),
    ] {
        server.put_json(&badges, &body).await.assert_error(code, StatusCode::UNPROCESSABLE_ENTITY, Some(code));
    }
    let tree = server.get(&format!("/api/t3000/buildings/{}", b["id"])).await.ok_json();
    assert_eq!(tree["floors"][0]["plan"]["bytes"], svg.len());
    assert_eq!(tree["floors"][0]["plan_points"][0]["point_id"], point["id"]);

    // Only admins change plans; viewers see them.
    let viewer = server.user_client("plan-viewer", "viewer").await;
    assert_eq!(server.call(&viewer, Method::GET, &plan, None).await.status, StatusCode::OK);
    let r = server.call(&viewer, Method::PUT, &badges, Some(&json!({"points": []}))).await;
    r.assert_error("viewer moves a badge", StatusCode::FORBIDDEN, None);

    // Removing the plan, then the floor, removes the file.
    assert_eq!(server.delete(&plan).await.status, StatusCode::NO_CONTENT);
    assert!(!file.exists());
    server.get(&plan).await.assert_error("plan removed", StatusCode::NOT_FOUND, None);
    assert_eq!(upload("image/svg+xml", svg.to_vec()).await.status, StatusCode::OK);
    assert_eq!(server.delete(&format!("/api/t3000/floors/{}", floor["id"])).await.status, StatusCode::NO_CONTENT);
    assert!(!file.exists(), "a deleted floor leaves no image behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_ui_is_served_by_the_binary() {
    let server = TestServer::start("");
    let page = server.call(&anon(), Method::GET, "/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert!(page.headers["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    let html = page.text();
    // A route of the UI loads the same page; the page's script is served and cached for good.
    assert_eq!(server.call(&anon(), Method::GET, "/devices/3", None).await.text(), html);
    let script = html.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("a script in index.html");
    let js = server.call(&anon(), Method::GET, script, None).await;
    assert_eq!(js.status, StatusCode::OK, "{script}");
    assert_eq!(js.headers["content-type"], "text/javascript; charset=utf-8");
    assert!(js.headers["cache-control"].to_str().unwrap().contains("immutable"));
    let etag = js.headers["etag"].clone();
    let again = server.send(anon().get(server.url(script)).header("if-none-match", etag)).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    // A missing file is a 404, not the page; the API keeps its JSON errors and its token.
    let r = server.call(&anon(), Method::GET, "/assets/no-such-file.js", None).await;
    r.assert_error("missing asset", StatusCode::NOT_FOUND, Some("not_found"));
    let r = server.call(&anon(), Method::GET, "/api/t3000/no-such-endpoint", None).await;
    r.assert_error("unknown API path without a token", StatusCode::UNAUTHORIZED, None);
    let r = server.get("/api/t3000/no-such-endpoint").await;
    r.assert_error("unknown API path", StatusCode::NOT_FOUND, Some("not_found"));
    let r = server.call(&anon(), Method::POST, "/devices", Some(&json!({}))).await;
    r.assert_error("POST to a page", StatusCode::METHOD_NOT_ALLOWED, None);
}
