//! Alarms: rules on points and devices, their evaluation on the live bus, acknowledgement.
//!
//! Each enabled rule has an [`AlarmEvaluator`] (`t3_core::alarm`). The service follows the live bus
//! (every acknowledged sample, collected or pushed), feeds the samples of watched points to their
//! rules, ticks every second for delays, and feeds device-offline rules from the collector's status.
//! Every transition is stored in the alarm history (catalog event stream `alarm`, key = rule id)
//! before it is published on [`AlarmService::subscribe`] (for the WebSocket). After a restart each
//! rule resumes from its latest stored transition.

use crate::model::alarm::{AlarmEvent, AlarmRuleRecord, AlarmView, STORAGE_ALARM};
use crate::model::device::DeviceRecord;
use crate::service::Issuer;
use crate::service::audit::AuditLog;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use t3_core::Sample;
use t3_core::alarm::{AlarmEvaluator, AlarmState, Level, Transition};
use t3_core::clock::Clock;
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

/// Why an acknowledgement was refused.
#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    /// No such (enabled) rule, or no storage alarm.
    #[error("{0}")]
    NotFound(String),
    /// The alarm is not in a state that takes an acknowledgement.
    #[error("{0}")]
    CannotAcknowledge(String),
    #[error(transparent)]
    Storage(#[from] t3_storage::Error),
}

/// The alarm service.
pub struct AlarmService {
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    audit: AuditLog,
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
    /// Loads the rules (their `AlarmRuleRecord`s registered by `model::register`) and resumes each
    /// from its latest stored transition.
    pub fn new(catalog: Arc<Catalog>, clock: Arc<dyn Clock>) -> Arc<AlarmService> {
        let me = Arc::new(AlarmService {
            catalog: catalog.clone(),
            audit: AuditLog::new(catalog.clone(), clock.clone()),
            clock,
            rules: Mutex::default(),
            tx: broadcast::channel(1024).0,
            storage: std::sync::OnceLock::new(),
        });
        for r in catalog.list::<AlarmRuleRecord>() {
            me.load(r);
        }
        me
    }

    /// (Re)starts evaluating a rule; a disabled or removed rule stops.
    pub fn load(&self, r: AlarmRuleRecord) {
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

    /// Stops evaluating a rule (deleted).
    pub fn remove(&self, id: i64) {
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
                        let now = me.clock.now_us();
                        me.tick(&collector, now);
                    }
                }
            }
        });
    }

    /// The present state of every rule's alarm and the storage alarm, newest first.
    pub fn views(&self) -> Vec<AlarmView> {
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
    fn acknowledge_storage(&self) -> Result<usize, AlarmError> {
        let storage = self.storage.get().ok_or_else(|| AlarmError::NotFound("no storage alarm".into()))?;
        let open: Vec<String> = storage.quarantined().into_iter().filter(|q| !q.acknowledged).map(|q| q.file).collect();
        if open.is_empty() {
            return Err(AlarmError::CannotAcknowledge("the storage alarm is not active".into()));
        }
        for f in &open {
            storage.acknowledge_quarantined(f)?;
        }
        Ok(open.len())
    }

    fn acknowledge_rule(&self, id: i64, user: &str) -> Result<AlarmEvent, AlarmError> {
        let mut rules = self.rules.lock();
        let w = rules.get_mut(&id).ok_or_else(|| AlarmError::NotFound(format!("no enabled alarm rule {id}")))?;
        let t =
            w.eval.acknowledge(user, self.clock.now_us()).map_err(|e| AlarmError::CannotAcknowledge(e.to_string()))?;
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

    /// A person acknowledges the alarm of rule `id` (active -> acknowledged, cleared -> normal), or
    /// the storage alarm ([`STORAGE_ALARM`]: every quarantined file); recorded in the audit log.
    /// REST (`POST /api/t3000/alarms/{id}/ack`) and the WebSocket (`AckAlarm`) both come here.
    pub fn acknowledge(&self, who: &Issuer, id: i64) -> Result<AlarmEvent, AlarmError> {
        let event = if id == STORAGE_ALARM {
            let view = self.storage_alarm();
            let n = self.acknowledge_storage()?;
            let target = format!("storage alarm: {n} quarantined file(s)");
            self.audit.record(who.remote.clone(), &who.actor, "alarm.ack", Some(target), None, None, "ok");
            AlarmEvent {
                rule_id: STORAGE_ALARM,
                name: view.as_ref().map(|v| v.name.clone()).unwrap_or_default(),
                point_id: None,
                device_id: None,
                message: view.and_then(|v| v.message),
                transition: Transition {
                    at_us: self.clock.now_us(),
                    from: AlarmState::Active,
                    to: AlarmState::Acknowledged,
                    level: Level::DataLoss,
                    value: None,
                    kind: t3_core::alarm::TransitionKind::Acknowledged { by: who.actor.clone() },
                },
            }
        } else {
            let event = self.acknowledge_rule(id, &who.actor)?;
            self.audit.record(
                who.remote.clone(),
                &who.actor,
                "alarm.ack",
                Some(format!("alarm_rule:{id}")),
                None,
                None,
                "ok",
            );
            event
        };
        Ok(event)
    }
}
