//! The protocol-neutral driver interface the collector polls through.
//!
//! A [`Driver`] is one channel to the field: a Modbus TCP connection, a Modbus RTU bus shared by
//! several units, or a plugin device. The collector hands it planned read requests and gets raw
//! words or bits back (Modbus), or values with their quality (plugins, whose "registers" are point
//! indexes); decoding words with the profile's codecs is the collector's business, so every driver
//! reports values the same way.

use crate::codec::RegisterKind;
use crate::planner::ReadRequest;
use futures::future::BoxFuture;
use std::fmt;
use std::time::Duration;
use t3_core::Quality;

/// What one read request returned.
#[derive(Debug, Clone, PartialEq)]
pub enum RawData {
    /// Holding or input registers.
    Words(Vec<u16>),
    /// Coils or discrete inputs.
    Bits(Vec<bool>),
    /// Values a plugin read, one per point index, with the quality the device reported.
    Values(Vec<(f64, Quality)>),
}

impl RawData {
    pub fn len(&self) -> usize {
        match self {
            RawData::Words(w) => w.len(),
            RawData::Bits(b) => b.len(),
            RawData::Values(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A Modbus exception code (function code with the high bit set in the reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExceptionCode(pub u8);

impl ExceptionCode {
    pub const ILLEGAL_FUNCTION: ExceptionCode = ExceptionCode(0x01);
    pub const ILLEGAL_DATA_ADDRESS: ExceptionCode = ExceptionCode(0x02);
    pub const ILLEGAL_DATA_VALUE: ExceptionCode = ExceptionCode(0x03);
    pub const SERVER_DEVICE_FAILURE: ExceptionCode = ExceptionCode(0x04);
    pub const ACKNOWLEDGE: ExceptionCode = ExceptionCode(0x05);
    pub const SERVER_DEVICE_BUSY: ExceptionCode = ExceptionCode(0x06);
    pub const GATEWAY_PATH_UNAVAILABLE: ExceptionCode = ExceptionCode(0x0A);
    pub const GATEWAY_TARGET_FAILED: ExceptionCode = ExceptionCode(0x0B);

    pub fn name(self) -> &'static str {
        match self.0 {
            0x01 => "illegal function",
            0x02 => "illegal data address",
            0x03 => "illegal data value",
            0x04 => "server device failure",
            0x05 => "acknowledge",
            0x06 => "server device busy",
            0x08 => "memory parity error",
            0x0A => "gateway path unavailable",
            0x0B => "gateway target device failed to respond",
            _ => "unknown exception",
        }
    }

    /// The device behind a gateway did not answer: the device is offline, not the gateway.
    pub fn is_gateway(self) -> bool {
        matches!(self, Self::GATEWAY_PATH_UNAVAILABLE | Self::GATEWAY_TARGET_FAILED)
    }
}

impl fmt::Display for ExceptionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exception {:#04x} ({})", self.0, self.name())
    }
}

/// Why a driver operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// No answer within the timeout; the connection was closed so a late answer cannot be mistaken
    /// for the next one.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The connection could not be opened or broke.
    #[error("connection failed: {0}")]
    Connection(String),
    /// The answer was not a valid reply to the request (wrong transaction id, unit, function, CRC,
    /// length); the connection was closed.
    #[error("invalid reply: {0}")]
    Protocol(String),
    /// The device answered with a Modbus exception.
    #[error("device answered with {0}")]
    Exception(ExceptionCode),
    /// The request cannot be expressed (for example a value that does not fit the register).
    #[error("{0}")]
    Invalid(String),
    /// A write was read back with a different value.
    #[error("write not confirmed: wrote {written}, read back {read_back}")]
    NotConfirmed { written: String, read_back: String },
    /// The point is in auto: its controller's program owns the value, so a write would be
    /// overwritten. Switch it to manual first.
    #[error("point is in auto mode; switch it to manual to write it")]
    InAuto,
    /// A plugin device answered with an error (refused, rejected or aborted the request).
    #[error("device refused: {0}")]
    Device(String),
    /// A plugin broke its side of the ABI (panicked, answered garbage, hung): its device counts as
    /// unreachable until the plugin answers properly.
    #[error("plugin failed: {0}")]
    Plugin(String),
}

impl DriverError {
    /// The quality a sample gets when reading it failed with this error; never a made-up value.
    pub fn quality(&self) -> Quality {
        match self {
            DriverError::Timeout(_) | DriverError::Connection(_) | DriverError::Protocol(_) => {
                Quality::BAD_COMM_FAILURE
            }
            DriverError::Exception(c) if c.is_gateway() => Quality::BAD_COMM_FAILURE,
            DriverError::Exception(
                ExceptionCode::ILLEGAL_FUNCTION
                | ExceptionCode::ILLEGAL_DATA_ADDRESS
                | ExceptionCode::ILLEGAL_DATA_VALUE,
            ) => Quality::BAD_CONFIG_ERROR,
            DriverError::Exception(_) | DriverError::Device(_) | DriverError::Plugin(_) => Quality::BAD_DEVICE_FAILURE,
            DriverError::Invalid(_) => Quality::BAD_CONFIG_ERROR,
            DriverError::NotConfirmed { .. } | DriverError::InAuto => Quality::BAD,
        }
    }

    /// The device could not be reached (counts towards marking it offline). An exception from the
    /// device itself proves it is alive; a gateway exception means the device behind it is not.
    pub fn is_unreachable(&self) -> bool {
        match self {
            DriverError::Timeout(_)
            | DriverError::Connection(_)
            | DriverError::Protocol(_)
            | DriverError::Plugin(_) => true,
            DriverError::Exception(c) => c.is_gateway(),
            _ => false,
        }
    }

    /// Worth retrying soon with backoff (the device said it is busy).
    pub fn is_busy(&self) -> bool {
        matches!(self, DriverError::Exception(ExceptionCode::SERVER_DEVICE_BUSY | ExceptionCode::ACKNOWLEDGE))
    }

    /// A short machine-readable kind for status counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            DriverError::Timeout(_) => "timeout",
            DriverError::Connection(_) => "connection",
            DriverError::Protocol(_) => "protocol",
            DriverError::Exception(_) => "exception",
            DriverError::Invalid(_) => "invalid",
            DriverError::NotConfirmed { .. } => "not_confirmed",
            DriverError::InAuto => "in_auto",
            DriverError::Device(_) => "device",
            DriverError::Plugin(_) => "plugin",
        }
    }
}

/// The state of a driver's connection, for device status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionHealth {
    /// A connection is open now (always true for a serial bus that is open).
    pub connected: bool,
    /// Connections opened since the driver was created.
    pub connects: u64,
    /// Requests answered (including exception answers).
    pub answered: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Connection failures and invalid replies.
    pub failures: u64,
}

/// What a unit reported when it was probed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnitIdentity {
    pub unit_id: u8,
    /// Registers 0-3: serial number, one byte per register, lowest byte first.
    pub serial_number: u32,
    /// Register 4: firmware version.
    pub firmware: u16,
    /// Register 7: product model.
    pub product_model: u16,
    /// Register 8: hardware revision.
    pub hardware_rev: u16,
}

impl UnitIdentity {
    /// Decodes Temco's device header (holding registers 0..=8).
    pub fn from_header(unit_id: u8, words: &[u16]) -> Option<UnitIdentity> {
        if words.len() < 9 {
            return None;
        }
        Some(UnitIdentity {
            unit_id,
            // One byte per register, as the firmware sends them and T3000 reads them
            // (`get_serialnumber`: reg0 + reg1 * 256 + reg2 * 256^2 + reg3 * 256^3).
            serial_number: u32::from_le_bytes([words[0] as u8, words[1] as u8, words[2] as u8, words[3] as u8]),
            firmware: words[4],
            product_model: words[7],
            hardware_rev: words[8],
        })
    }
}

/// The header every Temco device answers at holding registers 0..=8.
pub const HEADER: ReadRequest = ReadRequest { kind: RegisterKind::Holding, start: 0, count: 9, points: Vec::new() };

/// One channel to field devices. Object safe: the collector holds `Arc<dyn Driver>`.
pub trait Driver: Send + Sync + fmt::Debug {
    /// `modbus-tcp`, `modbus-rtu`, or a plugin's name.
    fn protocol(&self) -> &str;

    /// Reads a planned batch from `unit`, one result per request, in order. When the device stops
    /// answering mid-batch the remaining requests fail at once with the same error instead of each
    /// waiting out its own timeout.
    fn read<'a>(&'a self, unit: u8, batch: &'a [ReadRequest]) -> BoxFuture<'a, Vec<Result<RawData, DriverError>>>;

    /// Writes `data` at `address` of `unit` (coils or holding registers).
    fn write<'a>(
        &'a self,
        unit: u8,
        kind: RegisterKind,
        address: u16,
        data: RawData,
    ) -> BoxFuture<'a, Result<(), DriverError>>;

    /// Probes each unit id for a Temco header; units that do not answer are left out.
    fn discover<'a>(&'a self, units: &'a [u8]) -> BoxFuture<'a, Vec<UnitIdentity>> {
        Box::pin(async move {
            let mut found = Vec::new();
            for &unit in units {
                let res = self.read(unit, std::slice::from_ref(&HEADER)).await;
                if let Some(Ok(RawData::Words(w))) = res.into_iter().next()
                    && let Some(id) = UnitIdentity::from_header(unit, &w)
                {
                    found.push(id);
                }
            }
            found
        })
    }

    /// Commands `value` (none: relinquishes) at `priority` (1 ..= 16) to point `point` of a device
    /// that keeps a priority array of its own (plugins: BACnet's). Modbus devices have none.
    fn write_point<'a>(
        &'a self,
        _point: u32,
        _value: Option<f64>,
        _priority: u8,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async { Err(DriverError::Invalid("this device is written by register".into())) })
    }

    /// The values the device pushes by itself (subscriptions), taken once by the poller.
    fn take_pushes(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Vec<crate::plugin::PushedValue>>> {
        None
    }

    /// The connection's state and counters.
    fn health(&self) -> ConnectionHealth;

    /// What the driver's own code reports of the connection (a plugin's `health` answer), as is.
    fn reported_health(&self) -> Option<serde_json::Value> {
        None
    }
}
