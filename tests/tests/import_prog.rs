//! `POST /api/t3000/import/prog` and `t3000 import prog` against the real binary with real T3000 panel
//! files (Temco's example files, `drivers/tests/data/prog/`): preview, apply, the points (their
//! ranges too), the panels' custom ranges, schedules, calendars, trend logs and programs through the
//! API, a second apply that changes nothing, and bad files refused with the byte offset while nothing
//! is imported and the server keeps serving.
//!
//! The custom ranges are checked against what an independent reader (`read_prog.py`, Python's
//! `struct`) finds in the files: `$T3000_PYTHON` (default `$HOME/.cache/t3000/venv/bin/python`).

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::PathBuf;
use t3_tests::{REFUSED_PORT, TestServer, run};

fn prog(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../drivers/tests/data/prog").join(name)
}

/// What `read_prog.py` reads from panel file `name`.
fn read_prog(name: &str) -> Value {
    let python = std::env::var("T3000_PYTHON")
        .unwrap_or_else(|_| format!("{}/.cache/t3000/venv/bin/python", std::env::var("HOME").unwrap_or_default()));
    let out = std::process::Command::new(&python)
        .arg(prog("read_prog.py"))
        .arg(prog(name))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} (set T3000_PYTHON): {e}"));
    assert!(out.status.success(), "read_prog.py {name}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The custom ranges the server should keep for a panel, from `read_prog.py`'s output: the ones
/// with a text (a text of 0xFF bytes was never written), numbered by range code.
fn expected_ranges(file: &Value) -> Value {
    let texts = |key: &str, first: u64| -> Vec<Value> {
        let list = file[key].as_array().unwrap().iter().enumerate();
        list.filter(|(_, t)| !t.as_str().unwrap().chars().all(|c| c == 'ÿ'))
            .map(|(i, t)| json!({"code": first + i as u64, "name": t}))
            .collect()
    };
    let digital: Vec<Value> = file["digital_units"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, u)| u["off"] != "" || u["on"] != "")
        .map(|(i, u)| json!({"code": 23 + i as u64, "off": u["off"], "on": u["on"], "direct": u["direct"] == 1}))
        .collect();
    json!({"digital": digital, "variable_units": texts("variable_units", 34), "analog_tables": texts("analog_tables", 20)})
}

/// The states a digital point in custom range `code` shows, 0 then 1: the range's texts, the
/// other way round when it is inverse (`direct`).
fn custom_states(file: &Value, code: u64) -> Value {
    let u = &file["digital_units"][(code - 23) as usize];
    if u["direct"] == 1 { json!([u["on"], u["off"]]) } else { json!([u["off"], u["on"]]) }
}

async fn import(server: &TestServer, device: &str, body: Vec<u8>, apply: bool) -> t3_tests::Reply {
    let url = server.url(&format!("/api/t3000/import/prog?device={device}&apply={apply}"));
    server.send(server.client.post(url).header("content-type", "application/octet-stream").body(body)).await
}

fn item<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array().and_then(|l| l.iter().find(|x| x[key] == value)).unwrap_or_else(|| panic!("no {value} in {list}"))
}

/// Point `name` of `device` in a page of GET /api/t3000/points.
fn find_point(page: &Value, device: &str, name: &str) -> Option<Value> {
    page["items"].as_array()?.iter().find(|p| p["device"] == device && p["name"] == name).cloned()
}

/// Everything the catalog holds that an import may touch.
async fn catalog(server: &TestServer) -> Vec<Value> {
    let mut out = Vec::new();
    for path in ["/api/t3000/schedules", "/api/t3000/calendars", "/api/t3000/trendlogs", "/api/t3000/programs"] {
        out.push(server.get(path).await.ok_json());
    }
    out.push(server.get("/api/t3000/devices/boiler/points").await.ok_json());
    out.push(server.get("/api/t3000/devices/boiler/ranges").await.ok_json());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prog_file_is_previewed_applied_once_and_bad_files_are_refused() {
    // Two T3 panels nobody answers for (the import is catalog work: no device I/O).
    let port = REFUSED_PORT;
    let device = |name: &str| {
        format!(
            "[[devices]]\nname = \"{name}\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = {port}\n\
             unit_id = 1\nprofile = \"T3-controller\"\npoll_interval_ms = 60000\n"
        )
    };
    let server = TestServer::start(&format!("{}{}{}", device("boiler"), device("btu"), device("leadlag")));
    let boiler = std::fs::read(prog("BOILER.prog")).unwrap();
    let btu = std::fs::read(prog("BTUMeterRev22.prog")).unwrap();
    let leadlag = std::fs::read(prog("LeadLagRev1.prog")).unwrap();
    // No custom ranges before an import: empty lists; an unknown device: 404.
    let none = server.get("/api/t3000/devices/btu/ranges").await.ok_json();
    assert_eq!(
        (&none["digital"], &none["variable_units"], &none["analog_tables"]),
        (&json!([]), &json!([]), &json!([]))
    );
    server.get("/api/t3000/devices/nobody/ranges").await.assert_error("no device", StatusCode::NOT_FOUND, None);

    // Preview: nothing written.
    let before = catalog(&server).await;
    let p = import(&server, "boiler", boiler.clone(), false).await.ok_json();
    assert_eq!(p["applied"], false);
    assert_eq!(p["file"]["version"], 6);
    assert_eq!(p["file"]["panel_name"], "Boilers");
    let in1 = item(&p["points"], "point", "IN1");
    assert_eq!(in1["action"], "create", "{in1}");
    assert_eq!(in1["label"], "PMP1STAT");
    assert_eq!(in1["description"], "SYS-PUMP1-STATUS");
    assert_eq!(item(&p["schedules"], "source", "WR1")["name"], "boiler WR1 WEEKLY");
    assert_eq!(item(&p["calendars"], "source", "AR1")["name"], "boiler AR1 BLRAS");
    assert_eq!(item(&p["programs"], "source", "PRG1")["name"], "boiler PRG1 BLRSYS");
    // The "NETWORK" monitor logs VAR129..: a warning, no trend log.
    assert!(p["warnings"].as_array().unwrap().iter().any(|w| w["item"] == "MON12"), "{}", p["warnings"]);
    assert!(p["changes"].as_u64().unwrap() > 10, "{p}");
    assert_eq!(catalog(&server).await, before, "a preview writes nothing");

    // Apply both panels.
    let applied = import(&server, "boiler", boiler.clone(), true).await.ok_json();
    assert_eq!(applied["applied"], true);
    assert_eq!(applied["changes"], p["changes"]);
    let applied_btu = import(&server, "btu", btu.clone(), true).await.ok_json();
    let applied_leadlag = import(&server, "leadlag", leadlag.clone(), true).await.ok_json();
    assert_eq!(item(&applied_leadlag["custom_ranges"], "source", "custom ranges")["action"], "create");

    // Points: label, full label, units (VAR2 is in the panel's custom unit 1, "PSI").
    let points = server.get("/api/t3000/devices/boiler/points").await.ok_json();
    let id_of = |name: &str| {
        points["points"].as_array().unwrap().iter().find(|x| x["name"] == name).unwrap()["id"].as_u64().unwrap()
    };
    let in1 = server.get(&format!("/api/t3000/points/{}", id_of("IN1"))).await.ok_json();
    assert_eq!((in1["label"].as_str(), in1["description"].as_str()), (Some("PMP1STAT"), Some("SYS-PUMP1-STATUS")));
    let var2 = server.get(&format!("/api/t3000/points/{}", id_of("VAR2"))).await.ok_json();
    assert_eq!((var2["label"].as_str(), var2["units"].as_str()), (Some("HWPRESSP"), Some("PSI")), "{var2}");

    // Ranges: each point's range code and digital flag are stored as the file has them (nobody
    // answers for these devices: the points show the catalog's), the panels' custom ranges as
    // read_prog.py reads them, and a point in a custom digital range shows the panel's texts.
    for (device, file) in [("boiler", "BOILER.prog"), ("btu", "BTUMeterRev22.prog"), ("leadlag", "LeadLagRev1.prog")] {
        let theirs = read_prog(file);
        let ranges = server.get(&format!("/api/t3000/devices/{device}/ranges")).await.ok_json();
        for key in ["digital", "variable_units", "analog_tables"] {
            assert_eq!(ranges[key], expected_ranges(&theirs)[key], "{device} {key}: {ranges}");
        }
        let points =
            server.get(&format!("/api/t3000/points?device_id={}&limit=1000", ranges["device_id"])).await.ok_json();
        let (mut checked, mut custom) = (0, 0);
        for (kind, prefix) in [("inputs", "IN"), ("outputs", "OUT"), ("variables", "VAR")] {
            for (i, p) in theirs[kind].as_array().unwrap().iter().enumerate() {
                let (code, digital) = (p["range"].as_u64().unwrap(), p["digital_analog"] == 0);
                // What the import leaves out: unused points, points the profile lacks (warned).
                let ours = find_point(&points, device, &format!("{prefix}{}", i + 1));
                let (Some(ours), false) = (ours, p["label"] == "" && p["description"] == "" && code == 0) else {
                    continue;
                };
                assert_eq!((&ours["range"], &ours["digital"]), (&json!(code), &json!(digital)), "{device} {ours}");
                checked += 1;
                if digital && (23..=30).contains(&code) {
                    assert_eq!(ours["states"], custom_states(&theirs, code), "{device} {ours}");
                    custom += 1;
                }
            }
        }
        assert!(checked >= 10, "{device}: {checked} points checked");
        assert_eq!(custom > 0, device != "boiler", "{device}: {custom} points in a custom digital range");
    }
    // BTUMeterRev22 VAR10 "FILLTANK": custom range 1 TANK1/TANK2, inverse; LeadLagRev1 VAR3
    // "LEADPMP": custom range 1 P1LEAD/P2LEAD.
    let btu_points = server.get("/api/t3000/points?q=FILLTANK").await.ok_json();
    let var10 = find_point(&btu_points, "btu", "VAR10").unwrap_or_else(|| panic!("{btu_points}"));
    assert_eq!(
        (&var10["states"], &var10["range_name"]),
        (&json!(["TANK2", "TANK1"]), &json!("TANK2/TANK1")),
        "{var10}"
    );
    let leadlag_points = server.get("/api/t3000/points?q=LEADPMP").await.ok_json();
    let var3 = find_point(&leadlag_points, "leadlag", "VAR3").unwrap_or_else(|| panic!("{leadlag_points}"));
    assert_eq!(
        (&var3["states"], &var3["range_name"]),
        (&json!(["P1LEAD", "P2LEAD"]), &json!("P1LEAD/P2LEAD")),
        "{var3}"
    );

    // Schedule WR1: Monday 01:00-23:50; calendar AR1: day 35 of the year is 02-04.
    let schedules = server.get("/api/t3000/schedules").await.ok_json();
    let wr1 = item(&schedules, "name", "boiler WR1 WEEKLY");
    assert_eq!(wr1["weekly_schedule"]["days"]["monday"][0]["on"], "01:00", "{wr1}");
    assert_eq!(wr1["weekly_schedule"]["days"]["monday"][0]["off"], "23:50", "{wr1}");
    let calendars = server.get("/api/t3000/calendars").await.ok_json();
    let ar1 = item(&calendars, "name", "boiler AR1 BLRAS");
    assert!(ar1["recurring"].as_array().unwrap().iter().any(|d| d == "02-04"), "{ar1}");

    // Trend log from the BTU meter's monitor 1 "TESTGRAF": 10 s, its points of panel 19.
    let logs = server.get("/api/t3000/trendlogs").await.ok_json();
    let mon1 = item(&logs, "name", "btu MON1 TESTGRAF");
    assert_eq!(mon1["interval_ms"], 10_000, "{mon1}");
    let btu_points = server.get("/api/t3000/devices/btu/points").await.ok_json();
    let var22 = btu_points["points"].as_array().unwrap().iter().find(|x| x["name"] == "VAR22").unwrap()["id"].clone();
    assert!(mon1["point_ids"].as_array().unwrap().contains(&var22), "{mon1}");
    assert!(applied_btu["trendlogs"].as_array().unwrap().len() >= 2, "{applied_btu}");

    // Program 1 with its whole code block, verbatim.
    let programs = server.get("/api/t3000/programs").await.ok_json();
    let prg1 = item(&programs, "name", "boiler PRG1 BLRSYS");
    assert_eq!(prg1["t3000"]["code_bytes"], 134);
    // Its text decoded from the code as T3000 shows it, and it does not run until enabled.
    assert!(prg1["source"].as_str().unwrap().starts_with("10 "), "{prg1}");
    assert_eq!((&prg1["enabled"], &prg1["status"]), (&json!(false), &json!("stopped")), "{prg1}");
    // Enabled on the server, the panel's own copy is stopped where the panel can be reached (this
    // one cannot: the answer says so).
    let enable = format!("/api/t3000/programs/{}/enable", prg1["id"]);
    let r = server.post_json(&enable, &json!({})).await.ok_json();
    assert!(r["panel"].as_str().is_some_and(|n| n.starts_with("PRG1 could not be stopped on the panel")), "{r}");
    let disable = format!("/api/t3000/programs/{}/disable", prg1["id"]);
    assert_eq!(server.post_json(&disable, &json!({})).await.ok_json()["status"], "stopped");
    let code: String = boiler
        [3 + 2944 + 2880 + 4992 + 592 + 448 + 736 + 16800 + 384 + 200 + 525 + 400 + 336 + 132 + 1248 + 1152 + 184..]
        [..2000]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(prg1["t3000"]["code_hex"], code.as_str());

    // Audited.
    let audit = server.get("/api/t3000/audit?action=import.prog").await.ok_json();
    assert!(audit.as_array().unwrap().len() > 10, "{audit}");
    assert!(audit.as_array().unwrap().iter().any(|e| e["target"].as_str().is_some_and(|t| t.starts_with("device:"))));

    // Twice: nothing changes, and the preview says so.
    let after = catalog(&server).await;
    let again = import(&server, "boiler", boiler.clone(), true).await.ok_json();
    assert_eq!(again["changes"], 0, "{again}");
    let again_btu = import(&server, "btu", btu.clone(), false).await.ok_json();
    assert_eq!(again_btu["changes"], 0, "{again_btu}");
    assert_eq!(item(&again_btu["custom_ranges"], "source", "custom ranges")["action"], "unchanged");
    for list in ["points", "custom_ranges", "schedules", "calendars", "trendlogs", "programs"] {
        assert!(again[list].as_array().unwrap().iter().all(|x| x["action"] == "unchanged"), "{list}: {again}");
    }
    let strip = |v: Vec<Value>| {
        // Schedules carry their state now (on, next run); compare what the import writes.
        v.into_iter().map(|x| x.to_string().replace(char::is_numeric, "")).collect::<Vec<_>>()
    };
    assert_eq!(strip(catalog(&server).await), strip(after.clone()));

    // Multipart with the file in field `file`.
    let mut form = b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"BOILER.prog\"\r\n\
Content-Type: application/octet-stream\r\n\r\n"
        .to_vec();
    form.extend_from_slice(&boiler);
    form.extend_from_slice(b"\r\n--b0undary--\r\n");
    let m = server
        .send(
            server
                .client
                .post(server.url("/api/t3000/import/prog?device=boiler"))
                .header("content-type", "multipart/form-data; boundary=b0undary")
                .body(form),
        )
        .await
        .ok_json();
    assert_eq!((m["changes"].as_u64(), m["applied"].as_bool()), (Some(0), Some(false)), "{m}");

    // The CLI against the running server.
    let file = prog("BOILER.prog");
    let out = run(&[
        "import",
        "prog",
        file.to_str().unwrap(),
        "--device",
        "boiler",
        "--url",
        &server.url(""),
        "--token",
        &server.token,
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("0 change(s)"), "{}", out.stdout);

    // Bad files: 422 naming the offset, nothing imported, the server serves on.
    let before_bad = catalog(&server).await;
    for (what, body, needle) in [
        ("truncated", boiler[..40_000].to_vec(), "at byte offset 40000"),
        ("version 5", std::fs::read(prog("PT12TesterRev1.prog")).unwrap(), "version 5"),
        ("INI layout", std::fs::read(prog("Building4.prog")).unwrap(), "XOR-scrambled INI layout"),
        ("garbage", b"SQLite format 3\0not a panel file".to_vec(), "SQLite database"),
        ("empty", Vec::new(), "empty"),
    ] {
        let r = import(&server, "boiler", body, true).await;
        r.assert_error(what, StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_prog_file"));
        let message = r.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains(needle) && message.contains("offset"), "{what}: {message}");
    }
    let r = import(&server, "nobody", boiler.clone(), true).await;
    r.assert_error("unknown device", StatusCode::NOT_FOUND, Some("unknown_device"));
    let cli = run(&[
        "import",
        "prog",
        prog("PT12TesterRev1.prog").to_str().unwrap(),
        "--device",
        "boiler",
        "--url",
        &server.url(""),
        "--token",
        &server.token,
    ]);
    assert!(!cli.status.success() && cli.stderr.contains("version 5"), "{}", cli.stderr);
    assert_eq!(strip(catalog(&server).await), strip(before_bad));
    server.get("/healthz").await.ok_json();
}
