//! Exports end to end: the points' names and units from the catalog, quality names, and a file
//! name that says what the file holds.

use serde_json::{Value, json};
use std::time::Duration;
use t3_tests::*;

/// 2024-01-01T10:00:00Z.
const T: i64 = 1_704_103_200_000_000;

fn disposition(r: &Reply) -> String {
    r.headers.get("content-disposition").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

async fn point_of(server: &TestServer, device: &str, point: &str) -> Value {
    let points = server.get(&format!("/api/t3000/points?q={device}&limit=500")).await.ok_json();
    points["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|p| p["device"] == device && p["name"] == point)
        .cloned()
        .unwrap_or_else(|| panic!("no point {device} {point}: {points}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_carry_point_names_units_quality_names_and_a_telling_file_name() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_demo(&tmp.path().join("demo"));

    // A manual point with a label and units, with a good and a bad sample.
    let created =
        server.post_json("/api/t3000/points", &json!({"name": "outdoor", "label": "Outdoor air", "units": "°F"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let created = created.json();
    let manual = created["id"].as_u64().expect("id") as u32;
    server
        .ingest_ok(&[
            Sample::good(manual, T, 50.0),
            Sample { point_id: manual, ts: T + 10_000_000, value: 51.0, quality: 0x18 },
        ])
        .await;
    let range = "from=2024-01-01T10:00:00Z&to=2024-01-01T11:00:00Z";
    let r = server.get(&format!("/api/t3000/export?points={manual}&{range}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.text(),
        format!(
            "ts,point_id,point_name,unit,value,quality,quality_name\n\
             2024-01-01T10:00:00.000000Z,{manual},Outdoor air,°F,50,192,good\n\
             2024-01-01T10:00:10.000000Z,{manual},Outdoor air,°F,51,24,bad/comm_failure\n"
        )
    );
    assert_eq!(disposition(&r), "attachment; filename=\"t3000-Outdoor-air-20240101T100000Z-20240101T110000Z.csv\"");

    // A device point no one labelled: the label its panel keeps, and the units GET /points shows.
    let in1_id = point_of(&server, "floor1-ahu", "IN1").await["id"].as_u64().unwrap() as u32;
    // Its units come from the range code the device reports, its label from the panel's point record,
    // both read once it is online.
    poll_until("the units and label of floor1-ahu IN1", Duration::from_secs(60), || async {
        let p = server.get(&format!("/api/t3000/points/{in1_id}")).await.ok_json();
        p["units"].as_str().is_some_and(|u| !u.is_empty()) && p["label"].as_str().is_some_and(|l| !l.is_empty())
    })
    .await;
    let in1 = server.get(&format!("/api/t3000/points/{in1_id}")).await.ok_json();
    let (label, unit) = (in1["label"].as_str().unwrap().to_owned(), in1["units"].as_str().unwrap().to_owned());
    assert_eq!(label, "ZN1 TEMP");
    let title = format!("{label} ({unit})");
    let r = server.get(&format!("/api/t3000/export?points={in1_id},{manual}&{range}&layout=wide")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text();
    assert_eq!(text.lines().next(), Some(format!("ts,{title},Outdoor air (°F)").as_str()), "{text}");

    // Live rows of the device point: its name, unit and quality names; the file is named after
    // its building.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let body = loop {
        let body = server.get(&format!("/api/t3000/export?points={in1_id}&from=now-1h")).await.text();
        if body.lines().count() > 1 {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "no exported rows of floor1-ahu IN1 after 60 s: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for line in body.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        assert_eq!(cols.len(), 7, "{line}");
        assert_eq!((cols[1], cols[2], cols[3]), (in1_id.to_string().as_str(), label.as_str(), unit.as_str()));
        let want = match cols[5] {
            "192" => "good",
            "216" => "good/local_override",
            other => panic!("unexpected quality {other} in {line}"),
        };
        assert_eq!(cols[6], want, "{line}");
    }
    let device = server.get("/api/t3000/devices/floor1-ahu").await.ok_json();
    let building = device["building_id"].as_i64().expect("the demo places its devices in a building");
    let name =
        server.get(&format!("/api/t3000/buildings/{building}")).await.ok_json()["name"].as_str().unwrap().to_owned();
    let slug: String =
        name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|s| !s.is_empty()).collect::<Vec<_>>().join("-");
    let r = server.get(&format!("/api/t3000/export?points={in1_id}&{range}&format=xlsx")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        disposition(&r),
        format!("attachment; filename=\"t3000-{slug}-20240101T100000Z-20240101T110000Z.xlsx\"")
    );
    server.stop();
}
