//! Weekly schedules and holiday calendars (T3000's weekly and annual routines), and the scheduler
//! that drives their outputs through the command arbiter.
//!
//! A schedule has T3000's day types (Monday..Sunday, Holiday1, Holiday2) with up to four ON/OFF
//! pairs each, the calendars (annual routines) that turn dates into holidays, and output bindings:
//! points commanded to `on_value` / `off_value` at the schedule's priority (15 by default). Times
//! are wall-clock times of the schedule's building (`time_zone`, UTC without a building), evaluated
//! by `t3_core::schedule`, which handles daylight-saving changes.
//!
//! The scheduler compares each enabled schedule's state with the state it last applied once a
//! second ([`due`]); on a change (a transition, a start, an edit) it writes the outputs. A failed
//! write is retried after [`RETRY`]. Disabling or deleting a schedule, or unbinding an output,
//! relinquishes the schedule's commands.

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::routes::json_body;
use crate::http::routes::{audit, found, json};
use crate::model::check::check_name;
use crate::model::place::Building;
use crate::model::schedule::{Calendar, OutputBinding, Schedule};
use crate::service::auth::{Principal, now_us};
use crate::service::control::{Control, Issuer};
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use t3_core::arbiter::{Command, Priority};
use t3_core::schedule::{self, AnnualRoutine, Tz, WeeklySchedule};
use t3_storage::catalog::Catalog;

/// How long after a failed output write the scheduler tries again.
pub const RETRY: Duration = Duration::from_secs(30);

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

/// One coming change of a schedule's output.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransitionView {
    /// RFC 3339, UTC.
    pub at: String,
    pub on: bool,
}

/// A schedule as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleResponse {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    /// `weekly`.
    pub schedule_type: String,
    /// `active` (enabled) or `inactive`.
    pub status: String,
    /// Whether the output is ON now.
    pub on: bool,
    /// The next change of the output (RFC 3339, UTC).
    pub next_run: Option<String>,
    /// The next few changes.
    pub next_transitions: Vec<TransitionView>,
    pub time_zone: String,
    pub building_id: Option<i64>,
    #[schema(value_type = Object)]
    pub weekly_schedule: WeeklySchedule,
    pub calendar_ids: Vec<i64>,
    pub outputs: Vec<OutputBinding>,
    pub priority: u8,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The time zone and the calendars a schedule is evaluated with.
fn context(catalog: &Catalog, s: &Schedule) -> (Tz, Vec<AnnualRoutine>) {
    let tz = s
        .building_id
        .and_then(|b| catalog.get::<Building>(b))
        .and_then(|b| schedule::parse_tz(&b.time_zone).ok())
        .unwrap_or(Tz::UTC);
    let routines = catalog
        .read::<Calendar, _>(|c| s.calendar_ids.iter().filter_map(|id| c.get(id)).map(|c| c.routine.clone()).collect());
    (tz, routines)
}

fn response(catalog: &Catalog, s: &Schedule, now: DateTime<Utc>) -> ScheduleResponse {
    let (tz, routines) = context(catalog, s);
    let next = schedule::transitions(&s.weekly, &routines, tz, now, 4);
    ScheduleResponse {
        id: s.id,
        name: s.name.clone(),
        description: s.description.clone(),
        schedule_type: "weekly".into(),
        status: if s.enabled { "active" } else { "inactive" }.into(),
        on: schedule::state_at(&s.weekly, &routines, tz, now),
        next_run: next.first().map(|t| rfc3339(t.at)),
        next_transitions: next.iter().map(|t| TransitionView { at: rfc3339(t.at), on: t.on }).collect(),
        time_zone: tz.name().to_owned(),
        building_id: s.building_id,
        weekly_schedule: s.weekly.clone(),
        calendar_ids: s.calendar_ids.clone(),
        outputs: s.outputs.clone(),
        priority: s.priority,
    }
}

/// What the scheduler applied last to each schedule, and when a failed one may be retried.
#[derive(Debug, Default)]
pub struct Applied {
    state: HashMap<i64, bool>,
    retry_at: HashMap<i64, DateTime<Utc>>,
}

/// The schedules whose outputs must be written at `now`, with the state to write: enabled ones
/// whose state differs from the one last applied (or that were never applied), unless a failed
/// write waits for its retry time.
pub fn due(catalog: &Catalog, applied: &Applied, now: DateTime<Utc>) -> Vec<(Schedule, bool)> {
    catalog
        .list::<Schedule>()
        .into_iter()
        .filter(|s| s.enabled && !s.outputs.is_empty())
        .filter(|s| applied.retry_at.get(&s.id).is_none_or(|t| *t <= now))
        .filter_map(|s| {
            let (tz, routines) = context(catalog, &s);
            let on = schedule::state_at(&s.weekly, &routines, tz, now);
            (applied.state.get(&s.id) != Some(&on)).then_some((s, on))
        })
        .collect()
}

/// A schedule changed state, or was created, changed or deleted (for the WebSocket's
/// `ScheduleUpdate`).
#[derive(Debug, Clone)]
pub struct ScheduleEvent {
    pub schedule_id: i64,
    pub name: String,
    /// `state`, `created`, `updated` or `deleted`.
    pub change: &'static str,
    /// `active`, `inactive` or `deleted`.
    pub status: String,
    pub on: bool,
    pub next_run: Option<String>,
}

/// The scheduler.
#[derive(Debug)]
pub struct Scheduler {
    catalog: Arc<Catalog>,
    control: Arc<Control>,
    applied: Mutex<Applied>,
    events: tokio::sync::broadcast::Sender<ScheduleEvent>,
}

impl Scheduler {
    pub fn new(catalog: Arc<Catalog>, control: Arc<Control>) -> anyhow::Result<Arc<Scheduler>> {
        Ok(Arc::new(Scheduler {
            catalog,
            control,
            applied: Mutex::default(),
            events: tokio::sync::broadcast::channel(256).0,
        }))
    }

    /// Every later schedule change.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ScheduleEvent> {
        self.events.subscribe()
    }

    /// Announces a change of `s` (`deleted`: it is gone).
    pub fn publish(&self, s: &Schedule, change: &'static str) {
        let event = if change == "deleted" {
            ScheduleEvent {
                schedule_id: s.id,
                name: s.name.clone(),
                change,
                status: "deleted".into(),
                on: false,
                next_run: None,
            }
        } else {
            let r = response(&self.catalog, s, Utc::now());
            ScheduleEvent {
                schedule_id: s.id,
                name: s.name.clone(),
                change,
                status: r.status,
                on: r.on,
                next_run: r.next_run,
            }
        };
        let _ = self.events.send(event);
    }

    fn issuer(s: &Schedule) -> Issuer {
        Issuer { actor: format!("schedule:{}", s.id), remote: None }
    }

    /// Writes a schedule's outputs for `on`; returns the errors (point id, message).
    async fn apply(&self, s: &Schedule, on: bool) -> Vec<(u32, String)> {
        let mut errors = Vec::new();
        let Ok(priority) = Priority::new(s.priority) else { return vec![(0, "invalid priority".into())] };
        for o in &s.outputs {
            let value = if on { o.on_value } else { o.off_value };
            let result = match Command::new(value, priority, format!("schedule:{}", s.id), now_us(), None) {
                Ok(cmd) => {
                    self.control.write(&Self::issuer(s), o.point_id, cmd, o.switch_to_manual, true).await.map(|_| ())
                }
                Err(e) => Err(ApiError::unprocessable("invalid_command", e.to_string())),
            };
            if let Err(e) = result {
                tracing::warn!(schedule = s.id, point = o.point_id, error = %e.message, "schedule output write failed");
                errors.push((o.point_id, e.message));
            }
        }
        let changed = {
            let mut applied = self.applied.lock();
            if errors.is_empty() {
                applied.retry_at.remove(&s.id);
                applied.state.insert(s.id, on) != Some(on)
            } else {
                applied.retry_at.insert(s.id, Utc::now() + RETRY);
                false
            }
        };
        if changed {
            self.publish(s, "state");
        }
        errors
    }

    /// Relinquishes the commands a schedule holds on `points`.
    async fn release(&self, s: &Schedule, points: &[u32]) {
        let Ok(priority) = Priority::new(s.priority) else { return };
        let source = format!("schedule:{}", s.id);
        for &p in points {
            if self.control.array(p).iter().any(|c| c.priority == priority && c.source == source)
                && let Err(e) = self.control.relinquish(&Self::issuer(s), p, priority).await
            {
                tracing::warn!(schedule = s.id, point = p, error = %e.message, "relinquishing a schedule's command failed");
            }
        }
        self.applied.lock().state.remove(&s.id);
    }

    /// Writes whatever is due once a second.
    pub fn spawn(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                let work = due(&me.catalog, &me.applied.lock(), Utc::now());
                for (s, on) in work {
                    me.apply(&s, on).await;
                }
            }
        });
    }
}

// ---- HTTP ----

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
        updated_us: now_us(),
    })
}

fn get_schedule(state: &AppState, id: i64) -> ApiResult<Schedule> {
    found::<Schedule>(state, id, "schedule")
}

/// Every schedule with its state now and next run.
#[utoipa::path(get, path = "/api/t3000/schedules", tag = "schedules", responses((status = 200, body = [ScheduleResponse])))]
pub async fn list(State(state): State<AppState>) -> Json<Vec<ScheduleResponse>> {
    let now = Utc::now();
    Json(state.catalog.list::<Schedule>().iter().map(|s| response(&state.catalog, s, now)).collect())
}

/// One schedule.
#[utoipa::path(get, path = "/api/t3000/schedules/{id}", tag = "schedules", params(("id" = i64, Path)),
    responses((status = 200, body = ScheduleResponse), (status = 404, body = ErrorBody)))]
pub async fn get_one(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<ScheduleResponse>> {
    Ok(Json(response(&state.catalog, &get_schedule(&state, id)?, Utc::now())))
}

/// Creates a schedule; its outputs are written at once and at each transition.
#[utoipa::path(post, path = "/api/t3000/schedules", tag = "schedules", request_body = ScheduleBody,
    responses((status = 201, body = ScheduleResponse), (status = 400, body = ErrorBody),
        (status = 404, description = "No such building, calendar or device point", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<ScheduleResponse>)> {
    let b: ScheduleBody = json_body(&body)?;
    let s = state.catalog.insert(body_to_schedule(&state, 0, b)?)?;
    state.scheduler.publish(&s, "created");
    audit(&state, &who, "schedule.create", format!("schedule:{}", s.id), None, json(&s));
    Ok((StatusCode::CREATED, Json(response(&state.catalog, &s, Utc::now()))))
}

/// Changes a schedule; outputs no longer bound (or all, when disabled) are relinquished.
#[utoipa::path(put, path = "/api/t3000/schedules/{id}", tag = "schedules", params(("id" = i64, Path)), request_body = ScheduleBody,
    responses((status = 200, body = ScheduleResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<ScheduleResponse>> {
    let old = get_schedule(&state, id)?;
    let b: ScheduleBody = json_body(&body)?;
    let new = body_to_schedule(&state, id, b)?;
    state.catalog.put(new.clone())?;
    let dropped: Vec<u32> = if !new.enabled || new.priority != old.priority {
        old.outputs.iter().map(|o| o.point_id).collect()
    } else {
        old.outputs.iter().map(|o| o.point_id).filter(|p| !new.outputs.iter().any(|o| o.point_id == *p)).collect()
    };
    state.scheduler.release(&old, &dropped).await;
    state.scheduler.publish(&new, "updated");
    audit(&state, &who, "schedule.update", format!("schedule:{id}"), json(&old), json(&new));
    Ok(Json(response(&state.catalog, &new, Utc::now())))
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
    let (tz, routines) = context(&state.catalog, &s);
    let on = schedule::state_at(&s.weekly, &routines, tz, Utc::now());
    let errors = state.scheduler.apply(&s, on).await;
    let result = if errors.is_empty() { "ok".to_owned() } else { format!("{} output(s) failed", errors.len()) };
    state.auth.audit(
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
        errors: errors.into_iter().map(|(point_id, message)| RunError { point_id, message }).collect(),
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
    let c = state.catalog.insert(Calendar { id: 0, routine, updated_us: now_us() })?;
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
    let c = Calendar { id, routine: check_calendar(&body)?, updated_us: now_us() };
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use t3_core::schedule::{DayType, Period, TimeOfDay};

    fn t(h: u32, m: u32) -> TimeOfDay {
        TimeOfDay::new(h, m).unwrap()
    }

    /// The scheduler's decisions, minute by minute through both 2026 daylight-saving changes in
    /// Europe/Berlin, with the clock under the test's control: the outputs are written exactly at
    /// the instants the wall-clock times fall on.
    #[test]
    fn writes_happen_at_the_right_instants_across_dst() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).unwrap();
        catalog.register::<Building>().unwrap();
        catalog.register::<Calendar>().unwrap();
        catalog.register::<Schedule>().unwrap();
        let b = catalog
            .insert(Building {
                id: 0,
                name: "B".into(),
                description: None,
                address: None,
                time_zone: "Europe/Berlin".into(),
                updated_us: 0,
            })
            .unwrap();
        let mut weekly = WeeklySchedule::default();
        // Sunday: ON 01:00-02:30 (02:30 does not exist on 2026-03-29) and 02:30-05:00 on
        // 2026-10-25 (02:30 happens twice: the first one counts).
        weekly.days.insert(DayType::Sunday, vec![Period::new(t(1, 0), t(2, 30)), Period::new(t(4, 0), t(5, 0))]);
        let s = catalog
            .insert(Schedule {
                id: 0,
                name: "s".into(),
                description: None,
                building_id: Some(b.id),
                enabled: true,
                weekly,
                calendar_ids: vec![],
                outputs: vec![OutputBinding { point_id: 1, on_value: 1.0, off_value: 0.0, switch_to_manual: false }],
                priority: 15,
                updated_us: 0,
            })
            .unwrap();
        let run = |from: DateTime<Utc>, hours: i64| {
            let mut applied = Applied::default();
            let mut writes = Vec::new();
            let mut now = from;
            while now < from + chrono::Duration::hours(hours) {
                for (sched, on) in due(&catalog, &applied, now) {
                    assert_eq!(sched.id, s.id);
                    applied.state.insert(sched.id, on);
                    writes.push((now, on));
                }
                now += chrono::Duration::minutes(1);
            }
            writes
        };
        let utc = |d: u32, m: u32, h: u32, min: u32| Utc.with_ymd_and_hms(2026, m, d, h, min, 0).unwrap();
        // Spring: CET (+1) until 01:00 UTC, then CEST (+2).
        let spring = run(utc(28, 3, 22, 0), 5);
        assert_eq!(
            spring,
            vec![
                (utc(28, 3, 22, 0), false), // the first decision writes OFF
                (utc(29, 3, 0, 0), true),   // 01:00 CET
                (utc(29, 3, 1, 0), false),  // 02:30 does not exist: 03:00 CEST
                (utc(29, 3, 2, 0), true),   // 04:00 CEST
            ],
            "{spring:#?}"
        );
        let spring = run(utc(29, 3, 2, 30), 2);
        assert_eq!(spring, vec![(utc(29, 3, 2, 30), true), (utc(29, 3, 3, 0), false)], "05:00 CEST: {spring:#?}");
        // Autumn: CEST (+2) until 01:00 UTC, then CET (+1); 02:00-03:00 local happens twice.
        let autumn = run(utc(24, 10, 22, 0), 6);
        assert_eq!(
            autumn,
            vec![
                (utc(24, 10, 22, 0), false),
                (utc(24, 10, 23, 0), true),  // 01:00 CEST
                (utc(25, 10, 0, 30), false), // the first 02:30 (CEST)
                (utc(25, 10, 3, 0), true),   // 04:00 CET
            ],
            "{autumn:#?}"
        );
    }
}
