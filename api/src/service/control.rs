//! Writing values to points through the command arbiter.
//!
//! Every write is a command at a priority (operator 8, schedule 15, program 16 by default) with an
//! optional expiry. The arbiter decides the effective value; only a change of the effective value
//! reaches the device, through the collector's confirmed write (read back). The audit log gets the
//! attempt before the device is written and its result after. Commands are kept in the catalog, so
//! a restart keeps them (and their expiry); a background task relinquishes expired commands and
//! writes what wins then.
//!
//! If the device write fails the command is taken back: the arbiter never claims a value that the
//! device does not have.
//!
//! A person's write, over REST (`POST /api/t3000/points/{id}/value`) or the WebSocket
//! (`WriteValue`), enters through [`Control::user_write`], which makes every check (priority, a
//! finite value, the role a configuration point needs, the point's range, the rate limit per
//! point, the expiry's bounds) before the command reaches the arbiter; a relinquish through
//! [`Control::user_relinquish`].
//!
//! Before the device is asked:
//! - a configuration point (its address, calibration, ranges, factory defaults: see
//!   `t3_drivers::classify`) takes writes and relinquishes from admins only;
//! - a value outside the point's span is refused, naming the span and its units: what its register
//!   format holds (a `u16` takes neither -1 nor 70000), a range its library description states,
//!   and what its range code allows (0-100 for a percent output, 0 / 1 for a digital point). This
//!   holds for every write, a schedule's too.
//!
//! A point with an auto/manual switch (T3 controllers) is put in manual or back in auto through
//! [`Control::user_set_mode`] (`POST /api/t3000/points/{id}/mode`): audited as `point.mode` (who,
//! when, from and to), as is a write that switched a point to manual. Back in auto the controller
//! owns the value, so the point's commands are cleared: nothing is written back when they would
//! have expired or been relinquished.

use crate::model::command::{CommandsRecord, Mode, ModeResult, WriteResult};
use crate::model::custom_range::CustomRanges;
use crate::model::user::Role;
use crate::service::Issuer;
use crate::service::ranges::{Configured, Ranges};
use crate::service::registry::Registry;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use t3_core::Quality;
use t3_core::arbiter::{Arbiter, Change, Command, Priority, PriorityArray};
use t3_core::clock::Clock;
use t3_core::range::{RangeMeaning, Span};
use t3_drivers::classify::PointClass;
use t3_drivers::collector::{CollectError, Collector};
use t3_drivers::driver::DriverError;
use t3_drivers::profile::PointType;
use t3_storage::Storage;
use t3_storage::catalog::{AuditEntry, Catalog};

/// Why a write or relinquish was refused or failed. Each says what the HTTP answer and the
/// WebSocket error carry (the same code and message on both).
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No such point, or its device is not polled.
    #[error("{0}")]
    NotFound(String),
    /// A manual point: its values are pushed, not commanded.
    #[error("point {0} is a manual point: push its values to POST /api/t3000/samples")]
    NotWritable(u32),
    /// The point cannot be written (its profile, or the device, says so).
    #[error("{0}")]
    ReadOnly(String),
    /// An input that is not in manual reads its sensor.
    #[error("{0}")]
    InputInAuto(String),
    /// A configuration point and a caller who is not an admin.
    #[error("{name} of {device} is a configuration register (it sets the device up): only an admin may change it")]
    AdminOnly { point_id: u32, name: String, device: String },
    /// The value is outside the point's span (its format, its stated range, its range code); the
    /// message names the span and its units.
    #[error("{0}")]
    OutsideSpan(String),
    /// The device refused: the point is in auto and `switch_to_manual` was not asked.
    #[error("the point is in auto (its controller drives it); send switch_to_manual: true to take it over")]
    PointInAuto,
    /// The value is outside what the point can hold (the device's range).
    #[error("{0}")]
    OutOfRange(String),
    /// NaN or an infinity.
    #[error("value must be a finite number")]
    NotFinite,
    #[error("{0}")]
    InvalidPriority(String),
    /// `expires_in_secs` outside [`crate::model::check::EXPIRES_IN_SECS`].
    #[error("expires_in_secs must be 1 to 31622400")]
    InvalidExpiry,
    /// The arbiter refused the command.
    #[error("{0}")]
    InvalidCommand(String),
    /// More writes to the point in the last minute than `auth.point_writes_per_minute`.
    #[error("point {point} accepts at most {per_minute} writes a minute")]
    RateLimited { point: u32, per_minute: u32, retry_after_secs: u64 },
    /// The device refused the write or did not answer.
    #[error("{0}")]
    DeviceWriteFailed(String),
    /// The point has no auto/manual switch (a library product's register, a pushed point).
    #[error("{0}")]
    NoAutoManual(String),
    #[error(transparent)]
    Storage(#[from] t3_storage::Error),
}

/// A write as a person asks for it (the body of `POST /api/t3000/points/{id}/value`, or a
/// WebSocket `WriteValue`), before any check.
#[derive(Debug, Clone, PartialEq)]
pub struct UserWrite {
    pub value: f64,
    /// 1 ..= 16; 8 (operator) when none.
    pub priority: Option<u8>,
    /// Relinquish after this many seconds ([`crate::model::check::EXPIRES_IN_SECS`]).
    pub expires_in_secs: Option<u64>,
    /// Switch a point in auto to manual first instead of refusing.
    pub switch_to_manual: bool,
}

/// The priority a person names (8 when none).
pub fn priority(p: Option<u8>) -> Result<Priority, ControlError> {
    Priority::new(p.unwrap_or(8)).map_err(|e| ControlError::InvalidPriority(e.to_string()))
}

/// The command arbiter with the device writes behind it.
#[derive(Debug)]
pub struct Control {
    arbiter: Mutex<Arbiter>,
    /// One write at a time per point: the arbiter's decision and the device write stay in order,
    /// and a slow device holds up only the writes to its own points.
    locks: Mutex<HashMap<u32, Arc<tokio::sync::Mutex<()>>>>,
    catalog: Arc<Catalog>,
    collector: Arc<Collector>,
    registry: Arc<Registry>,
    /// The latest values: whether an input is in manual.
    storage: Storage,
    /// The range codes the devices report: a point's units, span, and whether it is digital.
    ranges: Arc<Ranges>,
    clock: Arc<dyn Clock>,
    /// Writes people may make to one point in a minute (`auth.point_writes_per_minute`; a
    /// configuration reload changes it, [`Control::reconfigure`]).
    writes_per_minute: std::sync::atomic::AtomicU32,
    /// Accepted writes per point in the last minute.
    writes: Mutex<HashMap<u32, VecDeque<Instant>>>,
}

/// A writable point: its device and name, and what a write to it may be.
#[derive(Debug, Clone)]
struct Target {
    device: String,
    point: String,
    point_type: PointType,
    class: PointClass,
    /// The values a write may carry.
    span: Option<Span>,
    /// The units people see it in (its label's, its profile's, its range's).
    units: Option<String>,
    /// The names of a digital point's states, off then on, when its device says it is digital.
    states: Option<(String, String)>,
    /// The device keeps a priority array of its own (a plugin device: BACnet's): it is sent every
    /// slot that changes, not only the value that wins.
    own_priorities: bool,
}

/// What to send a device that keeps its own priority array to make it match `after`: each
/// priority whose command changed, with its value (none: relinquish).
fn slot_changes(before: Option<&PriorityArray>, after: Option<&PriorityArray>) -> Vec<(u8, Option<f64>)> {
    (1..=16u8)
        .filter_map(|p| {
            let prio = Priority::new(p).ok()?;
            let value = |a: Option<&PriorityArray>| a.and_then(|a| a.get(prio)).map(|c| c.value);
            let (b, a) = (value(before), value(after));
            (a != b).then_some((p, a))
        })
        .collect()
}

/// `v` as people write it: `100`, `2.5`, `-3276.8`.
fn num(v: f64) -> String {
    format!("{v}")
}

impl Target {
    /// Refuses a value the point cannot take, naming what it takes.
    fn check(&self, value: f64) -> Result<(), ControlError> {
        if let Some((off, on)) = &self.states {
            if value != 0.0 && value != 1.0 {
                return Err(ControlError::OutsideSpan(format!(
                    "{} is digital ({off}/{on}): write 0 ({off}) or 1 ({on}), not {}",
                    self.point,
                    num(value)
                )));
            }
            return Ok(());
        }
        match self.span {
            Some(s) if !s.contains(value) => {
                let units = self.units.as_deref().map(|u| format!(" {u}")).unwrap_or_default();
                Err(ControlError::OutsideSpan(format!(
                    "{} is outside the range of {}: {} to {}{units}",
                    num(value),
                    self.point,
                    num(s.min),
                    num(s.max)
                )))
            }
            _ => Ok(()),
        }
    }
}

fn device_error(e: CollectError) -> ControlError {
    match e {
        CollectError::Driver(DriverError::InAuto) => ControlError::PointInAuto,
        // What the point is (read-only, its range) is the device's configuration: 409.
        CollectError::ReadOnly(p) => ControlError::ReadOnly(format!("point \"{p}\" cannot be written")),
        CollectError::BadValue { .. } => ControlError::OutOfRange(e.to_string()),
        CollectError::UnknownDevice(_) | CollectError::UnknownPoint { .. } => ControlError::NotFound(e.to_string()),
        CollectError::NoAutoManual(p) => ControlError::NoAutoManual(format!("point {p} has no auto/manual switch")),
        other => ControlError::DeviceWriteFailed(other.to_string()),
    }
}

impl Control {
    /// The arbiter with the commands stored in `catalog` (its `CommandsRecord`s registered by
    /// `model::register`).
    pub fn new(
        catalog: Arc<Catalog>,
        collector: Arc<Collector>,
        registry: Arc<Registry>,
        storage: Storage,
        clock: Arc<dyn Clock>,
        writes_per_minute: u32,
        ranges: Arc<Ranges>,
    ) -> Arc<Control> {
        let arrays: std::collections::BTreeMap<u32, PriorityArray> =
            catalog.list::<CommandsRecord>().into_iter().map(|r| (r.id as u32, r.array)).collect();
        Arc::new(Control {
            arbiter: Mutex::new(Arbiter::from(arrays)),
            locks: Mutex::default(),
            catalog,
            collector,
            registry,
            storage,
            ranges,
            clock,
            writes_per_minute: writes_per_minute.into(),
            writes: Mutex::default(),
        })
    }

    fn lock_of(&self, point_id: u32) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().entry(point_id).or_default().clone()
    }

    /// The registry's entry of point `point_id`.
    fn entry(&self, point_id: u32) -> Result<crate::service::registry::Entry, ControlError> {
        self.registry
            .entries()
            .into_iter()
            .find(|e| e.id == point_id)
            .ok_or_else(|| ControlError::NotFound(format!("no point {point_id}")))
    }

    fn target(&self, point_id: u32) -> Result<Target, ControlError> {
        let entry = self.entry(point_id)?;
        if entry.device.is_empty() {
            return Err(ControlError::NotWritable(point_id));
        }
        let spec = self.collector.device(&entry.device).ok_or_else(|| {
            ControlError::NotFound(format!("point {point_id}: device \"{}\" is not polled", entry.device))
        })?;
        let cp = spec
            .points
            .iter()
            .find(|cp| cp.id == point_id)
            .ok_or_else(|| ControlError::NotFound(format!("point {point_id} is not polled now")))?;
        let p = spec.point_of(cp);
        if !p.writable {
            return Err(ControlError::ReadOnly(format!("point {point_id} ({}) cannot be written", p.name)));
        }
        let point_type = crate::service::collection::enum_name(&p.point_type);
        // What the device says it is (it is online: writes go to it), in its panel's texts.
        let custom = self
            .catalog
            .read::<crate::model::device::DeviceRecord, _>(|d| {
                d.values().find(|d| d.config.name == entry.device).map(|d| d.id)
            })
            .and_then(|id| self.catalog.get::<CustomRanges>(id));
        let configured = Configured { point: None, custom: custom.as_ref() };
        let meaning = self.ranges.meaning(point_id, &point_type, configured);
        let digital = self.ranges.get(point_id).and_then(|r| r.digital) == Some(true);
        let states = digital.then(|| match meaning.as_ref().and_then(RangeMeaning::states) {
            Some((off, on)) => (off.to_owned(), on.to_owned()),
            None => ("0".to_owned(), "1".to_owned()),
        });
        let units = self
            .catalog
            .get::<crate::model::point::PointRecord>(i64::from(point_id))
            .and_then(|r| r.units)
            .or_else(|| p.unit.clone())
            .or_else(|| meaning.as_ref().and_then(RangeMeaning::units).map(str::to_owned));
        Ok(Target {
            device: entry.device,
            point: p.name.clone(),
            point_type: p.point_type,
            class: p.class(),
            span: self.ranges.span(point_id, &point_type, t3_drivers::classify::write_span(p)),
            units,
            states,
            own_priorities: spec.keeps_priorities(),
        })
    }

    /// Refuses a write or relinquish of a configuration point by anyone but an admin. The server's
    /// own writes (a schedule: no role) were allowed when they were set up.
    fn check_role(who: &Issuer, point_id: u32, target: &Target) -> Result<(), ControlError> {
        if target.class == PointClass::Configuration && who.role.is_some_and(|r| r < Role::Admin) {
            return Err(ControlError::AdminOnly {
                point_id,
                name: target.point.clone(),
                device: target.device.clone(),
            });
        }
        Ok(())
    }

    /// Whether `who` may command `value` to point `point_id` (a schedule's output, before it is
    /// stored): a configuration point needs an admin, the value must be in the point's range. A
    /// point not polled now is not judged here; its writes are.
    pub fn check_command(&self, who: &Issuer, point_id: u32, value: f64) -> Result<(), ControlError> {
        let Ok(target) = self.target(point_id) else { return Ok(()) };
        Self::check_role(who, point_id, &target)?;
        target.check(value)
    }

    /// The priority array of a point (empty when it has no commands).
    pub fn array(&self, point_id: u32) -> Vec<Command> {
        self.arbiter.lock().array(point_id).map(|a| a.slots().cloned().collect()).unwrap_or_default()
    }

    fn persist(&self, point_id: u32) -> Result<(), ControlError> {
        let array = self.arbiter.lock().array(point_id).cloned();
        match array {
            Some(array) => self.catalog.put(CommandsRecord { id: i64::from(point_id), array })?,
            None => {
                self.catalog.delete::<CommandsRecord>(i64::from(point_id))?;
            }
        }
        Ok(())
    }

    /// A person's write: checks the priority, that the value is finite, the rate limit of the
    /// point (every write that gets this far counts), the expiry's bounds and the command, that
    /// the point can be written (by an admin only for a configuration point) and takes the value,
    /// then commands it as [`Control::write`] does. REST and WebSocket both come here.
    pub async fn user_write(&self, who: &Issuer, point_id: u32, w: UserWrite) -> Result<WriteResult, ControlError> {
        let prio = priority(w.priority)?;
        if !w.value.is_finite() {
            return Err(ControlError::NotFinite);
        }
        self.check_write_rate(point_id)?;
        let now = self.clock.now_us();
        let expires = w
            .expires_in_secs
            .map(|s| {
                if !crate::model::check::EXPIRES_IN_SECS.contains(&s) {
                    return Err(ControlError::InvalidExpiry);
                }
                Ok(now + s as i64 * 1_000_000)
            })
            .transpose()?;
        let command = Command::new(w.value, prio, format!("user:{}", who.actor), now, expires)
            .map_err(|e| ControlError::InvalidCommand(e.to_string()))?;
        let target = self.target(point_id)?;
        Self::check_role(who, point_id, &target)?;
        target.check(w.value)?;
        let in_manual = self
            .storage
            .latest(&[point_id])
            .first()
            .is_some_and(|(_, l)| Quality(l.quality) == Quality::GOOD_LOCAL_OVERRIDE);
        self.write(who, point_id, command, w.switch_to_manual, in_manual).await
    }

    /// A person's relinquish of the slot `priority` (8 when none).
    pub async fn user_relinquish(
        &self,
        who: &Issuer,
        point_id: u32,
        priority: Option<u8>,
    ) -> Result<WriteResult, ControlError> {
        let prio = self::priority(priority)?;
        Self::check_role(who, point_id, &self.target(point_id)?)?;
        self.relinquish(who, point_id, prio).await
    }

    /// Takes a new `auth.point_writes_per_minute` (a configuration reload); writes already counted
    /// count against the new limit.
    pub fn reconfigure(&self, writes_per_minute: u32) {
        self.writes_per_minute.store(writes_per_minute, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts a write to `point`; refuses it past `point_writes_per_minute`.
    fn check_write_rate(&self, point: u32) -> Result<(), ControlError> {
        let per_minute = self.writes_per_minute.load(std::sync::atomic::Ordering::Relaxed);
        let mut writes = self.writes.lock();
        let list = writes.entry(point).or_default();
        while list.front().is_some_and(|t| t.elapsed() > Duration::from_secs(60)) {
            list.pop_front();
        }
        if list.len() >= per_minute as usize {
            return Err(ControlError::RateLimited {
                point,
                per_minute,
                retry_after_secs: 60u64.saturating_sub(list.front().map_or(0, |t| t.elapsed().as_secs())).max(1),
            });
        }
        list.push_back(Instant::now());
        Ok(())
    }

    /// Commands `value` at `priority`; writes the device when the effective value changes. A value
    /// outside the point's span is refused before anything changes.
    /// `input_in_manual` says whether an input point is in manual now (inputs take writes only then).
    pub async fn write(
        &self,
        who: &Issuer,
        point_id: u32,
        command: Command,
        switch_to_manual: bool,
        input_in_manual: bool,
    ) -> Result<WriteResult, ControlError> {
        let target = self.target(point_id)?;
        target.check(command.value)?;
        if target.point_type == PointType::Input && !input_in_manual {
            return Err(ControlError::InputInAuto(format!(
                "input {point_id} ({}) reads its sensor; put it in manual at the controller to override it",
                target.point
            )));
        }
        let lock = self.lock_of(point_id);
        let _guard = lock.lock().await;
        let now = self.clock.now_us();
        let previous = self.arbiter.lock().array(point_id).cloned();
        let change = self
            .arbiter
            .lock()
            .command(point_id, command.clone(), now)
            .map_err(|e| ControlError::InvalidCommand(e.to_string()))?;
        let audit = AuditEntry {
            seq: 0,
            ts: now,
            actor: who.actor.clone(),
            remote: who.remote.clone(),
            action: "point.write".into(),
            target: Some(format!("point:{point_id}")),
            old: change.before.as_ref().and_then(|e| serde_json::to_value(e).ok()),
            new: serde_json::to_value(&command).ok(),
            result: "pending".into(),
        };
        self.apply(point_id, &target, change, previous, audit, switch_to_manual).await
    }

    /// Empties the slot at `priority`; writes what wins then, if anything changes.
    pub async fn relinquish(
        &self,
        who: &Issuer,
        point_id: u32,
        priority: Priority,
    ) -> Result<WriteResult, ControlError> {
        let target = self.target(point_id)?;
        let lock = self.lock_of(point_id);
        let _guard = lock.lock().await;
        let now = self.clock.now_us();
        let previous = self.arbiter.lock().array(point_id).cloned();
        let change = self.arbiter.lock().relinquish(point_id, priority, now);
        let audit = AuditEntry {
            seq: 0,
            ts: now,
            actor: who.actor.clone(),
            remote: who.remote.clone(),
            action: "point.relinquish".into(),
            target: Some(format!("point:{point_id}")),
            old: change.before.as_ref().and_then(|e| serde_json::to_value(e).ok()),
            new: Some(serde_json::json!({ "priority": priority.get() })),
            result: "pending".into(),
        };
        self.apply(point_id, &target, change, previous, audit, false).await
    }

    /// Records the audit entry, writes the device if the effective value changed, and takes the
    /// change back if that write fails.
    async fn apply(
        &self,
        point_id: u32,
        target: &Target,
        change: Change,
        previous: Option<PriorityArray>,
        audit: AuditEntry,
        switch_to_manual: bool,
    ) -> Result<WriteResult, ControlError> {
        let seq = self.catalog.audit_begin(audit.clone())?;
        let mut result = WriteResult {
            point_id,
            effective: change.after.clone(),
            written: false,
            read_back: None,
            switched_to_manual: false,
        };
        if target.own_priorities {
            let now = self.arbiter.lock().array(point_id).cloned();
            if let Err(e) = self.send_slots(target, previous.as_ref(), now.as_ref(), &mut result).await {
                // Take the command back: the device does not have it.
                self.arbiter.lock().restore(point_id, previous);
                let _ = self.catalog.audit_finish(seq, &format!("failed: {e}"), None);
                return Err(device_error(e));
            }
        } else if let (true, Some(after)) = (change.changed(), &change.after) {
            match self.collector.write(&target.device, &target.point, after.value, switch_to_manual).await {
                Ok(out) => {
                    result.written = true;
                    result.read_back = Some(out.value);
                    result.switched_to_manual = out.switched_to_manual;
                    if out.switched_to_manual {
                        self.audit_switched(point_id, &audit);
                    }
                }
                Err(e) => {
                    // Take the command back: the device does not have its value.
                    self.arbiter.lock().restore(point_id, previous);
                    let _ = self.catalog.audit_finish(seq, &format!("failed: {e}"), None);
                    return Err(device_error(e));
                }
            }
        }
        self.persist(point_id)?;
        let outcome = serde_json::json!({ "effective": result.effective, "written": result.written, "read_back": result.read_back, "switched_to_manual": result.switched_to_manual });
        self.catalog.audit_finish(seq, "ok", Some(&outcome))?;
        Ok(result)
    }

    /// Sends a device that keeps its own priority array the slots that differ between `before` and
    /// `after`, most important last (so the read-back shows what wins); `result` gets the value
    /// read back after the last.
    async fn send_slots(
        &self,
        target: &Target,
        before: Option<&PriorityArray>,
        after: Option<&PriorityArray>,
        result: &mut WriteResult,
    ) -> Result<(), t3_drivers::collector::CollectError> {
        for (priority, value) in slot_changes(before, after).into_iter().rev() {
            let out = self.collector.command(&target.device, &target.point, value, priority).await?;
            result.written = true;
            result.read_back = Some(out.value);
        }
        Ok(())
    }

    /// Records that a write (its audit entry `write`) switched the point to manual: a `point.mode`
    /// entry by the same actor, at the write's time (before the point's first sample in manual).
    fn audit_switched(&self, point_id: u32, write: &AuditEntry) {
        let entry = AuditEntry {
            seq: 0,
            ts: write.ts,
            actor: write.actor.clone(),
            remote: write.remote.clone(),
            action: "point.mode".into(),
            target: Some(format!("point:{point_id}")),
            old: Some(serde_json::json!({ "mode": "auto" })),
            new: Some(serde_json::json!({ "mode": "manual", "changed": true, "via": "write" })),
            result: "ok".into(),
        };
        if let Err(e) = self.catalog.audit_record(entry) {
            tracing::error!(point_id, error = %e, "could not record the switch to manual in the audit log");
        }
    }

    /// A person's auto/manual change: counts against the point's write rate like a write, then
    /// changes the mode as [`Control::set_mode`] does.
    pub async fn user_set_mode(&self, who: &Issuer, point_id: u32, mode: Mode) -> Result<ModeResult, ControlError> {
        self.check_write_rate(point_id)?;
        self.set_mode(who, point_id, mode).await
    }

    /// Puts a point in manual or back in auto at its controller (its auto/manual register, read
    /// back), audited as `point.mode` before the device is written and with its result after.
    /// Back in auto, the point's commands are cleared (the controller owns the value); if the
    /// device is not written (it refused, or did not answer) the commands stay.
    pub async fn set_mode(&self, who: &Issuer, point_id: u32, mode: Mode) -> Result<ModeResult, ControlError> {
        let entry = self.entry(point_id)?;
        if entry.device.is_empty() {
            return Err(ControlError::NoAutoManual(format!(
                "point {point_id} is a manual point (its values are pushed to the server): it has no auto/manual switch"
            )));
        }
        let lock = self.lock_of(point_id);
        let _guard = lock.lock().await;
        let now = self.clock.now_us();
        let believed = self
            .storage
            .latest(&[point_id])
            .first()
            .is_some_and(|(_, l)| Quality(l.quality) == Quality::GOOD_LOCAL_OVERRIDE);
        let audit = AuditEntry {
            seq: 0,
            ts: now,
            actor: who.actor.clone(),
            remote: who.remote.clone(),
            action: "point.mode".into(),
            target: Some(format!("point:{point_id}")),
            old: Some(serde_json::json!({ "mode": Mode::of(believed) })),
            new: Some(serde_json::json!({ "mode": mode, "via": "mode" })),
            result: "pending".into(),
        };
        let seq = self.catalog.audit_begin(audit)?;
        let out = match self.collector.set_mode(&entry.device, &entry.point, mode.is_manual()).await {
            Ok(out) => out,
            Err(e) => {
                let e = match e {
                    CollectError::NoAutoManual(_) => ControlError::NoAutoManual(format!(
                        "point {point_id} ({} of {}) has no auto/manual switch",
                        entry.point, entry.device
                    )),
                    e => device_error(e),
                };
                let _ = self.catalog.audit_finish(seq, &format!("failed: {e}"), None);
                return Err(e);
            }
        };
        let cleared: Vec<Command> = if mode == Mode::Auto {
            let array = self.arbiter.lock().array(point_id).cloned();
            self.arbiter.lock().restore(point_id, None);
            if let Err(e) = self.persist(point_id) {
                // The arbiter in memory has no command; the stored one would come back at a restart.
                self.arbiter.lock().restore(point_id, array);
                let _ = self.catalog.audit_finish(seq, &format!("failed: {e}"), None);
                return Err(e);
            }
            array.map(|a| a.slots().cloned().collect()).unwrap_or_default()
        } else {
            Vec::new()
        };
        let result = ModeResult {
            point_id,
            mode: Mode::of(out.manual),
            previous: Mode::of(out.was_manual),
            changed: out.manual != out.was_manual,
            value: out.value.is_finite().then_some(out.value),
            quality: out.quality.name().to_owned(),
            cleared,
        };
        let outcome = serde_json::json!({
            "mode": result.mode,
            "was": result.previous,
            "changed": result.changed,
            "via": "mode",
            "value": result.value,
            "cleared": result.cleared,
        });
        self.catalog.audit_finish(seq, "ok", Some(&outcome))?;
        Ok(result)
    }

    /// Relinquishes expired commands every second and writes what wins then.
    pub fn spawn_expiry(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                let now = me.clock.now_us();
                if me.arbiter.lock().next_expiry().is_none_or(|t| t > now) {
                    continue;
                }
                let before: HashMap<u32, PriorityArray> =
                    me.arbiter.lock().points().map(|(p, a)| (p, a.clone())).collect();
                let changes = me.arbiter.lock().expire(now);
                for (point_id, change) in changes {
                    let lock = me.lock_of(point_id);
                    let _guard = lock.lock().await;
                    let _ = me.persist(point_id);
                    // What wins now: a write may have come in since the expiry was computed.
                    let after = me.arbiter.lock().effective(point_id, me.clock.now_us());
                    let entry = AuditEntry {
                        seq: 0,
                        ts: now,
                        actor: "system".into(),
                        remote: None,
                        action: "point.expire".into(),
                        target: Some(format!("point:{point_id}")),
                        old: change.before.as_ref().and_then(|e| serde_json::to_value(e).ok()),
                        new: after.as_ref().and_then(|e| serde_json::to_value(e).ok()),
                        result: "pending".into(),
                    };
                    let Ok(seq) = me.catalog.audit_begin(entry) else { continue };
                    let result = match (&after, me.target(point_id)) {
                        (_, Ok(t)) if t.own_priorities => {
                            let now_array = me.arbiter.lock().array(point_id).cloned();
                            let mut r = WriteResult {
                                point_id,
                                effective: after.clone(),
                                written: false,
                                read_back: None,
                                switched_to_manual: false,
                            };
                            match me.send_slots(&t, before.get(&point_id), now_array.as_ref(), &mut r).await {
                                Ok(()) => "ok".to_owned(),
                                Err(e) => format!("failed: {e}"),
                            }
                        }
                        (None, _) => "ok: no command in force; the device keeps its value".to_owned(),
                        (Some(after), Ok(t)) => match me.collector.write(&t.device, &t.point, after.value, false).await
                        {
                            Ok(_) => "ok".to_owned(),
                            Err(e) => {
                                tracing::warn!(point_id, error = %e, "writing the value after an expiry failed");
                                format!("failed: {e}")
                            }
                        },
                        (Some(_), Err(e)) => format!("failed: {e}"),
                    };
                    let _ = me.catalog.audit_finish(seq, &result, None);
                }
            }
        });
    }
}
