//! Devices: how each is reached and polled, where it is, and the points it is polled for.

use serde::{Deserialize, Serialize};
use t3_core::config::DeviceConfig;

/// A device (stored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRecord {
    #[serde(default)]
    pub id: i64,
    pub config: DeviceConfig,
    pub building_id: Option<i64>,
    pub floor_id: Option<i64>,
    pub room_id: Option<i64>,
    pub description: Option<String>,
    /// `config` (from the configuration file) or `api`.
    pub source: String,
}

record!(DeviceRecord, "device");

/// A point of a device as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DevicePoint {
    /// Stored point id (history, live value, export).
    pub id: u32,
    /// `IN1`, `OUT3`, `VAR12`, or the register name of a library product.
    pub name: String,
    /// What Temco's register library says about a library register; none for T3 points (their panel
    /// keeps their descriptions) and registers the library leaves blank.
    pub description: Option<String>,
    /// `input`, `output`, `variable` or `register`.
    pub point_type: String,
    pub point_number: u32,
    /// Modbus table: `holding`, `input`, `coil` or `discrete_input`; `plugin` for a point of a
    /// plugin device.
    pub register_kind: String,
    /// The register address; a plugin point's index in its device's point list.
    pub address: u16,
    /// The register encoding, e.g. `i32 ABCD /1000`; a plugin point's kind (`analog`, `digital`,
    /// `multistate`).
    pub encoding: String,
    /// Where a plugin point lives in its protocol's terms (BACnet: `analog-input,1`); null for
    /// Modbus points.
    pub object: Option<String>,
    /// The names of a plugin point's states (digital: inactive then active; multistate: state 1
    /// first); empty otherwise.
    pub states: Vec<String>,
    pub writable: bool,
    pub unit: Option<String>,
    /// The point's own poll interval (its device's, or the point's override); trend logs may poll
    /// it faster (GET /points: `recording`).
    pub poll_interval_ms: u64,
    /// Whether the point has an auto/manual switch at its controller (T3 inputs, outputs and
    /// variables): `POST /api/t3000/points/{id}/mode` changes it.
    pub has_auto_manual: bool,
    /// Measurement, setpoint / command or configuration.
    pub class: crate::model::point::PointClass,
    /// The lowest value a write may carry as the profile says (the register's format, a range
    /// its library description states); null when nothing bounds it. The device's range code
    /// may narrow it (GET /points).
    pub min: Option<f64>,
    /// The highest value a write may carry as the profile says; null when nothing bounds it.
    pub max: Option<f64>,
}
