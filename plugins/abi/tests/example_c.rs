//! The C example plugin (`plugins/example-c/example.c`), compiled with the command its README
//! documents and loaded with libloading as the server loads a plugin, answers every function of the
//! ABI as documented; garbage configurations never crash it; and its C driver (`check.c`) runs clean
//! under valgrind and under the address and undefined-behaviour sanitizers.
#![allow(unsafe_code)]

use crate::cc;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::ffi::{CStr, c_void};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use t3_plugin_abi::{
    ABI_MAJOR, ABI_MINOR, Buf, DECLARE_SYMBOL, DeclareFn, PluginDecl, QUALITY_BAD_COMM_FAILURE,
    QUALITY_BAD_CONFIG_ERROR, QUALITY_GOOD, STATUS_CONFIG, STATUS_INVALID, STATUS_OK, STATUS_UNREACHABLE,
    STATUS_UNSUPPORTED, Sample, Status,
};

/// `cc <flags> -o <out> example.c`, with the flags README.md and the Makefile document.
fn build_example(out: &Path, extra: &[&str]) {
    let include = format!("-I{}", cc::arg(&cc::abi_dir()));
    let src = cc::example_dir().join("example.c");
    let mut args = vec!["-std=c99", "-pedantic", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror"];
    args.extend(extra);
    args.extend([include.as_str(), "-o", cc::arg(out), cc::arg(&src)]);
    cc::compile(&cc::c_compiler(), &args);
}

/// The example, built once per test process and loaded for good.
fn plugin() -> &'static Plugin {
    static PLUGIN: OnceLock<(libloading::Library, Plugin)> = OnceLock::new();
    let (_, plugin) = PLUGIN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libt3_example.so");
        build_example(&path, &[]);
        // SAFETY: the library is the example plugin just built; loading it runs no initialiser
        // beyond the C runtime's.
        let library = unsafe { libloading::Library::new(&path) }.expect("load the example");
        // SAFETY: every plugin exports DECLARE_SYMBOL with the signature DeclareFn (the header's
        // prototype, which the example includes).
        let declare = unsafe { library.get::<DeclareFn>(DECLARE_SYMBOL.as_bytes()) }.expect("the declare symbol");
        // SAFETY: `declare` takes nothing and returns a pointer to a static declaration that lives as
        // long as the library, which this static keeps loaded until the process ends.
        let decl: &'static PluginDecl = unsafe { &*declare() };
        // The file may go: the loaded mapping stays (the valgrind test builds its own copy).
        drop(dir);
        (library, Plugin { decl })
    });
    plugin
}

struct Plugin {
    decl: &'static PluginDecl,
}

// SAFETY: the declaration is immutable static data of a library that stays loaded, and the ABI lets
// describe, check_config, open and discover be called from any thread at once (device functions
// go through `Device`, which one thread at a time uses).
unsafe impl Sync for Plugin {}
// SAFETY: as for `Sync`: nothing in the declaration belongs to a thread.
unsafe impl Send for Plugin {}

impl Plugin {
    /// The text of a buffer the plugin returned, which is then given back to it.
    fn take(&self, buf: Buf) -> Option<String> {
        if buf.ptr.is_null() {
            return None;
        }
        // SAFETY: a non-null buffer from the plugin holds `len` bytes until it is freed, below.
        let bytes = unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec();
        // SAFETY: the buffer came from this plugin and is freed once.
        unsafe { (self.decl.free_buf)(buf) };
        Some(String::from_utf8(bytes).expect("the plugin's text is UTF-8"))
    }

    fn describe(&self) -> (Status, Option<String>) {
        let mut out = Buf::EMPTY;
        // SAFETY: `out` is a valid buffer slot for the call.
        let status = unsafe { (self.decl.describe)(&mut out) };
        (status, self.take(out))
    }

    fn check_config(&self, config: &[u8]) -> (Status, Option<String>) {
        let mut out = Buf::EMPTY;
        // SAFETY: `config` is readable for its length and `out` is a valid slot for the call.
        let status = unsafe { (self.decl.check_config)(config.as_ptr(), config.len(), &mut out) };
        (status, self.take(out))
    }

    fn open_bytes(&self, config: &[u8]) -> Result<Device, (Status, Option<String>)> {
        let mut out = Buf::EMPTY;
        let mut handle: *mut c_void = std::ptr::null_mut();
        // SAFETY: `config` is readable for its length; `handle` and `out` are valid slots.
        let status = unsafe { (self.decl.open)(config.as_ptr(), config.len(), &mut handle, &mut out) };
        let message = self.take(out);
        if status == STATUS_OK {
            assert!(!handle.is_null(), "open succeeded without a handle");
            assert_eq!(message, None, "open succeeded with a message");
            Ok(Device { plugin: self.decl, handle })
        } else {
            assert!(handle.is_null(), "open failed ({status}) but set a handle");
            Err((status, message))
        }
    }

    fn open(&self, config: Value) -> Device {
        self.open_bytes(config.to_string().as_bytes()).unwrap_or_else(|e| panic!("open {config}: {e:?}"))
    }

    fn discover(&self, request: &str) -> (Status, Option<String>) {
        let mut out = Buf::EMPTY;
        // SAFETY: `request` is readable for its length and `out` is a valid slot for the call.
        let status = unsafe { (self.decl.discover)(request.as_ptr(), request.len(), &mut out) };
        (status, self.take(out))
    }
}

/// An open device, closed on drop.
struct Device {
    plugin: &'static PluginDecl,
    handle: *mut c_void,
}

// SAFETY: the ABI lets a device be used from any thread as long as one thread at a time calls it;
// `Device` methods take `&mut self`, so a moved device is used by its new thread alone.
unsafe impl Send for Device {}

impl Device {
    fn take(&self, buf: Buf) -> Option<String> {
        Plugin { decl: self.plugin }.take(buf)
    }

    fn points(&mut self) -> Vec<Value> {
        let mut out = Buf::EMPTY;
        // SAFETY: a live handle from `open`, used by this thread alone; `out` is a valid slot.
        let status = unsafe { (self.plugin.points)(self.handle, &mut out) };
        let text = self.take(out).expect("a point list");
        assert_eq!(status, STATUS_OK, "points: {text}");
        serde_json::from_str::<Value>(&text).unwrap().as_array().expect("an array").clone()
    }

    fn read(&mut self, points: &[u32]) -> (Status, Vec<Sample>, Option<String>) {
        let mut samples = vec![Sample::new(u32::MAX, -1.0, 0xFF); points.len()];
        let mut out = Buf::EMPTY;
        // SAFETY: `points` and `samples` hold `points.len()` entries each; the handle is live and
        // used by this thread alone; `out` is a valid slot.
        let status =
            unsafe { (self.plugin.read)(self.handle, points.as_ptr(), points.len(), samples.as_mut_ptr(), &mut out) };
        (status, samples, self.take(out))
    }

    /// The value of one point, read alone.
    fn value(&mut self, point: u32) -> f64 {
        let (status, samples, message) = self.read(&[point]);
        assert_eq!((status, message), (STATUS_OK, None));
        assert_eq!(samples[0].point, point);
        assert_eq!(samples[0].quality, QUALITY_GOOD);
        samples[0].value
    }

    fn write(&mut self, point: u32, value: f64, priority: u8) -> (Status, Option<String>) {
        let mut out = Buf::EMPTY;
        // SAFETY: a live handle used by this thread alone; `out` is a valid slot.
        let status = unsafe { (self.plugin.write)(self.handle, point, value, priority, &mut out) };
        (status, self.take(out))
    }

    fn relinquish(&mut self, point: u32, priority: u8) -> (Status, Option<String>) {
        let mut out = Buf::EMPTY;
        // SAFETY: a live handle used by this thread alone; `out` is a valid slot.
        let status = unsafe { (self.plugin.relinquish)(self.handle, point, priority, &mut out) };
        (status, self.take(out))
    }

    fn health(&mut self) -> Value {
        let mut out = Buf::EMPTY;
        // SAFETY: a live handle used by this thread alone; `out` is a valid slot.
        let status = unsafe { (self.plugin.health)(self.handle, &mut out) };
        let text = self.take(out).expect("health JSON");
        assert_eq!(status, STATUS_OK, "health: {text}");
        serde_json::from_str(&text).unwrap()
    }

    fn subscribe(&mut self, points: &[u32]) -> (Status, Option<String>) {
        unsafe extern "C" fn push(_ctx: *mut c_void, _samples: *const Sample, _n: usize) {
            panic!("the example pushed a sample");
        }
        let mut out = Buf::EMPTY;
        // SAFETY: a live handle used by this thread alone; `points` holds `len` entries; `push`
        // matches PushFn; `out` is a valid slot.
        let status = unsafe {
            (self.plugin.subscribe)(self.handle, points.as_ptr(), points.len(), push, std::ptr::null_mut(), &mut out)
        };
        (status, self.take(out))
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: the handle came from `open` and this is its one `close`, after its last call.
        unsafe { (self.plugin.close)(self.handle) };
    }
}

/// The key a `STATUS_CONFIG` message names, checking its shape.
fn config_key(message: &str) -> String {
    let v: Value = serde_json::from_str(message).unwrap_or_else(|e| panic!("{message:?} is not JSON: {e}"));
    let obj = v.as_object().unwrap_or_else(|| panic!("{message} is not an object"));
    assert_eq!(obj.len(), 2, "{message} has keys other than key and message");
    assert!(obj["message"].as_str().is_some_and(|m| !m.is_empty()), "{message} has no message");
    obj["key"].as_str().unwrap_or_else(|| panic!("{message} has no key")).to_owned()
}

/// The outside temperature as example.c documents it: a triangle wave over the UTC day, 5 °C at
/// midnight and 20 °C at noon, shifted by `seed` seconds.
fn outside_temp(ts_us: i64, seed: i64) -> f64 {
    let day = 86_400_000_000i64;
    let t = (ts_us % day + (seed % 86_400) * 1_000_000).rem_euclid(day);
    let x = t as f64 / day as f64;
    5.0 + 15.0 * if x < 0.5 { 2.0 * x } else { 2.0 - 2.0 * x }
}

#[test]
fn the_declaration_names_the_example_and_this_abi() {
    let decl = plugin().decl;
    assert_eq!((decl.abi_major, decl.abi_minor), (ABI_MAJOR, ABI_MINOR));
    assert_eq!(decl.size as usize, size_of::<PluginDecl>());
    // SAFETY: the declaration's strings are static NUL-terminated strings in the loaded library.
    let (name, version) = unsafe { (CStr::from_ptr(decl.name), CStr::from_ptr(decl.version)) };
    assert_eq!(name.to_str().unwrap(), "example-c");
    assert_eq!(version.to_str().unwrap(), "1.0.0");
}

#[test]
fn describe_names_the_protocol_and_its_keys() {
    let (status, text) = plugin().describe();
    assert_eq!(status, STATUS_OK);
    let v: Value = serde_json::from_str(&text.unwrap()).unwrap();
    assert_eq!(v["title"], "Example (C)");
    assert!(v["description"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!((v["discovery"].clone(), v["writes"].clone()), (json!(true), json!(true)));
    let keys = v["keys"].as_array().unwrap();
    let names: Vec<_> = keys.iter().map(|k| (k["name"].as_str().unwrap(), k["type"].as_str().unwrap())).collect();
    assert_eq!(names, [("seed", "integer"), ("fail_reads", "boolean")]);
    for k in keys {
        assert_eq!(k["required"], false);
        assert!(k["description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    assert_eq!(keys[0]["default"], Value::Null);
    assert_eq!(keys[1]["default"], false);
}

#[test]
fn check_config_accepts_the_plugins_keys_and_the_servers() {
    for config in [
        json!({}),
        json!({"seed": 7}),
        json!({"seed": -9223372036854775808i64, "fail_reads": true}),
        json!({"seed": 9223372036854775807i64, "fail_reads": false}),
        json!({"seed": null, "fail_reads": null, "name": null, "port": null}),
        json!({"name": "AHU 1 \"north\" \u{e9}\u{1F600}", "ip_address": "192.0.2.7", "port": 47808,
               "timeout_ms": 0, "retries": 3}),
    ] {
        let text = config.to_string();
        assert_eq!(plugin().check_config(text.as_bytes()), (STATUS_OK, None), "{text}");
    }
    // Escapes and white space as any JSON writer may produce them.
    let spaced = b" \r\n\t{ \"name\" : \"a\\u00e9\\ud83d\\ude00\\n\\\"\\/\" ,\n \"seed\":0 } \n";
    assert_eq!(plugin().check_config(spaced), (STATUS_OK, None));
}

#[test]
fn check_config_names_the_key_at_fault() {
    let cases: &[(&str, &str, &str)] = &[
        (r#"{"seed": "7"}"#, "seed", "integer"),
        (r#"{"seed": 1.5}"#, "seed", "integer"),
        (r#"{"seed": 1e3}"#, "seed", "integer"),
        (r#"{"seed": 1e400}"#, "seed", "integer"),
        (r#"{"seed": 9223372036854775808}"#, "seed", "9223372036854775807"),
        (r#"{"seed": -9223372036854775809}"#, "seed", "-9223372036854775808"),
        (r#"{"seed": 123456789012345678901234567890}"#, "seed", "integer"),
        (r#"{"seed": true}"#, "seed", "integer"),
        (r#"{"seed": [1]}"#, "seed", "not an object or array"),
        (r#"{"fail_reads": 1}"#, "fail_reads", "true or false"),
        (r#"{"fail_reads": "true"}"#, "fail_reads", "true or false"),
        (r#"{"fail_reads": {"a": 1}}"#, "fail_reads", "not an object or array"),
        (r#"{"port": 0}"#, "port", "1 to 65535"),
        (r#"{"port": 65536}"#, "port", "1 to 65535"),
        (r#"{"port": "47808"}"#, "port", "1 to 65535"),
        (r#"{"timeout_ms": -1}"#, "timeout_ms", "integer"),
        (r#"{"retries": 2.5}"#, "retries", "integer"),
        (r#"{"name": 5}"#, "name", "string"),
        (r#"{"ip_address": false}"#, "ip_address", "string"),
        (r#"{"bogus": 1}"#, "bogus", "not a key"),
        (r#"{"Seed": 1}"#, "Seed", "not a key"),
        (r#"{"protocol": "example-c"}"#, "protocol", "not a key"),
        (r#"{"seed": 1, "seed": 2}"#, "seed", "twice"),
        (r#"{"seed": 1, "x": }"#, "x", "expected a value"),
        (r#"{"seed": tru}"#, "seed", "unknown word"),
        (r#"{"seed" 1}"#, "seed", "':'"),
        (r#"{"name": "\q"}"#, "name", "escape"),
        (r#"{"name": "\ud800"}"#, "name", "surrogate"),
        ("{\"name\": \"a\tb\"}", "name", "control character"),
        (r#"{"a\"b": 1}"#, "a\"b", "not a key"),
        ("[]", "", "JSON object"),
        ("", "", "JSON object"),
        ("null", "", "JSON object"),
        (r#"{"seed": 1"#, "", "expected ',' or '}'"),
        (r#"{"seed": 1,}"#, "", "a key"),
        (r#"{"seed": 1} {}"#, "", "after the object"),
        (r#"{"seed": 1, "fail_reads": true, "nope": 0}"#, "nope", "not a key"),
    ];
    for (config, key, fragment) in cases {
        let (status, message) = plugin().check_config(config.as_bytes());
        assert_eq!(status, STATUS_CONFIG, "{config}");
        let message = message.unwrap_or_else(|| panic!("{config}: no message"));
        assert_eq!(config_key(&message), *key, "{config}: {message}");
        assert!(message.contains(fragment), "{config}: {message} does not say {fragment:?}");
        // open refuses what check_config refuses, with the same answer.
        let (status, open_message) = plugin().open_bytes(config.as_bytes()).err().expect("open refuses it");
        assert_eq!((status, open_message.as_deref()), (STATUS_CONFIG, Some(message.as_str())));
    }
    // Bytes that are not UTF-8 inside a string are refused, and the message stays UTF-8.
    let (status, message) = plugin().check_config(b"{\"name\": \"\xff\"}");
    assert_eq!((status, config_key(&message.unwrap())), (STATUS_CONFIG, "name".to_owned()));
    let (status, message) = plugin().check_config(b"{\"k\xc3\xa9\": 1}");
    assert_eq!((status, config_key(&message.unwrap())), (STATUS_CONFIG, "k\u{e9}".to_owned()));
}

/// Garbage of every kind: check_config and open answer OK or STATUS_CONFIG with a well-formed
/// message, agree with each other, and never crash.
fn assert_survives(bytes: &[u8]) {
    let (status, message) = plugin().check_config(bytes);
    match status {
        STATUS_OK => assert_eq!(message, None),
        STATUS_CONFIG => {
            config_key(message.as_deref().expect("a message"));
        }
        other => panic!("check_config({:?}) answered {other}", String::from_utf8_lossy(bytes)),
    }
    match plugin().open_bytes(bytes) {
        Ok(device) => {
            assert_eq!(status, STATUS_OK);
            drop(device);
        }
        Err((open_status, open_message)) => assert_eq!((open_status, open_message), (status, message)),
    }
}

#[test]
fn huge_and_broken_configurations_never_crash() {
    let digits = "9".repeat(100_000);
    let long_string = format!(r#"{{"name": "{}"}}"#, "x".repeat(1 << 20));
    let deep = "[".repeat(100_000);
    let cases: Vec<Vec<u8>> = vec![
        format!(r#"{{"seed": {digits}}}"#).into_bytes(),
        format!(r#"{{"seed": -{digits}}}"#).into_bytes(),
        format!(r#"{{"seed": 0.{digits}e-{digits}}}"#).into_bytes(),
        format!(r#"{{"seed": {deep}}}"#).into_bytes(),
        deep.clone().into_bytes(),
        long_string.clone().into_bytes(),
        long_string.as_bytes()[..long_string.len() / 2].to_vec(),
        format!(r#"{{"{}": 1}}"#, "k".repeat(1 << 16)).into_bytes(),
        vec![0; 4096],
        vec![b'{'; 4096],
        b"{\"seed\":1\0}".to_vec(),
        b"{\"\\u0000\": 1}".to_vec(),
        b"\xef\xbb\xbf{}".to_vec(),
    ];
    for case in &cases {
        assert_survives(case);
    }
    // Every proper prefix of a valid configuration is refused.
    let valid = br#"{"name":"AHU \u00e9","ip_address":"127.0.0.1","port":47808,"seed":-42,"fail_reads":false}"#;
    assert_eq!(plugin().check_config(valid), (STATUS_OK, None));
    for len in 0..valid.len() {
        assert_eq!(plugin().check_config(&valid[..len]).0, STATUS_CONFIG, "{:?}", &valid[..len]);
    }
    // The long name was accepted whole.
    assert_eq!(plugin().check_config(long_string.as_bytes()), (STATUS_OK, None));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_crash_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        assert_survives(&bytes);
    }

    #[test]
    fn json_like_text_never_crashes_the_parser(text in r#"[{}\[\]":, 0-9a-z_.eE+\\-]{0,80}"#) {
        assert_survives(text.as_bytes());
    }

    #[test]
    fn a_mutated_configuration_never_crashes_the_parser(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut bytes = br#"{"name":"AHU \u00e9\ud83d\ude00","port":47808,"seed":-42,"fail_reads":true}"#.to_vec();
        for (at, byte) in edits {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        assert_survives(&bytes);
    }
}

#[test]
fn the_device_has_the_four_documented_points() {
    let mut device = plugin().open(json!({"name": "AHU-1"}));
    let points = device.points();
    let expected = json!([
        {"name": "Outside Temp", "kind": "analog", "units": "°C", "writable": false, "min": null, "max": null,
         "states": [], "address": "analog-input,1", "class": "input"},
        {"name": "Supply Setpoint", "kind": "analog", "units": "°C", "writable": true, "min": 10, "max": 30,
         "states": [], "address": "analog-value,1", "class": "variable"},
        {"name": "Fan", "kind": "digital", "units": "", "writable": true, "min": null, "max": null,
         "states": ["Off", "On"], "address": "binary-output,1", "class": "output"},
        {"name": "Mode", "kind": "multistate", "units": "", "writable": true, "min": null, "max": null,
         "states": ["Off", "Heat", "Cool", "Auto"], "address": "multi-state-value,1", "class": "variable"},
    ]);
    assert_eq!(points.len(), 4);
    for (point, expected) in points.iter().zip(expected.as_array().unwrap()) {
        let mut point = point.as_object().unwrap().clone();
        let description = point.remove("description").expect("a description");
        assert!(description.as_str().is_some_and(|d| !d.is_empty()));
        assert_eq!(Value::Object(point), *expected);
    }
}

#[test]
fn reads_give_the_simulated_values_stamped_with_the_read_time() {
    for seed in [0i64, 12_345, -7, 43_200, i64::MIN, i64::MAX] {
        let mut device = plugin().open(json!({"seed": seed}));
        let (status, samples, message) = device.read(&[0, 1, 2, 3]);
        assert_eq!((status, message), (STATUS_OK, None));
        assert_eq!(samples.iter().map(|s| s.point).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert!(samples.iter().all(|s| s.quality == QUALITY_GOOD && s.reserved == [0; 3]));
        let ts = samples[0].ts_us;
        assert!(samples.iter().all(|s| s.ts_us == ts), "one read, one time");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
        assert!((now - 60_000_000..=now).contains(&ts), "stamped now: {ts} vs {now}");
        let temp = samples[0].value;
        assert!((temp - outside_temp(ts, seed)).abs() < 1e-9, "seed {seed}: {temp} at {ts}");
        assert!((5.0..=20.0).contains(&temp));
        // The relinquish defaults: 21 °C, fan off, mode Off.
        assert_eq!(samples[1..].iter().map(|s| s.value).collect::<Vec<_>>(), [21.0, 0.0, 1.0]);
    }
    // The seed shifts the curve: half a day turns t into 25 - t.
    assert!((outside_temp(1_000_000_000_000, 43_200) - (25.0 - outside_temp(1_000_000_000_000, 0))).abs() < 1e-9);
}

#[test]
fn an_unknown_point_reads_as_a_bad_sample_and_the_others_still_read() {
    let mut device = plugin().open(json!({}));
    let (status, samples, message) = device.read(&[4, 1, u32::MAX, 3]);
    assert_eq!((status, message), (STATUS_OK, None));
    assert_eq!(samples.iter().map(|s| s.point).collect::<Vec<_>>(), [4, 1, u32::MAX, 3]);
    for bad in [&samples[0], &samples[2]] {
        assert!(bad.value.is_nan());
        assert_eq!(bad.quality, QUALITY_BAD_CONFIG_ERROR);
    }
    assert_eq!((samples[1].value, samples[1].quality), (21.0, QUALITY_GOOD));
    assert_eq!((samples[3].value, samples[3].quality), (1.0, QUALITY_GOOD));
    // Reading nothing is no request.
    assert_eq!(device.read(&[]).0, STATUS_OK);
}

#[test]
fn writes_follow_the_priority_array_and_relinquish_returns_to_the_default() {
    let mut device = plugin().open(json!({}));
    assert_eq!(device.value(1), 21.0);
    assert_eq!(device.write(1, 25.0, 8), (STATUS_OK, None));
    assert_eq!(device.value(1), 25.0);
    // A lower priority (a higher number) does not override priority 8 ...
    assert_eq!(device.write(1, 12.0, 16), (STATUS_OK, None));
    assert_eq!(device.value(1), 25.0);
    // ... a higher one does.
    assert_eq!(device.write(1, 30.0, 1), (STATUS_OK, None));
    assert_eq!(device.value(1), 30.0);
    assert_eq!(device.relinquish(1, 1), (STATUS_OK, None));
    assert_eq!(device.value(1), 25.0);
    assert_eq!(device.relinquish(1, 8), (STATUS_OK, None));
    assert_eq!(device.value(1), 12.0);
    assert_eq!(device.relinquish(1, 16), (STATUS_OK, None));
    assert_eq!(device.value(1), 21.0);
    // Relinquishing a priority that holds nothing is fine, and changes nothing.
    assert_eq!(device.relinquish(1, 5), (STATUS_OK, None));
    assert_eq!(device.value(1), 21.0);
    // A write at the same priority replaces the value; the range ends are allowed.
    assert_eq!(device.write(1, 10.0, 8), (STATUS_OK, None));
    assert_eq!(device.write(1, 30.0, 8), (STATUS_OK, None));
    assert_eq!(device.value(1), 30.0);

    // The fan and the mode keep their own arrays.
    assert_eq!(device.write(2, 1.0, 8), (STATUS_OK, None));
    assert_eq!(device.value(2), 1.0);
    for mode in [1.0, 2.0, 3.0, 4.0] {
        assert_eq!(device.write(3, mode, 16), (STATUS_OK, None));
        assert_eq!(device.value(3), mode);
    }
    assert_eq!(device.relinquish(2, 8), (STATUS_OK, None));
    assert_eq!(device.relinquish(3, 16), (STATUS_OK, None));
    assert_eq!((device.value(1), device.value(2), device.value(3)), (30.0, 0.0, 1.0));
}

#[test]
fn bad_writes_are_refused_with_a_message_and_change_nothing() {
    let mut device = plugin().open(json!({}));
    let cases: &[(u32, f64, u8, Status, &str)] = &[
        (1, 35.0, 8, STATUS_INVALID, "10 to 30"),
        (1, 9.99, 8, STATUS_INVALID, "10 to 30"),
        (1, f64::NAN, 8, STATUS_INVALID, "nan"),
        (1, f64::INFINITY, 8, STATUS_INVALID, "inf"),
        (2, 0.5, 8, STATUS_INVALID, "0 (Off) or 1 (On)"),
        (2, 2.0, 8, STATUS_INVALID, "0 (Off) or 1 (On)"),
        (2, -1.0, 8, STATUS_INVALID, "0 (Off) or 1 (On)"),
        (3, 0.0, 8, STATUS_INVALID, "1 to 4"),
        (3, 5.0, 8, STATUS_INVALID, "1 to 4"),
        (3, 2.5, 8, STATUS_INVALID, "1 to 4"),
        (3, 1e300, 8, STATUS_INVALID, "1 to 4"),
        (1, 20.0, 0, STATUS_INVALID, "priority 0"),
        (1, 20.0, 17, STATUS_INVALID, "priority 17"),
        (1, 20.0, 255, STATUS_INVALID, "priority 255"),
        (0, 20.0, 8, STATUS_UNSUPPORTED, "Outside Temp is read-only"),
        (4, 1.0, 8, STATUS_INVALID, "no point 4"),
        (u32::MAX, 1.0, 8, STATUS_INVALID, "no point 4294967295"),
    ];
    for &(point, value, priority, status, fragment) in cases {
        let (got, message) = device.write(point, value, priority);
        let message = message.unwrap_or_default();
        assert_eq!(got, status, "write({point}, {value}, {priority}): {message}");
        assert!(message.contains(fragment), "write({point}, {value}, {priority}): {message:?} lacks {fragment:?}");
    }
    assert_eq!((device.value(1), device.value(2), device.value(3)), (21.0, 0.0, 1.0));
    for (point, priority, status) in [(0, 8, STATUS_UNSUPPORTED), (4, 8, STATUS_INVALID), (1, 0, STATUS_INVALID)] {
        let (got, message) = device.relinquish(point, priority);
        assert_eq!(got, status, "relinquish({point}, {priority})");
        assert!(message.is_some_and(|m| !m.is_empty()));
    }
}

#[test]
fn fail_reads_makes_every_read_unreachable_and_health_says_so() {
    let mut device = plugin().open(json!({"name": "AHU \"7\"", "fail_reads": true}));
    assert_eq!(device.health()["connected"], false, "nothing asked yet");
    assert_eq!(device.points().len(), 4, "the point list is still known");
    for _ in 0..3 {
        let (status, samples, message) = device.read(&[0, 1]);
        assert_eq!(status, STATUS_UNREACHABLE);
        assert_eq!(message.as_deref(), Some("device \"AHU \"7\"\" did not answer (fail_reads is set)"));
        assert!(samples.iter().all(|s| s.value.is_nan() && s.quality == QUALITY_BAD_COMM_FAILURE));
    }
    assert_eq!(
        device.health(),
        json!({"connected": false, "requests": 4, "answered": 1, "timeouts": 3, "failures": 0})
    );
    // Writes still reach the simulated device.
    assert_eq!(device.write(1, 22.0, 8), (STATUS_OK, None));
}

#[test]
fn health_counts_every_request_and_how_it_ended() {
    let mut device = plugin().open(json!({}));
    assert_eq!(
        device.health(),
        json!({"connected": false, "requests": 0, "answered": 0, "timeouts": 0, "failures": 0})
    );
    device.points();
    device.read(&[0, 1, 2, 3]);
    device.write(1, 22.0, 8);
    device.write(1, 99.0, 8);
    device.write(0, 1.0, 8);
    device.relinquish(1, 8);
    device.relinquish(1, 0);
    assert_eq!(device.health(), json!({"connected": true, "requests": 7, "answered": 4, "timeouts": 0, "failures": 3}));
}

#[test]
fn discovery_finds_one_simulated_device_whose_config_is_valid_and_subscriptions_are_unsupported() {
    for request in ["{}", "", "garbage \u{0}"] {
        let (status, text) = plugin().discover(request);
        assert_eq!(status, STATUS_OK);
        let found: Value = serde_json::from_str(&text.unwrap()).unwrap();
        let found = found.as_array().unwrap();
        assert_eq!(found.len(), 1);
        for key in ["name", "address", "model", "vendor"] {
            assert!(found[0][key].as_str().is_some_and(|s| !s.is_empty()), "{key}");
        }
        let config = found[0]["config"].to_string();
        assert_eq!(plugin().check_config(config.as_bytes()), (STATUS_OK, None), "{config}");
    }
    let mut device = plugin().open(json!({}));
    let (status, message) = device.subscribe(&[0, 1]);
    assert_eq!(status, STATUS_UNSUPPORTED);
    assert!(message.is_some_and(|m| m.contains("poll")));
}

#[test]
fn devices_on_different_threads_keep_their_own_state() {
    let threads: Vec<_> = (0..4u8)
        .map(|i| {
            let mut device = plugin().open(json!({"seed": i, "name": format!("AHU-{i}")}));
            std::thread::spawn(move || {
                let setpoint = 10.0 + f64::from(i);
                for round in 0..200u32 {
                    let priority = 1 + (round % 16) as u8;
                    assert_eq!(device.write(1, setpoint, priority), (STATUS_OK, None));
                    assert_eq!(device.write(3, f64::from(1 + i % 4), 16), (STATUS_OK, None));
                    assert_eq!(device.value(1), setpoint);
                    assert_eq!(device.value(3), f64::from(1 + i % 4));
                    assert_eq!(device.relinquish(1, priority), (STATUS_OK, None));
                    let config = format!(r#"{{"seed": {round}, "fail_reads": true}}"#);
                    assert_eq!(plugin().check_config(config.as_bytes()), (STATUS_OK, None));
                }
                device.health()
            })
        })
        .collect();
    for thread in threads {
        let health = thread.join().unwrap();
        assert_eq!(health["requests"], 200 * 5);
        assert_eq!(health["answered"], 200 * 5);
    }
}

#[test]
fn null_arguments_are_refused_not_dereferenced() {
    let decl = plugin().decl;
    let mut device = plugin().open(json!({}));
    let mut out = Buf::EMPTY;
    let mut sample = [Sample::new(0, 0.0, 0)];
    // SAFETY: each call passes null where the ABI expects a pointer, which the example checks
    // before use; the other arguments are valid for the call.
    unsafe {
        assert_eq!((decl.describe)(std::ptr::null_mut()), STATUS_INVALID);
        assert_eq!((decl.open)(b"{}".as_ptr(), 2, std::ptr::null_mut(), &mut out), STATUS_INVALID);
        assert_eq!(plugin().take(std::mem::replace(&mut out, Buf::EMPTY)).as_deref(), Some("null device slot"));
        assert_eq!((decl.check_config)(std::ptr::null(), 5, std::ptr::null_mut()), STATUS_CONFIG);
        assert_eq!((decl.points)(std::ptr::null_mut(), std::ptr::null_mut()), STATUS_INVALID);
        assert_eq!((decl.health)(std::ptr::null_mut(), std::ptr::null_mut()), STATUS_INVALID);
        assert_eq!((decl.write)(std::ptr::null_mut(), 1, 20.0, 8, std::ptr::null_mut()), STATUS_INVALID);
        assert_eq!((decl.relinquish)(std::ptr::null_mut(), 1, 8, std::ptr::null_mut()), STATUS_INVALID);
        assert_eq!(
            (decl.read)(device.handle, std::ptr::null(), 1, sample.as_mut_ptr(), std::ptr::null_mut()),
            STATUS_INVALID
        );
        assert_eq!((decl.read)(device.handle, [0u32].as_ptr(), 1, std::ptr::null_mut(), &mut out), STATUS_INVALID);
        assert!(plugin().take(std::mem::replace(&mut out, Buf::EMPTY)).is_some_and(|m| m.contains("null")));
        // A call without an `out` slot still answers, just without a message.
        assert_eq!((decl.write)(device.handle, 1, 99.0, 8, std::ptr::null_mut()), STATUS_INVALID);
        (decl.close)(std::ptr::null_mut());
    }
    assert_eq!(device.value(1), 21.0);
}

/// The C driver (`check.c`) and a fresh build of the example, with `extra` flags, in `dir`.
fn build_driver(dir: &Path, extra: &[&str]) -> (PathBuf, PathBuf) {
    let library = dir.join("libt3_example.so");
    let driver = dir.join("check-driver");
    let mut flags = vec!["-g"];
    flags.extend(extra);
    build_example(&library, &flags);
    let include = format!("-I{}", cc::arg(&cc::abi_dir()));
    let src = cc::example_dir().join("check.c");
    let mut args = vec!["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O0", "-g"];
    args.extend(extra);
    args.extend([include.as_str(), "-o", cc::arg(&driver), cc::arg(&src), "-ldl"]);
    cc::compile(&cc::c_compiler(), &args);
    (driver, library)
}

fn assert_driver_passes(mut command: Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("all checks passed"), "{what}:\n{stdout}\n{stderr}");
}

#[test]
fn the_c_driver_runs_clean_under_valgrind() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("note: valgrind is not installed; the valgrind run of the C example is skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (driver, library) = build_driver(dir.path(), &[]);
    let mut command = Command::new("valgrind");
    command.args([
        "--error-exitcode=1",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite,indirect,possible",
        "--track-origins=yes",
    ]);
    command.arg(&driver).arg(&library);
    assert_driver_passes(command, "valgrind check-driver");
}

#[test]
fn the_c_driver_runs_clean_under_the_sanitizers() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"];
    // Not every compiler (or platform) has the sanitizers: try them on an empty program first.
    let probe = dir.path().join("probe.c");
    std::fs::write(&probe, "int main(void) { return 0; }\n").unwrap();
    let probe_exe = dir.path().join("probe");
    let works = Command::new(cc::c_compiler())
        .args(flags)
        .arg("-o")
        .arg(&probe_exe)
        .arg(&probe)
        .output()
        .is_ok_and(|o| o.status.success())
        && Command::new(&probe_exe).output().is_ok_and(|o| o.status.success());
    if !works {
        eprintln!("note: the C compiler has no working -fsanitize=address,undefined; skipped");
        return;
    }
    let (driver, library) = build_driver(dir.path(), &flags);
    let mut command = Command::new(&driver);
    command.arg(&library).env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0");
    assert_driver_passes(command, "check-driver with sanitizers");
}
