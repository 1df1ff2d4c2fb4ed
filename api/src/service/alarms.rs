//! Alarms: rules on points and devices, their evaluation on the live bus, acknowledgement.
//!
//! Each enabled rule has an [`AlarmEvaluator`] (`t3_core::alarm`). The service follows the live bus
//! (every acknowledged sample, collected or pushed), feeds the samples of watched points to their
//! rules, ticks every second for delays, and feeds device-offline rules from the collector's status.
//! Every transition is stored in the alarm history (catalog event stream `alarm`, key = rule id)
//! before it is published on [`AlarmService::subscribe`] (for the WebSocket). After a restart each
//! rule resumes from its latest stored transition.
//!
//! A rule is judged at once when it is loaded (created, edited, enabled, and at start-up once the
//! service runs): a point's rule against the point's latest value (storage's latest-value cache),
//! a device-offline rule against the device's state now. So a rule on a point that is already past
//! its limit raises its alarm when it is saved, not at the point's next sample.
//!
//! Besides the evaluator's state, each rule keeps its present alarm's [`Episode`]: when it was
//! raised and when and by whom it was acknowledged, so the list still shows when an acknowledged
//! alarm started.
//!
//! The server's own faults are alarms too ([`SystemAlarm`], reserved rule ids at the top of the
//! 32-bit range): one general mechanism, [`AlarmService::set_system`], raises or clears each by
//! kind with a message, and the end of a fault says so ([`SystemAlarm::ended`]); its transitions
//! ([`FaultAlarm`]) are stored, published and acknowledged like a rule's. The alarms that gather
//! several faults (devices offline, plugins refused, programs in error) are told every fault
//! ([`AlarmService::set_system_members`]): each new one raises the alarm again, one that ends
//! while others remain is published too. The service's tick watches storage (the disk level, the
//! WAL) and the devices; the plugin host's refusals come through
//! [`AlarmService::report_plugins`]; a program runner reports its programs in error through
//! `set_system_members(SystemAlarm::ProgramError, ..)`.
//!
//! Programs raise alarms of their own: each `ALARM` / `DALARM` statement of a program is an alarm
//! with a fixed id ([`crate::model::alarm::program_alarm_id`]), raised and cleared by the program
//! ([`AlarmService::set_program_alarm`]) with the statement's message, stored, published and
//! acknowledged like the others. They live as long as their program runs: stopping or restarting
//! a program clears them ([`AlarmService::clear_program_alarms`]), and after a server restart a
//! running program raises again what still holds.

use crate::model::alarm::{
    AlarmEvent, AlarmRuleRecord, AlarmView, STORAGE_ALARM, STORAGE_ALARM_NAME, SystemAlarm, program_of_alarm,
};
use crate::model::device::DeviceRecord;
use crate::service::Issuer;
use crate::service::audit::AuditLog;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use t3_core::alarm::{AlarmCondition, AlarmEvaluator, AlarmState, FaultAlarm, Level, Transition, TransitionKind};
use t3_core::clock::Clock;
use t3_core::config::RuleRef;
use t3_core::{Quality, Sample};
use t3_drivers::collector::{Collector, DeviceState};
use t3_storage::catalog::{Catalog, EventFilter};
use t3_storage::{DiskLevel, Storage, WriteState};
use tokio::sync::broadcast;

struct Watched {
    record: AlarmRuleRecord,
    eval: AlarmEvaluator,
    /// The device's name, for device-offline rules.
    device: Option<String>,
    episode: Episode,
}

/// A system alarm: its state machine, its present episode and its latest message.
struct SystemEntry {
    alarm: FaultAlarm,
    episode: Episode,
    message: Option<String>,
    /// For an alarm that gathers several faults ([`SystemAlarm::gathers`]): the faults it stands
    /// for now, in the order reported; empty while it is not on. `None` when not known (resumed
    /// from a history stored without them).
    members: Option<Vec<Member>>,
}

/// One of the faults a system alarm that gathers several stands for ([`SystemAlarm::gathers`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// What it is, as a message names it; a fault is new when its name was not among the alarm's
    /// before: `ahu-2`, `program 3 "AHU"`, `/plugins/bad.so`.
    pub name: String,
    /// How the alarm's message lists it: `ahu-2`, `program 3 "AHU" line 30: division by zero`,
    /// `/plugins/bad.so: not a plugin`.
    pub detail: String,
}

/// The key of a stored system alarm transition that holds its [`Member`]s: beside the event, not
/// in it (the history and the WebSocket show the message), so that a restart knows which faults
/// the alarm already announced.
const MEMBERS_KEY: &str = "members";

/// The message of a system alarm that gathers `members` (not empty): each of them, listed.
fn gathered_message(kind: SystemAlarm, members: &[Member]) -> String {
    let details = |sep: &str| members.iter().map(|m| m.detail.as_str()).collect::<Vec<_>>().join(sep);
    match kind {
        SystemAlarm::DevicesOffline => format!("{} device(s) do not answer: {}", members.len(), details(", ")),
        SystemAlarm::PluginRefused => format!("{} plugin file(s) refused: {}", members.len(), details("; ")),
        _ => details("; "),
    }
}

/// What a message says of the faults `gone` that ended while the alarm stays on:
/// `ahu-1 answers again`.
fn gone_phrase(kind: SystemAlarm, gone: &[&str]) -> String {
    let names = gone.join(", ");
    match kind {
        SystemAlarm::DevicesOffline if gone.len() == 1 => format!("{names} answers again"),
        SystemAlarm::DevicesOffline => format!("{names} answer again"),
        SystemAlarm::PluginRefused => format!("{names} no longer refused"),
        _ => format!("{names} no longer in error"),
    }
}

/// The alarm of a program's ALARM / DALARM statement.
struct ProgramAlarm {
    alarm: FaultAlarm,
    episode: Episode,
    /// `<program name> line 30`.
    name: String,
    message: String,
    device_id: Option<i64>,
}

/// A system or program alarm as the alarm list shows it.
fn fault_view(
    rule_id: i64,
    name: String,
    device_id: Option<i64>,
    message: Option<String>,
    alarm: &FaultAlarm,
    episode: &Episode,
) -> AlarmView {
    AlarmView {
        rule_id,
        name,
        point_id: None,
        device_id,
        message,
        state: alarm.state().as_str().to_owned(),
        level: Some(alarm.level().as_str().to_owned()),
        since_us: alarm.since_us(),
        started_us: episode.started_us,
        acknowledged_us: episode.acknowledged_us,
        acknowledged_by: episode.acknowledged_by.clone(),
    }
}

/// Acknowledges a system or program alarm by `user`: the transition, applied to its episode.
fn acknowledge_fault(
    alarm: &mut FaultAlarm,
    episode: &mut Episode,
    user: &str,
    now_us: i64,
) -> Result<Transition, AlarmError> {
    let t = alarm.acknowledge(user, now_us).map_err(|e| AlarmError::CannotAcknowledge(e.to_string()))?;
    episode.apply(&t);
    Ok(t)
}

/// What a program's `ALARM` / `DALARM` statement says when it raises or clears its alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramAlarmReport {
    /// Its id ([`crate::model::alarm::program_alarm_id`]).
    pub id: i64,
    pub program_name: String,
    pub device_id: Option<i64>,
    pub line_number: u16,
    /// `high` (`ALARM a > b`), `low` (`ALARM a < b`) or `state` (`DALARM`).
    pub level: Level,
    pub message: String,
    pub raised: bool,
}

/// The present alarm of a rule: when it was raised, when and by whom it was acknowledged.
#[derive(Debug, Clone, Default, PartialEq)]
struct Episode {
    started_us: Option<i64>,
    acknowledged_us: Option<i64>,
    acknowledged_by: Option<String>,
}

impl Episode {
    /// Follows one transition. A raise starts an episode, the end of the alarm (normal) ends it; a
    /// change that needs a new acknowledgement (back to active) forgets the acknowledgement. A
    /// raise of an alarm that is on (a new fault under a system alarm that gathers several)
    /// continues its episode.
    fn apply(&mut self, t: &Transition) {
        match t.to {
            AlarmState::Normal => *self = Episode::default(),
            AlarmState::Active => {
                let starts = matches!(t.kind, TransitionKind::Raised)
                    && matches!(t.from, AlarmState::Normal | AlarmState::Cleared);
                if starts || self.started_us.is_none() {
                    self.started_us = Some(t.at_us);
                }
                self.acknowledged_us = None;
                self.acknowledged_by = None;
            }
            AlarmState::Acknowledged => {
                self.started_us.get_or_insert(t.at_us);
                if let TransitionKind::Acknowledged { by } = &t.kind {
                    self.acknowledged_us = Some(t.at_us);
                    self.acknowledged_by = Some(by.clone());
                }
            }
            AlarmState::Cleared => {
                self.started_us.get_or_insert(t.at_us);
            }
        }
    }
}

/// How many of a rule's latest transitions [`AlarmService::load`] reads to find when its present
/// alarm started.
const EPISODE_LOOKBACK: usize = 1000;

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
    /// For the built-in storage alarm ([`STORAGE_ALARM`]) and the latest values, once
    /// [`AlarmService::spawn`] ran.
    storage: std::sync::OnceLock<Storage>,
    /// The devices' state, for device-offline rules, once [`AlarmService::spawn`] ran.
    collector: std::sync::OnceLock<Arc<Collector>>,
    /// Every [`SystemAlarm`], resumed from the history.
    system: Mutex<BTreeMap<SystemAlarm, SystemEntry>>,
    /// The alarms of programs' ALARM / DALARM statements, by id.
    program_alarms: Mutex<BTreeMap<i64, ProgramAlarm>>,
    /// One [`AlarmService::check_system`] at a time, so a check that read older facts never
    /// applies them after a newer one. It holds how many quarantined files the storage alarm
    /// announced (see [`AlarmService::check_quarantine`]).
    checking: Mutex<usize>,
}

impl std::fmt::Debug for AlarmService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlarmService").field("rules", &self.rules.lock().len()).finish()
    }
}

fn device_name(catalog: &Catalog, id: Option<i64>) -> Option<String> {
    id.and_then(|id| catalog.get::<DeviceRecord>(id)).map(|d| d.config.name)
}

/// A transition of the storage alarm ([`STORAGE_ALARM`]), from its present view.
fn storage_event(view: AlarmView, from: AlarmState, to: AlarmState, kind: TransitionKind, at_us: i64) -> AlarmEvent {
    AlarmEvent {
        rule_id: STORAGE_ALARM,
        name: view.name,
        point_id: None,
        device_id: None,
        message: view.message,
        transition: Transition { at_us, from, to, level: Level::DataLoss, value: None, kind },
    }
}

/// The event of a program alarm's transition.
fn program_event(id: i64, entry: &ProgramAlarm, transition: Transition) -> AlarmEvent {
    AlarmEvent {
        rule_id: id,
        name: entry.name.clone(),
        point_id: None,
        device_id: entry.device_id,
        message: Some(entry.message.clone()),
        transition,
    }
}

/// The names of `members` that are not in `of`.
fn names_not_in<'a>(members: &'a [Member], of: &[Member]) -> Vec<&'a str> {
    members.iter().filter(|m| !of.iter().any(|o| o.name == m.name)).map(|m| m.name.as_str()).collect()
}

/// The event of a system alarm's transition.
fn system_event(kind: SystemAlarm, entry: &SystemEntry, transition: Transition) -> AlarmEvent {
    AlarmEvent {
        rule_id: kind.rule_id(),
        name: kind.name().to_owned(),
        point_id: None,
        device_id: None,
        message: entry.message.clone(),
        transition,
    }
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
            collector: std::sync::OnceLock::new(),
            system: Mutex::default(),
            program_alarms: Mutex::default(),
            checking: Mutex::default(),
        });
        for kind in SystemAlarm::ALL {
            let history = me.history(kind.rule_id());
            let alarm = history
                .last()
                .map_or(FaultAlarm::new(kind.level()), |e| FaultAlarm::resume(kind.level(), &e.transition));
            let members = match alarm.state() {
                AlarmState::Active | AlarmState::Acknowledged => me.stored_members(kind.rule_id()),
                AlarmState::Normal | AlarmState::Cleared => Some(Vec::new()),
            };
            let mut entry = SystemEntry {
                alarm,
                episode: Episode::default(),
                message: history.last().and_then(|e| e.message.clone()),
                members,
            };
            history.iter().for_each(|e| entry.episode.apply(&e.transition));
            me.system.lock().insert(kind, entry);
        }
        for r in catalog.list::<AlarmRuleRecord>() {
            me.load(r);
        }
        me
    }

    /// The latest stored transitions of rule `id` (at most [`EPISODE_LOOKBACK`]), oldest first.
    fn history(&self, id: i64) -> Vec<AlarmEvent> {
        let mut events: Vec<AlarmEvent> = self
            .catalog
            .events("alarm", &EventFilter { key: Some(id), limit: EPISODE_LOOKBACK, ..Default::default() })
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(_, _, _, body)| serde_json::from_value::<AlarmEvent>(body).ok())
            .collect();
        events.reverse();
        events
    }

    /// The faults the latest stored transition of system alarm `id` stood for; `None` when it was
    /// stored without them.
    fn stored_members(&self, id: i64) -> Option<Vec<Member>> {
        let latest = self
            .catalog
            .events("alarm", &EventFilter { key: Some(id), limit: 1, ..Default::default() })
            .unwrap_or_default();
        let (_, _, _, body) = latest.into_iter().next()?;
        serde_json::from_value(body.get(MEMBERS_KEY)?.clone()).ok()
    }

    /// (Re)starts evaluating a rule; a disabled or removed rule stops. An enabled rule is judged at
    /// once against its point's latest value or its device's state (see the module documentation).
    pub fn load(&self, r: AlarmRuleRecord) {
        if !r.enabled {
            self.rules.lock().remove(&r.id);
            return;
        }
        let history: Vec<Transition> = self.history(r.id).into_iter().map(|e| e.transition).collect();
        let resumed = history.last().map(|t| AlarmEvaluator::resume(r.rule.clone(), t));
        let (eval, episode) = match resumed {
            Some(Ok(eval)) => {
                let mut episode = Episode::default();
                history.iter().for_each(|t| episode.apply(t));
                (eval, episode)
            }
            // No history, or the rule changed so that its last alarm cannot continue: start afresh.
            _ => match AlarmEvaluator::new(r.rule.clone()) {
                Ok(eval) => (eval, Episode::default()),
                Err(e) => {
                    tracing::error!(rule = r.id, error = %e, "alarm rule is invalid; not evaluated");
                    return;
                }
            },
        };
        let device = device_name(&self.catalog, r.device_id);
        let mut w = Watched { record: r, eval, device, episode };
        // Judged and recorded under the lock, as in `observe`, so no sample slips in between.
        let mut rules = self.rules.lock();
        let t = self.judge_now(&mut w);
        self.record(&mut w, t);
        rules.insert(w.record.id, w);
    }

    /// Feeds a rule its point's latest value or its device's state now, then lets its delay run to
    /// now. Nothing before [`AlarmService::spawn`] (no storage, no collector yet).
    fn judge_now(&self, w: &mut Watched) -> Vec<Transition> {
        let mut t = Vec::new();
        if let (Some(point), Some(storage)) = (w.record.point_id, self.storage.get())
            && let Some((_, l)) = storage.latest(&[point]).into_iter().next()
        {
            t.extend(w.eval.observe(l.value, Quality(l.quality), l.ts));
        }
        let now = self.clock.now_us();
        if let (Some(name), Some(collector)) = (&w.device, self.collector.get()) {
            match collector.status().get(name).map(|s| s.state) {
                Some(DeviceState::Online) => t.extend(w.eval.observe_online(true, now)),
                Some(DeviceState::Offline) => t.extend(w.eval.observe_online(false, now)),
                _ => {}
            }
        }
        if self.storage.get().is_some() {
            t.extend(w.eval.tick(now));
        }
        t
    }

    /// Stops evaluating a rule (deleted).
    pub fn remove(&self, id: i64) {
        self.rules.lock().remove(&id);
    }

    /// Whether an entry of a channel's `rules` (`[alerts]`) names an alarm this server has now: a
    /// rule (enabled or not), a system alarm or the storage alarm, by id or by name; a program's
    /// alarm by its id, or by its name (`PROGRAM line N`) once it has been raised since the start.
    pub fn names_an_alarm(&self, r: &RuleRef) -> bool {
        let rules = self.catalog.list::<AlarmRuleRecord>();
        match r {
            RuleRef::Id(id) => {
                *id == STORAGE_ALARM
                    || SystemAlarm::is_system(*id)
                    || program_of_alarm(*id).is_some()
                    || rules.iter().any(|rule| rule.id == *id)
            }
            RuleRef::Name(name) => {
                name == STORAGE_ALARM_NAME
                    || SystemAlarm::ALL.iter().any(|s| s.name() == name)
                    || rules.iter().any(|rule| rule.name == *name)
                    || self.program_alarms.lock().values().any(|p| p.name == *name)
            }
        }
    }

    /// Every later transition.
    pub fn subscribe(&self) -> broadcast::Receiver<AlarmEvent> {
        self.tx.subscribe()
    }

    /// Stores, then publishes, transitions of a rule, and follows them in its episode.
    fn record(&self, w: &mut Watched, transitions: Vec<Transition>) {
        let r = &w.record;
        for t in transitions {
            w.episode.apply(&t);
            let event = AlarmEvent {
                rule_id: r.id,
                name: r.name.clone(),
                point_id: r.point_id,
                device_id: r.device_id,
                message: r.rule.message.clone(),
                transition: t,
            };
            self.publish(event);
        }
    }

    /// Stores one transition in the alarm history, then publishes it.
    fn publish(&self, event: AlarmEvent) {
        self.publish_with(event, None);
    }

    /// A transition of a system alarm: stored (with the faults it stands for, when it gathers
    /// several) and published; its episode follows it.
    fn publish_system(&self, kind: SystemAlarm, entry: &mut SystemEntry, t: Transition) {
        entry.episode.apply(&t);
        let members = entry.members.as_deref().filter(|_| kind.gathers());
        self.publish_with(system_event(kind, entry, t), members);
    }

    /// Stores one transition in the alarm history (with `members` beside it, see [`MEMBERS_KEY`]),
    /// then publishes it.
    fn publish_with(&self, event: AlarmEvent, members: Option<&[Member]>) {
        let mut body = serde_json::to_value(&event).unwrap_or_default();
        if let (Some(members), Some(object)) = (members, body.as_object_mut()) {
            object.insert(MEMBERS_KEY.into(), serde_json::to_value(members).unwrap_or_default());
        }
        if let Err(e) = self.catalog.append_event("alarm", event.rule_id, event.transition.at_us, &body) {
            tracing::error!(rule = event.rule_id, error = %e, "could not store an alarm transition");
        }
        tracing::info!(rule = event.rule_id, name = %event.name, to = event.transition.to.as_str(), level = event.transition.level.as_str(), "alarm");
        let _ = self.tx.send(event);
    }

    /// Raises (`fault` is `Some(message)`) or clears (`None`) the system alarm `kind`. While the
    /// fault lasts, a new message replaces the one shown without a new transition; the
    /// transitions (raised, cleared or normal) are stored and published like a rule's. The
    /// transition that ends it says that the fault ended ([`SystemAlarm::ended`]). An alarm that
    /// gathers several faults is told them with [`AlarmService::set_system_members`].
    pub fn set_system(&self, kind: SystemAlarm, fault: Option<String>) {
        let mut system = self.system.lock();
        let Some(entry) = system.get_mut(&kind) else { return };
        match fault {
            Some(message) => {
                entry.message = Some(message);
                entry.members = None;
                if let Some(t) = entry.alarm.set(true, self.clock.now_us()) {
                    self.publish_system(kind, entry, t);
                }
            }
            None => self.end_system(kind, entry),
        }
    }

    /// The fault of system alarm `kind` ended: cleared (normal when it was acknowledged), with
    /// [`SystemAlarm::ended`] as its message; nothing when it is not on.
    fn end_system(&self, kind: SystemAlarm, entry: &mut SystemEntry) {
        entry.members = Some(Vec::new());
        if matches!(entry.alarm.state(), AlarmState::Active | AlarmState::Acknowledged) {
            entry.message = Some(kind.ended().to_owned());
        }
        if let Some(t) = entry.alarm.set(false, self.clock.now_us()) {
            self.publish_system(kind, entry, t);
        }
    }

    /// Reports every fault a system alarm that gathers several ([`SystemAlarm::gathers`]) stands
    /// for now (`members`; none: it ends). Each new fault reaches whoever is told about alarms: it
    /// raises the alarm (again, also when it was acknowledged), its message listing every fault
    /// and naming what is new (`2 device(s) do not answer: ahu-1, ahu-2 (new: ahu-2)`). A fault
    /// that ends while others remain is a `cleared` transition that keeps the state (`ahu-1
    /// answers again; 1 device(s) do not answer: ahu-2`); the last one's end clears the alarm
    /// with [`SystemAlarm::ended`]. A fault whose detail changed only updates the message.
    pub fn set_system_members(&self, kind: SystemAlarm, members: Vec<Member>) {
        let mut system = self.system.lock();
        let Some(entry) = system.get_mut(&kind) else { return };
        if members.is_empty() {
            self.end_system(kind, entry);
            return;
        }
        let on = matches!(entry.alarm.state(), AlarmState::Active | AlarmState::Acknowledged);
        let list = gathered_message(kind, &members);
        let before = match entry.members.take() {
            _ if !on => Vec::new(),
            Some(before) => before,
            // On, from a history stored without its faults: they are taken as announced.
            None => members.clone(),
        };
        let (new, gone) = (names_not_in(&members, &before), names_not_in(&before, &members));
        let transition = if !new.is_empty() {
            entry.message = Some(match (before.is_empty(), gone.is_empty()) {
                (true, _) => list,
                (false, true) => format!("{list} (new: {})", new.join(", ")),
                (false, false) => format!("{list} (new: {}; {})", new.join(", "), gone_phrase(kind, &gone)),
            });
            Some(entry.alarm.raise_again(self.clock.now_us()))
        } else if !gone.is_empty() {
            entry.message = Some(format!("{}; {list}", gone_phrase(kind, &gone)));
            entry.alarm.ease(self.clock.now_us())
        } else {
            // The same faults: a changed detail shows, the message of the last transition stays.
            if before != members {
                entry.message = Some(list);
            }
            None
        };
        entry.members = Some(members);
        if let Some(t) = transition {
            self.publish_system(kind, entry, t);
        }
    }

    /// The faults system alarm `kind` stands for now (none while it is not on; `None` when not
    /// known, see [`SystemEntry::members`]).
    fn system_members(&self, kind: SystemAlarm) -> Option<Vec<Member>> {
        self.system.lock().get(&kind).and_then(|e| e.members.clone())
    }

    /// A program's ALARM / DALARM statement raised or cleared its alarm: a raise while it is
    /// active only updates the message; the transitions are stored and published like a rule's.
    pub fn set_program_alarm(&self, r: ProgramAlarmReport) {
        let mut alarms = self.program_alarms.lock();
        let entry = alarms.entry(r.id).or_insert_with(|| ProgramAlarm {
            alarm: FaultAlarm::new(r.level),
            episode: Episode::default(),
            name: String::new(),
            message: String::new(),
            device_id: r.device_id,
        });
        entry.name = format!("{} line {}", r.program_name, r.line_number);
        if r.raised || entry.message.is_empty() {
            entry.message = r.message;
        }
        entry.device_id = r.device_id;
        if let Some(t) = entry.alarm.set(r.raised, self.clock.now_us()) {
            entry.episode.apply(&t);
            self.publish(program_event(r.id, entry, t));
        }
    }

    /// Clears every alarm program `program_id` raised (it stopped, or starts afresh); those
    /// acknowledged end, the others wait for their acknowledgement as cleared.
    pub fn clear_program_alarms(&self, program_id: i64) {
        let mut alarms = self.program_alarms.lock();
        let now = self.clock.now_us();
        for (id, entry) in
            alarms.iter_mut().filter(|(id, _)| program_of_alarm(**id).is_some_and(|(p, _)| p == program_id))
        {
            if let Some(t) = entry.alarm.set(false, now) {
                entry.episode.apply(&t);
                self.publish(program_event(*id, entry, t));
            }
        }
        alarms.retain(|_, e| e.alarm.state() != AlarmState::Normal);
    }

    /// The plugin host's files: the plugin-refused alarm while any is refused, with each file
    /// and why. Called at start and after every scan of the plugin folders.
    pub fn report_plugins(&self, entries: &[t3_drivers::plugin::PluginEntry]) {
        let refused: Vec<Member> = entries
            .iter()
            .filter(|e| e.state == t3_drivers::plugin::EntryState::Refused)
            .map(|e| {
                let name = e.file.display().to_string();
                Member { detail: e.reason.clone().unwrap_or_else(|| name.clone()), name }
            })
            .collect();
        self.set_system_members(SystemAlarm::PluginRefused, refused);
    }

    /// Judges the faults the service watches itself: the disk's level and the WAL (storage), and
    /// devices offline that no enabled device-offline rule watches.
    fn check_system(&self, storage: &Storage, collector: &Collector) {
        let mut announced = self.checking.lock();
        self.check_quarantine(storage, &mut announced);
        let disk = storage.disk();
        let line = disk.describe();
        self.set_system(SystemAlarm::DiskLow, (disk.level >= DiskLevel::Low).then(|| line.clone()));
        self.set_system(SystemAlarm::DiskFloor, (disk.level == DiskLevel::Floor).then_some(line));
        let wal = match storage.write_state() {
            WriteState::Ok => None,
            WriteState::Unavailable(why) => Some(format!(
                "the write-ahead log cannot create a segment ({why}); writes are refused with 503 and retried every second"
            )),
            WriteState::Poisoned(why) => Some(format!(
                "the write-ahead log is poisoned by an I/O failure ({why}); writes are refused until the server is restarted (fix the disk first)"
            )),
        };
        self.set_system(SystemAlarm::WalRefusing, wal);
        let watched: BTreeSet<String> = self
            .rules
            .lock()
            .values()
            .filter(|w| w.record.rule.condition == AlarmCondition::DeviceOffline)
            .filter_map(|w| w.device.clone())
            .collect();
        let statuses = collector.status().all();
        // Right after a start devices are still connecting: one the alarm named before stays
        // named until it was polled, and no all-clear comes before they were (no flap at a start).
        let before = self.system_members(SystemAlarm::DevicesOffline).unwrap_or_default();
        let offline: Vec<Member> = statuses
            .iter()
            .filter(|d| !watched.contains(&d.name))
            .filter(|d| match d.state {
                DeviceState::Offline => true,
                DeviceState::Connecting => before.iter().any(|m| m.name == d.name),
                _ => false,
            })
            .map(|d| Member { name: d.name.clone(), detail: d.name.clone() })
            .collect();
        if offline.is_empty() && statuses.iter().any(|d| d.state == DeviceState::Connecting) {
            return;
        }
        self.set_system_members(SystemAlarm::DevicesOffline, offline);
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
                    self.record(w, t);
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
            self.record(w, t);
        }
    }

    /// Follows the live bus and ticks every second, until the storage engine goes away.
    /// The rules loaded before are judged at once (see [`AlarmService::load`]).
    pub fn spawn(self: &Arc<Self>, storage: &Storage, collector: Arc<Collector>) {
        let _ = self.storage.set(storage.clone());
        let _ = self.collector.set(collector.clone());
        {
            let mut rules = self.rules.lock();
            for w in rules.values_mut() {
                let t = self.judge_now(w);
                self.record(w, t);
            }
        }
        self.check_system(storage, &collector);
        let me = Arc::downgrade(self);
        let mut live = storage.subscribe();
        let storage = storage.clone();
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
                        me.check_system(&storage, &collector);
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
                    started_us: w.filter(|w| w.eval.state() != AlarmState::Normal).and_then(|w| w.episode.started_us),
                    acknowledged_us: w.and_then(|w| w.episode.acknowledged_us),
                    acknowledged_by: w.and_then(|w| w.episode.acknowledged_by.clone()),
                }
            })
            .collect();
        out.extend(self.storage_alarm());
        out.extend(self.system_views());
        out.extend(self.program_views());
        out.sort_by_key(|v| std::cmp::Reverse(v.since_us));
        out
    }

    /// The system alarms that are not normal.
    fn system_views(&self) -> Vec<AlarmView> {
        let system = self.system.lock();
        system
            .iter()
            .filter(|(_, e)| e.alarm.state() != AlarmState::Normal)
            .map(|(kind, e)| {
                fault_view(kind.rule_id(), kind.name().to_owned(), None, e.message.clone(), &e.alarm, &e.episode)
            })
            .collect()
    }

    /// The program alarms that are not normal.
    fn program_views(&self) -> Vec<AlarmView> {
        let alarms = self.program_alarms.lock();
        alarms
            .iter()
            .filter(|(_, e)| e.alarm.state() != AlarmState::Normal)
            .map(|(id, e)| fault_view(*id, e.name.clone(), e.device_id, Some(e.message.clone()), &e.alarm, &e.episode))
            .collect()
    }

    fn acknowledge_program(&self, id: i64, user: &str) -> Result<AlarmEvent, AlarmError> {
        let mut alarms = self.program_alarms.lock();
        let entry = alarms.get_mut(&id).ok_or_else(|| AlarmError::NotFound(format!("no program alarm {id}")))?;
        let t = acknowledge_fault(&mut entry.alarm, &mut entry.episode, user, self.clock.now_us())?;
        let event = program_event(id, entry, t);
        self.publish(event.clone());
        if entry.alarm.state() == AlarmState::Normal {
            alarms.remove(&id);
        }
        Ok(event)
    }

    fn acknowledge_system(&self, kind: SystemAlarm, user: &str) -> Result<AlarmEvent, AlarmError> {
        let mut system = self.system.lock();
        let Some(entry) = system.get_mut(&kind) else {
            return Err(AlarmError::NotFound(format!("no system alarm {}", kind.rule_id())));
        };
        let t = acknowledge_fault(&mut entry.alarm, &mut entry.episode, user, self.clock.now_us())?;
        let event = system_event(kind, entry, t);
        self.publish_with(event.clone(), entry.members.as_deref().filter(|_| kind.gathers()));
        Ok(event)
    }

    /// Announces the storage alarm when more unacknowledged quarantined files wait than were
    /// announced: a raise, stored in the history and published (so it is notified) like a rule's.
    /// `announced` starts at 0, so files a recovery quarantined before the start are announced
    /// once the service runs, and again after each restart while nobody acknowledged them.
    fn check_quarantine(&self, storage: &Storage, announced: &mut usize) {
        let open = storage.quarantined().iter().filter(|q| !q.acknowledged).count();
        if open > *announced
            && let Some(view) = self.storage_alarm()
        {
            let from = if *announced == 0 { AlarmState::Normal } else { AlarmState::Active };
            self.publish(storage_event(view, from, AlarmState::Active, TransitionKind::Raised, self.clock.now_us()));
        }
        *announced = open;
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
            name: STORAGE_ALARM_NAME.into(),
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
            started_us: open.iter().map(|q| q.at_us).min(),
            acknowledged_us: None,
            acknowledged_by: None,
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
        self.record(w, vec![t]);
        Ok(event)
    }

    /// A person acknowledges the alarm of rule `id` (active -> acknowledged, cleared -> normal),
    /// the storage alarm ([`STORAGE_ALARM`]: every quarantined file), or a system alarm (a
    /// negative id, [`SystemAlarm`]); recorded in the audit log.
    /// REST (`POST /api/t3000/alarms/{id}/ack`) and the WebSocket (`AckAlarm`) both come here.
    pub fn acknowledge(&self, who: &Issuer, id: i64) -> Result<AlarmEvent, AlarmError> {
        let event = if id == STORAGE_ALARM {
            let mut announced = self.checking.lock();
            let view = self.storage_alarm();
            let n = self.acknowledge_storage()?;
            *announced = 0;
            let target = format!("storage alarm: {n} quarantined file(s)");
            self.audit.record(who.remote.clone(), &who.actor, "alarm.ack", Some(target), None, None, "ok");
            let by = TransitionKind::Acknowledged { by: who.actor.clone() };
            let view = view.ok_or_else(|| AlarmError::CannotAcknowledge("the storage alarm is not active".into()))?;
            let event = storage_event(view, AlarmState::Active, AlarmState::Acknowledged, by, self.clock.now_us());
            self.publish(event.clone());
            event
        } else if program_of_alarm(id).is_some() {
            let event = self.acknowledge_program(id, &who.actor)?;
            let target = format!("program alarm {id}: {}", event.name);
            self.audit.record(who.remote.clone(), &who.actor, "alarm.ack", Some(target), None, None, "ok");
            event
        } else if let Some(kind) = SystemAlarm::from_rule_id(id) {
            let event = self.acknowledge_system(kind, &who.actor)?;
            let target = format!("system alarm {id}: {}", kind.name());
            self.audit.record(who.remote.clone(), &who.actor, "alarm.ack", Some(target), None, None, "ok");
            event
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::alarm::AlarmView;
    use t3_core::alarm::{AlarmCondition, AlarmRule};
    use t3_core::config::CollectorConfig;

    const NOW: i64 = 1_795_651_200_000_000;

    fn low(low: f64) -> AlarmRule {
        AlarmRule {
            condition: AlarmCondition::Limits {
                waylow: None,
                low: Some(low),
                high: None,
                wayhigh: None,
                deadband: 0.0,
            },
            delay_secs: 0,
            message: None,
        }
    }

    fn view(alarms: &AlarmService, id: i64) -> AlarmView {
        alarms.views().into_iter().find(|v| v.rule_id == id).expect("the rule is listed")
    }

    /// A rule on a point already past its limit raises its alarm when it is created, edited to a
    /// tighter limit, or enabled, without a new sample; and an acknowledged alarm keeps when it
    /// started, also after a restart.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_rule_is_judged_when_loaded_and_keeps_its_start_through_acknowledgement() {
        let crate::service::testing::Base { dir: _dir, storage, catalog, collector, clock } =
            crate::service::testing::base(NOW, CollectorConfig::default());
        let alarms = AlarmService::new(catalog.clone(), clock.clone());
        alarms.spawn(&storage, collector);
        let sample_ts = NOW - 1_000_000;
        storage.ingest(vec![Sample::good(7, sample_ts, 3.0)]).await.unwrap();
        let rule = |id: i64, low_limit: f64, enabled: bool| AlarmRuleRecord {
            id,
            name: "low".into(),
            point_id: Some(7),
            device_id: None,
            rule: low(low_limit),
            enabled,
            updated_us: NOW,
        };

        // Created: judged against the latest value (3 <= 5) at once.
        let created = catalog.insert(rule(0, 5.0, true)).unwrap();
        alarms.load(created.clone());
        let v = view(&alarms, created.id);
        assert_eq!((v.state.as_str(), v.started_us, v.since_us), ("active", Some(sample_ts), Some(sample_ts)));

        // Edited from a limit the value is within (2) to one it is past (4).
        let edited = catalog.insert(rule(0, 2.0, true)).unwrap();
        alarms.load(edited.clone());
        assert_eq!(view(&alarms, edited.id).state, "normal");
        alarms.load(rule(edited.id, 4.0, true));
        assert_eq!(view(&alarms, edited.id).state, "active");

        // Enabled.
        let disabled = catalog.insert(rule(0, 5.0, false)).unwrap();
        alarms.load(disabled.clone());
        assert_eq!(view(&alarms, disabled.id).state, "normal");
        alarms.load(rule(disabled.id, 5.0, true));
        assert_eq!(view(&alarms, disabled.id).state, "active");

        // Acknowledged: `since_us` moves to the acknowledgement, `started_us` stays.
        clock.advance(60_000_000);
        let who = Issuer { actor: "alice".into(), remote: None, role: None };
        alarms.acknowledge(&who, created.id).unwrap();
        let v = view(&alarms, created.id);
        assert_eq!(v.state, "acknowledged");
        assert_eq!((v.started_us, v.since_us), (Some(sample_ts), Some(NOW + 60_000_000)));
        assert_eq!((v.acknowledged_us, v.acknowledged_by.as_deref()), (Some(NOW + 60_000_000), Some("alice")));

        // After a restart, from the stored history.
        let again = AlarmService::new(catalog.clone(), clock.clone());
        let v = view(&again, created.id);
        assert_eq!(
            (v.state.as_str(), v.started_us, v.acknowledged_us),
            ("acknowledged", Some(sample_ts), Some(NOW + 60_000_000))
        );

        // Back to normal: the episode ends.
        storage.ingest(vec![Sample::good(7, NOW + 61_000_000, 9.0)]).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while view(&alarms, created.id).state != "normal" {
            assert!(std::time::Instant::now() < deadline, "the alarm did not end");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let v = view(&alarms, created.id);
        assert_eq!((v.started_us, v.acknowledged_us, v.acknowledged_by), (None, None, None));
    }

    /// The server's own faults are alarms: the disk's levels and a plugin refused are raised and
    /// cleared by themselves, with a message, stored in the history and published; they are
    /// acknowledged like a rule's alarm, resume after a restart, and a program runner can raise
    /// its own through `set_system`.
    #[tokio::test(flavor = "multi_thread")]
    async fn system_faults_are_alarms_raised_cleared_published_and_acknowledged() {
        use t3_storage::disk::{MIB, ManualSpace, Space};
        let crate::service::testing::Base { dir: _dir, storage, catalog, collector, clock } =
            crate::service::testing::base(NOW, CollectorConfig::default());
        let fake = Arc::new(ManualSpace::default());
        let space = |free_mib: u64| Some(Space { free_bytes: free_mib * MIB, total_bytes: 100_000 * MIB });
        fake.set(space(50_000));
        storage.set_free_space_source(fake.clone());
        let alarms = AlarmService::new(catalog.clone(), clock.clone());
        let mut events = alarms.subscribe();
        alarms.spawn(&storage, collector.clone());
        let (disk_low, disk_floor, plugin_refused, program_error) = (
            SystemAlarm::DiskLow.rule_id(),
            SystemAlarm::DiskFloor.rule_id(),
            SystemAlarm::PluginRefused.rule_id(),
            SystemAlarm::ProgramError.rule_id(),
        );
        let state = |id: i64| alarms.views().into_iter().find(|v| v.rule_id == id).map(|v| v.state);
        assert_eq!((state(disk_low), state(disk_floor)), (None, None), "normal system alarms are not listed");

        // Below the alarm threshold (1024 MiB by default), then below the floor (128 MiB).
        fake.set(space(500));
        storage.check_disk();
        alarms.check_system(&storage, &collector);
        let low = events.recv().await.unwrap();
        assert_eq!(
            (low.rule_id, low.transition.to, low.transition.level),
            (disk_low, AlarmState::Active, Level::Warning)
        );
        assert!(
            low.message.as_deref().unwrap().contains("500.0 MiB free of 100000.0 MiB, below the alarm threshold"),
            "{low:?}"
        );
        fake.set(space(100));
        storage.check_disk();
        alarms.check_system(&storage, &collector);
        let floor = events.recv().await.unwrap();
        assert_eq!((floor.rule_id, floor.transition.level), (disk_floor, Level::Fault));
        assert!(storage.ingest(vec![Sample::good(1, NOW, 1.0)]).await.is_err());
        alarms.check_system(&storage, &collector);
        let v = alarms.views().into_iter().find(|v| v.rule_id == disk_floor).unwrap();
        assert!(v.message.as_deref().unwrap().contains("1 samples refused so far"), "{v:?}");

        // Acknowledged, then space returns: the floor alarm ends (normal), the low one is cleared
        // and waits for its acknowledgement.
        let who = Issuer { actor: "alice".into(), remote: None, role: None };
        let ack = alarms.acknowledge(&who, disk_floor).unwrap();
        assert_eq!(ack.transition.to, AlarmState::Acknowledged);
        assert!(matches!(alarms.acknowledge(&who, disk_floor), Err(AlarmError::CannotAcknowledge(_))));
        fake.set(space(50_000));
        storage.check_disk();
        alarms.check_system(&storage, &collector);
        assert_eq!((state(disk_low).as_deref(), state(disk_floor)), (Some("cleared"), None));
        assert!(storage.ingest(vec![Sample::good(1, NOW, 1.0)]).await.is_ok());
        // The transitions that end them say so; they do not repeat the fault.
        let ended: Vec<AlarmEvent> = std::iter::from_fn(|| events.try_recv().ok()).collect();
        let message = |id: i64| {
            let e = ended
                .iter()
                .find(|e| e.rule_id == id && e.transition.kind != TransitionKind::Acknowledged { by: "alice".into() });
            e.and_then(|e| e.message.clone())
        };
        assert_eq!(message(disk_floor).as_deref(), Some("free space is back above the floor; writes resume"));
        assert_eq!(message(disk_low).as_deref(), Some("free space is back above the alarm threshold"));
        let v = alarms.views().into_iter().find(|v| v.rule_id == disk_low).unwrap();
        assert_eq!(v.message.as_deref(), Some("free space is back above the alarm threshold"), "the list shows it");

        // A refused plugin; a program in error (the hook a program runner calls).
        let refused = t3_drivers::plugin::PluginEntry {
            file: "/plugins/bad.so".into(),
            state: t3_drivers::plugin::EntryState::Refused,
            name: None,
            version: None,
            abi: None,
            reason: Some("/plugins/bad.so: not a plugin".into()),
            protocol: None,
        };
        alarms.report_plugins(std::slice::from_ref(&refused));
        alarms.set_system(SystemAlarm::ProgramError, Some("program 3: division by zero".into()));
        let v = alarms.views().into_iter().find(|v| v.rule_id == plugin_refused).unwrap();
        assert_eq!((v.state.as_str(), v.level.as_deref()), ("active", Some("warning")));
        assert_eq!(v.message.as_deref(), Some("1 plugin file(s) refused: /plugins/bad.so: not a plugin"));

        // Every transition is in the history; after a restart each resumes where it was.
        let stored = |id: i64| alarms.history(id).into_iter().map(|e| e.transition.to).collect::<Vec<_>>();
        assert_eq!(stored(disk_floor), vec![AlarmState::Active, AlarmState::Acknowledged, AlarmState::Normal]);
        assert_eq!(stored(disk_low), vec![AlarmState::Active, AlarmState::Cleared]);
        let again = AlarmService::new(catalog.clone(), clock.clone());
        let states: Vec<(i64, String)> = again
            .views()
            .into_iter()
            .filter(|v| SystemAlarm::is_system(v.rule_id))
            .map(|v| (v.rule_id, v.state))
            .collect();
        assert_eq!(
            states.iter().map(|(id, s)| (*id, s.as_str())).collect::<BTreeSet<_>>(),
            BTreeSet::from([(disk_low, "cleared"), (plugin_refused, "active"), (program_error, "active")])
        );
        again.report_plugins(&[]);
        again.set_system(SystemAlarm::ProgramError, None);
        again.acknowledge(&who, disk_low).unwrap();
        assert!(again.views().iter().all(|v| !SystemAlarm::is_system(v.rule_id) || v.state == "cleared"));
        let ended = again.views().into_iter().find(|v| v.rule_id == plugin_refused).unwrap();
        assert_eq!(ended.message.as_deref(), Some("no plugin file is refused any more"));
    }

    fn member(name: &str) -> Member {
        Member { name: name.into(), detail: name.into() }
    }

    /// The next published transition; none waiting is a failure.
    fn next(events: &mut broadcast::Receiver<AlarmEvent>) -> AlarmEvent {
        events.try_recv().expect("a transition was published")
    }

    /// A system alarm that gathers several faults announces each new one (raised again, also
    /// when acknowledged, which then needs a new acknowledgement) and each that ends while others
    /// remain (cleared, the state kept), naming it; the same faults again change nothing, the
    /// episode keeps its start, a restart knows which faults were announced, and the end says so.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_gathering_system_alarm_announces_each_new_fault_and_each_that_ends() {
        let crate::service::testing::Base { dir: _dir, catalog, clock, .. } =
            crate::service::testing::base(NOW, CollectorConfig::default());
        let alarms = AlarmService::new(catalog.clone(), clock.clone());
        let mut events = alarms.subscribe();
        let kind = SystemAlarm::DevicesOffline;
        let id = kind.rule_id();
        let seen = |e: &AlarmEvent| {
            (e.transition.from, e.transition.to, e.transition.kind.clone(), e.message.clone().unwrap_or_default())
        };
        let (active, acked) = (AlarmState::Active, AlarmState::Acknowledged);

        alarms.set_system_members(kind, vec![member("ahu-1")]);
        let first = next(&mut events);
        assert_eq!(
            seen(&first),
            (AlarmState::Normal, active, TransitionKind::Raised, "1 device(s) do not answer: ahu-1".into())
        );
        clock.advance(1_000_000);
        alarms.set_system_members(kind, vec![member("ahu-1"), member("ahu-2")]);
        let second = next(&mut events);
        let listed = "2 device(s) do not answer: ahu-1, ahu-2 (new: ahu-2)";
        assert_eq!(seen(&second), (active, active, TransitionKind::Raised, listed.into()));
        let v = view(&alarms, id);
        assert_eq!((v.state.as_str(), v.message.as_deref(), v.started_us), ("active", Some(listed), Some(NOW)));
        alarms.set_system_members(kind, vec![member("ahu-1"), member("ahu-2")]);
        assert!(events.try_recv().is_err(), "the same faults again: nothing");

        clock.advance(1_000_000);
        alarms.set_system_members(kind, vec![member("ahu-2")]);
        let eased = next(&mut events);
        let back = "ahu-1 answers again; 1 device(s) do not answer: ahu-2";
        assert_eq!(seen(&eased), (active, active, TransitionKind::Cleared, back.into()));
        assert_eq!(view(&alarms, id).message.as_deref(), Some(back));

        // Acknowledged, then a new fault: raised again, not acknowledged, still the same episode.
        let who = Issuer { actor: "alice".into(), remote: None, role: None };
        alarms.acknowledge(&who, id).unwrap();
        next(&mut events);
        alarms.set_system_members(kind, vec![member("ahu-2")]);
        alarms.set_system_members(kind, vec![member("ahu-3"), member("ahu-2")]);
        let again = next(&mut events);
        let both = "2 device(s) do not answer: ahu-3, ahu-2 (new: ahu-3)";
        assert_eq!(seen(&again), (acked, active, TransitionKind::Raised, both.into()));
        let v = view(&alarms, id);
        assert_eq!((v.state.as_str(), v.acknowledged_by, v.started_us), ("active", None, Some(NOW)));

        // One new and one ended at once: one raise naming both.
        alarms.set_system_members(kind, vec![member("ahu-3"), member("ahu-4")]);
        let swapped = next(&mut events);
        let text = "2 device(s) do not answer: ahu-3, ahu-4 (new: ahu-4; ahu-2 answers again)";
        assert_eq!(seen(&swapped), (active, active, TransitionKind::Raised, text.into()));

        // After a restart the announced faults are known: the same ones change nothing.
        let again = AlarmService::new(catalog.clone(), clock.clone());
        let mut after = again.subscribe();
        assert_eq!(view(&again, id).message.as_deref(), Some(text));
        again.set_system_members(kind, vec![member("ahu-3"), member("ahu-4")]);
        assert!(after.try_recv().is_err(), "nothing new after a restart");

        // The last one ends: cleared, saying so.
        again.set_system_members(kind, Vec::new());
        let cleared = next(&mut after);
        assert_eq!(
            seen(&cleared),
            (active, AlarmState::Cleared, TransitionKind::Cleared, "every device answers again".into())
        );
        assert_eq!(view(&again, id).message.as_deref(), Some("every device answers again"));
        let kinds: Vec<(AlarmState, AlarmState)> =
            again.history(id).into_iter().map(|e| (e.transition.from, e.transition.to)).collect();
        assert_eq!(
            kinds,
            vec![
                (AlarmState::Normal, active),
                (active, active),
                (active, active),
                (active, acked),
                (acked, active),
                (active, active),
                (active, AlarmState::Cleared)
            ]
        );
    }

    /// Devices offline: each device that stops answering is announced; after a restart, devices
    /// still connecting that the alarm named stay named (no flap), and one that is gone is
    /// published as back.
    #[tokio::test(flavor = "multi_thread")]
    async fn devices_offline_announces_each_device_and_does_not_flap_at_a_restart() {
        let cfg = CollectorConfig { offline_after_failures: 1, ..CollectorConfig::default() };
        let crate::service::testing::Base { dir: _dir, storage, catalog, collector, clock } =
            crate::service::testing::base(NOW, cfg.clone());
        let device = |name: &str| -> t3_core::config::DeviceConfig {
            serde_json::from_value(serde_json::json!({
                "name": name, "protocol": "modbus-tcp", "ip_address": "127.0.0.1", "port": 1,
                "unit_id": 1, "profile": "T3-controller",
            }))
            .unwrap()
        };
        let pending = |c: &Arc<Collector>, name: &str| {
            c.add_pending(&device(name), tokio::spawn(async {}).abort_handle()).unwrap();
        };
        let alarms = AlarmService::new(catalog.clone(), clock.clone());
        let mut events = alarms.subscribe();
        pending(&collector, "ahu-1");
        pending(&collector, "ahu-2");
        alarms.check_system(&storage, &collector);
        assert!(events.try_recv().is_err(), "connecting: nothing yet");
        collector.pending_failed("ahu-1", 1, "refused");
        alarms.check_system(&storage, &collector);
        assert_eq!(next(&mut events).message.as_deref(), Some("1 device(s) do not answer: ahu-1"));
        collector.pending_failed("ahu-2", 1, "refused");
        alarms.check_system(&storage, &collector);
        let second = next(&mut events);
        assert_eq!(second.transition.kind, TransitionKind::Raised);
        assert_eq!(second.message.as_deref(), Some("2 device(s) do not answer: ahu-1, ahu-2 (new: ahu-2)"));

        // A restart: both connecting, then only ahu-2 found offline so far: nothing published.
        let sink = Arc::new(t3_storage::BatchingSink::start(storage.clone()));
        let restarted = Collector::new(cfg, sink, clock.clone());
        pending(&restarted, "ahu-1");
        pending(&restarted, "ahu-2");
        let again = AlarmService::new(catalog.clone(), clock.clone());
        let mut after = again.subscribe();
        again.check_system(&storage, &restarted);
        restarted.pending_failed("ahu-2", 1, "refused");
        again.check_system(&storage, &restarted);
        restarted.pending_failed("ahu-1", 1, "refused");
        again.check_system(&storage, &restarted);
        assert!(after.try_recv().is_err(), "no flap at the restart");

        // ahu-1 leaves the alarm: published, the alarm stays active for ahu-2.
        restarted.remove_device("ahu-1").await.unwrap();
        again.check_system(&storage, &restarted);
        let back = next(&mut after);
        assert_eq!((back.transition.to, back.transition.kind), (AlarmState::Active, TransitionKind::Cleared));
        assert_eq!(back.message.as_deref(), Some("ahu-1 answers again; 1 device(s) do not answer: ahu-2"));
    }
}
