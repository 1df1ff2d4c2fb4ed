//! The testkit through its C declaration, in-process: every call goes through the function pointers
//! `t3_plugin_abi::export::declaration` builds, as the server's calls do, so these tests also check
//! the glue (panics caught, errors and buffers passed back).
#![allow(unsafe_code)]

use super::*;
use serde_json::Value;
use std::ffi::c_void;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use t3_plugin_abi::export::{Declaration, declaration};
use t3_plugin_abi::{
    Buf, PluginDecl, QUALITY_BAD_CONFIG_ERROR, QUALITY_GOOD, STATUS_CONFIG, STATUS_INVALID, STATUS_OK, STATUS_PANIC,
    STATUS_UNREACHABLE, STATUS_UNSUPPORTED, Sample, Status,
};

static DECLARATION: Declaration = declaration::<Testkit>("testkit\0", "0.0.0-test\0");

fn decl() -> &'static PluginDecl {
    // SAFETY: the declaration is a static: the pointer is valid for the whole program.
    unsafe { &*DECLARATION.as_ptr() }
}

/// The text of a buffer the plugin returned, given back to it.
fn take(buf: Buf) -> Option<String> {
    if buf.ptr.is_null() {
        return None;
    }
    // SAFETY: a non-null buffer from the plugin holds `len` bytes until it is freed, below.
    let bytes = unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec();
    // SAFETY: the buffer came from this plugin and is freed once.
    unsafe { (decl().free_buf)(buf) };
    Some(String::from_utf8(bytes).expect("UTF-8"))
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn check(config: &str) -> (Status, Option<String>) {
    let mut out = Buf::EMPTY;
    // SAFETY: `config` is readable for its length and `out` is a valid slot for the call.
    let status = unsafe { (decl().check_config)(config.as_ptr(), config.len(), &mut out) };
    (status, take(out))
}

/// The key a `STATUS_CONFIG` message names.
fn config_key(message: &str) -> String {
    let v = json(message);
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{message}");
    v["key"].as_str().unwrap_or_else(|| panic!("no key in {message}")).to_owned()
}

/// An open device, closed on drop.
struct Dev(*mut c_void);

// SAFETY: the ABI lets a device be used from any thread, one at a time; `Dev` methods take
// `&mut self`, so whichever thread holds it is the only one calling.
unsafe impl Send for Dev {}

fn try_open(config: &str) -> Result<Dev, (Status, Option<String>)> {
    let mut out = Buf::EMPTY;
    let mut handle: *mut c_void = std::ptr::null_mut();
    // SAFETY: `config` is readable for its length; `handle` and `out` are valid slots.
    let status = unsafe { (decl().open)(config.as_ptr(), config.len(), &mut handle, &mut out) };
    let message = take(out);
    if status == STATUS_OK {
        assert!(!handle.is_null() && message.is_none());
        Ok(Dev(handle))
    } else {
        assert!(handle.is_null(), "a failed open set a handle");
        Err((status, message))
    }
}

fn open(config: &str) -> Dev {
    try_open(config).unwrap_or_else(|e| panic!("open {config}: {e:?}"))
}

impl Dev {
    fn points(&mut self) -> (Status, Option<String>) {
        let mut out = Buf::EMPTY;
        // SAFETY: a live handle used by this thread alone; `out` is a valid slot.
        let status = unsafe { (decl().points)(self.0, &mut out) };
        (status, take(out))
    }

    fn read(&mut self, points: &[u32]) -> (Status, Vec<Sample>, Option<String>) {
        let mut samples = vec![Sample::new(0, 0.0, 0); points.len()];
        let mut out = Buf::EMPTY;
        // SAFETY: `points` and `samples` hold `points.len()` entries; a live handle used by this
        // thread alone; `out` is a valid slot.
        let status = unsafe { (decl().read)(self.0, points.as_ptr(), points.len(), samples.as_mut_ptr(), &mut out) };
        (status, samples, take(out))
    }

    fn values(&mut self, points: &[u32]) -> Vec<f64> {
        let (status, samples, message) = self.read(points);
        assert_eq!((status, message), (STATUS_OK, None));
        assert!(samples.iter().zip(points).all(|(s, p)| s.point == *p && s.quality == QUALITY_GOOD));
        samples.iter().map(|s| s.value).collect()
    }

    fn write(&mut self, point: u32, value: f64, priority: u8) -> (Status, Option<String>) {
        let mut out = Buf::EMPTY;
        // SAFETY: a live handle used by this thread alone; `out` is a valid slot.
        let status = unsafe { (decl().write)(self.0, point, value, priority, &mut out) };
        (status, take(out))
    }

    fn relinquish(&mut self, point: u32, priority: u8) -> (Status, Option<String>) {
        let mut out = Buf::EMPTY;
        // SAFETY: a live handle used by this thread alone; `out` is a valid slot.
        let status = unsafe { (decl().relinquish)(self.0, point, priority, &mut out) };
        (status, take(out))
    }

    fn health(&mut self) -> (Status, Option<String>) {
        let mut out = Buf::EMPTY;
        // SAFETY: a live handle used by this thread alone; `out` is a valid slot.
        let status = unsafe { (decl().health)(self.0, &mut out) };
        (status, take(out))
    }

    fn health_json(&mut self) -> Value {
        let (status, text) = self.health();
        assert_eq!(status, STATUS_OK);
        json(&text.unwrap())
    }

    fn subscribe(&mut self, points: &[u32], pushed: &Pushed) -> (Status, Option<String>) {
        let mut out = Buf::EMPTY;
        // SAFETY: a live handle used by this thread alone; `points` holds `len` entries; `collect`
        // matches PushFn and `pushed` outlives the device (each test drops the device first).
        let status = unsafe {
            (decl().subscribe)(
                self.0,
                points.as_ptr(),
                points.len(),
                collect,
                pushed as *const Pushed as *mut c_void,
                &mut out,
            )
        };
        (status, take(out))
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        // SAFETY: the handle came from `open`, and this is its one `close`, after its last call.
        unsafe { (decl().close)(self.0) };
    }
}

/// What a subscription pushed.
#[derive(Default)]
struct Pushed {
    samples: Mutex<Vec<Sample>>,
    /// Set once `close` returned: a push still running after it is counted in `late`.
    closed: AtomicBool,
    late: AtomicU64,
    /// Makes each push take 50 ms, so that a close can land in the middle of one.
    slow: AtomicBool,
    in_slow_push: AtomicBool,
}

unsafe extern "C" fn collect(ctx: *mut c_void, samples: *const Sample, n: usize) {
    // SAFETY: `ctx` is the `Pushed` the test passed to `subscribe`, alive until after `close`.
    let pushed = unsafe { &*(ctx as *const Pushed) };
    let slow = pushed.slow.load(Ordering::SeqCst);
    if slow {
        pushed.in_slow_push.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: the plugin passes `n` samples, valid for the call.
    let samples = unsafe { std::slice::from_raw_parts(samples, n) };
    pushed.samples.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(samples);
    if pushed.closed.load(Ordering::SeqCst) {
        pushed.late.fetch_add(1, Ordering::SeqCst);
    }
    if slow {
        pushed.in_slow_push.store(false, Ordering::SeqCst);
    }
}

/// Polls `done` until it holds, or fails after 10 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn describe_lists_every_key_with_its_type_and_default() {
    let mut out = Buf::EMPTY;
    // SAFETY: `out` is a valid slot for the call.
    let status = unsafe { (decl().describe)(&mut out) };
    assert_eq!(status, STATUS_OK);
    let v = json(&take(out).unwrap());
    assert_eq!(v["title"], "Testkit");
    assert_eq!((v["discovery"].clone(), v["writes"].clone()), (Value::Bool(false), Value::Bool(true)));
    let keys: Vec<(String, String, Value)> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["name"].as_str().unwrap().into(), k["type"].as_str().unwrap().into(), k["default"].clone()))
        .collect();
    let expected = [
        ("point_count", "integer", Value::from(3)),
        ("panic_in", "string", Value::Null),
        ("hang_in", "string", Value::Null),
        ("garbage_in", "string", Value::Null),
        ("fail_reads_after", "integer", Value::Null),
        ("subscribe", "boolean", Value::Bool(false)),
        ("push_ms", "integer", Value::from(100)),
    ];
    assert_eq!(keys, expected.map(|(n, t, d)| (n.to_owned(), t.to_owned(), d)));
}

#[test]
fn the_default_device_has_three_points_whose_values_count_the_reads() {
    let mut dev = open("{}");
    let (status, text) = dev.points();
    assert_eq!(status, STATUS_OK);
    let points = json(&text.unwrap());
    let names: Vec<_> = points.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["P0", "P1", "P2"]);
    assert_eq!(points[1]["kind"], "analog");
    assert_eq!(points[1]["writable"], true);
    assert_eq!(points[1]["address"], "testkit,1");
    assert_eq!(dev.values(&[0, 1, 2]), [1.0, 2.0, 3.0]);
    assert_eq!(dev.values(&[2, 0]), [4.0, 2.0]);
    assert_eq!(dev.values(&[1]), [4.0]);
    let (status, samples, _) = dev.read(&[0, 3, u32::MAX]);
    assert_eq!(status, STATUS_OK);
    assert_eq!(samples[0].value, 4.0);
    assert!(samples[0].ts_us > 0);
    for bad in &samples[1..] {
        assert!(bad.value.is_nan());
        assert_eq!(bad.quality, QUALITY_BAD_CONFIG_ERROR);
    }
    assert_eq!(
        dev.health_json(),
        serde_json::json!({"connected": true, "requests": 5, "answered": 5, "timeouts": 0, "failures": 0,
                           "reads": 4, "pushes": 0})
    );
}

#[test]
fn points_sets_how_many_points_there_are() {
    for n in [1u32, 17, 1000] {
        let mut dev = open(&format!(r#"{{"point_count": {n}}}"#));
        let points = json(&dev.points().1.unwrap());
        let points = points.as_array().unwrap();
        assert_eq!(points.len(), n as usize);
        assert_eq!(points.last().unwrap()["name"], format!("P{}", n - 1));
        assert_eq!(dev.values(&[n - 1]), [f64::from(n)]);
    }
}

#[test]
fn configuration_errors_name_the_key() {
    let cases = [
        (r#"{"point_count": 0}"#, "point_count", "1 to 1000"),
        (r#"{"point_count": 1001}"#, "point_count", "1 to 1000"),
        (r#"{"point_count": "3"}"#, "point_count", "1 to 1000"),
        (r#"{"point_count": 2.5}"#, "point_count", "1 to 1000"),
        (r#"{"point_count": -1}"#, "point_count", "1 to 1000"),
        (r#"{"panic_in": "close"}"#, "panic_in", "open, points, read, write, health"),
        (r#"{"panic_in": 1}"#, "panic_in", "one of"),
        (r#"{"hang_in": "READ"}"#, "hang_in", "one of"),
        (r#"{"panic_in": "read", "hang_in": "read"}"#, "hang_in", "same function"),
        (r#"{"garbage_in": "write"}"#, "garbage_in", "points, points_shape, read"),
        (r#"{"fail_reads_after": -1}"#, "fail_reads_after", "integer"),
        (r#"{"fail_reads_after": "2"}"#, "fail_reads_after", "integer"),
        (r#"{"subscribe": "yes"}"#, "subscribe", "true or false"),
        (r#"{"push_ms": 0}"#, "push_ms", "1 to 60000"),
        (r#"{"push_ms": 60001}"#, "push_ms", "1 to 60000"),
        (r#"{"port": 70000}"#, "port", "1 to 65535"),
        (r#"{"name": 3}"#, "name", "string"),
        (r#"{"ip_address": []}"#, "ip_address", "string"),
        (r#"{"timeout_ms": -5}"#, "timeout_ms", "integer"),
        (r#"{"pionts": 3}"#, "pionts", "not a key of the testkit protocol"),
        (r#"{"mystery": null}"#, "mystery", "not a key"),
        (r#"{"point_count": 3"#, "", "not valid JSON"),
        ("", "", "not valid JSON"),
        ("\u{0}\u{1}garbage", "", "not valid JSON"),
        ("[1, 2]", "", "JSON object"),
        ("42", "", "JSON object"),
    ];
    for (config, key, fragment) in cases {
        let (status, message) = check(config);
        assert_eq!(status, STATUS_CONFIG, "{config}");
        let message = message.unwrap();
        assert_eq!(config_key(&message), key, "{config}: {message}");
        assert!(message.contains(fragment), "{config}: {message} lacks {fragment:?}");
        let (status, open_message) = try_open(config).err().expect("open refuses it too");
        assert_eq!((status, open_message), (STATUS_CONFIG, Some(message)));
    }
}

#[test]
fn the_servers_keys_and_nulls_are_accepted() {
    for config in [
        r#"{}"#,
        r#"{"name": "kit", "ip_address": "127.0.0.1", "port": 47808, "timeout_ms": 500, "retries": 2}"#,
        r#"{"point_count": null, "panic_in": null, "hang_in": null, "garbage_in": null, "fail_reads_after": null,
            "subscribe": null, "push_ms": null, "name": null}"#,
        r#"{"point_count": 1000, "panic_in": "health", "hang_in": "open", "garbage_in": "read",
            "fail_reads_after": 0, "subscribe": true, "push_ms": 60000}"#,
    ] {
        assert_eq!(check(config), (STATUS_OK, None), "{config}");
    }
}

#[test]
fn a_panic_comes_back_as_status_panic_and_the_device_stays_usable() {
    for stage in ["points", "read", "write", "health"] {
        let mut dev = open(&format!(r#"{{"panic_in": "{stage}"}}"#));
        let (status, message) = match stage {
            "points" => dev.points(),
            "read" => {
                let (status, _, message) = dev.read(&[0, 1]);
                (status, message)
            }
            "write" => dev.write(0, 1.0, 8),
            _ => dev.health(),
        };
        let message = message.unwrap_or_default();
        assert_eq!(status, STATUS_PANIC, "{stage}: {message}");
        assert!(message.contains("panicked"), "{stage}: {message}");
        assert!(message.contains(&format!("panic_in = {stage}")), "{stage}: {message}");
        // The panic left the device whole: the other functions still answer.
        if stage != "read" {
            assert_eq!(dev.values(&[0]), [1.0]);
        }
        if stage != "health" {
            assert_eq!(dev.health().0, STATUS_OK);
        }
        if stage != "write" {
            assert_eq!(dev.write(1, 5.0, 8), (STATUS_OK, None));
        }
    }
    // A panic in open leaves no handle.
    let (status, message) = try_open(r#"{"panic_in": "open"}"#).err().expect("open panics");
    assert_eq!(status, STATUS_PANIC);
    assert_eq!(message.as_deref(), Some("the plugin panicked: testkit: panic_in = open"));
}

#[test]
fn a_hang_blocks_that_call_and_nothing_else() {
    // Each hung call keeps its thread (and its device) for good: that is what a hang is.
    let (tx, rx) = std::sync::mpsc::channel();
    let mut dev = open(r#"{"hang_in": "read", "name": "stuck"}"#);
    assert_eq!(dev.points().0, STATUS_OK, "points does not hang");
    let hung = tx.clone();
    std::thread::spawn(move || {
        let result = dev.read(&[0]).0;
        let _ = hung.send(("read", result));
    });
    let hung = tx.clone();
    std::thread::spawn(move || {
        let result = try_open(r#"{"hang_in": "open"}"#).err().map(|e| e.0);
        let _ = hung.send(("open", result.unwrap_or(STATUS_OK)));
    });
    // Meanwhile other devices and the plugin's other functions answer.
    let mut other = open("{}");
    assert_eq!(other.values(&[1]), [2.0]);
    assert_eq!(check(r#"{"hang_in": "write"}"#), (STATUS_OK, None));
    // The hung calls have not returned (they never will; 200 ms is just how long we look).
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "a hung call returned");
    drop(tx);
}

#[test]
fn garbage_in_points_answers_text_that_is_not_json() {
    let mut dev = open(r#"{"garbage_in": "points"}"#);
    let (status, text) = dev.points();
    assert_eq!(status, STATUS_OK);
    let text = text.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    // Reads are unaffected.
    assert_eq!(dev.values(&[0]), [1.0]);
}

#[test]
fn garbage_in_points_shape_answers_json_that_is_not_a_point_list() {
    let mut dev = open(r#"{"garbage_in": "points_shape"}"#);
    let (status, text) = dev.points();
    assert_eq!(status, STATUS_OK);
    let v = json(&text.unwrap());
    assert!(v.is_object(), "{v}");
}

#[test]
fn garbage_in_read_answers_samples_with_wrong_point_numbers() {
    let mut dev = open(r#"{"garbage_in": "read", "point_count": 3}"#);
    let asked = [0u32, 1, 2, 0];
    let (status, samples, message) = dev.read(&asked);
    assert_eq!((status, message), (STATUS_OK, None));
    let got: Vec<u32> = samples.iter().map(|s| s.point).collect();
    assert_eq!(got, [3, 2, 5, 1]);
    for (i, (sample, asked)) in samples.iter().zip(asked).enumerate() {
        assert_ne!(sample.point, asked, "slot {i}");
        assert_eq!(sample.point >= 3, i % 2 == 0, "slot {i}: even slots are out of range");
    }
    // A one-point device has no other point to name: odd slots name u32::MAX.
    let mut one = open(r#"{"garbage_in": "read", "point_count": 1}"#);
    assert_eq!(one.read(&[0, 0]).1.iter().map(|s| s.point).collect::<Vec<_>>(), [1, u32::MAX]);
}

#[test]
fn fail_reads_after_makes_reads_unreachable_after_that_many() {
    let mut dev = open(r#"{"fail_reads_after": 2, "name": "kit-7"}"#);
    assert_eq!(dev.values(&[0]), [1.0]);
    assert_eq!(dev.values(&[0]), [2.0]);
    for _ in 0..3 {
        let (status, samples, message) = dev.read(&[0, 1]);
        assert_eq!(status, STATUS_UNREACHABLE);
        assert_eq!(message.as_deref(), Some("testkit device \"kit-7\" did not answer (fail_reads_after = 2)"));
        assert!(samples.iter().all(|s| s.value.is_nan()), "the glue leaves NaN in unread samples");
    }
    let health = dev.health_json();
    assert_eq!((health["connected"].clone(), health["timeouts"].clone()), (Value::Bool(false), Value::from(3)));
    // Zero: no read ever succeeds.
    let mut dead = open(r#"{"fail_reads_after": 0}"#);
    assert_eq!(dead.read(&[0]).0, STATUS_UNREACHABLE);
}

#[test]
fn writes_command_a_point_by_priority_until_relinquished() {
    let mut dev = open("{}");
    assert_eq!(dev.write(1, 50.0, 16), (STATUS_OK, None));
    assert_eq!(dev.write(1, 40.0, 8), (STATUS_OK, None));
    assert_eq!(dev.values(&[0, 1]), [1.0, 40.0]);
    assert_eq!(dev.relinquish(1, 8), (STATUS_OK, None));
    assert_eq!(dev.values(&[1]), [50.0]);
    assert_eq!(dev.relinquish(1, 16), (STATUS_OK, None));
    assert_eq!(dev.values(&[1]), [4.0], "back to index + reads");
    for (point, value, priority, fragment) in [
        (3, 1.0, 8, "no point 3"),
        (0, 1.0, 0, "priority 0"),
        (0, 1.0, 17, "priority 17"),
        (0, f64::NAN, 8, "not a finite number"),
        (0, f64::NEG_INFINITY, 8, "not a finite number"),
    ] {
        let (status, message) = dev.write(point, value, priority);
        assert_eq!(status, STATUS_INVALID);
        assert!(message.unwrap().contains(fragment), "{fragment}");
    }
    assert_eq!(dev.relinquish(9, 8).0, STATUS_INVALID);
    let health = dev.health_json();
    assert_eq!((health["failures"].clone(), health["requests"].clone()), (Value::from(6), Value::from(13)));
}

#[test]
fn a_subscription_pushes_every_subscribed_point_until_close() {
    let pushed = Pushed::default();
    let mut dev = open(r#"{"subscribe": true, "push_ms": 1, "point_count": 5}"#);
    assert_eq!(dev.subscribe(&[4, 1], &pushed), (STATUS_OK, None));
    let rounds = || pushed.samples.lock().unwrap().len() / 2;
    wait_for("three rounds of pushes", || rounds() >= 3);
    {
        let samples = pushed.samples.lock().unwrap();
        // Round r pushes point p with value p + r.
        for (round, pair) in samples.chunks(2).take(3).enumerate() {
            let r = round as f64 + 1.0;
            assert_eq!(pair.iter().map(|s| (s.point, s.value)).collect::<Vec<_>>(), [(4, 4.0 + r), (1, 1.0 + r)]);
            assert!(pair.iter().all(|s| s.quality == QUALITY_GOOD && s.ts_us > 0));
        }
    }
    wait_for("health to count the pushes", || dev.health_json()["pushes"].as_u64().unwrap() >= 6);
    // Close in the middle of a push: close must wait for it to end.
    pushed.slow.store(true, Ordering::SeqCst);
    wait_for("a slow push", || pushed.in_slow_push.load(Ordering::SeqCst));
    drop(dev);
    pushed.closed.store(true, Ordering::SeqCst);
    wait_for("the slow push to end", || !pushed.in_slow_push.load(Ordering::SeqCst));
    let after_close = pushed.samples.lock().unwrap().len();
    // Give a thread that outlived close time to push again (it would, every 1 ms + 50 ms).
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(pushed.late.load(Ordering::SeqCst), 0, "pushed after close returned");
    assert_eq!(pushed.samples.lock().unwrap().len(), after_close);
}

#[test]
fn a_new_subscription_replaces_the_old_one() {
    let first = Pushed::default();
    let second = Pushed::default();
    let mut dev = open(r#"{"subscribe": true, "push_ms": 1}"#);
    assert_eq!(dev.subscribe(&[0], &first), (STATUS_OK, None));
    wait_for("the first subscription", || !first.samples.lock().unwrap().is_empty());
    assert_eq!(dev.subscribe(&[2], &second), (STATUS_OK, None));
    // The first thread is joined when subscribe returns: it pushes no more.
    first.closed.store(true, Ordering::SeqCst);
    wait_for("the second subscription", || second.samples.lock().unwrap().len() >= 2);
    assert!(second.samples.lock().unwrap().iter().all(|s| s.point == 2));
    drop(dev);
    assert_eq!(first.late.load(Ordering::SeqCst), 0);
}

#[test]
fn subscribe_is_unsupported_unless_configured_and_checks_its_points() {
    let pushed = Pushed::default();
    let mut dev = open("{}");
    let (status, message) = dev.subscribe(&[0], &pushed);
    assert_eq!(status, STATUS_UNSUPPORTED);
    assert!(message.unwrap().contains("subscribe = false"));
    let mut dev = open(r#"{"subscribe": true}"#);
    let (status, message) = dev.subscribe(&[0, 3], &pushed);
    assert_eq!(status, STATUS_INVALID);
    assert!(message.unwrap().contains("no point 3"));
    drop(dev);
    assert!(pushed.samples.lock().unwrap().is_empty());
}

#[test]
fn discovery_is_unsupported() {
    let mut out = Buf::EMPTY;
    // SAFETY: the request is readable for its length and `out` is a valid slot.
    let status = unsafe { (decl().discover)(b"{}".as_ptr(), 2, &mut out) };
    assert_eq!(status, STATUS_UNSUPPORTED);
    assert_eq!(take(out).as_deref(), Some("discovery is not supported"));
}
