//! The HTTP API against its own OpenAPI document, checked by Schemathesis (a property-based API
//! tester from PyPI that we did not write). It calls every documented operation with generated
//! valid and invalid input, as a plain call and in stateful sequences (create, then read, change,
//! delete), and requires of every answer: no server error, a documented status code, content type
//! and headers, a body matching the documented schema, invalid input refused with a 4xx, and
//! valid input accepted.
//!
//! The server runs with a simulated controller (`t3000 simulate`), so the device, point, value
//! and write endpoints answer with real data: Schemathesis draws device and point ids from the real
//! ones half of the time (see [`config`]). It also runs with the C example plugin loaded
//! (`plugins/example-c`, compiled here with the system C compiler), so the document it is given
//! has the plugin's device body and scan, and the run must have added at least one example-c device
//! from a body Schemathesis generated (the audit log says so).
//!
//! # Where it runs
//! In a network namespace of its own with only a loopback device. Generated bodies name hosts
//! (POST /api/t3000/devices, /devices/discover) and the server would connect to them, or resolve
//! them through the machine's name server; in the namespace nothing outside this machine can be
//! reached. The test re-runs itself there through `unshare --net` (root, as on the developers'
//! machines and in CI; `ip` brings the loopback device up).
//!
//! Needs `T3000_PYTHON`, a Python with `schemathesis>=4.32,<5`: `.ci/run` installs it in its venv
//! and exports the variable. Without it the test fails saying so: tests never silently skip.
//!
//! `schemathesis_hooks.py` keeps the admin session Schemathesis runs with alive: logout runs with a
//! throwaway token, password change as a throwaway user whose current password the hooks know;
//! the admin's own token and user are never deleted or changed. It also gives the two file bodies
//! whose format JSON Schema cannot describe real files: Arrow IPC streams (written by [`arrow_samples`])
//! and SVG documents, as Schemathesis does itself for PNG, JPEG and WebP.
//!
//! No operation is excluded and every check runs, `positive_data_acceptance` included: a request
//! the document calls valid must get 2xx, or 404 / 409 when the server's state or configuration
//! refuses it (a record that does not exist; a write outside a point's range, a time stamp past
//! `ingest.max_future_secs`, an answer over `query.max_rows`, a device name taken). The document
//! states every rule one value can break (lengths, patterns of names, instants, durations, point
//! lists, profiles and scan targets, numeric ranges, enums, `additionalProperties`, required
//! parameters), each defined once in `api/src/http/rules.rs`, which both the validators and the
//! document use; and rules across fields where JSON Schema can say them (a device's fields by
//! protocol, the history modes of the batch body, a sample without a value having a bad quality,
//! a manual point's trend settings). What it cannot say is in the operations' descriptions, and
//! [`ACROSS_FIELDS`] lets exactly those operations answer that rule's one status: the history
//! query's parameters that depend on each other and SQL that DuckDB does not take (400), alarm
//! limits in order, a schedule's ON before its OFF, a device's point settings that its profile
//! lacks, a point placed twice on a floor plan, a program text that does not parse or bind, and
//! the files an import reads (a WebView database,
//! a `.prog` panel file, a CSV file) (422). [`UPGRADE`] lets the WebSocket upgrade
//! answer a plain request with its documented 400 (Schemathesis cannot upgrade). The server runs
//! with `query.max_rows` = [`MAX_ROWS`], so that a request for millions of buckets gets its 409 at
//! once.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use t3_tests::*;

/// Set in the re-run inside the network namespace.
const INSIDE: &str = "T3000_SCHEMATHESIS_NETNS";
const TEST: &str = "the_api_holds_to_its_openapi_document";
/// Generated cases per operation and phase; the whole run takes about a minute on 2 cores.
const MAX_EXAMPLES: u32 = 50;
/// Fixed, so that a run is repeatable; change it to explore other inputs.
const SEED: u64 = 3000;
/// `query.max_rows` of the server under test.
const MAX_ROWS: usize = 100_000;
/// Longest a whole Schemathesis run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

fn python() -> String {
    match std::env::var("T3000_PYTHON") {
        Ok(p) if !p.trim().is_empty() => p,
        _ => panic!(
            "T3000_PYTHON is not set: the Schemathesis test needs a Python with schemathesis>=4.32,<5. \
             Run the tests through `bash .ci/run`, which installs it and exports T3000_PYTHON \
             (or export T3000_PYTHON=$HOME/.cache/t3000/venv/bin/python after running it once)."
        ),
    }
}

/// Output of a child process, indented so that a test harness line in it (`test result: ...`) is
/// not taken for one of this run's.
fn indented(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).lines().map(|l| format!("    | {l}\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_holds_to_its_openapi_document() {
    let python = python();
    let probe = std::process::Command::new(&python).args(["-c", "import schemathesis"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "{python} (T3000_PYTHON) cannot import schemathesis: {probe:?}; run the tests through .ci/run"
    );
    if std::env::var_os(INSIDE).is_some() {
        run_schemathesis(&python).await;
    } else {
        rerun_in_private_network().await;
    }
}

/// Runs this test again in a new network namespace and requires it to pass.
async fn rerun_in_private_network() {
    let exe = std::env::current_exe().expect("the test executable");
    let module = module_path!().split_once("::").map_or(module_path!(), |(_, m)| m);
    let name = format!("{module}::{TEST}");
    let child = tokio::process::Command::new("unshare")
        .args(["--net", "--", "sh", "-c", r#"ip link set lo up && exec "$0" "$@""#])
        .arg(&exe)
        .args([name.as_str(), "--exact", "--nocapture", "--test-threads", "1"])
        .env(INSIDE, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run unshare (util-linux): {e}"));
    let out = tokio::time::timeout(RUN_TIMEOUT + Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the run in its own network namespace did not finish in time")
        .expect("wait for the run in its own network namespace");
    let shown = format!("{}{}", indented(&out.stdout), indented(&out.stderr));
    assert!(
        out.status.success(),
        "{name} failed in its network namespace ({}); `unshare --net` needs root and `ip` (iproute2):\n{shown}",
        out.status
    );
    println!("{shown}");
}

/// The Schemathesis configuration: real device and point ids half of the time, and the one
/// documented 5xx.
fn config(device_id: &Value, point_ids: &[u64]) -> String {
    let points = point_ids.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    format!(
        r#"
[dictionaries.devices]
values = ["ahu", "{device_id}"]

[dictionaries.points]
values = [{points}]

[[operations]]
include-path-regex = '^/api/t3000/devices/\{{id\}}'
parameters = {{ "path.id" = {{ dictionary = "devices", probability = 0.5 }} }}

[[operations]]
include-path-regex = '^/api/t3000/points/\{{id\}}'
parameters = {{ "path.id" = {{ dictionary = "points", probability = 0.5 }} }}

{UPGRADE}{ACROSS_FIELDS}"#
    )
}

/// The WebSocket upgrade: its 101 needs the upgrade headers (stated in the operation's
/// description), which an HTTP client such as Schemathesis does not send, so a request the document
/// calls valid gets the documented 400 `not_a_websocket` (`tests/ws.rs` opens real connections).
const UPGRADE: &str = r#"
[[operations]]
include-name = "GET /api/t3000/ws"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "400"]
"#;

/// The operations whose valid input the document cannot describe in full, and the one status
/// their refusal may have besides those `positive_data_acceptance` allows (2xx, 3xx, 401, 403,
/// 404, 409, 429): the rule, stated in the operation's description, that JSON Schema cannot say.
const ACROSS_FIELDS: &str = r#"
# Query parameters cannot be related to each other in OpenAPI: `bucket` needs `agg` or `fill`,
# `fill` needs `bucket`, ... (POST /history/batch states the same rules in its body schema and is
# checked strictly; both go through one validator).
[[operations]]
include-name = "GET /api/t3000/points/{id}/history"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "400"]

# The limits of an alarm rule in order (waylow <= low < high <= wayhigh): numbers compared.
[[operations]]
include-name = ["POST /api/t3000/alarms/rules", "PUT /api/t3000/alarms/rules/{id}"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "422"]

# Each ON time of a schedule before its OFF time, the pairs of a day apart: times compared.
[[operations]]
include-name = ["POST /api/t3000/schedules", "PUT /api/t3000/schedules/{id}"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "422"]

# The points a device's `points` may name are its profile's (25 profiles, 4,792 names), each at
# most once in any case, and they must fit `max_registers`.
[[operations]]
include-name = ["POST /api/t3000/devices", "PUT /api/t3000/devices/{id}"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "422"]

# Each point at most once on a floor plan: items compared by their `point_id`.
[[operations]]
include-name = "PUT /api/t3000/floors/{id}/plan/points"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "422"]

# Whether a file is a T3000 WebView database (SQLite with WebView's tables) is for SQLite to say:
# JSON Schema cannot describe a SQLite file; anything else is a 422 naming what is missing.
[[operations]]
include-name = "POST /api/t3000/import/webview"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "422"]

# Likewise a T3000 panel file (`55 FF`, a version byte, packed records) and a CSV file (a header
# row naming known columns, rows that pass the API's checks): the 422 names the byte offset, or
# every row and column that is wrong.
[[operations]]
include-name = ["POST /api/t3000/import/prog", "POST /api/t3000/import/csv"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "422"]

# Whether a text is a Control BASIC program whose point names bind to its device's points is for
# the language's parser and the device's points to say: the 422 names the line and column.
[[operations]]
include-name = ["POST /api/t3000/programs", "PUT /api/t3000/programs/{id}"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "422"]

# Whether a text is a SELECT that DuckDB can run over the views is for DuckDB's parser to say.
[[operations]]
include-name = "POST /api/t3000/query"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "400"]

# A write goes to the device: one that does not answer (the devices Schemathesis adds name hosts
# and serial ports that do not exist) is a 502, as documented.
[[operations]]
include-name = ["POST /api/t3000/points/{id}/value", "POST /api/t3000/points/{id}/relinquish", "POST /api/t3000/points/{id}/mode"]
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "502"]

# Hardware sync reads the device at every request: one that does not answer is a 502, as documented.
[[operations]]
include-name = ["GET /api/t3000/devices/{id}/sync", "POST /api/t3000/devices/{id}/sync"]
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "502"]
"#;

/// Arrow IPC streams of recent samples, for the hooks to send as the Arrow body of POST
/// /api/t3000/samples (a format JSON Schema cannot describe); their paths, joined by the OS's
/// path separator.
fn arrow_samples(dir: &Path, point_ids: &[u64]) -> std::ffi::OsString {
    let now = i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros())
        .expect("now in i64 microseconds");
    let ids: Vec<u32> = point_ids.iter().take(3).map(|&p| u32::try_from(p).expect("a u32 point id")).collect();
    let ts: Vec<i64> = (0..ids.len() as i64).map(|i| now - 60_000_000 * (i + 1)).collect();
    let values: Vec<Option<f64>> = (0..ids.len()).map(|i| Some(i as f64 * 1.5)).collect();
    let quality = vec![192u8; ids.len()];
    let streams = [
        arrow_stream(&ids, &ts, &values, Some(&quality), true),
        arrow_stream(&ids, &ts, &values, None, false),
        arrow_stream(&ids[..1], &ts[..1], &[None], Some(&[0]), true),
    ];
    let paths = streams.iter().enumerate().map(|(i, bytes)| {
        let path = dir.join(format!("samples-{i}.arrows"));
        std::fs::write(&path, bytes).expect("write an Arrow stream");
        path
    });
    std::env::join_paths(paths).expect("join the paths")
}

/// Compiles the C example plugin into `dir` (its only library).
fn example_plugin(dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = std::process::Command::new(&compiler)
        .args(["-shared", "-fPIC", "-O2", "-I"])
        .arg(root.join("plugins/abi"))
        .arg("-o")
        .arg(dir.join("libt3_example.so"))
        .arg(root.join("plugins/example-c/example.c"))
        .status()
        .unwrap_or_else(|e| panic!("run {compiler}: {e}"));
    assert!(status.success(), "{compiler} could not build the example plugin");
}

/// How many devices of `protocol` were added (`device.create` audited `ok`), over every page of
/// the audit log.
async fn created(server: &TestServer, protocol: &str) -> usize {
    let mut n = 0;
    let mut before: Option<i64> = None;
    loop {
        let page = before.map_or(String::new(), |b| format!("&before_seq={b}"));
        let entries = server.get(&format!("/api/t3000/audit?action=device.create&limit=1000{page}")).await.ok_json();
        let entries = entries.as_array().expect("audit entries").clone();
        n += entries.iter().filter(|e| e["result"] == "ok" && e["new"]["config"]["protocol"] == protocol).count();
        match entries.last().and_then(|e| e["seq"].as_i64()) {
            Some(seq) if entries.len() == 1000 => before = Some(seq),
            _ => return n,
        }
    }
}

async fn run_schemathesis(python: &str) {
    let sim = simulate(&["--listen", "127.0.0.1:0", "--count", "1"]);
    let plugins = tempfile::tempdir().expect("tempdir");
    example_plugin(plugins.path());
    // Answers stay small: a generated request for millions of buckets gets the documented 409
    // (`too_many_rows`) at once instead of minutes of work.
    let extra = format!(
        "[plugins]\ndirs = [\"{}\"]\n[query]\nmax_rows = {MAX_ROWS}\n[[devices]]\nname = \"ahu\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = {}\nunit_id = 1\nprofile = \"T3-controller\"\npoll_interval_ms = 500\n",
        plugins.path().display(),
        port_of(&sim.tcp)
    );
    let server = TestServer::start(&extra);
    let doc = server.get("/api/openapi.json").await.ok_json();
    assert!(doc["components"]["schemas"]["DevicePluginExampleC"].is_object(), "the document states the plugin");
    poll_until("ahu online", Duration::from_secs(30), || async {
        server.get("/api/t3000/devices/ahu").await.ok_json()["online"] == true
    })
    .await;
    let device = server.get("/api/t3000/devices/ahu").await.ok_json();
    let points = server.get("/api/t3000/devices/ahu/points").await.ok_json();
    let point_ids: Vec<u64> =
        points["points"].as_array().expect("points").iter().filter_map(|p| p["id"].as_u64()).collect();
    assert!(!point_ids.is_empty(), "ahu has points: {points}");
    let admin_id = server.get("/api/t3000/auth/me").await.ok_json()["user_id"].clone();
    // The one token so far: the session TestServer logged in with.
    let tokens = server.get("/api/t3000/tokens").await.ok_json();
    let token_id = match tokens.as_array().map(Vec::as_slice) {
        Some([only]) => only["id"].clone(),
        _ => panic!("expected exactly the admin session: {tokens}"),
    };

    let work = tempfile::tempdir().expect("tempdir");
    let config_file = work.path().join("schemathesis.toml");
    std::fs::write(&config_file, config(&device["id"], &point_ids)).expect("write the config");
    let arrow = arrow_samples(work.path(), &point_ids);
    let hooks: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let t0 = Instant::now();
    let child = tokio::process::Command::new(python)
        .args(["-m", "schemathesis.cli", "--config-file"])
        .arg(&config_file)
        .arg("run")
        .arg(server.url("/api/openapi.json"))
        .args(["--checks", "all"])
        .args(["--max-examples", &MAX_EXAMPLES.to_string(), "--seed", &SEED.to_string()])
        .args(["--request-timeout", "30", "--generation-database", "none", "--no-color"])
        .current_dir(work.path())
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env("PYTHONPATH", &hooks)
        .env("T3000_ST_BASE", server.url(""))
        .env("T3000_ST_TOKEN", &server.token)
        .env("T3000_ST_TOKEN_ID", token_id.to_string())
        .env("T3000_ST_ADMIN_ID", admin_id.to_string())
        .env("T3000_ST_ARROW", &arrow)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {python} (T3000_PYTHON): {e}"));
    let out = tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis did not finish within {RUN_TIMEOUT:?}"))
        .expect("wait for schemathesis");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "schemathesis found problems ({}):\n{report}\n---- server log ----\n{}",
        out.status,
        server.stderr()
    );
    println!("{report}\nschemathesis took {:.0?}", t0.elapsed());
    // A plugin device body the document calls valid was accepted, not only refused ones.
    let examples = created(&server, "example-c").await;
    assert!(examples > 0, "no example-c device was added from a generated body:\n{report}");
    println!("example-c devices added from generated bodies: {examples}");
    drop(sim);
}
