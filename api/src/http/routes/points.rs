//! Points: what the devices are polled for plus manual points (series pushed over the API), with
//! the labels, units and trend settings people give them.
//!
//! A device point exists because its device's profile has it and the device polls it; its stored
//! id comes from the registry. The catalog keeps a [`PointRecord`] for a point only once someone
//! labels it, or for a manual point. Trend settings of a device point (interval, deadband) are
//! part of the device's definition (`points` overrides of `[[devices]]`), so changing them
//! restarts the device's polling; for a device of the configuration file they change there.

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::routes::{Page, Paged, json_body};
use crate::http::routes::{audit, json};
use crate::model::check::check_name;
use crate::model::command::{Mode, ModeResult};
use crate::model::custom_range::CustomRanges;
use crate::model::device::{DevicePoint, DeviceRecord};
use crate::model::point::{LineFacts, PointClass, PointRecord, TrendLine, display_name};
use crate::service::auth::Principal;
use crate::service::control::UserWrite;
use crate::service::ranges::Configured;
use crate::service::retention::push_retention;
use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use t3_core::Quality;
use t3_core::config::{PointOverride, RecordConfig, RecordMode};
use t3_core::range::RangeMeaning;
use t3_storage::export::PointLabel;

/// A point's trend (recording) settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrendSettings {
    /// Poll interval, 100 ms ..= 24 h (device points).
    #[schema(minimum = 100, maximum = 86_400_000)]
    pub interval_ms: Option<u64>,
    /// Record only changes larger than this (absolute); none = every poll.
    #[schema(minimum = 0)]
    pub deadband: Option<f64>,
    /// Record at least this often even without change (seconds; with a deadband).
    pub heartbeat_secs: Option<u64>,
    /// Days of history kept (retention); the server's `retention.max_age_days` when absent.
    #[schema(minimum = 1, maximum = 36_500)]
    pub retention_days: Option<u32>,
    /// How charts draw the point between samples: `step` (a value holds until the next sample) or
    /// `linear`. Answers give the line in force; a change sets it, or `default` forgets the choice
    /// (the server's rule decides again: step for digital points, outputs, variables, writable
    /// registers, points recorded on change and manual points, linear for the rest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<LineSetting>,
    /// In answers: whether `line` is the server's default for the point (nobody chose one).
    /// Ignored in a change (send `line: "default"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub line_default: Option<bool>,
}

/// A trend line as the API takes it: a style, or `default` (in a change: forget the chosen style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LineSetting {
    Step,
    Linear,
    Default,
}

impl LineSetting {
    /// What the point record keeps: the style chosen, none for the default.
    fn chosen(self) -> Option<TrendLine> {
        match self {
            LineSetting::Step => Some(TrendLine::Step),
            LineSetting::Linear => Some(TrendLine::Linear),
            LineSetting::Default => None,
        }
    }
}

/// Fills in the line of `trend` for an answer: the one chosen, else the default for `facts`.
fn with_line(trend: TrendSettings, chosen: Option<TrendLine>, facts: LineFacts<'_>) -> TrendSettings {
    let line = chosen.unwrap_or_else(|| TrendLine::default_for(facts));
    let setting = match line {
        TrendLine::Step => LineSetting::Step,
        TrendLine::Linear => LineSetting::Linear,
    };
    TrendSettings { line: Some(setting), line_default: Some(chosen.is_none()), ..trend }
}

/// Whether a profile point holds one bit (a coil, a discrete input, a bool or a bit of a word).
fn bit_point(p: &DevicePoint) -> bool {
    matches!(p.register_kind.as_str(), "coil" | "discrete_input")
        || p.encoding.starts_with("bool")
        || p.encoding.starts_with("bit")
}

/// Whether a plugin point is digital, as its plugin says (its kind); `None` for Modbus points.
fn plugin_digital(p: &DevicePoint) -> Option<bool> {
    (p.register_kind == "plugin").then(|| p.encoding == "digital")
}

/// A point as the API shows it. The fields of the plan's `PointResponse` (A1.3: `id`,
/// `device_id`, `point_number`, `point_type`, `value`, `units`, `label`, `auto_manual`,
/// `updated_at`) are always present with its types; what they cannot say (no device, no value
/// yet) the other fields say.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PointResponse {
    /// The stored id (history, live value, export).
    pub id: u32,
    /// The catalog device; 0 for a manual point (it has none: `device` is null).
    #[serde(serialize_with = "or_default")]
    #[schema(value_type = i64, required = true)]
    pub device_id: Option<i64>,
    pub device: Option<String>,
    /// `IN1`, `OUT3`, `VAR12`, a register name, or a manual point's name.
    pub name: String,
    /// The number within its type (`VAR12`: 12); 0 for manual points and library registers.
    #[serde(serialize_with = "or_default")]
    #[schema(value_type = u32, required = true)]
    pub point_number: Option<u32>,
    /// `input`, `output`, `variable`, `register` or `manual`.
    pub point_type: String,
    /// The latest value; 0 when there is none (`has_value: false`).
    #[serde(serialize_with = "or_default")]
    #[schema(value_type = f64, required = true)]
    pub value: Option<f64>,
    /// Whether the point has a latest value (false: no sample yet, or its latest sample carries
    /// no number, as a failed read).
    pub has_value: bool,
    /// The label's units, else the profile's (for a library register: what the register library
    /// states), else those of the point's T3000 range; `""` when none.
    #[serde(serialize_with = "or_empty")]
    #[schema(value_type = String, required = true)]
    pub units: Option<String>,
    /// T3000's range (unit) code as the device reports it (re-read every 10 minutes), else as
    /// the catalog has it configured (a `.prog` import, hardware sync) until the device is read;
    /// none for points without a range register.
    pub range: Option<u16>,
    /// What the range means: units (`°C`, `0-10 V`) or a digital point's states (`Off/On`), a
    /// custom range in its panel's texts (`Stopped/Running`); a plugin point's states as its
    /// plugin names them (`Off/On`, `Off/Heat/Cool/Auto`).
    pub range_name: Option<String>,
    /// The names of the point's states: a digital point's, 0 then 1 (from its range: T3000's
    /// tables or its panel's custom texts), a plugin point's as its plugin names them; empty when
    /// it has none.
    pub states: Vec<String>,
    /// Whether the device (a plugin point: its plugin) says the point is digital (a 0 / 1 value),
    /// else whether the catalog has it configured digital (as `range`); none when neither says.
    pub digital: Option<bool>,
    /// The label people gave the point, else the one its device keeps (a T3 controller's point
    /// record: up to 8 characters, "SUP TEMP"); `""` when neither has one.
    #[serde(serialize_with = "or_empty")]
    #[schema(value_type = String, required = true)]
    pub label: Option<String>,
    /// The description people gave the point, else its device's (a T3 controller's "full label"),
    /// else what Temco's register library says about the register.
    pub description: Option<String>,
    /// Whether the point is in manual (operator override at the device).
    pub auto_manual: bool,
    /// Whether the point has an auto/manual switch at its controller (T3 inputs, outputs and
    /// variables): `POST /api/t3000/points/{id}/mode` puts it in manual or back in auto.
    pub has_auto_manual: bool,
    /// Quality of the latest sample (`good`, `good/local_override`, `bad/comm_failure`, ...);
    /// null when it has none.
    pub quality: Option<String>,
    /// When the latest sample was taken (RFC 3339, UTC); the Unix epoch
    /// (`1970-01-01T00:00:00.000Z`) when there is none (`quality` null).
    #[serde(serialize_with = "or_epoch")]
    #[schema(value_type = String, format = DateTime, required = true)]
    pub updated_at: Option<String>,
    pub writable: bool,
    /// The point's own trend settings (its device's, or what was set for the point), whatever
    /// trend logs ask.
    pub trend: TrendSettings,
    /// How the point is polled and recorded now: its own settings, or faster while trend logs
    /// hold it (`trendlogs` names them); null for manual points.
    pub recording: Option<crate::service::trendlogs::Recording>,
    /// What the point is: a measurement, a setpoint / command, or the device's configuration
    /// (writing one needs the admin role). Manual points are measurements.
    pub class: PointClass,
    /// The lowest value a write may carry, in `units`: what the register's format holds, a range
    /// its library description states, what its range code allows (0 for a percent output, 0 for
    /// a digital point); null when nothing bounds it or the point takes no writes.
    pub min: Option<f64>,
    /// The highest value a write may carry, in `units` (100 for a percent output, 1 for a digital
    /// point, 65535 for a 16-bit register); null when nothing bounds it.
    pub max: Option<f64>,
}

fn or_default<T: Serialize + Default + Copy, S: serde::Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    v.unwrap_or_default().serialize(s)
}

fn or_empty<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.as_deref().unwrap_or(""))
}

fn or_epoch<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.as_deref().unwrap_or("1970-01-01T00:00:00.000Z"))
}

/// Filters and paging of the point list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PointQuery {
    /// Words (case-insensitive) each found in the name, label, description or device name.
    pub q: Option<String>,
    /// `input`, `output`, `variable`, `register` or `manual`.
    pub point_type: Option<String>,
    /// Only points of this class.
    pub class: Option<PointClass>,
    pub device_id: Option<i64>,
    pub building_id: Option<i64>,
    pub floor_id: Option<i64>,
    pub room_id: Option<i64>,
    pub offset: Option<usize>,
    #[param(value_type = Option<crate::http::rules::LimitParam>, inline)]
    pub limit: Option<usize>,
}

fn trend_of(d: &DeviceRecord, point: &str, p: &DevicePoint) -> TrendSettings {
    let o = d.config.points.iter().find(|o| o.name.eq_ignore_ascii_case(point));
    let rec = o.and_then(|o| o.record.clone()).unwrap_or_else(|| d.config.record.clone());
    TrendSettings {
        interval_ms: Some(p.poll_interval_ms),
        deadband: (rec.mode == RecordMode::Change).then_some(rec.deadband),
        heartbeat_secs: (rec.mode == RecordMode::Change && rec.heartbeat_secs > 0).then_some(rec.heartbeat_secs),
        retention_days: None,
        line: None,
        line_default: None,
    }
}

/// The units of every point: a label's units, else the profile's, else its T3000 range's (its
/// panel's custom units included).
pub fn units(state: &AppState) -> std::collections::HashMap<u32, String> {
    let mut out = std::collections::HashMap::new();
    let records: HashMap<i64, PointRecord> = state.catalog.read::<PointRecord, _>(|r| r.clone().into_iter().collect());
    let custom = custom_ranges(state);
    let device_ids: HashMap<String, i64> =
        state.catalog.read::<DeviceRecord, _>(|d| d.values().map(|d| (d.config.name.clone(), d.id)).collect());
    for name in state.collector.device_names() {
        let Some(spec) = state.collector.device(&name) else { continue };
        let custom = device_ids.get(&name).and_then(|id| custom.get(id));
        for cp in &spec.points {
            let p = spec.point_of(cp);
            let from_range = || {
                let ty = crate::service::collection::enum_name(&p.point_type);
                let configured = Configured { point: records.get(&i64::from(cp.id)), custom };
                state.ranges.meaning(cp.id, &ty, configured).and_then(|m| m.units().map(str::to_owned))
            };
            if let Some(u) = p.unit.clone().or_else(from_range) {
                out.insert(cp.id, u);
            }
        }
    }
    for r in records.values() {
        if let Some(u) = &r.units {
            out.insert(r.id as u32, u.clone());
        }
    }
    out
}

/// The custom ranges of every device that has some, by device id.
fn custom_ranges(state: &AppState) -> HashMap<i64, CustomRanges> {
    state.catalog.read::<CustomRanges, _>(|r| r.clone().into_iter().collect())
}

/// Every point with its device, without values.
fn all_points(state: &AppState) -> Vec<(Option<Arc<DeviceRecord>>, PointResponse)> {
    let records = state.catalog.list::<PointRecord>();
    let label_of = |id: u32| records.iter().find(|r| r.id == i64::from(id));
    let mut recording = crate::service::trendlogs::recording(&state.catalog, &state.collector);
    let custom = custom_ranges(state);
    let mut out = Vec::new();
    for d in state.catalog.list::<DeviceRecord>() {
        let d = Arc::new(d);
        for p in crate::service::collection::device_points(&state.collector, &d.config.name) {
            let r = label_of(p.id);
            let configured = Configured { point: r, custom: custom.get(&d.id) };
            let code = state.ranges.code(p.id, r);
            let meaning = state.ranges.meaning(p.id, &p.point_type, configured);
            let digital = code.and_then(|c| c.digital).or_else(|| plugin_digital(&p));
            let trend = trend_of(&d, &p.name, &p);
            let recording = recording.remove(&p.id);
            let facts = LineFacts {
                point_type: &p.point_type,
                writable: p.writable,
                // A multistate point holds one state until the next, like a digital one.
                digital: digital == Some(true)
                    || bit_point(&p)
                    || (p.register_kind == "plugin" && p.encoding == "multistate"),
                // Recorded on change: the collector keeps a sample only past the deadband or at the
                // heartbeat, so a value holds until the next one.
                on_change: trend.deadband.is_some() || recording.as_ref().is_some_and(|r| r.on_change),
            };
            let trend = with_line(trend, r.and_then(|r| r.line), facts);
            // What the device calls the point (a T3 panel's label and description), each if not empty.
            let non_empty = |s: String| Some(s).filter(|s| !s.is_empty());
            let (panel_label, panel_description) =
                state.ranges.text(p.id).map_or((None, None), |t| (non_empty(t.label), non_empty(t.description)));
            let span = p
                .writable
                .then(|| {
                    let profile = p.min.zip(p.max).and_then(|(min, max)| t3_core::range::Span::new(min, max));
                    state.ranges.span(p.id, &p.point_type, profile)
                })
                .flatten();
            let resp = PointResponse {
                id: p.id,
                device_id: Some(d.id),
                device: Some(d.config.name.clone()),
                name: p.name.clone(),
                point_number: Some(p.point_number),
                point_type: p.point_type.clone(),
                value: None,
                has_value: false,
                units: r
                    .and_then(|r| r.units.clone())
                    .or_else(|| p.unit.clone())
                    .or_else(|| meaning.as_ref().and_then(|m| m.units()).map(str::to_owned)),
                range: code.and_then(|c| c.range),
                range_name: meaning
                    .as_ref()
                    .map(RangeMeaning::name)
                    .or_else(|| (!p.states.is_empty()).then(|| p.states.join("/"))),
                states: match meaning.as_ref().and_then(RangeMeaning::states) {
                    Some((off, on)) => vec![off.to_owned(), on.to_owned()],
                    None => p.states.clone(),
                },
                digital,
                label: r.and_then(|r| r.label.clone()).or(panel_label),
                description: r
                    .and_then(|r| r.description.clone())
                    .or(panel_description)
                    .or_else(|| p.description.clone()),
                auto_manual: false,
                has_auto_manual: p.has_auto_manual,
                quality: None,
                updated_at: None,
                writable: p.writable,
                trend: TrendSettings { retention_days: r.and_then(|r| r.retention_days), ..trend },
                recording,
                class: p.class,
                min: span.map(|s| s.min),
                max: span.map(|s| s.max),
            };
            out.push((Some(Arc::clone(&d)), resp));
        }
    }
    for r in records.iter().filter(|r| r.device_id.is_none()) {
        out.push((
            None,
            PointResponse {
                id: r.id as u32,
                device_id: None,
                device: None,
                name: r.name.clone(),
                point_number: None,
                point_type: "manual".into(),
                value: None,
                has_value: false,
                units: r.units.clone(),
                range: None,
                range_name: None,
                states: Vec::new(),
                digital: None,
                label: r.label.clone(),
                description: r.description.clone(),
                auto_manual: false,
                has_auto_manual: false,
                quality: None,
                updated_at: None,
                writable: false,
                trend: with_line(
                    TrendSettings { retention_days: r.retention_days, ..TrendSettings::default() },
                    r.line,
                    LineFacts { point_type: "manual", writable: false, digital: false, on_change: false },
                ),
                recording: None,
                class: PointClass::Measurement,
                min: None,
                max: None,
            },
        ));
    }
    out
}

/// How exports name each point and its unit (the units GET /points shows, see [`units`]), with
/// the building of its device.
pub fn export_labels(state: &AppState) -> HashMap<u32, (PointLabel, Option<i64>)> {
    all_points(state)
        .into_iter()
        .map(|(d, p)| {
            let name = display_name(p.device.as_deref(), &p.name, p.label.as_deref());
            let label = PointLabel { name, unit: p.units.unwrap_or_default() };
            (p.id, (label, d.and_then(|d| d.building_id)))
        })
        .collect()
}

/// Fills in the latest value, quality, time and auto/manual of each point.
fn with_values(state: &AppState, mut points: Vec<PointResponse>) -> Vec<PointResponse> {
    let ids: Vec<u32> = points.iter().map(|p| p.id).collect();
    let latest: std::collections::HashMap<u32, t3_storage::Latest> = state.storage.latest(&ids).into_iter().collect();
    for p in &mut points {
        if let Some(l) = latest.get(&p.id) {
            p.value = l.value.is_finite().then_some(l.value);
            p.has_value = p.value.is_some();
            p.quality = Some(Quality(l.quality).name().to_owned());
            p.auto_manual = Quality(l.quality) == Quality::GOOD_LOCAL_OVERRIDE;
            p.updated_at = chrono::DateTime::from_timestamp_micros(l.ts)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        }
    }
    points
}

/// The ids of every point there is (device and manual points).
pub(crate) fn point_ids(state: &AppState) -> std::collections::HashSet<u32> {
    all_points(state).into_iter().map(|(_, p)| p.id).collect()
}

fn one(state: &AppState, id: u32) -> ApiResult<(Option<Arc<DeviceRecord>>, PointResponse)> {
    all_points(state).into_iter().find(|(_, p)| p.id == id).ok_or_else(|| ApiError::not_found(format!("no point {id}")))
}

/// Every point, filtered and paged, with its current value.
#[utoipa::path(get, path = "/api/t3000/points", tag = "points", params(PointQuery),
    responses((status = 200, body = Paged<PointResponse>),
        (status = 400, description = "A paging parameter or a filter out of its values", body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, Query(q): Query<PointQuery>) -> ApiResult<Json<Paged<PointResponse>>> {
    let page = Page::new(q.offset, q.limit)?;
    let words: Vec<String> = q.q.as_deref().unwrap_or("").split_whitespace().map(str::to_lowercase).collect();
    let matches = |d: &Option<Arc<DeviceRecord>>, p: &PointResponse| {
        let fields: Vec<String> = [Some(&p.name), p.label.as_ref(), p.description.as_ref(), p.device.as_ref()]
            .into_iter()
            .flatten()
            .map(|s| s.to_lowercase())
            .collect();
        words.iter().all(|w| fields.iter().any(|f| f.contains(w.as_str())))
            && q.point_type.as_ref().is_none_or(|t| p.point_type.eq_ignore_ascii_case(t))
            && q.class.is_none_or(|c| p.class == c)
            && q.device_id.is_none_or(|id| p.device_id == Some(id))
            && q.building_id.is_none_or(|b| d.as_ref().is_some_and(|d| d.building_id == Some(b)))
            && q.floor_id.is_none_or(|f| d.as_ref().is_some_and(|d| d.floor_id == Some(f)))
            && q.room_id.is_none_or(|r| d.as_ref().is_some_and(|d| d.room_id == Some(r)))
    };
    let found: Vec<PointResponse> =
        all_points(&state).into_iter().filter(|(d, p)| matches(d, p)).map(|(_, p)| p).collect();
    let mut paged = page.apply(found, |p| p);
    paged.items = with_values(&state, std::mem::take(&mut paged.items));
    Ok(Json(paged))
}

/// One point with its current value.
#[utoipa::path(get, path = "/api/t3000/points/{id}", tag = "points", params(("id" = u32, Path)),
    responses((status = 200, body = PointResponse), (status = 404, body = ErrorBody)))]
pub async fn get_one(State(state): State<AppState>, Path(id): Path<u32>) -> ApiResult<Json<PointResponse>> {
    let (_, p) = one(&state, id)?;
    Ok(Json(with_values(&state, vec![p]).remove(0)))
}

/// Body of POST /points.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPoint {
    /// The device whose profile has the point (it starts being polled); none for a manual point,
    /// whose values are pushed to POST /api/t3000/samples.
    pub device_id: Option<i64>,
    /// A point of the device's profile (`VAR5`), or the manual point's name.
    #[schema(schema_with = crate::http::rules::name_schema)]
    pub name: String,
    pub label: Option<String>,
    pub description: Option<String>,
    pub units: Option<String>,
    pub trend: Option<TrendSettings>,
}

/// Body of PUT /points/{id}: what to change (absent fields stay).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointChange {
    pub label: Option<String>,
    pub description: Option<String>,
    pub units: Option<String>,
    pub trend: Option<TrendSettings>,
}

fn check_trend(t: &TrendSettings) -> ApiResult<()> {
    Ok(crate::model::check::check_trend(t.interval_ms, t.deadband, t.retention_days)?)
}

/// Whether a trend change touches polling (interval, deadband, heartbeat), not only retention.
fn polls(t: &TrendSettings) -> bool {
    t.interval_ms.is_some() || t.deadband.is_some() || t.heartbeat_secs.is_some()
}

/// Applies `f` to the device's override of `point` (creating it), then gives the device its new
/// definition (checked, stored, polling restarted, audited as `device.update`). Devices of the
/// configuration file refuse (409).
async fn change_device_point(
    state: &AppState,
    who: &Principal,
    device: &DeviceRecord,
    point: &str,
    f: impl FnOnce(&mut PointOverride),
) -> ApiResult<()> {
    let mut config = device.config.clone();
    let i = match config.points.iter().position(|o| o.name.eq_ignore_ascii_case(point)) {
        Some(i) => i,
        None => {
            config.points.push(PointOverride {
                name: point.to_owned(),
                enabled: true,
                poll_interval_ms: None,
                record: None,
            });
            config.points.len() - 1
        }
    };
    f(&mut config.points[i]);
    if config == device.config {
        return Ok(());
    }
    if device.source == "config" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "defined_in_config",
            format!("device \"{}\" is defined in the configuration file; change its points there", device.config.name),
        ));
    }
    state.devices.redefine(&who.issuer(), device, config).await?;
    Ok(())
}

fn apply_trend(o: &mut PointOverride, t: &TrendSettings, base: &RecordConfig) {
    if let Some(i) = t.interval_ms {
        o.poll_interval_ms = Some(i);
    }
    if t.deadband.is_some() || t.heartbeat_secs.is_some() {
        let mut rec = o.record.clone().unwrap_or_else(|| base.clone());
        rec.mode = RecordMode::Change;
        rec.deadband = t.deadband.unwrap_or(rec.deadband);
        rec.heartbeat_secs = t.heartbeat_secs.unwrap_or(rec.heartbeat_secs);
        o.record = Some(rec);
    }
}

/// Creates a point: starts polling a profile point of a device that is not polled yet, or adds a
/// manual point for pushed values.
#[utoipa::path(post, path = "/api/t3000/points", tag = "points", request_body = NewPoint,
    responses((status = 201, body = PointResponse),
        (status = 404, description = "No such device, or its profile has no such point (`unknown_point`)", body = ErrorBody),
        (status = 409, description = "The device polls the point already or a manual point has the name (`exists`), the point is text (`text_point`), or the device is defined in the configuration file", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<PointResponse>)> {
    let req: NewPoint = json_body(&body)?;
    let name = check_name("point", &req.name)?;
    if let Some(t) = &req.trend {
        check_trend(t)?;
    }
    let id = match req.device_id {
        Some(device_id) => {
            let d = state.devices.find(&device_id.to_string())?;
            if d.config.protocol.plugin().is_some() {
                // A plugin device polls every point its plugin lists.
                let polled = crate::service::collection::device_points(&state.collector, &d.config.name);
                return Err(match polled.iter().find(|x| x.name.eq_ignore_ascii_case(&name)) {
                    Some(p) => ApiError::conflict("exists", format!("device {} already polls \"{}\"", d.id, p.name)),
                    None => ApiError::new(
                        StatusCode::NOT_FOUND,
                        "unknown_point",
                        format!("device {} ({}) has no point \"{name}\"", d.id, d.config.protocol),
                    ),
                });
            }
            let profile = t3_drivers::profile::ProfileLibrary::builtin()
                .get(&d.config.profile)
                .ok_or_else(|| ApiError::internal(format!("device {} has an unknown profile", d.id)))?;
            // The device (and so its profile) is a record: a point its profile lacks is not
            // there (404); a text register is there but holds no value (409).
            let p = profile.point(&name).ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_point",
                    format!("device {} (profile \"{}\") has no point \"{name}\"", d.id, profile.name),
                )
            })?;
            if p.codec.is_text() {
                return Err(ApiError::conflict("text_point", format!("\"{}\" is text, not a value", p.name)));
            }
            let pname = p.name.clone();
            if crate::service::collection::device_points(&state.collector, &d.config.name)
                .iter()
                .any(|x| x.name == pname)
            {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "exists",
                    format!("device {} already polls \"{pname}\"", d.id),
                ));
            }
            let base = d.config.record.clone();
            change_device_point(&state, &who, &d, &pname, |o| {
                o.enabled = true;
                if let Some(t) = &req.trend {
                    apply_trend(o, t, &base);
                }
            })
            .await?;
            let id = state.registry.id(&d.config.name, &pname);
            state.catalog.put(PointRecord {
                id: i64::from(id),
                device_id: Some(d.id),
                name: pname,
                label: req.label,
                description: req.description,
                units: req.units,
                retention_days: req.trend.as_ref().and_then(|t| t.retention_days),
                line: req.trend.as_ref().and_then(|t| t.line).and_then(LineSetting::chosen),
                ..PointRecord::default()
            })?;
            id
        }
        None => {
            if state.catalog.read::<PointRecord, _>(|r| r.values().any(|r| r.device_id.is_none() && r.name == name)) {
                return Err(ApiError::new(StatusCode::CONFLICT, "exists", format!("a manual point \"{name}\" exists")));
            }
            if req.trend.as_ref().is_some_and(polls) {
                return Err(ApiError::unprocessable(
                    "invalid_trend",
                    "a manual point (no device_id) is not polled: only trend.retention_days applies",
                ));
            }
            let id = state.registry.id("", &name);
            state.registry.save().map_err(ApiError::internal)?;
            state.catalog.put(PointRecord {
                id: i64::from(id),
                device_id: None,
                name,
                label: req.label,
                description: req.description,
                units: req.units,
                retention_days: req.trend.as_ref().and_then(|t| t.retention_days),
                line: req.trend.as_ref().and_then(|t| t.line).and_then(LineSetting::chosen),
                ..PointRecord::default()
            })?;
            id
        }
    };
    push_retention(&state.catalog, &state.storage);
    let (_, p) = one(&state, id)?;
    audit(&state, &who, "point.create", format!("point:{id}"), None, json(&p));
    Ok((StatusCode::CREATED, Json(with_values(&state, vec![p]).remove(0))))
}

/// Changes a point's label, description, units or trend settings. `trend.line` (how charts draw
/// the point) is the point's own, so it changes for a device of the configuration file too.
#[utoipa::path(put, path = "/api/t3000/points/{id}", tag = "points", params(("id" = u32, Path)), request_body = PointChange,
    responses((status = 200, body = PointResponse), (status = 404, body = ErrorBody),
        (status = 409, description = "Settings the point does not have: polling settings (interval_ms, deadband, heartbeat_secs) of a manual point (`invalid_trend`); a device or retention defined in the configuration file", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<u32>,
    body: axum::body::Bytes,
) -> ApiResult<Json<PointResponse>> {
    let req: PointChange = json_body(&body)?;
    let (device, old) = one(&state, id)?;
    if let Some(t) = &req.trend {
        check_trend(t)?;
        if t.retention_days
            .is_some_and(|_| state.storage.config_retention().points.iter().any(|o| o.points.contains(&id)))
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "defined_in_config",
                format!("the retention of point {id} is set in the configuration file ([[retention.points]])"),
            ));
        }
        match &device {
            Some(d) if polls(t) => {
                let base = d.config.record.clone();
                change_device_point(&state, &who, d, &old.name, |o| apply_trend(o, t, &base)).await?;
            }
            // Whether the point is polled is what it is, not what this body says: 409.
            None if polls(t) => {
                return Err(ApiError::conflict(
                    "invalid_trend",
                    "a manual point is not polled: only trend.retention_days applies",
                ));
            }
            _ => {}
        }
    }
    let mut rec = state.catalog.get::<PointRecord>(i64::from(id)).unwrap_or_else(|| PointRecord {
        id: i64::from(id),
        device_id: old.device_id,
        name: old.name.clone(),
        ..Default::default()
    });
    let text = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    if req.label.is_some() {
        rec.label = text(req.label);
    }
    if req.description.is_some() {
        rec.description = text(req.description);
    }
    if req.units.is_some() {
        rec.units = text(req.units);
    }
    if let Some(d) = req.trend.as_ref().and_then(|t| t.retention_days) {
        rec.retention_days = Some(d);
    }
    if let Some(l) = req.trend.as_ref().and_then(|t| t.line) {
        rec.line = l.chosen();
    }
    state.catalog.put(rec)?;
    push_retention(&state.catalog, &state.storage);
    let (_, new) = one(&state, id)?;
    audit(&state, &who, "point.update", format!("point:{id}"), json(&old), json(&new));
    Ok(Json(with_values(&state, vec![new]).remove(0)))
}

/// Deletes a point: a device point stops being polled, a manual point is forgotten. Its history
/// stays.
#[utoipa::path(delete, path = "/api/t3000/points/{id}", tag = "points", params(("id" = u32, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<u32>,
) -> ApiResult<StatusCode> {
    let (device, old) = one(&state, id)?;
    if let Some(d) = &device {
        change_device_point(&state, &who, d, &old.name, |o| o.enabled = false).await?;
    }
    state.catalog.delete::<PointRecord>(i64::from(id))?;
    push_retention(&state.catalog, &state.storage);
    audit(&state, &who, "point.delete", format!("point:{id}"), json(&old), None);
    Ok(StatusCode::NO_CONTENT)
}

/// Body of POST /points/{id}/value.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteRequest {
    pub value: f64,
    /// 1 (most important) ..= 16; 8 (operator) by default.
    #[schema(minimum = 1, maximum = 16)]
    pub priority: Option<u8>,
    /// Relinquish the command automatically after this many seconds (1 ..= 31,622,400: 366 days).
    #[schema(minimum = 1, maximum = 31_622_400)]
    pub expires_in_secs: Option<u64>,
    /// Switch a point that is in auto to manual first (T3 controllers), instead of refusing.
    #[serde(default)]
    pub switch_to_manual: bool,
}

/// Body of POST /points/{id}/relinquish.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelinquishRequest {
    /// The slot to empty (1 ..= 16); 8 by default.
    #[schema(minimum = 1, maximum = 16)]
    pub priority: Option<u8>,
}

/// Commands a value to an output or variable (an input only while it is in manual) through the
/// command arbiter; the device is written when the effective value changes, and read back. A
/// configuration point (`class`) takes writes from admins only; a value outside the point's
/// `min` ..= `max` (a digital point: 0 or 1) is refused before the device is asked.
#[utoipa::path(post, path = "/api/t3000/points/{id}/value", tag = "control", params(("id" = u32, Path)),
    request_body = WriteRequest,
    responses((status = 200, body = crate::model::command::WriteResult), (status = 404, body = ErrorBody),
        (status = 403, description = "A configuration point (`class: configuration`) and a caller who is not an admin (`forbidden`); the message names the register", body = ErrorBody),
        (status = 409, description = "The point does not take this write: it is in auto (`point_in_auto`, `input_in_auto`), read-only (`read_only`), a manual point (`not_writable`), or the value is outside what the point can hold (`invalid_value`: outside its `min` ..= `max`, the message naming the range and its units, or refused by the device)", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, description = "the device refused or did not answer", body = ErrorBody)))]
pub async fn write_value(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<u32>,
    body: axum::body::Bytes,
) -> ApiResult<Json<crate::model::command::WriteResult>> {
    let req: WriteRequest = json_body(&body)?;
    let write = UserWrite {
        value: req.value,
        priority: req.priority,
        expires_in_secs: req.expires_in_secs,
        switch_to_manual: req.switch_to_manual,
    };
    Ok(Json(state.control.user_write(&who.issuer(), id, write).await?))
}

/// Empties one priority slot of a point; what wins then is written to the device. A
/// configuration point's commands are relinquished by admins only.
#[utoipa::path(post, path = "/api/t3000/points/{id}/relinquish", tag = "control", params(("id" = u32, Path)),
    request_body = RelinquishRequest,
    responses((status = 200, body = crate::model::command::WriteResult), (status = 404, body = ErrorBody),
        (status = 403, description = "A configuration point and a caller who is not an admin (`forbidden`)", body = ErrorBody),
        (status = 409, description = "The point takes no writes: read-only (`read_only`) or a manual point (`not_writable`)", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody)))]
pub async fn relinquish(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<u32>,
    body: axum::body::Bytes,
) -> ApiResult<Json<crate::model::command::WriteResult>> {
    let req: RelinquishRequest = if body.is_empty() { RelinquishRequest { priority: None } } else { json_body(&body)? };
    Ok(Json(state.control.user_relinquish(&who.issuer(), id, req.priority).await?))
}

/// The commands in force on a point, most important first.
#[utoipa::path(get, path = "/api/t3000/points/{id}/commands", tag = "control", params(("id" = u32, Path)),
    responses((status = 200, description = "[{value, priority, source, issued_us, expires_us}]")))]
pub async fn commands(State(state): State<AppState>, Path(id): Path<u32>) -> Json<Vec<t3_core::arbiter::Command>> {
    Json(state.control.array(id))
}

/// Body of POST /points/{id}/mode.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModeRequest {
    /// `manual`: the controller stops driving the point, which keeps its value until written;
    /// `auto`: the controller drives it again.
    pub mode: Mode,
}

/// Puts a point in manual or back in auto at its controller (T3000's Auto/Man), reading its
/// auto/manual register back; the value read right after is recorded at once with the quality of
/// the new mode. Back in auto the point's commands are cleared (listed in `cleared`): the
/// controller owns the value, and nothing is written back later. Audited as `point.mode`.
#[utoipa::path(post, path = "/api/t3000/points/{id}/mode", tag = "control", params(("id" = u32, Path)),
    request_body = ModeRequest,
    responses((status = 200, body = ModeResult), (status = 404, body = ErrorBody),
        (status = 409, description = "The point has no auto/manual switch (`no_auto_manual`)", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, description = "the device refused or did not answer", body = ErrorBody)))]
pub async fn set_mode(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<u32>,
    body: axum::body::Bytes,
) -> ApiResult<Json<ModeResult>> {
    let req: ModeRequest = json_body(&body)?;
    Ok(Json(state.control.user_set_mode(&who.issuer(), id, req.mode).await?))
}

/// A point in manual, with who put it there and since when.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ManualPoint {
    pub point: PointResponse,
    /// Whether it was put in manual at the controller (its panel, its program or another tool),
    /// not through this server.
    pub at_controller: bool,
    /// Who put it in manual through this server (a user, a token, `schedule:3`); null when it
    /// was put in manual at the controller.
    pub by: Option<String>,
    /// From where (the client's address), when through this server.
    pub remote: Option<String>,
    /// How: `mode` (the auto/manual control) or `write` (a write that switched it to manual).
    pub via: Option<String>,
    /// Since when (RFC 3339): the change through this server, or when the server first saw the
    /// point in manual; null when not known.
    pub since: Option<String>,
    /// The commands in force on it, most important first.
    #[schema(value_type = Vec<Object>)]
    pub commands: Vec<t3_core::arbiter::Command>,
}

/// Paging of the points in manual.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ManualQuery {
    pub offset: Option<usize>,
    #[param(value_type = Option<crate::http::rules::LimitParam>, inline)]
    pub limit: Option<usize>,
}

/// Every point in manual (overridden: its latest value carries the local-override quality),
/// the latest change first, with who put it there and when (from the audit log), or that it was
/// put in manual at the controller and since when the server has seen it there.
#[utoipa::path(get, path = "/api/t3000/points/in-manual", tag = "points", params(ManualQuery),
    responses((status = 200, body = Paged<ManualPoint>), (status = 400, body = ErrorBody)))]
pub async fn in_manual(
    State(state): State<AppState>,
    Query(q): Query<ManualQuery>,
) -> ApiResult<Json<Paged<ManualPoint>>> {
    let page = Page::new(q.offset, q.limit)?;
    let points = with_values(&state, all_points(&state).into_iter().map(|(_, p)| p).collect());
    let mut found: Vec<(Option<i64>, ManualPoint)> = points
        .into_iter()
        .filter(|p| p.auto_manual)
        .map(|point| {
            let why = state.overrides.reason(point.id);
            let since = why
                .since_us
                .and_then(chrono::DateTime::from_timestamp_micros)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            let commands = state.control.array(point.id);
            (
                why.since_us,
                ManualPoint {
                    point,
                    at_controller: why.by.is_none(),
                    by: why.by,
                    remote: why.remote,
                    via: why.via,
                    since,
                    commands,
                },
            )
        })
        .collect();
    // The latest change first; those since an unknown time last.
    found.sort_by_key(|(since, m)| (std::cmp::Reverse(since.unwrap_or(i64::MIN)), m.point.id));
    Ok(Json(page.apply(found, |(_, m)| m)))
}
