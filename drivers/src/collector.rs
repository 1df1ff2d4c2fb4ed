//! The collection service: polls every configured device through its [`Driver`] and turns what it
//! reads into samples on the common ingest path.
//!
//! # Scheduling
//! Each device has one task. Its points are grouped by poll interval (T3000's "timebase"); each
//! group has a read plan from the [`planner`] and its own timer. The first poll of
//! each group is offset by a hash of the device name, so a hundred devices with a 1 s interval do
//! not all poll on the same tick. A group that falls behind skips ahead instead of bursting.
//!
//! # Failures
//! A poll whose requests could not reach the device counts as a failure; the device is retried
//! after an exponential backoff with jitter, and after `offline_after_failures` failures in a row it
//! is marked offline and only probed (one request, at the backoff interval, capped) until it
//! answers. While a device is down its task sleeps: no CPU is spent on it. Failed reads become
//! bad-quality samples with a NaN value (never a 0), once per failure until the device is offline.
//! A busy answer (exception 06) is retried with backoff within the poll. The driver closes its
//! connection on any timeout, so a late reply is never taken for the next answer.
//!
//! # Drivers
//! Each Modbus TCP device has its own connection (units behind one gateway too, so a dead unit
//! never holds up a healthy one); every unit on one serial bus shares the bus, whose driver
//! serialises requests and keeps the line's inter-frame silence.

use crate::codec::{Codec, RegisterKind, Value};
use crate::driver::{Driver, DriverError, ExceptionCode, RawData};
use crate::labels::PointText;
use crate::modbus::{Endpoint, ModbusDriver};
use crate::planner::{self, Limits, PlanItem, ReadRequest};
use crate::profile::{PointType, Profile, ProfilePoint};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;
use t3_core::clock::Clock;
use t3_core::config::{
    CollectorConfig, DeviceConfig, MODBUS_TCP_PORT, PointOverride, Protocol, RecordConfig, RecordMode,
};
use t3_core::recording::Demand;
use t3_core::{Quality, Sample};
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;

/// Where collected samples go (the storage engine's ingest, in the server): the ingest seam of
/// `t3_core`, named here too because the collector is what feeds it.
pub use t3_core::sink::{IngestFuture, SampleSink, SinkError};

/// One point the collector polls, with its stored id.
#[derive(Debug, Clone)]
pub struct CollectorPoint {
    pub id: u32,
    /// Index of the point in the device's profile ([`DeviceSpec::point_of`]); devices share their
    /// profile rather than copying its points.
    pub index: usize,
    pub interval: Duration,
    pub record: RecordConfig,
}

/// A device ready to be polled: its configuration, profile and points with ids.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    pub config: DeviceConfig,
    pub profile: Arc<Profile>,
    pub points: Vec<CollectorPoint>,
}

impl DeviceSpec {
    /// The points a device config asks for: every numeric profile point that is not disabled, with
    /// the device's or the point's interval and recording. `id_of` assigns stored ids.
    pub fn new(
        config: DeviceConfig,
        profile: Arc<Profile>,
        mut id_of: impl FnMut(&ProfilePoint) -> u32,
    ) -> Result<DeviceSpec, CollectError> {
        for o in &config.points {
            if profile.point(&o.name).is_none() {
                return Err(CollectError::UnknownPoint { device: config.name.clone(), point: o.name.clone() });
            }
        }
        let points = profile
            .points
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.codec.is_text())
            .filter_map(|(index, p)| {
                // Override names resolve like the profile's own lookup (`in1` is IN1).
                let o = config.points.iter().find(|o| profile.point(&o.name).is_some_and(|q| q.name == p.name));
                if o.is_some_and(|o| !o.enabled) {
                    return None;
                }
                let (interval, record) = own_settings(&config, o);
                Some(CollectorPoint { id: id_of(p), index, interval, record })
            })
            .collect();
        Ok(DeviceSpec { config, profile, points })
    }

    /// The point's own interval and recording: its override's in the device's configuration,
    /// else the device's. What it is polled with ([`CollectorPoint::interval`], `record`) may be
    /// faster while trend logs ask for it ([`Collector::set_demands`]).
    pub fn own(&self, cp: &CollectorPoint) -> (Duration, RecordConfig) {
        let name = &self.point_of(cp).name;
        let o = self.config.points.iter().find(|o| {
            self.profile.point(&o.name).is_some_and(|q| q.name == *name) || o.name.eq_ignore_ascii_case(name)
        });
        own_settings(&self.config, o)
    }

    /// The points with `demands` applied to their own settings; points without a demand get their
    /// own settings back.
    fn with_demands(&self, demands: &HashMap<u32, Demand>) -> Vec<CollectorPoint> {
        self.points
            .iter()
            .map(|cp| {
                let (interval, record) = self.own(cp);
                let (interval, record) = match demands.get(&cp.id) {
                    Some(d) => d.apply(interval, &record),
                    None => (interval, record),
                };
                CollectorPoint { interval, record, ..cp.clone() }
            })
            .collect()
    }

    /// The profile point a collector point polls.
    pub fn point_of(&self, cp: &CollectorPoint) -> &ProfilePoint {
        &self.profile.points[cp.index]
    }

    /// The Modbus endpoint; none for a plugin device.
    fn endpoint(&self) -> Option<Endpoint> {
        let c = &self.config;
        match c.protocol {
            Protocol::ModbusTcp => Some(Endpoint::Tcp {
                host: c.ip_address.clone().unwrap_or_default(),
                port: c.port.unwrap_or(MODBUS_TCP_PORT),
            }),
            Protocol::ModbusRtu => Some(Endpoint::Rtu {
                path: c.serial_port.clone().unwrap_or_default(),
                baud_rate: c.baud_rate,
                parity: c.parity,
            }),
            Protocol::Plugin(_) => None,
        }
    }

    /// Where the device is, for people: the Modbus endpoint, or a plugin device's address.
    fn endpoint_text(&self) -> String {
        let c = &self.config;
        match (self.endpoint(), &c.ip_address, c.port) {
            (Some(e), _, _) => e.to_string(),
            (None, Some(ip), Some(port)) => format!("{ip}:{port}"),
            (None, Some(ip), None) => ip.clone(),
            (None, None, _) => String::new(),
        }
    }

    /// Whether the device keeps a priority array of its own (a plugin device: BACnet's), so
    /// commands are written slot by slot rather than as the value that wins.
    pub fn keeps_priorities(&self) -> bool {
        self.config.protocol.plugin().is_some()
    }

    pub(crate) fn limits(&self) -> Limits {
        let mut l = self.profile.limits;
        if self.keeps_priorities() {
            return l;
        }
        if let Some(m) = self.config.max_registers {
            l.max_registers = l.max_registers.min(m);
        }
        if let Some(g) = self.config.max_gap {
            l.max_gap = g;
        }
        l.one_per_point |= self.config.one_request_per_point;
        l
    }
}

/// A point's own interval and recording: `o`'s (its override) where set, else the device's.
fn own_settings(config: &DeviceConfig, o: Option<&PointOverride>) -> (Duration, RecordConfig) {
    let interval = o.and_then(|o| o.poll_interval_ms).unwrap_or(config.poll_interval_ms);
    let record = o.and_then(|o| o.record.clone()).unwrap_or_else(|| config.record.clone());
    (Duration::from_millis(interval), record)
}

/// Errors of the collector's own operations.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CollectError {
    #[error("no device named \"{0}\"")]
    UnknownDevice(String),
    #[error("device \"{0}\" already exists")]
    DuplicateDevice(String),
    #[error("device \"{device}\" has no point \"{point}\" in its profile")]
    UnknownPoint { device: String, point: String },
    #[error("point \"{0}\" is read-only")]
    ReadOnly(String),
    #[error("cannot plan reads: {0}")]
    Plan(String),
    #[error("value {value} cannot be written to \"{point}\": {reason}")]
    BadValue { point: String, value: f64, reason: String },
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("the value was written but could not be stored: {0}")]
    Store(SinkError),
    /// The point has no auto/manual register: nothing at the device switches it.
    #[error("point `{0}` has no auto/manual switch")]
    NoAutoManual(String),
    /// The device is not a T3 controller (a library profile, a plugin): it has no panel tables
    /// (routines, programs); nothing was sent.
    #[error("device \"{device}\" is not a T3 controller: it has no {what}")]
    NotT3 { device: String, what: &'static str },
    /// A T3 panel has no record of that number (routines and programs count from 1).
    #[error("a T3 panel has {what} 1 to {count}, not {n}")]
    NoRecord { what: &'static str, count: usize, n: usize },
    /// The controller answered a block of the T3 register map with a Modbus exception: its
    /// firmware does not serve that block (older firmware lacks some).
    #[error(
        "device \"{device}\" refused its {what} (holding registers {first}-{last}) with {exception}: \
         its firmware does not serve them"
    )]
    Refused { device: String, what: &'static str, first: u16, last: u16, exception: ExceptionCode },
}

/// A device's connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// Not polled yet.
    Connecting,
    Online,
    /// Failed `offline_after_failures` polls in a row; probed at the backoff interval.
    Offline,
    Disabled,
}

/// What is known about a device's communication, kept in memory and published on every change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceStatus {
    pub name: String,
    pub protocol: String,
    pub endpoint: String,
    pub unit_id: u8,
    pub profile: String,
    pub state: DeviceState,
    pub online: bool,
    /// Last answer of any kind, microseconds since the epoch.
    pub last_seen: Option<i64>,
    /// Round-trip time of the last successful poll, milliseconds.
    pub rtt_ms: Option<f64>,
    /// Smoothed round-trip time (exponential average over about 10 polls), milliseconds.
    pub rtt_avg_ms: Option<f64>,
    pub polls: u64,
    pub failed_polls: u64,
    pub consecutive_failures: u32,
    pub timeouts: u64,
    pub exceptions: u64,
    pub protocol_errors: u64,
    pub connection_errors: u64,
    /// Share of the last 100 polls that succeeded, 0 ..= 1.
    pub connection_quality: f64,
    pub last_error: Option<String>,
    /// What a plugin device's plugin reports of its connection (its `health` answer at the last
    /// poll: `requests`, `answered`, `timeouts`, ... as the plugin counts them); none for Modbus.
    pub plugin_health: Option<serde_json::Value>,
}

impl DeviceStatus {
    /// The status of a device that has not been polled yet.
    pub fn new(name: &str, protocol: &str, endpoint: String, unit_id: u8, profile: &str, state: DeviceState) -> Self {
        DeviceStatus {
            name: name.to_owned(),
            protocol: protocol.to_owned(),
            endpoint,
            unit_id,
            profile: profile.to_owned(),
            state,
            online: false,
            last_seen: None,
            rtt_ms: None,
            rtt_avg_ms: None,
            polls: 0,
            failed_polls: 0,
            consecutive_failures: 0,
            timeouts: 0,
            exceptions: 0,
            protocol_errors: 0,
            connection_errors: 0,
            connection_quality: 0.0,
            last_error: None,
            plugin_health: None,
        }
    }
}

/// The status of every device, and a channel announcing each change.
#[derive(Debug)]
pub struct StatusBoard {
    devices: RwLock<HashMap<String, DeviceStatus>>,
    tx: broadcast::Sender<DeviceStatus>,
}

impl StatusBoard {
    fn new() -> Self {
        Self { devices: RwLock::new(HashMap::new()), tx: broadcast::channel(1024).0 }
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut DeviceStatus)) {
        let snapshot = {
            let mut map = self.devices.write();
            let Some(s) = map.get_mut(name) else { return };
            let before = s.clone();
            f(s);
            if *s == before {
                return;
            }
            s.clone()
        };
        let _ = self.tx.send(snapshot);
    }

    pub fn get(&self, name: &str) -> Option<DeviceStatus> {
        self.devices.read().get(name).cloned()
    }

    pub fn all(&self) -> Vec<DeviceStatus> {
        let mut v: Vec<_> = self.devices.read().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Every later status change.
    pub fn subscribe(&self) -> broadcast::Receiver<DeviceStatus> {
        self.tx.subscribe()
    }
}

struct DeviceHandle {
    spec: Arc<DeviceSpec>,
    driver: Arc<dyn Driver>,
    stop: Arc<Notify>,
    /// The poll task; it hands back the device's pushed values when it stops, for the next one.
    task: tokio::task::JoinHandle<Option<Pushes>>,
}

/// The polling service.
pub struct Collector {
    cfg: CollectorConfig,
    sink: Arc<dyn SampleSink>,
    clock: Arc<dyn Clock>,
    status: Arc<StatusBoard>,
    devices: Mutex<HashMap<String, DeviceHandle>>,
    /// Serial buses by endpoint, shared by the devices on them.
    drivers: Mutex<HashMap<Endpoint, Weak<ModbusDriver>>>,
    /// Devices waiting to be opened (plugin devices whose point list is not read yet), with the
    /// task that opens them.
    pending: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// What trend logs ask of points, by point id ([`Collector::set_demands`]), applied to every
    /// device added and to the running ones.
    demands: RwLock<HashMap<u32, Demand>>,
}

impl fmt::Debug for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collector").field("devices", &self.devices.lock().len()).finish_non_exhaustive()
    }
}

/// The result of a confirmed write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WriteOutcome {
    pub point_id: u32,
    /// The value read back from the device after the write.
    pub value: f64,
    /// When it was read back, microseconds since the epoch.
    pub ts: i64,
    /// Whether the point was switched to manual first.
    pub switched_to_manual: bool,
}

/// The result of a confirmed auto/manual change ([`Collector::set_mode`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeOutcome {
    pub point_id: u32,
    /// Whether the point was in manual before the change.
    pub was_manual: bool,
    /// Whether the point is in manual now, as read back from its auto/manual register.
    pub manual: bool,
    /// The point's value read right after the change (NaN when it could not be read), recorded
    /// as a sample with `quality`.
    pub value: f64,
    pub quality: Quality,
    /// When it was read, microseconds since the epoch.
    pub ts: i64,
}

impl Collector {
    pub fn new(cfg: CollectorConfig, sink: Arc<dyn SampleSink>, clock: Arc<dyn Clock>) -> Arc<Collector> {
        Arc::new(Collector {
            cfg,
            sink,
            clock,
            status: Arc::new(StatusBoard::new()),
            devices: Mutex::new(HashMap::new()),
            drivers: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            demands: RwLock::new(HashMap::new()),
        })
    }

    /// Sets what trend logs ask of points (point id -> their merged [`Demand`]; a point not in
    /// the map has its own settings): devices added later start with them, and every running
    /// device whose points change is polled with the new settings at once (its poll task is
    /// restarted with the same driver and connection, so Modbus and plugin devices alike).
    /// Returns the names of the devices restarted.
    pub fn set_demands(self: &Arc<Self>, demands: HashMap<u32, Demand>) -> Vec<String> {
        let mut devices = self.devices.lock();
        // Under the devices lock: a device added meanwhile reads the new demands.
        *self.demands.write() = demands;
        let demands = self.demands.read();
        let mut restarted = Vec::new();
        for (name, h) in devices.iter_mut() {
            let points = h.spec.with_demands(&demands);
            let same = points.iter().zip(&h.spec.points).all(|(a, b)| a.interval == b.interval && a.record == b.record);
            if same {
                continue;
            }
            let spec = DeviceSpec { points, ..(*h.spec).clone() };
            let groups = match poll_groups(&spec) {
                Ok(g) => g,
                Err(e) => {
                    tracing::error!(device = %name, error = %e, "the trend logs' settings cannot be planned; the device keeps its own");
                    continue;
                }
            };
            let spec = Arc::new(spec);
            let stop = Arc::new(Notify::new());
            let enabled = spec.config.enabled && self.cfg.enabled;
            let (old_stop, old_task) = (
                std::mem::replace(&mut h.stop, stop.clone()),
                std::mem::replace(&mut h.task, tokio::spawn(async { None })),
            );
            // The old poller stops before the new one polls: never two pollers on one device.
            let poller = enabled.then(|| Poller::new(self.clone(), spec.clone(), h.driver.clone(), groups));
            old_stop.notify_one();
            h.task = tokio::spawn(async move {
                let pushes = old_task.await.ok().flatten();
                match poller {
                    Some(p) => p.with_pushes(pushes).run(stop).await,
                    None => pushes,
                }
            });
            h.spec = spec;
            restarted.push(name.clone());
        }
        restarted.sort();
        restarted
    }

    pub fn status(&self) -> &Arc<StatusBoard> {
        &self.status
    }

    /// The device's spec, if it is known.
    pub fn device(&self, name: &str) -> Option<Arc<DeviceSpec>> {
        self.devices.lock().get(name).map(|h| h.spec.clone())
    }

    pub fn device_names(&self) -> Vec<String> {
        let mut v: Vec<_> = self.devices.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// The spec and driver of a polled device.
    pub(crate) fn handle(&self, device: &str) -> Result<(Arc<DeviceSpec>, Arc<dyn Driver>), CollectError> {
        let devices = self.devices.lock();
        let h = devices.get(device).ok_or_else(|| CollectError::UnknownDevice(device.to_owned()))?;
        Ok((h.spec.clone(), h.driver.clone()))
    }

    /// Reads one point of a device as a poll reads it (digital flag, auto/manual, a plugin's
    /// quality) and records it: its value, quality, time, and the read's error if it failed.
    async fn record_point(
        &self,
        spec: &DeviceSpec,
        driver: &dyn Driver,
        index: usize,
    ) -> Result<(f64, Quality, i64, Option<DriverError>), CollectError> {
        let cp = &spec.points[index];
        let group = poll_group(spec, cp.interval, &[index])?;
        let results = driver.read(spec.config.unit_id, group.plan()).await;
        let (value, quality) = group
            .decode(spec, &results)
            .into_iter()
            .find(|(i, _, _)| *i == index)
            .map(|(_, v, q)| (v, q))
            .unwrap_or((f64::NAN, Quality::BAD));
        let ts = self.clock.now_us();
        self.sink.ingest(vec![Sample::new(cp.id, ts, value, quality)]).await.map_err(CollectError::Store)?;
        Ok((value, quality, ts, results.into_iter().find_map(Result::err)))
    }

    /// A Modbus TCP device gets a connection of its own, so a dead unit behind a gateway never holds
    /// up its neighbours; the units of one serial bus share its driver, which serialises them (the
    /// first device's timeout applies to the bus).
    fn driver_for(&self, spec: &DeviceSpec) -> Result<Arc<ModbusDriver>, CollectError> {
        let endpoint = spec.endpoint().ok_or_else(|| {
            CollectError::Plan(format!("device \"{}\" needs the driver of its plugin", spec.config.name))
        })?;
        let timeout = Duration::from_millis(spec.config.timeout_ms.unwrap_or(self.cfg.timeout_ms));
        if matches!(endpoint, Endpoint::Tcp { .. }) {
            return Ok(Arc::new(ModbusDriver::new(endpoint, timeout)));
        }
        let mut drivers = self.drivers.lock();
        drivers.retain(|_, d| d.strong_count() > 0);
        if let Some(d) = drivers.get(&endpoint).and_then(Weak::upgrade) {
            return Ok(d);
        }
        let d = Arc::new(ModbusDriver::new(endpoint.clone(), timeout));
        drivers.insert(endpoint, Arc::downgrade(&d));
        Ok(d)
    }

    /// Registers a device that `opener` is still opening (a plugin device whose point list is not
    /// read yet): its status is `connecting` until [`Collector::pending_failed`] or the opener adds it
    /// with [`Collector::add_device_with`]; removing the device stops the opener.
    pub fn add_pending(&self, config: &DeviceConfig, opener: tokio::task::AbortHandle) -> Result<(), CollectError> {
        let name = config.name.clone();
        if self.devices.lock().contains_key(&name) || self.pending.lock().contains_key(&name) {
            opener.abort();
            return Err(CollectError::DuplicateDevice(name));
        }
        let profile = Profile {
            name: String::new(),
            description: String::new(),
            product_models: Vec::new(),
            limits: Limits::default(),
            points: Vec::new(),
        };
        let spec = DeviceSpec { config: config.clone(), profile: Arc::new(profile), points: Vec::new() };
        let enabled = config.enabled && self.cfg.enabled;
        self.status.devices.write().insert(
            name.clone(),
            DeviceStatus::new(
                &name,
                config.protocol.name(),
                spec.endpoint_text(),
                config.unit_id,
                "",
                if enabled { DeviceState::Connecting } else { DeviceState::Disabled },
            ),
        );
        self.pending.lock().insert(name, opener);
        Ok(())
    }

    /// A pending device could not be opened (`failures` times in a row): offline once that reaches
    /// `offline_after_failures`, with `error`. Returns how long to wait before trying again.
    pub fn pending_failed(&self, name: &str, failures: u32, error: &str) -> Duration {
        let offline = failures >= self.cfg.offline_after_failures;
        self.status.update(name, |s| {
            s.failed_polls += 1;
            s.consecutive_failures = failures;
            s.last_error = Some(error.to_owned());
            if offline {
                s.state = DeviceState::Offline;
                s.online = false;
            }
        });
        backoff(&self.cfg, failures)
    }

    /// The default time a device has to answer one request.
    pub fn timeout_ms(&self) -> u64 {
        self.cfg.timeout_ms
    }

    /// Adds a Modbus device and starts polling it at once (unless it is disabled).
    pub fn add_device(self: &Arc<Self>, spec: DeviceSpec) -> Result<(), CollectError> {
        self.add_device_with(spec, None)
    }

    /// Adds a device polled through `driver` (a plugin device's, opened by the plugin host), or
    /// through a Modbus driver of its own when none is given, and starts polling it.
    pub fn add_device_with(
        self: &Arc<Self>,
        spec: DeviceSpec,
        driver: Option<Arc<dyn Driver>>,
    ) -> Result<(), CollectError> {
        let name = spec.config.name.clone();
        let mut devices = self.devices.lock();
        if devices.contains_key(&name) {
            return Err(CollectError::DuplicateDevice(name));
        }
        let spec = {
            let demands = self.demands.read();
            if spec.points.iter().any(|p| demands.contains_key(&p.id)) {
                DeviceSpec { points: spec.with_demands(&demands), ..spec }
            } else {
                spec
            }
        };
        let groups = poll_groups(&spec)?;
        // Its opener is done (this is it, or it is no longer needed).
        self.pending.lock().remove(&name);
        let driver: Arc<dyn Driver> = match driver {
            Some(d) => d,
            None => self.driver_for(&spec)?,
        };
        let spec = Arc::new(spec);
        let enabled = spec.config.enabled && self.cfg.enabled;
        self.status.devices.write().insert(
            name.clone(),
            DeviceStatus::new(
                &name,
                driver.protocol(),
                spec.endpoint_text(),
                spec.config.unit_id,
                &spec.profile.name,
                if enabled { DeviceState::Connecting } else { DeviceState::Disabled },
            ),
        );
        let stop = Arc::new(Notify::new());
        let task = if enabled {
            let poller = Poller::new(self.clone(), spec.clone(), driver.clone(), groups);
            tokio::spawn(poller.run(stop.clone()))
        } else {
            tokio::spawn(async { None })
        };
        devices.insert(name, DeviceHandle { spec, driver, stop, task });
        Ok(())
    }

    /// Stops polling a device and forgets it.
    pub async fn remove_device(&self, name: &str) -> Result<(), CollectError> {
        if let Some(opener) = self.pending.lock().remove(name) {
            opener.abort();
            self.status.devices.write().remove(name);
            return Ok(());
        }
        let handle = self.devices.lock().remove(name).ok_or_else(|| CollectError::UnknownDevice(name.to_owned()))?;
        handle.stop.notify_one();
        let _ = handle.task.await;
        self.status.devices.write().remove(name);
        Ok(())
    }

    /// Stops every device task.
    pub async fn shutdown(&self) {
        for (_, opener) in self.pending.lock().drain() {
            opener.abort();
        }
        let handles: Vec<_> = self.devices.lock().drain().map(|(_, h)| h).collect();
        for h in &handles {
            h.stop.notify_one();
        }
        for h in handles {
            let _ = h.task.await;
        }
    }

    /// Reads the range (unit) code and the analog/digital flag of every polled point that has
    /// them: T3000's range numbers (an input's register keeps its analog flag in the high byte and
    /// the range in the low one). One planned batch of reads; what could not be read is `None`,
    /// points with neither are left out.
    pub async fn read_ranges(&self, device: &str) -> Result<Vec<PointRange>, CollectError> {
        let (spec, driver) = self.handle(device)?;
        // (point id, range register, is an input, digital flag)
        let points: Vec<(u32, Option<u16>, bool, Option<DigitalFlag>)> = spec
            .points
            .iter()
            .map(|cp| {
                let p = spec.point_of(cp);
                (cp.id, p.range, p.point_type == PointType::Input, DigitalFlag::of(p))
            })
            .filter(|(_, range, _, flag)| range.is_some() || flag.is_some())
            .collect();
        let mut addresses: Vec<u16> = points
            .iter()
            .flat_map(|(_, range, _, flag)| range.iter().copied().chain(flag.map(|f| f.address)))
            .collect();
        addresses.sort_unstable();
        addresses.dedup();
        if addresses.is_empty() {
            return Ok(Vec::new());
        }
        let items: Vec<PlanItem> =
            addresses.iter().map(|&address| PlanItem { kind: RegisterKind::Holding, address, count: 1 }).collect();
        let plan = planner::plan(&items, &spec.limits()).map_err(|e| CollectError::Plan(e.to_string()))?;
        let results = driver.read(spec.config.unit_id, &plan).await;
        let mut words = HashMap::new();
        for (req, result) in plan.iter().zip(results) {
            let Ok(RawData::Words(w)) = result else { continue };
            for &(item, offset) in &req.points {
                if let Some(&word) = w.get(usize::from(offset)) {
                    words.insert(addresses[item], word);
                }
            }
        }
        Ok(points
            .into_iter()
            .map(|(point, range, input, flag)| PointRange {
                point,
                range: range.and_then(|a| words.get(&a)).map(|&w| if input { w & 0xFF } else { w }),
                digital: flag.and_then(|f| words.get(&f.address).map(|&w| f.is_digital(w))),
            })
            .collect())
    }

    /// Reads the label and description a T3 controller keeps for every polled input, output and variable
    /// (the start of each point record, see [`crate::labels`]). One planned batch of reads, which skips the
    /// rest of each record; a read that fails leaves its points out. Devices without point records (library
    /// profiles) give an empty list without a request.
    pub async fn read_labels(&self, device: &str) -> Result<Vec<(u32, PointText)>, CollectError> {
        let (spec, driver) = self.handle(device)?;
        // (point id, first register of its record, registers between its text and the next record, kind)
        let points: Vec<(u32, u16, u16, PointType)> = spec
            .points
            .iter()
            .filter_map(|cp| {
                let p = spec.point_of(cp);
                crate::labels::record(p).map(|first| (cp.id, first, crate::labels::record_gap(p), p.point_type))
            })
            .collect();
        if points.is_empty() {
            return Ok(Vec::new());
        }
        // The rest of each record exists on the panel: reads may run through it.
        let gap = points.iter().map(|p| p.2).max().unwrap_or(0);
        let items: Vec<PlanItem> = points
            .iter()
            .map(|&(_, address, _, _)| PlanItem {
                kind: RegisterKind::Holding,
                address,
                count: crate::labels::TEXT_REGISTERS,
            })
            .collect();
        let limits = Limits { max_gap: spec.limits().max_gap.max(gap), ..spec.limits() };
        let plan = planner::plan(&items, &limits).map_err(|e| CollectError::Plan(e.to_string()))?;
        let results = driver.read(spec.config.unit_id, &plan).await;
        let mut out = Vec::with_capacity(points.len());
        for (req, result) in plan.iter().zip(results) {
            let Ok(RawData::Words(w)) = result else { continue };
            for &(item, offset) in &req.points {
                let start = usize::from(offset);
                if let Some(words) = w.get(start..start + usize::from(crate::labels::TEXT_REGISTERS)) {
                    out.push((points[item].0, PointText::decode(points[item].3, words)));
                }
            }
        }
        Ok(out)
    }

    /// Writes `value` to a point of a device with the profile's encoding, reads it back to confirm,
    /// and records the read-back value as a sample. A point with an auto/manual register that is in
    /// auto is refused unless `switch_to_manual` is set, in which case it is switched first.
    pub async fn write(
        &self,
        device: &str,
        point: &str,
        value: f64,
        switch_to_manual: bool,
    ) -> Result<WriteOutcome, CollectError> {
        let (spec, driver) = self.handle(device)?;
        let cp = &spec.points[point_index(&spec, point)?];
        let p = spec.point_of(cp);
        if !p.writable || !p.kind.is_writable() {
            return Err(CollectError::ReadOnly(point.to_owned()));
        }
        if spec.keeps_priorities() {
            // A device with a priority array of its own is commanded slot by slot (`command`);
            // a plain write is the operator's priority.
            return self.command(device, point, Some(value), t3_core::arbiter::Priority::OPERATOR.get()).await;
        }
        let unit = spec.config.unit_id;
        let bad_value = |reason: String| CollectError::BadValue { point: point.to_owned(), value, reason };
        let mut codec = p.codec.clone();
        if let Some(flag) = DigitalFlag::of(p) {
            let req = ReadRequest { kind: RegisterKind::Holding, start: flag.address, count: 1, points: Vec::new() };
            if let RawData::Words(w) = first(driver.read(unit, std::slice::from_ref(&req)).await)?
                && w.first().is_some_and(|&w| flag.is_digital(w))
            {
                if value != 0.0 && value != 1.0 {
                    return Err(bad_value("the point is digital: write 0 or 1".to_owned()));
                }
                codec = raw(&codec);
            }
        }
        let words = codec.encode(&Value::Number(value)).map_err(|e| bad_value(e.to_string()))?;
        let mut switched = false;
        let mut manual = false;
        if let Some(am) = p.auto_manual {
            let req = ReadRequest { kind: RegisterKind::Holding, start: am, count: 1, points: Vec::new() };
            let mode = first(driver.read(unit, std::slice::from_ref(&req)).await)?;
            manual = matches!(mode, RawData::Words(ref w) if w.first().is_some_and(|&m| m != 0));
            if !manual {
                if !switch_to_manual {
                    return Err(DriverError::InAuto.into());
                }
                driver.write(unit, RegisterKind::Holding, am, RawData::Words(vec![1])).await?;
                switched = true;
                manual = true;
            }
        }
        let data = if p.kind == RegisterKind::Coil {
            RawData::Bits(words.iter().map(|&w| w != 0).collect())
        } else {
            RawData::Words(words.clone())
        };
        let confirmed = async {
            driver.write(unit, p.kind, p.address, data.clone()).await?;
            let req = ReadRequest { kind: p.kind, start: p.address, count: codec.registers(), points: Vec::new() };
            let back = first(driver.read(unit, std::slice::from_ref(&req)).await)?;
            if back != data {
                return Err(DriverError::NotConfirmed { written: format!("{data:?}"), read_back: format!("{back:?}") });
            }
            Ok(back)
        };
        let back = match confirmed.await {
            Ok(back) => back,
            Err(e) => {
                if switched && let Some(am) = p.auto_manual {
                    // Best effort: leave the point in auto as it was found.
                    let _ = driver.write(unit, RegisterKind::Holding, am, RawData::Words(vec![0])).await;
                }
                return Err(e.into());
            }
        };
        let read_back = match decode(&codec, &back) {
            Some(Ok(Value::Number(v))) => v,
            _ => value,
        };
        let ts = self.clock.now_us();
        let quality = if manual && p.auto_manual.is_some() { Quality::GOOD_LOCAL_OVERRIDE } else { Quality::GOOD };
        self.sink.ingest(vec![Sample::new(cp.id, ts, read_back, quality)]).await.map_err(CollectError::Store)?;
        Ok(WriteOutcome { point_id: cp.id, value: read_back, ts, switched_to_manual: switched })
    }

    /// Commands `value` (none: relinquishes) at `priority` (1 ..= 16) to a point of a device that
    /// keeps a priority array of its own ([`DeviceSpec::keeps_priorities`]: a plugin device), then
    /// reads the point back and records what the device now holds: the value that wins there,
    /// which may be another priority's.
    pub async fn command(
        &self,
        device: &str,
        point: &str,
        value: Option<f64>,
        priority: u8,
    ) -> Result<WriteOutcome, CollectError> {
        let (spec, driver) = self.handle(device)?;
        let index = point_index(&spec, point)?;
        let cp = &spec.points[index];
        let p = spec.point_of(cp);
        if !p.writable || !spec.keeps_priorities() {
            return Err(CollectError::ReadOnly(point.to_owned()));
        }
        driver.write_point(u32::from(p.address), value, priority).await?;
        let (read_back, _, ts, error) = self.record_point(&spec, driver.as_ref(), index).await?;
        if let Some(e) = error {
            return Err(e.into());
        }
        Ok(WriteOutcome { point_id: cp.id, value: read_back, ts, switched_to_manual: false })
    }

    /// Puts a point in manual (`manual`: its controller stops driving it and it keeps its value
    /// until written) or back in auto (its controller drives it again) by writing its auto/manual
    /// register (1 manual, 0 auto), and reads the register back to confirm. The point's value is
    /// then read and recorded as a sample with the quality of its new mode, so live values show
    /// the change without waiting for the next poll. A point without an auto/manual register is
    /// refused with [`CollectError::NoAutoManual`] before anything is sent; a point already in the
    /// mode asked for is not written (its value is still read and recorded).
    pub async fn set_mode(&self, device: &str, point: &str, manual: bool) -> Result<ModeOutcome, CollectError> {
        let (spec, driver) = self.handle(device)?;
        let index = point_index(&spec, point)?;
        let cp = &spec.points[index];
        let p = spec.point_of(cp);
        let am = p.auto_manual.ok_or_else(|| CollectError::NoAutoManual(p.name.clone()))?;
        let unit = spec.config.unit_id;
        let req = ReadRequest { kind: RegisterKind::Holding, start: am, count: 1, points: Vec::new() };
        let read_mode = || async {
            match first(driver.read(unit, std::slice::from_ref(&req)).await)? {
                RawData::Words(w) if !w.is_empty() => Ok(w[0] != 0),
                other => Err(DriverError::Protocol(format!("auto/manual register {am}: {other:?}"))),
            }
        };
        let was_manual = read_mode().await?;
        if was_manual != manual {
            driver.write(unit, RegisterKind::Holding, am, RawData::Words(vec![u16::from(manual)])).await?;
            let now = read_mode().await?;
            if now != manual {
                return Err(DriverError::NotConfirmed {
                    written: format!("auto/manual {}", u16::from(manual)),
                    read_back: format!("auto/manual {}", u16::from(now)),
                }
                .into());
            }
        }
        // The value in its new mode, decoded as a poll decodes it (digital flag, auto/manual).
        let (value, quality, ts, _) = self.record_point(&spec, driver.as_ref(), index).await?;
        Ok(ModeOutcome { point_id: cp.id, was_manual, manual, value, quality, ts })
    }
}

pub(crate) fn first(mut results: Vec<Result<RawData, DriverError>>) -> Result<RawData, DriverError> {
    if results.is_empty() {
        return Err(DriverError::Protocol("no result".into()));
    }
    results.swap_remove(0)
}

fn decode(codec: &Codec, data: &RawData) -> Option<Result<Value, crate::codec::CodecError>> {
    Some(match data {
        RawData::Words(w) => codec.decode(w),
        RawData::Bits(b) => codec.decode_bits(b),
        RawData::Values(v) => return v.first().map(|&(x, _)| Ok(Value::Number(x))),
    })
}

/// What a planned item reads.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// The value of `points[i]`.
    Value(usize),
    /// The auto/manual flag of `points[i]`.
    AutoManual(usize),
    /// The register telling whether `points[i]` is digital.
    Digital(usize),
}

/// What a device says about a point's value: its T3000 range code and whether it is digital.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointRange {
    pub point: u32,
    pub range: Option<u16>,
    pub digital: Option<bool>,
}

/// Where a T3 controller point says whether it is digital. A digital point holds a raw 0 / 1 in
/// its low word, not value x 1000 (T3 firmware, `read_IO_reg`). Outputs and variables have an
/// analog/digital register (1 analog, 0 digital); inputs keep the analog flag in the high byte of
/// their range register.
#[derive(Debug, Clone, Copy)]
struct DigitalFlag {
    address: u16,
    in_high_byte: bool,
}

impl DigitalFlag {
    fn of(p: &ProfilePoint) -> Option<DigitalFlag> {
        match p.point_type {
            PointType::Output | PointType::Variable => {
                p.analog_digital.map(|address| DigitalFlag { address, in_high_byte: false })
            }
            PointType::Input => p.range.map(|address| DigitalFlag { address, in_high_byte: true }),
            PointType::Register => None,
        }
    }

    fn is_digital(self, word: u16) -> bool {
        if self.in_high_byte { word >> 8 == 0 } else { word == 0 }
    }
}

/// The codec of a point that reads as digital: the same registers without scaling.
fn raw(codec: &Codec) -> Codec {
    codec.clone().scaled(1.0, 1.0, 0.0)
}

/// Points of one device that share a poll interval, with their read plan: each point's value,
/// then its auto/manual register and the register saying whether it is digital.
#[derive(Debug)]
pub struct PollGroup {
    interval: Duration,
    roles: Vec<Role>,
    items: Vec<PlanItem>,
    plan: Vec<ReadRequest>,
}

impl PollGroup {
    /// The requests one poll of this group sends.
    pub fn plan(&self) -> &[ReadRequest] {
        &self.plan
    }

    /// How many values, auto/manual registers and digital flags the plan reads.
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |f: fn(&Role) -> bool| self.roles.iter().filter(|r| f(r)).count();
        (
            count(|r| matches!(r, Role::Value(_))),
            count(|r| matches!(r, Role::AutoManual(_))),
            count(|r| matches!(r, Role::Digital(_))),
        )
    }

    /// Decodes one poll's `results` (one per request of [`PollGroup::plan`]) into `(index into
    /// points, value, quality)` for each point of the group: a digital point unscaled, a point in
    /// manual as a local override, a point whose digital flag could not be read as uncertain, and a
    /// failed read as NaN with the error's quality.
    pub fn decode(&self, spec: &DeviceSpec, results: &[Result<RawData, DriverError>]) -> Vec<(usize, f64, Quality)> {
        // Where each planned item landed: its request's result and its offset in it.
        let mut located: Vec<Option<(usize, u16)>> = vec![None; self.items.len()];
        for (ri, req) in self.plan.iter().enumerate() {
            for &(item, offset) in &req.points {
                located[item] = Some((ri, offset));
            }
        }
        let slice = |item: usize| -> Result<RawData, DriverError> {
            let (ri, off) = located[item].ok_or_else(|| DriverError::Invalid("not planned".into()))?;
            let n = usize::from(self.items[item].count);
            let off = usize::from(off);
            match results.get(ri) {
                Some(Ok(RawData::Words(w))) => Ok(RawData::Words(w.get(off..off + n).unwrap_or_default().to_vec())),
                Some(Ok(RawData::Bits(b))) => Ok(RawData::Bits(b.get(off..off + n).unwrap_or_default().to_vec())),
                Some(Ok(RawData::Values(v))) => Ok(RawData::Values(v.get(off..off + n).unwrap_or_default().to_vec())),
                Some(Err(e)) => Err(e.clone()),
                None => Err(DriverError::Invalid("not read".into())),
            }
        };
        let n = spec.points.len();
        let (mut manual, mut digital, mut unsure) = (vec![false; n], vec![false; n], vec![false; n]);
        for (item, role) in self.roles.iter().enumerate() {
            let word = match slice(item) {
                Ok(RawData::Words(w)) => w.first().copied(),
                _ => None,
            };
            let Some(word) = word else {
                // Whether the point is digital (so scaled or not) is unknown: its value is uncertain.
                if let Role::Digital(i) = *role {
                    unsure[i] = true;
                }
                continue;
            };
            match *role {
                Role::AutoManual(i) => manual[i] = word != 0,
                Role::Digital(i) => {
                    digital[i] = DigitalFlag::of(spec.point_of(&spec.points[i])).is_some_and(|f| f.is_digital(word))
                }
                Role::Value(_) => {}
            }
        }
        let mut out = Vec::new();
        for (item, role) in self.roles.iter().enumerate() {
            let Role::Value(i) = *role else { continue };
            let p = spec.point_of(&spec.points[i]);
            let codec = if digital[i] { raw(&p.codec) } else { p.codec.clone() };
            let (value, quality) = match slice(item) {
                // A plugin's value comes with the quality its device reported.
                Ok(RawData::Values(v)) => v.first().copied().unwrap_or((f64::NAN, Quality::BAD_CONFIG_ERROR)),
                Ok(data) => match decode(&codec, &data) {
                    Some(Ok(Value::Number(v))) if v.is_finite() => (
                        v,
                        if unsure[i] {
                            Quality::UNCERTAIN_SUB_NORMAL
                        } else if manual[i] {
                            Quality::GOOD_LOCAL_OVERRIDE
                        } else {
                            Quality::GOOD
                        },
                    ),
                    Some(Ok(Value::Number(_))) => (f64::NAN, Quality::BAD_DEVICE_FAILURE),
                    _ => (f64::NAN, Quality::BAD_CONFIG_ERROR),
                },
                Err(e) => (f64::NAN, e.quality()),
            };
            out.push((i, value, quality));
        }
        out
    }
}

/// The poll groups of a device, one per distinct poll interval, shortest first.
pub fn poll_groups(spec: &DeviceSpec) -> Result<Vec<PollGroup>, CollectError> {
    let mut by_interval: Vec<(Duration, Vec<usize>)> = Vec::new();
    for (i, p) in spec.points.iter().enumerate() {
        match by_interval.iter_mut().find(|(d, _)| *d == p.interval) {
            Some((_, v)) => v.push(i),
            None => by_interval.push((p.interval, vec![i])),
        }
    }
    by_interval.sort_by_key(|(d, _)| *d);
    by_interval.into_iter().map(|(interval, points)| poll_group(spec, interval, &points)).collect()
}

/// The poll group of `points` (indexes into the device's points): their values, then their
/// auto/manual registers and digital flags, in one plan.
fn poll_group(spec: &DeviceSpec, interval: Duration, points: &[usize]) -> Result<PollGroup, CollectError> {
    let mut roles = Vec::new();
    let mut items = Vec::new();
    for &i in points {
        let p = spec.point_of(&spec.points[i]);
        roles.push(Role::Value(i));
        items.push(PlanItem { kind: p.kind, address: p.address, count: p.codec.registers() });
    }
    for &i in points {
        let p = spec.point_of(&spec.points[i]);
        if let Some(am) = p.auto_manual {
            roles.push(Role::AutoManual(i));
            items.push(PlanItem { kind: RegisterKind::Holding, address: am, count: 1 });
        }
        if let Some(flag) = DigitalFlag::of(p) {
            roles.push(Role::Digital(i));
            items.push(PlanItem { kind: RegisterKind::Holding, address: flag.address, count: 1 });
        }
    }
    let plan = planner::plan(&items, &spec.limits()).map_err(|e| CollectError::Plan(e.to_string()))?;
    Ok(PollGroup { interval, roles, items, plan })
}

/// What was last recorded for a point, for on-change recording.
#[derive(Debug, Clone, Copy)]
struct Recorded {
    value: f64,
    quality: Quality,
    ts: i64,
}

fn should_record(rec: &RecordConfig, last: Option<Recorded>, value: f64, quality: Quality, ts: i64) -> bool {
    let Some(last) = last else { return true };
    if rec.mode == RecordMode::Every || last.quality != quality {
        return true;
    }
    if rec.heartbeat_secs > 0 && ts - last.ts >= rec.heartbeat_secs as i64 * 1_000_000 {
        return true;
    }
    if value.is_nan() || last.value.is_nan() {
        return value.is_nan() != last.value.is_nan();
    }
    let delta = (value - last.value).abs();
    let bands = [
        (rec.deadband > 0.0).then_some(rec.deadband),
        (rec.deadband_percent > 0.0).then(|| last.value.abs() * rec.deadband_percent / 100.0),
    ];
    if bands.iter().all(Option::is_none) {
        return delta != 0.0;
    }
    bands.iter().flatten().any(|&b| delta > b)
}

/// The index in `spec.points` of the point called `point` (ignoring ASCII case).
pub(crate) fn point_index(spec: &DeviceSpec, point: &str) -> Result<usize, CollectError> {
    spec.points
        .iter()
        .position(|p| spec.point_of(p).name.eq_ignore_ascii_case(point))
        .ok_or_else(|| CollectError::UnknownPoint { device: spec.config.name.clone(), point: point.to_owned() })
}

/// The next values a device pushes; never ready when it pushes none.
async fn next_push(
    rx: &mut Option<tokio::sync::mpsc::UnboundedReceiver<Vec<crate::plugin::PushedValue>>>,
) -> Option<Vec<crate::plugin::PushedValue>> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The largest offset of a group's first poll.
const MAX_PHASE: Duration = Duration::from_secs(2);

/// A stable offset in `0..min(interval, MAX_PHASE)` for the first poll of a group, so devices spread over the
/// interval instead of polling on the same tick.
fn phase(name: &str, interval: Duration) -> Duration {
    // FNV-1a: stable across runs and platforms.
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    // Long intervals still start within a few seconds: polling starts at once.
    let ms = interval.min(MAX_PHASE).as_millis().max(1) as u64;
    Duration::from_millis(h % ms)
}

/// Delay before retry `n` (1-based) after failures: doubled each time from `initial`, capped at
/// `max`, with +-20 % jitter so devices that failed together do not retry together.
fn backoff(cfg: &CollectorConfig, n: u32) -> Duration {
    let base = cfg.backoff_initial_ms.saturating_mul(1u64 << n.saturating_sub(1).min(30)).min(cfg.backoff_max_ms);
    let jitter = rand::random_range(0.8..1.2);
    Duration::from_millis((base as f64 * jitter) as u64)
}

/// The task polling one device.
struct Poller {
    collector: Arc<Collector>,
    spec: Arc<DeviceSpec>,
    driver: Arc<dyn Driver>,
    groups: Vec<PollGroup>,
    last: Vec<Option<Recorded>>,
    /// Polls in a row that did not reach the device.
    failures: u32,
    /// Success (true) of the last 100 polls, for the connection quality figure.
    window: std::collections::VecDeque<bool>,
    /// A pushed point number (a plugin point's index) -> its index in `spec.points`.
    pushed_points: HashMap<u32, usize>,
    /// The values the device pushes, handed over by the poller this one replaces.
    pushes: Option<Pushes>,
}

/// The values a plugin device pushes (its receiver is taken once per driver).
type Pushes = tokio::sync::mpsc::UnboundedReceiver<Vec<crate::plugin::PushedValue>>;

impl Poller {
    fn new(collector: Arc<Collector>, spec: Arc<DeviceSpec>, driver: Arc<dyn Driver>, groups: Vec<PollGroup>) -> Self {
        let n = spec.points.len();
        let pushed_points = if spec.keeps_priorities() {
            spec.points.iter().enumerate().map(|(i, cp)| (u32::from(spec.point_of(cp).address), i)).collect()
        } else {
            HashMap::new()
        };
        Poller {
            collector,
            spec,
            driver,
            groups,
            last: vec![None; n],
            failures: 0,
            window: Default::default(),
            pushed_points,
            pushes: None,
        }
    }

    /// A poller that takes the pushed values `pushes` (its predecessor's) instead of the driver's.
    fn with_pushes(mut self, pushes: Option<Pushes>) -> Self {
        self.pushes = pushes;
        self
    }

    /// Polls until `stop`; returns the receiver of pushed values, for a poller that takes over.
    async fn run(mut self, stop: Arc<Notify>) -> Option<Pushes> {
        let mut pushes = self.pushes.take().or_else(|| self.driver.take_pushes());
        if self.groups.is_empty() {
            return pushes;
        }
        let start = Instant::now();
        let name = self.spec.config.name.clone();
        let mut due: Vec<Instant> = self.groups.iter().map(|g| start + phase(&name, g.interval)).collect();
        let offline_after = self.collector.cfg.offline_after_failures;
        loop {
            let (gi, at) = due.iter().enumerate().min_by_key(|(_, t)| **t).map(|(i, t)| (i, *t)).expect("groups");
            tokio::select! {
                _ = stop.notified() => return pushes,
                pushed = next_push(&mut pushes) => {
                    match pushed {
                        Some(values) => self.record_pushed(values).await,
                        None => pushes = None,
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(at) => {}
            }
            let offline = self.failures >= offline_after;
            let ok = self.poll(gi, offline).await;
            let now = Instant::now();
            if ok && offline {
                // Back online: every group polls in full now.
                due.fill(now);
            } else if ok {
                // Next tick of this group; skip ticks missed while polling.
                let g = &self.groups[gi];
                let mut next = due[gi] + g.interval;
                if next <= now {
                    next = now + g.interval;
                }
                due[gi] = next;
            } else {
                let retry = now + backoff(&self.collector.cfg, self.failures);
                if self.failures >= offline_after {
                    // Offline: only probes, one at a time, at the backoff interval.
                    for d in due.iter_mut() {
                        *d = retry.max(*d);
                    }
                    due[gi] = retry;
                } else {
                    due[gi] = retry.min(due[gi] + self.groups[gi].interval).max(now);
                }
            }
        }
    }

    /// Polls group `gi` (only its first request when probing an offline device); records samples
    /// and status. Returns whether the device answered.
    async fn poll(&mut self, gi: usize, probe: bool) -> bool {
        let unit = self.spec.config.unit_id;
        let plan = &self.groups[gi].plan;
        let batch = if probe { &plan[..1.min(plan.len())] } else { &plan[..] };
        let requests = batch.len();
        let t0 = Instant::now();
        let mut results = self.driver.read(unit, batch).await;
        // Busy devices get a few retries with backoff before their requests count as failed.
        for attempt in 0..3u32 {
            let busy: Vec<usize> = results
                .iter()
                .enumerate()
                .filter(|(_, r)| r.as_ref().is_err_and(|e| e.is_busy()))
                .map(|(i, _)| i)
                .collect();
            if busy.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            let retry: Vec<ReadRequest> = busy.iter().map(|&i| batch[i].clone()).collect();
            for (i, r) in busy.into_iter().zip(self.driver.read(unit, &retry).await) {
                results[i] = r;
            }
        }
        let rtt = t0.elapsed();
        let now = self.collector.clock.now_us();
        let reached = results.iter().any(|r| !r.as_ref().is_err_and(DriverError::is_unreachable));
        self.failures = if reached { 0 } else { self.failures.saturating_add(1) };
        let offline = self.failures >= self.collector.cfg.offline_after_failures;

        if !probe {
            let (samples, recorded) = self.samples(gi, &results, now);
            if !samples.is_empty() {
                match self.collector.sink.ingest(samples).await {
                    // Only what was stored counts as recorded for on-change recording.
                    Ok(()) => recorded.into_iter().for_each(|(i, r)| self.last[i] = Some(r)),
                    // The values are read again at the next poll; on-change points record them then.
                    Err(e) if e.is_retryable() => tracing::warn!(
                        device = %self.spec.config.name, error = %e,
                        "collected samples could not be stored now; the next poll records them"
                    ),
                    Err(e) => tracing::error!(
                        device = %self.spec.config.name, error = %e,
                        "collected samples were refused by storage"
                    ),
                }
            }
            self.split_refused(gi, &results);
        }

        self.window.push_back(reached);
        if self.window.len() > 100 {
            self.window.pop_front();
        }
        let quality = self.window.iter().filter(|&&b| b).count() as f64 / self.window.len() as f64;
        // The driver fails the rest of a batch with the error that cut it off: count that once.
        let mut errors: Vec<&DriverError> = Vec::new();
        for e in results.iter().filter_map(|r| r.as_ref().err()) {
            if !(e.is_unreachable() && errors.iter().any(|x| x.is_unreachable())) {
                errors.push(e);
            }
        }
        let was = self.collector.status.get(&self.spec.config.name).map(|s| s.state);
        let plugin_health = self.driver.reported_health();
        self.collector.status.update(&self.spec.config.name, |s| {
            s.polls += 1;
            if plugin_health.is_some() {
                s.plugin_health = plugin_health;
            }
            s.connection_quality = quality;
            for e in &errors {
                match e {
                    DriverError::Timeout(_) => s.timeouts += 1,
                    DriverError::Exception(_) => s.exceptions += 1,
                    DriverError::Protocol(_) => s.protocol_errors += 1,
                    DriverError::Connection(_) => s.connection_errors += 1,
                    _ => {}
                }
            }
            s.last_error = errors.first().map(|e| e.to_string()).or(s.last_error.take().filter(|_| !reached));
            if reached {
                s.last_seen = Some(now);
                s.consecutive_failures = 0;
                s.state = DeviceState::Online;
                s.online = true;
                let ms = rtt.as_secs_f64() * 1000.0 / requests.max(1) as f64;
                s.rtt_ms = Some(ms);
                s.rtt_avg_ms = Some(s.rtt_avg_ms.map_or(ms, |a| a * 0.9 + ms * 0.1));
            } else {
                s.failed_polls += 1;
                s.consecutive_failures = self.failures;
                if offline {
                    s.state = DeviceState::Offline;
                    s.online = false;
                }
            }
        });
        let is = self.collector.status.get(&self.spec.config.name).map(|s| s.state);
        if was != is {
            match is {
                Some(DeviceState::Offline) => tracing::warn!(
                    device = %self.spec.config.name,
                    error = errors.first().map(|e| e.to_string()).unwrap_or_default(),
                    "device offline"
                ),
                Some(DeviceState::Online) => tracing::info!(device = %self.spec.config.name, "device online"),
                _ => {}
            }
        }
        reached
    }

    /// A merged read that the device refused with "illegal data address" (one register in it may
    /// not exist on this firmware) is split into one request per point for later polls, so one
    /// missing register does not blank its neighbours.
    fn split_refused(&mut self, gi: usize, results: &[Result<RawData, DriverError>]) {
        let group = &mut self.groups[gi];
        let refused = |ri: usize| {
            matches!(results.get(ri), Some(Err(DriverError::Exception(ExceptionCode::ILLEGAL_DATA_ADDRESS))))
                && group.plan[ri].points.len() > 1
        };
        if !(0..group.plan.len()).any(refused) {
            return;
        }
        let mut plan = Vec::with_capacity(group.plan.len());
        for (ri, req) in group.plan.iter().enumerate() {
            if refused(ri) {
                plan.extend(req.points.iter().map(|&(item, _)| {
                    let it = group.items[item];
                    ReadRequest { kind: it.kind, start: it.address, count: it.count, points: vec![(item, 0)] }
                }));
            } else {
                plan.push(req.clone());
            }
        }
        tracing::info!(device = %self.spec.config.name, requests = plan.len(), "a block read was refused; reading its points one by one");
        group.plan = plan;
    }

    /// Records the values a device pushed (its subscriptions) like polled ones: through on-change
    /// recording, stamped by the device or now.
    async fn record_pushed(&mut self, values: Vec<crate::plugin::PushedValue>) {
        let now = self.collector.clock.now_us();
        let (mut out, mut recorded) = (Vec::new(), Vec::new());
        for v in values {
            let Some(&i) = self.pushed_points.get(&v.point) else { continue };
            let cp = &self.spec.points[i];
            let ts = if v.ts_us > 0 && v.ts_us <= now { v.ts_us } else { now };
            if should_record(&cp.record, self.last[i], v.value, v.quality, ts) {
                recorded.push((i, Recorded { value: v.value, quality: v.quality, ts }));
                out.push(Sample::new(cp.id, ts, v.value, v.quality));
            }
        }
        if out.is_empty() {
            return;
        }
        match self.collector.sink.ingest(out).await {
            Ok(()) => recorded.into_iter().for_each(|(i, r)| self.last[i] = Some(r)),
            Err(e) => tracing::warn!(device = %self.spec.config.name, error = %e, "pushed values could not be stored"),
        }
    }

    /// Turns the results of group `gi` into the samples to record, and what each recorded sample
    /// becomes for on-change recording once stored.
    fn samples(
        &self,
        gi: usize,
        results: &[Result<RawData, DriverError>],
        ts: i64,
    ) -> (Vec<Sample>, Vec<(usize, Recorded)>) {
        let (mut out, mut recorded) = (Vec::new(), Vec::new());
        for (i, value, quality) in self.groups[gi].decode(&self.spec, results) {
            let cp = &self.spec.points[i];
            if should_record(&cp.record, self.last[i], value, quality, ts) {
                recorded.push((i, Recorded { value, quality, ts }));
                out.push(Sample::new(cp.id, ts, value, quality));
            }
        }
        (out, recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;

    #[test]
    fn on_change_recording_follows_deadbands_heartbeat_and_quality() {
        let every = RecordConfig::default();
        let abs = RecordConfig { mode: RecordMode::Change, deadband: 0.5, ..Default::default() };
        let pct =
            RecordConfig { mode: RecordMode::Change, deadband_percent: 10.0, heartbeat_secs: 60, ..Default::default() };
        let exact = RecordConfig { mode: RecordMode::Change, ..Default::default() };
        let last = Some(Recorded { value: 20.0, quality: Quality::GOOD, ts: 0 });
        let s = 1_000_000;
        assert!(should_record(&every, last, 20.0, Quality::GOOD, s));
        assert!(should_record(&abs, None, 20.0, Quality::GOOD, s));
        assert!(!should_record(&abs, last, 20.5, Quality::GOOD, s));
        assert!(should_record(&abs, last, 20.51, Quality::GOOD, s));
        assert!(should_record(&abs, last, 19.4, Quality::GOOD, s));
        assert!(should_record(&abs, last, 20.0, Quality::GOOD_LOCAL_OVERRIDE, s));
        assert!(should_record(&abs, last, f64::NAN, Quality::BAD_COMM_FAILURE, s));
        assert!(!should_record(&pct, last, 21.9, Quality::GOOD, 59 * s));
        assert!(should_record(&pct, last, 22.1, Quality::GOOD, s));
        assert!(should_record(&pct, last, 20.0, Quality::GOOD, 60 * s));
        assert!(!should_record(&exact, last, 20.0, Quality::GOOD, s));
        assert!(should_record(&exact, last, 20.001, Quality::GOOD, s));
    }

    /// A device where register 5 does not exist: any read covering it is refused with exception 02.
    #[derive(Debug, Default)]
    struct Holey {
        reads: Mutex<Vec<(u16, u16)>>,
    }

    impl Driver for Holey {
        fn protocol(&self) -> &str {
            "test"
        }
        fn read<'a>(&'a self, _: u8, batch: &'a [ReadRequest]) -> BoxFuture<'a, Vec<Result<RawData, DriverError>>> {
            Box::pin(async move {
                batch
                    .iter()
                    .map(|r| {
                        self.reads.lock().push((r.start, r.count));
                        if (r.start..r.start + r.count).contains(&5) {
                            Err(DriverError::Exception(ExceptionCode::ILLEGAL_DATA_ADDRESS))
                        } else {
                            Ok(RawData::Words((r.start..r.start + r.count).collect()))
                        }
                    })
                    .collect()
            })
        }
        fn write<'a>(&'a self, _: u8, _: RegisterKind, _: u16, _: RawData) -> BoxFuture<'a, Result<(), DriverError>> {
            Box::pin(async { Err(DriverError::Invalid("read-only".into())) })
        }
        fn health(&self) -> crate::driver::ConnectionHealth {
            Default::default()
        }
    }

    #[derive(Debug, Default)]
    struct Sink(Mutex<Vec<Sample>>);

    impl SampleSink for Sink {
        fn ingest(&self, samples: Vec<Sample>) -> IngestFuture<'_> {
            self.0.lock().extend(samples);
            Box::pin(async { Ok(()) })
        }
    }

    #[tokio::test]
    async fn a_refused_block_read_is_split_so_one_missing_register_blanks_only_its_point() {
        let point = |address: u16| ProfilePoint {
            name: format!("R{address}"),
            point_type: PointType::Register,
            point_number: u32::from(address),
            kind: RegisterKind::Holding,
            address,
            codec: Codec::new(crate::codec::ValueType::U16),
            writable: false,
            unit: None,
            description: String::new(),
            auto_manual: None,
            range: None,
            analog_digital: None,
            plugin: None,
        };
        let profile = Profile {
            name: "holey".into(),
            description: String::new(),
            product_models: Vec::new(),
            limits: Limits::default(),
            points: [3, 4, 5, 6].into_iter().map(point).collect(),
        };
        let config: DeviceConfig = serde_json::from_value(serde_json::json!({
            "name": "d", "protocol": "modbus-tcp", "ip_address": "x", "unit_id": 1, "profile": "holey"
        }))
        .unwrap();
        let spec = DeviceSpec::new(config, Arc::new(profile), |p| u32::from(p.address)).unwrap();
        let sink = Arc::new(Sink::default());
        let collector = Collector::new(CollectorConfig::default(), sink.clone(), Arc::new(t3_core::clock::SystemClock));
        let driver = Arc::new(Holey::default());
        let mut poller = Poller::new(collector, Arc::new(spec.clone()), driver.clone(), poll_groups(&spec).unwrap());
        poller.collector.status.devices.write().insert("d".into(), test_status());
        assert!(poller.poll(0, false).await, "an exception proves the device is alive");
        assert!(poller.poll(0, false).await);
        assert_eq!(*driver.reads.lock(), vec![(3, 4), (3, 1), (4, 1), (5, 1), (6, 1)]);
        let samples = sink.0.lock().clone();
        let (first, second) = samples.split_at(4);
        assert!(first.iter().all(|s| s.quality == Quality::BAD_CONFIG_ERROR && s.value.is_nan()), "{first:?}");
        let by_id: HashMap<u32, &Sample> = second.iter().map(|s| (s.point_id.0, s)).collect();
        assert_eq!((by_id[&3].value, by_id[&4].value, by_id[&6].value), (3.0, 4.0, 6.0));
        assert_eq!(by_id[&5].quality, Quality::BAD_CONFIG_ERROR);
        assert!(second.iter().filter(|s| s.point_id.0 != 5).all(|s| s.quality == Quality::GOOD));
    }

    fn test_status() -> DeviceStatus {
        DeviceStatus::new("d", "test", String::new(), 1, "holey", DeviceState::Connecting)
    }

    #[test]
    fn phases_spread_within_the_interval_and_are_stable() {
        let i = Duration::from_secs(1);
        let phases: Vec<_> = (0..100).map(|n| phase(&format!("dev-{n}"), i)).collect();
        assert!(phases.iter().all(|p| *p < i));
        assert_eq!(phase("dev-1", i), phase("dev-1", i));
        let distinct: std::collections::BTreeSet<_> = phases.iter().collect();
        assert!(distinct.len() > 80, "phases cluster: {} distinct of 100", distinct.len());
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let cfg = CollectorConfig { backoff_initial_ms: 100, backoff_max_ms: 1000, ..Default::default() };
        for n in 1..40 {
            let base = (100u64 << (n - 1).min(30)).min(1000) as f64;
            let d = backoff(&cfg, n).as_millis() as f64;
            assert!(d >= base * 0.8 - 1.0 && d <= base * 1.2, "retry {n}: {d} ms vs base {base}");
        }
    }
}
