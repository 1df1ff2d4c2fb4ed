//! Devices in the catalog: list, read, add, change, remove, their points and status, discovery.
//!
//! A device is the same JSON object as a `[[devices]]` table of the configuration, plus where it
//! is (`building_id`, `floor_id`, `room_id`) and a `description`. Devices of the configuration
//! file are copied into the catalog at every start (`source: "config"`); the file stays their
//! source, so over the API only their place and description change (anything else: 409). Devices
//! added over the API (`source: "api"`) live in the catalog alone. Every change reaches the
//! collector at once: a new device starts polling, a changed one restarts, a deleted one stops.
//! The handlers read the request and answer; [`crate::service::devices`] checks, stores, polls
//! and audits each change.

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::routes::{Page, Paged, json_body};
use crate::model::custom_range::CustomRanges;
use crate::model::device::{DevicePoint, DeviceRecord};
use crate::service::auth::Principal;
use crate::service::devices::DeviceDraft;
use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use t3_core::config::{DeviceConfig, Protocol};
use t3_drivers::collector::DeviceStatus;
use t3_drivers::discovery;
use t3_drivers::profile::PointType;

/// How many points of each type a device is polled for.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct PointCounts {
    pub inputs: usize,
    pub outputs: usize,
    pub variables: usize,
    /// Registers of library products that are not T3 inputs, outputs or variables.
    pub registers: usize,
    pub total: usize,
}

/// A device as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeviceResponse {
    pub id: i64,
    pub name: String,
    pub device_type: String,
    pub protocol: String,
    pub ip_address: Option<String>,
    /// The TCP or UDP port: 502 for Modbus TCP when not set; a plugin device's when set (else
    /// its plugin's default); none for Modbus RTU.
    pub port: Option<u16>,
    pub serial_port: Option<String>,
    pub baud_rate: u32,
    pub unit_id: u8,
    pub profile: String,
    /// A plugin device's own keys (BACnet's `device_instance`), as its plugin checked them; empty
    /// for Modbus. A PUT may send them here or beside the other fields.
    #[schema(value_type = Object)]
    pub options: serde_json::Map<String, serde_json::Value>,
    pub poll_interval_ms: u64,
    pub enabled: bool,
    /// Whether the device answers now.
    pub online: bool,
    /// When it last answered (RFC 3339, UTC).
    pub last_seen: Option<String>,
    pub point_counts: PointCounts,
    pub building_id: Option<i64>,
    pub floor_id: Option<i64>,
    pub room_id: Option<i64>,
    pub description: Option<String>,
    /// `config` or `api`.
    pub source: String,
    /// Communication status: state (`connecting`, `online`, `offline`, `disabled`), last_seen
    /// (epoch microseconds), rtt_ms, error counters, connection_quality (0..1), last_error; null
    /// while the device is not polled.
    #[schema(value_type = Option<Object>)]
    pub status: Option<DeviceStatus>,
    /// The whole device definition, as in `[[devices]]`.
    #[schema(value_type = Object)]
    pub config: DeviceConfig,
}

/// Filters and paging of the device list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeviceQuery {
    /// Case-insensitive part of the name, address or description.
    pub q: Option<String>,
    pub building_id: Option<i64>,
    pub floor_id: Option<i64>,
    pub room_id: Option<i64>,
    pub online: Option<bool>,
    pub device_type: Option<String>,
    pub profile: Option<String>,
    pub offset: Option<usize>,
    #[param(value_type = Option<crate::http::rules::LimitParam>, inline)]
    pub limit: Option<usize>,
}

fn counts(state: &AppState, name: &str) -> PointCounts {
    let mut c = PointCounts::default();
    if let Some(spec) = state.collector.device(name) {
        for cp in &spec.points {
            match spec.point_of(cp).point_type {
                PointType::Input => c.inputs += 1,
                PointType::Output => c.outputs += 1,
                PointType::Variable => c.variables += 1,
                PointType::Register => c.registers += 1,
            }
            c.total += 1;
        }
    }
    c
}

pub(crate) fn response(state: &AppState, d: &DeviceRecord) -> DeviceResponse {
    let status = state.collector.status().get(&d.config.name);
    let c = &d.config;
    DeviceResponse {
        id: d.id,
        name: c.name.clone(),
        device_type: c.device_type.clone(),
        protocol: c.protocol.name().to_owned(),
        ip_address: c.ip_address.clone(),
        port: match c.protocol {
            Protocol::ModbusTcp => Some(c.port.unwrap_or(t3_core::config::MODBUS_TCP_PORT)),
            Protocol::ModbusRtu => None,
            Protocol::Plugin(_) => c.port,
        },
        serial_port: c.serial_port.clone(),
        baud_rate: c.baud_rate,
        unit_id: c.unit_id,
        profile: c.profile.clone(),
        options: c.options.iter().map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default())).collect(),
        poll_interval_ms: c.poll_interval_ms,
        enabled: c.enabled,
        online: status.as_ref().is_some_and(|s| s.state == t3_drivers::collector::DeviceState::Online),
        last_seen: status
            .as_ref()
            .and_then(|s| s.last_seen)
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        point_counts: counts(state, &c.name),
        building_id: d.building_id,
        floor_id: d.floor_id,
        room_id: d.room_id,
        description: d.description.clone(),
        source: d.source.clone(),
        status,
        config: c.clone(),
    }
}

/// Every device, filtered and paged.
#[utoipa::path(get, path = "/api/t3000/devices", tag = "devices", params(DeviceQuery),
    responses((status = 200, body = Paged<DeviceResponse>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<DeviceQuery>,
) -> ApiResult<Json<Paged<DeviceResponse>>> {
    let page = Page::new(q.offset, q.limit)?;
    let needle = q.q.as_deref().map(str::to_lowercase);
    let mut out: Vec<DeviceResponse> = state
        .catalog
        .list::<DeviceRecord>()
        .iter()
        .filter(|d| {
            let c = &d.config;
            needle.as_ref().is_none_or(|n| {
                [Some(&c.name), c.ip_address.as_ref(), c.serial_port.as_ref(), d.description.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|s| s.to_lowercase().contains(n))
            }) && q.building_id.is_none_or(|b| d.building_id == Some(b))
                && q.floor_id.is_none_or(|f| d.floor_id == Some(f))
                && q.room_id.is_none_or(|r| d.room_id == Some(r))
                && q.device_type.as_ref().is_none_or(|t| c.device_type.eq_ignore_ascii_case(t))
                && q.profile.as_ref().is_none_or(|p| c.profile.eq_ignore_ascii_case(p))
        })
        .map(|d| response(&state, d))
        .collect();
    if let Some(online) = q.online {
        out.retain(|d| d.online == online);
    }
    Ok(Json(page.apply(out, |d| d)))
}

/// One device, by id or name.
#[utoipa::path(get, path = "/api/t3000/devices/{id}", tag = "devices",
    params(("id" = String, Path, description = "Device id or name")),
    responses((status = 200, body = DeviceResponse), (status = 404, body = ErrorBody)))]
pub async fn get_one(State(state): State<AppState>, Path(key): Path<String>) -> ApiResult<Json<DeviceResponse>> {
    Ok(Json(response(&state, &state.devices.find(&key)?)))
}

/// A device's communication status.
#[utoipa::path(get, path = "/api/t3000/devices/{id}/status", tag = "devices",
    params(("id" = String, Path, description = "Device id or name")),
    responses((status = 200, description = "state, last_seen, rtt_ms, error counters, connection_quality, last_error"),
        (status = 404, body = ErrorBody)))]
pub async fn status(State(state): State<AppState>, Path(key): Path<String>) -> ApiResult<Json<DeviceStatus>> {
    let d = state.devices.find(&key)?;
    state
        .collector
        .status()
        .get(&d.config.name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("device \"{}\" has no status", d.config.name)))
}

/// A device's points.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DevicePoints {
    pub device_id: i64,
    pub device: String,
    pub points: Vec<DevicePoint>,
}

/// The points a device is polled for, with their stored ids.
#[utoipa::path(get, path = "/api/t3000/devices/{id}/points", tag = "devices",
    params(("id" = String, Path, description = "Device id or name")),
    responses((status = 200, body = DevicePoints), (status = 404, body = ErrorBody)))]
pub async fn points(State(state): State<AppState>, Path(key): Path<String>) -> ApiResult<Json<DevicePoints>> {
    let d = state.devices.find(&key)?;
    let points = crate::service::collection::device_points(&state.collector, &d.config.name);
    Ok(Json(DevicePoints { device_id: d.id, device: d.config.name, points }))
}

/// The custom ranges of a device's T3 panel as a `.prog` import stored them: its custom digital
/// ranges' off/on texts (codes 23..=30), custom variable units (34..=38) and analog table names
/// (input codes 20..=24); the points in them show these texts as their states and units. Empty
/// lists when the device has none.
#[utoipa::path(get, path = "/api/t3000/devices/{id}/ranges", tag = "devices",
    params(("id" = String, Path, description = "Device id or name")),
    responses((status = 200, body = CustomRanges), (status = 404, body = ErrorBody)))]
pub async fn ranges(State(state): State<AppState>, Path(key): Path<String>) -> ApiResult<Json<CustomRanges>> {
    let d = state.devices.find(&key)?;
    Ok(Json(state.catalog.get::<CustomRanges>(d.id).unwrap_or(CustomRanges { id: d.id, ..Default::default() })))
}

/// Body of POST / PUT: the `[[devices]]` fields plus the place.
fn parse_body(bytes: &[u8]) -> ApiResult<DeviceDraft> {
    let mut v: serde_json::Value = json_body(bytes)?;
    let obj =
        v.as_object_mut().ok_or_else(|| ApiError::bad_request("invalid_json", "the body must be a JSON object"))?;
    let mut id = |k: &str| -> ApiResult<Option<i64>> {
        match obj.remove(k) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(other) => {
                Err(ApiError::bad_request("invalid_json", format!("at {k}: expected an integer, got {other}")))
            }
        }
    };
    let (building_id, floor_id, room_id) = (id("building_id")?, id("floor_id")?, id("room_id")?);
    let description = match obj.remove("description") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_json",
                format!("at description: expected a string, got {other}"),
            ));
        }
    };
    // `id`, `source` and the read-only fields of a GET answer may come back in a PUT: ignored.
    for k in ["id", "source", "online", "last_seen", "point_counts", "status", "config"] {
        obj.remove(k);
    }
    gather_plugin_options(obj);
    let config: DeviceConfig = json_body(v.to_string().as_bytes())?;
    Ok(DeviceDraft { config, building_id, floor_id, room_id, description })
}

/// A plugin device's own keys (`device_instance`), written beside the others as in the
/// configuration file, go into its `options`; it needs no `unit_id`.
fn gather_plugin_options(obj: &mut serde_json::Map<String, serde_json::Value>) {
    let plugin =
        obj.get("protocol").and_then(|p| p.as_str()).is_some_and(|p| matches!(p.parse(), Ok(Protocol::Plugin(_))));
    if !plugin {
        return;
    }
    let own: Vec<String> =
        obj.keys().filter(|k| !t3_core::config::DEVICE_KEYS.contains(&k.as_str())).cloned().collect();
    if !own.is_empty() {
        let mut options = match obj.remove("options") {
            Some(serde_json::Value::Object(o)) => o,
            _ => serde_json::Map::new(),
        };
        for k in own {
            if let Some(v) = obj.remove(&k) {
                options.insert(k, v);
            }
        }
        obj.insert("options".into(), serde_json::Value::Object(options));
    }
    obj.entry("unit_id").or_insert(serde_json::Value::from(0));
}

/// Adds a device; its points are created from its profile and polling starts at once.
#[utoipa::path(post, path = "/api/t3000/devices", tag = "devices",
    request_body(content = Object, description = "The fields of a `[[devices]]` table plus building_id, floor_id, room_id, description"),
    responses((status = 201, body = DeviceResponse), (status = 400, body = ErrorBody),
        (status = 404, description = "No such building, floor or room", body = ErrorBody),
        (status = 409, description = "The name is taken, the serial port is used at another speed or parity, or the place does not hold together (a room not on that floor)", body = ErrorBody),
        (status = 422, description = "A point the profile does not have, a point named twice, or points that do not fit max_registers", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<DeviceResponse>)> {
    let draft = parse_body(&body)?;
    let record = state.devices.create(&who.issuer(), draft)?;
    Ok((StatusCode::CREATED, Json(response(&state, &record))))
}

/// Changes a device (the whole definition, as for POST); polling restarts with the new settings.
/// A device of the configuration file only changes its place and description here.
#[utoipa::path(put, path = "/api/t3000/devices/{id}", tag = "devices",
    params(("id" = String, Path, description = "Device id or name")),
    request_body(content = Object, description = "As for POST"),
    responses((status = 200, body = DeviceResponse), (status = 404, description = "No such device, building, floor or room", body = ErrorBody),
        (status = 409, description = "A device of the configuration file (anything but its place and description changed), a name taken, a serial port used at another speed or parity, or a place that does not hold together", body = ErrorBody),
        (status = 422, description = "As for POST", body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<DeviceResponse>> {
    let old = state.devices.find(&key)?;
    let draft = parse_body(&body)?;
    let new = state.devices.update(&who.issuer(), &old, draft).await?;
    Ok(Json(response(&state, &new)))
}

/// Removes a device: polling stops at once; its history stays (its panel's custom ranges go).
#[utoipa::path(delete, path = "/api/t3000/devices/{id}", tag = "devices",
    params(("id" = String, Path, description = "Device id or name")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    state.devices.delete(&who.issuer(), &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What to scan for devices.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverRequest {
    /// `modbus-tcp` (hosts / CIDR blocks on `port`), `modbus-rtu` (unit ids on `serial_port`), or
    /// a plugin protocol that can discover (`bacnet-ip`: its `options`).
    #[schema(value_type = String)]
    pub protocol: Protocol,
    /// A plugin protocol's discovery options (BACnet/IP: `port`, `broadcast`, `low`, `high`,
    /// `timeout_ms`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub options: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub serial_port: Option<String>,
    #[serde(default = "default_baud")]
    pub baud_rate: u32,
    /// `none`, `even` or `odd`.
    #[serde(default)]
    #[schema(value_type = String)]
    pub parity: t3_core::config::Parity,
    /// Unit ids to try; by default 1 on TCP and 1 ..= 247 on RTU.
    #[serde(default)]
    pub unit_ids: Vec<u8>,
    /// Time each unit has to answer, 10 ..= 5000 ms (default 300).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_port() -> u16 {
    502
}
fn default_baud() -> u32 {
    9600
}
fn default_timeout() -> u64 {
    300
}

/// What a scan found, with the devices already in the catalog marked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Discovered {
    /// A Modbus unit (endpoint, identity, profile), or what a plugin found: `name`, `address`,
    /// `model`, `vendor` and the `config` (with `protocol`) that adds it.
    #[schema(value_type = Object)]
    pub found: serde_json::Value,
    /// The id of the catalog device at this address and unit, if there is one.
    pub known_device_id: Option<i64>,
}

/// A device profile a device can be polled with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProfileInfo {
    pub name: String,
    pub description: String,
    /// Values of holding register 7 (product model) that identify it.
    pub product_models: Vec<u16>,
    pub points: usize,
}

/// The device profiles: the T3 controller and every product of Temco's register library.
#[utoipa::path(get, path = "/api/t3000/profiles", tag = "devices", responses((status = 200, body = [ProfileInfo])))]
pub async fn profiles() -> Json<Vec<ProfileInfo>> {
    Json(
        t3_drivers::profile::ProfileLibrary::builtin()
            .profiles()
            .map(|p| ProfileInfo {
                name: p.name.clone(),
                description: p.description.clone(),
                product_models: p.product_models.clone(),
                points: p.points.len(),
            })
            .collect(),
    )
}

/// Scans for devices (Modbus TCP hosts or a serial bus) and reports their serial number, product
/// model and matching profile. Nothing is added: POST each one to /api/t3000/devices.
#[utoipa::path(post, path = "/api/t3000/devices/discover", tag = "devices", request_body = DiscoverRequest,
    responses((status = 200, body = [Discovered]), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn discover(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Vec<Discovered>>> {
    let req: DiscoverRequest = json_body(&body)?;
    if !crate::http::rules::DISCOVER_TIMEOUT_MS.contains(&req.timeout_ms) {
        return Err(ApiError::unprocessable("invalid_scan", "timeout_ms must be 10 to 5000"));
    }
    let timeout = Duration::from_millis(req.timeout_ms);
    if let Protocol::Plugin(protocol) = &req.protocol {
        return discover_plugin(&state, &who, protocol, req.options).await.map(Json);
    }
    let found = match req.protocol {
        Protocol::ModbusTcp => {
            if req.hosts.is_empty() {
                return Err(ApiError::unprocessable("invalid_scan", "hosts: name at least one host or CIDR block"));
            }
            let units = if req.unit_ids.is_empty() { vec![1] } else { req.unit_ids.clone() };
            discovery::scan_tcp(&req.hosts, req.port, &units, timeout, 64)
                .await
                .map_err(|e| ApiError::unprocessable("invalid_scan", e.to_string()))?
        }
        Protocol::ModbusRtu => {
            let Some(path) = req.serial_port.clone() else {
                return Err(ApiError::unprocessable("invalid_scan", "serial_port: required for modbus-rtu"));
            };
            let units: Vec<u8> = if req.unit_ids.is_empty() { (1..=247).collect() } else { req.unit_ids.clone() };
            discovery::scan_rtu(&path, req.baud_rate, req.parity, &units, timeout).await
        }
        Protocol::Plugin(_) => unreachable!("answered above"),
    };
    audit_discover(&state, &who, req.protocol.name(), found.len());
    let devices = state.catalog.list::<DeviceRecord>();
    let out = found
        .into_iter()
        .map(|f| {
            let known_device_id = devices
                .iter()
                .find(|d| {
                    d.config.unit_id == f.identity.unit_id
                        && match (&d.config.protocol, &d.config.ip_address, &d.config.serial_port) {
                            (Protocol::ModbusTcp, Some(ip), _) => {
                                f.endpoint
                                    == format!(
                                        "tcp://{ip}:{}",
                                        d.config.port.unwrap_or(t3_core::config::MODBUS_TCP_PORT)
                                    )
                            }
                            (Protocol::ModbusRtu, _, Some(p)) => f.endpoint.starts_with(&format!("rtu://{p}")),
                            _ => false,
                        }
                })
                .map(|d| d.id);
            Discovered { found: serde_json::to_value(&f).unwrap_or_default(), known_device_id }
        })
        .collect();
    Ok(Json(out))
}

/// Records a discovery in the audit log: who looked, with which protocol, and how much was found.
fn audit_discover(state: &AppState, who: &Principal, protocol: &str, found: usize) {
    let outcome = serde_json::json!({ "protocol": protocol, "found": found });
    state.audit.record(who.remote.clone(), &who.actor(), "device.discover", None, None, Some(outcome), "ok");
}

/// Asks a plugin for devices. A device counts as known when a catalog device of the protocol has
/// every key of the found `config` with the same value.
async fn discover_plugin(
    state: &AppState,
    who: &Principal,
    protocol: &str,
    options: serde_json::Map<String, serde_json::Value>,
) -> ApiResult<Vec<Discovered>> {
    let plugin = state
        .plugins
        .get(protocol)
        .ok_or_else(|| ApiError::unprocessable("invalid_scan", state.plugins.unknown(protocol)))?;
    if !plugin.info.discovery {
        return Err(ApiError::unprocessable("invalid_scan", format!("the {protocol} plugin cannot look for devices")));
    }
    let found = state
        .plugins
        .discover(protocol, &serde_json::Value::Object(options))
        .await
        .map_err(|e| ApiError::unprocessable("invalid_scan", e))?;
    audit_discover(state, who, protocol, found.len());
    let devices = state.catalog.list::<DeviceRecord>();
    Ok(found
        .into_iter()
        .map(|f| {
            let known_device_id = devices
                .iter()
                .find(|d| {
                    d.config.protocol.name() == protocol && {
                        let json = t3_drivers::plugin::PluginHost::device_json(&d.config, 0);
                        f.config.iter().all(|(k, v)| json.get(k) == Some(v))
                    }
                })
                .map(|d| d.id);
            let mut config = f.config.clone();
            config.insert("protocol".into(), protocol.into());
            let mut found = serde_json::to_value(&f).unwrap_or_default();
            found["config"] = serde_json::Value::Object(config);
            Discovered { found, known_device_id }
        })
        .collect())
}
