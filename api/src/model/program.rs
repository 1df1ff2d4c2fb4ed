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
    /// What a T3 panel keeps of the program, when it came from a T3000 `.prog` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t3000: Option<PanelProgram>,
}

record!(Program, "program");

/// A program as a T3 panel keeps it: its compiled Control BASIC, verbatim (the panel's 2000-byte code
/// block), and its state on the panel when the file was saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PanelProgram {
    /// The panel's program number (1..=16): `PRG1`.
    pub number: u16,
    /// Label and full label on the panel.
    pub label: String,
    pub description: String,
    /// Size of the compiled code in bytes, as the panel states it.
    pub code_bytes: u16,
    /// The whole 2000-byte code block, hex (4000 characters).
    pub code_hex: String,
    /// `on` or `off` on the panel.
    pub panel_status: String,
    /// `auto` or `manual` on the panel.
    pub auto_manual: String,
}

/// A trend log (stored): T3000's monitor. Its points are recorded at least every `interval_ms`
/// (every poll, or on change past `deadband`) for as long as it exists; a point in several trend
/// logs is recorded at the fastest interval, every sample if any of them wants every sample, else
/// with the smallest deadband (see `service::trendlogs`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrendLog {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    /// At most 64 points.
    pub point_ids: Vec<u32>,
    /// The log records its points at least this often, 1 s ..= 24 h (their polling gets faster
    /// where it was slower, never slower).
    pub interval_ms: u64,
    /// Record a polled value only when it moved past `deadband` since the last recorded one
    /// (false: every polled value).
    #[serde(default)]
    pub on_change: bool,
    /// The deadband of on-change recording, absolute, in each point's units (0: any change);
    /// unused without `on_change`.
    #[serde(default)]
    pub deadband: f64,
    /// The time range a chart of this log opens with, as a span back from now (`24h`, `7d`, `365d`).
    #[serde(default)]
    pub range: Option<String>,
    pub updated_us: i64,
}

record!(TrendLog, "trendlog");
