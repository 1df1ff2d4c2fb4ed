//! Points in manual (overridden): since when each has been, and who put it there.
//!
//! A point is in manual while its samples carry the local-override quality (its controller's
//! auto/manual register says manual). [`Overrides`] watches every stored sample on the live bus
//! and keeps, for each point in manual, the time of its first sample in manual (in the catalog, so
//! a restart keeps it); a sample of another good quality ends the run, a bad or uncertain one (the
//! device was not read, or not wholly) says nothing about the mode. If the bus drops samples (a lagging
//! receiver), or at start, the points whose latest value is in manual without a known start are
//! taken as "in manual since an unknown time".
//!
//! Who put a point in manual comes from the audit log: the last `point.mode` entry of the point
//! that succeeded (one per change through `POST /points/{id}/mode`, and one per write that
//! switched a point to manual, with the write's time). It names the user (or `schedule:3`) when it
//! is a change to manual and the point's current run in manual began with it (within
//! [`EXPLAINS_US`] after it); otherwise the point was put in manual at the controller (its panel,
//! its program, another tool), and the time is when the server first saw it there, if known.

use crate::model::command::ManualSeen;
use crate::service::registry::Registry;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use t3_core::{Quality, Sample};
use t3_storage::Storage;
use t3_storage::catalog::{AuditEntry, AuditFilter, Catalog};
use tokio::sync::broadcast::error::RecvError;

/// How long after a recorded change to manual the point's first sample in manual may come and
/// still be that change's (a device write, a read back and a store take well under this).
pub const EXPLAINS_US: i64 = 60_000_000;

/// Whether a sample of this quality says the point is in manual (`Some(true)`), in auto
/// (`Some(false)`: another good quality), or nothing about it (bad: the device was not read;
/// uncertain: what the device said was not wholly read).
fn says_manual(q: Quality) -> Option<bool> {
    if q == Quality::GOOD_LOCAL_OVERRIDE {
        Some(true)
    } else if q.0 & 0xC0 == 0xC0 {
        Some(false)
    } else {
        None
    }
}

/// Why a point is in manual, as far as the server knows.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualReason {
    /// Who put it in manual through this server (a user, a token, `schedule:3`); none when it was
    /// put in manual at the controller.
    pub by: Option<String>,
    /// From where (the client's address), when through this server.
    pub remote: Option<String>,
    /// How: `mode` (the auto/manual control) or `write` (a write that switched it to manual).
    pub via: Option<String>,
    /// Since when, epoch microseconds: the change's time, or when the server first saw the point in
    /// manual; none when not known.
    pub since_us: Option<i64>,
}

/// The watch over points in manual (see the module documentation).
#[derive(Debug)]
pub struct Overrides {
    catalog: Arc<Catalog>,
    storage: Storage,
    registry: Arc<Registry>,
    /// Points in manual and the time of their first sample in manual (none: unknown).
    seen: Mutex<HashMap<u32, Option<i64>>>,
}

impl Overrides {
    /// The watch, with what the catalog remembers (its `ManualSeen` records, registered by
    /// `model::register`).
    pub fn new(catalog: Arc<Catalog>, storage: Storage, registry: Arc<Registry>) -> Arc<Overrides> {
        let seen = catalog.list::<ManualSeen>().into_iter().map(|r| (r.id as u32, r.since_us)).collect();
        Arc::new(Overrides { catalog, storage, registry, seen: Mutex::new(seen) })
    }

    /// Takes the latest value of every point as the truth now (at start, and after the bus
    /// dropped samples): points in manual without a known start are added with an unknown one,
    /// points no longer in manual are forgotten.
    pub fn resync(&self) {
        let ids: Vec<u32> = self.registry.entries().into_iter().map(|e| e.id).collect();
        let changes: Vec<(u32, Option<Option<i64>>)> = {
            let mut seen = self.seen.lock();
            let mut changes = Vec::new();
            for (id, latest) in self.storage.latest(&ids) {
                match says_manual(Quality(latest.quality)) {
                    Some(true) if !seen.contains_key(&id) => {
                        seen.insert(id, None);
                        changes.push((id, Some(None)));
                    }
                    Some(false) if seen.remove(&id).is_some() => changes.push((id, None)),
                    _ => {}
                }
            }
            changes
        };
        self.persist(changes);
    }

    /// Follows one batch of stored samples.
    pub fn observe(&self, samples: &[Sample]) {
        let changes: Vec<(u32, Option<Option<i64>>)> = {
            let mut seen = self.seen.lock();
            let mut changes = Vec::new();
            for s in samples {
                let id = s.point_id.0;
                match says_manual(s.quality) {
                    // A run already known (its start too, or that it is unknown) goes on.
                    Some(true) => {
                        if let std::collections::hash_map::Entry::Vacant(v) = seen.entry(id) {
                            v.insert(Some(s.ts));
                            changes.push((id, Some(Some(s.ts))));
                        }
                    }
                    Some(false) if seen.remove(&id).is_some() => changes.push((id, None)),
                    _ => {}
                }
            }
            changes
        };
        self.persist(changes);
    }

    /// Stores what changed: `Some(since)` a run in manual began, `None` it ended.
    fn persist(&self, changes: Vec<(u32, Option<Option<i64>>)>) {
        for (id, change) in changes {
            let result = match change {
                Some(since_us) => self.catalog.put(ManualSeen { id: i64::from(id), since_us }).map(|_| ()),
                None => self.catalog.delete::<ManualSeen>(i64::from(id)).map(|_| ()),
            };
            if let Err(e) = result {
                tracing::warn!(point = id, error = %e, "could not keep when the point went to manual");
            }
        }
    }

    /// Watches the live bus until the storage closes it.
    pub fn spawn(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let mut rx = self.storage.subscribe();
        if let Some(me) = me.upgrade() {
            me.resync();
        }
        tokio::spawn(async move {
            loop {
                let batch = rx.recv().await;
                let Some(me) = me.upgrade() else { return };
                match batch {
                    Ok(samples) => me.observe(&samples),
                    Err(RecvError::Lagged(_)) => me.resync(),
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    /// Since when the point has been in manual as the server saw it: `None` when it is not known
    /// to be in manual, `Some(None)` when in manual since an unknown time.
    pub fn since(&self, point: u32) -> Option<Option<i64>> {
        self.seen.lock().get(&point).copied()
    }

    /// Why a point that is in manual is there (see the module documentation).
    pub fn reason(&self, point: u32) -> ManualReason {
        let since = self.since(point).flatten();
        if let Some(e) = last_change(&self.catalog, point).filter(|e| explains(e, since)) {
            return ManualReason {
                by: Some(e.actor),
                remote: e.remote,
                via: e.new.as_ref().and_then(|n| n["via"].as_str()).map(str::to_owned),
                since_us: Some(e.ts),
            };
        }
        ManualReason { by: None, remote: None, via: None, since_us: since }
    }
}

/// Puts `point` back in auto (its controller drives it again) when `who` is what put it in manual
/// (the last recorded change to manual is theirs) and no command is in force on it any more: what
/// a schedule or a program does when it lets go of a point it had taken over.
pub async fn give_back(
    control: &crate::service::control::Control,
    catalog: &Catalog,
    who: &crate::service::Issuer,
    point: u32,
) {
    if !control.array(point).is_empty() {
        return;
    }
    let Some(last) = last_change(catalog, point) else { return };
    if last.actor != who.actor || !explains(&last, None) {
        return;
    }
    if let Err(e) = control.set_mode(who, point, crate::model::command::Mode::Auto).await {
        tracing::warn!(actor = %who.actor, point, error = %e, "putting a point back in auto failed");
    }
}

/// The last auto/manual change of a point recorded in the audit log that succeeded.
pub fn last_change(catalog: &Catalog, point: u32) -> Option<AuditEntry> {
    let filter = AuditFilter {
        action: Some("point.mode".into()),
        target: Some(format!("point:{point}")),
        limit: 50,
        ..Default::default()
    };
    match catalog.audit(&filter) {
        Ok(entries) => entries.into_iter().find(|e| e.result == "ok"),
        Err(e) => {
            tracing::warn!(point, error = %e, "could not read the audit log");
            None
        }
    }
}

/// Whether audit entry `e` (a `point.mode` entry) put the point in manual for the run that began
/// at `since` (unknown: the entry is the best account there is).
pub fn explains(e: &AuditEntry, since: Option<i64>) -> bool {
    let new = e.new.as_ref();
    let to_manual = new.is_some_and(|n| n["mode"] == "manual");
    let changed = new.is_none_or(|n| n["changed"] != false);
    to_manual && changed && since.is_none_or(|s| (e.ts..=e.ts + EXPLAINS_US).contains(&s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(ts: i64, new: serde_json::Value) -> AuditEntry {
        AuditEntry {
            seq: 1,
            ts,
            actor: "op".into(),
            remote: None,
            action: "point.mode".into(),
            target: Some("point:1".into()),
            old: None,
            new: Some(new),
            result: "ok".into(),
        }
    }

    #[test]
    fn a_change_to_manual_explains_the_run_that_began_with_it() {
        let to_manual = entry(1_000, json!({"mode": "manual", "changed": true, "via": "mode"}));
        assert!(explains(&to_manual, Some(1_500)), "first sample in manual just after the change");
        assert!(explains(&to_manual, None), "start unknown: the entry is the best account");
        assert!(!explains(&to_manual, Some(500)), "in manual before the change: someone else did it");
        assert!(!explains(&to_manual, Some(1_000 + EXPLAINS_US + 1)), "back in auto and manual again at the panel");
        let unchanged = entry(1_000, json!({"mode": "manual", "changed": false}));
        assert!(!explains(&unchanged, Some(1_500)), "it was in manual already");
        let to_auto = entry(1_000, json!({"mode": "auto", "changed": true}));
        assert!(!explains(&to_auto, None), "the last change here was back to auto");
    }

    #[test]
    fn only_good_samples_say_the_mode() {
        assert_eq!(says_manual(Quality::GOOD_LOCAL_OVERRIDE), Some(true));
        assert_eq!(says_manual(Quality::GOOD), Some(false));
        assert_eq!(says_manual(Quality::UNCERTAIN_SUB_NORMAL), None);
        assert_eq!(says_manual(Quality::BAD_COMM_FAILURE), None);
    }
}
