//! CSV configuration and history: `GET /api/t3000/config/devices.csv` and `points.csv` export what
//! people configure; `POST /api/t3000/import/csv?kind=devices|points|samples` reads such a file
//! back (or samples from another system), checks every row with the rules the REST handlers use
//! (the same functions), and answers a preview; `&apply=true` applies it, all or nothing, each
//! change audited as `import.csv`. The files are read and written by `service::import::csv`;
//! devices are checked, stored and polled by `service::devices`, as over `/devices`.

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::model::device::DeviceRecord;
use crate::model::place::{Building, Floor, Room};
use crate::model::point::PointRecord;
use crate::service::auth::Principal;
use crate::service::devices::{Change, Devices, Place};
use crate::service::import::csv::{
    self as sheet, Action, CsvError, DeviceEntry, KnownPoints, Plan, PointEntry, RowError, RowPlan, SampleRules,
    SampleSummary,
};
use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use t3_core::config::{Config, DeviceConfig, PointOverride};

/// What a CSV import holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CsvKind {
    /// `devices.csv`: one device a row, matched by name.
    Devices,
    /// `points.csv`: one point a row, matched by device and name.
    Points,
    /// History: `point_id` or `point`, `time`, `value`, `quality`.
    Samples,
}

/// Parameters of a CSV import.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    pub kind: CsvKind,
    /// Apply the file; without it (or `false`) the answer only says what would happen.
    #[serde(default)]
    pub apply: bool,
    /// Samples: the IANA time zone of times written without an offset (`2026-11-26 10:00:00`);
    /// UTC when absent.
    #[param(schema_with = crate::http::rules::time_zone_schema)]
    pub tz: Option<String>,
}

/// What an import of devices or points does (or would do), row by row.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConfigImport {
    pub kind: CsvKind,
    /// Whether it was applied (`apply=true`), or is a preview.
    pub applied: bool,
    /// Records read (rows with every cell empty are skipped).
    pub rows: usize,
    pub created: usize,
    pub changed: usize,
    pub unchanged: usize,
    /// The rows that create or change something, with the cells that change.
    pub changes: Vec<RowPlan>,
}

/// What an import of samples stores (or would store).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SamplesImport {
    pub kind: CsvKind,
    pub applied: bool,
    #[serde(flatten)]
    pub summary: SampleSummary,
    /// Samples stored (0 in a preview).
    pub stored: u64,
}

/// What an import answers: a [`ConfigImport`] for devices and points, a [`SamplesImport`] for
/// samples.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ImportAnswer {
    Config(ConfigImport),
    Samples(SamplesImport),
}

/// The answer to a file with mistakes: every one, by row and column (nothing was applied).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CsvErrorBody {
    pub error: CsvErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CsvErrorDetail {
    /// `invalid_csv`.
    pub code: String,
    /// The first errors in words.
    pub message: String,
    /// How many errors there are.
    pub total: usize,
    /// Every error (at most 1000), in row order.
    pub errors: Vec<RowError>,
}

/// An import's failure: an API error, or a file with mistakes.
#[derive(Debug)]
pub enum ImportFailure {
    Api(ApiError),
    Csv(CsvError),
}

impl From<ApiError> for ImportFailure {
    fn from(e: ApiError) -> Self {
        ImportFailure::Api(e)
    }
}

impl From<CsvError> for ImportFailure {
    fn from(e: CsvError) -> Self {
        ImportFailure::Csv(e)
    }
}

impl From<t3_storage::Error> for ImportFailure {
    fn from(e: t3_storage::Error) -> Self {
        ImportFailure::Api(e.into())
    }
}

impl IntoResponse for ImportFailure {
    fn into_response(self) -> Response {
        match self {
            ImportFailure::Api(e) => e.into_response(),
            ImportFailure::Csv(CsvError::Io(e)) => {
                ApiError::internal(format!("reading an uploaded CSV: {e}")).into_response()
            }
            ImportFailure::Csv(e @ CsvError::Invalid { .. }) => {
                let message = e.to_string();
                let CsvError::Invalid { errors, total } = e else { unreachable!("matched above") };
                let body =
                    CsvErrorBody { error: CsvErrorDetail { code: "invalid_csv".into(), message, total, errors } };
                (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
            }
        }
    }
}

fn csv_response(bytes: Vec<u8>, file: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        ],
        bytes,
    )
        .into_response()
}

// ---- the current configuration as rows ----

fn place_names(state: &AppState, d: &DeviceRecord) -> (Option<String>, Option<String>, Option<String>) {
    (
        d.building_id.and_then(|id| state.catalog.get::<Building>(id)).map(|b| b.name),
        d.floor_id.and_then(|id| state.catalog.get::<Floor>(id)).map(|f| f.name),
        d.room_id.and_then(|id| state.catalog.get::<Room>(id)).map(|r| r.name),
    )
}

/// Every device (by name) with its row.
fn device_rows(state: &AppState) -> Vec<(DeviceRecord, DeviceEntry)> {
    let mut out: Vec<(DeviceRecord, DeviceEntry)> = state
        .catalog
        .list::<DeviceRecord>()
        .into_iter()
        .map(|d| {
            let (building, floor, room) = place_names(state, &d);
            let entry = DeviceEntry {
                config: d.config.clone(),
                building,
                floor,
                room,
                description: d.description.clone(),
                source: d.source.clone(),
            };
            (d, entry)
        })
        .collect();
    out.sort_by(|a, b| a.1.config.name.cmp(&b.1.config.name));
    out
}

/// Where a point row comes from: its stored id.
#[derive(Debug, Clone, Copy)]
struct PointSource {
    id: u32,
}

/// Every polled device point and every manual point, with its row.
fn point_rows(state: &AppState) -> Vec<(PointSource, PointEntry)> {
    let records: HashMap<i64, PointRecord> =
        state.catalog.list::<PointRecord>().into_iter().map(|r| (r.id, r)).collect();
    let mut out = Vec::new();
    for (d, _) in device_rows(state) {
        for p in crate::service::collection::device_points(&state.collector, &d.config.name) {
            let r = records.get(&i64::from(p.id));
            let o = d.config.points.iter().find(|o| o.name.eq_ignore_ascii_case(&p.name));
            let entry = PointEntry {
                id: Some(p.id),
                device: Some(d.config.name.clone()),
                name: p.name.clone(),
                label: r.and_then(|r| r.label.clone()),
                description: r.and_then(|r| r.description.clone()),
                units: r.and_then(|r| r.units.clone()),
                interval_ms: o.and_then(|o| o.poll_interval_ms),
                record: o.and_then(|o| o.record.clone()),
                retention_days: r.and_then(|r| r.retention_days),
                line: r.and_then(|r| r.line),
            };
            out.push((PointSource { id: p.id }, entry));
        }
    }
    let mut manual: Vec<&PointRecord> = records.values().filter(|r| r.device_id.is_none()).collect();
    manual.sort_by(|a, b| a.name.cmp(&b.name));
    for r in manual {
        let entry = PointEntry {
            id: Some(r.id as u32),
            device: None,
            name: r.name.clone(),
            label: r.label.clone(),
            description: r.description.clone(),
            units: r.units.clone(),
            interval_ms: None,
            record: None,
            retention_days: r.retention_days,
            line: r.line,
        };
        out.push((PointSource { id: r.id as u32 }, entry));
    }
    out
}

/// The devices as CSV: what a `[[devices]]` table holds (per-point settings are in points.csv),
/// plus where each is (building, floor and room by name) and its description. UTF-8 with a byte
/// order mark, CRLF, `,`; import it back with `POST /api/t3000/import/csv?kind=devices`.
#[utoipa::path(get, path = "/api/t3000/config/devices.csv", tag = "import",
    responses((status = 200, description = "Columns: name, device_type, protocol, ip_address, port, serial_port, baud_rate, parity, unit_id, profile, poll_interval_ms, timeout_ms, enabled, max_registers, max_gap, one_request_per_point, record (every / change), deadband, deadband_percent, heartbeat_secs, options (a plugin device's keys as a JSON object), building, floor, room, description, source (config / api; not imported)", content_type = "text/csv", body = String),
        (status = 401, body = ErrorBody)))]
pub async fn export_devices(State(state): State<AppState>) -> Response {
    let rows: Vec<DeviceEntry> = device_rows(&state).into_iter().map(|(_, e)| e).collect();
    csv_response(sheet::write_devices(&rows), "devices.csv")
}

/// The points as CSV: every polled device point and every manual point, with what people give
/// them and their own recording settings (empty: the device's).
#[utoipa::path(get, path = "/api/t3000/config/points.csv", tag = "import",
    responses((status = 200, description = "Columns: id (not imported), device (empty for a manual point), name, label, description, units, interval_ms, record (every / change; empty: the device's), deadband, deadband_percent, heartbeat_secs, retention_days, line (step / linear; empty: the server's default)", content_type = "text/csv", body = String),
        (status = 401, body = ErrorBody)))]
pub async fn export_points(State(state): State<AppState>) -> Response {
    let rows: Vec<PointEntry> = point_rows(&state).into_iter().map(|(_, e)| e).collect();
    csv_response(sheet::write_points(&rows), "points.csv")
}

/// Imports a CSV file: devices, points (both as exported above) or samples. Every row is checked
/// first, with the rules of POST/PUT /devices, /points and POST /samples; a file with any mistake
/// changes nothing and is answered with every error, its row (1 = the header), line, column, cell
/// (`F4`) and key. Without `apply=true` nothing is changed: the answer says what each row would
/// create or change, cell by cell. Devices and points are created or changed, never deleted; a
/// column missing from the file leaves that field as it is. Applied: devices and points in one
/// catalog transaction, then polling restarted for the devices that changed; samples through the
/// ingest path of POST /samples, the file streamed (never held whole). Each change is audited as
/// `import.csv`. Accepted: UTF-8 (with or without a byte order mark), CRLF or LF, `,` `;` or tab
/// separators, quoted cells; in a `;` file a decimal comma. UTF-16 and Latin-1 are refused.
#[utoipa::path(post, path = "/api/t3000/import/csv", tag = "import", params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "The CSV file"),
    responses(
        (status = 200, description = "devices / points: a ConfigImport; samples: a SamplesImport", body = ImportAnswer),
        (status = 400, description = "A parameter is wrong (kind, tz)", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 413, description = "devices / points: larger than server.max_body_bytes", body = ErrorBody),
        (status = 422, description = "The file has mistakes (`invalid_csv`): every one listed; nothing was applied", body = CsvErrorBody),
        (status = 503, description = "Samples: writes are refused now (`disk_full`: the disk is below its floor; the WAL refuses writes; ...); the answer says how many were stored", body = ErrorBody)))]
pub async fn import(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<ImportQuery>,
    body: Body,
) -> Result<Json<ImportAnswer>, ImportFailure> {
    Ok(Json(match q.kind {
        CsvKind::Devices => {
            let bytes = read_body(&state, body).await?;
            ImportAnswer::Config(import_devices(&state, &who, &bytes, q.apply).await?)
        }
        CsvKind::Points => {
            let bytes = read_body(&state, body).await?;
            ImportAnswer::Config(import_points(&state, &who, &bytes, q.apply).await?)
        }
        CsvKind::Samples => ImportAnswer::Samples(import_samples(&state, &who, body, q).await?),
    }))
}

async fn read_body(state: &AppState, body: Body) -> ApiResult<axum::body::Bytes> {
    let limit = usize::try_from(state.storage.config().server.max_body_bytes).unwrap_or(usize::MAX);
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the file is larger than server.max_body_bytes ({limit} bytes): {e}"),
        )
    })
}

fn summary(kind: CsvKind, applied: bool, rows: &[RowPlan]) -> ConfigImport {
    let count = |a: Action| rows.iter().filter(|r| r.action == a).count();
    ConfigImport {
        kind,
        applied,
        rows: rows.len(),
        created: count(Action::Create),
        changed: count(Action::Change),
        unchanged: count(Action::Unchanged),
        changes: rows.iter().filter(|r| r.action != Action::Unchanged).cloned().collect(),
    }
}

/// `key: message` of a device check, as its column and message.
fn device_error(message: &str) -> (&'static str, String) {
    match message.split_once(": ") {
        Some((key, rest)) if !key.contains(' ') => (sheet::device_column(key), rest.to_owned()),
        _ => ("name", message.to_owned()),
    }
}

fn audit_row(
    state: &AppState,
    who: &Principal,
    target: String,
    old: Option<serde_json::Value>,
    new: Option<serde_json::Value>,
    result: &str,
) {
    state.audit.record(who.remote.clone(), &who.actor(), "import.csv", Some(target), old, new, result);
}

// ---- devices ----

/// Finds a place by its names: a building, a floor in it, a room on that floor.
fn resolve_places(state: &AppState, e: &DeviceEntry) -> Result<Place, (&'static str, String)> {
    let buildings = state.catalog.list::<Building>();
    let building = match &e.building {
        None => None,
        Some(name) => {
            let found: Vec<&Building> = buildings.iter().filter(|b| b.name == *name).collect();
            match found.as_slice() {
                [b] => Some(b.id),
                [] => return Err(("building", format!("no building \"{name}\" (create it first)"))),
                _ => return Err(("building", format!("{} buildings are named \"{name}\"", found.len()))),
            }
        }
    };
    let floor = match &e.floor {
        None => None,
        Some(name) => {
            let Some(b) = building else { return Err(("floor", "a floor needs its building".into())) };
            let floors: Vec<Floor> = state
                .catalog
                .read::<Floor, _>(|f| f.values().filter(|f| f.building_id == b && f.name == *name).cloned().collect());
            match floors.as_slice() {
                [f] => Some(f.id),
                [] => {
                    return Err((
                        "floor",
                        format!("building \"{}\" has no floor \"{name}\"", e.building.as_deref().unwrap_or("")),
                    ));
                }
                _ => return Err(("floor", format!("{} floors of the building are named \"{name}\"", floors.len()))),
            }
        }
    };
    let room = match &e.room {
        None => None,
        Some(name) => {
            let Some(f) = floor else { return Err(("room", "a room needs its floor".into())) };
            let rooms: Vec<Room> = state
                .catalog
                .read::<Room, _>(|r| r.values().filter(|r| r.floor_id == f && r.name == *name).cloned().collect());
            match rooms.as_slice() {
                [r] => Some(r.id),
                [] => {
                    return Err((
                        "room",
                        format!("floor \"{}\" has no room \"{name}\"", e.floor.as_deref().unwrap_or("")),
                    ));
                }
                _ => return Err(("room", format!("{} rooms of the floor are named \"{name}\"", rooms.len()))),
            }
        }
    };
    Ok((building, floor, room))
}

async fn import_devices(
    state: &AppState,
    who: &Principal,
    bytes: &[u8],
    apply: bool,
) -> Result<ConfigImport, ImportFailure> {
    let current = device_rows(state);
    let entries: Vec<DeviceEntry> = current.iter().map(|(_, e)| e.clone()).collect();
    let Plan { sheet, rows, mut errors } = sheet::plan_devices(bytes, &entries)?;
    let mut records: Vec<Option<DeviceRecord>> = Vec::with_capacity(rows.len());
    for r in &rows {
        let key = Some(r.plan.key.as_str());
        if r.plan.action == Action::Unchanged {
            records.push(None);
            continue;
        }
        let old = r.current.map(|i| &current[i].0);
        if let Some(old) = old.filter(|o| Devices::keeps_file_definition(o, &r.entry.config).is_err()) {
            let column = r
                .plan
                .fields
                .iter()
                .map(|f| f.column.as_str())
                .find(|c| !matches!(*c, "building" | "floor" | "room" | "description"));
            errors.push(sheet.error(&r.row, column, key, format!(
                "device \"{}\" is defined in the configuration file; change it there (only building, floor, room and description change here)",
                old.config.name
            )));
            records.push(None);
            continue;
        }
        if let Err(e) = state.devices.check(&r.entry.config, old.map(|o| o.id)) {
            let (column, message) = device_error(&e.to_string());
            errors.push(sheet.error(&r.row, Some(column), key, message));
            records.push(None);
            continue;
        }
        match resolve_places(state, &r.entry) {
            Ok((building_id, floor_id, room_id)) => records.push(Some(DeviceRecord {
                id: old.map_or(0, |o| o.id),
                config: r.entry.config.clone(),
                building_id,
                floor_id,
                room_id,
                description: r.entry.description.clone(),
                source: old.map_or_else(|| "api".to_owned(), |o| o.source.clone()),
            })),
            Err((column, message)) => {
                errors.push(sheet.error(&r.row, Some(column), key, message));
                records.push(None);
            }
        }
    }
    // The rows against each other (names, serial ports shared at another speed), as the
    // configuration checks all its devices.
    if errors.is_empty() {
        let mut all: Vec<DeviceConfig> = Vec::new();
        let mut row_of: Vec<Option<usize>> = Vec::new();
        let replaced: HashMap<i64, usize> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| records[i].as_ref().filter(|_| r.current.is_some()).map(|d| (d.id, i)))
            .collect();
        for (d, _) in &current {
            match replaced.get(&d.id) {
                Some(i) => {
                    all.push(rows[*i].entry.config.clone());
                    row_of.push(Some(*i));
                }
                None => {
                    all.push(d.config.clone());
                    row_of.push(None);
                }
            }
        }
        for (i, r) in rows.iter().enumerate() {
            if r.current.is_none() {
                all.push(r.entry.config.clone());
                row_of.push(Some(i));
            }
        }
        if let Err(e) = (Config { devices: all, ..Config::default() }).validate() {
            let key = e.key.clone().unwrap_or_default();
            let index =
                key.strip_prefix("devices[").and_then(|k| k.split(']').next()).and_then(|n| n.parse::<usize>().ok());
            let row = index.and_then(|i| row_of.get(i).copied().flatten()).unwrap_or(0);
            let field = key.split_once("].").map_or("name", |(_, f)| sheet::device_column(f));
            let r = &rows[row];
            errors.push(sheet.error(&r.row, Some(field), Some(&r.plan.key), e.message.clone()));
        }
    }
    errors.finish()?;
    let plans: Vec<RowPlan> = rows.iter().map(|r| r.plan.clone()).collect();
    if !apply {
        return Ok(summary(CsvKind::Devices, false, &plans));
    }
    let changes: Vec<Change> = rows
        .iter()
        .zip(records)
        .filter_map(|(r, new)| Some(Change { old: r.current.map(|c| current[c].0.clone()), new: new? }))
        .collect();
    state.devices.apply(&who.issuer(), "import.csv", &changes).await.map_err(ApiError::from)?;
    Ok(summary(CsvKind::Devices, true, &plans))
}

// ---- points ----

/// The column of a point row a device check's key (`points[3].record.deadband`) is about.
fn point_column(key: &str) -> &'static str {
    let field = key.split_once("].").map_or("", |(_, f)| f);
    match field {
        "poll_interval_ms" => "interval_ms",
        f if f.starts_with("record.") => match &f["record.".len()..] {
            "deadband" => "deadband",
            "deadband_percent" => "deadband_percent",
            "heartbeat_secs" => "heartbeat_secs",
            _ => "record",
        },
        "record" => "record",
        _ => "name",
    }
}

async fn import_points(
    state: &AppState,
    who: &Principal,
    bytes: &[u8],
    apply: bool,
) -> Result<ConfigImport, ImportFailure> {
    let current = point_rows(state);
    let entries: Vec<PointEntry> = current.iter().map(|(_, e)| e.clone()).collect();
    let Plan { sheet, rows, mut errors } = sheet::plan_points(bytes, &entries)?;
    let devices_now = state.catalog.list::<DeviceRecord>();
    let config_retention: Vec<u32> =
        state.storage.config_retention().points.iter().flat_map(|o| o.points.iter().copied()).collect();
    // The devices whose definitions change, with the row of each override index.
    let mut changed: BTreeMap<i64, (DeviceRecord, HashMap<usize, usize>)> = BTreeMap::new();
    // For each row: the device (if any) and the point's name as its profile spells it.
    let mut targets: Vec<Option<(Option<DeviceRecord>, String)>> = vec![None; rows.len()];
    for (i, r) in rows.iter().enumerate() {
        if r.plan.action == Action::Unchanged {
            continue;
        }
        let key = Some(r.plan.key.as_str());
        let e = &r.entry;
        let mut fail = |column: &str, message: String| errors.push(sheet.error(&r.row, Some(column), key, message));
        let old = r.current.map(|c| &current[c]);
        let polling_changed = old.is_none_or(|(_, o)| o.interval_ms != e.interval_ms || o.record != e.record);
        if let Err(err) = crate::model::check::check_trend(None, None, e.retention_days) {
            fail("retention_days", err.message.trim_start_matches("trend.retention_days ").to_owned());
            continue;
        }
        if let Some(id) = old.map(|(s, _)| s.id)
            && config_retention.contains(&id)
            && old.is_some_and(|(_, o)| o.retention_days != e.retention_days)
        {
            fail(
                "retention_days",
                format!("the retention of point {id} is set in the configuration file ([[retention.points]])"),
            );
            continue;
        }
        let Some(device_name) = &e.device else {
            if e.interval_ms.is_some() || e.record.is_some() {
                fail(
                    if e.interval_ms.is_some() { "interval_ms" } else { "record" },
                    "a manual point (no device) is not polled".into(),
                );
                continue;
            }
            targets[i] = Some((None, e.name.clone()));
            continue;
        };
        let Some(d) = devices_now.iter().find(|d| d.config.name.eq_ignore_ascii_case(device_name)) else {
            fail("device", format!("no device \"{device_name}\""));
            continue;
        };
        let d = changed.get(&d.id).map_or_else(|| d.clone(), |(d, _)| d.clone());
        // The point's name as the device has it.
        let name = match old {
            Some((_, o)) => o.name.clone(),
            None if d.config.protocol.plugin().is_some() => {
                fail(
                    "name",
                    format!(
                        "device \"{}\" ({}) does not list a point \"{}\"",
                        d.config.name, d.config.protocol, e.name
                    ),
                );
                continue;
            }
            None => {
                let Some(profile) = t3_drivers::profile::ProfileLibrary::builtin().get(&d.config.profile) else {
                    fail("device", format!("device \"{}\" has an unknown profile", d.config.name));
                    continue;
                };
                match profile.point(&e.name) {
                    None => {
                        fail(
                            "name",
                            format!(
                                "device \"{}\" (profile \"{}\") has no point \"{}\"",
                                d.config.name, profile.name, e.name
                            ),
                        );
                        continue;
                    }
                    Some(p) if p.codec.is_text() => {
                        fail("name", format!("\"{}\" is text, not a value", p.name));
                        continue;
                    }
                    Some(p) => p.name.clone(),
                }
            }
        };
        targets[i] = Some((Some(d.clone()), name.clone()));
        if !polling_changed {
            continue;
        }
        if d.source == "config" {
            fail(
                if old.is_some_and(|(_, o)| o.interval_ms != e.interval_ms) { "interval_ms" } else { "record" },
                format!("device \"{}\" is defined in the configuration file; change its points there", d.config.name),
            );
            continue;
        }
        let entry = changed.entry(d.id).or_insert_with(|| (d.clone(), HashMap::new()));
        let points = &mut entry.0.config.points;
        let at = match points.iter().position(|o| o.name.eq_ignore_ascii_case(&name)) {
            Some(at) => at,
            None => {
                points.push(PointOverride { name: name.clone(), enabled: true, poll_interval_ms: None, record: None });
                points.len() - 1
            }
        };
        let o = &mut points[at];
        o.enabled = true;
        o.poll_interval_ms = e.interval_ms;
        o.record.clone_from(&e.record);
        entry.1.insert(at, i);
    }
    // Each changed device checked whole, as PUT /devices does; an error names the row of its point.
    for (d, row_of) in changed.values() {
        if let Err(e) = state.devices.check(&d.config, Some(d.id)) {
            let e = e.to_string();
            let (key, message) = e.split_once(": ").unwrap_or(("", e.as_str()));
            let index =
                key.strip_prefix("points[").and_then(|k| k.split(']').next()).and_then(|n| n.parse::<usize>().ok());
            let row = index.and_then(|i| row_of.get(&i)).or_else(|| row_of.values().min()).copied().unwrap_or(0);
            let r = &rows[row];
            errors.push(sheet.error(&r.row, Some(point_column(key)), Some(&r.plan.key), message.to_owned()));
        }
    }
    errors.finish()?;
    let plans: Vec<RowPlan> = rows.iter().map(|r| r.plan.clone()).collect();
    if !apply {
        return Ok(summary(CsvKind::Points, false, &plans));
    }
    // Ids: a device point's comes from the registry (stable by device and name), a new manual
    // point's too.
    let mut ids: Vec<Option<u32>> = vec![None; rows.len()];
    for (i, t) in targets.iter().enumerate() {
        if let Some((d, name)) = t {
            let device = d.as_ref().map_or("", |d| d.config.name.as_str());
            ids[i] = Some(rows[i].current.map_or_else(|| state.registry.id(device, name), |c| current[c].0.id));
        }
    }
    state.registry.save().map_err(ApiError::internal)?;
    state.catalog.transaction(|tx| {
        for (d, _) in changed.values() {
            tx.put(d.clone())?;
        }
        for (i, t) in targets.iter().enumerate() {
            let (Some((d, name)), Some(id)) = (t, ids[i]) else { continue };
            let e = &rows[i].entry;
            let mut rec = tx.rows::<PointRecord>().get(&i64::from(id)).cloned().unwrap_or_else(|| PointRecord {
                id: i64::from(id),
                device_id: d.as_ref().map(|d| d.id),
                name: name.clone(),
                ..Default::default()
            });
            rec.label.clone_from(&e.label);
            rec.description.clone_from(&e.description);
            rec.units.clone_from(&e.units);
            rec.retention_days = e.retention_days;
            rec.line = e.line;
            tx.put(rec)?;
        }
        Ok(())
    })?;
    crate::service::retention::push_retention(&state.catalog, &state.storage);
    let mut failed: HashMap<i64, String> = HashMap::new();
    for (d, _) in changed.values() {
        if let Err(e) = state.devices.restart(&d.config.name, &d.config).await {
            tracing::error!(device = %d.config.name, error = %e, "a device changed by an import does not poll");
            failed.insert(d.id, format!("stored, but polling did not restart: {e}"));
        }
    }
    for (i, t) in targets.iter().enumerate() {
        let (Some((d, _)), Some(id)) = (t, ids[i]) else { continue };
        let old = rows[i].current.map(|c| point_json(&current[c].1));
        let result = d.as_ref().and_then(|d| failed.get(&d.id)).map_or("ok", String::as_str);
        audit_row(state, who, format!("point:{id}"), old, Some(point_json(&rows[i].entry)), result);
    }
    Ok(summary(CsvKind::Points, true, &plans))
}

/// A point row as the audit log keeps it: its cells by column.
fn point_json(p: &PointEntry) -> serde_json::Value {
    let cells = sheet::point_cells(p);
    serde_json::Value::Object(
        sheet::POINT_COLUMNS
            .iter()
            .zip(cells)
            .filter(|(c, _)| **c != "id")
            .map(|(c, v)| ((*c).to_owned(), v.into()))
            .collect(),
    )
}

// ---- samples ----

/// The names samples may give a point: `<device> <point>`, its display name (label), a manual
/// point's name.
fn known_points(state: &AppState) -> KnownPoints {
    let mut known = KnownPoints::default();
    let labels = crate::http::routes::points::export_labels(state);
    for (s, e) in point_rows(state) {
        let mut names = vec![e.key()];
        if let Some((l, _)) = labels.get(&s.id) {
            names.push(l.name.clone());
        }
        known.add(s.id, names);
    }
    known
}

/// A file under the data directory, removed when dropped.
struct Spool(std::path::PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn spool(state: &AppState, body: Body) -> Result<Spool, ImportFailure> {
    let dir = state.storage.config().storage.data_dir.join("tmp");
    std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
    let path = dir.join(format!("import-{}-{}.csv", std::process::id(), rand::random::<u64>()));
    let spool = Spool(path);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&spool.0).map_err(ApiError::internal)?);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("invalid_body", format!("reading the upload: {e}")))?;
        file.write_all(&chunk).map_err(ApiError::internal)?;
    }
    file.flush().map_err(ApiError::internal)?;
    Ok(spool)
}

/// Samples per ingest batch.
const BATCH: usize = 10_000;

async fn import_samples(
    state: &AppState,
    who: &Principal,
    body: Body,
    q: ImportQuery,
) -> Result<SamplesImport, ImportFailure> {
    let tz = match q.tz.as_deref() {
        None => "UTC".parse().map_err(ApiError::internal)?,
        Some(name) => t3_core::schedule::parse_tz(name).map_err(|_| {
            ApiError::bad_request(
                "invalid_time_zone",
                format!("tz: unknown time zone \"{name}\": use an IANA name such as Europe/Berlin"),
            )
        })?,
    };
    let file = spool(state, body).await?;
    let known = std::sync::Arc::new(known_points(state));
    let rules = SampleRules { tz, now_us: state.now_us(), ingest: state.storage.config().ingest.clone() };
    // First pass: every row checked, nothing stored.
    let path = file.0.clone();
    let (k, r) = (known.clone(), rules.clone());
    let summary = tokio::task::spawn_blocking(move || {
        let f = std::io::BufReader::new(std::fs::File::open(path)?);
        sheet::read_samples(f, &k, &r, |_| Ok(()))
    })
    .await
    .map_err(ApiError::internal)??;
    if !q.apply {
        return Ok(SamplesImport { kind: CsvKind::Samples, applied: false, summary, stored: 0 });
    }
    // Second pass: batches on at most `ingest.max_days_per_batch` days, through the ingest path.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<t3_core::Sample>>(2);
    let path = file.0.clone();
    let max_days = rules.ingest.max_days_per_batch as usize;
    let reader = tokio::task::spawn_blocking(move || {
        let f = std::io::BufReader::new(std::fs::File::open(path)?);
        let mut batch = Vec::with_capacity(BATCH);
        let mut days = std::collections::HashSet::new();
        const DAY_US: i64 = 86_400_000_000;
        let closed = || CsvError::Io(std::io::Error::other("the import stopped"));
        sheet::read_samples(f, &known, &rules, |s| {
            let day = s.ts.div_euclid(DAY_US);
            if batch.len() >= BATCH || (!days.contains(&day) && days.len() >= max_days) {
                tx.blocking_send(std::mem::take(&mut batch)).map_err(|_| closed())?;
                days.clear();
            }
            days.insert(day);
            batch.push(s);
            Ok(())
        })?;
        if !batch.is_empty() {
            tx.blocking_send(batch).map_err(|_| closed())?;
        }
        Ok::<_, CsvError>(())
    });
    let mut stored = 0u64;
    let mut failure = None;
    while let Some(batch) = rx.recv().await {
        let n = batch.len() as u64;
        if let Err(e) = state.storage.ingest(batch).await {
            failure = Some(e);
            break;
        }
        stored += n;
    }
    drop(rx);
    let read = reader.await.map_err(ApiError::internal)?;
    let outcome = serde_json::json!({ "samples": summary.samples, "points": summary.points, "from": summary.from, "to": summary.to, "stored": stored });
    if let Some(e) = failure {
        audit_row(state, who, "samples".into(), None, Some(outcome), &format!("stopped after {stored} samples: {e}"));
        let mut err: ApiError = e.into();
        err.message = format!(
            "{} ({stored} of {} samples were stored; importing the file again is safe: a sample of the same point and time replaces the one stored)",
            err.message, summary.samples
        );
        return Err(err.into());
    }
    if let Err(e) = read
        && stored < summary.samples
    {
        return Err(e.into());
    }
    audit_row(state, who, "samples".into(), None, Some(outcome), "ok");
    Ok(SamplesImport { kind: CsvKind::Samples, applied: true, summary, stored })
}
