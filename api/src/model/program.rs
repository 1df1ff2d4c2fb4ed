//! Control programs and trend logs.

use serde::{Deserialize, Serialize};

/// A program (stored): Control BASIC source for a device, run by the server while enabled
/// (`service::programs`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Program {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    /// The device it belongs to: point names without a panel prefix are this device's. Programs
    /// stored before programs ran may have none; they cannot run until they get one.
    pub device_id: Option<i64>,
    /// The program text.
    pub source: String,
    /// Whether the server runs it on every scan. Imported programs are stored disabled (the panel
    /// may still run its own copy); records stored before programs ran load as disabled.
    #[serde(default)]
    pub enabled: bool,
    /// What records stored before programs ran kept (`stopped`); read, never shown: the status
    /// the API shows is the runner's ([`ProgramView::status`]).
    #[serde(default = "stopped")]
    pub status: String,
    pub updated_us: i64,
    /// What a T3 panel keeps of the program, when it came from a T3000 `.prog` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t3000: Option<PanelProgram>,
}

record!(Program, "program");

fn stopped() -> String {
    "stopped".into()
}

/// A program as the API shows it: the stored record with what the runner knows of it now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProgramView {
    pub id: i64,
    pub name: String,
    pub device_id: Option<i64>,
    pub source: String,
    pub enabled: bool,
    /// `running` (enabled, scanned every `programs.scan_ms`), `stopped` (disabled) or `error`
    /// (it stopped with `error`: enable it again or change it to start it afresh; or, when the
    /// error names a point without a value, it waits for that value and runs on by itself).
    pub status: String,
    /// Why it stopped (a run-time error), or why it cannot start (its text does not bind: a
    /// point or label gone, its device not polled); shown for a disabled program too, whose
    /// status stays `stopped`; null otherwise.
    pub error: Option<ProgramErrorView>,
    /// When it was last scanned (RFC 3339, UTC); null before its first scan since the server
    /// started.
    pub last_scan: Option<String>,
    /// How long its last scan took, in microseconds (writes to devices not included).
    pub scan_us: Option<u64>,
    /// Scans since the server started (or since it was last started afresh).
    pub scans: u64,
    /// The points it reads and writes, resolved against its device when it was last started.
    pub reads: Vec<PointUse>,
    pub writes: Vec<PointUse>,
    pub updated_us: i64,
    /// What a T3 panel keeps of it, for programs imported from a `.prog` file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t3000: Option<PanelProgram>,
    /// Only in the answer to enabling a program imported from a panel: whether the panel's own
    /// copy was stopped (`PRG2 is stopped on the panel ...`) or why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panel: Option<String>,
}

/// Where and why a program stopped or cannot start.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ProgramErrorView {
    /// The BASIC line number (`30` of `30 VAR1 = 1 / 0`); 0 before any line ran.
    pub line_number: u16,
    /// The line (1-based) of the text.
    pub line: u32,
    /// The column (1-based, in characters) of the text.
    pub column: u32,
    pub message: String,
}

/// A point a program reads or writes.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PointUse {
    pub point_id: u32,
    /// `IN1`, `OUT3`, `VAR12`.
    pub name: String,
    /// The label people gave it, else its panel's; null when none.
    pub label: Option<String>,
}

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
