//! Control programs and trend logs.

use serde::{Deserialize, Serialize};

/// A program (stored): T3000 control-language source for a device.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Program {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    /// The device it belongs to, if any.
    pub device_id: Option<i64>,
    /// The program text.
    pub source: String,
    /// `stopped` (programs do not run on the server yet).
    pub status: String,
    pub updated_us: i64,
}

record!(Program, "program");

/// A trend log (stored).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrendLog {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    /// At most 64 points.
    pub point_ids: Vec<u32>,
    /// Sampling interval of the log, 1 s ..= 24 h.
    pub interval_ms: u64,
    /// The time range a chart of this log opens with, as a span back from now (`24h`, `7d`, `365d`).
    #[serde(default)]
    pub range: Option<String>,
    pub updated_us: i64,
}

record!(TrendLog, "trendlog");
