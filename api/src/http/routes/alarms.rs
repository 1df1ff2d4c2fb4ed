//! Alarms: their state now, their history, acknowledgement, and the rules (the evaluation is the
//! alarm service's, `service::alarms`).

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::routes::json_body;
use crate::http::routes::{audit, found, json};
use crate::model::alarm::{AlarmEvent, AlarmRuleRecord, AlarmView};
use crate::model::check::check_name;
use crate::service::auth::Principal;
use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use t3_core::alarm::{AlarmCondition, AlarmRule};
use t3_storage::catalog::EventFilter;

/// `?state=` filter of the alarm list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlarmQuery {
    /// `active`, `acknowledged`, `cleared`, `normal`, `open` (not normal) or `all`; by default `open`.
    #[param(value_type = Option<AlarmStateParam>, inline)]
    pub state: Option<String>,
}

/// The values of `?state=`.
pub const ALARM_STATES: [&str; 6] = ["open", "all", "normal", "active", "acknowledged", "cleared"];

crate::http::rules::param_type! {
    /// One of [`ALARM_STATES`].
    AlarmStateParam => crate::http::rules::one_of(&ALARM_STATES);
}

/// The alarms now: each rule's state, newest first (by default only those not normal).
#[utoipa::path(get, path = "/api/t3000/alarms", tag = "alarms", params(AlarmQuery),
    responses((status = 200, body = [AlarmView]), (status = 400, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, Query(q): Query<AlarmQuery>) -> ApiResult<Json<Vec<AlarmView>>> {
    let want = q.state.as_deref().unwrap_or("open");
    if !ALARM_STATES.contains(&want) {
        return Err(ApiError::bad_request("invalid_state", format!("unknown state \"{want}\"")));
    }
    let views = state.alarms.views();
    Ok(Json(
        views
            .into_iter()
            .filter(|v| match want {
                "all" => true,
                "open" => v.state != "normal",
                s => v.state == s,
            })
            .collect(),
    ))
}

/// Filters of the alarm history.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    pub rule_id: Option<i64>,
    /// From this time (RFC 3339, epoch microseconds, `now-7d`).
    #[param(value_type = Option<crate::http::rules::InstantParam>, inline)]
    pub from: Option<String>,
    #[param(value_type = Option<crate::http::rules::InstantParam>, inline)]
    pub to: Option<String>,
    /// Events older than this seq (the next page).
    pub before_seq: Option<i64>,
    /// At most this many, newest first (100 by default, at most 10,000).
    #[param(value_type = Option<crate::http::rules::LimitParam>, inline)]
    pub limit: Option<usize>,
}

/// One stored transition.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub seq: i64,
    #[serde(flatten)]
    pub event: AlarmEvent,
}

/// The alarm history: every transition, newest first.
#[utoipa::path(get, path = "/api/t3000/alarms/history", tag = "alarms", params(HistoryQuery),
    responses((status = 200, body = [HistoryEntry]), (status = 400, body = ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<Vec<HistoryEntry>>> {
    let page = crate::http::routes::Page::new(None, q.limit)?;
    let filter = EventFilter {
        key: q.rule_id,
        from_us: crate::http::routes::optional_instant(q.from.as_deref(), "from", state.now_us())?,
        to_us: crate::http::routes::optional_instant(q.to.as_deref(), "to", state.now_us())?,
        before_seq: q.before_seq,
        limit: page.limit,
    };
    let rows = state.catalog.events("alarm", &filter)?;
    Ok(Json(
        rows.into_iter()
            .filter_map(|(seq, _, _, body)| serde_json::from_value(body).ok().map(|event| HistoryEntry { seq, event }))
            .collect(),
    ))
}

/// Acknowledges a rule's alarm (active -> acknowledged, cleared -> normal), the storage alarm (0)
/// or a system alarm (4294967290 ..= 4294967295: the server's own faults).
#[utoipa::path(post, path = "/api/t3000/alarms/{id}/ack", tag = "alarms", params(("id" = i64, Path, description = "Rule id; 0 the storage alarm, 4294967290 ..= 4294967295 the system alarms")),
    responses((status = 200, body = AlarmEvent), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn acknowledge(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<AlarmEvent>> {
    Ok(Json(state.alarms.acknowledge(&who.issuer(), id)?))
}

/// Body of POST / PUT of a rule: a `device_offline` rule names a `device_id` and no `point_id`,
/// a limits or digital rule a `point_id` and no `device_id` (its schema: [`rule_body_schema`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    pub name: String,
    pub point_id: Option<u32>,
    pub device_id: Option<i64>,
    pub rule: AlarmRule,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A stand-in: `openapi::document` puts [`rule_body_schema`] in its place.
impl utoipa::PartialSchema for RuleBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::Object::new().into()
    }
}

impl utoipa::ToSchema for RuleBody {}

/// The schema of [`RuleBody`], with which of `point_id` and `device_id` each kind of rule names.
pub fn rule_body_schema() -> serde_json::Value {
    use serde_json::json;
    let schema = |s: utoipa::openapi::schema::Schema| serde_json::to_value(s).expect("a schema serialises");
    let kind = |k: serde_json::Value| json!({"properties": {"condition": {"properties": {"kind": k}}}});
    json!({
        "type": "object",
        "description": "A `device_offline` rule names a `device_id` and no `point_id`; a `limits` or `digital` rule a `point_id` and no `device_id`.",
        "additionalProperties": false,
        "required": ["name", "rule"],
        "properties": {
            "name": schema(crate::http::rules::name_schema()),
            "point_id": {"type": ["integer", "null"], "minimum": 0, "maximum": u32::MAX},
            "device_id": {"type": ["integer", "null"], "format": "int64"},
            "rule": crate::http::rules::alarm_rule_schema(),
            "enabled": {"type": "boolean", "description": "true when absent"},
        },
        "oneOf": [
            {
                "required": ["device_id"],
                "properties": {"device_id": {"type": "integer"}, "point_id": {"type": "null"}, "rule": kind(json!({"const": "device_offline"}))},
            },
            {
                "required": ["point_id"],
                "properties": {"point_id": {"type": "integer"}, "device_id": {"type": "null"}, "rule": kind(json!({"enum": ["limits", "digital"]}))},
            },
        ],
    })
}

fn check_rule(state: &AppState, b: &RuleBody) -> ApiResult<()> {
    b.rule.validate().map_err(|e| ApiError::unprocessable("invalid_rule", format!("rule.{e}")))?;
    let offline = matches!(b.rule.condition, AlarmCondition::DeviceOffline);
    match (offline, b.point_id, b.device_id) {
        (true, None, Some(d)) => {
            state.devices.find(&d.to_string())?;
        }
        (true, _, _) => {
            return Err(ApiError::unprocessable(
                "invalid_rule",
                "a device_offline rule names a device_id and no point_id",
            ));
        }
        (false, Some(p), None) => {
            let known = state.registry.entries().iter().any(|e| e.id == p);
            if !known {
                return Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_point", format!("point_id: no point {p}")));
            }
        }
        (false, _, _) => {
            return Err(ApiError::unprocessable(
                "invalid_rule",
                "a limits or digital rule names a point_id and no device_id",
            ));
        }
    }
    Ok(())
}

/// Every alarm rule.
#[utoipa::path(get, path = "/api/t3000/alarms/rules", tag = "alarms", responses((status = 200, body = [AlarmRuleRecord])))]
pub async fn rules(State(state): State<AppState>) -> Json<Vec<AlarmRuleRecord>> {
    Json(state.catalog.list::<AlarmRuleRecord>())
}

/// Adds an alarm rule; it is judged at once against the point's latest value (or the device's state).
#[utoipa::path(post, path = "/api/t3000/alarms/rules", tag = "alarms", request_body = RuleBody,
    responses((status = 201, body = AlarmRuleRecord), (status = 400, body = ErrorBody),
        (status = 404, description = "No such point or device", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_rule(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<AlarmRuleRecord>)> {
    let b: RuleBody = json_body(&body)?;
    check_rule(&state, &b)?;
    let r = state.catalog.insert(AlarmRuleRecord {
        id: 0,
        name: check_name("alarm rule", &b.name)?,
        point_id: b.point_id,
        device_id: b.device_id,
        rule: b.rule,
        enabled: b.enabled,
        updated_us: state.now_us(),
    })?;
    state.alarms.load(r.clone());
    audit(&state, &who, "alarm_rule.create", format!("alarm_rule:{}", r.id), None, json(&r));
    Ok((StatusCode::CREATED, Json(r)))
}

/// Changes an alarm rule; its alarm starts afresh if its condition can no longer produce it, and it
/// is judged at once against the point's latest value (or the device's state).
#[utoipa::path(put, path = "/api/t3000/alarms/rules/{id}", tag = "alarms", params(("id" = i64, Path)), request_body = RuleBody,
    responses((status = 200, body = AlarmRuleRecord), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_rule(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<AlarmRuleRecord>> {
    let old = found::<AlarmRuleRecord>(&state, id, "alarm rule")?;
    let b: RuleBody = json_body(&body)?;
    check_rule(&state, &b)?;
    let new = AlarmRuleRecord {
        id,
        name: check_name("alarm rule", &b.name)?,
        point_id: b.point_id,
        device_id: b.device_id,
        rule: b.rule,
        enabled: b.enabled,
        updated_us: state.now_us(),
    };
    state.catalog.put(new.clone())?;
    state.alarms.load(new.clone());
    audit(&state, &who, "alarm_rule.update", format!("alarm_rule:{id}"), json(&old), json(&new));
    Ok(Json(new))
}

/// Deletes an alarm rule (its history stays).
#[utoipa::path(delete, path = "/api/t3000/alarms/rules/{id}", tag = "alarms", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_rule(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let old = found::<AlarmRuleRecord>(&state, id, "alarm rule")?;
    state.catalog.delete::<AlarmRuleRecord>(id)?;
    state.alarms.remove(id);
    audit(&state, &who, "alarm_rule.delete", format!("alarm_rule:{id}"), json(&old), None);
    Ok(StatusCode::NO_CONTENT)
}
