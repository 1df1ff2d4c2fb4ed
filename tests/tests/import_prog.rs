//! `POST /api/t3000/import/prog` and `t3000 import prog` against the real binary with real T3000 panel
//! files (Temco's example files, `drivers/tests/data/prog/`): preview, apply, the points, schedules,
//! calendars, trend logs and programs through the API, a second apply that changes nothing, and bad
//! files refused with the byte offset while nothing is imported and the server keeps serving.

use reqwest::StatusCode;
use serde_json::Value;
use std::path::PathBuf;
use t3_tests::{TestServer, run};

fn prog(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../drivers/tests/data/prog").join(name)
}

async fn import(server: &TestServer, device: &str, body: Vec<u8>, apply: bool) -> t3_tests::Reply {
    let url = server.url(&format!("/api/t3000/import/prog?device={device}&apply={apply}"));
    server.send(server.client.post(url).header("content-type", "application/octet-stream").body(body)).await
}

fn item<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array().and_then(|l| l.iter().find(|x| x[key] == value)).unwrap_or_else(|| panic!("no {value} in {list}"))
}

/// Everything the catalog holds that an import may touch.
async fn catalog(server: &TestServer) -> Vec<Value> {
    let mut out = Vec::new();
    for path in ["/api/t3000/schedules", "/api/t3000/calendars", "/api/t3000/trendlogs", "/api/t3000/programs"] {
        out.push(server.get(path).await.ok_json());
    }
    out.push(server.get("/api/t3000/devices/boiler/points").await.ok_json());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prog_file_is_previewed_applied_once_and_bad_files_are_refused() {
    // Two T3 panels nobody answers for (the import is catalog work: no device I/O).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let device = |name: &str| {
        format!(
            "[[devices]]\nname = \"{name}\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = {port}\n\
             unit_id = 1\nprofile = \"T3-controller\"\npoll_interval_ms = 60000\n"
        )
    };
    let server = TestServer::start(&format!("{}{}", device("boiler"), device("btu")));
    let boiler = std::fs::read(prog("BOILER.prog")).unwrap();
    let btu = std::fs::read(prog("BTUMeterRev22.prog")).unwrap();

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

    // Points: label, full label, units (VAR2 is in the panel's custom unit 1, "PSI").
    let points = server.get("/api/t3000/devices/boiler/points").await.ok_json();
    let id_of = |name: &str| {
        points["points"].as_array().unwrap().iter().find(|x| x["name"] == name).unwrap()["id"].as_u64().unwrap()
    };
    let in1 = server.get(&format!("/api/t3000/points/{}", id_of("IN1"))).await.ok_json();
    assert_eq!((in1["label"].as_str(), in1["description"].as_str()), (Some("PMP1STAT"), Some("SYS-PUMP1-STATUS")));
    let var2 = server.get(&format!("/api/t3000/points/{}", id_of("VAR2"))).await.ok_json();
    assert_eq!((var2["label"].as_str(), var2["units"].as_str()), (Some("HWPRESSP"), Some("PSI")), "{var2}");

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
    for list in ["points", "schedules", "calendars", "trendlogs", "programs"] {
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
