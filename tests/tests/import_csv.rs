//! CSV configuration end to end: export devices.csv / points.csv, edit a cell as a spreadsheet
//! saves the file (`;` separators, a byte order mark, CRLF, quoted cells), import the preview
//! (exactly that change), apply, export again (equal to the edit); a file with bad rows changes
//! nothing and names every row and column; samples from another system imported and read back
//! through the history API sample by sample; the `t3000 import csv` / `export-config` commands.

use serde_json::{Value, json};
use t3_tests::*;

/// Cells of a CSV text as a spreadsheet reads them (quotes, `""`, line breaks in quotes, CRLF).
fn parse_csv(text: &str, sep: char) -> Vec<Vec<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == sep && !quoted => row.push(std::mem::take(&mut cell)),
            '\r' if !quoted => {}
            '\n' if !quoted => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            c => cell.push(c),
        }
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    rows
}

/// Rows written as LibreOffice in a comma-decimal locale saves them: UTF-8 with a byte order mark,
/// `;`, CRLF, a cell quoted when it holds `;`, a quote or a line break; decimal commas.
fn spreadsheet_csv(rows: &[Vec<String>]) -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .map(|c| {
                let c = if c.parse::<f64>().is_ok() && c.contains('.') { c.replace('.', ",") } else { c.clone() };
                if c.contains([';', '"', '\n', '\r']) { format!("\"{}\"", c.replace('"', "\"\"")) } else { c }
            })
            .collect();
        out.push_str(&cells.join(";"));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

fn col(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

async fn export(server: &TestServer, which: &str) -> Vec<Vec<String>> {
    let r = server.get(&format!("/api/t3000/config/{which}.csv")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.content_type().starts_with("text/csv"), "{}", r.content_type());
    assert!(r.body.starts_with(&[0xEF, 0xBB, 0xBF]), "a byte order mark, so Excel reads UTF-8");
    parse_csv(&r.text(), ',')
}

async fn import(server: &TestServer, kind: &str, apply: bool, body: Vec<u8>) -> Reply {
    let path = format!("/api/t3000/import/csv?kind={kind}{}", if apply { "&apply=true" } else { "" });
    server.post_raw(&path, Some("text/csv"), body).await
}

async fn setup(server: &TestServer) -> (i64, i64) {
    let b = server.post_json("/api/t3000/buildings", &json!({"name": "HQ", "time_zone": "Europe/Berlin"})).await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.text());
    let building = b.json()["id"].as_i64().expect("building id");
    let f = server.post_json(&format!("/api/t3000/buildings/{building}/floors"), &json!({"name": "Level 1"})).await;
    assert!(f.status.is_success(), "{}", f.text());
    for (name, unit) in [("ahu-1", 1), ("ahu-2", 2)] {
        let d = server
            .post_json(
                "/api/t3000/devices",
                &json!({"name": name, "protocol": "modbus-tcp", "ip_address": "127.0.0.1", "port": 1,
                        "unit_id": unit, "profile": "T3-controller", "building_id": building,
                        "description": "Air handler; roof, north"}),
            )
            .await;
        assert_eq!(d.status, StatusCode::CREATED, "{}", d.text());
    }
    let m = server.post_json("/api/t3000/points", &json!({"name": "outdoor", "units": "°C"})).await;
    assert_eq!(m.status, StatusCode::CREATED, "{}", m.text());
    (building, m.json()["id"].as_i64().expect("point id"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_and_points_round_trip_through_a_spreadsheet() {
    let server = TestServer::start("");
    setup(&server).await;

    // Devices: an unchanged file is nothing to do.
    let devices = export(&server, "devices").await;
    let header = devices[0].clone();
    assert_eq!(devices.len(), 3, "{devices:?}");
    let r = import(&server, "devices", false, spreadsheet_csv(&devices)).await.ok_json();
    assert_eq!(
        (r["created"].as_u64(), r["changed"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(0), Some(2)),
        "{r}"
    );

    // One cell edited: the preview shows exactly that change, and nothing is applied yet.
    let mut edited = devices.clone();
    let (poll, name) = (col(&header, "poll_interval_ms"), col(&header, "name"));
    let row = edited.iter().position(|r| r[name] == "ahu-2").expect("ahu-2");
    assert_eq!(edited[row][poll], "1000");
    edited[row][poll] = "2500".into();
    let r = import(&server, "devices", false, spreadsheet_csv(&edited)).await.ok_json();
    assert_eq!(r["applied"], false);
    assert_eq!(
        r["changes"],
        json!([{"row": row + 1, "key": "ahu-2", "action": "change",
                "fields": [{"column": "poll_interval_ms", "old": "1000", "new": "2500"}]}]),
        "{r}"
    );
    assert_eq!(server.get("/api/t3000/devices/ahu-2").await.ok_json()["poll_interval_ms"], 1000);
    // Applied: the device changes, the export equals the edit, the audit log has it.
    let r = import(&server, "devices", true, spreadsheet_csv(&edited)).await.ok_json();
    assert_eq!((r["applied"].as_bool(), r["changed"].as_u64()), (Some(true), Some(1)), "{r}");
    let d = server.get("/api/t3000/devices/ahu-2").await.ok_json();
    assert_eq!(d["poll_interval_ms"], 2500);
    assert_eq!(export(&server, "devices").await, edited);
    let audit = server.get("/api/t3000/audit?action=import.csv").await.ok_json();
    let entries: Vec<&Value> = audit_entries(&audit).into_iter().filter(|e| e["action"] == "import.csv").collect();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["target"], format!("device:{}", d["id"]));

    // Points: a label with a comma and a description with a line break, through `;` quoting.
    let points = export(&server, "points").await;
    let ph = points[0].clone();
    assert_eq!(points.len(), 1 + 2 * 256 + 1, "two T3 controllers and a manual point");
    let (dev, pname, label, descr, deadband, record) = (
        col(&ph, "device"),
        col(&ph, "name"),
        col(&ph, "label"),
        col(&ph, "description"),
        col(&ph, "deadband"),
        col(&ph, "record"),
    );
    let mut edited = points.clone();
    let in3 = edited.iter().position(|r| r[dev] == "ahu-1" && r[pname] == "IN3").expect("IN3");
    edited[in3][label] = "SUP TEMP, north".into();
    edited[in3][descr] = "Supply air\n\"after\" the coil; °C".into();
    edited[in3][record] = "change".into();
    edited[in3][deadband] = "0.25".into();
    let r = import(&server, "points", false, spreadsheet_csv(&edited)).await.ok_json();
    assert_eq!((r["changed"].as_u64(), r["created"].as_u64()), (Some(1), Some(0)), "{r}");
    let fields: Vec<(String, String)> = r["changes"][0]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| (f["column"].as_str().unwrap().to_owned(), f["new"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        fields,
        [
            ("label", "SUP TEMP, north"),
            ("description", "Supply air\n\"after\" the coil; °C"),
            ("record", "change"),
            ("deadband", "0.25"),
            ("deadband_percent", "0"),
            ("heartbeat_secs", "0"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned())),
        "{r}"
    );
    assert_eq!(r["changes"][0]["key"], "ahu-1 IN3");
    let r = import(&server, "points", true, spreadsheet_csv(&edited)).await.ok_json();
    assert_eq!(r["changed"], 1, "{r}");
    let mut expected = edited.clone();
    expected[in3][col(&ph, "deadband_percent")] = "0".into();
    expected[in3][col(&ph, "heartbeat_secs")] = "0".into();
    assert_eq!(export(&server, "points").await, expected);
    let id = &edited[in3][col(&ph, "id")];
    let p = server.get(&format!("/api/t3000/points/{id}")).await.ok_json();
    assert_eq!((p["label"].as_str(), p["trend"]["deadband"].as_f64()), (Some("SUP TEMP, north"), Some(0.25)), "{p}");
    // The same file again: nothing to do.
    let r = import(&server, "points", true, spreadsheet_csv(&expected)).await.ok_json();
    assert_eq!((r["changed"].as_u64(), r["unchanged"].as_u64()), (Some(0), Some(2 * 256 + 1)), "{r}");
}

fn audit_entries(v: &Value) -> Vec<&Value> {
    v.as_array()
        .or_else(|| v["items"].as_array())
        .or_else(|| v["entries"].as_array())
        .expect("audit entries")
        .iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_with_bad_rows_changes_nothing_and_names_every_one() {
    let server = TestServer::start("");
    setup(&server).await;
    let before_points = export(&server, "points").await;
    let before_devices = export(&server, "devices").await;
    let text = "device,name,label,interval_ms,line\r\n\
        ahu-1,IN1,Supply,,\r\n\
        ahu-9,IN2,Return,,\r\n\
        ahu-1,IN3,Mixed,fast,\r\n\
        ahu-1,IN4,Outdoor,50,\r\n\
        ahu-1,IN5,Exhaust,,curvy\r\n";
    let r = import(&server, "points", true, text.as_bytes().to_vec()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"]["code"], "invalid_csv");
    let got: Vec<(u64, String, String)> = body["error"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["column"].as_str().unwrap().to_owned(),
                e["cell"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let want = [(3, "device", "A3"), (4, "interval_ms", "D4"), (5, "interval_ms", "D5"), (6, "line", "E6")];
    assert_eq!(got, want.map(|(r, c, x)| (r, c.to_owned(), x.to_owned())), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("row 3") && message.contains("ahu-9"), "{message}");
    assert_eq!(export(&server, "points").await, before_points, "nothing was applied");

    // Wrong columns, and a Latin-1 file: named, nothing imported.
    let r = import(&server, "devices", true, b"name;protocl\r\nx;modbus-tcp\r\n".to_vec()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let e = &r.json()["error"]["errors"][0];
    assert_eq!(
        (e["row"].as_u64(), e["column"].as_str(), e["cell"].as_str()),
        (Some(1), Some("protocl"), Some("B1")),
        "{e}"
    );
    let r = import(&server, "points", true, b"device,name,units\nahu-1,IN1,\xB0C\n".to_vec()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let e = &r.json()["error"]["errors"][0];
    assert_eq!((e["row"].as_u64(), e["column"].as_str()), (Some(2), Some("units")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("Latin-1"), "{e}");
    // A device row the API's own rules refuse (a unit id out of range on RTU, a name taken twice).
    let mut rows = before_devices.clone();
    let h = rows[0].clone();
    let mut new = rows[1].clone();
    new[col(&h, "name")] = "ahu-3".into();
    new[col(&h, "poll_interval_ms")] = "5".into();
    rows.push(new);
    let r = import(&server, "devices", true, spreadsheet_csv(&rows)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let e = &r.json()["error"]["errors"][0];
    assert_eq!(
        (e["row"].as_u64(), e["column"].as_str(), e["key"].as_str()),
        (Some(4), Some("poll_interval_ms"), Some("ahu-3")),
        "{e}"
    );
    assert_eq!(export(&server, "devices").await, before_devices, "nothing was applied");
    // A device whose points do not fit its read limits is refused in the preview, as POST /devices
    // refuses it (it was stored and then not polled).
    let mut rows = before_devices.clone();
    rows[2][col(&h, "max_registers")] = "1".into();
    let r = import(&server, "devices", true, spreadsheet_csv(&rows)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let e = &r.json()["error"]["errors"][0];
    assert_eq!((e["row"].as_u64(), e["key"].as_str()), (Some(3), Some("ahu-2")), "{e}");
    assert!(e["message"].as_str().unwrap().starts_with("cannot plan reads"), "{e}");
    assert_eq!(export(&server, "devices").await, before_devices, "nothing was applied");

    // Imports are for admins.
    let viewer = server.user_client("olga", "operator").await;
    let r =
        server.send(viewer.post(server.url("/api/t3000/import/csv?kind=points")).body(text.as_bytes().to_vec())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_from_another_system_read_back_sample_by_sample() {
    let server = TestServer::start("");
    let (_, outdoor) = setup(&server).await;
    let points = export(&server, "points").await;
    let h = points[0].clone();
    let in1: i64 = points.iter().find(|r| r[col(&h, "device")] == "ahu-1" && r[col(&h, "name")] == "IN1").unwrap()
        [col(&h, "id")]
    .parse()
    .unwrap();
    // Local times in Berlin (UTC+1 in January), a name and an id, decimal commas, quality names and codes.
    let text = "\u{feff}point;point_id;time;value;quality\r\n\
        ahu-1 IN1;;2026-01-10 08:00:00;20,5;good\r\n\
        ;{IN1};2026-01-10 08:15:00;21;192\r\n\
        outdoor;;2026-01-10T07:00:00Z;-3,25;\r\n\
        OUTDOOR;;2026-01-10 08:30:00;;bad/comm_failure\r\n"
        .replace("{IN1}", &in1.to_string());
    let r = server
        .post_raw("/api/t3000/import/csv?kind=samples&tz=Europe/Berlin", Some("text/csv"), text.clone().into_bytes())
        .await;
    let preview = r.ok_json();
    assert_eq!(
        (preview["samples"].as_u64(), preview["points"].as_u64(), preview["stored"].as_u64()),
        (Some(4), Some(2), Some(0)),
        "{preview}"
    );
    // Counted on the imported points: the devices' failed polls store samples of their own.
    let imported = || async {
        server.sql(&format!("SELECT count(*) FROM samples WHERE point_id IN ({in1}, {outdoor})")).await[0][0]
            .as_i64()
            .unwrap()
    };
    assert_eq!(imported().await, 0, "a preview stores nothing");
    let r = server
        .post_raw("/api/t3000/import/csv?kind=samples&tz=Europe/Berlin&apply=true", Some("text/csv"), text.into_bytes())
        .await
        .ok_json();
    assert_eq!(r["stored"], 4, "{r}");
    const T: i64 = 1_768_028_400_000_000; // 2026-01-10T07:00:00Z
    const MIN: i64 = 60_000_000;
    let history = |id: i64| {
        let server = &server;
        async move { server.get(&format!("/api/t3000/points/{id}/history?from={T}&to={}", T + 60 * MIN)).await.ok_json() }
    };
    let h = history(in1).await;
    assert_eq!(h["ts"], json!([T, T + 15 * MIN]), "{h}");
    assert_eq!(h["value"], json!([20.5, 21.0]), "{h}");
    assert_eq!(h["quality"], json!([192, 192]), "{h}");
    // 07:00Z as written, and 08:30 in Berlin (07:30Z) without a value and with a bad quality.
    let h = history(outdoor).await;
    assert_eq!(h["ts"], json!([T, T + 30 * MIN]), "{h}");
    assert_eq!(h["value"], json!([-3.25, null]), "{h}");
    assert_eq!(h["quality"], json!([0xC0, 0x18]), "{h}");

    // Bad rows: every one named, nothing stored.
    let bad = "point_id,time,value,quality\n\
        999999,2026-01-10 08:00:00,1,\n\
        {IN1},2026-13-10 08:00:00,1,\n\
        {IN1},2026-01-10 09:00:00,warm,\n\
        {IN1},2026-01-10 09:00:00,1,excellent\n"
        .replace("{IN1}", &in1.to_string());
    let before = imported().await;
    let r = server.post_raw("/api/t3000/import/csv?kind=samples&apply=true", Some("text/csv"), bad.into_bytes()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let cols: Vec<(u64, String)> = r.json()["error"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_u64().unwrap(), e["column"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(cols, [(2, "point_id"), (3, "time"), (4, "value"), (5, "quality")].map(|(r, c)| (r, c.to_owned())));
    assert_eq!(imported().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_and_export_commands_talk_to_a_running_server() {
    let server = TestServer::start("");
    setup(&server).await;
    let file = server.root().join("devices.csv");
    let out = run_cmd(
        command()
            .args(["export-config", "devices", "-o"])
            .arg(&file)
            .args(["--url", &server.url("")])
            .env("T3000_TOKEN", &server.token),
    );
    assert!(out.status.success(), "{}", out.stderr);
    let mut rows = parse_csv(&std::fs::read_to_string(&file).unwrap(), ',');
    let h = rows[0].clone();
    rows[1][col(&h, "description")] = "Moved to the basement".into();
    std::fs::write(&file, spreadsheet_csv(&rows)).unwrap();
    let cli = |apply: bool| {
        let mut c = command();
        c.args(["import", "csv"]).arg(&file).args(["--kind", "devices", "--url", &server.url("")]);
        if apply {
            c.arg("--apply");
        }
        c.env("T3000_TOKEN", &server.token);
        run_cmd(&mut c)
    };
    let out = cli(false);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("devices: 0 to create, 1 to change, 1 unchanged (preview"), "{}", out.stdout);
    assert!(out.stdout.contains("description") && out.stdout.contains("\"Moved to the basement\""), "{}", out.stdout);
    let out = cli(true);
    assert!(out.stdout.contains("1 changed"), "{}", out.stdout);
    let d = server.get(&format!("/api/t3000/devices/{}", rows[1][col(&h, "name")])).await.ok_json();
    assert_eq!(d["description"], "Moved to the basement");
    // A bad file: the command fails and prints each error by row and column.
    std::fs::write(&file, "name,unit_id\nahu-1,300\n").unwrap();
    let out = cli(true);
    assert!(!out.status.success());
    assert!(out.stderr.contains("row 2, column unit_id (B2) [ahu-1]"), "{}", out.stderr);
}
