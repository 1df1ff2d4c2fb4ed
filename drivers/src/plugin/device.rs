//! A plugin device behind the [`Driver`] trait: a worker thread owns the plugin's session and runs
//! one call at a time; callers await each call with the host's timeout.

use super::Plugin;
use super::ffi::{CallError, Session};
use crate::codec::RegisterKind;
use crate::driver::{ConnectionHealth, Driver, DriverError, RawData};
use crate::planner::ReadRequest;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use t3_core::Quality;
use t3_plugin_abi as abi;
use tokio::sync::{mpsc, oneshot};

/// What a point holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PointKind {
    Analog,
    Digital,
    Multistate,
}

/// One point of a plugin device, as its `points` call lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginPoint {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub kind: PointKind,
    #[serde(default)]
    pub units: Option<String>,
    #[serde(default)]
    pub writable: bool,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// State names: `[inactive, active]` for digital points, state 1 first for multistate ones.
    #[serde(default)]
    pub states: Vec<String>,
    /// Where the point lives in the protocol's terms (`analog-input,1`).
    #[serde(default)]
    pub address: Option<String>,
    /// `input`, `output` or `variable`.
    #[serde(default)]
    pub class: Option<String>,
}

/// The longest point name a plugin may give.
const POINT_NAME_MAX: usize = 64;

/// Parses and checks a `points` answer: names unique (ignoring case) and 1 to 64 characters,
/// classes known, states only where they mean something.
pub fn parse_points(json: &[u8]) -> Result<Vec<PluginPoint>, String> {
    let points: Vec<PluginPoint> =
        serde_json::from_slice(json).map_err(|e| format!("the point list is not valid: {e}"))?;
    if points.len() > usize::from(u16::MAX) {
        return Err(format!("{} points; a device may have at most {}", points.len(), u16::MAX));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, p) in points.iter().enumerate() {
        if p.name.trim().is_empty() || p.name.chars().count() > POINT_NAME_MAX {
            return Err(format!("point {i}: a name must be 1 to {POINT_NAME_MAX} characters (got {:?})", p.name));
        }
        if !seen.insert(p.name.to_lowercase()) {
            return Err(format!("point {i}: the name {:?} is used twice", p.name));
        }
        if let Some(c) = &p.class
            && !matches!(c.as_str(), "input" | "output" | "variable")
        {
            return Err(format!("point {i} ({}): class {c:?} is not input, output or variable", p.name));
        }
        if let (Some(min), Some(max)) = (p.min, p.max)
            && !(min.is_finite() && max.is_finite() && min <= max)
        {
            return Err(format!("point {i} ({}): min {min} and max {max} are not a range", p.name));
        }
    }
    Ok(points)
}

/// A value a device pushed (a subscription), by point index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PushedValue {
    pub point: u32,
    pub value: f64,
    pub quality: Quality,
    /// Microseconds since the epoch; 0 when the plugin left it to the server.
    pub ts_us: i64,
}

fn pushed(s: &abi::Sample) -> PushedValue {
    let (value, quality) = value_of(s);
    PushedValue { point: s.point, value, quality, ts_us: s.ts_us }
}

/// A sample's value and quality; a good sample with a value that is not finite is bad.
fn value_of(s: &abi::Sample) -> (f64, Quality) {
    let q = Quality(s.quality);
    if q.is_good() && !s.value.is_finite() { (f64::NAN, Quality::BAD_DEVICE_FAILURE) } else { (s.value, q) }
}

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// A plugin device: its worker thread and what the host counts of its calls.
pub struct PluginDriver {
    protocol: String,
    device: String,
    points: Vec<PluginPoint>,
    jobs: std::sync::mpsc::Sender<Job>,
    /// When the call the worker is in started; none when it is idle.
    busy_since: Arc<Mutex<Option<Instant>>>,
    timeout: Duration,
    health: Mutex<ConnectionHealth>,
    pushes: Mutex<Option<mpsc::UnboundedReceiver<Vec<PushedValue>>>>,
    /// The plugin's own `health` answer, from the last poll.
    reported: Arc<Mutex<Option<serde_json::Value>>>,
}

impl std::fmt::Debug for PluginDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginDriver").field("protocol", &self.protocol).field("device", &self.device).finish()
    }
}

fn driver_error(e: CallError) -> DriverError {
    match e.status {
        abi::STATUS_UNREACHABLE => DriverError::Connection(e.to_string()),
        abi::STATUS_DEVICE => DriverError::Device(e.to_string()),
        abi::STATUS_INVALID | abi::STATUS_UNSUPPORTED | abi::STATUS_CONFIG => DriverError::Invalid(e.to_string()),
        _ => DriverError::Plugin(e.to_string()),
    }
}

impl PluginDriver {
    /// Opens `device` with `plugin` on a new worker thread, reads its point list and subscribes to
    /// its changes (where the plugin can).
    pub(super) async fn open(
        plugin: Arc<Plugin>,
        device: &str,
        config: Vec<u8>,
        timeout: Duration,
        opening: &Arc<AtomicBool>,
    ) -> Result<Arc<PluginDriver>, DriverError> {
        // A plugin still inside an earlier `open` or `points` of this device (hung past its
        // timeout) is not asked again: retries would pile up stuck threads.
        if opening.swap(true, Ordering::AcqRel) {
            return Err(DriverError::Plugin(format!(
                "the {} plugin has not returned from opening the device; waiting for it",
                plugin.lib.name()
            )));
        }
        let done = opening.clone();
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let busy_since = Arc::new(Mutex::new(Some(Instant::now())));
        let (opened_tx, opened_rx) = oneshot::channel();
        let busy = busy_since.clone();
        let lib = plugin.lib.clone();
        std::thread::Builder::new()
            .name(format!("t3000-plugin-{}", plugin.lib.name()))
            .spawn(move || {
                let mut session = match lib.open(&config) {
                    Ok(s) => s,
                    Err(e) => {
                        done.store(false, Ordering::Release);
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                let points = session.points();
                done.store(false, Ordering::Release);
                *busy.lock() = None;
                let _ = opened_tx.send(Ok(points));
                while let Ok(job) = rx.recv() {
                    *busy.lock() = Some(Instant::now());
                    job(&mut session);
                    *busy.lock() = None;
                }
                // Every sender is gone: the driver was dropped; the session closes here.
            })
            .map_err(|e| {
                opening.store(false, Ordering::Release);
                DriverError::Plugin(format!("cannot start the plugin's thread: {e}"))
            })?;
        let points = match tokio::time::timeout(timeout * 2, opened_rx).await {
            Err(_) => return Err(DriverError::Timeout(timeout * 2)),
            Ok(Err(_)) => return Err(DriverError::Plugin("the plugin's thread ended while opening the device".into())),
            Ok(Ok(Err(e))) => return Err(driver_error(e)),
            Ok(Ok(Ok(json))) => json.map_err(driver_error)?,
        };
        let points = parse_points(&points).map_err(DriverError::Plugin)?;
        let driver = Arc::new(PluginDriver {
            protocol: plugin.lib.name().to_owned(),
            device: device.to_owned(),
            points,
            jobs,
            busy_since,
            timeout,
            health: Mutex::new(ConnectionHealth { connected: true, connects: 1, ..ConnectionHealth::default() }),
            pushes: Mutex::new(None),
            reported: Arc::new(Mutex::new(None)),
        });
        driver.subscribe().await;
        Ok(driver)
    }

    /// The device's points, in the plugin's order (a point's index is its number in calls).
    pub fn points(&self) -> &[PluginPoint] {
        &self.points
    }

    /// Runs `f` on the worker and waits for it at most the call timeout. A worker still inside an
    /// earlier call that outlived its timeout is not queued behind: the call fails at once.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<T, CallError> + Send + 'static,
    ) -> Result<T, DriverError> {
        if let Some(since) = *self.busy_since.lock()
            && since.elapsed() > self.timeout
        {
            self.health.lock().timeouts += 1;
            return Err(DriverError::Plugin(format!(
                "the {} plugin has not returned from a call made {} s ago; the device waits for it",
                self.protocol,
                since.elapsed().as_secs()
            )));
        }
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |s| {
            let _ = tx.send(f(s));
        });
        if self.jobs.send(job).is_err() {
            return Err(DriverError::Plugin("the plugin's thread has ended".into()));
        }
        let answer = tokio::time::timeout(self.timeout, rx).await;
        let mut h = self.health.lock();
        match answer {
            Err(_) => {
                h.timeouts += 1;
                h.connected = false;
                Err(DriverError::Timeout(self.timeout))
            }
            Ok(Err(_)) => {
                h.failures += 1;
                Err(DriverError::Plugin("the plugin's thread ended during the call".into()))
            }
            Ok(Ok(Ok(v))) => {
                h.answered += 1;
                h.connected = true;
                Ok(v)
            }
            Ok(Ok(Err(e))) => {
                let e = driver_error(e);
                if e.is_unreachable() {
                    h.failures += 1;
                    h.connected = false;
                } else {
                    h.answered += 1;
                }
                Err(e)
            }
        }
    }

    /// Subscribes to changes of every point; the pushes wait in a channel for the poller
    /// ([`Driver::take_pushes`]). A plugin that cannot is polled only.
    async fn subscribe(&self) {
        let (tx, rx) = mpsc::unbounded_channel();
        let all: Vec<u32> = (0..self.points.len() as u32).collect();
        let n = all.len() as u32;
        let r = self
            .call(move |s| {
                s.subscribe(
                    &all,
                    Box::new(move |samples: &[abi::Sample]| {
                        let v: Vec<PushedValue> = samples.iter().filter(|s| s.point < n).map(pushed).collect();
                        if !v.is_empty() {
                            let _ = tx.send(v);
                        }
                    }),
                )
            })
            .await;
        match r {
            Ok(()) => {
                tracing::info!(device = %self.device, protocol = %self.protocol, "device pushes its changes");
                *self.pushes.lock() = Some(rx);
            }
            Err(DriverError::Invalid(_)) => {}
            Err(e) => tracing::warn!(device = %self.device, error = %e, "subscribing to changes failed; polling only"),
        }
    }
}

impl Driver for PluginDriver {
    fn protocol(&self) -> &str {
        &self.protocol
    }

    /// Each request's registers are point indexes (`start .. start + count`); the whole batch is
    /// one plugin call.
    fn read<'a>(&'a self, _unit: u8, batch: &'a [ReadRequest]) -> BoxFuture<'a, Vec<Result<RawData, DriverError>>> {
        Box::pin(async move {
            let indexes: Vec<u32> =
                batch.iter().flat_map(|r| u32::from(r.start)..u32::from(r.start) + u32::from(r.count)).collect();
            let reported = self.reported.clone();
            let read = move |s: &mut Session| {
                let samples = s.read(&indexes);
                // What the plugin says of its connection, refreshed with every poll (a call
                // without I/O by the ABI's terms); an answer that is not JSON is left out.
                if let Ok(json) = s.health() {
                    *reported.lock() = serde_json::from_slice(&json).ok();
                }
                samples
            };
            match self.call(read).await {
                Ok(samples) => {
                    let mut at = 0;
                    batch
                        .iter()
                        .map(|r| {
                            let n = usize::from(r.count);
                            let values = samples[at..at + n].iter().map(value_of).collect();
                            at += n;
                            Ok(RawData::Values(values))
                        })
                        .collect()
                }
                Err(e) => vec![Err(e); batch.len()],
            }
        })
    }

    fn write<'a>(&'a self, _: u8, _: RegisterKind, _: u16, _: RawData) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async { Err(DriverError::Invalid("a plugin device is written by point and priority".into())) })
    }

    fn write_point<'a>(
        &'a self,
        point: u32,
        value: Option<f64>,
        priority: u8,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            match value {
                Some(v) => self.call(move |s| s.write(point, v, priority)).await,
                None => self.call(move |s| s.relinquish(point, priority)).await,
            }
        })
    }

    fn take_pushes(&self) -> Option<mpsc::UnboundedReceiver<Vec<PushedValue>>> {
        self.pushes.lock().take()
    }

    fn health(&self) -> ConnectionHealth {
        *self.health.lock()
    }

    fn reported_health(&self) -> Option<serde_json::Value> {
        self.reported.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_lists_are_checked() {
        let ok = br#"[{"name":"ZN-T","kind":"analog","units":"\u00b0C","class":"input"},
                     {"name":"Fan","kind":"digital","writable":true,"states":["Off","On"]}]"#;
        let p = parse_points(ok).unwrap();
        assert_eq!((p[0].kind, p[0].units.as_deref(), p[1].writable), (PointKind::Analog, Some("°C"), true));
        for (bad, why) in [
            (&b"{not json"[..], "not valid"),
            (br#"[{"name":"a","kind":"analog"},{"name":"A","kind":"analog"}]"#, "used twice"),
            (br#"[{"name":"","kind":"analog"}]"#, "1 to 64"),
            (br#"[{"name":"a","kind":"vector"}]"#, "not valid"),
            (br#"[{"name":"a","kind":"analog","class":"sensor"}]"#, "class"),
            (br#"[{"name":"a","kind":"analog","min":5,"max":1}]"#, "not a range"),
            (br#"{"name":"a"}"#, "not valid"),
        ] {
            let e = parse_points(bad).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn a_good_sample_without_a_finite_value_is_bad() {
        let s = abi::Sample::new(0, f64::INFINITY, abi::QUALITY_GOOD);
        assert_eq!(value_of(&s).1, Quality::BAD_DEVICE_FAILURE);
        let s = abi::Sample::new(0, 21.5, abi::QUALITY_GOOD_LOCAL_OVERRIDE);
        assert_eq!(value_of(&s), (21.5, Quality::GOOD_LOCAL_OVERRIDE));
    }
}
