//! Simulated Temco devices: register banks that behave like a building, served over Modbus TCP,
//! Modbus RTU and T3000's UDP LAN scan, with faults that can be switched per device at run time.
//!
//! Used by `t3000 simulate`, by `t3000 demo` (a simulated building) and by the tests.
//!
//! # Data flow
//! A [`Simulator`] owns a set of [`SimDevice`]s, each built from a [`SimDeviceSpec`] and a profile of
//! the [`ProfileLibrary`]. Transports turn bytes into a unit id and a tokio-modbus [`Request`]; the
//! simulator picks the device by unit id, applies its [`Fault`] and lets the device answer from its
//! registers. [`Simulator::tick`] advances the behaviour model (room temperatures following the time of
//! day and the heating outputs, humidity, CO2, digital inputs that toggle now and then, counters) and
//! writes the new values into the registers; it is deterministic given the seeds and the tick times.
//!
//! # Layout
//! - `device`: one device's register banks, the request handler, writes as a device takes them.
//! - `model`: the behaviour model (point roles, the building physics, the clock arithmetic).
//! - `tcp`: Modbus TCP on tokio-modbus's server, with a stream wrapper for byte-level faults.
//! - `rtu`, `frame`: Modbus RTU with our own framing (so CRC errors and garbage can be sent), and
//!   pseudo-terminal pairs so RTU needs no hardware.
//! - [`scan`]: T3000's UDP scan request and reply (layout from the T3 firmware), shared with discovery.
//! - `udp`: the simulator's answer to the scan.
//!
//! # Faults
//! | fault | TCP | RTU |
//! |---|---|---|
//! | `no_answer` | request swallowed | request swallowed |
//! | `late_answer` | answer after `delay_ms` (the connection is served in order, so later requests wait) | same |
//! | `exception` | exception `code` | exception `code` |
//! | `drop_connection` | the connection is closed, no answer | no answer (a serial line cannot be dropped) |
//! | `garbage` | random bytes that no client decodes (non-zero protocol id) | random bytes with a bad CRC |
//! | `crc_error` | like `garbage` (TCP frames carry no CRC) | the real answer with its CRC inverted |
//!
//! A device under `late_answer`, `garbage` or `crc_error` has done what the request asked (a write
//! happened, only the answer is late or damaged); under `no_answer`, `exception` and
//! `drop_connection` it has not. A device under `no_answer` does not answer the UDP scan either.
//! Unknown unit ids: TCP answers exception 0x0B like a gateway, RTU stays silent like a bus.

mod device;
mod frame;
mod model;
mod rtu;
pub mod scan;
mod tcp;
mod udp;

#[cfg(test)]
mod tests;

pub use device::{PointError, SimDevice};
pub use scan::{SCAN_PORT, SCAN_REQUEST, ScanReply, parse_scan_reply};

use crate::profile::ProfileLibrary;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;
use tokio_modbus::{ExceptionCode, Request, Response};

/// How a device misbehaves; switchable at run time with [`SimDevice::set_fault`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Answers correctly.
    #[default]
    None,
    /// Swallows every request.
    NoAnswer,
    /// Answers after `delay_ms`, so a client that timed out sees the answer late.
    LateAnswer { delay_ms: u64 },
    /// Answers every request with this exception code (01, 02, 03, 04, 06 busy, 0x0A, 0x0B, ...).
    Exception { code: u8 },
    /// TCP: closes the connection on the next request. RTU: no answer.
    DropConnection,
    /// Answers with random bytes that are not a valid frame.
    Garbage,
    /// RTU: a valid answer with a wrong CRC. TCP: like [`Fault::Garbage`].
    CrcError,
}

/// One simulated device, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimDeviceSpec {
    /// Shown as the panel name (UDP scan, string registers named like a name).
    pub name: String,
    /// Modbus unit id, 1..=247.
    pub unit_id: u8,
    /// A profile name of the [`ProfileLibrary`], e.g. `T3-controller`.
    pub profile: String,
    pub serial_number: u32,
    /// Seeds the behaviour model; equal seeds and tick times give equal values.
    #[serde(default)]
    pub seed: u64,
}

impl SimDeviceSpec {
    pub fn new(
        name: impl Into<String>,
        unit_id: u8,
        profile: impl Into<String>,
        serial_number: u32,
        seed: u64,
    ) -> Self {
        SimDeviceSpec { name: name.into(), unit_id, profile: profile.into(), serial_number, seed }
    }
}

/// What went wrong setting up or driving the simulator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The spec names a profile the library does not have.
    #[error("device `{device}`: unknown profile `{profile}`")]
    UnknownProfile { device: String, profile: String },
    /// Two specs share a unit id.
    #[error("unit id {unit_id} is used by both `{first}` and `{second}`")]
    DuplicateUnitId { unit_id: u8, first: String, second: String },
    /// 0 is the RTU broadcast address and 248-255 are reserved.
    #[error("device `{device}`: unit id {unit_id} is outside 1..=247")]
    InvalidUnitId { device: String, unit_id: u8 },
    /// A point name or value the device cannot take (see [`PointError`]).
    #[error(transparent)]
    Point(#[from] PointError),
}

pub type Result<T, E = SimError> = std::result::Result<T, E>;

/// What a device does with one request, decided before any byte is sent.
#[derive(Debug)]
pub(crate) enum Outcome {
    Reply(std::result::Result<Response, ExceptionCode>),
    Silent,
    Late(Duration, std::result::Result<Response, ExceptionCode>),
    Drop,
    Garbage(std::result::Result<Response, ExceptionCode>),
    CrcError(std::result::Result<Response, ExceptionCode>),
}

/// A set of simulated devices (unique unit ids) that can be served on any number of transports at
/// once; all transports see the same registers.
#[derive(Debug)]
pub struct Simulator {
    /// In spec order; the first one is the "panel" the UDP scan reports the others behind.
    devices: Vec<Arc<SimDevice>>,
    by_unit: HashMap<u8, usize>,
    /// The Modbus TCP endpoint the UDP scan reports: (address, set explicitly).
    scan_endpoint: Mutex<(Option<SocketAddr>, bool)>,
    /// Seeds per-connection randomness (garbage bytes), deterministic per simulator.
    connections: AtomicU64,
}

impl Simulator {
    /// Builds the devices. Fails on an unknown profile, a unit id outside 1..=247 or a duplicate
    /// unit id, naming the device.
    pub fn new(specs: Vec<SimDeviceSpec>) -> Result<Arc<Simulator>> {
        let library = ProfileLibrary::builtin();
        let mut devices: Vec<Arc<SimDevice>> = Vec::with_capacity(specs.len());
        let mut by_unit: HashMap<u8, usize> = HashMap::new();
        for spec in specs {
            if !(1..=247).contains(&spec.unit_id) {
                return Err(SimError::InvalidUnitId { device: spec.name, unit_id: spec.unit_id });
            }
            if let Some(&i) = by_unit.get(&spec.unit_id) {
                let first = &devices[i];
                return Err(SimError::DuplicateUnitId {
                    unit_id: spec.unit_id,
                    first: first.name().to_owned(),
                    second: spec.name,
                });
            }
            let Some(profile) = library.get(&spec.profile) else {
                return Err(SimError::UnknownProfile { device: spec.name, profile: spec.profile });
            };
            by_unit.insert(spec.unit_id, devices.len());
            devices.push(Arc::new(SimDevice::new(spec, profile)));
        }
        Ok(Arc::new(Simulator {
            devices,
            by_unit,
            scan_endpoint: Mutex::new((None, false)),
            connections: AtomicU64::new(0),
        }))
    }

    pub fn device(&self, unit_id: u8) -> Option<Arc<SimDevice>> {
        self.by_unit.get(&unit_id).map(|&i| Arc::clone(&self.devices[i]))
    }

    /// All devices, in spec order.
    pub fn devices(&self) -> Vec<Arc<SimDevice>> {
        self.devices.clone()
    }

    /// Advances every device's behaviour model to `now` (Unix seconds) and writes the new values
    /// into the registers. Deterministic given the seeds and the sequence of tick times; a time not
    /// after the previous tick changes nothing.
    pub fn tick(&self, now_unix_s: f64) {
        // The simulated building keeps UTC as its local time (the demo building's time zone):
        // its warm afternoons and occupied hours are UTC's.
        for d in &self.devices {
            d.tick(now_unix_s, 0.0);
        }
    }

    /// Ticks with the wall clock every `period` (first tick at once) until the handle is aborted.
    pub fn spawn_behaviour(self: &Arc<Self>, period: Duration) -> JoinHandle<()> {
        let sim = Arc::clone(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
                sim.tick(now);
            }
        })
    }

    /// Sets the Modbus TCP endpoint the UDP scan reports (otherwise the first `serve_tcp` listener's
    /// address, or 127.0.0.1:502).
    pub fn set_scan_endpoint(&self, addr: SocketAddr) {
        *self.scan_endpoint.lock() = (Some(addr), true);
    }

    fn advertise_default(&self, addr: SocketAddr) {
        let mut ep = self.scan_endpoint.lock();
        if ep.0.is_none() && !ep.1 {
            ep.0 = Some(addr);
        }
    }

    fn next_connection_seed(&self) -> u64 {
        let n = self.connections.fetch_add(1, Ordering::Relaxed);
        self.devices.first().map_or(0, |d| d.spec().seed) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Modbus TCP: unknown units answer 0x0B; 0 and 255 reach a lone device.
    fn dispatch_tcp(&self, unit: u8, request: &Request<'_>) -> Outcome {
        let device = match self.device(unit) {
            Some(d) => d,
            None if (unit == 0 || unit == 255) && self.devices.len() == 1 => Arc::clone(&self.devices[0]),
            None => return Outcome::Reply(Err(ExceptionCode::GatewayTargetDevice)),
        };
        device.outcome(Ok(request))
    }

    /// Modbus RTU: unknown units get no answer (`None`).
    fn dispatch_rtu(&self, unit: u8, request: std::result::Result<Request<'_>, ExceptionCode>) -> Option<Outcome> {
        let device = self.device(unit)?;
        Some(device.outcome(request.as_ref().map_err(|e| *e)))
    }

    /// An RTU broadcast (unit 0): every device that is answering at all takes the write.
    fn broadcast(&self, request: &Request<'_>) {
        if device::is_write(request) {
            for d in &self.devices {
                let _ = d.outcome(Ok(request));
            }
        }
    }
}
