//! Alarms: rules on points and devices, their evaluation on the live bus, acknowledgement, history.
//!
//! Each enabled rule has an [`AlarmEvaluator`] (`t3_core::alarm`). The service follows the live bus
//! (every acknowledged sample, collected or pushed), feeds the samples of watched points to their
//! rules, ticks every second for delays, and feeds device-offline rules from the collector's status.
//! Every transition is stored in the alarm history (catalog event stream `alarm`, key = rule id)
//! before it is published on [`AlarmService::subscribe`] (for the WebSocket). After a restart each
//! rule resumes from its latest stored transition.

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::routes::json_body;
use crate::http::routes::{audit, found, json};
use crate::model::alarm::{AlarmEvent, AlarmRuleRecord, AlarmView, STORAGE_ALARM};
use crate::model::check::check_name;
use crate::model::device::DeviceRecord;
use crate::service::auth::{Principal, now_us};
use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use t3_core::Sample;
use t3_core::alarm::{AlarmCondition, AlarmEvaluator, AlarmRule, AlarmState, Level, Transition};
use t3_drivers::collector::{Collector, DeviceState};
use t3_storage::Storage;
use t3_storage::catalog::{Catalog, EventFilter};
use tokio::sync::broadcast;

struct Watched {
    record: AlarmRuleRecord,
    eval: AlarmEvaluator,
    /// The device's name, for device-offline rules.
    device: Option<String>,
}

/// The alarm service.
pub struct AlarmService {
    catalog: Arc<Catalog>,
    rules: Mutex<HashMap<i64, Watched>>,
    tx: broadcast::Sender<AlarmEvent>,
    /// For the built-in storage alarm ([`STORAGE_ALARM`]), once [`AlarmService::spawn`] ran.
    storage: std::sync::OnceLock<Storage>,
}

impl std::fmt::Debug for AlarmService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlarmService").field("rules", &self.rules.lock().len()).finish()
    }
}

fn device_name(catalog: &Catalog, id: Option<i64>) -> Option<String> {
    id.and_then(|id| catalog.get::<DeviceRecord>(id)).map(|d| d.config.name)
}

impl AlarmService {
    /// Loads the rules and resumes each from its latest stored transition.
    pub fn new(catalog: Arc<Catalog>) -> anyhow::Result<Arc<AlarmService>> {
        let me = Arc::new(AlarmService {
            catalog: catalog.clone(),
            rules: Mutex::default(),
            tx: broadcast::channel(1024).0,
            storage: std::sync::OnceLock::new(),
        });
        for r in catalog.list::<AlarmRuleRecord>() {
            me.load(r);
        }
        Ok(me)
    }

    /// (Re)starts evaluating a rule; a disabled or removed rule stops.
    fn load(&self, r: AlarmRuleRecord) {
        if !r.enabled {
            self.rules.lock().remove(&r.id);
            return;
        }
        let last = self
            .catalog
            .events("alarm", &EventFilter { key: Some(r.id), limit: 1, ..Default::default() })
            .ok()
            .and_then(|e| e.into_iter().next())
            .and_then(|(_, _, _, body)| serde_json::from_value::<AlarmEvent>(body).ok());
        let eval = match last.as_ref().map(|e| AlarmEvaluator::resume(r.rule.clone(), &e.transition)) {
            Some(Ok(eval)) => eval,
            // No history, or the rule changed so that its last alarm cannot continue: start afresh.
            _ => match AlarmEvaluator::new(r.rule.clone()) {
                Ok(eval) => eval,
                Err(e) => {
                    tracing::error!(rule = r.id, error = %e, "alarm rule is invalid; not evaluated");
                    return;
                }
            },
        };
        let device = device_name(&self.catalog, r.device_id);
        self.rules.lock().insert(r.id, Watched { record: r, eval, device });
    }

    fn remove(&self, id: i64) {
        self.rules.lock().remove(&id);
    }

    /// Every later transition.
    pub fn subscribe(&self) -> broadcast::Receiver<AlarmEvent> {
        self.tx.subscribe()
    }

    /// Stores, then publishes, transitions of a rule.
    fn record(&self, r: &AlarmRuleRecord, transitions: Vec<Transition>) {
        for t in transitions {
            let event = AlarmEvent {
                rule_id: r.id,
                name: r.name.clone(),
                point_id: r.point_id,
                device_id: r.device_id,
                message: r.rule.message.clone(),
                transition: t,
            };
            let body = serde_json::to_value(&event).unwrap_or_default();
            if let Err(e) = self.catalog.append_event("alarm", r.id, event.transition.at_us, &body) {
                tracing::error!(rule = r.id, error = %e, "could not store an alarm transition");
            }
            tracing::info!(rule = r.id, name = %r.name, to = event.transition.to.as_str(), level = event.transition.level.as_str(), "alarm");
            let _ = self.tx.send(event);
        }
    }

    /// Feeds samples to the rules of their points. Transitions are stored while the rules are
    /// locked, so the history never lags the state the API shows.
    fn observe(&self, samples: &[Sample]) {
        let mut rules = self.rules.lock();
        if rules.is_empty() {
            return;
        }
        let mut by_point: HashMap<u32, Vec<i64>> = HashMap::new();
        for (id, w) in rules.iter() {
            if let Some(p) = w.record.point_id {
                by_point.entry(p).or_default().push(*id);
            }
        }
        for s in samples {
            let Some(ids) = by_point.get(&s.point_id.0) else { continue };
            for id in ids {
                if let Some(w) = rules.get_mut(id) {
                    let t = w.eval.observe(s.value, s.quality, s.ts);
                    self.record(&w.record, t);
                }
            }
        }
    }

    fn tick(&self, collector: &Collector, now: i64) {
        let mut rules = self.rules.lock();
        for w in rules.values_mut() {
            let mut t = Vec::new();
            if let Some(name) = &w.device {
                match collector.status().get(name).map(|s| s.state) {
                    Some(DeviceState::Online) => t.extend(w.eval.observe_online(true, now)),
                    Some(DeviceState::Offline) => t.extend(w.eval.observe_online(false, now)),
                    _ => {}
                }
            }
            t.extend(w.eval.tick(now));
            self.record(&w.record, t);
        }
    }

    /// Follows the live bus and ticks every second, until the storage engine goes away.
    pub fn spawn(self: &Arc<Self>, storage: &Storage, collector: Arc<Collector>) {
        let _ = self.storage.set(storage.clone());
        let me = Arc::downgrade(self);
        let mut live = storage.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    batch = live.recv() => {
                        let Some(me) = me.upgrade() else { return };
                        match batch {
                            Ok(batch) => me.observe(&batch),
                            Err(broadcast::error::RecvError::Lagged(n)) => {
                                tracing::warn!(batches = n, "the alarm service fell behind the live bus; samples skipped");
                            }
                            Err(broadcast::error::RecvError::Closed) => return,
                        }
                    }
                    _ = tick.tick() => {
                        let Some(me) = me.upgrade() else { return };
                        me.tick(&collector, now_us());
                    }
                }
            }
        });
    }

    fn views(&self) -> Vec<AlarmView> {
        let rules = self.rules.lock();
        let mut out: Vec<AlarmView> = self
            .catalog
            .list::<AlarmRuleRecord>()
            .into_iter()
            .map(|r| {
                let w = rules.get(&r.id);
                AlarmView {
                    rule_id: r.id,
                    name: r.name.clone(),
                    point_id: r.point_id,
                    device_id: r.device_id,
                    message: r.rule.message.clone(),
                    state: w.map_or(AlarmState::Normal, |w| w.eval.state()).as_str().to_owned(),
                    level: w.and_then(|w| w.eval.level()).map(|l: Level| l.as_str().to_owned()),
                    since_us: w.and_then(|w| w.eval.since_us()),
                }
            })
            .collect();
        out.extend(self.storage_alarm());
        out.sort_by_key(|v| std::cmp::Reverse(v.since_us));
        out
    }

    /// The built-in storage alarm, while quarantined files wait for an acknowledgement.
    fn storage_alarm(&self) -> Option<AlarmView> {
        let open: Vec<_> = self.storage.get()?.quarantined().into_iter().filter(|q| !q.acknowledged).collect();
        if open.is_empty() {
            return None;
        }
        let rows: u64 = open.iter().map(|q| q.rows).sum();
        let files: Vec<&str> = open.iter().map(|q| q.file.as_str()).collect();
        Some(AlarmView {
            rule_id: STORAGE_ALARM,
            name: "Storage: data files quarantined".into(),
            point_id: None,
            device_id: None,
            message: Some(format!(
                "{} data file(s) failed a check and were moved to quarantine/; {rows} rows are missing from answers over their range: {}",
                open.len(),
                files.join(", ")
            )),
            state: AlarmState::Active.as_str().to_owned(),
            level: Some(Level::DataLoss.as_str().to_owned()),
            since_us: open.iter().map(|q| q.at_us).min(),
        })
    }

    /// Acknowledges every quarantined file (the storage alarm). Returns how many.
    fn acknowledge_storage(&self) -> ApiResult<usize> {
        let storage = self.storage.get().ok_or_else(|| ApiError::not_found("no storage alarm"))?;
        let open: Vec<String> = storage.quarantined().into_iter().filter(|q| !q.acknowledged).map(|q| q.file).collect();
        if open.is_empty() {
            return Err(ApiError::new(StatusCode::CONFLICT, "cannot_acknowledge", "the storage alarm is not active"));
        }
        for f in &open {
            storage.acknowledge_quarantined(f)?;
        }
        Ok(open.len())
    }

    fn acknowledge(&self, id: i64, user: &str) -> ApiResult<AlarmEvent> {
        let mut rules = self.rules.lock();
        let w = rules.get_mut(&id).ok_or_else(|| ApiError::not_found(format!("no enabled alarm rule {id}")))?;
        let t = w
            .eval
            .acknowledge(user, now_us())
            .map_err(|e| ApiError::new(StatusCode::CONFLICT, "cannot_acknowledge", e.to_string()))?;
        let event = AlarmEvent {
            rule_id: w.record.id,
            name: w.record.name.clone(),
            point_id: w.record.point_id,
            device_id: w.record.device_id,
            message: w.record.rule.message.clone(),
            transition: t.clone(),
        };
        self.record(&w.record, vec![t]);
        Ok(event)
    }
}

// ---- HTTP ----

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
        return Err(ApiError::bad_request("invalid_state", format!("unknown state `{want}`")));
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
        from_us: crate::http::routes::optional_instant(q.from.as_deref(), "from")?,
        to_us: crate::http::routes::optional_instant(q.to.as_deref(), "to")?,
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

/// Acknowledges a rule's alarm (active -> acknowledged, cleared -> normal).
#[utoipa::path(post, path = "/api/t3000/alarms/{id}/ack", tag = "alarms", params(("id" = i64, Path, description = "Rule id")),
    responses((status = 200, body = AlarmEvent), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn acknowledge(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<AlarmEvent>> {
    let event = if id == STORAGE_ALARM {
        let view = state.alarms.storage_alarm();
        let n = state.alarms.acknowledge_storage()?;
        audit(&state, &who, "alarm.ack", format!("storage alarm: {n} quarantined file(s)"), None, None);
        AlarmEvent {
            rule_id: STORAGE_ALARM,
            name: view.as_ref().map(|v| v.name.clone()).unwrap_or_default(),
            point_id: None,
            device_id: None,
            message: view.and_then(|v| v.message),
            transition: Transition {
                at_us: now_us(),
                from: AlarmState::Active,
                to: AlarmState::Acknowledged,
                level: Level::DataLoss,
                value: None,
                kind: t3_core::alarm::TransitionKind::Acknowledged { by: who.username.clone() },
            },
        }
    } else {
        let event = state.alarms.acknowledge(id, &who.username)?;
        audit(&state, &who, "alarm.ack", format!("alarm_rule:{id}"), None, None);
        event
    };
    Ok(Json(event))
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
            crate::http::routes::devices::find(state, &d.to_string())?;
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

/// Adds an alarm rule; it is evaluated from the next sample on.
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
        updated_us: now_us(),
    })?;
    state.alarms.load(r.clone());
    audit(&state, &who, "alarm_rule.create", format!("alarm_rule:{}", r.id), None, json(&r));
    Ok((StatusCode::CREATED, Json(r)))
}

/// Changes an alarm rule; its alarm starts afresh if its condition can no longer produce it.
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
        updated_us: now_us(),
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
