//! Trend logs as T3000's monitors: a trend log names points and the interval they are recorded
//! at (every poll, or on change past a deadband), and while it exists the collector records them
//! so.
//!
//! Every change (create, update, delete) is stored in the catalog, audited (`trendlog.create`,
//! `trendlog.update`, `trendlog.delete`) and then applied: [`TrendLogs::apply`] merges what every
//! trend log asks of each point ([`Demand::merge`]: the fastest interval, every sample if any log
//! wants every sample, else the smallest deadband) and hands the result to the collector, which
//! polls each point at the faster of its own interval and the trend logs' and records it as they
//! say ([`t3_core::recording`]). A point in no trend log has its own settings again. The point's
//! own settings (its device's, or the point's override in the device definition) are never
//! changed: [`TrendLogs::recording`] tells what is in force and which trend logs cause it.
//!
//! The server applies the catalog's trend logs at start, before the devices are polled, so a
//! restart keeps them; importers that create trend logs (T3000 monitors) go through
//! [`TrendLogs::create`] or call [`TrendLogs::apply`] after writing the catalog themselves.

use crate::model::check::{Invalid, TRENDLOG_INTERVAL_MS, TRENDLOG_POINTS, check_name};
use crate::model::device::DeviceRecord;
use crate::model::point::PointRecord;
use crate::model::program::TrendLog;
use crate::service::Issuer;
use crate::service::audit::AuditLog;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use t3_core::clock::Clock;
use t3_core::config::RecordMode;
use t3_core::recording::{Ask, Demand};
use t3_drivers::collector::Collector;
use t3_storage::catalog::Catalog;

/// Why a trend log change was refused.
#[derive(Debug, thiserror::Error)]
pub enum TrendLogError {
    /// A field out of its values; the message names the field.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A point id that no device polls and no manual point has.
    #[error("point_ids: no point {0}")]
    UnknownPoint(u32),
    /// No trend log with this id.
    #[error("no trend log {0}")]
    NotFound(i64),
    /// The catalog could not store the change.
    #[error(transparent)]
    Storage(#[from] t3_storage::Error),
}

pub type Result<T, E = TrendLogError> = std::result::Result<T, E>;

/// What a trend log is made of, as a caller gives it (the id and time stamp are the service's).
#[derive(Debug, Clone, PartialEq)]
pub struct TrendLogSpec {
    pub name: String,
    pub description: Option<String>,
    pub point_ids: Vec<u32>,
    pub interval_ms: u64,
    pub on_change: bool,
    pub deadband: f64,
    /// The span a chart of the log opens with (`24h`); checked by the caller (the HTTP layer
    /// states its rule), kept as given.
    pub range: Option<String>,
}

/// How a point is polled and recorded now, and which trend logs make it so.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Recording {
    /// The poll interval in force, milliseconds.
    pub interval_ms: u64,
    /// Whether only changes are recorded (past `deadband`, or `deadband_percent` of the last
    /// value, or after `heartbeat_secs`).
    pub on_change: bool,
    pub deadband: f64,
    pub deadband_percent: f64,
    pub heartbeat_secs: u64,
    /// The trend logs holding the point (ids, ascending); empty when the point has its own
    /// settings.
    pub trendlogs: Vec<i64>,
}

/// The trend log service: the catalog's trend logs and the collector's per-point settings.
#[derive(Debug, Clone)]
pub struct TrendLogs {
    catalog: Arc<Catalog>,
    collector: Arc<Collector>,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
}

impl TrendLogs {
    pub fn new(catalog: Arc<Catalog>, collector: Arc<Collector>, audit: AuditLog, clock: Arc<dyn Clock>) -> Self {
        TrendLogs { catalog, collector, audit, clock }
    }

    /// Every trend log, by id.
    pub fn list(&self) -> Vec<TrendLog> {
        let mut v = self.catalog.list::<TrendLog>();
        v.sort_by_key(|t| t.id);
        v
    }

    pub fn get(&self, id: i64) -> Result<TrendLog> {
        self.catalog.get::<TrendLog>(id).ok_or(TrendLogError::NotFound(id))
    }

    /// Creates a trend log and starts recording its points as it says.
    pub fn create(&self, who: &Issuer, spec: TrendLogSpec) -> Result<TrendLog> {
        let t = self.catalog.insert(self.check(0, spec)?)?;
        self.record(who, "trendlog.create", t.id, None, Some(&t));
        self.apply();
        Ok(t)
    }

    /// Changes a trend log; its points are recorded as it says now (points it no longer holds
    /// go back to what the other trend logs, or their own settings, say).
    pub fn update(&self, who: &Issuer, id: i64, spec: TrendLogSpec) -> Result<TrendLog> {
        let old = self.get(id)?;
        let t = self.check(id, spec)?;
        self.catalog.put(t.clone())?;
        self.record(who, "trendlog.update", id, Some(&old), Some(&t));
        self.apply();
        Ok(t)
    }

    /// Deletes a trend log (the points and their history stay); its points go back to what the
    /// other trend logs, or their own settings, say.
    pub fn delete(&self, who: &Issuer, id: i64) -> Result<()> {
        let old = self.get(id)?;
        self.catalog.delete::<TrendLog>(id)?;
        self.record(who, "trendlog.delete", id, Some(&old), None);
        self.apply();
        Ok(())
    }

    /// Stores a trend log an importer made (`log.id` 0: a new one) and records its points as it
    /// says. The importer audits it as part of its import. Its points need not be polled yet (an
    /// imported device may be created disabled): the log holds them from when they are.
    pub fn store(&self, log: TrendLog) -> Result<TrendLog> {
        let spec = TrendLogSpec {
            name: log.name,
            description: log.description,
            point_ids: log.point_ids,
            interval_ms: log.interval_ms,
            on_change: log.on_change,
            deadband: log.deadband,
            range: log.range,
        };
        let t = self.checked(log.id, spec, false)?;
        let t = if t.id == 0 {
            self.catalog.insert(t)?
        } else {
            self.catalog.put(t.clone())?;
            t
        };
        self.apply();
        Ok(t)
    }

    /// Recomputes what every trend log of the catalog asks of each point and hands it to the
    /// collector (devices whose points change are polled with their new settings at once; devices
    /// added later start with them). Called at start and after every change; returns the number of
    /// points trend logs hold.
    pub fn apply(&self) -> usize {
        // One at a time: a later apply reads the catalog after every earlier change, so the last
        // demands set are never older than the catalog.
        static APPLYING: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
        let _one = APPLYING.lock();
        let demands = demands(&self.catalog.list::<TrendLog>());
        let n = demands.len();
        let restarted = self.collector.set_demands(demands);
        if !restarted.is_empty() {
            tracing::info!(devices = ?restarted, points = n, "trend logs applied");
        }
        n
    }

    /// How each polled point is recorded now (by point id), with the trend logs that hold it.
    pub fn recording(&self) -> HashMap<u32, Recording> {
        recording(&self.catalog, &self.collector)
    }

    /// The ids of every point there is: those the catalog's devices are polled for and the
    /// manual points.
    fn known_points(&self) -> HashSet<u32> {
        let mut known: HashSet<u32> = self
            .catalog
            .list::<DeviceRecord>()
            .iter()
            .flat_map(|d| crate::service::collection::device_points(&self.collector, &d.config.name))
            .map(|p| p.id)
            .collect();
        self.catalog.read::<PointRecord, _>(|r| {
            known.extend(r.values().filter(|r| r.device_id.is_none()).map(|r| r.id as u32));
        });
        known
    }

    fn check(&self, id: i64, s: TrendLogSpec) -> Result<TrendLog> {
        self.checked(id, s, true)
    }

    /// The trend log `s` makes, its fields checked (and, with `known_only`, that every point is
    /// one the server polls or a manual point).
    fn checked(&self, id: i64, s: TrendLogSpec, known_only: bool) -> Result<TrendLog> {
        let name = check_name("trend log", &s.name)?;
        if !TRENDLOG_POINTS.contains(&s.point_ids.len()) {
            let (min, max) = (TRENDLOG_POINTS.start(), TRENDLOG_POINTS.end());
            return Err(Invalid::new("invalid_trendlog", format!("point_ids: {min} to {max} points")).into());
        }
        if !TRENDLOG_INTERVAL_MS.contains(&s.interval_ms) {
            let (min, max) = (TRENDLOG_INTERVAL_MS.start(), TRENDLOG_INTERVAL_MS.end());
            return Err(Invalid::new("invalid_trendlog", format!("interval_ms must be {min} to {max}")).into());
        }
        if !(s.deadband.is_finite() && s.deadband >= 0.0) {
            return Err(Invalid::new("invalid_trendlog", "deadband must be a number >= 0").into());
        }
        if known_only {
            let known = self.known_points();
            if let Some(&p) = s.point_ids.iter().find(|p| !known.contains(p)) {
                return Err(TrendLogError::UnknownPoint(p));
            }
        }
        let mut point_ids = Vec::with_capacity(s.point_ids.len());
        for p in s.point_ids {
            if !point_ids.contains(&p) {
                point_ids.push(p);
            }
        }
        Ok(TrendLog {
            id,
            name,
            description: s.description,
            point_ids,
            interval_ms: s.interval_ms,
            on_change: s.on_change,
            deadband: s.deadband,
            range: s.range,
            updated_us: self.clock.now_us(),
        })
    }

    fn record(&self, who: &Issuer, action: &str, id: i64, old: Option<&TrendLog>, new: Option<&TrendLog>) {
        let json = |t: Option<&TrendLog>| t.and_then(|t| serde_json::to_value(t).ok());
        self.audit.record(
            who.remote.clone(),
            &who.actor,
            action,
            Some(format!("trendlog:{id}")),
            json(old),
            json(new),
            "ok",
        );
    }
}

/// How each polled point is recorded now (by point id), with the trend logs of `catalog` that
/// hold it.
pub fn recording(catalog: &Catalog, collector: &Collector) -> HashMap<u32, Recording> {
    let mut holders: HashMap<u32, Vec<i64>> = HashMap::new();
    for t in catalog.list::<TrendLog>() {
        for &p in &t.point_ids {
            holders.entry(p).or_default().push(t.id);
        }
    }
    let mut out = HashMap::new();
    for name in collector.device_names() {
        let Some(spec) = collector.device(&name) else { continue };
        for cp in &spec.points {
            let mut trendlogs = holders.get(&cp.id).cloned().unwrap_or_default();
            trendlogs.sort_unstable();
            trendlogs.dedup();
            let on_change = cp.record.mode == RecordMode::Change;
            out.insert(
                cp.id,
                Recording {
                    interval_ms: cp.interval.as_millis() as u64,
                    on_change,
                    deadband: if on_change { cp.record.deadband } else { 0.0 },
                    deadband_percent: if on_change { cp.record.deadband_percent } else { 0.0 },
                    heartbeat_secs: if on_change { cp.record.heartbeat_secs } else { 0 },
                    trendlogs,
                },
            );
        }
    }
    out
}

/// What the trend logs ask of each point they hold, merged ([`Demand::merge`]).
pub fn demands(logs: &[TrendLog]) -> HashMap<u32, Demand> {
    let mut asks: BTreeMap<u32, Vec<Ask>> = BTreeMap::new();
    for t in logs {
        let ask = Ask { interval_ms: t.interval_ms, on_change: t.on_change, deadband: t.deadband };
        for &p in &t.point_ids {
            asks.entry(p).or_default().push(ask);
        }
    }
    asks.into_iter().filter_map(|(p, a)| Demand::merge(a).map(|d| (p, d))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(id: i64, points: &[u32], interval_ms: u64, on_change: bool, deadband: f64) -> TrendLog {
        TrendLog {
            id,
            name: format!("log {id}"),
            description: None,
            point_ids: points.to_vec(),
            interval_ms,
            on_change,
            deadband,
            range: None,
            updated_us: 0,
        }
    }

    #[test]
    fn each_point_gets_what_its_logs_ask_together() {
        let logs = [
            log(1, &[10, 11], 60_000, false, 0.0),
            log(2, &[11, 12], 1_000, true, 0.5),
            log(3, &[12], 5_000, true, 0.2),
        ];
        let d = demands(&logs);
        assert_eq!(d.len(), 3);
        // One log: its own ask.
        assert_eq!(d[&10], Demand { interval_ms: 60_000, deadband: None });
        // Fastest interval; every sample wins over on change.
        assert_eq!(d[&11], Demand { interval_ms: 1_000, deadband: None });
        // Both on change: the smallest deadband, the fastest interval.
        assert_eq!(d[&12], Demand { interval_ms: 1_000, deadband: Some(0.2) });
    }

    #[test]
    fn a_deleted_log_leaves_its_points_to_the_others_or_to_themselves() {
        let logs = [log(1, &[10, 11], 1_000, false, 0.0), log(2, &[11], 30_000, true, 1.0)];
        let d = demands(&logs[1..]);
        assert!(!d.contains_key(&10), "point 10 is in no log any more: its own settings");
        assert_eq!(d[&11], Demand { interval_ms: 30_000, deadband: Some(1.0) });
        assert!(demands(&[]).is_empty());
    }

    #[test]
    fn an_old_record_without_the_new_fields_loads_as_every_sample() {
        let old = r#"{"id":4,"name":"AHU","description":null,"point_ids":[1,2],"interval_ms":60000,"range":"24h","updated_us":5}"#;
        let t: TrendLog = serde_json::from_str(old).unwrap();
        assert_eq!((t.on_change, t.deadband), (false, 0.0));
        assert_eq!(demands(&[t])[&1], Demand { interval_ms: 60_000, deadband: None });
    }
}
