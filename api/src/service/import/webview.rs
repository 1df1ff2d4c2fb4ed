//! Import of a T3000 WebView database (`webview_t3_device.db`, SQLite): its buildings, floors and
//! rooms, devices, points (labels, units), trend logs, and the history WebView recorded.
//!
//! # What WebView writes (temcocontrols/T3000Webview, `api/src`)
//! - `DEVICES` (key `SerialNumber`) holds `MainBuilding_Name`, `Floor_Name`, `Room_Name`,
//!   `Product_Name`, `show_label_name`, `ip_address`, `modbus_port`, `modbus_address`;
//!   `INPUTS` / `OUTPUTS` / `VARIABLES` one row per point (`InputId` "IN1", `Label`, `Full_Label`,
//!   `Units`, `Digital_Analog` "1" analog, "0" digital); `TRENDLOGS` and `TRENDLOG_INPUTS` T3000's
//!   monitors and the points they log (`Point_Type` INPUT / OUTPUT / VARIABLE, `Point_Index` the
//!   index the point tables use).
//! - History: `TRENDLOG_DATA` one parent row per trended point (`SerialNumber`, `PointId` "IN1",
//!   `PointType`, `Digital_Analog`), `TRENDLOG_DATA_DETAIL` one row per point per poll
//!   (`ParentId`, `Value` TEXT, `LoggingTime_Fmt` "YYYY-MM-DD HH:MM:SS"; no id column, the rowid
//!   orders the rows). `Value` is the number T3000's LOGGING_DATA reported, `f64::to_string`ed:
//!   analog values x 1000; WebView's own chart divides by 1000 except for digital variables, whose
//!   raw value it shows (`TrendChartContent.tsx`). `LoggingTime_Fmt` is the local time of the PC
//!   WebView ran on (`format_unix_timestamp_to_local`), so the import takes that time zone.
//!
//! # How the import works
//! The file is opened read-only and its schema checked first: a table or column the importer
//! needs that is missing is an error naming it, before anything is read or created. A preview
//! lists what would be created; applying creates the places, the devices (Modbus TCP, profile
//! `T3-controller`, **disabled** unless asked: they point at real controllers' addresses), the
//! points' labels and units, the trend logs (through [`TrendLogs::store`], so their points are recorded as they say), and then stores the history
//! through the normal ingest path (`Storage::ingest`, the path of `POST /api/t3000/samples`,
//! durable at the configured acknowledgement) in batches, in rowid order.
//!
//! The history is a job kept in the catalog ([`WebviewImportJob`]), keyed by the file's SHA-256 and
//! size, with a cursor: the last detail rowid whose batch was durably stored. Importing the same
//! file again after an interruption continues after the cursor. A batch stored again after a crash
//! between the store and the cursor's update lands on the same (point, time stamp), which storage
//! keeps once, so every sample ends up stored exactly once.

use crate::model::device::DeviceRecord;
use crate::model::place::{Building, Floor, Room};
use crate::model::point::PointRecord;
use crate::model::program::TrendLog;
use crate::model::webview::WebviewImportJob;
use crate::service::Issuer;
use crate::service::audit::AuditLog;
use crate::service::devices::{DeviceError, Devices};
use crate::service::registry::Registry;
use crate::service::trendlogs::TrendLogs;
use parking_lot::Mutex;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use t3_core::config::{Config, DeviceConfig};
use t3_core::schedule::Tz;
use t3_core::{PointId, Quality, Sample};
use t3_drivers::profile::{ProfileLibrary, T3_CONTROLLER};
use t3_storage::Storage;
use t3_storage::catalog::Catalog;

/// What the import needs of the file: these tables with at least these columns.
pub const REQUIRED: &[(&str, &[&str])] = &[
    (
        "DEVICES",
        &[
            "SerialNumber",
            "PanelId",
            "MainBuilding_Name",
            "Building_Name",
            "Floor_Name",
            "Room_Name",
            "Product_Name",
            "Bautrate",
            "ip_address",
            "modbus_address",
            "modbus_port",
            "show_label_name",
        ],
    ),
    ("INPUTS", &["SerialNumber", "InputId", "Input_Index", "Full_Label", "Label", "Units", "Digital_Analog"]),
    ("OUTPUTS", &["SerialNumber", "OutputId", "Output_Index", "Full_Label", "Label", "Units", "Digital_Analog"]),
    ("VARIABLES", &["SerialNumber", "VariableId", "Variable_Index", "Full_Label", "Label", "Units", "Digital_Analog"]),
    ("TRENDLOGS", &["SerialNumber", "Trendlog_ID", "Trendlog_Label", "Interval_Seconds"]),
    ("TRENDLOG_INPUTS", &["SerialNumber", "Trendlog_ID", "Point_Type", "Point_Index", "view_type"]),
    ("TRENDLOG_DATA", &["id", "SerialNumber", "PointId", "PointIndex", "PointType", "Digital_Analog"]),
    ("TRENDLOG_DATA_DETAIL", &["ParentId", "Value", "LoggingTime_Fmt"]),
];

/// Detail rows per batch when the request does not say.
pub const DEFAULT_BATCH_ROWS: usize = 50_000;
/// The range of `batch_rows`.
pub const BATCH_ROWS: std::ops::RangeInclusive<usize> = 100..=500_000;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum WebviewError {
    /// The file is no SQLite database, or is damaged.
    #[error("not a readable SQLite database: {0}")]
    NotSqlite(String),
    /// The file is SQLite but not WebView's schema: names the table (and column).
    #[error("{message}")]
    Schema { table: String, column: Option<String>, message: String },
    /// A request value that is wrong (time zone, batch size): names it.
    #[error("{1}")]
    Invalid(&'static str, String),
    /// No job with that id.
    #[error("no WebView import job {0}")]
    NoJob(i64),
    #[error("catalog: {0}")]
    Catalog(#[from] t3_storage::Error),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Internal(String),
}

impl From<rusqlite::Error> for WebviewError {
    fn from(e: rusqlite::Error) -> Self {
        WebviewError::NotSqlite(e.to_string())
    }
}

type Result<T, E = WebviewError> = std::result::Result<T, E>;

/// Options of a preview or an import.
#[derive(Debug, Clone)]
pub struct Options {
    /// IANA name of the time zone `LoggingTime_Fmt` is in (the WebView PC's).
    pub time_zone: String,
    /// Create the devices enabled (polled at once); disabled by default.
    pub enable_devices: bool,
    /// Detail rows per stored batch.
    pub batch_rows: usize,
}

impl Options {
    fn tz(&self) -> Result<Tz> {
        t3_core::schedule::parse_tz(&self.time_zone).map_err(|_| {
            WebviewError::Invalid(
                "time_zone",
                format!(
                    "time_zone: unknown time zone \"{}\": use an IANA name such as Europe/Berlin or UTC",
                    self.time_zone
                ),
            )
        })
    }

    fn check(&self) -> Result<Tz> {
        if !BATCH_ROWS.contains(&self.batch_rows) {
            return Err(WebviewError::Invalid(
                "batch_rows",
                format!("batch_rows: must be {} to {}", BATCH_ROWS.start(), BATCH_ROWS.end()),
            ));
        }
        self.tz()
    }
}

/// An uploaded database file, in `<data dir>/import/` under a name of its own (two uploads of one
/// file at once do not share a path). It is held only while something reads it: removed when the
/// last clone is dropped, that is when the request is answered or, if a history job started on
/// it, when that job's run ends. So a preview, a refused file or a finished import leaves no copy
/// behind (an interrupted job needs none either: it continues only when the file is sent again).
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
    _held: Arc<Removal>,
}

/// Removes its file when dropped.
#[derive(Debug)]
struct Removal(PathBuf);

impl Drop for Removal {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("WebView import: could not remove {}: {e}", self.0.display());
        }
    }
}

/// Whether `name` is a file [`WebviewImports::receive`] writes (an upload under way, or received).
fn is_upload(name: &str) -> bool {
    (name.starts_with("upload-") && name.ends_with(".tmp")) || (name.starts_with("webview-") && name.ends_with(".db"))
}

// ---- the preview ----

/// What an import would do (or did), for people and the UI.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Preview {
    pub sha256: String,
    pub bytes: u64,
    pub time_zone: String,
    /// Whether devices are created enabled (polled); false unless `enable_devices=true`.
    pub enable_devices: bool,
    pub places: Vec<PlacePreview>,
    pub devices: Vec<DevicePreview>,
    pub points: Vec<PointPreview>,
    pub trendlogs: Vec<TrendLogPreview>,
    pub history: HistoryPreview,
    pub warnings: Vec<String>,
    /// The import job of this file, if there is one (progress, or done).
    pub job: Option<JobStatus>,
}

/// A building, floor or room.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlacePreview {
    /// `building`, `floor` or `room`.
    pub kind: String,
    /// `Main campus`, `Main campus / Floor 1`, `Main campus / Floor 1 / Room 101`.
    pub path: String,
    /// `create` or `exists`.
    pub action: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DevicePreview {
    pub serial_number: i64,
    /// The name it gets: `show_label_name` (else `Product_Name`) and the serial number.
    pub name: String,
    pub ip_address: Option<String>,
    pub port: u16,
    pub unit_id: u8,
    /// `Building / Floor / Room`.
    pub place: Option<String>,
    pub enabled: bool,
    /// `create`, `exists` or `skip` (see `reason`).
    pub action: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = WebviewPointPreview)]
pub struct PointPreview {
    pub device: String,
    /// `IN1`, `OUT2`, `VAR3`.
    pub name: String,
    pub label: Option<String>,
    pub description: Option<String>,
    pub units: Option<String>,
    pub digital: bool,
    /// `create`, `update`, `unchanged` or `skip`.
    pub action: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrendLogPreview {
    pub name: String,
    pub interval_ms: u64,
    /// `<device> IN1`, ...
    pub points: Vec<String>,
    /// `create`, `exists` or `skip`.
    pub action: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryPreview {
    /// `TRENDLOG_DATA_DETAIL` rows.
    pub rows: u64,
    /// `TRENDLOG_DATA` rows (one per trended point).
    pub series: u64,
    /// Series whose point the import cannot place (no such device or point): their rows are skipped.
    pub series_skipped: u64,
    /// `LoggingTime_Fmt` of the earliest and latest row, as written.
    pub first: Option<String>,
    pub last: Option<String>,
}

/// A job's progress.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobStatus {
    #[serde(flatten)]
    pub job: WebviewImportJob,
    /// rows_done / rows_total, 0 ..= 1.
    pub progress: f64,
    /// Samples stored per second by the run in progress (or the last run of this server).
    pub samples_per_sec: Option<f64>,
}

// ---- reading the file ----

/// Opens a file read-only and checks it is WebView's schema.
pub fn open_checked(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )?;
    check_schema(&conn)?;
    Ok(conn)
}

/// Checks that every table and column of [`REQUIRED`] is there; the error names the first missing.
pub fn check_schema(conn: &Connection) -> Result<()> {
    // Reading the schema is the first read: garbage fails here ("file is not a database").
    let tables: HashSet<String> = {
        let mut st = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
        st.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<_, _>>()?
    };
    for (table, columns) in REQUIRED {
        if !tables.contains(*table) {
            return Err(WebviewError::Schema {
                table: (*table).to_owned(),
                column: None,
                message: format!(
                    "not a T3000 WebView database: table {table} is missing (a WebView database has {})",
                    REQUIRED.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
                ),
            });
        }
        let have: HashSet<String> = {
            let mut st = conn.prepare(&format!("PRAGMA table_info(\"{table}\")"))?;
            st.query_map([], |r| r.get::<_, String>(1))?.collect::<Result<_, _>>()?
        };
        if let Some(c) = columns.iter().find(|c| !have.contains(**c)) {
            return Err(WebviewError::Schema {
                table: (*table).to_owned(),
                column: Some((*c).to_owned()),
                message: format!("not the T3000 WebView schema: table {table} has no column {c}"),
            });
        }
    }
    Ok(())
}

fn text(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            let s = String::from_utf8_lossy(t).trim().to_owned();
            (!s.is_empty()).then_some(s)
        }
    })
}

fn int(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<i64>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Integer(n) => Some(n),
        ValueRef::Real(f) => Some(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(|s| s.trim().parse().ok()),
        _ => None,
    })
}

#[derive(Debug, Clone)]
struct SrcDevice {
    serial: i64,
    building: Option<String>,
    floor: Option<String>,
    room: Option<String>,
    product: Option<String>,
    label: Option<String>,
    ip: Option<String>,
    port: Option<i64>,
    unit: Option<i64>,
}

#[derive(Debug, Clone)]
struct SrcPoint {
    serial: i64,
    /// `INPUT`, `OUTPUT`, `VARIABLE`.
    kind: &'static str,
    /// `IN1`.
    id: Option<String>,
    index: Option<String>,
    full_label: Option<String>,
    label: Option<String>,
    units: Option<String>,
    digital: bool,
}

#[derive(Debug, Clone)]
struct SrcTrendLog {
    serial: i64,
    id: String,
    label: Option<String>,
    interval_secs: Option<i64>,
    inputs: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct SrcParent {
    id: i64,
    serial: i64,
    point_id: Option<String>,
    kind: String,
    index: Option<i64>,
    digital: Option<bool>,
}

#[derive(Debug, Clone)]
struct Source {
    devices: Vec<SrcDevice>,
    points: Vec<SrcPoint>,
    trendlogs: Vec<SrcTrendLog>,
    parents: Vec<SrcParent>,
    rows: u64,
    last_rowid: i64,
    first: Option<String>,
    last: Option<String>,
}

fn digital_flag(v: Option<String>) -> Option<bool> {
    v.map(|s| s == "0")
}

fn read_source(conn: &Connection, with_times: bool) -> Result<Source> {
    let mut devices = Vec::new();
    {
        let mut st = conn.prepare(
            "SELECT SerialNumber, MainBuilding_Name, Building_Name, Floor_Name, Room_Name, Product_Name,
                    show_label_name, ip_address, Bautrate, modbus_port, modbus_address
             FROM DEVICES ORDER BY SerialNumber",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let Some(serial) = int(r, 0)? else { continue };
            let ip = text(r, 7)?.or(text(r, 8)?.filter(|b| b.parse::<std::net::IpAddr>().is_ok()));
            devices.push(SrcDevice {
                serial,
                building: text(r, 1)?.or(text(r, 2)?),
                floor: text(r, 3)?,
                room: text(r, 4)?,
                product: text(r, 5)?,
                label: text(r, 6)?,
                ip,
                port: int(r, 9)?,
                unit: int(r, 10)?,
            });
        }
    }
    let mut points = Vec::new();
    for (table, kind, id, index) in [
        ("INPUTS", "INPUT", "InputId", "Input_Index"),
        ("OUTPUTS", "OUTPUT", "OutputId", "Output_Index"),
        ("VARIABLES", "VARIABLE", "VariableId", "Variable_Index"),
    ] {
        let mut st = conn.prepare(&format!(
            "SELECT SerialNumber, {id}, {index}, Full_Label, Label, Units, Digital_Analog FROM {table} ORDER BY rowid"
        ))?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let Some(serial) = int(r, 0)? else { continue };
            points.push(SrcPoint {
                serial,
                kind,
                id: text(r, 1)?,
                index: text(r, 2)?,
                full_label: text(r, 3)?,
                label: text(r, 4)?,
                units: text(r, 5)?,
                digital: digital_flag(text(r, 6)?).unwrap_or(false),
            });
        }
    }
    let mut trendlogs: Vec<SrcTrendLog> = Vec::new();
    {
        let mut st = conn.prepare(
            "SELECT SerialNumber, Trendlog_ID, Trendlog_Label, Interval_Seconds FROM TRENDLOGS ORDER BY rowid",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (Some(serial), Some(id)) = (int(r, 0)?, text(r, 1)?) else { continue };
            trendlogs.push(SrcTrendLog { serial, id, label: text(r, 2)?, interval_secs: int(r, 3)?, inputs: vec![] });
        }
        let mut st = conn.prepare(
            "SELECT SerialNumber, Trendlog_ID, Point_Type, Point_Index FROM TRENDLOG_INPUTS
             WHERE view_type IS NULL OR view_type = 'MAIN' ORDER BY rowid",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (Some(serial), Some(id), Some(kind), Some(index)) = (int(r, 0)?, text(r, 1)?, text(r, 2)?, text(r, 3)?)
            else {
                continue;
            };
            if let Some(t) = trendlogs.iter_mut().find(|t| t.serial == serial && t.id == id) {
                let input = (kind.to_ascii_uppercase(), index);
                if !t.inputs.contains(&input) {
                    t.inputs.push(input);
                }
            }
        }
    }
    let mut parents = Vec::new();
    {
        let mut st = conn.prepare(
            "SELECT id, SerialNumber, PointId, PointType, PointIndex, Digital_Analog FROM TRENDLOG_DATA ORDER BY id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (Some(id), Some(serial)) = (int(r, 0)?, int(r, 1)?) else { continue };
            parents.push(SrcParent {
                id,
                serial,
                point_id: text(r, 2)?,
                kind: text(r, 3)?.unwrap_or_default().to_ascii_uppercase(),
                index: int(r, 4)?,
                digital: digital_flag(text(r, 5)?),
            });
        }
    }
    let last_rowid: i64 =
        conn.query_row("SELECT COALESCE(MAX(rowid), 0) FROM TRENDLOG_DATA_DETAIL", [], |r| r.get(0))?;
    let (rows, first, last) = if with_times {
        conn.query_row(
            "SELECT COUNT(*), MIN(LoggingTime_Fmt), MAX(LoggingTime_Fmt) FROM TRENDLOG_DATA_DETAIL",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, text(r, 1)?, text(r, 2)?)),
        )?
    } else {
        (conn.query_row("SELECT COUNT(*) FROM TRENDLOG_DATA_DETAIL", [], |r| r.get::<_, i64>(0))? as u64, None, None)
    };
    Ok(Source { devices, points, trendlogs, parents, rows, last_rowid, first, last })
}

// ---- the plan: what the file becomes in the catalog ----

/// `IN1` from what WebView wrote (`in1`, ` IN1 `); none unless the T3 controller profile has it.
fn profile_point_name(id: &str) -> Option<String> {
    let name = id.trim().to_ascii_uppercase();
    let profile = ProfileLibrary::builtin().get(T3_CONTROLLER)?;
    profile.points.iter().any(|p| p.name == name).then_some(name)
}

fn kind_prefix(kind: &str) -> &'static str {
    match kind {
        "INPUT" => "IN",
        "OUTPUT" => "OUT",
        _ => "VAR",
    }
}

/// The name a device gets: its label (else its product name) and its serial number, at most 64
/// characters.
fn device_name(d: &SrcDevice) -> String {
    let serial = d.serial.to_string();
    let base = d.label.clone().or(d.product.clone()).unwrap_or_else(|| "T3000".to_owned());
    let room = 64 - serial.len() - 1;
    let base: String = base.chars().take(room).collect();
    format!("{} {serial}", base.trim())
}

#[derive(Debug, Clone)]
struct PlannedDevice {
    src: SrcDevice,
    name: String,
    config: Option<DeviceConfig>,
    exists: bool,
}

/// A trend log to create: name, interval (ms), its points as (serial, point name).
type PlannedLog = (String, u64, Vec<(i64, String)>);

#[derive(Debug, Clone)]
struct Plan {
    preview: Preview,
    devices: Vec<PlannedDevice>,
    /// (serial, point name) -> (point, action).
    points: BTreeMap<(i64, String), SrcPoint>,
    /// Trend logs to create: name, interval, (serial, point name).
    trendlogs: Vec<PlannedLog>,
    /// Parent id -> (serial, point name, value divisor).
    parents: HashMap<i64, (i64, String, f64)>,
}

fn place_path(d: &SrcDevice) -> Option<String> {
    let b = d.building.as_ref()?;
    let mut s = b.clone();
    if let Some(f) = &d.floor {
        s = format!("{s} / {f}");
        if let Some(r) = &d.room {
            s = format!("{s} / {r}");
        }
    }
    Some(s)
}

/// `(device name, point name) -> id` of every registered point.
type Known = HashMap<(String, String), u32>;

fn known_ids(registry: &Registry) -> Known {
    registry.entries().into_iter().map(|e| ((e.device, e.point), e.id)).collect()
}

fn plan(src: &Source, opts: &Options, catalog: &Catalog, known: &Known, file: &StoredFile) -> Plan {
    let mut warnings = Vec::new();
    // Places.
    let buildings = catalog.list::<Building>();
    let floors = catalog.list::<Floor>();
    let rooms = catalog.list::<Room>();
    let find_building = |name: &str| buildings.iter().find(|b| b.name == name);
    let find_floor =
        |b: &str, f: &str| find_building(b).and_then(|b| floors.iter().find(|x| x.building_id == b.id && x.name == f));
    let find_room = |b: &str, f: &str, r: &str| {
        find_floor(b, f).and_then(|f| rooms.iter().find(|x| x.floor_id == f.id && x.name == r))
    };
    let mut places: Vec<PlacePreview> = Vec::new();
    let mut seen = HashSet::new();
    for d in &src.devices {
        let Some(b) = &d.building else { continue };
        if seen.insert(b.clone()) {
            let action = if find_building(b).is_some() { "exists" } else { "create" };
            places.push(PlacePreview { kind: "building".into(), path: b.clone(), action: action.into() });
        }
        let Some(f) = &d.floor else { continue };
        let path = format!("{b} / {f}");
        if seen.insert(path.clone()) {
            let action = if find_floor(b, f).is_some() { "exists" } else { "create" };
            places.push(PlacePreview { kind: "floor".into(), path, action: action.into() });
        }
        let Some(r) = &d.room else { continue };
        let path = format!("{b} / {f} / {r}");
        if seen.insert(path.clone()) {
            let action = if find_room(b, f, r).is_some() { "exists" } else { "create" };
            places.push(PlacePreview { kind: "room".into(), path, action: action.into() });
        }
    }
    // Devices.
    let existing: Vec<DeviceConfig> =
        catalog.read::<DeviceRecord, _>(|d| d.values().map(|d| d.config.clone()).collect());
    let mut all = existing.clone();
    let mut devices = Vec::new();
    let mut previews = Vec::new();
    for d in &src.devices {
        let name = device_name(d);
        let port = d.port.filter(|p| (1..=65535).contains(p)).unwrap_or(502) as u16;
        let unit = d.unit.filter(|u| (0..=255).contains(u)).unwrap_or(255) as u8;
        let exists = existing.iter().any(|c| c.name == name);
        let (config, reason) = match &d.ip {
            _ if exists => (None, None),
            None => (None, Some("no ip_address in DEVICES: add the device by hand, then import again".to_owned())),
            Some(ip) => {
                let json = serde_json::json!({
                    "name": name, "protocol": "modbus-tcp", "ip_address": ip, "port": port,
                    "unit_id": unit, "profile": T3_CONTROLLER, "enabled": opts.enable_devices,
                    "device_type": "controller",
                });
                match serde_json::from_value::<DeviceConfig>(json) {
                    Err(e) => (None, Some(e.to_string())),
                    Ok(c) => {
                        all.push(c.clone());
                        let cfg = Config { devices: all.clone(), ..Config::default() };
                        match cfg.validate() {
                            Ok(()) => (Some(c), None),
                            Err(e) => {
                                all.pop();
                                (None, Some(e.to_string()))
                            }
                        }
                    }
                }
            }
        };
        let action = if exists {
            "exists"
        } else if config.is_some() {
            "create"
        } else {
            "skip"
        };
        if let Some(r) = &reason {
            warnings.push(format!("device {} (SerialNumber {}) is skipped: {r}", name, d.serial));
        }
        previews.push(DevicePreview {
            serial_number: d.serial,
            name: name.clone(),
            ip_address: d.ip.clone(),
            port,
            unit_id: unit,
            place: place_path(d),
            enabled: opts.enable_devices,
            action: action.into(),
            reason,
        });
        devices.push(PlannedDevice { src: d.clone(), name, config, exists });
    }
    let usable: HashMap<i64, &PlannedDevice> =
        devices.iter().filter(|d| d.exists || d.config.is_some()).map(|d| (d.src.serial, d)).collect();
    let all_serials: HashSet<i64> = src.devices.iter().map(|d| d.serial).collect();
    // Points.
    let mut points = BTreeMap::new();
    let mut point_previews = Vec::new();
    let mut point_by_index: HashMap<(i64, &'static str, String), String> = HashMap::new();
    let mut unknown_points = 0;
    for p in &src.points {
        let Some(dev) = usable.get(&p.serial) else { continue };
        let Some(name) = p.id.as_deref().and_then(profile_point_name) else {
            unknown_points += 1;
            continue;
        };
        if let Some(i) = &p.index {
            point_by_index.insert((p.serial, p.kind, i.clone()), name.clone());
        }
        let units = p.units.clone().filter(|u| !matches!(u.as_str(), "Unused" | "Unknown"));
        let action = if dev.exists {
            // The point record of an imported device: compare with what is there.
            let id = known.get(&(dev.name.clone(), name.clone())).map(|&id| i64::from(id));
            match id.and_then(|id| catalog.get::<PointRecord>(id)) {
                Some(r) if r.label == p.label && r.description == p.full_label && r.units == units => "unchanged",
                Some(_) => "update",
                None => "update",
            }
        } else {
            "create"
        };
        point_previews.push(PointPreview {
            device: dev.name.clone(),
            name: name.clone(),
            label: p.label.clone(),
            description: p.full_label.clone(),
            units: units.clone(),
            digital: p.digital,
            action: action.into(),
        });
        points.insert((p.serial, name), SrcPoint { units, ..p.clone() });
    }
    if unknown_points > 0 {
        warnings.push(format!(
            "{unknown_points} points are not points of a T3 controller (IN1..IN64, OUT1..OUT64, VAR1..VAR128) and are skipped"
        ));
    }
    // Trend logs.
    let existing_logs: HashSet<String> = catalog.read::<TrendLog, _>(|t| t.values().map(|t| t.name.clone()).collect());
    let mut trendlogs = Vec::new();
    let mut log_previews = Vec::new();
    for t in &src.trendlogs {
        let Some(dev) = usable.get(&t.serial) else { continue };
        let name: String = format!("{} {}", dev.name, t.label.clone().unwrap_or_else(|| t.id.clone()))
            .chars()
            .take(crate::model::check::NAME_MAX)
            .collect();
        let interval_ms = (t.interval_secs.unwrap_or(300).max(1) as u64 * 1000).clamp(1000, 86_400_000);
        let mut members = Vec::new();
        for (kind, index) in &t.inputs {
            let kind: &'static str = match kind.as_str() {
                "INPUT" => "INPUT",
                "OUTPUT" => "OUTPUT",
                "VARIABLE" => "VARIABLE",
                _ => continue,
            };
            match point_by_index.get(&(t.serial, kind, index.clone())) {
                Some(n) => members.push((t.serial, n.clone())),
                None => warnings.push(format!(
                    "trend log {name}: {kind} {index} is not in the {} table; left out",
                    match kind {
                        "INPUT" => "INPUTS",
                        "OUTPUT" => "OUTPUTS",
                        _ => "VARIABLES",
                    }
                )),
            }
        }
        members.truncate(64);
        let action = if existing_logs.contains(&name) {
            "exists"
        } else if members.is_empty() {
            "skip"
        } else {
            "create"
        };
        log_previews.push(TrendLogPreview {
            name: name.clone(),
            interval_ms,
            points: members.iter().map(|(s, p)| format!("{} {p}", usable[s].name)).collect(),
            action: action.into(),
        });
        if action == "create" {
            trendlogs.push((name, interval_ms, members));
        }
    }
    // History series.
    let mut parents = HashMap::new();
    let mut skipped_series = 0u64;
    for p in &src.parents {
        let name = p.point_id.as_deref().and_then(profile_point_name).or_else(|| {
            // A parent without a usable PointId: its type and index, if the point table names it.
            let kind = match p.kind.as_str() {
                "INPUT" => "INPUT",
                "OUTPUT" => "OUTPUT",
                "VARIABLE" => "VARIABLE",
                _ => return None,
            };
            point_by_index.get(&(p.serial, kind, p.index?.to_string())).cloned()
        });
        let Some(name) = name.filter(|_| usable.contains_key(&p.serial)) else {
            skipped_series += 1;
            continue;
        };
        let digital = p.digital.or_else(|| points.get(&(p.serial, name.clone())).map(|x| x.digital)).unwrap_or(false);
        // WebView shows analog values and digital inputs / outputs / 1000, digital variables as stored.
        let divisor = if digital && name.starts_with(kind_prefix("VARIABLE")) { 1.0 } else { 1000.0 };
        parents.insert(p.id, (p.serial, name, divisor));
    }
    if skipped_series > 0 {
        let missing: usize = src.parents.iter().filter(|p| !all_serials.contains(&p.serial)).count();
        warnings.push(format!(
            "{skipped_series} of {} TRENDLOG_DATA series cannot be placed ({missing} name a SerialNumber not in DEVICES or a skipped device, the others a point that is not IN/OUT/VAR of a T3 controller); their detail rows are skipped",
            src.parents.len()
        ));
    }
    if opts.time_zone == "UTC" && src.rows > 0 {
        warnings.push(
            "LoggingTime_Fmt is the local time of the PC WebView ran on; it is read as UTC: pass time_zone (e.g. Europe/Berlin) if that PC was not on UTC"
                .into(),
        );
    }
    if !opts.enable_devices && previews.iter().any(|d| d.action == "create") {
        warnings.push(
            "devices are created disabled (not polled): they point at the site's real controllers; enable them when this server takes over, or import with enable_devices=true"
                .into(),
        );
    }
    let preview = Preview {
        sha256: file.sha256.clone(),
        bytes: file.bytes,
        time_zone: opts.time_zone.clone(),
        enable_devices: opts.enable_devices,
        places,
        devices: previews,
        points: point_previews,
        trendlogs: log_previews,
        history: HistoryPreview {
            rows: src.rows,
            series: src.parents.len() as u64,
            series_skipped: skipped_series,
            first: src.first.clone(),
            last: src.last.clone(),
        },
        warnings,
        job: None,
    };
    Plan { preview, devices, points, trendlogs, parents }
}

// ---- the service ----

/// Live figures of a run in progress (not stored).
#[derive(Debug, Clone)]
struct Run {
    started: Instant,
    samples_at_start: u64,
    samples: u64,
    finished: Option<Instant>,
}

/// The WebView importer.
#[derive(Debug)]
pub struct WebviewImports {
    catalog: Arc<Catalog>,
    storage: Storage,
    registry: Arc<Registry>,
    /// Imported devices are stored and polled through it.
    devices: Devices,
    audit: AuditLog,
    /// Imported trend logs record their points through it.
    trendlogs: TrendLogs,
    dir: PathBuf,
    runs: Mutex<HashMap<i64, Run>>,
    /// Serializes applies (two uploads of one file at once start one job).
    apply_lock: tokio::sync::Mutex<()>,
}

/// What an apply answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebviewApplied {
    /// Catalog records created: buildings, floors, rooms, devices, points, trend logs.
    pub created: BTreeMap<String, u64>,
    /// Point records whose label, description or units changed.
    pub updated_points: u64,
    /// The history job (running, or done if this file was imported before).
    pub job: JobStatus,
    pub preview: Preview,
}

impl WebviewImports {
    pub fn new(
        catalog: Arc<Catalog>,
        storage: Storage,
        registry: Arc<Registry>,
        devices: Devices,
        audit: AuditLog,
        trendlogs: TrendLogs,
    ) -> Arc<WebviewImports> {
        let dir = storage.data_dir().join("import");
        remove_uploads(&dir);
        Arc::new(WebviewImports {
            catalog,
            storage,
            registry,
            devices,
            audit,
            trendlogs,
            dir,
            runs: Mutex::new(HashMap::new()),
            apply_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Receives an uploaded file: streamed to `<data dir>/import/` (never held in memory), hashed
    /// on the way, and named `webview-<sha256>-<nonce>.db` until it is let go of (see [`StoredFile`]).
    pub async fn receive<S, E>(&self, mut body: S) -> Result<StoredFile>
    where
        S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| WebviewError::Io(format!("create {}: {e}", self.dir.display())))?;
        let nonce = rand::random::<u64>();
        let tmp = self.dir.join(format!("upload-{nonce:016x}.tmp"));
        let io = |what: &str, e: std::io::Error| WebviewError::Io(format!("{what} {}: {e}", tmp.display()));
        let mut f = tokio::fs::File::create(&tmp).await.map_err(|e| io("create", e))?;
        let mut hash = Sha256::new();
        let mut bytes = 0u64;
        let result = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| WebviewError::Io(format!("upload: {e}")))?;
                hash.update(&chunk);
                bytes += chunk.len() as u64;
                f.write_all(&chunk).await.map_err(|e| io("write", e))?;
            }
            f.sync_all().await.map_err(|e| io("fsync", e))?;
            Ok(())
        }
        .await;
        drop(f);
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        let sha256 = format!("{:x}", hash.finalize());
        let path = self.dir.join(format!("webview-{sha256}-{nonce:016x}.db"));
        if let Err(e) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io("rename", e));
        }
        Ok(StoredFile { _held: Arc::new(Removal(path.clone())), path, sha256, bytes })
    }

    fn job_of(&self, file: &StoredFile) -> Option<WebviewImportJob> {
        self.catalog.read::<WebviewImportJob, _>(|j| {
            j.values().find(|j| j.sha256 == file.sha256 && j.bytes == file.bytes).cloned()
        })
    }

    /// A job's status; `running` in the catalog without a run in this server reads `interrupted`.
    pub fn status(&self, id: i64) -> Result<JobStatus> {
        let job = self.catalog.get::<WebviewImportJob>(id).ok_or(WebviewError::NoJob(id))?;
        Ok(self.status_of(job))
    }

    /// Every job, newest first.
    pub fn jobs(&self) -> Vec<JobStatus> {
        let mut v: Vec<JobStatus> =
            self.catalog.list::<WebviewImportJob>().into_iter().map(|j| self.status_of(j)).collect();
        v.reverse();
        v
    }

    fn status_of(&self, mut job: WebviewImportJob) -> JobStatus {
        let runs = self.runs.lock();
        let run = runs.get(&job.id);
        if job.state == "running" && run.is_none_or(|r| r.finished.is_some()) {
            job.state = "interrupted".into();
        }
        let samples_per_sec = run.map(|r| {
            let secs = r.finished.unwrap_or_else(Instant::now).duration_since(r.started).as_secs_f64();
            (r.samples - r.samples_at_start) as f64 / secs.max(1e-6)
        });
        let progress = if job.rows_total == 0 { 1.0 } else { job.rows_done as f64 / job.rows_total as f64 };
        JobStatus { job, progress, samples_per_sec }
    }

    /// What importing `file` would do.
    pub async fn preview(&self, file: &StoredFile, opts: &Options) -> Result<Preview> {
        opts.check()?;
        let (path, catalog, file2, opts2) = (file.path.clone(), self.catalog.clone(), file.clone(), opts.clone());
        let known = known_ids(&self.registry);
        let mut preview = tokio::task::spawn_blocking(move || -> Result<Preview> {
            let conn = open_checked(&path)?;
            let src = read_source(&conn, true)?;
            Ok(plan(&src, &opts2, &catalog, &known, &file2).preview)
        })
        .await
        .map_err(|e| WebviewError::Internal(e.to_string()))??;
        preview.job = self.job_of(file).map(|j| self.status_of(j));
        Ok(preview)
    }

    /// Imports `file`: the catalog part at once (audited), then the history in the background
    /// (a job; a file imported before continues its job, or finds it done).
    pub async fn apply(self: &Arc<Self>, file: &StoredFile, opts: &Options, who: &Issuer) -> Result<WebviewApplied> {
        let tz = opts.check()?;
        let _one = self.apply_lock.lock().await;
        let (path, catalog, file2, opts2) = (file.path.clone(), self.catalog.clone(), file.clone(), opts.clone());
        let known = known_ids(&self.registry);
        let (src, plan) = tokio::task::spawn_blocking(move || -> Result<(Source, Plan)> {
            let conn = open_checked(&path)?;
            let src = read_source(&conn, true)?;
            let plan = plan(&src, &opts2, &catalog, &known, &file2);
            Ok((src, plan))
        })
        .await
        .map_err(|e| WebviewError::Internal(e.to_string()))??;
        let (created, updated_points, ids) = self.apply_catalog(&plan, opts, who)?;
        // The history job.
        let job = match self.job_of(file) {
            Some(j) => j,
            None => {
                let now = self.storage.clock().now_us();
                let job = self.catalog.insert(WebviewImportJob {
                    id: 0,
                    sha256: file.sha256.clone(),
                    bytes: file.bytes,
                    time_zone: opts.time_zone.clone(),
                    state: "running".into(),
                    cursor_rowid: 0,
                    last_rowid: src.last_rowid,
                    rows_total: src.rows,
                    rows_done: 0,
                    samples: 0,
                    skipped: BTreeMap::new(),
                    started_us: now,
                    updated_us: now,
                    finished_us: None,
                    error: None,
                })?;
                self.audit.record(
                    who.remote.clone(),
                    &who.actor,
                    "import.webview",
                    Some(format!("webview_import:{}", job.id)),
                    None,
                    serde_json::to_value(&job).ok(),
                    "started",
                );
                job
            }
        };
        let active = self.runs.lock().get(&job.id).is_some_and(|r| r.finished.is_none());
        if job.state != "done" && !active {
            // Continue from the cursor, in the time zone the job started with.
            let tz = if job.time_zone == opts.time_zone {
                tz
            } else {
                Options { time_zone: job.time_zone.clone(), ..opts.clone() }.tz()?
            };
            let mut parents = HashMap::new();
            for (pid, (serial, name, divisor)) in &plan.parents {
                if let Some(&id) = ids.get(&(*serial, name.clone())) {
                    parents.insert(*pid, (id, *divisor));
                }
            }
            let mut job = job.clone();
            job.state = "running".into();
            job.error = None;
            self.catalog.put(job.clone())?;
            self.runs.lock().insert(
                job.id,
                Run { started: Instant::now(), samples_at_start: job.samples, samples: job.samples, finished: None },
            );
            let me = self.clone();
            let (file, batch, who) = (file.clone(), opts.batch_rows, who.clone());
            tokio::spawn(async move { me.run(job, file, parents, tz, batch, who).await });
        }
        let job = self.status(job.id)?;
        let mut preview = plan.preview;
        preview.job = Some(job.clone());
        Ok(WebviewApplied { created, updated_points, job, preview })
    }

    /// Creates places, devices, point records and trend logs; returns what was created and the
    /// point id of every (serial, point name) of the file's devices.
    #[allow(clippy::type_complexity)]
    fn apply_catalog(
        &self,
        plan: &Plan,
        opts: &Options,
        who: &Issuer,
    ) -> Result<(BTreeMap<String, u64>, u64, HashMap<(i64, String), u32>)> {
        let now = self.storage.clock().now_us();
        let mut created: BTreeMap<String, u64> = BTreeMap::new();
        let audit = |action: &str, target: String, new: serde_json::Value| {
            self.audit.record(who.remote.clone(), &who.actor, action, Some(target), None, Some(new), "ok");
        };
        // Places, found by name or created.
        let mut place_ids: HashMap<i64, (Option<i64>, Option<i64>, Option<i64>)> = HashMap::new();
        for d in &plan.devices {
            let Some(b) = &d.src.building else { continue };
            let building = match self.catalog.read::<Building, _>(|x| x.values().find(|x| &x.name == b).cloned()) {
                Some(x) => x,
                None => {
                    let x = self.catalog.insert(Building {
                        id: 0,
                        name: b.clone(),
                        description: Some("imported from T3000 WebView".into()),
                        address: None,
                        time_zone: opts.time_zone.clone(),
                        updated_us: now,
                    })?;
                    *created.entry("buildings".into()).or_default() += 1;
                    audit("import.webview", format!("building:{}", x.id), serde_json::to_value(&x).unwrap_or_default());
                    x
                }
            };
            let mut floor_id = None;
            let mut room_id = None;
            if let Some(f) = &d.src.floor {
                let floor = match self
                    .catalog
                    .read::<Floor, _>(|x| x.values().find(|x| x.building_id == building.id && &x.name == f).cloned())
                {
                    Some(x) => x,
                    None => {
                        let x = self.catalog.insert(Floor {
                            id: 0,
                            building_id: building.id,
                            name: f.clone(),
                            level: 0,
                            description: None,
                            updated_us: now,
                            plan: None,
                            plan_points: vec![],
                        })?;
                        *created.entry("floors".into()).or_default() += 1;
                        audit(
                            "import.webview",
                            format!("floor:{}", x.id),
                            serde_json::to_value(&x).unwrap_or_default(),
                        );
                        x
                    }
                };
                floor_id = Some(floor.id);
                if let Some(r) = &d.src.room {
                    let room = match self
                        .catalog
                        .read::<Room, _>(|x| x.values().find(|x| x.floor_id == floor.id && &x.name == r).cloned())
                    {
                        Some(x) => x,
                        None => {
                            let x = self.catalog.insert(Room {
                                id: 0,
                                floor_id: floor.id,
                                name: r.clone(),
                                description: None,
                                updated_us: now,
                            })?;
                            *created.entry("rooms".into()).or_default() += 1;
                            audit(
                                "import.webview",
                                format!("room:{}", x.id),
                                serde_json::to_value(&x).unwrap_or_default(),
                            );
                            x
                        }
                    };
                    room_id = Some(room.id);
                }
            }
            place_ids.insert(d.src.serial, (Some(building.id), floor_id, room_id));
        }
        // Devices.
        let mut device_ids: HashMap<i64, (i64, String)> = HashMap::new();
        for d in &plan.devices {
            if let Some(rec) =
                self.catalog.read::<DeviceRecord, _>(|x| x.values().find(|x| x.config.name == d.name).cloned())
            {
                device_ids.insert(d.src.serial, (rec.id, rec.config.name));
                continue;
            }
            let Some(config) = &d.config else { continue };
            let (building_id, floor_id, room_id) = place_ids.get(&d.src.serial).copied().unwrap_or_default();
            let rec = DeviceRecord {
                id: 0,
                config: config.clone(),
                building_id,
                floor_id,
                room_id,
                description: Some(format!(
                    "imported from T3000 WebView (SerialNumber {}{})",
                    d.src.serial,
                    d.src.product.as_ref().map(|p| format!(", {p}")).unwrap_or_default()
                )),
                source: "api".into(),
            };
            let rec = self.devices.add(who, "import.webview", rec).map_err(|e| match e {
                DeviceError::Storage(e) => WebviewError::Catalog(e),
                e => WebviewError::Internal(format!("device {}: {e}", d.name)),
            })?;
            *created.entry("devices".into()).or_default() += 1;
            device_ids.insert(d.src.serial, (rec.id, rec.config.name));
        }
        // Point ids: the registry's ids of the devices' profile points.
        let mut ids = HashMap::new();
        for (serial, (_, name)) in &device_ids {
            let profile = ProfileLibrary::builtin()
                .get(T3_CONTROLLER)
                .ok_or_else(|| WebviewError::Internal("no T3-controller profile".into()))?;
            for p in &profile.points {
                ids.insert((*serial, p.name.clone()), self.registry.id(name, &p.name));
            }
        }
        self.registry.save().map_err(|e| WebviewError::Io(format!("{e:#}")))?;
        // Point records (labels, units): one transaction, one audit entry per device.
        let mut updated = 0;
        let mut changes: BTreeMap<i64, Vec<serde_json::Value>> = BTreeMap::new();
        let mut records = Vec::new();
        for ((serial, name), p) in &plan.points {
            let (Some(&id), Some((device_id, _))) = (ids.get(&(*serial, name.clone())), device_ids.get(serial)) else {
                continue;
            };
            let old = self.catalog.get::<PointRecord>(i64::from(id));
            let mut rec = old.clone().unwrap_or_else(|| PointRecord {
                id: i64::from(id),
                device_id: Some(*device_id),
                name: name.clone(),
                ..PointRecord::default()
            });
            if rec.label == p.label && rec.description == p.full_label && rec.units == p.units && old.is_some() {
                continue;
            }
            rec.label = p.label.clone();
            rec.description = p.full_label.clone();
            rec.units = p.units.clone();
            if old.is_some() {
                updated += 1;
            } else {
                *created.entry("points".into()).or_default() += 1;
            }
            changes.entry(*device_id).or_default().push(serde_json::json!({
                "point_id": id, "name": name, "label": rec.label, "description": rec.description, "units": rec.units,
                "old": old.map(|o| serde_json::json!({ "label": o.label, "description": o.description, "units": o.units })),
            }));
            records.push(rec);
        }
        if !records.is_empty() {
            self.catalog.transaction(|tx| {
                for r in records {
                    tx.put(r)?;
                }
                Ok(())
            })?;
        }
        for (device_id, points) in changes {
            audit("import.webview", format!("device:{device_id}/points"), serde_json::Value::Array(points));
        }
        // Trend logs.
        let existing: HashSet<String> =
            self.catalog.read::<TrendLog, _>(|t| t.values().map(|t| t.name.clone()).collect());
        for (name, interval_ms, members) in &plan.trendlogs {
            if existing.contains(name) {
                continue;
            }
            let point_ids: Vec<u32> = members.iter().filter_map(|m| ids.get(m).copied()).collect();
            if point_ids.is_empty() {
                continue;
            }
            let t = self
                .trendlogs
                .store(TrendLog {
                    id: 0,
                    name: name.clone(),
                    description: Some("imported from T3000 WebView".into()),
                    point_ids,
                    interval_ms: *interval_ms,
                    on_change: false,
                    deadband: 0.0,
                    range: None,
                    updated_us: now,
                })
                .map_err(|e| WebviewError::Internal(format!("trend log {name}: {e}")))?;
            *created.entry("trendlogs".into()).or_default() += 1;
            audit("import.webview", format!("trendlog:{}", t.id), serde_json::to_value(&t).unwrap_or_default());
        }
        Ok((created, updated, ids))
    }

    /// Stores the history after the job's cursor, batch by batch, moving the cursor after each.
    /// The file is let go of before the job reads `done` (or `failed`).
    async fn run(
        self: Arc<Self>,
        job: WebviewImportJob,
        file: StoredFile,
        parents: HashMap<i64, (u32, f64)>,
        tz: Tz,
        batch_rows: usize,
        who: Issuer,
    ) {
        let id = job.id;
        let outcome = self.run_inner(job, file.path.clone(), parents, tz, batch_rows).await;
        drop(file);
        if let Some(r) = self.runs.lock().get_mut(&id) {
            r.finished = Some(Instant::now());
        }
        let Some(mut job) = self.catalog.get::<WebviewImportJob>(id) else { return };
        let now = self.storage.clock().now_us();
        match outcome {
            Ok(true) => {
                job.state = "done".into();
                job.finished_us = Some(now);
            }
            // Stopped (the server shuts down): stays `running` in the catalog, read as interrupted.
            Ok(false) => return,
            Err(e) => {
                job.state = "failed".into();
                job.error = Some(e.to_string());
            }
        }
        job.updated_us = now;
        let result = job.error.clone().unwrap_or_else(|| "ok".into());
        let _ = self.catalog.put(job.clone());
        self.audit.record(
            who.remote.clone(),
            &who.actor,
            "import.webview",
            Some(format!("webview_import:{id}")),
            None,
            serde_json::to_value(&job).ok(),
            &result,
        );
    }

    async fn run_inner(
        &self,
        mut job: WebviewImportJob,
        path: PathBuf,
        parents: HashMap<i64, (u32, f64)>,
        tz: Tz,
        batch_rows: usize,
    ) -> Result<bool> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Batch>>(2);
        let cfg = self.storage.config().ingest.clone();
        let clock = self.storage.clock().clone();
        let reader = Reader {
            parents,
            tz: LocalTime::new(tz),
            after: job.cursor_rowid,
            until: job.last_rowid,
            batch_rows,
            max_days: cfg.max_days_per_batch as usize,
            future_us: i64::try_from(cfg.max_future_secs).unwrap_or(i64::MAX / 2).saturating_mul(1_000_000),
        };
        let handle = std::thread::Builder::new()
            .name("webview-import".into())
            .spawn(move || reader.run(&path, &*clock, tx))
            .map_err(|e| WebviewError::Internal(e.to_string()))?;
        let mut finished = true;
        while let Some(batch) = rx.recv().await {
            let batch = batch?;
            let n = batch.samples.len() as u64;
            // The normal ingest path; a full write buffer or a WAL that is briefly unavailable waits.
            loop {
                match self.storage.ingest(batch.samples.clone()).await {
                    Ok(()) => break,
                    Err(t3_storage::Error::ShuttingDown) => {
                        finished = false;
                        break;
                    }
                    Err(e) if e.is_retryable() => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                    Err(e) => {
                        return Err(WebviewError::Internal(format!(
                            "storing the samples of detail rows {}..={}: {e}",
                            batch.first_rowid, batch.last_rowid
                        )));
                    }
                }
            }
            if !finished {
                break;
            }
            job.cursor_rowid = batch.last_rowid;
            job.rows_done += batch.rows;
            job.samples += n;
            for (k, v) in batch.skipped {
                *job.skipped.entry(k).or_default() += v;
            }
            job.updated_us = self.storage.clock().now_us();
            self.catalog.put(job.clone())?;
            if let Some(r) = self.runs.lock().get_mut(&job.id) {
                r.samples = job.samples;
            }
        }
        drop(rx);
        let _ = handle.join();
        Ok(finished)
    }
}

// ---- the history reader (a thread of its own) ----

/// One batch of samples and the rows it came from.
#[derive(Debug)]
struct Batch {
    samples: Vec<Sample>,
    first_rowid: i64,
    last_rowid: i64,
    rows: u64,
    skipped: BTreeMap<String, u64>,
}

struct Reader {
    parents: HashMap<i64, (u32, f64)>,
    tz: LocalTime,
    after: i64,
    until: i64,
    batch_rows: usize,
    max_days: usize,
    future_us: i64,
}

const DAY_US: i64 = 86_400_000_000;

impl Reader {
    fn run(mut self, path: &Path, clock: &dyn t3_core::clock::Clock, tx: tokio::sync::mpsc::Sender<Result<Batch>>) {
        let conn = match open_checked(path) {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        loop {
            let batch = match self.next_batch(&conn, clock.now_us()) {
                Ok(Some(b)) => b,
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            self.after = batch.last_rowid;
            if tx.blocking_send(Ok(batch)).is_err() {
                return;
            }
        }
    }

    /// The next batch: up to `batch_rows` rows after the cursor, ending before a row that would
    /// put the batch on more UTC days than a batch may hold.
    fn next_batch(&mut self, conn: &Connection, now_us: i64) -> Result<Option<Batch>> {
        if self.after >= self.until {
            return Ok(None);
        }
        let mut st = conn.prepare_cached(
            "SELECT rowid, ParentId, Value, LoggingTime_Fmt FROM TRENDLOG_DATA_DETAIL
             WHERE rowid > ?1 AND rowid <= ?2 ORDER BY rowid LIMIT ?3",
        )?;
        let mut rows = st.query(rusqlite::params![self.after, self.until, self.batch_rows as i64])?;
        let mut b = Batch {
            samples: Vec::with_capacity(self.batch_rows),
            first_rowid: 0,
            last_rowid: self.after,
            rows: 0,
            skipped: BTreeMap::new(),
        };
        let mut days: Vec<i64> = Vec::new();
        let latest = now_us.saturating_add(self.future_us).saturating_sub(5_000_000);
        while let Some(r) = rows.next()? {
            let rowid: i64 = r.get(0)?;
            let sample = self.sample(r, latest);
            if let Ok(s) = &sample {
                let day = s.ts.div_euclid(DAY_US);
                if !days.contains(&day) {
                    if days.len() >= self.max_days {
                        break;
                    }
                    days.push(day);
                }
            }
            if b.rows == 0 {
                b.first_rowid = rowid;
            }
            b.last_rowid = rowid;
            b.rows += 1;
            match sample {
                Ok(s) => b.samples.push(s),
                Err(why) => *b.skipped.entry(why.into()).or_default() += 1,
            }
        }
        Ok(if b.rows == 0 { None } else { Some(b) })
    }

    fn sample(&mut self, r: &rusqlite::Row<'_>, latest: i64) -> std::result::Result<Sample, &'static str> {
        let parent = r.get_ref(1).ok().and_then(|v| v.as_i64().ok()).ok_or("bad_parent")?;
        let &(point, divisor) = self.parents.get(&parent).ok_or("unknown_series")?;
        let raw = match r.get_ref(2).map_err(|_| "bad_value")? {
            ValueRef::Integer(n) => n as f64,
            ValueRef::Real(f) => f,
            ValueRef::Text(t) => {
                std::str::from_utf8(t).ok().and_then(|s| s.trim().parse::<f64>().ok()).ok_or("bad_value")?
            }
            _ => return Err("bad_value"),
        };
        if !raw.is_finite() {
            return Err("bad_value");
        }
        let ts = match r.get_ref(3).map_err(|_| "bad_time")? {
            ValueRef::Text(t) => self.tz.utc_us(t).ok_or("bad_time")?,
            _ => return Err("bad_time"),
        };
        if ts > latest {
            return Err("in_future");
        }
        Ok(Sample { point_id: PointId(point), ts, value: raw / divisor, quality: Quality::GOOD })
    }
}

/// `YYYY-MM-DD HH:MM:SS` (or with `T`) local time -> epoch microseconds UTC, with the zone's
/// offset cached per local hour.
struct LocalTime {
    tz: Tz,
    /// Local hour (seconds since the epoch as if local were UTC, / 3600) -> offset in seconds.
    hour: i64,
    offset: Option<i64>,
}

impl LocalTime {
    fn new(tz: Tz) -> LocalTime {
        LocalTime { tz, hour: i64::MIN, offset: None }
    }

    fn utc_us(&mut self, t: &[u8]) -> Option<i64> {
        let local = parse_local(t)?;
        let hour = local.div_euclid(3600);
        if hour != self.hour {
            self.hour = hour;
            self.offset = self.hour_offset(hour);
        }
        let offset = match self.offset {
            Some(o) => o,
            // An hour in which the offset changes: this second on its own.
            None => self.offset_at(local)?,
        };
        Some((local - offset) * 1_000_000)
    }

    /// The offset of a whole local hour, if one offset holds all of it.
    fn hour_offset(&self, hour: i64) -> Option<i64> {
        let a = self.offset_at(hour * 3600)?;
        let b = self.offset_at(hour * 3600 + 3599)?;
        (a == b).then_some(a)
    }

    /// The zone's offset at a local second; the earlier of two in a repeated hour, none in a gap.
    fn offset_at(&self, local: i64) -> Option<i64> {
        use chrono::{Offset, TimeZone};
        let naive = chrono::DateTime::from_timestamp(local, 0)?.naive_utc();
        let dt = self.tz.from_local_datetime(&naive).earliest()?;
        Some(i64::from(dt.offset().fix().local_minus_utc()))
    }
}

/// Seconds since the epoch of a `YYYY-MM-DD HH:MM:SS` read as if it were UTC.
fn parse_local(t: &[u8]) -> Option<i64> {
    let t = t.trim_ascii();
    if t.len() < 19 || !matches!(t[10], b' ' | b'T') || t[4] != b'-' || t[7] != b'-' || t[13] != b':' || t[16] != b':' {
        return None;
    }
    let n = |a: usize, b: usize| -> Option<u32> {
        let mut v = 0u32;
        for &c in &t[a..b] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    if t.len() > 19 && t[19] != b'.' {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(n(0, 4)? as i32, n(5, 7)?, n(8, 10)?)?;
    let time = chrono::NaiveTime::from_hms_opt(n(11, 13)?, n(14, 16)?, n(17, 19)?)?;
    Some(date.and_time(time).and_utc().timestamp())
}

/// Removes the uploads a server that stopped left in `dir` (at the start, no request or job holds
/// one); other files are left alone.
fn remove_uploads(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if e.file_name().to_str().is_some_and(is_upload)
            && let Err(err) = std::fs::remove_file(e.path())
        {
            tracing::warn!("WebView import: could not remove {}: {err}", e.path().display());
        }
    }
}

/// The SHA-256 of a file, hex (what the CLI compares with the server's job).
pub fn sha256_of(path: &Path) -> std::io::Result<(String, u64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((format!("{:x}", hash.finalize()), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use t3_tests::webview_db::{self, POINTS, Spec};

    fn generated(dir: &Path, devices: u32, polls: u64) -> (PathBuf, Spec) {
        let spec = Spec { devices, polls, start: "2025-03-29 23:00:00".into(), step_secs: 300 };
        let path = dir.join("webview.db");
        let rows = webview_db::build(&path, &spec).unwrap();
        assert_eq!(rows, u64::from(devices) * POINTS.len() as u64 * polls);
        (path, spec)
    }

    #[test]
    fn the_real_schema_passes_and_others_are_named() {
        let dir = tempfile::tempdir().unwrap();
        // The empty database from WebView's repository.
        let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/webview/webview_t3_device.db");
        check_schema(&open_checked(&real).map(|_| ()).and_then(|()| Ok(Connection::open(&real)?)).unwrap()).unwrap();
        let (path, _) = generated(dir.path(), 1, 1);
        open_checked(&path).unwrap();

        let other = dir.path().join("other.db");
        std::fs::copy(&path, &other).unwrap();
        let c = Connection::open(&other).unwrap();
        c.execute_batch("ALTER TABLE TRENDLOG_DATA_DETAIL RENAME COLUMN LoggingTime_Fmt TO LoggingTime").unwrap();
        drop(c);
        match open_checked(&other).unwrap_err() {
            WebviewError::Schema { table, column, message } => {
                assert_eq!((table.as_str(), column.as_deref()), ("TRENDLOG_DATA_DETAIL", Some("LoggingTime_Fmt")));
                assert!(message.contains("TRENDLOG_DATA_DETAIL") && message.contains("LoggingTime_Fmt"), "{message}");
            }
            e => panic!("{e:?}"),
        }
        let c = Connection::open(&other).unwrap();
        c.execute_batch("DROP TABLE TRENDLOG_DATA").unwrap();
        drop(c);
        match open_checked(&other).unwrap_err() {
            WebviewError::Schema { table, column: None, message } => {
                assert_eq!(table, "TRENDLOG_DATA");
                assert!(message.contains("table TRENDLOG_DATA is missing"), "{message}");
            }
            e => panic!("{e:?}"),
        }
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, vec![0x5au8; 8192]).unwrap();
        assert!(matches!(open_checked(&garbage).unwrap_err(), WebviewError::NotSqlite(_)));
    }

    /// An upload is removed with its last holder; at a start the uploads left behind are removed,
    /// nothing else.
    #[test]
    fn uploads_are_removed_when_let_go_of_and_at_a_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("webview-ab12-0000000000000001.db");
        std::fs::write(&path, b"x").unwrap();
        let file =
            StoredFile { _held: Arc::new(Removal(path.clone())), path: path.clone(), sha256: "ab12".into(), bytes: 1 };
        let job_copy = file.clone();
        drop(file);
        assert!(path.exists(), "a job still holds it");
        drop(job_copy);
        assert!(!path.exists());

        for name in [
            "upload-00000000000000ff.tmp",
            "webview-cd34-0000000000000002.db",
            "webview-ef56.db",
            "notes.txt",
            "webview.sqlite",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        remove_uploads(dir.path());
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["notes.txt", "webview.sqlite"]);
        remove_uploads(&dir.path().join("missing"));
    }

    #[test]
    fn local_times_become_utc_across_daylight_saving() {
        let mut berlin = LocalTime::new(t3_core::schedule::parse_tz("Europe/Berlin").unwrap());
        let utc = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros();
        assert_eq!(berlin.utc_us(b"2025-03-30 01:59:59"), Some(utc("2025-03-30T00:59:59Z")));
        // 02:00 .. 03:00 does not exist that night: skipped as a bad time.
        assert_eq!(berlin.utc_us(b"2025-03-30 02:30:00"), None);
        assert_eq!(berlin.utc_us(b"2025-03-30 03:00:00"), Some(utc("2025-03-30T01:00:00Z")));
        // 02:30 twice in October: the first.
        assert_eq!(berlin.utc_us(b"2025-10-26 02:30:00"), Some(utc("2025-10-26T00:30:00Z")));
        assert_eq!(berlin.utc_us(b"2025-07-01 12:00:00"), Some(utc("2025-07-01T10:00:00Z")));
        let mut z = LocalTime::new(t3_core::schedule::parse_tz("UTC").unwrap());
        assert_eq!(z.utc_us(b"2025-07-01T12:00:00"), Some(utc("2025-07-01T12:00:00Z")));
        for bad in
            [&b"2025-07-01"[..], b"2025-13-01 00:00:00", b"2025-07-01 24:00:00", b"2025-07-01 12:00:0x", b"yesterday"]
        {
            assert_eq!(z.utc_us(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    /// Every generated row comes out of the reader once, in batches that respect the day limit,
    /// with the value and time stamp the generator says.
    #[test]
    fn the_reader_yields_every_row_once_with_its_value_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let (path, spec) = generated(dir.path(), 2, 700);
        let conn = open_checked(&path).unwrap();
        let src = read_source(&conn, true).unwrap();
        assert_eq!((src.devices.len(), src.points.len(), src.parents.len()), (2, 14, 14));
        assert_eq!(
            src.trendlogs[0].inputs,
            vec![("INPUT".into(), "1".into()), ("INPUT".into(), "2".into()), ("OUTPUT".into(), "1".into())]
        );
        // Point ids 1000 + parent id; divisors as the plan gives them.
        let mut parents = HashMap::new();
        let mut of_parent = HashMap::new();
        for p in &src.parents {
            let d = (p.serial - 100_000) as u32;
            let i = POINTS.iter().position(|x| Some(x.1) == p.point_id.as_deref()).unwrap();
            let divisor = if POINTS[i].3 && POINTS[i].0 == "VARIABLE" { 1.0 } else { 1000.0 };
            parents.insert(p.id, (1000 + p.id as u32, divisor));
            of_parent.insert(1000 + p.id as u32, (d, i));
        }
        let mut reader = Reader {
            parents,
            tz: LocalTime::new(t3_core::schedule::parse_tz("UTC").unwrap()),
            after: 0,
            until: src.last_rowid,
            batch_rows: 1000,
            max_days: 1,
            future_us: 300_000_000,
        };
        let now = chrono::Utc::now().timestamp_micros();
        let mut seen = HashMap::new();
        let mut batches = 0;
        while let Some(b) = reader.next_batch(&conn, now).unwrap() {
            let days: HashSet<i64> = b.samples.iter().map(|s| s.ts.div_euclid(DAY_US)).collect();
            assert_eq!(days.len(), 1, "a batch on one UTC day (max_days = 1)");
            assert!(b.skipped.is_empty());
            reader.after = b.last_rowid;
            batches += 1;
            for s in b.samples {
                assert!(seen.insert((s.point_id.0, s.ts), s.value).is_none(), "a sample twice");
            }
        }
        assert_eq!(seen.len() as u64, src.rows);
        assert!(batches > 10);
        let start = chrono::NaiveDateTime::parse_from_str(&spec.start, "%Y-%m-%d %H:%M:%S").unwrap().and_utc();
        for k in 0..spec.polls {
            let ts = (start + chrono::Duration::seconds((k * spec.step_secs) as i64)).timestamp_micros();
            for (&point, &(d, i)) in &of_parent {
                assert_eq!(seen[&(point, ts)], webview_db::expected(d, i, k).1, "point {point} poll {k}");
            }
        }
    }

    #[test]
    fn rows_that_cannot_be_stored_are_counted_by_reason() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = generated(dir.path(), 1, 2);
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "INSERT INTO TRENDLOG_DATA_DETAIL VALUES (1, 'n/a', '2025-01-01 00:00:00');
             INSERT INTO TRENDLOG_DATA_DETAIL VALUES (1, '5', 'soon');
             INSERT INTO TRENDLOG_DATA_DETAIL VALUES (999, '5', '2025-01-01 00:00:00');
             INSERT INTO TRENDLOG_DATA_DETAIL VALUES (1, '5', '2999-01-01 00:00:00');",
        )
        .unwrap();
        drop(c);
        let conn = open_checked(&path).unwrap();
        let src = read_source(&conn, false).unwrap();
        let parents = src.parents.iter().map(|p| (p.id, (p.id as u32, 1000.0))).collect();
        let mut reader = Reader {
            parents,
            tz: LocalTime::new(t3_core::schedule::parse_tz("UTC").unwrap()),
            after: 0,
            until: src.last_rowid,
            batch_rows: 100,
            max_days: 31,
            future_us: 0,
        };
        let b = reader.next_batch(&conn, chrono::Utc::now().timestamp_micros()).unwrap().unwrap();
        assert_eq!(b.rows, 14 + 4);
        assert_eq!(b.samples.len(), 14);
        let want: BTreeMap<String, u64> = [("bad_value", 1), ("bad_time", 1), ("unknown_series", 1), ("in_future", 1)]
            .map(|(k, v)| (k.to_owned(), v))
            .into();
        assert_eq!(b.skipped, want);
    }
}
