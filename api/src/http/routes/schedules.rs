//! Weekly schedules and holiday calendars: list, read, add, change, remove, run now. The scheduler
//! that drives their outputs is `service::scheduler`.
//!
//! A schedule has T3000's day types (Monday..Sunday, Holiday1, Holiday2) with up to four ON/OFF
//! pairs each, the calendars (annual routines) that turn dates into holidays, and output bindings:
//! points commanded to `on_value` / `off_value` at the schedule's priority (15 by default).

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::routes::json_body;
use crate::http::routes::{audit, found, json};
use crate::model::check::check_name;
use crate::model::place::Building;
use crate::model::schedule::{Calendar, OutputBinding, Schedule, ScheduleResponse};
use crate::service::auth::Principal;
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use t3_core::arbiter::Priority;
use t3_core::schedule::{AnnualRoutine, WeeklySchedule};

/// Body of POST / PUT of a schedule.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    #[schema(schema_with = crate::http::rules::name_schema)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub building_id: Option<i64>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `{"days": {"monday": [{"on": "08:00", "off": "17:00"}], "holiday1": [], ...}}`; at most 4
    /// pairs per day type.
    /// (Its schema: [`crate::http::rules::weekly_schedule_schema`], put in by `openapi::document`.)
    #[schema(value_type = Object)]
    pub weekly_schedule: WeeklySchedule,
    #[serde(default)]
    pub calendar_ids: Vec<i64>,
    #[serde(default)]
    pub outputs: Vec<OutputBinding>,
    /// 1 ..= 16; 15 by default.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 16)]
    pub priority: Option<u8>,
}

fn yes() -> bool {
    true
}

fn body_to_schedule(state: &AppState, id: i64, b: ScheduleBody) -> ApiResult<Schedule> {
    let name = check_name("schedule", &b.name)?;
    let mut weekly = b.weekly_schedule;
    weekly.validate().map_err(|e| ApiError::unprocessable("invalid_schedule", format!("weekly_schedule: {e}")))?;
    weekly.sort();
    if let Some(bid) = b.building_id {
        state
            .catalog
            .get::<Building>(bid)
            .ok_or_else(|| ApiError::not_found(format!("building_id: no building {bid}")))?;
    }
    for c in &b.calendar_ids {
        state
            .catalog
            .get::<Calendar>(*c)
            .ok_or_else(|| ApiError::not_found(format!("calendar_ids: no calendar {c}")))?;
    }
    let priority = b.priority.unwrap_or(Priority::SCHEDULE.get());
    Priority::new(priority).map_err(|e| ApiError::unprocessable("invalid_schedule", format!("priority: {e}")))?;
    let entries = state.registry.entries();
    for (i, o) in b.outputs.iter().enumerate() {
        if !o.on_value.is_finite() || !o.off_value.is_finite() {
            return Err(ApiError::unprocessable(
                "invalid_schedule",
                format!("outputs[{i}]: values must be finite numbers"),
            ));
        }
        if !entries.iter().any(|e| e.id == o.point_id && !e.device.is_empty()) {
            return Err(ApiError::not_found(format!("outputs[{i}].point_id: no device point {}", o.point_id)));
        }
    }
    Ok(Schedule {
        id,
        name,
        description: b.description,
        building_id: b.building_id,
        enabled: b.enabled,
        weekly,
        calendar_ids: b.calendar_ids,
        outputs: b.outputs,
        priority,
        updated_us: state.now_us(),
    })
}

/// A schedule's outputs as `who` may set them up: a configuration point only by an admin (403),
/// on and off values within each point's range (409).
fn check_outputs(state: &AppState, who: &Principal, s: &Schedule) -> ApiResult<()> {
    for (i, o) in s.outputs.iter().enumerate() {
        for v in [o.on_value, o.off_value] {
            state.control.check_command(&who.issuer(), o.point_id, v).map_err(|e| {
                let e = ApiError::from(e);
                ApiError { message: format!("outputs[{i}]: {}", e.message), ..e }
            })?;
        }
    }
    Ok(())
}

fn get_schedule(state: &AppState, id: i64) -> ApiResult<Schedule> {
    found::<Schedule>(state, id, "schedule")
}

/// Every schedule with its state now and next run.
#[utoipa::path(get, path = "/api/t3000/schedules", tag = "schedules", responses((status = 200, body = [ScheduleResponse])))]
pub async fn list(State(state): State<AppState>) -> Json<Vec<ScheduleResponse>> {
    let now = state.scheduler.now();
    Json(
        state
            .catalog
            .list::<Schedule>()
            .iter()
            .map(|s| crate::service::scheduler::view(&state.catalog, s, now))
            .collect(),
    )
}

/// One schedule.
#[utoipa::path(get, path = "/api/t3000/schedules/{id}", tag = "schedules", params(("id" = i64, Path)),
    responses((status = 200, body = ScheduleResponse), (status = 404, body = ErrorBody)))]
pub async fn get_one(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<ScheduleResponse>> {
    Ok(Json(state.scheduler.view(&get_schedule(&state, id)?)))
}

/// Creates a schedule; its outputs are written at once and at each transition. An output that is
/// a configuration point needs an admin.
#[utoipa::path(post, path = "/api/t3000/schedules", tag = "schedules", request_body = ScheduleBody,
    responses((status = 201, body = ScheduleResponse), (status = 400, body = ErrorBody),
        (status = 403, description = "An output is a configuration point and the caller is not an admin (`forbidden`)", body = ErrorBody),
        (status = 404, description = "No such building, calendar or device point", body = ErrorBody),
        (status = 409, description = "An on or off value outside its point's range (`invalid_value`)", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<ScheduleResponse>)> {
    let b: ScheduleBody = json_body(&body)?;
    let s = body_to_schedule(&state, 0, b)?;
    check_outputs(&state, &who, &s)?;
    let s = state.catalog.insert(s)?;
    state.scheduler.publish(&s, "created");
    audit(&state, &who, "schedule.create", format!("schedule:{}", s.id), None, json(&s));
    Ok((StatusCode::CREATED, Json(state.scheduler.view(&s))))
}

/// Changes a schedule; outputs no longer bound (or all, when disabled) are relinquished. An output
/// that is a configuration point needs an admin.
#[utoipa::path(put, path = "/api/t3000/schedules/{id}", tag = "schedules", params(("id" = i64, Path)), request_body = ScheduleBody,
    responses((status = 200, body = ScheduleResponse),
        (status = 403, description = "An output is a configuration point and the caller is not an admin (`forbidden`)", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "An on or off value outside its point's range (`invalid_value`)", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<ScheduleResponse>> {
    let old = get_schedule(&state, id)?;
    let b: ScheduleBody = json_body(&body)?;
    let new = body_to_schedule(&state, id, b)?;
    check_outputs(&state, &who, &new)?;
    state.catalog.put(new.clone())?;
    let dropped: Vec<u32> = if !new.enabled || new.priority != old.priority {
        old.outputs.iter().map(|o| o.point_id).collect()
    } else {
        old.outputs.iter().map(|o| o.point_id).filter(|p| !new.outputs.iter().any(|o| o.point_id == *p)).collect()
    };
    state.scheduler.release(&old, &dropped).await;
    state.scheduler.publish(&new, "updated");
    audit(&state, &who, "schedule.update", format!("schedule:{id}"), json(&old), json(&new));
    Ok(Json(state.scheduler.view(&new)))
}

/// Deletes a schedule and relinquishes its commands.
#[utoipa::path(delete, path = "/api/t3000/schedules/{id}", tag = "schedules", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let old = get_schedule(&state, id)?;
    state.catalog.delete::<Schedule>(id)?;
    let points: Vec<u32> = old.outputs.iter().map(|o| o.point_id).collect();
    state.scheduler.release(&old, &points).await;
    state.scheduler.publish(&old, "deleted");
    audit(&state, &who, "schedule.delete", format!("schedule:{id}"), json(&old), None);
    Ok(StatusCode::NO_CONTENT)
}

/// What running a schedule now did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunResult {
    /// The state written (ON or OFF), as the schedule has it now.
    pub on: bool,
    /// Outputs that could not be written: point id and why.
    pub errors: Vec<RunError>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunError {
    pub point_id: u32,
    pub message: String,
}

/// Writes the schedule's current state to its outputs now.
#[utoipa::path(post, path = "/api/t3000/schedules/{id}/run", tag = "schedules", params(("id" = i64, Path)),
    responses((status = 200, body = RunResult), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn run(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<RunResult>> {
    let s = get_schedule(&state, id)?;
    if !s.enabled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "schedule_disabled",
            "the schedule is disabled; enable it first",
        ));
    }
    let (on, errors) = state.scheduler.run(&s).await;
    let result = if errors.is_empty() { "ok".to_owned() } else { format!("{} output(s) failed", errors.len()) };
    state.audit.record(
        who.remote.clone(),
        &who.actor(),
        "schedule.run",
        Some(format!("schedule:{id}")),
        None,
        Some(serde_json::json!({ "on": on })),
        &result,
    );
    Ok(Json(RunResult {
        on,
        errors: errors
            .into_iter()
            .map(|(point_id, e)| RunError { point_id, message: ApiError::from(e).message })
            .collect(),
    }))
}

/// Every holiday calendar.
#[utoipa::path(get, path = "/api/t3000/calendars", tag = "schedules", responses((status = 200, body = [Calendar])))]
pub async fn calendars(State(state): State<AppState>) -> Json<Vec<Calendar>> {
    Json(state.catalog.list::<Calendar>())
}

/// The body of POST / PUT of a calendar: a stand-in, `openapi::document` puts
/// [`crate::http::rules::calendar_body_schema`] in its place.
#[derive(Debug)]
pub struct CalendarBody;

impl utoipa::PartialSchema for CalendarBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::Object::new().into()
    }
}

impl utoipa::ToSchema for CalendarBody {}

fn check_calendar(body: &[u8]) -> ApiResult<AnnualRoutine> {
    let v: serde_json::Value = json_body(body)?;
    // Dates as the document spells them (chrono alone would also take `2026-1-5`).
    let date = regex::Regex::new(crate::http::rules::DATE_PATTERN).map_err(ApiError::internal)?;
    if let Some(dates) = v.get("dates").and_then(serde_json::Value::as_array) {
        for (i, d) in dates.iter().enumerate() {
            if d.as_str().is_some_and(|d| !date.is_match(d)) {
                return Err(ApiError::bad_request(
                    "invalid_json",
                    format!("at dates[{i}]: {d} is not a YYYY-MM-DD date"),
                ));
            }
        }
    }
    let r: AnnualRoutine = crate::http::routes::json_body(v.to_string().as_bytes())?;
    check_name("calendar", &r.name)?;
    r.validate().map_err(|e| ApiError::unprocessable("invalid_calendar", e.to_string()))?;
    Ok(r)
}

/// Creates a holiday calendar (annual routine).
#[utoipa::path(post, path = "/api/t3000/calendars", tag = "schedules",
    request_body(content = CalendarBody, description = "`name`, `holiday` (`holiday1` or `holiday2`), `dates` (`YYYY-MM-DD`), `recurring` (`MM-DD`)"),
    responses((status = 201, body = Calendar), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_calendar(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Calendar>)> {
    let routine = check_calendar(&body)?;
    let c = state.catalog.insert(Calendar { id: 0, routine, updated_us: state.now_us() })?;
    audit(&state, &who, "calendar.create", format!("calendar:{}", c.id), None, json(&c));
    Ok((StatusCode::CREATED, Json(c)))
}

/// Changes a holiday calendar; schedules using it follow at once.
#[utoipa::path(put, path = "/api/t3000/calendars/{id}", tag = "schedules", params(("id" = i64, Path)),
    request_body(content = CalendarBody, description = "As for POST"),
    responses((status = 200, body = Calendar), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_calendar(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Calendar>> {
    let old = found::<Calendar>(&state, id, "calendar")?;
    let c = Calendar { id, routine: check_calendar(&body)?, updated_us: state.now_us() };
    state.catalog.put(c.clone())?;
    audit(&state, &who, "calendar.update", format!("calendar:{id}"), json(&old), json(&c));
    Ok(Json(c))
}

/// Deletes a holiday calendar and removes it from the schedules that use it.
#[utoipa::path(delete, path = "/api/t3000/calendars/{id}", tag = "schedules", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_calendar(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let old = found::<Calendar>(&state, id, "calendar")?;
    state.catalog.transaction(|tx| {
        let users: Vec<Schedule> =
            tx.rows::<Schedule>().values().filter(|s| s.calendar_ids.contains(&id)).cloned().collect();
        for mut s in users {
            s.calendar_ids.retain(|c| *c != id);
            tx.put(s)?;
        }
        tx.delete::<Calendar>(id);
        Ok(())
    })?;
    audit(&state, &who, "calendar.delete", format!("calendar:{id}"), json(&old), None);
    Ok(StatusCode::NO_CONTENT)
}
