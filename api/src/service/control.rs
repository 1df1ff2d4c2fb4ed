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

use crate::http::error::{ApiError, ApiResult};
use crate::model::command::{CommandsRecord, WriteResult};
use crate::service::auth::now_us;
use crate::service::registry::Registry;
use axum::http::StatusCode;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use t3_core::arbiter::{Arbiter, Change, Command, Priority, PriorityArray};
use t3_drivers::collector::{CollectError, Collector};
use t3_drivers::driver::DriverError;
use t3_drivers::profile::PointType;
use t3_storage::catalog::{AuditEntry, Catalog};

/// Who or what issues a command, for the audit log.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// `alice`, `schedule:3`, ...
    pub actor: String,
    pub remote: Option<String>,
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
}

/// A writable point: its device and name.
#[derive(Debug, Clone)]
struct Target {
    device: String,
    point: String,
    point_type: PointType,
}

fn device_error(e: CollectError) -> ApiError {
    match e {
        CollectError::Driver(DriverError::InAuto) => ApiError::new(
            StatusCode::CONFLICT,
            "point_in_auto",
            "the point is in auto (its controller drives it); send switch_to_manual: true to take it over",
        ),
        // What the point is (read-only, its range) is the device's configuration: 409.
        CollectError::ReadOnly(p) => ApiError::conflict("read_only", format!("point `{p}` cannot be written")),
        CollectError::BadValue { .. } => ApiError::conflict("invalid_value", e.to_string()),
        CollectError::UnknownDevice(_) | CollectError::UnknownPoint { .. } => ApiError::not_found(e.to_string()),
        other => ApiError::new(StatusCode::BAD_GATEWAY, "device_write_failed", other.to_string()),
    }
}

impl Control {
    pub fn new(
        catalog: Arc<Catalog>,
        collector: Arc<Collector>,
        registry: Arc<Registry>,
    ) -> anyhow::Result<Arc<Control>> {
        let arrays: std::collections::BTreeMap<u32, PriorityArray> =
            catalog.list::<CommandsRecord>().into_iter().map(|r| (r.id as u32, r.array)).collect();
        Ok(Arc::new(Control {
            arbiter: Mutex::new(Arbiter::from(arrays)),
            locks: Mutex::default(),
            catalog,
            collector,
            registry,
        }))
    }

    fn lock_of(&self, point_id: u32) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().entry(point_id).or_default().clone()
    }

    fn target(&self, point_id: u32) -> ApiResult<Target> {
        let entry = self
            .registry
            .entries()
            .into_iter()
            .find(|e| e.id == point_id)
            .ok_or_else(|| ApiError::not_found(format!("no point {point_id}")))?;
        if entry.device.is_empty() {
            return Err(ApiError::conflict(
                "not_writable",
                format!("point {point_id} is a manual point: push its values to POST /api/t3000/samples"),
            ));
        }
        let spec = self
            .collector
            .device(&entry.device)
            .ok_or_else(|| ApiError::not_found(format!("point {point_id}: device `{}` is not polled", entry.device)))?;
        let cp = spec
            .points
            .iter()
            .find(|cp| cp.id == point_id)
            .ok_or_else(|| ApiError::not_found(format!("point {point_id} is not polled now")))?;
        let p = spec.point_of(cp);
        if !p.writable {
            return Err(ApiError::conflict("read_only", format!("point {point_id} ({}) cannot be written", p.name)));
        }
        Ok(Target { device: entry.device, point: p.name.clone(), point_type: p.point_type })
    }

    /// The priority array of a point (empty when it has no commands).
    pub fn array(&self, point_id: u32) -> Vec<Command> {
        self.arbiter.lock().array(point_id).map(|a| a.slots().cloned().collect()).unwrap_or_default()
    }

    fn persist(&self, point_id: u32) -> ApiResult<()> {
        let array = self.arbiter.lock().array(point_id).cloned();
        match array {
            Some(array) => self.catalog.put(CommandsRecord { id: i64::from(point_id), array })?,
            None => {
                self.catalog.delete::<CommandsRecord>(i64::from(point_id))?;
            }
        }
        Ok(())
    }

    /// Commands `value` at `priority`; writes the device when the effective value changes.
    /// `input_in_manual` says whether an input point is in manual now (inputs take writes only then).
    pub async fn write(
        &self,
        who: &Issuer,
        point_id: u32,
        command: Command,
        switch_to_manual: bool,
        input_in_manual: bool,
    ) -> ApiResult<WriteResult> {
        let target = self.target(point_id)?;
        if target.point_type == PointType::Input && !input_in_manual {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "input_in_auto",
                format!(
                    "input {point_id} ({}) reads its sensor; put it in manual at the controller to override it",
                    target.point
                ),
            ));
        }
        let lock = self.lock_of(point_id);
        let _guard = lock.lock().await;
        let now = now_us();
        let previous = self.arbiter.lock().array(point_id).cloned();
        let change = self
            .arbiter
            .lock()
            .command(point_id, command.clone(), now)
            .map_err(|e| ApiError::unprocessable("invalid_command", e.to_string()))?;
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
    pub async fn relinquish(&self, who: &Issuer, point_id: u32, priority: Priority) -> ApiResult<WriteResult> {
        let target = self.target(point_id)?;
        let lock = self.lock_of(point_id);
        let _guard = lock.lock().await;
        let now = now_us();
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
    ) -> ApiResult<WriteResult> {
        let seq = self.catalog.audit_begin(audit)?;
        let mut result = WriteResult {
            point_id,
            effective: change.after.clone(),
            written: false,
            read_back: None,
            switched_to_manual: false,
        };
        if let (true, Some(after)) = (change.changed(), &change.after) {
            match self.collector.write(&target.device, &target.point, after.value, switch_to_manual).await {
                Ok(out) => {
                    result.written = true;
                    result.read_back = Some(out.value);
                    result.switched_to_manual = out.switched_to_manual;
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
        let outcome = serde_json::json!({ "effective": result.effective, "written": result.written, "read_back": result.read_back });
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
                let now = now_us();
                if me.arbiter.lock().next_expiry().is_none_or(|t| t > now) {
                    continue;
                }
                let changes = me.arbiter.lock().expire(now);
                for (point_id, change) in changes {
                    let lock = me.lock_of(point_id);
                    let _guard = lock.lock().await;
                    let _ = me.persist(point_id);
                    // What wins now: a write may have come in since the expiry was computed.
                    let after = me.arbiter.lock().effective(point_id, now_us());
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
                        (None, _) => "ok: no command in force; the device keeps its value".to_owned(),
                        (Some(after), Ok(t)) => match me.collector.write(&t.device, &t.point, after.value, false).await
                        {
                            Ok(_) => "ok".to_owned(),
                            Err(e) => {
                                tracing::warn!(point_id, error = %e, "writing the value after an expiry failed");
                                format!("failed: {e}")
                            }
                        },
                        (Some(_), Err(e)) => format!("failed: {}", e.message),
                    };
                    let _ = me.catalog.audit_finish(seq, &result, None);
                }
            }
        });
    }
}
