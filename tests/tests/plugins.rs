//! Loadable protocol plugins end to end, with the real binary: the C example plugin
//! (`plugins/example-c`, built here with the system C compiler) is found in a plugin folder,
//! loaded, listed by `t3000 plugins`, `GET /api/t3000/plugins` and `/healthz`, and its device is
//! polled into history and written through the arbiter; a plugin built for another ABI and a
//! library that is no plugin are refused with the reason; a plugin device's own keys are checked
//! by the plugin with the key and line named; and a plugin that panics, hangs or answers garbage
//! (`plugins/testkit`) takes only its own device offline while the server and the other devices
//! go on.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use t3_tests::*;

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Compiles C `source` into the shared library `dir/<name>`, with the ABI header on the include path.
pub(crate) fn cc(source: &Path, dir: &Path, name: &str, defines: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&compiler)
        .args(["-shared", "-fPIC", "-O2", "-std=c99", "-Wall", "-Werror"])
        .args(defines)
        .arg("-I")
        .arg(root().join("plugins/abi"))
        .arg("-o")
        .arg(&out)
        .arg(source)
        .status()
        .unwrap_or_else(|e| panic!("run {compiler}: {e}"));
    assert!(status.success(), "{compiler} failed on {}", source.display());
    out
}

/// A plugin folder with the C example, a plugin built for ABI 2.0 and a library without the symbol.
fn plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    cc(&root().join("plugins/example-c/example.c"), dir.path(), "libt3_example.so", &[]);
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    // A declaration of a future major version: the server must refuse it before any other call.
    let future = src.join("future.c");
    std::fs::write(
        &future,
        "#include <stdint.h>\n#include <stddef.h>\nstruct decl { uint16_t major, minor; uint32_t size; const char *name, *version; };\n\
         static const struct decl d = { 2, 3, sizeof(struct decl), \"future\", \"9.0\" };\n\
         const void *t3000_plugin_declare(void) { return &d; }\n",
    )
    .unwrap();
    cc(&future, dir.path(), "libfuture.so", &[]);
    let plain = src.join("plain.c");
    std::fs::write(&plain, "int t3000_something_else(void) { return 1; }\n").unwrap();
    cc(&plain, dir.path(), "libplain.so", &[]);
    dir
}

pub(crate) fn plugins_toml(dir: &Path, call_timeout_ms: u64) -> String {
    format!("[plugins]\ndirs = [\"{}\"]\ncall_timeout_ms = {call_timeout_ms}\n", dir.display())
}

fn example_device(name: &str) -> String {
    format!("[[devices]]\nname = \"{name}\"\nprotocol = \"example-c\"\nseed = 7\npoll_interval_ms = 200\n")
}

pub(crate) async fn device(server: &TestServer, name: &str) -> Value {
    server.get(&format!("/api/t3000/devices/{name}")).await.ok_json()
}

pub(crate) async fn wait_state(server: &TestServer, name: &str, state: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let d = device(server, name).await;
        if d["status"]["state"] == state {
            return d;
        }
        assert!(std::time::Instant::now() < deadline, "{name} did not become {state}: {d:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The device's points by name.
pub(crate) async fn points_of(server: &TestServer, device_id: &Value) -> Vec<Value> {
    server.get(&format!("/api/t3000/points?device_id={device_id}&limit=1000")).await.ok_json()["items"]
        .as_array()
        .unwrap()
        .clone()
}

pub(crate) fn named<'a>(points: &'a [Value], name: &str) -> &'a Value {
    points
        .iter()
        .find(|p| p["name"] == name || p["point_name"] == name)
        .unwrap_or_else(|| panic!("no point {name} in {points:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_example_plugin_is_loaded_polled_and_written_and_bad_plugins_are_refused() {
    let dir = plugin_dir();
    // `t3000 plugins` lists what it found, loaded or refused and why.
    let out = run(&["plugins", "--dir", &dir.path().display().to_string()]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("loaded   example-c"), "{}", out.stdout);
    assert!(
        out.stdout.contains("libfuture.so") && out.stdout.contains("ABI 2.3") && out.stdout.contains("ABI 1.0"),
        "the refusal names both versions and the file: {}",
        out.stdout
    );
    assert!(out.stdout.contains("libplain.so") && out.stdout.contains("not a t3000 plugin"), "{}", out.stdout);

    let extra = format!("{}\n{}", plugins_toml(dir.path(), 5000), example_device("roof"));
    let server = TestServer::start(&extra);
    let list = server.get("/api/t3000/plugins").await.ok_json();
    assert_eq!(list["abi"], "1.0");
    let plugins = list["plugins"].as_array().unwrap();
    let example = plugins.iter().find(|p| p["name"] == "example-c").expect("example-c listed");
    assert_eq!(example["state"], "loaded");
    assert!(example["protocol"]["keys"].as_array().unwrap().iter().any(|k| k["name"] == "seed"), "{example}");
    let health = server.health().await;
    let refused = health["plugins_refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2, "{health:#}");
    assert!(refused.iter().any(|r| r["abi"] == "2.3" && r["reason"].as_str().unwrap().contains("libfuture.so")));

    // The device's points come from the plugin, with its names, units and states.
    let d = wait_state(&server, "roof", "online").await;
    assert_eq!(d["protocol"], "example-c");
    // The plugin's own account of the connection, from its `health` call.
    poll_until("the plugin's health", Duration::from_secs(10), || async {
        device(&server, "roof").await["status"]["plugin_health"]["answered"].as_u64().is_some_and(|n| n > 0)
    })
    .await;
    let points = points_of(&server, &d["id"]).await;
    assert_eq!(points.len(), 4, "{points:#?}");
    let temp = named(&points, "Outside Temp");
    assert_eq!(temp["units"], "°C", "{temp}");
    // Lines follow what the plugin says: a measured analog value is drawn linear, a multistate
    // and a digital point as steps, with their states named.
    assert_eq!(temp["trend"]["line"], "linear", "{temp}");
    let mode = named(&points, "Mode");
    assert_eq!((&mode["trend"]["line"], &mode["range_name"]), (&json!("step"), &json!("Off/Heat/Cool/Auto")), "{mode}");
    let fan = named(&points, "Fan");
    assert_eq!((&fan["trend"]["line"], &fan["digital"]), (&json!("step"), &json!(true)), "{fan}");
    let setpoint = named(&points, "Supply Setpoint").clone();
    let (tid, sid) = (temp["id"].as_u64().unwrap(), setpoint["id"].as_u64().unwrap());

    // Polled into history.
    poll_until("Outside Temp history", Duration::from_secs(20), || async {
        let rows = server.sql(&format!("SELECT count(*) FROM samples WHERE point_id = {tid}")).await;
        rows[0][0].as_i64().unwrap_or(0) >= 2
    })
    .await;

    // Written through the arbiter at the operator's priority, read back; a value outside the
    // plugin's range is refused before the device is asked; relinquishing brings the device's
    // relinquish default (21) back.
    let w = server.post_json(&format!("/api/t3000/points/{sid}/value"), &json!({ "value": 24.5 })).await.ok_json();
    assert_eq!(w["read_back"], 24.5, "{w}");
    server
        .post_json(&format!("/api/t3000/points/{sid}/value"), &json!({ "value": 99 }))
        .await
        .assert_client_error("a setpoint above the plugin's max");
    // A schedule's priority (15) is below the operator's: the device keeps 24.5 in force.
    let w = server
        .post_json(&format!("/api/t3000/points/{sid}/value"), &json!({ "value": 12, "priority": 15 }))
        .await
        .ok_json();
    assert_eq!(w["read_back"], 24.5, "the device's own priority array decides: {w}");
    let r = server.post_json(&format!("/api/t3000/points/{sid}/relinquish"), &json!({ "priority": 8 })).await.ok_json();
    assert_eq!(r["read_back"], 12.0, "priority 15 wins once 8 is relinquished: {r}");
    let r =
        server.post_json(&format!("/api/t3000/points/{sid}/relinquish"), &json!({ "priority": 15 })).await.ok_json();
    assert_eq!(r["read_back"], 21.0, "the relinquish default once every slot is empty: {r}");
}

#[test]
fn a_plugin_device_is_checked_by_its_plugin_naming_the_key_and_line() {
    let dir = plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("t3000.toml");
    let check = |devices: &str| {
        std::fs::write(&file, config_text(data.path(), &format!("{}\n{devices}", plugins_toml(dir.path(), 5000))))
            .unwrap();
        run(&["check-config", &file.display().to_string()])
    };
    let ok = check(&example_device("roof"));
    assert!(ok.status.success(), "{}", ok.stderr);

    let bad = check("[[devices]]\nname = \"roof\"\nprotocol = \"example-c\"\nseed = \"seven\"\n");
    assert_eq!(bad.status.code(), Some(2), "{}", bad.stderr);
    let text = std::fs::read_to_string(&file).unwrap();
    let line = text.lines().position(|l| l.starts_with("seed")).unwrap() + 1;
    assert!(bad.stderr.contains(&format!(":{line}: devices[0].seed:")), "{}", bad.stderr);

    let unknown = check("[[devices]]\nname = \"roof\"\nprotocol = \"example-c\"\nspeed = 3\n");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(unknown.stderr.contains("devices[0].speed"), "{}", unknown.stderr);

    let none = check("[[devices]]\nname = \"ahu\"\nprotocol = \"bacnet-ip\"\nip_address = \"127.0.0.1\"\n");
    assert_eq!(none.status.code(), Some(2));
    assert!(
        none.stderr.contains("devices[0].protocol")
            && none.stderr.contains("no loaded plugin serves protocol \"bacnet-ip\""),
        "{}",
        none.stderr
    );
    assert!(none.stderr.contains("example-c"), "the message names what is loaded: {}", none.stderr);
}

/// The testkit plugin (`plugins/testkit`), built by cargo beside the test executables.
pub(crate) fn testkit() -> PathBuf {
    if let Some(p) = std::env::var_os("T3000_TESTKIT") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let lib = exe.parent().unwrap().join("..").join("libt3_plugin_testkit.so");
    assert!(lib.is_file(), "build it first: cargo build --release -p t3-plugin-testkit ({})", lib.display());
    lib
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_panics_hangs_or_answers_garbage_takes_only_its_device_offline() {
    let dir = plugin_dir();
    std::fs::copy(testkit(), dir.path().join("libt3_plugin_testkit.so")).unwrap();
    let kit = |name: &str, fault: &str| {
        format!("[[devices]]\nname = \"{name}\"\nprotocol = \"testkit\"\n{fault}\npoll_interval_ms = 200\n")
    };
    let extra = format!(
        "{}\n[collector]\noffline_after_failures = 2\nbackoff_initial_ms = 100\nbackoff_max_ms = 500\n{}{}{}{}{}",
        plugins_toml(dir.path(), 500),
        example_device("healthy"),
        kit("panics", "panic_in = \"read\""),
        kit("hangs", "hang_in = \"read\""),
        kit("garbage", "garbage_in = \"read\""),
        kit("wrong-list", "garbage_in = \"points\""),
    );
    let server = TestServer::start(&extra);
    let panics = wait_state(&server, "panics", "offline").await;
    assert!(panics["status"]["last_error"].as_str().unwrap().contains("panicked"), "{panics:#}");
    let hangs = wait_state(&server, "hangs", "offline").await;
    let why = hangs["status"]["last_error"].as_str().unwrap().to_owned();
    assert!(why.contains("no answer within 500 ms") || why.contains("has not returned"), "{why}");
    let garbage = wait_state(&server, "garbage", "offline").await;
    assert!(garbage["status"]["last_error"].as_str().unwrap().contains("plugin failed"), "{garbage:#}");
    let list = wait_state(&server, "wrong-list", "offline").await;
    assert!(list["status"]["last_error"].as_str().unwrap().contains("point list"), "{list:#}");
    // The offline devices' points carry bad-quality samples, never made-up values.
    let points = points_of(&server, &panics["id"]).await;
    assert!(!points.is_empty());
    // The server and the healthy device go on.
    let healthy = wait_state(&server, "healthy", "online").await;
    let polls = healthy["status"]["polls"].as_u64().unwrap();
    poll_until("the healthy device keeps polling", Duration::from_secs(20), || async {
        device(&server, "healthy").await["status"]["polls"].as_u64().unwrap() > polls + 5
    })
    .await;
    assert_eq!(server.health().await["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_a_plugin_pushes_are_recorded_between_polls() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(testkit(), dir.path().join("libt3_plugin_testkit.so")).unwrap();
    // Polled once an hour: every value after the first poll can only have been pushed. Pushed
    // values go through on-change recording like polled ones: `P1` pushes 1 + round, a new value
    // each time; the device records every change.
    let extra = format!(
        "{}\n[[devices]]\nname = \"pusher\"\nprotocol = \"testkit\"\npoint_count = 2\nsubscribe = true\npush_ms = 50\npoll_interval_ms = 3600000\n[devices.record]\nmode = \"change\"\n",
        plugins_toml(dir.path(), 5000)
    );
    let server = TestServer::start(&extra);
    let d = wait_state(&server, "pusher", "online").await;
    let points = points_of(&server, &d["id"]).await;
    let p1 = named(&points, "P1")["id"].as_u64().unwrap();
    poll_until("pushed values recorded", Duration::from_secs(20), || async {
        let rows = server.sql(&format!("SELECT count(DISTINCT value) FROM samples WHERE point_id = {p1}")).await;
        rows[0][0].as_i64().unwrap_or(0) >= 10
    })
    .await;
    assert_eq!(device(&server, "pusher").await["status"]["polls"], 1, "one poll: the rest came pushed");
}

/// The threads of process `pid` whose name starts with `prefix` (Linux names are cut at 15 bytes).
fn threads_named(pid: u32, prefix: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|c| c.trim_end().starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_hung_in_open_is_not_asked_again_until_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(testkit(), dir.path().join("libt3_plugin_testkit.so")).unwrap();
    let extra = format!(
        "{}\n[collector]\noffline_after_failures = 2\nbackoff_initial_ms = 50\nbackoff_max_ms = 100\n[[devices]]\nname = \"stuck\"\nprotocol = \"testkit\"\nhang_in = \"open\"\n",
        plugins_toml(dir.path(), 100)
    );
    let server = TestServer::start(&extra);
    let stuck = wait_state(&server, "stuck", "offline").await;
    // Dozens of retries at 50 to 100 ms: each finds the first attempt still in the plugin.
    poll_until("many retries", Duration::from_secs(20), || async {
        device(&server, "stuck").await["status"]["failed_polls"].as_u64().unwrap_or(0) >= 10
    })
    .await;
    let why = device(&server, "stuck").await["status"]["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(why.contains("has not returned from opening"), "{why} ({stuck:#})");
    assert_eq!(threads_named(server.pid().unwrap(), "t3000-plugin"), 1, "one thread stuck in open, no more");
    assert_eq!(server.health().await["status"], "ok");
}
